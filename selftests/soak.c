// SPDX-License-Identifier: GPL-2.0
/*
 * soak: the race selftests for longer, under real memory pressure.
 *
 * Usage: soak <race program>...     (selftests/soak.list, make soak)
 *
 * Four pressure scenarios run as child processes for the whole soak:
 *
 *   hog               anonymous memory beyond what the guest has available,
 *                     walked page by page: every page is checked against
 *                     the contents it was last given, then given new ones.
 *                     Reclaim has to swap it out to zram and back in, with
 *                     no MADV_PAGEOUT anywhere; the soak fails if the
 *                     kernel never swapped (pswpout).
 *   odirect_checksum  O_DIRECT writes and reads of 64 KiB blocks of the
 *                     scratch disk (from 8 MiB on: odirect_race keeps to its
 *                     first MiBs) from and into buffers that reclaim swaps
 *                     out between uses; every block read must match the
 *                     checksum of what was last written to it.
 *   fork_storm        FORK_CHILDREN children at a time of a process whose
 *                     region is partly swapped out: each child must see the
 *                     region as it was at fork() while the parent rewrites
 *                     it, and the parent must never see a child's writes.
 *   swap_cycle        a second zram swap area, preferred by reclaim, turned
 *                     off (swapoff pulls its pages back in) and on again
 *                     every SWAP_CYCLE_MS; the scenario's own region is
 *                     checked after every swapoff.
 *
 * Meanwhile the race programs named on the command line run one after the
 * other, with their bounds in the environment (cowguard_test.h,
 * race_bound()): COWGUARD_SOAK_ROUNDS rounds (default 10^4), a region
 * sized for many rounds, at most twice an equal share of the time left
 * per context left, and never beyond the end of the soak. Their KTAP goes
 * to the console as it is; the soak's own cases follow them.
 *
 * COWGUARD_SOAK_SECONDS (from scripts/soak, through the kernel command
 * line) is the duration; everything else is derived from it here.
 *
 * Each scenario ends in one result line, "ok N soak.<scenario> #
 * iterations N corruptions N" (or not ok): it fails on any corruption,
 * when it checked nothing, or when it could not apply its pressure.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "proc_value.h"
#include "race_bounds.h"
#include "scratch_disk.h"

#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define DEFAULT_SECONDS		60
#define DEFAULT_ROUNDS		"10000"

#define HOG_EXTRA_MB		64	/* beyond MemAvailable, at most */
#define ODIRECT_START		(8L << 20)
#define ODIRECT_BLOCK		(64L << 10)
#define ODIRECT_BUFFERS		16	/* per direction, used in turn */
#define FORK_PAGES		256
#define FORK_CHILDREN		8
#define SWAP_DEV		"/dev/zram%d"
#define SWAP_MB			32
#define SWAP_PRIO		10	/* above the init's zram0 (-2) */
#define SWAP_PAGES		1024	/* the swap cycle's own region */
#define WORKER_STOP_SECONDS	60
/*
 * The pressure runs niced: reclaim does not need speed, and the races
 * need the guest's two CPUs for their 10^4 rounds.
 */
#define WORKER_NICE		10
/*
 * And paced: each page the hog walks is a swap-in and a swap-out, which
 * reclaim does at nice 0 (kswapd, direct reclaim). At most 64 pages every
 * HOG_PACE_MS: a few MiB of swap traffic a second, continuously.
 */
#define HOG_PACE_MS		40
#define ODIRECT_PACE_MS		10
#define FORK_PACE_MS		50
#define SWAP_CYCLE_MS		1000

/* The race programs this soak knows: contexts and region per context. */
static const struct race {
	const char *name;
	int contexts;
	const char *pages;	/* COWGUARD_RACE_PAGES */
} races[] = {
	{ "soft_dirty_race", 8, "64" },
	{ "lost_writes", 3, "512" },
	{ "odirect_race", 2, NULL },	/* 16 pages, as ever */
};

enum scenario { HOG, ODIRECT, FORK_STORM, SWAP_CYCLE, NR_SCENARIOS };

static const char *const scenario_names[NR_SCENARIOS] = {
	"hog", "odirect_checksum", "fork_storm", "swap_cycle",
};

/* What the workers report, in memory the supervisor shares with them. */
struct shared {
	atomic_bool stop;
	atomic_bool hog_ready;
	struct stats {
		atomic_ulong iterations;
		atomic_ulong corruptions;
		atomic_ulong extra;	/* per scenario: see print_results() */
		atomic_ulong errors;
		char skip[96];		/* set: the scenario could not run */
		char first[160];	/* the first corruption */
	} st[NR_SCENARIOS];
};

static struct shared *sh;
static size_t ps;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool stopping(void)
{
	return atomic_load_explicit(&sh->stop, memory_order_relaxed);
}

static void corrupt(struct stats *st, unsigned long n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void corrupt(struct stats *st, unsigned long n, const char *fmt, ...)
{
	va_list ap;

	if (atomic_fetch_add(&st->corruptions, n) == 0) {
		va_start(ap, fmt);
		vsnprintf(st->first, sizeof(st->first), fmt, ap);
		va_end(ap);
	}
}

static int write_str(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

/* The 64-bit word that fills page idx in generation gen. */
static uint64_t fill_word(uint64_t idx, uint64_t gen)
{
	uint64_t x = idx * 0x9e3779b97f4a7c15ULL ^ gen * 0xc2b2ae3d27d4eb4fULL;

	x ^= x >> 31;
	return x | 1;	/* never a zero page */
}

/*
 * A page's contents in generation gen: its index and generation, then one
 * word repeated, which zram compresses to almost nothing, so that the hog
 * can exceed the memory without filling the swap area.
 */
static void fill_page(uint64_t *p, uint64_t idx, uint64_t gen)
{
	uint64_t w = fill_word(idx, gen);
	size_t i;

	p[0] = idx;
	p[1] = gen;
	for (i = 2; i < ps / sizeof(*p); i++)
		p[i] = w;
}

/* Whether the page holds generation gen of page idx. */
static bool page_ok(const uint64_t *p, uint64_t idx, uint64_t gen)
{
	uint64_t w = fill_word(idx, gen);
	size_t i;

	if (p[0] != idx || p[1] != gen)
		return false;
	for (i = 2; i < ps / sizeof(*p); i++)
		if (p[i] != w)
			return false;
	return true;
}

/* --- hog ---------------------------------------------------------------- */

static int hog(struct stats *st)
{
	unsigned long avail = proc_value("/proc/meminfo", "MemAvailable") >> 10;
	size_t mb = avail + (avail / 4 < HOG_EXTRA_MB ? avail / 4 : HOG_EXTRA_MB);
	size_t nr = (mb << 20) / ps, i;
	uint64_t gen = 1;
	char *mem;

	mem = mmap(NULL, nr * ps, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		snprintf(st->skip, sizeof(st->skip), "mmap %zu MiB: %s", mb,
			 strerror(errno));
		atomic_store(&sh->hog_ready, true);
		return 1;
	}
	madvise(mem, nr * ps, MADV_NOHUGEPAGE);
	atomic_store(&st->extra, mb);
	for (i = 0; i < nr && !stopping(); i++)
		fill_page((uint64_t *)(mem + i * ps), i, gen);
	atomic_store(&sh->hog_ready, true);

	/* Round and round: every page is checked, then rewritten. */
	while (!stopping()) {
		for (i = 0; i < nr && !stopping(); i++) {
			uint64_t *p = (uint64_t *)(mem + i * ps);

			if (!page_ok(p, i, gen))
				corrupt(st, 1, "page %zu: generation %llu expected, the page says page %llu generation %llu",
					i, (unsigned long long)gen,
					(unsigned long long)p[0],
					(unsigned long long)p[1]);
			fill_page(p, i, gen + 1);
			atomic_fetch_add_explicit(&st->iterations, 1,
						  memory_order_relaxed);
			/*
			 * Leave the races CPU: a walk beyond the memory keeps
			 * reclaim busy at any speed.
			 */
			if (!(i & 63))
				usleep(HOG_PACE_MS * 1000);
		}
		if (i == nr)
			gen++;
		else
			break;
	}
	return 0;
}

/* --- O_DIRECT checksum --------------------------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* FNV-1a over 64-bit words. */
static uint64_t checksum(const void *buf, size_t len)
{
	const uint64_t *w = buf;
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < len / sizeof(*w); i++) {
		h ^= w[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* Block blk, generation gen: its number, generation, then noise. */
static void fill_block(uint64_t *b, uint64_t blk, uint64_t gen)
{
	uint64_t s = fill_word(blk, gen);
	size_t i;

	b[0] = blk;
	b[1] = gen;
	for (i = 2; i < ODIRECT_BLOCK / sizeof(*b); i++)
		b[i] = xorshift(&s);
}

static int odirect_checksum(struct stats *st)
{
	uint64_t size = 0, seed = 88172645463325252ULL, *sums, *gens;
	unsigned long nblocks, round = 0;
	char *wbufs, *rbufs;
	char magic[512] __attribute__((aligned(512)));
	int fd;

	fd = open(SCRATCH_DISK, O_RDWR | O_DIRECT);
	if (fd < 0) {
		snprintf(st->skip, sizeof(st->skip), "%s: %s (no scratch disk)",
			 SCRATCH_DISK, strerror(errno));
		return 0;
	}
	if (pread(fd, magic, sizeof(magic), 0) != sizeof(magic) ||
	    memcmp(magic, SCRATCH_MAGIC, strlen(SCRATCH_MAGIC))) {
		snprintf(st->skip, sizeof(st->skip),
			 "%s is not a cowguard scratch disk: not overwriting it",
			 SCRATCH_DISK);
		return 0;
	}
	if (ioctl(fd, BLKGETSIZE64, &size) || size < ODIRECT_START + 16 * ODIRECT_BLOCK) {
		snprintf(st->skip, sizeof(st->skip), "%s: %llu bytes, too small",
			 SCRATCH_DISK, (unsigned long long)size);
		return 0;
	}
	nblocks = (size - ODIRECT_START) / ODIRECT_BLOCK;
	atomic_store(&st->extra, nblocks);
	sums = calloc(nblocks, sizeof(*sums));
	gens = calloc(nblocks, sizeof(*gens));
	wbufs = mmap(NULL, 2 * ODIRECT_BUFFERS * ODIRECT_BLOCK,
		     PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!sums || !gens || wbufs == MAP_FAILED) {
		snprintf(st->skip, sizeof(st->skip), "out of memory");
		return 1;
	}
	rbufs = wbufs + ODIRECT_BUFFERS * ODIRECT_BLOCK;
	madvise(wbufs, 2 * ODIRECT_BUFFERS * ODIRECT_BLOCK, MADV_NOHUGEPAGE);

	while (!stopping()) {
		char *wb = wbufs + (round % ODIRECT_BUFFERS) * ODIRECT_BLOCK;
		char *rb = rbufs + (round % ODIRECT_BUFFERS) * ODIRECT_BLOCK;
		unsigned long blk = xorshift(&seed) % nblocks, chk;
		off_t off = ODIRECT_START + (off_t)blk * ODIRECT_BLOCK;
		uint64_t sum;

		round++;
		/* Write a new generation of one block... */
		fill_block((uint64_t *)wb, blk, round);
		sum = checksum(wb, ODIRECT_BLOCK);
		if (pwrite(fd, wb, ODIRECT_BLOCK, off) != ODIRECT_BLOCK) {
			atomic_fetch_add(&st->errors, 1);
			continue;
		}
		sums[blk] = sum;
		gens[blk] = round;
		/* ...the source must not have changed under the write... */
		if (checksum(wb, ODIRECT_BLOCK) != sum)
			corrupt(st, 1, "round %lu: the write buffer of block %lu changed during its write",
				round, blk);
		/* ...and read back it or another written block. */
		chk = round & 1 ? blk : xorshift(&seed) % nblocks;
		if (!gens[chk])
			chk = blk;
		memset(rb, 0, ODIRECT_BLOCK);
		if (pread(fd, rb, ODIRECT_BLOCK,
			  ODIRECT_START + (off_t)chk * ODIRECT_BLOCK) != ODIRECT_BLOCK) {
			atomic_fetch_add(&st->errors, 1);
			continue;
		}
		if (checksum(rb, ODIRECT_BLOCK) != sums[chk])
			corrupt(st, 1, "round %lu: block %lu read back with checksum %016llx, written with %016llx (it says block %llu generation %llu, expected %lu)",
				round, chk,
				(unsigned long long)checksum(rb, ODIRECT_BLOCK),
				(unsigned long long)sums[chk],
				(unsigned long long)((uint64_t *)rb)[0],
				(unsigned long long)((uint64_t *)rb)[1],
				(unsigned long)gens[chk]);
		atomic_fetch_add(&st->iterations, 1);
		usleep(ODIRECT_PACE_MS * 1000);
	}
	close(fd);
	return 0;
}

/* --- fork storm ---------------------------------------------------------- */

/* A child: the region as it was at fork(), its own writes its own. */
static int fork_child(char *mem, uint64_t gen, int id)
{
	unsigned long bad = 0;
	size_t i;

	for (i = 0; i < FORK_PAGES; i++)
		if (!page_ok((uint64_t *)(mem + i * ps), i, gen))
			bad++;
	for (i = id; i < FORK_PAGES; i += FORK_CHILDREN)
		fill_page((uint64_t *)(mem + i * ps), i, ~gen - id);
	for (i = 0; i < FORK_PAGES; i++)
		if (!page_ok((uint64_t *)(mem + i * ps), i,
			     i % FORK_CHILDREN == (size_t)id ? ~gen - id : gen))
			bad++;
	return bad > 255 ? 255 : bad;
}

static int fork_storm(struct stats *st)
{
	pid_t pids[FORK_CHILDREN];
	uint64_t gen = 1;
	size_t i;
	char *mem;

	mem = mmap(NULL, FORK_PAGES * ps, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		snprintf(st->skip, sizeof(st->skip), "mmap: %s", strerror(errno));
		return 1;
	}
	madvise(mem, FORK_PAGES * ps, MADV_NOHUGEPAGE);
	for (i = 0; i < FORK_PAGES; i++)
		fill_page((uint64_t *)(mem + i * ps), i, gen);

	while (!stopping()) {
		unsigned long bad = 0;
		int n, c;

		for (n = 0; n < FORK_CHILDREN; n++) {
			pids[n] = fork();
			if (pids[n] < 0) {
				atomic_fetch_add(&st->errors, 1);
				break;
			}
			if (!pids[n])
				_exit(fork_child(mem, gen, n));
		}
		/* The parent rewrites everything while the children check. */
		for (i = 0; i < FORK_PAGES; i++)
			fill_page((uint64_t *)(mem + i * ps), i, gen + 1);
		for (c = 0; c < n; c++) {
			int status;

			if (waitpid(pids[c], &status, 0) != pids[c] ||
			    !WIFEXITED(status)) {
				atomic_fetch_add(&st->errors, 1);
				continue;
			}
			if (WEXITSTATUS(status))
				corrupt(st, WEXITSTATUS(status),
					"generation %llu: child %d saw %d page(s) that are not what it forked or wrote",
					(unsigned long long)gen, c,
					WEXITSTATUS(status));
			atomic_fetch_add(&st->iterations, 1);
		}
		gen++;
		for (i = 0; i < FORK_PAGES; i++)
			if (!page_ok((uint64_t *)(mem + i * ps), i, gen))
				bad++;
		if (bad)
			corrupt(st, bad, "generation %llu: the parent lost %lu page(s) of its own writes",
				(unsigned long long)gen, bad);
		usleep(FORK_PACE_MS * 1000);
	}
	return 0;
}

/* --- swapoff/swapon cycles ----------------------------------------------- */

/* The version 1 swap header (union swap_header), as the guest init writes. */
static int write_swap_header(const char *dev, unsigned long bytes)
{
	uint32_t info[3] = { 1, bytes / ps - 1, 0 };
	char *page = calloc(1, ps);
	int fd, ret = 0;

	if (!page)
		return -ENOMEM;
	memcpy(page + 1024, info, sizeof(info));
	memcpy(page + ps - 10, "SWAPSPACE2", 10);
	fd = open(dev, O_WRONLY);
	if (fd < 0 || pwrite(fd, page, ps, 0) != (ssize_t)ps || fsync(fd))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(page);
	return ret;
}

/* KiB in use on dev, from /proc/swaps; 0 when it is not on. */
static unsigned long swap_used_kb(const char *dev)
{
	char line[256], name[128];
	unsigned long size, used = 0, u;
	FILE *f = fopen("/proc/swaps", "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%127s %*s %lu %lu", name, &size, &u) == 3 &&
		    !strcmp(name, dev))
			used = u;
	fclose(f);
	return used;
}

static int swap_cycle(struct stats *st)
{
	char dev[32], buf[16], path[64], size[32];
	int flags = SWAP_FLAG_PREFER | (SWAP_PRIO & SWAP_FLAG_PRIO_MASK);
	uint64_t gen = 1;
	int id, fd, ret;
	ssize_t n;
	size_t i;
	char *mem;

	fd = open("/sys/class/zram-control/hot_add", O_RDONLY);
	n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0) {
		snprintf(st->skip, sizeof(st->skip),
			 "no second zram device (/sys/class/zram-control/hot_add: %s)",
			 strerror(errno));
		return 0;
	}
	buf[n] = '\0';
	id = atoi(buf);
	snprintf(dev, sizeof(dev), SWAP_DEV, id);
	snprintf(path, sizeof(path), "/sys/block/zram%d/disksize", id);
	snprintf(size, sizeof(size), "%lu", (unsigned long)SWAP_MB << 20);
	ret = write_str(path, size);
	if (!ret)
		ret = write_swap_header(dev, (unsigned long)SWAP_MB << 20);
	if (!ret && swapon(dev, flags))
		ret = -errno;
	if (ret) {
		snprintf(st->skip, sizeof(st->skip), "%s as swap: %s", dev,
			 strerror(-ret));
		return 1;
	}

	mem = mmap(NULL, SWAP_PAGES * ps, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		snprintf(st->skip, sizeof(st->skip), "mmap: %s", strerror(errno));
		swapoff(dev);
		return 1;
	}
	madvise(mem, SWAP_PAGES * ps, MADV_NOHUGEPAGE);
	for (i = 0; i < SWAP_PAGES; i++)
		fill_page((uint64_t *)(mem + i * ps), i, gen);

	while (!stopping()) {
		unsigned long bad = 0, used;

		/* Let reclaim fill the preferred area for a while. */
		usleep(SWAP_CYCLE_MS * 1000);
		used = swap_used_kb(dev);
		if (swapoff(dev)) {
			/* ENOMEM: no room to pull it back in now; retry. */
			atomic_fetch_add(&st->errors, 1);
			continue;
		}
		atomic_fetch_add(&st->extra, used);
		for (i = 0; i < SWAP_PAGES; i++)
			if (!page_ok((uint64_t *)(mem + i * ps), i, gen))
				bad++;
		if (bad)
			corrupt(st, bad, "cycle %lu: %lu page(s) of the region wrong after swapoff",
				atomic_load(&st->iterations) + 1, bad);
		gen++;
		for (i = 0; i < SWAP_PAGES; i++)
			fill_page((uint64_t *)(mem + i * ps), i, gen);
		atomic_fetch_add(&st->iterations, 1);
		if (swapon(dev, flags)) {
			snprintf(st->skip, sizeof(st->skip), "swapon %s again: %s",
				 dev, strerror(errno));
			return 1;
		}
	}
	swapoff(dev);
	return 0;
}

/* --- the supervisor ------------------------------------------------------ */

static int (*const workers[NR_SCENARIOS])(struct stats *) = {
	hog, odirect_checksum, fork_storm, swap_cycle,
};

static pid_t start_worker(enum scenario s)
{
	pid_t pid = fork();

	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (nice(WORKER_NICE) < 0)
			perror("soak: nice");
		_exit(workers[s](&sh->st[s]));
	}
	return pid;
}

/* A race program with its bounds; its exit status, or -1. */
static int run_race(const struct race *r, unsigned long seconds,
		    const char *rounds, double deadline)
{
	char path[128], secs[16], end[24];
	int status;
	pid_t pid;

	snprintf(path, sizeof(path), "/tests/%s", r->name);
	snprintf(secs, sizeof(secs), "%lu", seconds);
	snprintf(end, sizeof(end), "%.0f", deadline);
	pid = fork();
	if (pid == 0) {
		setenv("COWGUARD_RACE_SECONDS", secs, 1);
		setenv("COWGUARD_RACE_DEADLINE", end, 1);
		setenv("COWGUARD_RACE_ROUNDS", rounds, 1);
		if (r->pages)
			setenv("COWGUARD_RACE_PAGES", r->pages, 1);
		execl(path, r->name, (char *)NULL);
		printf("# soak: exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/*
 * The console's log level, "5": warnings and worse. The swap cycle's
 * "Adding ... swap" (pr_info) every second would otherwise cut the
 * tests' lines on the console; every splat is a warning or worse and
 * still reaches it. Returns the old setting, or an empty string.
 */
static void console_quiet(char *old, size_t len)
{
	int fd = open("/proc/sys/kernel/printk", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, old, len - 1);

	if (fd >= 0)
		close(fd);
	old[n > 0 ? n : 0] = '\0';
	if (n > 0 && write_str("/proc/sys/kernel/printk", "5"))
		old[0] = '\0';
}

/*
 * Makes THP available again in a guest too small for it by default. Below
 * 512 MiB hugepage_init() clears every THP flag, defrag's included: a THP
 * fault then neither reclaims nor compacts ("never"), and under the soak's
 * pressure it finds no free 2 MiB block (the DEBUG=1 soaks of 2026-12-03
 * SKIPped migrate_thp). Both go back to what a larger machine boots with:
 * madvise.
 */
static void thp_on_madvise(void)
{
	char buf[64] = "";
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY);

	if (fd < 0)
		return;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = '\0';
	close(fd);
	if (strstr(buf, "[never]") &&
	    !write_str("/sys/kernel/mm/transparent_hugepage/enabled", "madvise") &&
	    !write_str("/sys/kernel/mm/transparent_hugepage/defrag", "madvise"))
		printf("# soak: THP was off (small guest): madvise mode on, defrag madvise, for the THP contexts\n");
}

static int print_results(unsigned long pswpout)
{
	static const char *const extra[NR_SCENARIOS] = {
		"MiB hogged", "disk blocks", "", "KiB in the area at swapoff",
	};
	int s, failed = 0;

	printf("1..%d\n", NR_SCENARIOS);
	for (s = 0; s < NR_SCENARIOS; s++) {
		struct stats *st = &sh->st[s];
		unsigned long it = atomic_load(&st->iterations);
		unsigned long bad = atomic_load(&st->corruptions);
		char why[128] = "";

		/*
		 * The harness's RUN line: the guest's init keeps the name of
		 * a result line that follows one, and names the cases of a
		 * program without it after the program ("soak: soak.hog").
		 */
		printf("#  RUN           soak.%s ...\n", scenario_names[s]);
		if (st->skip[0] && !it) {
			printf("ok %d soak.%s # SKIP %s\n", s + 1,
			       scenario_names[s], st->skip);
			continue;
		}
		if (extra[s][0])
			printf("# soak.%s: %lu %s, %lu errors\n", scenario_names[s],
			       atomic_load(&st->extra), extra[s],
			       atomic_load(&st->errors));
		if (bad)
			printf("# soak.%s: first corruption: %s\n",
			       scenario_names[s], st->first);
		if (st->skip[0])
			snprintf(why, sizeof(why), "stopped early: %s", st->skip);
		else if (!it)
			snprintf(why, sizeof(why), "nothing checked");
		else if (s == HOG && !pswpout)
			snprintf(why, sizeof(why),
				 "reclaim never swapped (pswpout 0): no pressure");
		if (why[0])
			printf("# soak.%s: %s\n", scenario_names[s], why);
		failed |= bad || why[0];
		printf("%sok %d soak.%s # iterations %lu corruptions %lu\n",
		       bad || why[0] ? "not " : "", s + 1, scenario_names[s],
		       it, bad);
	}
	return failed;
}

int main(int argc, char **argv)
{
	const char *env = getenv("COWGUARD_SOAK_SECONDS");
	const char *rounds = getenv("COWGUARD_SOAK_ROUNDS");
	unsigned long seconds = env ? strtoul(env, NULL, 10) : 0;
	unsigned long share, contexts = 0, left, pswpout, pswpin;
	const struct race *run[8];
	pid_t pids[NR_SCENARIOS];
	char printk[64];
	int i, s, nrun = 0, failed = 0;
	double t0, t;

	setvbuf(stdout, NULL, _IOLBF, 0);
	ps = getpagesize();
	if (!seconds)
		seconds = DEFAULT_SECONDS;
	if (!rounds || !*rounds)
		rounds = DEFAULT_ROUNDS;
	for (i = 1; i < argc && nrun < 8; i++) {
		for (s = 0; s < (int)ARRAY_SIZE(races); s++)
			if (!strcmp(argv[i], races[s].name))
				break;
		if (s == (int)ARRAY_SIZE(races)) {
			fprintf(stderr, "soak: unknown race program %s\n", argv[i]);
			return 2;
		}
		run[nrun++] = &races[s];
		contexts += races[s].contexts;
	}

	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("soak: mmap");
		return 1;
	}
	printf("# soak: %lu s: %lu race contexts of %s rounds each, under hog, O_DIRECT checksum, fork storm and swapoff/swapon cycles; %ld MiB RAM, %ld MiB available\n",
	       seconds, contexts, rounds, proc_value("/proc/meminfo", "MemTotal") >> 10,
	       proc_value("/proc/meminfo", "MemAvailable") >> 10);
	thp_on_madvise();
	console_quiet(printk, sizeof(printk));
	pswpout = proc_value("/proc/vmstat", "pswpout");
	pswpin = proc_value("/proc/vmstat", "pswpin");
	t0 = now();
	/* The hog first: the races start under pressure. */
	pids[HOG] = start_worker(HOG);
	while (!atomic_load(&sh->hog_ready) && now() - t0 < WORKER_STOP_SECONDS)
		usleep(100000);
	printf("# soak: hog of %lu MiB filled in %.1f s\n",
	       atomic_load(&sh->st[HOG].extra), now() - t0);
	for (s = HOG + 1; s < NR_SCENARIOS; s++)
		pids[s] = start_worker(s);

	/*
	 * The one split of the duration: each context stops at its rounds,
	 * at twice an equal share of the time left (contexts differ: 60 to
	 * 3000 rounds a second), or at the end of the soak, so that what fast
	 * contexts leave goes to the slow ones and the races end in time.
	 */
	for (i = 0; i < nrun; i++) {
		int ret;

		t = now();
		left = t - t0 < seconds ? seconds - (unsigned long)(t - t0) : 0;
		share = 2 * left / contexts;
		if (share < 1)
			share = 1;
		if (share > RACE_MAX_SECONDS)
			share = RACE_MAX_SECONDS;
		printf("# soak: %s, %d contexts: up to %s rounds or %lu s each\n",
		       run[i]->name, run[i]->contexts, rounds, share);
		ret = run_race(run[i], share, rounds, t0 + seconds);
		printf("# soak: %s exit status %d after %.1f s\n", run[i]->name,
		       ret, now() - t);
		if (ret != 0 && ret != 4)	/* 4: KSFT_SKIP, all skipped */
			failed = 1;
		contexts -= run[i]->contexts;
	}
	/* The pressure for the whole duration, whatever the races took. */
	while (now() - t0 < seconds)
		usleep(200000);

	atomic_store(&sh->stop, true);
	t = now();
	for (s = 0; s < NR_SCENARIOS; s++) {
		int status;

		if (pids[s] < 0)
			continue;
		while (waitpid(pids[s], &status, WNOHANG) == 0) {
			if (now() - t > WORKER_STOP_SECONDS) {
				printf("# soak.%s: did not stop in %d s\n",
				       scenario_names[s], WORKER_STOP_SECONDS);
				kill(pids[s], SIGKILL);
				waitpid(pids[s], &status, 0);
				failed = 1;
				break;
			}
			usleep(100000);
		}
	}
	if (printk[0])
		write_str("/proc/sys/kernel/printk", printk);
	pswpout = proc_value("/proc/vmstat", "pswpout") - pswpout;
	pswpin = proc_value("/proc/vmstat", "pswpin") - pswpin;
	printf("# soak: %.1f s in all; reclaim swapped out %lu pages (pswpout), %lu came back (pswpin)\n",
	       now() - t0, pswpout, pswpin);
	failed |= print_results(pswpout);
	return failed;
}
