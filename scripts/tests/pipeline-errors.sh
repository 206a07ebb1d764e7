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
echo "1..17"
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
expect_error "bad GUEST_MEM_MB" "bad GUEST_MEM_MB '256M'" \
	env GUEST_MEM_MB=256M "$TOP/scripts/cowguard" qemu
expect_error "GUEST_CMDLINE with a shell character" "bad GUEST_CMDLINE" \
	env GUEST_CMDLINE='A=1;reboot' "$TOP/scripts/cowguard" qemu

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

# A description with a key no reader knows, and one with a capability
# selftests/expected does not know: named, before anything is built.
printf 'KERNEL_ARCH=x86\nGUEST_THP=yes\n' >"$tmp/top/configs/typo.conf"
expect_error "unknown key in a description" \
	"configs/typo.conf: unknown key GUEST_THP" \
	env ARCH=typo BUILD_DIR="$TOP/build" "$tmp/top/scripts/cowguard" qemu
printf 'KERNEL_ARCH=x86\nGUEST_CAPS="thp wings"\n' >"$tmp/top/configs/caps.conf"
expect_error "unknown capability in a description" \
	"configs/caps.conf: GUEST_CAPS has 'wings'" \
	env ARCH=caps BUILD_DIR="$TOP/build" "$tmp/top/scripts/cowguard" qemu
# A BOOT_COMMAND (configs/um.conf) with a placeholder no reader fills,
# and one next to a QEMU.
printf '%s\n' 'KERNEL_ARCH=um' \
	"BOOT_COMMAND='{kernel} initrd={initrd} {cmdline} {ram}'" >"$tmp/top/configs/boot.conf"
expect_error "unknown placeholder in BOOT_COMMAND" \
	"configs/boot.conf: BOOT_COMMAND has {ram}" \
	env ARCH=boot BUILD_DIR="$TOP/build" "$tmp/top/scripts/cowguard" qemu
printf '%s\n' 'KERNEL_ARCH=um' 'QEMU=qemu-system-x86_64' \
	"BOOT_COMMAND='{kernel} initrd={initrd} {cmdline}'" >"$tmp/top/configs/both.conf"
expect_error "QEMU and BOOT_COMMAND" \
	"configs/both.conf: sets both QEMU and BOOT_COMMAND" \
	env ARCH=both BUILD_DIR="$TOP/build" "$tmp/top/scripts/cowguard" qemu
# Disk arguments that do not say where the image goes.
printf '%s\n' 'KERNEL_ARCH=x86' 'QEMU=qemu-system-x86_64' 'GUEST_CAPS=disk' \
	"QEMU_DISK_ARGS='-drive file=disk.img,if=virtio'" >"$tmp/top/configs/disk.conf"
expect_error "QEMU_DISK_ARGS without {disk}" \
	"configs/disk.conf: QEMU_DISK_ARGS has no {disk}" \
	env ARCH=disk BUILD_DIR="$TOP/build" "$tmp/top/scripts/cowguard" qemu
# KERNEL_PARTS (configs/armel.conf) without the image they make, and
# with a part outside the build directory.
printf '%s\n' 'KERNEL_ARCH=arm' 'KERNEL_PARTS=zImage' >"$tmp/top/configs/parts.conf"
expect_error "KERNEL_PARTS without KERNEL_IMAGE" \
	"configs/parts.conf: KERNEL_PARTS without KERNEL_IMAGE" \
	env ARCH=parts BUILD_DIR="$TOP/build" "$tmp/top/scripts/cowguard" qemu
printf '%s\n' 'KERNEL_ARCH=arm' 'KERNEL_IMAGE=zImage-dtb' \
	'KERNEL_PARTS="zImage ../board.dtb"' >"$tmp/top/configs/parts.conf"
expect_error "KERNEL_PARTS outside the build directory" \
	"configs/parts.conf: KERNEL_PARTS '../board.dtb' is not in the build directory" \
	env ARCH=parts BUILD_DIR="$TOP/build" "$tmp/top/scripts/cowguard" qemu
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

echo "pipeline-errors: $pass passed, $fail failed"
[ $fail -eq 0 ]
