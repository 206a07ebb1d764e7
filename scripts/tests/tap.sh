# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# The tool tests' TAP result line, sourced by scripts/tests/*.sh that
# count with it: ok STATUS DESCRIPTION, with n and fail the counters.

n=0
fail=0

ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n $2"
	else
		fail=$((fail + 1))
		echo "not ok $n $2"
	fi
}
