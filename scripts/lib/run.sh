# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# The run directory that scripts/cowguard qemu leaves for each run, and
# the readers of what is in it. RUN_BUILD is the build directory (BUILD_DIR,
# default build/); BASE and KERNEL_SRC in the environment say where in it
# (run_build).
#
#   console.log   the guest's console
#   results.txt   "STATUS  case[  (reason)]" per case (scripts/parse-console)
#   results.tap   the same as TAP
#   run.env       what the run was: "NAME=value" lines (write_run_env in
#                 scripts/lib/guest.sh); PATCH_FILE repeats, in order
#   results.json  the run in KCIDB's format, results.xml in JUnit's
#                 (scripts/results-export)

CONF_TOP=${CONF_TOP:-$TOP}
. "$CONF_TOP/scripts/lib/base.sh"

# ext_build BUILD: where the runs of KERNEL_SRC (from the environment)
# are built: a directory of their own under BUILD per tree, so that its
# base, objects and runs never mix with the Debian tree's; BUILD itself
# without KERNEL_SRC.
ext_build() {
	if [ -n "${KERNEL_SRC:-}" ]; then
		printf '%s/ext-%s\n' "$1" "$(printf '%s' \
			"$(cd "$KERNEL_SRC" 2>/dev/null && pwd || printf '%s' "$KERNEL_SRC")" |
			cksum | cut -d' ' -f1)"
	else
		printf '%s\n' "$1"
	fi
}

# run_build BUILD: the build directory of the kernels of BASE (base_build)
# and KERNEL_SRC (ext_build). scripts/cowguard builds there.
run_build() {
	ext_build "$(base_build "$1")"
}

# run_dir ARCH PATCHES [SUITE]: DEBUG=1 in the environment (the debug
# kernels) adds "-debug".
run_dir() {
	printf '%s/run-%s-%s%s%s\n' "$(run_build "$RUN_BUILD")" "$1" "$2" \
		"${DEBUG:+-debug}" "${3:+-$3}"
}

# run_counter DIR NAME: a cowguard.ko counter as the guest printed it after
# the last selftest, or nothing.
run_counter() {
	tr -d '\r' <"$1/console.log" 2>/dev/null |
		sed -n "s/^# counter $2 \([0-9]*\)\$/\1/p" | tail -n 1
}

# run_env DIR NAME: the value of NAME in DIR/run.env, one line per
# occurrence (PATCH_FILE), nothing when absent.
run_env() {
	sed -n "s/^$2=//p" "$1/run.env" 2>/dev/null
}
