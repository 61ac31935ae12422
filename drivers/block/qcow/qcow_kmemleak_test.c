// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suite qcow_kmemleak: the leak check after all other qcow suites.
 *
 * Suites run in the order of the .kunit_test_suites section, which is link
 * order: this file is the last test object of the driver (see the
 * Makefile), so the suite runs after every other qcow suite of the same
 * kernel (tests/kunit/results.py checks that it did).
 *
 * KUnit in UML has no userspace, so the case drives kmemleak's debugfs file
 * itself, exactly as "echo scan > /sys/kernel/debug/kmemleak" would:
 *
 *  1. canaries: a separate kthread allocates one object of each of eight
 *     kmalloc sizes and exits, keeping the pointers only in a disguised
 *     form, so kmemleak must report them;
 *  2. mount debugfs inside the kernel (kern_mount) and open "kmemleak";
 *  3. give the test thread a user address space (mm_alloc + kthread_use_mm
 *     and one anonymous page), because kmemleak's write and read methods
 *     copy from and to user memory;
 *  4. wait until every object is older than kmemleak's minimum age for a
 *     report (5 s in 6.1), clear the cache of stacks of exited threads,
 *     wait for pending RCU frees (task_structs of exited threads), write
 *     "scan" twice (the first scan computes the checksum of new objects; an
 *     object is only reported once its checksum stayed the same for a whole
 *     scan), and read the report back; while no canary is in it, do all
 *     of step 4 again but the wait, up to three rounds in all (kmemleak is
 *     conservative: any word that points into an object is a reference,
 *     and a stale pointer to an object freed earlier at the same address
 *     hides a canary; the report is parsed without putting any address in
 *     the clear on the stack, which would be such a reference);
 *  5. fail if no canary is reported (kmemleak is not working: no teeth), or
 *     if any unreferenced object was allocated by qcow: its backtrace names
 *     qcow code (qcow_*, qcow2_*, the tests' qmt_* / qwt_* helpers) or it was
 *     allocated by a KUnit test thread ("kunit_try_catch": only qcow suites
 *     run in this kernel).  The records are printed into the KUnit log.
 *
 * The canaries are freed again at the end, so kmemleak's list stays clean.
 * Step 3 uses symbols the kernel does not export; a modular build (or one
 * without CONFIG_DEBUG_KMEMLEAK) skips the case.
 */
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/kernel.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/mman.h>
#include <linux/mm.h>
#include <linux/mount.h>
#include <linux/rcupdate.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#ifdef MODULE
#define QKL_BUILTIN false
#else
#define QKL_BUILTIN true
#endif

/* kmemleak's MSECS_MIN_AGE (mm/kmemleak.c) plus a margin. */
#define QKL_MIN_AGE_MS		5500
/* A report larger than this is cut (the count is still exact up to it). */
#define QKL_REPORT_MAX		(512 * 1024)
/* Records printed in full into the KUnit log. */
#define QKL_PRINT_MAX		8
/* The canary pointer is kept XORed with this, invisible to the scanner. */
#define QKL_DISGUISE		0xa5a5a5a5a5a5a5a5UL
/*
 * Canaries, one per kmalloc size: kmemleak counts any word that points
 * into an object as a reference, and a stale pointer to an object freed
 * earlier at the same address (slab slots are reused) hides a canary.
 * One reported canary shows that kmemleak reports leaks.
 */
static const unsigned int qkl_canary_sizes[] = { 32, 64, 96, 128, 192, 256, 512, 1024 };
#define QKL_CANARIES		ARRAY_SIZE(qkl_canary_sizes)
/* kmemleak reports a new object on its second scan (checksum first) */
#define QKL_SCANS		2
/*
 * Rounds of QKL_SCANS scans while no canary is reported: a stale copy of a
 * pointer (a task_struct waiting for its RCU grace period, a stack being
 * recycled) hides it until that memory goes.
 */
#define QKL_ROUNDS		3
/* Twice NR_CACHED_STACKS (2) per CPU, see qkl_flush_stack_cache() */
#define QKL_FLUSH_PER_CPU	4

struct qkl_canary {
	unsigned long disguised[QKL_CANARIES];
	struct completion done;
};

static int qkl_canary_thread(void *data)
{
	struct qkl_canary *c = data;
	unsigned int i;
	u8 *p;

	for (i = 0; i < QKL_CANARIES; i++) {
		p = kmalloc(qkl_canary_sizes[i], GFP_KERNEL);
		if (!p)
			continue;
		/* a fixed, non-zero content: its checksum is stable */
		memset(p, 0x5a, qkl_canary_sizes[i]);
		c->disguised[i] = (unsigned long)p ^ QKL_DISGUISE;
	}
	p = NULL;
	complete(&c->done);
	return 0;
}

/*
 * Allocate the canaries in a thread of its own: its stack is freed when it
 * exits, so no stale copy of a pointer is left where kmemleak looks.
 * Return: how many were allocated.
 */
static unsigned int qkl_make_canaries(struct kunit *test, unsigned long *disguised)
{
	struct qkl_canary c = { };
	struct task_struct *t;
	unsigned int i, n = 0;

	init_completion(&c.done);
	t = kthread_run(qkl_canary_thread, &c, "qcow_kmemleak_canary");
	if (IS_ERR(t)) {
		KUNIT_FAIL(test, "kthread_run: %ld", PTR_ERR(t));
		return 0;
	}
	wait_for_completion(&c.done);
	for (i = 0; i < QKL_CANARIES; i++) {
		disguised[i] = c.disguised[i];
		n += !!disguised[i];
	}
	return n;
}

static int qkl_idle_thread(void *data)
{
	set_current_state(TASK_INTERRUPTIBLE);
	while (!kthread_should_stop()) {
		schedule();
		set_current_state(TASK_INTERRUPTIBLE);
	}
	__set_current_state(TASK_RUNNING);
	return 0;
}

/*
 * With CONFIG_VMAP_STACK the stacks of exited threads wait in a per-cpu
 * cache (kernel/fork.c, NR_CACHED_STACKS) with their old contents, and
 * kmemleak scans them: a pointer left on the stack of the last test
 * threads (or of the canary thread) hides a leak.  A stack taken from the
 * cache is cleared, so start more threads at once than the cache holds,
 * then stop them: the cache is left with their clean stacks only.
 */
static void qkl_flush_stack_cache(struct kunit *test)
{
	int i, n, max = QKL_FLUSH_PER_CPU * num_possible_cpus();
	struct task_struct **t = kunit_kcalloc(test, max, sizeof(*t), GFP_KERNEL);

	if (!t) {
		KUNIT_FAIL(test, "no memory for %d threads", max);
		return;
	}
	for (n = 0; n < max; n++) {
		t[n] = kthread_run(qkl_idle_thread, NULL, "qcow_kmemleak/%d", n);
		if (IS_ERR(t[n])) {
			KUNIT_FAIL(test, "kthread_run: %ld", PTR_ERR(t[n]));
			break;
		}
	}
	for (i = 0; i < n; i++)
		kthread_stop(t[i]);
}

/*
 * The canary's address exists only in disguise until the scans are done:
 * a copy in a register spilled to this thread's stack would be a reference
 * (kmemleak scans the whole stack of a live thread).  noinline, and the
 * disguised value is read through a pointer that has escaped, so the
 * compiler cannot compute the address any earlier.
 */
static noinline unsigned long qkl_reveal(const unsigned long *disguised)
{
	return READ_ONCE(*disguised) ^ QKL_DISGUISE;
}

/* How kmemleak begins each record of its report. */
static const char qkl_head[] = "unreferenced object 0x";

/*
 * The canary a record names, or -1.  The record's address is read digit by
 * digit straight into its disguised form, so no address appears in the
 * clear on this thread's stack: it would be a reference to that object in
 * the next round's scans, and would hide a leak.
 */
static int qkl_canary_index(const char *rec, const unsigned long *disguised)
{
	unsigned long v;
	unsigned int n, j, shift;
	int d, i;

	if (strncmp(rec, qkl_head, strlen(qkl_head)))
		return -1;
	rec += strlen(qkl_head);
	n = strspn(rec, "0123456789abcdef");
	if (!n || n > 2 * sizeof(long))
		return -1;
	/* the bits above the printed digits are zero: disguised, the mask's */
	v = n < 2 * sizeof(long) ? QKL_DISGUISE & ~((1UL << (4 * n)) - 1) : 0;
	for (j = 0; j < n; j++) {
		d = hex_to_bin(rec[j]);
		shift = 4 * (n - 1 - j);
		v |= (((unsigned long)d ^ (QKL_DISGUISE >> shift)) & 0xf) << shift;
	}
	for (i = 0; i < QKL_CANARIES; i++)
		if (disguised[i] && v == READ_ONCE(disguised[i]))
			return i;
	return -1;
}

/* How many canaries the report names (the report is left as it is). */
static unsigned int qkl_canaries_seen(const char *report, const unsigned long *disguised)
{
	const char *rec;
	unsigned int n = 0;

	for (rec = strstr(report, qkl_head); rec; rec = strstr(rec + 1, qkl_head))
		n += qkl_canary_index(rec, disguised) >= 0;
	return n;
}

/* Write a command to the open kmemleak file through the user page. */
static int qkl_command(struct kunit *test, struct file *f, char __user *ubuf,
		       const char *cmd)
{
	size_t len = strlen(cmd);
	loff_t pos = 0;
	ssize_t n;

	if (copy_to_user(ubuf, cmd, len))
		return -EFAULT;
	n = vfs_write(f, ubuf, len, &pos);
	if (n != len) {
		KUNIT_FAIL(test, "write \"%s\" to kmemleak: %zd", cmd, n);
		return n < 0 ? n : -EIO;
	}
	return 0;
}

/* Read the whole report into buf (NUL-terminated); returns its length. */
static ssize_t qkl_read_report(struct kunit *test, struct file *f,
			       char __user *ubuf, char *buf, size_t size)
{
	size_t len = 0;
	loff_t pos = 0;

	while (len < size - 1) {
		size_t want = min_t(size_t, PAGE_SIZE, size - 1 - len);
		ssize_t n = vfs_read(f, ubuf, want, &pos);

		if (n < 0) {
			KUNIT_FAIL(test, "read kmemleak: %zd", n);
			return n;
		}
		if (n == 0)
			break;
		if (copy_from_user(buf + len, ubuf, n))
			return -EFAULT;
		len += n;
	}
	buf[len] = '\0';
	return len;
}

/* Is this record (one "unreferenced object" entry) an object of ours? */
static bool qkl_ours(const char *rec)
{
	static const char * const names[] = { "qcow", "qmt_", "qwt_" };
	const char *bt = strstr(rec, "\n  backtrace:");
	int i;

	if (strstr(rec, "\n  comm \"kunit_try_catch\""))
		return true;
	if (!bt)
		return false;
	for (i = 0; i < ARRAY_SIZE(names); i++)
		if (strstr(bt, names[i]))
			return true;
	return false;
}

static void qkl_print_record(struct kunit *test, char *rec)
{
	char *line;

	while ((line = strsep(&rec, "\n")))
		if (*line)
			kunit_err(test, "kmemleak: %s", line);
}

static bool qkl_check_report(struct kunit *test, char *report, size_t len,
			     const unsigned long *disguised, unsigned int made)
{
	char *rec, *next;
	int total = 0, ours = 0, printed = 0;
	unsigned int seen = 0;

	for (rec = strstr(report, qkl_head); rec; rec = next) {
		next = strstr(rec + 1, qkl_head);
		if (next)
			next[-1] = '\0';
		total++;
		if (qkl_canary_index(rec, disguised) >= 0) {
			seen++;
			continue;
		}
		if (!qkl_ours(rec)) {
			kunit_info(test, "kmemleak: not qcow's: %.*s",
				   (int)strcspn(rec, "\n"), rec);
			continue;
		}
		ours++;
		if (printed++ < QKL_PRINT_MAX) {
			qkl_print_record(test, rec);
		} else {
			/* the rest: headline and "comm ..., pid ..." only */
			char *nl = strchr(rec, '\n');

			kunit_err(test, "kmemleak: %.*s%.*s", (int)strcspn(rec, "\n"), rec,
				  nl ? (int)strcspn(nl + 1, "\n") : 0, nl ? nl + 1 : "");
		}
	}
	kunit_info(test, "kmemleak: report %zu bytes, %d unreferenced objects, %d from qcow, %u of %u canaries",
		   len, total, ours, seen, made);
	if (len >= QKL_REPORT_MAX - 1)
		kunit_info(test, "kmemleak: report cut at %d bytes", QKL_REPORT_MAX);
	KUNIT_EXPECT_GT_MSG(test, seen, 0U,
			    "kmemleak reported none of the canary leaks: the check is not working");
	KUNIT_EXPECT_EQ_MSG(test, ours, 0,
			    "kmemleak: %d unreferenced objects allocated by qcow (see above)",
			    ours);
	return seen > 0;
}

static void qcow_kmemleak_scan(struct kunit *test)
{
	struct file_system_type *type;
	struct vfsmount *mnt = NULL;
	struct mm_struct *mm = NULL;
	struct file *f = NULL;
	unsigned long disguised[QKL_CANARIES] = { }, uaddr;
	unsigned int made;
	char __user *ubuf;
	char *report = NULL;
	ssize_t len;
	ktime_t t0;
	int i, round;

	if (!IS_ENABLED(CONFIG_DEBUG_KMEMLEAK))
		kunit_skip(test, "CONFIG_DEBUG_KMEMLEAK is off");
	if (!QKL_BUILTIN)
		kunit_skip(test, "qcow is a module: needs mm_alloc(), built in only");

	made = qkl_make_canaries(test, disguised);
	if (!made) {
		KUNIT_FAIL(test, "could not allocate the canaries");
		return;
	}

	type = get_fs_type("debugfs");
	if (!type) {
		KUNIT_FAIL(test, "no debugfs file system type");
		goto out;
	}
	mnt = kern_mount(type);
	put_filesystem(type);
	if (IS_ERR(mnt)) {
		KUNIT_FAIL(test, "mount debugfs: %ld", PTR_ERR(mnt));
		mnt = NULL;
		goto out;
	}
	f = file_open_root_mnt(mnt, "kmemleak", O_RDWR, 0);
	if (IS_ERR(f)) {
		KUNIT_FAIL(test, "open kmemleak in debugfs: %ld (is kmemleak on?)", PTR_ERR(f));
		f = NULL;
		goto out;
	}

	mm = mm_alloc();
	if (!mm) {
		KUNIT_FAIL(test, "mm_alloc failed");
		goto out;
	}
	mm->task_size = TASK_SIZE;
	arch_pick_mmap_layout(mm, &current->signal->rlim[RLIMIT_STACK]);
	kthread_use_mm(mm);
	uaddr = vm_mmap(NULL, 0, PAGE_SIZE, PROT_READ | PROT_WRITE,
			MAP_ANONYMOUS | MAP_PRIVATE, 0);
	if (IS_ERR_VALUE(uaddr)) {
		KUNIT_FAIL(test, "vm_mmap: %ld", (long)uaddr);
		goto out;
	}
	ubuf = (char __user *)uaddr;

	report = kvmalloc(QKL_REPORT_MAX, GFP_KERNEL);
	if (!report) {
		KUNIT_FAIL(test, "no memory for the report");
		goto out;
	}

	/* the canary and the last suite's objects must reach the minimum age */
	msleep(QKL_MIN_AGE_MS);
	for (round = 1; ; round++) {
		qkl_flush_stack_cache(test);
		/* task_structs of exited threads are freed after a grace period */
		rcu_barrier();
		t0 = ktime_get();
		for (i = 0; i < QKL_SCANS; i++)
			if (qkl_command(test, f, ubuf, "scan"))
				goto out;
		kunit_info(test, "kmemleak: round %d, %d scans took %lld ms", round,
			   QKL_SCANS, ktime_ms_delta(ktime_get(), t0));
		len = qkl_read_report(test, f, ubuf, report, QKL_REPORT_MAX);
		if (len < 0 || round == QKL_ROUNDS || qkl_canaries_seen(report, disguised))
			break;
		kunit_info(test, "kmemleak: no canary reported yet (stale references to them?): scanning again");
	}
	if (len >= 0 && !qkl_check_report(test, report, len, disguised, made)) {
		char cmd[40];

		/* kmemleak prints what it knows of each canary to the log */
		for (i = 0; i < QKL_CANARIES; i++) {
			if (!disguised[i])
				continue;
			snprintf(cmd, sizeof(cmd), "dump=0x%lx", qkl_reveal(&disguised[i]));
			qkl_command(test, f, ubuf, cmd);
		}
	}

out:
	kvfree(report);
	if (mm) {
		kthread_unuse_mm(mm);
		mmput(mm);
	}
	if (f)
		fput(f);
	if (mnt)
		kern_unmount(mnt);
	for (i = 0; i < QKL_CANARIES; i++)
		if (disguised[i])
			kfree((void *)qkl_reveal(&disguised[i]));
}

static struct kunit_case qcow_kmemleak_cases[] = {
	KUNIT_CASE(qcow_kmemleak_scan),
	{}
};

static struct kunit_suite qcow_kmemleak_suite = {
	.name = "qcow_kmemleak",
	.test_cases = qcow_kmemleak_cases,
};

kunit_test_suites(&qcow_kmemleak_suite);
