// SPDX-License-Identifier: GPL-2.0
/*
 * fuzz_overlap: metadata region overlap checks against a brute-force
 * model in exact (128-bit) arithmetic.
 *
 * Input: 1 byte (cluster_bits = 9 + b % 13), then 16-byte records
 * (start, length), at most 16.  The records serve three ways: as a region
 * list for qcow2_regions_check() and qcow2_region_find() (the last record
 * is the query), and, the first eight of them, as the header and
 * extension fields qcow2_image_regions() turns into regions (L1 table,
 * refcount table, snapshot table, bitmap directory, encryption header;
 * counts taken from the length words).
 *
 * Properties:
 *  - qcow2_ranges_overlap() is the exact intersection test, symmetric,
 *    false for empty ranges, whatever the wrap-around;
 *  - qcow2_regions_check() fails exactly when two regions overlap, and
 *    names the later region of the first overlapping pair in its diag;
 *  - qcow2_region_find() returns the first region the query touches;
 *  - qcow2_image_regions() returns the documented regions in order, each
 *    starting at its table and covering it rounded up to whole clusters
 *    (saturating rather than wrapping), and honours @max.
 */
#include "fuzz_common.h"

#define MAX_REGIONS 16

static const char *const names[MAX_REGIONS] = {
	"header", "L1 table", "refcount table", "snapshot table",
	"bitmap directory", "encryption header", "L1 table", "refcount table",
	"snapshot table", "bitmap directory", "encryption header", "header",
	"L1 table", "refcount table", "snapshot table", "bitmap directory",
};

static void check_list(const struct qcow2_region *r, unsigned int n)
{
	struct qcow2_diag diag;
	unsigned int i, j, fi = 0, fj = 0;
	bool found = false;
	int err;

	for (i = 0; i < n; i++)
		for (j = 0; j < n; j++) {
			bool m = fuzz_overlap(r[i].start, r[i].len, r[j].start, r[j].len);

			FUZZ_CHECK(qcow2_ranges_overlap(r[i].start, r[i].len,
							r[j].start, r[j].len) == m,
				   "ranges_overlap(0x%llx+0x%llx, 0x%llx+0x%llx) != %d",
				   r[i].start, r[i].len, r[j].start, r[j].len, m);
			if (m && i < j && !found) {
				found = true;
				fi = i;
				fj = j;
			}
		}

	fuzz_diag_poison(&diag);
	err = qcow2_regions_check(r, n, &diag);
	fuzz_diag_check(err, &diag);
	FUZZ_CHECK(err == (found ? -EINVAL : 0), "regions_check %d, model %d", err, found);
	if (found)
		FUZZ_CHECK(diag.field == r[fj].what && strstr(diag.msg, r[fi].what),
			   "diag names %s, first overlap is %s/%s", diag.field,
			   r[fi].what, r[fj].what);
}

static void check_find(const struct qcow2_region *r, unsigned int n,
		       u64 start, u64 len)
{
	const struct qcow2_region *got = qcow2_region_find(r, n, start, len);
	unsigned int i;

	for (i = 0; i < n; i++)
		if (fuzz_overlap(r[i].start, r[i].len, start, len))
			break;
	FUZZ_CHECK(got == (i < n ? &r[i] : NULL), "region_find picked %ld, model %u",
		   got ? (long)(got - r) : -1L, i);
}

/* One expected region of qcow2_image_regions(). */
struct want {
	u64 start, len;
	const char *what;
};

static unsigned int want_add(struct want *w, unsigned int n, u64 start, u64 len,
			     const char *what)
{
	if (!len)
		return n;
	w[n].start = start;
	w[n].len = len;
	w[n].what = what;
	return n + 1;
}

static void check_image(const struct qcow2_region *in, unsigned int nin, u32 cb)
{
	static struct qcow2_image img;
	struct qcow2_header *h = &img.hdr;
	struct qcow2_region r[8];
	struct want w[8];
	unsigned int n, nw = 0, i, max;
	u64 cs = 1ULL << cb;

	memset(&img, 0, sizeof(img));
	h->cluster_bits = cb;
	h->cluster_size = cs;
	h->l1_table_offset = in[0].start;
	h->l1_size = (u32)in[0].len;
	h->refcount_table_offset = in[1].start;
	h->refcount_table_clusters = (u32)in[1].len;
	h->snapshots_offset = in[2].start;
	h->nb_snapshots = (u32)in[2].len;
	img.ext.has_bitmaps = in[3].len & 1;
	h->autoclear_features = in[3].len >> 1 & 1;
	img.ext.bitmap_directory_offset = in[4].start;
	img.ext.bitmap_directory_size = in[4].len;
	img.ext.has_crypto = in[3].len >> 2 & 1;
	img.ext.crypto_offset = in[5].start;
	img.ext.crypto_length = in[5].len;
	if (nin < 6)
		return;

	nw = want_add(w, nw, 0, cs, "header");
	nw = want_add(w, nw, h->l1_table_offset, (u64)h->l1_size * 8, "L1 table");
	nw = want_add(w, nw, h->refcount_table_offset,
		      (u64)h->refcount_table_clusters << cb, "refcount table");
	nw = want_add(w, nw, h->snapshots_offset, (u64)h->nb_snapshots * 40,
		      "snapshot table");
	if (img.ext.has_bitmaps && h->autoclear_features)
		nw = want_add(w, nw, img.ext.bitmap_directory_offset,
			      img.ext.bitmap_directory_size, "bitmap directory");
	if (img.ext.has_crypto)
		nw = want_add(w, nw, img.ext.crypto_offset, img.ext.crypto_length,
			      "encryption header");

	n = qcow2_image_regions(&img, r, 8);
	FUZZ_CHECK(n == nw, "image_regions gave %u regions, model %u", n, nw);
	for (i = 0; i < n; i++) {
		u128 rounded = fuzz_round_up(w[i].len, cs);

		FUZZ_CHECK(r[i].start == w[i].start && !strcmp(r[i].what, w[i].what),
			   "region %u is %s at 0x%llx, model %s at 0x%llx", i,
			   r[i].what, r[i].start, w[i].what, w[i].start);
		/*
		 * Whole clusters; a length that rounds past 2^64 saturates.  The
		 * end may pass 2^64 (only for tables the header checks would
		 * refuse): the overlap tests are exact either way.
		 */
		if (rounded <= U64_MAX)
			FUZZ_CHECK(r[i].len == rounded, "%s: len 0x%llx, model 0x%llx",
				   r[i].what, r[i].len, (unsigned long long)rounded);
		else
			FUZZ_CHECK(r[i].start + r[i].len == U64_MAX,
				   "%s: 0x%llx+0x%llx does not saturate", r[i].what,
				   r[i].start, r[i].len);
	}
	check_list(r, n);

	max = in[5].start % 8;
	if (max < n) {
		struct qcow2_region r2[8];

		FUZZ_CHECK(qcow2_image_regions(&img, r2, max) == max &&
			   !memcmp(r2, r, max * sizeof(r[0])), "max %u not honoured", max);
	}
}

FUZZ_TARGET
{
	struct qcow2_region *r;
	struct fuzz_in in;
	unsigned int n = 0;
	u32 cb;

	if (size < 1)
		return 0;
	fuzz_in_init(&in, data, size);
	cb = 9 + fuzz_u8(&in) % 13;
	r = calloc(MAX_REGIONS, sizeof(*r));
	if (!r)
		abort();
	while (n < MAX_REGIONS && fuzz_in_left(&in) >= 16) {
		r[n].start = fuzz_u64(&in);
		r[n].len = fuzz_u64(&in);
		r[n].what = names[n];
		n++;
	}
	if (n >= 2) {
		check_list(r, n - 1);
		check_find(r, n - 1, r[n - 1].start, r[n - 1].len);
	}
	check_image(r, n, cb);
	free(r);
	return 0;
}
