# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# configs/base/<version>.conf, the one reader: the kernel a series is
# for. BASE in the environment names it (default BASE_DEFAULT); it is
# Debian's linux-source-<version>, /usr/src/linux-source-<version>.tar.xz
# with a top directory of that name, or a KERNEL_SRC tree of the same
# <version>.y. base_load sets, defaults first, then what the file says:
#
#   BASE_VERSION  the base's name and version: 6.1, 6.12
#   BASE_SERIES   the directory of its series, relative to the checkout:
#                 series, the cover letter, and optionally stable/ (fixes
#                 the base lacks, applied to every level) and mutants/
#   SERIES_DIR    the same, absolute (scripts/lib/series.sh reads it)
#   BASE_CMDLINE  kernel command line words for every guest of this base,
#                 after the description's KERNEL_CMDLINE
#   BASE_EVERY_ARCH_MARKED  yes: every architecture of this base has the
#                 swap PTE exclusive marker; no: configs/<arch>.conf's
#                 BASE_MARKER says which do (base_marker)
#
# A base other than the default builds in build directory/base-<version>,
# where its trees, objects and runs keep the default base's names.

BASE_DEFAULT=6.1
BASE_KEYS='BASE_SERIES BASE_CMDLINE BASE_EVERY_ARCH_MARKED'

# base_names: every base, sorted by version.
base_names() {
	(cd "$CONF_TOP/configs/base" && ls -- *.conf) | sed 's/\.conf$//' | sort -V
}

# base_load [VERSION]: the variables of configs/base/VERSION.conf (BASE,
# else the default), LIB_ERROR and 1 on an unknown base or a bad file.
# Needs scripts/lib/conf.sh.
base_load() {
	BASE_VERSION=${1:-${BASE:-$BASE_DEFAULT}}
	case $BASE_VERSION in
	*[!0-9.]* | .* | *. | *..*) LIB_ERROR="bad BASE '$BASE_VERSION'"; return 1 ;;
	esac
	_base=$CONF_TOP/configs/base/$BASE_VERSION.conf
	if [ ! -f "$_base" ]; then
		LIB_ERROR="unknown BASE '$BASE_VERSION' (known: $(base_names | paste -sd' ' -))"
		return 1
	fi
	_unknown=$(conf_unknown_keys "$BASE_KEYS" "$_base")
	if [ -n "$_unknown" ]; then
		LIB_ERROR="configs/base/$BASE_VERSION.conf: unknown key $(echo $_unknown) (known: $BASE_KEYS)"
		return 1
	fi
	BASE_SERIES= BASE_CMDLINE= BASE_EVERY_ARCH_MARKED=no
	# shellcheck source=/dev/null
	. "$_base"
	case $BASE_EVERY_ARCH_MARKED in
	yes | no) ;;
	*) LIB_ERROR="configs/base/$BASE_VERSION.conf: BASE_EVERY_ARCH_MARKED '$BASE_EVERY_ARCH_MARKED' is not yes or no"
		return 1 ;;
	esac
	[ -d "$CONF_TOP/$BASE_SERIES" ] || {
		LIB_ERROR="configs/base/$BASE_VERSION.conf: BASE_SERIES '$BASE_SERIES' is not a directory"
		return 1; }
	SERIES_DIR=$CONF_TOP/$BASE_SERIES
	return 0
}

# base_marker: yes when the base (base_load) has the swap PTE exclusive
# marker on the architecture (conf_load).
base_marker() {
	if [ "$BASE_EVERY_ARCH_MARKED" = yes ]; then
		echo yes
	else
		echo "$BASE_MARKER"
	fi
}

# base_package VERSION: Debian's package of that base's source.
base_package() {
	printf 'linux-source-%s\n' "$1"
}

# base_build BUILD: where a base's trees, objects and runs are, for the
# base in BASE (the default without it).
base_build() {
	case ${BASE:-$BASE_DEFAULT} in
	"$BASE_DEFAULT") printf '%s\n' "$1" ;;
	*) printf '%s/base-%s\n' "$1" "$BASE" ;;
	esac
}

# base_list LIST: the file of selftests/ for LIST (a test list's name): a
# base may replace a list with selftests/<version>/LIST (its own tree's
# selftests, say).
base_list() {
	if [ -f "$CONF_TOP/selftests/${BASE:-$BASE_DEFAULT}/$1" ]; then
		printf '%s/%s\n' "${BASE:-$BASE_DEFAULT}" "$1"
	else
		printf '%s\n' "$1"
	fi
}
