// SPDX-License-Identifier: GPL-2.0
/*
 * qcow2 on-disk format core.
 *
 * Pure decoders, validators and encoders over byte buffers.  No I/O, no
 * allocation, no locks: the same object is linked into the kernel module,
 * the KUnit suites and the userspace tool (see qcow2_format.h).
 *
 * Every validator that refuses input fills a struct qcow2_diag naming the
 * on-disk field, so that the module logs and qcowctl prints one line the
 * user can act on.  Errors:
 *   -EINVAL      the image violates the specification or a safety bound
 *   -EOPNOTSUPP  the image is valid but uses something we do not implement
 *                (encryption, an unknown incompatible feature, ...)
 *   -ERANGE      an encoder was asked for a value the format cannot hold
 *   -ENOSPC      a serializer was given too small a buffer
 */
#include <linux/overflow.h>
#include <linux/stdarg.h>
#include <asm/unaligned.h>

#include "qcow2_format.h"

/* ------------------------------------------------------------------------
 * diagnostics
 */

static __printf(4, 0) int qcow2_vfail(struct qcow2_diag *diag, int err,
				      const char *field, const char *fmt,
				      va_list ap)
{
	if (diag) {
		diag->field = field;
		vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
	}
	return err;
}

static __printf(4, 5) int qcow2_fail(struct qcow2_diag *diag, int err,
				     const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err = qcow2_vfail(diag, err, field, fmt, ap);
	va_end(ap);
	return err;
}

/**
 * qcow2_diag_set() - record a validation failure
 * @diag: where to record it (may be NULL)
 * @field: static name of the on-disk field at fault
 * @fmt: printf format of the one-line message
 *
 * Return: -EINVAL, so callers can write ``return qcow2_diag_set(...)``.
 */
int qcow2_diag_set(struct qcow2_diag *diag, const char *field,
		   const char *fmt, ...)
{
	va_list ap;
	int err;

	va_start(ap, fmt);
	err = qcow2_vfail(diag, -EINVAL, field, fmt, ap);
	va_end(ap);
	return err;
}

/* [off, off + len) lies inside a file of @file_size bytes, without overflow. */
static bool qcow2_in_file(u64 off, u64 len, u64 file_size)
{
	return off <= file_size && len <= file_size - off;
}

/* ------------------------------------------------------------------------
 * header
 */

/**
 * qcow2_l1_entries_needed() - minimum L1 entries for a virtual size
 * @size: virtual disk size in bytes (<= QCOW2_MAX_VIRTUAL_SIZE)
 * @cluster_bits: log2 of the cluster size (9..21)
 * @extended_l2: whether L2 entries are 128 bits
 *
 * Return: number of L1 entries needed to map @size bytes.
 */
u64 qcow2_l1_entries_needed(u64 size, u32 cluster_bits, bool extended_l2)
{
	u32 shift = cluster_bits + cluster_bits - (extended_l2 ? 4 : 3);

	return (size >> shift) + !!(size & ((1ULL << shift) - 1));
}

static const char *const qcow2_incompat_names[] = {
	"dirty bit", "corrupt bit", "external data file", "compression type",
	"extended L2 entries",
};

static const char *const qcow2_compat_names[] = {
	"lazy refcounts",
};

static const char *const qcow2_autoclear_names[] = {
	"bitmaps", "raw external data",
};

/**
 * qcow2_known_feature_name() - name of a feature bit this code knows
 * @type: 0 incompatible, 1 compatible, 2 autoclear
 * @bit: bit number
 *
 * Return: a static string, or NULL for a bit the specification does not
 * define.
 */
const char *qcow2_known_feature_name(unsigned int type, unsigned int bit)
{
	switch (type) {
	case 0:
		return bit < ARRAY_SIZE(qcow2_incompat_names) ?
			qcow2_incompat_names[bit] : NULL;
	case 1:
		return bit < ARRAY_SIZE(qcow2_compat_names) ?
			qcow2_compat_names[bit] : NULL;
	case 2:
		return bit < ARRAY_SIZE(qcow2_autoclear_names) ?
			qcow2_autoclear_names[bit] : NULL;
	default:
		return NULL;
	}
}

/**
 * qcow2_feature_name() - name of a feature bit from the image's own table
 * @ext: decoded extensions (may be NULL)
 * @type: 0 incompatible, 1 compatible, 2 autoclear
 * @bit: bit number
 *
 * Return: the name the image's feature name table gives, else the name
 * from the specification, else NULL.
 */
const char *qcow2_feature_name(const struct qcow2_extensions *ext,
			       unsigned int type, unsigned int bit)
{
	u32 i;

	if (ext) {
		for (i = 0; i < ext->nr_feature_names; i++) {
			const struct qcow2_feature_name *f = &ext->feature_names[i];

			if (f->type == type && f->bit == bit && f->name[0])
				return f->name;
		}
	}
	return qcow2_known_feature_name(type, bit);
}

static int qcow2_check_table(struct qcow2_diag *diag, const char *field,
			     const struct qcow2_header *h, u64 off, u64 bytes,
			     u64 file_size)
{
	if (off & (h->cluster_size - 1))
		return qcow2_diag_set(diag, field,
				      "offset 0x%llx is not aligned to the %llu-byte cluster size",
				      off, h->cluster_size);
	if (off < h->cluster_size)
		return qcow2_diag_set(diag, field,
				      "offset 0x%llx lies in the header cluster", off);
	if (!qcow2_in_file(off, bytes, file_size))
		return qcow2_diag_set(diag, field,
				      "table at 0x%llx (%llu bytes) runs past the end of the %llu-byte file",
				      off, bytes, file_size);
	return 0;
}

static int qcow2_check_incompat(const struct qcow2_header *h,
				const struct qcow2_extensions *ext,
				struct qcow2_diag *diag)
{
	u64 unknown = h->incompatible_features & ~QCOW2_INCOMPAT_KNOWN;
	const char *name;
	unsigned int bit;

	if (!unknown)
		return 0;
	bit = __builtin_ctzll(unknown);
	name = qcow2_feature_name(ext, 0, bit);
	if (name)
		return qcow2_fail(diag, -EOPNOTSUPP, "incompatible_features",
				  "unsupported incompatible feature bit %u (%s)",
				  bit, name);
	return qcow2_fail(diag, -EOPNOTSUPP, "incompatible_features",
			  "unsupported incompatible feature bit %u", bit);
}

static int qcow2_header_decode(const void *buf, size_t len, u64 file_size,
			       struct qcow2_header *h, struct qcow2_diag *diag)
{
	const struct qcow2_header_disk *d = buf;
	u64 max_l1, need_l1, bytes;
	int err;

	memset(h, 0, sizeof(*h));
	if (len < QCOW2_V2_HEADER_LEN || file_size < QCOW2_V2_HEADER_LEN)
		return qcow2_diag_set(diag, "header",
				      "image too short for a qcow2 header (%llu bytes)",
				      (unsigned long long)min_t(u64, len, file_size));
	if (be32_to_cpu(d->magic) != QCOW2_MAGIC)
		return qcow2_diag_set(diag, "magic", "bad magic 0x%08x, not a qcow2 image",
				      be32_to_cpu(d->magic));

	h->version = be32_to_cpu(d->version);
	if (h->version != 2 && h->version != 3)
		return qcow2_fail(diag, -EOPNOTSUPP, "version",
				  "unsupported qcow2 version %u (2 and 3 are supported)",
				  h->version);

	h->backing_file_offset = be64_to_cpu(d->backing_file_offset);
	h->backing_file_size = be32_to_cpu(d->backing_file_size);
	h->cluster_bits = be32_to_cpu(d->cluster_bits);
	h->size = be64_to_cpu(d->size);
	h->crypt_method = be32_to_cpu(d->crypt_method);
	h->l1_size = be32_to_cpu(d->l1_size);
	h->l1_table_offset = be64_to_cpu(d->l1_table_offset);
	h->refcount_table_offset = be64_to_cpu(d->refcount_table_offset);
	h->refcount_table_clusters = be32_to_cpu(d->refcount_table_clusters);
	h->nb_snapshots = be32_to_cpu(d->nb_snapshots);
	h->snapshots_offset = be64_to_cpu(d->snapshots_offset);

	if (h->version == 2) {
		h->header_length = QCOW2_V2_HEADER_LEN;
		h->refcount_order = 4;
	} else {
		if (len < QCOW2_V3_HEADER_MIN_LEN || file_size < QCOW2_V3_HEADER_MIN_LEN)
			return qcow2_diag_set(diag, "header_length",
					      "version 3 header truncated (%llu bytes, need %u)",
					      (unsigned long long)min_t(u64, len, file_size),
					      QCOW2_V3_HEADER_MIN_LEN);
		h->incompatible_features = be64_to_cpu(d->incompatible_features);
		h->compatible_features = be64_to_cpu(d->compatible_features);
		h->autoclear_features = be64_to_cpu(d->autoclear_features);
		h->refcount_order = be32_to_cpu(d->refcount_order);
		h->header_length = be32_to_cpu(d->header_length);
	}

	if (h->cluster_bits < QCOW2_MIN_CLUSTER_BITS ||
	    h->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return qcow2_diag_set(diag, "cluster_bits",
				      "cluster_bits %u out of range %u..%u",
				      h->cluster_bits, QCOW2_MIN_CLUSTER_BITS,
				      QCOW2_MAX_CLUSTER_BITS);
	h->cluster_size = 1ULL << h->cluster_bits;

	if (h->version == 3) {
		if (h->header_length < QCOW2_V3_HEADER_MIN_LEN ||
		    h->header_length % 8)
			return qcow2_diag_set(diag, "header_length",
					      "header_length %u must be >= %u and a multiple of 8",
					      h->header_length, QCOW2_V3_HEADER_MIN_LEN);
		if (h->header_length > h->cluster_size)
			return qcow2_diag_set(diag, "header_length",
					      "header_length %u exceeds the %llu-byte cluster",
					      h->header_length, h->cluster_size);
		if (h->header_length > len || h->header_length > file_size)
			return qcow2_diag_set(diag, "header_length",
					      "header_length %u exceeds the %llu bytes available",
					      h->header_length,
					      (unsigned long long)min_t(u64, len, file_size));
		if (h->header_length >
		    offsetof(struct qcow2_header_disk, compression_type))
			h->compression_type = d->compression_type;
	}

	if (h->crypt_method == QCOW2_CRYPT_AES || h->crypt_method == QCOW2_CRYPT_LUKS)
		return qcow2_fail(diag, -EOPNOTSUPP, "crypt_method",
				  "encrypted images (%s) are not supported",
				  h->crypt_method == QCOW2_CRYPT_AES ? "AES" : "LUKS");
	if (h->crypt_method)
		return qcow2_diag_set(diag, "crypt_method", "invalid crypt_method %u",
				      h->crypt_method);

	if (h->size > QCOW2_MAX_VIRTUAL_SIZE)
		return qcow2_diag_set(diag, "size",
				      "virtual size %llu exceeds the limit of %llu bytes",
				      h->size, QCOW2_MAX_VIRTUAL_SIZE);

	h->extended_l2 = !!(h->incompatible_features & QCOW2_INCOMPAT_EXTL2);
	if (h->extended_l2 && h->cluster_bits < QCOW2_MIN_EXT_L2_CLUSTER_BITS)
		return qcow2_diag_set(diag, "cluster_bits",
				      "extended L2 entries need clusters of at least %u bytes, not %llu",
				      1U << QCOW2_MIN_EXT_L2_CLUSTER_BITS,
				      h->cluster_size);
	h->l2_entry_size = h->extended_l2 ? 16 : 8;
	h->l2_bits = h->cluster_bits - (h->extended_l2 ? 4 : 3);
	h->subcluster_bits = h->extended_l2 ? h->cluster_bits - 5 : h->cluster_bits;

	if (h->refcount_order > QCOW2_MAX_REFCOUNT_ORDER)
		return qcow2_diag_set(diag, "refcount_order",
				      "refcount_order %u exceeds %u",
				      h->refcount_order, QCOW2_MAX_REFCOUNT_ORDER);
	h->refblock_bits = h->cluster_bits + 3 - h->refcount_order;

	/* L1 table: big enough for the disk, bounded, inside the file. */
	max_l1 = QCOW2_MAX_L1_BYTES / sizeof(u64);
	need_l1 = qcow2_l1_entries_needed(h->size, h->cluster_bits, h->extended_l2);
	if (h->l1_size > max_l1)
		return qcow2_diag_set(diag, "l1_size",
				      "l1_size %u exceeds the limit of %llu entries",
				      h->l1_size, max_l1);
	if (h->l1_size < need_l1)
		return qcow2_diag_set(diag, "l1_size",
				      "l1_size %u too small for virtual size %llu (needs %llu)",
				      h->l1_size, h->size, need_l1);
	if (h->l1_size) {
		err = qcow2_check_table(diag, "l1_table_offset", h,
					h->l1_table_offset,
					(u64)h->l1_size * sizeof(u64), file_size);
		if (err)
			return err;
	}

	/* Refcount table. */
	if (!h->refcount_table_clusters)
		return qcow2_diag_set(diag, "refcount_table_clusters",
				      "refcount table is empty");
	bytes = (u64)h->refcount_table_clusters << h->cluster_bits;
	if (bytes > QCOW2_MAX_REFTABLE_BYTES)
		return qcow2_diag_set(diag, "refcount_table_clusters",
				      "refcount table of %u clusters exceeds %u bytes",
				      h->refcount_table_clusters, QCOW2_MAX_REFTABLE_BYTES);
	err = qcow2_check_table(diag, "refcount_table_offset", h,
				h->refcount_table_offset, bytes, file_size);
	if (err)
		return err;

	/* Snapshot table: its length is only known after parsing entries. */
	if (h->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return qcow2_diag_set(diag, "nb_snapshots",
				      "nb_snapshots %u exceeds %u",
				      h->nb_snapshots, QCOW2_MAX_SNAPSHOTS);
	if (h->nb_snapshots) {
		err = qcow2_check_table(diag, "snapshots_offset", h,
					h->snapshots_offset,
					(u64)h->nb_snapshots *
					sizeof(struct qcow2_snapshot_disk),
					file_size);
		if (err)
			return err;
	}

	/* Backing file name: inside the first cluster, after the header. */
	if (h->backing_file_offset) {
		if (h->backing_file_size > QCOW2_MAX_BACKING_NAME)
			return qcow2_diag_set(diag, "backing_file_size",
					      "backing file name of %u bytes exceeds %u",
					      h->backing_file_size, QCOW2_MAX_BACKING_NAME);
		if (h->backing_file_offset < h->header_length ||
		    h->backing_file_offset > h->cluster_size ||
		    h->backing_file_size > h->cluster_size - h->backing_file_offset)
			return qcow2_diag_set(diag, "backing_file_offset",
					      "backing file name at 0x%llx (%u bytes) is outside the header cluster",
					      h->backing_file_offset, h->backing_file_size);
		if (!qcow2_in_file(h->backing_file_offset, h->backing_file_size,
				   min_t(u64, len, file_size)))
			return qcow2_diag_set(diag, "backing_file_offset",
					      "backing file name at 0x%llx (%u bytes) runs past the data available",
					      h->backing_file_offset, h->backing_file_size);
	}

	/* Compression type (field 104, incompatible bit 3). */
	if (h->incompatible_features & QCOW2_INCOMPAT_COMPRESSION) {
		if (h->header_length <= offsetof(struct qcow2_header_disk,
						 compression_type) ||
		    h->compression_type == QCOW2_COMPRESSION_ZLIB)
			return qcow2_diag_set(diag, "compression_type",
					      "compression type bit set but compression_type is absent or deflate");
	} else if (h->compression_type != QCOW2_COMPRESSION_ZLIB) {
		return qcow2_diag_set(diag, "compression_type",
				      "compression_type %u without the compression type bit",
				      h->compression_type);
	}
	if (h->compression_type > QCOW2_COMPRESSION_ZSTD)
		return qcow2_fail(diag, -EOPNOTSUPP, "compression_type",
				  "unknown compression_type %u", h->compression_type);

	/* External data files. */
	if ((h->autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW) &&
	    !(h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE))
		return qcow2_diag_set(diag, "autoclear_features",
				      "raw external data bit set without an external data file");
	if ((h->autoclear_features & QCOW2_AUTOCLEAR_DATA_FILE_RAW) &&
	    h->backing_file_offset && h->backing_file_size)
		return qcow2_diag_set(diag, "backing_file_offset",
				      "a backing file cannot be used with a raw external data file");
	return 0;
}

/**
 * qcow2_header_parse() - decode and validate the fixed header
 * @buf: the start of the image; pass the whole first cluster (or the whole
 *	 file when it is shorter), so header_length and the backing file
 *	 name can be checked against what is there
 * @len: bytes in @buf
 * @file_size: size of the image file, for table bounds
 * @h: decoded header (CPU order) with derived geometry
 * @diag: optional failure description
 *
 * Checks every field against the specification, the implementation limits
 * in qcow2_format.h and @file_size.  Unknown incompatible feature bits are
 * refused (named by bit; qcow2_image_parse() names them from the image's
 * feature table too).  Autoclear bits are reported, not refused.
 *
 * Return: 0, -EINVAL for an invalid header, -EOPNOTSUPP for a valid one
 * using what this implementation does not support.
 */
int qcow2_header_parse(const void *buf, size_t len, u64 file_size,
		       struct qcow2_header *h, struct qcow2_diag *diag)
{
	int err = qcow2_header_decode(buf, len, file_size, h, diag);

	return err ? err : qcow2_check_incompat(h, NULL, diag);
}

/**
 * qcow2_header_encode() - build the on-disk header from a decoded one
 * @h: header to encode; @h->version selects the 72-byte or v3 layout
 * @out: 112 bytes of on-disk header; fields beyond the version's layout
 *	 are zeroed
 *
 * Only the first @h->header_length bytes (72 for version 2) belong to the
 * header on disk; the caller writes those.
 */
void qcow2_header_encode(const struct qcow2_header *h,
			 struct qcow2_header_disk *out)
{
	memset(out, 0, sizeof(*out));
	out->magic = cpu_to_be32(QCOW2_MAGIC);
	out->version = cpu_to_be32(h->version);
	out->backing_file_offset = cpu_to_be64(h->backing_file_offset);
	out->backing_file_size = cpu_to_be32(h->backing_file_size);
	out->cluster_bits = cpu_to_be32(h->cluster_bits);
	out->size = cpu_to_be64(h->size);
	out->crypt_method = cpu_to_be32(h->crypt_method);
	out->l1_size = cpu_to_be32(h->l1_size);
	out->l1_table_offset = cpu_to_be64(h->l1_table_offset);
	out->refcount_table_offset = cpu_to_be64(h->refcount_table_offset);
	out->refcount_table_clusters = cpu_to_be32(h->refcount_table_clusters);
	out->nb_snapshots = cpu_to_be32(h->nb_snapshots);
	out->snapshots_offset = cpu_to_be64(h->snapshots_offset);
	if (h->version < 3)
		return;
	out->incompatible_features = cpu_to_be64(h->incompatible_features);
	out->compatible_features = cpu_to_be64(h->compatible_features);
	out->autoclear_features = cpu_to_be64(h->autoclear_features);
	out->refcount_order = cpu_to_be32(h->refcount_order);
	out->header_length = cpu_to_be32(h->header_length);
	if (h->header_length > offsetof(struct qcow2_header_disk, compression_type))
		out->compression_type = h->compression_type;
}

/* ------------------------------------------------------------------------
 * header extensions
 */

static int qcow2_ext_string(char *dst, const u8 *src, u32 len,
			    const char *field, struct qcow2_diag *diag)
{
	if (len > QCOW2_MAX_BACKING_NAME)
		return qcow2_diag_set(diag, field,
				      "string of %u bytes exceeds %u", len,
				      QCOW2_MAX_BACKING_NAME);
	if (memchr(src, 0, len))
		return qcow2_diag_set(diag, field, "string contains a NUL byte");
	memcpy(dst, src, len);
	dst[len] = '\0';
	return 0;
}

static int qcow2_ext_feature_table(struct qcow2_extensions *ext,
				   const u8 *data, u32 len,
				   struct qcow2_diag *diag)
{
	const struct qcow2_feature_name_disk *f;
	u32 i, n;

	if (len % sizeof(*f))
		return qcow2_diag_set(diag, "feature name table",
				      "length %u is not a multiple of %zu",
				      len, sizeof(*f));
	n = len / sizeof(*f);
	for (i = 0; i < n; i++) {
		struct qcow2_feature_name *out;

		f = (const struct qcow2_feature_name_disk *)(data + i * sizeof(*f));
		if (f->type > 2 || f->bit > 63)
			return qcow2_diag_set(diag, "feature name table",
					      "entry %u has type %u bit %u", i,
					      f->type, f->bit);
		if (ext->nr_feature_names >= QCOW2_MAX_FEATURE_NAMES)
			continue;	/* names only decorate messages */
		out = &ext->feature_names[ext->nr_feature_names++];
		out->type = f->type;
		out->bit = f->bit;
		memcpy(out->name, f->name, sizeof(f->name));
		out->name[sizeof(f->name)] = '\0';
	}
	return 0;
}

static int qcow2_ext_bitmaps(const struct qcow2_header *h,
			     struct qcow2_extensions *ext, const u8 *data,
			     u32 len, struct qcow2_diag *diag)
{
	const struct qcow2_bitmaps_ext_disk *b = (const void *)data;

	if (len != sizeof(*b))
		return qcow2_diag_set(diag, "bitmaps extension",
				      "length %u, expected %zu", len, sizeof(*b));
	ext->has_bitmaps = true;
	ext->nb_bitmaps = be32_to_cpu(b->nb_bitmaps);
	ext->bitmap_directory_size = be64_to_cpu(b->bitmap_directory_size);
	ext->bitmap_directory_offset = be64_to_cpu(b->bitmap_directory_offset);

	/*
	 * Without the autoclear bit the bitmaps are stale by definition and
	 * are ignored (QEMU does the same); only consistent ones are checked.
	 */
	if (!(h->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;
	if (b->reserved)
		return qcow2_diag_set(diag, "bitmaps extension",
				      "reserved field is not zero");
	if (!ext->nb_bitmaps || ext->nb_bitmaps > 65535)
		return qcow2_diag_set(diag, "nb_bitmaps",
				      "nb_bitmaps %u out of range 1..65535",
				      ext->nb_bitmaps);
	if (!ext->bitmap_directory_size ||
	    ext->bitmap_directory_size > QCOW2_MAX_SNAPSHOT_TABLE_BYTES)
		return qcow2_diag_set(diag, "bitmap_directory_size",
				      "bitmap directory size %llu out of range",
				      ext->bitmap_directory_size);
	/* Bounds against the file are checked by qcow2_image_parse(). */
	return qcow2_check_table(diag, "bitmap_directory_offset", h,
				 ext->bitmap_directory_offset,
				 ext->bitmap_directory_size, U64_MAX);
}

/**
 * qcow2_extensions_parse() - decode the header extensions and backing name
 * @buf: the first cluster of the image (or the whole file if shorter)
 * @len: bytes in @buf
 * @h: the header, already validated by qcow2_header_parse()
 * @ext: decoded extensions (large: do not put it on a kernel stack)
 * @diag: optional failure description
 *
 * Walks the extension area from header_length to the end marker, the
 * backing file name or the end of the cluster, whichever comes first.
 * Known extensions are validated (length, reserved fields, bounds) and may
 * appear only once; unknown ones are counted and skipped.
 *
 * Return: 0 or -EINVAL.
 */
int qcow2_extensions_parse(const void *buf, size_t len,
			   const struct qcow2_header *h,
			   struct qcow2_extensions *ext,
			   struct qcow2_diag *diag)
{
	const u8 *p = buf;
	u64 end = min_t(u64, h->cluster_size, len);
	u64 off = h->header_length;
	u32 seen = 0;
	int err;

	memset(ext, 0, sizeof(*ext));
	if (h->backing_file_offset && h->backing_file_offset < end)
		end = h->backing_file_offset;
	if (off > end)
		return qcow2_diag_set(diag, "backing_file_offset",
				      "backing file name at 0x%llx overlaps the header",
				      h->backing_file_offset);

	while (off < end) {
		const struct qcow2_ext_hdr_disk *eh;
		u32 type, elen, bit;
		const u8 *data;

		if (end - off < sizeof(*eh))
			return qcow2_diag_set(diag, "header extension",
					      "truncated extension header at offset %llu",
					      off);
		eh = (const void *)(p + off);
		type = be32_to_cpu(eh->type);
		elen = be32_to_cpu(eh->len);
		off += sizeof(*eh);
		if (type == QCOW2_EXT_END) {
			ext->ext_end = off;
			break;
		}
		if (elen > end - off)
			return qcow2_diag_set(diag, "header extension",
					      "extension 0x%08x at offset %llu: length %u runs past the extension area",
					      type, off - sizeof(*eh), elen);
		data = p + off;

		switch (type) {
		case QCOW2_EXT_BACKING_FORMAT:
			bit = 0;
			break;
		case QCOW2_EXT_FEATURE_TABLE:
			bit = 1;
			break;
		case QCOW2_EXT_BITMAPS:
			bit = 2;
			break;
		case QCOW2_EXT_CRYPTO:
			bit = 3;
			break;
		case QCOW2_EXT_DATA_FILE:
			bit = 4;
			break;
		default:
			bit = 31;
			break;
		}
		if (bit != 31) {
			if (seen & BIT(bit))
				return qcow2_diag_set(diag, "header extension",
						      "extension 0x%08x appears twice",
						      type);
			seen |= BIT(bit);
		}

		switch (type) {
		case QCOW2_EXT_BACKING_FORMAT:
			err = qcow2_ext_string(ext->backing_format, data, elen,
					       "backing format extension", diag);
			if (err)
				return err;
			ext->has_backing_format = true;
			break;
		case QCOW2_EXT_FEATURE_TABLE:
			err = qcow2_ext_feature_table(ext, data, elen, diag);
			if (err)
				return err;
			break;
		case QCOW2_EXT_BITMAPS:
			err = qcow2_ext_bitmaps(h, ext, data, elen, diag);
			if (err)
				return err;
			break;
		case QCOW2_EXT_CRYPTO:
			if (elen != sizeof(struct qcow2_crypto_ext_disk))
				return qcow2_diag_set(diag, "crypto extension",
						      "length %u, expected %zu", elen,
						      sizeof(struct qcow2_crypto_ext_disk));
			if (h->crypt_method != QCOW2_CRYPT_LUKS)
				return qcow2_diag_set(diag, "crypto extension",
						      "present but crypt_method is not LUKS");
			ext->has_crypto = true;
			ext->crypto_offset = get_unaligned_be64(data);
			ext->crypto_length = get_unaligned_be64(data + 8);
			break;
		case QCOW2_EXT_DATA_FILE:
			if (!(h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE))
				return qcow2_diag_set(diag, "data file extension",
						      "present without the external data file bit");
			err = qcow2_ext_string(ext->data_file, data, elen,
					       "data file extension", diag);
			if (err)
				return err;
			ext->has_data_file = true;
			break;
		default:
			ext->nr_unknown++;
			break;
		}
		off += round_up((u64)elen, 8);
	}
	if (!ext->ext_end)
		ext->ext_end = min_t(u64, off, end);

	if (h->backing_file_offset && h->backing_file_size) {
		err = qcow2_ext_string(ext->backing_file,
				       p + h->backing_file_offset,
				       h->backing_file_size, "backing_file_offset",
				       diag);
		if (err)
			return err;
		ext->has_backing_file = true;
	}
	return 0;
}

/**
 * qcow2_image_parse() - decode everything the first cluster holds
 * @buf: the first cluster (or the whole file if shorter)
 * @len: bytes in @buf
 * @file_size: size of the image file
 * @img: decoded header and extensions (about 6 KiB: allocate it)
 * @diag: optional failure description
 *
 * Runs qcow2_header_parse() and qcow2_extensions_parse(), then the checks
 * that need both: unknown incompatible bits named from the image's feature
 * table, bitmap directory and encryption header bounds against the file,
 * and overlaps between the header-level metadata regions.
 *
 * Return: 0, -EINVAL or -EOPNOTSUPP (see qcow2_header_parse()).
 */
int qcow2_image_parse(const void *buf, size_t len, u64 file_size,
		      struct qcow2_image *img, struct qcow2_diag *diag)
{
	struct qcow2_region regions[8];
	unsigned int n;
	int err;

	err = qcow2_header_decode(buf, len, file_size, &img->hdr, diag);
	if (err)
		return err;
	err = qcow2_extensions_parse(buf, min_t(u64, len, file_size),
				     &img->hdr, &img->ext, diag);
	if (err)
		return err;
	err = qcow2_check_incompat(&img->hdr, &img->ext, diag);
	if (err)
		return err;

	if (img->ext.has_bitmaps &&
	    (img->hdr.autoclear_features & QCOW2_AUTOCLEAR_BITMAPS)) {
		err = qcow2_check_table(diag, "bitmap_directory_offset", &img->hdr,
					img->ext.bitmap_directory_offset,
					img->ext.bitmap_directory_size, file_size);
		if (err)
			return err;
	}
	if (img->ext.has_crypto) {
		err = qcow2_check_table(diag, "crypto extension", &img->hdr,
					img->ext.crypto_offset,
					img->ext.crypto_length, file_size);
		if (err)
			return err;
	}

	n = qcow2_image_regions(img, regions, ARRAY_SIZE(regions));
	return qcow2_regions_check(regions, n, diag);
}

/* ------------------------------------------------------------------------
 * L1 / L2 entries
 */

/*
 * A pointer to a one-cluster table (L2 table, refcount block): reserved
 * bits clear, cluster aligned, past the header cluster, inside the file.
 */
static int qcow2_table_ptr_decode(const struct qcow2_header *h, u64 raw,
				  u64 offset_mask, u64 reserved_mask,
				  u64 file_size, u64 *offset)
{
	u64 off = raw & offset_mask;

	*offset = 0;
	if (raw & reserved_mask)
		return -EINVAL;
	if (!off)
		return 0;
	if (off & (h->cluster_size - 1) || off < h->cluster_size ||
	    off >= file_size)
		return -EINVAL;
	*offset = off;
	return 0;
}

/* Every problem of a one-cluster table pointer; the offset regardless. */
static u32 qcow2_table_ptr_inspect(const struct qcow2_header *h, u64 raw,
				   u64 offset_mask, u64 reserved_mask,
				   u64 file_size, u64 *offset)
{
	u64 off = raw & offset_mask;
	u32 bad = 0;

	*offset = off;
	if (raw & reserved_mask)
		bad |= QCOW2_BAD_RESERVED;
	if (!off)
		return bad;
	if (off & (h->cluster_size - 1))
		bad |= QCOW2_BAD_UNALIGNED;
	if (off < h->cluster_size)
		bad |= QCOW2_BAD_IN_HEADER;
	if (off >= file_size)
		bad |= QCOW2_BAD_PAST_EOF;
	return bad;
}

/**
 * qcow2_l1e_decode() - decode and check one L1 table entry
 * @h: parsed header
 * @raw: the entry in CPU order
 * @file_size: image file size; the L2 table must start inside it
 * @l2_offset: L2 table offset, 0 when unallocated
 * @copied: the COPIED flag
 *
 * Return: 0, or -EINVAL when reserved bits are set, the offset is not
 * cluster aligned, lies in the header cluster or beyond the end of the file.
 */
int qcow2_l1e_decode(const struct qcow2_header *h, u64 raw, u64 file_size,
		     u64 *l2_offset, bool *copied)
{
	*copied = !!(raw & QCOW2_OFLAG_COPIED);
	return qcow2_table_ptr_decode(h, raw, QCOW2_L1E_OFFSET_MASK,
				      QCOW2_L1E_RESERVED_MASK, file_size,
				      l2_offset);
}

/**
 * qcow2_l1e_encode() - build an L1 table entry
 * @l2_offset: cluster-aligned L2 table offset below 2^56, or 0
 * @copied: whether the L2 table's refcount is exactly one
 *
 * Return: the entry in CPU order.
 */
u64 qcow2_l1e_encode(u64 l2_offset, bool copied)
{
	return (l2_offset & QCOW2_L1E_OFFSET_MASK) |
		(copied ? QCOW2_OFLAG_COPIED : 0);
}

/**
 * qcow2_l1e_inspect() - list every problem of one L1 table entry
 * @h: parsed header
 * @raw: the entry in CPU order
 * @file_size: image file size
 * @l2_offset: the L2 table offset bits, even when they are wrong
 *
 * For checkers: where qcow2_l1e_decode() refuses an entry, this says why
 * and still gives the offset the entry holds.
 *
 * Return: a mask of QCOW2_BAD_RESERVED, QCOW2_BAD_UNALIGNED,
 * QCOW2_BAD_IN_HEADER and QCOW2_BAD_PAST_EOF; 0 for a valid entry.
 */
u32 qcow2_l1e_inspect(const struct qcow2_header *h, u64 raw, u64 file_size,
		      u64 *l2_offset)
{
	return qcow2_table_ptr_inspect(h, raw, QCOW2_L1E_OFFSET_MASK,
				       QCOW2_L1E_RESERVED_MASK, file_size,
				       l2_offset);
}

/**
 * qcow2_compressed_decode() - decode a compressed cluster descriptor
 * @cluster_bits: log2 cluster size (9..21)
 * @word: the L2 entry (flags bits 62/63 are ignored)
 * @host_offset: byte offset of the compressed data in the image file
 * @span: bytes from @host_offset to the end of the last sector used
 *
 * Return: 0, or -EINVAL when the offset uses bits above 55 or is zero.
 */
int qcow2_compressed_decode(u32 cluster_bits, u64 word, u64 *host_offset,
			    u64 *span)
{
	u32 x = 62 - (cluster_bits - 8);
	u64 off = word & ((1ULL << x) - 1);
	u64 nsect = (word >> x) & ((1ULL << (cluster_bits - 8)) - 1);

	*host_offset = off;
	*span = (nsect + 1) * QCOW2_COMPRESSED_SECTOR_SIZE -
		(off & (QCOW2_COMPRESSED_SECTOR_SIZE - 1));
	if (off >= QCOW2_MAX_HOST_OFFSET || !off)
		return -EINVAL;
	return 0;
}

/**
 * qcow2_compressed_encode() - build a compressed cluster descriptor
 * @cluster_bits: log2 cluster size (9..21)
 * @host_offset: byte offset of the compressed data
 * @comp_len: bytes of compressed data (1..2 * cluster size)
 * @word: the L2 entry, with the compressed flag set
 *
 * Return: 0, or -ERANGE when the offset or sector count does not fit.
 */
int qcow2_compressed_encode(u32 cluster_bits, u64 host_offset, u64 comp_len,
			    u64 *word)
{
	u32 x = 62 - (cluster_bits - 8);
	u64 nsect;

	/* Bound comp_len first: the sector count below must not wrap. */
	if (!comp_len || comp_len > (2ULL << cluster_bits) || !host_offset ||
	    host_offset >= QCOW2_MAX_HOST_OFFSET || host_offset >= (1ULL << x))
		return -ERANGE;
	nsect = ((host_offset & (QCOW2_COMPRESSED_SECTOR_SIZE - 1)) + comp_len +
		 QCOW2_COMPRESSED_SECTOR_SIZE - 1) / QCOW2_COMPRESSED_SECTOR_SIZE - 1;
	if (nsect >= (1ULL << (cluster_bits - 8)))
		return -ERANGE;
	*word = QCOW2_OFLAG_COMPRESSED | (nsect << x) | host_offset;
	return 0;
}

/**
 * qcow2_l2e_decode() - decode and check one L2 entry
 * @h: parsed header
 * @word: first (or only) 64 bits of the entry, CPU order
 * @bitmap: subcluster bitmap word with extended L2, else 0
 * @file_size: image file size; data must start inside it
 * @e: the decoded entry
 *
 * Return: 0, or -EINVAL for reserved bits, misaligned or out-of-file
 * offsets, an offset in the header cluster, a compressed entry with the
 * COPIED flag or a non-zero bitmap, or a subcluster both allocated and zero.
 */
int qcow2_l2e_decode(const struct qcow2_header *h, u64 word, u64 bitmap,
		     u64 file_size, struct qcow2_l2e *e)
{
	bool data_file = h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
	u64 off;

	memset(e, 0, sizeof(*e));
	e->copied = !!(word & QCOW2_OFLAG_COPIED);

	if (word & QCOW2_OFLAG_COMPRESSED) {
		e->type = QCOW2_CLUSTER_COMPRESSED;
		if (e->copied || data_file || (h->extended_l2 && bitmap))
			return -EINVAL;
		if (qcow2_compressed_decode(h->cluster_bits, word,
					    &e->comp_offset, &e->comp_len))
			return -EINVAL;
		if (e->comp_offset < h->cluster_size || e->comp_offset >= file_size)
			return -EINVAL;
		return 0;
	}

	if (word & QCOW2_L2E_STD_RESERVED_MASK)
		return -EINVAL;
	if ((word & QCOW2_OFLAG_ZERO) && (h->version < 3 || h->extended_l2))
		return -EINVAL;
	off = word & QCOW2_L2E_OFFSET_MASK;
	if (off & (h->cluster_size - 1))
		return -EINVAL;
	e->host_offset = off;

	if (h->extended_l2) {
		e->alloc_bitmap = lower_32_bits(bitmap);
		e->zero_bitmap = upper_32_bits(bitmap);
		if (e->alloc_bitmap & e->zero_bitmap)
			return -EINVAL;
	}

	if (!off && !(data_file && e->copied)) {
		if (e->copied || e->alloc_bitmap)
			return -EINVAL;
		e->type = (word & QCOW2_OFLAG_ZERO) ? QCOW2_CLUSTER_ZERO_PLAIN :
						      QCOW2_CLUSTER_UNALLOCATED;
		return 0;
	}

	e->type = (word & QCOW2_OFLAG_ZERO) ? QCOW2_CLUSTER_ZERO_ALLOC :
					      QCOW2_CLUSTER_NORMAL;
	if (!data_file) {
		if (off < h->cluster_size)
			return -EINVAL;
		if (e->type == QCOW2_CLUSTER_NORMAL && off >= file_size)
			return -EINVAL;
	}
	return 0;
}

/**
 * qcow2_l2e_inspect() - decode one L2 entry leniently, listing its problems
 * @h: parsed header
 * @word: first (or only) 64 bits of the entry, CPU order
 * @bitmap: subcluster bitmap word with extended L2, else 0
 * @file_size: image file size
 * @e: the decoded entry, filled in whatever the problems
 *
 * For checkers, which must account for what a damaged entry points to.
 * The type follows the flags as QEMU reads them: the compressed flag
 * first; then the zero flag (standard L2 only) makes a zero cluster,
 * preallocated when an offset is present; then an offset makes a normal
 * cluster (with an external data file, so does the COPIED flag alone).
 * @e->host_offset keeps the offset bits even when misaligned.
 *
 * Return: a mask of QCOW2_BAD_* bits; 0 for an entry qcow2_l2e_decode()
 * accepts.
 */
u32 qcow2_l2e_inspect(const struct qcow2_header *h, u64 word, u64 bitmap,
		      u64 file_size, struct qcow2_l2e *e)
{
	bool data_file = h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
	bool zero = word & QCOW2_OFLAG_ZERO;
	u32 bad = 0;
	u64 off;

	memset(e, 0, sizeof(*e));
	e->copied = !!(word & QCOW2_OFLAG_COPIED);

	if (word & QCOW2_OFLAG_COMPRESSED) {
		e->type = QCOW2_CLUSTER_COMPRESSED;
		if (e->copied)
			bad |= QCOW2_BAD_COPIED;
		if (data_file)
			bad |= QCOW2_BAD_DATA_FILE;
		if (h->extended_l2 && bitmap)
			bad |= QCOW2_BAD_BITMAP;
		qcow2_compressed_decode(h->cluster_bits, word, &e->comp_offset,
					&e->comp_len);
		/* With small clusters the field reaches bits 56+: must be 0. */
		if (e->comp_offset >= QCOW2_MAX_HOST_OFFSET)
			bad |= QCOW2_BAD_RESERVED;
		if (e->comp_offset < h->cluster_size)
			bad |= QCOW2_BAD_IN_HEADER;
		if (e->comp_offset >= file_size)
			bad |= QCOW2_BAD_PAST_EOF;
		return bad;
	}

	if (word & QCOW2_L2E_STD_RESERVED_MASK)
		bad |= QCOW2_BAD_RESERVED;
	if (zero && (h->version < 3 || h->extended_l2))
		bad |= QCOW2_BAD_ZERO_FLAG;
	if (h->extended_l2) {
		zero = false;	/* bit 0 means nothing there */
		e->alloc_bitmap = lower_32_bits(bitmap);
		e->zero_bitmap = upper_32_bits(bitmap);
	}
	off = word & QCOW2_L2E_OFFSET_MASK;
	e->host_offset = off;

	if (!off && !(data_file && e->copied)) {
		e->type = zero ? QCOW2_CLUSTER_ZERO_PLAIN :
				 QCOW2_CLUSTER_UNALLOCATED;
		if (e->copied)
			bad |= QCOW2_BAD_COPIED;
		if (e->alloc_bitmap)
			bad |= QCOW2_BAD_BITMAP;
		if (e->alloc_bitmap & e->zero_bitmap)
			bad |= QCOW2_BAD_ALLOC_ZERO;
		return bad;
	}

	e->type = zero ? QCOW2_CLUSTER_ZERO_ALLOC : QCOW2_CLUSTER_NORMAL;
	if (e->alloc_bitmap & e->zero_bitmap)
		bad |= QCOW2_BAD_ALLOC_ZERO;
	if (off & (h->cluster_size - 1))
		bad |= QCOW2_BAD_UNALIGNED;
	if (!data_file) {
		if (off < h->cluster_size)
			bad |= QCOW2_BAD_IN_HEADER;
		if (e->type == QCOW2_CLUSTER_NORMAL && off >= file_size)
			bad |= QCOW2_BAD_PAST_EOF;
	}
	return bad;
}

/**
 * qcow2_l2e_encode_std() - build a standard cluster descriptor
 * @host_offset: cluster-aligned host offset below 2^56, or 0
 * @copied: refcount is exactly one
 * @zero: the cluster reads as zeros (version 3, standard L2 only)
 *
 * Return: the first 64 bits of the L2 entry.
 */
u64 qcow2_l2e_encode_std(u64 host_offset, bool copied, bool zero)
{
	return (host_offset & QCOW2_L2E_OFFSET_MASK) |
		(copied ? QCOW2_OFLAG_COPIED : 0) | (zero ? QCOW2_OFLAG_ZERO : 0);
}

/**
 * qcow2_l2e_encode_bitmap() - build the extended L2 subcluster word
 * @alloc_bitmap: subclusters allocated
 * @zero_bitmap: subclusters reading as zeros (disjoint from @alloc_bitmap)
 *
 * Return: the second 64 bits of an extended L2 entry.
 */
u64 qcow2_l2e_encode_bitmap(u32 alloc_bitmap, u32 zero_bitmap)
{
	return ((u64)zero_bitmap << 32) | alloc_bitmap;
}

/**
 * qcow2_l2e_subcluster_type() - what one subcluster of an entry holds
 * @h: parsed header
 * @e: entry decoded by qcow2_l2e_decode()
 * @sc: subcluster index (always 0 without extended L2)
 *
 * Without extended L2 the whole cluster is one subcluster.
 *
 * Return: the subcluster type; QCOW2_SUBCLUSTER_INVALID for impossible
 * combinations.
 */
enum qcow2_subcluster_type
qcow2_l2e_subcluster_type(const struct qcow2_header *h,
			  const struct qcow2_l2e *e, unsigned int sc)
{
	bool alloc, zero;

	if (!h->extended_l2 || e->type == QCOW2_CLUSTER_COMPRESSED) {
		switch (e->type) {
		case QCOW2_CLUSTER_UNALLOCATED:
			return QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN;
		case QCOW2_CLUSTER_ZERO_PLAIN:
			return QCOW2_SUBCLUSTER_ZERO_PLAIN;
		case QCOW2_CLUSTER_ZERO_ALLOC:
			return QCOW2_SUBCLUSTER_ZERO_ALLOC;
		case QCOW2_CLUSTER_NORMAL:
			return QCOW2_SUBCLUSTER_NORMAL;
		case QCOW2_CLUSTER_COMPRESSED:
			return QCOW2_SUBCLUSTER_COMPRESSED;
		}
		return QCOW2_SUBCLUSTER_INVALID;
	}
	if (sc >= QCOW2_SUBCLUSTERS)
		return QCOW2_SUBCLUSTER_INVALID;
	alloc = e->alloc_bitmap & BIT(sc);
	zero = e->zero_bitmap & BIT(sc);
	if (alloc && zero)
		return QCOW2_SUBCLUSTER_INVALID;
	if (e->type == QCOW2_CLUSTER_UNALLOCATED) {
		if (alloc)
			return QCOW2_SUBCLUSTER_INVALID;
		return zero ? QCOW2_SUBCLUSTER_ZERO_PLAIN :
			      QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN;
	}
	if (e->type != QCOW2_CLUSTER_NORMAL)
		return QCOW2_SUBCLUSTER_INVALID;
	if (alloc)
		return QCOW2_SUBCLUSTER_NORMAL;
	return zero ? QCOW2_SUBCLUSTER_ZERO_ALLOC :
		      QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC;
}

/**
 * qcow2_l2e_subcluster_run() - subclusters of the same type from @sc on
 * @h: parsed header
 * @e: decoded entry
 * @sc: first subcluster
 *
 * Lets the mapping layer handle a run of like subclusters as one extent.
 *
 * Return: number of consecutive subclusters, starting at @sc, that have
 * the type of @sc (at least 1); 1 without extended L2 and for compressed
 * clusters, which count as one whole cluster.
 */
unsigned int qcow2_l2e_subcluster_run(const struct qcow2_header *h,
				      const struct qcow2_l2e *e,
				      unsigned int sc)
{
	enum qcow2_subcluster_type t;
	unsigned int i;

	if (!h->extended_l2 || e->type == QCOW2_CLUSTER_COMPRESSED)
		return 1;
	t = qcow2_l2e_subcluster_type(h, e, sc);
	for (i = sc + 1; i < QCOW2_SUBCLUSTERS; i++)
		if (qcow2_l2e_subcluster_type(h, e, i) != t)
			break;
	return i - sc;
}

/**
 * qcow2_l2_get() - read entry @idx of an L2 table (or slice) buffer
 * @h: parsed header (selects standard or extended entries)
 * @table: the big-endian table as read from disk
 * @idx: entry index within @table
 * @word: first 64 bits, CPU order
 * @bitmap: subcluster bitmap with extended L2, else 0
 */
void qcow2_l2_get(const struct qcow2_header *h, const void *table,
		  unsigned int idx, u64 *word, u64 *bitmap)
{
	const __be64 *t = table;

	if (h->extended_l2) {
		*word = be64_to_cpu(t[2 * idx]);
		*bitmap = be64_to_cpu(t[2 * idx + 1]);
	} else {
		*word = be64_to_cpu(t[idx]);
		*bitmap = 0;
	}
}

/**
 * qcow2_l2_set() - write entry @idx of an L2 table (or slice) buffer
 * @h: parsed header
 * @table: the big-endian table buffer
 * @idx: entry index within @table
 * @word: first 64 bits, CPU order
 * @bitmap: subcluster bitmap (ignored without extended L2)
 */
void qcow2_l2_set(const struct qcow2_header *h, void *table,
		  unsigned int idx, u64 word, u64 bitmap)
{
	__be64 *t = table;

	if (h->extended_l2) {
		t[2 * idx] = cpu_to_be64(word);
		t[2 * idx + 1] = cpu_to_be64(bitmap);
	} else {
		t[idx] = cpu_to_be64(word);
	}
}

/* ------------------------------------------------------------------------
 * refcounts
 */

/**
 * qcow2_reftable_entry_decode() - decode one refcount table entry
 * @h: parsed header
 * @raw: the entry, CPU order
 * @file_size: image file size; the block must start inside it
 * @block_offset: refcount block offset, 0 when not allocated
 *
 * Return: 0, or -EINVAL for reserved bits, misalignment, an offset in the
 * header cluster or beyond the end of the file.
 */
int qcow2_reftable_entry_decode(const struct qcow2_header *h, u64 raw,
				u64 file_size, u64 *block_offset)
{
	return qcow2_table_ptr_decode(h, raw, QCOW2_REFT_OFFSET_MASK,
				      QCOW2_REFT_RESERVED_MASK, file_size,
				      block_offset);
}

/**
 * qcow2_reftable_entry_inspect() - list every problem of a refcount table entry
 * @h: parsed header
 * @raw: the entry, CPU order
 * @file_size: image file size
 * @block_offset: the refcount block offset bits, even when they are wrong
 *
 * Return: a mask of QCOW2_BAD_RESERVED, QCOW2_BAD_UNALIGNED,
 * QCOW2_BAD_IN_HEADER and QCOW2_BAD_PAST_EOF; 0 for a valid entry.
 */
u32 qcow2_reftable_entry_inspect(const struct qcow2_header *h, u64 raw,
				 u64 file_size, u64 *block_offset)
{
	return qcow2_table_ptr_inspect(h, raw, QCOW2_REFT_OFFSET_MASK,
				       QCOW2_REFT_RESERVED_MASK, file_size,
				       block_offset);
}

/**
 * qcow2_refcount_max() - largest refcount an entry of this width holds
 * @refcount_order: log2 of the entry width in bits (0..6)
 *
 * Return: (1 << (1 << refcount_order)) - 1.
 */
u64 qcow2_refcount_max(u32 refcount_order)
{
	return refcount_order >= 6 ? U64_MAX :
		(1ULL << (1U << refcount_order)) - 1;
}

/**
 * qcow2_refcount_get() - read entry @index of a refcount block
 * @block: the refcount block as stored on disk
 * @refcount_order: log2 entry width in bits (0..6)
 * @index: entry index; the caller keeps it below the block's entry count
 *
 * Sub-byte entries are packed from the least significant bit of each byte;
 * 16-, 32- and 64-bit entries are big endian.
 *
 * Return: the refcount.
 */
u64 qcow2_refcount_get(const void *block, u32 refcount_order, u64 index)
{
	const u8 *b = block;
	u32 shift;

	switch (refcount_order) {
	case 0:
	case 1:
	case 2:
		shift = (index & ((8U >> refcount_order) - 1)) << refcount_order;
		return (b[index >> (3 - refcount_order)] >> shift) &
			qcow2_refcount_max(refcount_order);
	case 3:
		return b[index];
	case 4:
		return be16_to_cpu(((const __be16 *)block)[index]);
	case 5:
		return be32_to_cpu(((const __be32 *)block)[index]);
	default:
		return be64_to_cpu(((const __be64 *)block)[index]);
	}
}

/**
 * qcow2_refcount_set() - write entry @index of a refcount block
 * @block: the refcount block buffer
 * @refcount_order: log2 entry width in bits (0..6)
 * @index: entry index
 * @value: new refcount
 *
 * Return: 0, or -ERANGE when @value does not fit the entry width (the
 * block is left unchanged).
 */
int qcow2_refcount_set(void *block, u32 refcount_order, u64 index, u64 value)
{
	u8 *b = block;
	u32 shift;
	u8 mask;

	if (value > qcow2_refcount_max(refcount_order))
		return -ERANGE;
	switch (refcount_order) {
	case 0:
	case 1:
	case 2:
		shift = (index & ((8U >> refcount_order) - 1)) << refcount_order;
		mask = qcow2_refcount_max(refcount_order) << shift;
		b += index >> (3 - refcount_order);
		*b = (*b & ~mask) | (u8)(value << shift);
		break;
	case 3:
		b[index] = value;
		break;
	case 4:
		((__be16 *)block)[index] = cpu_to_be16(value);
		break;
	case 5:
		((__be32 *)block)[index] = cpu_to_be32(value);
		break;
	default:
		((__be64 *)block)[index] = cpu_to_be64(value);
		break;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * metadata overlap
 */

/**
 * qcow2_ranges_overlap() - whether two byte ranges intersect
 * @a_start: start of the first range
 * @a_len: length of the first range (0 never overlaps)
 * @b_start: start of the second range
 * @b_len: length of the second range
 *
 * Return: true when they share at least one byte; safe against overflow.
 */
bool qcow2_ranges_overlap(u64 a_start, u64 a_len, u64 b_start, u64 b_len)
{
	if (!a_len || !b_len)
		return false;
	if (a_start >= b_start)
		return a_start - b_start < b_len;
	return b_start - a_start < a_len;
}

/**
 * qcow2_regions_check() - refuse overlapping metadata regions
 * @r: regions
 * @n: number of regions
 * @diag: optional failure description naming both regions
 *
 * Return: 0, or -EINVAL when two regions overlap.
 */
int qcow2_regions_check(const struct qcow2_region *r, unsigned int n,
			struct qcow2_diag *diag)
{
	unsigned int i, j;

	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (qcow2_ranges_overlap(r[i].start, r[i].len,
						 r[j].start, r[j].len))
				return qcow2_diag_set(diag, r[j].what,
						      "%s at 0x%llx overlaps %s at 0x%llx",
						      r[j].what, r[j].start,
						      r[i].what, r[i].start);
	return 0;
}

static unsigned int qcow2_region_add(struct qcow2_region *r, unsigned int n,
				     unsigned int max, u64 start, u64 len,
				     u64 cluster_size, const char *what)
{
	if (!len || n >= max)
		return n;
	r[n].start = start;
	/* Metadata is allocated in whole clusters; saturate on overflow. */
	r[n].len = len > U64_MAX - (cluster_size - 1) ? U64_MAX - start :
		round_up(len, cluster_size);
	r[n].what = what;
	return n + 1;
}

/**
 * qcow2_image_regions() - metadata regions named by the first cluster
 * @img: parsed image
 * @r: output array
 * @max: capacity of @r (8 is enough)
 *
 * Regions are rounded up to whole clusters: the header cluster, the active
 * L1 table, the refcount table, the snapshot table (its minimum size, 40
 * bytes an entry, until the table is parsed), the bitmap directory and the
 * encryption header.
 *
 * Return: number of regions stored.
 */
unsigned int qcow2_image_regions(const struct qcow2_image *img,
				 struct qcow2_region *r, unsigned int max)
{
	const struct qcow2_header *h = &img->hdr;
	u64 cs = h->cluster_size;
	unsigned int n = 0;

	n = qcow2_region_add(r, n, max, 0, cs, cs, "header");
	n = qcow2_region_add(r, n, max, h->l1_table_offset,
			     (u64)h->l1_size * sizeof(u64), cs, "L1 table");
	n = qcow2_region_add(r, n, max, h->refcount_table_offset,
			     (u64)h->refcount_table_clusters << h->cluster_bits,
			     cs, "refcount table");
	if (h->nb_snapshots)
		n = qcow2_region_add(r, n, max, h->snapshots_offset,
				     (u64)h->nb_snapshots *
				     sizeof(struct qcow2_snapshot_disk),
				     cs, "snapshot table");
	if (img->ext.has_bitmaps &&
	    (h->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		n = qcow2_region_add(r, n, max, img->ext.bitmap_directory_offset,
				     img->ext.bitmap_directory_size, cs,
				     "bitmap directory");
	if (img->ext.has_crypto)
		n = qcow2_region_add(r, n, max, img->ext.crypto_offset,
				     img->ext.crypto_length, cs,
				     "encryption header");
	return n;
}

/**
 * qcow2_region_find() - first region that a byte range touches
 * @r: regions
 * @n: number of regions
 * @start: start of the range
 * @len: length of the range
 *
 * Used to refuse a data or table pointer that lands on metadata.
 *
 * Return: the overlapping region, or NULL.
 */
const struct qcow2_region *
qcow2_region_find(const struct qcow2_region *r, unsigned int n,
		  u64 start, u64 len)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (qcow2_ranges_overlap(r[i].start, r[i].len, start, len))
			return &r[i];
	return NULL;
}

/* ------------------------------------------------------------------------
 * snapshot table
 */

/**
 * qcow2_snapshot_parse() - decode one snapshot table entry
 * @h: parsed header
 * @buf: the entry's first byte
 * @len: bytes available from @buf
 * @file_size: image file size, for the snapshot's L1 table bounds
 * @sn: decoded entry; @sn->id, @sn->name and @sn->extra_data point into @buf
 * @consumed: size of the entry including its padding (the padding of an
 *	      entry that ends the buffer may be absent)
 * @diag: optional failure description
 *
 * Return: 0 or -EINVAL.
 */
int qcow2_snapshot_parse(const struct qcow2_header *h, const void *buf,
			 size_t len, u64 file_size, struct qcow2_snapshot *sn,
			 size_t *consumed, struct qcow2_diag *diag)
{
	const struct qcow2_snapshot_disk *d = buf;
	const u8 *p = buf;
	u32 id_len, name_len;
	size_t size;
	int err;

	memset(sn, 0, sizeof(*sn));
	if (len < sizeof(*d))
		return qcow2_diag_set(diag, "snapshot table",
				      "entry truncated (%zu bytes left)", len);
	sn->l1_table_offset = be64_to_cpu(d->l1_table_offset);
	sn->l1_size = be32_to_cpu(d->l1_size);
	id_len = be16_to_cpu(d->id_str_size);
	name_len = be16_to_cpu(d->name_size);
	sn->date_sec = be32_to_cpu(d->date_sec);
	sn->date_nsec = be32_to_cpu(d->date_nsec);
	sn->vm_clock_nsec = be64_to_cpu(d->vm_clock_nsec);
	sn->vm_state_size = be32_to_cpu(d->vm_state_size);
	sn->extra_data_size = be32_to_cpu(d->extra_data_size);
	sn->icount = -1;

	if (sn->extra_data_size > QCOW2_MAX_SNAPSHOT_EXTRA)
		return qcow2_diag_set(diag, "snapshot extra_data_size",
				      "extra data of %u bytes exceeds %u",
				      sn->extra_data_size, QCOW2_MAX_SNAPSHOT_EXTRA);
	if (h->version >= 3 && sn->extra_data_size < QCOW2_SNAPSHOT_EXTRA_V3_MIN)
		return qcow2_diag_set(diag, "snapshot extra_data_size",
				      "version 3 snapshot has %u bytes of extra data, needs %u",
				      sn->extra_data_size, QCOW2_SNAPSHOT_EXTRA_V3_MIN);
	if (!id_len || id_len > QCOW2_MAX_SNAPSHOT_ID_LEN)
		return qcow2_diag_set(diag, "snapshot id_str_size",
				      "id length %u out of range 1..%u", id_len,
				      QCOW2_MAX_SNAPSHOT_ID_LEN);
	if (name_len > QCOW2_MAX_SNAPSHOT_NAME_LEN)
		return qcow2_diag_set(diag, "snapshot name_size",
				      "name length %u exceeds %u", name_len,
				      QCOW2_MAX_SNAPSHOT_NAME_LEN);

	/*
	 * Entries are padded to 8 bytes, but writers (QEMU) do not pad the
	 * last one: only its unpadded size has to be there.
	 */
	size = sizeof(*d) + sn->extra_data_size + id_len + name_len;
	if (size > len)
		return qcow2_diag_set(diag, "snapshot table",
				      "entry of %zu bytes runs past the table (%zu bytes left)",
				      size, len);

	sn->extra_data = p + sizeof(*d);
	if (sn->extra_data_size >= 8)
		sn->vm_state_size = get_unaligned_be64(sn->extra_data);
	if (sn->extra_data_size >= 16) {
		sn->disk_size = get_unaligned_be64(sn->extra_data + 8);
		sn->has_disk_size = true;
	}
	if (sn->extra_data_size >= 24)
		sn->icount = (s64)get_unaligned_be64(sn->extra_data + 16);

	sn->id = (const char *)sn->extra_data + sn->extra_data_size;
	sn->id_len = id_len;
	sn->name = sn->id + id_len;
	sn->name_len = name_len;
	if (memchr(sn->id, 0, id_len) || memchr(sn->name, 0, name_len))
		return qcow2_diag_set(diag, "snapshot name",
				      "snapshot id or name contains a NUL byte");

	if (sn->has_disk_size && sn->disk_size > QCOW2_MAX_VIRTUAL_SIZE)
		return qcow2_diag_set(diag, "snapshot disk_size",
				      "snapshot disk size %llu exceeds the limit",
				      sn->disk_size);
	if (sn->l1_size > QCOW2_MAX_L1_BYTES / sizeof(u64))
		return qcow2_diag_set(diag, "snapshot l1_size",
				      "snapshot l1_size %u exceeds the limit",
				      sn->l1_size);
	if (sn->l1_size) {
		err = qcow2_check_table(diag, "snapshot l1_table_offset", h,
					sn->l1_table_offset,
					(u64)sn->l1_size * sizeof(u64), file_size);
		if (err)
			return err;
	}
	*consumed = min_t(size_t, round_up(size, 8), len);
	return 0;
}

/**
 * qcow2_snapshot_table_check() - validate a whole snapshot table
 * @h: parsed header (nb_snapshots entries are expected)
 * @buf: the table as read from snapshots_offset
 * @len: bytes in @buf (read up to QCOW2_MAX_SNAPSHOT_TABLE_BYTES)
 * @file_size: image file size
 * @table_len: bytes from the table start to the end of the last entry,
 *	       without that entry's padding (writers may omit it)
 * @diag: optional failure description
 *
 * Return: 0 or -EINVAL.
 */
int qcow2_snapshot_table_check(const struct qcow2_header *h, const void *buf,
			       size_t len, u64 file_size, size_t *table_len,
			       struct qcow2_diag *diag)
{
	struct qcow2_snapshot sn;
	size_t off = 0, end = 0, used;
	u32 i;
	int err;

	*table_len = 0;
	if (len > QCOW2_MAX_SNAPSHOT_TABLE_BYTES)
		len = QCOW2_MAX_SNAPSHOT_TABLE_BYTES;
	for (i = 0; i < h->nb_snapshots; i++) {
		err = qcow2_snapshot_parse(h, (const u8 *)buf + off, len - off,
					   file_size, &sn, &used, diag);
		if (err) {
			/* Prefix which entry failed, keeping the field name. */
			if (diag) {
				char pre[24];
				size_t plen, mlen;

				plen = snprintf(pre, sizeof(pre), "snapshot %u: ", i);
				mlen = strnlen(diag->msg, sizeof(diag->msg) - 1 - plen);
				memmove(diag->msg + plen, diag->msg, mlen);
				memcpy(diag->msg, pre, plen);
				diag->msg[plen + mlen] = '\0';
			}
			return err;
		}
		/* The last entry's padding need not exist: end unpadded. */
		end = off + sizeof(struct qcow2_snapshot_disk) +
			sn.extra_data_size + sn.id_len + sn.name_len;
		off += used;
	}
	if (!qcow2_in_file(h->snapshots_offset, end, file_size))
		return qcow2_diag_set(diag, "snapshots_offset",
				      "snapshot table runs past the end of the file");
	*table_len = end;
	return 0;
}

static u32 qcow2_snapshot_extra_out(const struct qcow2_snapshot *sn)
{
	return max_t(u32, sn->extra_data_size,
		     sizeof(struct qcow2_snapshot_extra_disk));
}

/**
 * qcow2_snapshot_entry_size() - bytes qcow2_snapshot_serialize() will write
 * @h: parsed header
 * @sn: entry
 *
 * Return: entry size including padding to 8 bytes.
 */
size_t qcow2_snapshot_entry_size(const struct qcow2_header *h,
				 const struct qcow2_snapshot *sn)
{
	return round_up(sizeof(struct qcow2_snapshot_disk) +
			qcow2_snapshot_extra_out(sn) + sn->id_len + sn->name_len,
			8);
}

/**
 * qcow2_snapshot_serialize() - encode one snapshot table entry
 * @h: parsed header
 * @sn: entry to write; extra data is always written with at least the 24
 *	bytes defined today (vm state size, disk size, icount), and any
 *	longer, unknown extra data from @sn->extra_data is preserved
 * @buf: output
 * @len: bytes available in @buf
 * @written: bytes written, padding included
 *
 * Return: 0, -EINVAL for out-of-bounds id or name lengths, or -ENOSPC when
 * @buf is too small.
 */
int qcow2_snapshot_serialize(const struct qcow2_header *h,
			     const struct qcow2_snapshot *sn, void *buf,
			     size_t len, size_t *written)
{
	struct qcow2_snapshot_disk *d = buf;
	struct qcow2_snapshot_extra_disk ex;
	u32 extra = qcow2_snapshot_extra_out(sn);
	size_t size = qcow2_snapshot_entry_size(h, sn);
	u8 *p = buf;

	if (!sn->id_len || sn->id_len > QCOW2_MAX_SNAPSHOT_ID_LEN ||
	    sn->name_len > QCOW2_MAX_SNAPSHOT_NAME_LEN ||
	    extra > QCOW2_MAX_SNAPSHOT_EXTRA)
		return -EINVAL;
	if (size > len)
		return -ENOSPC;

	memset(buf, 0, size);
	d->l1_table_offset = cpu_to_be64(sn->l1_table_offset);
	d->l1_size = cpu_to_be32(sn->l1_size);
	d->id_str_size = cpu_to_be16(sn->id_len);
	d->name_size = cpu_to_be16(sn->name_len);
	d->date_sec = cpu_to_be32(sn->date_sec);
	d->date_nsec = cpu_to_be32(sn->date_nsec);
	d->vm_clock_nsec = cpu_to_be64(sn->vm_clock_nsec);
	d->vm_state_size = cpu_to_be32(lower_32_bits(sn->vm_state_size));
	d->extra_data_size = cpu_to_be32(extra);
	p += sizeof(*d);

	ex.vm_state_size_large = cpu_to_be64(sn->vm_state_size);
	ex.disk_size = cpu_to_be64(sn->disk_size);
	ex.icount = cpu_to_be64((u64)sn->icount);
	memcpy(p, &ex, sizeof(ex));
	if (extra > sizeof(ex) && sn->extra_data)
		memcpy(p + sizeof(ex), sn->extra_data + sizeof(ex),
		       extra - sizeof(ex));
	p += extra;
	memcpy(p, sn->id, sn->id_len);
	p += sn->id_len;
	memcpy(p, sn->name, sn->name_len);
	*written = size;
	return 0;
}

/* ------------------------------------------------------------------------
 * bitmaps
 */

/**
 * qcow2_bitmap_dir_entry_parse() - decode one bitmap directory entry
 * @h: parsed header
 * @buf: the entry's first byte
 * @len: bytes available from @buf
 * @bm: decoded entry; @bm->name points into @buf
 * @consumed: size of the entry including its padding to 8 bytes (at most
 *	      @len)
 * @diag: optional failure description
 *
 * Checks what the specification requires of an entry: a non-empty,
 * cluster-aligned bitmap table of bounded size, a known type, granularity
 * 9..31, a name of 1..1023 bytes, no unknown flags.  Where the table lies
 * in the file is for the caller to check.
 *
 * Return: 0 or -EINVAL.
 */
int qcow2_bitmap_dir_entry_parse(const struct qcow2_header *h, const void *buf,
				 size_t len, struct qcow2_bitmap *bm,
				 size_t *consumed, struct qcow2_diag *diag)
{
	const struct qcow2_bitmap_dir_entry_disk *d = buf;
	size_t size;

	memset(bm, 0, sizeof(*bm));
	*consumed = 0;
	if (len < sizeof(*d))
		return qcow2_diag_set(diag, "bitmap directory",
				      "entry truncated (%zu bytes left)", len);
	bm->table_offset = be64_to_cpu(d->bitmap_table_offset);
	bm->table_size = be32_to_cpu(d->bitmap_table_size);
	bm->flags = be32_to_cpu(d->flags);
	bm->type = d->type;
	bm->granularity_bits = d->granularity_bits;
	bm->name_len = be16_to_cpu(d->name_size);
	bm->extra_data_size = be32_to_cpu(d->extra_data_size);

	size = sizeof(*d) + (size_t)bm->extra_data_size + bm->name_len;
	if (bm->extra_data_size > len || size > len)
		return qcow2_diag_set(diag, "bitmap directory",
				      "entry runs past the directory (%zu bytes left)",
				      len);
	bm->name = (const char *)buf + sizeof(*d) + bm->extra_data_size;
	*consumed = min_t(size_t, round_up(size, 8), len);

	if (!bm->name_len || bm->name_len > QCOW2_BITMAP_MAX_NAME)
		return qcow2_diag_set(diag, "bitmap name_size",
				      "name length %u out of range 1..%u",
				      bm->name_len, QCOW2_BITMAP_MAX_NAME);
	if (bm->type != QCOW2_BITMAP_TYPE_DIRTY)
		return qcow2_diag_set(diag, "bitmap type",
				      "unknown bitmap type %u", bm->type);
	if (bm->granularity_bits < 9 || bm->granularity_bits > 31)
		return qcow2_diag_set(diag, "bitmap granularity_bits",
				      "granularity_bits %u out of range 9..31",
				      bm->granularity_bits);
	if (bm->flags & ~QCOW2_BITMAP_FLAGS_KNOWN)
		return qcow2_diag_set(diag, "bitmap flags",
				      "unknown flags 0x%x", bm->flags);
	if (!bm->table_size || bm->table_size > QCOW2_BITMAP_MAX_TABLE_SIZE)
		return qcow2_diag_set(diag, "bitmap_table_size",
				      "bitmap table of %u entries out of range 1..%u",
				      bm->table_size, QCOW2_BITMAP_MAX_TABLE_SIZE);
	if (!bm->table_offset || bm->table_offset & (h->cluster_size - 1))
		return qcow2_diag_set(diag, "bitmap_table_offset",
				      "bitmap table offset 0x%llx is zero or not cluster aligned",
				      bm->table_offset);
	return 0;
}

/**
 * qcow2_bitmap_table_entry_inspect() - list every problem of a bitmap table entry
 * @h: parsed header
 * @raw: the entry, CPU order
 * @file_size: image file size
 * @offset: the data cluster offset bits (0: the cluster reads as all zeros,
 *	    or all ones with QCOW2_BME_ALL_ONES)
 *
 * Return: a mask of QCOW2_BAD_RESERVED, QCOW2_BAD_ALL_ONES (the all-ones
 * flag beside an offset), QCOW2_BAD_UNALIGNED, QCOW2_BAD_IN_HEADER and
 * QCOW2_BAD_PAST_EOF; 0 for a valid entry.
 */
u32 qcow2_bitmap_table_entry_inspect(const struct qcow2_header *h, u64 raw,
				     u64 file_size, u64 *offset)
{
	u32 bad = qcow2_table_ptr_inspect(h, raw, QCOW2_BME_OFFSET_MASK,
					  QCOW2_BME_RESERVED_MASK, file_size,
					  offset);

	if (*offset && (raw & QCOW2_BME_ALL_ONES))
		bad |= QCOW2_BAD_ALL_ONES;
	return bad;
}
