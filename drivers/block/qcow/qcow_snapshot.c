// SPDX-License-Identifier: GPL-2.0
/*
 * qcow: online internal snapshots (QCOW_SNAPSHOT_* ioctls on /dev/qcowN).
 *
 * Every operation freezes the request queue (in-flight requests complete,
 * new ones wait), writes everything dirty back, changes metadata under
 * img->meta_lock and unfreezes.
 *
 * Each operation builds a new metadata root and switches to it in one
 * header sector write (qcow_shadow_commit()): a crash leaves the old root
 * or the new one, with leaked clusters at worst, and in both COPIED agrees
 * with the refcounts, as qemu-img check demands.  Refcounts are counted per
 * path, as qemu-img check counts them: a cluster reached through two L1
 * tables has two references even when one shared L2 table leads to it.
 *
 * - Refcount changes that would make COPIED wrong if they reached the disk
 *   alone (one to two, two to one) go to copies of the refcount blocks
 *   (qcow_shadow_add()); the commit writes the copies to new clusters with
 *   a new refcount table.
 * - The active tree of the new root goes into a new L1 table.  An L2 table
 *   whose entries' COPIED flags the new counts change is copied to a new
 *   cluster with the right flags (the old table stays as the old root and
 *   the snapshots see it) and the active path moves to the copy
 *   (qcow_tree_activate()).
 *
 * Create: the snapshot takes the current L1 table as its own; one more
 * path to every cluster of the tree; the active tree continues in a new L1
 * table with copies of the tables that had COPIED entries; a new snapshot
 * table with the entry appended.
 *
 * Delete: one path less to everything the snapshot's tree reaches, and its
 * L1 table; COPIED comes back (through copies) where an active cluster is
 * now the active tree's alone; a new snapshot table without the entry.
 * What reaches zero is punched once the header has switched.
 *
 * Apply: one more path to the snapshot's tree, one less to the old active
 * tree; the snapshot's entries become the active L1 table (as long as both
 * tables and the snapshot's disk size need), switched with the virtual
 * size.
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
	struct qcow2_region *r = qcow_region_find(img, "snapshot table");
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

/* Add @delta to the host clusters one L2 entry references, in the new root. */
static int qcow_entry_shadow(struct qcow_image *img, const struct qcow2_l2e *e,
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
	return qcow_shadow_add(img, off >> cb,
			       ((off + len - 1) >> cb) - (off >> cb) + 1, delta);
}

/* The L2 table the L1 entry @raw names (0: none); -EIO if it is invalid. */
static int qcow_l1e_table(struct qcow_image *img, u64 raw, u32 i, u64 *l2off)
{
	bool copied;

	if (qcow2_l1e_decode(img->hdr, raw, READ_ONCE(img->file_size), l2off,
			     &copied)) {
		qcow_image_corrupt(img, "L1 entry %u (0x%llx) is invalid", i, raw);
		return -EIO;
	}
	return 0;
}

/*
 * Add @delta, in the new root, to every cluster one path from an L1 table
 * reaches: each L2 table once per L1 entry, each data cluster and
 * compressed span once per L2 entry (references are counted per path, as
 * qemu-img check counts them).
 */
static int qcow_tree_shadow(struct qcow_image *img, const __be64 *l1,
			    u32 l1_size, int delta, void *buf)
{
	const struct qcow2_header *h = img->hdr;
	u32 eps = h->cluster_size / h->l2_entry_size;
	u64 file_size = READ_ONCE(img->file_size);
	u64 l2off, word, bitmap;
	struct qcow2_l2e e;
	u32 i, k;
	int err;

	for (i = 0; i < l1_size; i++) {
		err = qcow_l1e_table(img, be64_to_cpu(l1[i]), i, &l2off);
		if (err)
			return err;
		if (!l2off)
			continue;
		err = qcow_cache_read(img->cache, l2off, buf, h->cluster_size);
		if (err)
			return err;
		for (k = 0; k < eps; k++) {
			qcow2_l2_get(h, buf, k, &word, &bitmap);
			if (qcow2_l2e_decode(h, word, bitmap, file_size, &e)) {
				qcow_image_corrupt(img, "bad L2 entry %llx in 0x%llx",
						   word, l2off);
				return -EIO;
			}
			err = qcow_entry_shadow(img, &e, delta);
			if (err)
				return err;
		}
		err = qcow_shadow_add(img, l2off >> h->cluster_bits, 1, delta);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Make @l1 (@n entries) the active tree of the new root.  COPIED must mean
 * "refcount one" as the new root counts: where an L2 table's entries would
 * change, the table is copied to a new cluster with the flags the new
 * counts give (the old table stays as it is for the old root and for the
 * snapshots that share it), and the active path moves to the copy.  Then
 * every L1 entry gets its COPIED flag from the final counts.
 */
static int qcow_tree_activate(struct qcow_image *img, __be64 *l1, u32 n,
			      void *buf)
{
	const struct qcow2_header *h = img->hdr;
	u32 cb = h->cluster_bits, eps = h->cluster_size / h->l2_entry_size;
	u64 file_size = READ_ONCE(img->file_size);
	u64 l2off, word, bitmap, rc, nw, off;
	unsigned long *fresh;
	struct qcow2_l2e e;
	bool changed;
	u32 i, k;
	int err = 0;

	fresh = bitmap_zalloc(max_t(u32, n, 1), GFP_KERNEL);
	if (!fresh)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		err = qcow_l1e_table(img, be64_to_cpu(l1[i]), i, &l2off);
		if (err)
			goto out;
		if (!l2off) {
			l1[i] = 0;
			continue;
		}
		err = qcow_cache_read(img->cache, l2off, buf, h->cluster_size);
		if (err)
			goto out;
		changed = false;
		for (k = 0; k < eps; k++) {
			qcow2_l2_get(h, buf, k, &word, &bitmap);
			if (qcow2_l2e_decode(h, word, bitmap, file_size, &e)) {
				qcow_image_corrupt(img, "bad L2 entry %llx in 0x%llx",
						   word, l2off);
				err = -EIO;
				goto out;
			}
			if (e.type != QCOW2_CLUSTER_NORMAL &&
			    e.type != QCOW2_CLUSTER_ZERO_ALLOC)
				continue;
			err = qcow_shadow_get(img, e.host_offset >> cb, &rc);
			if (err)
				goto out;
			nw = rc == 1 ? word | QCOW2_OFLAG_COPIED :
				       word & ~QCOW2_OFLAG_COPIED;
			if (nw != word) {
				qcow2_l2_set(h, buf, k, nw, bitmap);
				changed = true;
			}
		}
		if (!changed)
			continue;
		err = qcow_table_write_new(img, buf, h->cluster_size, &off);
		if (!err)
			err = qcow_shadow_add(img, l2off >> cb, 1, -1);
		if (err)
			goto out;
		l1[i] = cpu_to_be64(qcow2_l1e_encode(off, true));
		set_bit(i, fresh);
	}
	for (i = 0; i < n; i++) {
		if (test_bit(i, fresh) || !l1[i])
			continue;
		l2off = be64_to_cpu(l1[i]) & QCOW2_L1E_OFFSET_MASK;
		err = qcow_shadow_get(img, l2off >> cb, &rc);
		if (err)
			goto out;
		l1[i] = cpu_to_be64(qcow2_l1e_encode(l2off, rc == 1));
	}
out:
	bitmap_free(fresh);
	return err;
}

/* Write the table @t to new clusters (not named by the header yet). */
static int qcow_snaps_write(struct qcow_image *img, struct qcow_snaps *t,
			    u64 *off, u64 *len)
{
	const struct qcow2_header *h = img->hdr;
	size_t bytes = 0, used;
	void *buf;
	u32 i;
	int err;

	*off = 0;
	*len = 0;
	if (!t->nr)
		return 0;
	for (i = 0; i < t->nr; i++)
		bytes += qcow2_snapshot_entry_size(h, &t->sn[i]);
	if (bytes > QCOW2_MAX_SNAPSHOT_TABLE_BYTES)
		return -ENOSPC;
	buf = kvzalloc(bytes, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	for (i = 0, used = 0; i < t->nr; i++) {
		size_t w;

		err = qcow2_snapshot_serialize(h, &t->sn[i], buf + used,
					       bytes - used, &w);
		if (err)
			goto out;
		used += w;
	}
	err = qcow_table_write_new(img, buf, bytes, off);
	if (!err)
		*len = bytes;
out:
	kvfree(buf);
	return err;
}

/* The current snapshot table as a commit keeps it. */
static void qcow_commit_keep_snaps(struct qcow_image *img, struct qcow_commit *cm)
{
	struct qcow2_region *r = qcow_region_find(img, "snapshot table");

	cm->snap_off = img->hdr->snapshots_offset;
	cm->nb_snap = img->hdr->nb_snapshots;
	cm->snap_len = r ? r->len : 0;
}

/* A zeroed L1 buffer of whole sectors with room for @n entries. */
static __be64 *qcow_l1_alloc(u32 n)
{
	return kvzalloc(round_up(max_t(size_t, (size_t)n * sizeof(__be64), 1),
				 SECTOR_SIZE), GFP_KERNEL);
}

/*
 * The active L1 table, copied into a buffer of whole sectors with room for
 * @n entries (at least the current ones).
 */
static __be64 *qcow_l1_dup(struct qcow_image *img, u32 n)
{
	__be64 *l1 = qcow_l1_alloc(n);

	if (l1 && img->hdr->l1_size)
		memcpy(l1, img->l1, (size_t)img->hdr->l1_size * sizeof(__be64));
	return l1;
}

/*
 * A new root that keeps the active L1 table's size and the virtual size,
 * with the snapshot table @t written to new clusters.
 */
static int qcow_commit_snaps(struct qcow_image *img, struct qcow_commit *cm,
			     struct qcow_snaps *t, bool free_old_l1)
{
	int err;

	err = qcow_snaps_write(img, t, &cm->snap_off, &cm->snap_len);
	cm->nb_snap = t->nr;
	cm->l1_size = img->hdr->l1_size;
	cm->size = img->hdr->size;
	cm->free_old_l1 = free_old_l1;
	return err;
}

/*
 * End the shadow state begun by an operation: unless @err, write @cm->l1 to
 * new clusters, switch to the new root and write back what the switch
 * released.  On success the image owns @cm->l1 (NULL here then).
 */
static int qcow_commit_end(struct qcow_image *img, struct qcow_commit *cm,
			   int err)
{
	cm->l1_off = 0;
	if (!err && cm->l1_size)
		err = qcow_table_write_new(img, cm->l1,
					   (size_t)cm->l1_size * sizeof(__be64),
					   &cm->l1_off);
	if (!err)
		err = qcow_shadow_commit(img, cm);
	if (!err) {
		cm->l1 = NULL;
		kvfree(cm->old_l1);
		cm->old_l1 = NULL;
	}
	qcow_shadow_end(img);
	if (!err)
		err = qcow_meta_writeback_flat(img);
	return err;
}

/**
 * qcow_snapshot_create() - take an internal snapshot of the active state
 * @img: writable image, meta_lock held, no request in flight and
 *	 everything written back (qcow_image_flush())
 * @c: @c->name is the new snapshot's name; @c->id receives its id
 *
 * The snapshot keeps the current L1 table and tree; the active state goes
 * on in a new L1 table (see the top of this file).
 *
 * Return: 0, -EINVAL (empty name), -ENAMETOOLONG, -EEXIST, -ENOSPC, -ERANGE
 * (a refcount would overflow its width), -EIO or -ENOMEM.  On failure the
 * image holds the old root, with leaked clusters at worst.
 */
int qcow_snapshot_create(struct qcow_image *img, struct qcow_snapshot_cmd *c)
{
	const struct qcow2_header *h = img->hdr;
	struct qcow_commit cm = {};
	struct qcow_snaps t;
	struct qcow2_snapshot *sn;
	struct timespec64 now;
	u64 max_id = 0, id;
	void *buf = NULL;
	u32 i;
	int err;

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
	buf = kvmalloc(h->cluster_size, GFP_KERNEL);
	cm.l1 = qcow_l1_dup(img, h->l1_size);
	if (!buf || !cm.l1) {
		err = -ENOMEM;
		goto out;
	}
	err = qcow_meta_begin(img);
	/* The snapshot's entry names the active L1 table as the disk has it. */
	if (!err)
		err = qcow_meta_writeback_flat(img);
	if (!err)
		err = qcow_shadow_begin(img);
	if (err)
		goto out;

	/* The snapshot's tree is the active one: one more path to all of it. */
	err = qcow_tree_shadow(img, img->l1, h->l1_size, 1, buf);
	if (!err)
		err = qcow_tree_activate(img, cm.l1, h->l1_size, buf);
	if (err)
		goto out_shadow;

	sn = &t.sn[t.nr];
	snprintf(c->id, sizeof(c->id), "%llu", max_id + 1);
	ktime_get_real_ts64(&now);
	sn->l1_table_offset = h->l1_table_offset;
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
	err = qcow_commit_snaps(img, &cm, &t, false);
out_shadow:
	err = qcow_commit_end(img, &cm, err);
out:
	kvfree(cm.l1);
	kvfree(buf);
	qcow_snaps_free(&t);
	return err;
}

/* Read snapshot @sn's L1 table into a zeroed buffer with room for @n entries. */
static __be64 *qcow_snap_l1_read(struct qcow_image *img,
				 const struct qcow2_snapshot *sn, u32 n, int *err)
{
	__be64 *l1 = qcow_l1_alloc(n);

	if (!l1) {
		*err = -ENOMEM;
		return NULL;
	}
	*err = 0;
	if (sn->l1_size)
		*err = qcow_file_read(img->layer, l1, sn->l1_size * sizeof(*l1),
				      sn->l1_table_offset);
	if (*err) {
		kvfree(l1);
		return NULL;
	}
	return l1;
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
	const struct qcow2_header *h = img->hdr;
	struct qcow_commit cm = {};
	struct qcow2_snapshot sn;
	struct qcow_snaps t;
	__be64 *l1 = NULL;
	void *buf = NULL;
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
	l1 = qcow_snap_l1_read(img, &sn, sn.l1_size, &err);
	if (err)
		goto out;
	buf = kvmalloc(h->cluster_size, GFP_KERNEL);
	cm.l1 = qcow_l1_dup(img, h->l1_size);
	if (!buf || !cm.l1) {
		err = -ENOMEM;
		goto out;
	}
	err = qcow_meta_begin(img);
	if (!err)
		err = qcow_shadow_begin(img);
	if (err)
		goto out;

	/* Every path from the snapshot's L1 table goes, and the table. */
	err = qcow_tree_shadow(img, l1, sn.l1_size, -1, buf);
	if (!err && sn.l1_size)
		err = qcow_shadow_add(img, sn.l1_table_offset >> h->cluster_bits,
				      DIV_ROUND_UP_ULL((u64)sn.l1_size * sizeof(*l1),
						       h->cluster_size), -1);
	/* COPIED comes back where an active cluster is the tree's alone. */
	if (!err)
		err = qcow_tree_activate(img, cm.l1, h->l1_size, buf);
	if (err)
		goto out_shadow;

	memmove(&t.sn[idx], &t.sn[idx + 1], (t.nr - idx - 1) * sizeof(t.sn[0]));
	t.nr--;
	err = qcow_commit_snaps(img, &cm, &t, true);
out_shadow:
	err = qcow_commit_end(img, &cm, err);
out:
	kvfree(cm.l1);
	kvfree(buf);
	kvfree(l1);
	qcow_snaps_free(&t);
	return err;
}

/**
 * qcow_snapshot_apply_img() - revert the active state to a snapshot
 * @img: as for qcow_snapshot_create()
 * @c: by @c->id when not empty, else by @c->name; both are filled in
 *
 * The snapshot's tree becomes the active tree through a new L1 table (the
 * snapshot's entries, as many as both tables and the snapshot's disk size
 * need), switched to with the virtual size in one header write
 * (img->hdr->size is the snapshot's disk size once the switch is done; the
 * caller updates the device's capacity).
 *
 * Return: 0, -ENOENT, -ENOSPC, -ERANGE, -EIO or -ENOMEM.
 */
int qcow_snapshot_apply_img(struct qcow_image *img, struct qcow_snapshot_cmd *c)
{
	const struct qcow2_header *h = img->hdr;
	struct qcow_commit cm = {};
	struct qcow2_snapshot sn;
	struct qcow_snaps t;
	u64 size = h->size, need;
	void *buf = NULL;
	int idx, err;
	u32 n;

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
	cm.l1 = qcow_snap_l1_read(img, &sn, n, &err);
	if (err)
		goto out;
	buf = kvmalloc(h->cluster_size, GFP_KERNEL);
	if (!buf) {
		err = -ENOMEM;
		goto out;
	}
	err = qcow_meta_begin(img);
	if (!err)
		err = qcow_shadow_begin(img);
	if (err)
		goto out;

	/* The snapshot's tree gains a path, the old active tree loses one. */
	err = qcow_tree_shadow(img, cm.l1, sn.l1_size, 1, buf);
	if (!err)
		err = qcow_tree_shadow(img, img->l1, h->l1_size, -1, buf);
	if (!err)
		err = qcow_tree_activate(img, cm.l1, n, buf);
	if (err)
		goto out_shadow;
	qcow_commit_keep_snaps(img, &cm);
	cm.l1_size = n;
	cm.size = size;
	cm.free_old_l1 = true;
out_shadow:
	err = qcow_commit_end(img, &cm, err);
out:
	kvfree(cm.l1);
	kvfree(buf);
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
 * @mode: how the caller opened it: create, apply and delete need FMODE_WRITE
 * @cmd: ioctl number
 * @arg: user argument
 *
 * Return: 0, -ENOTTY for other commands, or the errors documented in
 * include/uapi/linux/qcow.h.
 */
int qcow_snapshot_ioctl(struct qcow_device *dev, struct block_device *bdev,
			fmode_t mode, unsigned int cmd, void __user *arg)
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
		/* Not from a device being torn down. */
		mutex_lock(&dev->lock);
		err = dev->state == QCOW_STATE_BOUND ?
		      qcow_snapshot_list(dev->top->img, &list) : -ENXIO;
		mutex_unlock(&dev->lock);
		if (!err && copy_to_user(arg, &list, sizeof(list)))
			err = -EFAULT;
		return err;
	}

	/* They change the disk: a descriptor opened for writing, as BLKDISCARD. */
	if (!(mode & FMODE_WRITE))
		return -EBADF;
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
