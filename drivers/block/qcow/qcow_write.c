// SPDX-License-Identifier: GPL-2.0
/*
 * qcow: the write path.
 *
 * A write to clusters that are allocated with the COPIED flag (refcount
 * one) goes straight to the image file: that is the fast path, and it
 * takes no lock beyond the slice cache's.  Everything else takes the slow
 * path, one batch (the clusters of the request that share one L2 slice) at
 * a time:
 *
 *  1. under img->meta_lock: wait until no other operation is in flight on
 *     these guest clusters, make the L2 table writable (allocate it, or
 *     copy it when it is shared with a snapshot), decide per cluster where
 *     the data goes (the cluster itself, or a newly allocated one) and what
 *     must be copied around the guest data (backing file, old shared or
 *     compressed cluster, zeros), allocate, and register the batch in
 *     img->inflight;
 *  2. without the lock: read the copy-on-write parts through the current
 *     mapping into pooled bounce pages and write them with the guest's
 *     own pages, one I/O per run of contiguous host clusters
 *     (qcow_cow_build());
 *  3. under the lock: point the L2 entries at the new data (the slice is
 *     dirty in the cache), queue the old references for release, leave
 *     img->inflight and wake waiters.
 *
 * With extended L2 entries a write allocates only the subclusters it
 * touches and copies only the parts of the first and last subcluster it
 * does not cover.
 *
 * On-disk ordering (Documentation/design.rst has the full argument):
 * data and refcount increases reach the disk (fdatasync) before the L2 and
 * L1 entries that reference them; an old reference's refcount drops only
 * after the entry that held it was written and flushed, and after every
 * request that might still use the old mapping has completed (epochs).
 * qcow_image_flush() does all of that, for REQ_OP_FLUSH, FUA, detach and
 * when too many slices are dirty.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>

#include "qcow_main.h"

/* ------------------------------------------------------------------------
 * epochs: when may a cluster that lost its last reference be reused?
 *
 * Every request that maps guest offsets without meta_lock enters the
 * current epoch when it starts and leaves it when it completes (possibly
 * in interrupt context).  qcow_epoch_wait() flips the epoch and waits until
 * the previous one is empty: after that, no request can still be using a
 * mapping that was changed before the flip.
 */

/**
 * qcow_epoch_enter() - a request starts using mappings
 * @img: image
 *
 * Return: the epoch to pass to qcow_epoch_exit().
 */
int qcow_epoch_enter(struct qcow_image *img)
{
	int idx = READ_ONCE(img->epoch_cur) & 1;

	this_cpu_inc(img->epoch->enter[idx]);
	smp_mb(); /* the enter is seen before the request reads any mapping */
	return idx;
}

/**
 * qcow_epoch_exit() - a request is done with its mappings
 * @img: image
 * @epoch: what qcow_epoch_enter() returned
 *
 * May be called from interrupt context.
 */
void qcow_epoch_exit(struct qcow_image *img, int epoch)
{
	smp_mb(); /* the request's I/O is done before the exit is seen */
	this_cpu_inc(img->epoch->exit[epoch]);
	if (atomic_read(&img->epoch_waiting))
		wake_up(&img->epoch_wq);
}

static bool qcow_epoch_empty(struct qcow_image *img, int idx)
{
	unsigned long enter = 0, exit = 0;
	int cpu;

	/* Exits first: an exit is never counted without its enter. */
	for_each_possible_cpu(cpu)
		exit += per_cpu_ptr(img->epoch, cpu)->exit[idx];
	smp_mb(); /* pairs with the barrier in qcow_epoch_enter() */
	for_each_possible_cpu(cpu)
		enter += per_cpu_ptr(img->epoch, cpu)->enter[idx];
	return enter == exit;
}

static void qcow_epoch_wait(struct qcow_image *img)
{
	int old;

	mutex_lock(&img->epoch_mutex);
	old = img->epoch_cur & 1;
	WRITE_ONCE(img->epoch_cur, img->epoch_cur + 1);
	atomic_set(&img->epoch_waiting, 1);
	smp_mb(); /* the flip is seen before the counts are read */
	wait_event(img->epoch_wq, qcow_epoch_empty(img, old));
	atomic_set(&img->epoch_waiting, 0);
	mutex_unlock(&img->epoch_mutex);
}

/* ------------------------------------------------------------------------
 * header
 */

/**
 * qcow_image_stop() - refuse every write from now on
 * @img: writable image
 * @what: what failed ("header write", "flush"), for the log
 * @err: its error
 *
 * A header write or a flush of the image file that fails leaves the disk
 * in a state memory does not know.  A header sector can be on the platter
 * while the flush that would have told us failed: the disk may hold the
 * old refcount or snapshot table, or the new one.  A failed flush may have
 * lost any write since the last successful one, and the file system
 * reports that to one fsync only, while the metadata written before it is
 * marked clean: the next flush would "succeed" and write L2 entries whose
 * refcounts never reached the disk.  Any further metadata write could
 * corrupt whatever the disk holds, so the image stops: guest writes,
 * flushes, discards, snapshot operations and metadata write-back all fail
 * with -EIO, nothing more is written (not even the dirty or corrupt bits),
 * and reads keep working from what is cached.  What the disk holds is
 * consistent as of the last successful flush, with at most leaked
 * clusters; `qemu-img check -r leaks` repairs those.
 */
void qcow_image_stop(struct qcow_image *img, const char *what, int err)
{
	if (atomic_inc_return(&img->stopped) != 1)
		return;
	pr_err("%pD: %s failed (%d): what the disk holds is unknown, all writes are stopped; detach and run qemu-img check\n",
	       img->layer->file, what, err);
}

/**
 * qcow_meta_flush() - flush the image file, stopping the image on failure
 * @img: writable image
 *
 * Every flush of the image file made for metadata ordering or for a guest
 * flush goes through here (a header write has its own, in
 * qcow_header_write()).  A failed flush stops the image (qcow_image_stop()):
 * what it should have made durable may be lost while memory holds it as
 * written, so it must not be retried, and no later flush may report
 * success.
 *
 * Return: 0, or -EIO (and the image is stopped).
 */
int qcow_meta_flush(struct qcow_image *img)
{
	int err;

	if (atomic_read(&img->stopped))
		return -EIO;
	err = img->layer->ops->flush(img->layer);
	if (err)
		qcow_image_stop(img, "flush", err);
	return err;
}

/**
 * qcow_header_write() - write the header fields of img->hdr to disk
 * @img: writable image
 *
 * The whole first sector is rewritten (one sector write, atomic on every
 * disk qcow2 lives on) and flushed.  If either fails, the image is stopped
 * (qcow_image_stop()): the caller may undo its change in memory, but the
 * disk may hold the new header all the same.
 *
 * Return: 0, or -EIO/-ENOSPC (and the image is stopped).
 */
int qcow_header_write(struct qcow_image *img)
{
	const struct qcow2_header *h = img->hdr;
	struct qcow2_header_disk disk;
	size_t n;
	int err;

	qcow2_header_encode(h, &disk);
	n = h->version >= 3 ? min_t(size_t, h->header_length, sizeof(disk)) :
			      QCOW2_V2_HEADER_LEN;
	mutex_lock(&img->hdr_lock);
	if (atomic_read(&img->stopped)) {
		err = -EIO;
		goto out;
	}
	memcpy(img->hdr_sector, &disk, n);
	err = qcow_file_write(img->layer, img->hdr_sector, SECTOR_SIZE, 0);
	/* Not qcow_meta_flush(): the log names the header write either way. */
	if (!err)
		err = img->layer->ops->flush(img->layer);
	if (err)
		qcow_image_stop(img, "header write", err);
out:
	mutex_unlock(&img->hdr_lock);
	return err;
}

/**
 * qcow_meta_begin() - call before the first metadata change
 * @img: writable image, meta_lock held
 *
 * Sets the dirty bit on disk when the image uses lazy refcounts.
 *
 * Return: 0 or the header write's error.
 */
int qcow_meta_begin(struct qcow_image *img)
{
	int err;

	lockdep_assert_held(&img->meta_lock);
	if (!img->lazy_refcounts || img->dirty_set)
		return 0;
	/*
	 * If the write fails, the bit may have reached the disk all the same;
	 * the image is stopped then, and the bit stays set in memory.
	 */
	img->hdr->incompatible_features |= QCOW2_INCOMPAT_DIRTY;
	err = qcow_header_write(img);
	if (err)
		return err;
	img->dirty_set = true;
	return 0;
}

/* ------------------------------------------------------------------------
 * flush: metadata write-back in dependency order
 */

static int qcow_l1_writeback(struct qcow_image *img)
{
	const struct qcow2_header *h = img->hdr;
	unsigned int nsect = DIV_ROUND_UP(h->l1_size, SECTOR_SIZE / 8);
	unsigned int s;
	int err;

	for_each_set_bit(s, img->l1_dirty, nsect) {
		err = qcow_file_write(img->layer, img->l1 + s * (SECTOR_SIZE / 8),
				      SECTOR_SIZE,
				      h->l1_table_offset + s * SECTOR_SIZE);
		if (err)
			return err;
		clear_bit(s, img->l1_dirty);
	}
	return 0;
}

static bool qcow_l1_is_dirty(struct qcow_image *img)
{
	return find_first_bit(img->l1_dirty,
			      DIV_ROUND_UP(img->hdr->l1_size, SECTOR_SIZE / 8)) <
		DIV_ROUND_UP(img->hdr->l1_size, SECTOR_SIZE / 8);
}

/**
 * qcow_meta_writeback() - write dirty metadata back in dependency order
 * @img: writable image, meta_lock held
 * @all: also write refcount blocks that lazy refcounts would keep
 *
 * Refcount blocks, then a flush (data and refcounts durable), then L2
 * slices and L1 sectors, then a flush.  With lazy refcounts the refcount
 * blocks wait for detach (the dirty bit covers them) unless @all.
 *
 * Return: 0 or -EIO/-ENOSPC: a write that failed leaves its slice dirty,
 * to be retried; a flush that failed stops the image (qcow_meta_flush()).
 */
int qcow_meta_writeback(struct qcow_image *img, bool all)
{
	bool l2 = qcow_cache_nr_dirty(img->cache) || qcow_l1_is_dirty(img);
	int err = 0;

	lockdep_assert_held(&img->meta_lock);
	if (atomic_read(&img->stopped))
		return -EIO;
	if (!img->lazy_refcounts || all ||
	    qcow_cache_nr_dirty(img->rcache) > qcow_cache_max(img->rcache) / 2)
		err = qcow_cache_writeback(img->rcache);
	if (!err)
		err = qcow_meta_flush(img);
	if (!err && l2) {
		err = qcow_cache_writeback(img->cache);
		if (!err)
			err = qcow_l1_writeback(img);
		if (!err)
			err = qcow_meta_flush(img);
	}
	return err;
}

/**
 * qcow_meta_writeback_flat() - write all dirty metadata, then one flush
 * @img: writable image, meta_lock held
 *
 * For changes that add no reference (COPIED flags, refcount changes of
 * clusters already referenced): no ordering is needed between refcount
 * blocks and tables, and writing them back to back keeps the window in
 * which a crash sees one without the other as short as it can be.
 *
 * Return: 0 or -EIO/-ENOSPC (a failed flush stops the image).
 */
int qcow_meta_writeback_flat(struct qcow_image *img)
{
	int err;

	lockdep_assert_held(&img->meta_lock);
	if (atomic_read(&img->stopped))
		return -EIO;
	err = qcow_cache_writeback(img->rcache);
	if (!err)
		err = qcow_cache_writeback(img->cache);
	if (!err)
		err = qcow_l1_writeback(img);
	if (!err)
		err = qcow_meta_flush(img);
	return err;
}

/**
 * qcow_image_flush() - make every completed write durable
 * @img: image
 * @frees: also release the references queued by qcow_free_later(); not
 *	   from a context that is inside an epoch (a request being served)
 *
 * Return: 0 or -EIO: after a failed write the metadata stays dirty and is
 * retried later; after a failed flush the image is stopped and every later
 * call fails too.
 */
int qcow_image_flush(struct qcow_image *img, bool frees)
{
	struct qcow_free *f = NULL;
	unsigned int nr = 0, i;
	int err, ret = 0;

	if (!img->writable)
		return 0;
	mutex_lock(&img->meta_lock);
	if (frees && img->nr_frees) {
		f = img->frees;
		nr = img->nr_frees;
		img->frees = NULL;
		img->nr_frees = 0;
		img->max_frees = 0;
	}
	err = qcow_meta_writeback(img, false);
	if (err && f) {
		/* The old entries may still be on disk: keep the references. */
		for (i = 0; i < nr; i++)
			qcow_free_later(img, f[i].start << img->hdr->cluster_bits,
					f[i].nr << img->hdr->cluster_bits);
	}
	mutex_unlock(&img->meta_lock);
	if (err || !f)
		goto out;

	qcow_epoch_wait(img);
	mutex_lock(&img->meta_lock);
	ret = qcow_frees_apply(img, f, nr);
	mutex_unlock(&img->meta_lock);
out:
	kvfree(f);
	return err ?: ret;
}

#define QCOW_WRITEBACK_DELAY	(5 * HZ)

/**
 * qcow_writeback_work() - background write-back
 * @work: img->wb_work
 *
 * Like the page cache's periodic write-back: metadata changed a few
 * seconds ago reaches the disk even if nobody flushes, and clusters queued
 * for release (discard, copy-on-write) are freed and punched.
 */
void qcow_writeback_work(struct work_struct *work)
{
	struct qcow_image *img = container_of(to_delayed_work(work),
					      struct qcow_image, wb_work);
	int err;

	err = qcow_image_flush(img, true);
	if (err)
		pr_err_ratelimited("%pD: background write-back failed: %d\n",
				   img->layer->file, err);
}

static void qcow_writeback_schedule(struct qcow_image *img)
{
	queue_delayed_work(system_unbound_wq, &img->wb_work,
			   QCOW_WRITEBACK_DELAY);
}

/* Keep the pinned dirty slices bounded. */
static int qcow_dirty_limit(struct qcow_image *img)
{
	int err = 0;

	if (qcow_cache_nr_dirty(img->cache) > qcow_cache_max(img->cache) / 2 ||
	    qcow_cache_nr_dirty(img->rcache) > qcow_cache_max(img->rcache) / 2) {
		mutex_lock(&img->meta_lock);
		err = qcow_meta_writeback(img, false);
		mutex_unlock(&img->meta_lock);
	}
	return err;
}

/* ------------------------------------------------------------------------
 * in-flight operations on guest clusters
 */

static bool qcow_inflight_conflict(struct qcow_image *img, u64 first, u64 last)
{
	struct qcow_wop *w;

	lockdep_assert_held(&img->meta_lock);
	list_for_each_entry(w, &img->inflight, node)
		if (w->first <= last && first <= w->last)
			return true;
	return false;
}

/* Wait, dropping meta_lock, until no operation overlaps [first, last]. */
static void qcow_inflight_wait(struct qcow_image *img, u64 first, u64 last)
{
	DEFINE_WAIT(wait);

	lockdep_assert_held(&img->meta_lock);
	for (;;) {
		prepare_to_wait(&img->inflight_wq, &wait, TASK_UNINTERRUPTIBLE);
		if (!qcow_inflight_conflict(img, first, last))
			break;
		mutex_unlock(&img->meta_lock);
		schedule();
		mutex_lock(&img->meta_lock);
	}
	finish_wait(&img->inflight_wq, &wait);
}

static void qcow_inflight_done(struct qcow_image *img, struct qcow_wop *w)
{
	lockdep_assert_held(&img->meta_lock);
	list_del(&w->node);
	wake_up_all(&img->inflight_wq);
}

/* ------------------------------------------------------------------------
 * L2 tables
 */

/**
 * qcow_l1_replace() - switch to a new active L1 table in one header write
 * @img: writable image, meta_lock held, no request in flight
 * @l1: the new table, @n entries in a kvzalloc'ed buffer of whole sectors;
 *	the image owns it when the call succeeds
 * @n: entries in @l1 (enough for @size)
 * @size: the virtual size that goes with it
 * @old: receives the old table (the caller kvfree()s it) on success
 *
 * The table goes to new clusters and is flushed; then one header write
 * switches l1_table_offset, l1_size and the virtual size together, so a
 * crash leaves the old table and size or the new ones, never a mix.  The
 * old table's clusters are queued for release (qcow_free_later()).  Every
 * dirty L1 entry must have been copied into @l1 by the caller.
 *
 * Return: 0, or -ENOSPC/-EIO/-ENOMEM with nothing changed (a failed header
 * write also stops the image).
 */
int qcow_l1_replace(struct qcow_image *img, __be64 *l1, u32 n, u64 size,
		    __be64 **old)
{
	struct qcow2_header *h = img->hdr;
	u64 old_off = h->l1_table_offset, old_size = h->size, off = 0;
	u32 old_n = h->l1_size;
	unsigned long *dirty;
	int err;

	lockdep_assert_held(&img->meta_lock);
	dirty = bitmap_zalloc(DIV_ROUND_UP(n, SECTOR_SIZE / 8) + 1, GFP_KERNEL);
	if (!dirty)
		return -ENOMEM;
	if (n) {
		err = qcow_table_write_new(img, l1, (size_t)n * sizeof(__be64), &off);
		if (!err)
			err = qcow_meta_flush(img);
		if (err)
			goto out_free;
	}
	h->l1_table_offset = off;
	h->l1_size = n;
	h->size = size;
	err = qcow_header_write(img);
	if (err) {
		/* Stopped: nothing more is written, whichever header it holds. */
		h->l1_table_offset = old_off;
		h->l1_size = old_n;
		h->size = old_size;
		goto out_free;
	}
	qcow_region_move(img, "L1 table", old_off, off, (u64)n * sizeof(__be64));
	*old = img->l1;
	img->l1 = l1;
	bitmap_free(img->l1_dirty);
	img->l1_dirty = dirty;
	if (old_n)
		return qcow_free_later(img, old_off, (u64)old_n * sizeof(__be64));
	return 0;

out_free:
	bitmap_free(dirty);
	return err;
}

/**
 * qcow_image_resize() - grow the virtual size
 * @img: writable image, meta_lock held, no request in flight, everything
 *	 written back (qcow_image_flush())
 * @size: the new size in bytes, a multiple of 512, not below the current
 *
 * When the L1 table is too small for @size, a larger one (the current
 * entries, then zeros) is switched to with the size (qcow_l1_replace());
 * else only the header's size changes.  The layer's size follows; the
 * caller updates the device's capacity.  The old table is released by the
 * next qcow_image_flush().  The new range reads as zeros, or
 * as the backing file where that is larger.
 *
 * Return: 0, -EINVAL (shrinking, or beyond the format's limits),
 * -EOPNOTSUPP (a version 2 image with snapshots: their entries have no
 * disk size, QEMU refuses it too), -ENOSPC, -EIO or -ENOMEM.
 */
int qcow_image_resize(struct qcow_image *img, u64 size)
{
	struct qcow2_header *h = img->hdr;
	u64 old_size = h->size, need;
	__be64 *l1, *old = NULL;
	size_t bytes;
	int err;

	lockdep_assert_held(&img->meta_lock);
	if (size < h->size || size > QCOW2_MAX_VIRTUAL_SIZE || size % SECTOR_SIZE)
		return -EINVAL;
	if (h->version < 3 && h->nb_snapshots)
		return -EOPNOTSUPP;
	if (size == h->size)
		return 0;
	err = qcow_meta_begin(img);
	if (err)
		return err;
	need = qcow2_l1_entries_needed(size, h->cluster_bits, h->extended_l2);
	if (need <= h->l1_size) {
		h->size = size;
		err = qcow_header_write(img);
		if (err)
			h->size = old_size;
		else
			img->layer->size = size;
		return err;
	}
	if (need > QCOW2_MAX_L1_BYTES / sizeof(__be64))
		return -EINVAL;
	bytes = round_up(need * sizeof(__be64), SECTOR_SIZE);
	l1 = kvzalloc(bytes, GFP_KERNEL);
	if (!l1)
		return -ENOMEM;
	if (h->l1_size)
		memcpy(l1, img->l1, (size_t)h->l1_size * sizeof(__be64));
	err = qcow_l1_replace(img, l1, need, size, &old);
	if (err) {
		kvfree(l1);
		return err;
	}
	kvfree(old);
	img->layer->size = size;
	return 0;
}

/**
 * qcow_l1_set() - change an active L1 entry in memory
 * @img: writable image, meta_lock held
 * @l1i: index
 * @entry: new entry, CPU order
 */
void qcow_l1_set(struct qcow_image *img, u64 l1i, u64 entry)
{
	lockdep_assert_held(&img->meta_lock);
	/* Release: the file size that covers the table is seen first. */
	smp_store_release(&img->l1[l1i], cpu_to_be64(entry));
	set_bit(l1i / (SECTOR_SIZE / 8), img->l1_dirty);
}

/*
 * Make the L2 table of guest offset @pos writable: allocate it when the
 * L1 entry is empty, copy it when it is shared (COPIED clear).  The new
 * table is written before the L1 entry points at it.  Returns the table's
 * offset, or 0 in *@l2off when @create is false and there is no table.
 * @nowait: -EAGAIN, with nothing done, where a table would be allocated
 * or copied (that writes, and copying reads, synchronously).
 */
static int qcow_l2_prepare(struct qcow_image *img, u64 pos, bool create,
			   bool nowait, u64 *l2off)
{
	const struct qcow2_header *h = img->hdr;
	u64 l1i = qcow2_l1_index(h, pos);
	u64 raw, old, got, new;
	void *buf = NULL;
	bool copied;
	int err;

	lockdep_assert_held(&img->meta_lock);
	*l2off = 0;
	if (l1i >= h->l1_size) {
		qcow_image_corrupt(img, "guest offset 0x%llx is beyond the L1 table", pos);
		return -EIO;
	}
	raw = be64_to_cpu(READ_ONCE(img->l1[l1i]));
	if (qcow2_l1e_decode(h, raw, READ_ONCE(img->file_size), &old, &copied)) {
		qcow_image_corrupt(img, "L1 entry %llu (0x%llx) is invalid", l1i, raw);
		return -EIO;
	}
	if (old && copied) {
		if (!xa_load(&img->meta, old >> h->cluster_bits)) {
			/* Not recorded at attach: the L2 table overlaps data? */
			qcow_image_corrupt(img, "L2 table at 0x%llx is not known metadata",
					   old);
			return -EIO;
		}
		*l2off = old;
		return 0;
	}
	if (!old && !create)
		return 0;
	if (nowait)
		return -EAGAIN;

	err = qcow_meta_begin(img);
	if (err)
		return err;
	buf = kvzalloc(h->cluster_size, GFP_NOIO);
	if (!buf)
		return -ENOMEM;
	if (old) {
		err = qcow_file_read(img->layer, buf, h->cluster_size, old);
		if (err)
			goto out;
	}
	err = qcow_alloc_clusters(img, 1, &new, &got);
	if (err)
		goto out;
	qcow_cache_drop(img->cache, new, h->cluster_size);
	err = qcow_file_write(img->layer, buf, h->cluster_size, new);
	if (err) {
		qcow_refcount_add(img, new >> h->cluster_bits, 1, -1);
		goto out;
	}
	qcow_meta_mark(img, new, h->cluster_size);
	if (old)
		qcow_free_later(img, old, h->cluster_size);
	qcow_l1_set(img, l1i, qcow2_l1e_encode(new, true));
	*l2off = new;
out:
	kvfree(buf);
	return err;
}

/**
 * qcow_l2_update() - change an L2 entry in a cached slice
 * @img: writable image, meta_lock held
 * @ce: the slice, referenced
 * @idx: entry index in the slice
 * @word: new entry
 * @bitmap: new subcluster bitmap (extended L2)
 *
 * Lock-free readers never see half of the change (img->l2_seq).
 */
void qcow_l2_update(struct qcow_image *img, struct qcow_cache_entry *ce,
		    u32 idx, u64 word, u64 bitmap)
{
	lockdep_assert_held(&img->meta_lock);
	write_seqcount_begin(&img->l2_seq);
	qcow2_l2_set(img->hdr, qcow_cache_data_w(ce), idx, word, bitmap);
	write_seqcount_end(&img->l2_seq);
	qcow_cache_mark_dirty(img->cache, ce);
}

static int qcow_l2_entry(struct qcow_image *img, struct qcow_cache_entry *ce,
			 u32 idx, u64 pos, struct qcow2_l2e *e, u64 *word,
			 u64 *bitmap)
{
	qcow2_l2_get(img->hdr, qcow_cache_data(ce), idx, word, bitmap);
	if (qcow2_l2e_decode(img->hdr, *word, *bitmap, READ_ONCE(img->file_size), e)) {
		qcow_image_corrupt(img, "invalid L2 entry 0x%llx/0x%llx for guest 0x%llx",
				   *word, *bitmap, pos);
		return -EIO;
	}
	if ((e->type == QCOW2_CLUSTER_NORMAL || e->type == QCOW2_CLUSTER_ZERO_ALLOC) &&
	    qcow_meta_overlaps(img, e->host_offset, img->hdr->cluster_size)) {
		qcow_image_corrupt(img, "data cluster 0x%llx of guest 0x%llx overlaps metadata",
				   e->host_offset, pos);
		return -EIO;
	}
	return 0;
}

static void qcow_drop_ref(const struct qcow2_header *h, const struct qcow2_l2e *e,
			  struct qcow_wplan *p)
{
	switch (e->type) {
	case QCOW2_CLUSTER_NORMAL:
	case QCOW2_CLUSTER_ZERO_ALLOC:
		p->free_off = e->host_offset;
		p->free_len = h->cluster_size;
		break;
	case QCOW2_CLUSTER_COMPRESSED:
		p->free_off = e->comp_offset;
		p->free_len = e->comp_len;
		break;
	default:
		break;
	}
}

/* ------------------------------------------------------------------------
 * slow-path writes
 */

/*
 * Plan one cluster: @ws..@we are the bytes of the cluster the write
 * covers.  Sets p->alloc when a new host cluster is needed (the caller
 * allocates and sets p->host and the entry's offset).
 */
static void qcow_plan_cluster(const struct qcow2_header *h,
			      const struct qcow2_l2e *e, u64 word, u64 bitmap,
			      u32 ws, u32 we, bool backing, struct qcow_wplan *p)
{
	u32 cs = h->cluster_size, ss = 1U << h->subcluster_bits;
	bool has_host = e->type == QCOW2_CLUSTER_NORMAL ||
			e->type == QCOW2_CLUSTER_ZERO_ALLOC;

	memset(p, 0, sizeof(*p));
	p->bitmap = bitmap;
	if (e->type == QCOW2_CLUSTER_ZERO_PLAIN ||
	    (e->type == QCOW2_CLUSTER_UNALLOCATED &&
	     (!backing || e->zero_bitmap == U32_MAX)))
		p->zeros = true;
	if (!h->extended_l2) {
		if (has_host && e->copied) {
			p->host = e->host_offset;
			/* A zero cluster's other bytes must become zeros. */
			p->rs = e->type == QCOW2_CLUSTER_NORMAL ? ws : 0;
			p->re = e->type == QCOW2_CLUSTER_NORMAL ? we : cs;
			p->word = qcow2_l2e_encode_std(p->host, true, false);
			return;
		}
		p->alloc = true;
		p->rs = 0;
		p->re = cs;
		qcow_drop_ref(h, e, p);
		return;
	}

	if (has_host && e->copied) {
		u32 first = ws / ss, last = (we - 1) / ss;
		u32 mask = GENMASK(last, first);

		p->host = e->host_offset;
		p->word = word;
		p->rs = first * ss;
		p->re = (last + 1) * ss;
		p->bitmap = qcow2_l2e_encode_bitmap(e->alloc_bitmap | mask,
						    e->zero_bitmap & ~mask);
		return;
	}
	p->alloc = true;
	if (e->type == QCOW2_CLUSTER_UNALLOCATED ||
	    e->type == QCOW2_CLUSTER_ZERO_PLAIN) {
		u32 first = ws / ss, last = (we - 1) / ss;
		u32 mask = GENMASK(last, first);

		p->rs = first * ss;
		p->re = (last + 1) * ss;
		p->bitmap = qcow2_l2e_encode_bitmap(mask, e->zero_bitmap & ~mask);
		return;
	}
	/* Shared or compressed: copy the whole cluster as the guest sees it. */
	p->rs = 0;
	p->re = cs;
	p->bitmap = qcow2_l2e_encode_bitmap(U32_MAX, 0);
	qcow_drop_ref(h, e, p);
}

/* ------------------------------------------------------------------------
 * bounce pages for copy-on-write
 */

/*
 * Per image, the pool keeps at most this much memory of free elements, and
 * lets at most that much exist.
 */
#define QCOW_BOUNCE_KEEP_BYTES	SZ_4M
#define QCOW_BOUNCE_KEEP_MAX	64U
#define QCOW_BOUNCE_MAX_BYTES	SZ_32M
#define QCOW_BOUNCE_MAX_MAX	512U

static void qcow_bounce_free(struct qcow_bounce *b, unsigned int nr_pages)
{
	unsigned int i;

	for (i = 0; i < nr_pages; i++)
		if (b->pages[i])
			__free_page(b->pages[i]);
	kfree(b);
}

static struct qcow_bounce *qcow_bounce_alloc(unsigned int nr_pages, gfp_t gfp)
{
	struct qcow_bounce *b;
	unsigned int i;

	b = kzalloc(struct_size(b, pages, nr_pages), gfp);
	if (!b)
		return NULL;
	for (i = 0; i < nr_pages; i++) {
		b->pages[i] = alloc_page(gfp);
		if (!b->pages[i]) {
			qcow_bounce_free(b, nr_pages);
			return NULL;
		}
	}
	return b;
}

/**
 * qcow_bounce_put() - give a bounce element back
 * @pool: its pool
 * @b: the element
 *
 * It goes to the free list, or back to the page allocator when the list
 * holds @pool->keep already.
 */
void qcow_bounce_put(struct qcow_bounce_pool *pool, struct qcow_bounce *b)
{
	spin_lock(&pool->lock);
	if (pool->nr_free < pool->keep) {
		list_add(&b->node, &pool->free);
		pool->nr_free++;
		b = NULL;
	} else {
		pool->nr_total--;
	}
	spin_unlock(&pool->lock);
	if (b)
		qcow_bounce_free(b, pool->nr_pages);
	if (wq_has_sleeper(&pool->wait))
		wake_up(&pool->wait);
}

/* Can @n elements be had without waiting (free, or room to make them)? */
static bool qcow_bounce_ready(struct qcow_bounce_pool *pool, unsigned int n,
			      bool nomem)
{
	bool ready;

	spin_lock(&pool->lock);
	ready = pool->nr_free >= n ||
		(!nomem && pool->nr_free + pool->max - pool->nr_total >= n);
	spin_unlock(&pool->lock);
	return ready;
}

/**
 * qcow_bounce_get() - take bounce elements
 * @pool: the pool
 * @n: how many (at most QCOW_BOUNCE_RESERVE)
 * @out: they go here
 *
 * All or none: from the free list, else new ones while fewer than
 * @pool->max exist and memory is at hand, else wait until enough are
 * given back.  At least QCOW_BOUNCE_RESERVE elements always exist and
 * their holders give them back without waiting for anything a waiter
 * holds (callers hold no element, lock or in-flight state another pool
 * user waits for), so the wait ends.  May sleep.
 */
void qcow_bounce_get(struct qcow_bounce_pool *pool, unsigned int n,
		     struct qcow_bounce **out)
{
	unsigned int got, make, i;
	bool nomem;

	for (;;) {
		got = 0;
		make = 0;
		spin_lock(&pool->lock);
		while (got < n && pool->nr_free) {
			out[got] = list_first_entry(&pool->free,
						    struct qcow_bounce, node);
			list_del(&out[got++]->node);
			pool->nr_free--;
		}
		if (got < n && pool->nr_total + n - got <= pool->max) {
			make = n - got;
			pool->nr_total += make;
		}
		spin_unlock(&pool->lock);
		for (i = 0; i < make; i++) {
			out[got] = qcow_bounce_alloc(pool->nr_pages,
						     GFP_NOIO | __GFP_NORETRY |
						     __GFP_NOWARN);
			if (!out[got])
				break;
			got++;
		}
		nomem = i < make;
		if (nomem) {
			spin_lock(&pool->lock);
			pool->nr_total -= make - i;
			spin_unlock(&pool->lock);
		}
		if (got == n)
			return;
		while (got)
			qcow_bounce_put(pool, out[--got]);
		wait_event(pool->wait, qcow_bounce_ready(pool, n, nomem));
	}
}

/**
 * qcow_bounce_init() - set up an image's bounce pool
 * @pool: the pool (zeroed)
 * @cluster_size: bytes per cluster
 *
 * Allocates the reserve.
 *
 * Return: 0 or -ENOMEM.
 */
int qcow_bounce_init(struct qcow_bounce_pool *pool, u32 cluster_size)
{
	unsigned int i, bytes;
	struct qcow_bounce *b;

	spin_lock_init(&pool->lock);
	INIT_LIST_HEAD(&pool->free);
	init_waitqueue_head(&pool->wait);
	pool->nr_pages = DIV_ROUND_UP(cluster_size, PAGE_SIZE);
	bytes = pool->nr_pages << PAGE_SHIFT;
	pool->keep = clamp_t(unsigned int, QCOW_BOUNCE_KEEP_BYTES / bytes,
			     QCOW_BOUNCE_RESERVE, QCOW_BOUNCE_KEEP_MAX);
	pool->max = clamp_t(unsigned int, QCOW_BOUNCE_MAX_BYTES / bytes,
			    pool->keep, QCOW_BOUNCE_MAX_MAX);
	for (i = 0; i < QCOW_BOUNCE_RESERVE; i++) {
		b = qcow_bounce_alloc(pool->nr_pages, GFP_KERNEL);
		if (!b) {
			qcow_bounce_exit(pool);
			return -ENOMEM;
		}
		list_add(&b->node, &pool->free);
		pool->nr_free++;
		pool->nr_total++;
	}
	return 0;
}

/**
 * qcow_bounce_exit() - free an image's bounce pool
 * @pool: the pool; every element has been given back (no write in flight)
 */
void qcow_bounce_exit(struct qcow_bounce_pool *pool)
{
	struct qcow_bounce *b, *tmp;

	if (!pool->nr_pages)
		return;
	WARN_ON_ONCE(pool->nr_total != pool->nr_free);
	list_for_each_entry_safe(b, tmp, &pool->free, node)
		qcow_bounce_free(b, pool->nr_pages);
	INIT_LIST_HEAD(&pool->free);
	pool->nr_free = 0;
	pool->nr_total = 0;
	pool->nr_pages = 0;
}

/*
 * Segments of @len bytes of @iter (not advanced) into @bv, or only count
 * them when @bv is NULL.  Block requests bring bvec iterators; kernel
 * buffers (kvec, direct-mapped or vmalloc memory) are described page by
 * page.  Return: the number of segments, or -EINVAL for other iterators.
 */
static int qcow_iter_bvecs(const struct iov_iter *iter, size_t len,
			   struct bio_vec *bv)
{
	size_t skip = iter->iov_offset, chunk, off;
	unsigned int n = 0;

	if (iov_iter_is_bvec(iter)) {
		const struct bio_vec *v = iter->bvec;

		for (; len; v++, skip = 0) {
			chunk = min_t(size_t, v->bv_len - skip, len);
			off = v->bv_offset + skip;
			if (chunk && bv)
				bvec_set_page(&bv[n], v->bv_page + (off >> PAGE_SHIFT),
					      chunk, offset_in_page(off));
			n += !!chunk;
			len -= chunk;
		}
		return n;
	}
	if (iov_iter_is_kvec(iter)) {
		const struct kvec *v = iter->kvec;

		for (; len; v++, skip = 0) {
			const u8 *p = (const u8 *)v->iov_base + skip;
			size_t left = min_t(size_t, v->iov_len - skip, len);

			len -= left;
			for (; left; left -= chunk, p += chunk) {
				chunk = min_t(size_t, left,
					      PAGE_SIZE - offset_in_page(p));
				if (bv)
					bvec_set_page(&bv[n], is_vmalloc_addr(p) ?
						      vmalloc_to_page(p) : virt_to_page(p),
						      chunk, offset_in_page(p));
				n++;
			}
		}
		return n;
	}
	return -EINVAL;
}

/* @len bytes of the zero page. */
static unsigned int qcow_bvec_zeros(struct bio_vec *bv, size_t len)
{
	unsigned int n = 0;
	size_t chunk;

	for (; len; len -= chunk) {
		chunk = min_t(size_t, len, PAGE_SIZE);
		bvec_set_page(&bv[n++], ZERO_PAGE(0), chunk, 0);
	}
	return n;
}

/* Bytes [@off, @off + @len) of the bounce elements of @c, end to end. */
static unsigned int qcow_bvec_bounce(struct qcow_cow *c, unsigned int per,
				     size_t off, size_t len, struct bio_vec *bv)
{
	unsigned int n = 0, k;
	size_t chunk;

	for (; len; len -= chunk, off += chunk) {
		k = off >> PAGE_SHIFT;
		chunk = min_t(size_t, len, PAGE_SIZE - offset_in_page(off));
		bvec_set_page(&bv[n++], c->bounce[k / per]->pages[k % per],
			      chunk, offset_in_page(off));
	}
	return n;
}

/*
 * Append [@pos, @pos + @len) of layer @l as it reads today to @c's
 * segments: the zero page when it reads as zeros (@zeros), else bounce
 * pages from byte @*boff on, read now.
 */
static int qcow_cow_part(struct qcow_layer *l, struct qcow_cow *c,
			 unsigned int *nr, u64 pos, size_t len, bool zeros,
			 size_t *boff, bool defer)
{
	struct bio_vec *bv = c->bv + *nr;
	struct iov_iter bi;
	unsigned int n;
	int err;

	if (zeros) {
		*nr += qcow_bvec_zeros(bv, len);
		return 0;
	}
	n = qcow_bvec_bounce(c, l->img->bounce.nr_pages, *boff, len, bv);
	if (defer) {
		/* The read's segments are the write's: read before it. */
		c->rpos = pos;
		c->rlen = len;
		c->rbv = bv;
		c->nr_rbv = n;
	} else {
		iov_iter_bvec(&bi, READ, bv, n, len);
		err = qcow_layer_read(l, pos, &bi, len);
		if (err)
			return err;
	}
	*boff += len;
	*nr += n;
	return 0;
}

/*
 * Whether the two copy-on-write parts around @guest bytes of a run of
 * the clusters [@i, @j) are read as one: both are read (@zeros: one of
 * them reads as zeros), they lie in the same cluster, and the guest bytes
 * between them, read for nothing, are no more than the parts themselves.
 * One read instead of two in a row halves the time a small write waits
 * before its data can go out; the bytes read at most double.
 */
static bool qcow_cow_merge(unsigned int i, unsigned int j, size_t head,
			   size_t tail, bool zeros, size_t guest)
{
	return head && tail && !zeros && j == i + 1 && guest <= head + tail;
}

/*
 * @c's segments for a run inside one cluster whose two copied parts are
 * read as one (qcow_cow_merge()): its first @head bytes of the bounce
 * element, the @glen guest bytes of @guest, and its last @tail bytes;
 * [@pos, @pos + @c->len) of layer @l is read into the element through
 * segments of its own after those, now or, with @defer, by the caller.
 */
static int qcow_cow_whole(struct qcow_layer *l, struct qcow_cow *c, u64 pos,
			  size_t head, size_t tail, const struct iov_iter *guest,
			  size_t glen, unsigned int *nr, bool defer)
{
	unsigned int per = l->img->bounce.nr_pages, n;
	struct iov_iter bi;

	n = qcow_bvec_bounce(c, per, 0, head, c->bv);
	n += qcow_iter_bvecs(guest, glen, c->bv + n);
	n += qcow_bvec_bounce(c, per, head + glen, tail, c->bv + n);
	*nr = n;
	/* The read's own segments follow the write's. */
	c->rbv = c->bv + n;
	c->nr_rbv = qcow_bvec_bounce(c, per, 0, c->len, c->rbv);
	if (defer) {
		c->rpos = pos;
		c->rlen = c->len;
		return 0;
	}
	iov_iter_bvec(&bi, READ, c->rbv, c->nr_rbv, c->len);
	return qcow_layer_read(l, pos, &bi, c->len);
}

/* Give back what qcow_cow_build() took. */
static void qcow_cow_release(struct qcow_image *img, struct qcow_cow *c)
{
	while (c->nr_bounce)
		qcow_bounce_put(&img->bounce, c->bounce[--c->nr_bounce]);
	kfree(c->bv);
	c->bv = NULL;
}

/*
 * The data of the planned clusters [i, j), whose host ranges are
 * contiguous, as one I/O in @c: the copy-on-write parts around the guest
 * bytes are read through the current mapping of layer @l.  Zeros need not
 * be written into a cluster beyond the end of the file: it reads as zeros
 * already (and QEMU accepts a last cluster cut short).  With @defer, when
 * exactly one read is needed (one part, or both read as one), it is left
 * to the caller: @c->rlen bytes at guest @c->rpos into @c->rbv.  On
 * success the caller writes @c->iter and then calls qcow_cow_release().
 */
static int qcow_cow_build(struct qcow_layer *l, struct qcow_wplan *p,
			  unsigned int i, unsigned int j, u64 cpos,
			  struct iov_iter *iter, u64 wpos, size_t wlen,
			  struct qcow_cow *c, bool defer)
{
	struct qcow_image *img = l->img;
	const struct qcow2_header *h = img->hdr;
	u64 gstart = cpos + ((u64)i << h->cluster_bits) + p[i].rs;
	u64 gend = cpos + ((u64)(j - 1) << h->cluster_bits) + p[j - 1].re;
	u64 ds = max(gstart, wpos), de = min(gend, wpos + wlen);
	bool zhead = p[i].zeros, ztail = p[j - 1].zeros, merge;
	size_t head, tail, bytes, boff = 0;
	unsigned int per = img->bounce.nr_pages, nr = 0;
	struct iov_iter sub;
	int guest, err;

	memset(c, 0, sizeof(*c));
	c->host = p[i].host + p[i].rs;
	if (p[i].fresh && zhead) {
		c->host += ds - gstart;
		gstart = ds;
	}
	if (p[j - 1].fresh && ztail)
		gend = de;
	c->len = gend - gstart;
	head = ds - gstart;
	tail = gend - de;

	sub = *iter;
	iov_iter_advance(&sub, ds - wpos);
	if (!head && !tail) {
		c->iter = sub;
		iov_iter_truncate(&c->iter, c->len);
		return 0;
	}
	guest = qcow_iter_bvecs(&sub, de - ds, NULL);
	if (WARN_ON_ONCE(guest < 0))
		return -EIO;
	/* Each part lies inside one cluster: at most one element each. */
	bytes = (zhead ? 0 : head) + (ztail ? 0 : tail);
	merge = qcow_cow_merge(i, j, head, tail, zhead || ztail, de - ds);
	if (merge)
		bytes = c->len;		/* inside one cluster too */
	c->nr_bounce = DIV_ROUND_UP(bytes, (size_t)per << PAGE_SHIFT);
	if (WARN_ON_ONCE(c->nr_bounce > ARRAY_SIZE(c->bounce)))
		return -EIO;
	/* Head, guest, tail; a merged read's own segments after them. */
	c->bv = kmalloc_array(guest + 3 * (per + 1), sizeof(*c->bv), GFP_NOIO);
	if (!c->bv) {
		c->nr_bounce = 0;
		return -ENOMEM;
	}
	qcow_bounce_get(&img->bounce, c->nr_bounce, c->bounce);
	if (merge) {
		err = qcow_cow_whole(l, c, gstart, head, tail, &sub, de - ds, &nr,
				     defer);
	} else {
		/* Only one read can be left to the caller. */
		defer = defer && !(head && !zhead && tail && !ztail);
		err = 0;
		if (head)
			err = qcow_cow_part(l, c, &nr, gstart, head, zhead, &boff,
					    defer);
		if (!err) {
			nr += qcow_iter_bvecs(&sub, de - ds, c->bv + nr);
			if (tail)
				err = qcow_cow_part(l, c, &nr, de, tail, ztail,
						    &boff, defer);
		}
	}
	if (err) {
		qcow_cow_release(img, c);
		return err;
	}
	iov_iter_bvec(&c->iter, WRITE, c->bv, nr, c->len);
	return 0;
}

/* Write the planned clusters [i, j) whose host ranges are contiguous. */
static int qcow_write_run(struct qcow_layer *l, struct qcow_wplan *p,
			  unsigned int i, unsigned int j, u64 cpos,
			  struct iov_iter *iter, u64 wpos, size_t wlen)
{
	struct qcow_cow c;
	int err;

	err = qcow_cow_build(l, p, i, j, cpos, iter, wpos, wlen, &c, false);
	if (err)
		return err;
	err = l->ops->write_iter(l, &c.iter, c.len, c.host, false);
	qcow_cow_release(l->img, &c);
	return err;
}

#define QCOW_AHEAD_MIN	(4ULL << 20)
#define QCOW_AHEAD_MAX	(128ULL << 20)

/*
 * A data write into a new cluster at the allocation end would extend the
 * image file, and file systems serialize extending direct writes (ext4
 * holds the inode lock for the whole write and journals an orphan record
 * around it): keep the file's size ahead of the allocation end, as a hole,
 * so that such writes fill a hole instead, as writes to a sparse raw file
 * do.  The hole reads as zeros and takes no space; detach trims what is
 * left of it (qcow_image_close_rw()), and after a crash it is harmless
 * (clusters past the allocation end are free).  Best effort: a failure
 * only costs speed.
 */
static void qcow_file_ahead(struct qcow_image *img)
{
	struct qcow_layer *l = img->layer;
	u64 end = img->nb_clusters << img->hdr->cluster_bits, step, size;

	lockdep_assert_held(&img->meta_lock);
	if (!l->ops->truncate)
		return;
	step = clamp_t(u64, end / 8, QCOW_AHEAD_MIN, QCOW_AHEAD_MAX);
	if (end + step / 2 <= l->ops->size(l))
		return;
	size = round_up(end + step, img->hdr->cluster_size);
	if (!l->ops->truncate(l, size))
		img->file_ahead = size;
}

/* Give back what is left of the hole qcow_file_ahead() added. */
static void qcow_file_trim(struct qcow_image *img)
{
	struct qcow_layer *l = img->layer;
	u64 end = max(img->nb_clusters << img->hdr->cluster_bits,
		      img->file_open_size);
	int err;

	if (!img->file_ahead || qcow_image_failed(img) ||
	    l->ops->size(l) != img->file_ahead || end >= img->file_ahead)
		return;
	err = l->ops->truncate(l, end);
	if (err)
		pr_warn("%pD: could not trim the file to %llu bytes: %d\n",
			l->file, end, err);
}

/* Nothing on disk references the clusters @b allocated: give them back. */
static void qcow_wbatch_give_back(struct qcow_wbatch *b)
{
	struct qcow_image *img = b->l->img;
	unsigned int i;

	lockdep_assert_held(&img->meta_lock);
	for (i = 0; i < b->nr; i++)
		if (b->p[i].alloc && b->p[i].host)
			qcow_refcount_add(img, b->p[i].host >> img->hdr->cluster_bits,
					  1, -1);
}

/*
 * Plan the slow-path write @b (@b->l, @b->pos, @b->len and @b->p set) and
 * allocate its new clusters.  On success the guest clusters are in
 * img->inflight and @b->ce is held; meta_lock is not held either way.
 * -EAGAIN (@nowait, the dispatcher): a write on the same clusters is in
 * flight, the L2 slice is not cached, or the L2 table is still to be
 * allocated or copied; nothing was done.
 */
static int qcow_wbatch_prepare(struct qcow_wbatch *b, bool nowait)
{
	struct qcow_layer *l = b->l;
	struct qcow_image *img = l->img;
	const struct qcow2_header *h = img->hdr;
	u32 cb = h->cluster_bits;
	u64 cs = h->cluster_size, pos = b->pos, len = b->len;
	u64 first = pos >> cb, last = (pos + len - 1) >> cb, cpos = first << cb;
	struct qcow_wplan *p = b->p;
	unsigned int i, j;
	struct qcow2_l2e e;
	u64 l2off, word, bitmap, host, got, fresh;
	int err;

	b->nr = last - first + 1;
	b->wop.first = first;
	b->wop.last = last;
	b->ce = NULL;
	mutex_lock(&img->meta_lock);
	if (nowait && qcow_inflight_conflict(img, first, last)) {
		err = -EAGAIN;
		goto out_unlock;
	}
	qcow_inflight_wait(img, first, last);
	if (qcow_image_failed(img)) {
		err = -EIO;
		goto out_unlock;
	}
	err = qcow_meta_begin(img);
	if (!err)
		err = qcow_l2_prepare(img, pos, true, nowait, &l2off);
	if (err)
		goto out_unlock;
	b->ce = qcow_l2_slice(img, l2off, pos, &b->idx, nowait);
	if (IS_ERR(b->ce)) {
		err = PTR_ERR(b->ce);
		b->ce = NULL;
		goto out_unlock;
	}
	for (i = 0; i < b->nr; i++) {
		u64 c0 = cpos + ((u64)i << cb);
		u32 ws = max(pos, c0) - c0, we = min(pos + len, c0 + cs) - c0;

		err = qcow_l2_entry(img, b->ce, b->idx + i, c0, &e, &word, &bitmap);
		if (err)
			goto out_unlock;
		qcow_plan_cluster(h, &e, word, bitmap, ws, we, !!l->backing,
				  &p[i]);
	}
	/* Allocate the new clusters, contiguous where possible. */
	fresh = img->nb_clusters << cb;	/* never written from here on */
	for (i = 0; i < b->nr; i = j) {
		if (!p[i].alloc) {
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < b->nr && p[j].alloc; j++)
			;
		err = qcow_alloc_clusters(img, j - i, &host, &got);
		if (err)
			goto out_free;
		for (j = i; j < i + got; j++) {
			p[j].host = host + ((u64)(j - i) << cb);
			p[j].word = qcow2_l2e_encode_std(p[j].host, true, false);
			p[j].fresh = p[j].host >= fresh;
		}
	}
	qcow_file_ahead(img);
	list_add(&b->wop.node, &img->inflight);
	mutex_unlock(&img->meta_lock);
	return 0;

out_free:
	qcow_wbatch_give_back(b);
out_unlock:
	mutex_unlock(&img->meta_lock);
	if (b->ce)
		qcow_cache_put(img->cache, b->ce);
	b->ce = NULL;
	return err;
}

/* The data of @b, with the copy-on-write parts, one I/O per contiguous run. */
static int qcow_wbatch_data(struct qcow_wbatch *b, struct iov_iter *iter)
{
	u64 cs = b->l->img->hdr->cluster_size;
	u64 cpos = b->pos & ~(cs - 1);
	struct qcow_wplan *p = b->p;
	unsigned int i, j;
	int err = 0;

	for (i = 0; i < b->nr; i = j) {
		for (j = i + 1; j < b->nr; j++)
			if (p[j - 1].re != cs || p[j].rs ||
			    p[j].host != p[j - 1].host + cs)
				break;
		err = qcow_write_run(b->l, p, i, j, cpos, iter, b->pos, b->len);
		if (err)
			break;
	}
	return err;
}

/*
 * Under meta_lock, once the data of @b is written (@err 0) or failed: the
 * L2 entries point to it, or the new clusters are given back.  The caller
 * puts @b->ce after dropping the lock.
 */
static void qcow_wbatch_finish(struct qcow_wbatch *b, int err)
{
	struct qcow_image *img = b->l->img;
	struct qcow_wplan *p = b->p;
	unsigned int i;

	lockdep_assert_held(&img->meta_lock);
	qcow_inflight_done(img, &b->wop);
	if (err) {
		qcow_wbatch_give_back(b);
		return;
	}
	for (i = 0; i < b->nr; i++) {
		qcow_l2_update(img, b->ce, b->idx + i, p[i].word, p[i].bitmap);
		if (p[i].free_off)
			qcow_free_later(img, p[i].free_off, p[i].free_len);
	}
	qcow_writeback_schedule(img);
}

/* Finish @b in the calling context. */
static void qcow_wbatch_end(struct qcow_wbatch *b, int err)
{
	struct qcow_image *img = b->l->img;

	mutex_lock(&img->meta_lock);
	qcow_wbatch_finish(b, err);
	mutex_unlock(&img->meta_lock);
	qcow_cache_put(img->cache, b->ce);
	b->ce = NULL;
}

/*
 * Write [pos, pos + len) of one L2 slice's clusters through the slow path.
 * @iter is not advanced.
 */
static int qcow_write_batch(struct qcow_layer *l, u64 pos, struct iov_iter *iter,
			    size_t len)
{
	u32 cb = l->img->hdr->cluster_bits;
	struct qcow_wbatch b = { .l = l, .pos = pos, .len = len };
	int err;

	b.p = kcalloc(((pos + len - 1) >> cb) - (pos >> cb) + 1, sizeof(*b.p),
		      GFP_NOIO);
	if (!b.p)
		return -ENOMEM;
	err = qcow_wbatch_prepare(&b, false);
	if (!err) {
		err = qcow_wbatch_data(&b, iter);
		qcow_wbatch_end(&b, err);
	}
	kfree(b.p);
	return err;
}

static void qcow_awrite_complete(struct kiocb *iocb, long ret)
{
	struct qcow_awrite *aw = container_of(iocb, struct qcow_awrite, iocb);
	struct qcow_image *img = aw->b.l->img;

	aw->ret = ret;
	if (llist_add(&aw->node, &img->aw_done))
		queue_work(img->aw_wq, &img->aw_work);
}

/**
 * qcow_awrite_work() - finish the asynchronous slow-path writes whose data
 * write completed
 * @work: img->aw_work
 *
 * All of them under one hold of meta_lock: the L2 entries are updated (or
 * the new clusters given back when the write failed), then each request
 * is told.
 */
void qcow_awrite_work(struct work_struct *work)
{
	struct qcow_image *img = container_of(work, struct qcow_image, aw_work);
	struct llist_node *list = llist_reverse_order(llist_del_all(&img->aw_done));
	struct qcow_awrite *aw, *tmp;
	unsigned int noio;
	int err;

	if (!list)
		return;
	noio = memalloc_noio_save();
	mutex_lock(&img->meta_lock);
	llist_for_each_entry(aw, list, node) {
		aw->err = aw->rerr;
		if (!aw->err && aw->ret != aw->cow.len) {
			pr_err_ratelimited("%pD: write of %zu bytes at %llu failed: %ld\n",
					   img->layer->file, aw->cow.len,
					   aw->cow.host, aw->ret);
			aw->err = -EIO;
		}
		qcow_wbatch_finish(&aw->b, aw->err);
	}
	mutex_unlock(&img->meta_lock);
	err = qcow_dirty_limit(img);
	llist_for_each_entry_safe(aw, tmp, list, node) {
		qcow_cow_release(img, &aw->cow);
		qcow_cache_put(img->cache, aw->b.ce);
		aw->b.ce = NULL;
		aw->done(aw, aw->err ?: err);
	}
	memalloc_noio_restore(noio);
}

/* Start the data write of @aw; its completion goes to img->aw_done. */
static void qcow_awrite_submit(struct qcow_awrite *aw)
{
	struct qcow_layer *l = aw->b.l;
	int err;

	err = l->ops->write_async(l, &aw->iocb, &aw->cow.iter, aw->cow.host,
				  qcow_awrite_complete);
	if (!err)
		return;
	/* Refused after all (out of memory, unaligned): now, then the same way. */
	err = l->ops->write_iter(l, &aw->cow.iter, aw->cow.len, aw->cow.host,
				 false);
	qcow_awrite_complete(&aw->iocb, err ?: aw->cow.len);
}

/**
 * struct qcow_awgroup - the data writes of asynchronous slow-path writes
 *	whose host ranges follow each other, started as one direct write
 * @iocb: the write
 * @iter: its data: the members' segments, end to end
 * @first: the first member's @snode; the others follow it (@snode.next)
 * @len: bytes
 * @bv: the segments
 */
struct qcow_awgroup {
	struct kiocb iocb;
	struct iov_iter iter;
	struct llist_node *first;
	size_t len;
	struct bio_vec bv[];
};

/*
 * Each member completes as if written alone: all of it written, or the
 * group's error (-EIO for a short write: the data of a failed member is
 * never referenced, its cluster is given back).
 */
static void qcow_awgroup_complete(struct kiocb *iocb, long ret)
{
	struct qcow_awgroup *g = container_of(iocb, struct qcow_awgroup, iocb);
	struct llist_node *n = g->first, *next;
	struct qcow_awrite *aw;

	for (; n; n = next) {
		/* Completing a member may free it: read its link first. */
		next = n->next;
		aw = llist_entry(n, struct qcow_awrite, snode);
		qcow_awrite_complete(&aw->iocb, ret == g->len ? (long)aw->cow.len :
					     ret < 0 ? ret : -EIO);
	}
	kfree(g);
}

/*
 * Start the data writes of the @nr writes from @first on (linked by
 * @snode, @len bytes, @segs segments in all) as one write.  Return: false
 * when that could not be done (no memory, the layer refused): nothing was
 * started.
 */
static bool qcow_awgroup_submit(struct qcow_awrite *first, unsigned int nr,
				size_t len, unsigned int segs)
{
	struct qcow_layer *l = first->b.l;
	struct llist_node *n = &first->snode;
	struct qcow_awrite *aw;
	struct qcow_awgroup *g;
	unsigned int k = 0;

	g = kmalloc(struct_size(g, bv, segs), GFP_NOIO | __GFP_NOWARN);
	if (!g)
		return false;
	g->first = n;
	g->len = len;
	for (; nr--; n = n->next) {
		aw = llist_entry(n, struct qcow_awrite, snode);
		k += qcow_iter_bvecs(&aw->cow.iter, aw->cow.len, g->bv + k);
	}
	iov_iter_bvec(&g->iter, WRITE, g->bv, k, len);
	if (l->ops->write_async(l, &g->iocb, &g->iter, first->cow.host,
				qcow_awgroup_complete)) {
		kfree(g);
		return false;
	}
	return true;
}

/*
 * Start the writes of the sorted batch @list: each run of writes whose
 * host ranges follow each other as one write (up to QCOW_AWGROUP_MAX
 * bytes), so the file system maps, allocates and converts the range once
 * and completes it once; the block layer would merge the bios anyway.
 */
static void qcow_awrite_start(struct llist_node *list)
{
	struct qcow_awrite *first, *aw, *last;
	struct llist_node *n, *rest;
	unsigned int nr;
	size_t len;
	int segs, k;

	while (list) {
		first = llist_entry(list, struct qcow_awrite, snode);
		last = first;
		nr = 1;
		len = first->cow.len;
		segs = qcow_iter_bvecs(&first->cow.iter, first->cow.len, NULL);
		for (n = list->next; n && segs >= 0; n = n->next) {
			aw = llist_entry(n, struct qcow_awrite, snode);
			k = qcow_iter_bvecs(&aw->cow.iter, aw->cow.len, NULL);
			if (k < 0 || aw->cow.host != last->cow.host + last->cow.len ||
			    len + aw->cow.len > QCOW_AWGROUP_MAX)
				break;
			segs += k;
			last = aw;
			len += aw->cow.len;
			nr++;
		}
		rest = last->snode.next;
		last->snode.next = NULL;
		if (nr < 2 || !qcow_awgroup_submit(first, nr, len, segs)) {
			/* A completion may end a request before its next is read. */
			for (n = list; n; n = list) {
				list = n->next;
				qcow_awrite_submit(llist_entry(n, struct qcow_awrite,
							       snode));
			}
		}
		list = rest;
	}
}

/*
 * The batch @list in the order of the writes' file offsets, so that a
 * write contiguous with the one before it merges into its request (the
 * plug merges a bio only into its last request).  A batch is a few
 * requests: insertion sort.
 */
static struct llist_node *qcow_awrite_sort(struct llist_node *list)
{
	struct llist_node *sorted = NULL, *next, **pp;
	struct qcow_awrite *aw;

	for (; list; list = next) {
		next = list->next;
		aw = llist_entry(list, struct qcow_awrite, snode);
		for (pp = &sorted; *pp; pp = &(*pp)->next)
			if (llist_entry(*pp, struct qcow_awrite, snode)->cow.host >
			    aw->cow.host)
				break;
		list->next = *pp;
		*pp = list;
	}
	return sorted;
}

/*
 * Queue @aw's data write and start it, unless another writer is starting
 * writes: that one starts it too.  One writer at a time starts everything
 * queued, batch after batch, each under one plug and in file order, and
 * the others move on.  New clusters are allocated in order at the end of
 * the file, so the writes of a batch are mostly contiguous on the disk,
 * and contiguous bios of one plug merge into one request.  A write into a
 * hole holds the file's inode lock exclusively (ext4, XFS) while it
 * allocates and submits: writers no longer queue on that lock, and the
 * file system's plug, nested in ours, no longer hands the bio to the disk
 * with the lock held.
 */
static void qcow_awrite_run(struct qcow_image *img)
{
	struct llist_node *list;
	struct blk_plug plug;

	/*
	 * A write queued after the starter's last look but before it let go
	 * found the bit set and left it to the starter: look again after
	 * letting go (llist_add() and the bit operations are full barriers).
	 */
	while (!llist_empty(&img->aw_submit) &&
	       !test_and_set_bit_lock(0, &img->aw_starting)) {
		while ((list = llist_del_all(&img->aw_submit))) {
			blk_start_plug(&plug);
			qcow_awrite_start(qcow_awrite_sort(list));
			blk_finish_plug(&plug);
		}
		clear_bit_unlock(0, &img->aw_starting);
		/*
		 * The clear before the llist_empty() look above, against a
		 * writer's llist_add() before its test of the bit.
		 */
		smp_mb();
	}
}

/* Queue @aw's data write and start what is queued (qcow_awrite_run()). */
static void qcow_awrite_queue(struct qcow_image *img, struct qcow_awrite *aw)
{
	llist_add(&aw->snode, &img->aw_submit);
	qcow_awrite_run(img);
}

/**
 * qcow_awrite_start_work() - start the queued data writes whose
 *	copy-on-write read completed
 * @work: img->aw_start_work
 */
void qcow_awrite_start_work(struct work_struct *work)
{
	unsigned int noio = memalloc_noio_save();

	qcow_awrite_run(container_of(work, struct qcow_image, aw_start_work));
	memalloc_noio_restore(noio);
}

/*
 * The copy-on-write read of @aw completed (possibly in IRQ context): queue
 * its data write, and have a worker start it unless a writer is starting
 * writes (that one sees it: llist_add() is a full barrier, and the
 * starter looks at the list again after letting the bit go).  A failed
 * read ends the request like a failed write, through img->aw_done.
 */
static void qcow_awrite_read_done(struct kiocb *iocb, long ret)
{
	struct qcow_awrite *aw = container_of(iocb, struct qcow_awrite, iocb);
	struct qcow_image *img = aw->b.l->img;

	if (ret != aw->cow.rlen) {
		pr_err_ratelimited("%pD: copy-on-write read of %zu bytes at guest %llu failed: %ld\n",
				   img->layer->file, aw->cow.rlen, aw->cow.rpos, ret);
		aw->rerr = -EIO;	/* what qcow_awrite_work() reports */
		qcow_awrite_complete(iocb, ret);
		return;
	}
	llist_add(&aw->snode, &img->aw_submit);
	if (!test_bit(0, &img->aw_starting))
		queue_work(img->aw_wq, &img->aw_start_work);
}

/* Read what @aw copies, waiting for it. */
static int qcow_awrite_read_sync(struct qcow_awrite *aw)
{
	struct iov_iter ri;

	iov_iter_bvec(&ri, READ, aw->cow.rbv, aw->cow.nr_rbv, aw->cow.rlen);
	return qcow_layer_read(aw->b.l, aw->cow.rpos, &ri, aw->cow.rlen);
}

/*
 * @aw->nowait: what is copied could not be read without waiting, so it is
 * read here, and the write queued (or failed like a failed asynchronous
 * read).
 */
static void qcow_awrite_read_work(struct work_struct *work)
{
	struct qcow_awrite *aw = container_of(work, struct qcow_awrite, work);
	struct qcow_image *img = aw->b.l->img;
	unsigned int noio = memalloc_noio_save();
	int err;

	err = qcow_awrite_read_sync(aw);
	if (err) {
		aw->rerr = err;
		qcow_awrite_complete(&aw->iocb, err);
	} else {
		qcow_awrite_queue(img, aw);
	}
	memalloc_noio_restore(noio);
}

/**
 * qcow_layer_write_async() - a slow-path write whose data write does not
 * block the caller
 * @l: the top layer (writable qcow2)
 * @pos: guest offset
 * @iter: data (a bvec iterator over a block request), exactly @len bytes;
 *	  it must stay valid until @aw->done runs
 * @len: bytes
 * @aw: the request's state; @aw->done is set
 *
 * For a write inside one cluster that needs the slow path (a new cluster,
 * a subcluster allocation, a zero cluster's first write, copy-on-write
 * from a backing file, a shared or a compressed cluster): the cluster is
 * planned and allocated, what is copied around the guest's bytes is read
 * (one direct read that does not block the caller where it maps to one
 * extent of a file, qcow_layer_read_async(), else synchronously), the
 * whole goes out as one asynchronous direct write (qcow_awrite_queue()),
 * and qcow_awrite_work() updates the L2 entry once it completes, batching
 * the metadata updates of many writes under one hold of meta_lock.  Not
 * for FUA writes.
 *
 * With @aw->nowait, the caller does not wait for I/O: a write whose L2
 * slice is not cached, whose L2 table is still to be allocated or copied,
 * or that overlaps a write in flight, is not started (-EAGAIN), and what
 * is copied is read by a worker when it cannot be read asynchronously.
 * The caller may still sleep briefly (meta_lock, memory, the bounce pool,
 * a refcount block the allocation needs).
 *
 * Return: -EINPROGRESS (@aw->done will be called), -EAGAIN (the write does
 * not qualify, or would wait with @aw->nowait: nothing was done, use
 * qcow_layer_write()), or an error from planning or reading what is copied
 * (nothing was written).
 */
int qcow_layer_write_async(struct qcow_layer *l, u64 pos, struct iov_iter *iter,
			   size_t len, struct qcow_awrite *aw)
{
	struct qcow_image *img = l->img;
	u32 cb = img->hdr->cluster_bits;
	u32 ws = pos & (img->hdr->cluster_size - 1);
	struct qcow_wplan *p = &aw->plan;
	struct qcow_wbatch *b = &aw->b;
	struct iov_iter ri;
	int err;

	if (!img->aw_wq || !img->writable || qcow_image_failed(img) ||
	    pos + len > l->size || (pos >> cb) != ((pos + len - 1) >> cb) ||
	    iov_iter_count(iter) != len || !qcow_layer_can_write_async(l))
		return -EAGAIN;
	memset(b, 0, sizeof(*b));
	b->l = l;
	b->pos = pos;
	b->len = len;
	b->p = p;
	aw->rerr = 0;
	err = qcow_wbatch_prepare(b, aw->nowait);
	if (err)
		return err;
	err = -EIO;
	if (!WARN_ON_ONCE(!p->host))
		err = qcow_cow_build(l, p, 0, 1, pos - ws, iter, pos, len,
				     &aw->cow, true);
	if (err)
		goto out_end;
	if (aw->cow.rlen) {
		/* What is copied: read without waiting where it can be. */
		iov_iter_bvec(&ri, READ, aw->cow.rbv, aw->cow.nr_rbv,
			      aw->cow.rlen);
		err = qcow_layer_read_async(l, aw->cow.rpos, &ri, &aw->iocb,
					    qcow_awrite_read_done, aw->nowait);
		if (!err)
			return -EINPROGRESS;	/* qcow_awrite_read_done() */
		if (aw->nowait) {
			INIT_WORK(&aw->work, qcow_awrite_read_work);
			queue_work(img->aw_wq, &aw->work);
			return -EINPROGRESS;
		}
		err = qcow_awrite_read_sync(aw);
		if (err) {
			qcow_cow_release(img, &aw->cow);
			goto out_end;
		}
	}
	qcow_awrite_queue(img, aw);
	return -EINPROGRESS;

out_end:
	qcow_wbatch_end(b, err);
	return err;
}

/* Bytes from @pos to the end of the guest range one L2 slice maps. */
static u64 qcow_slice_span(const struct qcow_image *img, u64 pos)
{
	const struct qcow2_header *h = img->hdr;
	u64 span = (u64)(img->slice_size / h->l2_entry_size) << h->cluster_bits;

	return span - (pos & (span - 1));
}

/**
 * qcow_layer_write() - write a guest range of the top layer
 * @l: the top layer (writable qcow2)
 * @pos: guest offset
 * @iter: data, advanced by @len on success
 * @len: bytes
 * @fua: durable before returning
 *
 * Bytes past the virtual size are dropped.
 *
 * Return: 0, -EIO (I/O error, corrupt image), -ENOSPC or -ENOMEM.
 */
int qcow_layer_write(struct qcow_layer *l, u64 pos, struct iov_iter *iter,
		     size_t len, bool fua)
{
	struct qcow_image *img = l->img;
	struct qcow_extent ext;
	size_t n, total = len;
	struct iov_iter start = *iter;
	int err = 0;

	if (!img->writable || qcow_image_failed(img))
		return -EIO;
	if (pos >= l->size)
		len = 0;
	else
		len = min_t(u64, len, l->size - pos);
	while (len) {
		n = min_t(u64, len, qcow_slice_span(img, pos));
		err = qcow_map(img, pos, n, &ext);
		if (err)
			break;
		if (ext.type == QCOW2_SUBCLUSTER_NORMAL && ext.copied &&
		    !qcow_meta_overlaps(img, ext.host, ext.len)) {
			/* Allocated and not shared: write in place. */
			n = ext.len;
			err = l->ops->write_iter(l, iter, n, ext.host, false);
			if (err)
				break;
		} else {
			err = qcow_write_batch(l, pos, iter, n);
			if (err)
				break;
			iov_iter_advance(iter, n);
		}
		pos += n;
		len -= n;
	}
	if (!err)
		err = qcow_dirty_limit(img);
	if (!err && fua)
		err = qcow_image_flush(img, false);
	if (!err) {
		*iter = start;
		iov_iter_advance(iter, total);
	}
	return err;
}

/* ------------------------------------------------------------------------
 * write-zeroes and discard
 */

/* Write zeros as data (formats or entries without a zero flag). */
static int qcow_write_zero_data(struct qcow_layer *l, u64 pos, u64 len)
{
	size_t chunk = min_t(u64, len, SZ_1M), n;
	struct iov_iter iter;
	struct bio_vec *bv;
	unsigned int nr;
	int err = 0;

	/* The zero page, as often as a chunk needs it: nothing to allocate. */
	bv = kmalloc_array(DIV_ROUND_UP(chunk, PAGE_SIZE), sizeof(*bv), GFP_NOIO);
	if (!bv)
		return -ENOMEM;
	nr = qcow_bvec_zeros(bv, chunk);
	while (len && !err) {
		n = min_t(u64, len, chunk);
		iov_iter_bvec(&iter, WRITE, bv, nr, n);
		err = qcow_layer_write(l, pos, &iter, n, false);
		pos += n;
		len -= n;
	}
	kfree(bv);
	return err;
}

/*
 * New entry for a cluster whose units @mask (all of them for standard L2)
 * become zero (@zero) or are dropped.  Returns false when the format cannot
 * express it (the caller writes zeros instead).
 */
static bool qcow_zero_entry(const struct qcow2_header *h, const struct qcow2_l2e *e,
			    u64 word, u32 mask, bool zero, bool keep,
			    struct qcow_wplan *p)
{
	bool has_host = e->type == QCOW2_CLUSTER_NORMAL ||
			e->type == QCOW2_CLUSTER_ZERO_ALLOC;
	u32 alloc, zbits;

	memset(p, 0, sizeof(*p));
	keep = keep && has_host && e->copied;
	if (!h->extended_l2) {
		if (keep && h->version >= 3) {
			p->word = qcow2_l2e_encode_std(e->host_offset, true, true);
			return true;
		}
		if (zero && h->version < 3)
			return false;
		p->word = qcow2_l2e_encode_std(0, false, zero);
		qcow_drop_ref(h, e, p);
		return true;
	}
	if (e->type == QCOW2_CLUSTER_COMPRESSED) {
		if (mask != U32_MAX)
			return false;
		p->word = 0;
		p->bitmap = qcow2_l2e_encode_bitmap(0, zero ? U32_MAX : 0);
		qcow_drop_ref(h, e, p);
		return true;
	}
	alloc = e->alloc_bitmap & ~mask;
	zbits = zero ? e->zero_bitmap | mask : e->zero_bitmap & ~mask;
	p->word = word;
	if (has_host && !alloc && !keep) {
		/* No subcluster uses the host cluster any more: drop it. */
		p->word = 0;
		qcow_drop_ref(h, e, p);
	}
	p->bitmap = qcow2_l2e_encode_bitmap(alloc, zbits);
	return true;
}

/*
 * Zero or discard the whole units of [pos, pos + len) within one L2
 * slice.  Units the format cannot zero by metadata are written with zeros
 * (write-zeroes) or left alone (discard).
 */
static int qcow_zero_batch(struct qcow_layer *l, u64 pos, u64 len,
			   bool discard, bool unmap)
{
	struct qcow_image *img = l->img;
	const struct qcow2_header *h = img->hdr;
	u32 cb = h->cluster_bits, sb = h->subcluster_bits;
	u64 cs = h->cluster_size;
	/* Without a backing file, unallocated reads as zeros: no zero flag. */
	bool zero = !!l->backing;
	u64 first = pos >> cb, last = (pos + len - 1) >> cb;
	struct qcow_cache_entry *ce = NULL;
	u64 l2off, word, bitmap, c0, s, e_;
	u64 fallback_pos = 0, fallback_len = 0;
	struct qcow_wplan p;
	struct qcow2_l2e e;
	unsigned int i;
	u32 idx, mask;
	int err;

	mutex_lock(&img->meta_lock);
	qcow_inflight_wait(img, first, last);
	err = qcow_image_failed(img) ? -EIO : qcow_meta_begin(img);
	if (!err)
		err = qcow_l2_prepare(img, pos, zero, false, &l2off);
	if (err || !l2off)
		goto out;	/* no table and nothing to zero: done */
	ce = qcow_l2_slice(img, l2off, pos, &idx, false);
	if (IS_ERR(ce)) {
		err = PTR_ERR(ce);
		ce = NULL;
		goto out;
	}
	for (i = 0; i <= last - first; i++) {
		c0 = (first + i) << cb;
		s = max(pos, c0) - c0;
		e_ = min(pos + len, c0 + cs) - c0;
		if (h->extended_l2) {
			s = round_up(s, 1ULL << sb) >> sb;
			e_ = round_down(e_, 1ULL << sb) >> sb;
			if (s >= e_)
				continue;
			mask = GENMASK(e_ - 1, s);
		} else {
			if (s || e_ != cs)
				continue;
			mask = U32_MAX;
		}
		err = qcow_l2_entry(img, ce, idx + i, c0, &e, &word, &bitmap);
		if (err)
			break;
		if (!qcow_zero_entry(h, &e, word, mask, zero, !discard && !unmap, &p)) {
			if (discard)
				continue;
			/* Zeros as data, after the lock is dropped. */
			if (!fallback_len)
				fallback_pos = c0;
			fallback_len = c0 + cs - fallback_pos;
			continue;
		}
		if (p.word == word && (!h->extended_l2 || p.bitmap == bitmap))
			continue;
		qcow_l2_update(img, ce, idx + i, p.word, p.bitmap);
		if (p.free_off)
			qcow_free_later(img, p.free_off, p.free_len);
		qcow_writeback_schedule(img);
	}
out:
	mutex_unlock(&img->meta_lock);
	if (ce)
		qcow_cache_put(img->cache, ce);
	if (!err && fallback_len) {
		s = max(pos, fallback_pos);
		err = qcow_write_zero_data(l, s, min(pos + len, fallback_pos + fallback_len) - s);
	}
	return err;
}

/**
 * qcow_layer_zero() - write-zeroes or discard a guest range
 * @l: the top layer (writable qcow2)
 * @pos: guest offset
 * @len: bytes
 * @discard: discard (the range may read as anything afterwards; with a
 *	     backing file it reads as zeros) rather than write-zeroes
 * @unmap: write-zeroes may deallocate (REQ_NOUNMAP clear)
 *
 * Whole clusters (subclusters with extended L2) change by metadata only:
 * zero flags, or unallocated, with the host cluster released.  Partial
 * ones are written with zeros (write-zeroes) or left alone (discard).
 *
 * Return: 0, -EIO, -ENOSPC or -ENOMEM.
 */
int qcow_layer_zero(struct qcow_layer *l, u64 pos, u64 len, bool discard,
		    bool unmap)
{
	struct qcow_image *img = l->img;
	const struct qcow2_header *h = img->hdr;
	u64 unit = 1ULL << h->subcluster_bits, head, tail, n;
	int err = 0;

	if (!img->writable || qcow_image_failed(img))
		return -EIO;
	if (pos >= l->size)
		return 0;
	len = min(len, l->size - pos);

	/* Partial units at the edges. */
	head = min(len, round_up(pos, unit) - pos);
	tail = (pos + len) & (unit - 1);
	if (head + tail > len)
		tail = 0;
	if (!discard && head)
		err = qcow_write_zero_data(l, pos, head);
	if (!err && !discard && tail && pos + len - tail >= pos + head)
		err = qcow_write_zero_data(l, pos + len - tail, tail);
	pos += head;
	len -= head + tail;

	while (!err && len) {
		n = min(len, qcow_slice_span(img, pos));
		err = qcow_zero_batch(l, pos, n, discard, unmap);
		pos += n;
		len -= n;
	}
	if (!err)
		err = qcow_dirty_limit(img);
	return err;
}

/* ------------------------------------------------------------------------
 * attach and detach
 */

/**
 * qcow_image_open_rw() - prepare an opened image for writing
 * @img: image from qcow_image_open(), its file opened for writing
 *
 * Refuses images another writer left dirty or marked corrupt, loads the
 * refcount state, and clears the autoclear bits (their features, e.g.
 * persistent bitmaps, are not maintained here: the spec requires a writer
 * that does not know them to clear them before changing the image).
 *
 * Return: 0, -EINVAL (dirty or corrupt image, named in the log), -EIO,
 * -ENOMEM.
 */
int qcow_image_open_rw(struct qcow_image *img)
{
	struct qcow2_header *h = img->hdr;
	struct qcow_layer *l = img->layer;
	int err;

	if (h->incompatible_features & QCOW2_INCOMPAT_DIRTY) {
		pr_err("%pD: incompatible_features: the dirty bit is set (refcounts need repair: qemu-img check -r all)\n",
		       l->file);
		return -EINVAL;
	}
	if (h->incompatible_features & QCOW2_INCOMPAT_CORRUPT) {
		pr_err("%pD: incompatible_features: the corrupt bit is set (repair with qemu-img check -r all, or attach read-only)\n",
		       l->file);
		return -EINVAL;
	}
	img->hdr_sector = kzalloc(SECTOR_SIZE, GFP_KERNEL);
	img->l1_dirty = bitmap_zalloc(DIV_ROUND_UP(h->l1_size, SECTOR_SIZE / 8) + 1,
				      GFP_KERNEL);
	img->epoch = alloc_percpu(struct qcow_epoch_count);
	if (!img->hdr_sector || !img->l1_dirty || !img->epoch)
		return -ENOMEM;
	err = qcow_file_read(l, img->hdr_sector, SECTOR_SIZE, 0);
	if (err)
		return err;
	err = qcow_refcount_open(img);
	if (err)
		return err;
	err = qcow_bounce_init(&img->bounce, h->cluster_size);
	if (err)
		return err;
	img->file_open_size = l->ops->size(l);
	img->lazy_refcounts = h->compatible_features & QCOW2_COMPAT_LAZY_REFCOUNTS;
	img->writable = true;
	if (h->version >= 3 && h->autoclear_features) {
		h->autoclear_features = 0;
		err = qcow_header_write(img);
		if (err) {
			img->writable = false;
			return err;
		}
	}
	return 0;
}

/**
 * qcow_image_close_rw() - write everything back and mark the image clean
 * @img: image; no request is in flight any more, and img->aw_wq (if any)
 *	 has been drained (destroyed)
 *
 * Errors are logged: the image then keeps its dirty bit (if it has one)
 * and at worst leaks clusters.
 */
void qcow_image_close_rw(struct qcow_image *img)
{
	int err;

	if (img->writable) {
		cancel_delayed_work_sync(&img->wb_work);
		err = qcow_image_flush(img, true);
		if (!err) {
			mutex_lock(&img->meta_lock);
			err = qcow_meta_writeback(img, true);
			mutex_unlock(&img->meta_lock);
		}
		if (!err && (img->hdr->incompatible_features & QCOW2_INCOMPAT_DIRTY) &&
		    !qcow_image_failed(img)) {
			img->hdr->incompatible_features &= ~QCOW2_INCOMPAT_DIRTY;
			err = qcow_header_write(img);
			if (!err)
				img->dirty_set = false;
		}
		if (err)
			pr_err("%pD: write-back at detach failed: %d\n",
			       img->layer->file, err);
		else
			qcow_file_trim(img);
		img->writable = false;
	}
	qcow_refcount_close(img);
	qcow_bounce_exit(&img->bounce);
	free_percpu(img->epoch);
	img->epoch = NULL;
	bitmap_free(img->l1_dirty);
	img->l1_dirty = NULL;
	kfree(img->hdr_sector);
	img->hdr_sector = NULL;
}
