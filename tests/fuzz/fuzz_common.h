/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the libFuzzer targets over the qcow2 format core.
 *
 * The targets compile drivers/block/qcow/qcow2_format.c unchanged through
 * userspace/shim (as qcowctl does) and assert properties of what it
 * returns, not only that it returns: FUZZ_CHECK() prints the property and
 * aborts, which libFuzzer reports as a crash and saves the input for.
 *
 * Models use unsigned __int128 so that "offset + length" never wraps on
 * the model side: an overflow in the code under test shows up as a
 * disagreement.
 */
#ifndef QCOW_FUZZ_COMMON_H
#define QCOW_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <asm/unaligned.h>

#include "qcow2_format.h"

/* The kernel's u128 (6.x), which the shim does not provide. */
#define u128 unsigned __int128

#define FUZZ_CHECK(cond, fmt, ...)					\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "fuzz: %s:%d: property violated: %s: " fmt "\n", \
				__FILE__, __LINE__, #cond, ##__VA_ARGS__); \
			abort();					\
		}							\
	} while (0)

/* A byte source over the fuzz input: reads past the end give zeros. */
struct fuzz_in {
	const u8 *p;
	size_t len;
	size_t pos;
};

static inline void fuzz_in_init(struct fuzz_in *in, const u8 *p, size_t len)
{
	in->p = p;
	in->len = len;
	in->pos = 0;
}

static inline size_t fuzz_in_left(const struct fuzz_in *in)
{
	return in->len - in->pos;
}

static inline u64 fuzz_u(struct fuzz_in *in, unsigned int bytes)
{
	u64 v = 0;

	while (bytes--) {
		v <<= 8;
		if (in->pos < in->len)
			v |= in->p[in->pos++];
	}
	return v;
}

static inline u8 fuzz_u8(struct fuzz_in *in)
{
	return fuzz_u(in, 1);
}

static inline u64 fuzz_u64(struct fuzz_in *in)
{
	return fuzz_u(in, 8);
}

/* A copy of @len bytes in its own allocation, so ASan sees any overread. */
static inline u8 *fuzz_dup(const void *src, size_t len)
{
	u8 *p = malloc(len ? len : 1);

	if (!p)
		abort();
	if (len)
		memcpy(p, src, len);
	return p;
}

static inline u64 be64_at(const u8 *p)
{
	return get_unaligned_be64(p);
}

/*
 * The names a diag may carry: fields of the on-disk format (as the
 * specification spells them) and the metadata regions qcow2_image_regions()
 * names.  A diag naming anything else is a bug in the message.
 */
static const char *const fuzz_diag_fields[] = {
	"header", "magic", "version", "header_length", "cluster_bits",
	"crypt_method", "size", "refcount_order", "l1_size", "l1_table_offset",
	"refcount_table_clusters", "refcount_table_offset", "nb_snapshots",
	"snapshots_offset", "backing_file_size", "backing_file_offset",
	"compression_type", "autoclear_features", "incompatible_features",
	"header extension", "feature name table", "bitmaps extension",
	"nb_bitmaps", "bitmap_directory_size", "bitmap_directory_offset",
	"backing format extension", "crypto extension", "data file extension",
	"snapshot table", "snapshot extra_data_size", "snapshot id_str_size",
	"snapshot name_size", "snapshot name", "snapshot disk_size",
	"snapshot l1_size", "snapshot l1_table_offset",
	"bitmap directory", "bitmap name_size", "bitmap type",
	"bitmap granularity_bits", "bitmap flags", "bitmap_table_size",
	"bitmap_table_offset",
	"L1 table", "refcount table", "encryption header",
};

/* Before a call: a diag the code under test must leave alone on success. */
static inline void fuzz_diag_poison(struct qcow2_diag *d)
{
	d->field = (const char *)d;
	memset(d->msg, 0x5a, sizeof(d->msg));
}

/*
 * After a call returning @err: a diag is set exactly when the call failed,
 * it names a known field, and its message is one NUL-terminated line.
 */
static inline void fuzz_diag_check(int err, const struct qcow2_diag *d)
{
	size_t i, n;

	if (!err) {
		FUZZ_CHECK(d->field == (const char *)d, "diag.field set on success");
		for (i = 0; i < sizeof(d->msg); i++)
			FUZZ_CHECK((u8)d->msg[i] == 0x5a, "diag.msg written on success");
		return;
	}
	FUZZ_CHECK(err == -EINVAL || err == -EOPNOTSUPP, "err %d", err);
	FUZZ_CHECK(d->field && d->field != (const char *)d,
		   "failure (%d) without a diag field", err);
	for (i = 0; i < ARRAY_SIZE(fuzz_diag_fields); i++)
		if (!strcmp(d->field, fuzz_diag_fields[i]))
			break;
	FUZZ_CHECK(i < ARRAY_SIZE(fuzz_diag_fields),
		   "diag names unknown field '%s'", d->field);
	n = strnlen(d->msg, sizeof(d->msg));
	FUZZ_CHECK(n > 0 && n < sizeof(d->msg), "diag message empty or unterminated");
	FUZZ_CHECK(!memchr(d->msg, '\n', n), "diag message has a newline: %s", d->msg);
}

/* [off, off + len) inside a file of @size bytes, in exact arithmetic. */
static inline int fuzz_in_file(u64 off, u64 len, u64 size)
{
	return (u128)off + len <= size;
}

static inline u128 fuzz_round_up(u128 v, u64 align)
{
	return (v + align - 1) / align * align;
}

/* Exact-arithmetic overlap of [a, a + al) and [b, b + bl). */
static inline int fuzz_overlap(u128 a, u128 al, u128 b, u128 bl)
{
	return al && bl && a < b + bl && b < a + al;
}

/*
 * A valid header for the given geometry, parsed by the code under test:
 * targets that exercise entry decoders get a struct qcow2_header derived
 * the same way the module derives it.  Returns 0 or the parse error.
 */
static inline int fuzz_make_header(struct qcow2_header *h, u32 version,
				   u32 cluster_bits, u64 incompat,
				   u32 refcount_order, u64 file_size)
{
	u8 buf[QCOW2_V3_HEADER_MIN_LEN + 8] = { 0 };
	struct qcow2_diag diag;
	u64 cs = 1ULL << cluster_bits;

	put_unaligned_be32(QCOW2_MAGIC, buf);
	put_unaligned_be32(version, buf + 4);
	put_unaligned_be32(cluster_bits, buf + 20);
	put_unaligned_be64(cs, buf + 48);	/* refcount table at cluster 1 */
	put_unaligned_be32(1, buf + 56);
	if (version >= 3) {
		put_unaligned_be64(incompat, buf + 72);
		put_unaligned_be32(refcount_order, buf + 96);
		put_unaligned_be32(QCOW2_V3_HEADER_MIN_LEN, buf + 100);
	}
	return qcow2_header_parse(buf, sizeof(buf), file_size, h, &diag);
}

/* The libFuzzer entry point (named by libFuzzer): input in data, size. */
#define FUZZ_TARGET							\
	int LLVMFuzzerTestOneInput(const u8 *data, size_t size);	\
	int LLVMFuzzerTestOneInput(const u8 *data, size_t size)

#endif /* QCOW_FUZZ_COMMON_H */
