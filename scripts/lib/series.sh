# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# The PATCHES levels: the one place that knows what each one is. The
# series is the one of the base (scripts/lib/base.sh): SERIES_DIR, which
# base_load sets, is its directory (patches/ for 6.1).
#
#   none           the base tree (with patches/stable, see below)
#   counters       the series up to its "# PATCHES=counters stops here"
#                  line (the event counters): the measured baseline
#   all            the whole series
#   mutant-<name>  the series and patches/mutants/<name>.patch, a
#                  deliberately broken kernel some selftest must catch

SERIES_COUNTERS_STOP='# PATCHES=counters stops here'

# Every level, none included, starts from the base with patches/stable
# applied (scripts/lib/tree.sh): fixes mainline made that 6.1.y lacks and
# that a selftest trips over on some architecture, outside what the
# series is about. Each stays as 6.1.y should have it, for stable@.

# series_stable_patches: the patch files of patches/stable/series, in
# order, relative to the series' stable/.
series_stable_patches() {
	[ -f "$SERIES_DIR/stable/series" ] || return 0
	sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$SERIES_DIR/stable/series"
}

# series_level_ok LEVEL: a level that exists (the reason in LIB_ERROR
# otherwise).
series_level_ok() {
	case $1 in
	all | none) return 0 ;;
	counters)
		series_has_counters && return 0
		LIB_ERROR="PATCHES=counters: ${SERIES_DIR#"$SERIES_TOP"/}/series has no '$SERIES_COUNTERS_STOP' line"
		return 1 ;;
	mutant-*[!a-z0-9-]* | mutant-) ;;
	mutant-*)
		[ -f "$SERIES_DIR/mutants/${1#mutant-}.patch" ] && return 0
		LIB_ERROR="no ${SERIES_DIR#"$SERIES_TOP"/}/mutants/${1#mutant-}.patch for PATCHES=$1"
		return 1 ;;
	esac
	LIB_ERROR="bad PATCHES '$1' (all, none, counters, mutant-<name>)"
	return 1
}

# series_is_base LEVEL: a kernel without the series' fixes.
series_is_base() {
	case $1 in none | counters) return 0 ;; esac
	return 1
}

# series_applied LEVEL: some of the series is applied (and with it the
# options of the series' series.config).
series_applied() {
	[ "$1" != none ]
}

# series_has_counters: the series begins with the event counters, up to
# its "# PATCHES=counters stops here" line (6.1's patch 1).
series_has_counters() {
	grep -qx "$SERIES_COUNTERS_STOP" "$SERIES_DIR/series" 2>/dev/null
}

# series_counts LEVEL: the level's kernel has the event counters: the
# series' series.config turns them on (6.1's first patch, 6.12's last),
# and every level but none applies series.config, where every option
# must reach the .config (scripts/lib/kbuild.sh).
series_counts() {
	series_applied "$1" &&
		grep -qx 'CONFIG_DEBUG_VM_ANON_EVENTS=y' "$SERIES_DIR/series.config" 2>/dev/null
}

# series_words LEVEL MARKER BASE: the words of selftests/expected that
# name this kernel: MARKER is yes when the base has the swap PTE
# exclusive marker on its architecture, BASE the base's version. Each
# word also comes as "<BASE>:<word>", and BASE itself is one: a kernel of
# one base only.
series_words() {
	case $1 in
	mutant-*) w="mutant:${1#mutant-}" ;;
	*)
		w=$1
		if series_is_base "$1"; then
			w="$w base"
			[ "$2" = yes ] || w="$w nomarker"
		fi ;;
	esac
	echo "$w $3 $(printf '%s\n' $w | sed "s/^/$3:/" | paste -sd' ' -)"
}

# series_patches LEVEL: the patch files of the level, in order, relative
# to the series' directory.
series_patches() {
	case $1 in
	none) ;;
	counters) sed "/^$SERIES_COUNTERS_STOP\$/q" "$SERIES_DIR/series" ;;
	mutant-*) cat "$SERIES_DIR/series"
		echo "mutants/${1#mutant-}.patch" ;;
	*) cat "$SERIES_DIR/series" ;;
	esac | sed -e 's/#.*//' -e '/^[[:space:]]*$/d'
}

# series_patchset_hash LEVEL: KCIDB's hash of the level's patches, the
# sha256 over the sha256 lines of its patch files in order; nothing for
# none.
series_patchset_hash() {
	_list=$(series_patches "$1")
	[ -n "$_list" ] || return 0
	printf '%s\n' "$_list" | sed "s|^|$SERIES_DIR/|" | tr '\n' '\0' |
		xargs -0 sha256sum | cut -c-64 | sha256sum | cut -c-64
}

# series_patch_target FILE: "module" when the patch changes cowguard.ko's
# module/ only (a mutant of the module: applied to the module's copy, not
# to the kernel tree), "kernel" when it changes no file there; a patch
# that does both is an error (in LIB_ERROR).
series_patch_target() {
	files=$(sed -n 's|^diff --git a/\([^ ]*\) .*|\1|p' "$1")
	mod=$(printf '%s\n' "$files" | grep -c '^module/' || true)
	if [ "$mod" -eq 0 ]; then
		echo kernel
	elif [ "$mod" -eq "$(printf '%s\n' "$files" | grep -c .)" ]; then
		echo module
	else
		LIB_ERROR="${1##*/} changes both module/ and the kernel: split it"
		return 1
	fi
}
