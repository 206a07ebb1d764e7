/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers the cowguard selftests share: what a test needs to know about
 * the harness and about soft-dirty. Not a uapi header: the module never
 * sees it.
 */
#ifndef COWGUARD_TEST_H
#define COWGUARD_TEST_H

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "kselftest_harness.h"
#include "race_bounds.h"

#define PM_SOFT_DIRTY	(1ULL << 55)
#define PM_PRESENT	(1ULL << 63)

/*
 * The 6.1 harness runs a test's body even when its fixture setup ended in
 * SKIP; the body must not run on a half set-up fixture. The harness of
 * 6.9 on (the one with XFAIL_ADD) no longer does, and has no "skip"
 * member: there a SKIP is the exit code.
 */
static inline bool setup_skipped(struct __test_metadata *_metadata)
{
#ifdef XFAIL_ADD
	return _metadata->exit_code == KSFT_SKIP;
#else
	return _metadata->skip;
#endif
}

/*
 * A freshly faulted page sits in the faulting CPU's LRU batch, holding a
 * reference, until that CPU drains it: MADV_PAGEOUT cannot isolate it and
 * its refcount is one too high. Tests that count references or push pages
 * out run on one CPU, so that their own drains reach every batch.
 */
static inline void pin_to_one_cpu(void)
{
	cpu_set_t set;
	int cpu = sched_getcpu();

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		perror("sched_setaffinity");
}

/*
 * A thread that runs fn(arg) and returns its int: the race tests' writers
 * and stressors. glibc's pthreads, which every guest runs
 * (CONFIG_COMPAT_32BIT_TIME in configs/common.config gives 32-bit glibc
 * its futex; libc_threads checks it).
 */
struct test_thread {
	pthread_t tid;
	int (*fn)(void *);
	void *arg;
	int ret;
};

static inline void *test_thread_main(void *data)
{
	struct test_thread *t = data;

	t->ret = t->fn(t->arg);
	return NULL;
}

/* 0, or -1 when no thread could be made. */
static inline int test_thread_start(struct test_thread *t, int (*fn)(void *),
				    void *arg)
{
	t->fn = fn;
	t->arg = arg;
	t->ret = -1;
	return pthread_create(&t->tid, NULL, test_thread_main, t) ? -1 : 0;
}

/* Waits for the thread to return; what its function returned, or -1. */
static inline int test_thread_join(struct test_thread *t)
{
	if (pthread_join(t->tid, NULL))
		return -1;
	return t->ret;
}

/* Seconds since *t0, a CLOCK_MONOTONIC reading: the races' time bound. */
static inline double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * What a race case did, one line in the same words for every context, for
 * scripts/soak: its rounds (iterations) and the losses it found
 * (corruptions: pages, increments or writes, as the context counts them).
 */
#define race_summary(iterations, corruptions) \
	TH_LOG("iterations %lu corruptions %lu", \
	       (unsigned long)(iterations), (unsigned long)(corruptions))

/*
 * The first active swap area's path in dev (when not NULL); false when
 * there is none.
 */
static inline bool swap_device(char *dev, size_t len)
{
	char line[256], path[200];
	FILE *f = fopen("/proc/swaps", "r");
	bool found = false;

	if (!f)
		return false;
	/* The first line is the header. */
	if (fgets(line, sizeof(line), f) && fgets(line, sizeof(line), f) &&
	    sscanf(line, "%199s", path) == 1) {
		found = true;
		if (dev)
			snprintf(dev, len, "%s", path);
	}
	fclose(f);
	return found;
}

static inline bool swap_active(void)
{
	return swap_device(NULL, 0);
}

/* The PMD size of a THP, or 0 where the kernel has no THP. */
static inline size_t thp_size(void)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size",
			"r");
	unsigned long size = 0;

	if (f) {
		if (fscanf(f, "%lu", &size) != 1)
			size = 0;
		fclose(f);
	}
	return size;
}

/* Whether NUMA node node exists (numa=fake=2 makes two). */
static inline bool has_node(int node)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d", node);
	return access(path, F_OK) == 0;
}

/* The pagemap entries of nr pages from addr; false if unreadable. */
static inline bool pagemap_read(void *addr, size_t nr, uint64_t *ents)
{
	size_t ps = getpagesize(), len = nr * sizeof(*ents);
	int fd = open("/proc/self/pagemap", O_RDONLY);
	ssize_t got;

	if (fd < 0)
		return false;
	got = pread(fd, ents, len, (uintptr_t)addr / ps * sizeof(*ents));
	close(fd);
	return got == (ssize_t)len;
}

static inline uint64_t pagemap_at(void *addr)
{
	uint64_t ent;

	return pagemap_read(addr, 1, &ent) ? ent : 0;
}

/* echo 4 > /proc/self/clear_refs */
static inline int clear_soft_dirty(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	int ret = -1;

	if (fd < 0)
		return -1;
	if (write(fd, "4", 1) == 1)
		ret = 0;
	close(fd);
	return ret;
}

/*
 * Whether the kernel tracks soft-dirty: a VMA that has never been cleared
 * shows the "sd" flag in smaps only with CONFIG_MEM_SOFT_DIRTY.
 */
static inline bool soft_dirty_supported(void *addr)
{
	char line[512];
	bool in_vma = false, found = false;
	uintptr_t a = (uintptr_t)addr;
	FILE *f = fopen("/proc/self/smaps", "r");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long start, end;

		if (sscanf(line, "%lx-%lx ", &start, &end) == 2) {
			in_vma = a >= start && a < end;
			continue;
		}
		if (in_vma && !strncmp(line, "VmFlags:", 8)) {
			found = strstr(line, " sd") != NULL;
			break;
		}
	}
	fclose(f);
	return found;
}

#endif /* COWGUARD_TEST_H */
