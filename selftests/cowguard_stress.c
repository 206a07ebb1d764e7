// SPDX-License-Identifier: GPL-2.0
/*
 * cowguard.ko under concurrency: workers issue every ioctl of the hooks
 * file at once (GET, PUT, WRITE, READ, QUERY, REMOTE_WRITE, REMOTE_WAIT,
 * REMOTE_RELEASE, unknown commands) and use the counters and reset files,
 * with random valid and invalid arguments: unaligned and wrapping ranges,
 * huge lengths, NULL and kernel pointers, ranges that another thread of
 * the same process unmaps, write-protects and pages out meanwhile. Workers
 * fork short-lived children that inherit their open file (one struct file
 * used from two address spaces) and are sometimes killed in the middle of
 * a call. Another process meanwhile unloads the module whenever nothing
 * holds it (delete_module(O_NONBLOCK)) and loads it again from
 * /cowguard.ko, where the guest's init loaded it from, with finit_module.
 *
 * Contexts: "threads" (the workers are clone(CLONE_VM) threads of one
 * process, sharing its memory and file table, and also call
 * REMOTE_WAIT, REMOTE_RELEASE and QUERY on each other's files) and
 * "processes" (each worker a process with its own memory and an unmapper
 * thread of its own).
 *
 * Cases:
 *   ioctls_unload  the stress for STRESS_MS (and on until it has unloaded
 *                  the module and made every core ioctl succeed, up to
 *                  COVER_MAX_MS), then: the module is loaded,
 *                  its refcount (/sys/module/cowguard/refcnt) is back to
 *                  its value before, no invalid call succeeded, the pages
 *                  the workers held and wrote through have their refcounts
 *                  back, and free memory is back within a tolerance (see
 *                  check_free_memory()). A run in which the module was
 *                  never unloaded or a core ioctl never succeeded fails:
 *                  it checked less than it claims.
 *   kmemleak       the stress for KMEMLEAK_MS (on until covered, as
 *                  above), then kmemleak scans twice
 *                  and must report no object of the module or of this
 *                  program. SKIP on a kernel without CONFIG_DEBUG_KMEMLEAK
 *                  (every kernel but DEBUG=1's).
 *
 * Every kernel splat fails the run (the pipeline checks the console).
 * The workers judge calls by their return value alone: the exact errnos
 * are cowguard_hooks' job.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cowguard_test.h"
#include "cowguard.h"
#include "proc_value.h"

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE	0x100000
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT		21
#endif

#define MODULE_NAME	"cowguard"
#define MODULE_PATH	"/cowguard.ko"	/* scripts/guest/init.c loads it */
#define MODULE_SYSFS	"/sys/module/" MODULE_NAME
#define KMEMLEAK_PATH	"/sys/kernel/debug/kmemleak"
#define COWGUARD_DIR	"/sys/kernel/debug/cowguard"

#define STRESS_MS	3000	/* ioctls_unload, at least */
#define KMEMLEAK_MS	1500	/* kmemleak, at least */
/*
 * A run that must cover (covered()) goes on until it has, up to this
 * long: a DEBUG=1 kernel under TCG makes a few dozen calls a second.
 */
#define COVER_MAX_MS	30000
#define WARMUP_MS	400	/* before the free memory baseline */
#define QUIET_EVERY_MS	250	/* a quiet window this often ... */
#define QUIET_MS	40	/* ... this long: no worker opens a file */
#define NR_WORKERS	3
#define STABLE_PAGES	32	/* per stable arena, never unmapped */
#define VOL_SIZE	(2UL << 20)	/* the arena the unmappers churn */
#define GET_MAX		64	/* pages of a valid GET */
#define HOLD_MAX_MS	20	/* of a valid REMOTE_WRITE */
#define WAIT_MAX_MS	5	/* of a valid REMOTE_WAIT */
#define OPS_PER_OPEN	32	/* at most, before the file is closed */
/* kmemleak reports nothing younger than this (msecs_min_age). */
#define KMEMLEAK_MIN_AGE_MS	5000

#define INC(x)	__atomic_fetch_add(&(x), 1, __ATOMIC_RELAXED)
#define LOAD(x)	__atomic_load_n(&(x), __ATOMIC_RELAXED)

enum op {
	OP_GET, OP_PUT, OP_WRITE, OP_READ, OP_QUERY, OP_REMOTE_WRITE,
	OP_REMOTE_WAIT, OP_REMOTE_RELEASE, OP_UNKNOWN, OP_COUNTERS, OP_RESET,
	OP_FORK, NR_OPS
};

static const char * const op_names[NR_OPS] = {
	"GET", "PUT", "WRITE", "READ", "QUERY", "REMOTE_WRITE", "REMOTE_WAIT",
	"REMOTE_RELEASE", "unknown", "counters", "reset", "fork",
};

/* What every task of a run counts, in MAP_SHARED memory. */
struct stats {
	int stop;		/* set by the test: every task returns */
	int quiet;		/* set by the test: workers close their files */
	int fork_lock;		/* one glibc fork() at a time per process */
	long calls[NR_OPS];	/* valid calls */
	long ok[NR_OPS];	/* valid calls that succeeded */
	long bad[NR_OPS];	/* invalid calls */
	long bad_ok[NR_OPS];	/* invalid calls that succeeded: a bug */
	long opens, open_fails;
	long unload_tries, unloads, reloads, reload_fails;
	int reload_errno, unload_errno;	/* the last unexpected one */
	long vm_ops, kills;
};

/* One run: the arenas, shared by the workers (copied into processes). */
struct run {
	size_t ps;
	bool processes;
	struct stats *st;
	char *stable;		/* STABLE_PAGES private anonymous pages */
	char *stable_shm;	/* STABLE_PAGES MAP_SHARED anonymous pages */
	char *vol;		/* VOL_SIZE, churned by the unmappers */
	void *vol_map;		/* what mmap() returned, for munmap() */
	size_t vol_map_len;
	char *iobufs;		/* per worker: GET_MAX + 1 pages */
	uintptr_t kaddr;	/* a kernel address on every architecture */
	uintptr_t top;		/* the last page of the address space */
};

struct worker {
	struct run *run;
	int id;
	int fd;			/* this worker's hooks file, or -1 */
	struct worker *peers;	/* threads: every worker, for their fds */
	uint64_t rnd;
	char *iobuf;
	pid_t child;		/* a forked child using fd, or 0 */
	bool in_child;
	struct test_thread thread;
};

/* --- the workers' helpers ---------------------------------------------- */

static uint64_t rnd(struct worker *w)
{
	/* xorshift64* */
	w->rnd ^= w->rnd >> 12;
	w->rnd ^= w->rnd << 25;
	w->rnd ^= w->rnd >> 27;
	return w->rnd * 0x2545f4914f6cdd1dULL;
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000ULL + t.tv_nsec / 1000000;
}

/* Yield for about ms milliseconds: no sleeping call that needs 32-bit time. */
static void spin_ms(unsigned int ms)
{
	uint64_t end = now_ms() + ms;

	do
		sched_yield();
	while (now_ms() < end);
}

static bool stopping(struct run *run)
{
	return LOAD(run->st->stop);
}

/* A page-aligned target of n pages in one of the arenas. */
static uintptr_t pick_range(struct worker *w, size_t *n)
{
	struct run *run = w->run;
	size_t pages, i;
	char *base;

	switch (rnd(w) % 3) {
	case 0:
		base = run->stable;
		pages = STABLE_PAGES;
		break;
	case 1:
		base = run->stable_shm;
		pages = STABLE_PAGES;
		break;
	default:
		base = run->vol;
		pages = VOL_SIZE / run->ps;
		break;
	}
	*n = 1 + rnd(w) % (pages < GET_MAX ? pages : GET_MAX);
	i = rnd(w) % (pages - *n + 1);
	return (uintptr_t)base + i * run->ps;
}

/* Counts a call; an invalid call that succeeded is a bug. */
static void account(struct worker *w, enum op op, bool invalid, long ret)
{
	struct stats *st = w->run->st;

	if (invalid) {
		INC(st->bad[op]);
		if (ret == 0)
			INC(st->bad_ok[op]);
	} else {
		INC(st->calls[op]);
		if (ret == 0)
			INC(st->ok[op]);
	}
}

static void op_get(struct worker *w, int fd)
{
	struct run *run = w->run;
	struct cowguard_range r = { 0 };
	bool invalid = true;
	void *arg = &r;
	size_t n;

	r.addr = pick_range(w, &n);
	r.size = n * run->ps;
	r.flags = rnd(w) & 1 ? COWGUARD_WRITE : 0;
	switch (rnd(w) % 20) {
	case 0:
		r.addr += 1 + rnd(w) % (run->ps - 1);	/* unaligned */
		break;
	case 1:
		r.size -= 1 + rnd(w) % (run->ps - 1);	/* unaligned */
		break;
	case 2:
		r.size = 0;
		break;
	case 3:
		r.flags |= 1U << (1 + rnd(w) % 31);	/* unknown flag */
		break;
	case 4:
		r.reserved = 1 + rnd(w) % 0xffff;
		break;
	case 5:					/* too many pages */
		r.size = (uint64_t)(COWGUARD_MAX_PAGES + 1 + rnd(w) % 4) *
			 run->ps;
		break;
	case 6:					/* huge */
		r.size = (uint64_t)0 - run->ps;
		break;
	case 7:					/* wraps */
		r.addr = run->top;
		r.size = 2 * run->ps;
		break;
	case 8:
		r.addr = run->kaddr;
		r.size = run->ps;
		break;
	case 9:
		arg = NULL;
		break;
	case 10:
		r.addr = 0;
		break;
	case 11:
		/* Up to the limit: runs off the arena, most often EFAULT. */
		r.size = (uint64_t)(1 + rnd(w) % COWGUARD_MAX_PAGES) * run->ps;
		invalid = false;
		break;
	default:
		invalid = false;
		break;
	}
	account(w, OP_GET, invalid, ioctl(fd, COWGUARD_IOC_GET, arg));
}

static void op_io(struct worker *w, int fd, bool write)
{
	struct run *run = w->run;
	struct cowguard_io io = { 0 };
	enum op op = write ? OP_WRITE : OP_READ;
	size_t iobuf_len = (GET_MAX + 1) * run->ps;
	bool invalid = true;
	void *arg = &io;

	/* Within the first page, which every held range has. */
	io.offset = rnd(w) % run->ps;
	io.len = 1 + rnd(w) % (run->ps - io.offset);
	io.buf = (uintptr_t)w->iobuf;
	switch (rnd(w) % 16) {
	case 0:
		io.len = 0;
		break;
	case 1:					/* beyond any range */
		io.offset = (uint64_t)COWGUARD_MAX_PAGES * run->ps +
			    rnd(w) % run->ps;
		break;
	case 2:					/* huge */
		io.len = (uint64_t)0 - 1 - rnd(w) % 16;
		break;
	case 3:
		io.buf = 0;
		break;
	case 4:
		arg = NULL;
		break;
	case 5:					/* held or not, never copied */
		io.buf = run->kaddr;
		io.len = 1 + rnd(w) % run->ps;
		break;
	case 6:					/* wraps */
		io.buf = (uint64_t)0 - 8;
		io.len = 64;
		break;
	case 7:					/* into the churned arena */
		io.len = 1 + rnd(w) % (VOL_SIZE / 2);
		io.offset = rnd(w) % (GET_MAX * run->ps);
		io.buf = (uintptr_t)run->vol + rnd(w) % (VOL_SIZE / 2);
		invalid = false;
		break;
	case 8:					/* whole ranges */
	case 9:
		io.offset = rnd(w) % (GET_MAX * run->ps);
		io.len = 1 + rnd(w) % (iobuf_len - run->ps);
		invalid = false;
		break;
	default:
		invalid = false;
		break;
	}
	account(w, op, invalid,
		ioctl(fd, write ? COWGUARD_IOC_WRITE : COWGUARD_IOC_READ, arg));
}

/* Another worker's file (threads), or our own. */
static int some_fd(struct worker *w, int fd)
{
	int other;

	if (!w->peers || w->in_child || rnd(w) % 2)
		return fd;
	other = LOAD(w->peers[rnd(w) % NR_WORKERS].fd);
	return other >= 0 ? other : fd;
}

static void op_query(struct worker *w, int fd)
{
	struct run *run = w->run;
	struct cowguard_query q = { 0 };
	bool invalid = true;
	void *arg = &q;
	size_t n;

	q.addr = pick_range(w, &n) + rnd(w) % run->ps;
	switch (rnd(w) % 12) {
	case 0:
		arg = NULL;
		break;
	case 1:
		q.addr = run->kaddr + rnd(w) % run->ps;
		break;
	case 2:
		q.addr = rnd(w) % run->ps;	/* the NULL page */
		break;
	case 3:
		q.addr = (uint64_t)0 - 1 - rnd(w) % run->ps;
		break;
	case 4:
		q.addr = (uintptr_t)&q;		/* this stack */
		invalid = false;
		break;
	case 5:
		q.addr = (uintptr_t)op_query;	/* this program's text */
		invalid = false;
		break;
	default:
		invalid = false;
		break;
	}
	account(w, OP_QUERY, invalid,
		ioctl(some_fd(w, fd), COWGUARD_IOC_QUERY, arg));
}

static void op_remote_write(struct worker *w, int fd)
{
	struct run *run = w->run;
	struct cowguard_remote r = { 0 };
	bool invalid = true;
	void *arg = &r;
	size_t n, off = rnd(w) % run->ps;

	r.addr = pick_range(w, &n) + off;
	r.buf = (uintptr_t)w->iobuf;
	r.len = 1 + rnd(w) % (run->ps - off);
	r.hold_ms = rnd(w) % 4 ? 0 : rnd(w) % (HOLD_MAX_MS + 1);
	switch (rnd(w) % 16) {
	case 0:
		r.flags = COWGUARD_REMOTE_RELEASED;
		break;
	case 1:
		r.reserved = 1;
		break;
	case 2:
		r.hold_ms = COWGUARD_MAX_HOLD_MS + 1 + rnd(w) % 1000;
		break;
	case 3:
		r.len = 0;
		break;
	case 4:					/* across a page boundary */
		r.addr = (r.addr & ~(uint64_t)(run->ps - 1)) + run->ps - 4;
		r.len = 8 + rnd(w) % 64;
		break;
	case 5:
		r.buf = 0;
		break;
	case 6:
		r.addr = run->kaddr;
		break;
	case 7:
		arg = NULL;
		break;
	case 8:
		r.addr = rnd(w) % 64;		/* the NULL page */
		break;
	default:
		invalid = false;
		break;
	}
	account(w, OP_REMOTE_WRITE, invalid,
		ioctl(fd, COWGUARD_IOC_REMOTE_WRITE, arg));
}

/*
 * Wait for a remote write's hold on this or (threads) another worker's
 * file, and release it when there was one.
 */
static void op_remote_wait(struct worker *w, int fd)
{
	__u32 ms = rnd(w) % 4 ? 0 : rnd(w) % (WAIT_MAX_MS + 1);
	bool invalid = true;
	void *arg = &ms;
	long ret;

	switch (rnd(w) % 8) {
	case 0:
		ms = COWGUARD_MAX_HOLD_MS + 1 + rnd(w) % 100000;
		break;
	case 1:
		arg = NULL;
		break;
	default:
		invalid = false;
		break;
	}
	fd = some_fd(w, fd);
	ret = ioctl(fd, COWGUARD_IOC_REMOTE_WAIT, arg);
	account(w, OP_REMOTE_WAIT, invalid, ret);
	if (!ret && !invalid)
		account(w, OP_REMOTE_RELEASE, false,
			ioctl(fd, COWGUARD_IOC_REMOTE_RELEASE));
}

static bool known_cmd(unsigned long cmd)
{
	return cmd == COWGUARD_IOC_GET || cmd == COWGUARD_IOC_PUT ||
	       cmd == COWGUARD_IOC_WRITE || cmd == COWGUARD_IOC_READ ||
	       cmd == COWGUARD_IOC_QUERY || cmd == COWGUARD_IOC_REMOTE_WRITE ||
	       cmd == COWGUARD_IOC_REMOTE_WAIT ||
	       cmd == COWGUARD_IOC_REMOTE_RELEASE;
}

/*
 * Commands the module does not know, in its own ioctl type only: the VFS
 * handles some generic commands itself (FIOQSIZE, FIONREAD...) whatever
 * the file, which would write to arg.
 */
static void op_unknown(struct worker *w, int fd)
{
	unsigned long cmd;
	unsigned long arg;

	do {
		cmd = _IOC(rnd(w) % 4, COWGUARD_IOC_MAGIC, rnd(w) % 256,
			   rnd(w) % 64);
	} while (known_cmd(cmd));
	switch (rnd(w) % 3) {
	case 0:
		arg = 0;
		break;
	case 1:
		arg = w->run->kaddr;
		break;
	default:
		arg = (uintptr_t)w->iobuf;
		break;
	}
	account(w, OP_UNKNOWN, true, ioctl(fd, cmd, arg));
}

static void op_counters(struct worker *w)
{
	static const char * const files[] = {
		COWGUARD_COUNTERS_PATH, COWGUARD_DIR "/wrong_cow",
		COWGUARD_DIR "/anon_wp_copy",
	};
	int fd = open(files[rnd(w) % 3], O_RDONLY);
	long ret = -1;

	if (fd >= 0) {
		ret = read(fd, w->iobuf, w->run->ps) > 0 ? 0 : -1;
		close(fd);
	}
	account(w, OP_COUNTERS, false, ret);
}

static void op_reset(struct worker *w)
{
	static const char * const bad[] = { "2", "0", "-1", "1 1", "garbage" };
	int fd = open(COWGUARD_RESET_PATH, O_WRONLY);
	bool invalid = rnd(w) % 2;
	const char *val = invalid ? bad[rnd(w) % 5] : "1\n";
	long ret = -1;

	if (fd < 0) {
		/* No counters (PATCHES=none) or no module right now. */
		account(w, OP_RESET, false, -1);
		return;
	}
	if (write(fd, val, strlen(val)) == (ssize_t)strlen(val))
		ret = 0;
	close(fd);
	account(w, OP_RESET, invalid, ret);
}

static void do_op(struct worker *w, int fd);

static void reap_child(struct worker *w, bool kill_it)
{
	if (!w->child)
		return;
	if (kill_it) {
		kill(w->child, SIGKILL);
		INC(w->run->st->kills);
	}
	if (waitpid(w->child, NULL, kill_it ? 0 : WNOHANG) == w->child)
		w->child = 0;
}

/*
 * A child that shares the worker's open file from its own copy of the
 * address space, makes a few calls on it and exits, unless the worker
 * kills it first, maybe in the middle of a remote write's hold.
 */
static void op_fork(struct worker *w, int fd)
{
	struct stats *st = w->run->st;
	int i, n;
	pid_t pid;

	if (w->in_child || w->child) {
		reap_child(w, rnd(w) % 2);
		return;
	}
	/* glibc's fork() takes a lock that only futexes could wait for. */
	while (__atomic_exchange_n(&st->fork_lock, 1, __ATOMIC_ACQUIRE))
		sched_yield();
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		w->in_child = true;
		w->child = 0;
		w->rnd ^= 0x9e3779b97f4a7c15ULL;
		n = 1 + rnd(w) % 8;
		for (i = 0; i < n && !stopping(w->run); i++)
			do_op(w, fd);
		_exit(0);
	}
	__atomic_store_n(&st->fork_lock, 0, __ATOMIC_RELEASE);
	account(w, OP_FORK, false, pid > 0 ? 0 : -1);
	if (pid > 0)
		w->child = pid;
}

static void do_op(struct worker *w, int fd)
{
	switch (rnd(w) % 24) {
	case 0: case 1: case 2:
		op_get(w, fd);
		break;
	case 3: case 4:
		account(w, OP_PUT, false, ioctl(fd, COWGUARD_IOC_PUT));
		break;
	case 5: case 6: case 7:
		op_io(w, fd, true);
		break;
	case 8: case 9: case 10:
		op_io(w, fd, false);
		break;
	case 11: case 12:
		op_query(w, fd);
		break;
	case 13: case 14:
		op_remote_write(w, fd);
		break;
	case 15: case 16:
		op_remote_wait(w, fd);
		break;
	case 17: case 18:
		account(w, OP_REMOTE_RELEASE, false,
			ioctl(some_fd(w, fd), COWGUARD_IOC_REMOTE_RELEASE));
		break;
	case 19:
		op_unknown(w, fd);
		break;
	case 20:
		op_counters(w);
		break;
	case 21:
		op_reset(w);
		break;
	default:
		if (!w->in_child && rnd(w) % 4 == 0)
			op_fork(w, fd);
		else
			reap_child(w, false);
		break;
	}
}

static int worker_fn(void *arg)
{
	struct worker *w = arg;
	struct stats *st = w->run->st;
	int left = 0;

	while (!stopping(w->run)) {
		if (LOAD(st->quiet)) {
			if (w->fd >= 0) {
				int fd = w->fd;

				__atomic_store_n(&w->fd, -1, __ATOMIC_RELAXED);
				close(fd);
			}
			reap_child(w, true);
			sched_yield();
			continue;
		}
		if (w->fd < 0) {
			int fd = open(COWGUARD_HOOKS_PATH, O_RDWR);

			if (fd < 0) {
				/* Unloaded right now, or going. */
				INC(st->open_fails);
				sched_yield();
				continue;
			}
			INC(st->opens);
			__atomic_store_n(&w->fd, fd, __ATOMIC_RELAXED);
			left = 1 + rnd(w) % OPS_PER_OPEN;
		}
		do_op(w, w->fd);
		if (--left <= 0) {
			int fd = w->fd;

			__atomic_store_n(&w->fd, -1, __ATOMIC_RELAXED);
			close(fd);
			if (rnd(w) % 4 == 0)
				spin_ms(rnd(w) % 3);
		}
	}
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	reap_child(w, true);
	return 0;
}

/* Changes the churned arena under the workers' feet. */
static int unmapper_fn(void *arg)
{
	struct worker *w = arg;
	struct run *run = w->run;
	size_t pages = VOL_SIZE / run->ps;

	while (!stopping(run)) {
		size_t n = 1 + rnd(w) % 32, i = rnd(w) % (pages - n + 1), j;
		char *addr = run->vol + i * run->ps;
		size_t len = n * run->ps;

		switch (rnd(w) % 8) {
		case 0:
		case 1:
		case 2:
			munmap(addr, len);
			if (rnd(w) % 2)
				sched_yield();
			mmap(addr, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			     -1, 0);
			break;
		case 3:
			mmap(addr, len, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
			break;
		case 4:
			mprotect(addr, len, rnd(w) % 2 ? PROT_NONE : PROT_READ);
			sched_yield();
			mprotect(addr, len, PROT_READ | PROT_WRITE);
			break;
		case 5:
			madvise(addr, len, MADV_DONTNEED);
			break;
		case 6:
			madvise(addr, len, MADV_PAGEOUT);
			break;
		default:
			/* Mapped read-write by every case above. */
			for (j = 0; j < n; j++)
				addr[j * run->ps] = (char)j;
			break;
		}
		INC(run->st->vm_ops);
	}
	return 0;
}

/* --- module loading, for the unloading process ---------------------------- */

static int load_module(void)
{
	int fd = open(MODULE_PATH, O_RDONLY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, "", 0))
		ret = -errno;
	close(fd);
	return ret;
}

/* One load of the module, counted; after a failure, wait retry_ms. */
static bool reload(struct stats *st, unsigned int retry_ms)
{
	int ret = load_module();

	if (!ret) {
		INC(st->reloads);
		return true;
	}
	INC(st->reload_fails);
	st->reload_errno = -ret;
	spin_ms(retry_ms);
	return false;
}

/* Unloads whenever nothing holds the module; loads it right back. */
static int unloader_fn(struct run *run)
{
	struct stats *st = run->st;
	uint64_t seed = getpid() * 0x9e3779b97f4a7c15ULL;
	struct worker w = { .run = run, .rnd = seed | 1 };
	bool loaded = true;
	int tries;

	while (!stopping(run)) {
		if (loaded) {
			INC(st->unload_tries);
			if (!syscall(SYS_delete_module, MODULE_NAME, O_NONBLOCK)) {
				INC(st->unloads);
				loaded = false;
				/* Let opens meet no module for a moment. */
				spin_ms(rnd(&w) % 3);
			} else {
				if (errno != EWOULDBLOCK && errno != EBUSY)
					st->unload_errno = errno;
				/*
				 * Keep trying through a quiet window, now and
				 * then outside one.
				 */
				if (LOAD(st->quiet))
					sched_yield();
				else
					poll(NULL, 0, 1);
				continue;
			}
		}
		loaded = reload(st, 1);
	}
	/* The run is over: the module must be back for what follows. */
	for (tries = 0; !loaded && tries < 100; tries++)
		loaded = reload(st, 10);
	return loaded ? 0 : 1;
}

/* --- what the test process reads ------------------------------------------ */

static long read_long(const char *path)
{
	char buf[64];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

static bool module_live(void)
{
	char buf[16] = "";
	int fd = open(MODULE_SYSFS "/initstate", O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 && !strncmp(buf, "live", 4);
}

/*
 * Empty every CPU's LRU batches, whose references on recently used pages
 * come and go: munmap() drains the batches of the CPU it runs on.
 */
static void drain_all_cpus(void)
{
	size_t ps = getpagesize(), size = 64 * ps, i;
	cpu_set_t old, one;
	int cpu;

	if (sched_getaffinity(0, sizeof(old), &old))
		return;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		char *p;

		if (!CPU_ISSET(cpu, &old))
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one))
			continue;
		p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p != MAP_FAILED) {
			for (i = 0; i < size; i += ps)
				p[i] = 1;
			munmap(p, size);
		}
	}
	sched_setaffinity(0, sizeof(old), &old);
}

/* Refcounts of the stable arenas' pages, through a file of our own. */
static bool stable_refcounts(struct run *run, int *refs)
{
	int fd = open(COWGUARD_HOOKS_PATH, O_RDWR);
	size_t i;

	if (fd < 0)
		return false;
	drain_all_cpus();
	for (i = 0; i < 2 * STABLE_PAGES; i++) {
		struct cowguard_query q = { 0 };
		char *base = i < STABLE_PAGES ? run->stable : run->stable_shm;

		q.addr = (uintptr_t)base + (i % STABLE_PAGES) * run->ps;
		refs[i] = ioctl(fd, COWGUARD_IOC_QUERY, &q) ||
			  q.state != COWGUARD_PRESENT ? -1 : q.refcount;
	}
	close(fd);
	return true;
}

/*
 * Free pages, including those on the per-CPU free lists (the "count:" of
 * every pageset in /proc/zoneinfo), which MemFree leaves out and which
 * come and go with every CPU's allocations.
 */
static long free_pages(size_t ps)
{
	char line[128];
	long pcp = 0, n;
	FILE *f = fopen("/proc/zoneinfo", "r");

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, " count: %ld", &n) == 1)
				pcp += n;
		fclose(f);
	}
	return proc_value("/proc/meminfo", "MemFree") * 1024 / (long)ps + pcp;
}

struct mem_snapshot {
	long free;		/* pages, per-CPU lists included */
	long slab;		/* pages, Slab: of /proc/meminfo */
	long swap_cached;	/* pages, SwapCached: of /proc/meminfo */
	long huge_zero_allocs;	/* thp_zero_page_alloc of /proc/vmstat, or -1 */
};

/* Page cache dropped, LRU batches drained: what is left to compare. */
static void mem_snapshot(struct mem_snapshot *m, size_t ps)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);

	sync();
	if (fd >= 0) {
		if (write(fd, "3", 1) != 1)
			perror("drop_caches");
		close(fd);
	}
	drain_all_cpus();
	/* Let RCU-deferred frees (module init sections, files) happen. */
	poll(NULL, 0, 100);
	m->free = free_pages(ps);
	m->slab = proc_value("/proc/meminfo", "Slab") * 1024 / (long)ps;
	m->swap_cached = proc_value("/proc/meminfo", "SwapCached") * 1024 / (long)ps;
	m->huge_zero_allocs = proc_value("/proc/vmstat", "thp_zero_page_alloc");
}

/* --- the run ---------------------------------------------------------------- */

FIXTURE(stress)
{
	size_t ps;
	long refcnt_before;
};

FIXTURE_VARIANT(stress)
{
	bool processes;
};

FIXTURE_VARIANT_ADD(stress, threads)
{
	.processes = false,
};

FIXTURE_VARIANT_ADD(stress, processes)
{
	.processes = true,
};

FIXTURE_SETUP(stress)
{
	int fd;

	self->ps = getpagesize();
	self->refcnt_before = -1;
	if (access(COWGUARD_HOOKS_PATH, F_OK))
		SKIP(return, "%s: %s (cowguard.ko not loaded)",
		     COWGUARD_HOOKS_PATH, strerror(errno));
	fd = open(MODULE_PATH, O_RDONLY);
	if (fd < 0)
		SKIP(return, "%s: %s (cannot load the module again)",
		     MODULE_PATH, strerror(errno));
	close(fd);
	self->refcnt_before = read_long(MODULE_SYSFS "/refcnt");
	if (self->refcnt_before < 0)
		SKIP(return, "%s/refcnt unreadable (no CONFIG_MODULE_UNLOAD)",
		     MODULE_SYSFS);
	ASSERT_TRUE(module_live());
}

FIXTURE_TEARDOWN(stress)
{
	/* Whatever happened, leave the module loaded for the tests after. */
	if (self->refcnt_before >= 0 && access(MODULE_SYSFS, F_OK))
		load_module();
}

static char *map_anon(size_t len, int flags)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       flags | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* The arenas, filled: every page present before the workers start. */
static bool run_map(struct run *run, size_t ps, bool processes)
{
	memset(run, 0, sizeof(*run));
	run->ps = ps;
	run->processes = processes;
	run->top = (uintptr_t)-1 & ~(uintptr_t)(ps - 1);
	/* The top of the address space belongs to the kernel everywhere. */
	run->kaddr = run->top - 4 * ps;
	run->st = (struct stats *)map_anon(sizeof(struct stats), MAP_SHARED);
	run->stable = map_anon(STABLE_PAGES * ps, MAP_PRIVATE);
	run->stable_shm = map_anon(STABLE_PAGES * ps, MAP_SHARED);
	run->iobufs = map_anon(NR_WORKERS * (GET_MAX + 1) * ps, MAP_PRIVATE);
	run->vol_map_len = 2 * VOL_SIZE;
	run->vol_map = map_anon(run->vol_map_len, MAP_PRIVATE);
	if (!run->st || !run->stable || !run->stable_shm || !run->iobufs ||
	    !run->vol_map)
		return false;
	/* THP aligned: where there are THPs, GET and unmapping split them. */
	run->vol = (char *)(((uintptr_t)run->vol_map + VOL_SIZE - 1) &
			    ~(VOL_SIZE - 1));
	madvise(run->stable, STABLE_PAGES * ps, MADV_NOHUGEPAGE);
	madvise(run->vol, VOL_SIZE, MADV_HUGEPAGE);
	memset(run->stable, 0x11, STABLE_PAGES * ps);
	memset(run->stable_shm, 0x22, STABLE_PAGES * ps);
	memset(run->vol, 0x33, VOL_SIZE);
	memset(run->iobufs, 0x44, NR_WORKERS * (GET_MAX + 1) * ps);
	return true;
}

static void run_unmap(struct run *run)
{
	size_t ps = run->ps;

	if (run->vol_map)
		munmap(run->vol_map, run->vol_map_len);
	if (run->iobufs)
		munmap(run->iobufs, NR_WORKERS * (GET_MAX + 1) * ps);
	if (run->stable_shm)
		munmap(run->stable_shm, STABLE_PAGES * ps);
	if (run->stable)
		munmap(run->stable, STABLE_PAGES * ps);
	if (run->st)
		munmap(run->st, sizeof(struct stats));
}

static void worker_init(struct worker *w, struct run *run, int id)
{
	memset(w, 0, sizeof(*w));
	w->run = run;
	w->id = id;
	w->fd = -1;
	w->rnd = (getpid() * 0x9e3779b97f4a7c15ULL) ^ (id + 1) *
		 0xbf58476d1ce4e5b9ULL;
	w->rnd |= 1;
	w->iobuf = run->iobufs + id * (GET_MAX + 1) * run->ps;
}

/* processes: one worker in a process of its own, with its unmapper. */
static int worker_process(struct run *run, int id)
{
	struct worker w, unmapper;
	int ret = 0;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	worker_init(&w, run, id);
	worker_init(&unmapper, run, id);
	unmapper.rnd ^= 0x5555555555555555ULL;
	if (test_thread_start(&unmapper.thread, unmapper_fn, &unmapper))
		return 1;
	worker_fn(&w);
	if (test_thread_join(&unmapper.thread))
		ret = 1;
	return ret;
}

struct run_result {
	struct stats st;
	int tasks_failed;	/* workers and unmappers that did not return 0 */
	int unloader_status;	/* 0: the module was loaded at the end */
	int refs_before[2 * STABLE_PAGES], refs_after[2 * STABLE_PAGES];
	bool refs_ok;
};

/*
 * The stress for ms milliseconds, with a quiet window every QUIET_EVERY_MS
 * in which the workers close their files so that an unload can happen;
 * they open again while the module is going or gone.
 */
/* The ioctls every covering run must have made succeed at least once. */
static const enum op core[] = {
	OP_GET, OP_PUT, OP_WRITE, OP_READ, OP_QUERY, OP_REMOTE_WRITE,
};

/* The run raced what it claims to: an unload, and every core ioctl. */
static bool covered(const struct stats *st)
{
	size_t i;

	if (!LOAD(st->unloads))
		return false;
	for (i = 0; i < sizeof(core) / sizeof(core[0]); i++)
		if (!LOAD(st->ok[core[i]]))
			return false;
	return true;
}

/*
 * The stress for ms milliseconds; with cover, then on until covered(),
 * COVER_MAX_MS at most.
 */
static bool run_stress(struct __test_metadata *_metadata, size_t ps,
		       bool processes, unsigned int ms, bool cover,
		       struct run_result *res)
{
	struct worker workers[NR_WORKERS], unmapper;
	pid_t unloader, procs[NR_WORKERS];
	struct run run;
	uint64_t t0, next_quiet;
	int i, status, started = 0;
	bool unmapper_started = false;

	memset(res, 0, sizeof(*res));
	res->unloader_status = -1;
	if (!run_map(&run, ps, processes)) {
		run_unmap(&run);
		TH_LOG("mmap: %s", strerror(errno));
		return false;
	}
	res->refs_ok = stable_refcounts(&run, res->refs_before);

	fflush(NULL);
	unloader = fork();
	if (unloader == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		_exit(unloader_fn(&run));
	}
	if (unloader < 0) {
		run_unmap(&run);
		TH_LOG("fork: %s", strerror(errno));
		return false;
	}

	for (i = 0; i < NR_WORKERS; i++) {
		worker_init(&workers[i], &run, i);
		if (processes) {
			procs[i] = fork();
			if (procs[i] == 0)
				_exit(worker_process(&run, i));
			if (procs[i] < 0)
				break;
		} else {
			workers[i].peers = workers;
			if (test_thread_start(&workers[i].thread, worker_fn,
					      &workers[i]))
				break;
		}
		started++;
	}
	if (!processes && started == NR_WORKERS) {
		worker_init(&unmapper, &run, NR_WORKERS);
		unmapper.rnd ^= 0x5555555555555555ULL;
		unmapper_started = !test_thread_start(&unmapper.thread,
						      unmapper_fn, &unmapper);
	}

	t0 = now_ms();
	next_quiet = t0 + QUIET_EVERY_MS / 2;
	while (started == NR_WORKERS &&
	       (now_ms() - t0 < ms ||
		(cover && !covered(run.st) && now_ms() - t0 < COVER_MAX_MS))) {
		if (now_ms() >= next_quiet) {
			__atomic_store_n(&run.st->quiet, 1, __ATOMIC_RELAXED);
			poll(NULL, 0, QUIET_MS);
			__atomic_store_n(&run.st->quiet, 0, __ATOMIC_RELAXED);
			next_quiet += QUIET_EVERY_MS;
		}
		poll(NULL, 0, 10);
	}
	__atomic_store_n(&run.st->stop, 1, __ATOMIC_RELAXED);

	res->tasks_failed = NR_WORKERS - started;
	for (i = 0; i < started; i++) {
		if (processes) {
			if (waitpid(procs[i], &status, 0) != procs[i] ||
			    !WIFEXITED(status) || WEXITSTATUS(status))
				res->tasks_failed++;
		} else if (test_thread_join(&workers[i].thread)) {
			res->tasks_failed++;
		}
	}
	if (!processes && (!unmapper_started ||
			   test_thread_join(&unmapper.thread)))
		res->tasks_failed++;
	if (waitpid(unloader, &status, 0) == unloader && WIFEXITED(status))
		res->unloader_status = WEXITSTATUS(status);

	res->refs_ok = res->refs_ok && stable_refcounts(&run, res->refs_after);
	res->st = *run.st;
	run_unmap(&run);
	return true;
}

static void print_stats(struct __test_metadata *_metadata,
			const struct run_result *res)
{
	const struct stats *st = &res->st;
	int op;

	for (op = 0; op < NR_OPS; op++)
		TH_LOG("%-14s valid %6ld (%6ld ok)  invalid %6ld (%ld ok)",
		       op_names[op], st->calls[op], st->ok[op], st->bad[op],
		       st->bad_ok[op]);
	TH_LOG("opens %ld (%ld failed), unloads %ld of %ld tries, reloads %ld (%ld failed), vm ops %ld, children killed %ld",
	       st->opens, st->open_fails, st->unloads, st->unload_tries,
	       st->reloads, st->reload_fails, st->vm_ops, st->kills);
}

/*
 * Every invalid call was refused, the module is back as it was, nothing
 * holds the stable pages; with coverage, the run also did what it claims.
 */
static void check_run(struct __test_metadata *_metadata,
		      FIXTURE_DATA(stress) *self, const struct run_result *res,
		      bool coverage)
{
	const struct stats *st = &res->st;
	long refcnt, bad_ok = 0;
	size_t i;
	int op, changed = 0;

	EXPECT_EQ(0, res->tasks_failed)
		TH_LOG("%d workers or unmappers did not finish cleanly",
		       res->tasks_failed);
	EXPECT_EQ(0, res->unloader_status)
		TH_LOG("the module is not loaded after the run (last finit_module errno %d: %s)",
		       st->reload_errno, strerror(st->reload_errno));
	EXPECT_TRUE(module_live());
	refcnt = read_long(MODULE_SYSFS "/refcnt");
	EXPECT_EQ(self->refcnt_before, refcnt)
		TH_LOG("module refcount %ld before the run, %ld after",
		       self->refcnt_before, refcnt);
	for (op = 0; op < NR_OPS; op++) {
		if (st->bad_ok[op])
			TH_LOG("%ld invalid %s calls succeeded",
			       st->bad_ok[op], op_names[op]);
		bad_ok += st->bad_ok[op];
	}
	EXPECT_EQ(0, bad_ok);
	EXPECT_EQ(0, st->unload_errno)
		TH_LOG("delete_module: %s", strerror(st->unload_errno));
	EXPECT_EQ(0, st->reload_fails)
		TH_LOG("finit_module failed %ld times, last: %s",
		       st->reload_fails, strerror(st->reload_errno));
	/* What the run claims to have raced with. */
	if (coverage) {
		EXPECT_LT(0, st->unloads)
			TH_LOG("the module was never unloaded");
		/*
		 * Braces: EXPECT_*() is two statements, and its TH_LOG()
		 * runs after the second.
		 */
		for (i = 0; i < sizeof(core) / sizeof(core[0]); i++) {
			EXPECT_LT(0, st->ok[core[i]])
				TH_LOG("no valid %s succeeded",
				       op_names[core[i]]);
		}
	}
	ASSERT_TRUE(res->refs_ok) TH_LOG("could not read the refcounts");
	for (i = 0; i < 2 * STABLE_PAGES; i++)
		if (res->refs_before[i] != res->refs_after[i] && changed++ < 4)
			TH_LOG("%s page %zu: refcount %d before, %d after",
			       i < STABLE_PAGES ? "private" : "shared",
			       i % STABLE_PAGES, res->refs_before[i],
			       res->refs_after[i]);
	EXPECT_EQ(0, changed)
		TH_LOG("%d held pages have another refcount after the run",
		       changed);
}

/*
 * Free memory after the run against before it. Both snapshots are taken
 * after a warm-up run (slab caches grown, the module reloaded at least
 * once), with the page cache dropped, every CPU's LRU batches drained and
 * the per-CPU free lists counted as free. What is left moves with slab
 * (objects freed into partial slabs, debug kernels' KASAN quarantine) and
 * a few kernel stacks and page tables: FREE_SLACK_KB beyond the slab's own
 * growth. The swap cache's growth is printed with it: a folio under
 * writeback when munmap() frees its swap entry stays in the swap cache
 * until reclaim. A leaked reference per GET leaks its pages: the run makes
 * thousands of GETs of up to GET_MAX pages.
 *
 * And the huge zero folio, when the run allocated it: the first read fault
 * on an empty THP range allocates it, every mm that mapped it holds it
 * until that mm exits, and drop_caches frees it once none does. Workers
 * of the threads variant that take it first leave it held by this
 * process, a THP's worth of pages that are not lost: 6.12 aligns their
 * mappings to THPs, and was 549 pages short with thp_zero_page_alloc
 * going from 0 to 1 between the snapshots (2026-12-07).
 */
#define FREE_SLACK_KB	1024

static void check_free_memory(struct __test_metadata *_metadata, size_t ps,
			      const struct mem_snapshot *before,
			      const struct mem_snapshot *after)
{
	long lost = before->free - after->free;
	long slab = after->slab - before->slab;
	long swap_cached = after->swap_cached - before->swap_cached;
	long huge_zero = 0, slack;

	if (before->huge_zero_allocs >= 0 &&
	    after->huge_zero_allocs > before->huge_zero_allocs)
		huge_zero = thp_size() / ps;
	slack = FREE_SLACK_KB * 1024L / (long)ps + (slab > 0 ? slab : 0) +
		huge_zero;
	TH_LOG("free memory: %ld pages before, %ld after (%+ld), slab %+ld pages, swap cache %+ld pages, huge zero folio allocated %+ld pages, tolerance %ld pages",
	       before->free, after->free, -lost, slab, swap_cached, huge_zero,
	       slack);
	EXPECT_GE(slack, lost)
		TH_LOG("%ld pages (%ld KiB) less free memory after the run",
		       lost, lost * (long)ps / 1024);
}

TEST_F_TIMEOUT(stress, ioctls_unload, 90)
{
	struct mem_snapshot before, after;
	struct run_result res;

	if (setup_skipped(_metadata))
		return;
	ASSERT_TRUE(run_stress(_metadata, self->ps, variant->processes,
			       WARMUP_MS, false, &res));
	check_run(_metadata, self, &res, false);
	mem_snapshot(&before, self->ps);
	ASSERT_TRUE(run_stress(_metadata, self->ps, variant->processes,
			       STRESS_MS, true, &res));
	print_stats(_metadata, &res);
	check_run(_metadata, self, &res, true);
	mem_snapshot(&after, self->ps);
	check_free_memory(_metadata, self->ps, &before, &after);
}

static int kmemleak_cmd(const char *cmd)
{
	int fd = open(KMEMLEAK_PATH, O_WRONLY);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, cmd, strlen(cmd)) < 0)
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * The unreferenced objects kmemleak reports that this test made: the
 * module's, or allocated by a task of this program (comm), whatever the
 * call (ioctl, open, finit_module, delete_module).
 */
static int kmemleak_attributable(struct __test_metadata *_metadata,
				 int *others)
{
	char line[256], record[2048];
	size_t used = 0;
	int mine = 0;
	bool in_record = false, is_mine = false;
	FILE *f = fopen(KMEMLEAK_PATH, "r");

	*others = 0;
	if (!f)
		return -1;
	for (;;) {
		bool eof = !fgets(line, sizeof(line), f);

		if (eof || !strncmp(line, "unreferenced object", 19)) {
			if (in_record) {
				if (used && record[used - 1] == '\n')
					record[--used] = '\0';
				if (is_mine && mine++ < 3)
					TH_LOG("%s", record);
				*others += !is_mine;
			}
			if (eof)
				break;
			in_record = true;
			is_mine = false;
			used = 0;
			record[0] = '\0';
		}
		if (strstr(line, MODULE_NAME))
			is_mine = true;
		if (used + strlen(line) + 2 < sizeof(record)) {
			used += snprintf(record + used, sizeof(record) - used,
					 "%s%s", used ? "# " : "", line);
		}
	}
	fclose(f);
	return mine;
}

/* kmemleak scans every struct page: long on a debug kernel under TCG. */
TEST_F_TIMEOUT(stress, kmemleak, 300)
{
	struct run_result res;
	int ret, mine, others;

	if (setup_skipped(_metadata))
		return;
	if (access(KMEMLEAK_PATH, F_OK))
		SKIP(return, "%s: %s (kernel without CONFIG_DEBUG_KMEMLEAK)",
		     KMEMLEAK_PATH, strerror(errno));
	/*
	 * Forget what was reported before us; "stack=on" (the default)
	 * fails only when kmemleak is off. No scan here: each takes about
	 * 50 s on the DEBUG=1 x86_64 guest, and the objects kmemleak
	 * reports are told apart by who made them.
	 */
	ret = kmemleak_cmd("stack=on");
	if (ret)
		SKIP(return, "kmemleak: %s (kmemleak disabled)",
		     strerror(-ret));
	ASSERT_EQ(0, kmemleak_cmd("clear"));

	ASSERT_TRUE(run_stress(_metadata, self->ps, variant->processes,
			       KMEMLEAK_MS, true, &res));
	print_stats(_metadata, &res);
	check_run(_metadata, self, &res, true);
	/* Old enough to be reported, then two scans as kmemleak advises. */
	poll(NULL, 0, KMEMLEAK_MIN_AGE_MS + 1000);
	ASSERT_EQ(0, kmemleak_cmd("scan"));
	ASSERT_EQ(0, kmemleak_cmd("scan"));
	mine = kmemleak_attributable(_metadata, &others);
	ASSERT_LE(0, mine) TH_LOG("%s: %s", KMEMLEAK_PATH, strerror(errno));
	TH_LOG("kmemleak: %d unreferenced objects of this test, %d of others since the run began",
	       mine, others);
	EXPECT_EQ(0, mine);
}

TEST_HARNESS_MAIN
