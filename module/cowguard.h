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

#define COWGUARD_IOC_MAGIC	0xcf
#define COWGUARD_IOC_GET	_IOW(COWGUARD_IOC_MAGIC, 1, struct cowguard_range)
#define COWGUARD_IOC_PUT	_IO(COWGUARD_IOC_MAGIC, 2)
#define COWGUARD_IOC_WRITE	_IOW(COWGUARD_IOC_MAGIC, 3, struct cowguard_io)
#define COWGUARD_IOC_READ	_IOW(COWGUARD_IOC_MAGIC, 4, struct cowguard_io)
#define COWGUARD_IOC_QUERY	_IOWR(COWGUARD_IOC_MAGIC, 5, struct cowguard_query)

#endif /* _UAPI_COWGUARD_H */
