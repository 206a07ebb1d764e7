// SPDX-License-Identifier: GPL-2.0
/*
 * O_DIRECT reads into pages that change under them: the bio holds a
 * FOLL_GET reference on each page for the whole I/O. If the page loses
 * PG_anon_exclusive meanwhile (swapout on an architecture without the
 * swap PTE marker), the next write fault copies it, and the read lands in
 * the old page: the process never sees the data (seed 004).
 *
 * Each round reads the first half of NR_PAGES pages from the scratch
 * disk with one O_DIRECT preadv(), while a writer thread keeps
 * writing a counter into the second half of the same pages and a
 * stressor thread changes their page tables:
 *
 *   pageout     MADV_PAGEOUT to zram in a loop (scenario 6)
 *   clear_refs  soft-dirty clear_refs in a loop (scenario 7)
 *
 * After the read, the first halves must hold what the disk holds for this
 * round and the second halves the writer's last value. Bounded: ROUNDS
 * rounds or SECONDS seconds (or what the environment says, race_bound()).
 * SKIP without the disk (GUEST_DISK_MB in configs/<arch>.conf). The test
 * overwrites the disk from DATA_OFFSET on, and only a disk whose first
 * sector starts with SCRATCH_MAGIC (scratch_disk.h): any other block
 * device is a SKIP, never a victim.
 *
 * Usage: odirect_race [<block device>]   (default SCRATCH_DISK)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "cowguard_test.h"
#include "scratch_disk.h"

#define NR_PAGES	16
#define ROUNDS		2000
#define SECONDS		15
#define DATA_OFFSET	(1L << 20)

static const char *disk_path = SCRATCH_DISK;

enum stressor { PAGEOUT, CLEAR_REFS };

FIXTURE(odirect_race)
{
	size_t ps, half;
	char *mem, *disk_buf;
	int fd;
	enum stressor stressor;
	struct test_thread writer, stressor_thread;
	int nr_threads;
	atomic_bool stop;
	atomic_ulong ops;
	/* The writer's last value per page; it publishes it after writing. */
	atomic_ulong last[NR_PAGES];
};

FIXTURE_VARIANT(odirect_race)
{
	enum stressor stressor;
};

FIXTURE_VARIANT_ADD(odirect_race, pageout)
{
	.stressor = PAGEOUT,
};

FIXTURE_VARIANT_ADD(odirect_race, clear_refs)
{
	.stressor = CLEAR_REFS,
};

/* The byte the disk holds at offset off of page p in round r. */
static unsigned char disk_byte(unsigned long r, size_t p, size_t off)
{
	return (unsigned char)(r * 131 + p * 17 + off / 512 + 1);
}

static int writer_thread(void *arg)
{
	FIXTURE_DATA(odirect_race) *self = arg;
	unsigned long value = 0;
	size_t p = 0;

	while (!atomic_load_explicit(&self->stop, memory_order_relaxed)) {
		volatile unsigned long *slot = (volatile unsigned long *)
			(self->mem + p * self->ps + self->half);

		*slot = ++value;
		atomic_store(&self->last[p], value);
		if (++p == NR_PAGES)
			p = 0;
	}
	return 0;
}

static int stressor_thread(void *arg)
{
	FIXTURE_DATA(odirect_race) *self = arg;

	while (!atomic_load(&self->stop)) {
		int ret = self->stressor == PAGEOUT ?
			madvise(self->mem, NR_PAGES * self->ps, MADV_PAGEOUT) :
			clear_soft_dirty();

		if (!ret)
			atomic_fetch_add(&self->ops, 1);
	}
	return 0;
}

FIXTURE_SETUP(odirect_race)
{
	size_t i;

	self->ps = getpagesize();
	self->half = self->ps / 2;
	self->stressor = variant->stressor;
	self->nr_threads = 0;
	self->mem = MAP_FAILED;
	self->disk_buf = MAP_FAILED;
	atomic_init(&self->stop, false);
	atomic_init(&self->ops, 0);
	for (i = 0; i < NR_PAGES; i++)
		atomic_init(&self->last[i], 0);

	self->fd = open(disk_path, O_RDWR | O_DIRECT);
	if (self->fd < 0)
		SKIP(return, "%s: %s (no scratch disk: GUEST_DISK_MB in configs/<arch>.conf)",
		     disk_path, strerror(errno));
	self->mem = mmap(NULL, NR_PAGES * self->ps, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	madvise(self->mem, NR_PAGES * self->ps, MADV_NOHUGEPAGE);
	memset(self->mem, 0, NR_PAGES * self->ps);
	self->disk_buf = mmap(NULL, NR_PAGES * self->half, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->disk_buf);
	ASSERT_EQ(512, pread(self->fd, self->disk_buf, 512, 0))
		TH_LOG("O_DIRECT read of %s: %s", disk_path, strerror(errno));
	if (memcmp(self->disk_buf, SCRATCH_MAGIC, strlen(SCRATCH_MAGIC)))
		SKIP(return, "%s is not a cowguard scratch disk (no magic in sector 0): not overwriting it",
		     disk_path);

	ASSERT_EQ(0, test_thread_start(&self->writer, writer_thread, self));
	self->nr_threads++;
	ASSERT_EQ(0, test_thread_start(&self->stressor_thread, stressor_thread,
				       self));
	self->nr_threads++;
}

static void stop_threads(FIXTURE_DATA(odirect_race) *self)
{
	atomic_store(&self->stop, true);
	if (self->nr_threads > 0)
		test_thread_join(&self->writer);
	if (self->nr_threads > 1)
		test_thread_join(&self->stressor_thread);
	self->nr_threads = 0;
}

FIXTURE_TEARDOWN(odirect_race)
{
	stop_threads(self);
	if (self->mem != MAP_FAILED)
		munmap(self->mem, NR_PAGES * self->ps);
	if (self->disk_buf != MAP_FAILED)
		munmap(self->disk_buf, NR_PAGES * self->half);
	if (self->fd >= 0)
		close(self->fd);
}

TEST_F_TIMEOUT(odirect_race, read_lands_in_process_page,
	       RACE_MAX_SECONDS + 30)
{
	unsigned long rounds = 0, bad_rounds = 0, bad_pages = 0, bad_writes = 0;
	unsigned long max_rounds = race_bound("COWGUARD_RACE_ROUNDS", ROUNDS, ~0UL);
	unsigned long max_seconds = race_seconds(SECONDS);
	struct iovec iov[NR_PAGES];
	struct timespec t0;
	size_t p, off;

	if (setup_skipped(_metadata))
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (rounds < max_rounds && seconds_since(&t0) < max_seconds) {
		unsigned long bad = 0;

		rounds++;
		/* This round's data on disk, written through its own buffer. */
		for (p = 0; p < NR_PAGES; p++)
			for (off = 0; off < self->half; off++)
				self->disk_buf[p * self->half + off] =
					disk_byte(rounds, p, off);
		ASSERT_EQ((ssize_t)(NR_PAGES * self->half),
			  pwrite(self->fd, self->disk_buf, NR_PAGES * self->half,
				 DATA_OFFSET))
			TH_LOG("O_DIRECT write to %s: %s", disk_path, strerror(errno));

		for (p = 0; p < NR_PAGES; p++) {
			iov[p].iov_base = self->mem + p * self->ps;
			iov[p].iov_len = self->half;
		}
		ASSERT_EQ((ssize_t)(NR_PAGES * self->half),
			  preadv(self->fd, iov, NR_PAGES, DATA_OFFSET))
			TH_LOG("O_DIRECT read from %s: %s", disk_path, strerror(errno));

		for (p = 0; p < NR_PAGES; p++) {
			const unsigned char *page =
				(const unsigned char *)self->mem + p * self->ps;

			for (off = 0; off < self->half; off++)
				if (page[off] != disk_byte(rounds, p, off))
					break;
			if (off < self->half)
				bad++;
		}
		if (bad) {
			bad_rounds++;
			bad_pages += bad;
		}
	}
	stop_threads(self);
	/* The writer has stopped: its last value must be in every page. */
	for (p = 0; p < NR_PAGES; p++)
		if (*(unsigned long *)(self->mem + p * self->ps + self->half) !=
		    atomic_load(&self->last[p]))
			bad_writes++;

	TH_LOG("%lu rounds in %.1f s, %lu stressor operations; read data missing from %lu pages in %lu rounds, writer's last value missing from %lu pages",
	       rounds, seconds_since(&t0), atomic_load(&self->ops), bad_pages,
	       bad_rounds, bad_writes);
	race_summary(rounds, bad_pages + bad_writes);
	ASSERT_NE(0UL, atomic_load(&self->ops))
		TH_LOG("the stressor never took effect: nothing raced");
	EXPECT_EQ(0UL, bad_pages)
		TH_LOG("O_DIRECT data went to a page the process no longer maps");
	EXPECT_EQ(0UL, bad_writes);
}

int main(int argc, char **argv)
{
	if (argc > 2 || (argc == 2 && argv[1][0] != '/')) {
		fprintf(stderr, "usage: %s [<block device path>]\n", argv[0]);
		return 2;
	}
	if (argc == 2)
		disk_path = argv[1];
	return test_harness_run(1, argv);
}
