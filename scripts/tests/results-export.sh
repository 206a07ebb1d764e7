#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Tests of scripts/results-export on the recorded console logs: both
# documents validate, hold every case of results.txt with its status, one
# boot test per run, one checkout per patchset; text that JSON or XML must
# escape survives; bad input is refused with exit 2 and leaves nothing.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export_=$here/../results-export
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$here/tap.sh"

# The host packages (python3-jsonschema, libxml2-utils) on a fresh machine:
# this runs before any pipeline run of make check.
"$here/../cowguard" deps >"$tmp/deps.log" 2>&1 || {
	cat "$tmp/deps.log" >&2
	echo "results-export: cannot install the host packages" >&2
	exit 1
}


# run LOG PATCHES: a run directory from a recorded console, with a run.env
# as the boot writes it (two patch files for PATCHES=all).
run() {
	d=$tmp/run-test-$2-${1%.log}
	"$here/../parse-console" test "$here/$1" "$d" >/dev/null
	{
		echo ARCH=test
		echo KERNEL_ARCH=x86_64
		echo "PATCHES=$2"
		echo DEBUG=0
		echo SUITE=
		echo KERNEL_VERSION=6.1.192
		echo 'BASE=Debian linux-source-6.1'
		echo 'BASE_ID=tarball 1 2'
		if [ "$2" = all ]; then
			echo "PATCH_FILE=$tmp/0001-a.patch"
			echo "PATCH_FILE=$tmp/0002-b.patch"
			echo "PATCHSET_HASH=$(printf '%064d' 1)"
		else
			echo PATCHSET_HASH=
		fi
		echo "CONFIG=$tmp/.config"
		echo "CONFIG_SHA256=$(printf '%064d' 2)"
		echo 'COMPILER=gcc (Debian 12.2.0-14) 12.2.0'
		echo "IMAGE=$tmp/bzImage"
		printf '%s\n' 'QEMU_COMMAND=qemu-system-x86_64 -append "a<b & \c"'
		echo BOOT_START=2026-12-03T10:00:00+00:00
		echo BOOT_SECONDS=42
	} >"$d/run.env"
	echo "$d"
}

pass_run=$(run console-pass.log all)
crash_run=$(run console-crash-in-case.log all)
fail_run=$(run console-fail.log none)
"$export_" "$tmp/out" "$pass_run" "$crash_run" "$fail_run"
ok $? "three runs export and validate (KCIDB v5.3, JUnit)"

# Every case of every results.txt, with its status, plus one boot per run.
cases=$(cat "$pass_run/results.txt" "$crash_run/results.txt" \
	"$fail_run/results.txt" | grep -c .)
tests=$(grep -c '"path": ' "$tmp/out.json")
[ "$tests" -eq $((cases + 3)) ]
ok $? "KCIDB: $tests tests for $cases cases and 3 boots"
junit=$(grep -c '<testcase ' "$tmp/out.xml")
[ "$junit" -eq $((cases + 3)) ]
ok $? "JUnit: $junit testcases for $cases cases and 3 boots"
grep -q '"path": "cowguard.swap_exclusive.base_pages.vmsplice_ro_swapout", "status": "FAIL"' \
	"$tmp/out.json" &&
	grep -q '"path": "cowguard.guest_finished_the_tests", "status": "FAIL"' "$tmp/out.json" &&
	grep -q '"status": "SKIP",' "$tmp/out.json"
ok $? "KCIDB: a case's status is its results.txt status; names become paths"
[ "$(grep -c '{"id": "cowguard:linux-6.1.192/[^"]*", "origin"' "$tmp/out.json")" -eq 2 ]
ok $? "KCIDB: one checkout per patchset (all, none)"
grep -qF '"comment": "qemu-system-x86_64 -append \"a<b & \\c\""' "$tmp/out.json" &&
	grep -qF 'value="qemu-system-x86_64 -append &quot;a&lt;b &amp; \c&quot;"' "$tmp/out.xml"
ok $? "quotes, backslashes, < and & escaped in JSON and XML"

# Bad input: exit 2, a clear error, no documents.
rm -f "$tmp/out.json" "$tmp/out.xml"
mkdir "$tmp/empty"
"$export_" "$tmp/out" "$pass_run" "$tmp/empty" 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "no run.env" "$tmp/err" && [ ! -e "$tmp/out.json" ]
ok $? "a directory without run.env: exit 2, nothing written"
"$export_" "$tmp/out" 2>"$tmp/err"
[ $? -eq 2 ] && grep -q usage "$tmp/err"
ok $? "no run directory: usage, exit 2"
# A document that does not validate is not kept.
sed -i 's/^KERNEL_ARCH=.*/KERNEL_ARCH=Not-Valid/' "$fail_run/run.env"
"$export_" "$tmp/out" "$fail_run" 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "does not validate" "$tmp/err" && [ ! -e "$tmp/out.json" ]
ok $? "an architecture KCIDB refuses: exit 2, nothing kept"

echo "results-export: $((n - fail)) passed, $fail failed"
[ $fail -eq 0 ]
