/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qcowctl: walk every metadata structure of an image and count references.
 *
 * The walk is what `qcowctl check` and `qcowctl dump` share.  It visits the
 * structures in the order qemu-img check does, because that order shows in
 * the numbers (a refcount block is judged by the references counted before
 * it, the in-memory table grows with references past the end of the file):
 *
 *   1. the header cluster;
 *   2. the active L1 table, each L2 table it names (once per L1 entry) and
 *      each cluster those L2 tables name (once per L2 entry), counting the
 *      allocation and fragmentation statistics on the way;
 *   3. every snapshot's L1 table, L2 tables and clusters the same way (an
 *      L2 table or data cluster shared with the active state is counted
 *      again: each reference is one refcount);
 *   4. the snapshot table, the refcount table, the bitmap directory, every
 *      bitmap table and the clusters they name;
 *   5. every refcount block (which must then be referenced exactly once);
 *   6. a comparison of every cluster's expected refcount with the stored
 *      one: stored > expected is a leak, stored < expected a corruption;
 *   7. the COPIED flag of every active L1 and L2 entry against the stored
 *      refcount (set exactly when it is 1).
 *
 * Every entry is decoded by the format core (qcow2_*_inspect(), the
 * lenient twins of the decoders the module runs); this file only reads
 * buffers and keeps the counts.  Expected refcounts are kept at the image's
 * own refcount width with qcow2_refcount_get()/set(), so they saturate
 * exactly where the image's would.
 */
#ifndef QCOWCTL_WALK_H
#define QCOWCTL_WALK_H

#include "qcowctl.h"

/* What a host cluster holds, as the walk found it referenced. */
enum qc_own {
	QC_OWN_FREE,
	QC_OWN_HEADER,
	QC_OWN_L1,		/* snap: 0 active, N snapshot N-1 */
	QC_OWN_L2,		/* where: first guest offset it maps */
	QC_OWN_DATA,		/* where: guest offset */
	QC_OWN_COMPRESSED,	/* where: guest offset */
	QC_OWN_REFTABLE,
	QC_OWN_REFBLOCK,	/* where: refcount table index */
	QC_OWN_SNAPTABLE,
	QC_OWN_BITMAP_DIR,
	QC_OWN_BITMAP_TABLE,	/* snap: bitmap index */
	QC_OWN_BITMAP_DATA,	/* snap: bitmap index, where: table index */
	QC_OWN_NR,
};

/**
 * struct qc_owner - the first reference the walk found to a host cluster
 * @kind: enum qc_own
 * @shared: referenced more than once
 * @overlap: referenced as two things that may not share a cluster
 * @other: kind of the first conflicting reference when @overlap
 * @snap: 0 for the active state, N for snapshot N-1; bitmap index
 * @where: guest offset, or an index (see enum qc_own)
 */
struct qc_owner {
	u8 kind;
	u8 shared;
	u8 overlap;
	u8 other;
	u32 snap;
	u64 where;
};

enum qc_severity {
	QC_SEV_CORRUPTION,	/* counted in "corruptions" */
	QC_SEV_LEAK,		/* counted in "leaks" */
	QC_SEV_CHECK_ERROR,	/* counted in "check-errors" */
	QC_SEV_WARNING,		/* not counted: qemu-img check accepts it */
	QC_SEV_OVERLAP,		/* not counted: shows as a refcount error */
};

/**
 * struct qc_problem - one finding of the walk
 * @sev: severity
 * @type: short machine-readable name ("refcount", "copied", ...)
 * @offset: host offset concerned, or U64_MAX
 * @count: how many clusters the finding stands for (usually 1)
 * @msg: one line, no trailing newline
 */
struct qc_problem {
	enum qc_severity sev;
	const char *type;
	u64 offset;
	u64 count;
	char msg[320];
};

/**
 * struct qc_refs - reader of the refcounts an image stores
 * @qi: the image (not owned)
 * @table: the refcount table, CPU order
 * @entries: entries in @table
 * @blocks: refcount blocks read so far, by refcount table index
 * @dirty: per refcount table index, the block was changed (repair)
 */
struct qc_refs {
	struct qc_image *qi;
	u64 *table;
	u64 entries;
	void **blocks;
	bool *dirty;
};

int qc_refs_init(struct qc_refs *r, struct qc_image *qi);
int qc_refs_get(struct qc_refs *r, u64 cluster, u64 *refcount);
int qc_refs_set(struct qc_refs *r, u64 cluster, u64 refcount);
int qc_refs_write_back(struct qc_refs *r);
void qc_refs_free(struct qc_refs *r);

struct qc_walk;
typedef void (*qc_walk_report_fn)(struct qc_walk *w,
				  const struct qc_problem *p);

/**
 * struct qc_walk - state and results of one walk
 * @qi: the image (not owned)
 * @h: its header
 * @sns: the snapshot table (owned)
 * @snap_table_len: bytes the snapshot table spans
 * @file_size: bytes in the image file
 * @nb_clusters: clusters the expected refcounts cover (grows with
 *		 references past the end of the file)
 * @expected: expected refcounts at the image's refcount width
 * @owners: per cluster, when the walk was asked to keep them
 * @refs: the stored refcounts
 * @corruptions: errors, as qemu-img check counts them
 * @leaks: leaked clusters
 * @check_errors: clusters whose refcount could not be read
 * @total_clusters: guest clusters of the virtual disk
 * @allocated_clusters: allocated guest clusters (active state)
 * @fragmented_clusters: of those, not contiguous with their predecessor
 * @compressed_clusters: of those, compressed
 * @image_end_offset: end of the last cluster in use or referenced
 * @copied_errors: of @corruptions, wrong COPIED flags
 * @rebuild: the refcount structures themselves are damaged (a refcount
 *	     block unusable or shared, a referenced cluster without a
 *	     refcount): fixing single refcounts would not be enough
 * @report: called for every finding (may be NULL)
 * @priv: for @report
 */
struct qc_walk {
	struct qc_image *qi;
	const struct qcow2_header *h;
	struct qc_snapshots sns;
	u64 snap_table_len;
	u64 file_size;
	u64 nb_clusters;
	u64 cap_clusters;
	void *expected;
	struct qc_owner *owners;
	bool want_owners;
	struct qc_refs refs;
	void *l2buf;

	u64 corruptions;
	u64 leaks;
	u64 check_errors;
	u64 total_clusters;
	u64 allocated_clusters;
	u64 fragmented_clusters;
	u64 compressed_clusters;
	u64 image_end_offset;
	u64 copied_errors;
	bool rebuild;

	qc_walk_report_fn report;
	void *priv;
};

/* The COPIED flag is right when it is set exactly for a refcount of one. */
static inline bool qc_copied_ok(bool copied, u64 refcount)
{
	return copied ? refcount == 1 : refcount != 1;
}

int qc_walk_init(struct qc_walk *w, struct qc_image *qi, bool want_owners);
int qc_walk_run(struct qc_walk *w);
void qc_walk_free(struct qc_walk *w);
u64 qc_walk_expected(const struct qc_walk *w, u64 cluster);
const char *qc_own_name(unsigned int kind);
void qc_owner_describe(const struct qc_walk *w, const struct qc_owner *o,
		       char *buf, size_t len);
int qc_pread_zero(int fd, void *buf, size_t len, u64 off);
int qc_read_l1(struct qc_walk *w, u64 offset, u32 entries, u64 **l1);
struct qc_image *qc_inspect_open(const char *path, bool rw, bool force_share);

#endif /* QCOWCTL_WALK_H */
