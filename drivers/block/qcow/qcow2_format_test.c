// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites for the qcow2 format core (qcow2_format.c):
 *
 *   qcow_format    header and header extensions
 *   qcow_l2        L1/L2 entries, extended L2 subclusters, compressed
 *                  cluster descriptors for every cluster size
 *   qcow_refcount  refcount block entries of every width, refcount table
 *                  entries
 *   qcow_overlap   metadata overlap checks
 *   qcow_snapshot  snapshot table entries
 *
 * The good cases are real images made by qemu-img (qcow2_fixtures.h, made
 * by tests/fixtures/gen-fixtures.sh) with the values `qemu-img info`
 * reported for them; the bad ones are those images with one field changed.
 * Rows are named after the rule of QEMU's docs/interop/qcow2.rst they
 * exercise.  Random round trips use a fixed seed, so failures reproduce.
 */
#include <kunit/test.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/math64.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <asm/unaligned.h>

#include "qcow2_format.h"
#include "qcow2_fixtures.h"

/* ------------------------------------------------------------------------
 * helpers
 */

/* xorshift64*: small, seeded, the same sequence on every run. */
static u64 rnd_next(u64 *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

/* Uniform enough in [0, n) for test purposes; n > 0. */
static u64 rnd_below(u64 *s, u64 n)
{
	u64 rem;

	div64_u64_rem(rnd_next(s), n, &rem);
	return rem;
}

static const struct qcow2_fixture *fx_get(struct kunit *test, const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(qcow2_fixtures); i++)
		if (!strcmp(qcow2_fixtures[i].name, name))
			return &qcow2_fixtures[i];
	KUNIT_FAIL(test, "no fixture named %s", name);
	return NULL;
}

/* The fixture's header cluster (buf_len bytes) in a fresh buffer. */
static u8 *fx_buf(struct kunit *test, const struct qcow2_fixture *fx)
{
	u8 *buf;

	KUNIT_ASSERT_NOT_NULL(test, fx);
	buf = kunit_kzalloc(test, fx->buf_len, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	qcow2_fx_load(buf, fx->data, fx->len);
	return buf;
}

/* The fixture's metadata table, zero padded to at least @size bytes. */
static u8 *fx_extra(struct kunit *test, const struct qcow2_fixture *fx,
		    size_t size)
{
	size_t len = round_up(fx->extra_len, 8);
	u8 *buf;

	KUNIT_ASSERT_NOT_NULL(test, fx->extra);
	buf = kunit_kzalloc(test, max(size, len), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	qcow2_fx_load(buf, fx->extra, len);
	return buf;
}

static struct qcow2_image *alloc_image(struct kunit *test)
{
	struct qcow2_image *img = kunit_kzalloc(test, sizeof(*img), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, img);
	return img;
}

/* Parse a fixture that must be valid. */
static struct qcow2_image *fx_image(struct kunit *test,
				    const struct qcow2_fixture *fx)
{
	struct qcow2_image *img = alloc_image(test);
	struct qcow2_diag diag = {};
	u8 *buf = fx_buf(test, fx);
	int err;

	err = qcow2_image_parse(buf, fx->buf_len, fx->file_size, img, &diag);
	KUNIT_ASSERT_EQ_MSG(test, err, 0, "%s: %s: %s", fx->name,
			    diag.field ?: "-", diag.msg);
	return img;
}

/*
 * Check a validator's verdict: the error, the on-disk field the diag
 * names and, optionally, a substring of its message.
 */
static void expect_verdict(struct kunit *test, int err,
			   const struct qcow2_diag *diag, int want,
			   const char *field, const char *msg)
{
	KUNIT_EXPECT_EQ_MSG(test, err, want, "diag: %s: %s",
			    diag->field ?: "-", diag->msg);
	if (!want || err != want)
		return;
	KUNIT_EXPECT_NE_MSG(test, diag->msg[0], '\0', "empty diag message");
	if (field) {
		if (!diag->field) {
			KUNIT_FAIL(test, "diag names no field (want %s): %s",
				   field, diag->msg);
			return;
		}
		KUNIT_EXPECT_STREQ_MSG(test, diag->field, field, "diag: %s",
				       diag->msg);
	}
	if (msg)
		KUNIT_EXPECT_TRUE_MSG(test, strstr(diag->msg, msg),
				      "diag \"%s\" lacks \"%s\"", diag->msg, msg);
}

/* Store @width bytes of @val big endian at @p. */
static void put_be(u8 *p, unsigned int width, u64 val)
{
	switch (width) {
	case 1:
		*p = val;
		break;
	case 2:
		put_unaligned_be16(val, p);
		break;
	case 4:
		put_unaligned_be32(val, p);
		break;
	default:
		put_unaligned_be64(val, p);
		break;
	}
}

/* One field change: @width bytes at @off (width 0: unused slot). */
struct fld {
	u16 off;
	u8 width;
	u64 val;
};

/* A header field, its width in bytes as the spec gives it, a value. */
#define HDR(f, w, v)	{ offsetof(struct qcow2_header_disk, f), (w), (v) }
#define AT(o, w, v)	{ (o), (w), (v) }

static void apply(struct kunit *test, u8 *buf, size_t len,
		  const struct fld *f, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		if (!f[i].width)
			continue;
		KUNIT_ASSERT_LE(test, (size_t)f[i].off + f[i].width, len);
		put_be(buf + f[i].off, f[i].width, f[i].val);
	}
}

/*
 * A valid version 2 or 3 header cluster laid out as qemu-img does it:
 * refcount table in cluster 1, L1 table from cluster 2, L1 just big
 * enough for @size.  Returns the buffer (min(cluster, 4 KiB) bytes).
 */
static u8 *geo_image(struct kunit *test, u32 version, u32 cluster_bits,
		     u64 incompat, u64 size, u32 l1_size, size_t *len,
		     u64 *file_size)
{
	struct qcow2_header h = {};
	u64 cs = 1ULL << cluster_bits;
	u8 *buf;

	*len = min_t(u64, cs, SZ_4K);
	buf = kunit_kzalloc(test, *len, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	h.version = version;
	h.cluster_bits = cluster_bits;
	h.size = size;
	h.l1_size = l1_size;
	h.refcount_table_offset = cs;
	h.refcount_table_clusters = 1;
	h.l1_table_offset = 2 * cs;
	h.incompatible_features = incompat;
	h.refcount_order = 4;
	h.header_length = version >= 3 ? 112 : 72;
	qcow2_header_encode(&h, (struct qcow2_header_disk *)buf);
	*file_size = 2 * cs + max_t(u64, (u64)l1_size * 8, cs);
	return buf;
}

/* The spec's L1 size rule, written out: one entry per L2 table. */
static u64 l1_entries_for(u64 size, u32 cluster_bits, bool extl2)
{
	u64 l2_entries = (1ULL << cluster_bits) / (extl2 ? 16 : 8);
	u64 per_l1 = (1ULL << cluster_bits) * l2_entries;

	return div64_u64(size, per_l1) + (div64_u64(size, per_l1) * per_l1 != size);
}

/* A parsed synthetic header: cluster_bits, 1 GiB, the given features. */
static struct qcow2_header *geo_header(struct kunit *test, u32 version,
				       u32 cluster_bits, u64 incompat)
{
	struct qcow2_header *h = kunit_kzalloc(test, sizeof(*h), GFP_KERNEL);
	struct qcow2_diag diag = {};
	u64 file_size;
	size_t len;
	u8 *buf;

	KUNIT_ASSERT_NOT_NULL(test, h);
	buf = geo_image(test, version, cluster_bits, incompat, SZ_1G,
			l1_entries_for(SZ_1G, cluster_bits,
				       incompat & QCOW2_INCOMPAT_EXTL2),
			&len, &file_size);
	KUNIT_ASSERT_EQ_MSG(test, qcow2_header_parse(buf, len, file_size, h, &diag),
			    0, "%s: %s", diag.field ?: "-", diag.msg);
	return h;
}

static const u32 all_cluster_bits[] = {
	9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
};

static void cluster_bits_desc(const u32 *cb, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE,
		 "cluster_bits %u (%u-byte clusters)", *cb, 1U << *cb);
}

KUNIT_ARRAY_PARAM(cluster_bits, all_cluster_bits, cluster_bits_desc);

static const u32 all_refcount_orders[] = { 0, 1, 2, 3, 4, 5, 6 };

static void refcount_order_desc(const u32 *order, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "refcount_order %u (%u-bit entries)",
		 *order, 1U << *order);
}

KUNIT_ARRAY_PARAM(refcount_order, all_refcount_orders, refcount_order_desc);

/* ------------------------------------------------------------------------
 * qcow_format: real images
 */

/*
 * What `qemu-img info` reported for each fixture (see the comment above
 * each one in qcow2_fixtures.h), plus the raw header fields behind it.
 */
struct fx_expect {
	const char *fixture;
	int err;
	const char *field;
	u32 version;
	u32 cluster_bits;
	u64 size;
	u32 refcount_order;
	u32 l1_size;
	u64 incompat;
	u64 compat;
	u64 autoclear;
	u8 compression_type;
	u32 nb_snapshots;
	u32 nb_bitmaps;
	u32 nr_feature_names;
	const char *backing_file;
	const char *backing_format;
	const char *data_file;
};

/* qemu 7.2 writes a feature name table of 8 entries when it fits. */
#define QEMU_NAMES	8

static const struct fx_expect fx_expects[] = {
	/* compat 0.10: 16-bit refcounts, no extensions */
	{ .fixture = "v2", .version = 2, .cluster_bits = 16, .size = SZ_64M,
	  .refcount_order = 4, .l1_size = 1 },
	{ .fixture = "v3", .version = 3, .cluster_bits = 16, .size = SZ_1G,
	  .refcount_order = 4, .l1_size = 2, .nr_feature_names = QEMU_NAMES },
	/* 512-byte clusters: the feature name table does not fit */
	{ .fixture = "c512", .version = 3, .cluster_bits = 9, .size = SZ_64M,
	  .refcount_order = 4, .l1_size = 2048 },
	{ .fixture = "c2m", .version = 3, .cluster_bits = 21, .size = 16ULL * SZ_1G,
	  .refcount_order = 4, .l1_size = 1, .nr_feature_names = QEMU_NAMES },
	{ .fixture = "rc1", .version = 3, .cluster_bits = 16, .size = SZ_1G,
	  .refcount_order = 0, .l1_size = 2, .nr_feature_names = QEMU_NAMES },
	{ .fixture = "rc64", .version = 3, .cluster_bits = 16, .size = SZ_1G,
	  .refcount_order = 6, .l1_size = 2, .nr_feature_names = QEMU_NAMES },
	{ .fixture = "lazy", .version = 3, .cluster_bits = 16, .size = SZ_1G,
	  .refcount_order = 4, .l1_size = 2, .compat = QCOW2_COMPAT_LAZY_REFCOUNTS,
	  .nr_feature_names = QEMU_NAMES },
	{ .fixture = "zstd", .version = 3, .cluster_bits = 16, .size = SZ_1G,
	  .refcount_order = 4, .l1_size = 2, .incompat = QCOW2_INCOMPAT_COMPRESSION,
	  .compression_type = QCOW2_COMPRESSION_ZSTD, .nr_feature_names = QEMU_NAMES },
	{ .fixture = "prealloc", .version = 3, .cluster_bits = 16, .size = SZ_4M,
	  .refcount_order = 4, .l1_size = 1, .nr_feature_names = QEMU_NAMES },
	{ .fixture = "backing_raw", .version = 3, .cluster_bits = 16, .size = SZ_1M,
	  .refcount_order = 4, .l1_size = 1, .nr_feature_names = QEMU_NAMES,
	  .backing_file = "base.raw", .backing_format = "raw" },
	{ .fixture = "backing_qcow2", .version = 3, .cluster_bits = 16, .size = SZ_1M,
	  .refcount_order = 4, .l1_size = 1, .nr_feature_names = QEMU_NAMES,
	  .backing_file = "base.qcow2", .backing_format = "qcow2" },
	{ .fixture = "extl2", .version = 3, .cluster_bits = 17, .size = SZ_2M,
	  .refcount_order = 4, .l1_size = 1, .incompat = QCOW2_INCOMPAT_EXTL2,
	  .nr_feature_names = QEMU_NAMES, .backing_file = "base.qcow2",
	  .backing_format = "qcow2" },
	{ .fixture = "snapshots", .version = 3, .cluster_bits = 16, .size = SZ_64M,
	  .refcount_order = 4, .l1_size = 1, .nb_snapshots = 2,
	  .nr_feature_names = QEMU_NAMES },
	{ .fixture = "bitmap", .version = 3, .cluster_bits = 16, .size = SZ_64M,
	  .refcount_order = 4, .l1_size = 1, .autoclear = QCOW2_AUTOCLEAR_BITMAPS,
	  .nb_bitmaps = 1, .nr_feature_names = QEMU_NAMES },
	{ .fixture = "data_file", .version = 3, .cluster_bits = 16, .size = SZ_64M,
	  .refcount_order = 4, .l1_size = 1, .incompat = QCOW2_INCOMPAT_DATA_FILE,
	  .nr_feature_names = QEMU_NAMES, .data_file = "data_file.raw" },
	{ .fixture = "data_file_raw", .version = 3, .cluster_bits = 16, .size = SZ_64M,
	  .refcount_order = 4, .l1_size = 1, .incompat = QCOW2_INCOMPAT_DATA_FILE,
	  .autoclear = QCOW2_AUTOCLEAR_DATA_FILE_RAW, .nr_feature_names = QEMU_NAMES,
	  .data_file = "data_file_raw.raw" },
	/* valid, but encryption is not implemented */
	{ .fixture = "luks", .err = -EOPNOTSUPP, .field = "crypt_method" },
	{ .fixture = "comp512", .version = 3, .cluster_bits = 9, .size = SZ_8M,
	  .refcount_order = 4, .l1_size = 256 },
	{ .fixture = "comp64k", .version = 3, .cluster_bits = 16, .size = SZ_8M,
	  .refcount_order = 4, .l1_size = 1, .nr_feature_names = QEMU_NAMES },
	{ .fixture = "comp2m", .version = 3, .cluster_bits = 21, .size = SZ_8M,
	  .refcount_order = 4, .l1_size = 1, .nr_feature_names = QEMU_NAMES },
};

static void fx_expect_desc(const struct fx_expect *e, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", e->fixture);
}

KUNIT_ARRAY_PARAM(fx_expect, fx_expects, fx_expect_desc);

static void expect_string(struct kunit *test, bool has, const char *got,
			  const char *want)
{
	if (!want) {
		KUNIT_EXPECT_FALSE(test, has);
		return;
	}
	KUNIT_EXPECT_TRUE(test, has);
	KUNIT_EXPECT_STREQ(test, got, want);
}

static void format_fixture_test(struct kunit *test)
{
	const struct fx_expect *e = test->param_value;
	const struct qcow2_fixture *fx = fx_get(test, e->fixture);
	struct qcow2_image *img = alloc_image(test);
	const struct qcow2_header *h = &img->hdr;
	const struct qcow2_extensions *x = &img->ext;
	struct qcow2_header *hh = kunit_kzalloc(test, sizeof(*hh), GFP_KERNEL);
	struct qcow2_diag diag = {};
	u32 entry_bits;
	u8 *buf;
	int err;

	KUNIT_ASSERT_NOT_NULL(test, hh);
	buf = fx_buf(test, fx);
	err = qcow2_image_parse(buf, fx->buf_len, fx->file_size, img, &diag);
	expect_verdict(test, err, &diag, e->err, e->field, NULL);

	/* qcow2_header_parse() alone reaches the same verdict. */
	memset(&diag, 0, sizeof(diag));
	err = qcow2_header_parse(buf, fx->buf_len, fx->file_size, hh, &diag);
	expect_verdict(test, err, &diag, e->err, e->field, NULL);
	if (e->err)
		return;
	KUNIT_EXPECT_EQ(test, memcmp(hh, h, sizeof(*hh)), 0);

	KUNIT_EXPECT_EQ(test, h->version, e->version);
	KUNIT_EXPECT_EQ(test, h->cluster_bits, e->cluster_bits);
	KUNIT_EXPECT_EQ(test, h->cluster_size, (u64)fx->cluster_size);
	KUNIT_EXPECT_EQ(test, h->size, e->size);
	KUNIT_EXPECT_EQ(test, h->refcount_order, e->refcount_order);
	KUNIT_EXPECT_EQ(test, h->l1_size, e->l1_size);
	KUNIT_EXPECT_EQ(test, h->crypt_method, 0U);
	KUNIT_EXPECT_EQ(test, h->incompatible_features, e->incompat);
	KUNIT_EXPECT_EQ(test, h->compatible_features, e->compat);
	KUNIT_EXPECT_EQ(test, h->autoclear_features, e->autoclear);
	KUNIT_EXPECT_EQ(test, h->compression_type, e->compression_type);
	KUNIT_EXPECT_EQ(test, h->nb_snapshots, e->nb_snapshots);
	/* v2 is 72 bytes; qemu 7.2 writes v3 headers of 112 bytes */
	KUNIT_EXPECT_EQ(test, h->header_length, e->version == 2 ? 72U : 112U);

	/* derived geometry, from the spec's formulas */
	KUNIT_EXPECT_EQ(test, h->extended_l2, !!(e->incompat & QCOW2_INCOMPAT_EXTL2));
	KUNIT_EXPECT_EQ(test, h->l2_entry_size, h->extended_l2 ? 16U : 8U);
	entry_bits = h->extended_l2 ? 4 : 3;
	KUNIT_EXPECT_EQ(test, 1ULL << h->l2_bits,
			h->cluster_size >> entry_bits);	/* l2_entries */
	KUNIT_EXPECT_EQ(test, h->subcluster_bits,
			h->extended_l2 ? h->cluster_bits - 5 : h->cluster_bits);
	/* refcount_block_entries = cluster_size * 8 / refcount_bits */
	KUNIT_EXPECT_EQ(test, 1ULL << h->refblock_bits,
			h->cluster_size * 8 >> h->refcount_order);
	KUNIT_EXPECT_GE(test, (u64)h->l1_size,
			l1_entries_for(h->size, h->cluster_bits, h->extended_l2));

	expect_string(test, x->has_backing_file, x->backing_file, e->backing_file);
	expect_string(test, x->has_backing_format, x->backing_format,
		      e->backing_format);
	expect_string(test, x->has_data_file, x->data_file, e->data_file);
	KUNIT_EXPECT_EQ(test, x->nr_feature_names, e->nr_feature_names);
	KUNIT_EXPECT_EQ(test, x->has_bitmaps, e->nb_bitmaps != 0);
	KUNIT_EXPECT_EQ(test, x->nb_bitmaps, e->nb_bitmaps);
	KUNIT_EXPECT_FALSE(test, x->has_crypto);
	KUNIT_EXPECT_EQ(test, x->nr_unknown, 0U);
	KUNIT_EXPECT_GT(test, x->ext_end, h->header_length);
	KUNIT_EXPECT_LE(test, (size_t)x->ext_end, fx->buf_len);
	if (x->has_backing_file)
		KUNIT_EXPECT_LE(test, (u64)x->ext_end, h->backing_file_offset);
}

/* qcow2_header_encode() reproduces qemu-img's header byte for byte. */
static void format_header_encode_test(struct kunit *test)
{
	const struct fx_expect *e = test->param_value;
	const struct qcow2_fixture *fx = fx_get(test, e->fixture);
	struct qcow2_header_disk *out = kunit_kzalloc(test, sizeof(*out), GFP_KERNEL);
	struct qcow2_header *h = kunit_kzalloc(test, sizeof(*h), GFP_KERNEL);
	struct qcow2_diag diag = {};
	u8 *buf = fx_buf(test, fx);
	size_t len;

	KUNIT_ASSERT_NOT_NULL(test, out);
	KUNIT_ASSERT_NOT_NULL(test, h);
	if (e->err) {
		/* the LUKS image: decode what is there with crypt_method 0 */
		put_unaligned_be32(0, buf + offsetof(struct qcow2_header_disk,
						     crypt_method));
	}
	KUNIT_ASSERT_EQ(test, qcow2_header_parse(buf, fx->buf_len, fx->file_size,
						 h, &diag), 0);
	qcow2_header_encode(h, out);
	len = h->version == 2 ? QCOW2_V2_HEADER_LEN : h->header_length;
	KUNIT_ASSERT_LE(test, len, sizeof(*out));
	KUNIT_EXPECT_EQ(test, memcmp(out, buf, len), 0);
	/* nothing of the v3 part leaks into a v2 encoding */
	if (h->version == 2)
		KUNIT_EXPECT_NULL(test, memchr_inv((u8 *)out + len, 0,
						   sizeof(*out) - len));
}

/* The names qemu wrote in its feature name table are the spec's names. */
static void format_feature_names_test(struct kunit *test)
{
	const struct qcow2_image *img = fx_image(test, fx_get(test, "v3"));
	const struct qcow2_extensions *x = &img->ext;
	static const struct { u8 type, bit; } unknown[] = {
		{ 0, 5 }, { 0, 63 }, { 1, 1 }, { 1, 63 }, { 2, 2 }, { 2, 63 }, { 3, 0 },
	};
	unsigned int i;

	KUNIT_ASSERT_EQ(test, x->nr_feature_names, QEMU_NAMES);
	for (i = 0; i < x->nr_feature_names; i++) {
		const struct qcow2_feature_name *f = &x->feature_names[i];
		const char *known = qcow2_known_feature_name(f->type, f->bit);

		KUNIT_ASSERT_NOT_NULL_MSG(test, known, "type %u bit %u", f->type, f->bit);
		KUNIT_EXPECT_STREQ(test, known, f->name);
		KUNIT_EXPECT_STREQ(test, qcow2_feature_name(x, f->type, f->bit), f->name);
		KUNIT_EXPECT_STREQ(test, qcow2_feature_name(NULL, f->type, f->bit), f->name);
	}
	/* incompatible bits 0-4, compatible bit 0, autoclear bits 0-1 */
	KUNIT_EXPECT_STREQ(test, qcow2_known_feature_name(0, 0), "dirty bit");
	KUNIT_EXPECT_STREQ(test, qcow2_known_feature_name(0, 4), "extended L2 entries");
	KUNIT_EXPECT_STREQ(test, qcow2_known_feature_name(1, 0), "lazy refcounts");
	KUNIT_EXPECT_STREQ(test, qcow2_known_feature_name(2, 1), "raw external data");
	for (i = 0; i < ARRAY_SIZE(unknown); i++) {
		KUNIT_EXPECT_NULL(test, qcow2_known_feature_name(unknown[i].type,
								 unknown[i].bit));
		KUNIT_EXPECT_NULL(test, qcow2_feature_name(x, unknown[i].type,
							   unknown[i].bit));
	}
}

/* ------------------------------------------------------------------------
 * qcow_format: header and extension mutations
 */

/* Offsets in the fixtures' header clusters (see qcow2_fixtures.h). */
enum {
	/* v3 and most others: feature name table extension at 0x70 */
	V3_FT_TYPE = 0x70, V3_FT_LEN = 0x74, V3_FT_ENTRY0 = 0x78,
	V3_END = 0x1f8,		/* end-of-extensions marker */
	/* backing_*: backing format at 0x70, feature table at 0x80 */
	BK_FMT_LEN = 0x74, BK_FT_TYPE = 0x80, BK_END = 0x208, BK_NAME = 0x210,
	/* bitmap: bitmaps extension after the feature table */
	BM_TYPE = 0x1f8, BM_LEN = 0x1fc, BM_NB = 0x200, BM_RESERVED = 0x204,
	BM_DIR_SIZE = 0x208, BM_DIR_OFFSET = 0x210,
	/* data_file*: data file name extension at 0x70 */
	DF_LEN = 0x74,
	/* c512: nothing after the 112-byte header */
	C512_EXT = 0x70,
};

struct mutation {
	const char *fixture;
	const char *desc;
	struct fld set[3];
	u64 file_size;		/* 0: the fixture's */
	int err;
	const char *field;
	bool img_only;		/* qcow2_header_parse() alone accepts it */
	const char *msg;	/* substring of the diag message, or NULL */
};

#define BIT64(n)	(1ULL << (n))

static const struct mutation mutations[] = {
	/* magic */
	{ "v3", "magic QFI\\xfb", { HDR(magic, 4, QCOW2_MAGIC) } },
	{ "v3", "magic with one bit off", { HDR(magic, 4, 0x514649fa) },
	  .err = -EINVAL, .field = "magic" },
	{ "v3", "magic byte swapped", { HDR(magic, 4, 0xfb494651) },
	  .err = -EINVAL, .field = "magic" },
	{ "v2", "magic zero", { HDR(magic, 4, 0) }, .err = -EINVAL, .field = "magic" },

	/* version: "valid values are 2 and 3" */
	{ "v3", "version 3", { HDR(version, 4, 3) } },
	{ "v3", "version 2 ignores the v3 fields", { HDR(version, 4, 2) } },
	{ "v2", "version 3 needs header_length", { HDR(version, 4, 3) },
	  .err = -EINVAL, .field = "header_length" },
	{ "v3", "version 1", { HDR(version, 4, 1) },
	  .err = -EOPNOTSUPP, .field = "version" },
	{ "v3", "version 4", { HDR(version, 4, 4) },
	  .err = -EOPNOTSUPP, .field = "version" },
	{ "v3", "version 0", { HDR(version, 4, 0) },
	  .err = -EOPNOTSUPP, .field = "version" },
	{ "v3", "version 0xffffffff", { HDR(version, 4, 0xffffffff) },
	  .err = -EOPNOTSUPP, .field = "version" },

	/* backing file name */
	{ "v3", "backing_file_size undefined without a backing file",
	  { HDR(backing_file_size, 4, 0xffffffff) } },
	{ "backing_raw", "backing name of 1024 bytes (max 1023)",
	  { HDR(backing_file_size, 4, 1024) },
	  .err = -EINVAL, .field = "backing_file_size" },
	{ "backing_raw", "backing name of 1023 bytes, NUL inside",
	  { HDR(backing_file_size, 4, 1023) },
	  .err = -EINVAL, .field = "backing_file_offset", .img_only = true },
	{ "backing_raw", "backing name one byte longer takes a NUL",
	  { HDR(backing_file_size, 4, 9) },
	  .err = -EINVAL, .field = "backing_file_offset", .img_only = true },
	{ "backing_raw", "backing name of size 0 is no backing file",
	  { HDR(backing_file_size, 4, 0) } },
	{ "backing_raw", "backing name inside the header",
	  { HDR(backing_file_offset, 8, 0x68) },
	  .err = -EINVAL, .field = "backing_file_offset" },
	{ "backing_raw", "backing name past the first cluster",
	  { HDR(backing_file_offset, 8, SZ_64K - 4) },
	  .err = -EINVAL, .field = "backing_file_offset" },
	{ "backing_raw", "backing name past the buffer handed in",
	  { HDR(backing_file_offset, 8, SZ_4K - 4) },
	  .err = -EINVAL, .field = "backing_file_offset" },
	{ "backing_raw", "backing name offset 2^64-8",
	  { HDR(backing_file_offset, 8, U64_MAX - 7) },
	  .err = -EINVAL, .field = "backing_file_offset" },
	{ "backing_raw", "extension area cut by the backing name",
	  { HDR(backing_file_offset, 8, BK_END + 4) },
	  .err = -EINVAL, .field = "header extension", .img_only = true },

	/* cluster_bits: 9..21 (QEMU's limit), ext L2 needs 14 */
	{ "v3", "cluster_bits 8", { HDR(cluster_bits, 4, 8) },
	  .err = -EINVAL, .field = "cluster_bits" },
	{ "v3", "cluster_bits 22", { HDR(cluster_bits, 4, 22) },
	  .err = -EINVAL, .field = "cluster_bits" },
	{ "v3", "cluster_bits 0", { HDR(cluster_bits, 4, 0) },
	  .err = -EINVAL, .field = "cluster_bits" },
	{ "v3", "cluster_bits 64", { HDR(cluster_bits, 4, 64) },
	  .err = -EINVAL, .field = "cluster_bits" },
	{ "v3", "cluster_bits 17 misaligns the L1 table", { HDR(cluster_bits, 4, 17) },
	  .err = -EINVAL, .field = "l1_table_offset" },
	{ "v3", "cluster_bits 15 needs a larger L1 table", { HDR(cluster_bits, 4, 15) },
	  .err = -EINVAL, .field = "l1_size" },
	{ "c512", "extended L2 with 512-byte clusters",
	  { HDR(incompatible_features, 8, QCOW2_INCOMPAT_EXTL2) },
	  .err = -EINVAL, .field = "cluster_bits" },

	/* size */
	{ "v3", "size 0", { HDR(size, 8, 0) } },
	{ "v3", "size 1 GiB + 1 needs a third L1 entry", { HDR(size, 8, SZ_1G + 1ULL) },
	  .err = -EINVAL, .field = "l1_size" },
	{ "v3", "size 2^61 needs a larger L1 table", { HDR(size, 8, BIT64(61)) },
	  .err = -EINVAL, .field = "l1_size" },
	{ "v3", "size 2^61 + 1", { HDR(size, 8, BIT64(61) + 1) },
	  .err = -EINVAL, .field = "size" },
	{ "v3", "size 2^64 - 1", { HDR(size, 8, U64_MAX) },
	  .err = -EINVAL, .field = "size" },
	{ "c2m", "2 EB with 2 MiB clusters (61 bits)",
	  { HDR(size, 8, BIT64(61)), HDR(l1_size, 4, SZ_32M / 8) },
	  .file_size = 0x600000 + SZ_32M },
	{ "c512", "128 GB with 512-byte clusters (37 bits)",
	  { HDR(size, 8, 128ULL * SZ_1G), HDR(l1_size, 4, SZ_32M / 8) },
	  .file_size = 0x600 + SZ_32M },
	{ "c512", "128 GB + 1 with 512-byte clusters",
	  { HDR(size, 8, 128ULL * SZ_1G + 1), HDR(l1_size, 4, SZ_32M / 8) },
	  .file_size = 0x600 + SZ_32M, .err = -EINVAL, .field = "l1_size" },

	/* crypt_method */
	{ "v3", "crypt_method 1 (AES)", { HDR(crypt_method, 4, 1) },
	  .err = -EOPNOTSUPP, .field = "crypt_method" },
	{ "v3", "crypt_method 2 (LUKS)", { HDR(crypt_method, 4, 2) },
	  .err = -EOPNOTSUPP, .field = "crypt_method" },
	{ "v3", "crypt_method 3", { HDR(crypt_method, 4, 3) },
	  .err = -EINVAL, .field = "crypt_method" },

	/* L1 table */
	{ "v3", "l1_size 0 for 1 GiB", { HDR(l1_size, 4, 0) },
	  .err = -EINVAL, .field = "l1_size" },
	{ "v3", "empty disk needs no L1 table", { HDR(size, 8, 0), HDR(l1_size, 4, 0) } },
	{ "v3", "l1_size 3 runs past the end of the file", { HDR(l1_size, 4, 3) },
	  .err = -EINVAL, .field = "l1_table_offset" },
	{ "v3", "l1_size of 32 MiB", { HDR(l1_size, 4, SZ_32M / 8) },
	  .file_size = 0x30000 + SZ_32M },
	{ "v3", "l1_size over 32 MiB", { HDR(l1_size, 4, SZ_32M / 8 + 1) },
	  .file_size = 0x30000 + SZ_64M, .err = -EINVAL, .field = "l1_size" },
	{ "v3", "l1_size 2^32 - 1", { HDR(l1_size, 4, U32_MAX) },
	  .err = -EINVAL, .field = "l1_size" },
	{ "v3", "l1_table_offset not cluster aligned", { HDR(l1_table_offset, 8, 0x30200) },
	  .err = -EINVAL, .field = "l1_table_offset" },
	{ "v3", "l1_table_offset 0", { HDR(l1_table_offset, 8, 0) },
	  .err = -EINVAL, .field = "l1_table_offset" },
	{ "v3", "l1_table_offset past the end of the file",
	  { HDR(l1_table_offset, 8, 0x40000) },
	  .err = -EINVAL, .field = "l1_table_offset" },
	{ "v3", "l1_table_offset near 2^64", { HDR(l1_table_offset, 8, U64_MAX << 16) },
	  .err = -EINVAL, .field = "l1_table_offset" },
	{ "v3", "L1 table on the refcount table", { HDR(l1_table_offset, 8, 0x10000) },
	  .err = -EINVAL, .field = "refcount table", .img_only = true },

	/* refcount table */
	{ "v3", "refcount_table_offset not cluster aligned",
	  { HDR(refcount_table_offset, 8, 0x10200) },
	  .err = -EINVAL, .field = "refcount_table_offset" },
	{ "v3", "refcount_table_offset 0", { HDR(refcount_table_offset, 8, 0) },
	  .err = -EINVAL, .field = "refcount_table_offset" },
	{ "v3", "refcount table past the end of the file",
	  { HDR(refcount_table_offset, 8, 0x40000) },
	  .err = -EINVAL, .field = "refcount_table_offset" },
	{ "v3", "refcount table near 2^64", { HDR(refcount_table_offset, 8, U64_MAX << 16) },
	  .err = -EINVAL, .field = "refcount_table_offset" },
	{ "v3", "refcount table on the L1 table", { HDR(refcount_table_offset, 8, 0x30000) },
	  .file_size = 0x40000, .err = -EINVAL, .field = "refcount table", .img_only = true },
	{ "v3", "refcount_table_clusters 0", { HDR(refcount_table_clusters, 4, 0) },
	  .err = -EINVAL, .field = "refcount_table_clusters" },
	{ "v3", "refcount_table_clusters 2", { HDR(refcount_table_clusters, 4, 2) } },
	{ "v3", "refcount table of 3 clusters reaches the L1 table",
	  { HDR(refcount_table_clusters, 4, 3) }, .file_size = 0x40000,
	  .err = -EINVAL, .field = "refcount table", .img_only = true },
	{ "v3", "refcount table of 8 MiB", { HDR(refcount_table_clusters, 4, 128) },
	  .file_size = 0x10000 + SZ_8M, .err = -EINVAL, .field = "refcount table",
	  .img_only = true },
	{ "v3", "refcount table of 8 MiB, L1 moved after it",
	  { HDR(refcount_table_clusters, 4, 128), HDR(l1_table_offset, 8, 0x10000 + SZ_8M) },
	  .file_size = 0x20000 + SZ_8M },
	{ "v3", "refcount table over 8 MiB", { HDR(refcount_table_clusters, 4, 129) },
	  .file_size = SZ_1G, .err = -EINVAL, .field = "refcount_table_clusters" },
	{ "v3", "refcount_table_clusters 2^32 - 1",
	  { HDR(refcount_table_clusters, 4, U32_MAX) },
	  .err = -EINVAL, .field = "refcount_table_clusters" },

	/* snapshots */
	{ "v3", "snapshots_offset ignored without snapshots",
	  { HDR(snapshots_offset, 8, 0x1234) } },
	{ "v3", "nb_snapshots 1 at offset 0", { HDR(nb_snapshots, 4, 1) },
	  .err = -EINVAL, .field = "snapshots_offset" },
	{ "v3", "nb_snapshots 1 in a free cluster",
	  { HDR(nb_snapshots, 4, 1), HDR(snapshots_offset, 8, 0x20000) } },
	{ "v3", "snapshots_offset not cluster aligned",
	  { HDR(nb_snapshots, 4, 1), HDR(snapshots_offset, 8, 0x20008) },
	  .err = -EINVAL, .field = "snapshots_offset" },
	{ "snapshots", "snapshot table on the refcount table",
	  { HDR(snapshots_offset, 8, 0x10000) },
	  .err = -EINVAL, .field = "snapshot table", .img_only = true },
	{ "snapshots", "65536 snapshots run past the end of the file",
	  { HDR(nb_snapshots, 4, 65536) },
	  .err = -EINVAL, .field = "snapshots_offset" },
	{ "snapshots", "65536 snapshots", { HDR(nb_snapshots, 4, 65536) },
	  .file_size = 0xd0000 + 65536 * 40 },
	{ "snapshots", "65537 snapshots", { HDR(nb_snapshots, 4, 65537) },
	  .file_size = SZ_1G, .err = -EINVAL, .field = "nb_snapshots" },

	/* incompatible_features: unknown bits refused, named */
	{ "v3", "incompatible bit 0: dirty",
	  { HDR(incompatible_features, 8, QCOW2_INCOMPAT_DIRTY) } },
	{ "v3", "incompatible bit 1: corrupt",
	  { HDR(incompatible_features, 8, QCOW2_INCOMPAT_CORRUPT) } },
	{ "v3", "incompatible bit 2: external data file, name optional",
	  { HDR(incompatible_features, 8, QCOW2_INCOMPAT_DATA_FILE) } },
	{ "v3", "incompatible bit 3 needs compression_type",
	  { HDR(incompatible_features, 8, QCOW2_INCOMPAT_COMPRESSION) },
	  .err = -EINVAL, .field = "compression_type" },
	{ "v3", "incompatible bit 4: 1 GiB needs 4 L1 entries with ext L2",
	  { HDR(incompatible_features, 8, QCOW2_INCOMPAT_EXTL2) },
	  .err = -EINVAL, .field = "l1_size" },
	{ "v3", "incompatible bit 4: 512 MiB in 2 L1 entries with ext L2",
	  { HDR(incompatible_features, 8, QCOW2_INCOMPAT_EXTL2), HDR(size, 8, SZ_512M) } },
	{ "extl2", "extended L2 bit cleared", { HDR(incompatible_features, 8, 0) } },
	{ "v3", "incompatible bit 5 unknown", { HDR(incompatible_features, 8, BIT64(5)) },
	  .err = -EOPNOTSUPP, .field = "incompatible_features", .msg = "bit 5" },
	{ "v3", "incompatible bit 63 unknown", { HDR(incompatible_features, 8, BIT64(63)) },
	  .err = -EOPNOTSUPP, .field = "incompatible_features", .msg = "bit 63" },
	{ "v3", "unknown bit named from the feature name table",
	  { AT(V3_FT_ENTRY0 + 1, 1, 5), AT(V3_FT_ENTRY0 + 2, 8, 0x6675747572650000ULL),
	    HDR(incompatible_features, 8, BIT64(5)) },
	  .err = -EOPNOTSUPP, .field = "incompatible_features", .msg = "future" },

	/* compatible_features: unknown bits ignored */
	{ "v3", "compatible bit 0: lazy refcounts",
	  { HDR(compatible_features, 8, QCOW2_COMPAT_LAZY_REFCOUNTS) } },
	{ "v3", "compatible bit 1 unknown, ignored", { HDR(compatible_features, 8, 2) } },
	{ "v3", "all compatible bits", { HDR(compatible_features, 8, U64_MAX) } },

	/* autoclear_features */
	/*
	 * The spec calls this an error, but QEMU opens such images (there
	 * are simply no bitmaps) and autoclear bits only bind writers, so it
	 * is tolerated rather than refusing an image QEMU reads.
	 */
	{ "v3", "autoclear bit 0 without the bitmaps extension, tolerated",
	  { HDR(autoclear_features, 8, QCOW2_AUTOCLEAR_BITMAPS) },
	  .img_only = true },
	{ "v3", "autoclear bit 1 needs the external data file bit",
	  { HDR(autoclear_features, 8, QCOW2_AUTOCLEAR_DATA_FILE_RAW) },
	  .err = -EINVAL, .field = "autoclear_features" },
	{ "v3", "autoclear bits 2-63 unknown, ignored",
	  { HDR(autoclear_features, 8, U64_MAX << 2) } },
	{ "data_file", "autoclear bit 1 with an external data file",
	  { HDR(autoclear_features, 8, QCOW2_AUTOCLEAR_DATA_FILE_RAW) } },
	{ "data_file_raw", "raw external data file with a backing file",
	  { HDR(backing_file_offset, 8, 0x300), HDR(backing_file_size, 4, 4) },
	  .err = -EINVAL, .field = "backing_file_offset" },
	{ "data_file_raw", "raw external data bit without a data file",
	  { HDR(incompatible_features, 8, 0) },
	  .err = -EINVAL, .field = "autoclear_features" },
	{ "data_file", "data file name without the data file bit",
	  { HDR(incompatible_features, 8, 0) },
	  .err = -EINVAL, .field = "data file extension", .img_only = true },

	/* refcount_order: at most 6; version 2 is always 4 */
	{ "v3", "refcount_order 0", { HDR(refcount_order, 4, 0) } },
	{ "v3", "refcount_order 1", { HDR(refcount_order, 4, 1) } },
	{ "v3", "refcount_order 2", { HDR(refcount_order, 4, 2) } },
	{ "v3", "refcount_order 3", { HDR(refcount_order, 4, 3) } },
	{ "v3", "refcount_order 5", { HDR(refcount_order, 4, 5) } },
	{ "v3", "refcount_order 6", { HDR(refcount_order, 4, 6) } },
	{ "v3", "refcount_order 7", { HDR(refcount_order, 4, 7) },
	  .err = -EINVAL, .field = "refcount_order" },
	{ "v3", "refcount_order 2^32 - 1", { HDR(refcount_order, 4, U32_MAX) },
	  .err = -EINVAL, .field = "refcount_order" },
	{ "v2", "version 2 ignores refcount_order", { HDR(refcount_order, 4, 7) } },

	/* header_length: v3 >= 104, multiple of 8 */
	{ "v3", "header_length 104", { HDR(header_length, 4, 104) } },
	{ "v3", "header_length 96", { HDR(header_length, 4, 96) },
	  .err = -EINVAL, .field = "header_length" },
	{ "v3", "header_length 108", { HDR(header_length, 4, 108) },
	  .err = -EINVAL, .field = "header_length" },
	{ "v3", "header_length 0", { HDR(header_length, 4, 0) },
	  .err = -EINVAL, .field = "header_length" },
	{ "v3", "header_length 120 misframes the extensions", { HDR(header_length, 4, 120) },
	  .err = -EINVAL, .field = "header extension", .img_only = true },
	{ "v3", "header_length 4096 (all of the buffer)", { HDR(header_length, 4, SZ_4K) } },
	{ "v3", "header_length past the buffer", { HDR(header_length, 4, SZ_4K + 8) },
	  .err = -EINVAL, .field = "header_length" },
	{ "v3", "header_length past the cluster", { HDR(header_length, 4, SZ_64K + 8) },
	  .err = -EINVAL, .field = "header_length" },
	{ "c512", "header_length of a whole cluster", { HDR(header_length, 4, 512) } },
	{ "c512", "header_length over the cluster", { HDR(header_length, 4, 520) },
	  .err = -EINVAL, .field = "header_length" },

	/* compression_type (byte 104) and incompatible bit 3 */
	{ "v3", "compression_type 1 without bit 3", { HDR(compression_type, 1, 1) },
	  .err = -EINVAL, .field = "compression_type" },
	{ "v3", "compression_type beyond header_length is no field",
	  { HDR(compression_type, 1, 1), HDR(header_length, 4, 104) } },
	{ "zstd", "bit 3 with compression_type 0", { HDR(compression_type, 1, 0) },
	  .err = -EINVAL, .field = "compression_type" },
	{ "zstd", "bit 3 with compression_type absent", { HDR(header_length, 4, 104) },
	  .err = -EINVAL, .field = "compression_type" },
	{ "zstd", "compression_type 2 unknown", { HDR(compression_type, 1, 2) },
	  .err = -EOPNOTSUPP, .field = "compression_type" },
	{ "zstd", "compression_type 255 unknown", { HDR(compression_type, 1, 255) },
	  .err = -EOPNOTSUPP, .field = "compression_type" },

	/* encryption header pointer: only with LUKS */
	{ "luks", "crypt_method 1 (AES)", { HDR(crypt_method, 4, 1) },
	  .err = -EOPNOTSUPP, .field = "crypt_method" },
	{ "luks", "crypto extension without LUKS", { HDR(crypt_method, 4, 0) },
	  .err = -EINVAL, .field = "crypto extension", .img_only = true },

	/* header extensions */
	{ "v3", "unknown extension is skipped",
	  { AT(V3_END, 4, 0x12345678), AT(V3_END + 4, 4, 8) } },
	{ "v3", "unknown extension running past the area",
	  { AT(V3_END, 4, 0x12345678), AT(V3_END + 4, 4, SZ_64K) },
	  .err = -EINVAL, .field = "header extension", .img_only = true },
	{ "v3", "feature table length not a multiple of 48", { AT(V3_FT_LEN, 4, 0x17f) },
	  .err = -EINVAL, .field = "feature name table", .img_only = true },
	{ "v3", "feature table running past the area", { AT(V3_FT_LEN, 4, SZ_4K) },
	  .err = -EINVAL, .field = "header extension", .img_only = true },
	{ "v3", "feature table length short of its data",
	  { AT(V3_FT_LEN, 4, 7 * 48) },
	  .err = -EINVAL, .field = "header extension", .img_only = true },
	{ "v3", "feature type 3", { AT(V3_FT_ENTRY0, 1, 3) },
	  .err = -EINVAL, .field = "feature name table", .img_only = true },
	{ "v3", "feature bit 64", { AT(V3_FT_ENTRY0 + 1, 1, 64) },
	  .err = -EINVAL, .field = "feature name table", .img_only = true },
	{ "bitmap", "feature table twice", { AT(BM_TYPE, 4, QCOW2_EXT_FEATURE_TABLE) },
	  .err = -EINVAL, .field = "header extension", .img_only = true,
	  .msg = "twice" },
	{ "backing_raw", "backing format twice",
	  { AT(BK_FT_TYPE, 4, QCOW2_EXT_BACKING_FORMAT) },
	  .err = -EINVAL, .field = "header extension", .img_only = true,
	  .msg = "twice" },
	{ "backing_raw", "backing format with a NUL byte", { AT(BK_FMT_LEN, 4, 4) },
	  .err = -EINVAL, .field = "backing format extension", .img_only = true },
	{ "backing_raw", "backing format running into the backing name",
	  { AT(BK_FMT_LEN, 4, 1024) },
	  .err = -EINVAL, .field = "header extension", .img_only = true },
	{ "data_file", "data file name with a NUL byte", { AT(DF_LEN, 4, 14) },
	  .err = -EINVAL, .field = "data file extension", .img_only = true },
	{ "bitmap", "nb_bitmaps 0", { AT(BM_NB, 4, 0) },
	  .err = -EINVAL, .field = "nb_bitmaps", .img_only = true },
	{ "bitmap", "bitmaps reserved field not zero", { AT(BM_RESERVED, 4, 1) },
	  .err = -EINVAL, .field = "bitmaps extension", .img_only = true },
	{ "bitmap", "bitmaps extension of 16 bytes", { AT(BM_LEN, 4, 16) },
	  .err = -EINVAL, .field = "bitmaps extension", .img_only = true },
	{ "bitmap", "bitmaps extension of 32 bytes", { AT(BM_LEN, 4, 32) },
	  .err = -EINVAL, .field = "bitmaps extension", .img_only = true },
	{ "bitmap", "bitmap directory not cluster aligned",
	  { AT(BM_DIR_OFFSET, 8, 0x50008) },
	  .err = -EINVAL, .field = "bitmap_directory_offset", .img_only = true },
	{ "bitmap", "bitmap directory in the header cluster",
	  { AT(BM_DIR_OFFSET, 8, 0) },
	  .err = -EINVAL, .field = "bitmap_directory_offset", .img_only = true },
	{ "bitmap", "bitmap directory past the end of the file",
	  { AT(BM_DIR_OFFSET, 8, 0x60000) },
	  .err = -EINVAL, .field = "bitmap_directory_offset", .img_only = true },
	{ "bitmap", "bitmap directory size 0", { AT(BM_DIR_SIZE, 8, 0) },
	  .err = -EINVAL, .field = "bitmap_directory_size", .img_only = true },
	{ "bitmap", "bitmap directory on the L1 table", { AT(BM_DIR_OFFSET, 8, 0x30000) },
	  .err = -EINVAL, .field = "bitmap directory", .img_only = true },
	{ "bitmap", "inconsistent bitmaps (autoclear bit 0 clear) are ignored",
	  { HDR(autoclear_features, 8, 0), AT(BM_NB, 4, 0), AT(BM_RESERVED, 4, 1) } },
	{ "c512", "extensions filling the cluster need no end marker",
	  { AT(C512_EXT, 4, 0x12345678), AT(C512_EXT + 4, 4, 512 - C512_EXT - 8) } },
	{ "c512", "extension one byte past the cluster",
	  { AT(C512_EXT, 4, 0x12345678), AT(C512_EXT + 4, 4, 512 - C512_EXT - 7) },
	  .err = -EINVAL, .field = "header extension", .img_only = true },
};

static void mutation_desc(const struct mutation *m, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s: %s", m->fixture, m->desc);
}

KUNIT_ARRAY_PARAM(mutation, mutations, mutation_desc);

static void format_mutation_test(struct kunit *test)
{
	const struct mutation *m = test->param_value;
	const struct qcow2_fixture *fx = fx_get(test, m->fixture);
	struct qcow2_image *img = alloc_image(test);
	struct qcow2_header *h = kunit_kzalloc(test, sizeof(*h), GFP_KERNEL);
	struct qcow2_diag diag = {};
	u64 file_size;
	u8 *buf;
	int err;

	KUNIT_ASSERT_NOT_NULL(test, h);
	buf = fx_buf(test, fx);
	apply(test, buf, fx->buf_len, m->set, ARRAY_SIZE(m->set));
	file_size = m->file_size ?: fx->file_size;

	err = qcow2_image_parse(buf, fx->buf_len, file_size, img, &diag);
	expect_verdict(test, err, &diag, m->err, m->field, m->msg);

	memset(&diag, 0, sizeof(diag));
	err = qcow2_header_parse(buf, fx->buf_len, file_size, h, &diag);
	if (!m->err || m->img_only)
		KUNIT_EXPECT_EQ_MSG(test, err, 0, "header_parse: %s: %s",
				    diag.field ?: "-", diag.msg);
	else
		expect_verdict(test, err, &diag, m->err, m->field, NULL);
}

/* Short buffers and files: never read past what was handed in. */
static void format_short_input_test(struct kunit *test)
{
	const struct qcow2_fixture *v3 = fx_get(test, "v3");
	const struct qcow2_fixture *v2 = fx_get(test, "v2");
	struct qcow2_header *h = kunit_kzalloc(test, sizeof(*h), GFP_KERNEL);
	struct qcow2_diag diag = {};
	u8 *buf3 = fx_buf(test, v3), *buf2 = fx_buf(test, v2), *copy;
	int err;

	KUNIT_ASSERT_NOT_NULL(test, h);
	err = qcow2_header_parse(buf2, 71, v2->file_size, h, &diag);
	expect_verdict(test, err, &diag, -EINVAL, "header", NULL);
	err = qcow2_header_parse(buf2, v2->buf_len, 71, h, &diag);
	expect_verdict(test, err, &diag, -EINVAL, "header", NULL);
	err = qcow2_header_parse(buf2, 0, 0, h, &diag);
	expect_verdict(test, err, &diag, -EINVAL, "header", NULL);
	/* a v2 header is complete at 72 bytes */
	memset(&diag, 0, sizeof(diag));
	KUNIT_EXPECT_EQ(test, qcow2_header_parse(buf2, 72, v2->file_size, h, &diag), 0);

	err = qcow2_header_parse(buf3, 103, v3->file_size, h, &diag);
	expect_verdict(test, err, &diag, -EINVAL, "header_length", NULL);
	err = qcow2_header_parse(buf3, 104, v3->file_size, h, &diag);
	expect_verdict(test, err, &diag, -EINVAL, "header_length", NULL);
	err = qcow2_header_parse(buf3, v3->buf_len, 104, h, &diag);
	expect_verdict(test, err, &diag, -EINVAL, "header_length", NULL);
	/* the header alone (112 bytes) is enough for qcow2_header_parse() */
	memset(&diag, 0, sizeof(diag));
	KUNIT_EXPECT_EQ(test, qcow2_header_parse(buf3, 112, v3->file_size, h, &diag), 0);

	/* an exact-size copy, so KASAN sees any read past the end */
	copy = kunit_kmalloc(test, 112, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, copy);
	memcpy(copy, buf3, 112);
	memset(&diag, 0, sizeof(diag));
	KUNIT_EXPECT_EQ(test, qcow2_header_parse(copy, 112, v3->file_size, h, &diag), 0);
}

/* Every cluster size, with and without extended L2: geometry and indexes. */
static void format_cluster_size_test(struct kunit *test)
{
	u32 cb = *(const u32 *)test->param_value;
	u64 cs = 1ULL << cb, size = 16ULL * SZ_1G + 512, seed = 0x5eed0000 + cb;
	struct qcow2_image *img = alloc_image(test);
	const struct qcow2_header *h = &img->hdr;
	int extl2;

	for (extl2 = 0; extl2 <= 1; extl2++) {
		u64 l2_entries = cs / (extl2 ? 16 : 8), per_l1 = cs * l2_entries;
		u64 incompat = extl2 ? QCOW2_INCOMPAT_EXTL2 : 0;
		u64 need = l1_entries_for(size, cb, extl2), file_size, offs[16];
		struct qcow2_diag diag = {};
		unsigned int i, n = 0;
		size_t len;
		u8 *buf;
		int err;

		KUNIT_EXPECT_EQ(test, qcow2_l1_entries_needed(size, cb, extl2), need);
		buf = geo_image(test, 3, cb, incompat, size, need, &len, &file_size);
		err = qcow2_image_parse(buf, len, file_size, img, &diag);
		if (extl2 && cb < QCOW2_MIN_EXT_L2_CLUSTER_BITS) {
			expect_verdict(test, err, &diag, -EINVAL, "cluster_bits", NULL);
			continue;
		}
		KUNIT_ASSERT_EQ_MSG(test, err, 0, "ext L2 %d: %s: %s", extl2,
				    diag.field ?: "-", diag.msg);
		KUNIT_EXPECT_EQ(test, h->cluster_size, cs);
		KUNIT_EXPECT_EQ(test, h->extended_l2, (bool)extl2);
		KUNIT_EXPECT_EQ(test, h->l2_entry_size, extl2 ? 16U : 8U);
		KUNIT_EXPECT_EQ(test, 1ULL << h->l2_bits, l2_entries);
		/* 32 subclusters of the same size with extended L2 */
		KUNIT_EXPECT_EQ(test, 1ULL << h->subcluster_bits, extl2 ? cs / 32 : cs);
		KUNIT_EXPECT_EQ(test, 1ULL << h->refblock_bits, cs * 8 / 16);

		offs[n++] = 0;
		offs[n++] = cs - 1;
		offs[n++] = cs;
		if (per_l1 < size) {
			offs[n++] = per_l1 - 1;
			offs[n++] = per_l1;
		}
		offs[n++] = size - 1;
		while (n < ARRAY_SIZE(offs))
			offs[n++] = rnd_below(&seed, size);
		for (i = 0; i < n; i++) {
			u64 off = offs[i];

			KUNIT_EXPECT_EQ(test, qcow2_l1_index(h, off), div64_u64(off, per_l1));
			KUNIT_EXPECT_EQ(test, (u64)qcow2_l2_index(h, off),
					div64_u64(off, cs) % l2_entries);
			KUNIT_EXPECT_EQ(test, qcow2_offset_in_cluster(h, off), off % cs);
			KUNIT_EXPECT_EQ(test, (u64)qcow2_subcluster_index(h, off),
					extl2 ? (off % cs) / (cs / 32) : 0);
			KUNIT_EXPECT_LT(test, qcow2_l1_index(h, off), (u64)h->l1_size);
		}
	}
}

/*
 * The largest disk an L1 table of 32 MiB maps, per cluster size: 128 GB
 * (37 bits) with 512-byte clusters up to 2 EB (61 bits) with 2 MiB ones.
 */
static void format_l1_limit_test(struct kunit *test)
{
	u32 cb = *(const u32 *)test->param_value;
	u64 per_l1 = (1ULL << cb) * ((1ULL << cb) / 8);
	u64 max_l1 = SZ_32M / 8, max_size = min_t(u64, max_l1 * per_l1, BIT64(61));
	struct qcow2_image *img = alloc_image(test);
	struct qcow2_diag diag = {};
	u64 file_size;
	size_t len;
	u8 *buf;
	int err;

	if (cb == 9)
		KUNIT_EXPECT_EQ(test, max_size, BIT64(37));
	if (cb == 21)
		KUNIT_EXPECT_EQ(test, max_size, BIT64(61));

	buf = geo_image(test, 3, cb, 0, max_size, max_l1, &len, &file_size);
	err = qcow2_image_parse(buf, len, file_size, img, &diag);
	KUNIT_EXPECT_EQ_MSG(test, err, 0, "%s: %s", diag.field ?: "-", diag.msg);

	buf = geo_image(test, 3, cb, 0, max_size + 1, max_l1, &len, &file_size);
	err = qcow2_image_parse(buf, len, file_size, img, &diag);
	expect_verdict(test, err, &diag, -EINVAL,
		       max_size == BIT64(61) ? "size" : "l1_size", NULL);
}

struct l1_need_case {
	u64 size;
	u32 cluster_bits;
	bool extl2;
	u64 need;
};

static const struct l1_need_case l1_need_cases[] = {
	{ 0, 16, false, 0 },
	{ 1, 16, false, 1 },
	{ SZ_512M, 16, false, 1 },
	{ SZ_512M + 1ULL, 16, false, 2 },
	{ SZ_256M, 16, true, 1 },
	{ SZ_256M + 1ULL, 16, true, 2 },
	{ 128ULL * SZ_1G, 9, false, SZ_4M },
	{ BIT64(61), 21, false, SZ_4M },
	{ BIT64(61), 9, false, BIT64(46) },
	{ BIT64(61), 14, true, BIT64(61 - 14 - 10) },
};

static void l1_need_desc(const struct l1_need_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "size %llu, cluster_bits %u%s",
		 c->size, c->cluster_bits, c->extl2 ? ", ext L2" : "");
}

KUNIT_ARRAY_PARAM(l1_need, l1_need_cases, l1_need_desc);

static void format_l1_entries_needed_test(struct kunit *test)
{
	const struct l1_need_case *c = test->param_value;

	KUNIT_EXPECT_EQ(test, qcow2_l1_entries_needed(c->size, c->cluster_bits, c->extl2),
			c->need);
	KUNIT_EXPECT_EQ(test, l1_entries_for(c->size, c->cluster_bits, c->extl2), c->need);
}

/* Extension details the verdict alone does not show. */
static void format_extensions_test(struct kunit *test)
{
	struct qcow2_image *img;
	struct qcow2_extensions *x;
	const struct qcow2_fixture *fx;
	struct qcow2_diag diag = {};
	struct qcow2_header *h;
	unsigned int i;
	u8 *buf;

	/* v3: feature table of 8 entries, end marker right after it */
	img = fx_image(test, fx_get(test, "v3"));
	KUNIT_EXPECT_EQ(test, img->ext.ext_end, V3_END + 8U);
	KUNIT_EXPECT_EQ(test, img->ext.feature_names[0].type, 0);
	KUNIT_EXPECT_EQ(test, img->ext.feature_names[0].bit, 0);
	KUNIT_EXPECT_STREQ(test, img->ext.feature_names[0].name, "dirty bit");

	/* no extensions at all: the end marker follows the header */
	img = fx_image(test, fx_get(test, "c512"));
	KUNIT_EXPECT_EQ(test, img->ext.ext_end, 112U + 8U);
	KUNIT_EXPECT_EQ(test, img->ext.nr_feature_names, 0U);

	/* backing name sits after the end marker */
	img = fx_image(test, fx_get(test, "backing_qcow2"));
	KUNIT_EXPECT_EQ(test, img->ext.ext_end, BK_END + 8U);
	KUNIT_EXPECT_EQ(test, img->hdr.backing_file_offset, (u64)BK_NAME);

	/* bitmaps extension fields */
	img = fx_image(test, fx_get(test, "bitmap"));
	KUNIT_EXPECT_TRUE(test, img->ext.has_bitmaps);
	KUNIT_EXPECT_EQ(test, img->ext.nb_bitmaps, 1U);
	KUNIT_EXPECT_EQ(test, img->ext.bitmap_directory_size, 0x20ULL);
	KUNIT_EXPECT_EQ(test, img->ext.bitmap_directory_offset, 0x50000ULL);

	/* unknown extensions are counted and skipped */
	fx = fx_get(test, "v3");
	buf = fx_buf(test, fx);
	put_unaligned_be32(0x12345678, buf + V3_END);
	put_unaligned_be32(3, buf + V3_END + 4);	/* padded to 8 */
	put_unaligned_be32(0x9abcdef0, buf + V3_END + 16);
	img = alloc_image(test);
	x = &img->ext;
	KUNIT_ASSERT_EQ(test, qcow2_image_parse(buf, fx->buf_len, fx->file_size, img,
						&diag), 0);
	KUNIT_EXPECT_EQ(test, x->nr_unknown, 2U);
	KUNIT_EXPECT_EQ(test, x->nr_feature_names, QEMU_NAMES);
	KUNIT_EXPECT_EQ(test, x->ext_end, V3_END + 32U);

	/* a feature name of the full 46 bytes has no NUL on disk */
	buf = fx_buf(test, fx);
	memset(buf + V3_FT_ENTRY0 + 2, 'n', 46);
	KUNIT_ASSERT_EQ(test, qcow2_image_parse(buf, fx->buf_len, fx->file_size, img,
						&diag), 0);
	KUNIT_EXPECT_EQ(test, strlen(x->feature_names[0].name), (size_t)46);

	/* more names than the table keeps: the rest is ignored, not refused */
	fx = fx_get(test, "c2m");
	buf = fx_buf(test, fx);
	put_unaligned_be32((QCOW2_MAX_FEATURE_NAMES + 1) * 48, buf + V3_FT_LEN);
	for (i = 0; i <= QCOW2_MAX_FEATURE_NAMES; i++) {
		u8 *e = buf + V3_FT_ENTRY0 + i * 48;

		memset(e, 0, 48);
		e[0] = 1 + i / 64;	/* compatible 0-63, then autoclear 0 */
		e[1] = i % 64;
		snprintf((char *)e + 2, 46, "feature %u", i);
	}
	memset(buf + V3_FT_ENTRY0 + (QCOW2_MAX_FEATURE_NAMES + 1) * 48, 0, 8);
	KUNIT_ASSERT_EQ_MSG(test, qcow2_image_parse(buf, fx->buf_len, fx->file_size,
						    img, &diag), 0, "%s", diag.msg);
	KUNIT_EXPECT_EQ(test, x->nr_feature_names, QCOW2_MAX_FEATURE_NAMES);
	KUNIT_EXPECT_STREQ(test, qcow2_feature_name(x, 1, 63), "feature 63");

	/* the encryption header pointer, read with crypt_method LUKS */
	fx = fx_get(test, "luks");
	buf = fx_buf(test, fx);
	h = kunit_kzalloc(test, sizeof(*h), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, h);
	put_unaligned_be32(0, buf + offsetof(struct qcow2_header_disk, crypt_method));
	KUNIT_ASSERT_EQ(test, qcow2_header_parse(buf, fx->buf_len, fx->file_size, h,
						 &diag), 0);
	h->crypt_method = QCOW2_CRYPT_LUKS;
	KUNIT_ASSERT_EQ_MSG(test, qcow2_extensions_parse(buf, fx->buf_len, h, x, &diag),
			    0, "%s", diag.msg);
	KUNIT_EXPECT_TRUE(test, x->has_crypto);
	KUNIT_EXPECT_EQ(test, x->crypto_offset, 0x40000ULL);
	KUNIT_EXPECT_EQ(test, x->crypto_length, 0x1f9000ULL);
	/* with a wrong length */
	put_unaligned_be32(8, buf + 0x74);
	expect_verdict(test, qcow2_extensions_parse(buf, fx->buf_len, h, x, &diag),
		       &diag, -EINVAL, "crypto extension", NULL);
}

static struct kunit_case qcow_format_cases[] = {
	KUNIT_CASE_PARAM(format_fixture_test, fx_expect_gen_params),
	KUNIT_CASE_PARAM(format_header_encode_test, fx_expect_gen_params),
	KUNIT_CASE(format_feature_names_test),
	KUNIT_CASE_PARAM(format_mutation_test, mutation_gen_params),
	KUNIT_CASE(format_short_input_test),
	KUNIT_CASE_PARAM(format_cluster_size_test, cluster_bits_gen_params),
	KUNIT_CASE_PARAM(format_l1_limit_test, cluster_bits_gen_params),
	KUNIT_CASE_PARAM(format_l1_entries_needed_test, l1_need_gen_params),
	KUNIT_CASE(format_extensions_test),
	{}
};

static struct kunit_suite qcow_format_suite = {
	.name = "qcow_format",
	.test_cases = qcow_format_cases,
};

/* ------------------------------------------------------------------------
 * qcow_l2: entries qemu wrote
 */

#define COPIED		QCOW2_OFLAG_COPIED
#define COMPRESSED	QCOW2_OFLAG_COMPRESSED

struct l2_fx_case {
	const char *fixture;
	unsigned int idx;
	enum qcow2_cluster_type type;
	bool copied;
	u64 host_offset;
	u32 alloc;
	u32 zero;
	u64 comp_offset;
	u64 comp_len;
};

/*
 * Normal and zero clusters as `qemu-img map` reported them (offset, zero,
 * depth); compressed descriptors decoded by hand with x = 62 -
 * (cluster_bits - 8), span = (sectors + 1) * 512 - offset % 512.
 */
static const struct l2_fx_case l2_fx_cases[] = {
	/* preallocation=metadata: allocated, refcount 1 */
	{ "prealloc", 0, QCOW2_CLUSTER_NORMAL, true, 0x50000 },
	{ "prealloc", 3, QCOW2_CLUSTER_NORMAL, true, 0x80000 },
	/* write; write -z; write + write -z; write + discard (backing) */
	{ "backing_qcow2", 0, QCOW2_CLUSTER_NORMAL, true, 0x50000 },
	{ "backing_qcow2", 1, QCOW2_CLUSTER_ZERO_PLAIN },
	{ "backing_qcow2", 2, QCOW2_CLUSTER_ZERO_ALLOC, true, 0x60000 },
	{ "backing_qcow2", 3, QCOW2_CLUSTER_ZERO_PLAIN },
	{ "backing_qcow2", 4, QCOW2_CLUSTER_UNALLOCATED },
	/* extended L2, 4 KiB subclusters */
	{ "extl2", 0, QCOW2_CLUSTER_NORMAL, true, 0xa0000, 0x00000001, 0x0000000c },
	{ "extl2", 1, QCOW2_CLUSTER_NORMAL, true, 0xc0000, 0xffffffff, 0 },
	{ "extl2", 2, QCOW2_CLUSTER_UNALLOCATED, false, 0, 0, 0xffffffff },
	{ "extl2", 3, QCOW2_CLUSTER_NORMAL, true, 0xe0000, 0x0000000f, 0x00000010 },
	{ "extl2", 4, QCOW2_CLUSTER_UNALLOCATED },
	/* 512-byte clusters: incompressible ones are stored plain */
	{ "comp512", 0, QCOW2_CLUSTER_COMPRESSED, .comp_offset = 0x1000, .comp_len = 512 },
	{ "comp512", 1, QCOW2_CLUSTER_NORMAL, true, 0x1200 },
	{ "comp512", 2, QCOW2_CLUSTER_NORMAL, true, 0x1400 },
	{ "comp512", 3, QCOW2_CLUSTER_COMPRESSED, .comp_offset = 0x1008, .comp_len = 504 },
	{ "comp64k", 0, QCOW2_CLUSTER_COMPRESSED, .comp_offset = 0x50000,
	  .comp_len = 35 * 512 },
	{ "comp64k", 1, QCOW2_CLUSTER_COMPRESSED, .comp_offset = 0x545ba,
	  .comp_len = 39 * 512 - 0x1ba },
	{ "comp64k", 2, QCOW2_CLUSTER_COMPRESSED, .comp_offset = 0x59171,
	  .comp_len = 41 * 512 - 0x171 },
	{ "comp64k", 3, QCOW2_CLUSTER_COMPRESSED, .comp_offset = 0x5e11c,
	  .comp_len = 45 * 512 - 0x11c },
	{ "comp2m", 0, QCOW2_CLUSTER_COMPRESSED, .comp_offset = 0xa00000,
	  .comp_len = 1264 * 512 },
	{ "comp2m", 1, QCOW2_CLUSTER_COMPRESSED, .comp_offset = 0xa9dfb6,
	  .comp_len = 1252 * 512 - 0x1b6 },
	{ "comp2m", 2, QCOW2_CLUSTER_COMPRESSED, .comp_offset = 0xb3a592,
	  .comp_len = 1231 * 512 - 0x192 },
	{ "comp2m", 3, QCOW2_CLUSTER_COMPRESSED, .comp_offset = 0xbd4191,
	  .comp_len = 1286 * 512 - 0x191 },
};

static void l2_fx_desc(const struct l2_fx_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s: L2 entry %u", c->fixture, c->idx);
}

KUNIT_ARRAY_PARAM(l2_fx, l2_fx_cases, l2_fx_desc);

static void l2_fixture_test(struct kunit *test)
{
	const struct l2_fx_case *c = test->param_value;
	const struct qcow2_fixture *fx = fx_get(test, c->fixture);
	const struct qcow2_header *h = &fx_image(test, fx)->hdr;
	u8 *table = fx_extra(test, fx, 0);
	struct qcow2_l2e e;
	u64 word, bitmap;

	KUNIT_ASSERT_LE(test, (c->idx + 1) * h->l2_entry_size, (u32)fx->extra_len);
	qcow2_l2_get(h, table, c->idx, &word, &bitmap);
	KUNIT_ASSERT_EQ_MSG(test, qcow2_l2e_decode(h, word, bitmap, fx->file_size, &e), 0,
			    "entry 0x%016llx 0x%016llx", word, bitmap);
	KUNIT_EXPECT_EQ(test, e.type, c->type);
	KUNIT_EXPECT_EQ(test, e.copied, c->copied);
	KUNIT_EXPECT_EQ(test, e.host_offset, c->host_offset);
	KUNIT_EXPECT_EQ(test, e.alloc_bitmap, c->alloc);
	KUNIT_EXPECT_EQ(test, e.zero_bitmap, c->zero);
	KUNIT_EXPECT_EQ(test, e.comp_offset, c->comp_offset);
	KUNIT_EXPECT_EQ(test, e.comp_len, c->comp_len);

	/* re-encoding gives qemu's bytes back */
	if (e.type == QCOW2_CLUSTER_COMPRESSED) {
		u64 again;

		KUNIT_EXPECT_EQ(test, qcow2_compressed_encode(h->cluster_bits, e.comp_offset,
							      e.comp_len, &again), 0);
		KUNIT_EXPECT_EQ(test, again, word);
	} else {
		KUNIT_EXPECT_EQ(test, qcow2_l2e_encode_std(e.host_offset, e.copied,
							   word & QCOW2_OFLAG_ZERO), word);
		if (h->extended_l2)
			KUNIT_EXPECT_EQ(test, qcow2_l2e_encode_bitmap(e.alloc_bitmap,
								      e.zero_bitmap),
					bitmap);
	}
}

/*
 * qemu packs compressed clusters back to back: the next one starts in the
 * last sector this one spans, so next - this <= span < next - this + 512.
 */
static void l2_compressed_packing_test(struct kunit *test)
{
	static const char *const names[] = { "comp512", "comp64k", "comp2m" };
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(names); i++) {
		const struct qcow2_fixture *fx = fx_get(test, names[i]);
		const struct qcow2_header *h = &fx_image(test, fx)->hdr;
		u8 *table = fx_extra(test, fx, 0);
		struct qcow2_l2e prev = {}, e;
		u64 word, bitmap;

		for (j = 0; j < fx->extra_len / 8; j++) {
			qcow2_l2_get(h, table, j, &word, &bitmap);
			KUNIT_ASSERT_EQ(test, qcow2_l2e_decode(h, word, bitmap,
							       fx->file_size, &e), 0);
			if (e.type != QCOW2_CLUSTER_COMPRESSED)
				continue;
			KUNIT_EXPECT_LE(test, e.comp_offset + e.comp_len, fx->file_size);
			if (prev.type == QCOW2_CLUSTER_COMPRESSED) {
				u64 gap = e.comp_offset - prev.comp_offset;

				KUNIT_EXPECT_GT(test, e.comp_offset, prev.comp_offset);
				KUNIT_EXPECT_LE(test, gap, prev.comp_len);
				KUNIT_EXPECT_LT(test, prev.comp_len, gap + 512);
			}
			prev = e;
		}
	}
}

struct extent {
	u64 start;
	u64 len;
	enum qcow2_subcluster_type type;
	u64 host;
};

/*
 * `qemu-img map --output=json extl2.qcow2`, split where qemu-img merges
 * unallocated subclusters (read from the backing file) with unallocated
 * clusters: both are depth 1 in its output.
 */
static const struct extent extl2_map[] = {
	{ 0, SZ_4K, QCOW2_SUBCLUSTER_NORMAL, 0xa0000 },
	{ SZ_4K, SZ_4K, QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC },
	{ SZ_8K, SZ_8K, QCOW2_SUBCLUSTER_ZERO_ALLOC, 0xa2000 },
	{ SZ_16K, 112 * SZ_1K, QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC },
	{ SZ_128K, SZ_128K, QCOW2_SUBCLUSTER_NORMAL, 0xc0000 },
	{ SZ_256K, SZ_128K, QCOW2_SUBCLUSTER_ZERO_PLAIN },
	{ 384 * SZ_1K, SZ_16K, QCOW2_SUBCLUSTER_NORMAL, 0xe0000 },
	{ 400 * SZ_1K, SZ_4K, QCOW2_SUBCLUSTER_ZERO_ALLOC, 0xe4000 },
	{ 404 * SZ_1K, 108 * SZ_1K, QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC },
	{ SZ_512K, SZ_128K, QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN },
};

static bool has_host(enum qcow2_subcluster_type t)
{
	return t == QCOW2_SUBCLUSTER_NORMAL || t == QCOW2_SUBCLUSTER_ZERO_ALLOC;
}

/* Walking subcluster runs reproduces qemu-img map for the ext L2 image. */
static void l2_extl2_map_test(struct kunit *test)
{
	const struct qcow2_fixture *fx = fx_get(test, "extl2");
	const struct qcow2_header *h = &fx_image(test, fx)->hdr;
	u64 sc_size = 1ULL << h->subcluster_bits;
	u8 *table = fx_extra(test, fx, 0);
	struct extent *got;
	unsigned int n = 0, i, sc, run;

	got = kunit_kcalloc(test, 5 * QCOW2_SUBCLUSTERS, sizeof(*got), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, got);
	KUNIT_ASSERT_EQ(test, sc_size, (u64)SZ_4K);
	for (i = 0; i < fx->extra_len / h->l2_entry_size; i++) {
		struct qcow2_l2e e;
		u64 word, bitmap;

		qcow2_l2_get(h, table, i, &word, &bitmap);
		KUNIT_ASSERT_EQ(test, qcow2_l2e_decode(h, word, bitmap, fx->file_size, &e), 0);
		for (sc = 0; sc < QCOW2_SUBCLUSTERS; sc += run) {
			enum qcow2_subcluster_type t = qcow2_l2e_subcluster_type(h, &e, sc);
			u64 start = i * h->cluster_size + sc * sc_size;
			u64 host = has_host(t) ? e.host_offset + sc * sc_size : 0;
			struct extent *last = n ? &got[n - 1] : NULL;

			run = qcow2_l2e_subcluster_run(h, &e, sc);
			KUNIT_ASSERT_GE(test, run, 1U);
			KUNIT_ASSERT_LE(test, sc + run, QCOW2_SUBCLUSTERS);
			if (last && last->type == t && last->start + last->len == start &&
			    (!has_host(t) || last->host + last->len == host)) {
				last->len += run * sc_size;
				continue;
			}
			got[n++] = (struct extent){ start, run * sc_size, t, host };
		}
	}
	KUNIT_ASSERT_EQ(test, n, (unsigned int)ARRAY_SIZE(extl2_map));
	for (i = 0; i < n; i++) {
		KUNIT_EXPECT_EQ_MSG(test, got[i].start, extl2_map[i].start, "extent %u", i);
		KUNIT_EXPECT_EQ_MSG(test, got[i].len, extl2_map[i].len, "extent %u", i);
		KUNIT_EXPECT_EQ_MSG(test, got[i].type, extl2_map[i].type, "extent %u", i);
		KUNIT_EXPECT_EQ_MSG(test, got[i].host, extl2_map[i].host, "extent %u", i);
	}
}

/* ------------------------------------------------------------------------
 * qcow_l2: L2 entry rules
 */

enum { F_V2 = 1, F_EXTL2 = 2, F_DATA_FILE = 4 };

static struct qcow2_header *flags_header(struct kunit *test, u32 flags)
{
	u64 incompat = 0;

	if (flags & F_EXTL2)
		incompat |= QCOW2_INCOMPAT_EXTL2;
	if (flags & F_DATA_FILE)
		incompat |= QCOW2_INCOMPAT_DATA_FILE;
	return geo_header(test, flags & F_V2 ? 2 : 3, 16, incompat);
}

struct l2_case {
	const char *desc;
	u32 flags;
	u64 word;
	u64 bitmap;
	int err;
	enum qcow2_cluster_type type;
	bool copied;
	u64 host_offset;
	u32 alloc;
	u32 zero;
};

/* 64 KiB clusters, a 1 MiB image file. */
#define L2_FILE_SIZE	SZ_1M

static const struct l2_case l2_cases[] = {
	{ "all zero: unallocated", 0, 0, 0, 0, QCOW2_CLUSTER_UNALLOCATED },
	{ "standard cluster, refcount 1", 0, COPIED | 0x50000, 0, 0,
	  QCOW2_CLUSTER_NORMAL, true, 0x50000 },
	{ "standard cluster needing COW", 0, 0x50000, 0, 0,
	  QCOW2_CLUSTER_NORMAL, false, 0x50000 },
	{ "last cluster of the file", 0, COPIED | 0xf0000, 0, 0,
	  QCOW2_CLUSTER_NORMAL, true, 0xf0000 },
	{ "bit 0: reads as zeros, no host cluster", 0, 0x1, 0, 0,
	  QCOW2_CLUSTER_ZERO_PLAIN },
	{ "bit 0 with a preallocated host cluster", 0, COPIED | 0x50001, 0, 0,
	  QCOW2_CLUSTER_ZERO_ALLOC, true, 0x50000 },
	{ "preallocated zero cluster past the end of the file", 0, COPIED | 0x100001,
	  0, 0, QCOW2_CLUSTER_ZERO_ALLOC, true, 0x100000 },
	{ "bit 0 is always 0 with version 2", F_V2, 0x1, 0, -EINVAL },
	{ "bit 0 is always 0 with extended L2", F_EXTL2, COPIED | 0x50001, 0xffffffff,
	  -EINVAL },
	{ "bit 1 reserved", 0, 0x50002, 0, -EINVAL },
	{ "bit 8 reserved", 0, 0x50100, 0, -EINVAL },
	{ "bit 56 reserved", 0, BIT64(56) | 0x50000, 0, -EINVAL },
	{ "bit 61 reserved", 0, BIT64(61) | 0x50000, 0, -EINVAL },
	{ "offset not cluster aligned", 0, COPIED | 0x50200, 0, -EINVAL },
	{ "data past the end of the file", 0, COPIED | 0x100000, 0, -EINVAL },
	{ "offset 0 with bit 63 needs an external data file", 0, COPIED, 0, -EINVAL },
	{ "external data file: host offset 0", F_DATA_FILE, COPIED, 0, 0,
	  QCOW2_CLUSTER_NORMAL, true, 0 },
	{ "external data file: offsets past the image file", F_DATA_FILE,
	  COPIED | 0x10000000, 0, 0, QCOW2_CLUSTER_NORMAL, true, 0x10000000 },
	{ "compressed cluster", 0, COMPRESSED | 0x50000, 0, 0,
	  QCOW2_CLUSTER_COMPRESSED },
	{ "compressed with bit 63", 0, COPIED | COMPRESSED | 0x50000, 0, -EINVAL },
	{ "compressed with an external data file", F_DATA_FILE,
	  COMPRESSED | 0x50000, 0, -EINVAL },
	{ "compressed: offset 0", 0, COMPRESSED, 0, -EINVAL },
	{ "compressed data in the header cluster", 0, COMPRESSED | 0x100, 0, -EINVAL },
	{ "compressed data past the end of the file", 0, COMPRESSED | 0x100000, 0,
	  -EINVAL },
	{ "compressed, ext L2: bitmap unused", F_EXTL2, COMPRESSED | 0x50000, 0, 0,
	  QCOW2_CLUSTER_COMPRESSED },
	{ "compressed, ext L2: bitmap reserved", F_EXTL2, COMPRESSED | 0x50000, 1,
	  -EINVAL },
	{ "ext L2: all subclusters allocated", F_EXTL2, COPIED | 0x50000, 0xffffffff,
	  0, QCOW2_CLUSTER_NORMAL, true, 0x50000, 0xffffffff },
	{ "ext L2: host cluster, no subcluster allocated", F_EXTL2, COPIED | 0x50000,
	  0, 0, QCOW2_CLUSTER_NORMAL, true, 0x50000 },
	{ "ext L2: zero subclusters without host cluster", F_EXTL2, 0,
	  0xffffffff00000000ULL, 0, QCOW2_CLUSTER_UNALLOCATED, false, 0, 0, 0xffffffff },
	{ "ext L2: bit x allocation, bit 32 + x zero", F_EXTL2, COPIED | 0x50000,
	  0x0000000280000001ULL, 0, QCOW2_CLUSTER_NORMAL, true, 0x50000, 0x80000001, 2 },
	{ "ext L2: subcluster both allocated and zero", F_EXTL2, COPIED | 0x50000,
	  0x0000000100000001ULL, -EINVAL },
	{ "ext L2: allocated subcluster needs a host offset", F_EXTL2, 0, 1, -EINVAL },
	{ "ext L2: bit 63 without a host offset", F_EXTL2, COPIED, 0, -EINVAL },
};

static void l2_case_desc(const struct l2_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", c->desc);
}

KUNIT_ARRAY_PARAM(l2_case, l2_cases, l2_case_desc);

static void l2_decode_test(struct kunit *test)
{
	const struct l2_case *c = test->param_value;
	const struct qcow2_header *h = flags_header(test, c->flags);
	struct qcow2_l2e e;
	int err;

	err = qcow2_l2e_decode(h, c->word, c->bitmap, L2_FILE_SIZE, &e);
	KUNIT_ASSERT_EQ(test, err, c->err);
	if (err)
		return;
	KUNIT_EXPECT_EQ(test, e.type, c->type);
	KUNIT_EXPECT_EQ(test, e.copied, c->copied);
	KUNIT_EXPECT_EQ(test, e.host_offset, c->host_offset);
	KUNIT_EXPECT_EQ(test, e.alloc_bitmap, c->alloc);
	KUNIT_EXPECT_EQ(test, e.zero_bitmap, c->zero);
}

/* The lenient inspector (qcowctl check) calls valid what decode accepts. */
static void l2_inspect_test(struct kunit *test)
{
	const struct l2_case *c = test->param_value;
	const struct qcow2_header *h = flags_header(test, c->flags);
	struct qcow2_l2e e, ie;
	u32 bad;
	int err;

	err = qcow2_l2e_decode(h, c->word, c->bitmap, L2_FILE_SIZE, &e);
	bad = qcow2_l2e_inspect(h, c->word, c->bitmap, L2_FILE_SIZE, &ie);
	KUNIT_EXPECT_EQ(test, !bad, !err);
	if (!err)
		KUNIT_EXPECT_EQ(test, memcmp(&e, &ie, sizeof(e)), 0);
}

/*
 * fuzz_entries regression (tests/fuzz/regress/fuzz_entries/
 * l2-inspect-compressed-offset-bit56): with 512-byte clusters the
 * compressed offset field reaches bit 60; bits 56 and up must be zero.
 * Decode refused such an entry, the inspector called it valid whenever
 * the file was larger than 2^56 bytes.
 */
static void l2_inspect_compressed_offset_test(struct kunit *test)
{
	const struct qcow2_header *h = geo_header(test, 3, 9, 0);
	u64 word = COMPRESSED | BIT64(57) | 0x50000, file_size = BIT64(60);
	struct qcow2_l2e e;

	KUNIT_EXPECT_EQ(test, qcow2_l2e_decode(h, word, 0, file_size, &e), -EINVAL);
	KUNIT_EXPECT_EQ(test, qcow2_l2e_inspect(h, word, 0, file_size, &e),
			QCOW2_BAD_RESERVED);
	KUNIT_EXPECT_EQ(test, qcow2_l2e_inspect(h, COMPRESSED | 0x50000, 0, file_size, &e),
			0U);
}

struct sc_case {
	const char *desc;
	u64 word;
	u64 bitmap;
	unsigned int sc;
	enum qcow2_subcluster_type type;
	unsigned int run;
};

static const struct sc_case sc_cases[] = {
	{ "allocated subcluster", COPIED | 0x50000, 0x1, 0,
	  QCOW2_SUBCLUSTER_NORMAL, 1 },
	{ "unallocated subcluster of an allocated cluster", COPIED | 0x50000, 0x1, 1,
	  QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC, 31 },
	{ "zero subcluster with a host cluster", COPIED | 0x50000, 0x0000000200000001ULL, 1,
	  QCOW2_SUBCLUSTER_ZERO_ALLOC, 1 },
	{ "zero subcluster without a host cluster", 0, 0xffffffff00000000ULL, 5,
	  QCOW2_SUBCLUSTER_ZERO_PLAIN, 27 },
	{ "unallocated cluster", 0, 0, 31, QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN, 1 },
	{ "bit 31 is subcluster 31", COPIED | 0x50000, 0x80000000, 31,
	  QCOW2_SUBCLUSTER_NORMAL, 1 },
	{ "bit 63 is zero subcluster 31", COPIED | 0x50000, 0x8000000000000000ULL, 31,
	  QCOW2_SUBCLUSTER_ZERO_ALLOC, 1 },
	{ "run of allocated subclusters", COPIED | 0x50000, 0x0000ff00, 8,
	  QCOW2_SUBCLUSTER_NORMAL, 8 },
	{ "run before allocated subclusters", COPIED | 0x50000, 0x0000ff00, 0,
	  QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC, 8 },
	{ "compressed clusters have no subclusters", COMPRESSED | 0x50000, 0, 0,
	  QCOW2_SUBCLUSTER_COMPRESSED, 1 },
};

static void sc_case_desc(const struct sc_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", c->desc);
}

KUNIT_ARRAY_PARAM(sc_case, sc_cases, sc_case_desc);

static void l2_subcluster_test(struct kunit *test)
{
	const struct sc_case *c = test->param_value;
	const struct qcow2_header *h = flags_header(test, F_EXTL2);
	struct qcow2_l2e e;

	KUNIT_ASSERT_EQ(test, qcow2_l2e_decode(h, c->word, c->bitmap, L2_FILE_SIZE, &e), 0);
	KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_type(h, &e, c->sc), c->type);
	KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_run(h, &e, c->sc), c->run);
}

/* Entries no decoder lets through still map to INVALID, never to data. */
static void l2_subcluster_invalid_test(struct kunit *test)
{
	const struct qcow2_header *ext = flags_header(test, F_EXTL2);
	const struct qcow2_header *std = flags_header(test, 0);
	struct qcow2_l2e e = { .type = QCOW2_CLUSTER_NORMAL, .host_offset = 0x50000 };
	static const struct {
		enum qcow2_cluster_type cluster;
		enum qcow2_subcluster_type sc;
	} std_map[] = {
		{ QCOW2_CLUSTER_UNALLOCATED, QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN },
		{ QCOW2_CLUSTER_ZERO_PLAIN, QCOW2_SUBCLUSTER_ZERO_PLAIN },
		{ QCOW2_CLUSTER_ZERO_ALLOC, QCOW2_SUBCLUSTER_ZERO_ALLOC },
		{ QCOW2_CLUSTER_NORMAL, QCOW2_SUBCLUSTER_NORMAL },
		{ QCOW2_CLUSTER_COMPRESSED, QCOW2_SUBCLUSTER_COMPRESSED },
	};
	unsigned int i;

	/* both allocated and zero */
	e.alloc_bitmap = 0x5;
	e.zero_bitmap = 0x4;
	KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_type(ext, &e, 0), QCOW2_SUBCLUSTER_NORMAL);
	KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_type(ext, &e, 2), QCOW2_SUBCLUSTER_INVALID);
	KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_run(ext, &e, 2), 1U);
	/* allocated subcluster without host cluster */
	e.type = QCOW2_CLUSTER_UNALLOCATED;
	e.host_offset = 0;
	e.zero_bitmap = 0;
	KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_type(ext, &e, 0), QCOW2_SUBCLUSTER_INVALID);
	KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_type(ext, &e, 1),
			QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN);
	/* a zero flag cannot exist with extended L2 */
	e.type = QCOW2_CLUSTER_ZERO_ALLOC;
	e.alloc_bitmap = 0;
	KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_type(ext, &e, 0), QCOW2_SUBCLUSTER_INVALID);
	/* there are 32 subclusters */
	e.type = QCOW2_CLUSTER_NORMAL;
	e.host_offset = 0x50000;
	KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_type(ext, &e, 32), QCOW2_SUBCLUSTER_INVALID);

	/* standard L2: the whole cluster is subcluster 0, runs of 1 */
	for (i = 0; i < ARRAY_SIZE(std_map); i++) {
		struct qcow2_l2e s = { .type = std_map[i].cluster };

		KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_type(std, &s, 0), std_map[i].sc);
		KUNIT_EXPECT_EQ(test, qcow2_l2e_subcluster_run(std, &s, 0), 1U);
	}
}

/* The subcluster rules written from the spec. */
static enum qcow2_subcluster_type sc_model(u64 host, u32 alloc, u32 zero,
					   unsigned int sc)
{
	bool a = alloc & BIT(sc), z = zero & BIT(sc);

	if (!host)
		return z ? QCOW2_SUBCLUSTER_ZERO_PLAIN : QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN;
	if (a)
		return QCOW2_SUBCLUSTER_NORMAL;
	return z ? QCOW2_SUBCLUSTER_ZERO_ALLOC : QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC;
}

/* Seeded random bitmaps: types and runs against the model. */
static void l2_subcluster_random_test(struct kunit *test)
{
	const struct qcow2_header *h = flags_header(test, F_EXTL2);
	u64 seed = 0x5c5c5c5c;
	unsigned int iter, sc, run, i;

	for (iter = 0; iter < 2000; iter++) {
		u64 r = rnd_next(&seed);
		u64 host = (r & 1) ? 0x50000 : 0;
		/* sparse or dense bitmaps, to get both long and short runs */
		u32 alloc = rnd_next(&seed) & ((r & 2) ? rnd_next(&seed) : ~0U);
		u32 zero = rnd_next(&seed) & ((r & 4) ? rnd_next(&seed) : ~0U);
		struct qcow2_l2e e;
		int err;

		if (!host)
			alloc = 0;
		zero &= ~alloc;
		if ((r & 0x18) == 0x18 && alloc)	/* now and then, overlap */
			zero |= alloc & -alloc;
		err = qcow2_l2e_decode(h, host ? COPIED | host : 0,
				       qcow2_l2e_encode_bitmap(alloc, zero), L2_FILE_SIZE, &e);
		if (alloc & zero) {
			KUNIT_EXPECT_EQ(test, err, -EINVAL);
			continue;
		}
		KUNIT_ASSERT_EQ(test, err, 0);
		for (sc = 0; sc < QCOW2_SUBCLUSTERS; sc++)
			KUNIT_ASSERT_EQ_MSG(test, qcow2_l2e_subcluster_type(h, &e, sc),
					    sc_model(host, alloc, zero, sc),
					    "host %llx alloc %08x zero %08x sc %u",
					    host, alloc, zero, sc);
		for (sc = 0; sc < QCOW2_SUBCLUSTERS; sc += run) {
			enum qcow2_subcluster_type t = sc_model(host, alloc, zero, sc);

			run = qcow2_l2e_subcluster_run(h, &e, sc);
			KUNIT_ASSERT_GE(test, run, 1U);
			KUNIT_ASSERT_LE(test, sc + run, QCOW2_SUBCLUSTERS);
			for (i = sc; i < sc + run; i++)
				KUNIT_ASSERT_EQ(test, sc_model(host, alloc, zero, i), t);
			if (sc + run < QCOW2_SUBCLUSTERS)
				KUNIT_ASSERT_NE(test, sc_model(host, alloc, zero, sc + run), t);
		}
	}
}

/* Table buffers: big endian, 8 or 16 bytes an entry. */
static void l2_get_set_test(struct kunit *test)
{
	const struct qcow2_header *std = flags_header(test, 0);
	const struct qcow2_header *ext = flags_header(test, F_EXTL2);
	u8 *t = kunit_kzalloc(test, 64, GFP_KERNEL);
	u64 word, bitmap;

	KUNIT_ASSERT_NOT_NULL(test, t);
	qcow2_l2_set(std, t, 2, 0x8000000000050000ULL, 0x1234);
	KUNIT_EXPECT_EQ(test, get_unaligned_be64(t + 16), 0x8000000000050000ULL);
	KUNIT_EXPECT_NULL(test, memchr_inv(t, 0, 16));
	KUNIT_EXPECT_NULL(test, memchr_inv(t + 24, 0, 40));
	qcow2_l2_get(std, t, 2, &word, &bitmap);
	KUNIT_EXPECT_EQ(test, word, 0x8000000000050000ULL);
	KUNIT_EXPECT_EQ(test, bitmap, 0ULL);

	memset(t, 0, 64);
	qcow2_l2_set(ext, t, 1, 0x8000000000050000ULL, 0x0000000c00000001ULL);
	KUNIT_EXPECT_EQ(test, get_unaligned_be64(t + 16), 0x8000000000050000ULL);
	KUNIT_EXPECT_EQ(test, get_unaligned_be64(t + 24), 0x0000000c00000001ULL);
	KUNIT_EXPECT_NULL(test, memchr_inv(t, 0, 16));
	KUNIT_EXPECT_NULL(test, memchr_inv(t + 32, 0, 32));
	qcow2_l2_get(ext, t, 1, &word, &bitmap);
	KUNIT_EXPECT_EQ(test, word, 0x8000000000050000ULL);
	KUNIT_EXPECT_EQ(test, bitmap, 0x0000000c00000001ULL);

	KUNIT_EXPECT_EQ(test, qcow2_l2e_encode_std(0x50000, true, false),
			0x8000000000050000ULL);
	KUNIT_EXPECT_EQ(test, qcow2_l2e_encode_std(0x50000, false, true), 0x50001ULL);
	KUNIT_EXPECT_EQ(test, qcow2_l2e_encode_std(0, false, true), 0x1ULL);
	KUNIT_EXPECT_EQ(test, qcow2_l2e_encode_bitmap(0x1, 0xc), 0x0000000c00000001ULL);
}

struct l1_case {
	const char *desc;
	u64 raw;
	u64 file_size;
	int err;
	u64 l2_offset;
	bool copied;
};

static const struct l1_case l1_cases[] = {
	{ "0: L2 table unallocated", 0, SZ_1M, 0, 0, false },
	{ "L2 table with refcount 1", COPIED | 0x40000, SZ_1M, 0, 0x40000, true },
	{ "L2 table needing COW", 0x40000, SZ_1M, 0, 0x40000, false },
	{ "bit 0 reserved", 0x40001, SZ_1M, -EINVAL },
	{ "bit 8 reserved", 0x40100, SZ_1M, -EINVAL },
	{ "bit 56 reserved", BIT64(56) | 0x40000, SZ_1M, -EINVAL },
	{ "bit 62 reserved", BIT64(62) | 0x40000, SZ_1M, -EINVAL },
	{ "not cluster aligned", 0x40200, SZ_1M, -EINVAL },
	{ "past the end of the file", 0x100000, SZ_1M, -EINVAL },
	{ "offset using bit 55", COPIED | 0x00ffffffffff0000ULL, U64_MAX, 0,
	  0x00ffffffffff0000ULL, true },
};

static void l1_case_desc(const struct l1_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", c->desc);
}

KUNIT_ARRAY_PARAM(l1_case, l1_cases, l1_case_desc);

static void l2_l1_entry_test(struct kunit *test)
{
	const struct l1_case *c = test->param_value;
	const struct qcow2_header *h = flags_header(test, 0);
	u64 off = 0xdead;
	bool copied;
	int err;

	err = qcow2_l1e_decode(h, c->raw, c->file_size, &off, &copied);
	KUNIT_ASSERT_EQ(test, err, c->err);
	if (err)
		return;
	KUNIT_EXPECT_EQ(test, off, c->l2_offset);
	KUNIT_EXPECT_EQ(test, copied, c->copied);
	KUNIT_EXPECT_EQ(test, qcow2_l1e_encode(off, copied), c->raw);
}

/*
 * Compressed descriptors, x = 62 - (cluster_bits - 8): host offset in bits
 * 0..x-1 (bits above 55 zero), additional 512-byte sectors in x..61.
 */
static void l2_compressed_test(struct kunit *test)
{
	u32 cb = *(const u32 *)test->param_value;
	u32 x = 62 - (cb - 8), sbits = cb - 8;
	u64 max_off = min_t(u64, BIT64(x), QCOW2_MAX_HOST_OFFSET) - 1;
	u64 max_sectors = BIT64(sbits), seed = 0xc0c0 + cb;
	u64 word, off, span, len;
	unsigned int i;

	/*
	 * The layout, by hand: 0x12345 is 325 bytes into its sector, so 300
	 * bytes need one additional sector (fits even the single sector bit
	 * of 512-byte clusters).
	 */
	KUNIT_ASSERT_EQ(test, qcow2_compressed_encode(cb, 0x12345, 300, &word), 0);
	KUNIT_EXPECT_EQ(test, word, COMPRESSED | (1ULL << x) | 0x12345);
	KUNIT_ASSERT_EQ(test, qcow2_compressed_decode(cb, word, &off, &span), 0);
	KUNIT_EXPECT_EQ(test, off, 0x12345ULL);
	KUNIT_EXPECT_EQ(test, span, 2ULL * 512 - 325);
	/* bit 63 and bit 62 are not part of the descriptor */
	KUNIT_EXPECT_EQ(test, qcow2_compressed_decode(cb, word | COPIED, &off, &span), 0);
	KUNIT_EXPECT_EQ(test, off, 0x12345ULL);

	/* all sector bits: 2^(cluster_bits - 8) sectors, two clusters */
	len = max_sectors * 512 - 325;
	KUNIT_ASSERT_EQ(test, qcow2_compressed_encode(cb, 0x12345, len, &word), 0);
	KUNIT_EXPECT_EQ(test, word >> x, (COMPRESSED >> x) | (max_sectors - 1));
	KUNIT_EXPECT_EQ(test, max_sectors * 512, 2ULL << cb);
	KUNIT_EXPECT_EQ(test, qcow2_compressed_encode(cb, 0x12345, len + 1, &word), -ERANGE);

	/* the largest host offset the field (and 56 bits) can hold */
	KUNIT_ASSERT_EQ(test, qcow2_compressed_encode(cb, max_off, 1, &word), 0);
	KUNIT_ASSERT_EQ(test, qcow2_compressed_decode(cb, word, &off, &span), 0);
	KUNIT_EXPECT_EQ(test, off, max_off);
	KUNIT_EXPECT_EQ(test, span, 1ULL);
	KUNIT_EXPECT_EQ(test, qcow2_compressed_encode(cb, max_off + 1, 1, &word), -ERANGE);
	if (x > 56) {
		/* bits 56..x-1 lie in the offset field and must be zero */
		KUNIT_EXPECT_EQ(test, qcow2_compressed_decode(cb, COMPRESSED | BIT64(56) |
							      0x50000, &off, &span),
				-EINVAL);
	}
	KUNIT_EXPECT_EQ(test, qcow2_compressed_encode(cb, 0, 100, &word), -ERANGE);
	KUNIT_EXPECT_EQ(test, qcow2_compressed_encode(cb, 0x50000, 0, &word), -ERANGE);
	/*
	 * fuzz_entries regression (tests/fuzz/regress/fuzz_entries/
	 * compressed-encode-len-wrap): a length near 2^64 wrapped the sector
	 * count to a small one and encoded a bogus descriptor.
	 */
	KUNIT_EXPECT_EQ(test, qcow2_compressed_encode(cb, 0x8b00f70700ULL, U64_MAX, &word),
			-ERANGE);
	KUNIT_EXPECT_EQ(test, qcow2_compressed_encode(cb, 0x12345, U64_MAX - 510, &word),
			-ERANGE);
	KUNIT_EXPECT_EQ(test, qcow2_compressed_encode(cb, 0x12345, (2ULL << cb) + 1, &word),
			-ERANGE);
	KUNIT_EXPECT_EQ(test, qcow2_compressed_decode(cb, COMPRESSED, &off, &span), -EINVAL);

	/* seeded round trips: span covers the data, by less than a sector */
	for (i = 0; i < 500; i++) {
		u64 o = 1 + rnd_below(&seed, (i & 1) ? max_off : SZ_1G);
		u64 most = max_sectors * 512 - (o & 511);
		u64 l = 1 + rnd_below(&seed, (i & 2) ? most : min_t(u64, most, 4096));

		KUNIT_ASSERT_EQ_MSG(test, qcow2_compressed_encode(cb, o, l, &word), 0,
				    "offset %llx len %llu", o, l);
		KUNIT_ASSERT_TRUE(test, word & COMPRESSED);
		KUNIT_ASSERT_EQ(test, qcow2_compressed_decode(cb, word, &off, &span), 0);
		KUNIT_EXPECT_EQ(test, off, o);
		KUNIT_EXPECT_GE(test, span, l);
		KUNIT_EXPECT_LT(test, span, l + 512);
		KUNIT_EXPECT_EQ(test, (off + span) % 512, 0ULL);
	}
}

static struct kunit_case qcow_l2_cases[] = {
	KUNIT_CASE_PARAM(l2_fixture_test, l2_fx_gen_params),
	KUNIT_CASE(l2_compressed_packing_test),
	KUNIT_CASE(l2_extl2_map_test),
	KUNIT_CASE_PARAM(l2_decode_test, l2_case_gen_params),
	KUNIT_CASE_PARAM(l2_inspect_test, l2_case_gen_params),
	KUNIT_CASE(l2_inspect_compressed_offset_test),
	KUNIT_CASE_PARAM(l2_subcluster_test, sc_case_gen_params),
	KUNIT_CASE(l2_subcluster_invalid_test),
	KUNIT_CASE(l2_subcluster_random_test),
	KUNIT_CASE(l2_get_set_test),
	KUNIT_CASE_PARAM(l2_l1_entry_test, l1_case_gen_params),
	KUNIT_CASE_PARAM(l2_compressed_test, cluster_bits_gen_params),
	{}
};

static struct kunit_suite qcow_l2_suite = {
	.name = "qcow_l2",
	.test_cases = qcow_l2_cases,
};

/* ------------------------------------------------------------------------
 * qcow_refcount
 */

/*
 * Reference packing from the spec: entry i of width w starts at bit i * w;
 * sub-byte entries count from the least significant bit of each byte,
 * wider ones are big endian.
 */
static void ref_pack(u8 *blk, u32 order, u64 idx, u64 val)
{
	u32 bits = 1U << order, i;

	if (bits < 8) {
		u32 shift = (idx * bits) % 8;
		u8 mask = ((1U << bits) - 1) << shift;
		u8 *b = &blk[idx * bits / 8];

		*b = (*b & ~mask) | (u8)(val << shift);
		return;
	}
	for (i = 0; i < bits / 8; i++)
		blk[idx * (bits / 8) + i] = val >> (bits - 8 - 8 * i);
}

struct ref_layout {
	const char *desc;
	u32 order;
	u64 idx;
	u64 val;
	u32 byte;
	u8 bytes[8];
	u32 nbytes;
};

static const struct ref_layout ref_layouts[] = {
	{ "1 bit: entry 0 is bit 0 of byte 0", 0, 0, 1, 0, { 0x01 }, 1 },
	{ "1 bit: entry 9 is bit 1 of byte 1", 0, 9, 1, 1, { 0x02 }, 1 },
	{ "1 bit: entry 7 is bit 7 of byte 0", 0, 7, 1, 0, { 0x80 }, 1 },
	{ "2 bits: entry 1 is bits 2-3", 1, 1, 2, 0, { 0x08 }, 1 },
	{ "2 bits: entry 7 is bits 6-7 of byte 1", 1, 7, 3, 1, { 0xc0 }, 1 },
	{ "4 bits: entry 0 is the low nibble", 2, 0, 0x5, 0, { 0x05 }, 1 },
	{ "4 bits: entry 1 is the high nibble", 2, 1, 0xa, 0, { 0xa0 }, 1 },
	{ "8 bits: entry 3 is byte 3", 3, 3, 0x7f, 3, { 0x7f }, 1 },
	{ "16 bits: big endian", 4, 1, 0x1234, 2, { 0x12, 0x34 }, 2 },
	{ "16 bits: 65535", 4, 0, 0xffff, 0, { 0xff, 0xff }, 2 },
	{ "32 bits: big endian", 5, 1, 0x12345678, 4, { 0x12, 0x34, 0x56, 0x78 }, 4 },
	{ "64 bits: big endian", 6, 1, 0x0123456789abcdefULL, 8,
	  { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef }, 8 },
	{ "64 bits: 2^64 - 1", 6, 2, U64_MAX, 16,
	  { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, 8 },
};

static void ref_layout_desc(const struct ref_layout *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", c->desc);
}

KUNIT_ARRAY_PARAM(ref_layout, ref_layouts, ref_layout_desc);

static void refcount_layout_test(struct kunit *test)
{
	const struct ref_layout *c = test->param_value;
	u64 max = qcow2_refcount_max(c->order);
	u8 *blk = kunit_kzalloc(test, 32, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, blk);
	KUNIT_ASSERT_EQ(test, qcow2_refcount_set(blk, c->order, c->idx, c->val), 0);
	KUNIT_EXPECT_EQ(test, memcmp(blk + c->byte, c->bytes, c->nbytes), 0);
	KUNIT_EXPECT_NULL(test, memchr_inv(blk, 0, c->byte));
	KUNIT_EXPECT_NULL(test, memchr_inv(blk + c->byte + c->nbytes, 0,
					   32 - c->byte - c->nbytes));
	KUNIT_EXPECT_EQ(test, qcow2_refcount_get(blk, c->order, c->idx), c->val);
	if (c->idx)
		KUNIT_EXPECT_EQ(test, qcow2_refcount_get(blk, c->order, c->idx - 1), 0ULL);
	KUNIT_EXPECT_EQ(test, qcow2_refcount_get(blk, c->order, c->idx + 1), 0ULL);

	/* over a block of all ones, only this entry changes */
	memset(blk, 0xff, 32);
	KUNIT_ASSERT_EQ(test, qcow2_refcount_set(blk, c->order, c->idx, 0), 0);
	KUNIT_EXPECT_EQ(test, qcow2_refcount_get(blk, c->order, c->idx), 0ULL);
	if (c->idx)
		KUNIT_EXPECT_EQ(test, qcow2_refcount_get(blk, c->order, c->idx - 1), max);
	KUNIT_EXPECT_EQ(test, qcow2_refcount_get(blk, c->order, c->idx + 1), max);
}

static void refcount_max_test(struct kunit *test)
{
	static const u64 max[] = {
		1, 3, 15, 255, 65535, 0xffffffff, U64_MAX,
	};
	u32 order;

	for (order = 0; order <= QCOW2_MAX_REFCOUNT_ORDER; order++) {
		u8 blk[8] = {};

		KUNIT_EXPECT_EQ(test, qcow2_refcount_max(order), max[order]);
		KUNIT_EXPECT_EQ(test, qcow2_refcount_set(blk, order, 0, max[order]), 0);
		KUNIT_EXPECT_EQ(test, qcow2_refcount_get(blk, order, 0), max[order]);
		if (order < 6) {
			/* a value too wide is refused and changes nothing */
			memset(blk, 0, sizeof(blk));
			KUNIT_EXPECT_EQ(test, qcow2_refcount_set(blk, order, 0,
								 max[order] + 1), -ERANGE);
			KUNIT_EXPECT_NULL(test, memchr_inv(blk, 0, sizeof(blk)));
		}
	}
}

#define REF_BLOCK	512

/* Compare every entry and the raw bytes against the shadow copy. */
static void ref_check_all(struct kunit *test, const u8 *blk, u32 order,
			  const u64 *shadow, u8 *ref, u64 n)
{
	u64 i;

	memset(ref, 0, REF_BLOCK);
	for (i = 0; i < n; i++) {
		ref_pack(ref, order, i, shadow[i]);
		KUNIT_ASSERT_EQ_MSG(test, qcow2_refcount_get(blk, order, i), shadow[i],
				    "entry %llu", i);
	}
	KUNIT_ASSERT_EQ(test, memcmp(ref, blk, REF_BLOCK), 0);
}

/* Seeded random get/set on a 512-byte block, every width. */
static void refcount_random_test(struct kunit *test)
{
	u32 order = *(const u32 *)test->param_value;
	u64 n = REF_BLOCK * 8 >> order, max = qcow2_refcount_max(order);
	u64 seed = 0x12ef0000 + order;
	u8 *blk = kunit_kzalloc(test, REF_BLOCK, GFP_KERNEL);
	u8 *ref = kunit_kzalloc(test, REF_BLOCK, GFP_KERNEL);
	u64 *shadow = kunit_kcalloc(test, n, sizeof(*shadow), GFP_KERNEL);
	unsigned int step;

	KUNIT_ASSERT_NOT_NULL(test, blk);
	KUNIT_ASSERT_NOT_NULL(test, ref);
	KUNIT_ASSERT_NOT_NULL(test, shadow);
	for (step = 0; step < 20000; step++) {
		u64 idx = rnd_below(&seed, n), r = rnd_next(&seed), val;
		int want = 0, err;

		switch (r & 7) {
		case 0:
			val = 0;
			break;
		case 1:
			val = max;
			break;
		case 2:
			if (order < 6) {
				val = max + 1 + (rnd_next(&seed) & 0xff);
				want = -ERANGE;
				break;
			}
			fallthrough;
		default:
			val = rnd_next(&seed) & max;
			break;
		}
		err = qcow2_refcount_set(blk, order, idx, val);
		KUNIT_ASSERT_EQ_MSG(test, err, want, "step %u: entry %llu = %llu",
				    step, idx, val);
		if (!err)
			shadow[idx] = val;
		/* the entry and its neighbours */
		KUNIT_ASSERT_EQ(test, qcow2_refcount_get(blk, order, idx), shadow[idx]);
		if (idx)
			KUNIT_ASSERT_EQ(test, qcow2_refcount_get(blk, order, idx - 1),
					shadow[idx - 1]);
		if (idx + 1 < n)
			KUNIT_ASSERT_EQ(test, qcow2_refcount_get(blk, order, idx + 1),
					shadow[idx + 1]);
		if (step % 1000 == 999)
			ref_check_all(test, blk, order, shadow, ref, n);
	}
	ref_check_all(test, blk, order, shadow, ref, n);
}

/* refcount_block_entries = cluster_size * 8 / refcount_bits, every size. */
static void refcount_geometry_test(struct kunit *test)
{
	u32 order = *(const u32 *)test->param_value;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(all_cluster_bits); i++) {
		u32 cb = all_cluster_bits[i];
		u64 file_size, cs = 1ULL << cb;
		struct qcow2_header h;
		struct qcow2_diag diag = {};
		size_t len;
		u8 *buf;

		buf = geo_image(test, 3, cb, 0, SZ_1G, l1_entries_for(SZ_1G, cb, false),
				&len, &file_size);
		put_unaligned_be32(order, buf + offsetof(struct qcow2_header_disk,
							 refcount_order));
		KUNIT_ASSERT_EQ(test, qcow2_header_parse(buf, len, file_size, &h, &diag), 0);
		KUNIT_EXPECT_EQ(test, h.refcount_order, order);
		KUNIT_EXPECT_EQ(test, 1ULL << h.refblock_bits, cs * 8 / (1U << order));
	}
}

struct reft_case {
	const char *desc;
	u64 raw;
	u64 file_size;
	int err;
	u64 offset;
};

static const struct reft_case reft_cases[] = {
	{ "0: refcount block not allocated", 0, SZ_1M, 0, 0 },
	{ "refcount block at 128 KiB", 0x20000, SZ_1M, 0, 0x20000 },
	{ "bit 0 reserved", 0x20001, SZ_1M, -EINVAL },
	{ "bit 8 reserved", 0x20100, SZ_1M, -EINVAL },
	{ "not cluster aligned", 0x20200, SZ_1M, -EINVAL },
	{ "past the end of the file", 0x100000, SZ_1M, -EINVAL },
	{ "bits 9-63: beyond 64 PB", BIT64(63), U64_MAX, 0, BIT64(63) },
};

static void reft_case_desc(const struct reft_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", c->desc);
}

KUNIT_ARRAY_PARAM(reft_case, reft_cases, reft_case_desc);

static void refcount_table_entry_test(struct kunit *test)
{
	const struct reft_case *c = test->param_value;
	const struct qcow2_header *h = geo_header(test, 3, 16, 0);
	u64 off = 0xdead;

	KUNIT_ASSERT_EQ(test, qcow2_reftable_entry_decode(h, c->raw, c->file_size, &off),
			c->err);
	KUNIT_EXPECT_EQ(test, off, c->err ? 0 : c->offset);
}

static struct kunit_case qcow_refcount_cases[] = {
	KUNIT_CASE_PARAM(refcount_layout_test, ref_layout_gen_params),
	KUNIT_CASE(refcount_max_test),
	KUNIT_CASE_PARAM(refcount_random_test, refcount_order_gen_params),
	KUNIT_CASE_PARAM(refcount_geometry_test, refcount_order_gen_params),
	KUNIT_CASE_PARAM(refcount_table_entry_test, reft_case_gen_params),
	{}
};

static struct kunit_suite qcow_refcount_suite = {
	.name = "qcow_refcount",
	.test_cases = qcow_refcount_cases,
};

/* ------------------------------------------------------------------------
 * qcow_overlap
 */

struct range_case {
	const char *desc;
	u64 a_start, a_len, b_start, b_len;
	bool overlap;
};

static const struct range_case range_cases[] = {
	{ "empty ranges never overlap", 0, 0, 0, 0, false },
	{ "empty range inside another", 0, 10, 5, 0, false },
	{ "adjacent ranges", 0, 10, 10, 10, false },
	{ "one byte shared", 0, 11, 10, 10, true },
	{ "containment", 0, 100, 10, 10, true },
	{ "identical", 5, 5, 5, 5, true },
	{ "cluster after cluster", SZ_64K, SZ_64K, 2 * SZ_64K, SZ_64K, false },
	{ "last byte of the address space", U64_MAX - 9, 10, U64_MAX, 1, true },
	{ "range ending at 2^64 - 1", 0, U64_MAX, U64_MAX - 1, 1, true },
	{ "byte 2^64 - 1 after a range ending there", 0, U64_MAX, U64_MAX, 1, false },
	{ "huge lengths from far apart", 1, U64_MAX - 1, U64_MAX - 1, 1, true },
};

static void range_case_desc(const struct range_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", c->desc);
}

KUNIT_ARRAY_PARAM(range_case, range_cases, range_case_desc);

static void overlap_ranges_test(struct kunit *test)
{
	const struct range_case *c = test->param_value;

	KUNIT_EXPECT_EQ(test, qcow2_ranges_overlap(c->a_start, c->a_len,
						   c->b_start, c->b_len), c->overlap);
	KUNIT_EXPECT_EQ(test, qcow2_ranges_overlap(c->b_start, c->b_len,
						   c->a_start, c->a_len), c->overlap);
}

/* Every small pair of ranges against a byte-by-byte intersection. */
static void overlap_ranges_exhaustive_test(struct kunit *test)
{
	u64 as, al, bs, bl, i;

	for (as = 0; as < 6; as++)
		for (al = 0; al < 6; al++)
			for (bs = 0; bs < 6; bs++)
				for (bl = 0; bl < 6; bl++) {
					bool want = false;

					for (i = as; i < as + al; i++)
						want |= i >= bs && i < bs + bl;
					KUNIT_ASSERT_EQ_MSG(test,
							    qcow2_ranges_overlap(as, al, bs, bl),
							    want, "[%llu,+%llu) [%llu,+%llu)",
							    as, al, bs, bl);
				}
}

struct regions_case {
	const char *desc;
	struct qcow2_region r[4];
	unsigned int n;
	const char *field;	/* NULL: no overlap */
	const char *other;
};

static const struct regions_case regions_cases[] = {
	{ "disjoint", { { 0, 512, "first" }, { 512, 512, "second" },
			{ 2048, 512, "third" } }, 3 },
	{ "second overlaps first", { { 0, 1024, "first" }, { 512, 512, "second" } }, 2,
	  "second", "first" },
	{ "last overlaps first", { { 0, 1024, "first" }, { 4096, 512, "second" },
				   { 8192, 512, "third" }, { 1023, 1, "fourth" } }, 4,
	  "fourth", "first" },
	{ "empty region inside another", { { 0, 1024, "first" }, { 512, 0, "second" } }, 2 },
	{ "no regions", { }, 0 },
};

static void regions_case_desc(const struct regions_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", c->desc);
}

KUNIT_ARRAY_PARAM(regions_case, regions_cases, regions_case_desc);

static void overlap_regions_check_test(struct kunit *test)
{
	const struct regions_case *c = test->param_value;
	struct qcow2_diag diag = {};
	int err = qcow2_regions_check(c->r, c->n, &diag);

	expect_verdict(test, err, &diag, c->field ? -EINVAL : 0, c->field, c->other);
	/* a NULL diag is allowed */
	KUNIT_EXPECT_EQ(test, qcow2_regions_check(c->r, c->n, NULL), err);
}

struct img_regions_case {
	const char *fixture;
	unsigned int n;
	struct qcow2_region r[6];
};

/* Regions the header names, in whole clusters. */
static const struct img_regions_case img_regions_cases[] = {
	{ "v3", 3, { { 0, SZ_64K, "header" }, { 0x30000, SZ_64K, "L1 table" },
		     { 0x10000, SZ_64K, "refcount table" } } },
	{ "c512", 3, { { 0, 512, "header" }, { 0x600, 2048 * 8, "L1 table" },
		       { 0x200, 512, "refcount table" } } },
	{ "snapshots", 4, { { 0, SZ_64K, "header" }, { 0x30000, SZ_64K, "L1 table" },
			    { 0x10000, SZ_64K, "refcount table" },
			    { 0xd0000, SZ_64K, "snapshot table" } } },
	{ "bitmap", 4, { { 0, SZ_64K, "header" }, { 0x30000, SZ_64K, "L1 table" },
			 { 0x10000, SZ_64K, "refcount table" },
			 { 0x50000, SZ_64K, "bitmap directory" } } },
	{ "c2m", 3, { { 0, SZ_2M, "header" }, { 0x600000, SZ_2M, "L1 table" },
		      { 0x200000, SZ_2M, "refcount table" } } },
};

static void img_regions_desc(const struct img_regions_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", c->fixture);
}

KUNIT_ARRAY_PARAM(img_regions, img_regions_cases, img_regions_desc);

static void overlap_image_regions_test(struct kunit *test)
{
	const struct img_regions_case *c = test->param_value;
	const struct qcow2_image *img = fx_image(test, fx_get(test, c->fixture));
	struct qcow2_region r[8];
	unsigned int n, i;

	n = qcow2_image_regions(img, r, ARRAY_SIZE(r));
	KUNIT_ASSERT_EQ(test, n, c->n);
	for (i = 0; i < n; i++) {
		KUNIT_EXPECT_EQ_MSG(test, r[i].start, c->r[i].start, "region %u", i);
		KUNIT_EXPECT_EQ_MSG(test, r[i].len, c->r[i].len, "region %u", i);
		KUNIT_EXPECT_STREQ(test, r[i].what, c->r[i].what);
	}
	KUNIT_EXPECT_EQ(test, qcow2_regions_check(r, n, NULL), 0);
	/* a short array gets the first regions */
	KUNIT_EXPECT_EQ(test, qcow2_image_regions(img, r, 2), 2U);
	KUNIT_EXPECT_EQ(test, r[1].start, c->r[1].start);
}

static void overlap_region_find_test(struct kunit *test)
{
	struct qcow2_image *img = fx_image(test, fx_get(test, "v3"));
	struct qcow2_region r[8];
	const struct qcow2_region *f;
	unsigned int n;

	n = qcow2_image_regions(img, r, ARRAY_SIZE(r));
	f = qcow2_region_find(r, n, 0x30000 + 100, 1);
	KUNIT_ASSERT_NOT_NULL(test, f);
	KUNIT_EXPECT_STREQ(test, f->what, "L1 table");
	f = qcow2_region_find(r, n, 0x1ffff, 2);
	KUNIT_ASSERT_NOT_NULL(test, f);
	KUNIT_EXPECT_STREQ(test, f->what, "refcount table");
	/* the refcount block and data clusters are not header metadata */
	KUNIT_EXPECT_NULL(test, qcow2_region_find(r, n, 0x20000, SZ_64K));
	KUNIT_EXPECT_NULL(test, qcow2_region_find(r, n, 0x40000, SZ_1M));
	KUNIT_EXPECT_NULL(test, qcow2_region_find(r, n, 0x30000, 0));
	f = qcow2_region_find(r, n, 0, 1);
	KUNIT_ASSERT_NOT_NULL(test, f);
	KUNIT_EXPECT_STREQ(test, f->what, "header");

	/* the LUKS header pointer is a region too */
	img->ext.has_crypto = true;
	img->ext.crypto_offset = 0x40000;
	img->ext.crypto_length = 0x1f9000;
	n = qcow2_image_regions(img, r, ARRAY_SIZE(r));
	KUNIT_ASSERT_EQ(test, n, 4U);
	KUNIT_EXPECT_EQ(test, r[3].start, 0x40000ULL);
	KUNIT_EXPECT_EQ(test, r[3].len, 0x200000ULL);
	KUNIT_EXPECT_STREQ(test, r[3].what, "encryption header");
	img->ext.crypto_offset = 0x30000;
	n = qcow2_image_regions(img, r, ARRAY_SIZE(r));
	KUNIT_EXPECT_EQ(test, qcow2_regions_check(r, n, NULL), -EINVAL);
}

static struct kunit_case qcow_overlap_cases[] = {
	KUNIT_CASE_PARAM(overlap_ranges_test, range_case_gen_params),
	KUNIT_CASE(overlap_ranges_exhaustive_test),
	KUNIT_CASE_PARAM(overlap_regions_check_test, regions_case_gen_params),
	KUNIT_CASE_PARAM(overlap_image_regions_test, img_regions_gen_params),
	KUNIT_CASE(overlap_region_find_test),
	{}
};

static struct kunit_suite qcow_overlap_suite = {
	.name = "qcow_overlap",
	.test_cases = qcow_overlap_cases,
};

/* ------------------------------------------------------------------------
 * qcow_snapshot
 */

#define SN_FIXED	sizeof(struct qcow2_snapshot_disk)

/* The two snapshots `qemu-img snapshot -c` wrote (see qcow2_fixtures.h). */
static const struct {
	u64 l1_table_offset;
	const char *id;
	const char *name;
} fx_snapshots[] = {
	{ 0x70000, "1", "s1" },
	{ 0xc0000, "2", "s2" },
};

static void snapshot_fixture_test(struct kunit *test)
{
	const struct qcow2_fixture *fx = fx_get(test, "snapshots");
	const struct qcow2_header *h = &fx_image(test, fx)->hdr;
	size_t padded = round_up(fx->extra_len, 8), off = 0, used, table_len;
	u8 *table = fx_extra(test, fx, 0);
	struct qcow2_diag diag = {};
	struct qcow2_snapshot sn;
	unsigned int i;
	int err;

	KUNIT_ASSERT_EQ(test, h->nb_snapshots, 2U);
	KUNIT_ASSERT_EQ(test, h->snapshots_offset, fx->extra_offset);
	for (i = 0; i < ARRAY_SIZE(fx_snapshots); i++) {
		err = qcow2_snapshot_parse(h, table + off, padded - off, fx->file_size,
					   &sn, &used, &diag);
		KUNIT_ASSERT_EQ_MSG(test, err, 0, "snapshot %u: %s: %s", i,
				    diag.field ?: "-", diag.msg);
		KUNIT_EXPECT_EQ(test, sn.l1_table_offset, fx_snapshots[i].l1_table_offset);
		KUNIT_EXPECT_EQ(test, sn.l1_size, 1U);
		KUNIT_EXPECT_EQ(test, sn.id_len, 1);
		KUNIT_EXPECT_EQ(test, memcmp(sn.id, fx_snapshots[i].id, 1), 0);
		KUNIT_EXPECT_EQ(test, sn.name_len, 2);
		KUNIT_EXPECT_EQ(test, memcmp(sn.name, fx_snapshots[i].name, 2), 0);
		KUNIT_EXPECT_NE(test, sn.date_sec, 0U);
		KUNIT_EXPECT_EQ(test, sn.vm_clock_nsec, 0ULL);
		KUNIT_EXPECT_EQ(test, sn.vm_state_size, 0ULL);
		/* qemu 7.2 writes all 24 bytes of extra data */
		KUNIT_EXPECT_EQ(test, sn.extra_data_size, 24U);
		KUNIT_EXPECT_TRUE(test, sn.has_disk_size);
		KUNIT_EXPECT_EQ(test, sn.disk_size, (u64)SZ_64M);
		KUNIT_EXPECT_EQ(test, sn.icount, 0LL);
		/* 40 + 24 + 1 + 2 = 67, padded to 72 */
		KUNIT_EXPECT_EQ(test, used, (size_t)72);
		off += used;
	}
	KUNIT_EXPECT_LE(test, fx->extra_offset + fx->extra_len, fx->file_size);

	/*
	 * qemu writes no padding after the last entry: its table ends at
	 * byte 139 of 144, and here that is the end of the file.  The table
	 * is valid whether the caller reads it to the end of the file or in
	 * whole (zero filled) clusters.
	 */
	KUNIT_EXPECT_EQ(test, fx->extra_offset + fx->extra_len, fx->file_size);
	err = qcow2_snapshot_table_check(h, table, padded, fx->file_size,
					 &table_len, &diag);
	KUNIT_EXPECT_EQ_MSG(test, err, 0, "padded read: %s: %s", diag.field ?: "-",
			    diag.msg);
	KUNIT_EXPECT_GE(test, table_len, fx->extra_len);
	KUNIT_EXPECT_LE(test, table_len, padded);
	err = qcow2_snapshot_table_check(h, table, fx->extra_len, fx->file_size,
					 &table_len, &diag);
	KUNIT_EXPECT_EQ_MSG(test, err, 0, "read to EOF: %s: %s", diag.field ?: "-",
			    diag.msg);
}

/*
 * Build one entry from the spec's layout: the fixed 40 bytes, extra data
 * (vm_state_size_large, disk_size, icount, then 0xee filler), id 'i's,
 * name 'n's, zero padding.  Returns the padded size.
 */
static size_t sn_build(u8 *p, u32 extra, u16 id_len, u16 name_len)
{
	static const u64 known[] = { 0x2000, SZ_64M, 77 };
	u32 i;

	put_unaligned_be64(0x70000, p);		/* l1_table_offset */
	put_unaligned_be32(1, p + 8);		/* l1_size */
	put_unaligned_be16(id_len, p + 12);
	put_unaligned_be16(name_len, p + 14);
	put_unaligned_be32(1700000000, p + 16);	/* date_sec */
	put_unaligned_be32(5, p + 20);		/* date_nsec */
	put_unaligned_be64(123456789, p + 24);	/* vm_clock_nsec */
	put_unaligned_be32(0x1000, p + 32);	/* vm_state_size (32 bit) */
	put_unaligned_be32(extra, p + 36);
	p += SN_FIXED;
	for (i = 0; i < extra; i++) {
		u8 b = i < 24 ? known[i / 8] >> (56 - 8 * (i % 8)) : 0xee;

		p[i] = b;
	}
	memset(p + extra, 'i', id_len);
	memset(p + extra + id_len, 'n', name_len);
	return round_up(SN_FIXED + extra + id_len + name_len, 8);
}

struct sn_case {
	const char *desc;
	u32 version;
	u32 extra;
	u16 id_len;
	u16 name_len;
	struct fld set;		/* offset in the entry */
	int len_delta;		/* buffer = padded entry size + len_delta */
	u64 file_size;		/* 0: 1 GiB */
	int err;
	const char *field;
};

#define SN(f, w, v)	{ offsetof(struct qcow2_snapshot_disk, f), (w), (v) }

static const struct sn_case sn_cases[] = {
	{ "v3 entry, 24 bytes of extra data", 3, 24, 1, 2 },
	{ "v3 entry, 16 bytes of extra data (up to byte 55)", 3, 16, 1, 2 },
	{ "v3 entry, 15 bytes of extra data", 3, 15, 1, 2, .err = -EINVAL,
	  .field = "snapshot extra_data_size" },
	{ "v3 entry without extra data", 3, 0, 1, 2, .err = -EINVAL,
	  .field = "snapshot extra_data_size" },
	{ "v2 entry without extra data", 2, 0, 1, 2 },
	{ "v2 entry, 8 bytes of extra data", 2, 8, 1, 2 },
	{ "unknown extra data, 40 bytes", 3, 40, 1, 2 },
	{ "unknown extra data, 1024 bytes", 3, 1024, 3, 5 },
	{ "extra data over 1024 bytes", 3, 1025, 1, 2, .err = -EINVAL,
	  .field = "snapshot extra_data_size" },
	{ "id_str_size 0", 3, 24, 0, 2, .err = -EINVAL, .field = "snapshot id_str_size" },
	{ "id of 127 bytes", 3, 24, 127, 2 },
	{ "id of 128 bytes", 3, 24, 128, 2, .err = -EINVAL,
	  .field = "snapshot id_str_size" },
	{ "empty name", 3, 24, 1, 0 },
	{ "name of 1023 bytes", 3, 24, 1, 1023 },
	{ "name of 1024 bytes", 3, 24, 1, 1024, .err = -EINVAL,
	  .field = "snapshot name_size" },
	{ "entry one byte past the buffer", 3, 24, 3, 5, .len_delta = -1,
	  .err = -EINVAL, .field = "snapshot table" },
	{ "entry without its padding", 3, 24, 1, 2, .len_delta = -5 },
	{ "entry cut in its name", 3, 24, 1, 2, .len_delta = -6, .err = -EINVAL,
	  .field = "snapshot table" },
	{ "fixed part cut", 3, 24, 1, 2, .len_delta = -72 + 39, .err = -EINVAL,
	  .field = "snapshot table" },
	{ "NUL in the id", 3, 24, 1, 2, AT(SN_FIXED + 24, 1, 0), .err = -EINVAL,
	  .field = "snapshot name" },
	{ "NUL in the name", 3, 24, 1, 2, AT(SN_FIXED + 24 + 2, 1, 0), .err = -EINVAL,
	  .field = "snapshot name" },
	{ "disk_size over 2^61", 3, 24, 1, 2, AT(SN_FIXED + 8, 8, BIT64(61) + 1),
	  .err = -EINVAL, .field = "snapshot disk_size" },
	{ "l1_size over 32 MiB of entries", 3, 24, 1, 2, SN(l1_size, 4, SZ_4M + 1),
	  .err = -EINVAL, .field = "snapshot l1_size" },
	{ "l1_table_offset not cluster aligned", 3, 24, 1, 2,
	  SN(l1_table_offset, 8, 0x70200), .err = -EINVAL,
	  .field = "snapshot l1_table_offset" },
	{ "l1_table_offset 0", 3, 24, 1, 2, SN(l1_table_offset, 8, 0), .err = -EINVAL,
	  .field = "snapshot l1_table_offset" },
	{ "L1 table past the end of the file", 3, 24, 1, 2, .file_size = 0x70004,
	  .err = -EINVAL, .field = "snapshot l1_table_offset" },
	{ "no L1 table", 3, 24, 1, 2, SN(l1_size, 4, 0) },
};

static void sn_case_desc(const struct sn_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s", c->desc);
}

KUNIT_ARRAY_PARAM(sn_case, sn_cases, sn_case_desc);

/* Parse, check against the builder, serialize, parse again. */
static void snapshot_entry_test(struct kunit *test)
{
	const struct sn_case *c = test->param_value;
	const struct qcow2_header *h = geo_header(test, c->version, 16, 0);
	u64 file_size = c->file_size ?: SZ_1G;
	struct qcow2_snapshot sn, sn2;
	struct qcow2_diag diag = {};
	size_t size, len, used, written, unpadded;
	u8 *buf, *out;
	int err;

	buf = kunit_kzalloc(test, 4096, GFP_KERNEL);
	out = kunit_kzalloc(test, 4096, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, buf);
	KUNIT_ASSERT_NOT_NULL(test, out);
	size = sn_build(buf, c->extra, c->id_len, c->name_len);
	unpadded = SN_FIXED + c->extra + c->id_len + c->name_len;
	apply(test, buf, 4096, &c->set, 1);
	len = size + c->len_delta;

	/* an exact-size copy, so KASAN sees any read past the end */
	if (len < size) {
		u8 *exact = kunit_kmalloc(test, len, GFP_KERNEL);

		KUNIT_ASSERT_NOT_NULL(test, exact);
		memcpy(exact, buf, len);
		buf = exact;
	}
	err = qcow2_snapshot_parse(h, buf, len, file_size, &sn, &used, &diag);
	expect_verdict(test, err, &diag, c->err, c->field, NULL);
	if (err)
		return;

	/* the padding may be missing at the end of the table */
	if (len >= size)
		KUNIT_EXPECT_EQ(test, used, size);
	else
		KUNIT_EXPECT_TRUE(test, used == len || used == size);
	KUNIT_EXPECT_EQ(test, sn.l1_table_offset,
			c->set.off == offsetof(struct qcow2_snapshot_disk, l1_table_offset) &&
			c->set.width ? c->set.val : 0x70000);
	KUNIT_EXPECT_EQ(test, sn.date_sec, 1700000000U);
	KUNIT_EXPECT_EQ(test, sn.date_nsec, 5U);
	KUNIT_EXPECT_EQ(test, sn.vm_clock_nsec, 123456789ULL);
	/* "If this field is present, the 32-bit value ... is ignored." */
	KUNIT_EXPECT_EQ(test, sn.vm_state_size, c->extra >= 8 ? 0x2000ULL : 0x1000ULL);
	KUNIT_EXPECT_EQ(test, sn.has_disk_size, c->extra >= 16);
	KUNIT_EXPECT_EQ(test, sn.disk_size, c->extra >= 16 ? (u64)SZ_64M : 0);
	KUNIT_EXPECT_EQ(test, sn.icount, c->extra >= 24 ? 77LL : -1LL);
	KUNIT_EXPECT_EQ(test, sn.extra_data_size, c->extra);
	KUNIT_EXPECT_PTR_EQ(test, (const void *)sn.extra_data, (const void *)(buf + SN_FIXED));
	KUNIT_EXPECT_EQ(test, sn.id_len, c->id_len);
	KUNIT_EXPECT_PTR_EQ(test, (const void *)sn.id,
			    (const void *)(buf + SN_FIXED + c->extra));
	KUNIT_EXPECT_EQ(test, sn.name_len, c->name_len);
	KUNIT_EXPECT_PTR_EQ(test, (const void *)sn.name,
			    (const void *)(buf + SN_FIXED + c->extra + c->id_len));

	/* serialize: extra data grows to the 24 bytes defined today */
	KUNIT_EXPECT_EQ(test, qcow2_snapshot_entry_size(h, &sn),
			round_up(SN_FIXED + max_t(u32, c->extra, 24) + c->id_len +
				 c->name_len, 8));
	err = qcow2_snapshot_serialize(h, &sn, out, 4096, &written);
	KUNIT_ASSERT_EQ(test, err, 0);
	KUNIT_EXPECT_EQ(test, written, qcow2_snapshot_entry_size(h, &sn));
	KUNIT_EXPECT_EQ(test, written % 8, (size_t)0);
	KUNIT_EXPECT_NULL(test, memchr_inv(out + written, 0, 4096 - written));
	if (c->extra >= 24) {
		/* byte for byte, but for the ignored 32-bit vm_state_size */
		put_unaligned_be32(0x1000, out + 32);
		KUNIT_EXPECT_EQ(test, memcmp(out, buf, unpadded), 0);
		KUNIT_EXPECT_NULL(test, memchr_inv(out + unpadded, 0, written - unpadded));
	}
	KUNIT_ASSERT_EQ(test, qcow2_snapshot_parse(h, out, written, file_size, &sn2,
						   &used, &diag), 0);
	KUNIT_EXPECT_EQ(test, used, written);
	KUNIT_EXPECT_EQ(test, sn2.l1_table_offset, sn.l1_table_offset);
	KUNIT_EXPECT_EQ(test, sn2.l1_size, sn.l1_size);
	KUNIT_EXPECT_EQ(test, sn2.date_sec, sn.date_sec);
	KUNIT_EXPECT_EQ(test, sn2.date_nsec, sn.date_nsec);
	KUNIT_EXPECT_EQ(test, sn2.vm_clock_nsec, sn.vm_clock_nsec);
	KUNIT_EXPECT_EQ(test, sn2.vm_state_size, sn.vm_state_size);
	KUNIT_EXPECT_EQ(test, sn2.disk_size, sn.disk_size);
	KUNIT_EXPECT_TRUE(test, sn2.has_disk_size);
	KUNIT_EXPECT_EQ(test, sn2.icount, sn.icount);
	KUNIT_EXPECT_EQ(test, sn2.extra_data_size, max_t(u32, c->extra, 24));
	KUNIT_EXPECT_EQ(test, sn2.id_len, sn.id_len);
	KUNIT_EXPECT_EQ(test, memcmp(sn2.id, sn.id, sn.id_len), 0);
	KUNIT_EXPECT_EQ(test, sn2.name_len, sn.name_len);
	KUNIT_EXPECT_EQ(test, memcmp(sn2.name, sn.name, sn.name_len), 0);
	/* unknown extra data is preserved */
	if (c->extra > 24)
		KUNIT_EXPECT_EQ(test, memcmp(sn2.extra_data + 24, sn.extra_data + 24,
					     c->extra - 24), 0);
}

static void snapshot_serialize_errors_test(struct kunit *test)
{
	const struct qcow2_header *h = geo_header(test, 3, 16, 0);
	struct qcow2_snapshot sn = {
		.l1_table_offset = 0x70000, .l1_size = 1, .date_sec = 1,
		.vm_state_size = BIT64(33), .disk_size = SZ_1G, .icount = -1,
		.id = "42", .id_len = 2, .name = "new", .name_len = 3,
	};
	struct qcow2_snapshot back;
	struct qcow2_diag diag = {};
	size_t written, used;
	u8 *buf = kunit_kzalloc(test, 256, GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, buf);
	/* a new entry, no extra data of its own: 40 + 24 + 2 + 3 -> 72 */
	KUNIT_EXPECT_EQ(test, qcow2_snapshot_entry_size(h, &sn), (size_t)72);
	KUNIT_EXPECT_EQ(test, qcow2_snapshot_serialize(h, &sn, buf, 71, &written), -ENOSPC);
	KUNIT_ASSERT_EQ(test, qcow2_snapshot_serialize(h, &sn, buf, 72, &written), 0);
	KUNIT_EXPECT_EQ(test, written, (size_t)72);
	KUNIT_EXPECT_EQ(test, get_unaligned_be32(buf + 36), 24U);
	/* the 64-bit vm state size, and its low half in the old field */
	KUNIT_EXPECT_EQ(test, get_unaligned_be64(buf + 40), BIT64(33));
	KUNIT_EXPECT_EQ(test, get_unaligned_be32(buf + 32), 0U);
	KUNIT_EXPECT_EQ(test, get_unaligned_be64(buf + 56), U64_MAX);	/* icount -1 */
	KUNIT_ASSERT_EQ(test, qcow2_snapshot_parse(h, buf, 72, SZ_1G, &back, &used,
						   &diag), 0);
	KUNIT_EXPECT_EQ(test, back.vm_state_size, BIT64(33));
	KUNIT_EXPECT_EQ(test, back.disk_size, (u64)SZ_1G);
	KUNIT_EXPECT_EQ(test, back.icount, -1LL);
	KUNIT_EXPECT_EQ(test, memcmp(back.name, "new", 3), 0);

	sn.id_len = 0;
	KUNIT_EXPECT_EQ(test, qcow2_snapshot_serialize(h, &sn, buf, 256, &written), -EINVAL);
	sn.id_len = 128;
	KUNIT_EXPECT_EQ(test, qcow2_snapshot_serialize(h, &sn, buf, 256, &written), -EINVAL);
	sn.id_len = 2;
	sn.name_len = 1024;
	KUNIT_EXPECT_EQ(test, qcow2_snapshot_serialize(h, &sn, buf, 256, &written), -EINVAL);
	sn.name_len = 3;
	sn.extra_data_size = 1025;
	KUNIT_EXPECT_EQ(test, qcow2_snapshot_serialize(h, &sn, buf, 256, &written), -EINVAL);
}

#define SN_RANDOM	24

/* A seeded table of entries with random ids, names and extra data. */
static void snapshot_random_table_test(struct kunit *test)
{
	struct qcow2_header *h = kunit_kzalloc(test, sizeof(*h), GFP_KERNEL);
	struct qcow2_snapshot *sn = kunit_kcalloc(test, SN_RANDOM, sizeof(*sn), GFP_KERNEL);
	u8 *strings = kunit_kmalloc(test, SZ_64K, GFP_KERNEL);
	u8 *table = kunit_kzalloc(test, SZ_64K, GFP_KERNEL);
	u64 seed = 0x5a5a0001, file_size;
	size_t off = 0, written, used, table_len;
	struct qcow2_diag diag = {};
	struct qcow2_snapshot back;
	unsigned int i, j;

	KUNIT_ASSERT_NOT_NULL(test, h);
	KUNIT_ASSERT_NOT_NULL(test, sn);
	KUNIT_ASSERT_NOT_NULL(test, strings);
	KUNIT_ASSERT_NOT_NULL(test, table);
	*h = *geo_header(test, 3, 16, 0);
	for (i = 0; i < SZ_64K; i++)
		strings[i] = 'A' + rnd_below(&seed, 26);

	for (i = 0; i < SN_RANDOM; i++) {
		u8 *s = strings + i * 2048;

		sn[i] = (struct qcow2_snapshot){
			.l1_table_offset = 0x70000 + i * SZ_64K,
			.l1_size = 1 + rnd_below(&seed, 16),
			.date_sec = rnd_next(&seed), .date_nsec = rnd_below(&seed, 1000000000),
			.vm_clock_nsec = rnd_next(&seed),
			.vm_state_size = rnd_next(&seed) >> rnd_below(&seed, 64),
			.disk_size = rnd_below(&seed, BIT64(61)),
			.icount = (i & 1) ? -1 : (s64)rnd_below(&seed, BIT64(62)),
			.extra_data_size = (i % 3) ? 0 : 24 + 8 * rnd_below(&seed, 8),
			.extra_data = s,
			.id = (const char *)s + 64, .id_len = 1 + rnd_below(&seed, 127),
			.name = (const char *)s + 256, .name_len = rnd_below(&seed, 300),
		};
		KUNIT_ASSERT_EQ(test, qcow2_snapshot_serialize(h, &sn[i], table + off,
							       SZ_64K - off, &written), 0);
		off += written;
	}
	/* L1 tables up to 0x1e0000, the table after them */
	h->nb_snapshots = SN_RANDOM;
	h->snapshots_offset = 0x300000;
	file_size = h->snapshots_offset + off;

	KUNIT_ASSERT_EQ_MSG(test, qcow2_snapshot_table_check(h, table, SZ_64K, file_size,
							     &table_len, &diag), 0,
			    "%s: %s", diag.field ?: "-", diag.msg);
	/* table_len ends at the last entry's unpadded end. */
	KUNIT_EXPECT_LE(test, table_len, off);
	KUNIT_EXPECT_EQ(test, round_up(table_len, 8), off);
	for (i = 0, off = 0; i < SN_RANDOM; i++, off += used) {
		KUNIT_ASSERT_EQ(test, qcow2_snapshot_parse(h, table + off, SZ_64K - off,
							   file_size, &back, &used, &diag), 0);
		KUNIT_EXPECT_EQ(test, back.l1_table_offset, sn[i].l1_table_offset);
		KUNIT_EXPECT_EQ(test, back.l1_size, sn[i].l1_size);
		KUNIT_EXPECT_EQ(test, back.date_sec, sn[i].date_sec);
		KUNIT_EXPECT_EQ(test, back.date_nsec, sn[i].date_nsec);
		KUNIT_EXPECT_EQ(test, back.vm_clock_nsec, sn[i].vm_clock_nsec);
		KUNIT_EXPECT_EQ(test, back.vm_state_size, sn[i].vm_state_size);
		KUNIT_EXPECT_EQ(test, back.disk_size, sn[i].disk_size);
		KUNIT_EXPECT_EQ(test, back.icount, sn[i].icount);
		KUNIT_EXPECT_EQ(test, back.id_len, sn[i].id_len);
		KUNIT_EXPECT_EQ(test, memcmp(back.id, sn[i].id, sn[i].id_len), 0);
		KUNIT_EXPECT_EQ(test, back.name_len, sn[i].name_len);
		KUNIT_EXPECT_EQ(test, memcmp(back.name, sn[i].name, sn[i].name_len), 0);
		j = max_t(u32, sn[i].extra_data_size, 24);
		KUNIT_EXPECT_EQ(test, back.extra_data_size, j);
		if (j > 24)
			KUNIT_EXPECT_EQ(test, memcmp(back.extra_data + 24,
						     sn[i].extra_data + 24, j - 24), 0);
	}

	/* one entry more than the table holds */
	h->nb_snapshots = SN_RANDOM + 1;
	expect_verdict(test, qcow2_snapshot_table_check(h, table, table_len, file_size,
							&table_len, &diag),
		       &diag, -EINVAL, "snapshot table", "snapshot 24");
	/* a bad entry in the middle is named by number */
	h->nb_snapshots = SN_RANDOM;
	for (i = 0, off = 0; i < 5; i++, off += used)
		KUNIT_ASSERT_EQ(test, qcow2_snapshot_parse(h, table + off, SZ_64K - off,
							   file_size, &back, &used, &diag), 0);
	put_unaligned_be16(0, table + off + 12);
	expect_verdict(test, qcow2_snapshot_table_check(h, table, SZ_64K, file_size,
							&table_len, &diag),
		       &diag, -EINVAL, "snapshot id_str_size", "snapshot 5");
	put_unaligned_be16(sn[5].id_len, table + off + 12);
	/* the table must end inside the file */
	expect_verdict(test, qcow2_snapshot_table_check(h, table, SZ_64K, file_size - 8,
							&table_len, &diag),
		       &diag, -EINVAL, "snapshots_offset", NULL);
}

static struct kunit_case qcow_snapshot_cases[] = {
	KUNIT_CASE(snapshot_fixture_test),
	KUNIT_CASE_PARAM(snapshot_entry_test, sn_case_gen_params),
	KUNIT_CASE(snapshot_serialize_errors_test),
	KUNIT_CASE(snapshot_random_table_test),
	{}
};

static struct kunit_suite qcow_snapshot_suite = {
	.name = "qcow_snapshot",
	.test_cases = qcow_snapshot_cases,
};

kunit_test_suites(&qcow_format_suite, &qcow_l2_suite, &qcow_refcount_suite,
		  &qcow_overlap_suite, &qcow_snapshot_suite);
