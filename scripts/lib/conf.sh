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
#   KERNEL_IMAGE    what QEMU boots (required to boot)
#   DEB_PACKAGES    the Debian packages this description needs
#   QEMU, QEMU_ARGS, CONSOLE, KERNEL_CMDLINE, SHUTDOWN (poweroff|reboot|...),
#   BOOT_TIMEOUT    the guest; no QEMU: a compile-only description
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
#   BASE_MARKER     yes when 6.1 itself has the swap PTE exclusive marker
#                   on this architecture (default no)

CONF_KEYS='KERNEL_ARCH CROSS_COMPILE LLVM KERNEL_IMAGE DEB_PACKAGES QEMU
QEMU_ARGS CONSOLE KERNEL_CMDLINE SHUTDOWN BOOT_TIMEOUT KCONFIG KCONFIG_BASE
KCONFIG_DEBUG COMPILE_TARGETS SELFTEST_LISTS GUEST_CFLAGS GUEST_CAPS GUEST_DISK_MB
BASE_MARKER'
CONF_CAPS='thp disk soft_dirty uffd_wp numa ksm va64'

# conf_names: every description, sorted.
conf_names() {
	(cd "$CONF_TOP/configs" && ls -- *.conf) | sed 's/\.conf$//' | LC_ALL=C sort
}

# conf_error MESSAGE: why conf_load returns 1.
conf_error() {
	LIB_ERROR=$*
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
	# Top-level assignments only: lines inside a quoted value (KCONFIG's
	# CONFIG_*=) are not keys, and comments do not open quotes.
	_unknown=$(awk -v keys=" $(echo $CONF_KEYS) " -v sq="'" '
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
	' "$_conf")
	if [ -n "$_unknown" ]; then
		conf_error "configs/$1.conf: unknown key$(echo "$_unknown" |
			awk 'END { if (NR > 1) printf "s" }') $(echo $_unknown) (known: $(echo $CONF_KEYS))"
		return 1
	fi
	KERNEL_ARCH= CROSS_COMPILE= LLVM= KERNEL_IMAGE= DEB_PACKAGES= QEMU=
	QEMU_ARGS= CONSOLE= KERNEL_CMDLINE= SHUTDOWN=poweroff BOOT_TIMEOUT=300
	KCONFIG= KCONFIG_BASE= KCONFIG_DEBUG= COMPILE_TARGETS= SELFTEST_LISTS=tests.list
	GUEST_CFLAGS=
	GUEST_CAPS= GUEST_DISK_MB= BASE_MARKER=no
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
	case $BASE_MARKER in
	yes | no) ;;
	*) conf_error "configs/$1.conf: BASE_MARKER '$BASE_MARKER' is not yes or no"; return 1 ;;
	esac
	return 0
}

# conf_boots NAME: whether the description names a QEMU.
conf_boots() {
	(conf_load "$1" && [ -n "$QEMU" ])
}
