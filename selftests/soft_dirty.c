// SPDX-License-Identifier: GPL-2.0
/*
 * Soft-dirty must record every write that happens after clear_refs (echo 4)
 * returned: a checkpointing tool that trusts it copies only the pages it
 * reports and silently loses the others.
 *
 * One way 6.1 loses such writes: un-protecting a range with
 * UFFDIO_WRITEPROTECT maps shared PTEs writable from vm_get_page_prot()
 * instead of the VMA's write-notify-aware vm_page_prot, so the write after
 * it never faults and the PTE stays clean.
 *
 * Cases run across memory contexts (private anonymous, shared anonymous,
 * i.e. shmem); each ends in one result line, SKIP with the reason when the
 * kernel lacks soft-dirty or uffd-wp for the context.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "cowguard_test.h"

#define NR_PAGES	4

FIXTURE(soft_dirty)
{
	size_t ps;
	size_t size;
	char *mem;
	int uffd;
};

FIXTURE_VARIANT(soft_dirty)
{
	int flags;		/* mmap flags besides MAP_ANONYMOUS */
	uint64_t uffd_feature;	/* what uffd-wp needs for this memory */
};

FIXTURE_VARIANT_ADD(soft_dirty, anon_private)
{
	.flags = MAP_PRIVATE,
	.uffd_feature = 0,
};

FIXTURE_VARIANT_ADD(soft_dirty, shmem_shared)
{
	.flags = MAP_SHARED,
	.uffd_feature = UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
};

FIXTURE_SETUP(soft_dirty)
{
	size_t i;

	self->ps = getpagesize();
	self->size = NR_PAGES * self->ps;
	self->uffd = -1;
	self->mem = mmap(NULL, self->size, PROT_READ | PROT_WRITE,
			 variant->flags | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	madvise(self->mem, self->size, MADV_NOHUGEPAGE);
	for (i = 0; i < NR_PAGES; i++)
		self->mem[i * self->ps] = 1;
	if (!soft_dirty_supported(self->mem))
		SKIP(return, "kernel without soft-dirty tracking (no \"sd\" in smaps VmFlags)");
}

FIXTURE_TEARDOWN(soft_dirty)
{
	if (self->uffd >= 0)
		close(self->uffd);
	munmap(self->mem, self->size);
}

/* Pages of the mapping that pagemap does not report soft-dirty. */
static int count_clean(FIXTURE_DATA(soft_dirty) *self)
{
	int clean = 0;
	size_t i;

	for (i = 0; i < NR_PAGES; i++)
		if (!(pagemap_at(self->mem + i * self->ps) & PM_SOFT_DIRTY))
			clean++;
	return clean;
}

/* The control: clear_refs really clears, so the other cases can fail. */
TEST_F(soft_dirty, clean_after_clear)
{
	if (setup_skipped(_metadata))
		return;
	ASSERT_EQ(0, clear_soft_dirty());
	ASSERT_EQ(NR_PAGES, count_clean(self))
		TH_LOG("pages still soft-dirty right after clear_refs");
}

TEST_F(soft_dirty, write_after_clear)
{
	size_t i;
	int clean;

	if (setup_skipped(_metadata))
		return;
	ASSERT_EQ(0, clear_soft_dirty());
	for (i = 0; i < NR_PAGES; i++)
		self->mem[i * self->ps] = 2;
	clean = count_clean(self);
	ASSERT_EQ(0, clean)
		TH_LOG("%d of %d written pages not soft-dirty", clean, NR_PAGES);
}

/* clear_refs, uffd-wp protect and un-protect, then write. */
TEST_F(soft_dirty, write_after_uffd_wp_cycle)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = variant->uffd_feature,
	};
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)self->mem, .len = self->size },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};
	struct uffdio_writeprotect wp = {
		.range = { .start = (uintptr_t)self->mem, .len = self->size },
	};
	size_t i;
	int clean;

	if (setup_skipped(_metadata))
		return;
	self->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (self->uffd < 0)
		SKIP(return, "userfaultfd: %s", strerror(errno));
	if (ioctl(self->uffd, UFFDIO_API, &api))
		SKIP(return, "UFFDIO_API with features %#llx: %s",
		     (unsigned long long)variant->uffd_feature, strerror(errno));
	if (ioctl(self->uffd, UFFDIO_REGISTER, &reg))
		SKIP(return, "UFFDIO_REGISTER_MODE_WP: %s (no uffd-wp for this memory)",
		     strerror(errno));

	ASSERT_EQ(0, clear_soft_dirty());
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	ASSERT_EQ(0, ioctl(self->uffd, UFFDIO_WRITEPROTECT, &wp))
		TH_LOG("UFFDIO_WRITEPROTECT(WP): %s", strerror(errno));
	wp.mode = 0;
	ASSERT_EQ(0, ioctl(self->uffd, UFFDIO_WRITEPROTECT, &wp))
		TH_LOG("UFFDIO_WRITEPROTECT(0): %s", strerror(errno));
	for (i = 0; i < NR_PAGES; i++)
		self->mem[i * self->ps] = 3;
	clean = count_clean(self);
	ASSERT_EQ(0, clean)
		TH_LOG("%d of %d pages written after a uffd-wp un-protect are not soft-dirty",
		       clean, NR_PAGES);
}

TEST_HARNESS_MAIN
