// SPDX-License-Identifier: GPL-2.0
/*
 * qcow: refcounts and cluster allocation.
 *
 * The refcount table is held in memory (it is at most 8 MiB); refcount
 * blocks are cached in slices like L2 tables (img->rcache) and written back
 * by qcow_image_flush().  Everything here runs with img->meta_lock held.
 *
 * Allocation takes the first free cluster at or after img->free_hint
 * (every cluster below the hint is in use) and extends the run over the
 * following free clusters, up to what the caller asked for and within one
 * refcount block's range.  Clusters at and beyond img->nb_clusters are
 * free: allocation there extends the file.
 *
 * A refcount block is created when a cluster whose range has none is
 * allocated.  Its range has no cluster in use (none could be counted), so
 * the block goes into the first cluster of its own range and counts
 * itself: no recursion.  It is written and flushed before the refcount
 * table entry that points to it.
 *
 * When the refcount table is full it is grown and moved to the end of the
 * allocated space, followed by the refcount blocks that count the new
 * table and themselves.  The new table and blocks are written and flushed,
 * then the header is switched in one sector write and flushed, then the
 * old table is freed.  A crash at any point leaves either the old or the
 * new table in the header; the other is a leak at worst.
 *
 * Snapshot operations prepare a whole new metadata root beside the old one
 * (qcow_shadow_begin()): their refcount changes go to copies of the blocks
 * they touch, and qcow_shadow_commit() writes the copies and a new refcount
 * table and switches to them, with the new L1 and snapshot tables, in one
 * header write (Documentation/design.rst, "Snapshots").
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/vmalloc.h>

#include "qcow_main.h"

#define QCOW_RCACHE_BYTES	BIT(20)
#define QCOW_REFTABLE_SECTOR	(SECTOR_SIZE / sizeof(__be64))

static u64 qcow_cluster_limit(const struct qcow2_header *h)
{
	return QCOW2_MAX_HOST_OFFSET >> h->cluster_bits;
}

/**
 * qcow_meta_overlaps() - whether a host range touches known metadata
 * @img: image
 * @offset: first byte
 * @len: bytes (> 0)
 *
 * Lock-free (RCU inside the xarray): usable on the fast path.
 *
 * Return: true when a cluster of the range holds a table or block.
 */
bool qcow_meta_overlaps(struct qcow_image *img, u64 offset, u64 len)
{
	unsigned long idx = offset >> img->hdr->cluster_bits;
	unsigned long last = (offset + len - 1) >> img->hdr->cluster_bits;

	return !!xa_find(&img->meta, &idx, last, XA_PRESENT);
}

/**
 * qcow_meta_mark() - record that a host range holds metadata
 * @img: image
 * @offset: first byte
 * @len: bytes (> 0)
 */
void qcow_meta_mark(struct qcow_image *img, u64 offset, u64 len)
{
	u64 c = offset >> img->hdr->cluster_bits;
	u64 last = (offset + len - 1) >> img->hdr->cluster_bits;

	/* Failure to record only weakens a safety check: not fatal. */
	for (; c <= last; c++)
		xa_store(&img->meta, c, xa_mk_value(1), GFP_NOIO);
}

static void qcow_grow_end(struct qcow_image *img, u64 end)
{
	if (end > img->nb_clusters)
		img->nb_clusters = end;
	end <<= img->hdr->cluster_bits;
	if (end > READ_ONCE(img->file_size))
		WRITE_ONCE(img->file_size, end);
}

/* Refcount block of range @ri: its offset, 0 when there is none. */
static int qcow_refblock(struct qcow_image *img, u64 ri, u64 *off)
{
	u64 raw;

	*off = 0;
	if (ri >= img->reftable_entries)
		return 0;
	raw = be64_to_cpu(img->reftable[ri]);
	if (qcow2_reftable_entry_decode(img->hdr, raw, READ_ONCE(img->file_size),
					off)) {
		qcow_image_corrupt(img, "refcount table entry %llu (0x%llx) is invalid",
				   ri, raw);
		return -EIO;
	}
	return 0;
}

/* Where the refcount of @cluster lives: slice offset (0: none) and index. */
static int qcow_refcount_locate(struct qcow_image *img, u64 cluster,
				u64 *slice_off, u32 *idx)
{
	const struct qcow2_header *h = img->hdr;
	u32 eps = (img->slice_size * 8) >> h->refcount_order;
	u64 in_block = cluster & ((1ULL << h->refblock_bits) - 1);
	u64 rb;
	int err;

	err = qcow_refblock(img, cluster >> h->refblock_bits, &rb);
	if (err)
		return err;
	*slice_off = rb ? rb + div_u64(in_block, eps) * img->slice_size : 0;
	*idx = in_block % eps;
	return 0;
}

/**
 * qcow_refcount_get() - read the refcount of a cluster
 * @img: image
 * @cluster: host cluster index
 * @refcount: the value; 0 when no refcount block covers the cluster
 *
 * Return: 0, -EIO or -ENOMEM.
 */
int qcow_refcount_get(struct qcow_image *img, u64 cluster, u64 *refcount)
{
	struct qcow_cache_entry *e;
	u64 off;
	u32 idx;
	int err;

	*refcount = 0;
	err = qcow_refcount_locate(img, cluster, &off, &idx);
	if (err || !off)
		return err;
	e = qcow_cache_get(img->rcache, off);
	if (IS_ERR(e))
		return PTR_ERR(e);
	*refcount = qcow2_refcount_get(qcow_cache_data(e), img->hdr->refcount_order,
				       idx);
	qcow_cache_put(img->rcache, e);
	return 0;
}

/* A cluster's last reference is gone: forget everything cached about it. */
static void qcow_cluster_freed(struct qcow_image *img, u64 cluster)
{
	u64 off = cluster << img->hdr->cluster_bits;

	xa_erase(&img->meta, cluster);
	qcow_cache_drop(img->cache, off, img->hdr->cluster_size);
	qcow_cache_drop(img->rcache, off, img->hdr->cluster_size);
	if (cluster < img->free_hint)
		img->free_hint = cluster;
}

static void qcow_shadow_mirror(struct qcow_image *img, u64 cluster, int delta);

/**
 * qcow_refcount_add() - change the refcounts of a run of clusters
 * @img: image, meta_lock held
 * @cluster: first host cluster index
 * @nr: clusters
 * @delta: +1 or -1
 *
 * The change is made in the cache and written back by the next flush.  A
 * refcount that would drop below zero or overflow is refused, and the
 * clusters before it keep their change.
 *
 * Return: 0, -EIO (corrupt metadata or a failed read), -ERANGE (the
 * refcount would overflow its width) or -ENOMEM.
 */
int qcow_refcount_add(struct qcow_image *img, u64 cluster, u64 nr, int delta)
{
	const struct qcow2_header *h = img->hdr;
	struct qcow_cache_entry *e = NULL;
	u64 max = qcow2_refcount_max(h->refcount_order);
	u64 off, cur_off = 0, v;
	u32 idx;
	int err = 0;

	lockdep_assert_held(&img->meta_lock);
	for (; nr; cluster++, nr--) {
		err = qcow_refcount_locate(img, cluster, &off, &idx);
		if (err)
			break;
		if (!off) {
			qcow_image_corrupt(img, "cluster %llu is in use but has no refcount block",
					   cluster);
			err = -EIO;
			break;
		}
		if (!e || off != cur_off) {
			if (e)
				qcow_cache_put(img->rcache, e);
			e = qcow_cache_get(img->rcache, off);
			if (IS_ERR(e)) {
				err = PTR_ERR(e);
				e = NULL;
				break;
			}
			cur_off = off;
		}
		v = qcow2_refcount_get(qcow_cache_data(e), h->refcount_order, idx);
		if (delta < 0 && !v) {
			qcow_image_corrupt(img, "refcount of cluster %llu would drop below zero",
					   cluster);
			err = -EIO;
			break;
		}
		if (delta > 0 && v == max) {
			err = -ERANGE;
			break;
		}
		v += delta;
		qcow2_refcount_set(qcow_cache_data_w(e), h->refcount_order, idx, v);
		qcow_cache_mark_dirty(img->rcache, e);
		if (img->shadow)
			qcow_shadow_mirror(img, cluster, delta);
		if (!v)
			qcow_cluster_freed(img, cluster);
	}
	if (e)
		qcow_cache_put(img->rcache, e);
	return err;
}

/**
 * qcow_reftable_write_entry() - write the refcount table sector holding
 * entry @index
 * @img: image, meta_lock held
 * @index: refcount table index
 *
 * Return: 0, -ENOSPC or -EIO.
 */
int qcow_reftable_write_entry(struct qcow_image *img, u64 index)
{
	u64 first = round_down(index, QCOW_REFTABLE_SECTOR);

	return qcow_file_write(img->layer, img->reftable + first, SECTOR_SIZE,
			       img->hdr->refcount_table_offset +
			       first * sizeof(__be64));
}

/* Ranges [first, last] of refcount blocks that do not exist yet. */
static u64 qcow_missing_refblocks(struct qcow_image *img, u64 first, u64 last)
{
	u64 ri, n = 0;

	for (ri = first; ri <= last; ri++)
		if (ri >= img->reftable_entries || !img->reftable[ri])
			n++;
	return n;
}

/*
 * Grow the refcount table to at least @min_entries and move it to the end
 * of the allocated space, with the refcount blocks it needs after it.
 */
static int qcow_reftable_grow(struct qcow_image *img, u64 min_entries)
{
	struct qcow2_header *h = img->hdr;
	u32 cb = h->cluster_bits, rb_bits = h->refblock_bits;
	u64 cs = h->cluster_size;
	u64 old_off = h->refcount_table_offset;
	u32 old_clusters = h->refcount_table_clusters;
	u64 p = img->nb_clusters, t, m = 0, entries, ri, k, c, end;
	__be64 *table = NULL;
	void *blocks = NULL;
	int err;

	lockdep_assert_held(&img->meta_lock);
	entries = max(min_entries, img->reftable_entries + img->reftable_entries / 2);
	for (;;) {
		t = DIV_ROUND_UP_ULL(entries * sizeof(__be64), cs);
		end = p + t + m;
		k = qcow_missing_refblocks(img, p >> rb_bits, (end - 1) >> rb_bits);
		if (((end - 1) >> rb_bits) >= t * cs / sizeof(__be64)) {
			entries = ((end - 1) >> rb_bits) + 1;
			continue;
		}
		if (k == m)
			break;
		m = k;
	}
	entries = t * cs / sizeof(__be64);
	if (t * cs > QCOW2_MAX_REFTABLE_BYTES || end > qcow_cluster_limit(h)) {
		pr_err_ratelimited("%pD: refcount table cannot grow beyond %u bytes\n",
				   img->layer->file, QCOW2_MAX_REFTABLE_BYTES);
		return -ENOSPC;
	}

	table = kvzalloc(t * cs, GFP_NOIO);
	blocks = m ? kvzalloc(m * cs, GFP_NOIO) : NULL;
	if (!table || (m && !blocks)) {
		err = -ENOMEM;
		goto out;
	}
	memcpy(table, img->reftable, img->reftable_entries * sizeof(__be64));

	/* New blocks at p + t ...: each counts the new clusters in its range. */
	k = 0;
	for (ri = p >> rb_bits; ri <= (end - 1) >> rb_bits; ri++) {
		void *blk;

		if (ri < img->reftable_entries && img->reftable[ri])
			continue;
		blk = blocks + k * cs;
		table[ri] = cpu_to_be64((p + t + k) << cb);
		for (c = max(p, ri << rb_bits);
		     c < min(end, (ri + 1) << rb_bits); c++)
			qcow2_refcount_set(blk, h->refcount_order,
					   c & ((1ULL << rb_bits) - 1), 1);
		k++;
	}
	/* Clusters of the new area in ranges that already have a block. */
	for (c = p; c < end; c++) {
		ri = c >> rb_bits;
		if (ri < img->reftable_entries && img->reftable[ri]) {
			err = qcow_refcount_add(img, c, 1, 1);
			if (err)
				goto out;
		}
	}
	qcow_cache_drop(img->cache, p << cb, (t + m) << cb);
	qcow_cache_drop(img->rcache, p << cb, (t + m) << cb);
	err = qcow_cache_writeback(img->rcache);
	if (!err && m)
		err = qcow_file_write(img->layer, blocks, m * cs, (p + t) << cb);
	if (!err)
		err = qcow_file_write(img->layer, table, t * cs, p << cb);
	if (!err)
		err = qcow_meta_flush(img);
	if (err)
		goto out_undo;

	h->refcount_table_offset = p << cb;
	h->refcount_table_clusters = t;
	err = qcow_header_write(img);
	if (err) {
		/*
		 * The disk may hold either header now: the image is stopped
		 * (qcow_image_stop()) and writes nothing more, and both tables
		 * are valid on disk.  Memory goes back to the old one.
		 */
		h->refcount_table_offset = old_off;
		h->refcount_table_clusters = old_clusters;
		goto out_undo;
	}

	swap(img->reftable, table);
	img->reftable_entries = entries;
	qcow_grow_end(img, end);
	qcow_meta_mark(img, p << cb, (t + m) << cb);
	qcow_region_move(img, "refcount table", old_off, p << cb, t << cb);
	/* The header no longer points at the old table: free it. */
	err = qcow_refcount_add(img, old_off >> cb, old_clusters, -1);
	if (!err)
		img->layer->ops->punch(img->layer, old_off, (u64)old_clusters << cb);
	pr_info_ratelimited("%pD: refcount table moved to 0x%llx (%llu clusters)\n",
			    img->layer->file, p << cb, t);
	err = 0;
	goto out;

out_undo:
	/* Nothing points at the new area: take back its counts in old blocks. */
	for (c = p; c < end; c++) {
		ri = c >> rb_bits;
		if (ri < img->reftable_entries && img->reftable[ri])
			qcow_refcount_add(img, c, 1, -1);
	}
out:
	kvfree(blocks);
	kvfree(table);
	return err;
}

/* Create the refcount block of range @ri inside that range. */
static int qcow_refblock_create(struct qcow_image *img, u64 ri)
{
	const struct qcow2_header *h = img->hdr;
	u64 cs = h->cluster_size;
	u64 r = ri << h->refblock_bits;
	u64 off = r << h->cluster_bits;
	void *buf;
	int err;

	if (ri >= img->reftable_entries) {
		err = qcow_reftable_grow(img, ri + 1);
		if (err)
			return err;
		if (img->reftable[ri])
			return 0;	/* the growth created it */
	}
	if (!r || r >= qcow_cluster_limit(h) ||
	    xa_load(&img->meta, r)) {
		qcow_image_corrupt(img, "refcount block %llu is missing but cluster %llu is used",
				   ri, r);
		return -EIO;
	}
	buf = kvzalloc(cs, GFP_NOIO);
	if (!buf)
		return -ENOMEM;
	qcow2_refcount_set(buf, h->refcount_order, 0, 1);
	qcow_cache_drop(img->cache, off, cs);
	qcow_cache_drop(img->rcache, off, cs);
	err = qcow_file_write(img->layer, buf, cs, off);
	kvfree(buf);
	if (!err)
		err = qcow_meta_flush(img);
	if (err)
		return err;
	qcow_grow_end(img, r + 1);
	img->reftable[ri] = cpu_to_be64(off);
	err = qcow_reftable_write_entry(img, ri);
	if (err) {
		img->reftable[ri] = 0;
		return err;
	}
	qcow_meta_mark(img, off, cs);
	return 0;
}

/**
 * qcow_alloc_clusters() - allocate a run of free clusters
 * @img: image, meta_lock held
 * @nr: clusters wanted (> 0)
 * @host: byte offset of the first cluster allocated
 * @got: clusters allocated, 1..@nr, contiguous
 *
 * The refcounts are set to one in the cache.  The caller references the
 * clusters from L2 entries only after that (the flush writes refcounts
 * first), or gives them back with qcow_refcount_add(-1) if its I/O failed.
 *
 * Return: 0, -ENOSPC (offsets would exceed the format's limit, or the
 * refcount table cannot grow), -EIO or -ENOMEM.
 */
int qcow_alloc_clusters(struct qcow_image *img, u64 nr, u64 *host, u64 *got)
{
	const struct qcow2_header *h = img->hdr;
	u64 limit = qcow_cluster_limit(h);
	u64 c, n, end, rc, rb;
	int err;

	lockdep_assert_held(&img->meta_lock);
restart:
	c = img->free_hint;
	for (;;) {
		if (c >= limit)
			return -ENOSPC;
		err = qcow_refcount_get(img, c, &rc);
		if (err)
			return err;
		if (!rc && !xa_load(&img->meta, c))
			break;
		if (c == img->free_hint)
			img->free_hint = c + 1;
		c++;
	}
	err = qcow_refblock(img, c >> h->refblock_bits, &rb);
	if (err)
		return err;
	if (!rb) {
		err = qcow_refblock_create(img, c >> h->refblock_bits);
		if (err)
			return err;
		goto restart;
	}

	end = min3(c + nr, ((c >> h->refblock_bits) + 1) << h->refblock_bits,
		   limit);
	for (n = 1; c + n < end; n++) {
		err = qcow_refcount_get(img, c + n, &rc);
		if (err)
			return err;
		if (rc || xa_load(&img->meta, c + n))
			break;
	}
	err = qcow_refcount_add(img, c, n, 1);
	if (err)
		return err;
	if (c == img->free_hint)
		img->free_hint = c + n;
	qcow_grow_end(img, c + n);
	*host = c << h->cluster_bits;
	*got = n;
	return 0;
}

/**
 * qcow_region_move() - a header-level table moved: so does its region
 * @img: image
 * @what: the region's name ("L1 table", "snapshot table", ...)
 * @old_off: where the table was
 * @off: where it is now
 * @len: its length in bytes
 */
void qcow_region_move(struct qcow_image *img, const char *what, u64 old_off,
		      u64 off, u64 len)
{
	unsigned int i;

	for (i = 0; i < img->nr_regions; i++)
		if (img->regions[i].start == old_off &&
		    !strcmp(img->regions[i].what, what)) {
			img->regions[i].start = off;
			img->regions[i].len = round_up(len, img->hdr->cluster_size);
			return;
		}
	if (len && img->nr_regions < ARRAY_SIZE(img->regions)) {
		img->regions[img->nr_regions].what = what;
		img->regions[img->nr_regions].start = off;
		img->regions[img->nr_regions++].len = round_up(len, img->hdr->cluster_size);
	}
}

/*
 * Create the refcount block of range @ri in a free cluster outside that
 * range, so that the whole range stays free for a run that crosses it.
 * The cluster's own count is on disk before the table names the block.
 */
static int qcow_refblock_create_outside(struct qcow_image *img, u64 ri)
{
	const struct qcow2_header *h = img->hdr;
	u64 cs = h->cluster_size, off, got;
	void *buf;
	int err;

	if (ri >= img->reftable_entries)
		return qcow_reftable_grow(img, ri + 1);	/* the caller looks again */
	err = qcow_alloc_clusters(img, 1, &off, &got);
	if (err)
		return err;
	if (img->reftable[ri]) {
		/*
		 * The allocator created the block itself (in the range's first
		 * cluster) on its way: the cluster it gave is not needed.
		 */
		qcow_refcount_add(img, off >> h->cluster_bits, 1, -1);
		return 0;
	}
	buf = kvzalloc(cs, GFP_NOIO);
	if (!buf) {
		err = -ENOMEM;
		goto out_free;
	}
	qcow_cache_drop(img->cache, off, cs);
	qcow_cache_drop(img->rcache, off, cs);
	err = qcow_cache_writeback(img->rcache);
	if (!err)
		err = qcow_file_write(img->layer, buf, cs, off);
	kvfree(buf);
	if (!err)
		err = qcow_meta_flush(img);
	if (err)
		goto out_free;
	img->reftable[ri] = cpu_to_be64(off);
	err = qcow_reftable_write_entry(img, ri);
	if (err) {
		img->reftable[ri] = 0;
		goto out_free;
	}
	qcow_meta_mark(img, off, cs);
	return 0;

out_free:
	qcow_refcount_add(img, off >> h->cluster_bits, 1, -1);
	return err;
}

/*
 * Allocate @nr contiguous clusters at the allocation end, across as many
 * refcount block ranges as it takes: the blocks of the ranges the run
 * crosses are created first, outside the run.
 */
static int qcow_alloc_contig_end(struct qcow_image *img, u64 nr, u64 *host)
{
	const struct qcow2_header *h = img->hdr;
	u32 rb_bits = h->refblock_bits;
	u64 p, ri, c, n, rb;
	int err;

	for (;;) {
		p = img->nb_clusters;
		if (p + nr > qcow_cluster_limit(h))
			return -ENOSPC;
		for (ri = p >> rb_bits; ri <= (p + nr - 1) >> rb_bits; ri++) {
			err = qcow_refblock(img, ri, &rb);
			if (err)
				return err;
			if (!rb)
				break;
		}
		if (ri > (p + nr - 1) >> rb_bits)
			break;		/* every range of [p, p + nr) has a block */
		/* This moves the allocation end, maybe: look again. */
		err = qcow_refblock_create_outside(img, ri);
		if (err)
			return err;
	}
	for (c = p; c < p + nr; c += n) {
		n = min(p + nr, ((c >> rb_bits) + 1) << rb_bits) - c;
		err = qcow_refcount_add(img, c, n, 1);
		if (err) {
			if (c > p)
				qcow_refcount_add(img, p, c - p, -1);
			return err;
		}
	}
	qcow_grow_end(img, p + nr);
	*host = p << h->cluster_bits;
	return 0;
}

/*
 * Allocate @nr contiguous clusters.  Runs too short are kept while looking
 * further and given back afterwards; a run that cannot fit in one refcount
 * block's range goes to the allocation end (qcow_alloc_contig_end()).
 */
static int qcow_alloc_contig(struct qcow_image *img, u64 nr, u64 *host)
{
	u32 cb = img->hdr->cluster_bits;
	struct qcow_free tmp[16];
	unsigned int n = 0, i;
	u64 off, got;
	int err;

	if (nr >= (1ULL << img->hdr->refblock_bits) / 2)
		return qcow_alloc_contig_end(img, nr, host);
	for (;;) {
		err = qcow_alloc_clusters(img, nr, &off, &got);
		if (err)
			break;
		if (got == nr) {
			*host = off;
			break;
		}
		if (n == ARRAY_SIZE(tmp)) {
			qcow_refcount_add(img, off >> cb, got, -1);
			err = -ENOSPC;
			break;
		}
		tmp[n].start = off >> cb;
		tmp[n++].nr = got;
	}
	for (i = 0; i < n; i++)
		qcow_refcount_add(img, tmp[i].start, tmp[i].nr, -1);
	if (err == -ENOSPC)
		err = qcow_alloc_contig_end(img, nr, host);
	return err;
}

static int qcow_shadow_note_alloc(struct qcow_image *img, u64 start, u64 nr);

/**
 * qcow_table_write_new() - write a table to newly allocated clusters
 * @img: writable image, meta_lock held
 * @data: the table
 * @len: its length in bytes
 * @off: receives where it went
 *
 * For tables that move as a whole (L1 tables, snapshot tables): the
 * clusters are contiguous, the tail of the last one zeroed, and they are
 * marked as metadata.  Their refcounts are written back too, so that the
 * caller's flush makes them durable before a header names the table.  Not
 * flushed.
 *
 * Return: 0, -ENOSPC, -EIO or -ENOMEM (nothing stays allocated).
 */
int qcow_table_write_new(struct qcow_image *img, const void *data, size_t len,
			 u64 *off)
{
	u64 cs = img->hdr->cluster_size;
	u64 nr = DIV_ROUND_UP_ULL(len, cs);
	void *buf;
	int err;

	buf = kvzalloc(nr * cs, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, data, len);
	err = qcow_alloc_contig(img, nr, off);
	if (!err) {
		qcow_cache_drop(img->cache, *off, nr * cs);
		qcow_cache_drop(img->rcache, *off, nr * cs);
		err = qcow_file_write(img->layer, buf, nr * cs, *off);
		if (!err)
			err = qcow_cache_writeback(img->rcache);
		if (!err && img->shadow)
			err = qcow_shadow_note_alloc(img, *off >> img->hdr->cluster_bits,
						     nr);
		if (err)
			qcow_refcount_add(img, *off >> img->hdr->cluster_bits, nr, -1);
		else
			qcow_meta_mark(img, *off, nr * cs);
	}
	kvfree(buf);
	return err;
}

/**
 * qcow_free_later() - drop a reference at the next flush
 * @img: image, meta_lock held
 * @offset: first byte of the host range (a cluster, or compressed data)
 * @len: bytes (> 0)
 *
 * The reference from an L2 or L1 entry that was just changed in memory;
 * its refcount may only drop once the change is on disk, which is what
 * qcow_image_flush() arranges.  Every cluster the range touches loses one
 * reference.
 *
 * Return: 0 or -ENOMEM (the clusters then leak: harmless).
 */
int qcow_free_later(struct qcow_image *img, u64 offset, u64 len)
{
	u32 cb = img->hdr->cluster_bits;
	u64 first = offset >> cb, nr = ((offset + len - 1) >> cb) - first + 1;
	struct qcow_free *f;

	lockdep_assert_held(&img->meta_lock);
	if (img->nr_frees) {
		f = &img->frees[img->nr_frees - 1];
		if (f->start + f->nr == first) {
			f->nr += nr;
			return 0;
		}
	}
	if (img->nr_frees == img->max_frees) {
		unsigned int max = max(64U, img->max_frees * 2);

		f = kvrealloc(img->frees, img->max_frees * sizeof(*f),
			      max * sizeof(*f), GFP_NOIO);
		if (!f)
			return -ENOMEM;
		img->frees = f;
		img->max_frees = max;
	}
	img->frees[img->nr_frees].start = first;
	img->frees[img->nr_frees].nr = nr;
	img->nr_frees++;
	return 0;
}

/**
 * qcow_frees_apply() - drop the references queued by qcow_free_later()
 * @img: image, meta_lock held
 * @f: the queued entries, taken from @img->frees before the write-back
 *     that removed their last on-disk references
 * @nr: entries
 *
 * Clusters whose refcount reaches zero are punched out of the file.
 *
 * Return: 0 or the first error (the rest are still applied).
 */
int qcow_frees_apply(struct qcow_image *img, struct qcow_free *f,
		     unsigned int nr)
{
	u32 cb = img->hdr->cluster_bits;
	u64 c, rc, run;
	unsigned int i;
	int err = 0, ret;

	lockdep_assert_held(&img->meta_lock);
	for (i = 0; i < nr; i++) {
		ret = qcow_refcount_add(img, f[i].start, f[i].nr, -1);
		if (ret && !err)
			err = ret;
		for (c = f[i].start; c < f[i].start + f[i].nr; c += run) {
			run = 1;
			if (qcow_refcount_get(img, c, &rc) || rc)
				continue;
			while (c + run < f[i].start + f[i].nr &&
			       !qcow_refcount_get(img, c + run, &rc) && !rc)
				run++;
			img->layer->ops->punch(img->layer, c << cb, run << cb);
		}
	}
	return err;
}

/* ------------------------------------------------------------------------
 * shadow refcounts: a new metadata root switched to in one header write
 */

/**
 * struct qcow_shadow_block - a refcount block as the new root counts
 * @old_off: the block it replaces
 * @new_off: where its copy goes (0 until qcow_shadow_commit())
 * @buf: the whole block
 */
struct qcow_shadow_block {
	u64 old_off;
	u64 new_off;
	void *buf;
};

/**
 * struct qcow_shadow - refcount changes that reach the disk only with the
 *	header write that makes them true
 * @blocks: refcount block index -> struct qcow_shadow_block
 * @zeros: clusters whose count dropped to zero in the copies
 * @allocs: clusters allocated for the new root, given back unless the
 *	    header switches to it
 * @nr_allocs: entries used in @allocs
 * @max_allocs: entries allocated in @allocs
 * @err: a real change could not be mirrored into the copies
 * @committed: the header names the new root
 */
struct qcow_shadow {
	struct xarray blocks;
	struct xarray zeros;
	struct qcow_free *allocs;
	unsigned int nr_allocs;
	unsigned int max_allocs;
	int err;
	bool committed;
};

/**
 * qcow_shadow_begin() - start preparing a new metadata root
 * @img: writable image, meta_lock held, no request in flight, everything
 *	 written back
 *
 * Some changes cannot reach the disk one after the other without a crash
 * in between leaving a state that ``qemu-img check`` calls corrupt: a
 * refcount going from one to two and the COPIED flag that must go with it
 * live in different clusters.  Those changes are made to copies of the
 * refcount blocks they touch (qcow_shadow_add()), which qcow_shadow_commit()
 * writes to new clusters and names, with a new refcount table, L1 table and
 * snapshot table, in one header sector write.  Real changes made meanwhile
 * (allocations) are applied to the copies too.
 *
 * Return: 0 or -ENOMEM.
 */
int qcow_shadow_begin(struct qcow_image *img)
{
	struct qcow_shadow *sh;

	lockdep_assert_held(&img->meta_lock);
	if (WARN_ON_ONCE(img->shadow))
		return -EBUSY;
	sh = kzalloc(sizeof(*sh), GFP_KERNEL);
	if (!sh)
		return -ENOMEM;
	xa_init(&sh->blocks);
	xa_init(&sh->zeros);
	img->shadow = sh;
	return 0;
}

/**
 * qcow_shadow_end() - forget the shadow state
 * @img: image, meta_lock held
 *
 * Unless qcow_shadow_commit() switched to the new root, the clusters
 * allocated for it are given back (in memory; the next write-back makes
 * them free on disk too, until then they are leaks).
 */
void qcow_shadow_end(struct qcow_image *img)
{
	struct qcow_shadow *sh = img->shadow;
	struct qcow_shadow_block *b;
	unsigned long ri;
	unsigned int i;

	lockdep_assert_held(&img->meta_lock);
	if (!sh)
		return;
	img->shadow = NULL;
	if (!sh->committed)
		for (i = 0; i < sh->nr_allocs; i++)
			qcow_refcount_add(img, sh->allocs[i].start, sh->allocs[i].nr, -1);
	xa_for_each(&sh->blocks, ri, b) {
		kvfree(b->buf);
		kfree(b);
	}
	xa_destroy(&sh->blocks);
	xa_destroy(&sh->zeros);
	kvfree(sh->allocs);
	kfree(sh);
}

/* Remember clusters allocated for the new root. */
static int qcow_shadow_note_alloc(struct qcow_image *img, u64 start, u64 nr)
{
	struct qcow_shadow *sh = img->shadow;
	struct qcow_free *f;

	if (sh->nr_allocs == sh->max_allocs) {
		unsigned int max = max(16U, sh->max_allocs * 2);

		f = kvrealloc(sh->allocs, sh->max_allocs * sizeof(*f),
			      max * sizeof(*f), GFP_KERNEL);
		if (!f)
			return -ENOMEM;
		sh->allocs = f;
		sh->max_allocs = max;
	}
	sh->allocs[sh->nr_allocs].start = start;
	sh->allocs[sh->nr_allocs++].nr = nr;
	return 0;
}

/* The copy of refcount block @ri, made on first use; NULL: no block. */
static int qcow_shadow_block(struct qcow_image *img, u64 ri,
			     struct qcow_shadow_block **bp)
{
	struct qcow_shadow *sh = img->shadow;
	u64 cs = img->hdr->cluster_size, off;
	struct qcow_shadow_block *b;
	int err;

	*bp = xa_load(&sh->blocks, ri);
	if (*bp)
		return 0;
	err = qcow_refblock(img, ri, &off);
	if (err || !off)
		return err;
	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->buf = kvmalloc(cs, GFP_KERNEL);
	if (!b->buf) {
		err = -ENOMEM;
		goto out_free;
	}
	err = qcow_cache_read(img->rcache, off, b->buf, cs);
	if (err)
		goto out_free;
	b->old_off = off;
	err = xa_err(xa_store(&sh->blocks, ri, b, GFP_KERNEL));
	if (err)
		goto out_free;
	*bp = b;
	return 0;

out_free:
	kvfree(b->buf);
	kfree(b);
	return err;
}

/* A real change: the copy of its block (if any) takes it too. */
static void qcow_shadow_mirror(struct qcow_image *img, u64 cluster, int delta)
{
	const struct qcow2_header *h = img->hdr;
	struct qcow_shadow *sh = img->shadow;
	struct qcow_shadow_block *b;
	u64 idx = cluster & ((1ULL << h->refblock_bits) - 1), v;

	b = xa_load(&sh->blocks, cluster >> h->refblock_bits);
	if (!b)
		return;
	v = qcow2_refcount_get(b->buf, h->refcount_order, idx);
	if ((delta < 0 && !v) ||
	    (delta > 0 && v == qcow2_refcount_max(h->refcount_order))) {
		sh->err = -EIO;
		return;
	}
	v += delta;
	qcow2_refcount_set(b->buf, h->refcount_order, idx, v);
	if (!v && xa_err(xa_store(&sh->zeros, cluster, xa_mk_value(1), GFP_NOIO)))
		sh->err = -ENOMEM;
}

/**
 * qcow_shadow_add() - change refcounts in the new root only
 * @img: image between qcow_shadow_begin() and qcow_shadow_end()
 * @cluster: first host cluster index
 * @nr: clusters
 * @delta: +1 or -1
 *
 * Return: 0, -EIO (no block counts the cluster, or the count would drop
 * below zero: the image is marked corrupt), -ERANGE (the count would
 * overflow its width) or -ENOMEM.
 */
int qcow_shadow_add(struct qcow_image *img, u64 cluster, u64 nr, int delta)
{
	const struct qcow2_header *h = img->hdr;
	u64 max = qcow2_refcount_max(h->refcount_order);
	u64 mask = (1ULL << h->refblock_bits) - 1, v;
	struct qcow_shadow_block *b;
	int err;

	lockdep_assert_held(&img->meta_lock);
	for (; nr; cluster++, nr--) {
		err = qcow_shadow_block(img, cluster >> h->refblock_bits, &b);
		if (err)
			return err;
		if (!b) {
			qcow_image_corrupt(img, "cluster %llu is in use but has no refcount block",
					   cluster);
			return -EIO;
		}
		v = qcow2_refcount_get(b->buf, h->refcount_order, cluster & mask);
		if (delta < 0 && !v) {
			qcow_image_corrupt(img, "refcount of cluster %llu would drop below zero",
					   cluster);
			return -EIO;
		}
		if (delta > 0 && v == max)
			return -ERANGE;
		v += delta;
		qcow2_refcount_set(b->buf, h->refcount_order, cluster & mask, v);
		if (!v) {
			err = xa_err(xa_store(&img->shadow->zeros, cluster,
					      xa_mk_value(1), GFP_KERNEL));
			if (err)
				return err;
		}
	}
	return 0;
}

/**
 * qcow_shadow_get() - a cluster's refcount as the new root counts it
 * @img: image between qcow_shadow_begin() and qcow_shadow_end()
 * @cluster: host cluster index
 * @refcount: the value
 *
 * Return: 0, -EIO or -ENOMEM.
 */
int qcow_shadow_get(struct qcow_image *img, u64 cluster, u64 *refcount)
{
	const struct qcow2_header *h = img->hdr;
	struct qcow_shadow_block *b;

	b = xa_load(&img->shadow->blocks, cluster >> h->refblock_bits);
	if (!b)
		return qcow_refcount_get(img, cluster, refcount);
	*refcount = qcow2_refcount_get(b->buf, h->refcount_order,
				       cluster & ((1ULL << h->refblock_bits) - 1));
	return 0;
}

/**
 * qcow_region_find() - a header-level region by name
 * @img: image
 * @what: the region's name ("L1 table", "snapshot table", ...)
 *
 * Return: the region, or NULL when the image has none of that name.
 */
struct qcow2_region *qcow_region_find(struct qcow_image *img, const char *what)
{
	unsigned int i;

	for (i = 0; i < img->nr_regions; i++)
		if (!strcmp(img->regions[i].what, what))
			return &img->regions[i];
	return NULL;
}

/* Punch the clusters of the new root's count zero that nothing re-used. */
static void qcow_shadow_punch_zeros(struct qcow_image *img,
				    struct qcow_shadow *sh)
{
	u32 cb = img->hdr->cluster_bits;
	u64 start = 0, run = 0, rc;
	unsigned long c;
	void *entry;

	xa_for_each(&sh->zeros, c, entry) {
		if (qcow_refcount_get(img, c, &rc) || rc)
			continue;
		qcow_cluster_freed(img, c);
		if (run && start + run == c) {
			run++;
			continue;
		}
		if (run)
			img->layer->ops->punch(img->layer, start << cb, run << cb);
		start = c;
		run = 1;
	}
	if (run)
		img->layer->ops->punch(img->layer, start << cb, run << cb);
}

/* Clusters for the copies of the blocks and for the new refcount table. */
static int qcow_shadow_alloc(struct qcow_image *img, u64 *rt_off, u32 *rt_clusters)
{
	const struct qcow2_header *h = img->hdr;
	struct qcow_shadow *sh = img->shadow;
	u32 cb = h->cluster_bits, n;
	struct qcow_shadow_block *b;
	unsigned long ri;
	u64 off, got;
	int err, tries;

	xa_for_each(&sh->blocks, ri, b) {
		err = qcow_alloc_clusters(img, 1, &off, &got);
		if (err)
			return err;
		err = qcow_shadow_note_alloc(img, off >> cb, 1);
		if (err) {
			qcow_refcount_add(img, off >> cb, 1, -1);
			return err;
		}
		b->new_off = off;
	}
	for (tries = 0; ; tries++) {
		n = h->refcount_table_clusters;
		err = qcow_alloc_contig(img, n, &off);
		if (err)
			return err;
		if (n == h->refcount_table_clusters)
			break;
		/* The table grew while its copy was allocated: again. */
		qcow_refcount_add(img, off >> cb, n, -1);
		if (tries == 3)
			return -ENOSPC;
	}
	err = qcow_shadow_note_alloc(img, off >> cb, n);
	if (err) {
		qcow_refcount_add(img, off >> cb, n, -1);
		return err;
	}
	*rt_off = off;
	*rt_clusters = n;
	return 0;
}

/**
 * qcow_shadow_commit() - switch to the new metadata root
 * @img: image between qcow_shadow_begin() and qcow_shadow_end()
 * @c: the new L1 table (written, its clusters allocated), size and snapshot
 *     table (the current one or one written to new clusters)
 *
 * The copies of the refcount blocks go to new clusters, a new refcount
 * table names them (and every block not copied), and all of it, with the
 * refcounts of everything allocated meanwhile, is written and flushed.
 * Then one header write switches the L1 table, the virtual size, the
 * refcount table and the snapshot table together: a crash before it leaves
 * the old root with leaked clusters, after it the new root.  Once switched,
 * what only the old root used (its refcount table and the blocks copied,
 * the old L1 table when @c->free_old_l1, the old snapshot table, clusters
 * whose count reached zero) is released in memory and punched; the
 * caller's write-back makes that durable (a crash before it leaks them).
 *
 * Return: 0 (the image uses @c->l1 and @c->old_l1 holds the old table), or
 * -ENOSPC/-EIO/-ERANGE/-ENOMEM with the old root in place (a failed header
 * write also stops the image).
 */
int qcow_shadow_commit(struct qcow_image *img, struct qcow_commit *c)
{
	struct qcow2_header *h = img->hdr;
	struct qcow_shadow *sh = img->shadow;
	u32 cb = h->cluster_bits, rt_clusters = 0;
	u64 cs = h->cluster_size, rt_off = 0;
	u64 old_l1_off = h->l1_table_offset, old_size = h->size;
	u64 old_rt_off = h->refcount_table_offset;
	u64 old_snap_off = h->snapshots_offset, old_snap_len = 0;
	u32 old_l1_size = h->l1_size, old_rt_clusters;
	u32 old_nb_snap = h->nb_snapshots;
	struct qcow_free frees[3];
	struct qcow2_region *r;
	struct qcow_shadow_block *b;
	unsigned long *dirty;
	unsigned int nf = 0;
	unsigned long ri;
	__be64 *rt;
	int err;

	lockdep_assert_held(&img->meta_lock);
	if (sh->err)
		return sh->err;
	dirty = bitmap_zalloc(DIV_ROUND_UP(c->l1_size, SECTOR_SIZE / 8) + 1,
			      GFP_KERNEL);
	if (!dirty)
		return -ENOMEM;
	err = qcow_shadow_alloc(img, &rt_off, &rt_clusters);
	if (err)
		goto out_dirty;
	err = -ENOMEM;
	rt = kvzalloc((size_t)rt_clusters << cb, GFP_KERNEL);
	if (!rt)
		goto out_dirty;
	memcpy(rt, img->reftable, img->reftable_entries * sizeof(__be64));
	xa_for_each(&sh->blocks, ri, b)
		rt[ri] = cpu_to_be64(b->new_off);

	/* Everything the new root names, on disk. */
	err = qcow_cache_writeback(img->rcache);
	xa_for_each(&sh->blocks, ri, b) {
		if (err)
			break;
		qcow_cache_drop(img->cache, b->new_off, cs);
		qcow_cache_drop(img->rcache, b->new_off, cs);
		err = qcow_file_write(img->layer, b->buf, cs, b->new_off);
	}
	if (!err) {
		qcow_cache_drop(img->cache, rt_off, (u64)rt_clusters << cb);
		qcow_cache_drop(img->rcache, rt_off, (u64)rt_clusters << cb);
		err = qcow_file_write(img->layer, rt, (size_t)rt_clusters << cb,
				      rt_off);
	}
	if (!err)
		err = sh->err;	/* a late real change that could not be mirrored */
	if (!err)
		err = qcow_meta_flush(img);
	if (err)
		goto out_rt;

	/* The switch. */
	old_rt_clusters = h->refcount_table_clusters;
	old_rt_off = h->refcount_table_offset;
	r = qcow_region_find(img, "snapshot table");
	if (r && old_nb_snap)
		old_snap_len = r->len;
	h->l1_table_offset = c->l1_off;
	h->l1_size = c->l1_size;
	h->size = c->size;
	h->refcount_table_offset = rt_off;
	h->refcount_table_clusters = rt_clusters;
	h->snapshots_offset = c->snap_off;
	h->nb_snapshots = c->nb_snap;
	err = qcow_header_write(img);
	if (err) {
		/* Stopped: nothing more is written, whichever header it holds. */
		h->l1_table_offset = old_l1_off;
		h->l1_size = old_l1_size;
		h->size = old_size;
		h->refcount_table_offset = old_rt_off;
		h->refcount_table_clusters = old_rt_clusters;
		h->snapshots_offset = old_snap_off;
		h->nb_snapshots = old_nb_snap;
		goto out_rt;
	}
	sh->committed = true;

	/* Memory follows the disk. */
	swap(img->reftable, rt);
	img->reftable_entries = ((u64)rt_clusters << cb) / sizeof(__be64);
	xa_for_each(&sh->blocks, ri, b) {
		qcow_cache_drop(img->rcache, b->old_off, cs);
		qcow_meta_mark(img, b->new_off, cs);
	}
	qcow_meta_mark(img, rt_off, (u64)rt_clusters << cb);
	qcow_region_move(img, "refcount table", old_rt_off, rt_off,
			 (u64)rt_clusters << cb);
	qcow_region_move(img, "L1 table", old_l1_off, c->l1_off,
			 (u64)c->l1_size * sizeof(__be64));
	if (c->snap_off != old_snap_off || c->nb_snap != old_nb_snap)
		qcow_region_move(img, "snapshot table", old_snap_off, c->snap_off,
				 c->nb_snap ? c->snap_len : 0);
	c->old_l1 = img->l1;
	img->l1 = c->l1;
	bitmap_free(img->l1_dirty);
	img->l1_dirty = dirty;
	dirty = NULL;

	/* What only the old root used; the copies are the real blocks now. */
	img->shadow = NULL;
	frees[nf].start = old_rt_off >> cb;
	frees[nf++].nr = old_rt_clusters;
	if (c->free_old_l1 && old_l1_size) {
		frees[nf].start = old_l1_off >> cb;
		frees[nf++].nr = DIV_ROUND_UP_ULL((u64)old_l1_size * sizeof(__be64), cs);
	}
	if (old_snap_len && old_snap_off != c->snap_off) {
		frees[nf].start = old_snap_off >> cb;
		frees[nf++].nr = DIV_ROUND_UP_ULL(old_snap_len, cs);
	}
	err = qcow_frees_apply(img, frees, nf);
	xa_for_each(&sh->blocks, ri, b) {
		frees[0].start = b->old_off >> cb;
		frees[0].nr = 1;
		err = qcow_frees_apply(img, frees, 1) ?: err;
	}
	qcow_shadow_punch_zeros(img, sh);
	img->shadow = sh;
	if (err)
		pr_warn_ratelimited("%pD: releasing the old metadata failed (%d): clusters leak\n",
				    img->layer->file, err);
	err = 0;
out_rt:
	kvfree(rt);
out_dirty:
	bitmap_free(dirty);
	return err;
}

static int qcow_meta_mark_l1(struct qcow_image *img, const __be64 *l1,
			     u32 l1_size)
{
	const struct qcow2_header *h = img->hdr;
	u64 l2off;
	bool copied;
	u32 i;

	for (i = 0; i < l1_size; i++) {
		if (qcow2_l1e_decode(h, be64_to_cpu(l1[i]), img->file_size,
				     &l2off, &copied))
			continue;	/* reported when used */
		if (l2off)
			qcow_meta_mark(img, l2off, h->cluster_size);
	}
	return 0;
}

/* Record every table the image holds: the snapshots' too. */
static int qcow_meta_scan(struct qcow_image *img)
{
	const struct qcow2_header *h = img->hdr;
	struct qcow2_region *r;
	u64 rb, pos, end;
	unsigned int i;
	void *buf = NULL;
	int err = 0;

	for (i = 0; i < img->nr_regions; i++)
		qcow_meta_mark(img, img->regions[i].start, img->regions[i].len);
	for (i = 0; i < img->reftable_entries; i++) {
		if (!img->reftable[i])
			continue;
		err = qcow_refblock(img, i, &rb);
		if (err)
			return err;
		qcow_meta_mark(img, rb, h->cluster_size);
	}
	qcow_meta_mark_l1(img, img->l1, h->l1_size);

	if (!h->nb_snapshots)
		return 0;
	/* The table was checked at open: parse it again for the L1 tables. */
	r = qcow_region_find(img, "snapshot table");
	if (!r)
		return 0;
	end = r->len;
	buf = kvmalloc(end, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	err = qcow_file_read(img->layer, buf, end, h->snapshots_offset);
	for (pos = 0, i = 0; !err && i < h->nb_snapshots; i++) {
		struct qcow2_snapshot sn;
		size_t used;
		__be64 *l1;

		err = qcow2_snapshot_parse(h, buf + pos, end - pos, img->file_size,
					   &sn, &used, NULL);
		if (err)
			break;
		pos += used;
		if (!sn.l1_size)
			continue;
		qcow_meta_mark(img, sn.l1_table_offset,
			       (u64)sn.l1_size * sizeof(__be64));
		l1 = kvmalloc_array(sn.l1_size, sizeof(*l1), GFP_KERNEL);
		if (!l1) {
			err = -ENOMEM;
			break;
		}
		err = qcow_file_read(img->layer, l1, sn.l1_size * sizeof(*l1),
				     sn.l1_table_offset);
		if (!err)
			qcow_meta_mark_l1(img, l1, sn.l1_size);
		kvfree(l1);
	}
	kvfree(buf);
	return err;
}

/**
 * qcow_refcount_open() - load what allocation needs
 * @img: image being attached read-write
 *
 * Return: 0, -EIO or -ENOMEM.
 */
int qcow_refcount_open(struct qcow_image *img)
{
	const struct qcow2_header *h = img->hdr;
	size_t bytes = (size_t)h->refcount_table_clusters * h->cluster_size;
	int err;

	img->reftable = kvzalloc(bytes, GFP_KERNEL);
	if (!img->reftable)
		return -ENOMEM;
	err = qcow_file_read(img->layer, img->reftable, bytes,
			     h->refcount_table_offset);
	if (err)
		return err;
	img->reftable_entries = bytes / sizeof(__be64);
	img->rcache = qcow_cache_create(img->layer, img->slice_size,
					QCOW_RCACHE_BYTES);
	if (IS_ERR(img->rcache)) {
		err = PTR_ERR(img->rcache);
		img->rcache = NULL;
		return err;
	}
	img->nb_clusters = DIV_ROUND_UP_ULL(img->file_size, h->cluster_size);
	img->free_hint = 0;
	return qcow_meta_scan(img);
}

/**
 * qcow_refcount_close() - free what qcow_refcount_open() set up
 * @img: image
 */
void qcow_refcount_close(struct qcow_image *img)
{
	qcow_cache_destroy(img->rcache);
	img->rcache = NULL;
	kvfree(img->reftable);
	img->reftable = NULL;
	kvfree(img->frees);
	img->frees = NULL;
	xa_destroy(&img->meta);
}
