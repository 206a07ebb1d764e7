# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# scripts/cowguard's kbuild part: the kernel's configuration (tinyconfig
# and the fragments), the kernel and cowguard.ko, and the compile
# matrix's targets, all through ccache. Sourced by scripts/cowguard; uses
# its globals (TREE, OBJ, ARCH and the description's variables).

# ccache: paths under the build directory are hashed relative to it, so a
# fresh clone (CI) hits what an earlier clone compiled. Depend mode takes
# the dependencies from the compiler's -MMD output instead of running the
# preprocessor a second time on every miss (about a fifth of a cold
# build); its results are interchangeable with direct mode's.
export CCACHE_BASEDIR CCACHE_NOHASHDIR=1 CCACHE_DEPEND=1
CCACHE_BASEDIR=$BUILD

# LLVM=-<version> in configs/<ARCH>.conf builds with clang and the LLVM
# tools of that version (the only compiler here for some architectures).
kmake() {
	if [ -n "$LLVM" ]; then
		set -- LLVM="$LLVM" CC="ccache clang$LLVM" "$@"
	else
		set -- CC="ccache ${CROSS_COMPILE}gcc" "$@"
	fi
	make -C "$TREE" O="$OBJ" ARCH="$KERNEL_ARCH" \
		CROSS_COMPILE="$CROSS_COMPILE" HOSTCC="ccache gcc" \
		KBUILD_BUILD_TIMESTAMP='Thu Jan  1 00:00:00 UTC 2026' \
		KBUILD_BUILD_USER=cowguard KBUILD_BUILD_HOST=cowguard \
		-j"$JOBS" "$@"
}

# --- kernel ---------------------------------------------------------------

# list_configs: the Kconfig fragments of the architecture's own test
# lists (KCONFIG_LISTS), selftests/<list>.config where one exists,
# relative to selftests/.
list_configs() {
	for l in $KCONFIG_LISTS; do
		[ ! -f "$TOP/selftests/${l%.list}.config" ] || echo "${l%.list}.config"
	done
}

# Kconfig runs five times for one .config (tinyconfig is three of them),
# about half a minute per architecture, and a clean clone (CI) starts with
# an empty build directory. A finished .config depends only on the
# fragment, the tree's Kconfig files and the compiler, which Kconfig asks
# what it supports: keep it under a key of the three in CONFIG_CACHE (next
# to ccache's cache) and copy it into a new object directory instead of
# running Kconfig again. COWGUARD_CONFIG_CACHE=none turns it off.
CONFIG_CACHE=${COWGUARD_CONFIG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cowguard/config}

config_key() {
	{
		cat "$frag.new"
		echo "ARCH=$KERNEL_ARCH CROSS_COMPILE=$CROSS_COMPILE LLVM=$LLVM"
		if [ -n "$LLVM" ]; then
			"clang$LLVM" --version
		else
			"${CROSS_COMPILE}gcc" --version
		fi 2>&1 | head -n 1
		(cd "$TREE" && sed -n '1,5p' Makefile &&
			find . -name 'Kconfig*' -o -name 'tiny.config' |
			LC_ALL=C sort | xargs cat)
	} | sha1sum | cut -c1-40
}

do_config() {
	mkdir -p "$OBJ"
	frag=$OBJ/cowguard.fragment
	{
		cat "$TOP/configs/common.config"
		# Options the series adds do not exist in the base tree.
		! series_applied "$PATCHES" || [ ! -f "$SERIES_DIR/series.config" ] ||
			cat "$SERIES_DIR/series.config"
		printf '# configs/%s.conf\n%s\n' "$ARCH" "$KCONFIG"
		# What the architecture's test lists need of the kernel
		# (selftests/<list>.config): a SUITE does not change it.
		for f in $(list_configs); do
			printf '# selftests/%s\n' "$f"
			cat "$TOP/selftests/$f"
		done
		! series_is_base "$PATCHES" || [ -z "$KCONFIG_BASE" ] ||
			printf '# configs/%s.conf, KCONFIG_BASE\n%s\n' "$ARCH" "$KCONFIG_BASE"
		if [ -n "$DEBUG" ]; then
			cat "$TOP/configs/debug.config"
			printf '# configs/%s.conf, KCONFIG_DEBUG\n%s\n' "$ARCH" "$KCONFIG_DEBUG"
		fi
	} >"$frag.new"
	if [ -f "$OBJ/.config" ] && cmp -s "$frag" "$frag.new"; then
		rm "$frag.new"
		stage config "$ARCH: unchanged"
		return 0
	fi
	# The fragment is saved only once the .config made from it is
	# complete: an interrupted run must not leave a match behind.
	rm -f "$frag"
	stage config "$ARCH: tinyconfig + configs/common.config$(! series_applied "$PATCHES" ||
		[ ! -f "$SERIES_DIR/series.config" ] || echo " + $BASE_SERIES/series.config") + configs/$ARCH.conf$(for f in $(list_configs); do
		printf ' + selftests/%s' "$f"; done)$([ -z "$DEBUG" ] ||
		echo ' + configs/debug.config')"
	key=
	[ "$CONFIG_CACHE" = none ] || key=$(config_key)
	if [ -n "$key" ] && [ -f "$CONFIG_CACHE/$key" ]; then
		cp "$CONFIG_CACHE/$key" "$OBJ/.config"
		stage config "$ARCH: the same .config as before ($CONFIG_CACHE/$key)"
	else
		logged "$OBJ/config.log" kmake tinyconfig
		logged "$OBJ/config.log" "$TREE/scripts/kconfig/merge_config.sh" -m \
			-O "$OBJ" "$OBJ/.config" "$frag.new"
		logged "$OBJ/config.log" kmake olddefconfig
	fi
	bad=
	# The last setting of an option wins, as in merge_config.sh: an
	# architecture can turn off what configs/common.config turns on.
	for opt in $(sed -n -e 's/^\(CONFIG_[A-Za-z0-9_]*\)=.*/&/p' \
		-e 's/^# \(CONFIG_[A-Za-z0-9_]*\) is not set$/\1=n/p' "$frag.new" |
		awk -F= '{ last[$1] = $0; order[NR] = $1 }
			END { for (i = 1; i <= NR; i++)
				if (last[order[i]] != "" && !done[order[i]]++)
					print last[order[i]] }'); do
		case $opt in
		*=n) grep -q "^${opt%=n}=" "$OBJ/.config" && bad="$bad ${opt%=n}" ;;
		*) grep -qx "$opt" "$OBJ/.config" || bad="$bad ${opt%%=*}" ;;
		esac
	done
	if [ -n "$bad" ]; then
		rm -f "$OBJ/.config"
		die "$ARCH: Kconfig did not take:$bad (unmet dependencies?)"
	fi
	if [ -n "$key" ] && [ ! -f "$CONFIG_CACHE/$key" ] &&
		mkdir -p "$CONFIG_CACHE" &&
		cp "$OBJ/.config" "$CONFIG_CACHE/$key.$$"; then
		mv "$CONFIG_CACHE/$key.$$" "$CONFIG_CACHE/$key"
	fi
	mv "$frag.new" "$frag"
}

do_build() {
	stage build "kernel $ARCH ($(tree_version "$TREE"), PATCHES=$PATCHES) in $OBJ"
	logged "$OBJ/build.log" kmake all
	# ccache cannot see what .incbin pulls in: the boot wrapper's piggy.o
	# embeds the compressed kernel, and a cached piggy.o whose piggy.S
	# text matched (same sizes) carried an older kernel into the image.
	# Rebuild it, and only it, without ccache.
	find "$OBJ/arch" -path '*/boot/*' -name 'piggy*.o' -exec rm -f {} +
	if ! (export CCACHE_DISABLE=1
		logged "$OBJ/build-image.log" kmake all); then
		SAID=1
		exit 1
	fi
	if [ -n "$KERNEL_PARTS" ]; then
		# The image the guest boots is made of what kbuild built (an
		# ARM zImage and its appended device tree): anew every time,
		# never from a half-written file.
		parts=
		for p in $KERNEL_PARTS; do
			[ -f "$OBJ/$p" ] || die "no $p after the build (KERNEL_PARTS)"
			parts="$parts $OBJ/$p"
		done
		# shellcheck disable=SC2086
		cat $parts >"$OBJ/$KERNEL_IMAGE.new" &&
			mv "$OBJ/$KERNEL_IMAGE.new" "$OBJ/$KERNEL_IMAGE" ||
			die "cannot make $KERNEL_IMAGE from$parts"
	fi
	[ -f "$OBJ/$KERNEL_IMAGE" ] || die "no $KERNEL_IMAGE after the build"

	MODULE=
	if [ -f "$TOP/Kbuild" ]; then
		stage build "cowguard.ko"
		copy_module
		logged "$OBJ/module.log" kmake M="$ext" W=1 modules
		MODULE=$ext/module/cowguard.ko
		[ -f "$MODULE" ] || die "no cowguard.ko after the module build"
	fi

	stage build "selftests and init ($ARCH, static)"
	# The kernel's exported headers, which the tree's own selftests need
	# from 6.3 on (tools/testing/selftests/mm; UML exports none).
	[ ! -f "$TREE/tools/testing/selftests/mm/Makefile" ] ||
		logged "$OBJ/headers.log" kmake headers
	logged "$OBJ/selftests.log" make -C "$TOP/selftests" KSRC="$TREE" \
		OUT="$OBJ/selftests" CROSS_COMPILE="$CROSS_COMPILE" \
		LISTS="$SELFTEST_LISTS" GUEST_CFLAGS="$GUEST_CFLAGS" \
		KHDR="$OBJ/usr/include"
	# What this guest cannot run is a SKIP with the reason from
	# selftests/expected, not a failure of a program that cannot tell.
	"$TOP/scripts/expect" skips "$ARCH" "$PATCHES" \
		<"$OBJ/selftests/list" >"$OBJ/selftests/list.new" ||
		die "scripts/expect skips failed for $ARCH PATCHES=$PATCHES"
	mv "$OBJ/selftests/list.new" "$OBJ/selftests/list"
	# shellcheck disable=SC2086
	logged "$OBJ/selftests.log" "${CROSS_COMPILE}gcc" -O2 -Wall -static \
		$GUEST_CFLAGS -o "$OBJ/cowguard-init" "$TOP/scripts/guest/init.c"
}

# A copy keeps kbuild's output out of the source checkout.
copy_module() {
	ext=$OBJ/cowguard-ext
	mkdir -p "$ext"
	rsync -a --delete --exclude='*.o' --exclude='*.ko' \
		--exclude='.*.cmd' --exclude='*.mod*' --exclude=Module.symvers \
		--exclude=modules.order \
		"$TOP/Kbuild" "$TOP/module" "$ext/"
	# A mutant of the module itself (series_patch_target) patches the
	# copy; rsync puts the pristine file back for the next build.
	for p in $(series_patches "$PATCHES"); do
		target=$(series_patch_target "$SERIES_DIR/$p") || die "$LIB_ERROR"
		[ "$target" = module ] || continue
		patch -s -p1 -d "$ext" <"$SERIES_DIR/$p" ||
			die "$BASE_SERIES/$p does not apply to module/"
	done
}

do_compile() {
	logged "$OBJ/compile.log" kmake prepare
	if [ -z "$COMPILE_TARGETS" ]; then
		# The arch directory prepare generated headers in is kbuild's
		# source architecture (x86 for i386, sparc for sparc64).
		srcarch=$(cd "$OBJ/arch" && ls -d -- */include/generated |
			sed 's,/.*,,')
		case $srcarch in
		'' | *[!a-z0-9_]*)
			die "configs/$ARCH.conf: cannot tell the arch directory ($srcarch): set COMPILE_TARGETS" ;;
		esac
		COMPILE_TARGETS="mm/ arch/$srcarch/mm/"
	fi
	for t in $COMPILE_TARGETS; do
		[ -e "$TREE/$t" ] ||
			die "configs/$ARCH.conf: COMPILE_TARGETS names $t, which is not in the tree"
	done
	stage compile "$COMPILE_TARGETS ($ARCH, $(tree_version "$TREE"), PATCHES=$PATCHES) in $OBJ"
	# shellcheck disable=SC2086
	logged "$OBJ/compile.log" kmake $COMPILE_TARGETS
	stage compile "module/swp_exclusive_check.o: the marker round-trips"
	copy_module
	logged "$OBJ/swp-check.log" kmake M="$ext" COWGUARD_SWP_CHECK=m \
		module/swp_exclusive_check.o
}
