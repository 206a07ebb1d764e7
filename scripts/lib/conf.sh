# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=sh
#
# configs/<name>.conf, the one reader. Sourced by the scripts that need an
# architecture description; conf_load sets every key below, defaults
# first, then what the description says, and fails, with the reason in
# LIB_ERROR, on a key it does not know or a value it cannot use.
#
#   KERNEL_ARCH     kbuild ARCH (required)
#   CROSS_COMPILE   toolchain prefix;  LLVM  -<version> to build with clang
#   KERNEL_IMAGE    what the guest boots (required to boot)
#   KERNEL_PARTS    files of the build directory that, concatenated
#                   in this order after the kernel build, make KERNEL_IMAGE
#                   (optional): a device tree appended to an ARM zImage
#                   (CONFIG_ARM_APPENDED_DTB) for a machine to which QEMU
#                   hands none, so that the one image boots under QEMU
#                   and LAVA alike
#   DEB_PACKAGES    the Debian packages this description needs
#   QEMU, QEMU_ARGS, CONSOLE, KERNEL_CMDLINE, SHUTDOWN (poweroff|reboot|...),
#   BOOT_TIMEOUT    the guest; neither QEMU nor BOOT_COMMAND: a compile-only
#                   description
#   BOOT_COMMAND    instead of QEMU, the command that boots a guest which is
#                   not a QEMU machine (User Mode Linux: the kernel is the
#                   host program). A template: split into words at blanks,
#                   never run through a shell, each word one argument with
#                   its placeholders replaced: {kernel} (KERNEL_IMAGE in the
#                   build directory), {initrd} (the initramfs), {cmdline}
#                   (the kernel command line, CONSOLE's console= first, as
#                   one argument), {disk} (the scratch disk image, where
#                   GUEST_CAPS has disk), {mem} (a run's GUEST_MEM_MB),
#                   {top} (the checkout: a helper of the description's). A
#                   word whose placeholder has no value ({disk} without the
#                   disk, {mem} without GUEST_MEM_MB) is left out. The
#                   console is the command's stdout and stderr, its stdin
#                   /dev/null; the host stops it with SIGTERM, then SIGKILL,
#                   as it stops QEMU (timeout, end marker). make lava needs
#                   a QEMU: a description with BOOT_COMMAND is not for LAVA.
#   KCONFIG         Kconfig lines on top of tinyconfig and configs/*.config
#   KCONFIG_BASE    Kconfig lines for the base levels only (none, counters:
#                   kernels without the series' fixes), appended last
#   KCONFIG_DEBUG   Kconfig lines for DEBUG=1 on top of configs/debug.config:
#                   the bug finders only some architectures have (KASAN,
#                   PAGE_TABLE_CHECK)
#   COMPILE_TARGETS what the compile matrix builds (default: mm/ and the
#                   architecture's mm/)
#   SELFTEST_LISTS  selftests/*.list the guest runs
#   GUEST_CFLAGS    extra compiler and linker flags for the guest's static
#                   programs (the selftests and the init): a cross
#                   toolchain's workaround
#   GUEST_CAPS      what the guest can do, for selftests/expected: thp,
#                   disk, soft_dirty, uffd_wp, numa, ksm, va64 (a 64-bit
#                   user address space)
#   GUEST_DISK_MB   size of the scratch disk, where GUEST_CAPS has disk
#   QEMU_DISK_ARGS  how QEMU attaches it, with {disk} for its image (default
#                   virtio-blk on the machine's own virtio transport, PCI or
#                   virtio-mmio); a BOOT_COMMAND says {disk} itself
#   BASE_MARKER     yes when 6.1 itself has the swap PTE exclusive marker
#                   on this architecture (default no)
#   QEMU_ICOUNT_ARGS  what replaces QEMU_ARGS' -smp and -accel options for
#                   an instruction-counted boot (GUEST_ICOUNT=1, make
#                   bench's walk cost): QEMU's -icount, under which the
#                   guest's clock advances with the instructions it runs,
#                   not with the host's time (optional: without it the
#                   description cannot boot that way)

CONF_KEYS='KERNEL_ARCH CROSS_COMPILE LLVM KERNEL_IMAGE KERNEL_PARTS
DEB_PACKAGES QEMU QEMU_ARGS CONSOLE KERNEL_CMDLINE SHUTDOWN BOOT_TIMEOUT
BOOT_COMMAND KCONFIG KCONFIG_BASE KCONFIG_DEBUG COMPILE_TARGETS
SELFTEST_LISTS GUEST_CFLAGS GUEST_CAPS GUEST_DISK_MB QEMU_DISK_ARGS
BASE_MARKER QEMU_ICOUNT_ARGS'
CONF_CAPS='thp disk soft_dirty uffd_wp numa ksm va64'

# conf_names: every description, sorted.
conf_names() {
	(cd "$CONF_TOP/configs" && ls -- *.conf) | sed 's/\.conf$//' | LC_ALL=C sort
}

# conf_error MESSAGE: why conf_load returns 1.
conf_error() {
	LIB_ERROR=$*
}

# conf_unknown_keys KEYS FILE: the variables FILE assigns that are not in
# KEYS, one per line (configs/*.conf and configs/base/*.conf).
conf_unknown_keys() {
	# Top-level assignments only: lines inside a quoted value (KCONFIG's
	# CONFIG_*=) are not keys, and comments do not open quotes.
	awk -v keys=" $(echo $1) " -v sq="'" '
		!q && /^[[:space:]]*#/ { next }
		!q && match($0, /^[A-Za-z_][A-Za-z0-9_]*=/) {
			k = substr($0, 1, RLENGTH - 1)
			if (index(keys, " " k " ") == 0) print k
		}
		{
			# Where the line leaves us: outside quotes or inside one kind.
			for (i = 1; i <= length($0); i++) {
				c = substr($0, i, 1)
				if (q == sq) { if (c == sq) q = ""; continue }
				if (q == "\"") {
					if (c == "\\") i++
					else if (c == "\"") q = ""
					continue
				}
				if (c == "\\") i++
				else if (c == sq || c == "\"") q = c
				else if (c == "#") break
			}
		}
	' "$2"
}

# conf_load NAME: the variables of configs/NAME.conf.
conf_load() {
	case $1 in
	'' | *[!a-z0-9_-]*) conf_error "bad ARCH '$1'"; return 1 ;;
	esac
	_conf=$CONF_TOP/configs/$1.conf
	if [ ! -f "$_conf" ]; then
		conf_error "unknown ARCH '$1' (known: $(conf_names | paste -sd' ' -))"
		return 1
	fi
	_unknown=$(conf_unknown_keys "$CONF_KEYS" "$_conf")
	if [ -n "$_unknown" ]; then
		conf_error "configs/$1.conf: unknown key$(echo "$_unknown" |
			awk 'END { if (NR > 1) printf "s" }') $(echo $_unknown) (known: $(echo $CONF_KEYS))"
		return 1
	fi
	KERNEL_ARCH= CROSS_COMPILE= LLVM= KERNEL_IMAGE= KERNEL_PARTS=
	DEB_PACKAGES= QEMU= QEMU_ARGS= CONSOLE= KERNEL_CMDLINE= SHUTDOWN=poweroff
	BOOT_TIMEOUT=300 BOOT_COMMAND=
	KCONFIG= KCONFIG_BASE= KCONFIG_DEBUG= COMPILE_TARGETS= SELFTEST_LISTS=tests.list
	GUEST_CFLAGS=
	GUEST_CAPS= GUEST_DISK_MB= BASE_MARKER=no QEMU_ICOUNT_ARGS=
	QEMU_DISK_ARGS='-drive file={disk},if=virtio,format=raw'
	# A description may include another: . "$TOP/configs/<name>.conf".
	TOP=$CONF_TOP
	# shellcheck source=/dev/null
	. "$_conf"
	[ -n "$KERNEL_ARCH" ] || { conf_error "configs/$1.conf does not set KERNEL_ARCH"; return 1; }
	for _c in $GUEST_CAPS; do
		case " $CONF_CAPS " in
		*" $_c "*) ;;
		*) conf_error "configs/$1.conf: GUEST_CAPS has '$_c' (known: $CONF_CAPS)"; return 1 ;;
		esac
	done
	case " $GUEST_CAPS " in
	*" disk "*)
		GUEST_DISK_MB=${GUEST_DISK_MB:-64}
		case $GUEST_DISK_MB in
		[1-9] | [1-9][0-9] | [1-9][0-9][0-9]) ;;
		*) conf_error "configs/$1.conf: GUEST_DISK_MB '$GUEST_DISK_MB' is not 1..999"; return 1 ;;
		esac ;;
	*)
		[ -z "$GUEST_DISK_MB" ] || {
			conf_error "configs/$1.conf: GUEST_DISK_MB without disk in GUEST_CAPS"; return 1; } ;;
	esac
	case $QEMU_DISK_ARGS in
	*'{disk}'*) ;;
	*) conf_error "configs/$1.conf: QEMU_DISK_ARGS has no {disk}"; return 1 ;;
	esac
	if [ -n "$KERNEL_PARTS" ]; then
		[ -n "$KERNEL_IMAGE" ] || {
			conf_error "configs/$1.conf: KERNEL_PARTS without KERNEL_IMAGE"; return 1; }
		for _p in $KERNEL_PARTS; do
			case $_p in
			/* | *..*) conf_error "configs/$1.conf: KERNEL_PARTS '$_p' is not in the build directory"
				return 1 ;;
			"$KERNEL_IMAGE") conf_error "configs/$1.conf: KERNEL_PARTS has KERNEL_IMAGE itself"
				return 1 ;;
			esac
		done
	fi
	case $BASE_MARKER in
	yes | no) ;;
	*) conf_error "configs/$1.conf: BASE_MARKER '$BASE_MARKER' is not yes or no"; return 1 ;;
	esac
	if [ -n "$BOOT_COMMAND" ]; then
		[ -z "$QEMU" ] || {
			conf_error "configs/$1.conf: sets both QEMU and BOOT_COMMAND"; return 1; }
		for _p in $(printf '%s\n' "$BOOT_COMMAND" | grep -o '{[^}]*}' | sort -u); do
			case $_p in
			'{kernel}' | '{initrd}' | '{cmdline}' | '{disk}' | '{mem}' | '{top}') ;;
			*) conf_error "configs/$1.conf: BOOT_COMMAND has $_p (known: {kernel} {initrd} {cmdline} {disk} {mem} {top})"
				return 1 ;;
			esac
		done
		for _p in '{kernel}' '{initrd}' '{cmdline}'; do
			case $BOOT_COMMAND in
			*"$_p"*) ;;
			*) conf_error "configs/$1.conf: BOOT_COMMAND has no $_p"; return 1 ;;
			esac
		done
		case " $GUEST_CAPS " in
		*" disk "*)
			case $BOOT_COMMAND in
			*'{disk}'*) ;;
			*) conf_error "configs/$1.conf: GUEST_CAPS has disk, BOOT_COMMAND no {disk}"; return 1 ;;
			esac ;;
		esac
	fi
	return 0
}

# conf_boots NAME: whether the description boots a guest (a QEMU or a
# BOOT_COMMAND).
conf_boots() {
	(conf_load "$1" && [ -n "$QEMU$BOOT_COMMAND" ])
}

# conf_boots_qemu NAME: whether the description boots under QEMU (what
# LAVA's qemu device type runs).
conf_boots_qemu() {
	(conf_load "$1" && [ -n "$QEMU" ])
}
