// SPDX-License-Identifier: GPL-2.0
/*
 * qcow: qcow2 image state and guest-to-host translation.
 *
 * qcow_image_open() validates everything the first cluster describes (the
 * format core does the checking), loads the active L1 table and checks the
 * snapshot table.  qcow_map() translates a guest range into an extent: the
 * longest run, from the start of the range, of bytes that are read the same
 * way (one host-contiguous data run, unallocated, zero, or one compressed
 * cluster).  Every L1/L2 entry is decoded and checked on use: a pointer
 * outside the file, misaligned, or into metadata fails the request with
 * -EIO and marks the image corrupt, once.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <asm/unaligned.h>

#include "qcow_main.h"

/* Largest snapshot table entry the format core accepts. */
#define QCOW_SNAPSHOT_ENTRY_MAX	round_up(sizeof(struct qcow2_snapshot_disk) + \
					 QCOW2_MAX_SNAPSHOT_EXTRA + \
					 QCOW2_MAX_SNAPSHOT_ID_LEN + \
					 QCOW2_MAX_SNAPSHOT_NAME_LEN, 8)

/**
 * qcow_image_corrupt() - report metadata found inconsistent
 * @img: image
 * @fmt: what was found, printf style
 *
 * Logs the first report for an image; later ones are counted silently.
 * A writable version 3 image gets the corrupt bit in its header, so that
 * QEMU refuses to write it until it is repaired; writes fail from now on,
 * reads go on.  Read-only images are never written.
 */
void qcow_image_corrupt(struct qcow_image *img, const char *fmt, ...)
{
	struct va_format vaf;
	va_list args;

	if (atomic_inc_return(&img->corrupt) != 1)
		return;
	va_start(args, fmt);
	vaf.fmt = fmt;
	vaf.va = &args;
	pr_err("%pD: corrupt image: %pV\n", img->layer->file, &vaf);
	va_end(args);
	if (img->writable && img->hdr->version >= 3 && !atomic_read(&img->stopped)) {
		img->hdr->incompatible_features |= QCOW2_INCOMPAT_CORRUPT;
		if (qcow_header_write(img))
			pr_err("%pD: could not set the corrupt bit\n",
			       img->layer->file);
	}
}

static u64 qcow_default_cache_bytes(const struct qcow2_header *h)
{
	/* Enough slices to map the whole disk, within [1 MiB, 32 MiB]. */
	u64 clusters = DIV_ROUND_UP_ULL(h->size, h->cluster_size);
	u64 bytes = clusters * h->l2_entry_size;

	return clamp_t(u64, bytes, QCOW_CACHE_DEFAULT_MIN, QCOW_CACHE_DEFAULT_MAX);
}

static int qcow_check_snapshots(struct qcow_image *img)
{
	const struct qcow2_header *h = img->hdr;
	struct qcow2_diag diag = {};
	size_t len, table_len;
	void *buf;
	int err;

	if (!h->nb_snapshots)
		return 0;
	len = min_t(u64, (u64)h->nb_snapshots * QCOW_SNAPSHOT_ENTRY_MAX,
		    QCOW2_MAX_SNAPSHOT_TABLE_BYTES);
	len = min_t(u64, len, img->file_size - h->snapshots_offset);
	buf = kvmalloc(len, GFP_KERNEL);
	if (!buf)
		return -ENOMEM;
	err = qcow_file_read(img->layer, buf, len, h->snapshots_offset);
	if (!err) {
		err = qcow2_snapshot_table_check(h, buf, len, img->file_size,
						 &table_len, &diag);
		if (err)
			pr_err("%pD: %s: %s\n", img->layer->file, diag.field,
			       diag.msg);
	}
	if (!err) {
		/* Replace the header's lower bound with the real table size. */
		unsigned int i;

		for (i = 0; i < img->nr_regions; i++)
			if (img->regions[i].start == h->snapshots_offset &&
			    !strcmp(img->regions[i].what, "snapshot table"))
				img->regions[i].len = round_up(table_len,
							       h->cluster_size);
		err = qcow2_regions_check(img->regions, img->nr_regions, &diag);
		if (err)
			pr_err("%pD: %s: %s\n", img->layer->file, diag.field,
			       diag.msg);
	}
	kvfree(buf);
	return err;
}

/**
 * qcow_image_open() - validate a qcow2 layer and load its mapping state
 * @l: layer with @l->file set
 * @cache_bytes: L2 cache budget in bytes, 0 for the default
 *
 * Every problem is logged with the offending field named.
 *
 * Return: 0, -EINVAL for an invalid image, -EOPNOTSUPP for a valid image
 * using an unsupported feature, -EIO or -ENOMEM.
 */
int qcow_image_open(struct qcow_layer *l, u64 cache_bytes)
{
	struct qcow2_diag diag = {};
	struct qcow_image *img;
	struct qcow2_header *h;
	u8 peek[QCOW2_V2_HEADER_LEN];
	u32 cluster_bits;
	size_t len;
	void *buf;
	int err;

	img = kzalloc(sizeof(*img), GFP_KERNEL);
	if (!img)
		return -ENOMEM;
	img->layer = l;
	mutex_init(&img->decomp_lock);
	mutex_init(&img->meta_lock);
	mutex_init(&img->hdr_lock);
	mutex_init(&img->epoch_mutex);
	seqcount_mutex_init(&img->l2_seq, &img->meta_lock);
	INIT_LIST_HEAD(&img->inflight);
	xa_init(&img->meta);
	INIT_DELAYED_WORK(&img->wb_work, qcow_writeback_work);
	INIT_WORK(&img->aw_work, qcow_awrite_work);
	INIT_WORK(&img->aw_start_work, qcow_awrite_start_work);
	init_llist_head(&img->aw_submit);
	init_llist_head(&img->aw_done);
	init_waitqueue_head(&img->inflight_wq);
	init_waitqueue_head(&img->epoch_wq);
	atomic_set(&img->corrupt, 0);
	img->file_size = l->ops->size(l);

	img->qi = kvzalloc(sizeof(*img->qi), GFP_KERNEL);
	if (!img->qi) {
		err = -ENOMEM;
		goto err_free;
	}
	img->hdr = &img->qi->hdr;
	h = img->hdr;

	/* Read the first cluster: peek at cluster_bits to size the read. */
	len = min_t(u64, sizeof(peek), img->file_size);
	err = qcow_file_read(l, peek, len, 0);
	if (err)
		goto err_free;
	cluster_bits = len >= 24 ? get_unaligned_be32(peek + 20) : 0;
	cluster_bits = clamp_t(u32, cluster_bits, QCOW2_MIN_CLUSTER_BITS,
			       QCOW2_MAX_CLUSTER_BITS);
	len = min_t(u64, 1ULL << cluster_bits, img->file_size);
	buf = kvmalloc(max_t(size_t, len, 1), GFP_KERNEL);
	if (!buf) {
		err = -ENOMEM;
		goto err_free;
	}
	err = qcow_file_read(l, buf, len, 0);
	if (!err) {
		err = qcow2_image_parse(buf, len, img->file_size, img->qi, &diag);
		if (err)
			pr_err("%pD: %s: %s\n", l->file,
			       diag.field ? diag.field : "header", diag.msg);
	}
	kvfree(buf);
	if (err)
		goto err_free;

	if (h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) {
		pr_err("%pD: incompatible_features: external data files are not supported\n",
		       l->file);
		err = -EOPNOTSUPP;
		goto err_free;
	}

	img->nr_regions = qcow2_image_regions(img->qi, img->regions,
					      ARRAY_SIZE(img->regions));
	err = qcow_check_snapshots(img);
	if (err)
		goto err_free;

	if (h->l1_size) {
		/* Whole sectors: the write path writes L1 back by sector. */
		img->l1 = kvcalloc(round_up(h->l1_size, SECTOR_SIZE / 8),
				   sizeof(__be64), GFP_KERNEL);
		if (!img->l1) {
			err = -ENOMEM;
			goto err_free;
		}
		err = qcow_file_read(l, img->l1, (size_t)h->l1_size * sizeof(__be64),
				     h->l1_table_offset);
		if (err)
			goto err_free;
	}

	img->slice_size = min_t(u64, QCOW_SLICE_SIZE, h->cluster_size);
	if (!cache_bytes)
		cache_bytes = qcow_default_cache_bytes(h);
	img->cache = qcow_cache_create(l, img->slice_size, cache_bytes);
	if (IS_ERR(img->cache)) {
		err = PTR_ERR(img->cache);
		img->cache = NULL;
		goto err_free;
	}

	l->img = img;
	l->size = h->size;
	return 0;

err_free:
	qcow_image_close(img);
	return err;
}

/**
 * qcow_image_close() - free what qcow_image_open() set up
 * @img: image (may be NULL)
 */
void qcow_image_close(struct qcow_image *img)
{
	if (!img)
		return;
	qcow_image_close_rw(img);
	qcow_decompress_free(img);
	qcow_cache_destroy(img->cache);
	kvfree(img->l1);
	kvfree(img->qi);
	mutex_destroy(&img->epoch_mutex);
	mutex_destroy(&img->hdr_lock);
	mutex_destroy(&img->meta_lock);
	mutex_destroy(&img->decomp_lock);
	kfree(img);
}

/* A host range that data or a table may not occupy. */
static bool qcow_host_range_bad(struct qcow_image *img, u64 start, u64 len,
				const char *what, u64 guest)
{
	const struct qcow2_region *r;

	r = qcow2_region_find(img->regions, img->nr_regions, start, len);
	if (!r)
		return false;
	qcow_image_corrupt(img, "%s for guest offset 0x%llx at 0x%llx overlaps the %s",
			   what, guest, start, r->what);
	return true;
}

static bool qcow_same_kind(const struct qcow2_header *h,
			   enum qcow2_subcluster_type t,
			   const struct qcow2_l2e *prev, const struct qcow2_l2e *e)
{
	if (qcow2_l2e_subcluster_type(h, e, 0) != t)
		return false;
	switch (t) {
	case QCOW2_SUBCLUSTER_NORMAL:
		return e->host_offset == prev->host_offset + h->cluster_size &&
			e->copied == prev->copied;
	case QCOW2_SUBCLUSTER_COMPRESSED:
	case QCOW2_SUBCLUSTER_INVALID:
		return false;
	default:
		return true;
	}
}

/* Read one L2 entry of a cached slice, never half of an update. */
static void qcow_l2_read(struct qcow_image *img, const void *slice, u32 idx,
			 u64 *word, u64 *bitmap)
{
	unsigned int seq;

	do {
		seq = read_seqcount_begin(&img->l2_seq);
		qcow2_l2_get(img->hdr, slice, idx, word, bitmap);
	} while (read_seqcount_retry(&img->l2_seq, seq));
}

/**
 * qcow_l2_slice() - reference the cached L2 slice holding a guest offset
 * @img: image
 * @l2off: file offset of the L2 table
 * @pos: guest offset
 * @idx: set to @pos's entry index in the slice
 * @nowait: only if it is cached: nothing is read (the request dispatcher)
 *
 * Return: the entry (release with qcow_cache_put()), or an ERR_PTR as from
 * qcow_cache_get(), or ERR_PTR(-EAGAIN) with @nowait on a miss.
 */
struct qcow_cache_entry *qcow_l2_slice(struct qcow_image *img, u64 l2off,
				       u64 pos, u32 *idx, bool nowait)
{
	const struct qcow2_header *h = img->hdr;
	u32 eps = img->slice_size / h->l2_entry_size;
	u32 l2i = qcow2_l2_index(h, pos);
	u64 off = l2off + (u64)(l2i / eps) * img->slice_size;

	*idx = l2i % eps;
	return nowait ? qcow_cache_get_cached(img->cache, off) :
			qcow_cache_get(img->cache, off);
}

static int qcow_map_common(struct qcow_image *img, u64 pos, u64 len,
			   struct qcow_extent *ext, bool nowait)
{
	const struct qcow2_header *h = img->hdr;
	u32 eps = img->slice_size / h->l2_entry_size;
	u32 nsc = 1U << (h->cluster_bits - h->subcluster_bits);
	u64 l1i = qcow2_l1_index(h, pos);
	u64 in_cluster = qcow2_offset_in_cluster(h, pos);
	struct qcow_cache_entry *ce;
	struct qcow2_l2e e, prev;
	u64 file_size, l2off, word, bitmap, bytes, span, l1e;
	u32 idx, sc, run;
	enum qcow2_subcluster_type t;
	const void *slice;
	bool copied;

	memset(ext, 0, sizeof(*ext));
	span = 1ULL << (h->cluster_bits + h->l2_bits);
	if (l1i >= h->l1_size) {
		ext->type = QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN;
		ext->len = min(len, span - (pos & (span - 1)));
		return 0;
	}
	/*
	 * The file size is read after the entry: a writer grows it when it
	 * allocates, before it publishes an entry pointing there (release in
	 * qcow_l1_set(), the l2_seq write section for L2 entries), so a new
	 * entry is never judged against an older, smaller file.
	 */
	l1e = be64_to_cpu(smp_load_acquire(&img->l1[l1i]));
	file_size = READ_ONCE(img->file_size);
	if (qcow2_l1e_decode(h, l1e, file_size, &l2off, &copied)) {
		qcow_image_corrupt(img, "L1 entry %llu (0x%llx) is invalid", l1i,
				   l1e);
		return -EIO;
	}
	if (!l2off) {
		ext->type = QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN;
		ext->len = min(len, span - (pos & (span - 1)));
		return 0;
	}
	if (qcow_host_range_bad(img, l2off, h->cluster_size, "L2 table", pos))
		return -EIO;

	ce = qcow_l2_slice(img, l2off, pos, &idx, nowait);
	if (IS_ERR(ce))
		return PTR_ERR(ce);
	slice = qcow_cache_data(ce);

	qcow_l2_read(img, slice, idx, &word, &bitmap);
	file_size = READ_ONCE(img->file_size);	/* after the entry, see above */
	if (qcow2_l2e_decode(h, word, bitmap, file_size, &e)) {
		qcow_image_corrupt(img, "invalid L2 entry 0x%llx/0x%llx for guest 0x%llx",
				   word, bitmap, pos);
		goto err_io;
	}
	sc = qcow2_subcluster_index(h, pos);
	t = qcow2_l2e_subcluster_type(h, &e, sc);
	if (t == QCOW2_SUBCLUSTER_INVALID) {
		qcow_image_corrupt(img, "invalid subcluster %u in L2 entry for guest 0x%llx",
				   sc, pos);
		goto err_io;
	}
	if (t == QCOW2_SUBCLUSTER_NORMAL &&
	    qcow_host_range_bad(img, e.host_offset, h->cluster_size,
				"data cluster", pos))
		goto err_io;
	if (t == QCOW2_SUBCLUSTER_COMPRESSED &&
	    qcow_host_range_bad(img, e.comp_offset, e.comp_len,
				"compressed cluster", pos))
		goto err_io;

	ext->type = t;
	ext->copied = e.copied;
	ext->host = e.host_offset + in_cluster;
	ext->comp_offset = e.comp_offset;
	ext->comp_len = e.comp_len;
	if (t == QCOW2_SUBCLUSTER_COMPRESSED) {
		/* Compressed clusters have no subclusters: one whole cluster. */
		ext->len = min(h->cluster_size - in_cluster, len);
		qcow_cache_put(img->cache, ce);
		return 0;
	}
	run = qcow2_l2e_subcluster_run(h, &e, sc);
	bytes = ((u64)(sc + run) << h->subcluster_bits) - in_cluster;

	/* Extend over following clusters of the same kind in this slice. */
	while (bytes < len && sc + run == nsc && ++idx < eps) {
		prev = e;
		qcow_l2_read(img, slice, idx, &word, &bitmap);
		file_size = READ_ONCE(img->file_size);
		if (qcow2_l2e_decode(h, word, bitmap, file_size, &e) ||
		    !qcow_same_kind(h, t, &prev, &e))
			break;
		if (t == QCOW2_SUBCLUSTER_NORMAL &&
		    qcow2_region_find(img->regions, img->nr_regions,
				      e.host_offset, h->cluster_size))
			break;	/* reported when the next map starts there */
		sc = 0;
		run = qcow2_l2e_subcluster_run(h, &e, 0);
		bytes += (u64)run << h->subcluster_bits;
	}
	ext->len = min(bytes, len);
	qcow_cache_put(img->cache, ce);
	return 0;

err_io:
	qcow_cache_put(img->cache, ce);
	return -EIO;
}

/**
 * qcow_map() - translate the start of a guest range
 * @img: image
 * @pos: guest offset, below the virtual size
 * @len: bytes wanted (> 0)
 * @ext: the extent found; @ext->len is in 1..@len
 *
 * Runs of NORMAL clusters are merged while their host clusters are
 * contiguous, within one cached slice, so a large read becomes one I/O.
 * May sleep: a slice missing from the cache is read.
 *
 * Return: 0, -EIO on a corrupt entry or a failed table read, -ENOMEM.
 */
int qcow_map(struct qcow_image *img, u64 pos, u64 len, struct qcow_extent *ext)
{
	return qcow_map_common(img, pos, len, ext, false);
}

/**
 * qcow_map_nowait() - qcow_map() without reading a missing slice
 * @img: image
 * @pos: guest offset, below the virtual size
 * @len: bytes wanted (> 0)
 * @ext: the extent found; @ext->len is in 1..@len
 *
 * For the request dispatcher, which must not wait for I/O.  Does not
 * sleep, except to set the corrupt bit once when it finds corruption.
 *
 * Return: as qcow_map(), or -EAGAIN when the slice is not in the cache
 * (nothing is loaded: use qcow_map()).
 */
int qcow_map_nowait(struct qcow_image *img, u64 pos, u64 len,
		    struct qcow_extent *ext)
{
	return qcow_map_common(img, pos, len, ext, true);
}
