#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# A hung guest and Ctrl-C: both end the run with one clear line and a
# non-zero exit, and leave no QEMU behind. Needs a built x86_64 kernel
# (run after "make qemu"), so nothing is compiled here.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
pass=0
fail=0

no_qemu_left() {
	! pgrep -f "qemu-system.*$TOP/build/run-x86_64-all" >/dev/null
}

result() {
	if [ "$1" -eq 0 ]; then
		pass=$((pass + 1))
		echo "ok $2 $3"
	else
		fail=$((fail + 1))
		echo "not ok $2 $3"
		tail -n 5 "$out" | sed 's/^/# /'
	fi
}

echo "TAP version 13"
echo "1..2"

# 1. Hung guest: a 1 s host timeout stops QEMU long before the tests end.
ARCH=x86_64 QEMU_TIMEOUT=1 "$TOP/scripts/cowguard" qemu >"$out" 2>&1
rc=$?
grep -q '^cowguard: error: guest timed out after 1s' "$out" && [ $rc -ne 0 ] &&
	tail -n 1 "$out" | grep -q '^x86_64: .* [1-9][0-9]* failed' && no_qemu_left
result $? 1 "hung guest: host timeout stops QEMU, run fails"

# 2. Ctrl-C while the guest runs: SIGINT to the whole process group, as a
# terminal sends it. A background job of a script starts with SIGINT
# ignored, which a shell cannot undo: perl restores the default first.
setsid perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or die' -- \
	env ARCH=x86_64 "$TOP/scripts/cowguard" qemu >"$out" 2>&1 &
pid=$!
i=0
while ! grep -q '] boot ' "$out" && [ $i -lt 2400 ]; do
	sleep 0.05
	i=$((i + 1))
done
# The guest needs well over a second to boot: interrupt it mid-way.
sleep 0.5
kill -INT "-$pid"
wait "$pid"
rc=$?
sleep 1
grep -q '^cowguard: interrupted' "$out" && [ $rc -eq 130 ] && no_qemu_left
result $? 2 "Ctrl-C during boot: exit 130, QEMU stopped"

echo "pipeline-interrupt: $pass passed, $fail failed"
[ $fail -eq 0 ]
