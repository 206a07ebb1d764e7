// SPDX-License-Identifier: GPL-2.0
/*
 * cowguard_bench: the measurements behind "make bench". It prints one
 * "# bench <name> <value>" line per figure; scripts/bench boots each kernel
 * variant with it and compares the variants of one run. Never a test:
 * it exits 0 whenever it could measure, whatever the figures are.
 *
 * Fault paths the event counters sit on (ns per page, median of runs):
 *   fault_cow_copy    a child writes pages it shares with its parent
 *   fault_reuse       the parent writes them after the child is gone
 *   fault_swapin      read faults on pages pushed out with MADV_PAGEOUT
 *
 * clear_refs and the faults around it, on a populated mapping:
 *   clear_refs_sd_ms_per_gib   one soft-dirty clear_refs (echo 4), with
 *                              "walk" as the first argument only: make
 *                              bench boots that instruction-counted
 *                              (QEMU -icount: the guest's clock counts
 *                              instructions). Timed on TCG's own clock the
 *                              walk costs whatever its PTE loop's place in
 *                              the kernel's text costs the emulator
 *                              (Documentation/clear-refs.rst). Without
 *                              "walk" that time is an info line.
 *   writer_{p99,max}_us_<load> latency of the writer threads' writes
 *                              while the main thread loops clear_refs:
 *                              soft-dirty (sd), clear referenced (ref),
 *                              or soft-dirty with another thread looping
 *                              mmap/munmap (sd_mmap)
 *
 * A writer writes one page every WRITE_PERIOD_NS on a fixed schedule, and
 * a write's latency counts from its slot in the schedule, not from when
 * the writer got to it: a write stuck behind a walk makes every slot it
 * overran late too. Timing only the writes that happened (closed loop)
 * made the figures depend on how many unhindered faults fit between two
 * walks, and the same kernel gave a p99 of 1 us in one run and 2766 us in
 * another. The schedule visits each page at most once per load, so
 * nearly every write is the first after a clear_refs and page-faults.
 *
 * For each load one "# stall <load> <median walk us> <writes> <writes
 * that waited at least half a walk>" line: on a kernel whose walk holds
 * mmap_lock for write, the writes must show the stall the figures are
 * about, and scripts/bench declares a run invalid when they do not.
 *
 * And one "# stall_by <load> <ran> <preempted> <slept>" line, which splits
 * those late writes by what the writer's thread did meanwhile, from its
 * context switch counts: "slept" waited in the kernel (mmap_lock, a page
 * lock), "preempted" lost its CPU to another guest task, "ran" did
 * neither: the guest kept it running, so either the kernel spun (a page
 * table lock, which a walk holds for one table, microseconds) or the host
 * did not run the writer's vCPU, which a TCG guest cannot tell apart.
 * (Counted in writes' slots, as the stall line is.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>

#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT 21
#endif

#define MIB		(1UL << 20)
#define REPS		5
#define MAX_WRITERS	8
/* Latency histogram: 1 us buckets up to 100 ms, then one overflow bucket. */
#define HIST_US		100000
/*
 * A writer's schedule: one write per 50 us. A write fault under TCG takes
 * a few us (fault_reuse_ns), so an undisturbed writer keeps to it, and a
 * 5 s load gives 10^5 writes per writer: its p99 rests on 10^3 of them.
 */
#define WRITE_PERIOD_NS	50000ULL
/* Walk durations kept per load; later walks are not timed. */
#define MAX_WALKS	65536

static size_t ps;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	return v[n / 2];
}

static void die(const char *what)
{
	printf("# bench error: %s: %s\n", what, strerror(errno));
	exit(1);
}

static char *map_anon(size_t size)
{
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap");
	/* Base pages: one fault per page, the same on every kernel. */
	madvise(p, size, MADV_NOHUGEPAGE);
	return p;
}

static void touch(char *p, size_t size, char val)
{
	for (size_t i = 0; i < size; i += ps)
		p[i] = val;
}

static void bench_fault_paths(void)
{
	size_t size = 16 * MIB, pages = size / ps;
	uint64_t copy[REPS], reuse[REPS], swapin[REPS];

	for (int r = 0; r < REPS; r++) {
		char *p = map_anon(size);
		int pipefd[2], status;
		uint64_t t, child_ns = 0;
		volatile char sink = 0;
		pid_t pid;

		touch(p, size, 1);
		if (pipe(pipefd))
			die("pipe");
		pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			t = now_ns();
			touch(p, size, 2);
			t = now_ns() - t;
			if (write(pipefd[1], &t, sizeof(t)) != sizeof(t))
				_exit(1);
			_exit(0);
		}
		if (read(pipefd[0], &child_ns, sizeof(child_ns)) !=
		    sizeof(child_ns))
			die("read from child");
		waitpid(pid, &status, 0);
		close(pipefd[0]);
		close(pipefd[1]);
		copy[r] = child_ns / pages;

		t = now_ns();
		touch(p, size, 3);
		reuse[r] = (now_ns() - t) / pages;

		if (madvise(p, size, MADV_PAGEOUT))
			die("MADV_PAGEOUT");
		t = now_ns();
		for (size_t i = 0; i < size; i += ps)
			sink += p[i];
		swapin[r] = (now_ns() - t) / pages;
		munmap(p, size);
	}
	printf("# bench fault_cow_copy_ns %llu\n",
	       (unsigned long long)median(copy, REPS));
	printf("# bench fault_reuse_ns %llu\n",
	       (unsigned long long)median(reuse, REPS));
	printf("# bench fault_swapin_ns %llu\n",
	       (unsigned long long)median(swapin, REPS));
}

static int clear_refs_fd;

static void clear_refs(const char *type)
{
	if (pwrite(clear_refs_fd, type, 1, 0) != 1)
		die("clear_refs");
}

static char *region;
static size_t region_size;
static atomic_int stop;
/* What the writer's thread did while a write was late; see the top. */
enum wait { WAIT_RAN, WAIT_PREEMPTED, WAIT_SLEPT, NR_WAITS };
static uint64_t (*hist)[NR_WAITS][HIST_US + 1];	/* [nr_writers] */
static uint64_t faulted[MAX_WRITERS];
static uint64_t walk_us[MAX_WALKS];
static uint64_t slots[HIST_US + 1];
/*
 * One writer per CPU but the first, each on its own CPU; clear_refs and
 * the mmap churner share the first. A writer that shared a CPU with the
 * clear_refs loop would measure the scheduler (a walk is not preempted
 * on these kernels), not mmap_lock.
 */
static int nr_writers, nr_cpus;

static void run_on_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
}

static void thread_usage(struct rusage *ru)
{
	if (getrusage(RUSAGE_THREAD, ru))
		die("getrusage");
}

static enum wait waited(const struct rusage *was, const struct rusage *now)
{
	if (now->ru_nvcsw != was->ru_nvcsw)
		return WAIT_SLEPT;
	if (now->ru_nivcsw != was->ru_nivcsw)
		return WAIT_PREEMPTED;
	return WAIT_RAN;
}

static void record(long id, enum wait wait, uint64_t ns)
{
	uint64_t us = ns / 1000;

	hist[id][wait][us < HIST_US ? us : HIST_US]++;
}

/*
 * Writes one byte per page on its schedule (see the top of the file).
 * Slots a late write overran are recorded with the lateness they would
 * have seen, and the writer resumes at the first slot still ahead.
 */
static void *writer(void *arg)
{
	long id = (long)arg;
	size_t stride = region_size / nr_writers;
	char *base = region + id * stride;
	size_t off = 0;
	struct rusage was, now;
	uint64_t slot;

	run_on_cpu((id + 1) % nr_cpus);
	thread_usage(&was);
	slot = now_ns();

	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		enum wait wait;
		uint64_t end;

		while (now_ns() < slot)
			;
		base[off]++;
		end = now_ns();
		/* Since the last write: the wait for this slot and the write. */
		thread_usage(&now);
		faulted[id] += now.ru_minflt != was.ru_minflt;
		wait = waited(&was, &now);
		was = now;
		for (; slot <= end; slot += WRITE_PERIOD_NS)
			record(id, wait, end - slot);
		off += ps;
		if (off >= stride)
			off = 0;
	}
	return NULL;
}

static void *mmap_churn(void *arg)
{
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		void *p = mmap(NULL, ps, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p != MAP_FAILED)
			munmap(p, ps);
	}
	return NULL;
}

/* p99 and max of the writers' latencies, in us (max capped at 100 ms). */
static void latency_under(const char *load, const char *type, int churn,
			  int seconds)
{
	pthread_t th[MAX_WRITERS], churner;
	uint64_t total = 0, seen = 0, p99 = 0, max = 0, stalled = 0;
	uint64_t stalled_by[NR_WAITS] = { 0 };
	uint64_t end, walk = 0, writes_faulted = 0;
	long loops = 0;

	memset(hist, 0, nr_writers * sizeof(*hist));
	memset(faulted, 0, sizeof(faulted));
	/*
	 * Every page write-protected, so that the first write to each page
	 * in this load faults whatever the load's walk does to the PTEs.
	 */
	clear_refs("4");
	atomic_store(&stop, 0);
	for (long i = 0; i < nr_writers; i++)
		if (pthread_create(&th[i], NULL, writer, (void *)i))
			die("pthread_create");
	if (churn && pthread_create(&churner, NULL, mmap_churn, NULL))
		die("pthread_create");
	end = now_ns() + seconds * 1000000000ULL;
	while (now_ns() < end) {
		uint64_t t = now_ns();

		clear_refs(type);
		if (loops < MAX_WALKS)
			walk_us[loops] = (now_ns() - t) / 1000;
		loops++;
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < nr_writers; i++)
		pthread_join(th[i], NULL);
	if (churn)
		pthread_join(churner, NULL);
	if (loops)
		walk = median(walk_us, loops < MAX_WALKS ? loops : MAX_WALKS);

	for (int i = 0; i < nr_writers; i++)
		writes_faulted += faulted[i];
	/* All writers' histograms in one, and the late slots by wait. */
	memset(slots, 0, sizeof(slots));
	for (int b = 0; b <= HIST_US; b++) {
		for (int i = 0; i < nr_writers; i++)
			for (int w = 0; w < NR_WAITS; w++) {
				slots[b] += hist[i][w][b];
				if (2 * (uint64_t)b >= walk)
					stalled_by[w] += hist[i][w][b];
			}
		total += slots[b];
	}
	for (int w = 0; w < NR_WAITS; w++)
		stalled += stalled_by[w];
	for (int b = 0; b <= HIST_US; b++) {
		if (!slots[b])
			continue;
		max = b;
		if (!p99 && (seen + slots[b]) * 100 >= total * 99)
			p99 = b ? b : 1;
		seen += slots[b];
	}
	printf("# bench writer_p99_us_%s %llu\n", load, (unsigned long long)p99);
	printf("# bench writer_max_us_%s %llu\n", load, (unsigned long long)max);
	printf("# info %s: %ld clear_refs, median %llu us; %llu writes, %llu of them page-faulted\n",
	       load, loops, (unsigned long long)walk,
	       (unsigned long long)total, (unsigned long long)writes_faulted);
	printf("# stall %s %llu %llu %llu\n", load, (unsigned long long)walk,
	       (unsigned long long)total, (unsigned long long)stalled);
	printf("# stall_by %s %llu %llu %llu\n", load,
	       (unsigned long long)stalled_by[WAIT_RAN],
	       (unsigned long long)stalled_by[WAIT_PREEMPTED],
	       (unsigned long long)stalled_by[WAIT_SLEPT]);
}

/*
 * One soft-dirty clear_refs of the whole region, every PTE dirty and
 * writable: the median of REPS, in ns per GiB.
 */
static uint64_t walk_ns_per_gib(size_t mib)
{
	uint64_t ns[REPS];

	for (int r = 0; r < REPS; r++) {
		uint64_t t;

		touch(region, region_size, 2);	/* writable and dirty again */
		t = now_ns();
		clear_refs("4");
		ns[r] = (now_ns() - t) * 1024 / mib;
	}
	return median(ns, REPS);
}

/* seconds == 0: the walk's cost alone, the instruction-counted boot's. */
static void bench_clear_refs(size_t mib, int seconds)
{
	uint64_t walk;

	clear_refs_fd = open("/proc/self/clear_refs", O_WRONLY);
	if (clear_refs_fd < 0)
		die("/proc/self/clear_refs");
	region_size = mib * MIB;
	region = map_anon(region_size);
	touch(region, region_size, 1);

	walk = walk_ns_per_gib(mib);
	if (!seconds) {
		printf("# bench clear_refs_sd_ms_per_gib %llu.%02llu\n",
		       (unsigned long long)(walk / 1000000),
		       (unsigned long long)(walk % 1000000 / 10000));
		goto out;
	}
	printf("# info walk alone: %llu ms per GiB of TCG time (not a figure: see clear_refs_sd_ms_per_gib)\n",
	       (unsigned long long)(walk / 1000000));

	latency_under("sd", "4", 0, seconds);
	latency_under("ref", "1", 0, seconds);
	latency_under("sd_mmap", "4", 1, seconds);
out:
	munmap(region, region_size);
	close(clear_refs_fd);
}

int main(int argc, char **argv)
{
	bool walk_only = argc > 1 && !strcmp(argv[1], "walk");
	int arg = walk_only ? 2 : 1;
	size_t mib = argc > arg ? strtoul(argv[arg], NULL, 0) : 512;
	int seconds = walk_only ? 0 : argc > arg + 1 ? atoi(argv[arg + 1]) : 5;

	cpu_set_t online;

	ps = getpagesize();
	if (sched_getaffinity(0, sizeof(online), &online))
		die("sched_getaffinity");
	nr_cpus = CPU_COUNT(&online);
	nr_writers = nr_cpus > 1 ? nr_cpus - 1 : 1;
	if (nr_writers > MAX_WRITERS)
		nr_writers = MAX_WRITERS;
	hist = calloc(nr_writers, sizeof(*hist));
	if (!hist)
		die("calloc");
	if (mib < 64 || (!walk_only && seconds < 1) || argc > arg + 2 ||
	    (walk_only && argc > arg + 1)) {
		printf("# usage: %s [<MiB, >= 64> [<seconds per load, >= 1>]]\n"
		       "#        %s walk [<MiB, >= 64>]\n", argv[0], argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	run_on_cpu(0);
	if (!walk_only) {
		printf("# info %d CPUs, %d writer thread(s)%s\n", nr_cpus,
		       nr_writers, nr_cpus > 1 ? "" :
		       ": they share the CPU with clear_refs, latencies include scheduling");
		bench_fault_paths();
	}
	bench_clear_refs(mib, seconds);
	return 0;
}
