// SPDX-License-Identifier: GPL-2.0
/*
 * Lost increments: writer threads on every CPU increment their own slot
 * in each page of a shared private mapping, round and round, while
 * stressor threads change the page tables under them. When they stop,
 * each slot summed over the pages must equal the increments its writer
 * made. A write is lost when a write fault copies a page while another
 * CPU still writes to the original through a stale writable TLB entry,
 * which is what the deferred TLB flush of a write-protector under
 * mmap_read_lock (soft-dirty clear_refs, uffd-wp) allows unless the
 * copying fault flushes first (seeds 000 and 001).
 *
 * Contexts (stressors):
 *   clear_refs_gup    clear_refs soft-dirty in a loop, and a thread that
 *                     takes and drops FOLL_GET references to the pages
 *                     through cowguard.ko (SKIP without the module)
 *   clear_refs_mlock  the same with mlock()/munlock() instead
 *   uffd_wp           UFFDIO_WRITEPROTECT on and off in a loop, with a
 *                     handler thread that un-protects what writers hit
 *                     (SKIP without uffd-wp for anonymous memory)
 *
 * The writable pages are the first of a larger mapping, so that each
 * clear_refs walk keeps its TLB flush pending for a while after it
 * write-protected them. A write can only be lost when one CPU still has
 * a writable TLB entry while another has none and faults. So the first
 * writer has CPU 0 to itself and keeps its entries; everything else
 * shares the other CPUs with a process that yields in a loop, whose
 * switches of address space flush their TLBs. Bounded: SECONDS per
 * context (or what the environment says, race_bound(): its
 * COWGUARD_RACE_PAGES is the size of the padding).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cowguard_test.h"
#include "cowguard.h"

#define NR_PAGES	64		/* the pages the writers write */
#define PAD_SIZE	(128UL << 20)	/* behind them: a long walk */
#define MAX_WRITERS	8
#define SLOT_STRIDE	64		/* one cache line per writer */
#define SECONDS		5

enum stressor { CLEAR_REFS_GUP, CLEAR_REFS_MLOCK, UFFD_WP };

FIXTURE(lost_writes)
{
	size_t ps, size;
	char *mem;
	int nr_writers, nr_cpus;
	pid_t switcher;		/* the yielding process, or 0 */
	int hooks_fd, uffd;
	enum stressor stressor;
	struct test_thread writers[MAX_WRITERS], stressors[3];
	int nr_stressors, started_writers;
	unsigned long done[MAX_WRITERS];
	atomic_bool stop;
	atomic_ulong ops;
};

FIXTURE_VARIANT(lost_writes)
{
	enum stressor stressor;
};

FIXTURE_VARIANT_ADD(lost_writes, clear_refs_gup)
{
	.stressor = CLEAR_REFS_GUP,
};

FIXTURE_VARIANT_ADD(lost_writes, clear_refs_mlock)
{
	.stressor = CLEAR_REFS_MLOCK,
};

FIXTURE_VARIANT_ADD(lost_writes, uffd_wp)
{
	.stressor = UFFD_WP,
};

struct writer_arg {
	FIXTURE_DATA(lost_writes) *self;
	int id;
};

static struct writer_arg writer_args[MAX_WRITERS];

/* Run the calling thread on CPUs [first, end). */
static void run_on_cpus(int first, int end)
{
	cpu_set_t set;
	int cpu;

	CPU_ZERO(&set);
	for (cpu = first; cpu < end; cpu++)
		CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static int writer_thread(void *arg)
{
	struct writer_arg *wa = arg;
	FIXTURE_DATA(lost_writes) *self = wa->self;
	unsigned long done = 0;
	size_t page = 0;

	if (self->nr_cpus > 1)
		run_on_cpus(wa->id == 0 ? 0 : 1, wa->id == 0 ? 1 : self->nr_cpus);

	while (!atomic_load_explicit(&self->stop, memory_order_relaxed)) {
		volatile uint64_t *slot = (volatile uint64_t *)
			(self->mem + page * self->ps + wa->id * SLOT_STRIDE);

		*slot = *slot + 1;
		done++;
		if (++page == NR_PAGES)
			page = 0;
	}
	self->done[wa->id] = done;
	return 0;
}

static int clear_refs_thread(void *arg)
{
	FIXTURE_DATA(lost_writes) *self = arg;

	while (!atomic_load(&self->stop))
		if (!clear_soft_dirty())
			atomic_fetch_add(&self->ops, 1);
	return 0;
}

static int refs_thread(void *arg)
{
	FIXTURE_DATA(lost_writes) *self = arg;
	struct cowguard_range r = {
		.addr = (uintptr_t)self->mem,
		.size = NR_PAGES * self->ps,
	};

	while (!atomic_load(&self->stop)) {
		/*
		 * Hold the references across a yield: the writer that shares
		 * this CPU runs, and faults, while they are held.
		 */
		if (self->stressor == CLEAR_REFS_GUP) {
			if (ioctl(self->hooks_fd, COWGUARD_IOC_GET, &r))
				continue;
			atomic_fetch_add(&self->ops, 1);
			sched_yield();
			ioctl(self->hooks_fd, COWGUARD_IOC_PUT);
		} else {
			if (mlock(self->mem, NR_PAGES * self->ps))
				continue;
			atomic_fetch_add(&self->ops, 1);
			sched_yield();
			munlock(self->mem, NR_PAGES * self->ps);
		}
		sched_yield();
	}
	return 0;
}

static int writeprotect(int uffd, void *addr, size_t len, bool wp)
{
	struct uffdio_writeprotect w = {
		.range = { .start = (uintptr_t)addr, .len = len },
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w);
}

static int uffd_wp_thread(void *arg)
{
	FIXTURE_DATA(lost_writes) *self = arg;

	while (!atomic_load(&self->stop)) {
		if (!writeprotect(self->uffd, self->mem, self->size, true))
			atomic_fetch_add(&self->ops, 1);
		writeprotect(self->uffd, self->mem, self->size, false);
	}
	return 0;
}

/* Un-protects (and wakes) every page a writer faulted on. */
static int uffd_handler_thread(void *arg)
{
	FIXTURE_DATA(lost_writes) *self = arg;
	struct pollfd pfd = { .fd = self->uffd, .events = POLLIN };

	for (;;) {
		struct uffd_msg msg;

		if (poll(&pfd, 1, 100) <= 0) {
			if (atomic_load(&self->stop))
				break;
			continue;
		}
		if (read(self->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue;
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		writeprotect(self->uffd,
			     (void *)(uintptr_t)(msg.arg.pagefault.address &
						 ~(uint64_t)(self->ps - 1)),
			     self->ps, false);
	}
	return 0;
}

static int setup_uffd(FIXTURE_DATA(lost_writes) *self, char *why, size_t len)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.range = { .start = (uintptr_t)self->mem, .len = self->size },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	self->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (self->uffd < 0) {
		snprintf(why, len, "userfaultfd: %s", strerror(errno));
		return -1;
	}
	if (ioctl(self->uffd, UFFDIO_API, &api)) {
		snprintf(why, len, "UFFDIO_API: %s", strerror(errno));
		return -1;
	}
	if (ioctl(self->uffd, UFFDIO_REGISTER, &reg)) {
		snprintf(why, len, "UFFDIO_REGISTER_MODE_WP: %s (no uffd-wp for anonymous memory)",
			 strerror(errno));
		return -1;
	}
	return 0;
}

static int start_stressor(FIXTURE_DATA(lost_writes) *self,
			  int (*fn)(void *))
{
	if (test_thread_start(&self->stressors[self->nr_stressors], fn, self))
		return -1;
	self->nr_stressors++;
	return 0;
}

FIXTURE_SETUP(lost_writes)
{
	cpu_set_t online;
	char why[160];
	size_t i;

	self->ps = getpagesize();
	self->size = NR_PAGES * self->ps +
		race_bound("COWGUARD_RACE_PAGES", PAD_SIZE / self->ps,
			   PAD_SIZE / self->ps) * self->ps;
	self->stressor = variant->stressor;
	self->hooks_fd = -1;
	self->uffd = -1;
	self->nr_stressors = 0;
	self->started_writers = 0;
	atomic_init(&self->stop, false);
	atomic_init(&self->ops, 0);
	ASSERT_EQ(0, sched_getaffinity(0, sizeof(online), &online));
	self->nr_cpus = CPU_COUNT(&online);
	self->nr_writers = self->nr_cpus;
	if (self->nr_writers < 2)
		self->nr_writers = 2;
	if (self->nr_writers > MAX_WRITERS)
		self->nr_writers = MAX_WRITERS;

	self->mem = mmap(NULL, self->size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	madvise(self->mem, self->size, MADV_NOHUGEPAGE);
	memset(self->mem, 0, self->size);

	self->switcher = 0;
	if (self->nr_cpus > 1) {
		/* The stressors inherit this: off the first writer's CPU. */
		run_on_cpus(1, self->nr_cpus);
		self->switcher = fork();
		ASSERT_LE(0, self->switcher);
		if (!self->switcher) {
			/* Never outlive the test, whatever ends it. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() == 1)
				_exit(0);
			for (;;)
				sched_yield();
		}
	}

	switch (variant->stressor) {
	case CLEAR_REFS_GUP:
		self->hooks_fd = open(COWGUARD_HOOKS_PATH, O_RDWR);
		if (self->hooks_fd < 0)
			SKIP(return, "%s: %s (cowguard.ko not loaded)",
			     COWGUARD_HOOKS_PATH, strerror(errno));
		/* fall through */
	case CLEAR_REFS_MLOCK:
		ASSERT_EQ(0, start_stressor(self, clear_refs_thread));
		ASSERT_EQ(0, start_stressor(self, refs_thread));
		break;
	case UFFD_WP:
		if (setup_uffd(self, why, sizeof(why)))
			SKIP(return, "%s", why);
		ASSERT_EQ(0, start_stressor(self, uffd_handler_thread));
		ASSERT_EQ(0, start_stressor(self, uffd_wp_thread));
		break;
	}
	for (i = 0; i < (size_t)self->nr_writers; i++) {
		writer_args[i].self = self;
		writer_args[i].id = i;
		ASSERT_EQ(0, test_thread_start(&self->writers[i], writer_thread,
					       &writer_args[i]));
		self->started_writers++;
	}
}

static void stop_all(FIXTURE_DATA(lost_writes) *self)
{
	int i;

	if (self->switcher > 0) {
		kill(self->switcher, SIGKILL);
		waitpid(self->switcher, NULL, 0);
		self->switcher = 0;
	}
	if (atomic_exchange(&self->stop, true))
		return;
	for (i = 0; i < self->started_writers; i++)
		test_thread_join(&self->writers[i]);
	for (i = 0; i < self->nr_stressors; i++)
		test_thread_join(&self->stressors[i]);
}

FIXTURE_TEARDOWN(lost_writes)
{
	stop_all(self);
	if (self->uffd >= 0)
		close(self->uffd);
	if (self->hooks_fd >= 0)
		close(self->hooks_fd);
	munmap(self->mem, self->size);
}

TEST_F_TIMEOUT(lost_writes, increments_all_land, RACE_MAX_SECONDS + 30)
{
	unsigned long total = 0, lost = 0;
	unsigned long max_seconds = race_seconds(SECONDS);
	/* A round: one write-protect pass or reference cycle (ops). */
	unsigned long max_rounds = race_bound("COWGUARD_RACE_ROUNDS", ~0UL, ~0UL);
	struct timespec t0;
	int w, worst = -1;

	if (setup_skipped(_metadata))
		return;
	/*
	 * Not sleep(): on the 32-bit guests (no CONFIG_COMPAT_32BIT_TIME)
	 * it returned at once. The clock works; yield until it says so.
	 */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (seconds_since(&t0) < max_seconds &&
	       atomic_load(&self->ops) < max_rounds)
		sched_yield();
	stop_all(self);

	for (w = 0; w < self->nr_writers; w++) {
		unsigned long sum = 0;
		size_t page;

		for (page = 0; page < NR_PAGES; page++)
			sum += *(uint64_t *)(self->mem + page * self->ps +
					     w * SLOT_STRIDE);
		total += self->done[w];
		if (sum != self->done[w]) {
			lost += self->done[w] > sum ? self->done[w] - sum : sum - self->done[w];
			worst = w;
		}
	}
	TH_LOG("%d writers, %lu increments in %.1f s, %lu stressor operations, %lu increments lost",
	       self->nr_writers, total, seconds_since(&t0),
	       atomic_load(&self->ops), lost);
	race_summary(atomic_load(&self->ops), lost);
	ASSERT_NE(0UL, atomic_load(&self->ops))
		TH_LOG("the stressor never took effect: nothing raced");
	EXPECT_EQ(-1, worst)
		TH_LOG("writer %d: its slots do not add up to its increments", worst);
}

TEST_HARNESS_MAIN
