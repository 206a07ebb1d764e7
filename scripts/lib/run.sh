# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# The run directory that scripts/cowguard qemu leaves for each run, and
# the readers of what is in it. RUN_BUILD is the build directory.
#
#   console.log   the guest's console
#   results.txt   "STATUS  case[  (reason)]" per case (scripts/parse-console)
#   results.tap   the same as TAP

# run_dir ARCH PATCHES [SUITE]: DEBUG=1 in the environment (the debug
# kernels) adds "-debug".
run_dir() {
	printf '%s/run-%s-%s%s%s\n' "$RUN_BUILD" "$1" "$2" "${DEBUG:+-debug}" "${3:+-$3}"
}

# run_counter DIR NAME: a cowguard.ko counter as the guest printed it after
# the last selftest, or nothing.
run_counter() {
	tr -d '\r' <"$1/console.log" 2>/dev/null |
		sed -n "s/^# counter $2 \([0-9]*\)\$/\1/p" | tail -n 1
}
