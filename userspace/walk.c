// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl: the metadata walk that check and dump share (see walk.h).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "walk.h"

/* The expected-refcount table may take this much memory, as may owners. */
#define QC_WALK_MAX_TABLE_BYTES		BIT_ULL(30)
/* QEMU refuses I/O that ends past this (2^63 - 1 GiB): EIO, not zeros. */
#define QC_MAX_IO_END			(BIT_ULL(63) - BIT_ULL(30))

/**
 * qc_pread_zero() - read @len bytes at @off, zeros past the end of the file
 * @fd: file
 * @buf: destination
 * @len: bytes
 * @off: file offset
 *
 * Tables that run past the end of the file read as zeros there, as QEMU
 * reads them -- up to where QEMU stops reading at all.
 *
 * Return: 0, -EIO for a range ending past 2^63 - 1 GiB, or a negative
 * errno from the read.
 */
int qc_pread_zero(int fd, void *buf, size_t len, u64 off)
{
	char *p = buf;

	if (off > QC_MAX_IO_END || len > QC_MAX_IO_END - off)
		return -EIO;
	while (len) {
		ssize_t n;

		n = pread(fd, p, len, (off_t)off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0) {
			memset(p, 0, len);
			return 0;
		}
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static const char *const qc_own_names[QC_OWN_NR] = {
	[QC_OWN_FREE] = "free",
	[QC_OWN_HEADER] = "header",
	[QC_OWN_L1] = "L1 table",
	[QC_OWN_L2] = "L2 table",
	[QC_OWN_DATA] = "data",
	[QC_OWN_COMPRESSED] = "compressed data",
	[QC_OWN_REFTABLE] = "refcount table",
	[QC_OWN_REFBLOCK] = "refcount block",
	[QC_OWN_SNAPTABLE] = "snapshot table",
	[QC_OWN_BITMAP_DIR] = "bitmap directory",
	[QC_OWN_BITMAP_TABLE] = "bitmap table",
	[QC_OWN_BITMAP_DATA] = "bitmap data",
};

const char *qc_own_name(unsigned int kind)
{
	return kind < QC_OWN_NR ? qc_own_names[kind] : "?";
}

/* Printable ASCII of an on-disk string for a message; others become '?'. */
static void qc_safe_copy(char *dst, size_t dlen, const char *src, size_t slen)
{
	size_t i;

	if (!dlen)
		return;
	for (i = 0; i < slen && i + 1 < dlen; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? src[i] : '?';
	dst[i] = '\0';
}

/* "active" or "snapshot ID" for owner @snap (0 active, N snapshot N-1). */
static void qc_state_name(const struct qc_walk *w, u32 snap, char *buf,
			  size_t len)
{
	char id[64];

	if (!snap || snap > w->sns.nr) {
		snprintf(buf, len, "active");
		return;
	}
	qc_safe_copy(id, sizeof(id), w->sns.sn[snap - 1].id,
		     w->sns.sn[snap - 1].id_len);
	snprintf(buf, len, "snapshot %s", id);
}

/**
 * qc_owner_describe() - what a cluster holds, in words
 * @w: the walk
 * @o: the cluster's owner record
 * @buf: output
 * @len: size of @buf
 */
void qc_owner_describe(const struct qc_walk *w, const struct qc_owner *o,
		       char *buf, size_t len)
{
	u64 l2_span = 1ULL << (w->h->cluster_bits + w->h->l2_bits);
	char state[80];

	qc_state_name(w, o->snap, state, sizeof(state));
	switch (o->kind) {
	case QC_OWN_L1:
		snprintf(buf, len, "L1 table (%s)", state);
		break;
	case QC_OWN_L2:
		snprintf(buf, len, "L2 table (%s) of guest 0x%llx-0x%llx",
			 state, o->where, o->where + l2_span - 1);
		break;
	case QC_OWN_DATA:
		snprintf(buf, len, "data (%s) of guest 0x%llx", state, o->where);
		break;
	case QC_OWN_COMPRESSED:
		snprintf(buf, len, "compressed data (%s) of guest 0x%llx",
			 state, o->where);
		break;
	case QC_OWN_REFBLOCK:
		snprintf(buf, len, "refcount block %llu", o->where);
		break;
	case QC_OWN_BITMAP_TABLE:
		snprintf(buf, len, "table of bitmap %u", o->snap);
		break;
	case QC_OWN_BITMAP_DATA:
		snprintf(buf, len, "data of bitmap %u (entry %llu)", o->snap,
			 o->where);
		break;
	case QC_OWN_FREE:
		snprintf(buf, len, "referenced by nothing");
		break;
	default:
		snprintf(buf, len, "%s", qc_own_name(o->kind));
		break;
	}
}

static __printf(5, 6) void qc_walk_problem(struct qc_walk *w,
					   enum qc_severity sev,
					   const char *type, u64 offset,
					   const char *fmt, ...)
{
	struct qc_problem p = {
		.sev = sev,
		.type = type,
		.offset = offset,
		.count = 1,
	};
	va_list ap;

	switch (sev) {
	case QC_SEV_CORRUPTION:
		w->corruptions++;
		break;
	case QC_SEV_LEAK:
		w->leaks++;
		break;
	case QC_SEV_CHECK_ERROR:
		w->check_errors++;
		break;
	default:
		break;
	}
	if (!w->report)
		return;
	va_start(ap, fmt);
	vsnprintf(p.msg, sizeof(p.msg), fmt, ap);
	va_end(ap);
	w->report(w, &p);
}

/* --- the expected refcounts ---------------------------------------------- */

static u64 qc_table_bytes(u32 refcount_order, u64 clusters)
{
	return ((clusters << refcount_order) + 7) / 8;
}

u64 qc_walk_expected(const struct qc_walk *w, u64 cluster)
{
	if (cluster >= w->nb_clusters)
		return 0;
	return qcow2_refcount_get(w->expected, w->h->refcount_order, cluster);
}

/* Make the tables cover @clusters clusters (new ones zero). */
static int qc_walk_grow(struct qc_walk *w, u64 clusters)
{
	u32 order = w->h->refcount_order;
	u64 old_bytes, new_bytes;
	void *p;

	if (clusters > w->cap_clusters) {
		qc_walk_problem(w, QC_SEV_CHECK_ERROR, "too-far",
				(clusters - 1) << w->h->cluster_bits,
				"cluster %llu is referenced, too far past the end of the file to track",
				clusters - 1);
		return -EFBIG;
	}
	old_bytes = qc_table_bytes(order, w->nb_clusters);
	new_bytes = qc_table_bytes(order, clusters);
	p = realloc(w->expected, new_bytes ? new_bytes : 1);
	if (!p)
		return -ENOMEM;
	memset((u8 *)p + old_bytes, 0, new_bytes - old_bytes);
	w->expected = p;
	if (w->owners &&
	    clusters > QC_WALK_MAX_TABLE_BYTES / sizeof(struct qc_owner)) {
		/* too many to describe: go on counting without names */
		free(w->owners);
		w->owners = NULL;
	}
	if (w->owners) {
		struct qc_owner *o = realloc(w->owners, clusters * sizeof(*o));

		if (!o)
			return -ENOMEM;
		memset(o + w->nb_clusters, 0,
		       (clusters - w->nb_clusters) * sizeof(*o));
		w->owners = o;
	}
	w->nb_clusters = clusters;
	return 0;
}

/* Kinds that several references may legitimately share. */
static bool qc_own_shareable(unsigned int kind)
{
	return kind == QC_OWN_L2 || kind == QC_OWN_DATA ||
	       kind == QC_OWN_COMPRESSED;
}

static void qc_walk_own(struct qc_walk *w, u64 k, enum qc_own kind, u32 snap,
			u64 where)
{
	struct qc_owner *o = &w->owners[k];
	struct qc_owner mine = { .kind = kind, .snap = snap, .where = where };
	char a[160], b[160];

	if (o->kind == QC_OWN_FREE) {
		*o = mine;
		return;
	}
	o->shared = 1;
	if (o->overlap || (o->kind == kind && qc_own_shareable(kind)))
		return;
	o->overlap = 1;
	o->other = kind;
	qc_owner_describe(w, &mine, a, sizeof(a));
	qc_owner_describe(w, o, b, sizeof(b));
	qc_walk_problem(w, QC_SEV_OVERLAP, "overlap", k << w->h->cluster_bits,
			"Overlap: cluster %llu (0x%llx): %s overlaps %s", k,
			k << w->h->cluster_bits, a, b);
}

/*
 * One more reference to every cluster that [@offset, @offset + @len)
 * touches.  A negative return ends the walk (the check cannot complete).
 */
static int qc_walk_inc(struct qc_walk *w, u64 offset, u64 len,
		       enum qc_own kind, u32 snap, u64 where)
{
	u32 cb = w->h->cluster_bits, order = w->h->refcount_order;
	u64 max = qcow2_refcount_max(order), first, last, k, v;
	int ret;

	if (!len)
		return 0;
	/*
	 * The last cluster of a file may be partly written, so a reference
	 * may reach less than a cluster past the end; one that reaches
	 * further is an error of its own and is not counted (as QEMU).
	 */
	if (len > U64_MAX - offset ||
	    (offset + len > w->file_size &&
	     offset + len - w->file_size >= w->h->cluster_size)) {
		qc_walk_problem(w, QC_SEV_CORRUPTION, "past-eof", offset,
				"ERROR %s at 0x%llx (%llu bytes) lies a cluster or more past the end of the file",
				qc_own_name(kind), offset, len);
		return 0;
	}
	first = offset >> cb;
	last = (offset + len - 1) >> cb;
	for (k = first; k <= last; k++) {
		if (k >= w->nb_clusters) {
			ret = qc_walk_grow(w, k + 1);
			if (ret)
				return ret;
		}
		if (w->owners)
			qc_walk_own(w, k, kind, snap, where);
		v = qcow2_refcount_get(w->expected, order, k);
		if (v == max) {
			qc_walk_problem(w, QC_SEV_CORRUPTION, "refcount-overflow",
					k << cb,
					"ERROR cluster %llu (0x%llx) has more references than a %u-bit refcount holds",
					k, k << cb, 1U << order);
			continue;
		}
		qcow2_refcount_set(w->expected, order, k, v + 1);
	}
	return 0;
}

/* --- the stored refcounts ------------------------------------------------ */

/**
 * qc_refs_init() - read an image's refcount table
 * @r: the reader; release with qc_refs_free()
 * @qi: the image (stays the caller's)
 *
 * Return: 0, or a negative errno after one line on stderr.
 */
int qc_refs_init(struct qc_refs *r, struct qc_image *qi)
{
	const struct qcow2_header *h = &qi->img.hdr;
	u64 bytes = (u64)h->refcount_table_clusters << h->cluster_bits, i;
	__be64 *raw;
	int ret;

	memset(r, 0, sizeof(*r));
	r->qi = qi;
	r->entries = bytes / sizeof(u64);
	raw = malloc(bytes);
	r->table = (u64 *)raw;
	r->blocks = calloc(r->entries, sizeof(*r->blocks));
	r->dirty = calloc(r->entries, sizeof(*r->dirty));
	if (!raw || !r->blocks || !r->dirty) {
		qc_err("%s: %s", qi->path, strerror(ENOMEM));
		return -ENOMEM;
	}
	ret = qc_pread_full(qi->fd, raw, bytes, h->refcount_table_offset);
	if (ret) {
		qc_err("%s: read refcount table: %s", qi->path, strerror(-ret));
		return ret;
	}
	for (i = 0; i < r->entries; i++)
		r->table[i] = be64_to_cpu(raw[i]);
	return 0;
}

void qc_refs_free(struct qc_refs *r)
{
	u64 i;

	if (r->blocks)
		for (i = 0; i < r->entries; i++)
			free(r->blocks[i]);
	free(r->blocks);
	free(r->dirty);
	free(r->table);
	memset(r, 0, sizeof(*r));
}

/* The refcount block of table entry @idx, read on first use; NULL: none. */
static int qc_refs_block(struct qc_refs *r, u64 idx, void **block)
{
	const struct qcow2_header *h = &r->qi->img.hdr;
	u64 off;
	u32 bad;
	int ret;

	*block = NULL;
	if (idx >= r->entries)
		return 0;
	bad = qcow2_reftable_entry_inspect(h, r->table[idx], r->qi->file_size,
					   &off);
	if (!off)
		return 0;
	if (bad & QCOW2_BAD_UNALIGNED)
		return -EINVAL;	/* as QEMU: the block cannot be used */
	if (!r->blocks[idx]) {
		void *b = malloc(h->cluster_size);

		if (!b)
			return -ENOMEM;
		ret = qc_pread_zero(r->qi->fd, b, h->cluster_size, off);
		if (ret) {
			free(b);
			return ret;
		}
		r->blocks[idx] = b;
	}
	*block = r->blocks[idx];
	return 0;
}

/**
 * qc_refs_get() - the refcount the image stores for a cluster
 * @r: the reader
 * @cluster: cluster index
 * @refcount: the refcount (0 where no refcount block covers the cluster)
 *
 * Return: 0, or -EINVAL when the covering refcount block's offset is not
 * cluster aligned (the refcount cannot be read), another negative errno
 * when the block cannot be read.
 */
int qc_refs_get(struct qc_refs *r, u64 cluster, u64 *refcount)
{
	const struct qcow2_header *h = &r->qi->img.hdr;
	void *block;
	int ret;

	*refcount = 0;
	ret = qc_refs_block(r, cluster >> h->refblock_bits, &block);
	if (ret || !block)
		return ret;
	*refcount = qcow2_refcount_get(block, h->refcount_order,
				       cluster & ((1ULL << h->refblock_bits) - 1));
	return 0;
}

/**
 * qc_refs_set() - change a stored refcount in memory (for repair)
 * @r: the reader
 * @cluster: cluster index
 * @refcount: new value
 *
 * The block reaches the file with qc_refs_write_back().
 *
 * Return: 0, -ENOENT when no refcount block covers @cluster, -ERANGE, or
 * the error of reading the block.
 */
int qc_refs_set(struct qc_refs *r, u64 cluster, u64 refcount)
{
	const struct qcow2_header *h = &r->qi->img.hdr;
	u64 idx = cluster >> h->refblock_bits;
	void *block;
	int ret;

	ret = qc_refs_block(r, idx, &block);
	if (ret)
		return ret;
	if (!block)
		return -ENOENT;
	ret = qcow2_refcount_set(block, h->refcount_order,
				 cluster & ((1ULL << h->refblock_bits) - 1),
				 refcount);
	if (!ret)
		r->dirty[idx] = true;
	return ret;
}

/**
 * qc_refs_write_back() - write the blocks qc_refs_set() changed, and sync
 * @r: the reader (its image open read-write)
 *
 * Return: 0 or a negative errno.
 */
int qc_refs_write_back(struct qc_refs *r)
{
	const struct qcow2_header *h = &r->qi->img.hdr;
	u64 idx, off;
	ssize_t n;

	for (idx = 0; idx < r->entries; idx++) {
		if (!r->dirty[idx])
			continue;
		qcow2_reftable_entry_inspect(h, r->table[idx], r->qi->file_size,
					     &off);
		n = pwrite(r->qi->fd, r->blocks[idx], h->cluster_size,
			   (off_t)off);
		if (n < 0)
			return -errno;
		if ((u64)n != h->cluster_size)
			return -EIO;
		r->dirty[idx] = false;
	}
	return fdatasync(r->qi->fd) ? -errno : 0;
}

/* --- tables --------------------------------------------------------------- */

/**
 * qc_read_l1() - read an L1 table (zeros past the end of the file)
 * @w: the walk
 * @offset: file offset
 * @entries: number of entries
 * @l1: allocated table in CPU order; free() it
 *
 * Return: 0 or a negative errno.
 */
int qc_read_l1(struct qc_walk *w, u64 offset, u32 entries, u64 **l1)
{
	__be64 *raw;
	u64 *t;
	u32 i;
	int ret;

	*l1 = NULL;
	raw = malloc((size_t)entries * sizeof(*raw) + 1);
	if (!raw)
		return -ENOMEM;
	ret = qc_pread_zero(w->qi->fd, raw, (size_t)entries * sizeof(*raw),
			    offset);
	if (ret) {
		free(raw);
		return ret;
	}
	t = (u64 *)raw;
	for (i = 0; i < entries; i++)
		t[i] = be64_to_cpu(raw[i]);
	*l1 = t;
	return 0;
}

/* Entries of one L2 table: account every cluster it names. */
static int qc_walk_l2(struct qc_walk *w, u64 l2_offset, u64 l1_index,
		      u32 snap, bool active)
{
	const struct qcow2_header *h = w->h;
	bool data_file = h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
	u64 next_contiguous = 0, word, bitmap, guest;
	u32 i, n = 1U << h->l2_bits, bad;
	struct qcow2_l2e e;
	int ret;

	ret = qc_pread_zero(w->qi->fd, w->l2buf, h->cluster_size, l2_offset);
	if (ret) {
		qc_walk_problem(w, QC_SEV_CHECK_ERROR, "io", l2_offset,
				"ERROR reading the L2 table at 0x%llx: %s",
				l2_offset, strerror(-ret));
		return ret;
	}
	for (i = 0; i < n; i++) {
		qcow2_l2_get(h, w->l2buf, i, &word, &bitmap);
		bad = qcow2_l2e_inspect(h, word, bitmap, w->file_size, &e);
		guest = qcow2_guest_offset(h, l1_index, i);

		if (e.type != QCOW2_CLUSTER_COMPRESSED &&
		    (bad & QCOW2_BAD_RESERVED))
			qc_walk_problem(w, QC_SEV_CORRUPTION, "reserved-bits",
					l2_offset,
					"ERROR L2 entry %u of the L2 table at 0x%llx (guest 0x%llx) has reserved bits set: 0x%016llx",
					i, l2_offset, guest, word);
		if (bad & QCOW2_BAD_ZERO_FLAG)
			qc_walk_problem(w, QC_SEV_WARNING, "zero-flag", l2_offset,
					"Warning: L2 entry for guest 0x%llx has the zero flag, which %s images do not have: 0x%016llx",
					guest, h->extended_l2 ?
					"extended L2" : "version 2", word);

		switch (e.type) {
		case QCOW2_CLUSTER_COMPRESSED:
			if (bad & QCOW2_BAD_COPIED)
				qc_walk_problem(w, QC_SEV_CORRUPTION, "compressed-copied",
						e.comp_offset,
						"ERROR compressed cluster of guest 0x%llx has the COPIED flag: 0x%016llx",
						guest, word);
			if (bad & QCOW2_BAD_DATA_FILE) {
				qc_walk_problem(w, QC_SEV_CORRUPTION, "compressed-data-file",
						e.comp_offset,
						"ERROR compressed cluster of guest 0x%llx in an image with an external data file",
						guest);
				break;
			}
			if (bad & QCOW2_BAD_BITMAP) {
				qc_walk_problem(w, QC_SEV_CORRUPTION, "compressed-bitmap",
						e.comp_offset,
						"ERROR compressed cluster of guest 0x%llx has a non-zero subcluster bitmap: 0x%016llx",
						guest, bitmap);
				break;
			}
			ret = qc_walk_inc(w, e.comp_offset, e.comp_len,
					  QC_OWN_COMPRESSED, snap, guest);
			if (ret)
				return ret;
			if (active) {
				w->allocated_clusters++;
				w->compressed_clusters++;
				w->fragmented_clusters++;
			}
			break;
		case QCOW2_CLUSTER_ZERO_ALLOC:
		case QCOW2_CLUSTER_NORMAL:
			if (bad & QCOW2_BAD_ALLOC_ZERO)
				qc_walk_problem(w, QC_SEV_CORRUPTION, "subcluster-bitmap",
						e.host_offset,
						"ERROR cluster of guest 0x%llx has subclusters both allocated and zero: bitmap 0x%016llx",
						guest, bitmap);
			if (bad & QCOW2_BAD_UNALIGNED)
				qc_walk_problem(w, QC_SEV_CORRUPTION, "unaligned",
						e.host_offset,
						"ERROR cluster of guest 0x%llx at 0x%llx is not cluster aligned",
						guest, e.host_offset);
			if (active) {
				w->allocated_clusters++;
				if (next_contiguous &&
				    e.host_offset != next_contiguous)
					w->fragmented_clusters++;
				next_contiguous = e.host_offset + h->cluster_size;
			}
			if (data_file)
				break;	/* data clusters live in the data file */
			ret = qc_walk_inc(w, e.host_offset, h->cluster_size,
					  QC_OWN_DATA, snap, guest);
			if (ret)
				return ret;
			break;
		case QCOW2_CLUSTER_UNALLOCATED:
			if (bad & QCOW2_BAD_BITMAP)
				qc_walk_problem(w, QC_SEV_CORRUPTION, "subcluster-bitmap",
						l2_offset,
						"ERROR unallocated cluster of guest 0x%llx has allocated subclusters: bitmap 0x%016llx",
						guest, bitmap);
			if (bad & QCOW2_BAD_COPIED)
				qc_walk_problem(w, QC_SEV_WARNING, "copied",
						l2_offset,
						"Warning: unallocated cluster of guest 0x%llx has the COPIED flag: 0x%016llx",
						guest, word);
			break;
		case QCOW2_CLUSTER_ZERO_PLAIN:
			break;
		}
	}
	return 0;
}

/* An L1 table, its L2 tables and what they name. */
static int qc_walk_l1(struct qc_walk *w, u64 l1_offset, u32 l1_size,
		      u32 snap)
{
	const struct qcow2_header *h = w->h;
	bool active = !snap;
	char state[80];
	u64 *l1, l2;
	u32 i, bad;
	int ret;

	ret = qc_walk_inc(w, l1_offset, (u64)l1_size * sizeof(u64), QC_OWN_L1,
			  snap, 0);
	if (ret || !l1_size)
		return ret;
	ret = qc_read_l1(w, l1_offset, l1_size, &l1);
	if (ret) {
		qc_walk_problem(w, QC_SEV_CHECK_ERROR, "io", l1_offset,
				"ERROR reading the L1 table at 0x%llx: %s",
				l1_offset, strerror(-ret));
		return ret;
	}
	qc_state_name(w, snap, state, sizeof(state));
	for (i = 0; i < l1_size; i++) {
		/*
		 * As qemu-img check: an entry with only reserved bits set
		 * names an L2 table at offset 0, the header cluster, which
		 * is then counted and walked as one.
		 */
		if (!l1[i])
			continue;
		bad = qcow2_l1e_inspect(h, l1[i], w->file_size, &l2);
		if (bad & QCOW2_BAD_RESERVED)
			qc_walk_problem(w, QC_SEV_CORRUPTION, "reserved-bits",
					l1_offset + i * sizeof(u64),
					"ERROR L1 entry %u (%s) has reserved bits set: 0x%016llx",
					i, state, l1[i]);
		ret = qc_walk_inc(w, l2, h->cluster_size, QC_OWN_L2, snap,
				  qcow2_guest_offset(h, i, 0));
		if (ret)
			goto out;
		if (bad & QCOW2_BAD_UNALIGNED)
			qc_walk_problem(w, QC_SEV_CORRUPTION, "unaligned", l2,
					"ERROR L2 table at 0x%llx named by L1 entry %u (%s) is not cluster aligned",
					l2, i, state);
		ret = qc_walk_l2(w, l2, i, snap, active);
		if (ret)
			goto out;
	}
out:
	free(l1);
	return ret;
}

/* The bitmap directory, every bitmap table and the clusters they name. */
static int qc_walk_bitmaps(struct qc_walk *w)
{
	const struct qcow2_extensions *ext = &w->qi->img.ext;
	const struct qcow2_header *h = w->h;
	struct qcow2_diag diag = {};
	struct qcow2_bitmap bm;
	size_t pos = 0, used;
	u64 *table = NULL, off;
	u32 b, i, bad;
	void *dir;
	int ret;

	if (!ext->has_bitmaps || !(h->autoclear_features & QCOW2_AUTOCLEAR_BITMAPS))
		return 0;	/* without the bit the bitmaps are ignored */
	ret = qc_walk_inc(w, ext->bitmap_directory_offset,
			  ext->bitmap_directory_size, QC_OWN_BITMAP_DIR, 0, 0);
	if (ret)
		return ret;
	dir = malloc(ext->bitmap_directory_size);
	if (!dir)
		return -ENOMEM;
	ret = qc_pread_zero(w->qi->fd, dir, ext->bitmap_directory_size,
			    ext->bitmap_directory_offset);
	if (ret)
		goto out;
	for (b = 0; b < ext->nb_bitmaps; b++) {
		ret = qcow2_bitmap_dir_entry_parse(h, (u8 *)dir + pos,
						   ext->bitmap_directory_size - pos,
						   &bm, &used, &diag);
		if (ret) {
			qc_walk_problem(w, QC_SEV_CORRUPTION, "bitmap-directory",
					ext->bitmap_directory_offset + pos,
					"ERROR bitmap directory entry %u: %s",
					b, diag.msg);
			goto out;	/* as QEMU: the check cannot go on */
		}
		pos += used;
		ret = qc_walk_inc(w, bm.table_offset,
				  (u64)bm.table_size * sizeof(u64),
				  QC_OWN_BITMAP_TABLE, b, 0);
		if (ret)
			goto out;
		ret = qc_read_l1(w, bm.table_offset, bm.table_size, &table);
		if (ret)
			goto out;
		for (i = 0; i < bm.table_size; i++) {
			bad = qcow2_bitmap_table_entry_inspect(h, table[i],
							       w->file_size,
							       &off);
			if (bad & (QCOW2_BAD_RESERVED | QCOW2_BAD_ALL_ONES |
				   QCOW2_BAD_UNALIGNED)) {
				qc_walk_problem(w, QC_SEV_CORRUPTION, "bitmap-table",
						bm.table_offset + i * sizeof(u64),
						"ERROR entry %u of the table of bitmap %u is invalid: 0x%016llx",
						i, b, table[i]);
				continue;
			}
			if (!off)
				continue;
			ret = qc_walk_inc(w, off, h->cluster_size,
					  QC_OWN_BITMAP_DATA, b, i);
			if (ret)
				goto out;
		}
		free(table);
		table = NULL;
	}
out:
	free(table);
	free(dir);
	return ret;
}

/* Every refcount block: referenced exactly once, inside the file. */
static int qc_walk_refblocks(struct qc_walk *w)
{
	const struct qcow2_header *h = w->h;
	u64 i, off, k;
	u32 bad;
	int ret;

	for (i = 0; i < w->refs.entries; i++) {
		bad = qcow2_reftable_entry_inspect(h, w->refs.table[i],
						   w->file_size, &off);
		if (bad & QCOW2_BAD_RESERVED) {
			qc_walk_problem(w, QC_SEV_CORRUPTION, "reserved-bits",
					h->refcount_table_offset + i * sizeof(u64),
					"ERROR refcount table entry %llu has reserved bits set: 0x%016llx",
					i, w->refs.table[i]);
			w->rebuild = true;
			continue;
		}
		if (bad & QCOW2_BAD_UNALIGNED) {
			qc_walk_problem(w, QC_SEV_CORRUPTION, "unaligned", off,
					"ERROR refcount block %llu at 0x%llx is not cluster aligned",
					i, off);
			w->rebuild = true;
			continue;
		}
		k = off >> h->cluster_bits;
		if (k >= w->nb_clusters) {
			qc_walk_problem(w, QC_SEV_CORRUPTION, "out-of-range", off,
					"ERROR refcount block %llu at 0x%llx is past the end of the file",
					i, off);
			continue;
		}
		if (!off)
			continue;
		ret = qc_walk_inc(w, off, h->cluster_size, QC_OWN_REFBLOCK, 0, i);
		if (ret)
			return ret;
		if (qc_walk_expected(w, k) != 1) {
			qc_walk_problem(w, QC_SEV_CORRUPTION, "refblock-shared", off,
					"ERROR refcount block %llu at 0x%llx is referenced %llu times",
					i, off, qc_walk_expected(w, k));
			w->rebuild = true;
		}
	}
	return 0;
}

/* Stored against expected refcount, cluster by cluster. */
static void qc_walk_compare(struct qc_walk *w)
{
	const struct qcow2_header *h = w->h;
	u64 k, stored, want, highest = 0, file_clusters, span;
	char what[200];
	int ret;

	file_clusters = (w->file_size + h->cluster_size - 1) >> h->cluster_bits;
	for (k = 0; k < w->nb_clusters; k++) {
		ret = qc_refs_get(&w->refs, k, &stored);
		if (ret) {
			span = 1ULL << h->refblock_bits;
			/* one line for the block, one count per cluster */
			if (!(k & (span - 1))) {
				struct qc_problem p = {
					.sev = QC_SEV_CHECK_ERROR,
					.type = "refcount-unreadable",
					.offset = k << h->cluster_bits,
					.count = min_t(u64, span - (k & (span - 1)),
						       w->nb_clusters - k),
				};

				snprintf(p.msg, sizeof(p.msg),
					 "ERROR cannot read the refcounts of clusters %llu-%llu: %s",
					 k, k + p.count - 1, ret == -EINVAL ?
					 "their refcount block is not cluster aligned" :
					 strerror(-ret));
				if (w->report)
					w->report(w, &p);
			}
			w->check_errors++;
			continue;
		}
		want = qc_walk_expected(w, k);
		if (stored || want)
			highest = k;
		if (stored == want)
			continue;
		if (w->owners)
			qc_owner_describe(w, &w->owners[k], what, sizeof(what));
		else
			snprintf(what, sizeof(what), "%s", want ? "in use" :
				 "referenced by nothing");
		if (!stored)
			w->rebuild = true;
		if (stored < want)
			qc_walk_problem(w, QC_SEV_CORRUPTION, "refcount",
					k << h->cluster_bits,
					"ERROR cluster %llu (0x%llx, %s%s): refcount %llu, %llu references",
					k, k << h->cluster_bits, what,
					k >= file_clusters ? ", past the end of the file" : "",
					stored, want);
		else
			qc_walk_problem(w, QC_SEV_LEAK, "leak",
					k << h->cluster_bits,
					"Leaked cluster %llu (0x%llx, %s): refcount %llu, %llu references",
					k, k << h->cluster_bits, what, stored,
					want);
	}
	w->image_end_offset = (highest + 1) << h->cluster_bits;
}

/* COPIED must be set exactly when the stored refcount is 1. */
static int qc_walk_copied(struct qc_walk *w)
{
	const struct qcow2_header *h = w->h;
	bool data_file = h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE;
	u64 *l1, l2, rc, word, bitmap, guest, k;
	struct qcow2_l2e e;
	u32 i, j;
	int ret;

	if (!h->l1_size)
		return 0;
	ret = qc_read_l1(w, h->l1_table_offset, h->l1_size, &l1);
	if (ret)
		return ret;
	for (i = 0; i < h->l1_size; i++) {
		bool copied = l1[i] & QCOW2_OFLAG_COPIED;

		qcow2_l1e_inspect(h, l1[i], w->file_size, &l2);
		if (!l2)
			continue;
		if (!qc_refs_get(&w->refs, l2 >> h->cluster_bits, &rc) &&
		    !qc_copied_ok(copied, rc)) {
			w->copied_errors++;
			qc_walk_problem(w, QC_SEV_CORRUPTION, "copied", l2,
					"ERROR COPIED flag of L1 entry %u (L2 table at 0x%llx) is %s, refcount %llu",
					i, l2, copied ? "set" : "clear", rc);
		}
		ret = qc_pread_zero(w->qi->fd, w->l2buf, h->cluster_size, l2);
		if (ret) {
			qc_walk_problem(w, QC_SEV_CHECK_ERROR, "io", l2,
					"ERROR reading the L2 table at 0x%llx: %s",
					l2, strerror(-ret));
			goto out;
		}
		for (j = 0; j < 1U << h->l2_bits; j++) {
			qcow2_l2_get(h, w->l2buf, j, &word, &bitmap);
			qcow2_l2e_inspect(h, word, bitmap, w->file_size, &e);
			if (e.type != QCOW2_CLUSTER_NORMAL &&
			    e.type != QCOW2_CLUSTER_ZERO_ALLOC)
				continue;
			k = e.host_offset >> h->cluster_bits;
			if (data_file)
				rc = 1;
			else if (qc_refs_get(&w->refs, k, &rc))
				continue;
			if (qc_copied_ok(e.copied, rc))
				continue;
			guest = qcow2_guest_offset(h, i, j);
			w->copied_errors++;
			qc_walk_problem(w, QC_SEV_CORRUPTION, "copied",
					e.host_offset,
					"ERROR COPIED flag of the L2 entry of guest 0x%llx (cluster 0x%llx) is %s, refcount %llu",
					guest, e.host_offset,
					e.copied ? "set" : "clear", rc);
		}
	}
out:
	free(l1);
	return ret;
}

/* --- the walk ------------------------------------------------------------- */

/**
 * qc_walk_init() - prepare a walk of an open image
 * @w: the walk
 * @qi: the image (stays the caller's)
 * @want_owners: record what every host cluster holds (for messages and
 *		 the cluster map; skipped for very large files)
 *
 * Reads the snapshot table and the refcount table.
 *
 * Return: 0, or a negative errno after one line on stderr.
 */
int qc_walk_init(struct qc_walk *w, struct qc_image *qi, bool want_owners)
{
	const struct qcow2_header *h = &qi->img.hdr;
	u64 clusters;
	int ret;

	memset(w, 0, sizeof(*w));
	w->qi = qi;
	w->h = h;
	w->file_size = qi->file_size;
	w->want_owners = want_owners;
	w->cap_clusters = (QC_WALK_MAX_TABLE_BYTES * 8) >> h->refcount_order;

	ret = qc_image_read_snapshots(qi, &w->sns);
	if (ret)
		return ret;
	if (w->sns.nr) {
		const struct qcow2_snapshot *last = &w->sns.sn[w->sns.nr - 1];

		w->snap_table_len = (u64)((const u8 *)last->name +
					  last->name_len - (u8 *)w->sns.buf);
	}

	w->l2buf = malloc(h->cluster_size);
	if (!w->l2buf) {
		qc_err("%s: %s", qi->path, strerror(ENOMEM));
		return -ENOMEM;
	}
	ret = qc_refs_init(&w->refs, qi);
	if (ret)
		return ret;

	clusters = (w->file_size + h->cluster_size - 1) >> h->cluster_bits;
	if (want_owners &&
	    clusters <= QC_WALK_MAX_TABLE_BYTES / sizeof(struct qc_owner)) {
		w->owners = calloc(1, sizeof(*w->owners));
		if (!w->owners) {
			qc_err("%s: %s", qi->path, strerror(ENOMEM));
			return -ENOMEM;
		}
	}
	ret = qc_walk_grow(w, clusters);
	if (ret) {
		qc_err("%s: %s", qi->path, strerror(-ret));
		return ret;
	}
	return 0;
}

/**
 * qc_walk_run() - count every reference and compare with the refcounts
 * @w: a walk prepared by qc_walk_init()
 *
 * Findings go to @w->report and into the counters as they are made.
 *
 * Return: 0 when the walk completed (whatever it found), or a negative
 * errno when it could not (the counters then hold what was found so far).
 */
int qc_walk_run(struct qc_walk *w)
{
	const struct qcow2_header *h = w->h;
	u32 i;
	int ret;

	w->total_clusters = (h->size + h->cluster_size - 1) >> h->cluster_bits;

	ret = qc_walk_inc(w, 0, h->cluster_size, QC_OWN_HEADER, 0, 0);
	if (ret)
		return ret;
	ret = qc_walk_l1(w, h->l1_table_offset, h->l1_size, 0);
	if (ret)
		return ret;
	if ((h->incompatible_features & QCOW2_INCOMPAT_DATA_FILE) && w->sns.nr)
		qc_walk_problem(w, QC_SEV_CORRUPTION, "snapshots-data-file",
				h->snapshots_offset,
				"ERROR %u snapshots in an image with an external data file",
				w->sns.nr);
	for (i = 0; i < w->sns.nr; i++) {
		ret = qc_walk_l1(w, w->sns.sn[i].l1_table_offset,
				 w->sns.sn[i].l1_size, i + 1);
		if (ret)
			return ret;
	}
	ret = qc_walk_inc(w, h->snapshots_offset, w->snap_table_len,
			  QC_OWN_SNAPTABLE, 0, 0);
	if (ret)
		return ret;
	ret = qc_walk_inc(w, h->refcount_table_offset,
			  (u64)h->refcount_table_clusters << h->cluster_bits,
			  QC_OWN_REFTABLE, 0, 0);
	if (ret)
		return ret;
	ret = qc_walk_bitmaps(w);
	if (ret)
		return ret;
	ret = qc_walk_refblocks(w);
	if (ret)
		return ret;
	qc_walk_compare(w);
	return qc_walk_copied(w);
}

void qc_walk_free(struct qc_walk *w)
{
	qc_refs_free(&w->refs);
	free(w->expected);
	free(w->owners);
	free(w->l2buf);
	qc_snapshots_free(&w->sns);
	memset(w, 0, sizeof(*w));
}
