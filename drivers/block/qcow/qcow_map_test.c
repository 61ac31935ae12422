// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for the mapping layer (qcow_map.c), the read path
 * (qcow_read.c) and the L2 slice cache (qcow_cache.c).
 *
 * Images are built in memory by the small qcow2 writer below and reach the
 * driver through struct qcow_layer_ops, so no struct file is involved
 * (log lines name the file "(null)").  The writer lays an image out as
 *
 *   cluster 0      header (version 2 or 3, optional extended L2 entries,
 *                  optional zstd compression type), no extensions
 *   cluster 1      refcount table (one cluster)
 *   cluster 2..    L1 table
 *   then           L2 tables and data clusters in order of allocation,
 *                  compressed clusters packed at byte granularity, and
 *                  finally the refcount blocks (every cluster: refcount 1)
 *
 * and keeps its own model of what it wrote: one record per guest cluster.
 * Every answer of qcow_map() and every byte of qcow_layer_read() is checked
 * against that model.  Data clusters hold a pattern derived from the
 * layer's seed and the guest offset, so a byte read from the wrong host
 * offset, the wrong layer, or instead of zeros is told apart.  Compressed
 * clusters are written as deflate "stored" blocks or zstd raw blocks: valid
 * streams the kernel's decompressors accept, built without a compressor.
 *
 * Suites:
 *   qcow_map    translation against the model for every geometry, merging
 *               of runs, reads through a backing chain, corrupt L1/L2
 *               entries
 *   qcow_cache  the slice cache under a tiny budget: eviction, LRU order,
 *               references held past the budget, read errors, header
 *               validation at open, concurrent readers
 */
#include <kunit/test.h>
#include <linux/completion.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/prandom.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <linux/uio.h>
#include <linux/vmalloc.h>
#include <linux/xarray.h>
#include <asm/unaligned.h>

#include "qcow_main.h"

#define QMT_SEED		0x716d6170ULL	/* "qmap" */
#define QMT_TOP_SEED		0x746f70ULL
#define QMT_BACKING_SEED	0x6261636bULL
#define QMT_CHUNK		(256U << 10)	/* bytes per qcow_layer_read() */
#define QMT_MAX_OFFS		64
#define QMT_MAX_CLUSTERS	256
#define QMT_MAX_DISKS		4

enum qmt_comp {
	QMT_COMP_NONE,		/* no compressed clusters */
	QMT_COMP_DEFLATE,	/* deflate stored blocks */
	QMT_COMP_ZSTD,		/* zstd raw blocks, compression_type 1 */
};

/**
 * struct qmt_geo - geometry of a test image
 * @name: parameter name
 * @version: 2 or 3
 * @cluster_bits: 9..21
 * @ext: extended L2 entries
 * @comp: whether (and how) compressed clusters are written
 * @size: virtual size
 */
struct qmt_geo {
	const char *name;
	u32 version;
	u32 cluster_bits;
	bool ext;
	enum qmt_comp comp;
	u64 size;
};

/*
 * Model of one guest cluster.  Standard L2 entries use bit 0 of the
 * bitmaps for the whole cluster.  A cluster with @host and neither bit set
 * exists only with extended L2 (host cluster allocated, subcluster not).
 */
struct qmt_cl {
	u64 host;
	u32 alloc;
	u32 zero;
	bool compressed;
	u64 comp_off;
	u64 comp_len;
};

/**
 * struct qmt_disk - one in-memory layer and the model of its contents
 * @l: the layer handed to the driver
 * @buf: file contents
 * @len: file size
 * @cap: bytes allocated at @buf
 * @fail_start: reads touching [@fail_start, +@fail_len) fail with -EIO
 * @fail_len: 0 for none
 * @slow: sleep in every read, so concurrent readers interleave
 * @reads: reads done
 * @inflight: reads in progress
 * @max_inflight: most reads seen in progress at once
 * @seed: data pattern seed of this layer
 * @qcow2: a qcow2 image (else raw: @len bytes of pattern)
 * @version: qcow2 version
 * @cluster_bits: log2 cluster size
 * @ext: extended L2 entries
 * @comp: compressed clusters this image may hold
 * @size: virtual size
 * @cs: cluster size
 * @sc_bits: log2 subcluster size (@cluster_bits without extended L2)
 * @sc_size: subcluster size
 * @entry_size: bytes per L2 entry, 8 or 16
 * @l2_entries: entries per L2 table
 * @span_bits: log2 of @span
 * @span: guest bytes one L2 table maps
 * @slice_span: guest bytes one cache slice maps
 * @l1_size: L1 entries
 * @l1_off: L1 table offset
 * @rt_off: refcount table offset
 * @map: guest cluster index -> struct qmt_cl
 * @l2_off: L2 table offset per L1 entry, 0 when not allocated
 * @backing: the model of the next layer down
 */
struct qmt_disk {
	struct qcow_layer l;
	u8 *buf;
	u64 len;
	u64 cap;
	u64 fail_start;
	u64 fail_len;
	bool slow;
	atomic_t reads;
	atomic_t inflight;
	int max_inflight;
	u64 seed;

	bool qcow2;
	u32 version;
	u32 cluster_bits;
	bool ext;
	enum qmt_comp comp;
	u64 size;
	u64 cs;
	u32 sc_bits;
	u64 sc_size;
	u32 entry_size;
	u64 l2_entries;
	u32 span_bits;
	u64 span;
	u64 slice_span;
	u32 l1_size;
	u64 l1_off;
	u64 rt_off;
	struct xarray map;
	u64 *l2_off;
	struct qmt_disk *backing;
};

struct qmt_ctx {
	struct qmt_disk *disks[QMT_MAX_DISKS];
	unsigned int nr;
};

/* --- the in-memory file -------------------------------------------------- */

static int qmt_read_iter(struct qcow_layer *l, struct iov_iter *iter,
			 size_t len, loff_t pos)
{
	struct qmt_disk *d = l->priv;
	size_t n = 0;

	atomic_inc(&d->reads);
	if (d->slow) {
		/* One CPU, no preemption: only a sleeping read lets others in. */
		n = atomic_inc_return(&d->inflight);
		WRITE_ONCE(d->max_inflight, max_t(int, n, d->max_inflight));
		usleep_range(20, 60);
		atomic_dec(&d->inflight);
		n = 0;
	}
	if (qcow2_ranges_overlap(pos, len, d->fail_start, d->fail_len))
		return -EIO;
	if (pos < d->len)
		n = min_t(u64, len, d->len - pos);
	if (copy_to_iter(d->buf + pos, n, iter) != n)
		return -EIO;
	/* The contract: bytes past the end of the file read as zeros. */
	if (iov_iter_zero(len - n, iter) != len - n)
		return -EIO;
	return 0;
}

static u64 qmt_size(struct qcow_layer *l)
{
	struct qmt_disk *d = l->priv;

	return d->len;
}

static const struct qcow_layer_ops qmt_layer_ops = {
	.read_iter	= qmt_read_iter,
	.size		= qmt_size,
};

/* Byte @off of the pattern @seed: a multiplicative hash of its 8-byte word. */
static u8 qmt_byte(u64 seed, u64 off)
{
	u64 x = (seed ^ (off >> 3)) * 0x9e3779b97f4a7c15ULL;

	x ^= x >> 29;
	return x >> (8 * (off & 7));
}

static void qmt_fill(u64 seed, u64 off, u8 *buf, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		buf[i] = qmt_byte(seed, off + i);
}

static u64 qmt_rand(struct rnd_state *rs, u64 n)
{
	u64 r = ((u64)prandom_u32_state(rs) << 32) | prandom_u32_state(rs);
	u64 rem;

	div64_u64_rem(r, n, &rem);
	return rem;
}

static int qmt_grow(struct qmt_disk *d, u64 len)
{
	u64 cap;
	u8 *buf;

	if (len > d->cap) {
		cap = max(len, 2 * d->cap);
		buf = kvzalloc(cap, GFP_KERNEL);
		if (!buf)
			return -ENOMEM;
		if (d->buf)
			memcpy(buf, d->buf, d->len);
		kvfree(d->buf);
		d->buf = buf;
		d->cap = cap;
	}
	d->len = max(d->len, len);
	return 0;
}

static void qmt_disk_free(struct qmt_disk *d)
{
	struct qmt_cl *c;
	unsigned long i;

	if (d->l.img)
		qcow_image_close(d->l.img);
	xa_for_each(&d->map, i, c)
		kfree(c);
	xa_destroy(&d->map);
	kfree(d->l2_off);
	kvfree(d->buf);
	kfree(d);
}

static struct qmt_disk *qmt_disk_new(struct kunit *test, u64 seed)
{
	struct qmt_ctx *ctx = test->priv;
	struct qmt_disk *d;

	KUNIT_ASSERT_LT(test, ctx->nr, QMT_MAX_DISKS);
	d = kzalloc(sizeof(*d), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, d);
	ctx->disks[ctx->nr++] = d;
	xa_init(&d->map);
	atomic_set(&d->reads, 0);
	d->seed = seed;
	d->l.ops = &qmt_layer_ops;
	d->l.priv = d;
	return d;
}

/* A raw layer of @len bytes of pattern. */
static struct qmt_disk *qmt_raw(struct kunit *test, u64 len, u64 seed)
{
	struct qmt_disk *d = qmt_disk_new(test, seed);

	KUNIT_ASSERT_EQ(test, qmt_grow(d, max_t(u64, len, 1)), 0);
	d->len = len;
	qmt_fill(seed, 0, d->buf, len);
	d->l.format = QCOW_FMT_RAW;
	d->l.size = len;
	return d;
}

/* --- the qcow2 writer ------------------------------------------------------ */

static u64 qmt_alloc(struct kunit *test, struct qmt_disk *d)
{
	u64 off = round_up(d->len, d->cs);

	KUNIT_ASSERT_EQ(test, qmt_grow(d, off + d->cs), 0);
	return off;
}

/* Header fields at the offsets the specification gives. */
static void qmt_write_header(struct qmt_disk *d)
{
	u8 *h = d->buf;
	u64 incompat = 0;

	memset(h, 0, 112);
	put_unaligned_be32(QCOW2_MAGIC, h + 0);
	put_unaligned_be32(d->version, h + 4);
	put_unaligned_be32(d->cluster_bits, h + 20);
	put_unaligned_be64(d->size, h + 24);
	put_unaligned_be32(d->l1_size, h + 36);
	put_unaligned_be64(d->l1_off, h + 40);
	put_unaligned_be64(d->rt_off, h + 48);
	put_unaligned_be32(1, h + 56);		/* refcount_table_clusters */
	if (d->version < 3)
		return;
	if (d->ext)
		incompat |= QCOW2_INCOMPAT_EXTL2;
	if (d->comp == QMT_COMP_ZSTD) {
		incompat |= QCOW2_INCOMPAT_COMPRESSION;
		h[104] = QCOW2_COMPRESSION_ZSTD;
	}
	put_unaligned_be64(incompat, h + 72);
	put_unaligned_be32(4, h + 96);		/* refcount_order: 16 bits */
	put_unaligned_be32(112, h + 100);	/* header_length */
	/* The end-of-extensions marker at 112 is the zeroed buffer. */
}

static struct qmt_disk *qmt_qcow2(struct kunit *test, const struct qmt_geo *g,
				  u64 seed)
{
	struct qmt_disk *d = qmt_disk_new(test, seed);
	u64 l1_bytes;

	KUNIT_ASSERT_TRUE(test, g->version == 3 || g->comp != QMT_COMP_ZSTD);
	d->qcow2 = true;
	d->version = g->version;
	d->cluster_bits = g->cluster_bits;
	d->ext = g->ext;
	d->comp = g->comp;
	d->size = g->size;
	d->cs = 1ULL << g->cluster_bits;
	d->entry_size = g->ext ? 16 : 8;
	d->l2_entries = d->cs / d->entry_size;
	d->sc_bits = g->cluster_bits - (g->ext ? 5 : 0);
	d->sc_size = 1ULL << d->sc_bits;
	d->span_bits = 2 * g->cluster_bits - (g->ext ? 4 : 3);
	d->span = 1ULL << d->span_bits;
	/* The driver caches L2 tables in slices of min(4 KiB, cluster). */
	d->slice_span = min_t(u64, d->cs, QCOW_SLICE_SIZE) / d->entry_size * d->cs;
	d->l1_size = DIV64_U64_ROUND_UP(g->size, d->span);
	d->l2_off = kcalloc(max_t(u32, d->l1_size, 1), sizeof(u64), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, d->l2_off);
	d->l.format = QCOW_FMT_QCOW2;

	qmt_alloc(test, d);			/* header */
	d->rt_off = qmt_alloc(test, d);
	d->l1_off = qmt_alloc(test, d);
	l1_bytes = (u64)d->l1_size * sizeof(u64);
	while (d->len < d->l1_off + l1_bytes)
		qmt_alloc(test, d);
	qmt_write_header(d);
	return d;
}

static u64 qmt_l2(struct kunit *test, struct qmt_disk *d, u64 l1i)
{
	KUNIT_ASSERT_LT(test, l1i, (u64)d->l1_size);
	if (!d->l2_off[l1i]) {
		d->l2_off[l1i] = qmt_alloc(test, d);
		put_unaligned_be64(d->l2_off[l1i] | QCOW2_OFLAG_COPIED,
				   d->buf + d->l1_off + l1i * sizeof(u64));
	}
	return d->l2_off[l1i];
}

static void qmt_model(struct kunit *test, struct qmt_disk *d, u64 gcl,
		      const struct qmt_cl *val)
{
	struct qmt_cl *c = kmemdup(val, sizeof(*val), GFP_KERNEL);
	void *old;

	KUNIT_ASSERT_NOT_NULL(test, c);
	old = xa_store(&d->map, gcl, c, GFP_KERNEL);
	if (xa_is_err(old)) {
		kfree(c);
		KUNIT_ASSERT_FAILURE(test, "xa_store: %d", xa_err(old));
	}
	kfree(old);
}

/* Byte offset of the L2 entry of guest cluster @gcl (allocating its table). */
static u64 qmt_entry(struct kunit *test, struct qmt_disk *d, u64 gcl)
{
	u64 l2 = qmt_l2(test, d, gcl / d->l2_entries);

	return l2 + (gcl % d->l2_entries) * d->entry_size;
}

/*
 * Map guest cluster @gcl: @host 0 or a host cluster; @alloc / @zero are
 * the subcluster bitmaps (bit 0 is the whole cluster with standard L2).
 */
static void qmt_set(struct kunit *test, struct qmt_disk *d, u64 gcl, u64 host,
		    u32 alloc, u32 zero)
{
	struct qmt_cl c = { .host = host, .alloc = alloc, .zero = zero };
	u64 e = qmt_entry(test, d, gcl);
	u64 word = host ? host | QCOW2_OFLAG_COPIED : 0;

	KUNIT_ASSERT_FALSE(test, alloc & zero);
	if (d->ext) {
		KUNIT_ASSERT_TRUE(test, host || !alloc);
		put_unaligned_be64(word, d->buf + e);
		put_unaligned_be64((u64)zero << 32 | alloc, d->buf + e + 8);
	} else {
		/* Standard entries: NORMAL, ZERO_PLAIN or ZERO_ALLOC only. */
		KUNIT_ASSERT_LE(test, alloc | zero, 1U);
		KUNIT_ASSERT_EQ(test, !!host, !!(alloc | (host && zero)));
		KUNIT_ASSERT_TRUE(test, !zero || d->version >= 3);
		if (zero)
			word |= QCOW2_OFLAG_ZERO;
		put_unaligned_be64(word, d->buf + e);
	}
	qmt_model(test, d, gcl, &c);
}

static u32 qmt_all(const struct qmt_disk *d)
{
	return d->ext ? U32_MAX : 1;
}

/*
 * A host cluster holding the pattern of guest cluster @gcl.  The L2 table
 * comes first, so clusters mapped in a row get contiguous host clusters.
 */
static u64 qmt_data(struct kunit *test, struct qmt_disk *d, u64 gcl)
{
	u64 host;

	qmt_entry(test, d, gcl);
	host = qmt_alloc(test, d);
	qmt_fill(d->seed, gcl << d->cluster_bits, d->buf + host, d->cs);
	return host;
}

static u64 qmt_normal(struct kunit *test, struct qmt_disk *d, u64 gcl)
{
	u64 host = qmt_data(test, d, gcl);

	qmt_set(test, d, gcl, host, qmt_all(d), 0);
	return host;
}

static void qmt_zero(struct kunit *test, struct qmt_disk *d, u64 gcl,
		     bool prealloc)
{
	/* A preallocated zero cluster holds data that must not be read. */
	qmt_set(test, d, gcl, prealloc ? qmt_data(test, d, gcl) : 0, 0,
		qmt_all(d));
}

/* Raw deflate made of stored blocks (BTYPE 00), at most 64 KiB - 1 each. */
static size_t qmt_deflate_stored(u8 *out, const u8 *in, size_t n)
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

/* A single-segment zstd frame of raw blocks (at most 128 KiB each). */
static size_t qmt_zstd_raw(u8 *out, const u8 *in, size_t n)
{
	size_t o = 0, b;
	u32 bh;

	put_unaligned_le32(0xfd2fb528, out);	/* magic */
	out[4] = 0xa0;		/* 4-byte content size, single segment */
	put_unaligned_le32(n, out + 5);
	o = 9;
	do {
		b = min_t(size_t, n, 128U << 10);
		bh = (b << 3) | (b == n);	/* Raw_Block, Last_Block */
		out[o] = bh;
		out[o + 1] = bh >> 8;
		out[o + 2] = bh >> 16;
		o += 3;
		memcpy(out + o, in, b);
		o += b;
		in += b;
		n -= b;
	} while (n);
	return o;
}

/*
 * Guest cluster @gcl as a compressed cluster holding its pattern.  The
 * stream starts @skew bytes into a sector, as compressed clusters are
 * packed at byte granularity.
 */
static void qmt_compressed(struct kunit *test, struct qmt_disk *d, u64 gcl,
			   u32 skew)
{
	struct qmt_cl c = { .compressed = true };
	u32 x = 62 - (d->cluster_bits - 8);
	u64 max_span = 512ULL << (d->cluster_bits - 8);	/* nsect field */
	u64 e = qmt_entry(test, d, gcl);
	u64 off, n, nsect;
	u8 *plain;

	KUNIT_ASSERT_NE(test, d->comp, QMT_COMP_NONE);
	if (d->comp == QMT_COMP_ZSTD)
		n = 9 + d->cs + 3 * DIV64_U64_ROUND_UP(d->cs, 128U << 10);
	else
		n = d->cs + 5 * DIV64_U64_ROUND_UP(d->cs, 65535);
	KUNIT_ASSERT_LE(test, n, max_span);
	off = round_up(d->len, 512) + skew % min_t(u64, 512, max_span - n + 1);
	KUNIT_ASSERT_EQ(test, qmt_grow(d, off + n), 0);
	plain = kvmalloc(d->cs, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, plain);
	qmt_fill(d->seed, gcl << d->cluster_bits, plain, d->cs);
	if (d->comp == QMT_COMP_ZSTD)
		n = qmt_zstd_raw(d->buf + off, plain, d->cs);
	else
		n = qmt_deflate_stored(d->buf + off, plain, d->cs);
	kvfree(plain);
	KUNIT_ASSERT_EQ(test, d->len, off + n);

	nsect = DIV64_U64_ROUND_UP((off & 511) + n, 512) - 1;
	KUNIT_ASSERT_LT(test, nsect, 1ULL << (d->cluster_bits - 8));
	put_unaligned_be64(QCOW2_OFLAG_COMPRESSED | nsect << x | off,
			   d->buf + e);
	if (d->ext)
		put_unaligned_be64(0, d->buf + e + 8);
	c.comp_off = off;
	c.comp_len = (nsect + 1) * 512 - (off & 511);
	qmt_model(test, d, gcl, &c);
}

/* Refcount blocks at the end of the file: every cluster has refcount 1. */
static void qmt_finish(struct kunit *test, struct qmt_disk *d)
{
	u64 per_block = d->cs / 2;	/* refcount_order 4 */
	u64 nr, blocks, i, rb;

	nr = DIV64_U64_ROUND_UP(d->len, d->cs);
	blocks = DIV64_U64_ROUND_UP(nr, per_block);
	while (DIV64_U64_ROUND_UP(nr + blocks, per_block) > blocks)
		blocks++;
	KUNIT_ASSERT_LE(test, blocks, d->cs / sizeof(u64));
	for (i = 0; i < blocks; i++) {
		rb = qmt_alloc(test, d);	/* may move d->buf */
		put_unaligned_be64(rb, d->buf + d->rt_off + i * sizeof(u64));
	}
	nr = d->len >> d->cluster_bits;
	for (i = 0; i < nr; i++) {
		rb = get_unaligned_be64(d->buf + d->rt_off +
					i / per_block * sizeof(u64));
		put_unaligned_be16(1, d->buf + rb + i % per_block * 2);
	}
}

static int qmt_open(struct qmt_disk *d, u64 cache_bytes)
{
	return qcow_image_open(&d->l, cache_bytes);
}

static void qmt_link(struct qmt_disk *top, struct qmt_disk *backing)
{
	top->backing = backing;
	top->l.backing = &backing->l;
	backing->l.depth = top->l.depth + 1;
}

/* --- the model --------------------------------------------------------------- */

static enum qcow2_subcluster_type qmt_type(struct qmt_disk *d, u64 g,
					   u64 *host)
{
	const struct qmt_cl *c = xa_load(&d->map, g >> d->cluster_bits);
	u64 in_cluster = g & (d->cs - 1);
	u32 bit;

	*host = 0;
	if (!c)
		return QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN;
	if (c->compressed)
		return QCOW2_SUBCLUSTER_COMPRESSED;
	bit = BIT(in_cluster >> d->sc_bits);
	if (!c->host)
		return (c->zero & bit) ? QCOW2_SUBCLUSTER_ZERO_PLAIN :
					 QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN;
	*host = c->host + in_cluster;
	if (c->alloc & bit)
		return QCOW2_SUBCLUSTER_NORMAL;
	return (c->zero & bit) ? QCOW2_SUBCLUSTER_ZERO_ALLOC :
				 QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC;
}

/*
 * What qcow_map() must answer: the run of like subclusters from @pos,
 * NORMAL ones host-contiguous, compressed clusters one at a time, not
 * past the cache slice holding the first entry (qcow_map.c merges within
 * one slice), and the rest of the L2 table's span when it has no table.
 */
static void qmt_model_map(struct qmt_disk *d, u64 pos, u64 len,
			  struct qcow_extent *x)
{
	enum qcow2_subcluster_type t;
	const struct qmt_cl *c;
	u64 host, h, end, limit;

	memset(x, 0, sizeof(*x));
	if (!d->l2_off[pos >> d->span_bits]) {
		x->type = QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN;
		x->len = min(len, d->span - (pos & (d->span - 1)));
		return;
	}
	t = qmt_type(d, pos, &host);
	x->type = t;
	x->host = host;
	if (t == QCOW2_SUBCLUSTER_COMPRESSED) {
		c = xa_load(&d->map, pos >> d->cluster_bits);
		x->comp_offset = c->comp_off;
		x->comp_len = c->comp_len;
		x->len = min(len, d->cs - (pos & (d->cs - 1)));
		return;
	}
	limit = min(pos + len, round_down(pos, d->slice_span) + d->slice_span);
	end = round_down(pos, d->sc_size) + d->sc_size;
	while (end < limit && qmt_type(d, end, &h) == t &&
	       (t != QCOW2_SUBCLUSTER_NORMAL || h == host + (end - pos)))
		end += d->sc_size;
	x->len = min(end - pos, len);
}

/* The bytes a read of @d at guest offset @g must return. */
static void qmt_expect(struct qmt_disk *d, u64 g, u8 *buf, size_t n)
{
	enum qcow2_subcluster_type t;
	size_t c;
	u64 host;

	if (!d->qcow2) {
		c = g < d->len ? min_t(u64, n, d->len - g) : 0;
		qmt_fill(d->seed, g, buf, c);
		memset(buf + c, 0, n - c);
		return;
	}
	while (n) {
		if (g >= d->size) {
			memset(buf, 0, n);
			return;
		}
		c = min_t(u64, n, d->sc_size - (g & (d->sc_size - 1)));
		c = min_t(u64, c, d->size - g);
		t = qmt_type(d, g, &host);
		if (t == QCOW2_SUBCLUSTER_NORMAL ||
		    t == QCOW2_SUBCLUSTER_COMPRESSED)
			qmt_fill(d->seed, g, buf, c);
		else if ((t == QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN ||
			  t == QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC) && d->backing)
			qmt_expect(d->backing, g, buf, c);
		else
			memset(buf, 0, c);
		g += c;
		buf += c;
		n -= c;
	}
}

/*
 * Read [@pos, +@n) of @d through qcow_layer_read() into @got and compare
 * with the model.  Return: 0, the read's error, or 1 on a mismatch
 * (first differing offset in @bad).
 */
static int qmt_read_cmp(struct qmt_disk *d, u64 pos, size_t n, u8 *got,
			u8 *want, u64 *bad)
{
	struct kvec kv = { .iov_base = got, .iov_len = n };
	struct iov_iter iter;
	size_t i;
	int err;

	memset(got, 0xa5, n);
	iov_iter_kvec(&iter, READ, &kv, 1, n);
	err = qcow_layer_read(&d->l, pos, &iter, n);
	if (err)
		return err;
	if (iov_iter_count(&iter)) {
		*bad = pos + n - iov_iter_count(&iter);
		return 1;
	}
	qmt_expect(d, pos, want, n);
	if (!memcmp(got, want, n))
		return 0;
	for (i = 0; i < n && got[i] == want[i]; i++)
		;
	*bad = pos + i;
	return 1;
}

static bool qmt_check_read(struct kunit *test, struct qmt_disk *d, u64 pos,
			   size_t n, u8 *got, u8 *want)
{
	u64 bad = 0;
	int ret = qmt_read_cmp(d, pos, n, got, want, &bad);

	if (ret < 0)
		KUNIT_FAIL(test, "read(0x%llx, 0x%zx): error %d", pos, n, ret);
	else if (ret)
		KUNIT_FAIL(test, "read(0x%llx, 0x%zx): byte 0x%llx is 0x%02x, expected 0x%02x",
			   pos, n, bad, got[bad - pos], want[bad - pos]);
	return !ret;
}

static int qmt_read_err(struct qmt_disk *d, u64 pos, size_t n, u8 *buf)
{
	struct kvec kv = { .iov_base = buf, .iov_len = n };
	struct iov_iter iter;

	iov_iter_kvec(&iter, READ, &kv, 1, n);
	return qcow_layer_read(&d->l, pos, &iter, n);
}

static bool qmt_check_map(struct kunit *test, struct qmt_disk *d, u64 pos,
			  u64 len, struct qcow_extent *out)
{
	struct qcow_extent got, want;
	int err;

	err = qcow_map(d->l.img, pos, len, &got);
	qmt_model_map(d, pos, len, &want);
	if (err || got.type != want.type || got.len != want.len ||
	    (want.type == QCOW2_SUBCLUSTER_NORMAL && got.host != want.host) ||
	    (want.type == QCOW2_SUBCLUSTER_COMPRESSED &&
	     (got.comp_offset != want.comp_offset ||
	      got.comp_len != want.comp_len))) {
		KUNIT_FAIL(test,
			   "map(0x%llx, 0x%llx): err %d type %d len 0x%llx host 0x%llx comp 0x%llx+0x%llx; expected type %d len 0x%llx host 0x%llx comp 0x%llx+0x%llx",
			   pos, len, err, got.type, got.len, got.host,
			   got.comp_offset, got.comp_len, want.type, want.len,
			   want.host, want.comp_offset, want.comp_len);
		return false;
	}
	if (out)
		*out = got;
	return true;
}

/* --- layouts ------------------------------------------------------------------ */

/*
 * Offsets worth translating: cluster, subcluster, slice and L2 table
 * boundaries, the last sector, plus @nr_random seeded ones.
 */
static unsigned int qmt_offsets(struct qmt_disk *d, struct rnd_state *rs,
				u64 *o, unsigned int nr_random)
{
	u64 cs = d->cs, sc = d->sc_size, sl = d->slice_span, sp = d->span;
	const u64 cand[] = {
		0, 512, sc - 1, sc, 5 * sc + 7, cs / 2, cs - 512, cs - 1, cs,
		cs + 1, 3 * cs + 2 * sc + 100,
		sl - cs, sl - 1, sl, sl + cs, 2 * sl - 1, 2 * sl,
		sp - cs, sp - 1, sp, sp + sc, sp + sl,
		d->size - cs, d->size - 512, d->size - 1,
	};
	unsigned int i, n = 0;

	for (i = 0; i < ARRAY_SIZE(cand); i++)
		if (cand[i] < d->size && n < QMT_MAX_OFFS)
			o[n++] = cand[i];
	for (i = 0; i < nr_random && n < QMT_MAX_OFFS; i++)
		o[n++] = qmt_rand(rs, d->size);
	return n;
}

static int qmt_cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* Subcluster bitmaps in runs: allocated (with a host), zero, or neither. */
static void qmt_bitmaps(struct rnd_state *rs, bool host, u32 *alloc, u32 *zero)
{
	unsigned int sc, state = prandom_u32_state(rs) % 3;

	*alloc = 0;
	*zero = 0;
	for (sc = 0; sc < QCOW2_SUBCLUSTERS; sc++) {
		if (!(prandom_u32_state(rs) % 6))
			state = prandom_u32_state(rs) % 3;
		if (state == 0 && host)
			*alloc |= BIT(sc);
		else if (state == 1)
			*zero |= BIT(sc);
	}
}

static void qmt_random_entry(struct kunit *test, struct qmt_disk *d, u64 gcl,
			     struct rnd_state *rs)
{
	u32 r = prandom_u32_state(rs) % 16, alloc, zero;
	u64 host;

	if (r < 3)
		return;				/* unallocated */
	if (r < 5 && d->comp != QMT_COMP_NONE) {
		qmt_compressed(test, d, gcl, prandom_u32_state(rs));
		return;
	}
	if (!d->ext) {
		if (r < 7 && d->version >= 3)
			qmt_zero(test, d, gcl, r & 1);
		else
			qmt_normal(test, d, gcl);
		return;
	}
	if (r < 7) {
		qmt_bitmaps(rs, false, &alloc, &zero);
		qmt_set(test, d, gcl, 0, 0, zero);
	} else if (r < 12) {
		qmt_normal(test, d, gcl);
	} else {
		host = qmt_data(test, d, gcl);
		qmt_bitmaps(rs, true, &alloc, &zero);
		qmt_set(test, d, gcl, host, alloc, zero);
	}
}

/*
 * Map the guest clusters around @offs and @nr_random more, in increasing
 * order, so neighbours usually get contiguous host clusters; now and then
 * an unused host cluster breaks the contiguity.
 */
static void qmt_populate(struct kunit *test, struct qmt_disk *d,
			 struct rnd_state *rs, const u64 *offs, unsigned int n,
			 unsigned int nr_random)
{
	u64 nr_cl = DIV64_U64_ROUND_UP(d->size, d->cs);
	int j, spread = d->cluster_bits >= 21 ? 0 : 1;	/* memory */
	unsigned int i, k = 0;
	u64 *gcl, g;

	gcl = kunit_kmalloc_array(test, QMT_MAX_CLUSTERS, sizeof(*gcl),
				  GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, gcl);
	for (i = 0; i < n; i++)
		for (j = -spread; j <= spread; j++) {
			g = (offs[i] >> d->cluster_bits) + j;
			if (g < nr_cl && k < QMT_MAX_CLUSTERS)
				gcl[k++] = g;
		}
	for (i = 0; i < nr_random && k < QMT_MAX_CLUSTERS; i++)
		gcl[k++] = qmt_rand(rs, nr_cl);
	sort(gcl, k, sizeof(*gcl), qmt_cmp_u64, NULL);
	for (i = 0; i < k; i++) {
		if (i && gcl[i] == gcl[i - 1])
			continue;
		if (!(prandom_u32_state(rs) % 4))
			qmt_alloc(test, d);
		qmt_random_entry(test, d, gcl[i], rs);
	}
	kunit_kfree(test, gcl);
}

static u64 qmt_geo_seed(const struct qmt_geo *g)
{
	return QMT_SEED ^ g->cluster_bits ^ (u64)g->version << 8 ^
		(u64)g->ext << 12 ^ (u64)g->comp << 16 ^ g->size << 20;
}

/* --- qcow_map: translation ------------------------------------------------- */

#define KIB(x)	((u64)(x) << 10)
#define MIB(x)	((u64)(x) << 20)
#define GIB(x)	((u64)(x) << 30)

/*
 * Sizes span at least two L2 tables (or, for big clusters, two cache
 * slices and the next L2 table) and end off a cluster boundary.  Only the
 * clusters the test maps take memory.
 */
static const struct qmt_geo qmt_map_geos[] = {
	{ "512_v2",	2,  9, false, QMT_COMP_DEFLATE, KIB(8 * 32) + 1536 },
	{ "512_v3",	3,  9, false, QMT_COMP_ZSTD,	KIB(8 * 32) + 1536 },
	{ "4k_v2",	2, 12, false, QMT_COMP_NONE,	MIB(6) + 4608 },
	{ "4k_v3",	3, 12, false, QMT_COMP_DEFLATE, MIB(6) + 4608 },
	{ "16k_v3_ext",	3, 14, true,  QMT_COMP_ZSTD,	MIB(36) + 512 },
	{ "64k_v2",	2, 16, false, QMT_COMP_DEFLATE, MIB(512 + 96) + 512 },
	{ "64k_v3",	3, 16, false, QMT_COMP_NONE,	MIB(512 + 96) + 512 },
	{ "64k_v3_ext",	3, 16, true,  QMT_COMP_DEFLATE, MIB(256 + 64) + 512 },
	{ "2m_v2",	2, 21, false, QMT_COMP_NONE,	GIB(512 + 3) + 512 },
	{ "2m_v3",	3, 21, false, QMT_COMP_ZSTD,	GIB(512 + 3) + 512 },
	{ "2m_v3_ext",	3, 21, true,  QMT_COMP_NONE,	GIB(256 + 2) + 512 },
};

static void qmt_geo_desc(const struct qmt_geo *g, char *desc)
{
	strscpy(desc, g->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qmt_map_geo, qmt_map_geos, qmt_geo_desc);

/*
 * Every interesting offset with several lengths, then the whole disk
 * extent by extent: type, length and host offset must match the model.
 */
static void qcow_map_translate(struct kunit *test)
{
	const struct qmt_geo *g = test->param_value;
	u64 offs[QMT_MAX_OFFS], pos, len, nr_ext = 0;
	struct qcow_extent x;
	struct rnd_state rs;
	struct qmt_disk *d;
	unsigned int n, i, j;

	prandom_seed_state(&rs, qmt_geo_seed(g));
	d = qmt_qcow2(test, g, QMT_TOP_SEED);
	n = qmt_offsets(d, &rs, offs, g->cluster_bits >= 21 ? 4 : 16);
	qmt_populate(test, d, &rs, offs, n, g->cluster_bits >= 21 ? 2 : 32);
	qmt_finish(test, d);
	KUNIT_ASSERT_EQ(test, qmt_open(d, 0), 0);
	KUNIT_ASSERT_EQ(test, d->l.size, g->size);

	for (i = 0; i < n; i++) {
		const u64 lens[] = {
			1, 512, d->sc_size, d->cs + 1, 3 * d->cs,
			qmt_rand(&rs, d->size - offs[i]) + 1, U64_MAX,
		};

		for (j = 0; j < ARRAY_SIZE(lens); j++) {
			pos = offs[i];
			len = min(lens[j], d->size - pos);
			if (!qmt_check_map(test, d, pos, len, NULL))
				break;
		}
	}

	for (pos = 0; pos < d->size; pos += x.len, nr_ext++) {
		if (!qmt_check_map(test, d, pos, d->size - pos, &x))
			break;
		if (!x.len) {
			KUNIT_FAIL(test, "map(0x%llx) returned an empty extent", pos);
			break;
		}
	}
	KUNIT_EXPECT_EQ(test, pos, d->size);
	KUNIT_EXPECT_EQ(test, atomic_read(&d->l.img->corrupt), 0);
	kunit_info(test, "%s: %llu extents, image %llu KiB\n", g->name, nr_ext,
		   d->len >> 10);
}

/* --- qcow_map: merging rules, case by case --------------------------------- */

enum qmt_layout {
	QMT_LAYOUT_4K,		/* 4 KiB v3, deflate: runs, gaps, zeros, compressed */
	QMT_LAYOUT_64K,		/* 64 KiB v3: a run across a slice boundary */
	QMT_LAYOUT_64K_EXT,	/* 64 KiB v3 extended L2: subcluster runs */
};

static const struct qmt_geo qmt_layout_geos[] = {
	[QMT_LAYOUT_4K]	     = { "4k", 3, 12, false, QMT_COMP_DEFLATE, MIB(8) },
	[QMT_LAYOUT_64K]     = { "64k", 3, 16, false, QMT_COMP_NONE, MIB(64) + 512 },
	[QMT_LAYOUT_64K_EXT] = { "64k_ext", 3, 16, true, QMT_COMP_NONE, MIB(64) + 512 },
};

static void qmt_build_layout(struct kunit *test, struct qmt_disk *d,
			     enum qmt_layout layout)
{
	u64 h;
	int i;

	switch (layout) {
	case QMT_LAYOUT_4K:
		for (i = 0; i < 4; i++)
			qmt_normal(test, d, i);		/* contiguous run */
		qmt_alloc(test, d);			/* gap */
		qmt_normal(test, d, 4);
		qmt_alloc(test, d);			/* gap */
		qmt_normal(test, d, 5);
		qmt_normal(test, d, 7);			/* 6 after 7 */
		qmt_normal(test, d, 6);
		qmt_zero(test, d, 8, false);
		qmt_zero(test, d, 9, false);
		qmt_zero(test, d, 10, true);
		qmt_zero(test, d, 11, true);
		qmt_compressed(test, d, 12, 100);
		qmt_compressed(test, d, 13, 0);
		/* L1 entry 1 (2..4 MiB) stays unallocated. */
		qmt_normal(test, d, 1024);
		qmt_normal(test, d, 2047);		/* last cluster */
		break;
	case QMT_LAYOUT_64K:
		for (i = 510; i < 514; i++)		/* slice: 512 entries */
			qmt_normal(test, d, i);
		break;
	case QMT_LAYOUT_64K_EXT:
		h = qmt_data(test, d, 0);
		qmt_set(test, d, 0, h, 0x0000ffff, 0);
		qmt_normal(test, d, 1);			/* contiguous with 0 */
		h = qmt_data(test, d, 2);		/* contiguous with 1 */
		qmt_set(test, d, 2, h, 0x0000ffff, 0xffff0000);
		qmt_set(test, d, 3, 0, 0, U32_MAX);
		qmt_set(test, d, 4, 0, 0, 0x000000ff);
		qmt_set(test, d, 5, qmt_data(test, d, 5), 0, 0);
		qmt_set(test, d, 6, qmt_data(test, d, 6), 0xf0f0f0f0, 0);
		break;
	}
}

struct qmt_merge_case {
	const char *name;
	enum qmt_layout layout;
	u64 pos;
	u64 len;		/* 0: to the end of the disk */
	enum qcow2_subcluster_type type;
	u64 want_len;
};

#define NORMAL		QCOW2_SUBCLUSTER_NORMAL
#define ZERO_PLAIN	QCOW2_SUBCLUSTER_ZERO_PLAIN
#define ZERO_ALLOC	QCOW2_SUBCLUSTER_ZERO_ALLOC
#define UNALLOC_PLAIN	QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN
#define UNALLOC_ALLOC	QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC
#define COMPRESSED	QCOW2_SUBCLUSTER_COMPRESSED

static const struct qmt_merge_case qmt_merge_cases[] = {
	{ "contiguous_run", QMT_LAYOUT_4K, 0, 0, NORMAL, KIB(16) },
	{ "contiguous_run_mid", QMT_LAYOUT_4K, KIB(4) + 100, 0, NORMAL, KIB(12) - 100 },
	{ "run_cut_by_len", QMT_LAYOUT_4K, 0, 5000, NORMAL, 5000 },
	{ "host_gap", QMT_LAYOUT_4K, KIB(16), 0, NORMAL, KIB(4) },
	{ "after_gap", QMT_LAYOUT_4K, KIB(20), 0, NORMAL, KIB(4) },
	{ "host_reversed", QMT_LAYOUT_4K, KIB(24), 0, NORMAL, KIB(4) },
	{ "host_reversed_2", QMT_LAYOUT_4K, KIB(28), 0, NORMAL, KIB(4) },
	{ "zero_plain_run", QMT_LAYOUT_4K, KIB(32), 0, ZERO_PLAIN, KIB(8) },
	{ "zero_alloc_run", QMT_LAYOUT_4K, KIB(40) + 1, 0, ZERO_ALLOC, KIB(8) - 1 },
	{ "compressed", QMT_LAYOUT_4K, KIB(48) + 10, 0, COMPRESSED, KIB(4) - 10 },
	{ "compressed_not_merged", QMT_LAYOUT_4K, KIB(52), 0, COMPRESSED, KIB(4) },
	{ "unallocated_to_table_end", QMT_LAYOUT_4K, KIB(56), 0, UNALLOC_PLAIN, MIB(2) - KIB(56) },
	{ "no_l2_table", QMT_LAYOUT_4K, MIB(2) + 5, 0, UNALLOC_PLAIN, MIB(2) - 5 },
	{ "no_l2_table_cut", QMT_LAYOUT_4K, MIB(2), 4096, UNALLOC_PLAIN, 4096 },
	{ "single_after_table", QMT_LAYOUT_4K, MIB(4), 0, NORMAL, KIB(4) },
	{ "last_sector", QMT_LAYOUT_4K, MIB(8) - 512, 0, NORMAL, 512 },
	{ "unallocated_before_run", QMT_LAYOUT_64K, 0, 0, UNALLOC_PLAIN, KIB(510 * 64) },
	{ "run_stops_at_slice", QMT_LAYOUT_64K, KIB(510 * 64), 0, NORMAL, KIB(128) },
	{ "run_after_slice", QMT_LAYOUT_64K, MIB(32), 0, NORMAL, KIB(128) },
	{ "unallocated_to_slice_end", QMT_LAYOUT_64K, KIB(514 * 64), 0,
	  UNALLOC_PLAIN, MIB(32) - KIB(128) },
	{ "unallocated_last_slice", QMT_LAYOUT_64K, MIB(64), 0, UNALLOC_PLAIN, 512 },
	{ "sub_half_allocated", QMT_LAYOUT_64K_EXT, 0, 0, NORMAL, KIB(32) },
	{ "sub_unallocated_alloc", QMT_LAYOUT_64K_EXT, KIB(32), 0, UNALLOC_ALLOC, KIB(32) },
	{ "sub_run_over_clusters", QMT_LAYOUT_64K_EXT, KIB(64), 0, NORMAL, KIB(96) },
	{ "sub_run_mid", QMT_LAYOUT_64K_EXT, KIB(64) + 3000, 0, NORMAL, KIB(96) - 3000 },
	{ "sub_zero_alloc", QMT_LAYOUT_64K_EXT, KIB(160), 0, ZERO_ALLOC, KIB(32) },
	{ "sub_zero_plain", QMT_LAYOUT_64K_EXT, KIB(192), 0, ZERO_PLAIN, KIB(80) },
	{ "sub_unallocated_plain", QMT_LAYOUT_64K_EXT, KIB(272), 0, UNALLOC_PLAIN, KIB(48) },
	{ "sub_unalloc_alloc_run", QMT_LAYOUT_64K_EXT, KIB(320), 0, UNALLOC_ALLOC, KIB(72) },
	{ "sub_alternating", QMT_LAYOUT_64K_EXT, KIB(392), 0, NORMAL, KIB(8) },
	{ "sub_alternating_mid", QMT_LAYOUT_64K_EXT, KIB(392) + 100, 0, NORMAL, KIB(8) - 100 },
	{ "sub_alternating_next", QMT_LAYOUT_64K_EXT, KIB(400), 0, UNALLOC_ALLOC, KIB(8) },
};

static void qmt_merge_desc(const struct qmt_merge_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qmt_merge, qmt_merge_cases, qmt_merge_desc);

static void qcow_map_merge(struct kunit *test)
{
	const struct qmt_merge_case *c = test->param_value;
	const struct qmt_geo *g = &qmt_layout_geos[c->layout];
	struct qmt_disk *d = qmt_qcow2(test, g, QMT_TOP_SEED);
	struct qcow_extent x;
	u64 len, n;
	u8 *got, *want;

	qmt_build_layout(test, d, c->layout);
	qmt_finish(test, d);
	KUNIT_ASSERT_EQ(test, qmt_open(d, 0), 0);

	len = c->len ? c->len : d->size - c->pos;
	KUNIT_ASSERT_EQ(test, qcow_map(d->l.img, c->pos, len, &x), 0);
	KUNIT_EXPECT_EQ(test, x.type, c->type);
	KUNIT_EXPECT_EQ(test, x.len, c->want_len);
	/* The model agrees, host offsets included. */
	qmt_check_map(test, d, c->pos, len, NULL);

	/* And the extent reads back right, at both ends. */
	n = min_t(u64, c->want_len, QMT_CHUNK);
	got = kunit_kmalloc(test, n, GFP_KERNEL);
	want = kunit_kmalloc(test, n, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, got);
	KUNIT_ASSERT_NOT_NULL(test, want);
	qmt_check_read(test, d, c->pos, n, got, want);
	qmt_check_read(test, d, c->pos + c->want_len - n, n, got, want);
}

/* --- qcow_map: reads through the chain ----------------------------------- */

enum qmt_backing {
	QMT_NO_BACKING,
	QMT_RAW_BACKING,	/* raw, 2/3 of the disk and not sector aligned */
	QMT_QCOW2_BACKING,	/* qcow2, 2/3 of the disk, another cluster size */
};

struct qmt_chain {
	const char *name;
	struct qmt_geo top;
	enum qmt_backing backing;
};

#define NONE	QMT_NO_BACKING
#define RAW	QMT_RAW_BACKING
#define QCOW2	QMT_QCOW2_BACKING

static const struct qmt_chain qmt_chains[] = {
	{ "512_v2", { NULL, 2, 9, false, QMT_COMP_NONE, KIB(256) + 1536 }, NONE },
	{ "512_v3_raw", { NULL, 3, 9, false, QMT_COMP_DEFLATE, KIB(256) + 1536 }, RAW },
	{ "4k_v3_qcow2", { NULL, 3, 12, false, QMT_COMP_DEFLATE, MIB(4) + 4608 }, QCOW2 },
	{ "4k_v2_raw", { NULL, 2, 12, false, QMT_COMP_DEFLATE, MIB(4) + 4608 }, RAW },
	{ "16k_v3_ext_raw", { NULL, 3, 14, true, QMT_COMP_ZSTD, MIB(20) + 512 }, RAW },
	{ "64k_v3_qcow2", { NULL, 3, 16, false, QMT_COMP_ZSTD, MIB(36) + 512 }, QCOW2 },
	{ "64k_v3_ext_qcow2", { NULL, 3, 16, true, QMT_COMP_DEFLATE, MIB(20) + 512 }, QCOW2 },
	{ "2m_v3_raw", { NULL, 3, 21, false, QMT_COMP_NONE, MIB(24) + 512 }, RAW },
	{ "2m_v3_ext_qcow2", { NULL, 3, 21, true, QMT_COMP_ZSTD, MIB(24) + 512 }, QCOW2 },
};

#undef NONE
#undef RAW
#undef QCOW2

static void qmt_chain_desc(const struct qmt_chain *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qmt_chain, qmt_chains, qmt_chain_desc);

/* A populated image with interesting and random clusters mapped. */
static struct qmt_disk *qmt_random_image(struct kunit *test,
					 const struct qmt_geo *g, u64 seed,
					 struct rnd_state *rs,
					 unsigned int nr_random)
{
	struct qmt_disk *d = qmt_qcow2(test, g, seed);
	u64 offs[QMT_MAX_OFFS];
	unsigned int n;

	n = qmt_offsets(d, rs, offs, 8);
	qmt_populate(test, d, rs, offs, n, nr_random);
	qmt_finish(test, d);
	return d;
}

static struct qmt_disk *qmt_chain_build(struct kunit *test,
					const struct qmt_chain *c,
					struct rnd_state *rs, u64 cache_bytes)
{
	struct qmt_geo bg = {
		.version = 3,
		.cluster_bits = c->top.cluster_bits == 12 ? 16 : 12,
		.comp = QMT_COMP_DEFLATE,
		.size = round_down(c->top.size * 2 / 3, 512),
	};
	struct qmt_disk *top, *b = NULL;

	top = qmt_random_image(test, &c->top, QMT_TOP_SEED, rs, 48);
	KUNIT_ASSERT_EQ(test, qmt_open(top, cache_bytes), 0);
	if (c->backing == QMT_RAW_BACKING) {
		b = qmt_raw(test, c->top.size * 2 / 3 + 123, QMT_BACKING_SEED);
	} else if (c->backing == QMT_QCOW2_BACKING) {
		b = qmt_random_image(test, &bg, QMT_BACKING_SEED, rs, 48);
		KUNIT_ASSERT_EQ(test, qmt_open(b, 0), 0);
	}
	if (b)
		qmt_link(top, b);
	return top;
}

/*
 * The whole disk in chunks, then seeded random ranges (sector aligned and
 * not), byte for byte against the model: data, zeros, compressed clusters
 * and the backing layer, zeros past its end.
 */
static void qcow_map_read_chain(struct kunit *test)
{
	const struct qmt_chain *c = test->param_value;
	struct rnd_state rs;
	struct qmt_disk *d;
	u64 pos, n, bad = 0;
	u8 *got, *want;
	unsigned int i;

	prandom_seed_state(&rs, qmt_geo_seed(&c->top) ^ c->backing);
	d = qmt_chain_build(test, c, &rs, 0);
	got = kunit_kmalloc(test, QMT_CHUNK, GFP_KERNEL);
	want = kunit_kmalloc(test, QMT_CHUNK, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, got);
	KUNIT_ASSERT_NOT_NULL(test, want);

	for (pos = 0; pos < d->size; pos += n) {
		n = min_t(u64, QMT_CHUNK, d->size - pos);
		if (!qmt_check_read(test, d, pos, n, got, want))
			break;
	}
	for (i = 0; i < 200; i++) {
		pos = qmt_rand(&rs, d->size);
		n = qmt_rand(&rs, min_t(u64, QMT_CHUNK, d->size - pos)) + 1;
		if (i % 4) {
			pos = round_down(pos, 512);
			n = round_up(n, 512);
			n = min(n, d->size - pos);
		}
		if (!qmt_check_read(test, d, pos, n, got, want))
			break;
	}
	/* Past the virtual size: zeros, whatever the backing layer holds. */
	KUNIT_EXPECT_EQ(test, qmt_read_cmp(d, d->size, 4096, got, want, &bad), 0);
	KUNIT_EXPECT_EQ(test, atomic_read(&d->l.img->corrupt), 0);
}

/* --- qcow_map: corrupt entries ---------------------------------------------- */

enum qmt_bad_how {
	BAD_RESERVED_LOW,	/* bit 1 */
	BAD_RESERVED_HIGH,	/* bit 56 */
	BAD_BIT62,		/* L1: the compressed bit is reserved */
	BAD_MISALIGNED,		/* + 512 */
	BAD_PAST_EOF,
	BAD_AT_EOF,
	BAD_HEADER,		/* 512: inside the header cluster */
	BAD_L1_TABLE,		/* the active L1 table */
	BAD_REFTABLE,		/* the refcount table */
	BAD_COPIED_NO_HOST,	/* COPIED with offset 0 */
	BAD_COMPRESSED_COPIED,
	BAD_ZERO_V2,		/* the zero flag in a version 2 image */
	BAD_SUB_ALLOC_ZERO,	/* a subcluster both allocated and zero */
	BAD_SUB_ALLOC_NO_HOST,	/* allocated subclusters, no host cluster */
	BAD_SUB_COMPRESSED,	/* compressed with a non-zero bitmap */
};

struct qmt_bad {
	const char *name;
	u32 version;
	bool ext;
	bool l1;	/* corrupt L1 entry 1, else the L2 entry of cluster 2 */
	enum qmt_bad_how how;
};

static const struct qmt_bad qmt_bads[] = {
	{ "l1_reserved_low", 3, false, true, BAD_RESERVED_LOW },
	{ "l1_reserved_high", 3, false, true, BAD_RESERVED_HIGH },
	{ "l1_bit62", 3, false, true, BAD_BIT62 },
	{ "l1_misaligned", 3, false, true, BAD_MISALIGNED },
	{ "l1_past_eof", 3, false, true, BAD_PAST_EOF },
	{ "l1_at_eof", 2, false, true, BAD_AT_EOF },
	{ "l1_header", 3, false, true, BAD_HEADER },
	{ "l1_into_l1_table", 3, false, true, BAD_L1_TABLE },
	{ "l1_into_reftable", 2, false, true, BAD_REFTABLE },
	{ "l1_ext_into_reftable", 3, true, true, BAD_REFTABLE },
	{ "l2_reserved_low", 3, false, false, BAD_RESERVED_LOW },
	{ "l2_reserved_high", 3, false, false, BAD_RESERVED_HIGH },
	{ "l2_misaligned", 3, false, false, BAD_MISALIGNED },
	{ "l2_past_eof", 3, false, false, BAD_PAST_EOF },
	{ "l2_at_eof", 2, false, false, BAD_AT_EOF },
	{ "l2_header", 3, false, false, BAD_HEADER },
	{ "l2_into_l1_table", 3, false, false, BAD_L1_TABLE },
	{ "l2_into_reftable", 2, false, false, BAD_REFTABLE },
	{ "l2_copied_no_host", 3, false, false, BAD_COPIED_NO_HOST },
	{ "l2_compressed_copied", 3, false, false, BAD_COMPRESSED_COPIED },
	{ "l2_zero_flag_v2", 2, false, false, BAD_ZERO_V2 },
	{ "ext_reserved_low", 3, true, false, BAD_RESERVED_LOW },
	{ "ext_misaligned", 3, true, false, BAD_MISALIGNED },
	{ "ext_past_eof", 3, true, false, BAD_PAST_EOF },
	{ "ext_into_l1_table", 3, true, false, BAD_L1_TABLE },
	{ "ext_alloc_and_zero", 3, true, false, BAD_SUB_ALLOC_ZERO },
	{ "ext_alloc_no_host", 3, true, false, BAD_SUB_ALLOC_NO_HOST },
	{ "ext_compressed_bitmap", 3, true, false, BAD_SUB_COMPRESSED },
	{ "ext_compressed_copied", 3, true, false, BAD_COMPRESSED_COPIED },
};

static void qmt_bad_desc(const struct qmt_bad *b, char *desc)
{
	strscpy(desc, b->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qmt_bad, qmt_bads, qmt_bad_desc);

/* Rewrite the victim entry at @e (word, and bitmap with extended L2). */
static void qmt_corrupt(struct qmt_disk *d, const struct qmt_bad *b, u64 e)
{
	u64 word = get_unaligned_be64(d->buf + e);
	u64 bitmap = d->ext && !b->l1 ? get_unaligned_be64(d->buf + e + 8) : 0;
	u64 eof = round_up(d->len, d->cs);

	switch (b->how) {
	case BAD_RESERVED_LOW:
		word |= BIT_ULL(1);
		break;
	case BAD_RESERVED_HIGH:
		word |= BIT_ULL(56);
		break;
	case BAD_BIT62:
		word |= BIT_ULL(62);
		break;
	case BAD_MISALIGNED:
		word += 512;
		break;
	case BAD_PAST_EOF:
		word = (eof + 8 * d->cs) | QCOW2_OFLAG_COPIED;
		break;
	case BAD_AT_EOF:
		word = eof | QCOW2_OFLAG_COPIED;
		break;
	case BAD_HEADER:
		word = 512 | QCOW2_OFLAG_COPIED;
		break;
	case BAD_L1_TABLE:
		word = d->l1_off | QCOW2_OFLAG_COPIED;
		break;
	case BAD_REFTABLE:
		word = d->rt_off | QCOW2_OFLAG_COPIED;
		break;
	case BAD_COPIED_NO_HOST:
		word = QCOW2_OFLAG_COPIED;
		break;
	case BAD_COMPRESSED_COPIED:
		/* A plausible descriptor: data at the old host, one sector. */
		word = (word & QCOW2_L2E_OFFSET_MASK) | QCOW2_OFLAG_COMPRESSED |
			QCOW2_OFLAG_COPIED;
		bitmap = 0;
		break;
	case BAD_ZERO_V2:
		word |= QCOW2_OFLAG_ZERO;
		break;
	case BAD_SUB_ALLOC_ZERO:
		bitmap = BIT_ULL(32 + 3) | BIT_ULL(3) | 0x7;
		break;
	case BAD_SUB_ALLOC_NO_HOST:
		word = 0;
		bitmap = 0x1;
		break;
	case BAD_SUB_COMPRESSED:
		word = (word & QCOW2_L2E_OFFSET_MASK) | QCOW2_OFLAG_COMPRESSED;
		bitmap = BIT_ULL(32);
		break;
	}
	put_unaligned_be64(word, d->buf + e);
	if (d->ext && !b->l1)
		put_unaligned_be64(bitmap, d->buf + e + 8);
}

/*
 * One bad entry: mapping it fails with -EIO and marks the image corrupt;
 * mapping and reading around it keeps working.
 */
static void qcow_map_bad_entry(struct kunit *test)
{
	const struct qmt_bad *b = test->param_value;
	struct qmt_geo g = {
		.version = b->version,
		.cluster_bits = b->ext ? 14 : 12,
		.ext = b->ext,
	};
	struct qcow_extent x;
	struct qmt_disk *d;
	u64 cs, span, e, pos;
	u8 *got, *want;
	int i;

	/* Four L2 tables' worth of disk. */
	g.size = 4ULL << (2 * g.cluster_bits - (b->ext ? 4 : 3));
	d = qmt_qcow2(test, &g, QMT_TOP_SEED);
	cs = d->cs;
	span = d->span;
	for (i = 0; i < 4; i++)
		qmt_normal(test, d, i);
	qmt_normal(test, d, d->l2_entries);		/* table 1 */
	qmt_normal(test, d, d->l2_entries + 1);
	qmt_normal(test, d, 2 * d->l2_entries);		/* table 2 */
	qmt_finish(test, d);
	e = b->l1 ? d->l1_off + sizeof(u64) : qmt_entry(test, d, 2);
	qmt_corrupt(d, b, e);
	KUNIT_ASSERT_EQ(test, qmt_open(d, 0), 0);

	got = kunit_kmalloc(test, 4 * cs, GFP_KERNEL);
	want = kunit_kmalloc(test, 4 * cs, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, got);
	KUNIT_ASSERT_NOT_NULL(test, want);

	if (!b->l1) {
		/* A run ends before the bad entry without reporting it. */
		KUNIT_ASSERT_EQ(test, qcow_map(d->l.img, 0, 4 * cs, &x), 0);
		KUNIT_EXPECT_EQ(test, x.type, NORMAL);
		KUNIT_EXPECT_EQ(test, x.len, 2 * cs);
		KUNIT_EXPECT_EQ(test, atomic_read(&d->l.img->corrupt), 0);
	}

	/* The bad entry: -EIO and the image is marked, every time. */
	pos = b->l1 ? span + cs + 100 : 2 * cs + 100;
	for (i = 1; i <= 2; i++) {
		KUNIT_EXPECT_EQ(test, qcow_map(d->l.img, pos, cs, &x), -EIO);
		KUNIT_EXPECT_NE(test, atomic_read(&d->l.img->corrupt), 0);
	}
	KUNIT_EXPECT_EQ(test, qmt_read_err(d, b->l1 ? span : 0, 4 * cs, got),
			-EIO);

	/* Good ranges still map and read. */
	if (b->l1) {
		qmt_check_map(test, d, 0, 4 * cs, NULL);
		qmt_check_read(test, d, 0, 4 * cs, got, want);
	} else {
		qmt_check_map(test, d, 3 * cs, cs, NULL);
		qmt_check_read(test, d, 3 * cs, cs, got, want);
		qmt_check_read(test, d, 0, 2 * cs, got, want);
		qmt_check_read(test, d, span, 2 * cs, got, want);
	}
	qmt_check_read(test, d, 2 * span, cs, got, want);
	qmt_check_read(test, d, 3 * span + 512, cs, got, want);
}

/* --- qcow_cache ---------------------------------------------------------------- */

struct qmt_cache_case {
	const char *name;
	struct qmt_geo geo;
	unsigned int slices;	/* cache budget in slices, 0 for the default */
};

/* L2 tables of four slices each; 9 slices touched by a full read. */
static const struct qmt_cache_case qmt_cache_cases[] = {
	{ "16k_tiny", { NULL, 3, 14, false, QMT_COMP_NONE, MIB(64) + 512 }, 4 },
	{ "16k_ext_tiny", { NULL, 3, 14, true, QMT_COMP_DEFLATE, MIB(32) + 512 }, 4 },
	{ "16k_ext_default", { NULL, 3, 14, true, QMT_COMP_DEFLATE, MIB(32) + 512 }, 0 },
};

static void qmt_cache_desc(const struct qmt_cache_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qmt_cache, qmt_cache_cases, qmt_cache_desc);

static bool qmt_read_all(struct kunit *test, struct qmt_disk *d, u8 *got,
			 u8 *want)
{
	u64 pos, n;

	for (pos = 0; pos < d->size; pos += n) {
		n = min_t(u64, QMT_CHUNK, d->size - pos);
		if (!qmt_check_read(test, d, pos, n, got, want))
			return false;
	}
	return true;
}

/*
 * Read the whole disk twice.  With a budget of 4 slices and more slices
 * than that, the second pass must miss again; with the default budget it
 * must not miss at all.
 */
static void qcow_cache_two_passes(struct kunit *test)
{
	const struct qmt_cache_case *c = test->param_value;
	u64 h1, m1, h2, m2, nr_slices = 0, k;
	struct rnd_state rs;
	struct qmt_disk *d;
	u8 *got, *want;

	prandom_seed_state(&rs, qmt_geo_seed(&c->geo));
	d = qmt_random_image(test, &c->geo, QMT_TOP_SEED, &rs, 160);
	KUNIT_ASSERT_EQ(test, qmt_open(d, (u64)c->slices * QCOW_SLICE_SIZE), 0);
	if (c->slices)
		KUNIT_EXPECT_EQ(test, qcow_cache_bytes(d->l.img->cache),
				(u64)c->slices * QCOW_SLICE_SIZE);
	for (k = 0; k < DIV64_U64_ROUND_UP(d->size, d->slice_span); k++)
		if (d->l2_off[(k * d->slice_span) >> d->span_bits])
			nr_slices++;
	KUNIT_ASSERT_GT(test, nr_slices, 4ULL);

	got = kunit_kmalloc(test, QMT_CHUNK, GFP_KERNEL);
	want = kunit_kmalloc(test, QMT_CHUNK, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, got);
	KUNIT_ASSERT_NOT_NULL(test, want);

	KUNIT_ASSERT_TRUE(test, qmt_read_all(test, d, got, want));
	qcow_cache_stats(d->l.img->cache, &h1, &m1);
	KUNIT_EXPECT_GE(test, m1, nr_slices);
	KUNIT_EXPECT_GT(test, h1, 0ULL);

	KUNIT_ASSERT_TRUE(test, qmt_read_all(test, d, got, want));
	qcow_cache_stats(d->l.img->cache, &h2, &m2);
	if (c->slices)
		KUNIT_EXPECT_GE(test, m2 - m1, nr_slices - c->slices);
	else
		KUNIT_EXPECT_EQ(test, m2, m1);
	KUNIT_EXPECT_GT(test, h2, h1);
	kunit_info(test, "%llu slices; pass 1: %llu hits %llu misses; pass 2: %llu hits %llu misses\n",
		   nr_slices, h1, m1, h2 - h1, m2 - m1);
}

/* A 4 KiB-cluster image whose file has @clusters clusters of data. */
static struct qmt_disk *qmt_cache_image(struct kunit *test, u64 clusters,
					u64 slices)
{
	const struct qmt_geo g = { "cache", 3, 12, false, QMT_COMP_NONE, MIB(8) };
	struct qmt_disk *d = qmt_qcow2(test, &g, QMT_TOP_SEED);
	u64 i;

	for (i = 0; i < clusters; i++)
		qmt_normal(test, d, i * 3);
	qmt_normal(test, d, MIB(2) / 4096);	/* table 1 */
	qmt_finish(test, d);
	KUNIT_ASSERT_EQ(test, qmt_open(d, slices * QCOW_SLICE_SIZE), 0);
	return d;
}

static bool qmt_slice_ok(struct kunit *test, struct qmt_disk *d,
			 struct qcow_cache_entry *e, u64 off)
{
	if (IS_ERR(e)) {
		KUNIT_FAIL(test, "qcow_cache_get(0x%llx): %ld", off, PTR_ERR(e));
		return false;
	}
	if (memcmp(qcow_cache_data(e), d->buf + off, QCOW_SLICE_SIZE)) {
		KUNIT_FAIL(test, "slice 0x%llx: wrong data", off);
		return false;
	}
	return true;
}

/*
 * Model of the cache's replacement: most recently used first; a miss
 * inserts, then evicts unreferenced entries from the cold end while over
 * budget.  Referenced entries stay, so the cache exceeds its budget by at
 * most the references in flight.
 */
struct qmt_lru {
	u64 off[16];
	unsigned int refs[16];
	unsigned int n;
};

static void qmt_lru_del(struct qmt_lru *m, unsigned int i)
{
	m->n--;
	memmove(&m->off[i], &m->off[i + 1], (m->n - i) * sizeof(m->off[0]));
	memmove(&m->refs[i], &m->refs[i + 1], (m->n - i) * sizeof(m->refs[0]));
}

static bool qmt_lru_get(struct qmt_lru *m, u64 off, unsigned int max)
{
	unsigned int i, refs = 0;
	bool hit;

	for (i = 0; i < m->n && m->off[i] != off; i++)
		;
	hit = i < m->n;
	if (hit) {
		refs = m->refs[i];
		qmt_lru_del(m, i);
	}
	memmove(&m->off[1], &m->off[0], m->n * sizeof(m->off[0]));
	memmove(&m->refs[1], &m->refs[0], m->n * sizeof(m->refs[0]));
	m->off[0] = off;
	m->refs[0] = refs + 1;
	m->n++;
	if (hit)
		return true;
	for (i = m->n; i-- > 0 && m->n > max;)
		if (!m->refs[i])
			qmt_lru_del(m, i);
	return false;
}

static void qmt_lru_put(struct qmt_lru *m, u64 off)
{
	unsigned int i;

	for (i = 0; i < m->n; i++)
		if (m->off[i] == off && m->refs[i]) {
			m->refs[i]--;
			return;
		}
}

static const unsigned int qmt_windows[] = { 0, 1, 3 };

static void qmt_window_desc(const unsigned int *w, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%u_refs_in_flight", *w);
}

KUNIT_ARRAY_PARAM(qmt_window, qmt_windows, qmt_window_desc);

/*
 * Sequential scans, then seeded random lookups over working sets a little
 * smaller and larger than the budget of 4 slices, with the last @window
 * entries still referenced: hits and misses must match the model at every
 * step, so the cache evicts exactly what its budget requires -- never
 * more, and never keeps more than the budget plus the references held.
 */
static void qcow_cache_lru_order(struct kunit *test)
{
	const unsigned int window = *(const unsigned int *)test->param_value;
	struct qmt_disk *d = qmt_cache_image(test, 40, 4);
	struct qcow_cache *c = d->l.img->cache;
	struct qcow_cache_entry *held[4] = {};
	u64 held_off[4] = {}, hits = 0, misses = 0, h0, m0, h, m, off;
	struct qmt_lru lru = {};
	unsigned int step, slot, set;
	struct qcow_cache_entry *e;
	struct rnd_state rs;
	bool hit;

	KUNIT_EXPECT_EQ(test, qcow_cache_bytes(c), 4ULL * QCOW_SLICE_SIZE);
	qcow_cache_stats(c, &h0, &m0);
	prandom_seed_state(&rs, QMT_SEED + window);
	for (step = 0; step < 3000; step++) {
		if (step < 64) {
			off = (step % 16) * QCOW_SLICE_SIZE;
		} else {
			set = step < 1500 ? 5 : 12;
			off = (prandom_u32_state(&rs) % set) * QCOW_SLICE_SIZE;
		}
		hit = qmt_lru_get(&lru, off, 4);
		hits += hit;
		misses += !hit;

		e = qcow_cache_get(c, off);
		if (!qmt_slice_ok(test, d, e, off))
			break;
		/* Keep @window references; drop the oldest. */
		slot = step % (window + 1);
		if (held[slot]) {
			qcow_cache_put(c, held[slot]);
			qmt_lru_put(&lru, held_off[slot]);
		}
		held[slot] = e;
		held_off[slot] = off;
		if (!window) {
			qcow_cache_put(c, e);
			qmt_lru_put(&lru, off);
			held[slot] = NULL;
		}

		qcow_cache_stats(c, &h, &m);
		if (h - h0 != hits || m - m0 != misses) {
			KUNIT_FAIL(test,
				   "step %u (slice 0x%llx): %llu hits %llu misses, the model gives %llu and %llu",
				   step, off, h - h0, m - m0, hits, misses);
			break;
		}
	}
	for (slot = 0; slot < ARRAY_SIZE(held); slot++)
		if (held[slot])
			qcow_cache_put(c, held[slot]);
	kunit_info(test, "%u held: %llu hits, %llu misses\n", window, hits,
		   misses);
}

/*
 * Referenced slices are never evicted, so the cache may grow past its
 * budget while they are held; once they are released the budget holds
 * again.
 */
static void qcow_cache_refs_in_flight(struct kunit *test)
{
	struct qmt_disk *d = qmt_cache_image(test, 40, 4);
	struct qcow_cache *c = d->l.img->cache;
	struct qcow_cache_entry *held[8], *e;
	u64 h0, m0, h, m;
	unsigned int i;

	qcow_cache_stats(c, &h0, &m0);
	for (i = 0; i < ARRAY_SIZE(held); i++) {
		held[i] = qcow_cache_get(c, i * QCOW_SLICE_SIZE);
		if (!qmt_slice_ok(test, d, held[i], i * QCOW_SLICE_SIZE)) {
			while (i--)
				qcow_cache_put(c, held[i]);
			return;
		}
	}
	/* All eight stay valid while held, four past the budget. */
	for (i = 0; i < ARRAY_SIZE(held); i++)
		KUNIT_EXPECT_EQ(test, memcmp(qcow_cache_data(held[i]),
					     d->buf + i * QCOW_SLICE_SIZE,
					     QCOW_SLICE_SIZE), 0);
	/* A second reference to a held slice is a hit on the same entry. */
	e = qcow_cache_get(c, 0);
	KUNIT_EXPECT_PTR_EQ(test, e, held[0]);
	if (!IS_ERR(e))
		qcow_cache_put(c, e);
	for (i = 0; i < ARRAY_SIZE(held); i++)
		qcow_cache_put(c, held[i]);
	qcow_cache_stats(c, &h, &m);
	KUNIT_EXPECT_EQ(test, h - h0, 1ULL);
	KUNIT_EXPECT_EQ(test, m - m0, 8ULL);

	/* Four new slices push every old one out. */
	for (i = 8; i < 12; i++) {
		e = qcow_cache_get(c, i * QCOW_SLICE_SIZE);
		if (qmt_slice_ok(test, d, e, i * QCOW_SLICE_SIZE))
			qcow_cache_put(c, e);
	}
	for (i = 0; i < 8; i++) {
		e = qcow_cache_get(c, i * QCOW_SLICE_SIZE);
		if (qmt_slice_ok(test, d, e, i * QCOW_SLICE_SIZE))
			qcow_cache_put(c, e);
	}
	qcow_cache_stats(c, &h, &m);
	KUNIT_EXPECT_EQ(test, h - h0, 1ULL);
	KUNIT_EXPECT_EQ(test, m - m0, 8ULL + 4 + 8);

	/* A referenced slice gone cold does not stop eviction behind it. */
	qcow_cache_stats(c, &h0, &m0);
	held[0] = qcow_cache_get(c, 20 * QCOW_SLICE_SIZE);
	if (!qmt_slice_ok(test, d, held[0], 20 * QCOW_SLICE_SIZE))
		return;
	for (i = 21; i < 31; i++) {
		e = qcow_cache_get(c, i * QCOW_SLICE_SIZE);
		if (qmt_slice_ok(test, d, e, i * QCOW_SLICE_SIZE))
			qcow_cache_put(c, e);
	}
	for (i = 21; i < 27; i++) {
		e = qcow_cache_get(c, i * QCOW_SLICE_SIZE);
		if (qmt_slice_ok(test, d, e, i * QCOW_SLICE_SIZE))
			qcow_cache_put(c, e);
	}
	KUNIT_EXPECT_EQ(test, memcmp(qcow_cache_data(held[0]),
				     d->buf + 20 * QCOW_SLICE_SIZE,
				     QCOW_SLICE_SIZE), 0);
	qcow_cache_put(c, held[0]);
	qcow_cache_stats(c, &h, &m);
	KUNIT_EXPECT_EQ(test, h - h0, 0ULL);
	KUNIT_EXPECT_EQ(test, m - m0, 1ULL + 10 + 6);
}

/*
 * A failed slice read is returned to every caller and not cached; a failed
 * table or data read fails the request without marking the image corrupt.
 */
static void qcow_cache_read_errors(struct kunit *test)
{
	struct qmt_disk *d = qmt_cache_image(test, 8, 0);
	struct qcow_cache *c = d->l.img->cache;
	struct qcow_cache_entry *e;
	u64 off = 5 * QCOW_SLICE_SIZE, h0, m0, h, m;
	struct qcow_extent x;
	u8 *got, *want;

	got = kunit_kmalloc(test, MIB(2), GFP_KERNEL);
	want = kunit_kmalloc(test, MIB(2), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, got);
	KUNIT_ASSERT_NOT_NULL(test, want);

	qcow_cache_stats(c, &h0, &m0);
	d->fail_start = off + 100;
	d->fail_len = 1;
	KUNIT_EXPECT_EQ(test, PTR_ERR(qcow_cache_get(c, off)), -EIO);
	KUNIT_EXPECT_EQ(test, PTR_ERR(qcow_cache_get(c, off)), -EIO);
	d->fail_len = 0;
	e = qcow_cache_get(c, off);
	if (qmt_slice_ok(test, d, e, off))
		qcow_cache_put(c, e);
	e = qcow_cache_get(c, off);
	if (qmt_slice_ok(test, d, e, off))
		qcow_cache_put(c, e);
	qcow_cache_stats(c, &h, &m);
	KUNIT_EXPECT_EQ(test, m - m0, 3ULL);
	KUNIT_EXPECT_EQ(test, h - h0, 1ULL);

	/* The L2 table of the second 2 MiB cannot be read. */
	d->fail_start = d->l2_off[1];
	d->fail_len = d->cs;
	KUNIT_EXPECT_EQ(test, qcow_map(d->l.img, MIB(2), 4096, &x), -EIO);
	KUNIT_EXPECT_EQ(test, qmt_read_err(d, MIB(2) - 4096, 8192, got), -EIO);
	d->fail_len = 0;
	qmt_check_map(test, d, MIB(2), 4096, NULL);
	qmt_check_read(test, d, MIB(2) - 4096, 8192, got, want);

	/* A data cluster cannot be read. */
	d->fail_start = ((struct qmt_cl *)xa_load(&d->map, 3))->host;
	d->fail_len = 1;
	KUNIT_EXPECT_EQ(test, qmt_read_err(d, 0, MIB(2), got), -EIO);
	d->fail_len = 0;
	qmt_check_read(test, d, 0, MIB(2), got, want);
	KUNIT_EXPECT_EQ(test, atomic_read(&d->l.img->corrupt), 0);
}

/* --- qcow_cache: header validation at open ----------------------------------- */

enum qmt_hdr_how {
	HDR_VALID,
	HDR_MAGIC,
	HDR_VERSION_4,
	HDR_CLUSTER_BITS_8,
	HDR_CLUSTER_BITS_22,
	HDR_SIZE_HUGE,
	HDR_L1_SIZE_SMALL,
	HDR_L1_PAST_EOF,
	HDR_L1_MISALIGNED,
	HDR_L1_IN_HEADER,
	HDR_L1_OVER_REFTABLE,
	HDR_REFTABLE_EMPTY,
	HDR_HEADER_LENGTH,
	HDR_EXTL2_4K,
	HDR_UNKNOWN_INCOMPAT,
	HDR_TRUNCATED,
	HDR_EMPTY,
};

struct qmt_hdr_case {
	const char *name;
	enum qmt_hdr_how how;
	int err;
};

static const struct qmt_hdr_case qmt_hdr_cases[] = {
	{ "valid", HDR_VALID, 0 },
	{ "bad_magic", HDR_MAGIC, -EINVAL },
	{ "version_4", HDR_VERSION_4, -EOPNOTSUPP },
	{ "cluster_bits_8", HDR_CLUSTER_BITS_8, -EINVAL },
	{ "cluster_bits_22", HDR_CLUSTER_BITS_22, -EINVAL },
	{ "size_huge", HDR_SIZE_HUGE, -EINVAL },
	{ "l1_size_too_small", HDR_L1_SIZE_SMALL, -EINVAL },
	{ "l1_past_eof", HDR_L1_PAST_EOF, -EINVAL },
	{ "l1_misaligned", HDR_L1_MISALIGNED, -EINVAL },
	{ "l1_in_header", HDR_L1_IN_HEADER, -EINVAL },
	{ "l1_over_reftable", HDR_L1_OVER_REFTABLE, -EINVAL },
	{ "reftable_empty", HDR_REFTABLE_EMPTY, -EINVAL },
	{ "header_length_100", HDR_HEADER_LENGTH, -EINVAL },
	{ "extl2_4k_clusters", HDR_EXTL2_4K, -EINVAL },
	{ "unknown_incompat_bit", HDR_UNKNOWN_INCOMPAT, -EOPNOTSUPP },
	{ "truncated_header", HDR_TRUNCATED, -EINVAL },
	{ "empty_file", HDR_EMPTY, -EINVAL },
};

static void qmt_hdr_desc(const struct qmt_hdr_case *c, char *desc)
{
	strscpy(desc, c->name, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(qmt_hdr, qmt_hdr_cases, qmt_hdr_desc);

static void qcow_cache_open_invalid(struct kunit *test)
{
	const struct qmt_hdr_case *c = test->param_value;
	const struct qmt_geo g = { "hdr", 3, 12, false, QMT_COMP_NONE, MIB(8) };
	struct qmt_disk *d = qmt_qcow2(test, &g, QMT_TOP_SEED);
	u8 *h;

	qmt_normal(test, d, 0);
	qmt_finish(test, d);
	h = d->buf;
	switch (c->how) {
	case HDR_VALID:
		break;
	case HDR_MAGIC:
		h[3] ^= 1;
		break;
	case HDR_VERSION_4:
		put_unaligned_be32(4, h + 4);
		break;
	case HDR_CLUSTER_BITS_8:
		put_unaligned_be32(8, h + 20);
		break;
	case HDR_CLUSTER_BITS_22:
		put_unaligned_be32(22, h + 20);
		break;
	case HDR_SIZE_HUGE:
		put_unaligned_be64(1ULL << 62, h + 24);
		break;
	case HDR_L1_SIZE_SMALL:
		put_unaligned_be32(d->l1_size - 1, h + 36);
		break;
	case HDR_L1_PAST_EOF:
		put_unaligned_be64(round_up(d->len, d->cs), h + 40);
		break;
	case HDR_L1_MISALIGNED:
		put_unaligned_be64(d->l1_off + 512, h + 40);
		break;
	case HDR_L1_IN_HEADER:
		put_unaligned_be64(0, h + 40);
		break;
	case HDR_L1_OVER_REFTABLE:
		put_unaligned_be64(d->rt_off, h + 40);
		break;
	case HDR_REFTABLE_EMPTY:
		put_unaligned_be32(0, h + 56);
		break;
	case HDR_HEADER_LENGTH:
		put_unaligned_be32(100, h + 100);
		break;
	case HDR_EXTL2_4K:
		put_unaligned_be64(QCOW2_INCOMPAT_EXTL2, h + 72);
		break;
	case HDR_UNKNOWN_INCOMPAT:
		put_unaligned_be64(BIT_ULL(20), h + 72);
		break;
	case HDR_TRUNCATED:
		d->len = 60;
		break;
	case HDR_EMPTY:
		d->len = 0;
		break;
	}
	KUNIT_EXPECT_EQ(test, qmt_open(d, 0), c->err);
	if (c->err)
		KUNIT_EXPECT_NULL(test, d->l.img);
	else
		KUNIT_EXPECT_NOT_NULL(test, d->l.img);
}

/* --- qcow_cache: concurrent readers ----------------------------------------- */

struct qmt_reader {
	struct qmt_disk *d;
	u64 seed;
	unsigned int reads;
	u8 *got;
	u8 *want;
	int ret;
	u64 pos;
	u64 len;
	u64 bad;
	struct completion done;
};

static int qmt_reader_fn(void *arg)
{
	struct qmt_reader *r = arg;
	struct qmt_disk *d = r->d;
	struct rnd_state rs;
	unsigned int i;

	prandom_seed_state(&rs, r->seed);
	for (i = 0; i < r->reads && !r->ret; i++) {
		r->pos = round_down(qmt_rand(&rs, d->size), 512);
		r->len = min_t(u64, d->size - r->pos,
			       512 * (1 + qmt_rand(&rs, KIB(64) / 512)));
		r->ret = qmt_read_cmp(d, r->pos, r->len, r->got, r->want,
				      &r->bad);
	}
	complete(&r->done);
	return 0;
}

/*
 * Readers in several kthreads over a 4-slice cache, with reads that sleep
 * so lookups of a slice being loaded have to wait for it (UML has one CPU
 * and no preemption).  Lockdep and KASAN watch the cache's locking.
 */
static void qcow_cache_concurrent_readers(struct kunit *test)
{
	const struct qmt_chain c = {
		"concurrent", { NULL, 3, 14, true, QMT_COMP_DEFLATE, MIB(32) + 512 },
		QMT_RAW_BACKING,
	};
	struct qmt_reader *r;
	struct task_struct *t;
	struct rnd_state rs;
	struct qmt_disk *d;
	unsigned int i, nr = 4;
	u64 h, m;

	prandom_seed_state(&rs, QMT_SEED);
	d = qmt_chain_build(test, &c, &rs, 4 * QCOW_SLICE_SIZE);
	d->slow = true;
	r = kunit_kcalloc(test, nr, sizeof(*r), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, r);
	for (i = 0; i < nr; i++) {
		r[i].d = d;
		r[i].seed = QMT_SEED + i;
		r[i].reads = 150;
		r[i].got = kunit_kmalloc(test, KIB(64), GFP_KERNEL);
		r[i].want = kunit_kmalloc(test, KIB(64), GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, r[i].got);
		KUNIT_ASSERT_NOT_NULL(test, r[i].want);
		init_completion(&r[i].done);
	}
	for (i = 0; i < nr; i++) {
		t = kthread_run(qmt_reader_fn, &r[i], "qmt-reader/%u", i);
		if (IS_ERR(t)) {
			r[i].ret = PTR_ERR(t);
			complete(&r[i].done);
		}
	}
	/* No assertion may end the test before every reader is done. */
	for (i = 0; i < nr; i++)
		wait_for_completion(&r[i].done);
	for (i = 0; i < nr; i++) {
		if (r[i].ret < 0)
			KUNIT_FAIL(test, "reader %u: read(0x%llx, 0x%llx): error %d",
				   i, r[i].pos, r[i].len, r[i].ret);
		else if (r[i].ret)
			KUNIT_FAIL(test, "reader %u: read(0x%llx, 0x%llx): wrong byte at 0x%llx",
				   i, r[i].pos, r[i].len, r[i].bad);
	}
	qcow_cache_stats(d->l.img->cache, &h, &m);
	kunit_info(test, "%d file reads, up to %d at once; cache: %llu hits %llu misses\n",
		   atomic_read(&d->reads), d->max_inflight, h, m);
	KUNIT_EXPECT_GT(test, m, 4ULL);
	KUNIT_EXPECT_GE(test, d->max_inflight, 2);
	KUNIT_EXPECT_EQ(test, atomic_read(&d->l.img->corrupt), 0);
}

/* --- suites ---------------------------------------------------------------------- */

static int qmt_init(struct kunit *test)
{
	test->priv = kunit_kzalloc(test, sizeof(struct qmt_ctx), GFP_KERNEL);
	return test->priv ? 0 : -ENOMEM;
}

static void qmt_exit(struct kunit *test)
{
	struct qmt_ctx *ctx = test->priv;

	while (ctx->nr)
		qmt_disk_free(ctx->disks[--ctx->nr]);
}

static struct kunit_case qcow_map_cases[] = {
	KUNIT_CASE_PARAM(qcow_map_translate, qmt_map_geo_gen_params),
	KUNIT_CASE_PARAM(qcow_map_merge, qmt_merge_gen_params),
	KUNIT_CASE_PARAM(qcow_map_read_chain, qmt_chain_gen_params),
	KUNIT_CASE_PARAM(qcow_map_bad_entry, qmt_bad_gen_params),
	{}
};

static struct kunit_suite qcow_map_suite = {
	.name = "qcow_map",
	.init = qmt_init,
	.exit = qmt_exit,
	.test_cases = qcow_map_cases,
};

static struct kunit_case qcow_cache_cases[] = {
	KUNIT_CASE_PARAM(qcow_cache_two_passes, qmt_cache_gen_params),
	KUNIT_CASE_PARAM(qcow_cache_lru_order, qmt_window_gen_params),
	KUNIT_CASE(qcow_cache_refs_in_flight),
	KUNIT_CASE(qcow_cache_read_errors),
	KUNIT_CASE_PARAM(qcow_cache_open_invalid, qmt_hdr_gen_params),
	KUNIT_CASE(qcow_cache_concurrent_readers),
	{}
};

static struct kunit_suite qcow_cache_suite = {
	.name = "qcow_cache",
	.init = qmt_init,
	.exit = qmt_exit,
	.test_cases = qcow_cache_cases,
};

kunit_test_suites(&qcow_map_suite, &qcow_cache_suite);
