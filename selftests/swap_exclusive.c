// SPDX-License-Identifier: GPL-2.0
/*
 * Does an anonymous page stay exclusive across swapout while somebody
 * holds a FOLL_GET reference on it?
 *
 * vmsplice() takes a R/O FOLL_GET reference on each page it splices into
 * a pipe; the pipe then reads whatever the page holds at read time.
 * Reclaim can still unmap such a page and write it to swap; it stays in
 * the swap cache because of the extra reference. When the process faults
 * it back in, the kernel must restore PG_anon_exclusive from the swap
 * PTE: if it cannot (no __HAVE_ARCH_PTE_SWP_EXCLUSIVE), the page looks
 * shared, the next write fault copies it, and the pipe keeps the stale
 * original while the process writes into the copy.
 *
 * The same holds for R/W FOLL_GET references (O_DIRECT reads in 6.1),
 * taken and written through with cowguard.ko's hooks: a write through the
 * reference after swap-in must land in the page the process uses.
 *
 * Each case ends in exactly one result line. The "resident" cases run the
 * same steps without the swapout: they must pass on every kernel and show
 * that the reference really sees the process's writes and vice versa.
 *
 * Memory contexts: base pages, a PMD-mapped THP and a PTE-mapped THP; in
 * a THP the NR_PAGES pages tested are spread over the whole huge page.
 * 6.1 reclaim never swaps out a THP that has references beyond its
 * mappings (can_split_folio() refuses to split it, and a THP is only
 * swapped whole or split), and 6.12 does not in these tests either: the
 * cases that hold a reference across a swapout report that as a SKIP in
 * the THP contexts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/swap.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "cowguard_test.h"
#include "cowguard.h"


#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define PM_SWAP		(1ULL << 62)

/* Few enough pages for one pipe: each page is one pipe buffer. */
#define NR_PAGES	8

static uint64_t pagemap_entry(int pagemap_fd, void *addr, size_t pagesize)
{
	uint64_t ent = 0;
	off_t off = (uintptr_t)addr / pagesize * sizeof(ent);

	if (pread(pagemap_fd, &ent, sizeof(ent), off) != sizeof(ent))
		return 0;
	return ent;
}

FIXTURE(swap_exclusive)
{
	size_t pagesize;
	size_t size;		/* the whole mapping under test */
	size_t stride;		/* distance between tested pages */
	char *mem;
	int pipefd[2];
	int pagemap_fd;
	int hooks_fd;		/* -1 without cowguard.ko */
};

/* Memory contexts the cases run across. */
FIXTURE_VARIANT(swap_exclusive)
{
	bool thp;		/* one PMD-sized THP instead of base pages */
	bool pte_mapped;	/* ... mapped by PTEs */
};

FIXTURE_VARIANT_ADD(swap_exclusive, base_pages)
{
	.thp = false,
};

FIXTURE_VARIANT_ADD(swap_exclusive, thp_pmd)
{
	.thp = true,
	.pte_mapped = false,
};

FIXTURE_VARIANT_ADD(swap_exclusive, thp_pte)
{
	.thp = true,
	.pte_mapped = true,
};

/* The i-th tested page. */
static char *page(FIXTURE_DATA(swap_exclusive) *self, size_t i)
{
	return self->mem + i * self->stride;
}

/* KPF_THP of the page mapped at addr (root can read PFNs and kpageflags). */
static bool is_thp(int pagemap_fd, void *addr, size_t ps)
{
	uint64_t ent = pagemap_entry(pagemap_fd, addr, ps), flags = 0;
	uint64_t pfn = ent & ((1ULL << 55) - 1);
	int fd;

	if (!(ent & PM_PRESENT) || !pfn)
		return false;
	fd = open("/proc/kpageflags", O_RDONLY);
	if (fd < 0)
		return false;
	if (pread(fd, &flags, sizeof(flags), pfn * sizeof(flags)) !=
	    sizeof(flags))
		flags = 0;
	close(fd);
	return flags & (1ULL << 22);	/* KPF_THP */
}

FIXTURE_SETUP(swap_exclusive)
{
	size_t i, thp = thp_size();

	self->pagesize = getpagesize();
	self->pipefd[0] = self->pipefd[1] = -1;
	self->hooks_fd = -1;
	self->mem = MAP_FAILED;
	self->pagemap_fd = open("/proc/self/pagemap", O_RDONLY);
	ASSERT_GE(self->pagemap_fd, 0);

	if (!variant->thp) {
		self->size = NR_PAGES * self->pagesize;
		self->stride = self->pagesize;
		self->mem = mmap(NULL, self->size, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(self->mem, MAP_FAILED);
		madvise(self->mem, self->size, MADV_NOHUGEPAGE);
	} else {
		char *raw;

		if (!thp)
			SKIP(return, "no THP support (no hpage_pmd_size)");
		if (thp / self->pagesize > COWGUARD_MAX_PAGES)
			SKIP(return, "THP of %zu pages: more than cowguard.ko holds",
			     thp / self->pagesize);
		self->size = thp;
		self->stride = thp / NR_PAGES;
		/* Map twice the size and keep the aligned half. */
		raw = mmap(NULL, 2 * thp, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(raw, MAP_FAILED);
		self->mem = (char *)(((uintptr_t)raw + thp - 1) & ~(thp - 1));
		if (self->mem > raw)
			munmap(raw, self->mem - raw);
		munmap(self->mem + thp, raw + thp - self->mem);
		ASSERT_EQ(0, madvise(self->mem, self->size, MADV_HUGEPAGE))
			TH_LOG("MADV_HUGEPAGE: %s", strerror(errno));
	}

	/* First touch by a write: every page is anonymous and exclusive. */
	memset(self->mem, 0x5f, self->size);
	for (i = 0; i < NR_PAGES; i++)
		memset(page(self, i), 0xa0 + i, self->pagesize);

	if (variant->thp) {
		if (!is_thp(self->pagemap_fd, self->mem, self->pagesize))
			SKIP(return, "no THP populated (allocation failed or THP disabled)");
		if (variant->pte_mapped) {
			/* A protection change on one page splits the PMD. */
			ASSERT_EQ(0, mprotect(self->mem + self->pagesize,
					      self->pagesize, PROT_READ));
			ASSERT_EQ(0, mprotect(self->mem + self->pagesize,
					      self->pagesize,
					      PROT_READ | PROT_WRITE));
			if (!is_thp(self->pagemap_fd, self->mem, self->pagesize))
				SKIP(return, "THP split instead of PTE-mapped");
		}
	}

	ASSERT_EQ(pipe(self->pipefd), 0);
	self->hooks_fd = open(COWGUARD_HOOKS_PATH, O_RDWR);
}

FIXTURE_TEARDOWN(swap_exclusive)
{
	if (self->pipefd[0] >= 0)
		close(self->pipefd[0]);
	if (self->pipefd[1] >= 0)
		close(self->pipefd[1]);
	if (self->pagemap_fd >= 0)
		close(self->pagemap_fd);
	if (self->hooks_fd >= 0)
		close(self->hooks_fd);
	if (self->mem != MAP_FAILED)
		munmap(self->mem, self->size);
}

/*
 * Push every page out with MADV_PAGEOUT and check with pagemap that each
 * one left. Returns false, after reporting SKIP, when that is impossible.
 */
static bool page_out(struct __test_metadata *_metadata,
		     FIXTURE_DATA(swap_exclusive) *self)
{
	size_t ps = self->pagesize, i;

	if (!swap_active())
		SKIP(return false, "no active swap area");
	if (madvise(self->mem, self->size, MADV_PAGEOUT))
		SKIP(return false, "MADV_PAGEOUT: %s", strerror(errno));
	for (i = 0; i < NR_PAGES; i++) {
		uint64_t ent = pagemap_entry(self->pagemap_fd, page(self, i), ps);

		if (!(ent & PM_SWAP) || (ent & PM_PRESENT))
			SKIP(return false,
			     "page %zu not swapped out by MADV_PAGEOUT (pagemap %#llx)%s",
			     i, (unsigned long long)ent,
			     self->stride != ps ?
			     ": reclaim does not swap out a THP with references beyond its mappings" :
			     "");
	}
	return true;
}

/* One R/O FOLL_GET reference per tested page, held by the pipe. */
static ssize_t splice_pages(FIXTURE_DATA(swap_exclusive) *self)
{
	struct iovec iov[NR_PAGES];
	size_t i;

	for (i = 0; i < NR_PAGES; i++) {
		iov[i].iov_base = page(self, i);
		iov[i].iov_len = self->pagesize;
	}
	return vmsplice(self->pipefd[1], iov, NR_PAGES, 0);
}

/*
 * Read back what the pipe holds for each tested page, after the process
 * wrote 0xb0 + i to page i: the pages whose pipe copy differs.
 */
static int pipe_mismatches(struct __test_metadata *_metadata,
			   FIXTURE_DATA(swap_exclusive) *self)
{
	size_t ps = self->pagesize, len = NR_PAGES * ps, i;
	char *buf = malloc(len);
	int replaced = 0;

	ASSERT_NE(buf, NULL);
	ASSERT_EQ(read(self->pipefd[0], buf, len), (ssize_t)len);
	for (i = 0; i < NR_PAGES; i++) {
		if (!memcmp(buf + i * ps, page(self, i), ps))
			continue;
		replaced++;
		TH_LOG("page %zu: pipe reads %#x, process wrote %#x",
		       i, (unsigned char)buf[i * ps], 0xb0 + (unsigned int)i);
	}
	free(buf);
	return replaced;
}

/*
 * Take R/O FOLL_GET references with vmsplice(), optionally push the pages
 * out, write new contents and count the pages whose pipe copy did not
 * follow the write.
 */
static int vmsplice_write_and_compare(struct __test_metadata *_metadata,
				      FIXTURE_DATA(swap_exclusive) *self,
				      bool pageout)
{
	size_t ps = self->pagesize, len = NR_PAGES * ps;
	size_t i;

	ASSERT_EQ(splice_pages(self), (ssize_t)len)
		TH_LOG("vmsplice: %s", strerror(errno));

	if (pageout && !page_out(_metadata, self))
		return -1;

	/* Write fault on each page: swap-in, then reuse or copy. */
	for (i = 0; i < NR_PAGES; i++)
		memset(page(self, i), 0xb0 + i, ps);

	return pipe_mismatches(_metadata, self);
}

TEST_F(swap_exclusive, vmsplice_ro_resident)
{
	int replaced;

	if (setup_skipped(_metadata))
		return;
	replaced = vmsplice_write_and_compare(_metadata, self, false);
	ASSERT_EQ(replaced, 0)
		TH_LOG("%d of %d pages copied on write without any swapout",
		       replaced, NR_PAGES);
}

TEST_F(swap_exclusive, vmsplice_ro_swapout)
{
	int replaced;

	if (setup_skipped(_metadata))
		return;
	replaced = vmsplice_write_and_compare(_metadata, self, true);
	if (replaced < 0)
		return;		/* skipped, reason already printed */
	ASSERT_EQ(replaced, 0)
		TH_LOG("%d of %d pages replaced by a copy on the first write after swap-in: PG_anon_exclusive was lost in the swap PTE",
		       replaced, NR_PAGES);
}

/*
 * swapoff instead of a fault: unuse_pte() maps the pages back while the
 * pipe still holds its references, and must restore PG_anon_exclusive from
 * the swap PTEs; the write after it must then reuse every page.
 */
TEST_F(swap_exclusive, vmsplice_ro_swapoff)
{
	size_t ps = self->pagesize, len = NR_PAGES * ps, i;
	int replaced, ret;
	char dev[200];

	if (setup_skipped(_metadata))
		return;
	if (!swap_device(dev, sizeof(dev)))
		SKIP(return, "no active swap area");
	ASSERT_EQ(splice_pages(self), (ssize_t)len);
	if (!page_out(_metadata, self))
		return;
	ret = swapoff(dev);
	ASSERT_EQ(0, ret) TH_LOG("swapoff %s: %s", dev, strerror(errno));
	for (i = 0; i < NR_PAGES; i++) {
		uint64_t ent = pagemap_entry(self->pagemap_fd, page(self, i), ps);

		EXPECT_TRUE(!!(ent & PM_PRESENT))
			TH_LOG("page %zu not mapped back by swapoff (pagemap %#llx)",
			       i, (unsigned long long)ent);
	}
	for (i = 0; i < NR_PAGES; i++)
		memset(page(self, i), 0xb0 + i, ps);
	/* Swap back on before anything can fail: later tests need it. */
	ASSERT_EQ(0, swapon(dev, 0)) TH_LOG("swapon %s: %s", dev, strerror(errno));

	replaced = pipe_mismatches(_metadata, self);
	ASSERT_EQ(0, replaced)
		TH_LOG("%d of %d pages copied on the first write after swapoff: unuse_pte() did not restore PG_anon_exclusive",
		       replaced, NR_PAGES);
}

/* Tested pages whose first byte is not base + i. */
static int count_unexpected(FIXTURE_DATA(swap_exclusive) *self,
			    unsigned char base)
{
	int bad = 0;
	size_t i;

	for (i = 0; i < NR_PAGES; i++)
		if ((unsigned char)*page(self, i) != (unsigned char)(base + i))
			bad++;
	return bad;
}

/*
 * fork() after swapout shares the swap entries: the marker must go, or
 * whichever process faults first maps the shared page exclusive and
 * writable and the other one sees its writes. Parent and child must stay
 * isolated in both directions; this holds on every correct kernel.
 */
TEST_F(swap_exclusive, fork_after_swapout)
{
	size_t ps = self->pagesize, i;
	int to_child[2], to_parent[2], status, leaked;
	char c = 0;
	pid_t pid;

	if (setup_skipped(_metadata))
		return;
	if (!page_out(_metadata, self))
		return;
	ASSERT_EQ(0, pipe(to_child));
	ASSERT_EQ(0, pipe(to_parent));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		/* Child writes first, then checks the parent's write did not
		 * reach it.
		 */
		for (i = 0; i < NR_PAGES; i++)
			memset(page(self, i), 0xd0 + i, ps);
		if (write(to_parent[1], &c, 1) != 1 ||
		    read(to_child[0], &c, 1) != 1)
			_exit(100);
		_exit(count_unexpected(self, 0xd0));
	}
	ASSERT_EQ(1, read(to_parent[0], &c, 1));
	/* After fork the parent's swap PTEs must not claim exclusivity. */
	if (self->hooks_fd >= 0) {
		for (i = 0; i < NR_PAGES; i++) {
			struct cowguard_query q = {
				.addr = (uintptr_t)page(self, i),
			};

			ASSERT_EQ(0, ioctl(self->hooks_fd, COWGUARD_IOC_QUERY, &q));
			EXPECT_FALSE(!!(q.flags & COWGUARD_Q_SWP_EXCLUSIVE))
				TH_LOG("page %zu: swap PTE still exclusive after fork", i);
		}
	}
	leaked = count_unexpected(self, 0xa0);
	EXPECT_EQ(0, leaked)
		TH_LOG("%d of %d pages show the child's writes in the parent",
		       leaked, NR_PAGES);
	for (i = 0; i < NR_PAGES; i++)
		memset(page(self, i), 0xe0 + i, ps);
	ASSERT_EQ(1, write(to_child[1], &c, 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("%d of %d pages show the parent's writes in the child",
		       WEXITSTATUS(status), NR_PAGES);
	EXPECT_EQ(0, count_unexpected(self, 0xe0));
}

/* READ or WRITE every tested page through the held references. */
static int io_pages(FIXTURE_DATA(swap_exclusive) *self, unsigned long cmd,
		    char *buf)
{
	size_t i;

	for (i = 0; i < NR_PAGES; i++) {
		struct cowguard_io io = {
			.offset = i * self->stride,
			.len = self->pagesize,
			.buf = (uintptr_t)(buf + i * self->pagesize),
		};

		if (ioctl(self->hooks_fd, cmd, &io))
			return -1;
	}
	return 0;
}

/*
 * Take R/W FOLL_GET references with cowguard.ko, optionally push the pages
 * out, let the process write (swap-in and write fault), then write through
 * the references. Counts the pages where either side's write is not seen
 * by the other.
 */
static int foll_get_rw_write_and_compare(struct __test_metadata *_metadata,
					 FIXTURE_DATA(swap_exclusive) *self,
					 bool pageout)
{
	struct cowguard_range range = {
		.addr = (uintptr_t)self->mem, .size = self->size,
		.flags = COWGUARD_WRITE,
	};
	size_t ps = self->pagesize, i;
	int replaced = 0;
	char *buf;

	if (self->hooks_fd < 0)
		SKIP(return -1, "%s: cowguard.ko not loaded",
		     COWGUARD_HOOKS_PATH);
	ASSERT_EQ(0, ioctl(self->hooks_fd, COWGUARD_IOC_GET, &range))
		TH_LOG("COWGUARD_IOC_GET: %s", strerror(errno));
	if (pageout && !page_out(_metadata, self))
		return -1;

	for (i = 0; i < NR_PAGES; i++)
		memset(page(self, i), 0xb0 + i, ps);

	buf = malloc(NR_PAGES * ps);
	ASSERT_NE(buf, NULL);
	/* The reference sees the process's write ... */
	ASSERT_EQ(0, io_pages(self, COWGUARD_IOC_READ, buf));
	for (i = 0; i < NR_PAGES; i++) {
		if (!memcmp(buf + i * ps, page(self, i), ps))
			continue;
		replaced++;
		TH_LOG("page %zu: reference reads %#x, process wrote %#x",
		       i, (unsigned char)buf[i * ps], 0xb0 + (unsigned int)i);
	}
	/* ... and the process sees a write through the reference, the
	 * O_DIRECT read completing into its buffer.
	 */
	for (i = 0; i < NR_PAGES; i++)
		memset(buf + i * ps, 0xc0 + i, ps);
	ASSERT_EQ(0, io_pages(self, COWGUARD_IOC_WRITE, buf));
	for (i = 0; i < NR_PAGES; i++) {
		if (!memcmp(buf + i * ps, page(self, i), ps))
			continue;
		TH_LOG("page %zu: process reads %#x after the reference wrote %#x",
		       i, (unsigned char)*page(self, i),
		       0xc0 + (unsigned int)i);
		replaced++;
	}
	free(buf);
	ASSERT_EQ(0, ioctl(self->hooks_fd, COWGUARD_IOC_PUT));
	return replaced;
}

TEST_F(swap_exclusive, foll_get_rw_resident)
{
	int lost;

	if (setup_skipped(_metadata))
		return;
	lost = foll_get_rw_write_and_compare(_metadata, self, false);
	if (lost < 0)
		return;
	ASSERT_EQ(lost, 0)
		TH_LOG("%d writes lost without any swapout", lost);
}

TEST_F(swap_exclusive, foll_get_rw_swapout)
{
	int lost;

	if (setup_skipped(_metadata))
		return;
	lost = foll_get_rw_write_and_compare(_metadata, self, true);
	if (lost < 0)
		return;
	ASSERT_EQ(lost, 0)
		TH_LOG("%d writes lost between the process and its R/W FOLL_GET references after swap-in: PG_anon_exclusive was lost in the swap PTE",
		       lost);
}

/*
 * The marker itself: an exclusive page pushed out must leave a swap PTE
 * with the exclusive bit set, read directly from the page table.
 */
TEST_F(swap_exclusive, swap_pte_marker)
{
	size_t i;
	int missing = 0;

	if (setup_skipped(_metadata))
		return;
	if (self->hooks_fd < 0)
		SKIP(return, "%s: cowguard.ko not loaded", COWGUARD_HOOKS_PATH);
	if (!page_out(_metadata, self))
		return;
	for (i = 0; i < NR_PAGES; i++) {
		struct cowguard_query q = {
			.addr = (uintptr_t)page(self, i),
		};

		ASSERT_EQ(0, ioctl(self->hooks_fd, COWGUARD_IOC_QUERY, &q));
		ASSERT_EQ((__u32)COWGUARD_SWAP, q.state)
			TH_LOG("page %zu: state %u after pageout", i, q.state);
		if (!(q.flags & COWGUARD_Q_SWP_EXCLUSIVE))
			missing++;
	}
	ASSERT_EQ(0, missing)
		TH_LOG("%d of %d swap PTEs of exclusive pages lack the exclusive marker",
		       missing, NR_PAGES);
}

/* Before the harness forks the first test: see pin_to_one_cpu(). */
static void __attribute__((constructor)) run_on_one_cpu(void)
{
	pin_to_one_cpu();
}

TEST_HARNESS_MAIN
