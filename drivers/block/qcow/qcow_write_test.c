// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for the write path: cluster allocation and refcounts
 * (qcow_refcount.c), copy-on-write, discard, write-zeroes, flush and lazy
 * refcounts (qcow_write.c); and for internal snapshots: create, delete and
 * apply (qcow_snapshot.c).
 *
 * Images live in memory (struct qwt_file): a growable buffer behind
 * struct qcow_layer_ops.  Writes extend it, punches zero a range, flushes
 * are counted, and the Nth write or flush from some point on can be made
 * to fail with -EIO or -ENOSPC.  With the power-cut model on, the file
 * also logs what every sector written since the last successful flush
 * held before (struct qwt_undo), can lose power at the Nth write or flush
 * and then take back any subset of those sector writes.  The builder
 * writes empty images of any geometry:
 *
 *   cluster 0   header (v2 or v3; refcount order, extended L2, lazy
 *               refcounts and autoclear bits as asked; backing file name)
 *   cluster 1   refcount table (one cluster)
 *   cluster 2   refcount block of range 0
 *   cluster 3.. L1 table
 *
 * and edits closed images the way qemu-img does: an internal snapshot
 * (every reachable cluster gets one more reference, COPIED flags cleared)
 * and data clusters turned into compressed ones packed at byte
 * granularity, so that host clusters are shared by two streams.
 *
 * Two checkers run after every step:
 *
 *  - the invariant checker walks the header, the active and snapshot L1
 *    tables, every L2 table, the refcount table and blocks, and counts the
 *    references every cluster must have (header, L1 and L2 tables,
 *    refcount table and blocks, snapshot table, data clusters, compressed
 *    spans); then it compares them with the refcounts stored
 *      QWT_MEM    in the driver's memory: exactly the references plus the
 *                 frees queued for the next flush;
 *      QWT_DISK   in the file as it is now: never fewer than the
 *                 references (what a crash leaves is not corrupt), unless
 *                 the dirty bit says refcounts are stale (lazy refcounts);
 *      QWT_CLEAN  in the file after qcow_image_flush(img, true) and one
 *                 more flush (the first releases queued frees in memory,
 *                 the second writes them), or after close: exactly;
 *    COPIED must mean refcount one and the converse, in every mode (what
 *    qemu-img check calls corruption), and no cluster may be both metadata
 *    and data;
 *  - the guest model: a byte array of the virtual disk to which every
 *    write, discard and write-zeroes is applied; the whole disk is read
 *    back through qcow_layer_read() and compared.
 *
 * Suites:
 *   qcow_write         directed cases: allocation for every cluster size
 *                      and refcount width, refcount table growth, COW over
 *                      a backing file, subclusters, discard, write-zeroes,
 *                      lazy refcounts, autoclear bits, snapshot-shared and
 *                      compressed clusters, corrupt entries, a failed
 *                      data write, a failed flush (the image stops)
 *   qcow_write_random  seeded random operation sequences, and sweeps that
 *                      fail each write (or flush) of a script in turn
 *   qcow_snapshot_ops  create, delete and apply through the functions the
 *                      ioctls call, across geometries; names and ids; apply
 *                      to a snapshot of another disk size (shorter and
 *                      longer L1 tables); delete giving every cluster back;
 *                      refcount overflow with 1- and 2-bit refcounts
 *   qcow_snapshot_random  random sequences mixing snapshot operations with
 *                      guest I/O, and sweeps that fail each write (or
 *                      flush) of one create, delete or apply in turn
 *   qcow_powercut      power cuts: create, delete and apply cut at each of
 *                      their writes and flushes, a guest script cut at
 *                      each flush, each cut checked against several
 *                      choices of what a disk with a volatile write cache
 *                      kept (see "power cuts" below)
 *
 * With snapshots, the model also keeps each snapshot's id, name, disk size
 * and what the guest read when it was taken; a third checker reads every
 * snapshot (and, after a flush, the active tree) from the file alone -- its
 * L1 and L2 tables, subclusters, zero flags, compressed streams, the
 * backing file -- and compares it with that copy.
 */
#include <kunit/test.h>
#include <linux/kstrtox.h>
#include <linux/prandom.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>
#include <asm/unaligned.h>

#include "qcow_main.h"

#define QWT_MAX_FILES		4
#define QWT_MAX_ERRORS		8	/* reported per check, the rest counted */
#define QWT_BACKING_OFF		128	/* backing file name in the header */
#define QWT_BACKING_NAME	"backing.raw"
#define QWT_BACKING_SEED	0x6261636bULL
#define QWT_CHUNK		(256U << 10)	/* bytes per qcow_layer_read() */
#define QWT_PAST_EOF		1024	/* refcounts checked beyond the file */
#define QWT_FULL_VERIFY		SZ_256K	/* disks read back whole every step */

/**
 * struct qwt_undo - a sector of the file written since the last successful
 *		     flush, as a disk with a volatile write cache may lose it
 * @sector: file offset / 512
 * @write: which write (counted from the start of tracking) wrote it
 * @durable: a FUA write's: on the platter when the write returned
 * @prior: the sector before that write (zeros past the end of the file)
 */
struct qwt_undo {
	u64 sector;
	u32 write;
	bool durable;
	u8 prior[SECTOR_SIZE];
};

/**
 * struct qwt_file - an in-memory image or backing file
 * @l: the layer handed to the driver
 * @lock: serializes the driver's accesses (the background write-back
 *	  may run beside a request; @buf moves when the file grows)
 * @buf: contents
 * @len: file size
 * @cap: bytes allocated at @buf
 * @writes: write_iter calls
 * @flushes: flush calls
 * @punches: punch calls
 * @punched: bytes punched
 * @truncates: truncate calls
 * @async_writes: write_async calls that started a write
 * @reads: read_iter calls (read_async's included)
 * @async_reads: read_async calls that started a read
 * @fail_read: the @fail_read-th read from now fails with -EIO (0: none)
 * @no_async: write_async refuses (-EAGAIN), as without direct I/O
 * @fail_write: the @fail_write-th write from now fails (0: none)
 * @fail_flush: the @fail_flush-th flush from now fails (0: none)
 * @fail_err: what the failing write returns (-EIO or -ENOSPC)
 * @failures: writes and flushes failed
 * @hdr_prev: the first sector as it was before the last write to it
 * @hdr_unsure: the first sector was written since the last successful
 *		flush: a disk may hold it or @hdr_prev
 * @cut_track: the power-cut model is on: every sector written or punched
 *	       since the last successful flush is in @undo
 * @cut_flushes: @cut_at counts flushes only (else writes and flushes)
 * @frozen: the power is off: writes, flushes, punches and truncates fail
 *	    with -EIO and change nothing
 * @cut_at: the power goes off at the @cut_at-th write or flush since
 *	    tracking started (0: never)
 * @cut_ios: writes and flushes (or flushes) counted since tracking started
 * @cut_writes: write calls since tracking started
 * @undo: one entry per sector written since the last successful flush, in
 *	  order (see qwt_cut_revert())
 * @nr_undo: entries in @undo
 * @max_undo: entries allocated at @undo
 */
struct qwt_file {
	struct qcow_layer l;
	struct mutex lock;	/* buf, len, cap, counters */
	u8 *buf;
	u64 len;
	u64 cap;
	unsigned int writes;
	unsigned int flushes;
	unsigned int punches;
	u64 punched;
	unsigned int truncates;
	unsigned int async_writes;
	unsigned int reads;
	unsigned int async_reads;
	unsigned int fail_read;
	bool no_async;
	unsigned int fail_write;
	unsigned int fail_flush;
	int fail_err;
	unsigned int failures;
	u8 hdr_prev[SECTOR_SIZE];
	bool hdr_unsure;
	bool cut_track;
	bool cut_flushes;
	bool frozen;
	unsigned int cut_at;
	unsigned int cut_ios;
	unsigned int cut_writes;
	struct qwt_undo *undo;
	unsigned int nr_undo;
	unsigned int max_undo;
};

/**
 * struct qwt_geo - an image to build
 * @name: parameter name
 * @version: 2 or 3
 * @cluster_bits: 9..21
 * @refcount_order: 0..6 (4 for version 2)
 * @ext: extended L2 entries
 * @lazy: lazy refcounts
 * @size: virtual size
 * @backing: bytes of a raw backing file, 0 for none
 * @cache: L2 cache budget, 0 for the default
 */
struct qwt_geo {
	const char *name;
	u32 version;
	u32 cluster_bits;
	u32 refcount_order;
	bool ext;
	bool lazy;
	u64 size;
	u64 backing;
	u64 cache;
};

#define QWT_MAX_SNAPS		24

/**
 * struct qwt_snap - a snapshot as the model knows it
 * @id: its id
 * @name: its name
 * @size: the disk size when it was taken
 * @data: what the guest read when it was taken, @size bytes
 */
struct qwt_snap {
	char id[QCOW_SNAPSHOT_ID_MAX];
	char name[QCOW_SNAPSHOT_NAME_LEN + 1];
	u64 size;
	u8 *data;
};

/**
 * struct qwt - one test's images and guest model
 * @test: the test
 * @files: every file, freed at exit
 * @nr_files: entries in @files
 * @top: the qcow2 image under test
 * @back: its raw backing file, or NULL
 * @geo: geometry of @top
 * @cs: cluster size
 * @unit: smallest unit discard and write-zeroes change by metadata
 * @vsize: virtual size
 * @model: what the guest must read
 * @rbuf: read-back buffer, @vsize bytes
 * @wbuf: data of one request
 * @snap: a snapshot's guest data, for tests that need one copy
 * @wbuf_len: bytes at @wbuf
 * @seed: pattern seed of the next write
 * @has_comp: the image has (or had) compressed clusters
 * @touched_pos: first byte touched since the last full read-back
 * @touched_len: bytes from @touched_pos (0: nothing)
 * @checks: calls of qwt_check()
 * @vcap: bytes allocated at @model and @rbuf (the disk size may change)
 * @snaps: the snapshots the image must hold, in table order
 * @nr_snaps: entries in @snaps
 * @leaks_ok: a failed operation may have leaked references: refcounts
 *	      above the references are not errors in any mode
 * @leaked: clusters over-counted, found by the last checker run
 * @step: what the test is doing, for messages
 */
struct qwt {
	struct kunit *test;
	struct qwt_file *files[QWT_MAX_FILES];
	unsigned int nr_files;
	struct qwt_file *top;
	struct qwt_file *back;
	const struct qwt_geo *geo;
	u64 cs;
	u64 unit;
	u64 vsize;
	u8 *model;
	u8 *rbuf;
	u8 *wbuf;
	u8 *snap;
	u64 wbuf_len;
	u64 seed;
	bool has_comp;
	u64 touched_pos;
	u64 touched_len;
	unsigned int checks;
	u64 vcap;
	struct qwt_snap snaps[QWT_MAX_SNAPS];
	unsigned int nr_snaps;
	bool leaks_ok;
	u64 leaked;
	char step[160];
};

#define qwt_step(t, fmt, ...) \
	snprintf((t)->step, sizeof((t)->step), fmt, ##__VA_ARGS__)

/* --- the in-memory file ---------------------------------------------------- */

static int qwt_grow(struct qwt_file *f, u64 len)
{
	unsigned int noio;
	u64 cap;
	u8 *buf;

	if (len > f->cap) {
		cap = max3(len, 2 * f->cap, (u64)SZ_64K);
		/* Called from the driver's write path: no I/O from reclaim. */
		noio = memalloc_noio_save();
		buf = kvzalloc(cap, GFP_KERNEL);
		memalloc_noio_restore(noio);
		if (!buf)
			return -ENOMEM;
		if (f->buf)
			memcpy(buf, f->buf, f->len);
		kvfree(f->buf);
		f->buf = buf;
		f->cap = cap;
	}
	f->len = max(f->len, len);
	return 0;
}

static int qwt_read_iter(struct qcow_layer *l, struct iov_iter *iter,
			 size_t len, loff_t pos)
{
	struct qwt_file *f = l->priv;
	int err = 0;
	size_t n = 0;

	mutex_lock(&f->lock);
	f->reads++;
	if (f->fail_read && !--f->fail_read) {
		f->failures++;
		mutex_unlock(&f->lock);
		return -EIO;
	}
	if (pos < f->len)
		n = min_t(u64, len, f->len - pos);
	if (copy_to_iter(f->buf + pos, n, iter) != n ||
	    iov_iter_zero(len - n, iter) != len - n)
		err = -EIO;
	mutex_unlock(&f->lock);
	return err;
}

/*
 * Power-cut model: remember what the sectors of [pos, pos + len) held
 * before a write (or punch, or truncate) changes them, while tracking is on.
 */
static int qwt_undo_add(struct qwt_file *f, u64 pos, u64 len, bool durable)
{
	u64 first, last, s, n;
	struct qwt_undo *u;
	unsigned int noio;
	size_t max;

	if (!f->cut_track || !len)
		return 0;
	first = pos >> SECTOR_SHIFT;
	last = (pos + len - 1) >> SECTOR_SHIFT;
	if (f->nr_undo + (last - first + 1) > f->max_undo) {
		max = max3((size_t)f->max_undo * 2,
			   (size_t)(f->nr_undo + last - first + 1), (size_t)64);
		noio = memalloc_noio_save();
		u = kvrealloc(f->undo, (size_t)f->max_undo * sizeof(*u),
			      max * sizeof(*u), GFP_KERNEL);
		memalloc_noio_restore(noio);
		if (!u)
			return -ENOMEM;
		f->undo = u;
		f->max_undo = max;
	}
	for (s = first; s <= last; s++) {
		u = &f->undo[f->nr_undo++];
		u->sector = s;
		u->write = f->cut_writes;
		u->durable = durable;
		n = 0;
		if ((s << SECTOR_SHIFT) < f->len)
			n = min_t(u64, SECTOR_SIZE, f->len - (s << SECTOR_SHIFT));
		memcpy(u->prior, f->buf + (s << SECTOR_SHIFT), n);
		memset(u->prior + n, 0, SECTOR_SIZE - n);
	}
	return 0;
}

/* Whether this write (or flush) is the one at which the power goes off. */
static bool qwt_cut_event(struct qwt_file *f, bool flush)
{
	if (!f->cut_track || (f->cut_flushes && !flush))
		return false;
	return ++f->cut_ios == f->cut_at;
}

static int qwt_write_iter(struct qcow_layer *l, struct iov_iter *iter,
			  size_t len, loff_t pos, bool fua)
{
	struct qwt_file *f = l->priv;
	bool cut;
	int err = 0;

	mutex_lock(&f->lock);
	f->writes++;
	if (f->frozen) {
		err = -EIO;
		goto out;
	}
	/* A header write that fails leaves either sector: keep the old one. */
	if (!pos && f->len >= SECTOR_SIZE) {
		memcpy(f->hdr_prev, f->buf, SECTOR_SIZE);
		f->hdr_unsure = true;
	}
	/*
	 * The write at which the power goes off was in flight: it lands in
	 * the cache like the others (and may be lost like them), and fails.
	 */
	cut = qwt_cut_event(f, false);
	if (f->fail_write && !--f->fail_write) {
		f->failures++;
		err = f->fail_err;
	} else if (qwt_grow(f, pos + len) ||
		   qwt_undo_add(f, pos, len, fua && !cut) ||
		   copy_from_iter(f->buf + pos, len, iter) != len) {
		err = -EIO;
	}
	f->cut_writes += f->cut_track;
	if (cut) {
		f->frozen = true;
		err = -EIO;
	}
out:
	mutex_unlock(&f->lock);
	return err;
}

static u64 qwt_size(struct qcow_layer *l)
{
	struct qwt_file *f = l->priv;
	u64 len;

	mutex_lock(&f->lock);
	len = f->len;
	mutex_unlock(&f->lock);
	return len;
}

static int qwt_flush(struct qcow_layer *l)
{
	struct qwt_file *f = l->priv;
	int err = 0;

	mutex_lock(&f->lock);
	f->flushes++;
	if (f->frozen) {
		err = -EIO;
	} else if (qwt_cut_event(f, true)) {
		/* In flight at the cut: it made nothing durable. */
		f->frozen = true;
		err = -EIO;
	} else if (f->fail_flush && !--f->fail_flush) {
		f->failures++;
		err = -EIO;
	} else {
		f->hdr_unsure = false;
		/* Durable now; once tracking stops, the log waits for the cut. */
		if (f->cut_track)
			f->nr_undo = 0;
	}
	mutex_unlock(&f->lock);
	return err;
}

static int qwt_punch(struct qcow_layer *l, loff_t pos, u64 len)
{
	struct qwt_file *f = l->priv;
	int err = 0;
	u64 n;

	mutex_lock(&f->lock);
	if (f->frozen) {
		err = -EIO;
		goto out;
	}
	f->punches++;
	f->punched += len;
	/*
	 * FALLOC_FL_KEEP_SIZE: the range reads as zeros, the size stays.  Not
	 * durable before a flush either: each sector may come back.
	 */
	if (pos < f->len) {
		n = min_t(u64, len, f->len - pos);
		err = qwt_undo_add(f, pos, n, false);
		memset(f->buf + pos, 0, n);
	}
out:
	mutex_unlock(&f->lock);
	return err;
}

static int qwt_truncate(struct qcow_layer *l, u64 size)
{
	struct qwt_file *f = l->priv;
	int err = 0;

	mutex_lock(&f->lock);
	if (f->frozen) {
		err = -EIO;
	} else if (size < f->len) {
		f->truncates++;
		/* Not durable before a flush: what it cut may come back. */
		err = qwt_undo_add(f, size, f->len - size, false);
		/* Growing again must read zeros there. */
		memset(f->buf + size, 0, f->len - size);
		f->len = size;
	} else {
		f->truncates++;
		if (qwt_grow(f, size))
			err = -ENOMEM;
	}
	mutex_unlock(&f->lock);
	return err;
}

/* A write_async in flight: done at once, completed later from a work item. */
struct qwt_aio {
	struct work_struct work;
	struct kiocb *iocb;
	long ret;
	void (*done)(struct kiocb *iocb, long ret);
};

static void qwt_aio_work(struct work_struct *work)
{
	struct qwt_aio *a = container_of(work, struct qwt_aio, work);

	a->done(a->iocb, a->ret);
	kfree(a);
}

/*
 * The data reaches the file (or the caller) at once, the fault and
 * power-cut models apply as to write_iter and read_iter; the completion
 * comes later, from another thread, as an interrupt's would.
 */
static int qwt_rw_async(struct qcow_layer *l, struct kiocb *iocb,
			struct iov_iter *iter, loff_t pos,
			void (*done)(struct kiocb *iocb, long ret), bool write)
{
	struct qwt_file *f = l->priv;
	size_t len = iov_iter_count(iter);
	struct qwt_aio *a;
	int err;

	if (f->no_async)
		return -EAGAIN;
	a = kzalloc(sizeof(*a), GFP_NOIO);
	if (!a)
		return -EAGAIN;
	err = write ? qwt_write_iter(l, iter, len, pos, false) :
		      qwt_read_iter(l, iter, len, pos);
	a->iocb = iocb;
	a->ret = err ?: len;
	a->done = done;
	INIT_WORK(&a->work, qwt_aio_work);
	mutex_lock(&f->lock);
	if (write)
		f->async_writes++;
	else
		f->async_reads++;
	mutex_unlock(&f->lock);
	queue_work(system_unbound_wq, &a->work);
	return 0;
}

static int qwt_write_async(struct qcow_layer *l, struct kiocb *iocb,
			   struct iov_iter *iter, loff_t pos,
			   void (*done)(struct kiocb *iocb, long ret))
{
	return qwt_rw_async(l, iocb, iter, pos, done, true);
}

static int qwt_read_async(struct qcow_layer *l, struct kiocb *iocb,
			  struct iov_iter *iter, loff_t pos,
			  void (*done)(struct kiocb *iocb, long ret))
{
	return qwt_rw_async(l, iocb, iter, pos, done, false);
}

static const struct qcow_layer_ops qwt_layer_ops = {
	.read_iter	= qwt_read_iter,
	.read_async	= qwt_read_async,
	.write_iter	= qwt_write_iter,
	.write_async	= qwt_write_async,
	.size		= qwt_size,
	.flush		= qwt_flush,
	.punch		= qwt_punch,
	.truncate	= qwt_truncate,
};

static struct qwt_file *qwt_file_new(struct qwt *t, u64 len)
{
	struct qwt_file *f;

	KUNIT_ASSERT_LT(t->test, t->nr_files, QWT_MAX_FILES);
	f = kzalloc(sizeof(*f), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, f);
	t->files[t->nr_files++] = f;
	mutex_init(&f->lock);
	f->l.ops = &qwt_layer_ops;
	f->l.priv = f;
	KUNIT_ASSERT_EQ(t->test, qwt_grow(f, len), 0);
	return f;
}

static void qwt_file_free(struct qwt_file *f)
{
	if (f->l.img)
		qcow_image_close(f->l.img);
	mutex_destroy(&f->lock);
	kvfree(f->undo);
	kvfree(f->buf);
	kfree(f);
}

/* Byte @off of the pattern @seed: a multiplicative hash of its 8-byte word. */
static u8 qwt_byte(u64 seed, u64 off)
{
	u64 x = (seed ^ (off >> 3)) * 0x9e3779b97f4a7c15ULL;

	x ^= x >> 29;
	return x >> (8 * (off & 7));
}

static void qwt_fill(u64 seed, u64 off, u8 *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf[i] = qwt_byte(seed, off + i);
}

static u64 qwt_rand(struct rnd_state *rs, u64 n)
{
	u64 r = ((u64)prandom_u32_state(rs) << 32) | prandom_u32_state(rs);
	u64 rem;

	div64_u64_rem(r, n, &rem);
	return rem;
}

/* --- on-disk structures, decoded here independently of the format core --- */

/**
 * struct qwt_hdr - the header fields the tests use
 * @version: 2 or 3
 * @cb: cluster bits
 * @cs: cluster size
 * @order: refcount order
 * @rb_bits: log2 of refcount entries per block
 * @ext: extended L2 entries
 * @es: bytes per L2 entry
 * @l2_entries: entries per L2 table
 * @size: virtual size
 * @l1_size: L1 entries
 * @l1_off: L1 table offset
 * @rt_off: refcount table offset
 * @rt_clusters: refcount table clusters
 * @nb_snap: snapshots
 * @snap_off: snapshot table offset
 * @incompat: incompatible features
 * @compat: compatible features
 * @autoclear: autoclear features
 */
struct qwt_hdr {
	u32 version;
	u32 cb;
	u64 cs;
	u32 order;
	u32 rb_bits;
	bool ext;
	u32 es;
	u64 l2_entries;
	u64 size;
	u32 l1_size;
	u64 l1_off;
	u64 rt_off;
	u32 rt_clusters;
	u32 nb_snap;
	u64 snap_off;
	u64 incompat;
	u64 compat;
	u64 autoclear;
};

static void qwt_hdr_parse(const u8 *b, struct qwt_hdr *h)
{
	memset(h, 0, sizeof(*h));
	h->version = get_unaligned_be32(b + 4);
	h->cb = get_unaligned_be32(b + 20);
	h->cs = 1ULL << h->cb;
	h->size = get_unaligned_be64(b + 24);
	h->l1_size = get_unaligned_be32(b + 36);
	h->l1_off = get_unaligned_be64(b + 40);
	h->rt_off = get_unaligned_be64(b + 48);
	h->rt_clusters = get_unaligned_be32(b + 56);
	h->nb_snap = get_unaligned_be32(b + 60);
	h->snap_off = get_unaligned_be64(b + 64);
	h->order = 4;
	if (h->version >= 3) {
		h->incompat = get_unaligned_be64(b + 72);
		h->compat = get_unaligned_be64(b + 80);
		h->autoclear = get_unaligned_be64(b + 88);
		h->order = get_unaligned_be32(b + 96);
	}
	h->ext = h->incompat & QCOW2_INCOMPAT_EXTL2;
	h->es = h->ext ? 16 : 8;
	h->l2_entries = h->cs / h->es;
	h->rb_bits = h->cb + 3 - h->order;
}

/* Refcount entry @i of a block: sub-byte widths are packed LSB first. */
static u64 qwt_rc_get(const u8 *blk, u32 order, u64 i)
{
	u32 bits = 1U << order;

	switch (order) {
	case 0:
	case 1:
	case 2:
		return (blk[i * bits / 8] >> (i * bits % 8)) & ((1U << bits) - 1);
	case 3:
		return blk[i];
	case 4:
		return get_unaligned_be16(blk + 2 * i);
	case 5:
		return get_unaligned_be32(blk + 4 * i);
	default:
		return get_unaligned_be64(blk + 8 * i);
	}
}

static void qwt_rc_put(u8 *blk, u32 order, u64 i, u64 v)
{
	u32 bits = 1U << order, shift;
	u8 mask;

	switch (order) {
	case 0:
	case 1:
	case 2:
		shift = i * bits % 8;
		mask = ((1U << bits) - 1) << shift;
		blk[i * bits / 8] = (blk[i * bits / 8] & ~mask) |
				    ((v << shift) & mask);
		break;
	case 3:
		blk[i] = v;
		break;
	case 4:
		put_unaligned_be16(v, blk + 2 * i);
		break;
	case 5:
		put_unaligned_be32(v, blk + 4 * i);
		break;
	default:
		put_unaligned_be64(v, blk + 8 * i);
		break;
	}
}

/* Compressed cluster descriptor: data offset and bytes to its last sector. */
static void qwt_comp_decode(u32 cb, u64 word, u64 *off, u64 *span)
{
	u32 x = 62 - (cb - 8);
	u64 nsect = (word >> x) & ((1ULL << (cb - 8)) - 1);

	*off = word & ((1ULL << x) - 1);
	*span = (nsect + 1) * 512 - (*off & 511);
}

/* Refcount of cluster @c in the file; false when no block covers it. */
static bool qwt_disk_rc(const struct qwt_file *f, const struct qwt_hdr *h,
			u64 c, u64 *rc)
{
	u64 ri = c >> h->rb_bits, rb;

	*rc = 0;
	if (ri >= (u64)h->rt_clusters * h->cs / 8)
		return false;
	rb = get_unaligned_be64(f->buf + h->rt_off + ri * 8) & ~511ULL;
	if (!rb || rb + h->cs > f->len)
		return false;
	*rc = qwt_rc_get(f->buf + rb, h->order, c & ((1ULL << h->rb_bits) - 1));
	return true;
}

/* The L2 entry of guest cluster @g in the file; false without an L2 table. */
static bool qwt_disk_l2e(const struct qwt_file *f, u64 g, u64 *word,
			 u64 *bitmap)
{
	struct qwt_hdr h;
	u64 l1i, l2;

	qwt_hdr_parse(f->buf, &h);
	l1i = g / h.l2_entries;
	*word = 0;
	*bitmap = 0;
	if (l1i >= h.l1_size)
		return false;
	l2 = get_unaligned_be64(f->buf + h.l1_off + l1i * 8) &
	     QCOW2_L1E_OFFSET_MASK;
	if (!l2)
		return false;
	l2 += (g % h.l2_entries) * h.es;
	*word = get_unaligned_be64(f->buf + l2);
	if (h.ext)
		*bitmap = get_unaligned_be64(f->buf + l2 + 8);
	return true;
}

static u64 qwt_disk_host(const struct qwt_file *f, u64 g)
{
	u64 word, bitmap;

	qwt_disk_l2e(f, g, &word, &bitmap);
	return word & QCOW2_OFLAG_COMPRESSED ? 0 : word & QCOW2_L2E_OFFSET_MASK;
}

/* --- the image builder ---------------------------------------------------- */

static struct qwt_file *qwt_image(struct qwt *t, const struct qwt_geo *g,
				  u64 autoclear)
{
	u64 cs = 1ULL << g->cluster_bits;
	u64 span = cs / (g->ext ? 16 : 8) * cs;
	u32 l1_size = DIV64_U64_ROUND_UP(g->size, span);
	u64 l1_bytes = round_up(max_t(u64, (u64)l1_size * 8, 1), cs);
	u64 rt = cs, rb = 2 * cs, l1 = 3 * cs, i;
	struct qwt_file *f = qwt_file_new(t, l1 + l1_bytes);
	u8 *h = f->buf;

	KUNIT_ASSERT_TRUE(t->test, g->version == 3 || g->refcount_order == 4);
	put_unaligned_be32(QCOW2_MAGIC, h);
	put_unaligned_be32(g->version, h + 4);
	put_unaligned_be32(g->cluster_bits, h + 20);
	put_unaligned_be64(g->size, h + 24);
	put_unaligned_be32(l1_size, h + 36);
	put_unaligned_be64(l1, h + 40);
	put_unaligned_be64(rt, h + 48);
	put_unaligned_be32(1, h + 56);
	if (g->version >= 3) {
		put_unaligned_be64(g->ext ? QCOW2_INCOMPAT_EXTL2 : 0, h + 72);
		put_unaligned_be64(g->lazy ? QCOW2_COMPAT_LAZY_REFCOUNTS : 0, h + 80);
		put_unaligned_be64(autoclear, h + 88);
		put_unaligned_be32(g->refcount_order, h + 96);
		put_unaligned_be32(112, h + 100);
	}
	if (g->backing) {
		put_unaligned_be64(QWT_BACKING_OFF, h + 8);
		put_unaligned_be32(strlen(QWT_BACKING_NAME), h + 16);
		memcpy(h + QWT_BACKING_OFF, QWT_BACKING_NAME,
		       strlen(QWT_BACKING_NAME));
	}
	put_unaligned_be64(rb, f->buf + rt);
	KUNIT_ASSERT_LE(t->test, f->len / cs, 1ULL << (g->cluster_bits + 3 -
						       g->refcount_order));
	for (i = 0; i < f->len / cs; i++)
		qwt_rc_put(f->buf + rb, g->refcount_order, i, 1);
	f->l.format = QCOW_FMT_QCOW2;
	return f;
}

/* Change the refcount of cluster @c of a closed image by @delta. */
static void qwt_rc_add(struct qwt *t, struct qwt_file *f, u64 c, int delta)
{
	struct qwt_hdr h;
	u64 rb, v;

	qwt_hdr_parse(f->buf, &h);
	KUNIT_ASSERT_LT(t->test, c >> h.rb_bits, (u64)h.rt_clusters * h.cs / 8);
	rb = get_unaligned_be64(f->buf + h.rt_off + (c >> h.rb_bits) * 8);
	KUNIT_ASSERT_NE_MSG(t->test, rb, 0ULL, "no refcount block for cluster %llu", c);
	v = qwt_rc_get(f->buf + rb, h.order, c & ((1ULL << h.rb_bits) - 1));
	KUNIT_ASSERT_TRUE(t->test, delta > 0 || v);
	v += delta;
	KUNIT_ASSERT_LE(t->test, v, h.order >= 6 ? U64_MAX :
			(1ULL << (1U << h.order)) - 1);
	qwt_rc_put(f->buf + rb, h.order, c & ((1ULL << h.rb_bits) - 1), v);
}

/* Clusters at the end of a closed image, with refcount one. */
static u64 qwt_alloc_end(struct qwt *t, struct qwt_file *f, u64 bytes)
{
	u64 cs = 1ULL << get_unaligned_be32(f->buf + 20);
	u64 off = round_up(f->len, cs), c;

	KUNIT_ASSERT_EQ(t->test, qwt_grow(f, off + round_up(bytes, cs)), 0);
	for (c = off / cs; c < f->len / cs; c++)
		qwt_rc_add(t, f, c, 1);
	return off;
}

/*
 * Take an internal snapshot of a closed image the way qemu-img snapshot -c
 * does: copy the active L1 table, give every L2 table and data cluster
 * reachable from it one more reference, clear their COPIED flags, and add
 * a snapshot table with one entry.
 */
static void qwt_snapshot(struct qwt *t)
{
	struct qwt_file *f = t->top;
	u64 i, j, e, l2, w, off, span, c, sl1, st, l1_bytes;
	struct qwt_hdr h;
	u32 extra;
	u8 *p;

	KUNIT_ASSERT_NULL(t->test, f->l.img);
	qwt_hdr_parse(f->buf, &h);
	KUNIT_ASSERT_EQ(t->test, h.nb_snap, 0U);
	for (i = 0; i < h.l1_size; i++) {
		e = get_unaligned_be64(f->buf + h.l1_off + i * 8);
		l2 = e & QCOW2_L1E_OFFSET_MASK;
		if (!l2)
			continue;
		qwt_rc_add(t, f, l2 >> h.cb, 1);
		put_unaligned_be64(e & ~QCOW2_OFLAG_COPIED, f->buf + h.l1_off + i * 8);
		for (j = 0; j < h.l2_entries; j++) {
			p = f->buf + l2 + j * h.es;
			w = get_unaligned_be64(p);
			if (w & QCOW2_OFLAG_COMPRESSED) {
				qwt_comp_decode(h.cb, w, &off, &span);
				for (c = off >> h.cb; c <= (off + span - 1) >> h.cb; c++)
					qwt_rc_add(t, f, c, 1);
				continue;
			}
			if (!(w & QCOW2_L2E_OFFSET_MASK))
				continue;
			qwt_rc_add(t, f, (w & QCOW2_L2E_OFFSET_MASK) >> h.cb, 1);
			put_unaligned_be64(w & ~QCOW2_OFLAG_COPIED, p);
		}
	}
	l1_bytes = (u64)h.l1_size * 8;
	sl1 = qwt_alloc_end(t, f, l1_bytes);
	memcpy(f->buf + sl1, f->buf + h.l1_off, l1_bytes);
	st = qwt_alloc_end(t, f, h.cs);
	p = f->buf + st;
	extra = h.version >= 3 ? 16 : 0;
	put_unaligned_be64(sl1, p);
	put_unaligned_be32(h.l1_size, p + 8);
	put_unaligned_be16(1, p + 12);		/* id_str_size */
	put_unaligned_be16(4, p + 14);		/* name_size */
	put_unaligned_be32(extra, p + 36);
	if (extra)
		put_unaligned_be64(h.size, p + 48);	/* disk_size */
	memcpy(p + 40 + extra, "1snap", 5);
	put_unaligned_be32(1, f->buf + 60);
	put_unaligned_be64(st, f->buf + 64);
}

/* Raw deflate made of stored blocks (BTYPE 00), at most 64 KiB - 1 each. */
static size_t qwt_deflate_stored(u8 *out, const u8 *in, size_t n)
{
	size_t o = 0, b;

	do {
		b = min_t(size_t, n, 65535);
		out[o++] = b == n;			/* BFINAL, BTYPE 00 */
		put_unaligned_le16(b, out + o);
		put_unaligned_le16(~b, out + o + 2);
		o += 4;
		memcpy(out + o, in, b);
		o += b;
		in += b;
		n -= b;
	} while (n);
	return o;
}

/*
 * Turn guest cluster @g of a closed image (a NORMAL cluster) into a
 * compressed one whose stream starts at *@next (0: at a new cluster at the
 * end of the file); *@next is set to the end of the stream, so that the
 * next stream shares its last host cluster.  The old host cluster is
 * released.
 */
static void qwt_compress(struct qwt *t, u64 g, u64 *next)
{
	struct qwt_file *f = t->top;
	u64 word, bitmap, host, off, n, nsect, c, l2e;
	struct qwt_hdr h;
	u8 *plain;

	qwt_hdr_parse(f->buf, &h);
	KUNIT_ASSERT_TRUE(t->test, qwt_disk_l2e(f, g, &word, &bitmap));
	host = word & QCOW2_L2E_OFFSET_MASK;
	KUNIT_ASSERT_TRUE(t->test, host && !(word & QCOW2_OFLAG_COMPRESSED));
	plain = kvmalloc(h.cs, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, plain);
	memcpy(plain, f->buf + host, h.cs);

	off = *next ? *next : round_up(f->len, h.cs);
	n = h.cs + 5 * DIV64_U64_ROUND_UP(h.cs, 65535);
	if (qwt_grow(f, off + n)) {
		kvfree(plain);
		KUNIT_ASSERT_FAILURE(t->test, "out of memory");
	}
	n = qwt_deflate_stored(f->buf + off, plain, h.cs);
	kvfree(plain);
	nsect = DIV64_U64_ROUND_UP((off & 511) + n, 512) - 1;
	KUNIT_ASSERT_LT(t->test, nsect, 1ULL << (h.cb - 8));
	for (c = off >> h.cb; c <= (off + n - 1) >> h.cb; c++)
		qwt_rc_add(t, f, c, 1);
	*next = off + n;

	l2e = (get_unaligned_be64(f->buf + h.l1_off + g / h.l2_entries * 8) &
	       QCOW2_L1E_OFFSET_MASK) + (g % h.l2_entries) * h.es;
	put_unaligned_be64(QCOW2_OFLAG_COMPRESSED | nsect << (62 - (h.cb - 8)) | off,
			   f->buf + l2e);
	if (h.ext)
		put_unaligned_be64(0, f->buf + l2e + 8);
	qwt_rc_add(t, f, host >> h.cb, -1);
	memset(f->buf + host, 0, h.cs);
	t->has_comp = true;
}

/* --- opening and closing ------------------------------------------------------ */

static int qwt_open(struct qwt *t)
{
	int err;

	err = qcow_image_open(&t->top->l, t->geo->cache);
	if (err)
		return err;
	return qcow_image_open_rw(t->top->l.img);
}

static void qwt_close(struct qwt *t)
{
	if (t->top->l.img)
		qcow_image_close(t->top->l.img);
	t->top->l.img = NULL;
}

static struct qcow_image *qwt_img(struct qwt *t)
{
	return t->top->l.img;
}

/*
 * The driver flushes in the background a few seconds after a metadata
 * change.  The checkers read the file behind its back, so a step ends by
 * cancelling that: every flush the tests see is one they asked for.
 */
static void qwt_quiesce(struct qwt *t)
{
	struct qcow_image *img = qwt_img(t);

	if (img && img->writable)
		cancel_delayed_work_sync(&img->wb_work);
}

/*
 * Build the image @g (and its raw backing file), set up the guest model
 * and open the image read-write unless @closed.
 */
static struct qwt *qwt_new(struct kunit *test, const struct qwt_geo *g,
			   bool closed)
{
	struct qwt *t = test->priv;
	u64 n;

	t->test = test;
	t->geo = g;
	t->cs = 1ULL << g->cluster_bits;
	t->unit = g->ext ? t->cs / 32 : t->cs;
	t->vsize = g->size;
	t->vcap = g->size;
	t->model = kvzalloc(t->vsize, GFP_KERNEL);
	t->rbuf = kvzalloc(t->vsize, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->model);
	KUNIT_ASSERT_NOT_NULL(test, t->rbuf);
	t->seed = g->cluster_bits * 1000 + g->refcount_order;
	t->top = qwt_image(t, g, 0);
	if (g->backing) {
		t->back = qwt_file_new(t, g->backing);
		qwt_fill(QWT_BACKING_SEED, 0, t->back->buf, g->backing);
		t->back->l.format = QCOW_FMT_RAW;
		t->back->l.size = g->backing;
		t->back->l.depth = 1;
		t->top->l.backing = &t->back->l;
		n = min(g->backing, t->vsize);
		memcpy(t->model, t->back->buf, n);
	}
	qwt_step(t, "open");
	if (!closed)
		KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	return t;
}

/* --- the invariant checker ------------------------------------------------------ */

enum qwt_mode {
	QWT_MEM,	/* the driver's state: references + queued frees */
	QWT_DISK,	/* the file now: no cluster under-counted */
	QWT_CLEAN,	/* the file after a clean flush or close: exact */
};

static const char *const qwt_mode_names[] = { "memory", "file", "clean file" };

#define QWT_K_META	BIT(0)
#define QWT_K_DATA	BIT(1)
#define QWT_K_COMP	BIT(2)

/**
 * struct qwt_chk - one run of the invariant checker
 * @t: the test
 * @mode: what is checked
 * @img: the driver's image (QWT_MEM)
 * @f: the file
 * @h: header (of the file, or the driver's for QWT_MEM)
 * @l1: active L1 table
 * @rt: refcount table
 * @rt_entries: entries in @rt
 * @n: clusters counted
 * @exp: expected refcount per cluster
 * @kind: QWT_K_* per cluster
 * @l2: one L2 table
 * @copied_pass: second walk: check COPIED flags
 * @stale: the dirty bit is set: file refcounts are not checked
 * @leaked: clusters whose refcount is above their references
 * @errors: problems found
 */
struct qwt_chk {
	struct qwt *t;
	enum qwt_mode mode;
	struct qcow_image *img;
	struct qwt_file *f;
	struct qwt_hdr h;
	const __be64 *l1;
	const __be64 *rt;
	u64 rt_entries;
	u64 n;
	u32 *exp;
	u8 *kind;
	u8 *l2;
	bool copied_pass;
	bool stale;
	u64 leaked;
	unsigned int errors;
};

static __printf(2, 3) void qwt_err(struct qwt_chk *k, const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	if (k->errors++ >= QWT_MAX_ERRORS)
		return;
	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	KUNIT_FAIL(k->t->test, "%s: %s: %pV", k->t->step, qwt_mode_names[k->mode],
		   &vaf);
	va_end(args);
}

static void qwt_ref(struct qwt_chk *k, u64 off, u64 len, u8 kind,
		    const char *what, u64 idx)
{
	u64 c, last;

	if (!len)
		return;
	last = (off + len - 1) >> k->h.cb;
	for (c = off >> k->h.cb; c <= last; c++) {
		if (c >= k->n) {
			qwt_err(k, "%s %llu at 0x%llx is beyond the end of the file",
				what, idx, off);
			return;
		}
		if (((k->kind[c] | kind) & QWT_K_META) && (k->kind[c] | kind) != QWT_K_META)
			qwt_err(k, "cluster %llu is both metadata and data (%s %llu)",
				c, what, idx);
		else if ((k->kind[c] | kind) == (QWT_K_DATA | QWT_K_COMP))
			qwt_err(k, "cluster %llu holds both data and compressed data (%s %llu)",
				c, what, idx);
		k->kind[c] |= kind;
		k->exp[c]++;
	}
}

/* Stored refcount of cluster @c in the mode's view. */
static u64 qwt_chk_rc(struct qwt_chk *k, u64 c)
{
	u64 rc;
	int err;

	if (k->mode == QWT_MEM) {
		err = qcow_refcount_get(k->img, c, &rc);
		if (err)
			qwt_err(k, "qcow_refcount_get(%llu): %d", c, err);
		return rc;
	}
	qwt_disk_rc(k->f, &k->h, c, &rc);
	return rc;
}

static void qwt_copied(struct qwt_chk *k, u64 off, bool copied,
		       const char *what, u64 idx)
{
	u64 rc, c;

	if (k->stale)
		return;
	c = off >> k->h.cb;
	rc = qwt_chk_rc(k, c);
	/*
	 * Both directions, in memory and in the file at every step, as
	 * qemu-img check counts them: a crash at any point must leave COPIED
	 * and the refcount in agreement (snapshot operations switch both in
	 * one header write, qcow_shadow_commit()).
	 */
	if (copied && rc != 1)
		qwt_err(k, "%s %llu: COPIED set, refcount of 0x%llx is %llu",
			what, idx, off, rc);
	else if (!copied && rc == 1)
		qwt_err(k, "%s %llu: COPIED clear, refcount of 0x%llx is 1",
			what, idx, off);
}

static bool qwt_read_l2(struct qwt_chk *k, u64 off)
{
	struct qcow_cache_entry *ce;
	u32 ss;
	u64 s;

	if (k->mode != QWT_MEM) {
		if (off + k->h.cs > k->f->len) {
			qwt_err(k, "L2 table 0x%llx is beyond the end of the file", off);
			return false;
		}
		memcpy(k->l2, k->f->buf + off, k->h.cs);
		return true;
	}
	ss = k->img->slice_size;
	for (s = 0; s < k->h.cs; s += ss) {
		ce = qcow_cache_get(k->img->cache, off + s);
		if (IS_ERR(ce)) {
			qwt_err(k, "L2 slice 0x%llx: %ld", off + s, PTR_ERR(ce));
			return false;
		}
		memcpy(k->l2 + s, qcow_cache_data(ce), ss);
		qcow_cache_put(k->img->cache, ce);
	}
	return true;
}

static void qwt_walk_l2(struct qwt_chk *k, u64 l1i, bool active)
{
	const struct qwt_hdr *h = &k->h;
	u64 j, g, word, bitmap, host, off, span;
	u32 alloc, zero;

	for (j = 0; j < h->l2_entries; j++) {
		g = l1i * h->l2_entries + j;
		word = get_unaligned_be64(k->l2 + j * h->es);
		bitmap = h->ext ? get_unaligned_be64(k->l2 + j * h->es + 8) : 0;
		if (word & QCOW2_OFLAG_COMPRESSED) {
			if (k->copied_pass)
				continue;
			if (word & QCOW2_OFLAG_COPIED)
				qwt_err(k, "compressed guest cluster %llu has COPIED", g);
			if (bitmap)
				qwt_err(k, "compressed guest cluster %llu has bitmap 0x%llx",
					g, bitmap);
			qwt_comp_decode(h->cb, word, &off, &span);
			qwt_ref(k, off, span, QWT_K_COMP, "compressed guest cluster", g);
			continue;
		}
		host = word & QCOW2_L2E_OFFSET_MASK;
		if (!k->copied_pass) {
			if (word & QCOW2_L2E_STD_RESERVED_MASK)
				qwt_err(k, "guest cluster %llu: reserved bits in 0x%llx",
					g, word);
			if ((word & QCOW2_OFLAG_ZERO) && (h->version < 3 || h->ext))
				qwt_err(k, "guest cluster %llu: zero flag in 0x%llx", g, word);
			if (host & (h->cs - 1))
				qwt_err(k, "guest cluster %llu: unaligned 0x%llx", g, word);
			alloc = lower_32_bits(bitmap);
			zero = upper_32_bits(bitmap);
			if (alloc & zero)
				qwt_err(k, "guest cluster %llu: bitmap 0x%llx", g, bitmap);
			if (!host && (alloc || (word & QCOW2_OFLAG_COPIED)))
				qwt_err(k, "guest cluster %llu: 0x%llx/0x%llx without host",
					g, word, bitmap);
		}
		if (!host)
			continue;
		if (!k->copied_pass)
			qwt_ref(k, host, h->cs, QWT_K_DATA, "guest cluster", g);
		else if (active)
			qwt_copied(k, host, word & QCOW2_OFLAG_COPIED, "guest cluster", g);
	}
}

static void qwt_walk_l1(struct qwt_chk *k, const __be64 *l1, u32 l1_size,
			bool active)
{
	u64 i, e, off;

	for (i = 0; i < l1_size; i++) {
		e = be64_to_cpu(l1[i]);
		off = e & QCOW2_L1E_OFFSET_MASK;
		if (!k->copied_pass && (e & QCOW2_L1E_RESERVED_MASK))
			qwt_err(k, "L1 entry %llu: reserved bits in 0x%llx", i, e);
		if (!off)
			continue;
		if (off & (k->h.cs - 1)) {
			qwt_err(k, "L1 entry %llu: unaligned 0x%llx", i, e);
			continue;
		}
		if (!k->copied_pass)
			qwt_ref(k, off, k->h.cs, QWT_K_META, "L2 table of L1 entry", i);
		else if (active)
			qwt_copied(k, off, e & QCOW2_OFLAG_COPIED, "L1 entry", i);
		if (qwt_read_l2(k, off))
			qwt_walk_l2(k, i, active);
	}
}

/* The snapshot table and every snapshot's tables (read from the file). */
static void qwt_walk_snapshots(struct qwt_chk *k)
{
	const u8 *b = k->f->buf + k->h.snap_off;
	u64 pos = 0, end = 0, l1_off, size;
	u32 i, l1_size;
	__be64 *l1;

	for (i = 0; i < k->h.nb_snap; i++) {
		if (k->h.snap_off + pos + 40 > k->f->len) {
			qwt_err(k, "snapshot %u is beyond the end of the file", i);
			return;
		}
		l1_off = get_unaligned_be64(b + pos);
		l1_size = get_unaligned_be32(b + pos + 8);
		size = 40 + get_unaligned_be32(b + pos + 36) +
		       get_unaligned_be16(b + pos + 12) + get_unaligned_be16(b + pos + 14);
		end = pos + size;
		pos += round_up(size, 8);
		if (!l1_size)
			continue;
		if (l1_off + (u64)l1_size * 8 > k->f->len) {
			qwt_err(k, "snapshot %u: L1 table beyond the end of the file", i);
			continue;
		}
		if (!k->copied_pass)
			qwt_ref(k, l1_off, (u64)l1_size * 8, QWT_K_META,
				"snapshot L1 table", i);
		l1 = kvmalloc_array(l1_size, 8, GFP_KERNEL);
		if (!l1) {
			qwt_err(k, "out of memory");
			return;
		}
		memcpy(l1, k->f->buf + l1_off, (size_t)l1_size * 8);
		qwt_walk_l1(k, l1, l1_size, false);
		kvfree(l1);
	}
	if (!k->copied_pass)
		qwt_ref(k, k->h.snap_off, end, QWT_K_META, "snapshot table", 0);
}

static void qwt_walk(struct qwt_chk *k)
{
	u64 i, e;

	if (!k->copied_pass) {
		qwt_ref(k, 0, k->h.cs, QWT_K_META, "header", 0);
		qwt_ref(k, k->h.l1_off, (u64)k->h.l1_size * 8, QWT_K_META, "L1 table", 0);
		qwt_ref(k, k->h.rt_off, (u64)k->h.rt_clusters * k->h.cs, QWT_K_META,
			"refcount table", 0);
		for (i = 0; i < k->rt_entries; i++) {
			e = be64_to_cpu(k->rt[i]);
			if (e & 511)
				qwt_err(k, "refcount table entry %llu: 0x%llx", i, e);
			else if (e)
				qwt_ref(k, e, k->h.cs, QWT_K_META, "refcount block", i);
		}
	}
	qwt_walk_l1(k, k->l1, k->h.l1_size, true);
	if (k->h.nb_snap && !k->copied_pass)
		qwt_walk_snapshots(k);
}

static void qwt_compare(struct qwt_chk *k, u64 c, u64 rc)
{
	u32 e = c < k->n ? k->exp[c] : 0;

	if (rc > e)
		k->leaked++;
	if (rc == e || ((k->mode == QWT_DISK || k->t->leaks_ok) && rc > e))
		return;
	qwt_err(k, "cluster %llu (kind %u): refcount %llu, %u references%s",
		c, c < k->n ? k->kind[c] : 0, rc, e,
		rc > e ? " (leak)" : " (under-counted: corruption)");
}

/* Stored refcounts against the expected ones. */
static void qwt_compare_all(struct qwt_chk *k)
{
	const struct qwt_hdr *h = &k->h;
	u64 epb = 1ULL << h->rb_bits, ri, i, c, rb;
	u64 rc;

	if (k->mode == QWT_MEM) {
		for (c = 0; c < k->n; c++)
			qwt_compare(k, c, qwt_chk_rc(k, c));
		return;
	}
	/*
	 * Every block, to a little past the end of the file (a refcount
	 * there is a leak too), then the clusters no block covers.
	 */
	for (ri = 0; ri < k->rt_entries; ri++) {
		rb = be64_to_cpu(k->rt[ri]) & ~511ULL;
		if (!rb)
			continue;
		if (rb + h->cs > k->f->len) {
			qwt_err(k, "refcount block %llu is beyond the end of the file", ri);
			continue;
		}
		for (i = 0; i < epb && (ri << h->rb_bits) + i < k->n + QWT_PAST_EOF; i++)
			qwt_compare(k, (ri << h->rb_bits) + i,
				    qwt_rc_get(k->f->buf + rb, h->order, i));
	}
	for (c = 0; c < k->n; c++)
		if (!qwt_disk_rc(k->f, h, c, &rc) && k->exp[c])
			qwt_err(k, "cluster %llu has %u references but no refcount block",
				c, k->exp[c]);
}

/* Run the invariant checker; returns true when nothing was found. */
static bool qwt_chk(struct qwt *t, enum qwt_mode mode)
{
	struct qcow_image *img = qwt_img(t);
	struct qwt_chk *k;
	bool ok;
	u64 c;
	u32 i;

	qwt_quiesce(t);
	k = kzalloc(sizeof(*k), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, k);
	k->t = t;
	k->mode = mode;
	k->f = t->top;
	qwt_hdr_parse(k->f->buf, &k->h);
	k->n = DIV64_U64_ROUND_UP(k->f->len, k->h.cs);
	if (mode == QWT_MEM) {
		KUNIT_ASSERT_TRUE(t->test, img && img->writable);
		mutex_lock(&img->meta_lock);
		k->img = img;
		/* What the driver will write next must agree with the file. */
		if (k->h.rt_off != img->hdr->refcount_table_offset ||
		    k->h.rt_clusters != img->hdr->refcount_table_clusters)
			qwt_err(k, "the file's header has the refcount table at 0x%llx (%u clusters), the driver uses 0x%llx (%u clusters)",
				k->h.rt_off, k->h.rt_clusters,
				img->hdr->refcount_table_offset,
				img->hdr->refcount_table_clusters);
		if ((k->h.incompat & ~img->hdr->incompatible_features) & QCOW2_INCOMPAT_DIRTY)
			qwt_err(k, "the file has the dirty bit, the driver's header does not");
		/* Header switches (snapshots, apply) reach both or neither. */
		if (k->h.l1_off != img->hdr->l1_table_offset ||
		    k->h.l1_size != img->hdr->l1_size || k->h.size != img->hdr->size)
			qwt_err(k, "the file's header has L1 0x%llx/%u and size %llu, the driver L1 0x%llx/%u and size %llu",
				k->h.l1_off, k->h.l1_size, k->h.size,
				img->hdr->l1_table_offset, img->hdr->l1_size,
				img->hdr->size);
		if (k->h.snap_off != img->hdr->snapshots_offset ||
		    k->h.nb_snap != img->hdr->nb_snapshots)
			qwt_err(k, "the file's header has %u snapshots at 0x%llx, the driver %u at 0x%llx",
				k->h.nb_snap, k->h.snap_off, img->hdr->nb_snapshots,
				img->hdr->snapshots_offset);
		if (img->layer->size != img->hdr->size)
			qwt_err(k, "the layer presents %llu bytes, the header says %llu",
				img->layer->size, img->hdr->size);
		k->h.l1_size = img->hdr->l1_size;
		k->h.l1_off = img->hdr->l1_table_offset;
		k->h.rt_off = img->hdr->refcount_table_offset;
		k->h.rt_clusters = img->hdr->refcount_table_clusters;
		k->l1 = img->l1;
		k->rt = img->reftable;
		k->rt_entries = img->reftable_entries;
		/* Past nb_clusters everything is free: look a little beyond. */
		k->n = max3(k->n, img->nb_clusters,
			    DIV64_U64_ROUND_UP(READ_ONCE(img->file_size), k->h.cs)) + 8;
	} else {
		k->l1 = (const void *)(k->f->buf + k->h.l1_off);
		k->rt = (const void *)(k->f->buf + k->h.rt_off);
		k->rt_entries = (u64)k->h.rt_clusters * k->h.cs / 8;
		k->stale = k->h.incompat & QCOW2_INCOMPAT_DIRTY;
		if (k->stale && mode == QWT_CLEAN)
			qwt_err(k, "the dirty bit is set");
	}
	k->exp = kvcalloc(k->n, sizeof(*k->exp), GFP_KERNEL);
	k->kind = kvzalloc(k->n, GFP_KERNEL);
	k->l2 = kvmalloc(k->h.cs, GFP_KERNEL);
	if (!k->exp || !k->kind || !k->l2) {
		qwt_err(k, "out of memory");
		goto out;
	}

	if ((u64)k->h.l1_size * k->h.l2_entries < DIV64_U64_ROUND_UP(k->h.size, k->h.cs))
		qwt_err(k, "%u L1 entries do not cover %llu bytes", k->h.l1_size, k->h.size);
	qwt_walk(k);
	if (mode == QWT_MEM) {
		/* A queued free is a reference until the next flush. */
		for (i = 0; i < img->nr_frees; i++)
			for (c = img->frees[i].start;
			     c < img->frees[i].start + img->frees[i].nr && c < k->n; c++)
				k->exp[c]++;
	}
	if (!k->stale)
		qwt_compare_all(k);
	k->copied_pass = true;
	qwt_walk(k);
out:
	if (k->img)
		mutex_unlock(&img->meta_lock);
	t->leaked = k->leaked;
	ok = !k->errors;
	if (k->errors > QWT_MAX_ERRORS)
		KUNIT_FAIL(t->test, "%s: %s: %u more problems", t->step,
			   qwt_mode_names[mode], k->errors - QWT_MAX_ERRORS);
	kvfree(k->l2);
	kvfree(k->kind);
	kvfree(k->exp);
	kfree(k);
	return ok;
}

/* --- the guest model ------------------------------------------------------------ */

static int qwt_read(struct qwt *t, u64 pos, u64 len, u8 *buf)
{
	struct iov_iter iter;
	struct kvec kv;
	u64 n;
	int err;

	while (len) {
		n = min_t(u64, len, QWT_CHUNK);
		kv.iov_base = buf;
		kv.iov_len = n;
		iov_iter_kvec(&iter, READ, &kv, 1, n);
		err = qcow_layer_read(&t->top->l, pos, &iter, n);
		if (err)
			return err;
		if (iov_iter_count(&iter))
			return -EFAULT;
		pos += n;
		buf += n;
		len -= n;
	}
	return 0;
}

/* [pos, pos + len) of the disk reads as the model says. */
static bool qwt_verify_range(struct qwt *t, u64 pos, u64 len)
{
	u64 i, bad = 0, first = 0, end = min(pos + len, t->vsize);
	int err;

	if (pos >= end)
		return true;
	err = qwt_read(t, pos, end - pos, t->rbuf + pos);
	if (err) {
		KUNIT_FAIL(t->test, "%s: read: %d", t->step, err);
		return false;
	}
	if (!memcmp(t->rbuf + pos, t->model + pos, end - pos))
		return true;
	for (i = pos; i < end; i++) {
		if (t->rbuf[i] == t->model[i])
			continue;
		if (!bad++)
			first = i;
	}
	if (bad)
		KUNIT_FAIL(t->test, "%s: %llu bytes differ, first at 0x%llx: 0x%02x, want 0x%02x",
			   t->step, bad, first, t->rbuf[first], t->model[first]);
	return !bad;
}

/* The whole disk reads as the model says. */
static bool qwt_verify(struct qwt *t)
{
	t->touched_len = 0;
	return qwt_verify_range(t, 0, t->vsize);
}

/*
 * The driver's state, the file and the guest's view after a step.  The
 * guest's view is read back whole for small disks and every few steps,
 * else around what the steps since the last full read touched.
 */
static bool qwt_check(struct qwt *t)
{
	struct qcow_image *img = qwt_img(t);
	u64 pos = t->touched_pos, len = t->touched_len;
	bool ok = true;

	/* Stopped: memory may describe a header the file does not hold. */
	if (!atomic_read(&img->stopped))
		ok = qwt_chk(t, QWT_MEM);
	ok &= qwt_chk(t, QWT_DISK);
	if (t->vsize <= QWT_FULL_VERIFY || !(++t->checks % 8) || !len)
		return qwt_verify(t) && ok;
	/* One cluster around it: a neighbour written by mistake shows. */
	pos = pos > t->cs ? pos - t->cs : 0;
	return qwt_verify_range(t, pos, len + 2 * t->cs) && ok;
}

/* Remember what a request touched, for qwt_check(). */
static void qwt_touch(struct qwt *t, u64 pos, u64 len)
{
	u64 end;

	if (!t->touched_len) {
		t->touched_pos = pos;
		t->touched_len = len;
		return;
	}
	end = max(t->touched_pos + t->touched_len, pos + len);
	t->touched_pos = min(t->touched_pos, pos);
	t->touched_len = end - t->touched_pos;
}

/*
 * After a request that may have been applied in part: every @unit of
 * [pos, pos + len) reads either as before or as @src (zeros when NULL)
 * wanted; the model takes what reads.
 */
static bool qwt_adopt(struct qwt *t, u64 pos, u64 len, const u8 *src, u64 unit)
{
	u64 end = min(pos + len, t->vsize), a, b, i;
	bool old, now;
	int err;

	if (pos >= end)
		return true;
	err = qwt_read(t, pos, end - pos, t->rbuf + pos);
	if (err) {
		KUNIT_FAIL(t->test, "%s: read: %d", t->step, err);
		return false;
	}
	for (a = pos; a < end; a = b) {
		b = min(round_down(a, unit) + unit, end);
		old = !memcmp(t->rbuf + a, t->model + a, b - a);
		now = true;
		for (i = a; i < b && now; i++)
			now = t->rbuf[i] == (src ? src[i - pos] : 0);
		if (!old && !now) {
			KUNIT_FAIL(t->test, "%s: [0x%llx, 0x%llx) reads neither old nor new",
				   t->step, a, b);
			return false;
		}
	}
	memcpy(t->model + pos, t->rbuf + pos, end - pos);
	return true;
}

/* --- operations: applied to the image and to the model ------------------------ */

static int qwt_write(struct qwt *t, u64 pos, u64 len, bool fua)
{
	struct iov_iter iter;
	struct kvec kv;
	u64 end;
	int err;

	if (len > t->wbuf_len) {
		kvfree(t->wbuf);
		t->wbuf = kvmalloc(len, GFP_KERNEL);
		t->wbuf_len = t->wbuf ? len : 0;
		KUNIT_ASSERT_NOT_NULL(t->test, t->wbuf);
	}
	qwt_fill(++t->seed, pos, t->wbuf, len);
	qwt_touch(t, pos, len);
	kv.iov_base = t->wbuf;
	kv.iov_len = len;
	iov_iter_kvec(&iter, WRITE, &kv, 1, len);
	err = qcow_layer_write(&t->top->l, pos, &iter, len, fua);
	qwt_quiesce(t);
	end = min(pos + len, t->vsize);
	if (err) {
		qwt_adopt(t, pos, len, t->wbuf, 1);
		return err;
	}
	KUNIT_EXPECT_EQ_MSG(t->test, iov_iter_count(&iter), 0UL,
			    "%s: iterator not advanced", t->step);
	if (pos < end)
		memcpy(t->model + pos, t->wbuf, end - pos);
	return 0;
}

/* Whether a discarded unit reads as zeros (else it keeps its data). */
static bool qwt_discard_zeroes(const struct qwt *t)
{
	/* Version 2 has no zero flag: with a backing file, nothing changes. */
	return t->geo->version >= 3 || !t->back;
}

static int qwt_zero(struct qwt *t, u64 pos, u64 len, bool discard, bool unmap)
{
	u64 end = min(pos + len, t->vsize), a, b;
	int err;

	err = qcow_layer_zero(&t->top->l, pos, len, discard, unmap);
	qwt_quiesce(t);
	qwt_touch(t, pos, len);
	if (err) {
		qwt_adopt(t, pos, len, NULL, 1);
		return err;
	}
	if (pos >= end)
		return 0;
	if (!discard) {
		memset(t->model + pos, 0, end - pos);
		return 0;
	}
	/* Partial units are kept; whole ones read as zeros or are kept. */
	a = round_up(pos, t->unit);
	b = round_down(end, t->unit);
	if (a >= b)
		return 0;
	if (t->has_comp)	/* a compressed cluster is all or nothing */
		qwt_adopt(t, a, b - a, NULL, t->unit);
	else if (qwt_discard_zeroes(t))
		memset(t->model + a, 0, b - a);
	return 0;
}

/* Flush, then check the file: safe after one flush, exact after two. */
static bool qwt_flush_check(struct qwt *t)
{
	struct qcow_image *img = qwt_img(t);
	bool ok;

	KUNIT_EXPECT_EQ_MSG(t->test, qcow_image_flush(img, true), 0, "%s", t->step);
	ok = qwt_chk(t, QWT_MEM);
	ok &= qwt_chk(t, QWT_DISK);
	KUNIT_EXPECT_EQ_MSG(t->test, qcow_image_flush(img, false), 0, "%s", t->step);
	KUNIT_EXPECT_EQ_MSG(t->test, img->nr_frees, 0U, "%s", t->step);
	ok &= qwt_chk(t, t->geo->lazy ? QWT_DISK : QWT_CLEAN);
	return qwt_verify(t) && ok;
}

/* Close (writing everything back), check the file, reopen, compare. */
static bool qwt_reopen(struct qwt *t)
{
	int err;
	bool ok;

	qwt_close(t);
	ok = qwt_chk(t, QWT_CLEAN);
	err = qwt_open(t);
	KUNIT_EXPECT_EQ_MSG(t->test, err, 0, "%s: reopen", t->step);
	if (err)
		return false;
	return qwt_chk(t, QWT_MEM) && qwt_verify(t) && ok;
}

/*
 * A header write or a flush failed and the image stopped (qcow_image_stop()):
 * writes, discards and flushes fail (every flush, not just the next), reads
 * work, nothing may be written any more, not even at close, and the file
 * must be consistent (leaks allowed) whichever header sector the disk kept:
 * the new or, when no flush succeeded since it was written, the one before
 * it.  Closes the image.
 */
static bool qwt_stopped_check(struct qwt *t)
{
	struct qwt_file *f = t->top;
	struct qcow_image *img = qwt_img(t);
	u8 sector[SECTOR_SIZE];
	unsigned int writes = f->writes;
	bool ok = true;
	int err;

	KUNIT_EXPECT_EQ_MSG(t->test, atomic_read(&img->stopped), 1, "%s", t->step);
	err = qwt_write(t, 0, t->cs, false);
	KUNIT_EXPECT_EQ_MSG(t->test, err, -EIO, "%s: write while stopped", t->step);
	err = qwt_zero(t, t->cs, t->cs, true, true);
	KUNIT_EXPECT_EQ_MSG(t->test, err, -EIO, "%s: discard while stopped", t->step);
	err = qcow_image_flush(img, true);
	KUNIT_EXPECT_EQ_MSG(t->test, err, -EIO, "%s: flush while stopped", t->step);
	err = qcow_image_flush(img, false);
	KUNIT_EXPECT_EQ_MSG(t->test, err, -EIO, "%s: second flush while stopped",
			    t->step);
	ok &= qwt_verify(t);
	qwt_close(t);
	KUNIT_EXPECT_EQ_MSG(t->test, f->writes, writes, "%s: wrote while stopped",
			    t->step);
	ok &= f->writes == writes;
	qwt_step(t, "%s, new header", t->step);
	ok &= qwt_chk(t, QWT_DISK);
	if (!f->hdr_unsure)
		return ok;
	memcpy(sector, f->buf, SECTOR_SIZE);
	memcpy(f->buf, f->hdr_prev, SECTOR_SIZE);
	qwt_step(t, "%s, old header", t->step);
	ok &= qwt_chk(t, QWT_DISK);
	memcpy(f->buf, sector, SECTOR_SIZE);
	return ok;
}

static u64 qwt_mem_rc(struct qwt *t, u64 off)
{
	struct qcow_image *img = qwt_img(t);
	u64 rc = 0;

	mutex_lock(&img->meta_lock);
	KUNIT_EXPECT_EQ(t->test, qcow_refcount_get(img, off >> img->hdr->cluster_bits, &rc), 0);
	mutex_unlock(&img->meta_lock);
	return rc;
}

static u64 qwt_file_rc(struct qwt *t, u64 off)
{
	struct qwt_hdr h;
	u64 rc;

	qwt_hdr_parse(t->top->buf, &h);
	qwt_disk_rc(t->top, &h, off >> h.cb, &rc);
	return rc;
}

static bool qwt_all_zero(const u8 *p, u64 n)
{
	return !n || (!p[0] && !memcmp(p, p + 1, n - 1));
}

/* Checks after a step and after flushing it; the test stops on failure. */
static void qwt_step_ok(struct qwt *t)
{
	KUNIT_ASSERT_TRUE(t->test, qwt_check(t));
	KUNIT_ASSERT_TRUE(t->test, qwt_flush_check(t));
}

#define QWT_GEO(n, v, cb, ro, e, lz, sz, bk)				\
	{ .name = n, .version = v, .cluster_bits = cb,			\
	  .refcount_order = ro, .ext = e, .lazy = lz, .size = sz,	\
	  .backing = bk }

static void qwt_geo_desc(const struct qwt_geo *g, char *desc)
{
	strscpy(desc, g->name, KUNIT_PARAM_DESC_SIZE);
}

/* --- allocation into an empty image -------------------------------------------- */

#define QWT_ALLOC(cb, ro, sz) \
	QWT_GEO("c" #cb "-r" #ro, 3, cb, ro, false, false, sz, 0)

static const struct qwt_geo qwt_alloc_geos[] = {
	QWT_ALLOC(9, 0, SZ_256K), QWT_ALLOC(9, 1, SZ_256K), QWT_ALLOC(9, 2, SZ_256K),
	QWT_ALLOC(9, 3, SZ_256K), QWT_ALLOC(9, 4, SZ_256K), QWT_ALLOC(9, 5, SZ_256K),
	QWT_ALLOC(9, 6, SZ_256K),
	QWT_ALLOC(12, 0, SZ_1M), QWT_ALLOC(12, 1, SZ_1M), QWT_ALLOC(12, 2, SZ_1M),
	QWT_ALLOC(12, 3, SZ_1M), QWT_ALLOC(12, 4, SZ_1M), QWT_ALLOC(12, 5, SZ_1M),
	QWT_ALLOC(12, 6, SZ_1M),
	QWT_ALLOC(16, 0, SZ_2M), QWT_ALLOC(16, 1, SZ_2M), QWT_ALLOC(16, 2, SZ_2M),
	QWT_ALLOC(16, 3, SZ_2M), QWT_ALLOC(16, 4, SZ_2M), QWT_ALLOC(16, 5, SZ_2M),
	QWT_ALLOC(16, 6, SZ_2M),
};

KUNIT_ARRAY_PARAM(qwt_alloc, qwt_alloc_geos, qwt_geo_desc);

/*
 * Fill an empty image: the first clusters go right after the layout,
 * nothing is left unused while nothing was freed, every refcount block
 * sits at the start of its own range, overwrites allocate nothing and
 * change no metadata, and discarded clusters are reused before the file
 * grows.
 */
static void qcow_write_alloc(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	struct qcow_image *img = qwt_img(t);
	u64 cs = t->cs, half = t->vsize / 2, n0 = t->top->len / cs;
	u64 pos, len, c, nb, flen, ri, e, word, bitmap;
	struct qwt_hdr h;

	qwt_step(t, "first sector");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, 512, false), 0);
	qwt_step_ok(t);
	qwt_hdr_parse(t->top->buf, &h);
	KUNIT_EXPECT_EQ(test, get_unaligned_be64(t->top->buf + h.l1_off),
			(n0 * cs) | QCOW2_OFLAG_COPIED);
	KUNIT_EXPECT_EQ(test, qwt_disk_host(t->top, 0), (n0 + 1) * cs);
	KUNIT_EXPECT_EQ(test, img->nb_clusters, n0 + 2);

	for (pos = 512; pos < half; pos += len) {
		len = min(half - pos, 3 * cs + cs / 2);
		qwt_step(t, "sequential write 0x%llx+0x%llx", pos, len);
		KUNIT_ASSERT_EQ(test, qwt_write(t, pos, len, false), 0);
		KUNIT_ASSERT_TRUE(test, qwt_check(t));
	}
	for (c = half / cs; c < t->vsize / cs; c += 3) {
		pos = c * cs + (c * 512) % cs;
		qwt_step(t, "sector in cluster %llu", c);
		KUNIT_ASSERT_EQ(test, qwt_write(t, pos, 512, false), 0);
		KUNIT_ASSERT_TRUE(test, qwt_check(t));
	}
	qwt_step(t, "filled");
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));

	/* Nothing was freed: every cluster below the end is in use, once. */
	for (c = 0; c < img->nb_clusters; c++)
		KUNIT_ASSERT_EQ_MSG(test, qwt_file_rc(t, c * cs), 1ULL, "cluster %llu", c);
	/* Past the allocation end, the file is the hole qcow_file_ahead() adds. */
	flen = t->top->len;
	KUNIT_EXPECT_GE(test, flen, img->nb_clusters * cs);
	if (flen > img->nb_clusters * cs) {
		KUNIT_EXPECT_EQ(test, flen, img->file_ahead);
		KUNIT_EXPECT_NULL(test, memchr_inv(t->top->buf + img->nb_clusters * cs,
						   0, flen - img->nb_clusters * cs));
	}
	qwt_hdr_parse(t->top->buf, &h);
	for (ri = 1; ri < h.cs / 8; ri++) {
		e = get_unaligned_be64(t->top->buf + h.rt_off + ri * 8);
		if (e)
			KUNIT_EXPECT_EQ_MSG(test, e, (ri << h.rb_bits) * cs,
					    "refcount block %llu", ri);
		else
			KUNIT_EXPECT_GE(test, ri << h.rb_bits, img->nb_clusters);
	}

	nb = img->nb_clusters;
	flen = t->top->len;
	qwt_step(t, "overwrite the first half");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, half, false), 0);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	KUNIT_EXPECT_EQ(test, img->nb_clusters, nb);
	KUNIT_EXPECT_EQ(test, t->top->len, flen);
	KUNIT_EXPECT_EQ(test, qcow_cache_nr_dirty(img->cache), 0U);
	KUNIT_EXPECT_EQ(test, qcow_cache_nr_dirty(img->rcache), 0U);
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
	img = qwt_img(t);
	/* Detach trimmed the hole: the file ends at the allocation end. */
	KUNIT_EXPECT_EQ(test, t->top->len, nb * cs);

	qwt_step(t, "discard everything");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 0, t->vsize, true, true), 0);
	qwt_step_ok(t);
	for (c = 0; c < t->vsize / cs; c++) {
		qwt_disk_l2e(t->top, c, &word, &bitmap);
		KUNIT_ASSERT_EQ_MSG(test, word, 0ULL, "guest cluster %llu", c);
	}
	nb = img->nb_clusters;
	qwt_step(t, "rewrite after discard");
	KUNIT_ASSERT_EQ(test, qwt_write(t, cs, 8 * cs, false), 0);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ(test, img->nb_clusters, nb);
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
}

/* --- refcount table growth ----------------------------------------------------- */

static const struct qwt_geo qwt_grow_geos[] = {
	/* 64 entries of 64 clusters: the table first moves at 2 MiB of file. */
	QWT_GEO("c512-r6", 3, 9, 6, false, false, 3 * SZ_1M, 0),
	QWT_GEO("c512-r6-twice-backing", 3, 9, 6, false, false, 5 * SZ_1M, SZ_64K),
};

KUNIT_ARRAY_PARAM(qwt_grow, qwt_grow_geos, qwt_geo_desc);

/* --- online resize ------------------------------------------------------------- */

static const struct qwt_geo qwt_online_geos[] = {
	/* New L1 tables far longer than one refcount block's range. */
	QWT_GEO("c512-r4", 3, 9, 4, false, false, SZ_2M, 0),
	QWT_GEO("c512-r6", 3, 9, 6, false, false, SZ_2M, 0),
	QWT_GEO("c512-r0", 3, 9, 0, false, false, SZ_2M, 0),
	QWT_GEO("c4k-r4-lazy", 3, 12, 4, false, true, SZ_4M, 0),
	QWT_GEO("c64k-r4", 3, 16, 4, false, false, SZ_4M, 0),
};

KUNIT_ARRAY_PARAM(qwt_online, qwt_online_geos, qwt_geo_desc);

static int qwt_online_resize(struct qwt *t, u64 size)
{
	struct qcow_image *img = qwt_img(t);
	int err;

	err = qcow_image_flush(img, true);
	if (err)
		return err;
	mutex_lock(&img->meta_lock);
	err = qcow_image_resize(img, size);
	mutex_unlock(&img->meta_lock);
	qwt_quiesce(t);
	return err;
}

/*
 * Grow the disk in steps, the last to 1 GiB: the L1 table grows and moves
 * (with 512-byte clusters to 256 KiB, across many refcount block ranges,
 * whose blocks are created outside the table), the data stays, the file is
 * exact after a flush and after a reopen; shrinking and unaligned sizes
 * are refused without a change.
 */
static void qcow_write_resize(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	static const u64 sizes[] = { SZ_8M, SZ_64M, SZ_1G };
	struct qcow_image *img;
	unsigned int i;
	u64 l1_off;

	qwt_step(t, "prefill");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, 3 * t->cs, false), 0);
	KUNIT_ASSERT_EQ(test, qwt_write(t, t->vsize - t->cs, t->cs, false), 0);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	img = qwt_img(t);
	KUNIT_EXPECT_EQ(test, qwt_online_resize(t, t->vsize - SZ_1M), -EINVAL);
	KUNIT_EXPECT_EQ(test, qwt_online_resize(t, t->vsize + 100), -EINVAL);
	KUNIT_EXPECT_EQ(test, img->hdr->size, t->vsize);
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		qwt_step(t, "resize to %llu", sizes[i]);
		l1_off = img->hdr->l1_table_offset;
		KUNIT_ASSERT_EQ_MSG(test, qwt_online_resize(t, sizes[i]), 0, "%s", t->step);
		KUNIT_EXPECT_EQ(test, img->hdr->size, sizes[i]);
		KUNIT_EXPECT_GE(test, (u64)img->hdr->l1_size,
				qcow2_l1_entries_needed(sizes[i], g->cluster_bits, false));
		if (img->hdr->l1_size * 8ULL > t->cs)
			KUNIT_EXPECT_NE(test, img->hdr->l1_table_offset, l1_off);
		KUNIT_ASSERT_TRUE(test, qwt_check(t));
		KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
		/* The data written before is still there (the model's range). */
		KUNIT_ASSERT_EQ(test, qwt_write(t, t->cs, t->cs, false), 0);
		KUNIT_ASSERT_TRUE(test, qwt_check(t));
	}
	qwt_step(t, "reopen");
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
	KUNIT_EXPECT_EQ(test, qwt_img(t)->hdr->size, SZ_1G);
}

static void qcow_write_reftable_grow(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	struct qcow_image *img = qwt_img(t);
	unsigned int grows = 0, step = 0, punches;
	u64 pos, len = SZ_64K;
	struct qwt_hdr h0, h;

	qwt_hdr_parse(t->top->buf, &h0);
	for (pos = 0; pos < t->vsize; pos += len, step++) {
		punches = t->top->punches;
		qwt_step(t, "write 0x%llx+0x%llx", pos + 100, len);
		KUNIT_ASSERT_EQ(test, qwt_write(t, pos + 100, len, false), 0);
		KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_MEM));
		KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_DISK));
		if (step % 16 == 15)
			KUNIT_ASSERT_TRUE(test, qwt_verify(t));
		qwt_hdr_parse(t->top->buf, &h);
		if (h.rt_off == h0.rt_off)
			continue;
		/* The header switched to a larger table; the old one was punched. */
		grows++;
		KUNIT_EXPECT_GT(test, h.rt_clusters, h0.rt_clusters);
		KUNIT_EXPECT_EQ(test, img->hdr->refcount_table_offset, h.rt_off);
		KUNIT_EXPECT_EQ(test, img->reftable_entries, (u64)h.rt_clusters * h.cs / 8);
		KUNIT_EXPECT_GT(test, t->top->punches, punches);
		KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
		h0 = h;
	}
	KUNIT_EXPECT_EQ(test, grows, g->size > 4 * SZ_1M ? 2U : 1U);
	qwt_step(t, "filled");
	KUNIT_ASSERT_TRUE(test, qwt_verify(t));
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
}

/* --- copy-on-write over a backing file ----------------------------------------- */

static const struct qwt_geo qwt_cow_geos[] = {
	QWT_GEO("c512", 3, 9, 4, false, false, SZ_64K, SZ_64K),
	QWT_GEO("c4k", 3, 12, 4, false, false, SZ_256K, SZ_256K),
	QWT_GEO("c64k", 3, 16, 4, false, false, SZ_1M, SZ_1M),
	QWT_GEO("c4k-v2", 2, 12, 4, false, false, SZ_256K, SZ_256K),
	QWT_GEO("c4k-short-backing", 3, 12, 4, false, false, SZ_256K, 10000),
	QWT_GEO("c16k-ext", 3, 14, 4, true, false, SZ_512K, SZ_512K),
	QWT_GEO("c64k-ext", 3, 16, 4, true, false, SZ_1M, SZ_1M),
	QWT_GEO("c64k-ext-short-backing", 3, 16, 4, true, false, SZ_1M, 100000),
};

KUNIT_ARRAY_PARAM(qwt_cow, qwt_cow_geos, qwt_geo_desc);

/*
 * Partial-cluster writes: the new cluster holds the backing file's bytes
 * around the guest data; with extended L2 entries only the subclusters
 * written are allocated, and the rest of the host cluster is never
 * written.
 */
static void qcow_write_cow_backing(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	u64 cs = t->cs, ss = t->unit, ncl = t->vsize / cs;
	const u64 w[][2] = {
		{ cs / 2 - 100, 200 },
		{ 3 * cs - 700, 1400 },
		{ 5 * cs, cs / 3 },
		{ 8 * cs - 300, 300 },
		{ 10 * cs + 17, 3 * cs },
		{ 14 * cs + cs / 4, 1 },
	};
	u64 i, p, e, gc, host, word, bitmap, s;
	u32 *mask;

	mask = kunit_kcalloc(test, ncl, sizeof(*mask), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, mask);
	for (i = 0; i < ARRAY_SIZE(w); i++) {
		qwt_step(t, "write 0x%llx+0x%llx", w[i][0], w[i][1]);
		KUNIT_ASSERT_EQ(test, qwt_write(t, w[i][0], w[i][1], false), 0);
		KUNIT_ASSERT_TRUE(test, qwt_check(t));
		for (p = w[i][0]; p < w[i][0] + w[i][1]; p = e) {
			gc = p / cs;
			e = min(w[i][0] + w[i][1], (gc + 1) * cs);
			mask[gc] |= GENMASK((u32)((e - 1) % cs / ss), (u32)(p % cs / ss));
		}
	}
	qwt_step(t, "written");
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	for (gc = 0; gc < ncl; gc++) {
		qwt_disk_l2e(t->top, gc, &word, &bitmap);
		if (!mask[gc]) {
			KUNIT_EXPECT_EQ_MSG(test, word, 0ULL, "guest cluster %llu", gc);
			continue;
		}
		host = word & QCOW2_L2E_OFFSET_MASK;
		KUNIT_ASSERT_EQ_MSG(test, word, host | QCOW2_OFLAG_COPIED,
				    "guest cluster %llu", gc);
		KUNIT_ASSERT_NE(test, host, 0ULL);
		if (!g->ext) {
			KUNIT_EXPECT_EQ_MSG(test, memcmp(t->top->buf + host,
							 t->model + gc * cs, cs), 0,
					    "host cluster of guest cluster %llu", gc);
			continue;
		}
		KUNIT_EXPECT_EQ_MSG(test, bitmap, (u64)mask[gc], "guest cluster %llu", gc);
		for (s = 0; s < 32; s++) {
			if (mask[gc] & BIT(s))
				KUNIT_EXPECT_EQ_MSG(test,
						    memcmp(t->top->buf + host + s * ss,
							   t->model + gc * cs + s * ss, ss), 0,
						    "guest cluster %llu subcluster %llu", gc, s);
			else
				KUNIT_EXPECT_TRUE_MSG(test,
						      qwt_all_zero(t->top->buf + host + s * ss, ss),
						      "guest cluster %llu subcluster %llu written",
						      gc, s);
		}
	}
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
}

/* --- extended L2: subclusters ---------------------------------------------------- */

static const struct qwt_geo qwt_sub_geos[] = {
	QWT_GEO("c64k", 3, 16, 4, true, false, SZ_1M, 0),
	QWT_GEO("c64k-backing", 3, 16, 4, true, false, SZ_1M, SZ_1M),
	QWT_GEO("c16k", 3, 14, 4, true, false, SZ_256K, 0),
	QWT_GEO("c16k-backing", 3, 14, 4, true, false, SZ_256K, SZ_256K),
};

KUNIT_ARRAY_PARAM(qwt_sub, qwt_sub_geos, qwt_geo_desc);

/* The bitmaps of guest cluster @g in the file; returns its host offset. */
static u64 qwt_expect_sc(struct qwt *t, u64 g, u32 alloc, u32 zero)
{
	u64 word, bitmap;

	qwt_disk_l2e(t->top, g, &word, &bitmap);
	KUNIT_EXPECT_EQ_MSG(t->test, bitmap, (u64)zero << 32 | alloc,
			    "%s: guest cluster %llu: alloc 0x%08x zero 0x%08x",
			    t->step, g, lower_32_bits(bitmap), upper_32_bits(bitmap));
	return word & QCOW2_L2E_OFFSET_MASK;
}

static void qcow_write_subclusters(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	struct qcow_image *img = qwt_img(t);
	u64 cs = t->cs, ss = t->unit, h0, h1, nb;
	u32 a0, zb = g->backing ? U32_MAX : 0;

	qwt_step(t, "part of subcluster 3");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 3 * ss + 100, 100, false), 0);
	qwt_step_ok(t);
	a0 = BIT(3);
	h0 = qwt_expect_sc(t, 0, a0, 0);
	KUNIT_ASSERT_NE(test, h0, 0ULL);
	/* Only subcluster 3 was written in the new host cluster. */
	KUNIT_EXPECT_TRUE(test, qwt_all_zero(t->top->buf + h0, 3 * ss));

	qwt_step(t, "subclusters 5-6 of the same cluster");
	nb = img->nb_clusters;
	KUNIT_ASSERT_EQ(test, qwt_write(t, 5 * ss, 2 * ss, false), 0);
	qwt_step_ok(t);
	a0 |= BIT(5) | BIT(6);
	KUNIT_EXPECT_EQ(test, qwt_expect_sc(t, 0, a0, 0), h0);
	KUNIT_EXPECT_EQ(test, img->nb_clusters, nb);

	qwt_step(t, "across clusters 0 and 1");
	KUNIT_ASSERT_EQ(test, qwt_write(t, cs - ss / 2, ss, false), 0);
	qwt_step_ok(t);
	a0 |= BIT(31);
	KUNIT_EXPECT_EQ(test, qwt_expect_sc(t, 0, a0, 0), h0);
	h1 = qwt_expect_sc(t, 1, BIT(0), 0);

	/* Without a backing file, unallocated reads as zeros: no zero flag. */
	qwt_step(t, "write-zeroes subcluster 3");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 3 * ss, ss, false, true), 0);
	qwt_step_ok(t);
	a0 &= ~BIT(3);
	KUNIT_EXPECT_EQ(test, qwt_expect_sc(t, 0, a0, BIT(3) & zb), h0);

	qwt_step(t, "part of the zeroed subcluster 3");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 3 * ss + 10, 20, false), 0);
	qwt_step_ok(t);
	a0 |= BIT(3);
	KUNIT_EXPECT_EQ(test, qwt_expect_sc(t, 0, a0, 0), h0);

	qwt_step(t, "discard cluster 1");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, cs, cs, true, true), 0);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ(test, qwt_expect_sc(t, 1, 0, zb), 0ULL);
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, h1), 0ULL);

	qwt_step(t, "write-zeroes subcluster 6, no unmap");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 6 * ss, ss, false, false), 0);
	qwt_step_ok(t);
	a0 &= ~BIT(6);
	KUNIT_EXPECT_EQ(test, qwt_expect_sc(t, 0, a0, BIT(6) & zb), h0);

	qwt_step(t, "whole cluster 2");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 2 * cs, cs, false), 0);
	qwt_step_ok(t);
	qwt_expect_sc(t, 2, U32_MAX, 0);

	qwt_step(t, "discard cluster 0");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 0, cs, true, true), 0);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ(test, qwt_expect_sc(t, 0, 0, zb), 0ULL);
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, h0), 0ULL);
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
}

/* --- discard and write-zeroes ----------------------------------------------------- */

/* 16 clusters: of 4 KiB, or of 64 KiB with extended L2 entries. */
#define QWT_Z4K(n, v, bk)	QWT_GEO(n, v, 12, 4, false, false, SZ_64K, bk)
#define QWT_Z64K(n, bk)		QWT_GEO(n, 3, 16, 4, true, false, SZ_1M, bk)

static const struct qwt_geo qwt_discard_geos[] = {
	QWT_Z4K("v3", 3, 0),
	QWT_Z4K("v3-backing", 3, SZ_64K),
	QWT_Z4K("v2", 2, 0),
	QWT_Z4K("v2-backing", 2, SZ_64K),
	QWT_Z64K("ext", 0),
	QWT_Z64K("ext-backing", SZ_1M),
};

KUNIT_ARRAY_PARAM(qwt_discard, qwt_discard_geos, qwt_geo_desc);

/* Write the whole disk and return the host cluster of every guest cluster. */
static void qwt_fill_disk(struct qwt *t, u64 *host)
{
	u64 gc;

	qwt_step(t, "fill");
	KUNIT_ASSERT_EQ(t->test, qwt_write(t, 0, t->vsize, false), 0);
	qwt_step_ok(t);
	for (gc = 0; gc < t->vsize / t->cs; gc++) {
		host[gc] = qwt_disk_host(t->top, gc);
		KUNIT_ASSERT_NE(t->test, host[gc], 0ULL);
	}
}

/*
 * A range with partial units at both ends: clusters 9 and 10 whole, and
 * with extended L2 also subclusters 2-31 of cluster 8 and 0-2 of cluster
 * 11.
 */
static u64 qwt_part_pos(const struct qwt *t)
{
	return 8 * t->cs + (t->geo->ext ? t->unit : 0) + 100;
}

static u64 qwt_part_len(const struct qwt *t)
{
	return 11 * t->cs + (t->geo->ext ? 3 * t->unit : 0) + 7 - qwt_part_pos(t);
}

static void qcow_write_discard(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	struct qcow_image *img = qwt_img(t);
	u64 cs = t->cs, host[16], gc, word, bitmap, nb, flen;
	u64 zword = g->version >= 3 && !g->ext && g->backing ? QCOW2_OFLAG_ZERO : 0;
	u64 zbits = g->ext && g->backing ? (u64)U32_MAX << 32 : 0;
	bool freed = qwt_discard_zeroes(t);
	unsigned int punches;

	qwt_fill_disk(t, host);
	punches = t->top->punches;
	qwt_step(t, "discard clusters 2-5");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 2 * cs, 4 * cs, true, true), 0);
	qwt_step_ok(t);
	for (gc = 2; gc < 6; gc++) {
		qwt_disk_l2e(t->top, gc, &word, &bitmap);
		if (!freed) {
			KUNIT_EXPECT_EQ(test, word, host[gc] | QCOW2_OFLAG_COPIED);
			KUNIT_EXPECT_EQ(test, qwt_file_rc(t, host[gc]), 1ULL);
			continue;
		}
		KUNIT_EXPECT_EQ_MSG(test, word, zword, "guest cluster %llu", gc);
		KUNIT_EXPECT_EQ_MSG(test, bitmap, zbits, "guest cluster %llu", gc);
		KUNIT_EXPECT_EQ_MSG(test, qwt_file_rc(t, host[gc]), 0ULL, "guest cluster %llu", gc);
		KUNIT_EXPECT_TRUE_MSG(test, qwt_all_zero(t->top->buf + host[gc], cs),
				      "host cluster of guest cluster %llu not punched", gc);
	}
	if (freed)
		KUNIT_EXPECT_GT(test, t->top->punches, punches);
	else
		KUNIT_EXPECT_EQ(test, t->top->punches, punches);

	qwt_step(t, "discard with partial units at both ends");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, qwt_part_pos(t), qwt_part_len(t), true, true), 0);
	qwt_step_ok(t);
	if (!g->ext) {
		/* Clusters 9 and 10 only. */
		KUNIT_EXPECT_EQ(test, qwt_disk_host(t->top, 8), host[8]);
		KUNIT_EXPECT_EQ(test, qwt_disk_host(t->top, 11), host[11]);
		KUNIT_EXPECT_EQ(test, qwt_disk_host(t->top, 9), freed ? 0 : host[9]);
	} else {
		/* Subclusters 2-31 of cluster 8, 9 and 10, 0-2 of cluster 11. */
		KUNIT_EXPECT_EQ(test, qwt_expect_sc(t, 8, 3, g->backing ? ~3U : 0), host[8]);
		KUNIT_EXPECT_EQ(test, qwt_expect_sc(t, 9, 0, zbits >> 32), 0ULL);
		KUNIT_EXPECT_EQ(test, qwt_expect_sc(t, 11, ~7U, g->backing ? 7 : 0), host[11]);
	}

	/* The freed clusters are reused before the file grows. */
	nb = img->nb_clusters;
	flen = t->top->len;
	qwt_step(t, "rewrite clusters 2-5");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 2 * cs, 4 * cs, false), 0);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ(test, img->nb_clusters, nb);
	KUNIT_EXPECT_EQ(test, t->top->len, flen);
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
}

/**
 * struct qwt_zero_case - a write-zeroes case
 * @name: parameter name
 * @geo: the image
 * @unmap: the request may deallocate
 */
struct qwt_zero_case {
	const char *name;
	struct qwt_geo geo;
	bool unmap;
};

static const struct qwt_zero_case qwt_zero_cases[] = {
	{ "v3-unmap", QWT_Z4K(NULL, 3, 0), true },
	{ "v3-keep", QWT_Z4K(NULL, 3, 0), false },
	{ "v3-backing-unmap", QWT_Z4K(NULL, 3, SZ_64K), true },
	{ "v3-backing-keep", QWT_Z4K(NULL, 3, SZ_64K), false },
	{ "v2-unmap", QWT_Z4K(NULL, 2, 0), true },
	{ "v2-backing-keep", QWT_Z4K(NULL, 2, SZ_64K), false },
	{ "ext-unmap", QWT_Z64K(NULL, 0), true },
	{ "ext-keep", QWT_Z64K(NULL, 0), false },
	{ "ext-backing-unmap", QWT_Z64K(NULL, SZ_1M), true },
	{ "ext-backing-keep", QWT_Z64K(NULL, SZ_1M), false },
};

static void qwt_zero_desc(const struct qwt_zero_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qwt_zero, qwt_zero_cases, qwt_zero_desc);

static void qcow_write_zeroes(struct kunit *test)
{
	const struct qwt_zero_case *zc = test->param_value;
	const struct qwt_geo *g = &zc->geo;
	struct qwt *t = qwt_new(test, g, false);
	u64 cs = t->cs, host[16], gc, word, bitmap, want, rc;

	qwt_fill_disk(t, host);
	qwt_step(t, "write-zeroes clusters 2-5");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 2 * cs, 4 * cs, false, zc->unmap), 0);
	qwt_step_ok(t);
	for (gc = 2; gc < 6; gc++) {
		qwt_disk_l2e(t->top, gc, &word, &bitmap);
		rc = qwt_file_rc(t, host[gc]);
		if (g->version < 3 && g->backing) {
			/* No zero flag: zeros written in place. */
			KUNIT_EXPECT_EQ(test, word, host[gc] | QCOW2_OFLAG_COPIED);
			KUNIT_EXPECT_TRUE(test, qwt_all_zero(t->top->buf + host[gc], cs));
			KUNIT_EXPECT_EQ(test, rc, 1ULL);
			continue;
		}
		/*
		 * Kept (no unmap) or released; zero flags only where the
		 * backing file would show through (standard L2 entries keep
		 * a preallocated cluster as ZERO_ALLOC).
		 */
		want = zc->unmap ? 0 : host[gc] | QCOW2_OFLAG_COPIED;
		if (!g->ext && (!zc->unmap || g->backing))
			want |= QCOW2_OFLAG_ZERO;
		KUNIT_EXPECT_EQ_MSG(test, word, want, "guest cluster %llu", gc);
		KUNIT_EXPECT_EQ_MSG(test, bitmap, g->ext && g->backing ? (u64)U32_MAX << 32 : 0,
				    "guest cluster %llu", gc);
		KUNIT_EXPECT_EQ_MSG(test, rc, zc->unmap ? 0ULL : 1ULL, "guest cluster %llu", gc);
		if (zc->unmap)
			KUNIT_EXPECT_TRUE(test, qwt_all_zero(t->top->buf + host[gc], cs));
	}

	qwt_step(t, "write-zeroes with partial units at both ends");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, qwt_part_pos(t), qwt_part_len(t), false,
				       zc->unmap), 0);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ(test, qwt_disk_host(t->top, 8), host[8]);
	KUNIT_EXPECT_EQ(test, qwt_disk_host(t->top, 11), host[11]);

	qwt_step(t, "write into zeroed cluster 3");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 3 * cs + 100, 200, false), 0);
	qwt_step_ok(t);
	qwt_disk_l2e(t->top, 3, &word, &bitmap);
	KUNIT_EXPECT_TRUE(test, word & QCOW2_OFLAG_COPIED);
	KUNIT_EXPECT_FALSE(test, word & QCOW2_OFLAG_ZERO);
	if (!zc->unmap)		/* the preallocated cluster is reused */
		KUNIT_EXPECT_EQ(test, word & QCOW2_L2E_OFFSET_MASK, host[3]);
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
}

/* --- lazy refcounts and header bits -------------------------------------------- */

static const struct qwt_geo qwt_lazy_geo =
	QWT_GEO("lazy", 3, 12, 4, false, true, SZ_256K, 0);

static bool qwt_disk_dirty(struct qwt *t)
{
	return get_unaligned_be64(t->top->buf + 72) & QCOW2_INCOMPAT_DIRTY;
}

/*
 * The dirty bit is set before the first metadata change, refcount blocks
 * are written back only at detach, a crash copy is refused read-write,
 * and detach writes everything and clears the bit.
 */
static void qcow_write_lazy_refcounts(struct kunit *test)
{
	struct qwt *t = qwt_new(test, &qwt_lazy_geo, false);
	struct qwt_file *crash;
	u64 cs = t->cs, host, w;

	qwt_step(t, "open");
	KUNIT_EXPECT_FALSE(test, qwt_disk_dirty(t));
	KUNIT_EXPECT_EQ(test, t->top->writes, 0U);

	qwt_step(t, "first write");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, 1000, false), 0);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	KUNIT_EXPECT_TRUE(test, qwt_disk_dirty(t));
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	/* The L2 table is written, the refcounts are not. */
	host = qwt_disk_host(t->top, 0);
	KUNIT_ASSERT_NE(test, host, 0ULL);
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, host), 0ULL);
	KUNIT_EXPECT_TRUE(test, qwt_disk_dirty(t));

	/* What a crash leaves is refused read-write. */
	crash = qwt_file_new(t, t->top->len);
	memcpy(crash->buf, t->top->buf, t->top->len);
	crash->l.format = QCOW_FMT_QCOW2;
	KUNIT_ASSERT_EQ(test, qcow_image_open(&crash->l, 0), 0);
	KUNIT_EXPECT_EQ(test, qcow_image_open_rw(crash->l.img), -EINVAL);

	qwt_step(t, "detach");
	qwt_close(t);
	KUNIT_EXPECT_FALSE(test, qwt_disk_dirty(t));
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, host), 1ULL);
	KUNIT_ASSERT_EQ(test, qwt_open(t), 0);

	/* Writing in place changes no metadata: the bit stays clear. */
	qwt_step(t, "write in place");
	w = t->top->writes;
	KUNIT_ASSERT_EQ(test, qwt_write(t, 512, 1024, false), 0);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	KUNIT_EXPECT_EQ(test, t->top->writes, w + 1);
	KUNIT_EXPECT_FALSE(test, qwt_disk_dirty(t));

	qwt_step(t, "allocating write");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 5 * cs, 100, false), 0);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	KUNIT_EXPECT_TRUE(test, qwt_disk_dirty(t));
	qwt_step(t, "discard");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 0, cs, true, true), 0);
	qwt_step_ok(t);
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
	KUNIT_EXPECT_FALSE(test, qwt_disk_dirty(t));
}

static const struct qwt_geo qwt_autoclear_geo =
	QWT_GEO("autoclear", 3, 12, 4, false, false, SZ_256K, SZ_64K);

/*
 * Autoclear bits are cleared by the header write at read-write open, and
 * nothing else in the first cluster changes; read-only opens write
 * nothing, and an image without autoclear bits is not written at open.
 */
static void qcow_write_autoclear(struct kunit *test)
{
	struct qwt *t = test->priv;
	u8 *orig;
	u64 cs;

	t->test = test;
	t->geo = &qwt_autoclear_geo;
	t->top = qwt_image(t, t->geo, QCOW2_AUTOCLEAR_BITMAPS | BIT_ULL(7));
	cs = 1ULL << t->geo->cluster_bits;
	orig = kunit_kmalloc(test, cs, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, orig);
	memcpy(orig, t->top->buf, cs);

	KUNIT_ASSERT_EQ(test, qcow_image_open(&t->top->l, 0), 0);
	KUNIT_EXPECT_EQ(test, t->top->writes, 0U);
	KUNIT_ASSERT_EQ(test, qcow_image_open_rw(qwt_img(t)), 0);
	KUNIT_EXPECT_EQ(test, t->top->writes, 1U);
	KUNIT_EXPECT_GE(test, t->top->flushes, 1U);
	KUNIT_EXPECT_EQ(test, qwt_img(t)->hdr->autoclear_features, 0ULL);
	KUNIT_EXPECT_EQ(test, get_unaligned_be64(t->top->buf + 88), 0ULL);
	put_unaligned_be64(0, orig + 88);
	KUNIT_EXPECT_EQ(test, memcmp(orig, t->top->buf, cs), 0);
	qwt_close(t);
	KUNIT_EXPECT_EQ(test, memcmp(orig, t->top->buf, cs), 0);
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));

	/* Nothing to clear: nothing written. */
	t->top->writes = 0;
	KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	KUNIT_EXPECT_EQ(test, t->top->writes, 0U);
	qwt_close(t);
	KUNIT_EXPECT_EQ(test, t->top->writes, 0U);
}

/* --- clusters shared with a snapshot --------------------------------------------- */

static const struct qwt_geo qwt_snap_geos[] = {
	QWT_GEO("c4k", 3, 12, 4, false, false, 16 * SZ_4K, 0),
	QWT_GEO("c512-r1-backing", 3, 9, 1, false, false, 64 * 512, 64 * 512),
	QWT_GEO("c64k-ext", 3, 16, 4, true, false, 16 * SZ_64K, 0),
	QWT_GEO("c4k-v2", 2, 12, 4, false, false, 16 * SZ_4K, 0),
};

KUNIT_ARRAY_PARAM(qwt_snap, qwt_snap_geos, qwt_geo_desc);

/* Guest cluster @g as the (only) snapshot sees it, in the file. */
static void qwt_snap_expect(struct qwt *t, u64 g, const u8 *want)
{
	const u8 *b = t->top->buf;
	u64 sl1, l2, word, host;
	struct qwt_hdr h;

	qwt_hdr_parse(b, &h);
	KUNIT_ASSERT_EQ(t->test, h.nb_snap, 1U);
	sl1 = get_unaligned_be64(b + h.snap_off);
	l2 = get_unaligned_be64(b + sl1 + g / h.l2_entries * 8) & QCOW2_L1E_OFFSET_MASK;
	KUNIT_ASSERT_NE(t->test, l2, 0ULL);
	word = get_unaligned_be64(b + l2 + g % h.l2_entries * h.es);
	KUNIT_EXPECT_FALSE(t->test, word & QCOW2_OFLAG_COPIED);
	host = word & QCOW2_L2E_OFFSET_MASK;
	KUNIT_ASSERT_NE(t->test, host, 0ULL);
	KUNIT_EXPECT_EQ_MSG(t->test, memcmp(b + host, want + g * h.cs, h.cs), 0,
			    "%s: snapshot guest cluster %llu", t->step, g);
}

static void qwt_snap_expect_all(struct qwt *t, const u8 *want)
{
	u64 g;

	for (g = 0; g < t->vsize / t->cs; g++)
		qwt_snap_expect(t, g, want);
}

/*
 * qemu-img snapshot -c leaves every cluster with refcount 2 and COPIED
 * clear.  A write copies the L2 table and the data cluster; the old
 * cluster keeps its data and both references until the flush has written
 * the new L2 entry, then drops to one.
 */
static void qcow_write_snapshot(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	u64 cs = t->cs, h2, h3, h4, old_l2, l1e, n2, nb;
	struct qcow_image *img;
	struct qwt_hdr h;
	u8 *snap;

	qwt_step(t, "fill");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, t->vsize, false), 0);
	qwt_close(t);
	qwt_snapshot(t);
	qwt_step(t, "snapshot taken");
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	snap = kunit_kmalloc(test, t->vsize, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, snap);
	memcpy(snap, t->model, t->vsize);
	qwt_snap_expect_all(t, snap);
	KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	img = qwt_img(t);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));

	qwt_hdr_parse(t->top->buf, &h);
	l1e = get_unaligned_be64(t->top->buf + h.l1_off);
	old_l2 = l1e & QCOW2_L1E_OFFSET_MASK;
	KUNIT_EXPECT_FALSE(test, l1e & QCOW2_OFLAG_COPIED);
	h2 = qwt_disk_host(t->top, 2);
	h3 = qwt_disk_host(t->top, 3);
	h4 = qwt_disk_host(t->top, 4);
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, h2), 2ULL);

	qwt_step(t, "partial write into shared cluster 2");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 2 * cs + 100, 300, false), 0);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	KUNIT_EXPECT_EQ(test, qwt_mem_rc(t, h2), 2ULL);
	KUNIT_EXPECT_EQ(test, qwt_mem_rc(t, old_l2), 2ULL);
	l1e = be64_to_cpu(img->l1[0]);
	KUNIT_EXPECT_TRUE(test, l1e & QCOW2_OFLAG_COPIED);
	KUNIT_EXPECT_NE(test, l1e & QCOW2_L1E_OFFSET_MASK, old_l2);

	KUNIT_ASSERT_EQ(test, qcow_image_flush(img, true), 0);
	KUNIT_EXPECT_EQ(test, qwt_mem_rc(t, h2), 1ULL);
	KUNIT_EXPECT_EQ(test, qwt_mem_rc(t, old_l2), 1ULL);
	/* Released in memory; the file still counts it until the next flush. */
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, h2), 2ULL);
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_MEM));
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_DISK));
	KUNIT_ASSERT_EQ(test, qcow_image_flush(img, false), 0);
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, h2), 1ULL);
	n2 = qwt_disk_host(t->top, 2);
	KUNIT_EXPECT_NE(test, n2, h2);
	qwt_snap_expect_all(t, snap);

	qwt_step(t, "write cluster 2 again: in place");
	nb = img->nb_clusters;
	KUNIT_ASSERT_EQ(test, qwt_write(t, 2 * cs, 512, false), 0);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ(test, qwt_disk_host(t->top, 2), n2);
	KUNIT_EXPECT_EQ(test, img->nb_clusters, nb);

	qwt_step(t, "discard shared cluster 3");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 3 * cs, cs, true, true), 0);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, h3), 1ULL);

	qwt_step(t, "write-zeroes shared cluster 4, no unmap");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 4 * cs, cs, false, false), 0);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, h4), 1ULL);
	KUNIT_EXPECT_NE(test, qwt_disk_host(t->top, 4), h4);

	qwt_step(t, "detach");
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
	qwt_snap_expect_all(t, snap);
}

/* --- compressed clusters ---------------------------------------------------------- */

static const struct qwt_geo qwt_comp_geos[] = {
	QWT_GEO("c512", 3, 9, 4, false, false, 16 * 512, 0),
	QWT_GEO("c4k", 3, 12, 4, false, false, 16 * SZ_4K, 0),
	QWT_GEO("c64k-ext", 3, 16, 4, true, false, 16 * SZ_64K, 0),
};

KUNIT_ARRAY_PARAM(qwt_comp, qwt_comp_geos, qwt_geo_desc);

/*
 * Three compressed clusters packed back to back share host clusters
 * (refcount 2 where two streams meet).  Overwriting, discarding and
 * zeroing them releases one reference per stream, and the host clusters
 * are freed when the last stream is gone.
 */
static void qcow_write_compressed(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	u64 cs = t->cs, next = 0, start, c, gc, word, bitmap, off, span;

	qwt_step(t, "fill");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, 8 * cs, false), 0);
	qwt_close(t);
	start = round_up(t->top->len, cs);
	for (gc = 1; gc <= 3; gc++)
		qwt_compress(t, gc, &next);
	qwt_step(t, "compressed");
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	/* Where the first two streams meet, the host cluster is shared. */
	qwt_disk_l2e(t->top, 1, &word, &bitmap);
	qwt_comp_decode(g->cluster_bits, word, &off, &span);
	KUNIT_EXPECT_EQ(test, off, start);
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, off + span - 1), 2ULL);

	KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));

	qwt_step(t, "partial write into compressed cluster 2");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 2 * cs + 10, 100, false), 0);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ(test, qwt_file_rc(t, off + span - 1), 1ULL);

	qwt_step(t, "discard compressed cluster 1");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, cs, cs, true, true), 0);
	qwt_step_ok(t);

	qwt_step(t, "write-zeroes compressed cluster 3, no unmap");
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 3 * cs, cs, false, false), 0);
	qwt_step_ok(t);
	for (c = start; c < next; c += cs) {
		KUNIT_EXPECT_EQ_MSG(test, qwt_file_rc(t, c), 0ULL, "host 0x%llx", c);
		KUNIT_EXPECT_TRUE(test, qwt_all_zero(t->top->buf + c, min(cs, t->top->len - c)));
	}
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
}

/* --- corrupt entries ---------------------------------------------------------------- */

enum qwt_bad_kind {
	QWT_BAD_L2_INTO_REFTABLE,
	QWT_BAD_L2_RESERVED,
	QWT_BAD_L2_BEYOND_EOF,
	QWT_BAD_L1_RESERVED,
	QWT_BAD_L1_BEYOND_EOF,
	QWT_BAD_L2_INTO_L2,
	QWT_BAD_REFCOUNT_ZERO,
	QWT_BAD_REFBLOCK_MISSING,
	QWT_BAD_REFTABLE_RESERVED,
};

enum qwt_trigger {
	QWT_TRIG_READ,		/* reading guest cluster 1 fails */
	QWT_TRIG_WRITE,		/* writing guest cluster 1 fails */
	QWT_TRIG_ALLOC,		/* allocating fails */
	QWT_TRIG_FLUSH,		/* discarding guest cluster 2, then flushing */
	QWT_TRIG_OPEN,		/* read-write open fails */
};

/**
 * struct qwt_bad - a corrupt image
 * @name: parameter name
 * @kind: what is broken
 * @trigger: the operation that finds it
 */
struct qwt_bad {
	const char *name;
	enum qwt_bad_kind kind;
	enum qwt_trigger trigger;
};

static const struct qwt_bad qwt_bads[] = {
	{ "l2-into-refcount-table", QWT_BAD_L2_INTO_REFTABLE, QWT_TRIG_READ },
	{ "l2-reserved-bits", QWT_BAD_L2_RESERVED, QWT_TRIG_READ },
	{ "l2-beyond-eof", QWT_BAD_L2_BEYOND_EOF, QWT_TRIG_READ },
	{ "l1-reserved-bits", QWT_BAD_L1_RESERVED, QWT_TRIG_READ },
	{ "l1-beyond-eof", QWT_BAD_L1_BEYOND_EOF, QWT_TRIG_READ },
	{ "l2-into-l2-table", QWT_BAD_L2_INTO_L2, QWT_TRIG_WRITE },
	{ "refcount-zero-in-use", QWT_BAD_REFCOUNT_ZERO, QWT_TRIG_FLUSH },
	{ "refcount-block-missing", QWT_BAD_REFBLOCK_MISSING, QWT_TRIG_ALLOC },
	{ "reftable-reserved-bits", QWT_BAD_REFTABLE_RESERVED, QWT_TRIG_OPEN },
};

static void qwt_bad_desc(const struct qwt_bad *b, char *desc)
{
	strscpy(desc, b->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qwt_bad, qwt_bads, qwt_bad_desc);

/* 512-byte clusters: guest clusters 0-63 share L1 entry 0, 64.. entry 1. */
static const struct qwt_geo qwt_bad_geo =
	QWT_GEO("bad", 3, 9, 4, false, false, SZ_128K, 0);

static void qwt_break(struct qwt *t, enum qwt_bad_kind kind)
{
	u8 *b = t->top->buf;
	struct qwt_hdr h;
	u64 l1e, l2, e, host;

	qwt_hdr_parse(b, &h);
	l1e = h.l1_off;
	l2 = get_unaligned_be64(b + l1e) & QCOW2_L1E_OFFSET_MASK;
	e = l2 + 1 * 8;			/* guest cluster 1 */
	host = get_unaligned_be64(b + e) & QCOW2_L2E_OFFSET_MASK;
	switch (kind) {
	case QWT_BAD_L2_INTO_REFTABLE:
		put_unaligned_be64(h.rt_off | QCOW2_OFLAG_COPIED, b + e);
		break;
	case QWT_BAD_L2_RESERVED:
		put_unaligned_be64(host | 0x100 | QCOW2_OFLAG_COPIED, b + e);
		break;
	case QWT_BAD_L2_BEYOND_EOF:
		put_unaligned_be64((round_up(t->top->len, h.cs) + 64 * h.cs) |
				   QCOW2_OFLAG_COPIED, b + e);
		break;
	case QWT_BAD_L1_RESERVED:
		put_unaligned_be64(l2 | 0x100 | QCOW2_OFLAG_COPIED, b + l1e);
		break;
	case QWT_BAD_L1_BEYOND_EOF:
		put_unaligned_be64((round_up(t->top->len, h.cs) + 64 * h.cs) |
				   QCOW2_OFLAG_COPIED, b + l1e);
		break;
	case QWT_BAD_L2_INTO_L2:
		put_unaligned_be64(l2 | QCOW2_OFLAG_COPIED, b + e);
		break;
	case QWT_BAD_REFCOUNT_ZERO:
		qwt_rc_add(t, t->top, qwt_disk_host(t->top, 2) >> h.cb, -1);
		break;
	case QWT_BAD_REFBLOCK_MISSING:
		put_unaligned_be64(0, b + h.rt_off);
		break;
	case QWT_BAD_REFTABLE_RESERVED:
		put_unaligned_be64(get_unaligned_be64(b + h.rt_off) | 1, b + h.rt_off);
		break;
	}
}

static int qwt_write_raw(struct qwt *t, u64 pos, u64 len)
{
	struct iov_iter iter;
	struct kvec kv;
	u8 *buf;
	int err;

	buf = kvzalloc(len, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, buf);
	kv.iov_base = buf;
	kv.iov_len = len;
	iov_iter_kvec(&iter, WRITE, &kv, 1, len);
	err = qcow_layer_write(&t->top->l, pos, &iter, len, false);
	qwt_quiesce(t);
	kvfree(buf);
	return err;
}

/*
 * A corrupt entry fails the request that finds it with -EIO, sets the
 * corrupt bit in the header, and from then on every write fails while
 * the good parts still read correctly; the image is refused read-write
 * afterwards.
 */
static void qcow_write_corrupt(struct kunit *test)
{
	const struct qwt_bad *bad = test->param_value;
	struct qwt *t = qwt_new(test, &qwt_bad_geo, false);
	u64 cs = t->cs, good = 80 * cs, l2 = 0;
	struct qcow_image *img;
	u8 *saved = NULL;
	int err;

	qwt_step(t, "fill");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, 96 * cs, false), 0);
	qwt_close(t);
	qwt_break(t, bad->kind);
	qwt_step(t, "open");
	KUNIT_ASSERT_EQ(test, qcow_image_open(&t->top->l, 0), 0);
	img = qwt_img(t);
	err = qcow_image_open_rw(img);
	if (bad->trigger == QWT_TRIG_OPEN) {
		KUNIT_EXPECT_EQ(test, err, -EIO);
		KUNIT_EXPECT_GT(test, atomic_read(&img->corrupt), 0);
		qwt_close(t);
		return;
	}
	KUNIT_ASSERT_EQ(test, err, 0);

	switch (bad->trigger) {
	case QWT_TRIG_READ:
		KUNIT_EXPECT_EQ(test, qwt_read(t, cs, cs, t->rbuf), -EIO);
		break;
	case QWT_TRIG_WRITE:
		l2 = be64_to_cpu(img->l1[0]) & QCOW2_L1E_OFFSET_MASK;
		saved = kunit_kmalloc(test, cs, GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, saved);
		memcpy(saved, t->top->buf + l2, cs);
		KUNIT_EXPECT_EQ(test, qwt_write_raw(t, cs + 100, 100), -EIO);
		break;
	case QWT_TRIG_ALLOC:
		KUNIT_EXPECT_EQ(test, qwt_write_raw(t, 100 * cs, 100), -EIO);
		break;
	case QWT_TRIG_FLUSH:
		KUNIT_EXPECT_EQ(test, qwt_zero(t, 2 * cs, cs, true, true), 0);
		KUNIT_EXPECT_EQ(test, qcow_image_flush(img, true), -EIO);
		break;
	default:
		break;
	}
	KUNIT_EXPECT_EQ(test, atomic_read(&img->corrupt), 1);
	KUNIT_EXPECT_TRUE(test, get_unaligned_be64(t->top->buf + 72) &
			  QCOW2_INCOMPAT_CORRUPT);
	KUNIT_EXPECT_EQ(test, qwt_write_raw(t, good, 100), -EIO);
	KUNIT_EXPECT_EQ(test, qcow_layer_zero(&t->top->l, good, cs, false, true), -EIO);
	KUNIT_EXPECT_EQ(test, qcow_layer_zero(&t->top->l, good, cs, true, true), -EIO);
	KUNIT_ASSERT_EQ(test, qwt_read(t, good, 16 * cs, t->rbuf), 0);
	KUNIT_EXPECT_EQ(test, memcmp(t->rbuf, t->model + good, 16 * cs), 0);
	if (saved)	/* the L2 table was not overwritten by guest data */
		KUNIT_EXPECT_EQ(test, memcmp(saved, t->top->buf + l2, cs), 0);
	qwt_close(t);
	KUNIT_ASSERT_EQ(test, qcow_image_open(&t->top->l, 0), 0);
	KUNIT_EXPECT_EQ(test, qcow_image_open_rw(qwt_img(t)), -EINVAL);
	qwt_close(t);
}

/* --- a failed data write ------------------------------------------------------------ */

static const int qwt_errs[] = { -EIO, -ENOSPC };

static void qwt_err_desc(const int *e, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", *e == -EIO ? "EIO" : "ENOSPC");
}

KUNIT_ARRAY_PARAM(qwt_err, qwt_errs, qwt_err_desc);

static const struct qwt_geo qwt_fault_geo =
	QWT_GEO("fault", 3, 12, 4, false, false, SZ_64K, SZ_64K);

/*
 * The data write of an allocating request fails: the request fails with
 * that error, the new cluster is given back (no leak, no reference), the
 * guest still reads the old data, and the same write then succeeds into
 * the same cluster.  A failed write in place leaves everything consistent
 * as well.  A failed flush stops the image (qcow_meta_flush()): it is
 * never retried, every later write and flush fails, reads work, the file
 * is consistent with leaks at most; attached again, the image reads what
 * it read before the flush or what the flush should have made durable, and
 * works.
 */
static void qcow_write_fault_data(struct kunit *test)
{
	const int *errp = test->param_value;
	struct qwt *t = qwt_new(test, &qwt_fault_geo, false);
	struct qcow_image *img = qwt_img(t);
	u64 cs = t->cs, nb;
	u8 *old0, *new0, *old9, *new9;

	qwt_step(t, "first cluster");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, cs, false), 0);
	qwt_step_ok(t);

	qwt_step(t, "failed copy-on-write");
	t->top->fail_err = *errp;
	t->top->fail_write = 1;
	KUNIT_EXPECT_EQ(test, qwt_write(t, 5 * cs + 100, 200, false), *errp);
	KUNIT_EXPECT_EQ(test, t->top->failures, 1U);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	nb = img->nb_clusters;
	qwt_step(t, "retry");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 5 * cs + 100, 200, false), 0);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ(test, img->nb_clusters, nb);
	KUNIT_EXPECT_EQ(test, qwt_disk_host(t->top, 5), (nb - 1) * cs);

	qwt_step(t, "failed write in place");
	t->top->fail_write = 1;
	KUNIT_EXPECT_EQ(test, qwt_write(t, 100, 1000, false), *errp);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));

	qwt_step(t, "failed FUA write");
	t->top->fail_write = 2;
	KUNIT_EXPECT_EQ(test, qwt_write(t, 7 * cs, 2 * cs, true), *errp);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));

	qwt_step(t, "flush before the failed one");
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));

	qwt_step(t, "failed flush");
	old0 = kunit_kmalloc(test, cs, GFP_KERNEL);
	new0 = kunit_kmalloc(test, cs, GFP_KERNEL);
	old9 = kunit_kmalloc(test, cs, GFP_KERNEL);
	new9 = kunit_kmalloc(test, cs, GFP_KERNEL);
	KUNIT_ASSERT_TRUE(test, old0 && new0 && old9 && new9);
	memcpy(old0, t->model, cs);
	memcpy(old9, t->model + 9 * cs, cs);
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 0, cs, true, true), 0);
	KUNIT_ASSERT_EQ(test, qwt_write(t, 9 * cs, cs, false), 0);
	memcpy(new0, t->model, cs);
	memcpy(new9, t->model + 9 * cs, cs);
	t->top->failures = 0;
	t->top->fail_flush = 1;
	KUNIT_EXPECT_EQ(test, qcow_image_flush(img, true), -EIO);
	KUNIT_EXPECT_EQ(test, t->top->failures, 1U);
	KUNIT_EXPECT_EQ(test, atomic_read(&img->stopped), 1);
	/* The old L2 entry may be on disk: the discarded cluster is kept. */
	KUNIT_EXPECT_EQ(test, img->nr_frees, 1U);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	qwt_step(t, "stopped");
	KUNIT_ASSERT_TRUE(test, qwt_stopped_check(t));
	KUNIT_EXPECT_EQ(test, t->top->failures, 1U);

	qwt_step(t, "attached again");
	KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	img = qwt_img(t);
	KUNIT_EXPECT_EQ(test, atomic_read(&img->stopped), 0);
	memcpy(t->model, old0, cs);
	memcpy(t->model + 9 * cs, old9, cs);
	KUNIT_ASSERT_TRUE(test, qwt_adopt(t, 0, cs, new0, cs));
	KUNIT_ASSERT_TRUE(test, qwt_adopt(t, 9 * cs, cs, new9, cs));
	/* Refcounts written before the failed flush may have leaked. */
	t->leaks_ok = true;
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	KUNIT_ASSERT_EQ(test, qwt_write(t, 11 * cs + 7, 3 * cs, false), 0);
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 9 * cs, cs, true, true), 0);
	qwt_step_ok(t);
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
	t->leaks_ok = false;
}

/* --- asynchronous allocating writes ------------------------------------------------ */

/* Where a request's data lies: the slow path must take all three. */
enum qwt_src {
	QWT_SRC_KMALLOC,	/* a kvec over direct-mapped memory */
	QWT_SRC_VMALLOC,	/* a kvec over vmalloc memory */
	QWT_SRC_PAGES,		/* a bvec of scattered pages, as a request */
	QWT_SRC_NR,
};

#define QWT_AW_SEGS	8

/* One request as the block device issues it (qcow_layer_write_async()). */
struct qwt_aw {
	struct qcow_awrite aw;
	struct qwt *t;
	struct work_struct work;
	struct completion done;
	struct kvec kv;
	struct bio_vec bv[QWT_AW_SEGS];
	struct page *pages[QWT_AW_SEGS + 1];
	void *vbuf;
	struct iov_iter iter;
	u64 pos;
	u64 len;
	u8 *buf;
	int err;
	bool async;
};

/*
 * Present @w->buf as @src: vmalloc memory, or at most QWT_AW_SEGS bvec
 * segments of 512 bytes and more at odd sector offsets of separate pages,
 * the first one crossing from one page into the next of an order-1
 * allocation (a multi-page segment).
 */
static void qwt_aw_src(struct qwt *t, struct qwt_aw *w, enum qwt_src src)
{
	u64 len = w->len, done = 0, chunk;
	unsigned int n = 0;
	void *p;

	if (src == QWT_SRC_KMALLOC) {
		w->kv.iov_base = w->buf;
		w->kv.iov_len = len;
		iov_iter_kvec(&w->iter, WRITE, &w->kv, 1, len);
		return;
	}
	if (src == QWT_SRC_VMALLOC) {
		w->vbuf = vmalloc(len);
		KUNIT_ASSERT_NOT_NULL(t->test, w->vbuf);
		memcpy(w->vbuf, w->buf, len);
		w->kv.iov_base = w->vbuf;
		w->kv.iov_len = len;
		iov_iter_kvec(&w->iter, WRITE, &w->kv, 1, len);
		return;
	}
	w->pages[0] = alloc_pages(GFP_KERNEL, 1);
	KUNIT_ASSERT_NOT_NULL(t->test, w->pages[0]);
	chunk = min_t(u64, len, 2 * SECTOR_SIZE);
	p = page_address(w->pages[0]);
	memcpy(p + PAGE_SIZE - SECTOR_SIZE, w->buf, chunk);
	bvec_set_page(&w->bv[n++], w->pages[0], chunk, PAGE_SIZE - SECTOR_SIZE);
	for (done = chunk; done < len; done += chunk, n++) {
		KUNIT_ASSERT_LT(t->test, n, QWT_AW_SEGS);
		chunk = n == QWT_AW_SEGS - 1 ? len - done :
			min_t(u64, len - done, n * SECTOR_SIZE);
		KUNIT_ASSERT_LE(t->test, chunk + (n % 4) * SECTOR_SIZE, PAGE_SIZE);
		w->pages[n] = alloc_page(GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(t->test, w->pages[n]);
		memcpy(page_address(w->pages[n]) + (n % 4) * SECTOR_SIZE,
		       w->buf + done, chunk);
		bvec_set_page(&w->bv[n], w->pages[n], chunk, (n % 4) * SECTOR_SIZE);
	}
	iov_iter_bvec(&w->iter, WRITE, w->bv, n, len);
}

static void qwt_aw_src_free(struct qwt_aw *w)
{
	unsigned int i;

	vfree(w->vbuf);
	w->vbuf = NULL;
	if (w->pages[0])
		__free_pages(w->pages[0], 1);
	for (i = 1; i < ARRAY_SIZE(w->pages); i++)
		if (w->pages[i])
			__free_page(w->pages[i]);
	memset(w->pages, 0, sizeof(w->pages));
}

static void qwt_aw_done(struct qcow_awrite *aw, int err)
{
	struct qwt_aw *w = container_of(aw, struct qwt_aw, aw);

	w->err = err;
	complete(&w->done);
}

/*
 * Start a write: asynchronously where the driver can, else at once.  The
 * data source rotates through enum qwt_src.
 */
/* Issue @w (prepared by qwt_aw_prep()) as the block device does. */
static void qwt_aw_go(struct qwt_aw *w)
{
	struct qcow_layer *l = &w->t->top->l;
	int err;

	err = qcow_layer_write_async(l, w->pos, &w->iter, w->len, &w->aw);
	w->async = err == -EINPROGRESS;
	if (err == -EAGAIN)
		err = qcow_layer_write(l, w->pos, &w->iter, w->len, false);
	if (!w->async) {
		w->err = err;
		complete(&w->done);
	}
}

static void qwt_aw_work(struct work_struct *work)
{
	qwt_aw_go(container_of(work, struct qwt_aw, work));
}

/* Data and source of a write; the model learns what it may change. */
static void qwt_aw_prep(struct qwt *t, struct qwt_aw *w, u64 pos, u64 len)
{
	w->t = t;
	w->buf = kunit_kmalloc(t->test, len, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, w->buf);
	qwt_fill(++t->seed, pos, w->buf, len);
	init_completion(&w->done);
	w->aw.done = qwt_aw_done;
	w->pos = pos;
	w->len = len;
	qwt_aw_src(t, w, t->seed % QWT_SRC_NR);
	qwt_touch(t, pos, len);
}

static void qwt_aw_start(struct qwt *t, struct qwt_aw *w, u64 pos, u64 len)
{
	qwt_aw_prep(t, w, pos, len);
	qwt_aw_go(w);
}

/*
 * Wait for it; the model takes what it wrote.  A failed request changed
 * nothing the guest sees: its L2 entry was never updated.
 */
static int qwt_aw_end(struct qwt *t, struct qwt_aw *w)
{
	wait_for_completion(&w->done);
	qwt_aw_src_free(w);
	if (!w->err)
		memcpy(t->model + w->pos, w->buf, w->len);
	return w->err;
}

static const struct qwt_geo qwt_async_geos[] = {
	QWT_GEO("c64k", 3, 16, 4, false, false, SZ_2M, 0),
	QWT_GEO("c64k-lazy", 3, 16, 4, false, true, SZ_2M, 0),
	QWT_GEO("c512", 3, 9, 4, false, false, SZ_256K, 0),
	QWT_GEO("c64k-ext-backing", 3, 16, 4, true, false, SZ_2M, SZ_2M),
};

KUNIT_ARRAY_PARAM(qwt_async, qwt_async_geos, qwt_geo_desc);

#define QWT_AW	24
#define QWT_GROUP	4

/*
 * The block device's slow-path writes inside one cluster
 * (qcow_layer_write_async()): many in flight at once, completed from
 * another thread and finished in batches by img->aw_work, must leave
 * exactly what the synchronous path leaves: data, L2 entries, refcounts
 * (the invariant checker after each step).  Writes to one cluster
 * serialize behind the one in flight; a write that needs zeros around it
 * (a reused cluster, not past the allocation end) is still asynchronous
 * and gets the freed cluster; a failed data write fails its request with -EIO
 * and gives the cluster back (no leak), and the same write then succeeds.
 */
static void qcow_write_async(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	struct qcow_image *img = qwt_img(t);
	u64 len = min_t(u64, t->cs, SZ_4K), nclu = t->vsize / t->cs, nb, host0;
	/* With extended L2 and a backing file, whole subclusters copy nothing. */
	u64 al = g->ext ? t->unit : SECTOR_SIZE, span = t->cs - len + 1;
	unsigned int i, n = min_t(u64, QWT_AW, nclu / 2), async = 0;
	struct workqueue_struct *wq;
	struct qwt_aw *w;

	w = kunit_kcalloc(test, QWT_AW, sizeof(*w), GFP_KERNEL);
	wq = alloc_workqueue("qwt_aw", WQ_UNBOUND, 0);
	KUNIT_ASSERT_TRUE(test, w && wq);
	img->aw_wq = wq;

	qwt_step(t, "%u writes in flight, one per new cluster", n);
	for (i = 0; i < n; i++)
		qwt_aw_start(t, &w[i], 2 * i * t->cs + round_down(i * len % span, al), len);
	for (i = 0; i < n; i++) {
		KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[i]), 0, "%s: write %u", t->step, i);
		async += w[i].async;
	}
	KUNIT_EXPECT_EQ_MSG(test, async, n, "%s: asynchronous", t->step);
	KUNIT_EXPECT_EQ_MSG(test, t->top->async_writes, n, "%s", t->step);
	qwt_step_ok(t);

	qwt_step(t, "%u writes to one new cluster", QWT_AW);
	for (i = 0; i < QWT_AW; i++)
		qwt_aw_start(t, &w[i], 3 * t->cs + round_down(i * SECTOR_SIZE % span, al), len);
	for (i = 0; i < QWT_AW; i++)
		KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[i]), 0, "%s: write %u", t->step, i);
	qwt_step_ok(t);

	qwt_step(t, "a reused cluster is filled around the write");
	host0 = qwt_disk_host(t->top, 0);
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 0, t->cs, true, true), 0);
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	/* Guest cluster 1 shares guest 0's L2 table: no table to allocate. */
	qwt_aw_start(t, &w[0], t->cs + (t->cs > len ? al : 0), len);
	KUNIT_EXPECT_EQ(test, qwt_aw_end(t, &w[0]), 0);
	/* Zeros written around it (the zero page), still asynchronously. */
	KUNIT_EXPECT_TRUE_MSG(test, w[0].async, "%s", t->step);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ_MSG(test, qwt_disk_host(t->top, 1), host0, "%s", t->step);

	qwt_step(t, "a failed data write");
	/* Into guest 0's L2 table: the write is the first the file sees. */
	t->top->failures = 0;
	t->top->fail_err = -ENOSPC;
	t->top->fail_write = 1;
	qwt_aw_start(t, &w[0], 5 * t->cs, len);
	KUNIT_EXPECT_EQ(test, qwt_aw_end(t, &w[0]), -EIO);
	KUNIT_EXPECT_TRUE(test, w[0].async);
	KUNIT_EXPECT_EQ(test, t->top->failures, 1U);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	/* The allocation end moved, the cluster below it was given back... */
	nb = img->nb_clusters;
	qwt_step(t, "the same write again");
	qwt_aw_start(t, &w[0], 5 * t->cs, len);
	KUNIT_EXPECT_EQ(test, qwt_aw_end(t, &w[0]), 0);
	qwt_step_ok(t);
	/* ...and is the one the write gets. */
	KUNIT_EXPECT_EQ(test, img->nb_clusters, nb);
	KUNIT_EXPECT_EQ_MSG(test, qwt_disk_host(t->top, 5), (nb - 1) * t->cs,
			    "%s", t->step);

	destroy_workqueue(wq);
	img->aw_wq = NULL;
	qwt_step(t, "reopened");
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
}

static const struct qwt_geo qwt_async_cow_geos[] = {
	QWT_GEO("c64k-backing", 3, 16, 4, false, false, SZ_4M, SZ_4M),
	QWT_GEO("c4k-backing", 3, 12, 4, false, false, SZ_512K, SZ_512K),
	QWT_GEO("c1k-backing", 3, 10, 4, false, false, SZ_256K, SZ_256K),
	QWT_GEO("c64k-ext-backing", 3, 16, 4, true, false, SZ_4M, SZ_4M),
	QWT_GEO("c2m-backing", 3, 21, 4, false, false, 40 * SZ_1M, 40 * SZ_1M),
};

KUNIT_ARRAY_PARAM(qwt_async_cow, qwt_async_cow_geos, qwt_geo_desc);

/* Where qwt_aw_round() writes its @i-th write of @len bytes from cluster @first. */
static u64 qwt_aw_round_pos(struct qwt *t, u64 first, unsigned int i, u64 len)
{
	u64 span = t->cs - len + 1;

	return (first + i) * t->cs + round_down((i * 3 + 1) * SECTOR_SIZE % span,
						SECTOR_SIZE);
}

/*
 * Reads of what is copied around a write of [@pos, @pos + @len) inside
 * one unit, when all of it is copied: none, one per side, or one for both
 * sides when the guest bytes between them are no more than the sides.
 */
static unsigned int qwt_cow_reads(struct qwt *t, u64 pos, u64 len)
{
	u64 head = pos - round_down(pos, t->unit);
	u64 tail = round_up(pos + len, t->unit) - pos - len;

	if (head && tail && len <= head + tail)
		return 1;
	return !!head + !!tail;
}

/*
 * Write the first @len bytes of @k clusters from @first, all queued while
 * another writer holds the starting bit, then started by the last one in
 * one batch.
 */
static void qwt_aw_queued(struct qwt *t, struct qwt_aw *w, u64 first,
			  unsigned int k, u64 len)
{
	struct qcow_image *img = qwt_img(t);
	unsigned int i;

	set_bit(0, &img->aw_starting);
	for (i = 0; i + 1 < k; i++)
		qwt_aw_start(t, &w[i], (first + i) * t->cs, len);
	clear_bit(0, &img->aw_starting);
	qwt_aw_start(t, &w[k - 1], (first + k - 1) * t->cs, len);
}

/*
 * How the starter groups the data writes of qwt_aw_queued(t, w, @first,
 * @k, @len): sorted by host, runs that follow each other on the file, up
 * to QCOW_AWGROUP_MAX bytes.  Return: the number of groups; @lead: bit i
 * set for the writes in the group with the lowest host (started first).
 * The hosts are read from the file: flush first.
 */
static unsigned int qwt_aw_groups(struct qwt *t, u64 first, unsigned int k,
				  u64 len, unsigned long *lead)
{
	u64 host[QWT_GROUP], wlen = round_up(len, t->unit), end = 0, run = 0;
	unsigned int order[QWT_GROUP], i, j, groups = 0;

	for (i = 0; i < k; i++) {
		host[i] = qwt_disk_host(t->top, first + i);
		for (j = i; j && host[order[j - 1]] > host[i]; j--)
			order[j] = order[j - 1];
		order[j] = i;
	}
	*lead = 0;
	for (j = 0; j < k; j++) {
		i = order[j];
		if (!j || host[i] != end || run + wlen > QCOW_AWGROUP_MAX) {
			groups++;
			run = 0;
		}
		run += wlen;
		end = host[i] + wlen;
		if (groups == 1)
			*lead |= BIT(i);
	}
	return groups;
}

/* Write @n clusters from @first, each at a different sector of its own. */
static void qwt_aw_round(struct qwt *t, struct qwt_aw *w, u64 first,
			 unsigned int n, u64 len, unsigned int *async)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		qwt_aw_start(t, &w[i], qwt_aw_round_pos(t, first, i, len), len);
	for (i = 0; i < n; i++) {
		KUNIT_EXPECT_EQ_MSG(t->test, qwt_aw_end(t, &w[i]), 0, "%s: write %u",
				    t->step, i);
		*async += w[i].async;
	}
}

/*
 * Copy-on-write through qcow_layer_write_async(): writes that need the
 * rest of their cluster copied from the backing file, from a cluster an
 * internal snapshot shares, or from a compressed cluster, many in flight,
 * from every kind of data source (enum qwt_src).  Each must go out
 * asynchronously as one write of the copied parts around the guest's own
 * pages, leave exactly the data and metadata the synchronous path leaves
 * (the invariant checker, the model), keep the snapshot's data, and give
 * its bounce pages back (the pool is whole after each step).
 */
static void qcow_write_async_cow(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	u64 len = min_t(u64, t->cs / 2, SZ_4K), nclu = t->vsize / t->cs, next = 0;
	/*
	 * Five rounds of n clusters, 2 x QWT_GROUP for the grouped writes,
	 * one for a failed read.
	 */
	unsigned int n = min_t(u64, QWT_AW, (nclu - 2 * QWT_GROUP - 1) / 5);
	unsigned int async = 0, writes = 0, i, reads, groups, one, k;
	unsigned long failed, lead;
	u64 first;
	int err;
	struct workqueue_struct *wq;
	struct qcow_image *img;
	struct qwt_aw *w;
	u8 *snap;

	w = kunit_kcalloc(test, QWT_AW, sizeof(*w), GFP_KERNEL);
	t->snap = kvmalloc(t->vsize, GFP_KERNEL);
	snap = t->snap;
	wq = alloc_workqueue("qwt_aw", WQ_UNBOUND, 0);
	KUNIT_ASSERT_TRUE(test, w && snap && wq);

	qwt_step(t, "fill a fifth, compress one cluster, take a snapshot");
	KUNIT_ASSERT_EQ(test, qwt_write(t, n * t->cs, n * t->cs, false), 0);
	qwt_close(t);
	qwt_compress(t, n, &next);
	qwt_snapshot(t);
	memcpy(snap, t->model, t->vsize);
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	img = qwt_img(t);
	img->aw_wq = wq;
	KUNIT_EXPECT_EQ(test, img->bounce.nr_pages, (unsigned int)DIV_ROUND_UP(t->cs, PAGE_SIZE));
	KUNIT_EXPECT_EQ(test, img->bounce.nr_total, (unsigned int)QCOW_BOUNCE_RESERVE);

	qwt_step(t, "%u writes over the backing file", n);
	/*
	 * What is copied comes from the backing file, both sides in one
	 * read where the rule allows it (qcow_cow_merge()).
	 */
	/*
	 * A write with one read (one side, or both read as one) reads
	 * without waiting, and its completion starts the write.
	 */
	for (i = 0, reads = 0, one = 0; i < n; i++) {
		k = qwt_cow_reads(t, qwt_aw_round_pos(t, 0, i, len), len);
		reads += k;
		one += k == 1;
	}
	t->back->reads = 0;
	t->back->async_reads = 0;
	qwt_aw_round(t, w, 0, n, len, &async);
	writes += n;
	KUNIT_EXPECT_EQ_MSG(test, async, writes, "%s: asynchronous", t->step);
	KUNIT_EXPECT_EQ_MSG(test, t->back->reads, reads, "%s: backing file reads",
			    t->step);
	KUNIT_EXPECT_EQ_MSG(test, t->back->async_reads, one,
			    "%s: reads not waited for", t->step);
	if (!g->ext)
		KUNIT_EXPECT_EQ_MSG(test, one, n, "%s", t->step);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ_MSG(test, img->bounce.nr_free, img->bounce.nr_total, "%s", t->step);

	qwt_step(t, "%u writes into shared and compressed clusters", n);
	qwt_aw_round(t, w, n, n, len, &async);
	writes += n;
	KUNIT_EXPECT_EQ_MSG(test, async, writes, "%s: asynchronous", t->step);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ_MSG(test, img->bounce.nr_free, img->bounce.nr_total, "%s", t->step);
	KUNIT_EXPECT_LE(test, img->bounce.nr_total, img->bounce.max);

	qwt_step(t, "the same clusters again: now written in place");
	qwt_aw_round(t, w, n, n, len, &async);
	qwt_step_ok(t);

	/*
	 * Issued from many threads at once: writers queue behind the one
	 * starting writes, which starts them in batches (in file order).
	 */
	qwt_step(t, "%u writes over the backing file from %u threads", n, n);
	async = 0;
	writes = t->top->async_writes;
	for (i = 0; i < n; i++) {
		qwt_aw_prep(t, &w[i], (4 * n + i) * t->cs + SECTOR_SIZE * (i % 3),
			    SECTOR_SIZE);
		INIT_WORK(&w[i].work, qwt_aw_work);
	}
	for (i = 0; i < n; i++)
		queue_work(system_unbound_wq, &w[i].work);
	for (i = 0; i < n; i++) {
		flush_work(&w[i].work);
		KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[i]), 0, "%s: write %u",
				    t->step, i);
		async += w[i].async;
	}
	KUNIT_EXPECT_EQ_MSG(test, async, n, "%s: asynchronous", t->step);
	/* Some may have gone out grouped with others. */
	KUNIT_EXPECT_LE_MSG(test, t->top->async_writes, writes + n, "%s", t->step);
	KUNIT_EXPECT_GE_MSG(test, t->top->async_writes, writes + 1, "%s", t->step);
	qwt_step_ok(t);

	/* Started synchronously after all, finished the same way. */
	qwt_step(t, "%u writes over the backing file, no asynchronous write", n);
	t->top->no_async = true;
	async = 0;
	writes = t->top->async_writes;
	qwt_aw_round(t, w, 3 * n, n, len, &async);
	t->top->no_async = false;
	KUNIT_EXPECT_EQ_MSG(test, async, n, "%s: asynchronous", t->step);
	KUNIT_EXPECT_EQ_MSG(test, t->top->async_writes, writes, "%s", t->step);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ_MSG(test, img->bounce.nr_free, img->bounce.nr_total, "%s", t->step);

	/*
	 * Across a cluster boundary, the first cluster written in place
	 * and the second a new one: two runs, the second starting inside
	 * the request's data.
	 */
	qwt_step(t, "writes across cluster boundaries");
	len = min_t(u64, t->cs, SZ_8K);
	for (i = 0; 2 * i + 2 <= n; i++)
		KUNIT_ASSERT_EQ(test, qwt_write(t, (2 * n + 2 * i) * t->cs,
						SECTOR_SIZE, false), 0);
	for (i = 0; 2 * i + 2 <= n; i++)
		qwt_aw_start(t, &w[i], (2 * n + 2 * i + 1) * t->cs - len / 2, len);
	for (i = 0; 2 * i + 2 <= n; i++)
		KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[i]), 0, "%s: write %u",
				    t->step, i);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ_MSG(test, img->bounce.nr_free, img->bounce.nr_total, "%s", t->step);

	/*
	 * A failed copy-on-write read fails its request with -EIO: nothing
	 * written, the new cluster given back; the same write then works.
	 */
	qwt_step(t, "a failed copy-on-write read");
	len = min_t(u64, t->cs, SZ_4K) - SECTOR_SIZE;
	first = 5 * n + 2 * QWT_GROUP;
	t->back->failures = 0;
	t->back->async_reads = 0;
	t->back->fail_read = 1;
	qwt_aw_start(t, &w[0], first * t->cs, len);
	KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[0]), -EIO, "%s", t->step);
	KUNIT_EXPECT_TRUE_MSG(test, w[0].async, "%s", t->step);
	KUNIT_EXPECT_EQ_MSG(test, t->back->async_reads, 1U, "%s", t->step);
	KUNIT_EXPECT_EQ(test, t->back->failures, 1U);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	qwt_step(t, "the same write again");
	qwt_aw_start(t, &w[0], first * t->cs, len);
	KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[0]), 0, "%s", t->step);
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ_MSG(test, img->bounce.nr_free, img->bounce.nr_total, "%s", t->step);

	/*
	 * Writes queued while another writer starts writes go out in one
	 * batch: those whose new clusters follow each other on the file as
	 * one write (up to QCOW_AWGROUP_MAX bytes), each completing on its
	 * own.  Standard L2: the guest's pages, then the rest of the cluster
	 * copied, contiguous from one cluster to the next.  Extended L2: only
	 * the first subclusters, not contiguous, so each goes alone.
	 */
	len = min_t(u64, t->cs, SZ_4K) - SECTOR_SIZE;
	first = 5 * n;
	/*
	 * Copy-on-write reads that wait, so that every write is queued when
	 * its writer returns (an asynchronous read would queue it whenever
	 * it completes, and the batches would depend on timing).
	 */
	t->back->no_async = true;
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	qwt_step(t, "%u writes queued behind a starter", QWT_GROUP);
	writes = t->top->async_writes;
	qwt_aw_queued(t, w, first, QWT_GROUP, len);
	for (i = 0, async = 0; i < QWT_GROUP; i++) {
		KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[i]), 0, "%s: write %u",
				    t->step, i);
		async += w[i].async;
	}
	KUNIT_EXPECT_EQ_MSG(test, async, QWT_GROUP, "%s: asynchronous", t->step);
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	groups = qwt_aw_groups(t, first, QWT_GROUP, len, &lead);
	KUNIT_EXPECT_EQ_MSG(test, t->top->async_writes, writes + groups,
			    "%s: writes started", t->step);
	if (!g->ext && t->cs <= QCOW_AWGROUP_MAX)
		KUNIT_EXPECT_LT_MSG(test, groups, QWT_GROUP, "%s: grouped", t->step);
	qwt_step_ok(t);

	/*
	 * The first write started fails: each write of its group fails with
	 * it, the others succeed.  Their clusters are given back, and the
	 * same writes again get them: the group that failed is the one with
	 * the lowest host then.
	 */
	qwt_step(t, "a failed grouped write");
	first += QWT_GROUP;
	t->top->failures = 0;
	t->top->fail_err = -EIO;
	t->top->fail_write = 1;
	qwt_aw_queued(t, w, first, QWT_GROUP, len);
	for (i = 0, failed = 0; i < QWT_GROUP; i++) {
		err = qwt_aw_end(t, &w[i]);
		KUNIT_EXPECT_TRUE_MSG(test, !err || err == -EIO, "%s: write %u: %d",
				      t->step, i, err);
		if (err)
			failed |= BIT(i);
	}
	KUNIT_EXPECT_EQ(test, t->top->failures, 1U);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	qwt_step(t, "the failed grouped writes again");
	for (i = 0; i < QWT_GROUP; i++)
		if (failed & BIT(i))
			qwt_aw_start(t, &w[i], (first + i) * t->cs, len);
	for (i = 0; i < QWT_GROUP; i++)
		if (failed & BIT(i))
			KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[i]), 0,
					    "%s: write %u", t->step, i);
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	qwt_aw_groups(t, first, QWT_GROUP, len, &lead);
	KUNIT_EXPECT_EQ_MSG(test, failed, lead, "%s: the writes failed", t->step);
	qwt_step_ok(t);
	t->back->no_async = false;
	KUNIT_EXPECT_EQ_MSG(test, img->bounce.nr_free, img->bounce.nr_total, "%s", t->step);

	destroy_workqueue(wq);
	img->aw_wq = NULL;
	qwt_close(t);
	qwt_step(t, "closed: the snapshot kept its data");
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	for (i = n + 1; i < 2 * n; i++)	/* cluster n is compressed */
		qwt_snap_expect(t, i, snap);
	KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
}

/*
 * A dispatcher's write of one sector into cluster @c, at sector 1, through
 * @w: it must be accepted (completed through @aw->done).  Return: its
 * result.
 */
static int qwt_aw_nowait(struct qwt *t, struct qwt_aw *w, u64 c)
{
	qwt_aw_prep(t, w, c * t->cs + SECTOR_SIZE, SECTOR_SIZE);
	w->aw.nowait = true;
	qwt_aw_go(w);
	KUNIT_EXPECT_TRUE_MSG(t->test, w->async, "%s: accepted", t->step);
	return qwt_aw_end(t, w);
}

/*
 * Writes of the request dispatcher (@aw->nowait), which must not wait for
 * I/O: one whose L2 table is still to be allocated, whose L2 slice is not
 * cached, or that meets a write in flight on its cluster, is refused with
 * nothing changed (the dispatcher hands it to a worker); one whose
 * copy-on-write read cannot be started asynchronously is started, and a
 * worker reads: its result, failure included, reaches the request through
 * @aw->done.
 */
static void qcow_write_async_nowait(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	u64 len = min_t(u64, t->cs / 2, SZ_4K), nb;
	struct qcow_layer *l = &t->top->l;
	struct workqueue_struct *wq;
	unsigned int reads, areads, writes;
	struct qcow_image *img;
	struct qwt_aw *w;

	w = kunit_kcalloc(test, 3, sizeof(*w), GFP_KERNEL);
	wq = alloc_workqueue("qwt_aw", WQ_UNBOUND, 0);
	KUNIT_ASSERT_TRUE(test, w && wq);

	/* Allocating the table writes it synchronously: not the dispatcher's. */
	qwt_step(t, "a write whose L2 table is still to be allocated");
	img = qwt_img(t);
	img->aw_wq = wq;
	nb = img->nb_clusters;
	writes = t->top->writes;
	qwt_aw_prep(t, &w[0], 0, len);
	w[0].aw.nowait = true;
	KUNIT_EXPECT_EQ_MSG(test, qcow_layer_write_async(l, w[0].pos, &w[0].iter,
							 len, &w[0].aw),
			    -EAGAIN, "%s", t->step);
	KUNIT_EXPECT_EQ_MSG(test, img->nb_clusters, nb, "%s: allocated", t->step);
	KUNIT_EXPECT_EQ_MSG(test, t->top->writes, writes, "%s: written", t->step);
	KUNIT_EXPECT_TRUE_MSG(test, !img->l1[0], "%s: L1 entry set", t->step);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	img->aw_wq = NULL;
	qwt_step_ok(t);

	qwt_step(t, "cluster 0 written, reopened: no L2 slice cached");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, t->cs, false), 0);
	qwt_close(t);
	KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	img = qwt_img(t);
	img->aw_wq = wq;
	qwt_step(t, "a write whose L2 slice is not cached");
	nb = img->nb_clusters;
	qwt_aw_prep(t, &w[0], t->cs, len);
	w[0].aw.nowait = true;
	KUNIT_EXPECT_EQ_MSG(test, qcow_layer_write_async(l, w[0].pos, &w[0].iter,
							 len, &w[0].aw),
			    -EAGAIN, "%s", t->step);
	KUNIT_EXPECT_EQ_MSG(test, img->nb_clusters, nb, "%s: allocated", t->step);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	qwt_step(t, "the same write, allowed to wait");
	w[0].aw.nowait = false;
	qwt_aw_go(&w[0]);
	KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[0]), 0, "%s", t->step);
	KUNIT_EXPECT_TRUE_MSG(test, w[0].async, "%s", t->step);
	qwt_step_ok(t);

	qwt_step(t, "slice cached: started, the read not waited for");
	areads = t->back->async_reads;
	KUNIT_EXPECT_EQ_MSG(test, qwt_aw_nowait(t, w, 2), 0, "%s", t->step);
	KUNIT_EXPECT_EQ_MSG(test, t->back->async_reads, areads + 1, "%s", t->step);
	qwt_step_ok(t);

	/* The backing file reads only synchronously from here on. */
	t->back->no_async = true;
	qwt_step(t, "a read that waits, left to a worker");
	reads = t->back->reads;
	KUNIT_EXPECT_EQ_MSG(test, qwt_aw_nowait(t, w, 3), 0, "%s", t->step);
	KUNIT_EXPECT_EQ_MSG(test, t->back->reads, reads + 1, "%s", t->step);
	KUNIT_EXPECT_EQ_MSG(test, t->back->async_reads, areads + 1, "%s", t->step);
	qwt_step_ok(t);

	/*
	 * Failing in the worker, it fails the request through @aw->done, not
	 * the caller: nothing written, the new cluster given back.
	 */
	qwt_step(t, "a read left to a worker fails");
	t->back->failures = 0;
	t->back->fail_read = 1;
	KUNIT_EXPECT_EQ_MSG(test, qwt_aw_nowait(t, w, 4), -EIO, "%s", t->step);
	KUNIT_EXPECT_EQ(test, t->back->failures, 1U);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	qwt_step(t, "the same write again");
	qwt_aw_start(t, &w[0], 4 * t->cs + SECTOR_SIZE, SECTOR_SIZE);
	KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[0]), 0, "%s", t->step);
	qwt_step_ok(t);

	/*
	 * A write queued but not started (a starter is busy) keeps its
	 * cluster in flight: a second write there is refused, then goes
	 * through once the first is out.
	 */
	qwt_step(t, "a write in flight on the same cluster");
	set_bit(0, &img->aw_starting);
	w[0].aw.nowait = false;
	qwt_aw_start(t, &w[0], 5 * t->cs, SECTOR_SIZE);
	KUNIT_EXPECT_TRUE_MSG(test, w[0].async, "%s", t->step);
	nb = img->nb_clusters;
	qwt_aw_prep(t, &w[1], 5 * t->cs + SECTOR_SIZE, SECTOR_SIZE);
	w[1].aw.nowait = true;
	KUNIT_EXPECT_EQ_MSG(test, qcow_layer_write_async(l, w[1].pos, &w[1].iter,
							 SECTOR_SIZE, &w[1].aw),
			    -EAGAIN, "%s", t->step);
	KUNIT_EXPECT_EQ_MSG(test, img->nb_clusters, nb, "%s: allocated", t->step);
	clear_bit(0, &img->aw_starting);
	qwt_aw_start(t, &w[2], 6 * t->cs, SECTOR_SIZE);	/* starts both */
	KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[0]), 0, "%s", t->step);
	KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[2]), 0, "%s", t->step);
	qwt_step(t, "the refused write, once the first is done");
	qwt_aw_go(&w[1]);
	KUNIT_EXPECT_EQ_MSG(test, qwt_aw_end(t, &w[1]), 0, "%s", t->step);
	KUNIT_EXPECT_TRUE_MSG(test, w[1].async, "%s", t->step);
	t->back->no_async = false;
	qwt_step_ok(t);
	KUNIT_EXPECT_EQ_MSG(test, img->bounce.nr_free, img->bounce.nr_total, "%s", t->step);

	destroy_workqueue(wq);
	img->aw_wq = NULL;
	qwt_step(t, "reopened");
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
}

struct qwt_bounce_waiter {
	struct work_struct work;
	struct qcow_bounce_pool *pool;
	struct qcow_bounce *b;
	struct completion done;
};

static void qwt_bounce_wait_work(struct work_struct *work)
{
	struct qwt_bounce_waiter *bw = container_of(work, struct qwt_bounce_waiter, work);

	qcow_bounce_get(bw->pool, 1, &bw->b);
	complete(&bw->done);
}

/*
 * The bounce pool: its size for each cluster size, the reserve, reuse,
 * how many free elements it keeps, and a writer waiting when as many
 * elements exist as it allows, until one is given back.
 */
static void qcow_write_bounce_pool(struct kunit *test)
{
	struct qcow_bounce_pool *pool;
	struct qcow_bounce *b[6];
	struct qwt_bounce_waiter bw;
	unsigned int i;

	pool = kunit_kzalloc(test, sizeof(*pool), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, pool);
	KUNIT_ASSERT_EQ(test, qcow_bounce_init(pool, SZ_2M), 0);
	KUNIT_EXPECT_EQ(test, pool->nr_pages, (unsigned int)(SZ_2M / PAGE_SIZE));
	KUNIT_EXPECT_EQ(test, pool->keep, 2U);
	KUNIT_EXPECT_EQ(test, pool->max, 16U);
	qcow_bounce_exit(pool);
	KUNIT_ASSERT_EQ(test, qcow_bounce_init(pool, SECTOR_SIZE), 0);
	KUNIT_EXPECT_EQ(test, pool->nr_pages, 1U);
	KUNIT_EXPECT_EQ(test, pool->keep, 64U);
	KUNIT_EXPECT_EQ(test, pool->max, 512U);
	qcow_bounce_exit(pool);

	KUNIT_ASSERT_EQ(test, qcow_bounce_init(pool, SZ_64K), 0);
	KUNIT_EXPECT_EQ(test, pool->nr_pages, 16U);
	KUNIT_EXPECT_EQ(test, pool->nr_free, 2U);
	KUNIT_EXPECT_EQ(test, pool->nr_total, 2U);
	/* The reserve first, then new elements; all come back for reuse. */
	qcow_bounce_get(pool, 2, b);
	KUNIT_EXPECT_EQ(test, pool->nr_free, 0U);
	qcow_bounce_get(pool, 2, b + 2);
	KUNIT_EXPECT_EQ(test, pool->nr_total, 4U);
	for (i = 0; i < 4; i++)
		qcow_bounce_put(pool, b[i]);
	KUNIT_EXPECT_EQ(test, pool->nr_free, 4U);
	qcow_bounce_get(pool, 1, b);
	KUNIT_EXPECT_EQ(test, pool->nr_total, 4U);
	qcow_bounce_put(pool, b[0]);

	/* No more than @keep stay free. */
	pool->keep = 3;
	for (i = 0; i < 6; i += 2)
		qcow_bounce_get(pool, 2, b + i);
	KUNIT_EXPECT_EQ(test, pool->nr_total, 6U);
	for (i = 0; i < 6; i++)
		qcow_bounce_put(pool, b[i]);
	KUNIT_EXPECT_EQ(test, pool->nr_free, 3U);
	KUNIT_EXPECT_EQ(test, pool->nr_total, 3U);

	/* At @max, a writer waits for an element to come back. */
	pool->max = 3;
	qcow_bounce_get(pool, 2, b);
	qcow_bounce_get(pool, 1, b + 2);
	bw.pool = pool;
	bw.b = NULL;
	init_completion(&bw.done);
	INIT_WORK_ONSTACK(&bw.work, qwt_bounce_wait_work);
	queue_work(system_unbound_wq, &bw.work);
	KUNIT_EXPECT_EQ(test, wait_for_completion_timeout(&bw.done, HZ / 5), 0UL);
	KUNIT_EXPECT_NULL(test, bw.b);
	qcow_bounce_put(pool, b[1]);
	KUNIT_EXPECT_GT(test, wait_for_completion_timeout(&bw.done, 10 * HZ), 0UL);
	flush_work(&bw.work);
	destroy_work_on_stack(&bw.work);
	KUNIT_EXPECT_PTR_EQ(test, bw.b, b[1]);
	KUNIT_EXPECT_EQ(test, pool->nr_total, 3U);
	qcow_bounce_put(pool, b[0]);
	qcow_bounce_put(pool, b[2]);
	if (bw.b)
		qcow_bounce_put(pool, bw.b);
	KUNIT_EXPECT_EQ(test, pool->nr_free, pool->nr_total);
	qcow_bounce_exit(pool);
}

/* --- seeded random sequences ------------------------------------------------------- */

/**
 * struct qwt_random_case - one random sequence
 * @name: parameter name
 * @geo: the image
 * @seed: PRNG seed
 * @snapshot: fill the disk and take a snapshot first
 * @ops: operations
 */
struct qwt_random_case {
	const char *name;
	struct qwt_geo geo;
	u64 seed;
	bool snapshot;
	unsigned int ops;
};

#define QWT_RCASE(n, v, cb, ro, e, lz, sz, bk, sd, sn) \
	{ .name = n, .geo = QWT_GEO(NULL, v, cb, ro, e, lz, sz, bk), \
	  .seed = sd, .snapshot = sn, .ops = 200 }

static const struct qwt_random_case qwt_random_cases[] = {
	QWT_RCASE("c512-r4", 3, 9, 4, false, false, SZ_256K, 0, 1, false),
	QWT_RCASE("c512-r0", 3, 9, 0, false, false, SZ_256K, 0, 2, false),
	QWT_RCASE("c4k-r1-short-backing", 3, 12, 1, false, false, SZ_512K, 200000, 3, false),
	QWT_RCASE("c4k-v2-backing", 2, 12, 4, false, false, SZ_512K, SZ_512K, 4, false),
	QWT_RCASE("c64k-ext-backing", 3, 16, 4, true, false, SZ_1M, SZ_1M, 5, false),
	QWT_RCASE("c16k-ext", 3, 14, 5, true, false, SZ_1M, 0, 6, false),
	QWT_RCASE("c4k-lazy", 3, 12, 4, false, true, SZ_512K, 0, 7, false),
	QWT_RCASE("c512-r6-snapshot", 3, 9, 6, false, false, SZ_256K, 0, 8, true),
	QWT_RCASE("c4k-r3-snapshot-backing", 3, 12, 3, false, false, SZ_512K, SZ_256K, 9, true),
	QWT_RCASE("c64k-ext-snapshot", 3, 16, 2, true, false, SZ_1M, 0, 10, true),
	QWT_RCASE("c4k-odd-size", 3, 12, 4, false, false, SZ_512K - 1536, 0, 11, false),
};

static void qwt_random_desc(const struct qwt_random_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qwt_random, qwt_random_cases, qwt_random_desc);

static void qwt_random_op(struct qwt *t, struct rnd_state *rs, unsigned int i)
{
	u64 cs = t->cs, pos, len, r = qwt_rand(rs, 100);
	bool unmap = qwt_rand(rs, 2);
	int err = 0;

	/* Offsets: sector aligned mostly, some cluster aligned, some odd. */
	switch (qwt_rand(rs, 4)) {
	case 0:
		pos = qwt_rand(rs, t->vsize / cs) * cs;
		break;
	case 1:
		pos = qwt_rand(rs, t->vsize);
		break;
	default:
		pos = qwt_rand(rs, t->vsize / 512) * 512;
		break;
	}
	switch (qwt_rand(rs, 4)) {
	case 0:
		len = 1 + qwt_rand(rs, 1024);
		break;
	case 1:
		len = (1 + qwt_rand(rs, 4)) * cs;
		break;
	default:
		len = 512 * (1 + qwt_rand(rs, 8 * cs / 512));
		break;
	}
	if (r < 40) {
		qwt_step(t, "op %u: write 0x%llx+0x%llx", i, pos, len);
		err = qwt_write(t, pos, len, false);
	} else if (r < 47) {
		qwt_step(t, "op %u: FUA write 0x%llx+0x%llx", i, pos, len);
		err = qwt_write(t, pos, len, true);
	} else if (r < 60) {
		qwt_step(t, "op %u: discard 0x%llx+0x%llx", i, pos, len);
		err = qwt_zero(t, pos, len, true, true);
	} else if (r < 73) {
		qwt_step(t, "op %u: write-zeroes%s 0x%llx+0x%llx", i,
			 unmap ? "" : " (no unmap)", pos, len);
		err = qwt_zero(t, pos, len, false, unmap);
	} else if (r < 78) {
		/* What the background write-back does, 5 s after a change. */
		qwt_step(t, "op %u: background write-back", i);
		qcow_writeback_work(&qwt_img(t)->wb_work.work);
		KUNIT_ASSERT_EQ(t->test, qwt_img(t)->nr_frees, 0U);
	} else if (r < 88) {
		qwt_step(t, "op %u: flush", i);
		KUNIT_ASSERT_TRUE(t->test, qwt_flush_check(t));
	} else if (r < 92) {
		qwt_step(t, "op %u: detach and attach", i);
		KUNIT_ASSERT_TRUE(t->test, qwt_reopen(t));
	} else {
		len = (1 + qwt_rand(rs, 16)) * cs + qwt_rand(rs, cs);
		qwt_step(t, "op %u: long write 0x%llx+0x%llx", i, pos, len);
		err = qwt_write(t, pos, len, false);
	}
	KUNIT_ASSERT_EQ_MSG(t->test, err, 0, "%s", t->step);
	KUNIT_ASSERT_TRUE(t->test, qwt_check(t));
}

static void qcow_write_random(struct kunit *test)
{
	const struct qwt_random_case *c = test->param_value;
	struct qwt *t = qwt_new(test, &c->geo, false);
	struct rnd_state rs;
	u8 *snap = NULL;
	unsigned int i;

	prandom_seed_state(&rs, c->seed);
	if (c->snapshot) {
		qwt_step(t, "fill");
		KUNIT_ASSERT_EQ(test, qwt_write(t, 0, t->vsize, false), 0);
		qwt_close(t);
		qwt_snapshot(t);
		snap = kunit_kmalloc(test, t->vsize, GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, snap);
		memcpy(snap, t->model, t->vsize);
		qwt_step(t, "snapshot taken");
		KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
		KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	}
	for (i = 0; i < c->ops; i++)
		qwt_random_op(t, &rs, i);
	qwt_step(t, "end");
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	KUNIT_ASSERT_TRUE(test, qwt_reopen(t));
	if (snap)
		qwt_snap_expect_all(t, snap);
}

/* --- fault sweeps -------------------------------------------------------------------- */

enum qwt_op_type {
	QWT_OP_END,
	QWT_OP_WRITE,
	QWT_OP_FUA,
	QWT_OP_DISCARD,
	QWT_OP_ZERO,
	QWT_OP_ZERO_KEEP,
	QWT_OP_FLUSH,
};

/**
 * struct qwt_op - one operation of a script
 * @type: enum qwt_op_type
 * @pos: guest offset
 * @len: bytes
 */
struct qwt_op {
	u8 type;
	u32 pos;
	u32 len;
};

/**
 * struct qwt_script - operations run with a fault at every possible point
 * @name: name
 * @geo: the image
 * @prefill: bytes written (from 0) before the script
 * @snapshot: take a snapshot after the prefill
 * @ops: the operations, ended by QWT_OP_END
 */
struct qwt_script {
	const char *name;
	struct qwt_geo geo;
	u64 prefill;
	bool snapshot;
	const struct qwt_op *ops;
};

/* 512-byte clusters, 64 per refcount block: new blocks along the way. */
static const struct qwt_op qwt_basic_ops[] = {
	{ QWT_OP_WRITE, 100, 200 },
	{ QWT_OP_WRITE, 40960, 1536 },
	{ QWT_OP_WRITE, 1000, 3000 },
	{ QWT_OP_DISCARD, 0, 1024 },
	{ QWT_OP_ZERO, 2048, 1024 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_WRITE, 65536, 40960 },
	{ QWT_OP_ZERO_KEEP, 66048, 1024 },
	{ QWT_OP_FUA, 8192, 700 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_WRITE, 102400, 512 },
	{ QWT_OP_DISCARD, 65536, 8192 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_WRITE, 65536, 4096 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_END },
};

static const struct qwt_op qwt_snapshot_ops[] = {
	{ QWT_OP_WRITE, 2 * 4096 + 100, 300 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_DISCARD, 3 * 4096, 4096 },
	{ QWT_OP_ZERO_KEEP, 4 * 4096, 4096 },
	{ QWT_OP_WRITE, 2 * 4096, 512 },
	{ QWT_OP_WRITE, 10 * 4096, 3 * 4096 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_END },
};

static const struct qwt_op qwt_v2_ops[] = {
	{ QWT_OP_WRITE, 100, 200 },
	{ QWT_OP_ZERO, 4096, 8192 },
	{ QWT_OP_DISCARD, 16384, 4096 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_WRITE, 20000, 10000 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_END },
};

/* Just below 4096 clusters in use: the next write moves the table. */
#define QWT_GROW_PREFILL	(1920U << 10)

static const struct qwt_op qwt_grow_ops[] = {
	{ QWT_OP_WRITE, QWT_GROW_PREFILL, 65536 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_WRITE, QWT_GROW_PREFILL + 65536, 8192 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_END },
};

static const struct qwt_script qwt_scripts[] = {
	{ "basic", QWT_GEO("basic", 3, 9, 6, false, false, SZ_128K, SZ_32K), 0, false,
	  qwt_basic_ops },
	{ "lazy", QWT_GEO("lazy", 3, 9, 6, false, true, SZ_128K, SZ_32K), 0, false,
	  qwt_basic_ops },
	{ "snapshot", QWT_GEO("snapshot", 3, 12, 4, false, false, SZ_64K, 0), SZ_64K, true,
	  qwt_snapshot_ops },
	{ "v2", QWT_GEO("v2", 2, 12, 4, false, false, SZ_64K, SZ_64K), 0, false,
	  qwt_v2_ops },
	{ "grow", QWT_GEO("grow", 3, 9, 6, false, false, 2560U << 10, 0), QWT_GROW_PREFILL,
	  false, qwt_grow_ops },
};

enum qwt_fault {
	QWT_FAULT_WRITE_EIO,
	QWT_FAULT_WRITE_ENOSPC,
	QWT_FAULT_FLUSH,
};

/**
 * struct qwt_sweep - a script and the fault injected
 * @name: parameter name
 * @script: the script
 * @fault: enum qwt_fault
 */
struct qwt_sweep {
	const char *name;
	const struct qwt_script *script;
	enum qwt_fault fault;
};

#define QWT_SWEEP(s, f, n) { .name = n, .script = &qwt_scripts[s], .fault = f }

static const struct qwt_sweep qwt_sweeps[] = {
	QWT_SWEEP(0, QWT_FAULT_WRITE_EIO, "basic-write-EIO"),
	QWT_SWEEP(0, QWT_FAULT_WRITE_ENOSPC, "basic-write-ENOSPC"),
	QWT_SWEEP(0, QWT_FAULT_FLUSH, "basic-flush"),
	QWT_SWEEP(1, QWT_FAULT_WRITE_EIO, "lazy-write-EIO"),
	QWT_SWEEP(1, QWT_FAULT_FLUSH, "lazy-flush"),
	QWT_SWEEP(2, QWT_FAULT_WRITE_EIO, "snapshot-write-EIO"),
	QWT_SWEEP(2, QWT_FAULT_FLUSH, "snapshot-flush"),
	QWT_SWEEP(3, QWT_FAULT_WRITE_ENOSPC, "v2-write-ENOSPC"),
	QWT_SWEEP(3, QWT_FAULT_FLUSH, "v2-flush"),
	QWT_SWEEP(4, QWT_FAULT_WRITE_EIO, "grow-write-EIO"),
	QWT_SWEEP(4, QWT_FAULT_FLUSH, "grow-flush"),
};

static void qwt_sweep_desc(const struct qwt_sweep *s, char *desc)
{
	strscpy(desc, s->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qwt_sweep, qwt_sweeps, qwt_sweep_desc);

static int qwt_run_op(struct qwt *t, const struct qwt_op *op)
{
	switch (op->type) {
	case QWT_OP_WRITE:
		return qwt_write(t, op->pos, op->len, false);
	case QWT_OP_FUA:
		return qwt_write(t, op->pos, op->len, true);
	case QWT_OP_DISCARD:
		return qwt_zero(t, op->pos, op->len, true, true);
	case QWT_OP_ZERO:
		return qwt_zero(t, op->pos, op->len, false, true);
	case QWT_OP_ZERO_KEEP:
		return qwt_zero(t, op->pos, op->len, false, false);
	default:
		return qcow_image_flush(qwt_img(t), true);
	}
}

/*
 * One run of a script with the @n-th write (or flush) failing; *@fired
 * tells whether the fault was reached, *@stopped whether the image
 * stopped.  Returns false when a check failed.
 */
static bool qwt_sweep_run(struct qwt *t, const struct qwt_sweep *sw,
			  unsigned int n, int want, bool *fired, bool *stopped)
{
	const struct qwt_op *op = sw->script->ops;
	struct qwt_file *f = t->top;
	unsigned int i;
	bool ok = true;
	int err;

	qwt_step(t, "fault %u: open", n);
	if (qwt_open(t)) {
		KUNIT_FAIL(t->test, "%s: open failed", t->step);
		return false;
	}
	f->failures = 0;
	f->fail_err = want;
	if (sw->fault == QWT_FAULT_FLUSH)
		f->fail_flush = n;
	else
		f->fail_write = n;
	for (i = 0; ok && op[i].type != QWT_OP_END; i++) {
		qwt_step(t, "fault %u: op %u", n, i);
		err = qwt_run_op(t, &op[i]);
		if (err && err != want && err != -EIO) {
			KUNIT_FAIL(t->test, "%s: error %d", t->step, err);
			ok = false;
		}
		ok = ok && qwt_check(t);
	}
	*fired = f->failures;
	f->fail_write = 0;
	f->fail_flush = 0;
	if (ok && *fired && sw->fault == QWT_FAULT_FLUSH &&
	    !atomic_read(&qwt_img(t)->stopped)) {
		KUNIT_FAIL(t->test, "%s: a flush failed, the image did not stop", t->step);
		ok = false;
	}
	if (ok && atomic_read(&qwt_img(t)->stopped)) {
		qwt_step(t, "fault %u: stopped", n);
		ok = qwt_stopped_check(t);
		*stopped = true;
	} else if (ok) {
		qwt_step(t, "fault %u: after the script", n);
		ok = qwt_flush_check(t) && qwt_reopen(t);
	}
	qwt_close(t);
	return ok;
}

/*
 * Run a script once per write (or flush) it does, failing that one:
 * every operation must fail with the injected error or succeed, and after
 * each one the driver's state is exact, agrees with the file's header,
 * the file is not corrupt and the guest reads what it wrote (or, for the
 * failed request, what it had or what it wrote).  Once the faults stop, a
 * flush must leave the file exact: a failed I/O leaks nothing.  A failed
 * header write or flush stops the image instead (every failed flush does):
 * then qwt_stopped_check().
 */
static void qcow_write_fault_sweep(struct kunit *test)
{
	const struct qwt_sweep *sw = test->param_value;
	const struct qwt_script *s = sw->script;
	struct qwt *t = qwt_new(test, &s->geo, false);
	struct qwt_file *f = t->top;
	unsigned int n, bad = 0, stops = 0;
	u64 pos, len, saved_len;
	u8 *saved, *saved_model;
	bool fired = true;
	int want;

	for (pos = 0; pos < s->prefill; pos += len) {
		len = min_t(u64, s->prefill - pos, SZ_64K);
		qwt_step(t, "prefill 0x%llx", pos);
		KUNIT_ASSERT_EQ(test, qwt_write(t, pos, len, false), 0);
	}
	qwt_close(t);
	if (s->snapshot)
		qwt_snapshot(t);
	qwt_step(t, "prepared");
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	saved_len = f->len;
	saved = kvmalloc(saved_len, GFP_KERNEL);
	saved_model = kvmalloc(t->vsize, GFP_KERNEL);
	if (!saved || !saved_model) {
		kvfree(saved);
		kvfree(saved_model);
		KUNIT_ASSERT_FAILURE(test, "out of memory");
	}
	memcpy(saved, f->buf, saved_len);
	memcpy(saved_model, t->model, t->vsize);

	want = sw->fault == QWT_FAULT_WRITE_ENOSPC ? -ENOSPC : -EIO;
	for (n = 1; fired && n < 1000 && bad < 4; n++) {
		bool stopped = false;

		memset(f->buf, 0, f->cap);
		memcpy(f->buf, saved, saved_len);
		f->len = saved_len;
		memcpy(t->model, saved_model, t->vsize);
		if (!qwt_sweep_run(t, sw, n, want, &fired, &stopped))
			bad++;
		stops += stopped;
	}
	kvfree(saved);
	kvfree(saved_model);
	kunit_info(test, "%s: %u runs, %u stopped, %u failed", sw->name, n - 1,
		   stops, bad);
	KUNIT_EXPECT_GT(test, n, 3U);
	KUNIT_EXPECT_FALSE(test, fired);
}

/* --- internal snapshots: create, delete, apply ------------------------------------ */

/* The disk is now @size bytes; bytes new to the model read as zeros. */
static void qwt_vsize_set(struct qwt *t, u64 size)
{
	u8 *m, *r;

	if (size > t->vcap) {
		m = kvzalloc(size, GFP_KERNEL);
		r = kvzalloc(size, GFP_KERNEL);
		if (!m || !r) {
			kvfree(m);
			kvfree(r);
			KUNIT_ASSERT_FAILURE(t->test, "out of memory");
		}
		memcpy(m, t->model, t->vsize);
		kvfree(t->model);
		kvfree(t->rbuf);
		t->model = m;
		t->rbuf = r;
		t->vcap = size;
	}
	if (size > t->vsize)
		memset(t->model + t->vsize, 0, size - t->vsize);
	t->vsize = size;
	t->touched_len = 0;	/* the next check reads everything */
}

/* What shows through an unallocated range: the backing file, or zeros. */
static void qwt_below(const struct qwt *t, u64 pos, u8 *dst, u64 n)
{
	u64 b = 0;

	if (t->back && pos < t->back->len)
		b = min(n, t->back->len - pos);
	if (b)
		memcpy(dst, t->back->buf + pos, b);
	memset(dst + b, 0, n - b);
}

/* Raw deflate made of stored blocks only, as qwt_deflate_stored() writes. */
static bool qwt_inflate_stored(const u8 *in, u64 inlen, u8 *out, u64 outlen)
{
	u64 i = 0, o = 0, b;
	bool last = false;

	while (!last) {
		if (i + 5 > inlen || (in[i] & ~1))
			return false;
		last = in[i] & 1;
		b = get_unaligned_le16(in + i + 1);
		if ((u16)~b != get_unaligned_le16(in + i + 3) ||
		    i + 5 + b > inlen || o + b > outlen)
			return false;
		memcpy(out + o, in + i + 5, b);
		i += 5 + b;
		o += b;
	}
	return o == outlen;
}

static bool qwt_file_copy(struct qwt *t, u8 *dst, u64 off, u64 n, u64 g)
{
	if (off + n > t->top->len) {
		KUNIT_FAIL(t->test, "%s: guest cluster %llu: host 0x%llx is past the file",
			   t->step, g, off);
		return false;
	}
	memcpy(dst, t->top->buf + off, n);
	return true;
}

/*
 * What the guest reads, for a disk of @size bytes, from the tree of the L1
 * table at @l1_off (@l1_size entries): decoded from the file alone, so it
 * checks the driver's tables, not its reading of them.
 */
static bool qwt_tree_read(struct qwt *t, const struct qwt_hdr *h, u64 l1_off,
			  u32 l1_size, u64 size, u8 *out)
{
	const struct qwt_file *f = t->top;
	u64 g, pos, n, l2, word, bitmap, host, off, span, sc = h->cs / 32, s, m;
	u8 *tmp = NULL;
	bool ok = true;

	if (l1_off + (u64)l1_size * 8 > f->len) {
		KUNIT_FAIL(t->test, "%s: L1 table 0x%llx is beyond the end of the file",
			   t->step, l1_off);
		return false;
	}
	for (g = 0; ok && g * h->cs < size; g++) {
		pos = g * h->cs;
		n = min(h->cs, size - pos);
		l2 = 0;
		word = 0;
		bitmap = 0;
		if (g / h->l2_entries < l1_size)
			l2 = get_unaligned_be64(f->buf + l1_off + g / h->l2_entries * 8) &
			     QCOW2_L1E_OFFSET_MASK;
		if (l2 && l2 + h->cs > f->len) {
			KUNIT_FAIL(t->test, "%s: L2 table 0x%llx is beyond the end of the file",
				   t->step, l2);
			ok = false;
			break;
		}
		if (l2) {
			word = get_unaligned_be64(f->buf + l2 + g % h->l2_entries * h->es);
			if (h->ext)
				bitmap = get_unaligned_be64(f->buf + l2 +
							    g % h->l2_entries * h->es + 8);
		}
		host = word & QCOW2_L2E_OFFSET_MASK;
		if (word & QCOW2_OFLAG_COMPRESSED) {
			qwt_comp_decode(h->cb, word, &off, &span);
			if (!tmp)
				tmp = kvmalloc(h->cs, GFP_KERNEL);
			ok = tmp && off < f->len &&
			     qwt_inflate_stored(f->buf + off, min(span, f->len - off),
						tmp, h->cs);
			if (!ok)
				KUNIT_FAIL(t->test, "%s: guest cluster %llu: bad stream at 0x%llx",
					   t->step, g, off);
			else
				memcpy(out + pos, tmp, n);
		} else if (!h->ext) {
			if ((word & QCOW2_OFLAG_ZERO) && h->version >= 3)
				memset(out + pos, 0, n);
			else if (host)
				ok = qwt_file_copy(t, out + pos, host, n, g);
			else
				qwt_below(t, pos, out + pos, n);
		} else {
			for (s = 0; ok && s < 32 && s * sc < n; s++) {
				m = min(sc, n - s * sc);
				if (bitmap & BIT_ULL(s))
					ok = qwt_file_copy(t, out + pos + s * sc,
							   host + s * sc, m, g);
				else if (bitmap & BIT_ULL(32 + s))
					memset(out + pos + s * sc, 0, m);
				else
					qwt_below(t, pos + s * sc, out + pos + s * sc, m);
			}
		}
	}
	kvfree(tmp);
	return ok;
}

/* @n bytes read as @want; else report the first difference. */
static bool qwt_same(struct qwt *t, const char *what, const u8 *got,
		     const u8 *want, u64 n)
{
	u64 i, bad = 0, first = 0;

	if (!memcmp(got, want, n))
		return true;
	for (i = 0; i < n; i++)
		if (got[i] != want[i] && !bad++)
			first = i;
	KUNIT_FAIL(t->test, "%s: %s: %llu bytes differ, first at 0x%llx: 0x%02x, want 0x%02x",
		   t->step, what, bad, first, got[first], want[first]);
	return false;
}

/**
 * struct qwt_fsnap - a snapshot table entry as the file holds it
 * @l1_off: L1 table offset
 * @l1_size: L1 entries
 * @size: disk size (the header's when the entry has none)
 * @id: id
 * @name: name
 */
struct qwt_fsnap {
	u64 l1_off;
	u32 l1_size;
	u64 size;
	char id[QCOW_SNAPSHOT_ID_MAX];
	char name[QCOW2_MAX_SNAPSHOT_NAME_LEN + 1];
};

/* The snapshot table the file's first sector names; NULL if it is bad. */
static struct qwt_fsnap *qwt_file_snaps(struct qwt *t, u32 *nr)
{
	const struct qwt_file *f = t->top;
	struct qwt_fsnap *s;
	struct qwt_hdr h;
	u64 pos, extra;
	u32 i, idl, nl;

	qwt_hdr_parse(f->buf, &h);
	*nr = h.nb_snap;
	s = kvcalloc(max(h.nb_snap, 1U), sizeof(*s), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, s);
	for (i = 0, pos = h.snap_off; i < h.nb_snap; i++) {
		if (pos + 40 > f->len)
			goto bad;
		s[i].l1_off = get_unaligned_be64(f->buf + pos);
		s[i].l1_size = get_unaligned_be32(f->buf + pos + 8);
		idl = get_unaligned_be16(f->buf + pos + 12);
		nl = get_unaligned_be16(f->buf + pos + 14);
		extra = get_unaligned_be32(f->buf + pos + 36);
		if (pos + 40 + extra + idl + nl > f->len || idl >= sizeof(s[i].id) ||
		    nl >= sizeof(s[i].name))
			goto bad;
		s[i].size = extra >= 16 ? get_unaligned_be64(f->buf + pos + 48) : h.size;
		memcpy(s[i].id, f->buf + pos + 40 + extra, idl);
		memcpy(s[i].name, f->buf + pos + 40 + extra + idl, nl);
		pos += round_up(40 + extra + idl + nl, 8);
	}
	return s;
bad:
	KUNIT_FAIL(t->test, "%s: snapshot %u at 0x%llx does not parse", t->step, i, pos);
	kvfree(s);
	return NULL;
}

/*
 * The file lists the model's snapshots (ids, names, disk sizes, in order),
 * and each reads, from the file, what the guest read when it was taken.
 */
static bool qwt_snaps_check(struct qwt *t)
{
	struct qwt_fsnap *fs;
	struct qwt_snap *sn;
	struct qwt_hdr h;
	char what[64];
	bool ok = true;
	u32 nr, i;
	u8 *buf;

	qwt_hdr_parse(t->top->buf, &h);
	fs = qwt_file_snaps(t, &nr);
	if (!fs)
		return false;
	if (nr != t->nr_snaps) {
		KUNIT_FAIL(t->test, "%s: the file has %u snapshots, want %u", t->step, nr,
			   t->nr_snaps);
		ok = false;
		nr = 0;
	}
	for (i = 0; i < nr; i++) {
		sn = &t->snaps[i];
		if (strcmp(fs[i].id, sn->id) || strcmp(fs[i].name, sn->name) ||
		    fs[i].size != sn->size) {
			KUNIT_FAIL(t->test, "%s: snapshot %u: id %s %.40s %llu, want %s %.40s %llu",
				   t->step, i, fs[i].id, fs[i].name, fs[i].size, sn->id,
				   sn->name, sn->size);
			ok = false;
			continue;
		}
		buf = kvmalloc(sn->size, GFP_KERNEL);
		if (!buf) {
			KUNIT_FAIL(t->test, "out of memory");
			ok = false;
			break;
		}
		snprintf(what, sizeof(what), "snapshot %s (%.20s)", sn->id, sn->name);
		if (!qwt_tree_read(t, &h, fs[i].l1_off, fs[i].l1_size, sn->size, buf) ||
		    !qwt_same(t, what, buf, sn->data, sn->size))
			ok = false;
		kvfree(buf);
	}
	kvfree(fs);
	return ok;
}

/* After a flush: the file's active tree reads as the model. */
static bool qwt_active_check(struct qwt *t)
{
	struct qwt_hdr h;
	bool ok;
	u8 *buf;

	qwt_hdr_parse(t->top->buf, &h);
	if (h.size != t->vsize) {
		KUNIT_FAIL(t->test, "%s: the file's disk size is %llu, want %llu", t->step,
			   h.size, t->vsize);
		return false;
	}
	buf = kvmalloc(h.size, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, buf);
	ok = qwt_tree_read(t, &h, h.l1_off, h.l1_size, h.size, buf) &&
	     qwt_same(t, "active tree in the file", buf, t->model, h.size);
	kvfree(buf);
	return ok;
}

/* Clusters with a nonzero refcount in the file. */
static u64 qwt_file_alloc(struct qwt *t)
{
	struct qwt_hdr h;
	u64 c, rc, n = 0;

	qwt_hdr_parse(t->top->buf, &h);
	for (c = 0; c < DIV64_U64_ROUND_UP(t->top->len, h.cs); c++)
		n += qwt_disk_rc(t->top, &h, c, &rc) && rc;
	return n;
}

/* --- the model's snapshot list --- */

static u64 qwt_next_id(const struct qwt *t)
{
	u64 max = 0, id;
	unsigned int i;

	for (i = 0; i < t->nr_snaps; i++)
		if (!kstrtou64(t->snaps[i].id, 10, &id) && id > max)
			max = id;
	return max + 1;
}

static int qwt_snap_find(const struct qwt *t, const char *id, const char *name)
{
	unsigned int i;

	for (i = 0; i < t->nr_snaps; i++)
		if (id[0] ? !strcmp(t->snaps[i].id, id) : !strcmp(t->snaps[i].name, name))
			return i;
	return -1;
}

static void qwt_model_add(struct qwt *t, const char *id, const char *name)
{
	struct qwt_snap *sn;

	KUNIT_ASSERT_LT(t->test, t->nr_snaps, QWT_MAX_SNAPS);
	sn = &t->snaps[t->nr_snaps];
	sn->data = kvmalloc(t->vsize, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, sn->data);
	memcpy(sn->data, t->model, t->vsize);
	sn->size = t->vsize;
	strscpy(sn->id, id, sizeof(sn->id));
	strscpy(sn->name, name, sizeof(sn->name));
	t->nr_snaps++;
}

static void qwt_model_del(struct qwt *t, unsigned int i)
{
	kvfree(t->snaps[i].data);
	memmove(&t->snaps[i], &t->snaps[i + 1],
		(t->nr_snaps - i - 1) * sizeof(t->snaps[0]));
	t->nr_snaps--;
}

static void qwt_model_apply(struct qwt *t, unsigned int i)
{
	qwt_vsize_set(t, t->snaps[i].size);
	memcpy(t->model, t->snaps[i].data, t->vsize);
}

static void qwt_model_clear(struct qwt *t)
{
	while (t->nr_snaps)
		kvfree(t->snaps[--t->nr_snaps].data);
}

/* Deep copy of the model's snapshots from @src (another qwt's list). */
static void qwt_model_copy(struct qwt *t, const struct qwt_snap *src, unsigned int nr)
{
	unsigned int i;

	qwt_model_clear(t);
	for (i = 0; i < nr; i++) {
		t->snaps[i] = src[i];
		t->snaps[i].data = kvmalloc(src[i].size, GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(t->test, t->snaps[i].data);
		memcpy(t->snaps[i].data, src[i].data, src[i].size);
		t->nr_snaps++;
	}
}

/* --- the operations --- */

enum qwt_sop {
	QWT_SOP_CREATE,
	QWT_SOP_DELETE,
	QWT_SOP_APPLY,
};

/*
 * What the ioctl does around an operation (qcow_snapshot_modify() and
 * qcow_snapshot_apply()), minus the queue freeze: nothing is in flight.
 */
static int qwt_snap_call(struct qwt *t, enum qwt_sop op, struct qcow_snapshot_cmd *c)
{
	struct qcow_image *img = qwt_img(t);
	int err;

	err = qcow_image_flush(img, true);
	if (!err) {
		mutex_lock(&img->meta_lock);
		if (qcow_image_failed(img))
			err = -EIO;
		else if (op == QWT_SOP_CREATE)
			err = qcow_snapshot_create(img, c);
		else if (op == QWT_SOP_DELETE)
			err = qcow_snapshot_delete(img, c);
		else
			err = qcow_snapshot_apply_img(img, c);
		/* The device's capacity follows the header (apply). */
		img->layer->size = img->hdr->size;
		mutex_unlock(&img->meta_lock);
	}
	qwt_quiesce(t);
	return err;
}

static struct qcow_snapshot_cmd *qwt_cmd(struct qwt *t, const char *id, const char *name)
{
	struct qcow_snapshot_cmd *c = kzalloc(sizeof(*c), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(t->test, c);
	strscpy(c->id, id, sizeof(c->id));
	strscpy(c->name, name, sizeof(c->name));
	return c;
}

/* Create @name; when it succeeds, the id is max + 1 and the model has it. */
static int qwt_create(struct qwt *t, const char *name)
{
	struct qcow_snapshot_cmd *c = qwt_cmd(t, "", name);
	char want[24];
	int err;

	snprintf(want, sizeof(want), "%llu", qwt_next_id(t));
	err = qwt_snap_call(t, QWT_SOP_CREATE, c);
	if (!err) {
		KUNIT_EXPECT_STREQ_MSG(t->test, c->id, want, "%s: id", t->step);
		qwt_model_add(t, c->id, name);
	}
	kfree(c);
	return err;
}

/*
 * Delete or apply the snapshot @id (when not empty) or @name selects; when
 * it succeeds, the command names the snapshot and the model follows.
 */
static int qwt_select(struct qwt *t, enum qwt_sop op, const char *id, const char *name)
{
	struct qcow_snapshot_cmd *c = qwt_cmd(t, id, name);
	int i = qwt_snap_find(t, id, name), err;

	err = qwt_snap_call(t, op, c);
	if (!err) {
		KUNIT_ASSERT_GE_MSG(t->test, i, 0, "%s: succeeded on no snapshot", t->step);
		KUNIT_EXPECT_STREQ_MSG(t->test, c->id, t->snaps[i].id, "%s", t->step);
		KUNIT_EXPECT_STREQ_MSG(t->test, c->name, t->snaps[i].name, "%s", t->step);
		if (op == QWT_SOP_DELETE)
			qwt_model_del(t, i);
		else
			qwt_model_apply(t, i);
	}
	kfree(c);
	return err;
}

static int qwt_delete(struct qwt *t, const char *id, const char *name)
{
	return qwt_select(t, QWT_SOP_DELETE, id, name);
}

static int qwt_apply(struct qwt *t, const char *id, const char *name)
{
	return qwt_select(t, QWT_SOP_APPLY, id, name);
}

/* After a snapshot operation: the driver, the file, the guest, the snapshots. */
static void qwt_snap_ok(struct qwt *t)
{
	KUNIT_ASSERT_TRUE(t->test, qwt_check(t));
	KUNIT_ASSERT_TRUE(t->test, qwt_snaps_check(t));
}

/* ... and after flushing it: exact, and the file's active tree too. */
static void qwt_snap_step_ok(struct qwt *t)
{
	qwt_snap_ok(t);
	KUNIT_ASSERT_TRUE(t->test, qwt_flush_check(t));
	KUNIT_ASSERT_TRUE(t->test, qwt_active_check(t));
}

/* Close, check, edit nothing, reopen: snapshots read the same. */
static void qwt_snap_reopen(struct qwt *t)
{
	KUNIT_ASSERT_TRUE(t->test, qwt_reopen(t));
	KUNIT_ASSERT_TRUE(t->test, qwt_snaps_check(t));
	KUNIT_ASSERT_TRUE(t->test, qwt_active_check(t));
}

/*
 * Resize a closed image the way qemu-img resize does: growing extends the
 * L1 table in its clusters (the new range reads as the backing file or
 * zeros); shrinking, to whole L2 spans, drops the references of the L1
 * entries beyond the new end.
 */
static void qwt_resize_closed(struct qwt *t, u64 size)
{
	struct qwt_file *f = t->top;
	u64 span, n, i, j, e, l2, w, off, sp, c, old = t->vsize;
	struct qwt_hdr h;
	u8 *p;

	KUNIT_ASSERT_NULL(t->test, f->l.img);
	qwt_hdr_parse(f->buf, &h);
	span = h.l2_entries * h.cs;
	n = DIV64_U64_ROUND_UP(size, span);
	KUNIT_ASSERT_LE(t->test, n * 8, round_up((u64)h.l1_size * 8, h.cs));
	KUNIT_ASSERT_TRUE(t->test, size >= old || !(size % span));
	for (i = n; i < h.l1_size; i++) {
		e = get_unaligned_be64(f->buf + h.l1_off + i * 8);
		l2 = e & QCOW2_L1E_OFFSET_MASK;
		put_unaligned_be64(0, f->buf + h.l1_off + i * 8);
		if (!l2)
			continue;
		for (j = 0; j < h.l2_entries; j++) {
			p = f->buf + l2 + j * h.es;
			w = get_unaligned_be64(p);
			if (w & QCOW2_OFLAG_COMPRESSED) {
				qwt_comp_decode(h.cb, w, &off, &sp);
				for (c = off >> h.cb; c <= (off + sp - 1) >> h.cb; c++)
					qwt_rc_add(t, f, c, -1);
			} else if (w & QCOW2_L2E_OFFSET_MASK) {
				qwt_rc_add(t, f, (w & QCOW2_L2E_OFFSET_MASK) >> h.cb, -1);
			}
		}
		qwt_rc_add(t, f, l2 >> h.cb, -1);
	}
	for (i = h.l1_size; i < n; i++)
		KUNIT_ASSERT_EQ(t->test, get_unaligned_be64(f->buf + h.l1_off + i * 8), 0ULL);
	put_unaligned_be64(size, f->buf + 24);
	put_unaligned_be32(n, f->buf + 36);
	qwt_vsize_set(t, size);
	if (size > old)
		qwt_below(t, old, t->model + old, size - old);
}

/* --- directed cases --- */

/**
 * struct qwt_snap_case - an image for the directed snapshot cases
 * @name: parameter name
 * @geo: the image
 * @comp: clusters 1-3 compressed (packed, sharing host clusters)
 * @qemu: a snapshot made by qemu-img ("1", "snap") before the driver's
 */
struct qwt_snap_case {
	const char *name;
	struct qwt_geo geo;
	bool comp;
	bool qemu;
};

#define QWT_SCASE(n, v, cb, ro, e, lz, sz, bk, cp, qm) \
	{ .name = n, .geo = QWT_GEO(NULL, v, cb, ro, e, lz, sz, bk), \
	  .comp = cp, .qemu = qm }

static const struct qwt_snap_case qwt_snap_basic_cases[] = {
	QWT_SCASE("c512-r2", 3, 9, 2, false, false, SZ_64K, 0, false, false),
	QWT_SCASE("c1k-r3-qemu-snapshot", 3, 10, 3, false, false, SZ_128K, 0, false, true),
	QWT_SCASE("c4k-r4", 3, 12, 4, false, false, SZ_256K, 0, false, false),
	QWT_SCASE("c4k-r5-short-backing", 3, 12, 5, false, false, SZ_256K, 160000,
		  false, false),
	QWT_SCASE("c4k-v2", 2, 12, 4, false, false, SZ_256K, 0, false, false),
	QWT_SCASE("c4k-v2-backing-qemu-snapshot", 2, 12, 4, false, false, SZ_256K, SZ_256K,
		  false, true),
	QWT_SCASE("c4k-lazy", 3, 12, 4, false, true, SZ_256K, 0, false, false),
	QWT_SCASE("c4k-compressed", 3, 12, 4, false, false, SZ_256K, 0, true, false),
	QWT_SCASE("c16k-ext-r6", 3, 14, 6, true, false, SZ_512K, 0, false, false),
	QWT_SCASE("c64k-ext-backing-compressed", 3, 16, 4, true, false, SZ_1M, SZ_1M,
		  true, false),
	QWT_SCASE("c64k-r6", 3, 16, 6, false, false, SZ_1M, 0, false, false),
	QWT_SCASE("c2M", 3, 21, 4, false, false, 8 * SZ_1M, 0, false, false),
};

static void qwt_snap_case_desc(const struct qwt_snap_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qwt_snap_basic, qwt_snap_basic_cases, qwt_snap_case_desc);

/*
 * Write, check; the test stops on failure.  With clusters of 1 MiB and
 * more, the checks after the snapshot operations suffice (they are slow).
 */
static void qwt_snap_write(struct qwt *t, u64 pos, u64 len)
{
	qwt_step(t, "write 0x%llx+0x%llx", pos, len);
	KUNIT_ASSERT_EQ(t->test, qwt_write(t, pos, len, false), 0);
	if (t->cs < SZ_1M)
		KUNIT_ASSERT_TRUE(t->test, qwt_check(t));
}

static void qwt_snap_zero(struct qwt *t, u64 pos, u64 len, bool discard)
{
	qwt_step(t, "%s 0x%llx+0x%llx", discard ? "discard" : "write-zeroes", pos, len);
	KUNIT_ASSERT_EQ(t->test, qwt_zero(t, pos, len, discard, true), 0);
	if (t->cs < SZ_1M)
		KUNIT_ASSERT_TRUE(t->test, qwt_check(t));
}

/*
 * Create, write over shared clusters, create again, apply both (by name
 * and by id), delete everything: after each step the refcounts are exact
 * in memory and in the file, COPIED is set exactly on clusters with one
 * reference, the guest reads the model, every snapshot reads (from the
 * file) what the guest read when it was taken, and the active tree in the
 * file reads as the model after a flush.
 */
static void qcow_snapshot_basic(struct kunit *test)
{
	const struct qwt_snap_case *sc = test->param_value;
	struct qwt *t = qwt_new(test, &sc->geo, false);
	u64 cs = t->cs, next = 0, gc;
	u64 nc = t->vsize / cs;
	char id2[QCOW_SNAPSHOT_ID_MAX];

	KUNIT_ASSERT_GE(test, nc, 4ULL);
	qwt_step(t, "fill");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, t->vsize * 3 / 4, false), 0);
	if (sc->comp || sc->qemu) {
		qwt_close(t);
		if (sc->comp)
			for (gc = 1; gc <= 3; gc++)
				qwt_compress(t, gc, &next);
		if (sc->qemu) {
			qwt_snapshot(t);
			qwt_model_add(t, "1", "snap");
		}
		qwt_step(t, "edited");
		KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
		KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	}
	KUNIT_ASSERT_TRUE(test, qwt_check(t));

	qwt_step(t, "create s1");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "s1"), 0);
	qwt_snap_step_ok(t);

	qwt_snap_write(t, cs + 100, 300);
	qwt_snap_write(t, 2 * cs, cs);
	qwt_snap_zero(t, 3 * cs, cs, true);
	qwt_snap_zero(t, 100, 600, false);
	qwt_snap_write(t, t->vsize - cs - 512, cs + 512);
	qwt_step(t, "written after s1");
	KUNIT_ASSERT_TRUE(test, qwt_snaps_check(t));

	qwt_step(t, "create s2");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "s2"), 0);
	strscpy(id2, t->snaps[t->nr_snaps - 1].id, sizeof(id2));
	qwt_snap_step_ok(t);
	qwt_snap_write(t, cs + 1000, 24);
	qwt_snap_zero(t, 2 * cs, 2 * cs, true);
	qwt_snap_write(t, nc / 2 * cs - 700, 1400);

	qwt_step(t, "apply s1 by name");
	KUNIT_ASSERT_EQ(test, qwt_apply(t, "", "s1"), 0);
	qwt_snap_step_ok(t);
	qwt_snap_write(t, 0, 2 * cs);
	qwt_snap_zero(t, 2 * cs, cs, false);

	qwt_step(t, "apply s2 by id");
	KUNIT_ASSERT_EQ(test, qwt_apply(t, id2, ""), 0);
	qwt_snap_ok(t);
	qwt_step(t, "reopen after apply");
	qwt_snap_reopen(t);

	qwt_step(t, "create s3 after apply");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "s3"), 0);
	qwt_snap_ok(t);
	qwt_snap_write(t, 3 * cs + 7, 2 * cs);

	qwt_step(t, "delete s1 by name");
	KUNIT_ASSERT_EQ(test, qwt_delete(t, "", "s1"), 0);
	qwt_snap_step_ok(t);
	qwt_step(t, "delete s2 by id");
	KUNIT_ASSERT_EQ(test, qwt_delete(t, id2, ""), 0);
	qwt_snap_step_ok(t);
	qwt_snap_write(t, cs / 2, cs);
	while (t->nr_snaps) {
		qwt_step(t, "delete %s", t->snaps[0].name);
		KUNIT_ASSERT_EQ(test, qwt_delete(t, t->snaps[0].id, ""), 0);
		qwt_snap_step_ok(t);
	}
	qwt_step(t, "all deleted");
	qwt_snap_reopen(t);
}

/* --- names and ids --- */

static const struct qwt_geo qwt_names_geo =
	QWT_GEO("names", 3, 12, 4, false, false, SZ_64K, 0);

/* An operation refused before it changed anything: nothing was written. */
static void qwt_snap_refused(struct qwt *t, int got, int want)
{
	KUNIT_EXPECT_EQ_MSG(t->test, got, want, "%s", t->step);
	KUNIT_ASSERT_TRUE(t->test, qwt_check(t));
	KUNIT_ASSERT_TRUE(t->test, qwt_snaps_check(t));
}

/*
 * Names are unique and 1..255 bytes; apply and delete select by id when
 * one is given, else by name (a snapshot may be named like another's id);
 * ids are the highest id plus one, as QEMU assigns them, so deleting the
 * highest id frees it for the next snapshot.
 */
static void qcow_snapshot_names(struct kunit *test)
{
	struct qwt *t = qwt_new(test, &qwt_names_geo, false);
	char *name = kunit_kzalloc(test, QCOW_SNAPSHOT_NAME_MAX, GFP_KERNEL);
	unsigned int writes;

	KUNIT_ASSERT_NOT_NULL(test, name);
	qwt_step(t, "fill");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, t->vsize, false), 0);
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	writes = t->top->writes;

	qwt_step(t, "empty name");
	qwt_snap_refused(t, qwt_create(t, ""), -EINVAL);
	memset(name, 'n', QCOW_SNAPSHOT_NAME_LEN + 1);
	qwt_step(t, "256-byte name");
	qwt_snap_refused(t, qwt_create(t, name), -ENAMETOOLONG);
	qwt_step(t, "unknown name");
	qwt_snap_refused(t, qwt_delete(t, "", "nope"), -ENOENT);
	qwt_snap_refused(t, qwt_apply(t, "", "nope"), -ENOENT);
	qwt_step(t, "unknown id");
	qwt_snap_refused(t, qwt_delete(t, "1", ""), -ENOENT);
	qwt_snap_refused(t, qwt_apply(t, "1", "a"), -ENOENT);
	KUNIT_EXPECT_EQ(test, t->top->writes, writes);

	qwt_step(t, "255-byte name");
	name[QCOW_SNAPSHOT_NAME_LEN] = 0;
	KUNIT_ASSERT_EQ(test, qwt_create(t, name), 0);		/* id 1 */
	qwt_snap_ok(t);
	qwt_snap_write(t, 0, 512);
	qwt_step(t, "create a");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "a"), 0);		/* id 2 */
	qwt_snap_ok(t);
	qwt_snap_write(t, 4096, 512);
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	writes = t->top->writes;
	qwt_step(t, "duplicate a");
	qwt_snap_refused(t, qwt_create(t, "a"), -EEXIST);
	qwt_step(t, "duplicate 255-byte name");
	qwt_snap_refused(t, qwt_create(t, name), -EEXIST);
	KUNIT_EXPECT_EQ(test, t->top->writes, writes);

	/* Named like the other's id. */
	qwt_step(t, "create 2");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "2"), 0);		/* id 3 */
	qwt_snap_ok(t);
	qwt_snap_write(t, 8192, 512);
	qwt_step(t, "create 1");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "1"), 0);		/* id 4 */
	qwt_snap_ok(t);
	qwt_snap_write(t, 12288, 512);

	qwt_step(t, "apply id 2 (a)");
	KUNIT_ASSERT_EQ(test, qwt_apply(t, "2", "1"), 0);
	qwt_snap_ok(t);
	qwt_step(t, "apply name 2 (id 3)");
	KUNIT_ASSERT_EQ(test, qwt_apply(t, "", "2"), 0);
	qwt_snap_ok(t);
	qwt_step(t, "apply id 1 (the long name)");
	KUNIT_ASSERT_EQ(test, qwt_apply(t, "1", ""), 0);
	qwt_snap_ok(t);

	qwt_step(t, "delete name 1 (id 4, the highest)");
	KUNIT_ASSERT_EQ(test, qwt_delete(t, "", "1"), 0);
	qwt_snap_ok(t);
	KUNIT_EXPECT_STREQ(test, t->snaps[t->nr_snaps - 1].id, "3");
	qwt_step(t, "create b: id 4 again");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "b"), 0);
	KUNIT_EXPECT_STREQ(test, t->snaps[t->nr_snaps - 1].id, "4");
	qwt_snap_ok(t);
	qwt_step(t, "delete id 1: the highest stays");
	KUNIT_ASSERT_EQ(test, qwt_delete(t, "1", ""), 0);
	qwt_snap_ok(t);
	qwt_step(t, "create c: id 5");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "c"), 0);
	KUNIT_EXPECT_STREQ(test, t->snaps[t->nr_snaps - 1].id, "5");
	qwt_step(t, "the long name is free again");
	KUNIT_ASSERT_EQ(test, qwt_create(t, name), 0);
	qwt_snap_step_ok(t);
	qwt_step(t, "deleted twice");
	KUNIT_ASSERT_EQ(test, qwt_delete(t, "", "a"), 0);
	qwt_snap_refused(t, qwt_delete(t, "", "a"), -ENOENT);
	qwt_snap_step_ok(t);
	qwt_snap_reopen(t);
}

/* --- apply across disk sizes --- */

static const struct qwt_geo qwt_resize_geos[] = {
	/* L2 spans: 32 KiB (512-byte clusters), 128 KiB (1 KiB). */
	QWT_GEO("c512", 3, 9, 4, false, false, 3 * SZ_32K, 0),
	QWT_GEO("c512-v2", 2, 9, 4, false, false, 3 * SZ_32K, 0),
	QWT_GEO("c1k-r2-backing", 3, 10, 2, false, false, 3 * SZ_128K, SZ_1M),
};

KUNIT_ARRAY_PARAM(qwt_resize, qwt_resize_geos, qwt_geo_desc);

/*
 * A snapshot taken before the disk grew (its L1 table shorter than the
 * active one), and one taken before the disk shrank (its L1 table longer:
 * apply must switch to a larger active L1 table): apply gives the
 * snapshot's disk size to the header, the device and the guest.
 */
static void qcow_snapshot_apply_resize(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	struct qcow_image *img;
	u64 span = t->cs / (g->ext ? 16 : 8) * t->cs, small = t->vsize, big = 8 * span;
	u64 l1_off;

	qwt_step(t, "fill");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, small - 3000, false), 0);
	qwt_step(t, "create small");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "small"), 0);
	qwt_snap_ok(t);
	qwt_snap_write(t, 1000, 5000);

	qwt_step(t, "grow");
	qwt_close(t);
	qwt_resize_closed(t, big);
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	qwt_snap_write(t, small - 100, 2 * span);
	qwt_snap_write(t, big - span / 2, span / 2);
	qwt_step(t, "create big");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "big"), 0);
	qwt_snap_step_ok(t);
	qwt_snap_write(t, small + 5000, 3000);

	qwt_step(t, "apply small (shorter L1)");
	KUNIT_ASSERT_EQ(test, qwt_apply(t, "", "small"), 0);
	img = qwt_img(t);
	KUNIT_EXPECT_EQ(test, img->hdr->size, small);
	KUNIT_EXPECT_EQ(test, t->top->l.size, small);
	qwt_snap_step_ok(t);
	qwt_snap_write(t, 0, 3000);
	qwt_step(t, "apply big");
	KUNIT_ASSERT_EQ(test, qwt_apply(t, "", "big"), 0);
	KUNIT_EXPECT_EQ(test, img->hdr->size, big);
	qwt_snap_step_ok(t);
	qwt_step(t, "delete both");
	KUNIT_ASSERT_EQ(test, qwt_delete(t, "", "small"), 0);
	KUNIT_ASSERT_EQ(test, qwt_delete(t, "", "big"), 0);
	qwt_snap_step_ok(t);

	qwt_step(t, "create large");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "large"), 0);
	qwt_snap_ok(t);
	qwt_snap_write(t, 7 * span - 1000, 2000);
	qwt_step(t, "shrink to two L2 spans");
	qwt_close(t);
	qwt_resize_closed(t, 2 * span);
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	img = qwt_img(t);
	KUNIT_ASSERT_EQ(test, img->hdr->l1_size, 2U);
	KUNIT_ASSERT_TRUE(test, qwt_check(t));
	KUNIT_ASSERT_TRUE(test, qwt_snaps_check(t));
	qwt_snap_write(t, span - 10, 20);

	qwt_step(t, "apply large (longer L1)");
	l1_off = img->hdr->l1_table_offset;
	KUNIT_ASSERT_EQ(test, qwt_apply(t, "", "large"), 0);
	KUNIT_EXPECT_EQ(test, img->hdr->size, big);
	KUNIT_EXPECT_EQ(test, t->top->l.size, big);
	KUNIT_EXPECT_GE(test, img->hdr->l1_size, 8U);
	KUNIT_EXPECT_NE(test, img->hdr->l1_table_offset, l1_off);
	qwt_snap_step_ok(t);
	qwt_snap_write(t, 5 * span + 3, span);
	qwt_snap_write(t, big - 512, 512);
	qwt_snap_reopen(t);
	qwt_step(t, "delete large");
	KUNIT_ASSERT_EQ(test, qwt_delete(t, "", "large"), 0);
	qwt_snap_step_ok(t);
	qwt_snap_reopen(t);
}

/* --- delete gives everything back --- */

static const struct qwt_geo qwt_give_back_geos[] = {
	QWT_GEO("c512-r4", 3, 9, 4, false, false, SZ_64K, 0),
	QWT_GEO("c16k-ext-backing", 3, 14, 4, true, false, SZ_512K, SZ_512K),
	QWT_GEO("c64k-r6", 3, 16, 6, false, false, SZ_1M, 0),
};

KUNIT_ARRAY_PARAM(qwt_give_back, qwt_give_back_geos, qwt_geo_desc);

/*
 * Twenty snapshots with writes between them, then deleted in an order that
 * is neither creation order nor its reverse: every cluster that drops to
 * zero is punched, COPIED comes back on every active cluster, and the
 * image holds as many clusters as before the first snapshot, give or take
 * a refcount block.
 */
static void qcow_snapshot_give_back(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	u64 cs = t->cs, nc = t->vsize / cs, a0, a1, c, rc, w, b;
	unsigned int i, punches;
	struct qwt_hdr h;
	char name[16];

	qwt_step(t, "fill");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, t->vsize, false), 0);
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	a0 = qwt_file_alloc(t);
	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "s%u", i);
		qwt_step(t, "create %s", name);
		KUNIT_ASSERT_EQ(test, qwt_create(t, name), 0);
		KUNIT_ASSERT_TRUE(test, qwt_check(t));
		qwt_snap_write(t, (i * 7 % nc) * cs + 100, cs);
	}
	qwt_step(t, "twenty snapshots");
	qwt_snap_step_ok(t);
	punches = t->top->punches;
	for (i = 0; t->nr_snaps; i++) {
		unsigned int k = (i * 7) % t->nr_snaps;

		qwt_step(t, "delete %s", t->snaps[k].name);
		if (i % 2)
			KUNIT_ASSERT_EQ(test, qwt_delete(t, "", t->snaps[k].name), 0);
		else
			KUNIT_ASSERT_EQ(test, qwt_delete(t, t->snaps[k].id, ""), 0);
		qwt_snap_ok(t);
	}
	qwt_step(t, "all deleted");
	qwt_snap_step_ok(t);
	KUNIT_EXPECT_GT(test, t->top->punches, punches);
	a1 = qwt_file_alloc(t);
	KUNIT_EXPECT_LE_MSG(test, a1, a0 + 2, "clusters in use: %llu before, %llu after",
			    a0, a1);
	qwt_hdr_parse(t->top->buf, &h);
	for (c = 0; c < DIV64_U64_ROUND_UP(t->top->len, cs); c++)
		if (qwt_disk_rc(t->top, &h, c, &rc) && !rc)
			KUNIT_EXPECT_TRUE_MSG(test,
					      qwt_all_zero(t->top->buf + c * cs,
							   min(cs, t->top->len - c * cs)),
					      "free cluster %llu not punched", c);
	for (c = 0; c < nc; c++) {
		qwt_disk_l2e(t->top, c, &w, &b);
		KUNIT_EXPECT_TRUE_MSG(test, w & QCOW2_OFLAG_COPIED,
				      "guest cluster %llu: 0x%llx", c, w);
	}
	qwt_snap_reopen(t);
}

/* --- refcount overflow --- */

static const struct qwt_geo qwt_overflow_geos[] = {
	QWT_GEO("r0", 3, 12, 0, false, false, SZ_64K, 0),
	QWT_GEO("r1", 3, 12, 1, false, false, SZ_64K, 0),
};

KUNIT_ARRAY_PARAM(qwt_overflow, qwt_overflow_geos, qwt_geo_desc);

/*
 * Refcounts of one bit (one owner) and two bits (three owners): a snapshot
 * that would need more is refused with -ERANGE, leaving the snapshot list
 * as it was, no cluster under-counted and COPIED only on clusters with one
 * reference (leaks allowed); everything else goes on working.
 */
static void qcow_snapshot_refcount_overflow(struct kunit *test)
{
	const struct qwt_geo *g = test->param_value;
	struct qwt *t = qwt_new(test, g, false);
	u64 cs = t->cs;

	if (!g->refcount_order) {
		qwt_step(t, "create on the empty disk");
		KUNIT_ASSERT_EQ(test, qwt_create(t, "empty"), 0);
		qwt_snap_step_ok(t);
		qwt_snap_write(t, 0, 8 * cs);
		qwt_step(t, "create with data");
		KUNIT_EXPECT_EQ(test, qwt_create(t, "full"), -ERANGE);
		t->leaks_ok = true;
		qwt_snap_step_ok(t);
		qwt_snap_write(t, 100, cs);
		qwt_step(t, "apply empty");
		KUNIT_ASSERT_EQ(test, qwt_apply(t, "", "empty"), 0);
		qwt_snap_step_ok(t);
		qwt_step(t, "delete empty");
		KUNIT_ASSERT_EQ(test, qwt_delete(t, "", "empty"), 0);
		qwt_snap_step_ok(t);
		qwt_snap_reopen(t);
		return;
	}
	qwt_snap_write(t, 0, 8 * cs);
	qwt_step(t, "create s1, s2");
	KUNIT_ASSERT_EQ(test, qwt_create(t, "s1"), 0);
	KUNIT_ASSERT_EQ(test, qwt_create(t, "s2"), 0);
	qwt_snap_step_ok(t);
	/* Guest cluster 0 exclusively owned again, 1-7 at the maximum. */
	qwt_snap_write(t, 0, cs);
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	qwt_step(t, "create s3: overflow");
	KUNIT_EXPECT_EQ(test, qwt_create(t, "s3"), -ERANGE);
	t->leaks_ok = true;
	qwt_snap_step_ok(t);
	qwt_snap_write(t, 0, 2 * cs);
	qwt_step(t, "delete s1, create s3");
	KUNIT_ASSERT_EQ(test, qwt_delete(t, "", "s1"), 0);
	qwt_snap_ok(t);
	KUNIT_ASSERT_EQ(test, qwt_create(t, "s3"), 0);
	qwt_snap_step_ok(t);
	/* s2's clusters 2-7 have three owners: the active tree, s2 and s3. */
	qwt_step(t, "apply s2: overflow");
	KUNIT_EXPECT_EQ(test, qwt_apply(t, "", "s2"), -ERANGE);
	qwt_snap_step_ok(t);
	qwt_step(t, "delete s3, apply s2");
	KUNIT_ASSERT_EQ(test, qwt_delete(t, "", "s3"), 0);
	qwt_snap_ok(t);
	KUNIT_ASSERT_EQ(test, qwt_apply(t, "", "s2"), 0);
	qwt_snap_step_ok(t);
	qwt_snap_reopen(t);
}

/* --- seeded random sequences --- */

/**
 * struct qwt_snap_random_case - one random sequence with snapshots
 * @name: parameter name
 * @geo: the image
 * @seed: PRNG seed
 * @ops: operations
 * @comp: compress a few clusters first
 */
struct qwt_snap_random_case {
	const char *name;
	struct qwt_geo geo;
	u64 seed;
	unsigned int ops;
	bool comp;
};

#define QWT_SRCASE(n, v, cb, ro, e, lz, sz, bk, sd, cp) \
	{ .name = n, .geo = QWT_GEO(NULL, v, cb, ro, e, lz, sz, bk), \
	  .seed = sd, .ops = 200, .comp = cp }

static const struct qwt_snap_random_case qwt_snap_random_cases[] = {
	QWT_SRCASE("c512-r4", 3, 9, 4, false, false, SZ_128K, 0, 21, false),
	QWT_SRCASE("c4k-r6-short-backing", 3, 12, 6, false, false, SZ_256K, 150000, 22, false),
	QWT_SRCASE("c4k-v2-backing", 2, 12, 4, false, false, SZ_256K, SZ_256K, 23, false),
	QWT_SRCASE("c16k-ext-r3", 3, 14, 3, true, false, SZ_512K, 0, 24, false),
	QWT_SRCASE("c4k-lazy", 3, 12, 4, false, true, SZ_256K, 0, 25, false),
	QWT_SRCASE("c64k-ext-backing", 3, 16, 5, true, false, SZ_1M, SZ_1M, 26, false),
	QWT_SRCASE("c1k-r3-compressed", 3, 10, 3, false, false, SZ_128K, 0, 27, true),
};

static void qwt_snap_random_desc(const struct qwt_snap_random_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qwt_snap_random, qwt_snap_random_cases, qwt_snap_random_desc);

#define QWT_RANDOM_SNAPS	8

static void qwt_snap_random_op(struct qwt *t, struct rnd_state *rs, unsigned int i)
{
	u64 r = qwt_rand(rs, 100);
	char name[16];
	bool by_id;
	const char *id, *nm;
	int k;

	if (r < 55) {
		qwt_random_op(t, rs, i);
		return;
	}
	k = t->nr_snaps ? qwt_rand(rs, t->nr_snaps) : -1;
	by_id = qwt_rand(rs, 2);
	if (r < 72 || k < 0 || (r < 80 && t->nr_snaps < 2)) {
		if (t->nr_snaps >= QWT_RANDOM_SNAPS) {
			qwt_step(t, "op %u: delete %s (full)", i, t->snaps[k].id);
			KUNIT_ASSERT_EQ(t->test, qwt_delete(t, t->snaps[k].id, ""), 0);
		} else {
			snprintf(name, sizeof(name), "r%u", i);
			qwt_step(t, "op %u: create %s", i, name);
			KUNIT_ASSERT_EQ(t->test, qwt_create(t, name), 0);
		}
	} else {
		id = by_id ? t->snaps[k].id : "";
		nm = by_id ? "" : t->snaps[k].name;
		qwt_step(t, "op %u: %s %s (%s)", i, r < 86 ? "delete" : "apply",
			 t->snaps[k].id, t->snaps[k].name);
		KUNIT_ASSERT_EQ(t->test, qwt_select(t, r < 86 ? QWT_SOP_DELETE : QWT_SOP_APPLY,
						    id, nm), 0);
	}
	qwt_snap_ok(t);
}

/*
 * Writes, discards, write-zeroes, flushes, reattaches and snapshot create,
 * delete and apply (by id or name) interleaved; all the checks after every
 * operation, and every snapshot's content after every snapshot operation.
 */
static void qcow_snapshot_random(struct kunit *test)
{
	const struct qwt_snap_random_case *c = test->param_value;
	struct qwt *t = qwt_new(test, &c->geo, false);
	struct rnd_state rs;
	u64 next = 0, gc;
	unsigned int i;

	prandom_seed_state(&rs, c->seed);
	if (c->comp) {
		qwt_step(t, "fill");
		KUNIT_ASSERT_EQ(test, qwt_write(t, 0, t->vsize, false), 0);
		qwt_close(t);
		for (gc = 2; gc < t->vsize / t->cs; gc += 3)
			qwt_compress(t, gc, &next);
		KUNIT_ASSERT_EQ(test, qwt_open(t), 0);
	}
	for (i = 0; i < c->ops; i++) {
		qwt_snap_random_op(t, &rs, i);
		if (i % 32 == 31) {
			qwt_step(t, "op %u: snapshots", i);
			KUNIT_ASSERT_TRUE(test, qwt_snaps_check(t));
		}
	}
	qwt_step(t, "end");
	KUNIT_ASSERT_TRUE(test, qwt_flush_check(t));
	qwt_snap_reopen(t);
	while (t->nr_snaps) {
		qwt_step(t, "end: delete %s", t->snaps[0].id);
		KUNIT_ASSERT_EQ(test, qwt_delete(t, t->snaps[0].id, ""), 0);
		qwt_snap_ok(t);
	}
	qwt_snap_step_ok(t);
	qwt_snap_reopen(t);
}

/* --- fault sweeps --- */

/**
 * struct qwt_snap_sweep - a snapshot operation and the fault injected
 * @name: parameter name
 * @geo: the image
 * @op: what fails
 * @fault: enum qwt_fault
 */
struct qwt_snap_sweep {
	const char *name;
	const struct qwt_geo *geo;
	enum qwt_sop op;
	enum qwt_fault fault;
};

static const struct qwt_geo qwt_snap_sweep_geos[] = {
	QWT_GEO("c4k", 3, 12, 4, false, false, SZ_64K, 0),
	QWT_GEO("c512-lazy-backing", 3, 9, 6, false, true, SZ_32K, SZ_32K),
	QWT_GEO("c1k-v2", 2, 10, 4, false, false, SZ_64K, 0),
};

#define QWT_SSWEEP(n, g, o, f) \
	{ .name = n, .geo = &qwt_snap_sweep_geos[g], .op = o, .fault = f }

static const struct qwt_snap_sweep qwt_snap_sweeps[] = {
	QWT_SSWEEP("create-write-EIO", 0, QWT_SOP_CREATE, QWT_FAULT_WRITE_EIO),
	QWT_SSWEEP("create-write-ENOSPC", 0, QWT_SOP_CREATE, QWT_FAULT_WRITE_ENOSPC),
	QWT_SSWEEP("create-flush", 0, QWT_SOP_CREATE, QWT_FAULT_FLUSH),
	QWT_SSWEEP("delete-write-EIO", 0, QWT_SOP_DELETE, QWT_FAULT_WRITE_EIO),
	QWT_SSWEEP("delete-write-ENOSPC", 0, QWT_SOP_DELETE, QWT_FAULT_WRITE_ENOSPC),
	QWT_SSWEEP("delete-flush", 0, QWT_SOP_DELETE, QWT_FAULT_FLUSH),
	QWT_SSWEEP("apply-write-EIO", 0, QWT_SOP_APPLY, QWT_FAULT_WRITE_EIO),
	QWT_SSWEEP("apply-write-ENOSPC", 0, QWT_SOP_APPLY, QWT_FAULT_WRITE_ENOSPC),
	QWT_SSWEEP("apply-flush", 0, QWT_SOP_APPLY, QWT_FAULT_FLUSH),
	QWT_SSWEEP("lazy-create-flush", 1, QWT_SOP_CREATE, QWT_FAULT_FLUSH),
	QWT_SSWEEP("lazy-delete-write-EIO", 1, QWT_SOP_DELETE, QWT_FAULT_WRITE_EIO),
	QWT_SSWEEP("lazy-apply-flush", 1, QWT_SOP_APPLY, QWT_FAULT_FLUSH),
	QWT_SSWEEP("v2-create-write-EIO", 2, QWT_SOP_CREATE, QWT_FAULT_WRITE_EIO),
	QWT_SSWEEP("v2-delete-flush", 2, QWT_SOP_DELETE, QWT_FAULT_FLUSH),
	QWT_SSWEEP("v2-apply-write-EIO", 2, QWT_SOP_APPLY, QWT_FAULT_WRITE_EIO),
};

static void qwt_snap_sweep_desc(const struct qwt_snap_sweep *s, char *desc)
{
	strscpy(desc, s->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qwt_snap_sweep, qwt_snap_sweeps, qwt_snap_sweep_desc);

/**
 * struct qwt_saved - the prepared image, restored before every run
 * @buf: file contents
 * @len: file size
 * @model: guest model
 * @vsize: disk size
 * @snaps: snapshot model
 * @nr_snaps: entries in @snaps
 */
struct qwt_saved {
	u8 *buf;
	u64 len;
	u8 *model;
	u64 vsize;
	struct qwt_snap snaps[QWT_MAX_SNAPS];
	unsigned int nr_snaps;
};

/* The sweep's operation: on "a" (id 1), shared with "b" and the active. */
static struct qcow_snapshot_cmd *qwt_sweep_cmd(struct qwt *t, enum qwt_sop op)
{
	if (op == QWT_SOP_CREATE)
		return qwt_cmd(t, "", "c");
	if (op == QWT_SOP_DELETE)
		return qwt_cmd(t, "", "a");
	return qwt_cmd(t, "1", "");
}

/* The model after the sweep's operation took effect. */
static void qwt_sweep_done(struct qwt *t, enum qwt_sop op, const char *id)
{
	if (op == QWT_SOP_CREATE)
		qwt_model_add(t, id, "c");
	else if (op == QWT_SOP_DELETE)
		qwt_model_del(t, 0);
	else
		qwt_model_apply(t, 0);
}

/* Whether the header in the file's first sector is the one after the operation. */
static bool qwt_sweep_took(struct qwt *t, enum qwt_sop op, u32 nb_snap, u64 l1_off)
{
	struct qwt_hdr h;

	qwt_hdr_parse(t->top->buf, &h);
	if (op == QWT_SOP_APPLY)
		return h.l1_off != l1_off;
	return h.nb_snap != nb_snap;
}

/*
 * The image stopped (a header write or a flush failed): nothing more is
 * written, and with the first sector it has (or, when no flush succeeded
 * since it was written, the one before it) the file is consistent, lists
 * the old or the new snapshots, each reading as saved, and its active tree
 * reads as before the operation or (apply) as the snapshot.
 */
static bool qwt_snap_stopped(struct qwt *t, enum qwt_sop op, const char *id,
			     u32 nb_snap, u64 l1_off)
{
	struct qwt_file *f = t->top;
	unsigned int writes = f->writes;
	u8 sector[SECTOR_SIZE], *hdr[2], *before = NULL;
	u64 before_size = t->vsize;
	struct qcow_snapshot_cmd *c;
	bool ok = true, took[2] = { false, false };
	int err, v, pass, nv;
	char what[sizeof(t->step)];

	strscpy(what, t->step, sizeof(what));
	/*
	 * A flush that failed after the header switch of an apply stopped an
	 * image that reads as the snapshot: the guest's view follows memory.
	 */
	if (op == QWT_SOP_APPLY && qwt_img(t)->hdr->l1_table_offset != l1_off) {
		before = kvmalloc(t->vsize, GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(t->test, before);
		memcpy(before, t->model, t->vsize);
		qwt_model_apply(t, 0);
	}
	err = qwt_write(t, 0, t->cs, false);
	KUNIT_EXPECT_EQ_MSG(t->test, err, -EIO, "%s: write while stopped", t->step);
	c = qwt_cmd(t, "", "x");
	err = qwt_snap_call(t, QWT_SOP_CREATE, c);
	kfree(c);
	KUNIT_EXPECT_EQ_MSG(t->test, err, -EIO, "%s: create while stopped", t->step);
	err = qcow_image_flush(qwt_img(t), true);
	KUNIT_EXPECT_EQ_MSG(t->test, err, -EIO, "%s: flush while stopped", t->step);
	ok &= qwt_verify(t);
	qwt_close(t);
	if (before) {
		qwt_vsize_set(t, before_size);
		memcpy(t->model, before, before_size);
		kvfree(before);
	}
	KUNIT_EXPECT_EQ_MSG(t->test, f->writes, writes, "%s: wrote while stopped", t->step);
	ok &= f->writes == writes;

	memcpy(sector, f->buf, SECTOR_SIZE);
	hdr[0] = sector;
	hdr[1] = f->hdr_prev;
	nv = f->hdr_unsure ? 2 : 1;
	for (v = 0; v < nv; v++) {
		memcpy(f->buf, hdr[v], SECTOR_SIZE);
		took[v] = qwt_sweep_took(t, op, nb_snap, l1_off);
	}
	/* The old state's headers first, then the model moves on. */
	for (pass = 0; pass < 2; pass++) {
		if (pass && (took[0] || took[1]))
			qwt_sweep_done(t, op, id);
		for (v = 0; v < nv; v++) {
			if (took[v] != pass)
				continue;
			memcpy(f->buf, hdr[v], SECTOR_SIZE);
			qwt_step(t, "%s, %s header (%s)", what, v ? "old" : "new",
				 took[v] ? "done" : "not done");
			ok &= qwt_chk(t, QWT_DISK);
			ok &= qwt_snaps_check(t);
			ok &= qwt_active_check(t);
		}
	}
	memcpy(f->buf, sector, SECTOR_SIZE);
	return ok;
}

/*
 * One run: the operation with the @n-th write (or flush) from its start
 * failing.  *@fired: the fault was reached; *@stopped: the image stopped;
 * *@leaky: a failed operation left leaked clusters after the final flush.
 */
static bool qwt_snap_sweep_run(struct qwt *t, const struct qwt_snap_sweep *sw,
			       unsigned int n, int want, bool *fired, bool *stopped,
			       bool *leaky)
{
	struct qwt_file *f = t->top;
	struct qcow_snapshot_cmd *c;
	struct qcow_image *img;
	u32 nb_snap;
	u64 l1_off;
	bool ok = true, took;
	int err;

	qwt_step(t, "fault %u: open", n);
	if (qwt_open(t)) {
		KUNIT_FAIL(t->test, "%s: open failed", t->step);
		return false;
	}
	img = qwt_img(t);
	nb_snap = img->hdr->nb_snapshots;
	l1_off = img->hdr->l1_table_offset;
	c = qwt_sweep_cmd(t, sw->op);
	f->failures = 0;
	f->fail_err = want;
	if (sw->fault == QWT_FAULT_FLUSH)
		f->fail_flush = n;
	else
		f->fail_write = n;
	qwt_step(t, "fault %u: %s", n, sw->name);
	err = qwt_snap_call(t, sw->op, c);
	*fired = f->failures;
	f->fail_write = 0;
	f->fail_flush = 0;
	if (err && (err != want && err != -EIO)) {
		KUNIT_FAIL(t->test, "%s: error %d", t->step, err);
		ok = false;
	}
	if (err && !*fired) {
		KUNIT_FAIL(t->test, "%s: error %d without a fault", t->step, err);
		ok = false;
	}
	if (*fired && sw->fault == QWT_FAULT_FLUSH && !atomic_read(&img->stopped)) {
		KUNIT_FAIL(t->test, "%s: a flush failed, the image did not stop", t->step);
		ok = false;
	}
	if (ok && atomic_read(&img->stopped)) {
		*stopped = true;
		qwt_step(t, "fault %u: stopped", n);
		ok = qwt_snap_stopped(t, sw->op, c->id, nb_snap, l1_off);
		goto out;
	}
	took = sw->op == QWT_SOP_APPLY ? img->hdr->l1_table_offset != l1_off :
					 img->hdr->nb_snapshots != nb_snap;
	if (!err && !took) {
		KUNIT_FAIL(t->test, "%s: succeeded without effect", t->step);
		ok = false;
	}
	if (took)
		qwt_sweep_done(t, sw->op, c->id);
	/* A failed operation may leak; a successful one must not. */
	t->leaks_ok = err;
	ok = ok && qwt_check(t) && qwt_snaps_check(t);
	qwt_step(t, "fault %u: flushed", n);
	ok = ok && qwt_flush_check(t) && qwt_active_check(t);
	qwt_step(t, "fault %u: reopened", n);
	ok = ok && qwt_reopen(t) && qwt_snaps_check(t);
	*leaky = t->leaked;
	if (*leaky)
		kunit_info(t->test, "%s: %s with %d, %llu clusters leaked",
			   t->step, took ? "done" : "failed", err, t->leaked);
	if (ok && !took) {
		/* Without the fault, the same operation works. */
		t->leaks_ok = false;
		qwt_step(t, "fault %u: again", n);
		kfree(c);
		c = qwt_sweep_cmd(t, sw->op);
		err = qwt_snap_call(t, sw->op, c);
		KUNIT_EXPECT_EQ_MSG(t->test, err, 0, "%s", t->step);
		if (!err)
			qwt_sweep_done(t, sw->op, c->id);
		t->leaks_ok = *leaky;
		ok = !err && qwt_check(t) && qwt_snaps_check(t) && qwt_flush_check(t) &&
		     qwt_active_check(t);
	}
out:
	t->leaks_ok = false;
	kfree(c);
	qwt_close(t);
	return ok;
}

/*
 * Create, delete or apply with a fault at every write (or flush) it makes,
 * one run each: the operation succeeds or fails with the injected error;
 * the driver and the file stay consistent (a failed operation may leak,
 * nothing is under-counted); the file lists the old or the new snapshots,
 * the model follows, every snapshot and the guest read as they must; if a
 * header write or a flush failed, the image must have stopped (every
 * failed flush stops it) and the file is checked with the first sector it
 * may hold (qwt_snap_stopped()); else a flush and a reattach, and the
 * operation once more without the fault.
 */
static void qcow_snapshot_fault_sweep(struct kunit *test)
{
	const struct qwt_snap_sweep *sw = test->param_value;
	struct qwt *t = qwt_new(test, sw->geo, false);
	struct qwt_file *f = t->top;
	unsigned int n, bad = 0, stops = 0, failed = 0, leaks = 0, i;
	u64 cs = t->cs;
	struct qwt_saved *s;
	bool fired = true;
	int want;

	qwt_step(t, "prepare");
	KUNIT_ASSERT_EQ(test, qwt_write(t, 0, t->vsize, false), 0);
	KUNIT_ASSERT_EQ(test, qwt_create(t, "a"), 0);
	KUNIT_ASSERT_EQ(test, qwt_write(t, cs + 10, 2 * cs, false), 0);
	KUNIT_ASSERT_EQ(test, qwt_create(t, "b"), 0);
	KUNIT_ASSERT_EQ(test, qwt_write(t, 5 * cs, cs, false), 0);
	KUNIT_ASSERT_EQ(test, qwt_zero(t, 6 * cs, cs, true, true), 0);
	qwt_close(t);
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	KUNIT_ASSERT_TRUE(test, qwt_snaps_check(t));

	s = kunit_kzalloc(test, sizeof(*s), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, s);
	s->len = f->len;
	s->vsize = t->vsize;
	s->buf = kunit_kmalloc(test, s->len, GFP_KERNEL);
	s->model = kunit_kmalloc(test, s->vsize, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, s->buf);
	KUNIT_ASSERT_NOT_NULL(test, s->model);
	memcpy(s->buf, f->buf, s->len);
	memcpy(s->model, t->model, s->vsize);
	/* The saved list owns the data buffers now. */
	s->nr_snaps = t->nr_snaps;
	memcpy(s->snaps, t->snaps, sizeof(s->snaps));
	t->nr_snaps = 0;

	want = sw->fault == QWT_FAULT_WRITE_ENOSPC ? -ENOSPC : -EIO;
	for (n = 1; fired && n < 500 && bad < 3; n++) {
		bool stopped = false, leaky = false;

		memset(f->buf, 0, f->cap);
		memcpy(f->buf, s->buf, s->len);
		f->len = s->len;
		qwt_vsize_set(t, s->vsize);
		memcpy(t->model, s->model, s->vsize);
		qwt_model_copy(t, s->snaps, s->nr_snaps);
		if (!qwt_snap_sweep_run(t, sw, n, want, &fired, &stopped, &leaky))
			bad++;
		stops += stopped;
		failed += fired;
		leaks += leaky;
	}
	for (i = 0; i < s->nr_snaps; i++)
		kvfree(s->snaps[i].data);
	kunit_info(test, "%s: %u runs, %u faults hit, %u stopped, %u leaked, %u failed",
		   sw->name, n - 1, failed, stops, leaks, bad);
	KUNIT_EXPECT_GT(test, n, 3U);
	KUNIT_EXPECT_FALSE(test, fired);
}

/* --- power cuts ----------------------------------------------------------------- */

/*
 * The fault sweeps above fail one write or flush and let the driver see
 * it.  A power cut is different: every write since the last successful
 * flush sits in the disk's volatile cache and, sector by sector, may or
 * may not have reached the platter, in any order; the driver never learns
 * which.  The file records, while tracking is on, what every sector
 * written (or punched, or truncated away) since the last successful flush
 * held before (struct qwt_undo, cleared by each successful flush).  The
 * power goes off at the n-th write or flush: that write lands in the cache
 * like the others, that flush makes nothing durable, and from then on the
 * file is frozen (every write, flush, punch and truncate fails with -EIO,
 * so the driver stops soon).  Then the disk decides: qwt_cut_revert()
 * takes back a seeded subset of the cached sector writes.
 */

enum qwt_cut_mode {
	QWT_CUT_LOSE_ALL,	/* nothing since the last flush is on the platter */
	QWT_CUT_KEEP_ALL,	/* everything is */
	QWT_CUT_PREFIX,		/* the writes up to a random one, in order */
	QWT_CUT_PER_WRITE,	/* each write, all its sectors or none */
	QWT_CUT_PER_SECTOR,	/* each sector of each write */
};

static const char *const qwt_cut_mode_names[] = {
	"all lost", "all kept", "a prefix kept", "each write kept or lost",
	"each sector kept or lost",
};

/* Disks checked per cut point: all lost, all kept, then two of each mode. */
#define QWT_CUT_VARIANTS	8

static enum qwt_cut_mode qwt_cut_mode(unsigned int v)
{
	return v < 2 ? v : QWT_CUT_PREFIX + (v - 2) % 3;
}

/* Start tracking; the power goes off at the @at-th write or flush (0: never). */
static void qwt_cut_arm(struct qwt_file *f, unsigned int at, bool flushes)
{
	mutex_lock(&f->lock);
	f->cut_track = true;
	f->cut_flushes = flushes;
	f->cut_at = at;
	f->cut_ios = 0;
	f->cut_writes = 0;
	f->nr_undo = 0;
	f->frozen = false;
	mutex_unlock(&f->lock);
}

/* Stop tracking; the undo log stays for qwt_cut_revert(). */
static void qwt_cut_disarm(struct qwt_file *f)
{
	mutex_lock(&f->lock);
	f->cut_track = false;
	f->cut_at = 0;
	mutex_unlock(&f->lock);
}

/*
 * What the disk kept: walking the log from the newest write back, a sector
 * is settled by its newest write that reached the platter (a FUA write
 * always did); until then each write that did not gives the sector back
 * what it held before.  Variant @v picks the mode and, with @seed, the
 * subset.  Returns the sectors taken back; *@sig identifies the subset.
 */
static unsigned int qwt_cut_revert(struct qwt *t, unsigned int v, u64 seed, u64 *sig)
{
	struct qwt_file *f = t->top;
	enum qwt_cut_mode mode = qwt_cut_mode(v);
	unsigned long *settled, *kept;
	unsigned int i, w, n = 0;
	struct rnd_state rs;
	struct qwt_undo *u;
	u64 nsect = 1;
	u32 prefix;
	bool keep;

	prandom_seed_state(&rs, seed);
	for (i = 0; i < f->nr_undo; i++)
		nsect = max(nsect, f->undo[i].sector + 1);
	settled = bitmap_zalloc(nsect, GFP_KERNEL);
	kept = bitmap_zalloc(f->cut_writes + 1, GFP_KERNEL);
	if (!settled || !kept) {
		bitmap_free(settled);
		bitmap_free(kept);
		KUNIT_ASSERT_FAILURE(t->test, "out of memory");
	}
	for (w = 0; w <= f->cut_writes; w++)
		if (prandom_u32_state(&rs) & 1)
			set_bit(w, kept);
	prefix = prandom_u32_state(&rs) % (f->cut_writes + 1);
	*sig = 0;
	for (i = f->nr_undo; i-- > 0; ) {
		u = &f->undo[i];
		if (test_bit(u->sector, settled))
			continue;
		switch (mode) {
		case QWT_CUT_LOSE_ALL:
			keep = false;
			break;
		case QWT_CUT_KEEP_ALL:
			keep = true;
			break;
		case QWT_CUT_PREFIX:
			keep = u->write < prefix;
			break;
		case QWT_CUT_PER_WRITE:
			keep = test_bit(u->write, kept);
			break;
		default:
			keep = prandom_u32_state(&rs) & 1;
			break;
		}
		if (keep || u->durable) {
			set_bit(u->sector, settled);
			continue;
		}
		if (qwt_grow(f, (u->sector + 1) << SECTOR_SHIFT)) {
			bitmap_free(settled);
			bitmap_free(kept);
			KUNIT_ASSERT_FAILURE(t->test, "out of memory");
		}
		memcpy(f->buf + (u->sector << SECTOR_SHIFT), u->prior, SECTOR_SIZE);
		*sig = (*sig ^ (i + 1)) * 0x100000001b3ULL;
		n++;
	}
	bitmap_free(settled);
	bitmap_free(kept);
	return n;
}

/* The file holds @len bytes from @buf (zeros beyond). */
static void qwt_file_set(struct qwt *t, const u8 *buf, u64 len)
{
	struct qwt_file *f = t->top;

	KUNIT_ASSERT_EQ(t->test, qwt_grow(f, len), 0);
	memset(f->buf + len, 0, f->len - len);
	memcpy(f->buf, buf, len);
	f->len = len;
}

/* Copy the closed image and the model (the saved list owns copies). */
static struct qwt_saved *qwt_save(struct qwt *t)
{
	struct qwt_saved *s = kunit_kzalloc(t->test, sizeof(*s), GFP_KERNEL);
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(t->test, s);
	s->len = t->top->len;
	s->vsize = t->vsize;
	s->buf = kunit_kmalloc(t->test, s->len, GFP_KERNEL);
	s->model = kunit_kmalloc(t->test, s->vsize, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, s->buf);
	KUNIT_ASSERT_NOT_NULL(t->test, s->model);
	memcpy(s->buf, t->top->buf, s->len);
	memcpy(s->model, t->model, s->vsize);
	for (i = 0; i < t->nr_snaps; i++) {
		s->snaps[i] = t->snaps[i];
		s->snaps[i].data = kunit_kmalloc(t->test, t->snaps[i].size, GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(t->test, s->snaps[i].data);
		memcpy(s->snaps[i].data, t->snaps[i].data, t->snaps[i].size);
	}
	s->nr_snaps = t->nr_snaps;
	return s;
}

/* The model as saved. */
static void qwt_restore_model(struct qwt *t, const struct qwt_saved *s)
{
	qwt_vsize_set(t, s->vsize);
	memcpy(t->model, s->model, s->vsize);
	qwt_model_copy(t, s->snaps, s->nr_snaps);
}

/**
 * struct qwt_frozen - the file as the power cut left it, before the disk
 *		       decides what it kept
 * @buf: contents (the cache's view: every write landed)
 * @len: size
 * @sigs: subsets already checked at this cut point (qwt_cut_revert())
 * @nr_sigs: entries in @sigs
 */
struct qwt_frozen {
	u8 *buf;
	u64 len;
	u64 sigs[QWT_CUT_VARIANTS];
	unsigned int nr_sigs;
};

static void qwt_frozen_take(struct qwt *t, struct qwt_frozen *fz)
{
	kvfree(fz->buf);
	fz->len = t->top->len;
	fz->buf = kvmalloc(max_t(u64, fz->len, 1), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, fz->buf);
	memcpy(fz->buf, t->top->buf, fz->len);
	fz->nr_sigs = 0;
}

/*
 * Put variant @v of what the disk kept into the file; false when an
 * earlier variant of this cut point took back the very same sectors.
 */
static bool qwt_frozen_variant(struct qwt *t, struct qwt_frozen *fz,
			       unsigned int v, u64 seed, unsigned int *reverted)
{
	unsigned int i;
	u64 sig;

	qwt_file_set(t, fz->buf, fz->len);
	*reverted = qwt_cut_revert(t, v, seed, &sig);
	for (i = 0; i < fz->nr_sigs; i++)
		if (fz->sigs[i] == sig)
			return false;
	fz->sigs[fz->nr_sigs++] = sig;
	return true;
}

/* --- snapshot operations cut at every write and flush --- */

/**
 * struct qwt_cut_case - a snapshot operation cut at every write and flush
 * @name: parameter name
 * @geo: the image
 * @op: the operation (qwt_sweep_cmd(): create "c", delete "a", apply id 1)
 * @err: what it returns without a cut (-ERANGE for narrow refcounts)
 */
struct qwt_cut_case {
	const char *name;
	struct qwt_geo geo;
	enum qwt_sop op;
	int err;
};

#define QWT_CCASE(n, v, cb, ro, e, lz, sz, bk, o, er) \
	{ .name = n, .geo = QWT_GEO(NULL, v, cb, ro, e, lz, sz, bk), .op = o, .err = er }

static const struct qwt_cut_case qwt_cut_cases[] = {
	QWT_CCASE("c512-r4-create", 3, 9, 4, false, false, SZ_128K, 0, QWT_SOP_CREATE, 0),
	QWT_CCASE("c512-r4-delete", 3, 9, 4, false, false, SZ_128K, 0, QWT_SOP_DELETE, 0),
	QWT_CCASE("c512-r4-apply", 3, 9, 4, false, false, SZ_128K, 0, QWT_SOP_APPLY, 0),
	QWT_CCASE("c4k-create", 3, 12, 4, false, false, SZ_64K, 0, QWT_SOP_CREATE, 0),
	QWT_CCASE("c4k-delete", 3, 12, 4, false, false, SZ_64K, 0, QWT_SOP_DELETE, 0),
	QWT_CCASE("c4k-apply", 3, 12, 4, false, false, SZ_64K, 0, QWT_SOP_APPLY, 0),
	QWT_CCASE("c64k-ext-backing-create",
		  3, 16, 4, true, false, SZ_1M, SZ_1M, QWT_SOP_CREATE, 0),
	QWT_CCASE("c64k-ext-backing-delete",
		  3, 16, 4, true, false, SZ_1M, SZ_1M, QWT_SOP_DELETE, 0),
	QWT_CCASE("c64k-ext-backing-apply", 3, 16, 4, true, false, SZ_1M, SZ_1M, QWT_SOP_APPLY, 0),
	QWT_CCASE("c1k-v2-create", 2, 10, 4, false, false, SZ_256K, 0, QWT_SOP_CREATE, 0),
	QWT_CCASE("c1k-v2-delete", 2, 10, 4, false, false, SZ_256K, 0, QWT_SOP_DELETE, 0),
	QWT_CCASE("c1k-v2-apply", 2, 10, 4, false, false, SZ_256K, 0, QWT_SOP_APPLY, 0),
	QWT_CCASE("c4k-lazy-backing-create",
		  3, 12, 4, false, true, SZ_64K, SZ_64K, QWT_SOP_CREATE, 0),
	QWT_CCASE("c4k-lazy-backing-delete",
		  3, 12, 4, false, true, SZ_64K, SZ_64K, QWT_SOP_DELETE, 0),
	QWT_CCASE("c4k-lazy-backing-apply",
		  3, 12, 4, false, true, SZ_64K, SZ_64K, QWT_SOP_APPLY, 0),
	/* Two-bit refcounts: three owners at most; one bit: one (-ERANGE). */
	QWT_CCASE("c4k-r1-create", 3, 12, 1, false, false, SZ_64K, 0, QWT_SOP_CREATE, -ERANGE),
	QWT_CCASE("c4k-r1-delete", 3, 12, 1, false, false, SZ_64K, 0, QWT_SOP_DELETE, 0),
	QWT_CCASE("c4k-r1-apply", 3, 12, 1, false, false, SZ_64K, 0, QWT_SOP_APPLY, -ERANGE),
	QWT_CCASE("c4k-r0-create", 3, 12, 0, false, false, SZ_64K, 0, QWT_SOP_CREATE, -ERANGE),
	QWT_CCASE("c4k-r0-delete", 3, 12, 0, false, false, SZ_64K, 0, QWT_SOP_DELETE, 0),
	QWT_CCASE("c4k-r0-apply", 3, 12, 0, false, false, SZ_64K, 0, QWT_SOP_APPLY, 0),
};

static void qwt_cut_desc(const struct qwt_cut_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qwt_cut, qwt_cut_cases, qwt_cut_desc);

static const char *const qwt_sop_names[] = { "create", "delete", "apply" };

/*
 * Snapshots "a" (id 1) and "b" sharing clusters with each other and the
 * active tree, written around, then closed.  With one-bit refcounts only
 * a snapshot of the empty disk can exist: "a" is taken first.
 */
static void qwt_cut_prepare(struct qwt *t)
{
	u64 cs = t->cs;

	qwt_step(t, "prepare");
	if (!t->geo->refcount_order) {
		KUNIT_ASSERT_EQ(t->test, qwt_create(t, "a"), 0);
		KUNIT_ASSERT_EQ(t->test, qwt_write(t, 0, t->vsize, false), 0);
		KUNIT_ASSERT_EQ(t->test, qwt_write(t, cs + 10, 2 * cs, false), 0);
	} else {
		KUNIT_ASSERT_EQ(t->test, qwt_write(t, 0, t->vsize, false), 0);
		KUNIT_ASSERT_EQ(t->test, qwt_create(t, "a"), 0);
		KUNIT_ASSERT_EQ(t->test, qwt_write(t, cs + 10, 2 * cs, false), 0);
		KUNIT_ASSERT_EQ(t->test, qwt_create(t, "b"), 0);
		KUNIT_ASSERT_EQ(t->test, qwt_write(t, 5 * cs, cs, false), 0);
		KUNIT_ASSERT_EQ(t->test, qwt_zero(t, 6 * cs, cs, true, true), 0);
	}
	qwt_close(t);
	KUNIT_ASSERT_TRUE(t->test, qwt_chk(t, QWT_CLEAN));
	KUNIT_ASSERT_TRUE(t->test, qwt_snaps_check(t));
}

/*
 * Open, run the operation as the ioctl does and the write-back after it
 * (the releases it queued: two flushes), the power going off at the
 * @at-th write or flush, and close.  Returns the writes and flushes done
 * (@at == 0), or whether the power went off.
 */
static unsigned int qwt_cut_sop(struct qwt *t, enum qwt_sop op, unsigned int at,
				int *err, char *id)
{
	struct qwt_file *f = t->top;
	struct qcow_snapshot_cmd *c;
	unsigned int ios;
	bool fired;
	int e1, e2;

	qwt_step(t, "cut %u: open", at);
	KUNIT_ASSERT_EQ(t->test, qwt_open(t), 0);
	c = qwt_sweep_cmd(t, op);
	qwt_cut_arm(f, at, false);
	qwt_step(t, "cut %u: %s", at, qwt_sop_names[op]);
	*err = qwt_snap_call(t, op, c);
	e1 = qcow_image_flush(qwt_img(t), true);
	e2 = qcow_image_flush(qwt_img(t), false);
	qwt_quiesce(t);
	if (id && !*err)
		strscpy(id, c->id, QCOW_SNAPSHOT_ID_MAX);
	kfree(c);
	fired = f->frozen;
	ios = f->cut_ios;
	qwt_cut_disarm(f);
	if (!at) {
		KUNIT_EXPECT_EQ_MSG(t->test, e1, 0, "%s: flush", t->step);
		KUNIT_EXPECT_EQ_MSG(t->test, e2, 0, "%s: flush", t->step);
	}
	qwt_close(t);
	f->frozen = false;
	return at ? fired : ios;
}

/*
 * The file as the cut left it, then opened again: consistent as
 * qemu-img check sees it (no cluster under-counted, COPIED exactly on
 * the active clusters with refcount one); the old root or the new one --
 * never the new one if the operation fails without a cut, always the new
 * one if it returned success (@op_err) before the power went off -- with
 * the model following: the snapshot list (ids, names, sizes) and every
 * snapshot's data read from the file, the guest's view through the
 * driver and the file's active tree; after two flushes exact but for
 * leaks.  A lazy-refcounts image left dirty is opened read-only (a
 * read-write attach refuses it): refcounts are not checked then.
 */
static bool qwt_cut_sop_check(struct qwt *t, const struct qwt_cut_case *cc,
			      const struct qwt_hdr *h0, const char *id, int op_err,
			      bool *took)
{
	struct qwt_file *f = t->top;
	struct qwt_hdr h;
	bool ok, dirty;
	int err;

	ok = qwt_chk(t, QWT_DISK);
	*took = qwt_sweep_took(t, cc->op, h0->nb_snap, h0->l1_off);
	if (*took && cc->err) {
		KUNIT_FAIL(t->test, "%s: the file switched to a root the operation never commits",
			   t->step);
		return false;
	}
	/* Returned before the power went off: the switch is durable. */
	if (!*took && !op_err && !cc->err) {
		KUNIT_FAIL(t->test, "%s: the operation succeeded, the disk lost it", t->step);
		return false;
	}
	if (*took)
		qwt_sweep_done(t, cc->op, id);
	ok &= qwt_snaps_check(t);
	qwt_hdr_parse(f->buf, &h);
	dirty = h.incompat & QCOW2_INCOMPAT_DIRTY;
	if (dirty && !cc->geo.lazy) {
		KUNIT_FAIL(t->test, "%s: dirty bit without lazy refcounts", t->step);
		return false;
	}
	err = dirty ? qcow_image_open(&f->l, cc->geo.cache) : qwt_open(t);
	if (err) {
		KUNIT_FAIL(t->test, "%s: open: %d", t->step, err);
		return false;
	}
	ok &= qwt_verify(t);
	ok &= qwt_active_check(t);
	if (!dirty) {
		t->leaks_ok = true;
		ok &= qwt_flush_check(t);
		qwt_close(t);
		ok &= qwt_chk(t, QWT_CLEAN);
		t->leaks_ok = false;
	}
	qwt_close(t);
	return ok;
}

/*
 * Create, delete or apply with the power cut at each of its writes and
 * flushes in turn (and of the write-back after it), each cut checked with
 * QWT_CUT_VARIANTS choices of what the disk kept (qwt_cut_sop_check()).
 */
static void qcow_powercut_snapshot(struct kunit *test)
{
	const struct qwt_cut_case *cc = test->param_value;
	struct qwt *t = qwt_new(test, &cc->geo, false);
	unsigned int ios, n, v, rev, bad = 0, disks = 0, took_n = 0;
	char id[QCOW_SNAPSHOT_ID_MAX] = "";
	struct qwt_frozen fz = {};
	struct qwt_saved *s;
	struct qwt_hdr h0;
	bool took;
	int err;

	qwt_cut_prepare(t);
	s = qwt_save(t);
	qwt_hdr_parse(s->buf, &h0);

	ios = qwt_cut_sop(t, cc->op, 0, &err, id);
	KUNIT_ASSERT_EQ_MSG(test, err, cc->err, "%s without a cut", cc->name);
	KUNIT_ASSERT_GT(test, ios, 0U);
	for (n = 1; n <= ios && bad < 3; n++) {
		qwt_file_set(t, s->buf, s->len);
		qwt_restore_model(t, s);
		if (!qwt_cut_sop(t, cc->op, n, &err, NULL)) {
			KUNIT_FAIL(test, "cut %u of %u: the power never went off", n, ios);
			bad++;
			continue;
		}
		qwt_frozen_take(t, &fz);
		for (v = 0; v < QWT_CUT_VARIANTS; v++) {
			if (!qwt_frozen_variant(t, &fz, v, n * 100 + v, &rev))
				continue;
			qwt_restore_model(t, s);
			qwt_step(t, "%s cut at I/O %u of %u (%d), %s (seed %u, %u lost)",
				 cc->name, n, ios, err, qwt_cut_mode_names[qwt_cut_mode(v)],
				 n * 100 + v, rev);
			disks++;
			if (!qwt_cut_sop_check(t, cc, &h0, id, err, &took))
				bad++;
			took_n += took;
		}
	}
	kvfree(fz.buf);
	kunit_info(test, "%s: %u writes and flushes, %u disks checked, %u with the new root, %u failed",
		   cc->name, ios, disks, took_n, bad);
	KUNIT_EXPECT_EQ(test, bad, 0U);
	/* Every operation that succeeds is durable at the end. */
	KUNIT_EXPECT_TRUE(test, cc->err || took_n);
}

/* --- guest writes cut at every flush --- */

/**
 * struct qwt_cut_script - guest operations cut at every flush
 * @name: parameter name
 * @geo: the image
 * @prefill: bytes written (from 0) before the script
 * @snapshot: a qemu-made snapshot after the prefill (shared clusters and
 *	      L2 tables: copy-on-write of both)
 * @ops: the operations, ended by QWT_OP_END
 */
struct qwt_cut_script {
	const char *name;
	struct qwt_geo geo;
	u64 prefill;
	bool snapshot;
	const struct qwt_op *ops;
};

/* 512-byte clusters, 64-bit refcounts: the first write moves the table. */
static const struct qwt_op qwt_cut_grow_ops[] = {
	{ QWT_OP_WRITE, QWT_GROW_PREFILL, 65536 },
	{ QWT_OP_WRITE, 1000, 3000 },
	{ QWT_OP_DISCARD, 8192, 4096 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_WRITE, QWT_GROW_PREFILL + 65536 + 100, 700 },
	{ QWT_OP_FUA, QWT_GROW_PREFILL + 100, 1000 },
	{ QWT_OP_ZERO, QWT_GROW_PREFILL + 4096, 2048 },
	{ QWT_OP_WRITE, 8192, 1536 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_WRITE, QWT_GROW_PREFILL + 131072, 32768 },
	{ QWT_OP_DISCARD, QWT_GROW_PREFILL, 16384 },
	{ QWT_OP_ZERO_KEEP, 2048, 1024 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_END },
};

/* 4 KiB clusters over a backing file, everything shared with a snapshot. */
static const struct qwt_op qwt_cut_shared_ops[] = {
	{ QWT_OP_WRITE, 4096 + 100, 300 },
	{ QWT_OP_WRITE, 100 * 1024 + 100, 5000 },
	{ QWT_OP_WRITE, 200 * 1024, 8192 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_DISCARD, 8192, 8192 },
	{ QWT_OP_ZERO_KEEP, 16384 + 512, 4096 },
	{ QWT_OP_WRITE, 4096, 512 },
	{ QWT_OP_FUA, 40960, 4096 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_WRITE, 0, 65536 },
	{ QWT_OP_DISCARD, 65536, 4096 },
	{ QWT_OP_FLUSH },
	{ QWT_OP_END },
};

static const struct qwt_cut_script qwt_cut_scripts[] = {
	{ "grow", QWT_GEO("grow", 3, 9, 6, false, false, 2560U << 10, 0),
	  QWT_GROW_PREFILL, false, qwt_cut_grow_ops },
	{ "shared", QWT_GEO("shared", 3, 12, 4, false, false, SZ_256K, SZ_128K),
	  96 * 1024, true, qwt_cut_shared_ops },
};

static void qwt_cut_script_desc(const struct qwt_cut_script *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qwt_cut_script, qwt_cut_scripts, qwt_cut_script_desc);

#define QWT_MAX_VERS	16

/**
 * struct qwt_vers - what each guest sector may read after a power cut
 * @flushed: the disk at the last successful guest flush
 * @floor: per sector, the oldest version it may still read (a FUA write
 *	   completed: what it wrote or later); 0 is @flushed, i + 1 is @v[i]
 * @first: per version, its first sector
 * @nr: per version, its sectors
 * @data: per version, those sectors after the operation (or, for the one
 *	  the cut interrupted, as it would have left them)
 * @nr_vers: versions since the last successful flush
 */
struct qwt_vers {
	u8 *flushed;
	u32 *floor;
	u64 first[QWT_MAX_VERS];
	u64 nr[QWT_MAX_VERS];
	u8 *data[QWT_MAX_VERS];
	unsigned int nr_vers;
};

static void qwt_vers_reset(struct qwt *t, struct qwt_vers *vs)
{
	while (vs->nr_vers)
		kvfree(vs->data[--vs->nr_vers]);
	memcpy(vs->flushed, t->model, t->vsize);
	memset(vs->floor, 0, (t->vsize >> SECTOR_SHIFT) * sizeof(*vs->floor));
}

/* Sectors [pos, pos + len) may now read as @src (from sector @pos / 512). */
static void qwt_vers_add(struct qwt *t, struct qwt_vers *vs, u64 pos, u64 len,
			 const u8 *src, bool durable)
{
	u64 first = pos >> SECTOR_SHIFT, end = min(pos + len, t->vsize), n, s;
	u8 *d;

	if (pos >= end)
		return;
	n = DIV_ROUND_UP_ULL(end, SECTOR_SIZE) - first;
	KUNIT_ASSERT_LT(t->test, vs->nr_vers, QWT_MAX_VERS);
	d = kvmalloc(n << SECTOR_SHIFT, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(t->test, d);
	memcpy(d, src, n << SECTOR_SHIFT);
	vs->first[vs->nr_vers] = first;
	vs->nr[vs->nr_vers] = n;
	vs->data[vs->nr_vers++] = d;
	if (durable)
		for (s = first; s < first + n; s++)
			vs->floor[s] = vs->nr_vers;
}

/* Every sector of @got reads as one of its versions; else report. */
static bool qwt_vers_check(struct qwt *t, struct qwt_vers *vs, const u8 *got)
{
	u64 s, nsect = t->vsize >> SECTOR_SHIFT, bad = 0, first = 0;
	unsigned int i;
	bool found;

	for (s = 0; s < nsect; s++) {
		const u8 *p = got + (s << SECTOR_SHIFT);

		found = !vs->floor[s] &&
			!memcmp(p, vs->flushed + (s << SECTOR_SHIFT), SECTOR_SIZE);
		for (i = vs->nr_vers; !found && i-- > 0 && i + 1 >= vs->floor[s]; )
			found = s >= vs->first[i] && s < vs->first[i] + vs->nr[i] &&
				!memcmp(p, vs->data[i] + ((s - vs->first[i]) << SECTOR_SHIFT),
					SECTOR_SIZE);
		if (!found && !bad++)
			first = s;
	}
	if (bad)
		KUNIT_FAIL(t->test,
			   "%s: %llu guest sectors read none of their %u versions since the last flush, first: sector %llu",
			   t->step, bad, vs->nr_vers + 1, first);
	return !bad;
}

/*
 * One operation of a script, straight through the layer (no read-back on
 * failure: after a cut the driver may report anything).  On success the
 * model follows as qwt_write() and qwt_zero() make it; either way the
 * versions learn what the sectors may read.  Returns the error.
 */
static int qwt_cut_op(struct qwt *t, struct qwt_vers *vs, const struct qwt_op *op)
{
	u64 pos = op->pos, len = op->len, end = min(pos + len, t->vsize), a, b;
	u64 first = pos >> SECTOR_SHIFT;
	struct iov_iter iter;
	struct kvec kv;
	u8 *want = NULL;
	int err;

	if (op->type == QWT_OP_FLUSH) {
		err = qcow_image_flush(qwt_img(t), true);
		qwt_quiesce(t);
		if (!err)
			qwt_vers_reset(t, vs);
		return err;
	}
	if (pos < end) {
		want = kvmalloc(DIV_ROUND_UP_ULL(end, SECTOR_SIZE) * SECTOR_SIZE -
				(first << SECTOR_SHIFT), GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(t->test, want);
		memcpy(want, t->model + (first << SECTOR_SHIFT),
		       DIV_ROUND_UP_ULL(end, SECTOR_SIZE) * SECTOR_SIZE -
		       (first << SECTOR_SHIFT));
	}
	if (op->type == QWT_OP_WRITE || op->type == QWT_OP_FUA) {
		if (len > t->wbuf_len) {
			kvfree(t->wbuf);
			t->wbuf = kvmalloc(len, GFP_KERNEL);
			t->wbuf_len = t->wbuf ? len : 0;
			KUNIT_ASSERT_NOT_NULL(t->test, t->wbuf);
		}
		qwt_fill(++t->seed, pos, t->wbuf, len);
		if (want)
			memcpy(want + (pos - (first << SECTOR_SHIFT)), t->wbuf, end - pos);
		kv.iov_base = t->wbuf;
		kv.iov_len = len;
		iov_iter_kvec(&iter, WRITE, &kv, 1, len);
		err = qcow_layer_write(&t->top->l, pos, &iter, len,
				       op->type == QWT_OP_FUA);
	} else {
		if (want)
			memset(want + (pos - (first << SECTOR_SHIFT)), 0, end - pos);
		err = qcow_layer_zero(&t->top->l, pos, len, op->type == QWT_OP_DISCARD,
				      op->type != QWT_OP_ZERO_KEEP);
	}
	qwt_quiesce(t);
	if (!err && pos < end) {
		if (op->type == QWT_OP_DISCARD) {
			/* Whole units read as zeros, the rest as before. */
			a = round_up(pos, t->unit);
			b = round_down(end, t->unit);
			if (a < b && qwt_discard_zeroes(t))
				memset(t->model + a, 0, b - a);
		} else {
			memcpy(t->model + pos, want + (pos - (first << SECTOR_SHIFT)),
			       end - pos);
		}
		qwt_vers_add(t, vs, pos, len, t->model + (first << SECTOR_SHIFT),
			     op->type == QWT_OP_FUA);
	} else if (err && want) {
		qwt_vers_add(t, vs, pos, len, want, false);
	}
	kvfree(want);
	return err;
}

/*
 * Open, run the script with the power going off at the @at-th flush (the
 * driver's own flushes included), close.  Returns the flushes done
 * (@at == 0), or whether the power went off.
 */
static unsigned int qwt_cut_script_run(struct qwt *t, const struct qwt_cut_script *cs,
				       unsigned int at, struct qwt_vers *vs)
{
	struct qwt_file *f = t->top;
	unsigned int i, ios;
	bool fired;
	int err = 0;

	qwt_step(t, "cut %u: open", at);
	KUNIT_ASSERT_EQ(t->test, qwt_open(t), 0);
	qwt_vers_reset(t, vs);
	qwt_cut_arm(f, at, true);
	for (i = 0; !err && cs->ops[i].type != QWT_OP_END; i++) {
		qwt_step(t, "cut %u: op %u", at, i);
		err = qwt_cut_op(t, vs, &cs->ops[i]);
		if (err && !f->frozen)
			KUNIT_FAIL(t->test, "%s: error %d without a cut", t->step, err);
	}
	fired = f->frozen;
	ios = f->cut_ios;
	qwt_cut_disarm(f);
	qwt_close(t);
	f->frozen = false;
	return at ? fired : ios;
}

/*
 * The file as the cut left it: consistent as qemu-img check sees it, the
 * snapshot reading as taken; opened again, every guest sector reads as at
 * the last successful flush or as one of the operations since left it
 * (the one cut short included; a completed FUA write's or later ones);
 * after two flushes exact but for leaks.
 */
static bool qwt_cut_script_check(struct qwt *t, struct qwt_vers *vs)
{
	bool ok;
	int err;

	ok = qwt_chk(t, QWT_DISK);
	ok &= qwt_snaps_check(t);
	err = qwt_open(t);
	if (err) {
		KUNIT_FAIL(t->test, "%s: open: %d", t->step, err);
		return false;
	}
	err = qwt_read(t, 0, t->vsize, t->rbuf);
	if (err) {
		KUNIT_FAIL(t->test, "%s: read: %d", t->step, err);
		qwt_close(t);
		return false;
	}
	ok &= qwt_vers_check(t, vs, t->rbuf);
	/* From here on, the model is what the disk kept. */
	memcpy(t->model, t->rbuf, t->vsize);
	ok &= qwt_active_check(t);
	t->leaks_ok = true;
	ok &= qwt_flush_check(t);
	qwt_close(t);
	ok &= qwt_chk(t, QWT_CLEAN);
	t->leaks_ok = false;
	return ok;
}

/*
 * A script of allocating writes (refcount table growth with 512-byte
 * clusters; copy-on-write of clusters and L2 tables a snapshot shares),
 * discards, write-zeroes, FUA writes and flushes, with the power cut at
 * each flush in turn (the driver's own included), each checked with
 * QWT_CUT_VARIANTS choices of what the disk kept.
 */
static void qcow_powercut_guest(struct kunit *test)
{
	const struct qwt_cut_script *cs = test->param_value;
	struct qwt *t = qwt_new(test, &cs->geo, false);
	unsigned int ios, n, v, rev, bad = 0, disks = 0;
	struct qwt_frozen fz = {};
	struct qwt_vers *vs;
	struct qwt_saved *s;
	u64 pos, len;

	for (pos = 0; pos < cs->prefill; pos += len) {
		len = min_t(u64, cs->prefill - pos, SZ_64K);
		qwt_step(t, "prefill 0x%llx", pos);
		KUNIT_ASSERT_EQ(test, qwt_write(t, pos, len, false), 0);
	}
	qwt_close(t);
	if (cs->snapshot) {
		qwt_snapshot(t);
		qwt_model_add(t, "1", "snap");
	}
	qwt_step(t, "prepared");
	KUNIT_ASSERT_TRUE(test, qwt_chk(t, QWT_CLEAN));
	KUNIT_ASSERT_TRUE(test, qwt_snaps_check(t));
	s = qwt_save(t);
	vs = kunit_kzalloc(test, sizeof(*vs), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, vs);
	vs->flushed = kunit_kmalloc(test, t->vsize, GFP_KERNEL);
	vs->floor = kunit_kcalloc(test, t->vsize >> SECTOR_SHIFT, sizeof(*vs->floor),
				  GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, vs->flushed);
	KUNIT_ASSERT_NOT_NULL(test, vs->floor);

	ios = qwt_cut_script_run(t, cs, 0, vs);
	KUNIT_ASSERT_GE(test, ios, 3U);
	for (n = 1; n <= ios && bad < 3; n++) {
		qwt_file_set(t, s->buf, s->len);
		qwt_restore_model(t, s);
		if (!qwt_cut_script_run(t, cs, n, vs)) {
			KUNIT_FAIL(test, "cut at flush %u of %u: the power never went off",
				   n, ios);
			bad++;
			continue;
		}
		qwt_frozen_take(t, &fz);
		for (v = 0; v < QWT_CUT_VARIANTS; v++) {
			if (!qwt_frozen_variant(t, &fz, v, n * 100 + v, &rev))
				continue;
			qwt_restore_model(t, s);
			qwt_step(t, "%s cut at flush %u of %u, %s (seed %u, %u sectors lost)",
				 cs->name, n, ios, qwt_cut_mode_names[qwt_cut_mode(v)],
				 n * 100 + v, rev);
			disks++;
			if (!qwt_cut_script_check(t, vs))
				bad++;
		}
	}
	while (vs->nr_vers)
		kvfree(vs->data[--vs->nr_vers]);
	kvfree(fz.buf);
	kunit_info(test, "%s: %u flushes, %u disks checked, %u failed", cs->name, ios,
		   disks, bad);
	KUNIT_EXPECT_EQ(test, bad, 0U);
}

/* --- suites ----------------------------------------------------------------------- */

static int qwt_init(struct kunit *test)
{
	test->priv = kunit_kzalloc(test, sizeof(struct qwt), GFP_KERNEL);
	return test->priv ? 0 : -ENOMEM;
}

static void qwt_exit(struct kunit *test)
{
	struct qwt *t = test->priv;

	while (t->nr_files)
		qwt_file_free(t->files[--t->nr_files]);
	while (t->nr_snaps)
		kvfree(t->snaps[--t->nr_snaps].data);
	kvfree(t->wbuf);
	kvfree(t->snap);
	kvfree(t->rbuf);
	kvfree(t->model);
}

static struct kunit_case qcow_write_cases[] = {
	KUNIT_CASE_PARAM(qcow_write_alloc, qwt_alloc_gen_params),
	KUNIT_CASE_PARAM(qcow_write_reftable_grow, qwt_grow_gen_params),
	KUNIT_CASE_PARAM(qcow_write_resize, qwt_online_gen_params),
	KUNIT_CASE_PARAM(qcow_write_cow_backing, qwt_cow_gen_params),
	KUNIT_CASE_PARAM(qcow_write_subclusters, qwt_sub_gen_params),
	KUNIT_CASE_PARAM(qcow_write_discard, qwt_discard_gen_params),
	KUNIT_CASE_PARAM(qcow_write_zeroes, qwt_zero_gen_params),
	KUNIT_CASE(qcow_write_lazy_refcounts),
	KUNIT_CASE(qcow_write_autoclear),
	KUNIT_CASE_PARAM(qcow_write_snapshot, qwt_snap_gen_params),
	KUNIT_CASE_PARAM(qcow_write_compressed, qwt_comp_gen_params),
	KUNIT_CASE_PARAM(qcow_write_corrupt, qwt_bad_gen_params),
	KUNIT_CASE_PARAM(qcow_write_fault_data, qwt_err_gen_params),
	KUNIT_CASE_PARAM(qcow_write_async, qwt_async_gen_params),
	KUNIT_CASE_PARAM(qcow_write_async_cow, qwt_async_cow_gen_params),
	KUNIT_CASE_PARAM(qcow_write_async_nowait, qwt_async_cow_gen_params),
	KUNIT_CASE(qcow_write_bounce_pool),
	{}
};

static struct kunit_suite qcow_write_suite = {
	.name = "qcow_write",
	.init = qwt_init,
	.exit = qwt_exit,
	.test_cases = qcow_write_cases,
};

static struct kunit_case qcow_write_random_cases[] = {
	KUNIT_CASE_PARAM(qcow_write_random, qwt_random_gen_params),
	KUNIT_CASE_PARAM(qcow_write_fault_sweep, qwt_sweep_gen_params),
	{}
};

static struct kunit_suite qcow_write_random_suite = {
	.name = "qcow_write_random",
	.init = qwt_init,
	.exit = qwt_exit,
	.test_cases = qcow_write_random_cases,
};

static struct kunit_case qcow_snapshot_ops_cases[] = {
	KUNIT_CASE_PARAM(qcow_snapshot_basic, qwt_snap_basic_gen_params),
	KUNIT_CASE(qcow_snapshot_names),
	KUNIT_CASE_PARAM(qcow_snapshot_apply_resize, qwt_resize_gen_params),
	KUNIT_CASE_PARAM(qcow_snapshot_give_back, qwt_give_back_gen_params),
	KUNIT_CASE_PARAM(qcow_snapshot_refcount_overflow, qwt_overflow_gen_params),
	{}
};

static struct kunit_suite qcow_snapshot_ops_suite = {
	.name = "qcow_snapshot_ops",
	.init = qwt_init,
	.exit = qwt_exit,
	.test_cases = qcow_snapshot_ops_cases,
};

static struct kunit_case qcow_snapshot_random_cases[] = {
	KUNIT_CASE_PARAM(qcow_snapshot_random, qwt_snap_random_gen_params),
	KUNIT_CASE_PARAM(qcow_snapshot_fault_sweep, qwt_snap_sweep_gen_params),
	{}
};

static struct kunit_suite qcow_snapshot_random_suite = {
	.name = "qcow_snapshot_random",
	.init = qwt_init,
	.exit = qwt_exit,
	.test_cases = qcow_snapshot_random_cases,
};

static struct kunit_case qcow_powercut_cases[] = {
	KUNIT_CASE_PARAM(qcow_powercut_snapshot, qwt_cut_gen_params),
	KUNIT_CASE_PARAM(qcow_powercut_guest, qwt_cut_script_gen_params),
	{}
};

static struct kunit_suite qcow_powercut_suite = {
	.name = "qcow_powercut",
	.init = qwt_init,
	.exit = qwt_exit,
	.test_cases = qcow_powercut_cases,
};

kunit_test_suites(&qcow_write_suite, &qcow_write_random_suite,
		  &qcow_snapshot_ops_suite, &qcow_snapshot_random_suite,
		  &qcow_powercut_suite);
