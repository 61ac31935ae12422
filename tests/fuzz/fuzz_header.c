// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_header: an image file as the module opens it.
 *
 * Input: 8 bytes big-endian file size, then the first bytes of the file.
 * The target reads the first cluster as qcow_image_open() does
 * (cluster_bits peeked and clamped; a short read when the input ends
 * first), runs qcow2_image_parse(), then, when the header is accepted, the
 * snapshot table check over the same bytes (the file past the input reads
 * as zeros) and the region check with the table's real size, as
 * qcow_check_snapshots() does.
 *
 * Properties, beyond "no crash, no sanitizer report":
 *  - a diag is set exactly when a parse fails, names a known field and is
 *    one line; the result is the same with and without a diag;
 *  - qcow2_header_parse() agrees with qcow2_image_parse() on the fields;
 *  - an accepted header satisfies every guarantee qcow2_format.h documents,
 *    checked in exact (128-bit) arithmetic: geometry derived right, L1 big
 *    enough for the virtual size and bounded, each table cluster aligned,
 *    past the header cluster and inside the file, sizes within the limits,
 *    backing file name inside the header cluster and after the header and
 *    extensions, strings NUL-free and terminated, feature bits known;
 *  - qcow2_header_encode() gives back the very bytes that were parsed;
 *  - the metadata regions are inside the file and pairwise disjoint;
 *  - an accepted snapshot table lies inside the file, every entry in it
 *    parses again on its own, and the check needs exactly table_len bytes.
 *
 * With QCOW_FUZZ_EXPECT_VALID set in the environment (run.sh replaying
 * the seeds made by qemu-img), a refused image is a failure too.
 */
#include "fuzz_common.h"

#define SNAPSHOT_ENTRY_MAX	round_up(sizeof(struct qcow2_snapshot_disk) + \
					 QCOW2_MAX_SNAPSHOT_EXTRA + \
					 QCOW2_MAX_SNAPSHOT_ID_LEN + \
					 QCOW2_MAX_SNAPSHOT_NAME_LEN, 8)

/* QCOW_FUZZ_EXPECT_VALID: every input is a real image (-1: not read yet). */
static int expect_valid = -1;

static void check_string(const char *s, size_t cap, const char *what)
{
	FUZZ_CHECK(memchr(s, 0, cap), "%s not terminated", what);
}

static void check_header(const struct qcow2_header *h, const u8 *buf,
			 size_t len, u64 file_size)
{
	u64 avail = len < file_size ? len : file_size;
	u128 per_l1, need;

	FUZZ_CHECK(h->version == 2 || h->version == 3, "version %u", h->version);
	FUZZ_CHECK(h->cluster_bits >= 9 && h->cluster_bits <= 21, "cluster_bits %u",
		   h->cluster_bits);
	FUZZ_CHECK(h->cluster_size == 1ULL << h->cluster_bits, "cluster_size");
	FUZZ_CHECK(be64_at(buf + 24) == h->size, "size not the on-disk value");
	FUZZ_CHECK(h->size <= QCOW2_MAX_VIRTUAL_SIZE, "size %llu", h->size);
	FUZZ_CHECK(h->crypt_method == QCOW2_CRYPT_NONE, "crypt_method %u",
		   h->crypt_method);

	if (h->version == 2) {
		FUZZ_CHECK(h->header_length == QCOW2_V2_HEADER_LEN, "v2 header_length");
		FUZZ_CHECK(h->refcount_order == 4, "v2 refcount_order");
		FUZZ_CHECK(!h->incompatible_features && !h->compatible_features &&
			   !h->autoclear_features && !h->compression_type,
			   "v2 header with v3 fields");
	} else {
		FUZZ_CHECK(h->header_length >= QCOW2_V3_HEADER_MIN_LEN &&
			   h->header_length % 8 == 0, "header_length %u",
			   h->header_length);
	}
	FUZZ_CHECK(h->header_length <= h->cluster_size && h->header_length <= avail,
		   "header_length %u past cluster or data", h->header_length);
	FUZZ_CHECK(!(h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN),
		   "unknown incompatible bits accepted");

	FUZZ_CHECK(h->extended_l2 == !!(h->incompatible_features & QCOW2_INCOMPAT_EXTL2),
		   "extended_l2");
	FUZZ_CHECK(!h->extended_l2 || h->cluster_bits >= QCOW2_MIN_EXT_L2_CLUSTER_BITS,
		   "extended L2 with %u-bit clusters", h->cluster_bits);
	FUZZ_CHECK(h->l2_entry_size == (h->extended_l2 ? 16U : 8U), "l2_entry_size");
	FUZZ_CHECK(1ULL << h->l2_bits == h->cluster_size / h->l2_entry_size, "l2_bits");
	FUZZ_CHECK(h->subcluster_bits == (h->extended_l2 ? h->cluster_bits - 5 :
					  h->cluster_bits), "subcluster_bits");
	FUZZ_CHECK(h->refcount_order <= QCOW2_MAX_REFCOUNT_ORDER, "refcount_order");
	FUZZ_CHECK(1ULL << h->refblock_bits ==
		   h->cluster_size * 8 >> h->refcount_order, "refblock_bits");

	/* L1: covers the disk, bounded, inside the file. */
	per_l1 = (u128)h->cluster_size << h->l2_bits;
	need = ((u128)h->size + per_l1 - 1) / per_l1;
	FUZZ_CHECK(h->l1_size >= need, "l1_size %u < %llu needed", h->l1_size,
		   (unsigned long long)need);
	FUZZ_CHECK(qcow2_l1_entries_needed(h->size, h->cluster_bits,
					   h->extended_l2) == need, "l1_entries_needed");
	FUZZ_CHECK((u64)h->l1_size * 8 <= QCOW2_MAX_L1_BYTES, "l1 bytes");
	if (h->l1_size) {
		FUZZ_CHECK(h->l1_table_offset % h->cluster_size == 0 &&
			   h->l1_table_offset >= h->cluster_size &&
			   fuzz_in_file(h->l1_table_offset, (u64)h->l1_size * 8,
					file_size), "L1 table placement");
	}

	FUZZ_CHECK(h->refcount_table_clusters &&
		   (u128)h->refcount_table_clusters << h->cluster_bits <=
		   QCOW2_MAX_REFTABLE_BYTES, "refcount table size");
	FUZZ_CHECK(h->refcount_table_offset % h->cluster_size == 0 &&
		   h->refcount_table_offset >= h->cluster_size &&
		   fuzz_in_file(h->refcount_table_offset,
				(u64)h->refcount_table_clusters << h->cluster_bits,
				file_size), "refcount table placement");

	FUZZ_CHECK(h->nb_snapshots <= QCOW2_MAX_SNAPSHOTS, "nb_snapshots");
	if (h->nb_snapshots)
		FUZZ_CHECK(h->snapshots_offset % h->cluster_size == 0 &&
			   h->snapshots_offset >= h->cluster_size &&
			   fuzz_in_file(h->snapshots_offset, (u64)h->nb_snapshots *
					sizeof(struct qcow2_snapshot_disk),
					file_size), "snapshot table placement");

	if (h->backing_file_offset) {
		FUZZ_CHECK(h->backing_file_size <= QCOW2_MAX_BACKING_NAME,
			   "backing_file_size");
		FUZZ_CHECK(h->backing_file_offset >= h->header_length &&
			   fuzz_in_file(h->backing_file_offset, h->backing_file_size,
					h->cluster_size) &&
			   fuzz_in_file(h->backing_file_offset, h->backing_file_size,
					avail), "backing file name placement");
	}

	if (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION)
		FUZZ_CHECK(h->compression_type == QCOW2_COMPRESSION_ZSTD &&
			   h->header_length > 104, "compression type");
	else
		FUZZ_CHECK(h->compression_type == QCOW2_COMPRESSION_ZLIB,
			   "compression_type without its bit");
	if (h->autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW)
		FUZZ_CHECK(h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE &&
			   !(h->backing_file_offset && h->backing_file_size),
			   "raw external data");
}

/* The encoder writes back the bytes the decoder read. */
static void check_encode(const struct qcow2_header *h, const u8 *buf)
{
	struct qcow2_header_disk out;
	size_t n = h->version == 2 ? QCOW2_V2_HEADER_LEN :
		   h->header_length > 104 ? 105 : 104;

	qcow2_header_encode(h, &out);
	FUZZ_CHECK(!memcmp(&out, buf, n), "header_encode differs in the first %zu bytes",
		   n);
}

static void check_extensions(const struct qcow2_image *img, const u8 *buf,
			     size_t len, u64 file_size)
{
	const struct qcow2_header *h = &img->hdr;
	const struct qcow2_extensions *e = &img->ext;
	u64 end = h->cluster_size;
	u32 i;

	if (len < end)
		end = len;
	if (file_size < end)
		end = file_size;
	FUZZ_CHECK(e->ext_end >= h->header_length && e->ext_end <= end,
		   "ext_end %u outside [%u, %llu]", e->ext_end, h->header_length, end);
	if (h->backing_file_offset)
		FUZZ_CHECK(e->ext_end <= h->backing_file_offset,
			   "extensions overlap the backing file name");

	check_string(e->backing_format, sizeof(e->backing_format), "backing_format");
	check_string(e->backing_file, sizeof(e->backing_file), "backing_file");
	check_string(e->data_file, sizeof(e->data_file), "data_file");
	FUZZ_CHECK(e->has_backing_file ==
		   (h->backing_file_offset && h->backing_file_size), "has_backing_file");
	if (e->has_backing_file)
		FUZZ_CHECK(strlen(e->backing_file) == h->backing_file_size &&
			   !memcmp(e->backing_file, buf + h->backing_file_offset,
				   h->backing_file_size), "backing_file bytes");
	FUZZ_CHECK(!e->has_data_file ||
		   h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE, "data file");
	FUZZ_CHECK(!e->has_crypto || h->crypt_method == QCOW2_CRYPT_LUKS, "crypto");

	FUZZ_CHECK(e->nr_feature_names <= QCOW2_MAX_FEATURE_NAMES, "nr_feature_names");
	for (i = 0; i < e->nr_feature_names; i++) {
		const struct qcow2_feature_name *f = &e->feature_names[i];

		FUZZ_CHECK(f->type <= 2 && f->bit <= 63, "feature name %u", i);
		check_string(f->name, sizeof(f->name), "feature name");
	}
	for (i = 0; i < 4 * 64; i++) {
		const char *s = qcow2_feature_name(e, i / 64, i % 64);

		if (s)
			FUZZ_CHECK(strnlen(s, 47) < 47, "feature name too long");
	}

	if (e->has_bitmaps && h->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)
		FUZZ_CHECK(e->nb_bitmaps >= 1 && e->nb_bitmaps <= 65535 &&
			   e->bitmap_directory_size &&
			   e->bitmap_directory_size <= QCOW2_MAX_SNAPSHOT_TABLE_BYTES &&
			   e->bitmap_directory_offset % h->cluster_size == 0 &&
			   e->bitmap_directory_offset >= h->cluster_size &&
			   fuzz_in_file(e->bitmap_directory_offset,
					e->bitmap_directory_size, file_size),
			   "bitmap directory");
}

/* Regions: the expected set, each inside the file, pairwise disjoint. */
static void check_regions(const struct qcow2_region *r, unsigned int n,
			  u64 cs, u64 file_size)
{
	u128 lim = fuzz_round_up(file_size, cs);
	unsigned int i, j;

	if (lim < cs)
		lim = cs;	/* the header cluster exists by definition */
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(r[i].len && (u128)r[i].start + r[i].len <= lim,
			   "%s at 0x%llx+0x%llx past the file (%llu)", r[i].what,
			   r[i].start, r[i].len, file_size);
		FUZZ_CHECK(r[i].start % cs == 0 && r[i].len % cs == 0,
			   "%s not in whole clusters", r[i].what);
		for (j = i + 1; j < n; j++)
			FUZZ_CHECK(!fuzz_overlap(r[i].start, r[i].len,
						 r[j].start, r[j].len),
				   "%s overlaps %s", r[i].what, r[j].what);
	}
}

/*
 * The snapshot table at snapshots_offset, read as the module reads it:
 * min(nb_snapshots * largest entry, table limit, rest of the file) bytes.
 * Past the input the file is zeros, and an all-zero entry is refused
 * (id_str_size 0), so the check never needs more than one largest entry
 * past the input: that is all this copies.
 */
static void check_snapshots(struct qcow2_image *img, const u8 *file,
			    size_t flen, u64 file_size)
{
	const struct qcow2_header *h = &img->hdr;
	struct qcow2_region regions[8];
	struct qcow2_snapshot sn;
	struct qcow2_diag diag;
	size_t len, have, table_len, tl2, off, used;
	unsigned int n, i;
	u64 want;
	u8 *buf;
	int err;

	want = (u64)h->nb_snapshots * SNAPSHOT_ENTRY_MAX;
	if (want > QCOW2_MAX_SNAPSHOT_TABLE_BYTES)
		want = QCOW2_MAX_SNAPSHOT_TABLE_BYTES;
	if (want > file_size - h->snapshots_offset)
		want = file_size - h->snapshots_offset;
	have = h->snapshots_offset < flen ? flen - h->snapshots_offset : 0;
	len = want;
	if (len > have + 2 * SNAPSHOT_ENTRY_MAX)
		len = have + 2 * SNAPSHOT_ENTRY_MAX;
	buf = calloc(1, len ? len : 1);
	if (!buf)
		abort();
	if (have)
		memcpy(buf, file + h->snapshots_offset, have < len ? have : len);

	fuzz_diag_poison(&diag);
	err = qcow2_snapshot_table_check(h, buf, len, file_size, &table_len, &diag);
	fuzz_diag_check(err, &diag);
	FUZZ_CHECK(err != -EOPNOTSUPP, "snapshot table: EOPNOTSUPP");
	FUZZ_CHECK(!expect_valid || !err, "a qemu-img snapshot table refused: %s: %s",
		   diag.field, diag.msg);
	if (err) {
		FUZZ_CHECK(!table_len, "table_len set on failure");
		goto out;
	}
	FUZZ_CHECK(table_len <= len && table_len >= (u64)h->nb_snapshots * 40,
		   "table_len %zu", table_len);
	FUZZ_CHECK(fuzz_in_file(h->snapshots_offset, table_len, file_size),
		   "snapshot table past the file");

	/* qcowctl reads exactly table_len and parses entry by entry. */
	fuzz_diag_poison(&diag);
	err = qcow2_snapshot_table_check(h, buf, table_len, file_size, &tl2, &diag);
	fuzz_diag_check(err, &diag);
	FUZZ_CHECK(!err && tl2 == table_len, "table check needs more than table_len");
	if (table_len) {
		err = qcow2_snapshot_table_check(h, buf, table_len - 1, file_size,
						 &tl2, NULL);
		FUZZ_CHECK(err == -EINVAL, "table check passes on table_len - 1 bytes");
	}
	for (i = 0, off = 0; i < h->nb_snapshots; i++) {
		fuzz_diag_poison(&diag);
		err = qcow2_snapshot_parse(h, buf + off, table_len - off, file_size,
					   &sn, &used, &diag);
		fuzz_diag_check(err, &diag);
		FUZZ_CHECK(!err, "entry %u of an accepted table refused", i);
		FUZZ_CHECK(used >= sizeof(struct qcow2_snapshot_disk) &&
			   used <= table_len - off, "entry %u consumed %zu", i, used);
		FUZZ_CHECK(!sn.l1_size ||
			   (sn.l1_table_offset % h->cluster_size == 0 &&
			    sn.l1_table_offset >= h->cluster_size &&
			    fuzz_in_file(sn.l1_table_offset, (u64)sn.l1_size * 8,
					 file_size)), "snapshot L1 placement");
		off += used;
	}
	FUZZ_CHECK(off == table_len, "entries end at %zu, table_len %zu", off, table_len);

	/* The module replaces the table's lower bound with its real size. */
	n = qcow2_image_regions(img, regions, 8);
	for (i = 0; i < n; i++)
		if (regions[i].start == h->snapshots_offset &&
		    !strcmp(regions[i].what, "snapshot table"))
			regions[i].len = round_up(table_len, h->cluster_size);
	fuzz_diag_poison(&diag);
	err = qcow2_regions_check(regions, n, &diag);
	fuzz_diag_check(err, &diag);
	FUZZ_CHECK(!expect_valid || !err, "a qemu-img image's regions overlap: %s",
		   diag.msg);
	if (!err)
		check_regions(regions, n, h->cluster_size, file_size);
out:
	free(buf);
}

FUZZ_TARGET
{
	static struct qcow2_image img, img2;
	struct qcow2_header h;
	struct qcow2_region regions[8];
	struct qcow2_diag diag, hdiag;
	const u8 *file;
	size_t flen, len;
	u64 file_size;
	u32 cb;
	unsigned int n;
	int err, err2, herr;
	u8 *buf;

	if (size < 8)
		return 0;
	file_size = be64_at(data);
	file = data + 8;
	flen = size - 8;

	/* qcow_image_open(): peek at cluster_bits, read the first cluster. */
	cb = flen >= 24 ? get_unaligned_be32(file + 20) : 0;
	cb = clamp_t(u32, cb, QCOW2_MIN_CLUSTER_BITS, QCOW2_MAX_CLUSTER_BITS);
	len = min_t(u64, 1ULL << cb, flen);
	buf = fuzz_dup(file, len);

	memset(&img, 0xa5, sizeof(img));
	fuzz_diag_poison(&diag);
	err = qcow2_image_parse(buf, len, file_size, &img, &diag);
	fuzz_diag_check(err, &diag);

	memset(&img2, 0xa5, sizeof(img2));
	err2 = qcow2_image_parse(buf, len, file_size, &img2, NULL);
	FUZZ_CHECK(err == err2, "result depends on the diag (%d vs %d)", err, err2);
	if (!err)
		FUZZ_CHECK(!memcmp(&img, &img2, sizeof(img)), "output not deterministic");

	/* Replaying the qemu-img seeds: real images must be accepted. */
	if (expect_valid < 0)
		expect_valid = !!getenv("QCOW_FUZZ_EXPECT_VALID");
	FUZZ_CHECK(!expect_valid || !err, "a qemu-img image refused: %s: %s",
		   diag.field, diag.msg);

	fuzz_diag_poison(&hdiag);
	herr = qcow2_header_parse(buf, len, file_size, &h, &hdiag);
	fuzz_diag_check(herr, &hdiag);
	if (!err)
		FUZZ_CHECK(!herr && !memcmp(&h, &img.hdr, sizeof(h)),
			   "header_parse disagrees with image_parse (%d)", herr);
	if (herr == -EINVAL)
		FUZZ_CHECK(err == -EINVAL && diag.field == hdiag.field &&
			   !strcmp(diag.msg, hdiag.msg),
			   "header refused (%s) but image_parse says %d (%s)",
			   hdiag.field, err, diag.field);
	if (err)
		goto out;

	check_header(&img.hdr, buf, len, file_size);
	check_encode(&img.hdr, buf);
	check_extensions(&img, buf, len, file_size);
	n = qcow2_image_regions(&img, regions, 8);
	FUZZ_CHECK(n >= 2 && n <= 6, "%u regions", n);
	FUZZ_CHECK(!strcmp(regions[0].what, "header") && regions[0].start == 0 &&
		   regions[0].len == img.hdr.cluster_size, "header region");
	check_regions(regions, n, img.hdr.cluster_size, file_size);
	if (img.hdr.nb_snapshots)
		check_snapshots(&img, file, flen, file_size);
out:
	free(buf);
	return 0;
}
