#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Tests of scripts/parse-console on recorded console logs: what counts as a
# pass, a failure, a skip, and that a kernel splat or an unfinished guest
# fails a run whose tests all passed, and that a crash fails the case it
# happened in.
set -u
here=$(cd "$(dirname "$0")" && pwd)
parse=$here/../parse-console
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0

# expect LOG EXIT_CODE LAST_LINE [RESULTS_LINE...]
expect() {
	log=$1 code=$2 last=$3
	shift 3
	out=$("$parse" test "$here/$log" "$tmp/$log.d")
	rc=$?
	ok=1
	[ "$rc" -eq "$code" ] || { echo "# $log: exit $rc, expected $code"; ok=0; }
	got=$(printf '%s\n' "$out" | tail -n 1)
	[ "$got" = "$last" ] || { echo "# $log: last line '$got', expected '$last'"; ok=0; }
	for want in "$@"; do
		grep -qF -- "$want" "$tmp/$log.d/results.txt" ||
			{ echo "# $log: results.txt lacks '$want'"; ok=0; }
	done
	if [ $ok -eq 1 ]; then
		pass=$((pass + 1))
		echo "ok $((pass + fail)) $log"
	else
		fail=$((fail + 1))
		echo "not ok $((pass + fail)) $log"
	fi
}

echo "TAP version 13"
echo "1..8"
expect console-pass.log 0 "test: 3 passed, 0 failed, 1 skipped" \
	"PASS  swap_exclusive.base_pages.vmsplice_ro_swapout" \
	"SKIP  swap_exclusive.thp.vmsplice_ro_swapout  (SKIP no THP)" \
	"PASS  noharness"
expect console-warning.log 1 "test: 3 passed, 1 failed, 1 skipped" \
	"FAIL  kernel log free of splats"
# DEBUG=1 kernels: a bug finder's report is a verdict of its own.
expect console-finders.log 1 "test: 3 passed, 3 failed, 1 skipped" \
	"FAIL  kernel log free of splats" \
	"FAIL  kernel log free of lockdep reports  (1 report line(s))" \
	"FAIL  kernel log free of KASAN reports  (1 report line(s))"
expect console-fail.log 1 "test: 2 passed, 1 failed, 1 skipped" \
	"FAIL  swap_exclusive.base_pages.vmsplice_ro_swapout"
expect console-unfinished.log 1 "test: 3 passed, 1 failed, 1 skipped" \
	"FAIL  guest finished the tests"
expect console-timeout.log 1 "test: 1 passed, 1 failed, 0 skipped" \
	"FAIL  race  (TIMEOUT after 5s)"
expect console-crash-in-case.log 1 "test: 1 passed, 3 failed, 0 skipped" \
	"FAIL  swap_exclusive.base_pages.fork_after_swapout  (no result: the guest crashed or hung in this case)" \
	"FAIL  guest finished the tests" "FAIL  kernel log free of splats"

# results.tap keeps the guest's KTAP and drops kernel messages.
if grep -q 'zram0: detected' "$tmp/console-pass.log.d/results.tap" ||
   ! grep -q '^KTAP version 1' "$tmp/console-pass.log.d/results.tap"; then
	fail=$((fail + 1))
	echo "not ok 8 results.tap holds the KTAP without kernel messages"
else
	pass=$((pass + 1))
	echo "ok 8 results.tap holds the KTAP without kernel messages"
fi
echo "parse-console: $pass passed, $fail failed"
[ $fail -eq 0 ]
