// SPDX-License-Identifier: GPL-2.0
/*
 * The soft-dirty invariant under concurrent page table changes: every page
 * whose content changed after clear_refs (echo 4) returned must be reported
 * soft-dirty by /proc/pid/pagemap. Over-reporting is allowed, missing a
 * changed page is not: a checkpointing tool copies only what is reported.
 *
 * Each context runs one stressor thread against the same mapping while the
 * test loops: clean, clear_refs, snapshot the content, write, and check
 * that every page whose content differs from the snapshot is soft-dirty.
 * The content is read before pagemap, so a write that lands after the
 * content was read is simply not checked in that round.
 *
 *   migrate_thp   move_pages() bounces MADV_FREE'd (clean) PMD THPs between
 *                 two NUMA nodes: 6.1 clears only the soft-dirty bit of a
 *                 writable migration entry, migration then restores a
 *                 writable clean PMD, and the next write never faults.
 *   migrate_pte   the same with base pages. A 4 KiB copy leaves the
 *                 migration entry in place for a short time: 6.1 loses
 *                 a write here in some runs only (make check accepts
 *                 either result on the base, never a loss patched).
 *   pageout       MADV_PAGEOUT pushes the pages to swap and back.
 *   proc_mem      a thread writes through /proc/self/mem, the FOLL_GET path
 *                 (access_remote_vm()) that writes behind the page tables.
 *   proc_mem_pageout, proc_mem_migrate
 *                 that writer together with pageout or base-page migration
 *                 on the same pages: a page the writer holds between its
 *                 GUP and its copy is unmapped to a swap or migration
 *                 entry, which a walk under mmap_read_lock must not clean.
 *   ksm           ksmd merges the pages, which the test zeroes every round
 *                 (MADV_MERGEABLE, ksmd at full speed for the case).
 *   mmap_churn    a thread maps and unmaps a page elsewhere, so that a
 *                 writer of mmap_lock waits during every walk: a walk that
 *                 lets it in stops and goes on later, from where it
 *                 stopped. Nothing else touches the region, so the check
 *                 is exact both ways: a page that did not change must be
 *                 clean too (a walk that skipped part of the range after
 *                 a stop leaves it soft-dirty). Over a region of
 *                 MMAP_CHURN_SCALE times the others', so that a walk
 *                 lasts long enough to stop (about 0.7 ms in the x86_64
 *                 guest).
 *
 * Every round is bounded; the case ends after ROUNDS rounds or SECONDS
 * seconds over a REGION_SIZE region (or what the environment says:
 * race_bound()) and prints what it did. SKIP says why when the kernel or the
 * guest lacks what a context needs (soft-dirty, two nodes, THP).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "cowguard_test.h"

#define REGION_SIZE	(16UL << 20)
#define THP_SIZE	(2UL << 20)
#define ROUNDS		2000
#define SECONDS		15
#define MMAP_CHURN_SCALE	4

#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE	(1 << 1)
#endif

enum stressor { MIGRATE, PAGEOUT, PROC_MEM, KSM, MMAP };

FIXTURE(soft_dirty_race)
{
	size_t ps, nr, size;
	char *mem;		/* size bytes, THP_SIZE aligned */
	void *map;		/* what mmap() returned, for munmap() */
	size_t map_len;
	uint64_t *snap, *now, *ents;
	bool thp;
	int mem_fd;		/* /proc/self/mem, for PROC_MEM */
	char ksm_run[16];	/* ksmd's settings before the test, for KSM */
	char ksm_sleep[16];
	struct stressor_arg {
		void *self;
		enum stressor stressor;
	} args[2];
	pthread_t threads[2];
	int nr_running;
	atomic_bool stop;
	atomic_ulong ops;	/* stressor operations that took effect */
};

FIXTURE_VARIANT(soft_dirty_race)
{
	enum stressor stressor;
	bool thp;		/* back the region with PMD THPs */
	bool clean_first;	/* MADV_FREE each round: clean folios */
	bool main_writes;	/* the test thread writes too */
	bool zero_first;	/* zero every page each round: KSM merges them */
	bool with_proc_mem;	/* a /proc/self/mem writer besides the stressor */
	bool exact;		/* nothing else changes the region's soft-dirty bits */
	unsigned int scale;	/* times the region's pages (0: 1) */
};

FIXTURE_VARIANT_ADD(soft_dirty_race, migrate_thp)
{
	.stressor = MIGRATE, .thp = true, .clean_first = true,
	.main_writes = true,
};

FIXTURE_VARIANT_ADD(soft_dirty_race, migrate_pte)
{
	.stressor = MIGRATE, .thp = false, .clean_first = true,
	.main_writes = true,
};

FIXTURE_VARIANT_ADD(soft_dirty_race, pageout)
{
	.stressor = PAGEOUT, .thp = false, .clean_first = false,
	.main_writes = true,
};

FIXTURE_VARIANT_ADD(soft_dirty_race, ksm)
{
	.stressor = KSM, .thp = false, .clean_first = false,
	.main_writes = true, .zero_first = true,
};

/* Only /proc/self/mem writes: a fault by the test would hide them. */
FIXTURE_VARIANT_ADD(soft_dirty_race, proc_mem)
{
	.stressor = PROC_MEM, .thp = false, .clean_first = false,
	.main_writes = false,
};

FIXTURE_VARIANT_ADD(soft_dirty_race, proc_mem_pageout)
{
	.stressor = PAGEOUT, .thp = false, .clean_first = false,
	.main_writes = false, .with_proc_mem = true,
};

FIXTURE_VARIANT_ADD(soft_dirty_race, proc_mem_migrate)
{
	.stressor = MIGRATE, .thp = false, .clean_first = false,
	.main_writes = false, .with_proc_mem = true,
};

/*
 * Read-only, so that it never merges with the region's VMA: a new mapping
 * merged into it would make the whole region soft-dirty (VM_SOFTDIRTY).
 */
FIXTURE_VARIANT_ADD(soft_dirty_race, mmap_churn)
{
	.stressor = MMAP, .thp = false, .clean_first = false,
	.main_writes = true, .exact = true, .scale = MMAP_CHURN_SCALE,
};

/* Bytes of AnonHugePages in the VMA at addr, from smaps. */
static unsigned long anon_huge_bytes(void *addr)
{
	char line[512];
	bool in_vma = false;
	unsigned long kb = 0;
	uintptr_t a = (uintptr_t)addr;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;

		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in_vma = a >= start && a < end;
			continue;
		}
		if (in_vma && sscanf(line, "AnonHugePages: %lu kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb << 10;
}

#define KSM_DIR "/sys/kernel/mm/ksm/"

static int ksm_set(const char *knob, const char *val)
{
	char path[96];
	int fd, ret = -1;

	snprintf(path, sizeof(path), KSM_DIR "%s", knob);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	if (write(fd, val, strlen(val)) == (ssize_t)strlen(val))
		ret = 0;
	close(fd);
	return ret;
}

/* A ksm knob into buf (newline stripped); false when unreadable. */
static bool ksm_read(const char *knob, char *buf, size_t len)
{
	char path[96];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), KSM_DIR "%s", knob);
	f = fopen(path, "r");
	if (!f)
		return false;
	ok = fgets(buf, len, f) != NULL;
	fclose(f);
	if (ok)
		buf[strcspn(buf, "\n")] = '\0';
	return ok;
}

static long ksm_get(const char *knob)
{
	char buf[32];

	return ksm_read(knob, buf, sizeof(buf)) ? atol(buf) : -1;
}

/* Move the region to node, one page per step; returns the pages moved. */
static unsigned long move_region(FIXTURE_DATA(soft_dirty_race) *self,
				 size_t step, int node)
{
	enum { BATCH = 256 };
	void *pages[BATCH];
	int nodes[BATCH], status[BATCH];
	unsigned long moved = 0;
	size_t off = 0;

	while (off < self->size && !atomic_load(&self->stop)) {
		int n, i;

		for (n = 0; n < BATCH && off < self->size; n++, off += step) {
			pages[n] = self->mem + off;
			nodes[n] = node;
		}
		if (syscall(SYS_move_pages, 0, n, pages, nodes, status,
			    MPOL_MF_MOVE))
			continue;
		for (i = 0; i < n; i++)
			if (status[i] == node)
				moved++;
	}
	return moved;
}

static void *stressor_thread(void *arg)
{
	struct stressor_arg *sa = arg;
	FIXTURE_DATA(soft_dirty_race) *self = sa->self;
	unsigned int seed = 1;
	uint64_t stamp = 0;
	int node = 1;

	while (!atomic_load(&self->stop)) {
		void *p;
		size_t page;

		switch (sa->stressor) {
		case MIGRATE:
			atomic_fetch_add(&self->ops,
					 move_region(self, self->thp ? THP_SIZE : self->ps,
						     node));
			node = !node;
			break;
		case PAGEOUT:
			if (!madvise(self->mem, self->size, MADV_PAGEOUT))
				atomic_fetch_add(&self->ops, 1);
			break;
		case KSM:
			/* Count the polls that find merged pages. */
			if (ksm_get("pages_sharing") > 0)
				atomic_fetch_add(&self->ops, 1);
			usleep(10000);
			break;
		case MMAP:
			p = mmap(NULL, self->ps, PROT_READ,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (p != MAP_FAILED && !munmap(p, self->ps))
				atomic_fetch_add(&self->ops, 1);
			break;
		case PROC_MEM:
			/* A stamp no page held before: the write changes it. */
			stamp++;
			page = rand_r(&seed) % self->nr;
			if (pwrite(self->mem_fd, &stamp, sizeof(stamp),
				   (uintptr_t)(self->mem + page * self->ps)) ==
			    sizeof(stamp))
				atomic_fetch_add(&self->ops, 1);
			break;
		}
	}
	return NULL;
}

FIXTURE_SETUP(soft_dirty_race)
{
	int thp_err, tries;
	size_t i;

	self->ps = getpagesize();
	/* A THP context needs at least one whole THP. */
	self->size = race_bound("COWGUARD_RACE_PAGES", REGION_SIZE / self->ps,
				REGION_SIZE / self->ps) * self->ps;
	if (variant->scale)
		self->size *= variant->scale;
	if (variant->thp)
		self->size = (self->size + THP_SIZE - 1) & ~(THP_SIZE - 1);
	self->nr = self->size / self->ps;
	self->thp = variant->thp;
	self->mem_fd = -1;
	self->nr_running = 0;
	atomic_init(&self->stop, false);
	atomic_init(&self->ops, 0);

	self->snap = calloc(self->nr, sizeof(uint64_t));
	self->now = calloc(self->nr, sizeof(uint64_t));
	self->ents = calloc(self->nr, sizeof(uint64_t));
	ASSERT_TRUE(self->snap && self->now && self->ents);

	self->map_len = self->size + THP_SIZE;
	self->map = mmap(NULL, self->map_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	self->mem = (char *)(((uintptr_t)self->map + THP_SIZE - 1) &
			     ~(THP_SIZE - 1));
	thp_err = madvise(self->mem, self->size,
			  variant->thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE) ? errno : 0;
	for (i = 0; i < self->nr; i++)
		*(uint64_t *)(self->mem + i * self->ps) = i + 1;
	/*
	 * Under memory pressure (make soak) a THP may not be free at the
	 * first fault: compact the memory and fault again, a few times.
	 */
	for (tries = 0; variant->thp && !thp_err && tries < 5 &&
	     anon_huge_bytes(self->mem) < self->size / 2; tries++) {
		int fd = open("/proc/sys/vm/compact_memory", O_WRONLY);

		if (fd >= 0 && write(fd, "1", 1) < 0)
			TH_LOG("compact_memory: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		madvise(self->mem, self->size, MADV_DONTNEED);
		for (i = 0; i < self->nr; i++)
			*(uint64_t *)(self->mem + i * self->ps) = i + 1;
	}

	if (!soft_dirty_supported(self->mem))
		SKIP(return, "kernel without soft-dirty tracking (no \"sd\" in smaps VmFlags)");
	if (variant->thp && thp_err)
		SKIP(return, "MADV_HUGEPAGE: %s (kernel without THP)",
		     strerror(thp_err));
	if (variant->thp && anon_huge_bytes(self->mem) < self->size / 2)
		SKIP(return, "no THP populated (%lu of %lu KiB in AnonHugePages)",
		     anon_huge_bytes(self->mem) >> 10, self->size >> 10);
	if (variant->stressor == MIGRATE && !has_node(1))
		SKIP(return, "one NUMA node: move_pages() has nowhere to go (boot with numa=fake=2)");
	if (variant->stressor == KSM) {
		if (!ksm_read("run", self->ksm_run, sizeof(self->ksm_run)) ||
		    !ksm_read("sleep_millisecs", self->ksm_sleep, sizeof(self->ksm_sleep)))
			SKIP(return, "%s: %s (kernel without KSM)", KSM_DIR, strerror(errno));
		ASSERT_EQ(0, madvise(self->mem, self->size, MADV_MERGEABLE))
			TH_LOG("MADV_MERGEABLE: %s", strerror(errno));
		ASSERT_EQ(0, ksm_set("sleep_millisecs", "0"));
		ASSERT_EQ(0, ksm_set("pages_to_scan", "4096"));
		ASSERT_EQ(0, ksm_set("run", "1"));
	}
	if (variant->stressor == PROC_MEM || variant->with_proc_mem) {
		self->mem_fd = open("/proc/self/mem", O_RDWR);
		ASSERT_LE(0, self->mem_fd) TH_LOG("/proc/self/mem: %s", strerror(errno));
	}

	self->args[0].stressor = variant->stressor;
	self->args[1].stressor = PROC_MEM;
	for (i = 0; i < (variant->with_proc_mem ? 2U : 1U); i++) {
		self->args[i].self = self;
		ASSERT_EQ(0, pthread_create(&self->threads[i], NULL,
					    stressor_thread, &self->args[i]));
		self->nr_running++;
	}
}

static void stop_stressors(FIXTURE_DATA(soft_dirty_race) *self)
{
	atomic_store(&self->stop, true);
	while (self->nr_running > 0)
		pthread_join(self->threads[--self->nr_running], NULL);
}

FIXTURE_TEARDOWN(soft_dirty_race)
{
	stop_stressors(self);
	if (self->mem_fd >= 0)
		close(self->mem_fd);
	if (self->ksm_run[0]) {
		ksm_set("run", self->ksm_run);
		ksm_set("sleep_millisecs", self->ksm_sleep);
	}
	if (self->map && self->map != MAP_FAILED)
		munmap(self->map, self->map_len);
	free(self->snap);
	free(self->now);
	free(self->ents);
}

TEST_F_TIMEOUT(soft_dirty_race, written_after_clear_is_soft_dirty,
	       2 * RACE_MAX_SECONDS + 30)
{
	unsigned long rounds = 0, changed = 0, lost = 0, first_page = 0;
	unsigned long first_round = 0, dropped = 0, unchanged = 0, stale = 0;
	uint64_t first_was = 0, first_now = 0;
	unsigned long max_rounds = race_bound("COWGUARD_RACE_ROUNDS", ROUNDS, ~0UL);
	unsigned long max_seconds = race_seconds(SECONDS);
	struct timespec t0;
	size_t i;

	if (setup_skipped(_metadata))
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (rounds < max_rounds && seconds_since(&t0) < max_seconds) {
		rounds++;
		if (variant->clean_first)
			madvise(self->mem, self->size, MADV_FREE);
		if (variant->zero_first) {
			memset(self->mem, 0, self->size);
			/* ksmd's turn: 50 ms for the whole REGION_SIZE */
			usleep(50000 * (self->size >> 12) / (REGION_SIZE >> 12));
		}
		ASSERT_EQ(0, clear_soft_dirty());
		for (i = 0; i < self->nr; i++)
			self->snap[i] = *(volatile uint64_t *)(self->mem + i * self->ps);
		if (variant->main_writes) {
			/* Half the pages per round, a value none held before. */
			for (i = rounds & 1; i < self->nr; i += 2)
				*(volatile uint64_t *)(self->mem + i * self->ps) =
					(uint64_t)rounds << 32 | i;
		}
		for (i = 0; i < self->nr; i++)
			self->now[i] = *(volatile uint64_t *)(self->mem + i * self->ps);
		ASSERT_TRUE(pagemap_read(self->mem, self->nr, self->ents));
		for (i = 0; i < self->nr; i++) {
			if (self->now[i] == self->snap[i]) {
				if (!variant->exact)
					continue;
				/* Written before clear_refs only: must be clean. */
				unchanged++;
				if (self->ents[i] & PM_SOFT_DIRTY)
					stale++;
				continue;
			}
			/*
			 * MADV_FREE lets reclaim drop a clean page, which then
			 * reads zero: no write changed it. The test never
			 * writes zero there. Only under memory pressure (make
			 * soak).
			 */
			if (variant->clean_first && !self->now[i]) {
				dropped++;
				continue;
			}
			changed++;
			if (self->ents[i] & PM_SOFT_DIRTY)
				continue;
			if (!lost++) {
				first_page = i;
				first_round = rounds;
				first_was = self->snap[i];
				first_now = self->now[i];
			}
		}
	}
	stop_stressors(self);

	TH_LOG("%lu rounds in %.1f s, %lu stressor operations, %lu pages changed after clear_refs, %lu of them not soft-dirty",
	       rounds, seconds_since(&t0), atomic_load(&self->ops), changed, lost);
	if (dropped)
		TH_LOG("%lu MADV_FREE'd pages dropped by reclaim (read zero again): not counted",
		       dropped);
	if (variant->exact)
		TH_LOG("%lu pages unchanged after clear_refs, %lu of them still soft-dirty",
		       unchanged, stale);
	race_summary(rounds, lost);
	ASSERT_NE(0UL, atomic_load(&self->ops))
		TH_LOG("the stressor never took effect: nothing raced");
	ASSERT_NE(0UL, changed) TH_LOG("no page changed: nothing was checked");
	EXPECT_EQ(0UL, lost)
		TH_LOG("first: page %lu in round %lu changed after clear_refs returned (%#llx to %#llx) and is not soft-dirty",
		       first_page, first_round, (unsigned long long)first_was,
		       (unsigned long long)first_now);
	if (variant->exact) {
		ASSERT_NE(0UL, unchanged) TH_LOG("no page stayed unchanged: nothing was checked");
		EXPECT_EQ(0UL, stale)
			TH_LOG("clear_refs left pages soft-dirty that nothing wrote afterwards");
	}
}

TEST_HARNESS_MAIN
