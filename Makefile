# SPDX-License-Identifier: GPL-2.0
#
# cowguard: keep PG_anon_exclusive across swap on every architecture, and
# prove it under QEMU.
#
#   make qemu    [ARCH=x86_64] [PATCHES=all|none|counters|mutant-<name>]
#                [SUITE=races] [DEBUG=1] [BASE=6.1|6.12] [KERNEL_SRC=<tree of BASE>]
#                apply the base's series (patches/series, patches/6.12/
#                series), build, boot under QEMU, run the selftests;
#                the last line is "ARCH: N passed, N failed, N skipped"
#   make check   what CI runs: lint, tool tests and the QEMU runs in
#                scripts/check; CHECK_ONLY=<text> re-runs matching steps
#   make check-full  make check with every affected architecture of the
#                old check and every mutant (longer than CI's budget)
#   make check-6.12  only make check's BASE=6.12 steps: stock 6.12 and
#                6.12 with patches/6.12, every case as expected, and races
#   make mutants [ARCH=x86_64] boot each deliberately broken kernel of
#                patches/mutants/ and check the selftests catch it
#   make bench   [ARCH=x86_64] boot PATCHES=none, counters and all with
#                selftests/bench.list; print the figures and the ratios
#   make soak    [ARCH=x86_64] [DEBUG=1] [DURATION=900] the race selftests
#                at 10^4 rounds per context in a small guest under memory
#                pressure, O_DIRECT checksums, fork storms and swapoff/swapon
#                cycles; per scenario iterations and corruptions
#   make lava    [ARCH=x86_64|<name>|all] [PATCHES=all|none,all|...] [LAVA_URL=]
#                build as make qemu does and write a LAVA job per variant
#                and level, with its artifacts, in build/lava/
#                (Documentation/lava.rst)
#   make lava-check  make lava for x86_64, then run the job with LAVA's
#                own lava-run here; LAVA's per-case results must equal the
#                console's and the run be as selftests/expected says
#   make compile-matrix  build mm/ and the swap PTE marker check for every
#                configs/*.conf (booted or compile-only) with the series
#   make boot-matrix  boot every configs/*.conf with a QEMU or a
#                BOOT_COMMAND, unpatched and patched, with all selftests;
#                one README row per variant
#   make lint    configs load, selftests/expected well formed and
#                Documentation/expected.rst current, patches/series
#                consistency, applies to the pristine base,
#                checkpatch.pl --strict on every patch; the drafts of
#                patches/pending/ apply with git am on top of the
#                series and are checkpatch --strict clean
#   make docs    regenerate Documentation/expected.rst from selftests/expected
#   make clean   remove build/ (ccache keeps compiled objects)
#
# The module in module/ is built by kbuild through the top-level Kbuild
# (make -C <kernel obj> M=<copy of this tree>); scripts/cowguard does that.

ARCH ?= x86_64
PATCHES ?= all
export ARCH BASE PATCHES KERNEL_SRC BUILD_DIR JOBS QEMU_TIMEOUT CHECK_ONLY DEBUG DEBUG_SCALE DURATION LAVA_URL

qemu:
	@scripts/cowguard qemu

check:
	@scripts/check

check-full:
	@CHECK_FULL=1 scripts/check

check-6.12:
	@CHECK_612=1 CHECK_ONLY="BASE=6.12" scripts/check

lint:
	@scripts/lint-series

compile-matrix:
	@mkdir -p $(or $(BUILD_DIR),build)
	@scripts/compile-matrix

boot-matrix:
	@scripts/boot-matrix

mutants:
	@scripts/mutants

lava:
	@scripts/lava

lava-check:
	@ARCH=x86_64 LAVA_RUN=1 scripts/lava

bench:
	@scripts/bench

soak:
	@scripts/soak

docs:
	@scripts/expect rst >Documentation/expected.rst

clean:
	rm -rf build

help:
	@sed -n '/^#   make/,/^#$$/p' Makefile | sed 's/^# \{0,1\}//'

.PHONY: qemu check check-full check-6.12 lint docs compile-matrix boot-matrix mutants lava lava-check bench soak clean help
