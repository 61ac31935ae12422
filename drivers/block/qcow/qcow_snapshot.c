// SPDX-License-Identifier: GPL-2.0
/*
 * qcow: online internal snapshots (QCOW_SNAPSHOT_* ioctls on /dev/qcowN).
 *
 * Every operation freezes the request queue (in-flight requests complete,
 * new ones wait), writes everything dirty back, changes metadata under
 * img->meta_lock and unfreezes.
 *
 * Create: copy the active L1 table to new clusters; add one reference to
 * every cluster reachable from it (L2 tables, data, compressed spans) and
 * clear the COPIED flags of the active tables (everything is shared now);
 * write all that back; write a new snapshot table with the entry appended
 * to new clusters; switch the header to it in one sector write; free the
 * old table.  Until the header switch the old table is the valid one and
 * the new references are leaks at worst.
 *
 * Delete: write the table without the entry and switch the header first;
 * only then drop the references the snapshot held (its L1 table, its L2
 * tables, their data), punch what reaches zero, and set COPIED again where
 * an active cluster became exclusively owned.
 *
 * Apply: add references for the snapshot's tree, write its L1 table over
 * the active one (COPIED clear: everything is shared with the snapshot),
 * then drop the references of the old active tree.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/blkdev.h>
#include <linux/capability.h>
#include <linux/kstrtox.h>
#include <linux/slab.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "qcow_main.h"

/**
 * struct qcow_snaps - the snapshot table, parsed
 * @buf: the table as read (entries' strings point into it)
 * @sn: entries
 * @nr: entries used
 */
struct qcow_snaps {
	void *buf;
	struct qcow2_snapshot *sn;
	u32 nr;
};

static struct qcow2_region *qcow_snap_region(struct qcow_image *img)
{
	unsigned int i;

	for (i = 0; i < img->nr_regions; i++)
		if (!strcmp(img->regions[i].what, "snapshot table"))
			return &img->regions[i];
	return NULL;
}

static void qcow_snaps_free(struct qcow_snaps *t)
{
	kvfree(t->buf);
	kvfree(t->sn);
	t->buf = NULL;
	t->sn = NULL;
}

/* Read and parse the snapshot table; room for one more entry. */
static int qcow_snaps_load(struct qcow_image *img, struct qcow_snaps *t)
{
	const struct qcow2_header *h = img->hdr;
	struct qcow2_region *r = qcow_snap_region(img);
	size_t pos = 0, used, len = r ? r->len : 0;
	u32 i;
	int err;

	memset(t, 0, sizeof(*t));
	t->sn = kvcalloc(h->nb_snapshots + 1, sizeof(*t->sn), GFP_KERNEL);
	if (!t->sn)
		return -ENOMEM;
	if (!h->nb_snapshots)
		return 0;
	if (!r)
		return -EIO;
	t->buf = kvmalloc(len, GFP_KERNEL);
	if (!t->buf)
		return -ENOMEM;
	err = qcow_file_read(img->layer, t->buf, len, h->snapshots_offset);
	for (i = 0; !err && i < h->nb_snapshots; i++) {
		err = qcow2_snapshot_parse(h, t->buf + pos, len - pos,
					   READ_ONCE(img->file_size), &t->sn[i],
					   &used, NULL);
		pos += used;
		/*
		 * Without extra data (version 2), the disk size is the
		 * image's, as QEMU reads it; rewriting the table stores it.
		 */
		if (!err && !t->sn[i].has_disk_size) {
			t->sn[i].disk_size = h->size;
			t->sn[i].has_disk_size = true;
		}
	}
	if (err) {
		qcow_image_corrupt(img, "snapshot table no longer parses");
		return -EIO;
	}
	t->nr = h->nb_snapshots;
	return 0;
}

static bool qcow_snap_str_eq(const char *a, u16 alen, const char *s)
{
	return strlen(s) == alen && !memcmp(a, s, alen);
}

/* Index of the entry @c selects (by id when given, else by name), or -1. */
static int qcow_snaps_find(struct qcow_snaps *t, const struct qcow_snapshot_cmd *c)
{
	u32 i;

	for (i = 0; i < t->nr; i++) {
		if (c->id[0] ? qcow_snap_str_eq(t->sn[i].id, t->sn[i].id_len, c->id) :
			       qcow_snap_str_eq(t->sn[i].name, t->sn[i].name_len, c->name))
			return i;
	}
	return -1;
}

/* Report which snapshot an apply or delete acted on (both id and name). */
static void qcow_snap_fill_cmd(struct qcow_snapshot_cmd *c,
			       const struct qcow2_snapshot *sn)
{
	memset(c->id, 0, sizeof(c->id));
	memcpy(c->id, sn->id, min_t(size_t, sn->id_len, sizeof(c->id) - 1));
	memset(c->name, 0, sizeof(c->name));
	memcpy(c->name, sn->name, min_t(size_t, sn->name_len, sizeof(c->name) - 1));
}

/* Add @delta to the host clusters one L2 entry references. */
static int qcow_entry_ref(struct qcow_image *img, const struct qcow2_l2e *e,
			  int delta)
{
	u32 cb = img->hdr->cluster_bits;
	u64 off, len;

	if (e->type == QCOW2_CLUSTER_NORMAL || e->type == QCOW2_CLUSTER_ZERO_ALLOC) {
		off = e->host_offset;
		len = img->hdr->cluster_size;
	} else if (e->type == QCOW2_CLUSTER_COMPRESSED) {
		off = e->comp_offset;
		len = e->comp_len;
	} else {
		return 0;
	}
	if (delta < 0)
		return qcow_free_later(img, off, len);
	return qcow_refcount_add(img, off >> cb,
				 ((off + len - 1) >> cb) - (off >> cb) + 1, 1);
}

/*
 * Add @delta to every cluster reachable from an L1 table: each L2 table
 * once per L1 entry, each data cluster and compressed span once per L2
 * entry.  Decrements are queued (qcow_free_later()) for the caller to
 * apply; increments are made at once.
 */
static int qcow_tree_refs(struct qcow_image *img, const __be64 *l1, u32 l1_size,
			  int delta)
{
	const struct qcow2_header *h = img->hdr;
	u32 eps = img->slice_size / h->l2_entry_size;
	u64 file_size = READ_ONCE(img->file_size);
	struct qcow_cache_entry *ce;
	u64 l2off, word, bitmap, s;
	struct qcow2_l2e e;
	bool copied;
	u32 i, k;
	int err;

	for (i = 0; i < l1_size; i++) {
		if (qcow2_l1e_decode(h, be64_to_cpu(l1[i]), file_size, &l2off,
				     &copied)) {
			qcow_image_corrupt(img, "L1 entry %u (0x%llx) is invalid", i,
					   be64_to_cpu(l1[i]));
			return -EIO;
		}
		if (!l2off)
			continue;
		for (s = 0; s < h->cluster_size; s += img->slice_size) {
			ce = qcow_cache_get(img->cache, l2off + s);
			if (IS_ERR(ce))
				return PTR_ERR(ce);
			for (k = 0; k < eps; k++) {
				qcow2_l2_get(h, qcow_cache_data(ce), k, &word, &bitmap);
				if (qcow2_l2e_decode(h, word, bitmap, file_size, &e)) {
					qcow_cache_put(img->cache, ce);
					qcow_image_corrupt(img, "bad L2 entry %llx in 0x%llx",
							   word, l2off);
					return -EIO;
				}
				err = qcow_entry_ref(img, &e, delta);
				if (err) {
					qcow_cache_put(img->cache, ce);
					return err;
				}
			}
			qcow_cache_put(img->cache, ce);
		}
		if (delta > 0)
			err = qcow_refcount_add(img, l2off >> h->cluster_bits, 1, 1);
		else
			err = qcow_free_later(img, l2off, h->cluster_size);
		if (err)
			return err;
	}
	return 0;
}

/* Apply queued decrements now (no request is in flight: queue frozen). */
static int qcow_apply_frees(struct qcow_image *img)
{
	struct qcow_free *f = img->frees;
	unsigned int nr = img->nr_frees;
	int err;

	img->frees = NULL;
	img->nr_frees = 0;
	img->max_frees = 0;
	err = qcow_frees_apply(img, f, nr);
	kvfree(f);
	return err;
}

/* Set COPIED in the active tables exactly where the refcount is one. */
static int qcow_fix_copied(struct qcow_image *img)
{
	const struct qcow2_header *h = img->hdr;
	u32 eps = img->slice_size / h->l2_entry_size;
	u64 file_size = READ_ONCE(img->file_size);
	struct qcow_cache_entry *ce;
	u64 l2off, word, bitmap, rc, s;
	struct qcow2_l2e e;
	bool copied, want;
	u32 i, k;
	int err;

	for (i = 0; i < h->l1_size; i++) {
		if (qcow2_l1e_decode(h, be64_to_cpu(img->l1[i]), file_size, &l2off,
				     &copied))
			return -EIO;
		if (!l2off)
			continue;
		err = qcow_refcount_get(img, l2off >> h->cluster_bits, &rc);
		if (err)
			return err;
		want = rc == 1;
		if (copied != want)
			qcow_l1_set(img, i, qcow2_l1e_encode(l2off, want));
		for (s = 0; s < h->cluster_size; s += img->slice_size) {
			ce = qcow_cache_get(img->cache, l2off + s);
			if (IS_ERR(ce))
				return PTR_ERR(ce);
			for (k = 0; k < eps; k++) {
				u64 nw;

				qcow2_l2_get(h, qcow_cache_data(ce), k, &word, &bitmap);
				if (qcow2_l2e_decode(h, word, bitmap, file_size, &e) ||
				    (e.type != QCOW2_CLUSTER_NORMAL &&
				     e.type != QCOW2_CLUSTER_ZERO_ALLOC))
					continue;
				err = qcow_refcount_get(img, e.host_offset >> h->cluster_bits,
							&rc);
				if (err) {
					qcow_cache_put(img->cache, ce);
					return err;
				}
				nw = rc == 1 ? word | QCOW2_OFLAG_COPIED :
					       word & ~QCOW2_OFLAG_COPIED;
				if (nw != word)
					qcow_l2_update(img, ce, k, nw, bitmap);
			}
			qcow_cache_put(img->cache, ce);
		}
	}
	return 0;
}

/*
 * Write the table @t to new clusters, switch the header to it (one sector
 * write, flushed) and free the old table.
 */
static int qcow_snaps_store(struct qcow_image *img, struct qcow_snaps *t)
{
	struct qcow2_header *h = img->hdr;
	struct qcow2_region *r = qcow_snap_region(img);
	u64 old_off = h->snapshots_offset, old_len = r ? r->len : 0, off = 0;
	u32 old_nr = h->nb_snapshots;
	size_t len = 0, used;
	void *buf = NULL;
	u32 i;
	int err;

	for (i = 0; i < t->nr; i++)
		len += qcow2_snapshot_entry_size(h, &t->sn[i]);
	if (len > QCOW2_MAX_SNAPSHOT_TABLE_BYTES)
		return -ENOSPC;
	if (t->nr) {
		buf = kvzalloc(len, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
		for (i = 0, used = 0; i < t->nr; i++) {
			size_t w;

			err = qcow2_snapshot_serialize(h, &t->sn[i], buf + used,
						       len - used, &w);
			if (err)
				goto out;
			used += w;
		}
		err = qcow_table_write_new(img, buf, len, &off);
		if (!err)
			err = qcow_meta_flush(img);
		if (err)
			goto out;
	}
	h->nb_snapshots = t->nr;
	h->snapshots_offset = off;
	err = qcow_header_write(img);
	if (err) {
		h->nb_snapshots = old_nr;
		h->snapshots_offset = old_off;
		if (off)
			qcow_refcount_add(img, off >> h->cluster_bits,
					  DIV_ROUND_UP_ULL(len, h->cluster_size), -1);
		goto out;
	}
	if (!r && img->nr_regions < ARRAY_SIZE(img->regions)) {
		r = &img->regions[img->nr_regions++];
		r->what = "snapshot table";
	}
	if (r) {
		r->start = off;
		r->len = round_up(len, h->cluster_size);
	}
	if (old_off && old_len)
		qcow_free_later(img, old_off, old_len);
out:
	kvfree(buf);
	return err;
}

/**
 * qcow_snapshot_create() - take an internal snapshot of the active state
 * @img: writable image, meta_lock held, no request in flight and
 *	 everything written back (qcow_image_flush())
 * @c: @c->name is the new snapshot's name; @c->id receives its id
 *
 * Return: 0, -EINVAL (empty name), -ENAMETOOLONG, -EEXIST, -ENOSPC, -EIO
 * or -ENOMEM.  On failure the image holds the old table, with leaked
 * clusters at worst.
 */
int qcow_snapshot_create(struct qcow_image *img, struct qcow_snapshot_cmd *c)
{
	const struct qcow2_header *h = img->hdr;
	size_t l1_bytes = (size_t)h->l1_size * sizeof(__be64);
	struct qcow_snaps t;
	struct qcow2_snapshot *sn;
	struct timespec64 now;
	u64 l1_off = 0, max_id = 0, id;
	u32 i;
	int err, ret;

	if (!c->name[0])
		return -EINVAL;
	if (strlen(c->name) > QCOW_SNAPSHOT_NAME_LEN)
		return -ENAMETOOLONG;
	err = qcow_snaps_load(img, &t);
	if (err)
		goto out;
	for (i = 0; i < t.nr; i++) {
		char idbuf[QCOW_SNAPSHOT_ID_MAX] = {};

		if (qcow_snap_str_eq(t.sn[i].name, t.sn[i].name_len, c->name)) {
			err = -EEXIST;
			goto out;
		}
		memcpy(idbuf, t.sn[i].id,
		       min_t(size_t, t.sn[i].id_len, sizeof(idbuf) - 1));
		if (!kstrtou64(idbuf, 10, &id) && id > max_id)
			max_id = id;
	}
	if (t.nr >= QCOW2_MAX_SNAPSHOTS) {
		err = -ENOSPC;
		goto out;
	}
	err = qcow_meta_begin(img);
	if (err)
		goto out;

	/* The L1 copy, then the references it adds, all on disk. */
	if (l1_bytes) {
		err = qcow_table_write_new(img, img->l1, l1_bytes, &l1_off);
		if (err)
			goto out;
	}
	err = qcow_tree_refs(img, img->l1, h->l1_size, 1);
	/* Part of the tree may have its reference (-ERANGE): clear COPIED there. */
	ret = qcow_fix_copied(img);
	if (!err)
		err = ret;
	if (!err)
		err = qcow_meta_writeback_flat(img);
	if (err)
		goto out;	/* leaks at worst */

	sn = &t.sn[t.nr];
	snprintf(c->id, sizeof(c->id), "%llu", max_id + 1);
	ktime_get_real_ts64(&now);
	sn->l1_table_offset = l1_off;
	sn->l1_size = h->l1_size;
	sn->id = c->id;
	sn->id_len = strlen(c->id);
	sn->name = c->name;
	sn->name_len = strlen(c->name);
	sn->date_sec = now.tv_sec;
	sn->date_nsec = now.tv_nsec;
	sn->disk_size = h->size;
	sn->has_disk_size = true;
	sn->icount = -1;
	t.nr++;
	err = qcow_snaps_store(img, &t);
	if (!err)
		err = qcow_apply_frees(img);
	if (!err)
		err = qcow_meta_writeback(img, false);
out:
	qcow_snaps_free(&t);
	return err;
}

/**
 * qcow_snapshot_delete() - delete the snapshot @c selects
 * @img: as for qcow_snapshot_create()
 * @c: by @c->id when not empty, else by @c->name; both are filled in
 *
 * Return: 0, -ENOENT, -ENOSPC, -EIO or -ENOMEM.
 */
int qcow_snapshot_delete(struct qcow_image *img, struct qcow_snapshot_cmd *c)
{
	struct qcow2_snapshot sn;
	struct qcow_snaps t;
	__be64 *l1 = NULL;
	int idx, err;

	err = qcow_snaps_load(img, &t);
	if (err)
		goto out;
	idx = qcow_snaps_find(&t, c);
	if (idx < 0) {
		err = -ENOENT;
		goto out;
	}
	qcow_snap_fill_cmd(c, &t.sn[idx]);
	sn = t.sn[idx];
	l1 = kvcalloc(max_t(u32, sn.l1_size, 1), sizeof(*l1), GFP_KERNEL);
	if (!l1) {
		err = -ENOMEM;
		goto out;
	}
	if (sn.l1_size) {
		err = qcow_file_read(img->layer, l1, sn.l1_size * sizeof(*l1),
				     sn.l1_table_offset);
		if (err)
			goto out;
	}
	err = qcow_meta_begin(img);
	if (err)
		goto out;

	/* The entry goes first: the references it held become leaks. */
	memmove(&t.sn[idx], &t.sn[idx + 1], (t.nr - idx - 1) * sizeof(t.sn[0]));
	t.nr--;
	err = qcow_snaps_store(img, &t);
	if (err)
		goto out;
	err = qcow_tree_refs(img, l1, sn.l1_size, -1);
	if (!err && sn.l1_size)
		err = qcow_free_later(img, sn.l1_table_offset,
				      (u64)sn.l1_size * sizeof(*l1));
	if (!err)
		err = qcow_apply_frees(img);
	if (!err)
		err = qcow_fix_copied(img);
	if (!err)
		err = qcow_meta_writeback_flat(img);
out:
	kvfree(l1);
	qcow_snaps_free(&t);
	return err;
}

/**
 * qcow_snapshot_apply_img() - revert the active state to a snapshot
 * @img: as for qcow_snapshot_create()
 * @c: by @c->id when not empty, else by @c->name; both are filled in
 *
 * The snapshot's tree becomes the active tree through a new L1 table,
 * switched to with the virtual size in one header write (img->hdr->size is
 * the snapshot's disk size once the switch is done; the caller updates the
 * device's capacity).
 *
 * Order: references for the snapshot's tree as a second owner are added
 * and written back; the new L1 table (the snapshot's entries, COPIED clear,
 * as many entries as both tables need) is written to new clusters and
 * flushed; the header switches to it; only then are the references of the
 * old active tree and the old L1 table dropped.  A crash before the switch
 * leaves the old state with leaked references, after it the new state with
 * leaks: never a mix of both trees.
 *
 * Return: 0, -ENOENT, -ENOSPC, -EIO or -ENOMEM.
 */
int qcow_snapshot_apply_img(struct qcow_image *img, struct qcow_snapshot_cmd *c)
{
	struct qcow2_header *h = img->hdr;
	u64 size = h->size, need;
	u32 old_n = h->l1_size, n, i;
	struct qcow2_snapshot sn;
	struct qcow_snaps t;
	__be64 *l1 = NULL, *old;
	size_t bytes;
	int idx, err;

	err = qcow_snaps_load(img, &t);
	if (err)
		goto out;
	idx = qcow_snaps_find(&t, c);
	if (idx < 0) {
		err = -ENOENT;
		goto out;
	}
	qcow_snap_fill_cmd(c, &t.sn[idx]);
	sn = t.sn[idx];
	if (sn.has_disk_size)
		size = sn.disk_size;
	/* Entries the snapshot's table lacks for its size read as zeros. */
	need = qcow2_l1_entries_needed(size, h->cluster_bits, h->extended_l2);
	n = max3(sn.l1_size, h->l1_size, (u32)need);
	bytes = round_up((size_t)n * sizeof(__be64), SECTOR_SIZE);
	l1 = kvzalloc(bytes, GFP_KERNEL);
	if (!l1) {
		err = -ENOMEM;
		goto out;
	}
	if (sn.l1_size) {
		err = qcow_file_read(img->layer, l1, sn.l1_size * sizeof(*l1),
				     sn.l1_table_offset);
		if (err)
			goto out;
	}
	err = qcow_meta_begin(img);
	if (err)
		goto out;

	/* References for the snapshot's tree as the new active tree. */
	err = qcow_tree_refs(img, l1, sn.l1_size, 1);
	if (!err)
		err = qcow_meta_writeback(img, true);
	if (err)
		goto out;	/* leaks at worst */
	/* Everything the new active L1 reaches is shared with the snapshot. */
	for (i = 0; i < sn.l1_size; i++)
		l1[i] &= ~cpu_to_be64(QCOW2_OFLAG_COPIED);
	err = qcow_l1_replace(img, l1, n, size, &old);
	if (err)
		goto out;
	l1 = NULL;
	err = qcow_tree_refs(img, old, old_n, -1);
	kvfree(old);
	if (!err)
		err = qcow_apply_frees(img);
	if (!err)
		err = qcow_fix_copied(img);
	if (!err)
		err = qcow_meta_writeback_flat(img);
out:
	kvfree(l1);
	qcow_snaps_free(&t);
	return err;
}

static int qcow_snapshot_apply(struct qcow_device *dev, struct qcow_image *img,
			       struct qcow_snapshot_cmd *c)
{
	u64 size;
	int err;

	err = qcow_snapshot_apply_img(img, c);
	size = img->hdr->size;
	if (size != img->layer->size) {
		img->layer->size = size;
		set_capacity_and_notify(dev->disk,
					DIV_ROUND_UP_ULL(size, SECTOR_SIZE));
	}
	return err;
}

static int qcow_snapshot_list(struct qcow_image *img, struct qcow_snapshot_list *a)
{
	struct qcow_snapshot_info *info;
	struct qcow_snaps t;
	u32 i, n;
	int err;

	mutex_lock(&img->meta_lock);
	err = qcow_snaps_load(img, &t);
	mutex_unlock(&img->meta_lock);
	if (err)
		goto out;
	n = min(a->count, t.nr);
	info = kvcalloc(max_t(u32, n, 1), sizeof(*info), GFP_KERNEL);
	if (!info) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++) {
		const struct qcow2_snapshot *sn = &t.sn[i];

		memcpy(info[i].id, sn->id, min_t(size_t, sn->id_len,
						 sizeof(info[i].id) - 1));
		memcpy(info[i].name, sn->name, min_t(size_t, sn->name_len,
						     sizeof(info[i].name) - 1));
		info[i].date_sec = sn->date_sec;
		info[i].date_nsec = sn->date_nsec;
		info[i].vm_clock_nsec = sn->vm_clock_nsec;
		info[i].disk_size = sn->has_disk_size ? sn->disk_size : img->hdr->size;
		info[i].vm_state_size = sn->vm_state_size;
	}
	if (n && copy_to_user(u64_to_user_ptr(a->entries), info,
			      (size_t)n * sizeof(*info)))
		err = -EFAULT;
	a->count = t.nr;
	kvfree(info);
out:
	qcow_snaps_free(&t);
	return err;
}

static bool qcow_cmd_valid(const struct qcow_snapshot_cmd *c)
{
	unsigned int i;

	if (c->flags || !memchr(c->name, 0, sizeof(c->name)) ||
	    !memchr(c->id, 0, sizeof(c->id)))
		return false;
	for (i = 0; i < ARRAY_SIZE(c->reserved); i++)
		if (c->reserved[i])
			return false;
	return true;
}

/* Freeze the device, write everything back, run @op, unfreeze. */
static int qcow_snapshot_modify(struct qcow_device *dev, struct block_device *bdev,
				unsigned int cmd, struct qcow_snapshot_cmd *c)
{
	struct qcow_image *img = dev->top->img;
	struct request_queue *q = dev->disk->queue;
	int err;

	mutex_lock(&dev->lock);
	if (dev->state != QCOW_STATE_BOUND) {
		err = -ENXIO;
		goto out_unlock;
	}
	/* Apply changes the disk under its users: only ours may be open. */
	if (cmd == QCOW_SNAPSHOT_APPLY && disk_openers(dev->disk) > 1) {
		err = -EBUSY;
		goto out_unlock;
	}
	blk_mq_freeze_queue(q);
	err = qcow_image_flush(img, true);
	if (err)
		goto out_unfreeze;
	mutex_lock(&img->meta_lock);
	if (qcow_image_failed(img))
		err = -EIO;
	else if (cmd == QCOW_SNAPSHOT_CREATE)
		err = qcow_snapshot_create(img, c);
	else if (cmd == QCOW_SNAPSHOT_DELETE)
		err = qcow_snapshot_delete(img, c);
	else
		err = qcow_snapshot_apply(dev, img, c);
	mutex_unlock(&img->meta_lock);
out_unfreeze:
	blk_mq_unfreeze_queue(q);
	if (!err && cmd == QCOW_SNAPSHOT_APPLY)
		invalidate_bdev(bdev);
out_unlock:
	mutex_unlock(&dev->lock);
	return err;
}

/**
 * qcow_snapshot_ioctl() - QCOW_SNAPSHOT_* on /dev/qcowN
 * @dev: the device
 * @bdev: the block device the ioctl was issued on
 * @cmd: ioctl number
 * @arg: user argument
 *
 * Return: 0, -ENOTTY for other commands, or the errors documented in
 * include/uapi/linux/qcow.h.
 */
int qcow_snapshot_ioctl(struct qcow_device *dev, struct block_device *bdev,
			unsigned int cmd, void __user *arg)
{
	struct qcow_snapshot_list list;
	struct qcow_snapshot_cmd *c;
	int err;

	switch (cmd) {
	case QCOW_SNAPSHOT_CREATE:
	case QCOW_SNAPSHOT_APPLY:
	case QCOW_SNAPSHOT_DELETE:
	case QCOW_SNAPSHOT_LIST:
		break;
	default:
		return -ENOTTY;
	}
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	if (bdev_is_partition(bdev))
		return -ENOTTY;

	if (cmd == QCOW_SNAPSHOT_LIST) {
		if (copy_from_user(&list, arg, sizeof(list)))
			return -EFAULT;
		if (list.flags || list.reserved[0] || list.reserved[1] ||
		    list.reserved[2])
			return -EINVAL;
		err = qcow_snapshot_list(dev->top->img, &list);
		if (!err && copy_to_user(arg, &list, sizeof(list)))
			err = -EFAULT;
		return err;
	}

	if (dev->read_only)
		return -EROFS;
	c = kmalloc(sizeof(*c), GFP_KERNEL);
	if (!c)
		return -ENOMEM;
	err = -EFAULT;
	if (copy_from_user(c, arg, sizeof(*c)))
		goto out;
	err = -EINVAL;
	if (!qcow_cmd_valid(c) ||
	    (cmd != QCOW_SNAPSHOT_CREATE && !c->id[0] && !c->name[0]))
		goto out;
	if (cmd == QCOW_SNAPSHOT_CREATE)
		c->id[0] = 0;
	err = qcow_snapshot_modify(dev, bdev, cmd, c);
	if (!err && cmd == QCOW_SNAPSHOT_CREATE &&
	    copy_to_user(arg, c, sizeof(*c)))
		err = -EFAULT;
	if (!err)
		pr_info("%s: snapshot %s %s (id %s)\n", dev->disk->disk_name,
			cmd == QCOW_SNAPSHOT_CREATE ? "created" :
			cmd == QCOW_SNAPSHOT_DELETE ? "deleted" : "applied",
			c->name[0] ? c->name : "-", c->id[0] ? c->id : "-");
out:
	kfree(c);
	return err;
}
