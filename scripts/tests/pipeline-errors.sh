#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Bad input to the pipeline: each case must stop with one clear
# "cowguard: error:" line, a non-zero exit and no QEMU left running.
# Uses the real build directory (the base tree is reused, not rebuilt).
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
n=0

# expect_error NAME PATTERN COMMAND...
expect_error() {
	name=$1 pattern=$2
	shift 2
	n=$((n + 1))
	out=$("$@" 2>&1)
	rc=$?
	errs=$(printf '%s\n' "$out" | grep -c '^cowguard: error:')
	if [ $rc -ne 0 ] && [ "$errs" -eq 1 ] &&
	   printf '%s\n' "$out" | grep -q "^cowguard: error: .*$pattern" &&
	   printf '%s\n' "$out" | grep -q -- "${ALSO:-}" &&
	   ! pgrep -f "qemu-system.*$TOP/build" >/dev/null; then
		pass=$((pass + 1))
		echo "ok $n $name"
	else
		fail=$((fail + 1))
		echo "not ok $n $name (exit $rc)"
		printf '%s\n' "$out" | tail -n 5 | sed 's/^/# /'
	fi
}

mkdir -p "$tmp/linux-5.15" "$tmp/not-a-kernel"
printf 'VERSION = 5\nPATCHLEVEL = 15\nSUBLEVEL = 90\n' >"$tmp/linux-5.15/Makefile"

echo "TAP version 13"
expect_error "unknown ARCH" "unknown ARCH 'vax'" \
	env ARCH=vax "$TOP/scripts/cowguard" qemu
expect_error "ARCH with a path in it" "bad ARCH" \
	env ARCH=../x86_64 "$TOP/scripts/cowguard" qemu
expect_error "compile-only ARCH booted" "it is a compile-only description" \
	env ARCH=riscv32 "$TOP/scripts/cowguard" qemu
expect_error "bad PATCHES" "bad PATCHES 'some'" \
	env PATCHES=some "$TOP/scripts/cowguard" qemu
expect_error "KERNEL_SRC missing" "is not a directory" \
	env KERNEL_SRC="$tmp/nowhere" "$TOP/scripts/cowguard" qemu
expect_error "KERNEL_SRC not a kernel" "not a Linux source tree" \
	env KERNEL_SRC="$tmp/not-a-kernel" "$TOP/scripts/cowguard" qemu
expect_error "KERNEL_SRC not 6.1" "is Linux 5.15.90, not 6.1.y" \
	env KERNEL_SRC="$tmp/linux-5.15" "$TOP/scripts/cowguard" qemu
expect_error "unknown BASE" "unknown BASE '6.2' (known: 6.1 6.12)" \
	env BASE=6.2 "$TOP/scripts/cowguard" qemu
expect_error "BASE with a path in it" "bad BASE '../6.1'" \
	env BASE=../6.1 "$TOP/scripts/cowguard" qemu
expect_error "KERNEL_SRC not of BASE=6.12" "is Linux 5.15.90, not 6.12.y (BASE=6.12)" \
	env BASE=6.12 KERNEL_SRC="$tmp/linux-5.15" "$TOP/scripts/cowguard" qemu
expect_error "bad GUEST_MEM_MB" "bad GUEST_MEM_MB '256M'" \
	env GUEST_MEM_MB=256M "$TOP/scripts/cowguard" qemu
expect_error "GUEST_CMDLINE with a shell character" "bad GUEST_CMDLINE" \
	env GUEST_CMDLINE='A=1;reboot' "$TOP/scripts/cowguard" qemu
expect_error "bad GUEST_ICOUNT" "bad GUEST_ICOUNT 'yes'" \
	env GUEST_ICOUNT=yes "$TOP/scripts/cowguard" qemu
expect_error "GUEST_ICOUNT where the description cannot" "configs/i386.conf has no QEMU_ICOUNT_ARGS" \
	env ARCH=i386 GUEST_ICOUNT=1 "$TOP/scripts/cowguard" qemu

# A patch that does not apply: a copy of the tools with a series of one
# broken patch, on the real build directory. Names the patch, shows the
# failing hunk, leaves the tree at the base and the stamp removed.
mkdir -p "$tmp/top/patches"
cp -r "$TOP/scripts" "$TOP/configs" "$TOP/selftests" "$tmp/top/"
cat >"$tmp/top/patches/0001-broken.patch" <<'PATCH'
From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Test <test@localhost>
Subject: [PATCH] broken: context that is not in the tree

Signed-off-by: Test <test@localhost>
---
 mm/memory.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/mm/memory.c b/mm/memory.c
--- a/mm/memory.c
+++ b/mm/memory.c
@@ -1,3 +1,3 @@
-this line is not in mm/memory.c
+neither is this one
 nor this
 nor that
-- 
2.39.5
PATCH
echo 0001-broken.patch >"$tmp/top/patches/series"

# bad_conf NAME WHAT MESSAGE LINE...: configs/NAME.conf made of the
# LINEs must be refused with "configs/NAME.conf: MESSAGE", before
# anything is built.
bad_conf() {
	name=$1 what=$2 msg=$3
	shift 3
	printf '%s\n' "$@" >"$tmp/top/configs/$name.conf"
	expect_error "$what" "configs/$name.conf: $msg" \
		env ARCH="$name" BUILD_DIR="$TOP/build" "$tmp/top/scripts/cowguard" qemu
}
# A key no reader knows, and a capability selftests/expected does not.
bad_conf typo "unknown key in a description" "unknown key GUEST_THP" \
	KERNEL_ARCH=x86 GUEST_THP=yes
bad_conf caps "unknown capability in a description" "GUEST_CAPS has 'wings'" \
	KERNEL_ARCH=x86 'GUEST_CAPS="thp wings"'
# A BOOT_COMMAND (configs/um.conf) with a placeholder no reader fills,
# and one next to a QEMU.
bad_conf boot "unknown placeholder in BOOT_COMMAND" "BOOT_COMMAND has {ram}" \
	KERNEL_ARCH=um "BOOT_COMMAND='{kernel} initrd={initrd} {cmdline} {ram}'"
bad_conf both "QEMU and BOOT_COMMAND" "sets both QEMU and BOOT_COMMAND" \
	KERNEL_ARCH=um QEMU=qemu-system-x86_64 "BOOT_COMMAND='{kernel} initrd={initrd} {cmdline}'"
# Disk arguments that do not say where the image goes.
bad_conf disk "QEMU_DISK_ARGS without {disk}" "QEMU_DISK_ARGS has no {disk}" \
	KERNEL_ARCH=x86 QEMU=qemu-system-x86_64 GUEST_CAPS=disk \
	"QEMU_DISK_ARGS='-drive file=disk.img,if=virtio'"
# KERNEL_PARTS (configs/armel.conf) without the image they make, and
# with a part outside the build directory.
bad_conf parts "KERNEL_PARTS without KERNEL_IMAGE" "KERNEL_PARTS without KERNEL_IMAGE" \
	KERNEL_ARCH=arm KERNEL_PARTS=zImage
bad_conf parts "KERNEL_PARTS outside the build directory" \
	"KERNEL_PARTS '../board.dtb' is not in the build directory" \
	KERNEL_ARCH=arm KERNEL_IMAGE=zImage-dtb 'KERNEL_PARTS="zImage ../board.dtb"'
ALSO='^    -this line is not in mm/memory.c' \
expect_error "patch that does not apply: name and rejected hunk" \
	"patch 1 (0001-broken.patch) does not apply" \
	env BUILD_DIR="$TOP/build" "$tmp/top/scripts/cowguard" prepare
if [ -f "$TOP/build/src-all.applied" ] ||
   [ -n "$(git -C "$TOP/build/src-all" status --porcelain -uno)" ] ||
   [ "$(git -C "$TOP/build/src-all" rev-parse HEAD)" != \
     "$(git -C "$TOP/build/src-all" rev-parse cowguard-base)" ]; then
	n=$((n + 1))
	fail=$((fail + 1))
	echo "not ok $n tree left at the base after a failed apply"
else
	n=$((n + 1))
	pass=$((pass + 1))
	echo "ok $n tree left at the base after a failed apply"
fi

# The plan last: the count is the cases run.
echo "1..$n"
echo "pipeline-errors: $pass passed, $fail failed"
[ $fail -eq 0 ]
