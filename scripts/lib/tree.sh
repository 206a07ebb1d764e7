# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# scripts/cowguard's series and tree part: the Debian packages a
# description needs, the base tree (Debian's linux-source-<BASE> or
# KERNEL_SRC, with the series' stable/) as a git repository, and the
# PATCHES level applied to a worktree of it. Sourced by scripts/cowguard;
# uses its globals (TOP, BUILD, BASE_TREE, TREE, PATCHES, the base of
# base_load...) and its die/stage/logged.

# --- deps -----------------------------------------------------------------

HOST_PACKAGES="make gcc libc6-dev flex bison bc perl libelf-dev libssl-dev
	ccache cpio gzip xz-utils git kmod sparse rsync python3-jsonschema
	libxml2-utils lava-common"

missing_packages() {
	pkgs="$HOST_PACKAGES $DEB_PACKAGES"
	[ -n "$KERNEL_SRC" ] || pkgs="$pkgs $(base_package "$BASE_VERSION")"
	for p in $pkgs; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null |
			grep -q '^ii' || printf '%s ' "$p"
	done
}

do_deps() {
	command -v dpkg-query >/dev/null ||
		die "not a Debian system: install the equivalents of: $HOST_PACKAGES $DEB_PACKAGES"
	missing=$(missing_packages)
	[ -n "$missing" ] || return 0
	# apt-get takes a system-wide lock: parallel compiles cannot install.
	[ -z "${COWGUARD_PREPARED:-}" ] ||
		die "missing packages: $missing (run scripts/cowguard deps first)"
	if [ "$(id -u)" != 0 ]; then
		die "missing packages; run: sudo apt-get install --no-install-recommends $missing"
	fi
	stage deps "installing $missing"
	mkdir -p "$BUILD"
	log=$BUILD/apt.log
	# Another apt-get (a second run, unattended-upgrades) may hold dpkg's
	# lock for a while: wait for it rather than fail the run.
	if ! { apt-get -o DPkg::Lock::Timeout=900 update -qq &&
		DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 \
			install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
		tail -n 5 "$log" | sed 's/^/    /' >&2
		die "apt-get install failed for: $missing (log: $log)"
	fi
	missing=$(missing_packages)
	[ -z "$missing" ] || die "still missing after apt-get install: $missing"
}

# --- base tree ------------------------------------------------------------

tree_version() {
	sed -n 's/^\(VERSION\|PATCHLEVEL\|SUBLEVEL\) = \([0-9]*\)$/\2/p' \
		"$1/Makefile" 2>/dev/null | head -n 3 | paste -sd. -
}

# check_version TREE WHAT: TREE is a tree of the base's version.
check_version() {
	v=$(tree_version "$1")
	case $v in
	"$BASE_VERSION".*) ;;
	'') die "$2 is not a Linux source tree (no VERSION in Makefile)" ;;
	*) die "$2 is Linux $v, not $BASE_VERSION.y${BASE:+ (BASE=$BASE)}" ;;
	esac
}

# The base as a git repository: the tree as unpacked, one commit, then
# one per fix of the series' stable/, tagged cowguard-base, so that git am can
# apply with 3-way merges and re-apply from scratch.
do_base() {
	if [ -n "$KERNEL_SRC" ]; then
		check_version "$KERNEL_SRC" "KERNEL_SRC=$KERNEL_SRC"
		if git -C "$KERNEL_SRC" rev-parse --verify -q HEAD >/dev/null 2>&1; then
			id="git $(git -C "$KERNEL_SRC" rev-parse HEAD)"
			[ -z "$(git -C "$KERNEL_SRC" status --porcelain -uno 2>/dev/null | head -n 1)" ] ||
				printf 'cowguard: note: uncommitted changes in KERNEL_SRC are not used\n'
		else
			id="dir $KERNEL_SRC"
		fi
		desc="KERNEL_SRC=$KERNEL_SRC"
	else
		[ -f "$TARBALL" ] || die "$TARBALL missing (apt-get install $(base_package "$BASE_VERSION"))"
		id="tarball $(stat -c '%s %Y' "$TARBALL")"
		desc="Debian $(base_package "$BASE_VERSION")"
	fi
	# The stable fixes are part of the base: a change to them is a new
	# base.
	stable=$(series_stable_patches)
	if [ -n "$stable" ]; then
		for p in $stable; do
			[ -f "$SERIES_DIR/stable/$p" ] ||
				die "$BASE_SERIES/stable/series lists $p, which does not exist"
		done
		id="$id stable $(for p in $stable; do printf '%s\n' "$p"
			cat "$SERIES_DIR/stable/$p"; done | sha256sum | cut -c-16)"
	fi
	# For the run's record (write_run_env in guest.sh).
	BASE_DESC=$desc${stable:+ + $BASE_SERIES/stable ($(printf '%s\n' $stable | wc -l))}
	BASE_ID=$id

	if [ "$(cat "$BASE_TREE.id" 2>/dev/null)" = "$id" ] &&
	   git -C "$BASE_TREE" rev-parse -q --verify cowguard-base >/dev/null 2>&1; then
		stage unpack "$desc: Linux $(tree_version "$BASE_TREE") (cached)"
		return 0
	fi

	[ -z "${COWGUARD_PREPARED:-}" ] ||
		die "the base tree is not prepared (run scripts/cowguard prepare first)"
	stage unpack "$desc -> $BASE_TREE"
	# Worktrees of an old base are stale with it.
	rm -rf "$BASE_TREE" "$BASE_TREE.id" "$BUILD"/src-*.applied
	for t in "$BUILD"/src-*; do
		[ -d "$t" ] && rm -rf "$t"
	done
	mkdir -p "$BUILD"
	tmp=$BUILD/.unpack.$$
	rm -rf "$tmp"
	mkdir -p "$tmp"
	case $id in
	tarball*)
		tar -C "$tmp" -xf "$TARBALL"
		mv "$tmp/$(base_package "$BASE_VERSION")" "$BASE_TREE"
		;;
	git*)
		git clone -q --no-checkout "$KERNEL_SRC" "$BASE_TREE"
		git -C "$BASE_TREE" checkout -q --detach "${id#git }"
		;;
	dir*)
		cp -a "$KERNEL_SRC" "$tmp/tree"
		mv "$tmp/tree" "$BASE_TREE"
		;;
	esac
	rmdir "$tmp"
	check_version "$BASE_TREE" "$desc"
	if [ ! -e "$BASE_TREE/.git" ]; then
		# Debian's .gitignore hides the whole top level: force. The
		# objects stay loose and uncompressed: half the time of a
		# compressed add, and no automatic gc repacking 80k objects
		# in the background while the kernel compiles.
		(cd "$BASE_TREE" && git init -q &&
			git config gc.auto 0 && git config maintenance.auto false &&
			git config core.looseCompression 0 && git add -A -f &&
			git -c user.name=cowguard -c user.email=cowguard@localhost \
				commit -q -m "Linux $(tree_version .) ($desc)")
	fi
	apply_stable
	git -C "$BASE_TREE" tag -f cowguard-base >/dev/null
	printf '%s\n' "$id" >"$BASE_TREE.id"
	stage unpack "Linux $(tree_version "$BASE_TREE")"
}

# The series' stable/ on the base tree, committed: a fix the tree already
# has (a later <BASE>.y) is left out, one that does not apply stops the
# run.
apply_stable() {
	n=0 had=
	for p in $(series_stable_patches); do
		f=$SERIES_DIR/stable/$p
		if git -C "$BASE_TREE" apply --check -R "$f" 2>/dev/null; then
			had="$had $p"
			continue
		fi
		if ! GIT_COMMITTER_NAME=cowguard GIT_COMMITTER_EMAIL=cowguard@localhost \
			git -C "$BASE_TREE" am -3 -q "$f" >/dev/null 2>&1; then
			git -C "$BASE_TREE" am --abort >/dev/null 2>&1 || true
			v=$(tree_version "$BASE_TREE")
			rm -rf "$BASE_TREE"
			die "$BASE_SERIES/stable/$p does not apply to Linux $v ($desc)"
		fi
		n=$((n + 1))
	done
	[ -z "$(series_stable_patches)" ] ||
		stage unpack "$BASE_SERIES/stable: $n applied${had:+, already in the tree:$had}"
}

# --- patches --------------------------------------------------------------

# Called in the main shell: series_patches runs in subshells.
check_series() {
	series=$SERIES_DIR/series
	[ -f "$series" ] || die "$BASE_SERIES/series missing"
	for p in $(series_patches "$PATCHES"); do
		[ -f "$SERIES_DIR/$p" ] || die "$BASE_SERIES/series lists $p, which does not exist"
	done
}

series_id() {
	{
		git -C "$BASE_TREE" rev-parse cowguard-base
		for p in $(series_patches "$PATCHES"); do
			printf '%s\n' "$p"
			cat "$SERIES_DIR/$p"
		done
	} | sha256sum | cut -d' ' -f1
}

# Print the hunk of patch $1 that does not apply to $TREE as it is now.
show_rejected_hunk() {
	loc=$(git -C "$TREE" apply --check "$1" 2>&1 |
		sed -n 's/^error: patch failed: //p' | head -n 1)
	[ -n "$loc" ] || return 0
	printf 'cowguard: rejected hunk at %s:\n' "$loc" >&2
	awk -v f="${loc%:*}" -v l="${loc##*:}" '
		/^diff --git / { infile = ($3 == "a/" f); show = 0; next }
		infile && /^@@ / { split($2, a, ","); show = (substr(a[1], 2) == l) }
		/^-- $/ { exit }
		infile && show { print "    " $0; if (++n >= 30) exit }
	' "$1" >&2
}

do_apply() {
	if ! series_applied "$PATCHES"; then
		stage apply "PATCHES=none: the base tree, nothing of the series"
		return 0
	fi
	check_series
	id=$(series_id)
	stamp=$TREE.applied
	if [ -d "$TREE" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$id" ]; then
		stage apply "$(series_patches "$PATCHES" | wc -l) patches (unchanged, nothing to do)"
		return 0
	fi
	[ -z "${COWGUARD_PREPARED:-}" ] ||
		die "$TREE is not prepared for PATCHES=$PATCHES (run scripts/cowguard prepare first)"
	rm -f "$stamp"
	if [ ! -e "$TREE/.git" ]; then
		rm -rf "$TREE"
		git -C "$BASE_TREE" worktree prune
		git -C "$BASE_TREE" worktree add -q --detach "$TREE" cowguard-base
	fi
	git -C "$TREE" am --abort >/dev/null 2>&1 || true
	git -C "$TREE" reset -q --hard cowguard-base
	n=0
	for p in $(series_patches "$PATCHES"); do
		target=$(series_patch_target "$SERIES_DIR/$p") || die "$LIB_ERROR"
		# The module's own mutants go to its copy (copy_module).
		[ "$target" = kernel ] || continue
		n=$((n + 1))
		if ! out=$(GIT_COMMITTER_NAME=cowguard \
			GIT_COMMITTER_EMAIL=cowguard@localhost \
			git -C "$TREE" am -3 -q "$SERIES_DIR/$p" 2>&1); then
			printf 'cowguard: %s/%s does not apply to Linux %s:\n' "$BASE_SERIES" \
				"$p" "$(tree_version "$BASE_TREE")" >&2
			printf '%s\n' "$out" | grep -E '^(error|CONFLICT|Patch failed|fatal)' |
				head -n 5 | sed 's/^/    /' >&2
			# A 3-way merge that conflicted: show the conflict.
			git -C "$TREE" diff 2>/dev/null | head -n 30 | sed 's/^/    /' >&2
			git -C "$TREE" am --abort >/dev/null 2>&1 || true
			show_rejected_hunk "$SERIES_DIR/$p"
			git -C "$TREE" reset -q --hard cowguard-base
			die "patch $n ($p) does not apply"
		fi
	done
	printf '%s\n' "$id" >"$stamp"
	stage apply "$n patches applied with git am -3 on $(tree_version "$BASE_TREE")"
}
