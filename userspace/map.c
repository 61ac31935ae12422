// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl map: where each guest byte of an image comes from, as
 * `qemu-img map` shows it.
 *
 * For every run of guest bytes the map gives the layer of the backing
 * chain that decides its content (depth 0 is the image itself), whether
 * that layer has it (present), whether it reads as zeros (zero), whether
 * it is stored data (data), and where it is in which file (offset).  Each
 * layer is asked in turn, top first, and the first that says "data" or
 * "zero" answers; a layer's answer follows QEMU's block layer:
 *
 *   qcow2   normal cluster          data, offset
 *           preallocated zero       zero, offset
 *           zero cluster            zero
 *           compressed cluster      data (no offset: nothing to point at)
 *           allocated subcluster
 *            that is not written    offset only: asks the layer below
 *           unallocated             asks the layer below; zero (not
 *                                   present) when there is none or the
 *                                   byte is beyond the end of the layer
 *                                   below
 *   raw     the file's own extents (SEEK_DATA/SEEK_HOLE): data or zero,
 *           always with an offset
 *
 * and, as QEMU does for an image whose refcounts claim clearly more
 * clusters than the file has blocks (metadata preallocation), the data
 * clusters of such a qcow2 layer also read as zero where the file has a
 * hole.  Adjacent runs that agree (and whose offsets continue) are merged,
 * exactly as qemu-img merges them, so `qcowctl map --json` prints what
 * `qemu-img map --output=json` prints.  The chain is opened (and locked)
 * as `qcowctl attach -r` opens it; the L1/L2 entries are decoded by the
 * module's format core.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "walk.h"

#define QC_ST_DATA		BIT(0)
#define QC_ST_ZERO		BIT(1)
#define QC_ST_OFFSET		BIT(2)	/* @map is valid */
#define QC_ST_ALLOCATED		BIT(3)	/* the layer itself has the bytes */

/**
 * struct qc_map_layer - what map keeps per layer of the chain
 * @l: the chain's layer
 * @size: bytes the layer holds as a disk (virtual size, raw file size)
 * @file_size: bytes in the file
 * @l1: active L1 table, CPU order (qcow2)
 * @l2: the L2 table last read (qcow2)
 * @l2_offset: its offset, 0 for none
 * @prealloc: the refcounts claim many more clusters than the file has
 *	      blocks: data clusters may be holes of the file
 */
struct qc_map_layer {
	struct qc_layer *l;
	u64 size;
	u64 file_size;
	u64 *l1;
	void *l2;
	u64 l2_offset;
	bool prealloc;
};

struct qc_map {
	struct qc_chain ch;
	struct qc_map_layer ml[QCOW_MAX_LAYERS];
	unsigned int nr;
	const char *image;
};

/**
 * struct qc_extent - one run of the map
 * @start: first guest byte
 * @length: bytes
 * @depth: layer that answered
 * @present: that layer has the bytes itself
 * @zero: they read as zeros
 * @data: they are stored data
 * @has_offset: @offset and @file are valid
 * @offset: where the first byte is in @file
 * @file: layer index of the file holding the bytes
 */
struct qc_extent {
	u64 start;
	u64 length;
	unsigned int depth;
	bool present;
	bool zero;
	bool data;
	bool has_offset;
	u64 offset;
	unsigned int file;
};

/*
 * What a plain file holds at [@off, @off + @bytes): data or a hole, and
 * for how long; past its end, zeros.  Like QEMU's file driver: a file
 * that cannot say (no SEEK_DATA) is all data.
 */
static unsigned int qc_file_status(int fd, u64 file_size, u64 off, u64 bytes,
				   u64 *pnum)
{
	off_t data, hole;

	*pnum = bytes;
	if (off >= file_size)
		return QC_ST_ZERO;
	*pnum = bytes = min(bytes, file_size - off);
	data = lseek(fd, (off_t)off, SEEK_DATA);
	if (data < 0)
		return errno == ENXIO ? QC_ST_ZERO : QC_ST_DATA;
	if ((u64)data > off) {
		*pnum = min_t(u64, bytes, (u64)data - off);
		return QC_ST_ZERO;
	}
	if ((u64)data < off)
		return QC_ST_DATA;
	hole = lseek(fd, (off_t)off, SEEK_HOLE);
	if (hole < 0 || (u64)hole <= off)
		return QC_ST_DATA;
	*pnum = min_t(u64, bytes, (u64)hole - off);
	return QC_ST_DATA;
}

/* QEMU's test for metadata preallocation (see the top of this file). */
static int qc_map_detect_prealloc(struct qc_map_layer *ml)
{
	const struct qcow2_header *h = &ml->l->qi->img.hdr;
	u64 real_clusters, threshold, end, i, count = 0, rc;
	struct qc_refs refs;
	struct stat st;
	int ret;

	if (fstat(ml->l->fd, &st))
		return -errno;
	real_clusters = ((u64)st.st_blocks * 512) >> h->cluster_bits;
	threshold = max(real_clusters * 10 / 9, real_clusters + 2);
	ret = qc_refs_init(&refs, ml->l->qi);
	if (ret)
		return ret;
	end = (ml->file_size + h->cluster_size - 1) >> h->cluster_bits;
	for (i = 0; i < end && count < threshold; i++) {
		if (qc_refs_get(&refs, i, &rc))
			break;	/* QEMU gives up, and assumes none */
		count += !!rc;
	}
	ml->prealloc = count >= threshold;
	qc_refs_free(&refs);
	return 0;
}

static int qc_map_layer_init(struct qc_map_layer *ml, struct qc_layer *l)
{
	struct stat st;
	__be64 *raw;
	u32 i;
	int ret;

	ml->l = l;
	if (fstat(l->fd, &st))
		return -errno;
	ml->file_size = l->qi ? l->qi->file_size : (u64)st.st_size;
	if (!l->qi) {
		ml->size = ml->file_size;
		return 0;
	}
	ml->size = l->qi->img.hdr.size;
	ml->l2 = malloc(l->qi->img.hdr.cluster_size);
	raw = malloc((size_t)l->qi->img.hdr.l1_size * sizeof(*raw) + 1);
	if (!ml->l2 || !raw) {
		free(raw);
		return -ENOMEM;
	}
	ret = qc_pread_full(l->fd, raw, (size_t)l->qi->img.hdr.l1_size *
			    sizeof(*raw), l->qi->img.hdr.l1_table_offset);
	if (ret) {
		free(raw);
		return ret;
	}
	ml->l1 = (u64 *)raw;
	for (i = 0; i < l->qi->img.hdr.l1_size; i++)
		ml->l1[i] = be64_to_cpu(raw[i]);
	return qc_map_detect_prealloc(ml);
}

static unsigned int qc_map_sc_status(enum qcow2_subcluster_type t)
{
	switch (t) {
	case QCOW2_SUBCLUSTER_NORMAL:
		return QC_ST_DATA | QC_ST_OFFSET;
	case QCOW2_SUBCLUSTER_ZERO_ALLOC:
		return QC_ST_ZERO | QC_ST_OFFSET;
	case QCOW2_SUBCLUSTER_UNALLOCATED_ALLOC:
		return QC_ST_OFFSET;
	case QCOW2_SUBCLUSTER_ZERO_PLAIN:
		return QC_ST_ZERO;
	case QCOW2_SUBCLUSTER_COMPRESSED:
		return QC_ST_DATA;
	default:
		return 0;
	}
}

/*
 * What qcow2 layer @ml says of [@off, @off + @bytes): a status, the host
 * offset of @off when QC_ST_OFFSET, and how many bytes it holds for (up to
 * the end of the L2 table).
 */
static int qc_map_qcow2(struct qc_map_layer *ml, u64 off,
			u64 bytes, unsigned int *st, u64 *map, u64 *pnum)
{
	const struct qcow2_header *h = &ml->l->qi->img.hdr;
	u64 l1i = qcow2_l1_index(h, off), l2_span, end, pos, word, bitmap;
	u64 l2, host, run_end;
	enum qcow2_subcluster_type t;
	struct qcow2_l2e e;
	unsigned int this;
	bool copied;
	u32 sc;
	int ret;

	l2_span = 1ULL << (h->cluster_bits + h->l2_bits);
	end = off + min(bytes, l2_span - (off & (l2_span - 1)));
	*st = 0;
	*map = 0;
	*pnum = end - off;
	if (l1i >= h->l1_size)
		return 0;
	if (qcow2_l1e_decode(h, ml->l1[l1i], ml->file_size, &l2, &copied)) {
		qc_err("%s: L1 entry %llu is invalid: 0x%016llx", qc_disp(ml->l),
		       l1i, ml->l1[l1i]);
		return -EINVAL;
	}
	if (!l2)
		return 0;
	if (ml->l2_offset != l2) {
		ret = qc_pread_full(ml->l->fd, ml->l2, h->cluster_size, l2);
		if (ret) {
			qc_err("%s: read the L2 table at 0x%llx: %s",
			       qc_disp(ml->l), l2, strerror(-ret));
			return ret;
		}
		ml->l2_offset = l2;
	}
	for (pos = off; pos < end; pos = min(run_end, end)) {
		qcow2_l2_get(h, ml->l2, qcow2_l2_index(h, pos), &word, &bitmap);
		if (qcow2_l2e_decode(h, word, bitmap, ml->file_size, &e)) {
			qc_err("%s: the L2 entry of guest offset 0x%llx is invalid: 0x%016llx",
			       qc_disp(ml->l), pos, word);
			return -EINVAL;
		}
		sc = qcow2_subcluster_index(h, pos);
		t = qcow2_l2e_subcluster_type(h, &e, sc);
		if (t == QCOW2_SUBCLUSTER_INVALID) {
			qc_err("%s: the L2 entry of guest offset 0x%llx is invalid: 0x%016llx 0x%016llx",
			       qc_disp(ml->l), pos, word, bitmap);
			return -EINVAL;
		}
		this = qc_map_sc_status(t);
		host = e.host_offset + qcow2_offset_in_cluster(h, pos);
		if (pos == off) {
			*st = this;
			*map = this & QC_ST_OFFSET ? host : 0;
		} else if (this != *st || (this & QC_ST_OFFSET &&
					   host != *map + (pos - off))) {
			break;
		}
		run_end = pos - qcow2_offset_in_cluster(h, pos);
		if (t == QCOW2_SUBCLUSTER_COMPRESSED)
			run_end += h->cluster_size;
		else
			run_end += (u64)(sc + qcow2_l2e_subcluster_run(h, &e, sc)) <<
				   h->subcluster_bits;
	}
	*pnum = pos - off;
	return 0;
}

/*
 * What layer @d says of [@off, @off + @bytes), as QEMU's block layer asks
 * a node: @file is the layer whose file holds the bytes at @map.
 */
static int qc_map_layer_status(struct qc_map *m, unsigned int d, u64 off,
			       u64 bytes, unsigned int *st, u64 *map,
			       unsigned int *file, u64 *pnum)
{
	struct qc_map_layer *ml = &m->ml[d];
	u64 fpnum;
	unsigned int fst;
	int ret;

	bytes = min(bytes, ml->size - off);
	*file = d;
	if (!ml->l->qi) {
		*st = qc_file_status(ml->l->fd, ml->file_size, off, bytes, pnum) |
			QC_ST_OFFSET | QC_ST_ALLOCATED;
		*map = off;
		return 0;
	}
	ret = qc_map_qcow2(ml, off, bytes, st, map, pnum);
	if (ret)
		return ret;
	if (*st & (QC_ST_DATA | QC_ST_ZERO))
		*st |= QC_ST_ALLOCATED;
	else if (d + 1 == m->nr || off >= m->ml[d + 1].size)
		*st |= QC_ST_ZERO;
	if (ml->prealloc && (*st & QC_ST_DATA) && !(*st & QC_ST_ZERO) &&
	    (*st & QC_ST_OFFSET)) {
		fst = qc_file_status(ml->l->fd, ml->file_size, *map, *pnum,
				     &fpnum);
		*st |= fst & QC_ST_ZERO;
		*pnum = fpnum;
	}
	return 0;
}

/* The run at @off, asking the layers top down (qemu-img map's loop). */
static int qc_map_status(struct qc_map *m, u64 off, u64 bytes,
			 struct qc_extent *e)
{
	unsigned int d, st = 0, file = 0;
	u64 map = 0, pnum = bytes;
	int ret;

	for (d = 0; d < m->nr; d++) {
		ret = qc_map_layer_status(m, d, off, bytes, &st, &map, &file,
					  &pnum);
		if (ret)
			return ret;
		bytes = pnum;
		if (st & (QC_ST_DATA | QC_ST_ZERO))
			break;
	}
	if (d == m->nr) {	/* nothing answered (not reached: see above) */
		d = m->nr - 1;
		st = 0;
	}
	*e = (struct qc_extent) {
		.start = off,
		.length = pnum,
		.depth = d,
		.present = st & QC_ST_ALLOCATED,
		.zero = st & QC_ST_ZERO,
		.data = st & QC_ST_DATA,
		.has_offset = st & QC_ST_OFFSET,
		.offset = st & QC_ST_OFFSET ? map : 0,
		.file = st & QC_ST_OFFSET ? file : 0,
	};
	return 0;
}

static bool qc_extent_mergeable(const struct qc_extent *a,
				const struct qc_extent *b)
{
	if (!a->length || a->zero != b->zero || a->data != b->data ||
	    a->depth != b->depth || a->present != b->present ||
	    a->has_offset != b->has_offset)
		return false;
	if (a->has_offset &&
	    (a->file != b->file || a->offset + a->length != b->offset))
		return false;
	return true;
}

static void qc_extent_json(const struct qc_extent *e, bool last)
{
	printf("{ \"start\": %llu, \"length\": %llu, \"depth\": %u, ",
	       e->start, e->length, e->depth);
	printf("\"present\": %s, \"zero\": %s, \"data\": %s",
	       e->present ? "true" : "false", e->zero ? "true" : "false",
	       e->data ? "true" : "false");
	if (e->has_offset)
		printf(", \"offset\": %llu", e->offset);
	printf(last ? "}" : "},\n");
}

/* Human output: one line per run of stored data; 1 on a run it cannot show. */
static int qc_extent_text(struct qc_map *m, const struct qc_extent *e)
{
	if (e->data && !e->has_offset) {
		qc_err("%s: guest offset 0x%llx is in a compressed cluster, which has no offset to show (use --json)",
		       m->image, e->start);
		return 1;
	}
	if (e->data && !e->zero)
		printf("%#-16llx%#-16llx%#-16llx%s\n", e->start, e->length,
		       e->offset, m->ml[e->file].l->path);
	return 0;
}

static int qc_map_run(struct qc_map *m, bool json)
{
	struct qc_extent cur = {}, next;
	u64 length = m->ml[0].size;
	int ret;

	if (json)
		putchar('[');
	else
		printf("%-16s%-16s%-16s%s\n", "Offset", "Length", "Mapped to",
		       "File");
	while (cur.start + cur.length < length) {
		u64 off = cur.start + cur.length;

		ret = qc_map_status(m, off, length - off, &next);
		if (ret)
			return ret;
		if (qc_extent_mergeable(&cur, &next)) {
			cur.length += next.length;
			continue;
		}
		if (cur.length) {
			if (json)
				qc_extent_json(&cur, false);
			else if (qc_extent_text(m, &cur))
				return -EINVAL;
		}
		cur = next;
	}
	if (json) {
		/* an empty disk gets one empty run, as from qemu-img */
		qc_extent_json(&cur, true);
		printf("]\n");
	} else if (cur.length && qc_extent_text(m, &cur)) {
		return -EINVAL;
	}
	return 0;
}

int cmd_map(const struct qc_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "force-share", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct qc_map m = {};
	bool json = false, force_share = false;
	unsigned int i;
	int c, ret, status = QC_EXIT_FAIL;

	optind = 0;
	while ((c = getopt_long(argc, argv, "jUh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'U':
			force_share = true;
			break;
		case 'h':
			qc_cmd_usage(cmd, stdout);
			return QC_EXIT_OK;
		default:
			return qc_usage_error(cmd, NULL);
		}
	}
	if (argc - optind != 1)
		return qc_usage_error(cmd, argc == optind ? "missing IMAGE" :
				      "too many arguments");
	m.image = argv[optind];

	if (qc_chain_open(&m.ch, m.image, true, force_share))
		return QC_EXIT_FAIL;
	m.nr = m.ch.nr;
	for (i = 0; i < m.nr; i++) {
		ret = qc_map_layer_init(&m.ml[i], &m.ch.l[i]);
		if (ret) {
			qc_err("%s: %s", qc_disp(&m.ch.l[i]), strerror(-ret));
			goto out;
		}
	}
	if (!qc_map_run(&m, json))
		status = QC_EXIT_OK;
	if (fflush(stdout) || ferror(stdout)) {
		qc_err("write error on standard output");
		status = QC_EXIT_FAIL;
	}
out:
	for (i = 0; i < m.nr; i++) {
		free(m.ml[i].l1);
		free(m.ml[i].l2);
	}
	qc_chain_free(&m.ch);
	return status;
}
