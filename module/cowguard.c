// SPDX-License-Identifier: GPL-2.0
/*
 * cowguard.ko: what the anonymous-exclusive and deferred-TLB-flush
 * machinery does on a running system, and the hooks the cowguard selftests
 * need to drive it deterministically.
 *
 * /sys/kernel/debug/cowguard/
 *   <counter>   one file per event, counted since load or the last reset
 *   counters    every counter, "name value" per line, in a stable order
 *   reset       write 1 to start counting from zero
 *   hooks       ioctls of module/cowguard.h: hold FOLL_GET references on
 *               user pages as O_DIRECT does, access the pages through them,
 *               inspect the caller's page table entry for an address,
 *               write to the caller's memory as /proc/pid/mem does, with
 *               the GUP and the copy as far apart as the caller asks
 *
 * The counters are the kernel's CONFIG_DEBUG_VM_ANON_EVENTS vm events; on
 * a kernel without them only the hooks exist. Everything is root only.
 */
#include <linux/capability.h>
#include <linux/debugfs.h>
#include <linux/highmem.h>
#include <linux/huge_mm.h>
#include <linux/hugetlb.h>
#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pgtable.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/swap.h>
#include <linux/swapops.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/vmstat.h>
#include <linux/wait.h>

#include "cowguard.h"

static struct dentry *cowguard_dir;

/* --- the kernels of every base ------------------------------------------ */

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 5, 0)
#ifdef CONFIG_HIGHPTE
#error "cowguard: page tables in highmem need __pte_offset_map_lock(), which 6.5+ does not export"
#endif
/*
 * pte_offset_map_lock() for a module: since 6.5 the page table may go
 * away under mmap_read_lock (khugepaged frees it after an RCU grace
 * period), so map it under rcu_read_lock(), which pte_unmap() ends, and
 * recheck the PMD under the PTE lock, as __pte_offset_map_lock() does.
 * NULL when there is no page table (any more).
 */
static pte_t *cowguard_pte_offset_map_lock(struct mm_struct *mm, pmd_t *pmd,
					   unsigned long addr,
					   spinlock_t **ptlp)
{
	pmd_t pmdval;
	pte_t *pte;

	rcu_read_lock();
again:
	pmdval = pmdp_get_lockless(pmd);
	if (!pmd_present(pmdval) || pmd_leaf(pmdval) || pmd_bad(pmdval)) {
		rcu_read_unlock();
		return NULL;
	}
	pte = pte_offset_kernel(&pmdval, addr);
	*ptlp = pte_lockptr(mm, &pmdval);
	spin_lock(*ptlp);
	if (unlikely(!pmd_same(pmdval, pmdp_get_lockless(pmd)))) {
		spin_unlock(*ptlp);
		goto again;
	}
	return pte;
}
#else
#define cowguard_pte_offset_map_lock pte_offset_map_lock
#endif

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 12, 0)
/* page_mapcount() before 6.12 removed it: the mappings of this page. */
static int cowguard_page_mapcount(struct page *page)
{
	struct folio *folio = page_folio(page);

	if (!folio_test_large(folio))
		return folio_mapcount(folio);
	return atomic_read(&page->_mapcount) + 1 + folio_entire_mapcount(folio);
}

#define cowguard_gup_remote(mm, addr, flags, page) \
	get_user_pages_remote(mm, addr, 1, flags, page, NULL)

/* 6.12 dropped no_llseek(): a file without ->llseek cannot seek. */
#define cowguard_no_llseek NULL
#else
#define cowguard_page_mapcount page_mapcount
#define cowguard_gup_remote(mm, addr, flags, page) \
	get_user_pages_remote(mm, addr, 1, flags, page, NULL, NULL)
#define cowguard_no_llseek no_llseek
#endif

/* --- counters ---------------------------------------------------------- */

#ifdef CONFIG_DEBUG_VM_ANON_EVENTS

static const struct {
	const char *name;
	enum vm_event_item item;
} cowguard_counters[] = {
	{ "swapin_exclusive_marker",	SWAPIN_EXCLUSIVE_MARKER },
	{ "swapin_exclusive_sole",	SWAPIN_EXCLUSIVE_SOLE },
	{ "swapin_shared",		SWAPIN_SHARED },
	{ "unuse_exclusive",		UNUSE_EXCLUSIVE },
	{ "unuse_shared",		UNUSE_SHARED },
	{ "fork_swp_exclusive_clear",	FORK_SWP_EXCLUSIVE_CLEAR },
	{ "anon_wp_reuse",		ANON_WP_REUSE },
	{ "anon_wp_copy",		ANON_WP_COPY },
	{ "wrong_cow",			WRONG_COW },
	{ "tlb_flush_pending_fault",	TLB_FLUSH_PENDING_FAULT },
	{ "clear_refs_soft_dirty_walk",	CLEAR_REFS_SOFT_DIRTY_WALK },
	{ "clear_refs_pte_wrprotect",	CLEAR_REFS_PTE_WRPROTECT },
	{ "clear_refs_pmd_wrprotect",	CLEAR_REFS_PMD_WRPROTECT },
	{ "clear_refs_swp_wrprotect",	CLEAR_REFS_SWP_WRPROTECT },
	{ "clear_refs_keep_referenced", CLEAR_REFS_KEEP_REFERENCED },
	{ "clear_refs_wlock_usec",	CLEAR_REFS_WLOCK_USEC },
	{ "clear_refs_rlock_usec",	CLEAR_REFS_RLOCK_USEC },
};

/* vm events are never reset: keep the values seen at the last reset. */
static DEFINE_MUTEX(cowguard_counters_lock);
static unsigned long cowguard_counters_base[ARRAY_SIZE(cowguard_counters)];

/* Current value of every counter relative to the last reset. */
static int cowguard_counters_read(unsigned long *val, bool reset)
{
	unsigned long *events;
	int i;

	events = kmalloc_array(NR_VM_EVENT_ITEMS, sizeof(*events), GFP_KERNEL);
	if (!events)
		return -ENOMEM;
	all_vm_events(events);
	mutex_lock(&cowguard_counters_lock);
	for (i = 0; i < ARRAY_SIZE(cowguard_counters); i++) {
		unsigned long now = events[cowguard_counters[i].item];

		if (val)
			val[i] = now - cowguard_counters_base[i];
		if (reset)
			cowguard_counters_base[i] = now;
	}
	mutex_unlock(&cowguard_counters_lock);
	kfree(events);
	return 0;
}

static int cowguard_counter_show(struct seq_file *m, void *unused)
{
	unsigned long val[ARRAY_SIZE(cowguard_counters)];
	uintptr_t idx = (uintptr_t)m->private;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = cowguard_counters_read(val, false);
	if (!ret)
		seq_printf(m, "%lu\n", val[idx]);
	return ret;
}

static int cowguard_summary_show(struct seq_file *m, void *unused)
{
	unsigned long val[ARRAY_SIZE(cowguard_counters)];
	int i, ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	ret = cowguard_counters_read(val, false);
	for (i = 0; !ret && i < ARRAY_SIZE(cowguard_counters); i++)
		seq_printf(m, "%s %lu\n", cowguard_counters[i].name, val[i]);
	return ret;
}

static int cowguard_counter_open(struct inode *inode, struct file *file)
{
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return single_open(file, cowguard_counter_show, inode->i_private);
}

static int cowguard_summary_open(struct inode *inode, struct file *file)
{
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return single_open(file, cowguard_summary_show, NULL);
}

static const struct file_operations cowguard_counter_fops = {
	.owner		= THIS_MODULE,
	.open		= cowguard_counter_open,
	.read		= seq_read,
	.llseek		= seq_lseek,
	.release	= single_release,
};

static const struct file_operations cowguard_summary_fops = {
	.owner		= THIS_MODULE,
	.open		= cowguard_summary_open,
	.read		= seq_read,
	.llseek		= seq_lseek,
	.release	= single_release,
};

/* Only "1" (with an optional newline) resets; anything else is refused. */
static ssize_t cowguard_reset_write(struct file *file, const char __user *buf,
				    size_t count, loff_t *ppos)
{
	unsigned int val;
	int ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (count == 0 || count > 8)
		return -EINVAL;
	ret = kstrtouint_from_user(buf, count, 10, &val);
	if (ret)
		return ret;
	if (val != 1)
		return -EINVAL;
	ret = cowguard_counters_read(NULL, true);
	return ret ? ret : count;
}

static int cowguard_reset_open(struct inode *inode, struct file *file)
{
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return nonseekable_open(inode, file);
}

static const struct file_operations cowguard_reset_fops = {
	.owner		= THIS_MODULE,
	.open		= cowguard_reset_open,
	.write		= cowguard_reset_write,
	.llseek		= cowguard_no_llseek,
};

static int cowguard_counters_init(void)
{
	uintptr_t i;
	int ret;

	/* Count from load: the first reading is not the boot history. */
	ret = cowguard_counters_read(NULL, true);
	if (ret)
		return ret;
	for (i = 0; i < ARRAY_SIZE(cowguard_counters); i++)
		debugfs_create_file(cowguard_counters[i].name, 0400,
				    cowguard_dir, (void *)i,
				    &cowguard_counter_fops);
	debugfs_create_file("counters", 0400, cowguard_dir, NULL,
			    &cowguard_summary_fops);
	debugfs_create_file("reset", 0200, cowguard_dir, NULL,
			    &cowguard_reset_fops);
	return 0;
}

#else /* !CONFIG_DEBUG_VM_ANON_EVENTS */

static int cowguard_counters_init(void)
{
	pr_info("cowguard: kernel without CONFIG_DEBUG_VM_ANON_EVENTS, no counters\n");
	return 0;
}

#endif /* CONFIG_DEBUG_VM_ANON_EVENTS */

/* --- hooks ------------------------------------------------------------- */

/* cowguard_refs.remote_state: where this file's remote write is. */
enum {
	COWGUARD_REMOTE_IDLE,
	COWGUARD_REMOTE_GUP,		/* taking mmap_lock and the page */
	COWGUARD_REMOTE_HOLDING,	/* both held, the copy not done */
	COWGUARD_REMOTE_RELEASING,	/* told to copy now */
};

/* One open file of hooks: at most one range of held references. */
struct cowguard_refs {
	struct mutex lock;	/* ranks above mmap_lock */
	struct page **pages;
	unsigned long nr_pages;
	unsigned long addr;
	bool write;
	/*
	 * COWGUARD_IOC_REMOTE_*: not under lock, which a holding remote
	 * write would keep from the thread that is to release it.
	 */
	atomic_t remote_state;
	wait_queue_head_t remote_wq;
};

/* [addr, addr + len) does not wrap and is expressible as user pointers. */
static bool cowguard_range_fits(u64 addr, u64 len)
{
	return addr + len >= addr &&
	       (unsigned long)(addr + len) == addr + len;
}

static void cowguard_put_pages(struct cowguard_refs *refs)
{
	unsigned long i;

	for (i = 0; i < refs->nr_pages; i++)
		put_page(refs->pages[i]);
	kvfree(refs->pages);
	refs->pages = NULL;
	refs->nr_pages = 0;
}

static long cowguard_get(struct cowguard_refs *refs, void __user *arg)
{
	struct cowguard_range r;
	unsigned long nr_pages;
	struct page **pages;
	int got;

	if (copy_from_user(&r, arg, sizeof(r)))
		return -EFAULT;
	if ((r.flags & ~COWGUARD_WRITE) || r.reserved)
		return -EINVAL;
	if (!r.size || !PAGE_ALIGNED(r.addr) || !PAGE_ALIGNED(r.size))
		return -EINVAL;
	if (r.size > (u64)COWGUARD_MAX_PAGES << PAGE_SHIFT)
		return -E2BIG;
	if (!cowguard_range_fits(r.addr, r.size))
		return -EOVERFLOW;
	if (!access_ok((void __user *)(unsigned long)r.addr, r.size))
		return -EFAULT;
	if (refs->nr_pages)
		return -EBUSY;

	nr_pages = r.size >> PAGE_SHIFT;
	pages = kvmalloc_array(nr_pages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return -ENOMEM;
	got = get_user_pages_fast(r.addr, nr_pages,
				  (r.flags & COWGUARD_WRITE) ? FOLL_WRITE : 0,
				  pages);
	refs->pages = pages;
	refs->nr_pages = max(got, 0);
	if (got != (int)nr_pages) {
		/* All or nothing: an unmapped page anywhere fails the call. */
		cowguard_put_pages(refs);
		return got < 0 ? got : -EFAULT;
	}
	refs->addr = r.addr;
	refs->write = r.flags & COWGUARD_WRITE;
	return 0;
}

static long cowguard_io(struct cowguard_refs *refs, void __user *arg,
			bool write)
{
	struct cowguard_io io;
	u64 held, done = 0;
	void *bounce;
	long ret = 0;

	if (copy_from_user(&io, arg, sizeof(io)))
		return -EFAULT;
	if (!refs->nr_pages)
		return -ENOENT;
	if (write && !refs->write)
		return -EPERM;
	held = (u64)refs->nr_pages << PAGE_SHIFT;
	if (!io.len || io.offset >= held || io.len > held - io.offset)
		return -EINVAL;
	if (!io.buf || !cowguard_range_fits(io.buf, io.len))
		return -EFAULT;

	bounce = kmalloc(PAGE_SIZE, GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	while (done < io.len) {
		u64 pos = io.offset + done;
		struct page *page = refs->pages[pos >> PAGE_SHIFT];
		size_t off = offset_in_page(pos);
		size_t n = min_t(u64, PAGE_SIZE - off, io.len - done);
		void __user *ubuf = u64_to_user_ptr(io.buf + done);

		if (write) {
			if (copy_from_user(bounce, ubuf, n)) {
				ret = -EFAULT;
				break;
			}
			memcpy_to_page(page, off, bounce, n);
			/* What bio_set_pages_dirty() does for O_DIRECT reads. */
			set_page_dirty_lock(page);
		} else {
			memcpy_from_page(bounce, page, off, n);
			if (copy_to_user(ubuf, bounce, n)) {
				ret = -EFAULT;
				break;
			}
		}
		done += n;
	}
	kfree(bounce);
	return ret;
}

static void cowguard_query_page(struct cowguard_refs *refs,
				struct cowguard_query *q, struct page *page,
				unsigned long addr)
{
	struct folio *folio = page_folio(page);

	q->refcount = folio_ref_count(folio);
	q->mapcount = cowguard_page_mapcount(page);
	if (PageAnon(page)) {
		q->flags |= COWGUARD_Q_ANON;
		if (PageAnonExclusive(page))
			q->flags |= COWGUARD_Q_ANON_EXCLUSIVE;
	}
	if (folio_test_swapcache(folio))
		q->flags |= COWGUARD_Q_SWAPCACHE;
	if (refs->nr_pages && addr >= refs->addr &&
	    addr - refs->addr < refs->nr_pages << PAGE_SHIFT &&
	    refs->pages[(addr - refs->addr) >> PAGE_SHIFT] == page)
		q->flags |= COWGUARD_Q_HELD;
}

/* Fill q for the caller's mapping of addr; mmap_lock held for read. */
static int cowguard_walk(struct cowguard_refs *refs, struct cowguard_query *q,
			 unsigned long addr)
{
	struct mm_struct *mm = current->mm;
	struct vm_area_struct *vma;
	spinlock_t *ptl;
	pmd_t *pmd, pmdval;
	pte_t *pte, ptent;
	pgd_t *pgd;
	p4d_t *p4d;
	pud_t *pud;

	vma = vma_lookup(mm, addr);
	if (!vma)
		return -EFAULT;
	if (is_vm_hugetlb_page(vma))
		return -EOPNOTSUPP;

	pgd = pgd_offset(mm, addr);
	if (pgd_none(*pgd) || pgd_bad(*pgd))
		return 0;
	p4d = p4d_offset(pgd, addr);
	if (p4d_none(*p4d) || p4d_bad(*p4d))
		return 0;
	pud = pud_offset(p4d, addr);
	if (pud_none(*pud) || pud_bad(*pud))
		return 0;
	pmd = pmd_offset(pud, addr);

#ifdef CONFIG_TRANSPARENT_HUGEPAGE
	ptl = pmd_lock(mm, pmd);
	pmdval = *pmd;
	if (pmd_trans_huge(pmdval)) {
		q->state = COWGUARD_PRESENT;
		q->flags |= COWGUARD_Q_PMD;
		if (pmd_write(pmdval))
			q->flags |= COWGUARD_Q_WRITE;
		cowguard_query_page(refs, q, pmd_page(pmdval) +
				    ((addr & ~PMD_MASK) >> PAGE_SHIFT), addr);
		spin_unlock(ptl);
		return 0;
	}
	if (is_pmd_migration_entry(pmdval)) {
		q->state = COWGUARD_NONSWAP;
		q->flags |= COWGUARD_Q_PMD;
		spin_unlock(ptl);
		return 0;
	}
	spin_unlock(ptl);
#else
	pmdval = *pmd;
#endif
	/* Under mmap_lock a page table cannot turn into a huge PMD. */
	if (pmd_none(pmdval) || pmd_bad(pmdval))
		return 0;

	pte = cowguard_pte_offset_map_lock(mm, pmd, addr, &ptl);
	if (!pte)
		return 0;
	ptent = ptep_get(pte);
	if (pte_present(ptent)) {
		q->state = COWGUARD_PRESENT;
		if (pte_write(ptent))
			q->flags |= COWGUARD_Q_WRITE;
		if (pfn_valid(pte_pfn(ptent)))
			cowguard_query_page(refs, q, pte_page(ptent), addr);
	} else if (!pte_none(ptent)) {
		swp_entry_t entry = pte_to_swp_entry(ptent);

		if (non_swap_entry(entry)) {
			q->state = COWGUARD_NONSWAP;
		} else {
			q->state = COWGUARD_SWAP;
			if (pte_swp_exclusive(ptent))
				q->flags |= COWGUARD_Q_SWP_EXCLUSIVE;
		}
	}
	pte_unmap_unlock(pte, ptl);
	return 0;
}

static long cowguard_query(struct cowguard_refs *refs, void __user *arg)
{
	struct cowguard_query q;
	int ret;

	if (copy_from_user(&q, arg, sizeof(q)))
		return -EFAULT;
	if (!cowguard_range_fits(q.addr, 1) ||
	    !access_ok((void __user *)(unsigned long)q.addr, 1))
		return -EFAULT;
	q.state = COWGUARD_NONE;
	q.flags = 0;
	q.refcount = 0;
	q.mapcount = 0;

	if (mmap_read_lock_killable(current->mm))
		return -EINTR;
	ret = cowguard_walk(refs, &q, q.addr & PAGE_MASK);
	mmap_read_unlock(current->mm);
	if (!ret && copy_to_user(arg, &q, sizeof(q)))
		ret = -EFAULT;
	return ret;
}

/*
 * After its copy, the series' __access_remote_vm() takes the write fault
 * again where soft-dirty is tracked, so that a clear_refs walk under
 * mmap_read_lock that ran between the GUP and the copy does not hide the
 * write (mm/memory.c: remote_write_refault(); module/Kbuild defines
 * COWGUARD_REMOTE_REFAULT when the kernel has it). Do as the kernel does,
 * under the same condition as its vma_soft_dirty_enabled(), which
 * mm/internal.h keeps from modules.
 */
#ifdef COWGUARD_REMOTE_REFAULT
static void cowguard_remote_refault(struct mm_struct *mm, unsigned long addr)
{
	struct vm_area_struct *vma = vma_lookup(mm, addr);
	struct page *page;

	if (!IS_ENABLED(CONFIG_MEM_SOFT_DIRTY) || !vma ||
	    (vma->vm_flags & VM_SOFTDIRTY))
		return;
	if (cowguard_gup_remote(mm, addr, FOLL_WRITE | FOLL_FORCE, &page) == 1)
		put_page(page);
}
#else
static void cowguard_remote_refault(struct mm_struct *mm, unsigned long addr)
{
}
#endif

/*
 * What access_remote_vm() does for a write to one page, with the GUP and
 * the copy hold_ms apart: mmap_lock stays held for read from one to the
 * other, as it does there. Nothing the caller can pass leaves the page or
 * mmap_lock held when the ioctl returns.
 */
static long cowguard_remote_write(struct cowguard_refs *refs, void __user *arg)
{
	struct mm_struct *mm = current->mm;
	struct cowguard_remote r;
	struct page *page;
	void *bounce;
	long ret, got;

	if (copy_from_user(&r, arg, sizeof(r)))
		return -EFAULT;
	if (r.flags || r.reserved || r.hold_ms > COWGUARD_MAX_HOLD_MS)
		return -EINVAL;
	if (!r.len || r.len > PAGE_SIZE - offset_in_page(r.addr))
		return -EINVAL;
	if (!cowguard_range_fits(r.addr, r.len) ||
	    !access_ok((void __user *)(unsigned long)r.addr, r.len) ||
	    !r.buf || !cowguard_range_fits(r.buf, r.len))
		return -EFAULT;

	bounce = kmalloc(r.len, GFP_KERNEL);
	if (!bounce)
		return -ENOMEM;
	/* Copied first: no user access while mmap_lock is held. */
	if (copy_from_user(bounce, u64_to_user_ptr(r.buf), r.len)) {
		ret = -EFAULT;
		goto out_free;
	}
	if (atomic_cmpxchg(&refs->remote_state, COWGUARD_REMOTE_IDLE,
			   COWGUARD_REMOTE_GUP) != COWGUARD_REMOTE_IDLE) {
		ret = -EBUSY;
		goto out_free;
	}
	if (mmap_read_lock_killable(mm)) {
		ret = -EINTR;
		goto out_idle;
	}
	got = cowguard_gup_remote(mm, r.addr, FOLL_WRITE | FOLL_FORCE, &page);
	if (got != 1) {
		mmap_read_unlock(mm);
		ret = got < 0 ? got : -EFAULT;
		goto out_idle;
	}

	atomic_set(&refs->remote_state, COWGUARD_REMOTE_HOLDING);
	wake_up_all(&refs->remote_wq);
	ret = wait_event_killable_timeout(refs->remote_wq,
					  atomic_read(&refs->remote_state) ==
					  COWGUARD_REMOTE_RELEASING,
					  msecs_to_jiffies(r.hold_ms));
	if (ret >= 0) {
		r.flags = atomic_read(&refs->remote_state) ==
			  COWGUARD_REMOTE_RELEASING ? COWGUARD_REMOTE_RELEASED : 0;
		memcpy_to_page(page, offset_in_page(r.addr), bounce, r.len);
		r.write_ns = ktime_get_ns();
		set_page_dirty_lock(page);
		cowguard_remote_refault(mm, r.addr);
		ret = 0;
	} else {
		ret = -EINTR;
	}
	put_page(page);
	mmap_read_unlock(mm);
	/* A fatal signal: the copy was not done. */
	if (!ret && copy_to_user(arg, &r, sizeof(r)))
		ret = -EFAULT;
out_idle:
	atomic_set(&refs->remote_state, COWGUARD_REMOTE_IDLE);
	wake_up_all(&refs->remote_wq);
out_free:
	kfree(bounce);
	return ret;
}

/* Wait until this file's remote write holds its page. */
static long cowguard_remote_wait(struct cowguard_refs *refs, void __user *arg)
{
	u32 timeout_ms;
	long ret;

	if (get_user(timeout_ms, (u32 __user *)arg))
		return -EFAULT;
	if (timeout_ms > COWGUARD_MAX_HOLD_MS)
		return -EINVAL;
	ret = wait_event_killable_timeout(refs->remote_wq,
					  atomic_read(&refs->remote_state) ==
					  COWGUARD_REMOTE_HOLDING,
					  msecs_to_jiffies(timeout_ms));
	if (ret < 0)
		return -EINTR;
	return ret ? 0 : -ETIMEDOUT;
}

/* Let this file's holding remote write copy now. */
static long cowguard_remote_release(struct cowguard_refs *refs)
{
	if (atomic_cmpxchg(&refs->remote_state, COWGUARD_REMOTE_HOLDING,
			   COWGUARD_REMOTE_RELEASING) != COWGUARD_REMOTE_HOLDING)
		return -ENOENT;
	wake_up_all(&refs->remote_wq);
	return 0;
}

static long cowguard_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	struct cowguard_refs *refs = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	/* The hooks act on the caller's memory, never on a kernel thread. */
	if (!current->mm)
		return -EINVAL;

	switch (cmd) {
	case COWGUARD_IOC_REMOTE_WRITE:
		return cowguard_remote_write(refs, uarg);
	case COWGUARD_IOC_REMOTE_WAIT:
		return cowguard_remote_wait(refs, uarg);
	case COWGUARD_IOC_REMOTE_RELEASE:
		return cowguard_remote_release(refs);
	}

	mutex_lock(&refs->lock);
	switch (cmd) {
	case COWGUARD_IOC_GET:
		ret = cowguard_get(refs, uarg);
		break;
	case COWGUARD_IOC_PUT:
		ret = refs->nr_pages ? 0 : -ENOENT;
		cowguard_put_pages(refs);
		break;
	case COWGUARD_IOC_WRITE:
		ret = cowguard_io(refs, uarg, true);
		break;
	case COWGUARD_IOC_READ:
		ret = cowguard_io(refs, uarg, false);
		break;
	case COWGUARD_IOC_QUERY:
		ret = cowguard_query(refs, uarg);
		break;
	default:
		ret = -ENOTTY;
		break;
	}
	mutex_unlock(&refs->lock);
	return ret;
}

static int cowguard_hooks_open(struct inode *inode, struct file *file)
{
	struct cowguard_refs *refs;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	refs = kzalloc(sizeof(*refs), GFP_KERNEL);
	if (!refs)
		return -ENOMEM;
	mutex_init(&refs->lock);
	atomic_set(&refs->remote_state, COWGUARD_REMOTE_IDLE);
	init_waitqueue_head(&refs->remote_wq);
	file->private_data = refs;
	return nonseekable_open(inode, file);
}

/* Last close, including the one at exit: drop whatever is still held. */
static int cowguard_hooks_release(struct inode *inode, struct file *file)
{
	struct cowguard_refs *refs = file->private_data;

	cowguard_put_pages(refs);
	mutex_destroy(&refs->lock);
	kfree(refs);
	return 0;
}

static const struct file_operations cowguard_hooks_fops = {
	.owner		= THIS_MODULE,
	.open		= cowguard_hooks_open,
	.release	= cowguard_hooks_release,
	.unlocked_ioctl	= cowguard_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= cowguard_no_llseek,
};

static int __init cowguard_init(void)
{
	int ret;

	cowguard_dir = debugfs_create_dir("cowguard", NULL);
	if (IS_ERR(cowguard_dir))
		return PTR_ERR(cowguard_dir);
	debugfs_create_file("hooks", 0600, cowguard_dir, NULL,
			    &cowguard_hooks_fops);
	ret = cowguard_counters_init();
	if (ret) {
		debugfs_remove_recursive(cowguard_dir);
		return ret;
	}
#ifdef CONFIG_PAGE_TABLE_CHECK
	/*
	 * page_table_check prints nothing when it is switched on; the
	 * DEBUG=1 runs must show every bug finder on in the console.
	 */
	if (!static_branch_unlikely(&page_table_check_disabled))
		pr_info("cowguard: page_table_check is on\n");
#endif
	return 0;
}

static void __exit cowguard_exit(void)
{
	debugfs_remove_recursive(cowguard_dir);
}

module_init(cowguard_init);
module_exit(cowguard_exit);
MODULE_DESCRIPTION("cowguard: anon exclusivity counters and selftest hooks");
MODULE_LICENSE("GPL");
