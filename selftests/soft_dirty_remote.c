// SPDX-License-Identifier: GPL-2.0
/*
 * A write through /proc/pid/mem or ptrace that completes after clear_refs
 * (echo 4) returned must show as soft-dirty, whatever the page table held
 * for the page while clear_refs walked it.
 *
 * access_remote_vm() holds mmap_read_lock from its get_user_pages_remote()
 * to its copy, which goes through a kernel mapping and never faults: only
 * the soft-dirty bit that GUP set records the write. When clear_refs takes
 * mmap_write_lock it cannot run between the two and waits for the writer.
 * A clear_refs that walks under mmap_read_lock can, and then must leave
 * soft-dirty set on a page that such a writer holds, also when reclaim or
 * migration has replaced the PTE by a swap or migration entry meanwhile.
 *
 * cowguard.ko's COWGUARD_IOC_REMOTE_WRITE is that writer, with the time
 * between its GUP and its copy under the test's control:
 *
 *   1. a thread starts the remote write of a stamp into one page, which
 *      the test wrote and then cleaned with clear_refs; the hook holds
 *      the page and mmap_lock;
 *   2. the test turns the page's PTE (or PMD) into
 *        swap_entry      a swap entry: MADV_PAGEOUT unmaps the page, the
 *                        writer's reference keeps it in the swap cache;
 *        migration_pte   a migration entry: move_pages() of the page to
 *        migration_pmd   the other node, in a loop on another thread
 *                        (the writer's reference fails every migration);
 *                        _pmd with a PMD-mapped THP;
 *   3. clear_refs; then the test releases the writer, which copies;
 *   4. pagemap must report the page soft-dirty if the copy completed
 *      after clear_refs returned, and the page must hold the stamp.
 *
 * A migration entry exists only while move_pages() runs, so the test
 * repeats clear_refs until one walk met it: the walk write-protects a
 * writable migration entry and the failed migration restores the PTE
 * read-only, which nothing else here does (the writer holds a reference,
 * so the walk leaves the present PTE writable). Every case prints the order
 * it saw. A kernel that takes mmap_write_lock in clear_refs makes it wait
 * for the writer, whose copy then lands before clear_refs returns: the case
 * passes by that order and says so.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "cowguard.h"
#include "cowguard_test.h"

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif
#ifndef MPOL_MF_MOVE
#define MPOL_MF_MOVE	(1 << 1)
#endif

#define THP_SIZE	(2UL << 20)
/*
 * How long the writer holds at most (a kernel whose clear_refs takes the
 * write lock waits that long), and how long the walks may take to meet a
 * migration entry: the writer must still hold when the last walk returns.
 */
#define HOLD_MS		4000
#define MEET_SECONDS	2.5

enum entry { SWAP_ENTRY, MIGRATION_ENTRY };

FIXTURE(soft_dirty_remote)
{
	size_t ps;
	char *map;		/* what mmap() returned */
	size_t map_len;
	char *range;		/* the page, or the THP, being tested */
	size_t range_len;
	char *page;		/* the page the remote writer writes */
	int hooks_fd;
	struct test_thread writer, migrator;
	bool writer_running, migrator_running;
	struct cowguard_remote remote;
	long remote_ret;
	atomic_bool writer_go, migrator_go;
	atomic_bool writer_done;
	atomic_bool stop;
	atomic_ulong migrations;
};

FIXTURE_VARIANT(soft_dirty_remote)
{
	enum entry entry;
	bool thp;
};

FIXTURE_VARIANT_ADD(soft_dirty_remote, swap_entry)
{
	.entry = SWAP_ENTRY,
};

FIXTURE_VARIANT_ADD(soft_dirty_remote, migration_pte)
{
	.entry = MIGRATION_ENTRY,
};

FIXTURE_VARIANT_ADD(soft_dirty_remote, migration_pmd)
{
	.entry = MIGRATION_ENTRY,
	.thp = true,
};

static int query(int fd, void *addr, struct cowguard_query *q)
{
	memset(q, 0, sizeof(*q));
	q->addr = (uintptr_t)addr;
	return ioctl(fd, COWGUARD_IOC_QUERY, q);
}

/*
 * The threads are started, and their stacks mapped, before the test cleans
 * the page: a VMA that is new since the last clear_refs makes the next
 * one take mmap_write_lock for its VM_SOFTDIRTY, which would wait for the
 * writer. They wait for their turn here.
 */
static void wait_for(FIXTURE_DATA(soft_dirty_remote) *self, atomic_bool *go)
{
	while (!atomic_load(go) && !atomic_load(&self->stop))
		usleep(1000);
}

/* The writer thread. */
static int remote_writer(void *arg)
{
	FIXTURE_DATA(soft_dirty_remote) *self = arg;

	wait_for(self, &self->writer_go);
	if (atomic_load(&self->stop))
		return 0;
	self->remote_ret = ioctl(self->hooks_fd, COWGUARD_IOC_REMOTE_WRITE,
				 &self->remote) ? -errno : 0;
	atomic_store(&self->writer_done, true);
	return 0;
}

/* Bounce the page between nodes 0 and 1 until told to stop. */
static int migrator(void *arg)
{
	FIXTURE_DATA(soft_dirty_remote) *self = arg;
	void *pages[1] = { self->page };
	int node, status;
	unsigned long i;

	wait_for(self, &self->migrator_go);
	for (i = 0; !atomic_load(&self->stop); i++) {
		node = i & 1;
		if (!syscall(SYS_move_pages, 0, 1, pages, &node, &status,
			     MPOL_MF_MOVE))
			atomic_fetch_add(&self->migrations, 1);
	}
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ULL + t.tv_nsec;
}

FIXTURE_SETUP(soft_dirty_remote)
{
	struct cowguard_query q;
	size_t align;

	self->ps = getpagesize();
	self->hooks_fd = -1;
	self->writer_running = false;
	self->migrator_running = false;
	atomic_init(&self->writer_go, false);
	atomic_init(&self->migrator_go, false);
	atomic_init(&self->writer_done, false);
	atomic_init(&self->stop, false);
	atomic_init(&self->migrations, 0);

	align = variant->thp ? THP_SIZE : self->ps;
	self->map_len = 2 * align;
	self->map = mmap(NULL, self->map_len, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->map);
	self->range = (char *)(((uintptr_t)self->map + align - 1) & ~(align - 1));
	self->range_len = align;
	self->page = self->range;
	if (variant->thp) {
		if (madvise(self->range, THP_SIZE, MADV_HUGEPAGE))
			SKIP(return, "MADV_HUGEPAGE: %s (kernel without THP)",
			     strerror(errno));
		/* The writer writes the second subpage: not the head. */
		self->page += self->ps;
	} else {
		madvise(self->map, self->map_len, MADV_NOHUGEPAGE);
	}
	memset(self->range, 1, self->range_len);

	if (!soft_dirty_supported(self->page))
		SKIP(return, "kernel without soft-dirty tracking (no \"sd\" in smaps VmFlags)");
	self->hooks_fd = open(COWGUARD_HOOKS_PATH, O_RDWR);
	if (self->hooks_fd < 0)
		SKIP(return, "%s: %s (cowguard.ko not loaded)", COWGUARD_HOOKS_PATH,
		     strerror(errno));
	if (variant->entry == SWAP_ENTRY && !swap_active())
		SKIP(return, "no active swap area");
	if (variant->entry == MIGRATION_ENTRY && !has_node(1))
		SKIP(return, "one NUMA node: move_pages() has nowhere to go (boot with numa=fake=2)");
	ASSERT_EQ(0, query(self->hooks_fd, self->page, &q));
	if (variant->thp && !(q.flags & COWGUARD_Q_PMD))
		SKIP(return, "no THP populated (allocation failed or THP disabled)");
	ASSERT_EQ((__u32)COWGUARD_PRESENT, q.state);

	/* Swap-out needs the page off every CPU's LRU batch: one CPU. */
	if (variant->entry == SWAP_ENTRY)
		pin_to_one_cpu();
}

FIXTURE_TEARDOWN(soft_dirty_remote)
{
	atomic_store(&self->stop, true);
	if (self->migrator_running)
		test_thread_join(&self->migrator);
	if (self->writer_running) {
		ioctl(self->hooks_fd, COWGUARD_IOC_REMOTE_RELEASE);
		test_thread_join(&self->writer);
	}
	if (self->hooks_fd >= 0)
		close(self->hooks_fd);
	munmap(self->map, self->map_len);
}

TEST_F_TIMEOUT(soft_dirty_remote, written_after_clear_is_soft_dirty, 30)
{
	uint64_t stamp = 0xc0ffee0000000000ULL | (uint64_t)getpid();
	uint64_t held_ns, clear_started_ns = 0, clear_returned_ns = 0, ent, seen;
	struct cowguard_query q;
	unsigned long walks = 0;
	bool met = false;
	__u32 wait_ms = HOLD_MS;
	struct timespec t0;

	if (setup_skipped(_metadata))
		return;

	self->remote.addr = (uintptr_t)self->page;
	self->remote.buf = (uintptr_t)&stamp;
	self->remote.len = sizeof(stamp);
	self->remote.hold_ms = HOLD_MS;
	ASSERT_EQ(0, test_thread_start(&self->writer, remote_writer, self));
	self->writer_running = true;
	if (variant->entry == MIGRATION_ENTRY) {
		ASSERT_EQ(0, test_thread_start(&self->migrator, migrator, self));
		self->migrator_running = true;
	}

	/*
	 * Clean the page, and every VMA of VM_SOFTDIRTY: the stamp is then
	 * the only write to record, and the clear_refs below needs only
	 * mmap_read_lock on a kernel that walks under it. Nothing maps or
	 * unmaps from here on.
	 */
	ASSERT_EQ(0, clear_soft_dirty());
	ASSERT_EQ(0ULL, pagemap_at(self->page) & PM_SOFT_DIRTY)
		TH_LOG("clear_refs left the page soft-dirty before the test wrote it");

	atomic_store(&self->writer_go, true);
	ASSERT_EQ(0, ioctl(self->hooks_fd, COWGUARD_IOC_REMOTE_WAIT, &wait_ms))
		TH_LOG("the remote writer never held the page: %s", strerror(errno));
	held_ns = now_ns();

	if (variant->entry == SWAP_ENTRY) {
		ASSERT_EQ(0, madvise(self->page, self->ps, MADV_PAGEOUT))
			TH_LOG("MADV_PAGEOUT: %s", strerror(errno));
		ASSERT_EQ(0, query(self->hooks_fd, self->page, &q));
		ASSERT_EQ((__u32)COWGUARD_SWAP, q.state)
			TH_LOG("MADV_PAGEOUT left the held page mapped (state %u)",
			       q.state);
		clear_started_ns = now_ns();
		ASSERT_EQ(0, clear_soft_dirty());
		clear_returned_ns = now_ns();
		walks = 1;
		met = true;
	} else {
		/*
		 * Clean: a failed migration restores a dirty PTE or PMD with
		 * pte_mkdirty(), which on x86 sets soft-dirty again; only a
		 * clean one depends on the migration entry's soft-dirty bit.
		 * The writer's GUP dirtied it, another thread's MADV_FREE
		 * (under mmap_read_lock too) cleans it, soft-dirty and
		 * writable as it stays.
		 */
		ASSERT_EQ(0, madvise(self->range, self->range_len, MADV_FREE))
			TH_LOG("MADV_FREE: %s", strerror(errno));
		atomic_store(&self->migrator_go, true);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (!met && !atomic_load(&self->writer_done) &&
		       seconds_since(&t0) < MEET_SECONDS) {
			clear_started_ns = now_ns();
			ASSERT_EQ(0, clear_soft_dirty());
			clear_returned_ns = now_ns();
			walks++;
			ASSERT_EQ(0, query(self->hooks_fd, self->page, &q));
			met = q.state == COWGUARD_PRESENT &&
			      !(q.flags & COWGUARD_Q_WRITE);
		}
	}

	/* The writer first: a move_pages() call can take a second. */
	ioctl(self->hooks_fd, COWGUARD_IOC_REMOTE_RELEASE);
	test_thread_join(&self->writer);
	self->writer_running = false;
	atomic_store(&self->stop, true);
	if (self->migrator_running) {
		test_thread_join(&self->migrator);
		self->migrator_running = false;
	}
	ASSERT_EQ(0, self->remote_ret)
		TH_LOG("COWGUARD_IOC_REMOTE_WRITE: %s", strerror(-self->remote_ret));

	ent = pagemap_at(self->page);
	seen = *(volatile uint64_t *)self->page;
	ASSERT_EQ(stamp, seen)
		TH_LOG("the remote write did not reach the page the process maps");

	/* Milliseconds since the writer began to hold the page. */
#define MS(ns)	((int64_t)((ns) - held_ns) / 1e6)
	TH_LOG("%lu walks, %lu migrations; the last clear_refs ran from %.1f to %.1f ms, the writer copied at %.1f ms (%s)",
	       walks, atomic_load(&self->migrations), MS(clear_started_ns),
	       MS(clear_returned_ns), MS(self->remote.write_ns),
	       self->remote.flags & COWGUARD_REMOTE_RELEASED ? "released" : "hold timed out");
	/*
	 * A released writer copied after the release, which came after the
	 * last clear_refs returned. One whose hold timed out copied at its
	 * timeout: before clear_refs returned when the walk had to wait for
	 * it (the clocks here may tick in jiffies, so "not after" is the
	 * test, not "before").
	 */
	if (!(self->remote.flags & COWGUARD_REMOTE_RELEASED) &&
	    self->remote.write_ns <= clear_returned_ns) {
		/* Only a walk that excluded the writer gets here. */
		TH_LOG("order: clear_refs waited for the writer: holds by order");
		return;
	}
	if (!met)
		SKIP(return, "no clear_refs walk met a migration entry in %.1f s (%lu walks, %lu migrations)",
		     MEET_SECONDS, walks, atomic_load(&self->migrations));
	TH_LOG("order: clear_refs returned, then the writer copied");
	EXPECT_NE(0ULL, ent & PM_SOFT_DIRTY)
		TH_LOG("the page was written after clear_refs returned and is not soft-dirty (pagemap %#llx)",
		       (unsigned long long)ent);
}

TEST_HARNESS_MAIN
