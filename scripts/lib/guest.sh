# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# scripts/cowguard's guest part: the selftests and the guest's init in an
# initramfs, the boot (QEMU, or the description's BOOT_COMMAND) with its
# host-side timeout, and the results read from the console. Sourced by
# scripts/cowguard; uses its globals (RUN, OBJ, QEMU and the
# description's variables).

stop_qemu() {
	[ -n "$QEMU_PID" ] || return 0
	if kill -0 "$QEMU_PID" 2>/dev/null; then
		kill "$QEMU_PID" 2>/dev/null || true
		sleep 1
		kill -9 "$QEMU_PID" 2>/dev/null || true
	fi
	wait "$QEMU_PID" 2>/dev/null || true
	QEMU_PID=
}

do_initramfs() {
	mkdir -p "$RUN"
	list=$RUN/initramfs.list
	{
		for d in /dev /proc /sys /tmp /tests /tests/vm; do
			printf 'dir %s 0755 0 0\n' "$d"
		done
		printf 'nod /dev/console 0600 0 0 c 5 1\n'
		printf 'file /init %s 0755 0 0\n' "$OBJ/cowguard-init"
		printf 'file /tests/list %s 0644 0 0\n' "$OBJ/selftests/list"
		while read -r t; do
			printf 'file /tests/%s %s 0755 0 0\n' "$t" "$OBJ/selftests/$t"
		done <"$OBJ/selftests/files"
		[ -z "$MODULE" ] || printf 'file /cowguard.ko %s 0644 0 0\n' "$MODULE"
	} >"$list"
	"$OBJ/usr/gen_init_cpio" "$list" | gzip -n -1 >"$RUN/initramfs.cpio.gz"
	stage initramfs "$RUN/initramfs.cpio.gz ($(du -k "$RUN/initramfs.cpio.gz" | cut -f1) KiB)"
}

# --- boot -----------------------------------------------------------------

# The guest's kernel command line.
guest_cmdline() {
	# An oops on an SMP guest often leaves a lock held and the guest hung
	# until the timeout: panic and reboot at once instead.
	cmdline="console=$CONSOLE panic=-1 oops=panic cowguard.shutdown=$SHUTDOWN $KERNEL_CMDLINE"
	[ -z "$BASE_CMDLINE" ] || cmdline="$cmdline $BASE_CMDLINE"
	# DEBUG=1: DEBUG_PAGEALLOC and page_table_check are off unless asked
	# for (an architecture without page_table_check ignores the word).
	[ -z "$DEBUG" ] || cmdline="$cmdline debug_pagealloc=on page_table_check=on cowguard.timeout_scale=$DEBUG_SCALE"
	# A run's own additions (scripts/soak): its parameters last.
	[ -z "$GUEST_CMDLINE" ] || cmdline="$cmdline $GUEST_CMDLINE"
	printf '%s\n' "$cmdline"
}

# scratch_disk FILE: a fresh scratch disk of GUEST_DISK_MB; one per boot,
# the tests overwrite it. Its first line, SCRATCH_MAGIC of
# selftests/scratch_disk.h, is how the guest finds it and what lets the
# tests write to it.
scratch_disk() {
	magic=$(sed -n 's/^#define[[:space:]]*SCRATCH_MAGIC[[:space:]]*"\(.*\)\\n"$/\1/p' \
		"$TOP/selftests/scratch_disk.h")
	[ -n "$magic" ] || die "selftests/scratch_disk.h: no SCRATCH_MAGIC \"...\\n\""
	rm -f "$1"
	{ printf '%s\n' "$magic" >"$1" &&
		truncate -s "${GUEST_DISK_MB}M" "$1"; } ||
		die "cannot create $1"
}

# scratch_disk_args FILE: how QEMU attaches the scratch disk, one
# argument a line: the description's QEMU_DISK_ARGS with {disk} = FILE.
# Run in a subshell: it turns globbing off.
scratch_disk_args() {
	set -f
	for w in $QEMU_DISK_ARGS; do
		boot_word_fill "$w" '{disk}' "$1"
	done
}

# qemu_cpu_args: QEMU_ARGS, or for an instruction-counted run
# (GUEST_ICOUNT=1) QEMU_ARGS without its -smp and -accel options and with
# QEMU_ICOUNT_ARGS instead. Run in a subshell: it turns globbing off.
qemu_cpu_args() {
	set -f
	if [ "${GUEST_ICOUNT:-}" != 1 ]; then
		printf '%s\n' "$QEMU_ARGS"
		return 0
	fi
	_skip=
	# shellcheck disable=SC2086
	for w in $QEMU_ARGS; do
		if [ -n "$_skip" ]; then
			_skip=
			continue
		fi
		case $w in
		-smp | -accel) _skip=1 ;;
		*) printf '%s\n' "$w" ;;
		esac
	done
	printf '%s\n' "$QEMU_ICOUNT_ARGS"
}

# boot_words DISK: the command that boots the guest, one argument a line
# (no argument has a newline): the description's BOOT_COMMAND with its
# placeholders replaced (scripts/lib/conf.sh), or QEMU's. DISK is the
# scratch disk image, empty without one. Run in a subshell ($(...)): it
# turns globbing off.
boot_words() {
	set -f
	if [ -z "$BOOT_COMMAND" ]; then
		# A run's memory size after the description's -m, which QEMU
		# lets win.
		# shellcheck disable=SC2046,SC2086
		printf '%s\n' $QEMU $(qemu_cpu_args) ${GUEST_MEM_MB:+-m ${GUEST_MEM_MB}M} \
			${1:+$(scratch_disk_args "$1")} -nographic -monitor none -no-reboot \
			-kernel "$OBJ/$KERNEL_IMAGE" -initrd "$RUN/initramfs.cpio.gz" \
			-append "$cmdline"
		return 0
	fi
	for w in $BOOT_COMMAND; do
		case $w in
		*'{disk}'*) [ -n "$1" ] || continue ;;
		*'{mem}'*) [ -n "$GUEST_MEM_MB" ] || continue ;;
		esac
		w=$(boot_word_fill "$w" '{top}' "$TOP")
		w=$(boot_word_fill "$w" '{kernel}' "$OBJ/$KERNEL_IMAGE")
		w=$(boot_word_fill "$w" '{initrd}' "$RUN/initramfs.cpio.gz")
		w=$(boot_word_fill "$w" '{disk}' "$1")
		w=$(boot_word_fill "$w" '{mem}' "$GUEST_MEM_MB")
		w=$(boot_word_fill "$w" '{cmdline}' "$cmdline")
		printf '%s\n' "$w"
	done
}

# boot_word_fill WORD PLACEHOLDER VALUE: WORD with every PLACEHOLDER
# replaced by VALUE, taken literally.
boot_word_fill() {
	_w=$1 _out=
	while :; do
		case $_w in
		*"$2"*)
			_out=$_out${_w%%"$2"*}$3
			_w=${_w#*"$2"} ;;
		*) break ;;
		esac
	done
	printf '%s\n' "$_out$_w"
}

do_boot() {
	log=$RUN/console.log
	rm -f "$log" "$RUN/results.tap" "$RUN/results.txt"
	cmdline=$(guest_cmdline)
	disk=
	if [ -n "$GUEST_DISK_MB" ]; then
		disk=$RUN/disk.img
		scratch_disk "$disk"
	fi
	words=$(boot_words "$disk")
	# The command as a shell would read it, arguments with blanks quoted.
	printf '%s\n' "$words" | awk '
		{ printf "%s%s", (NR > 1 ? " " : ""), ($0 ~ /[ \t]/ ? "\"" $0 "\"" : $0) }
		END { print "" }' >"$RUN/qemu.cmd"
	stage boot "${QEMU:+$QEMU (TCG)}${BOOT_COMMAND:+BOOT_COMMAND of configs/$ARCH.conf}, timeout ${QEMU_TIMEOUT}s, console $log"
	# Each line of words one argument, nothing expanded.
	(
		set -f
		IFS='
'
		# shellcheck disable=SC2086
		exec $words
	) </dev/null >"$log" 2>&1 &
	QEMU_PID=$!
	start=$(date +%s)
	ended=
	while kill -0 "$QEMU_PID" 2>/dev/null; do
		now=$(date +%s)
		if [ -z "$ended" ] && grep -q "$END_MARKER" "$log"; then
			ended=$now
		fi
		# Some machines cannot power off: the end marker is enough.
		if [ -n "$ended" ] && [ $((now - ended)) -ge 10 ]; then
			stop_qemu
			break
		fi
		if [ $((now - start)) -ge "$QEMU_TIMEOUT" ]; then
			stop_qemu
			printf '\ncowguard: guest timed out after %ss\n' \
				"$QEMU_TIMEOUT" >>"$log"
			printf 'cowguard: error: guest timed out after %ss, %s stopped (console: %s)\n' \
				"$QEMU_TIMEOUT" "${QEMU:-the guest}" "$log" >&2
			break
		fi
		sleep 1
	done
	stop_qemu
	end=$(date +%s)
	write_run_env "$start" "$end"
	stage tests "guest ran for $((end - start))s"
}

# What the run was, for scripts/results-export: run.env in the run
# directory, read through run_env() (scripts/lib/run.sh).
write_run_env() {
	patch_list=$(series_patches "$PATCHES")
	{
		printf 'ARCH=%s\n' "$ARCH"
		printf 'KERNEL_ARCH=%s\n' "$KERNEL_ARCH"
		printf 'PATCHES=%s\n' "$PATCHES"
		printf 'DEBUG=%s\n' "${DEBUG:-0}"
		printf 'SUITE=%s\n' "${SUITE:-}"
		printf 'KERNEL_VERSION=%s\n' "$(tree_version "$TREE")"
		printf 'BASE=%s\n' "$BASE_DESC"
		printf 'BASE_ID=%s\n' "$BASE_ID"
		printf '%s\n' "$patch_list" | sed -n "s|^..*|PATCH_FILE=$SERIES_DIR/&|p"
		printf 'PATCHSET_HASH=%s\n' "$(series_patchset_hash "$PATCHES")"
		printf 'CONFIG=%s\n' "$OBJ/.config"
		printf 'CONFIG_SHA256=%s\n' "$(sha256sum <"$OBJ/.config" | cut -c-64)"
		sed -n 's/^CONFIG_CC_VERSION_TEXT="\(.*\)"$/COMPILER=\1/p' "$OBJ/.config"
		printf 'IMAGE=%s\n' "$OBJ/$KERNEL_IMAGE"
		printf 'QEMU_COMMAND=%s\n' "$(cat "$RUN/qemu.cmd")"
		printf 'BOOT_START=%s\n' "$(date -u -d "@$1" +%Y-%m-%dT%H:%M:%S+00:00)"
		printf 'BOOT_SECONDS=%s\n' "$(($2 - $1))"
	} >"$RUN/run.env"
}

do_results() {
	"$TOP/scripts/parse-console" "$ARCH" "$RUN/console.log" "$RUN"
}

# results.json (KCIDB) and results.xml (JUnit) next to results.txt,
# validated against their schemas.
do_export() {
	"$TOP/scripts/results-export" "$RUN/results" "$RUN"
}
