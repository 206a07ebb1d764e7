#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Tests of the LAVA job's test monitor (scripts/lib/lava.sh) on the
# recorded consoles, without a LAVA: its pattern and fixupdict, searched
# as LAVA's monitor searches them (pexpect: the earliest match of the end
# string or the pattern in whatever part of the console has arrived, the
# buffer cut after each match), must record every result line of the
# run's results.tap with its name and result, whatever the size of the
# pieces the console arrives in; and make lava refuses bad input before
# it builds anything.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$here/../..
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$here/tap.sh"

die() {
	echo "lava: $*" >&2
	exit 1
}
stage() { :; }
. "$top/scripts/lib/guest.sh"
. "$top/scripts/lib/lava.sh"


# The host packages (lava-common, with python3-yaml) on a fresh machine.
"$top/scripts/cowguard" deps >"$tmp/deps.log" 2>&1 || {
	cat "$tmp/deps.log" >&2
	die "cannot install the host packages"
}

# monitor CONSOLE CHUNK: what LAVA's monitor records, "<result> <case>",
# from the console arriving CHUNK characters at a time with the serial
# line's CR LF (CHUNK 0: all at once).
monitor() {
	/usr/bin/python3 - "$LAVA_PATTERN" "$LAVA_FIXUPDICT" "$END_MARKER" "$1" "$2" <<'EOF'
import re
import sys
import yaml

pattern = re.compile(sys.argv[1], re.DOTALL)
fixup = yaml.safe_load(sys.argv[2])
end = re.compile(re.escape(sys.argv[3]), re.DOTALL)
data = open(sys.argv[4]).read().replace("\n", "\r\n")
chunk = int(sys.argv[5]) or len(data)
buf, started, done = "", False, False
for i in range(0, len(data), chunk):
    buf += data[i:i + chunk]
    if not started:
        at = buf.find("KTAP version 1")
        if at < 0:
            continue
        buf, started = buf[at + len("KTAP version 1"):], True
    while not done:
        m, e = pattern.search(buf), end.search(buf)
        if e and (not m or e.start() <= m.start()):
            done = True
        elif m:
            print(fixup[m.group("result")], m.group("test_case_id").strip())
            buf = buf[m.end():]
        else:
            break
    if done:
        break
EOF
}

END_MARKER='cowguard: end of tests'
for log in "$here"/console-*.log; do
	name=$(basename "$log")
	"$top/scripts/parse-console" test "$log" "$tmp/$name" >/dev/null 2>&1
	lava_tap_cases "$tmp/$name/results.tap" >"$tmp/$name/tap-cases"
	bad=
	for chunk in 0 1 7 64; do
		monitor "$log" "$chunk" >"$tmp/$name/lava-$chunk" ||
			bad="$bad $chunk(error)"
		cmp -s "$tmp/$name/tap-cases" "$tmp/$name/lava-$chunk" ||
			bad="$bad $chunk"
	done
	[ -z "$bad" ] || diff -u "$tmp/$name/tap-cases" "$tmp/$name/lava-1" | sed 's/^/# /'
	ok "$([ -z "$bad" ]; echo $?)" "$name: the monitor records results.tap's $(wc -l <"$tmp/$name/tap-cases") result lines${bad:+ (differ in pieces of:$bad)}"
done

# What the cases say on the vm-style console, not only that both agree.
grep -qx 'skip swap_exclusive.thp.vmsplice_ro_swapout' "$tmp/console-vm.log/lava-7" &&
	grep -qx 'pass vm_mremap_test: case 1' "$tmp/console-vm.log/lava-7" &&
	grep -qx 'fail vm_mremap_test: 2GB mremap - Source PUD-aligned, Destination PTE-aligned' \
		"$tmp/console-vm.log/lava-7" &&
	grep -qx 'fail vm_mremap_test' "$tmp/console-vm.log/lava-7" &&
	grep -qx 'skip vm_soft_dirty' "$tmp/console-vm.log/lava-7" &&
	[ "$(grep -c 'vm_madv_populate: MADV_POPULATE_READ$' "$tmp/console-vm.log/lava-7")" = 2 ]
ok $? "console-vm.log: skip, XFAIL, failed case, failed program, repeated names"

# Bad input: refused before anything is built (in a build directory of
# its own, which stays empty), with the reason.
refused() {
	want=$1
	shift
	env BUILD_DIR="$tmp/build" "$@" "$top/scripts/cowguard" lava >"$tmp/out" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && grep -q "$want" "$tmp/out" &&
		[ -z "$(ls -A "$tmp/build" 2>/dev/null)" ] || {
		sed 's/^/# /' "$tmp/out"
		return 1
	}
}
refused "bad LAVA_URL" ARCH=x86_64 LAVA_URL='file:///tmp/a b'
ok $? "LAVA_URL with a space: refused"
refused "bad LAVA_RUN" ARCH=x86_64 LAVA_RUN=yes
ok $? "LAVA_RUN=yes: refused"
refused "compile-only description" ARCH=hexagon
ok $? "ARCH without a QEMU: refused"
refused "does not boot under QEMU" ARCH=um
ok $? "ARCH with a BOOT_COMMAND (not QEMU): refused"
env BUILD_DIR="$tmp/build" ARCH=um "$top/scripts/lava" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "um.conf does not boot under QEMU" "$tmp/out" &&
	[ -z "$(ls -A "$tmp/build" 2>/dev/null)" ]
ok $? "make lava ARCH=um: refused before anything is built"
refused "PATCHES" ARCH=x86_64 PATCHES=bogus
ok $? "PATCHES=bogus: refused"
ARCH=all PATCHES=none,bogus "$top/scripts/lava" >"$tmp/out" 2>&1
[ $? -eq 2 ] && grep -q "bogus" "$tmp/out"
ok $? "make lava PATCHES=none,bogus: refused before the first build"

echo "lava: $((n - fail)) passed, $fail failed"
[ "$fail" -eq 0 ]
