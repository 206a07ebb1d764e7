// SPDX-License-Identifier: GPL-2.0
/*
 * cowguard.ko's interface: every malformed input gets its errno and leaves
 * nothing held, references go away on PUT, close and exit, and only
 * CAP_SYS_ADMIN may use it. A kernel splat anywhere fails the whole run
 * (the pipeline checks the console), so these cases also show that bad
 * input does not reach a BUG or WARN.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cowguard_test.h"
#include "cowguard.h"


#define NR_PAGES	4

static int query(int fd, void *addr, struct cowguard_query *q)
{
	memset(q, 0, sizeof(*q));
	q->addr = (uintptr_t)addr;
	return ioctl(fd, COWGUARD_IOC_QUERY, q);
}

/*
 * A fresh page sits in this CPU's LRU batch, which holds a reference until
 * the batch is full. Fill it with pages nobody measures, so that refcounts
 * count lasting references only (the guests are uniprocessor).
 */
static void drain_lru_batch(void)
{
	size_t ps = getpagesize(), size = 64 * ps, i;
	char *scratch = mmap(NULL, size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (scratch == MAP_FAILED)
		return;
	for (i = 0; i < size; i += ps)
		scratch[i] = 1;
	munmap(scratch, size);
}

/* Refcount of the page mapped at addr, or -1. */
static int refcount_at(int fd, void *addr)
{
	struct cowguard_query q;

	drain_lru_batch();
	if (query(fd, addr, &q) || q.state != COWGUARD_PRESENT)
		return -1;
	return q.refcount;
}

static int get_range(int fd, void *addr, uint64_t size, uint32_t flags)
{
	struct cowguard_range r = {
		.addr = (uintptr_t)addr, .size = size, .flags = flags,
	};

	return ioctl(fd, COWGUARD_IOC_GET, &r);
}

static int io(int fd, unsigned long cmd, uint64_t offset, uint64_t len,
	      void *buf)
{
	struct cowguard_io io = {
		.offset = offset, .len = len, .buf = (uintptr_t)buf,
	};

	return ioctl(fd, cmd, &io);
}

/* An expected failure: -1 with exactly this errno. */
#define EXPECT_ERRNO(call, err) do {					\
		errno = 0;						\
		EXPECT_EQ(-1, (call));					\
		EXPECT_EQ(err, errno)					\
			TH_LOG("%s: errno %d (%s), expected %s",	\
			       #call, errno, strerror(errno), #err);	\
	} while (0)

FIXTURE(hooks)
{
	size_t ps;
	char *mem;
	int fd;
	int refs_before[NR_PAGES];
};

FIXTURE_SETUP(hooks)
{
	size_t i;

	self->ps = getpagesize();
	self->mem = MAP_FAILED;
	self->fd = open(COWGUARD_HOOKS_PATH, O_RDWR);
	if (self->fd < 0)
		SKIP(return, "%s: %s (cowguard.ko not loaded)",
		     COWGUARD_HOOKS_PATH, strerror(errno));
	self->mem = mmap(NULL, NR_PAGES * self->ps, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->mem);
	madvise(self->mem, NR_PAGES * self->ps, MADV_NOHUGEPAGE);
	for (i = 0; i < NR_PAGES; i++) {
		memset(self->mem + i * self->ps, 0x10 + i, self->ps);
		self->refs_before[i] = refcount_at(self->fd,
						   self->mem + i * self->ps);
		ASSERT_GT(self->refs_before[i], 0);
	}
}

FIXTURE_TEARDOWN(hooks)
{
	if (self->mem != MAP_FAILED)
		munmap(self->mem, NR_PAGES * self->ps);
	if (self->fd >= 0)
		close(self->fd);
}

/* Nothing of the range is held: each page's refcount is back to before. */
static void expect_nothing_held(struct __test_metadata *_metadata,
				FIXTURE_DATA(hooks) *self)
{
	size_t i;

	/* Braces: EXPECT_*()'s TH_LOG() is a statement of its own. */
	for (i = 0; i < NR_PAGES; i++) {
		EXPECT_EQ(self->refs_before[i],
			  refcount_at(self->fd, self->mem + i * self->ps))
			TH_LOG("page %zu still has an extra reference", i);
	}
	/* And the file accepts a new range. */
	ASSERT_EQ(0, get_range(self->fd, self->mem, self->ps, 0));
	ASSERT_EQ(0, ioctl(self->fd, COWGUARD_IOC_PUT));
}

TEST_F(hooks, bad_ioctl_number)
{
	if (setup_skipped(_metadata))
		return;
	EXPECT_ERRNO(ioctl(self->fd, _IO(COWGUARD_IOC_MAGIC, 99)), ENOTTY);
	EXPECT_ERRNO(ioctl(self->fd, _IOW('x', 1, struct cowguard_range),
			   NULL), ENOTTY);
	expect_nothing_held(_metadata, self);
}

TEST_F(hooks, null_pointers)
{
	char buf[16];

	if (setup_skipped(_metadata))
		return;
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_GET, NULL), EFAULT);
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_QUERY, NULL), EFAULT);
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_READ, NULL), EFAULT);
	ASSERT_EQ(0, get_range(self->fd, self->mem, self->ps, COWGUARD_WRITE));
	EXPECT_ERRNO(io(self->fd, COWGUARD_IOC_READ, 0, sizeof(buf), NULL),
		     EFAULT);
	EXPECT_ERRNO(io(self->fd, COWGUARD_IOC_WRITE, 0, sizeof(buf), NULL),
		     EFAULT);
	ASSERT_EQ(0, ioctl(self->fd, COWGUARD_IOC_PUT));
	expect_nothing_held(_metadata, self);
}

TEST_F(hooks, malformed_ranges)
{
	uint64_t top = (uint64_t)(uintptr_t)-1 & ~(uint64_t)(self->ps - 1);
	struct cowguard_range r = { .addr = (uintptr_t)self->mem,
				    .size = self->ps };

	if (setup_skipped(_metadata))
		return;
	EXPECT_ERRNO(get_range(self->fd, self->mem + 1, self->ps, 0), EINVAL);
	EXPECT_ERRNO(get_range(self->fd, self->mem, self->ps - 1, 0), EINVAL);
	EXPECT_ERRNO(get_range(self->fd, self->mem, 0, 0), EINVAL);
	EXPECT_ERRNO(get_range(self->fd, self->mem, self->ps, 0x80), EINVAL);
	r.reserved = 1;
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_GET, &r), EINVAL);
	EXPECT_ERRNO(get_range(self->fd, self->mem,
			       (uint64_t)(COWGUARD_MAX_PAGES + 1) * self->ps, 0),
		     E2BIG);
	/* Wraps around the end of the address space. */
	EXPECT_ERRNO(get_range(self->fd, (void *)(uintptr_t)top,
			       2 * self->ps, 0), EOVERFLOW);
	/* The top of the address space belongs to the kernel everywhere. */
	EXPECT_ERRNO(get_range(self->fd, (void *)(uintptr_t)(top - 4 * self->ps),
			       2 * self->ps, 0), EFAULT);
	expect_nothing_held(_metadata, self);
}

TEST_F(hooks, unmapped_page_in_range)
{
	char *hole = self->mem + 2 * self->ps;

	if (setup_skipped(_metadata))
		return;
	ASSERT_EQ(0, munmap(hole, self->ps));
	EXPECT_ERRNO(get_range(self->fd, self->mem, NR_PAGES * self->ps,
			       COWGUARD_WRITE), EFAULT);
	EXPECT_ERRNO(get_range(self->fd, hole, self->ps, 0), EFAULT);
	EXPECT_ERRNO(query(self->fd, hole, &(struct cowguard_query){}), EFAULT);
	/* The pages before the hole were taken and must have been dropped. */
	EXPECT_EQ(self->refs_before[0], refcount_at(self->fd, self->mem));
	EXPECT_EQ(self->refs_before[1],
		  refcount_at(self->fd, self->mem + self->ps));
	ASSERT_EQ(0, get_range(self->fd, self->mem, self->ps, 0));
	ASSERT_EQ(0, ioctl(self->fd, COWGUARD_IOC_PUT));
}

TEST_F(hooks, kernel_address_query)
{
	uint64_t top = (uint64_t)(uintptr_t)-1 & ~(uint64_t)(self->ps - 1);
	struct cowguard_query q = { .addr = top - 4 * self->ps };

	if (setup_skipped(_metadata))
		return;
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_QUERY, &q), EFAULT);
	expect_nothing_held(_metadata, self);
}

TEST_F(hooks, io_bounds)
{
	size_t size = NR_PAGES * self->ps;
	char buf[64];

	if (setup_skipped(_metadata))
		return;
	EXPECT_ERRNO(io(self->fd, COWGUARD_IOC_READ, 0, sizeof(buf), buf),
		     ENOENT);
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_PUT), ENOENT);
	ASSERT_EQ(0, get_range(self->fd, self->mem, size, 0));
	EXPECT_ERRNO(get_range(self->fd, self->mem, size, 0), EBUSY);
	EXPECT_ERRNO(io(self->fd, COWGUARD_IOC_READ, 0, 0, buf), EINVAL);
	EXPECT_ERRNO(io(self->fd, COWGUARD_IOC_READ, size, 1, buf), EINVAL);
	EXPECT_ERRNO(io(self->fd, COWGUARD_IOC_READ, size - 8, sizeof(buf),
			buf), EINVAL);
	EXPECT_ERRNO(io(self->fd, COWGUARD_IOC_READ, (uint64_t)-8, 16, buf),
		     EINVAL);
	/* R/O references: writing through them would bypass COW. */
	EXPECT_ERRNO(io(self->fd, COWGUARD_IOC_WRITE, 0, sizeof(buf), buf),
		     EPERM);
	EXPECT_EQ(0x10, self->mem[0]);
	ASSERT_EQ(0, ioctl(self->fd, COWGUARD_IOC_PUT));
	expect_nothing_held(_metadata, self);
}

static int remote(int fd, void *addr, const void *buf, uint32_t len,
		  uint32_t hold_ms, struct cowguard_remote *out)
{
	struct cowguard_remote r = {
		.addr = (uintptr_t)addr, .buf = (uintptr_t)buf,
		.len = len, .hold_ms = hold_ms,
	};
	int ret = ioctl(fd, COWGUARD_IOC_REMOTE_WRITE, &r);

	if (out)
		*out = r;
	return ret;
}

/* The /proc/pid/mem-like writer: bad input is refused and writes nothing. */
TEST_F(hooks, remote_write_input)
{
	uint64_t stamp = 0x5eed5eed5eed5eedULL, word;
	struct cowguard_remote r;
	__u32 ms;

	if (setup_skipped(_metadata))
		return;
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_REMOTE_RELEASE), ENOENT);
	ms = 0;
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_REMOTE_WAIT, &ms), ETIMEDOUT);
	ms = COWGUARD_MAX_HOLD_MS + 1;
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_REMOTE_WAIT, &ms), EINVAL);
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_REMOTE_WAIT, NULL), EFAULT);
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_REMOTE_WRITE, NULL), EFAULT);

	EXPECT_ERRNO(remote(self->fd, self->mem, &stamp, 0, 0, NULL), EINVAL);
	/* Not across a page boundary. */
	EXPECT_ERRNO(remote(self->fd, self->mem + self->ps - 4, &stamp,
			    sizeof(stamp), 0, NULL), EINVAL);
	EXPECT_ERRNO(remote(self->fd, self->mem, &stamp, sizeof(stamp),
			    COWGUARD_MAX_HOLD_MS + 1, NULL), EINVAL);
	EXPECT_ERRNO(remote(self->fd, self->mem, NULL, sizeof(stamp), 0, NULL),
		     EFAULT);
	EXPECT_ERRNO(remote(self->fd, NULL, &stamp, sizeof(stamp), 0, NULL),
		     EFAULT);
	EXPECT_ERRNO(remote(self->fd, (void *)-4096L, &stamp, sizeof(stamp), 0,
			    NULL), EFAULT);
	memset(&r, 0, sizeof(r));
	r.addr = (uintptr_t)self->mem;
	r.buf = (uintptr_t)&stamp;
	r.len = sizeof(stamp);
	r.reserved = 1;
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_REMOTE_WRITE, &r), EINVAL);
	r.reserved = 0;
	r.flags = COWGUARD_REMOTE_RELEASED;
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_REMOTE_WRITE, &r), EINVAL);
	memcpy(&word, self->mem, sizeof(word));
	EXPECT_NE(stamp, word) TH_LOG("a refused remote write wrote");

	/* No hold: it copies at once and was not released. */
	ASSERT_EQ(0, remote(self->fd, self->mem, &stamp, sizeof(stamp), 0, &r));
	EXPECT_EQ(0U, r.flags);
	EXPECT_NE(0ULL, r.write_ns);
	memcpy(&word, self->mem, sizeof(word));
	EXPECT_EQ(stamp, word);
	EXPECT_ERRNO(ioctl(self->fd, COWGUARD_IOC_REMOTE_RELEASE), ENOENT);
	expect_nothing_held(_metadata, self);
}

TEST_F(hooks, write_read_through_refs)
{
	size_t size = NR_PAGES * self->ps, i;
	char *buf = malloc(size);
	struct cowguard_query q;

	if (setup_skipped(_metadata))
		return;
	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, get_range(self->fd, self->mem, size, COWGUARD_WRITE));
	for (i = 0; i < NR_PAGES; i++) {
		ASSERT_EQ(0, query(self->fd, self->mem + i * self->ps, &q));
		EXPECT_EQ((__u32)COWGUARD_PRESENT, q.state);
		EXPECT_EQ(COWGUARD_Q_HELD | COWGUARD_Q_ANON |
			  COWGUARD_Q_ANON_EXCLUSIVE,
			  q.flags & (COWGUARD_Q_HELD | COWGUARD_Q_ANON |
				     COWGUARD_Q_ANON_EXCLUSIVE));
		EXPECT_EQ(self->refs_before[i] + 1, q.refcount);
		EXPECT_EQ(1, q.mapcount);
	}
	/* Reads see what the process wrote ... */
	ASSERT_EQ(0, io(self->fd, COWGUARD_IOC_READ, 0, size, buf));
	EXPECT_EQ(0, memcmp(buf, self->mem, size));
	/* ... and the process sees writes through the references, also
	 * ones that straddle a page boundary.
	 */
	memset(buf, 0x5a, size);
	ASSERT_EQ(0, io(self->fd, COWGUARD_IOC_WRITE, self->ps - 100,
			self->ps + 200, buf));
	for (i = 0; i < size; i++) {
		bool written = i >= self->ps - 100 && i < 2 * self->ps + 100;
		char want = written ? 0x5a : 0x10 + i / self->ps;

		if (self->mem[i] != want) {
			EXPECT_EQ(want, self->mem[i])
				TH_LOG("byte %zu", i);
			break;
		}
	}
	free(buf);
	ASSERT_EQ(0, ioctl(self->fd, COWGUARD_IOC_PUT));
	expect_nothing_held(_metadata, self);
}

TEST_F(hooks, refs_dropped_on_close)
{
	int fd2 = open(COWGUARD_HOOKS_PATH, O_RDWR);

	if (setup_skipped(_metadata))
		return;
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(0, get_range(fd2, self->mem, NR_PAGES * self->ps,
			       COWGUARD_WRITE));
	EXPECT_EQ(self->refs_before[0] + 1, refcount_at(self->fd, self->mem));
	ASSERT_EQ(0, close(fd2));
	expect_nothing_held(_metadata, self);
}

TEST_F(hooks, refs_dropped_on_exit)
{
	size_t size = NR_PAGES * self->ps;
	int ready[2], status, before;
	char *shared;
	pid_t pid;

	if (setup_skipped(_metadata))
		return;
	/* Shared memory: the child's references are visible from here. */
	shared = mmap(NULL, size, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, shared);
	memset(shared, 1, size);
	before = refcount_at(self->fd, shared);
	ASSERT_GT(before, 0);
	ASSERT_EQ(0, pipe(ready));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int fd = open(COWGUARD_HOOKS_PATH, O_RDWR);
		char ok = fd >= 0 && !get_range(fd, shared, size, COWGUARD_WRITE);

		if (write(ready[1], &ok, 1) != 1)
			_exit(1);
		pause();	/* killed while holding the references */
		_exit(0);
	}
	close(ready[1]);
	{
		char ok = 0;

		ASSERT_EQ(1, read(ready[0], &ok, 1));
		ASSERT_EQ(1, ok);
	}
	close(ready[0]);
	/* The child's mapping and its reference on top of ours. */
	EXPECT_EQ(before + 2, refcount_at(self->fd, shared));
	kill(pid, SIGKILL);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(before, refcount_at(self->fd, shared));
	munmap(shared, size);
}

static int drop_all_capabilities(void)
{
	struct __user_cap_header_struct hdr = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2] = {};

	return syscall(SYS_capset, &hdr, data);
}

TEST_F(hooks, needs_cap_sys_admin)
{
	int status;
	pid_t pid = fork();

	if (setup_skipped(_metadata))
		return;
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct cowguard_query q = { .addr = (uintptr_t)self->mem };
		int fd;

		if (drop_all_capabilities())
			_exit(10);
		/* An fd opened with the capability does not keep it. */
		if (ioctl(self->fd, COWGUARD_IOC_QUERY, &q) != -1 ||
		    errno != EPERM)
			_exit(11);
		fd = open(COWGUARD_HOOKS_PATH, O_RDWR);
		if (fd >= 0 || (errno != EPERM && errno != EACCES))
			_exit(12);
		fd = open(COWGUARD_COUNTERS_PATH, O_RDONLY);
		if (fd >= 0 || (errno != EPERM && errno != EACCES &&
				errno != ENOENT))
			_exit(13);
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status))
		TH_LOG("step %d failed without CAP_SYS_ADMIN",
		       WEXITSTATUS(status));
}

/* The per-counter files in the module's debugfs directory. */
static int counter_files(void)
{
	static const char * const others[] = {
		".", "..", "counters", "reset", "hooks",
	};
	struct dirent *de;
	int n = 0;
	size_t i;
	DIR *dir = opendir("/sys/kernel/debug/cowguard");

	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		for (i = 0; i < sizeof(others) / sizeof(others[0]); i++)
			if (!strcmp(de->d_name, others[i]))
				break;
		if (i == sizeof(others) / sizeof(others[0]))
			n++;
	}
	closedir(dir);
	return n;
}

TEST_F(hooks, counters_reset_input)
{
	static const char * const bad[] = {
		"0", "2", "-1", "garbage", "1 1", "0x1", "111111111111",
	};
	char line[128];
	int fd, lines = 0;
	FILE *f;
	size_t i;

	if (setup_skipped(_metadata))
		return;
	fd = open(COWGUARD_RESET_PATH, O_WRONLY);
	if (fd < 0)
		SKIP(return, "%s: %s (kernel without CONFIG_DEBUG_VM_ANON_EVENTS)",
		     COWGUARD_RESET_PATH, strerror(errno));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		EXPECT_EQ(-1, write(fd, bad[i], strlen(bad[i])))
			TH_LOG("reset accepted '%s'", bad[i]);
		EXPECT_NE(0, errno);
	}
	EXPECT_EQ(2, write(fd, "1\n", 2));
	close(fd);

	/* "name value" per line, a known name first, and wrong_cow present. */
	f = fopen(COWGUARD_COUNTERS_PATH, "r");
	ASSERT_NE(NULL, f);
	while (fgets(line, sizeof(line), f)) {
		char name[64];
		unsigned long val;

		ASSERT_EQ(2, sscanf(line, "%63s %lu", name, &val))
			TH_LOG("bad line '%s'", line);
		if (lines == 0)
			EXPECT_STREQ("swapin_exclusive_marker", name);
		if (!strcmp(name, "wrong_cow"))
			EXPECT_EQ(0UL, val)
				TH_LOG("wrong_cow %lu right after a reset in a quiet guest",
				       val);
		lines++;
	}
	fclose(f);
	/* One line per counter file: the directory less counters, reset, hooks. */
	EXPECT_EQ(counter_files(), lines);
}

/* Before the harness forks the first test: see pin_to_one_cpu(). */
static void __attribute__((constructor)) run_on_one_cpu(void)
{
	pin_to_one_cpu();
}

TEST_HARNESS_MAIN
