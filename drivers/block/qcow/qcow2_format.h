/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qcow2 on-disk format core: pure functions over byte buffers.
 *
 * This header and qcow2_format.c are compiled unchanged into three places:
 * the kernel module, the KUnit suites (UML) and the userspace tool qcowctl
 * (through the small shim in userspace/shim/).  Nothing here does I/O,
 * allocates memory or takes locks; callers hand in buffers they read from
 * the image and get back decoded, validated values.
 *
 * On-disk layout (all integers big endian, see QEMU docs/interop/qcow2.rst):
 *
 *   cluster 0   +------------------------------+
 *               | header (72 bytes v2,         |
 *               |   header_length >= 104 v3)   |
 *               | header extensions ... end(0) |
 *               | backing file name (no NUL)   |
 *               +------------------------------+
 *   anywhere,   | L1 table (contiguous)        | -> L2 tables (one cluster)
 *   cluster-    | refcount table (contiguous)  | -> refcount blocks (one cluster)
 *   aligned     | snapshot table (contiguous)  | -> snapshot L1 tables
 *               | data clusters                |
 *               +------------------------------+
 *
 * The disk structures below are never converted in place: decoders read a
 * __be field and fill a separate CPU-order structure.
 */
#ifndef QCOW2_FORMAT_H
#define QCOW2_FORMAT_H

#include <linux/types.h>
#include <linux/bits.h>
#include <linux/build_bug.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <asm/byteorder.h>

#define QCOW2_MAGIC			0x514649fbU	/* "QFI\xfb" */

#define QCOW2_V2_HEADER_LEN		72U
#define QCOW2_V3_HEADER_MIN_LEN		104U
#define QCOW2_MIN_CLUSTER_BITS		9U
#define QCOW2_MAX_CLUSTER_BITS		21U
#define QCOW2_MIN_EXT_L2_CLUSTER_BITS	14U
#define QCOW2_MAX_REFCOUNT_ORDER	6U
#define QCOW2_MAX_BACKING_NAME		1023U
/* Implementation limits, the same ones QEMU enforces. */
#define QCOW2_MAX_L1_BYTES		(32U << 20)
#define QCOW2_MAX_REFTABLE_BYTES	(8U << 20)
#define QCOW2_MAX_SNAPSHOTS		65536U
#define QCOW2_MAX_SNAPSHOT_TABLE_BYTES	(64U << 20)
#define QCOW2_MAX_SNAPSHOT_EXTRA	1024U
#define QCOW2_MAX_SNAPSHOT_ID_LEN	127U
#define QCOW2_MAX_SNAPSHOT_NAME_LEN	1023U
/* Host offsets (L1/L2/reftable entries) are bits 9..55: below 64 PiB. */
#define QCOW2_MAX_HOST_OFFSET		BIT_ULL(56)
/* Largest virtual size we accept: 2^61 bytes, as QEMU (INT64_MAX / 4). */
#define QCOW2_MAX_VIRTUAL_SIZE		BIT_ULL(61)

/* Incompatible feature bits. */
#define QCOW2_INCOMPAT_DIRTY		BIT_ULL(0)
#define QCOW2_INCOMPAT_CORRUPT		BIT_ULL(1)
#define QCOW2_INCOMPAT_DATA_FILE	BIT_ULL(2)
#define QCOW2_INCOMPAT_COMPRESSION	BIT_ULL(3)
#define QCOW2_INCOMPAT_EXTL2		BIT_ULL(4)
#define QCOW2_INCOMPAT_KNOWN		GENMASK_ULL(4, 0)
/* Compatible feature bits. */
#define QCOW2_COMPAT_LAZY_REFCOUNTS	BIT_ULL(0)
#define QCOW2_COMPAT_KNOWN		BIT_ULL(0)
/* Autoclear feature bits. */
#define QCOW2_AUTOCLEAR_BITMAPS		BIT_ULL(0)
#define QCOW2_AUTOCLEAR_DATA_FILE_RAW	BIT_ULL(1)
#define QCOW2_AUTOCLEAR_KNOWN		GENMASK_ULL(1, 0)

enum qcow2_crypt_method {
	QCOW2_CRYPT_NONE = 0,
	QCOW2_CRYPT_AES = 1,
	QCOW2_CRYPT_LUKS = 2,
};

enum qcow2_compression_type {
	QCOW2_COMPRESSION_ZLIB = 0,	/* raw deflate, no zlib header */
	QCOW2_COMPRESSION_ZSTD = 1,
};

/* Header extension types. */
#define QCOW2_EXT_END			0x00000000U
#define QCOW2_EXT_BACKING_FORMAT	0xe2792acaU
#define QCOW2_EXT_FEATURE_TABLE		0x6803f857U
#define QCOW2_EXT_BITMAPS		0x23852875U
#define QCOW2_EXT_CRYPTO		0x0537be77U
#define QCOW2_EXT_DATA_FILE		0x44415441U

/**
 * struct qcow2_header_disk - the fixed qcow2 header as stored on disk
 *
 * Fields through @snapshots_offset form the 72-byte version 2 header; the
 * rest exist for version 3 when header_length covers them.
 */
struct qcow2_header_disk {
	__be32 magic;
	__be32 version;
	__be64 backing_file_offset;
	__be32 backing_file_size;
	__be32 cluster_bits;
	__be64 size;
	__be32 crypt_method;
	__be32 l1_size;
	__be64 l1_table_offset;
	__be64 refcount_table_offset;
	__be32 refcount_table_clusters;
	__be32 nb_snapshots;
	__be64 snapshots_offset;
	/* version 3 */
	__be64 incompatible_features;
	__be64 compatible_features;
	__be64 autoclear_features;
	__be32 refcount_order;
	__be32 header_length;
	/* additional fields */
	__u8 compression_type;
	__u8 padding[7];
} __packed;

static_assert(offsetof(struct qcow2_header_disk, backing_file_offset) == 8);
static_assert(offsetof(struct qcow2_header_disk, cluster_bits) == 20);
static_assert(offsetof(struct qcow2_header_disk, l1_size) == 36);
static_assert(offsetof(struct qcow2_header_disk, refcount_table_clusters) == 56);
static_assert(offsetof(struct qcow2_header_disk, snapshots_offset) == 64);
static_assert(offsetof(struct qcow2_header_disk, incompatible_features) == 72);
static_assert(offsetof(struct qcow2_header_disk, refcount_order) == 96);
static_assert(offsetof(struct qcow2_header_disk, header_length) == 100);
static_assert(offsetof(struct qcow2_header_disk, compression_type) == 104);
static_assert(sizeof(struct qcow2_header_disk) == 112);

/**
 * struct qcow2_ext_hdr_disk - header extension framing on disk
 * @type: extension type (QCOW2_EXT_*)
 * @len: length of the data that follows, padding to 8 bytes excluded
 */
struct qcow2_ext_hdr_disk {
	__be32 type;
	__be32 len;
} __packed;

static_assert(sizeof(struct qcow2_ext_hdr_disk) == 8);

/**
 * struct qcow2_feature_name_disk - one feature name table entry
 * @type: 0 incompatible, 1 compatible, 2 autoclear
 * @bit: bit number 0..63
 * @name: zero padded, not necessarily NUL terminated
 */
struct qcow2_feature_name_disk {
	__u8 type;
	__u8 bit;
	char name[46];
} __packed;

static_assert(sizeof(struct qcow2_feature_name_disk) == 48);

/**
 * struct qcow2_bitmaps_ext_disk - bitmaps header extension
 * @nb_bitmaps: number of bitmaps, >= 1
 * @reserved: must be zero
 * @bitmap_directory_size: bytes in the bitmap directory
 * @bitmap_directory_offset: cluster-aligned file offset of the directory
 */
struct qcow2_bitmaps_ext_disk {
	__be32 nb_bitmaps;
	__be32 reserved;
	__be64 bitmap_directory_size;
	__be64 bitmap_directory_offset;
} __packed;

static_assert(sizeof(struct qcow2_bitmaps_ext_disk) == 24);

/**
 * struct qcow2_crypto_ext_disk - full disk encryption header pointer
 * @offset: cluster-aligned file offset of the encryption header
 * @length: length of the encryption header in bytes
 */
struct qcow2_crypto_ext_disk {
	__be64 offset;
	__be64 length;
} __packed;

static_assert(sizeof(struct qcow2_crypto_ext_disk) == 16);

/**
 * struct qcow2_snapshot_disk - fixed part of a snapshot table entry
 *
 * Followed by @extra_data_size bytes of extra data, the id string, the
 * name and padding to a multiple of 8 bytes.
 */
struct qcow2_snapshot_disk {
	__be64 l1_table_offset;
	__be32 l1_size;
	__be16 id_str_size;
	__be16 name_size;
	__be32 date_sec;
	__be32 date_nsec;
	__be64 vm_clock_nsec;
	__be32 vm_state_size;
	__be32 extra_data_size;
} __packed;

static_assert(offsetof(struct qcow2_snapshot_disk, id_str_size) == 12);
static_assert(offsetof(struct qcow2_snapshot_disk, date_sec) == 16);
static_assert(offsetof(struct qcow2_snapshot_disk, vm_clock_nsec) == 24);
static_assert(offsetof(struct qcow2_snapshot_disk, extra_data_size) == 36);
static_assert(sizeof(struct qcow2_snapshot_disk) == 40);

/**
 * struct qcow2_snapshot_extra_disk - snapshot extra data known today
 * @vm_state_size_large: 64-bit VM state size
 * @disk_size: virtual disk size when the snapshot was taken
 * @icount: record/replay instruction count, -1 when disabled
 */
struct qcow2_snapshot_extra_disk {
	__be64 vm_state_size_large;
	__be64 disk_size;
	__be64 icount;
} __packed;

static_assert(sizeof(struct qcow2_snapshot_extra_disk) == 24);

/* Minimum extra data a version 3 snapshot entry must carry (to disk_size). */
#define QCOW2_SNAPSHOT_EXTRA_V3_MIN	16U

/* L1 / L2 / refcount table entry bits. */
#define QCOW2_OFLAG_COPIED		BIT_ULL(63)
#define QCOW2_OFLAG_COMPRESSED		BIT_ULL(62)
#define QCOW2_OFLAG_ZERO		BIT_ULL(0)
#define QCOW2_L1E_OFFSET_MASK		GENMASK_ULL(55, 9)
#define QCOW2_L1E_RESERVED_MASK		(GENMASK_ULL(62, 56) | GENMASK_ULL(8, 0))
#define QCOW2_L2E_OFFSET_MASK		GENMASK_ULL(55, 9)
#define QCOW2_L2E_STD_RESERVED_MASK	(GENMASK_ULL(61, 56) | GENMASK_ULL(8, 1))
#define QCOW2_REFT_OFFSET_MASK		GENMASK_ULL(63, 9)
#define QCOW2_REFT_RESERVED_MASK	GENMASK_ULL(8, 0)
#define QCOW2_SUBCLUSTERS		32U
#define QCOW2_COMPRESSED_SECTOR_SIZE	512U

/*
 * What the qcow2_*_inspect() functions found wrong with one table entry, as
 * a bit mask.  The decoders (qcow2_l1e_decode() & co.) refuse such entries
 * outright; a checker needs to know every problem of an entry and still
 * see what it points to, so the inspectors decode leniently and list them.
 */
#define QCOW2_BAD_RESERVED		BIT(0)	/* reserved bits set */
#define QCOW2_BAD_UNALIGNED		BIT(1)	/* offset not cluster aligned */
#define QCOW2_BAD_IN_HEADER		BIT(2)	/* points into the header cluster */
#define QCOW2_BAD_PAST_EOF		BIT(3)	/* starts at or past the end of the file */
#define QCOW2_BAD_COPIED		BIT(4)	/* COPIED on a compressed or unallocated entry */
#define QCOW2_BAD_ZERO_FLAG		BIT(5)	/* zero flag in a v2 or extended L2 image */
#define QCOW2_BAD_BITMAP		BIT(6)	/* subcluster bits the cluster type forbids */
#define QCOW2_BAD_ALLOC_ZERO		BIT(7)	/* a subcluster both allocated and zero */
#define QCOW2_BAD_DATA_FILE		BIT(8)	/* compressed with an external data file */
#define QCOW2_BAD_ALL_ONES		BIT(9)	/* bitmap "all ones" flag with an offset */

/**
 * struct qcow2_diag - what a validator found wrong
 * @field: name of the offending on-disk field (static string), or NULL
 * @msg: one human-readable line, NUL terminated
 *
 * Every decoder that can refuse input takes an optional diag so that the
 * module can log, and qcowctl print, one line naming the field.
 */
struct qcow2_diag {
	const char *field;
	char msg[160];
};

/**
 * struct qcow2_header - decoded and validated fixed header (CPU order)
 *
 * The raw fields mirror struct qcow2_header_disk; fields absent in the
 * image (v2, or beyond header_length) hold the defaults the spec gives.
 * The derived fields below them are computed by qcow2_header_parse().
 */
struct qcow2_header {
	u32 version;
	u64 backing_file_offset;
	u32 backing_file_size;
	u32 cluster_bits;
	u64 size;
	u32 crypt_method;
	u32 l1_size;
	u64 l1_table_offset;
	u64 refcount_table_offset;
	u32 refcount_table_clusters;
	u32 nb_snapshots;
	u64 snapshots_offset;
	u64 incompatible_features;
	u64 compatible_features;
	u64 autoclear_features;
	u32 refcount_order;
	u32 header_length;
	u8 compression_type;

	/* derived */
	u64 cluster_size;
	u32 l2_entry_size;	/* 8, or 16 with extended L2 */
	u32 l2_bits;		/* log2 of entries per L2 table */
	u32 subcluster_bits;	/* log2 of subcluster size (== cluster_bits without ext L2) */
	u32 refblock_bits;	/* log2 of entries per refcount block */
	bool extended_l2;
};

/**
 * struct qcow2_feature_name - one decoded feature name table entry
 * @type: 0 incompatible, 1 compatible, 2 autoclear
 * @bit: bit number
 * @name: NUL-terminated copy of the name
 */
struct qcow2_feature_name {
	u8 type;
	u8 bit;
	char name[47];
};

#define QCOW2_MAX_FEATURE_NAMES		64U

/**
 * struct qcow2_extensions - decoded header extensions and backing file name
 *
 * Strings are NUL-terminated copies; lengths are the on-disk lengths.
 */
struct qcow2_extensions {
	bool has_backing_format;
	char backing_format[QCOW2_MAX_BACKING_NAME + 1];
	bool has_backing_file;
	char backing_file[QCOW2_MAX_BACKING_NAME + 1];
	bool has_data_file;
	char data_file[QCOW2_MAX_BACKING_NAME + 1];
	u32 nr_feature_names;
	struct qcow2_feature_name feature_names[QCOW2_MAX_FEATURE_NAMES];
	bool has_bitmaps;
	u32 nb_bitmaps;
	u64 bitmap_directory_size;
	u64 bitmap_directory_offset;
	bool has_crypto;
	u64 crypto_offset;
	u64 crypto_length;
	u32 nr_unknown;		/* unknown extensions skipped */
	u32 ext_end;		/* offset just past the end-of-extensions marker */
};

/**
 * struct qcow2_image - everything the first cluster tells about an image
 * @hdr: the fixed header
 * @ext: extensions and backing file name
 */
struct qcow2_image {
	struct qcow2_header hdr;
	struct qcow2_extensions ext;
};

/* Cluster types as the mapping layer sees them. */
enum qcow2_cluster_type {
	QCOW2_CLUSTER_UNALLOCATED,	/* read from backing or zeros */
	QCOW2_CLUSTER_ZERO_PLAIN,	/* reads zeros, no host cluster */
	QCOW2_CLUSTER_ZERO_ALLOC,	/* reads zeros, host cluster preallocated */
	QCOW2_CLUSTER_NORMAL,		/* data at host_offset */
	QCOW2_CLUSTER_COMPRESSED,	/* compressed descriptor */
};

/* Subcluster types (extended L2), plus the mapping for standard L2. */
enum qcow2_subcluster_type {
	QCOW2_SUBCLUSTER_UNALLOCATED_PLAIN,	/* no host cluster: backing/zeros */
	QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC,	/* host cluster exists, sc not allocated */
	QCOW2_SUBCLUSTER_ZERO_PLAIN,
	QCOW2_SUBCLUSTER_ZERO_ALLOC,
	QCOW2_SUBCLUSTER_NORMAL,
	QCOW2_SUBCLUSTER_COMPRESSED,
	QCOW2_SUBCLUSTER_INVALID,
};

/**
 * struct qcow2_l2e - one decoded L2 entry
 * @type: cluster type
 * @copied: COPIED flag (refcount known to be exactly one)
 * @host_offset: host cluster offset (normal / zero-alloc)
 * @comp_offset: host byte offset of compressed data
 * @comp_len: bytes spanned by the compressed data (whole sectors)
 * @alloc_bitmap: subcluster allocation bits (extended L2)
 * @zero_bitmap: subcluster reads-as-zero bits (extended L2)
 */
struct qcow2_l2e {
	enum qcow2_cluster_type type;
	bool copied;
	u64 host_offset;
	u64 comp_offset;
	u64 comp_len;
	u32 alloc_bitmap;
	u32 zero_bitmap;
};

/**
 * struct qcow2_snapshot - one decoded snapshot table entry
 *
 * @id and @name point into the buffer the entry was parsed from (or into
 * caller storage when building a new entry); they are not NUL terminated.
 */
struct qcow2_snapshot {
	u64 l1_table_offset;
	u32 l1_size;
	u32 date_sec;
	u32 date_nsec;
	u64 vm_clock_nsec;
	u64 vm_state_size;	/* the large field when present */
	u64 disk_size;		/* 0 when absent (v2 without extra data) */
	bool has_disk_size;
	s64 icount;		/* -1 when absent or disabled */
	u32 extra_data_size;
	const u8 *extra_data;	/* raw extra data, preserved on rewrite */
	const char *id;
	u16 id_len;
	const char *name;
	u16 name_len;
};

/**
 * struct qcow2_bitmap_dir_entry_disk - fixed part of a bitmap directory entry
 *
 * Followed by @extra_data_size bytes of extra data, the name (@name_size
 * bytes) and padding to a multiple of 8 bytes.
 */
struct qcow2_bitmap_dir_entry_disk {
	__be64 bitmap_table_offset;
	__be32 bitmap_table_size;
	__be32 flags;
	__u8 type;
	__u8 granularity_bits;
	__be16 name_size;
	__be32 extra_data_size;
} __packed;

static_assert(offsetof(struct qcow2_bitmap_dir_entry_disk, flags) == 12);
static_assert(offsetof(struct qcow2_bitmap_dir_entry_disk, name_size) == 18);
static_assert(sizeof(struct qcow2_bitmap_dir_entry_disk) == 24);

#define QCOW2_BITMAP_IN_USE		BIT(0)
#define QCOW2_BITMAP_AUTO		BIT(1)
#define QCOW2_BITMAP_EXTRA_COMPATIBLE	BIT(2)
#define QCOW2_BITMAP_FLAGS_KNOWN	GENMASK(2, 0)
#define QCOW2_BITMAP_TYPE_DIRTY		1U
#define QCOW2_BITMAP_MAX_TABLE_SIZE	0x8000000U	/* entries, as QEMU */
#define QCOW2_BITMAP_MAX_NAME		1023U
#define QCOW2_BME_OFFSET_MASK		GENMASK_ULL(55, 9)
#define QCOW2_BME_ALL_ONES		BIT_ULL(0)
#define QCOW2_BME_RESERVED_MASK		(GENMASK_ULL(63, 56) | GENMASK_ULL(8, 1))

/**
 * struct qcow2_bitmap - one decoded bitmap directory entry
 * @table_offset: file offset of the bitmap table
 * @table_size: entries in the bitmap table
 * @flags: QCOW2_BITMAP_* flags
 * @type: bitmap type (1: dirty tracking)
 * @granularity_bits: log2 of the bytes one bit covers
 * @extra_data_size: bytes of extra data before the name
 * @name: the name, pointing into the parsed buffer, not NUL terminated
 * @name_len: bytes in @name
 */
struct qcow2_bitmap {
	u64 table_offset;
	u32 table_size;
	u32 flags;
	u8 type;
	u8 granularity_bits;
	u32 extra_data_size;
	const char *name;
	u16 name_len;
};

/**
 * struct qcow2_region - a byte range of the image file used by metadata
 * @start: file offset
 * @len: length in bytes
 * @what: static name used in messages ("L1 table", "refcount table", ...)
 */
struct qcow2_region {
	u64 start;
	u64 len;
	const char *what;
};

/* --- header ------------------------------------------------------------ */

int qcow2_header_parse(const void *buf, size_t len, u64 file_size,
		       struct qcow2_header *h, struct qcow2_diag *diag);
void qcow2_header_encode(const struct qcow2_header *h,
			 struct qcow2_header_disk *out);
int qcow2_extensions_parse(const void *buf, size_t len,
			   const struct qcow2_header *h,
			   struct qcow2_extensions *ext,
			   struct qcow2_diag *diag);
int qcow2_image_parse(const void *buf, size_t len, u64 file_size,
		      struct qcow2_image *img, struct qcow2_diag *diag);
const char *qcow2_feature_name(const struct qcow2_extensions *ext,
			       unsigned int type, unsigned int bit);
const char *qcow2_known_feature_name(unsigned int type, unsigned int bit);
u64 qcow2_l1_entries_needed(u64 size, u32 cluster_bits, bool extended_l2);

/* --- geometry ---------------------------------------------------------- */

/**
 * qcow2_offset_in_cluster() - byte offset of @off inside its cluster
 * @h: parsed header
 * @off: guest or host byte offset
 */
static inline u64 qcow2_offset_in_cluster(const struct qcow2_header *h, u64 off)
{
	return off & (h->cluster_size - 1);
}

/**
 * qcow2_l2_index() - index of the L2 entry that maps guest offset @off
 * @h: parsed header
 * @off: guest byte offset
 */
static inline u32 qcow2_l2_index(const struct qcow2_header *h, u64 off)
{
	return (off >> h->cluster_bits) & ((1U << h->l2_bits) - 1);
}

/**
 * qcow2_l1_index() - index of the L1 entry that maps guest offset @off
 * @h: parsed header
 * @off: guest byte offset
 */
static inline u64 qcow2_l1_index(const struct qcow2_header *h, u64 off)
{
	return off >> (h->cluster_bits + h->l2_bits);
}

/**
 * qcow2_subcluster_index() - subcluster number of @off inside its cluster
 * @h: parsed header
 * @off: guest byte offset
 */
static inline u32 qcow2_subcluster_index(const struct qcow2_header *h, u64 off)
{
	return qcow2_offset_in_cluster(h, off) >> h->subcluster_bits;
}

/**
 * qcow2_guest_offset() - first guest byte that an L1 and L2 index map
 * @h: parsed header
 * @l1_index: L1 table index
 * @l2_index: index inside the L2 table
 */
static inline u64 qcow2_guest_offset(const struct qcow2_header *h,
				     u64 l1_index, u32 l2_index)
{
	return (l1_index << (h->cluster_bits + h->l2_bits)) |
		((u64)l2_index << h->cluster_bits);
}

/* --- L1 / L2 / refcount entries ---------------------------------------- */

int qcow2_l1e_decode(const struct qcow2_header *h, u64 raw, u64 file_size,
		     u64 *l2_offset, bool *copied);
u64 qcow2_l1e_encode(u64 l2_offset, bool copied);
int qcow2_l2e_decode(const struct qcow2_header *h, u64 word, u64 bitmap,
		     u64 file_size, struct qcow2_l2e *e);
u64 qcow2_l2e_encode_std(u64 host_offset, bool copied, bool zero);
u64 qcow2_l2e_encode_bitmap(u32 alloc_bitmap, u32 zero_bitmap);
enum qcow2_subcluster_type
qcow2_l2e_subcluster_type(const struct qcow2_header *h,
			  const struct qcow2_l2e *e, unsigned int sc);
unsigned int qcow2_l2e_subcluster_run(const struct qcow2_header *h,
				      const struct qcow2_l2e *e,
				      unsigned int sc);
void qcow2_l2_get(const struct qcow2_header *h, const void *table,
		  unsigned int idx, u64 *word, u64 *bitmap);
void qcow2_l2_set(const struct qcow2_header *h, void *table,
		  unsigned int idx, u64 word, u64 bitmap);
int qcow2_compressed_decode(u32 cluster_bits, u64 word, u64 *host_offset,
			    u64 *span);
int qcow2_compressed_encode(u32 cluster_bits, u64 host_offset, u64 comp_len,
			    u64 *word);
int qcow2_reftable_entry_decode(const struct qcow2_header *h, u64 raw,
				u64 file_size, u64 *block_offset);
u32 qcow2_l1e_inspect(const struct qcow2_header *h, u64 raw, u64 file_size,
		      u64 *l2_offset);
u32 qcow2_l2e_inspect(const struct qcow2_header *h, u64 word, u64 bitmap,
		      u64 file_size, struct qcow2_l2e *e);
u32 qcow2_reftable_entry_inspect(const struct qcow2_header *h, u64 raw,
				 u64 file_size, u64 *block_offset);
u64 qcow2_refcount_max(u32 refcount_order);
u64 qcow2_refcount_get(const void *block, u32 refcount_order, u64 index);
int qcow2_refcount_set(void *block, u32 refcount_order, u64 index, u64 value);

/* --- metadata overlap -------------------------------------------------- */

bool qcow2_ranges_overlap(u64 a_start, u64 a_len, u64 b_start, u64 b_len);
int qcow2_regions_check(const struct qcow2_region *r, unsigned int n,
			struct qcow2_diag *diag);
unsigned int qcow2_image_regions(const struct qcow2_image *img,
				 struct qcow2_region *r, unsigned int max);
const struct qcow2_region *
qcow2_region_find(const struct qcow2_region *r, unsigned int n,
		  u64 start, u64 len);

/* --- snapshot table ---------------------------------------------------- */

int qcow2_snapshot_parse(const struct qcow2_header *h, const void *buf,
			 size_t len, u64 file_size, struct qcow2_snapshot *sn,
			 size_t *consumed, struct qcow2_diag *diag);
int qcow2_snapshot_table_check(const struct qcow2_header *h, const void *buf,
			       size_t len, u64 file_size, size_t *table_len,
			       struct qcow2_diag *diag);
size_t qcow2_snapshot_entry_size(const struct qcow2_header *h,
				 const struct qcow2_snapshot *sn);
int qcow2_snapshot_serialize(const struct qcow2_header *h,
			     const struct qcow2_snapshot *sn, void *buf,
			     size_t len, size_t *written);

/* --- bitmaps ----------------------------------------------------------- */

int qcow2_bitmap_dir_entry_parse(const struct qcow2_header *h, const void *buf,
				 size_t len, struct qcow2_bitmap *bm,
				 size_t *consumed, struct qcow2_diag *diag);
u32 qcow2_bitmap_table_entry_inspect(const struct qcow2_header *h, u64 raw,
				     u64 file_size, u64 *offset);

/* --- diagnostics ------------------------------------------------------- */

__printf(3, 4)
int qcow2_diag_set(struct qcow2_diag *diag, const char *field,
		   const char *fmt, ...);

#endif /* QCOW2_FORMAT_H */
