// SPDX-License-Identifier: GPL-2.0
/*
 * Build-time check of the swap PTE exclusive marker, for the compile
 * matrix (scripts/compile-matrix): most of the page table formats the
 * series touches cannot be booted here, but every one that has a
 * compiler can be made to prove at build time what mm/debug_vm_pgtable.c
 * proves at boot.
 *
 * The swap entry helpers are inline functions of constants, so with -O2
 * every condition below folds to a constant and a false one stops the
 * build (compiletime_assert). Nothing here is ever linked into a kernel
 * or loaded: only the object file is built.
 */
#include <linux/build_bug.h>
#include <linux/mm.h>
#include <linux/swap.h>
#include <linux/swapops.h>
#include <linux/version.h>

/* Since 6.2 every architecture has the marker and the macro is gone. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 2, 0) && \
	!defined(__HAVE_ARCH_PTE_SWP_EXCLUSIVE)
#error "this page table format has no swap PTE exclusive marker"
#endif

/*
 * The largest offset the format keeps: what survives a round trip of an
 * all-ones offset, as generic_max_swapfile_size() computes it.
 */
#define MAX_OFFSET \
	swp_offset(pte_to_swp_entry(swp_entry_to_pte(swp_entry(0, ~0UL))))

/* Migration, device and hwpoison entries use the types above swap files. */
#define MAX_TYPE ((1UL << MAX_SWAPFILES_SHIFT) - 1)

/*
 * For one type and offset: the marker is not set by encoding, is seen
 * once set, leaves the PTE a swap PTE (not present, not none), does not
 * touch the type, the offset or the soft-dirty bit, and clearing it
 * gives back the PTE it was set on. sparc64 patches pte_present() at
 * boot (sun4u or sun4v): where it does not fold, only the boot can tell.
 *
 * Type 0, offset 0 is exempt from "not none": offset 0 of a swap area is
 * its header, never swapped to, and migration and device entries use
 * types above the swap files. MIPS32 with 64-bit PTEs keeps the marker in
 * pte_low, which its pte_none() ignores, so the all-zero entry reads as
 * none there with or without the marker.
 */
#define CHECK_ENTRY(type, offset)					\
do {									\
	const unsigned long t = (type), o = (offset);			\
	pte_t pte = swp_entry_to_pte(swp_entry(t, o));			\
	pte_t excl = pte_swp_mkexclusive(pte);				\
									\
	BUILD_BUG_ON(pte_swp_exclusive(pte));				\
	BUILD_BUG_ON(!pte_swp_exclusive(excl));				\
	BUILD_BUG_ON((t || o) && pte_none(excl));			\
	BUILD_BUG_ON(__builtin_constant_p(pte_present(excl)) &&		\
		     pte_present(excl));				\
	BUILD_BUG_ON(swp_type(pte_to_swp_entry(excl)) != t);		\
	BUILD_BUG_ON(swp_offset(pte_to_swp_entry(excl)) != o);		\
	BUILD_BUG_ON(pte_swp_soft_dirty(excl) != pte_swp_soft_dirty(pte)); \
	BUILD_BUG_ON(pte_val(pte_swp_clear_exclusive(excl)) !=		\
		     pte_val(pte));					\
	BUILD_BUG_ON(!pte_swp_exclusive(pte_swp_mksoft_dirty(excl)));	\
} while (0)

/* Not static: the compiler must emit it for the asserts to be checked. */
void cowguard_swp_exclusive_check(void);
void cowguard_swp_exclusive_check(void)
{
	/* An offset of a single bit is lost: the format keeps less. */
	BUILD_BUG_ON(MAX_OFFSET < 1);

	CHECK_ENTRY(0, 0);
	CHECK_ENTRY(0, 1);
	CHECK_ENTRY(0, MAX_OFFSET);
	CHECK_ENTRY(MAX_TYPE, 0);
	CHECK_ENTRY(MAX_TYPE, MAX_OFFSET);
	CHECK_ENTRY(1, MAX_OFFSET / 3);
	CHECK_ENTRY(MAX_TYPE, MAX_OFFSET / 3 * 2);
}
