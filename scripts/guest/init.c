// SPDX-License-Identifier: GPL-2.0
/*
 * cowguard guest init: the only process the test kernel starts.
 *
 * Static C rather than a shell so that every architecture boots the same
 * way from nothing but a cross compiler and its libc. It mounts what the
 * selftests need, turns on zram swap, loads cowguard.ko when the initramfs
 * has it, runs every selftest listed in /tests/list with its own timeout,
 * and prints the results as nested KTAP on the console. The host parses
 * that (scripts/parse-console) and relies on the end marker to know that
 * the guest did not die half way.
 *
 * Kernel command line:
 *   cowguard.shutdown=reboot|poweroff  how to make QEMU exit at the end
 *   cowguard.zram_mb=N                  zram swap size (default 128)
 *   cowguard.timeout_scale=N            multiply every test's timeout by N
 *                                       (debug kernels run slower)
 *   NAME=value (no dot)                 the kernel passes it to init as its
 *                                       environment, and init to every test
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>

#include "../../selftests/scratch_disk.h"

#define END_MARKER	"cowguard: end of tests"
#define MAX_TESTS	64
#define LINE_MAX_LEN	1024

#define MAX_ARGS	16

/*
 * One line of /tests/list: "<name> <timeout> [<program> [<arg>...]]".
 * Without a program, the binary is /tests/<name>. The timeout may add an
 * environment variable's seconds: "<timeout>+<VAR>" (parse_timeout()).
 * "<name> skip <reason>" is a test this guest must not run (the host's
 * scripts/expect skips): a SKIP with that reason.
 */
struct test {
	char name[64];
	int timeout_s;
	char args[192];			/* storage for argv's strings */
	char *argv[MAX_ARGS + 1];
	const char *skip;		/* the reason, in args */
};

static char cmdline[4096];

static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* Value of "key=" on the kernel command line, or NULL. */
static const char *cmdline_get(const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	while (p && *p) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, klen) && p[klen] == '=') {
			size_t n = strcspn(p + klen + 1, " \n");

			if (n >= len)
				n = len - 1;
			memcpy(buf, p + klen + 1, n);
			buf[n] = '\0';
			return buf;
		}
		p = strchr(p, ' ');
	}
	return NULL;
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n < 0 ? -errno : 0;
}

static void mount_fs(void)
{
	static const struct {
		const char *src, *dst, *type;
	} fs[] = {
		{ "proc", "/proc", "proc" },
		{ "sysfs", "/sys", "sysfs" },
		{ "devtmpfs", "/dev", "devtmpfs" },
		{ "debugfs", "/sys/kernel/debug", "debugfs" },
		{ "tmpfs", "/tmp", "tmpfs" },
	};
	unsigned int i;

	for (i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
		mkdir(fs[i].dst, 0755);
		if (mount(fs[i].src, fs[i].dst, fs[i].type, 0, NULL) &&
		    errno != EBUSY)
			say("# init: mount %s: %s\n", fs[i].dst, strerror(errno));
	}
}

/*
 * The scratch disk is whatever the block driver calls it (vda, ubda):
 * find it by its first sector and give it the one name the tests open.
 */
static void find_scratch_disk(void)
{
	char path[300], sector[512];
	struct dirent *d;
	DIR *dir;
	int fd, found = 0;

	dir = opendir("/sys/block");
	if (!dir)
		return;
	while (!found && (d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/dev/%s", d->d_name);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		found = pread(fd, sector, sizeof(sector), 0) == sizeof(sector) &&
			!memcmp(sector, SCRATCH_MAGIC, strlen(SCRATCH_MAGIC));
		close(fd);
	}
	closedir(dir);
	if (!found)
		return;
	if (symlink(path, SCRATCH_DISK))
		say("# init: %s -> %s: %s\n", SCRATCH_DISK, path,
		    strerror(errno));
	else
		say("# init: scratch disk %s on %s\n", SCRATCH_DISK, path);
}

/*
 * There is no mkswap in the initramfs: write the version 1 swap header
 * (see union swap_header in include/linux/swap.h) ourselves.
 */
static int write_swap_header(const char *dev, unsigned long bytes)
{
	long psize = sysconf(_SC_PAGESIZE);
	uint32_t info[3];
	char *page;
	int fd, ret = 0;

	page = calloc(1, psize);
	if (!page)
		return -ENOMEM;
	info[0] = 1;				/* version */
	info[1] = bytes / psize - 1;		/* last_page */
	info[2] = 0;				/* nr_badpages */
	memcpy(page + 1024, info, sizeof(info));
	memcpy(page + psize - 10, "SWAPSPACE2", 10);

	fd = open(dev, O_WRONLY);
	if (fd < 0 || pwrite(fd, page, psize, 0) != psize || fsync(fd))
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(page);
	return ret;
}

static void setup_swap(void)
{
	char buf[32], size[32];
	unsigned long mb = 128;
	int ret;

	if (cmdline_get("cowguard.zram_mb", buf, sizeof(buf)))
		mb = strtoul(buf, NULL, 0);
	snprintf(size, sizeof(size), "%lu", mb << 20);
	ret = write_file("/sys/block/zram0/disksize", size);
	if (!ret)
		ret = write_swap_header("/dev/zram0", mb << 20);
	if (!ret && syscall(SYS_swapon, "/dev/zram0", 0))
		ret = -errno;
	if (ret)
		say("# init: zram swap not available: %s\n", strerror(-ret));
	else
		say("# init: %lu MiB zram swap on /dev/zram0\n", mb);
}

/* 0 loaded, 1 not present, -errno on failure. */
static int load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return errno == ENOENT ? 1 : -errno;
	if (syscall(SYS_finit_module, fd, "", 0))
		ret = -errno;
	close(fd);
	return ret;
}

/*
 * A list line's timeout: "<seconds>" or "<seconds>+<VAR>", the latter
 * plus the seconds in the environment variable VAR (none: 0). The kernel
 * hands init every "NAME=value" command line parameter without a dot as
 * its environment: a run sizes a test's timeout from the bound it gives
 * the test (COWGUARD_SOAK_SECONDS, scripts/soak). Only <seconds> is
 * multiplied by cowguard.timeout_scale: VAR is a wall-clock duration the
 * test keeps to on any kernel. Returns 0, or -1 on a bad field.
 */
static int parse_timeout(const char *field, int scale, int *timeout_s)
{
	const char *var;
	char *end;
	long s = strtol(field, &end, 10), v = 0;

	if (end == field || s < 0)
		return -1;
	if (*end == '+') {
		var = getenv(end + 1);
		if (var)
			v = strtol(var, NULL, 10);
		if (v < 0)
			v = 0;
	} else if (*end) {
		return -1;
	}
	*timeout_s = s * scale + v;
	return 0;
}

static int read_tests(struct test *tests)
{
	FILE *f = fopen("/tests/list", "r");
	char line[256];
	int n = 0;

	if (!f)
		return 0;
	char buf[16], tmo[32];
	int scale = 1;

	if (cmdline_get("cowguard.timeout_scale", buf, sizeof(buf)))
		scale = atoi(buf) > 0 ? atoi(buf) : 1;
	while (n < MAX_TESTS && fgets(line, sizeof(line), f)) {
		struct test *t = &tests[n];
		int pos = 0, argc = 0;
		char *tok, *save;

		if (line[0] == '#' || line[0] == '\n')
			continue;
		if (sscanf(line, "%63s %31s %n", t->name, tmo, &pos) != 2 ||
		    pos == 0)
			continue;
		snprintf(t->args, sizeof(t->args), "%s", line + pos);
		t->skip = NULL;
		if (!strcmp(tmo, "skip")) {
			t->args[strcspn(t->args, "\n")] = '\0';
			t->skip = t->args;
			n++;
			continue;
		}
		if (parse_timeout(tmo, scale, &t->timeout_s))
			continue;
		for (tok = strtok_r(t->args, " \t\n", &save);
		     tok && argc < MAX_ARGS;
		     tok = strtok_r(NULL, " \t\n", &save))
			t->argv[argc++] = tok;
		if (argc == 0)
			t->argv[argc++] = t->name;
		t->argv[argc] = NULL;
		n++;
	}
	fclose(f);
	return n;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* What relay_line() knows of the selftest whose output it relays. */
struct relay {
	const char *test;	/* its name in /tests/list */
	char run_name[128];	/* the harness's case since its last "#  RUN" */
};

/*
 * One line of a selftest's output, indented one KTAP level, with every
 * result line naming its case in full: the console is where cases get
 * their names, and every reader (parse-console, a LAVA monitor, which
 * sees one line at a time) takes them from there.
 *
 * The kselftest harness names a case on its "#  RUN" line and on its
 * result line, except a skipped one's ("ok 3 # SKIP no THP"): that line
 * gets the RUN line's name. The cases of a program without the harness
 * are named after the selftest: "<test>: <description>", or
 * "<test>: case <number>" where the line has no description.
 */
static void relay_line(const char *line, struct relay *r)
{
	int num, desc = 0, end, neg = !strncmp(line, "not ok ", 7);
	const char *res = line + 4 * neg, *rest;

	if (!strncmp(line, "#  RUN ", 7)) {
		const char *name = line + 7 + strspn(line + 7, " ");

		snprintf(r->run_name, sizeof(r->run_name), "%.*s",
			 (int)strcspn(name, " "), name);
		say("    %s\n", line);
		return;
	}
	if (strncmp(res, "ok ", 3) || sscanf(res, "ok %d %n", &num, &desc) != 1 ||
	    !desc) {
		say("    %s\n", line);
		return;
	}
	/* The description ends where a "# <directive>" begins. */
	end = desc + strcspn(res + desc, "#");
	while (end > desc && res[end - 1] == ' ')
		end--;
	rest = res + end + strspn(res + end, " ");
	if (r->run_name[0] && end > desc)
		say("    %s\n", line);
	else if (r->run_name[0])
		say("    %.*sok %d %s%s%s\n", 4 * neg, line, num, r->run_name,
		    *rest ? " " : "", rest);
	else if (end > desc)
		say("    %.*sok %d %s: %s\n", 4 * neg, line, num, r->test,
		    res + desc);
	else
		say("    %.*sok %d %s: case %d%s%s\n", 4 * neg, line, num,
		    r->test, num, *rest ? " " : "", rest);
	r->run_name[0] = '\0';
}

/* Copy complete lines from fd to the console (relay_line()). */
static void relay(int fd, char *buf, size_t *len, int flush, struct relay *r)
{
	ssize_t n = read(fd, buf + *len, LINE_MAX_LEN - 1 - *len);
	char *start = buf, *nl;

	if (n > 0)
		*len += n;
	buf[*len] = '\0';
	while ((nl = strchr(start, '\n'))) {
		*nl = '\0';
		relay_line(start, r);
		start = nl + 1;
	}
	*len -= start - buf;
	memmove(buf, start, *len);
	if (*len && (flush || *len == LINE_MAX_LEN - 1)) {
		buf[*len] = '\0';
		relay_line(buf, r);
		*len = 0;
	}
}

/*
 * Run one selftest in its own process group with stdout and stderr on a
 * pipe; returns the KTAP directive for its result line.
 */
static const char *run_test(const struct test *t, int *ok, char *why,
			    size_t whylen)
{
	char path[128], buf[LINE_MAX_LEN], *argv[MAX_ARGS + 1];
	struct relay rel = { .test = t->name };
	double deadline = now() + t->timeout_s;
	size_t len = 0;
	int pfd[2], status = 0, timed_out = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "/tests/%s", t->argv[0]);
	*ok = 0;
	if (pipe(pfd)) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return "";
	}
	pid = fork();
	if (pid == 0) {
		setpgid(0, 0);
		dup2(pfd[1], 1);
		dup2(pfd[1], 2);
		close(pfd[0]);
		close(pfd[1]);
		chdir("/tmp");
		/*
		 * argv[0] is the path the program was run by, as a shell
		 * passes it: some programs open themselves through it
		 * (6.12's pagemap_ioctl maps its own file), and the
		 * working directory is /tmp, not /tests.
		 */
		memcpy(argv, t->argv, sizeof(argv));
		argv[0] = path;
		execv(path, argv);
		fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	if (pid < 0) {
		close(pfd[0]);
		snprintf(why, whylen, "fork: %s", strerror(errno));
		return "";
	}
	setpgid(pid, pid);
	/* Never block on a pipe that a stuck grandchild keeps open. */
	fcntl(pfd[0], F_SETFL, O_NONBLOCK);

	for (;;) {
		struct pollfd p = { .fd = pfd[0], .events = POLLIN };
		double left = deadline - now();
		int r;

		if (left <= 0) {
			timed_out = 1;
			break;
		}
		r = poll(&p, 1, (int)(left * 1000) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		if (p.revents & POLLIN) {
			relay(pfd[0], buf, &len, 0, &rel);
			continue;
		}
		break;	/* POLLHUP: every writer is gone */
	}
	if (timed_out)
		kill(-pid, SIGKILL);
	relay(pfd[0], buf, &len, 1, &rel);
	close(pfd[0]);
	/* Reap the leader; stray members of its group were killed above. */
	waitpid(pid, &status, 0);
	if (!timed_out)
		kill(-pid, SIGKILL);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;

	if (timed_out) {
		snprintf(why, whylen, "TIMEOUT after %ds", t->timeout_s);
		return " # ";
	}
	if (WIFSIGNALED(status)) {
		snprintf(why, whylen, "killed by signal %d",
			 WTERMSIG(status));
		return " # ";
	}
	switch (WEXITSTATUS(status)) {
	case 0:
		*ok = 1;
		return "";
	case 4:		/* KSFT_SKIP */
		*ok = 1;
		snprintf(why, whylen, "SKIP every case skipped");
		return " # ";
	default:
		snprintf(why, whylen, "exit status %d", WEXITSTATUS(status));
		return " # ";
	}
}

/* The module's event counters, for the host to print with the results. */
static void dump_counters(void)
{
	FILE *f = fopen("/sys/kernel/debug/cowguard/counters", "r");
	char line[128];

	if (!f)
		return;
	say("# cowguard counters (since the module was loaded or last reset):\n");
	while (fgets(line, sizeof(line), f))
		say("# counter %s", line);
	fclose(f);
}

static void finish(void)
{
	char how[16] = "poweroff";

	sync();
	say("%s\n", END_MARKER);
	cmdline_get("cowguard.shutdown", how, sizeof(how));
	if (!strcmp(how, "reboot"))
		reboot(RB_AUTOBOOT);
	reboot(RB_POWER_OFF);
	/* Nothing left to try: let the host's end-marker watch stop us. */
	for (;;)
		pause();
}

int main(void)
{
	static struct test tests[MAX_TESTS];
	int fd, i, ntests, nlines, mod;

	mount_fs();
	/* Console on fd 0-2 even if the kernel could not open it for us. */
	fd = open("/dev/console", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	fd = open("/proc/cmdline", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);

		cmdline[n > 0 ? n : 0] = '\0';
		close(fd);
	}

	say("cowguard: init started\n");
	find_scratch_disk();
	setup_swap();
	ntests = read_tests(tests);
	mod = load_module("/cowguard.ko");

	nlines = ntests + (mod != 1);
	say("KTAP version 1\n1..%d\n", nlines);
	i = 0;
	if (mod != 1) {
		if (mod == 0)
			say("ok %d load_cowguard_module\n", ++i);
		else
			say("not ok %d load_cowguard_module # %s\n", ++i,
			    strerror(-mod));
	}
	for (int t = 0; t < ntests; t++) {
		char why[64] = "";
		const char *sep;
		double start = now();
		int ok;

		if (tests[t].skip) {
			say("ok %d %s # SKIP %s\n", ++i, tests[t].name,
			    tests[t].skip);
			continue;
		}
		say("# selftest: %s (timeout %ds)\n", tests[t].name,
		    tests[t].timeout_s);
		sep = run_test(&tests[t], &ok, why, sizeof(why));
		say("# selftest: %s took %.1fs\n", tests[t].name,
		    now() - start);
		say("%s %d %s%s%s\n", ok ? "ok" : "not ok", ++i,
		    tests[t].name, sep, why);
	}
	dump_counters();
	finish();
	return 0;
}
