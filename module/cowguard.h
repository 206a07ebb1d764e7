/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * cowguard test hooks: the interface between cowguard.ko and the cowguard
 * selftests, shared verbatim by both. One debugfs file,
 * /sys/kernel/debug/cowguard/hooks, takes these ioctls; every structure
 * has the same layout on 32-bit and 64-bit userspace.
 */
#ifndef _UAPI_COWGUARD_H
#define _UAPI_COWGUARD_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define COWGUARD_HOOKS_PATH	"/sys/kernel/debug/cowguard/hooks"
#define COWGUARD_COUNTERS_PATH	"/sys/kernel/debug/cowguard/counters"
#define COWGUARD_RESET_PATH	"/sys/kernel/debug/cowguard/reset"

/* Most pages one open file may hold references on at a time. */
#define COWGUARD_MAX_PAGES	1024

/* cowguard_range.flags */
#define COWGUARD_WRITE		(1U << 0)	/* R/W references (FOLL_WRITE) */

/*
 * COWGUARD_IOC_GET: take FOLL_GET references on every page of a user range,
 * as O_DIRECT does in 6.1, and hold them until COWGUARD_IOC_PUT, close() or
 * exit. addr and size are page aligned; at most COWGUARD_MAX_PAGES pages;
 * one range per open file.
 */
struct cowguard_range {
	__u64 addr;
	__u64 size;
	__u32 flags;
	__u32 reserved;		/* must be zero */
};

/*
 * COWGUARD_IOC_WRITE: copy len bytes from the user buffer buf into the held
 * pages at byte offset offset of the held range, through the references
 * (the process's page tables are not used), and dirty the pages, as an
 * O_DIRECT read completing does. Needs COWGUARD_WRITE references.
 * COWGUARD_IOC_READ: copy from the held pages into buf.
 */
struct cowguard_io {
	__u64 offset;
	__u64 len;
	__u64 buf;
};

/* cowguard_query.state: what the page table holds at addr. */
enum cowguard_state {
	COWGUARD_NONE = 0,	/* nothing mapped yet */
	COWGUARD_PRESENT,	/* a present PTE or PMD */
	COWGUARD_SWAP,		/* a swap entry */
	COWGUARD_NONSWAP,	/* migration, device or other non-swap entry */
};

/* cowguard_query.flags */
#define COWGUARD_Q_PMD		(1U << 0)	/* mapped by a PMD */
#define COWGUARD_Q_WRITE	(1U << 1)	/* present and writable */
#define COWGUARD_Q_SWP_EXCLUSIVE (1U << 2)	/* swap PTE's exclusive marker */
#define COWGUARD_Q_ANON		(1U << 3)	/* PageAnon */
#define COWGUARD_Q_ANON_EXCLUSIVE (1U << 4)	/* PageAnonExclusive */
#define COWGUARD_Q_SWAPCACHE	(1U << 5)	/* PageSwapCache */
#define COWGUARD_Q_HELD		(1U << 6)	/* the page this file holds for addr */

/*
 * COWGUARD_IOC_QUERY: report the caller's page table entry for addr and,
 * when it is present, its page. refcount and mapcount are those of the
 * page (folio refcount, this page's mapcount); both are 0 when not present.
 */
struct cowguard_query {
	__u64 addr;		/* in */
	__u32 state;		/* out: enum cowguard_state */
	__u32 flags;		/* out: COWGUARD_Q_* */
	__s32 refcount;		/* out */
	__s32 mapcount;		/* out */
};

/*
 * COWGUARD_IOC_REMOTE_WRITE: write len bytes from buf into the caller's own
 * memory at addr the way access_remote_vm() (/proc/pid/mem, ptrace) does:
 * under mmap_read_lock, get_user_pages_remote(FOLL_WRITE | FOLL_FORCE) of
 * the page, then a copy through a kernel mapping, which never faults, and
 * set_page_dirty_lock(). Between the GUP and the copy it keeps the page
 * reference and mmap_lock for hold_ms milliseconds, or until another thread
 * calls COWGUARD_IOC_REMOTE_RELEASE on the same open file, whichever comes
 * first. COWGUARD_IOC_REMOTE_WAIT returns once that hold has begun, or
 * -ETIMEDOUT after the __u32 milliseconds it is given. One remote write per
 * open file at a time (-EBUSY); at most COWGUARD_MAX_HOLD_MS for both.
 */
struct cowguard_remote {
	__u64 addr;		/* in: [addr, addr + len) within one page */
	__u64 buf;		/* in */
	__u32 len;		/* in */
	__u32 hold_ms;		/* in */
	__u32 flags;		/* out: COWGUARD_REMOTE_* */
	__u32 reserved;		/* in: must be zero */
	__u64 write_ns;		/* out: CLOCK_MONOTONIC after the copy */
};

/* cowguard_remote.flags: the hold ended by COWGUARD_IOC_REMOTE_RELEASE */
#define COWGUARD_REMOTE_RELEASED (1U << 0)
#define COWGUARD_MAX_HOLD_MS	10000

#define COWGUARD_IOC_MAGIC	0xcf
#define COWGUARD_IOC_GET	_IOW(COWGUARD_IOC_MAGIC, 1, struct cowguard_range)
#define COWGUARD_IOC_PUT	_IO(COWGUARD_IOC_MAGIC, 2)
#define COWGUARD_IOC_WRITE	_IOW(COWGUARD_IOC_MAGIC, 3, struct cowguard_io)
#define COWGUARD_IOC_READ	_IOW(COWGUARD_IOC_MAGIC, 4, struct cowguard_io)
#define COWGUARD_IOC_QUERY	_IOWR(COWGUARD_IOC_MAGIC, 5, struct cowguard_query)
#define COWGUARD_IOC_REMOTE_WRITE _IOWR(COWGUARD_IOC_MAGIC, 6, struct cowguard_remote)
#define COWGUARD_IOC_REMOTE_WAIT _IOW(COWGUARD_IOC_MAGIC, 7, __u32)
#define COWGUARD_IOC_REMOTE_RELEASE _IO(COWGUARD_IOC_MAGIC, 8)

#endif /* _UAPI_COWGUARD_H */
