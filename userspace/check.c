// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl check: find leaked clusters, refcount errors and damaged tables
 * in an image that nothing is writing, as `qemu-img check` does, with the
 * module's own format code.
 *
 * The walk (walk.c) counts what qemu-img check counts, in its order, so
 * the two agree on the numbers: corruptions (refcounts lower than the
 * references, wrong COPIED flags, damaged entries), leaks (refcounts
 * higher than the references) and check errors (refcounts that cannot be
 * read).  Exit status, as qemu-img check's:
 *
 *   0  no problem found
 *   1  the check could not complete (unreadable or unsupported image,
 *      refcounts that cannot be read, bad command line)
 *   2  corruptions found (leaks may be present too)
 *   3  leaked clusters found, and nothing else
 *
 * Problems go to stderr, one line each; the summary to stdout.  With
 * -r leaks, leaked clusters get the refcount their references call for,
 * the image is checked again and that second check is reported.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "lock.h"
#include "walk.h"

#define QC_CHECK_CLEAN		0
#define QC_CHECK_FAILED		1
#define QC_CHECK_CORRUPT	2
#define QC_CHECK_LEAKS		3

struct qc_check {
	bool json;
	bool repairing;		/* first pass of -r leaks */
	bool quiet;		/* a pass that only counts */
	struct qc_problem *problems;
	size_t nr, cap;
};

static const char *qc_sev_name(enum qc_severity sev)
{
	switch (sev) {
	case QC_SEV_CORRUPTION:
		return "corruption";
	case QC_SEV_LEAK:
		return "leak";
	case QC_SEV_CHECK_ERROR:
		return "check-error";
	case QC_SEV_WARNING:
		return "warning";
	default:
		return "overlap";
	}
}

static void qc_check_report(struct qc_walk *w, const struct qc_problem *p)
{
	struct qc_check *c = w->priv;

	if (c->quiet)
		return;
	if (c->repairing && p->sev == QC_SEV_LEAK)
		fprintf(stderr, "Repairing: %s\n", p->msg);
	else
		fprintf(stderr, "%s\n", p->msg);
	if (!c->json || c->repairing)
		return;
	if (c->nr == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 64;
		struct qc_problem *np = realloc(c->problems, cap * sizeof(*np));

		if (!np)
			return;	/* the stderr line stands */
		c->problems = np;
		c->cap = cap;
	}
	c->problems[c->nr++] = *p;
}

/**
 * qc_inspect_open() - open and lock an image for offline inspection
 * @path: the image
 * @rw: open read-write (repair); else read-only
 * @force_share: with !@rw, share every permission (qemu-img -U)
 *
 * Locks the file the way QEMU locks an image it opens for the same use
 * before reading a byte, so an image that QEMU, qemu-nbd or a qcow device
 * is writing is refused rather than checked while it changes.
 *
 * Return: the image, or NULL after one line on stderr.
 */
struct qc_image *qc_inspect_open(const char *path, bool rw, bool force_share)
{
	struct qc_lock_perms p;
	int fd, ret, byte = 0;

	fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0) {
		qc_err("%s: %s", path, strerror(errno));
		return NULL;
	}
	qc_lock_perms_for(rw ? QC_LOCK_READ_WRITE : QC_LOCK_READ_ONLY,
			  force_share, &p);
	ret = qc_lock_take(fd, &p, &byte);
	if (ret == -EAGAIN) {
		qc_err("%s: the image is in use: another process or qcow device has it %s (lock byte %d)%s",
		       path, qc_lock_byte_str(byte), byte,
		       rw ? "" : "; use -U to inspect it anyway");
	} else if (ret) {
		qc_err("%s: cannot lock the image: %s", path, strerror(-ret));
	}
	if (ret) {
		close(fd);
		return NULL;
	}
	return qc_image_open_fd(path, fd);
}

static void qc_check_json(const struct qc_check *c, const struct qc_walk *w,
			  const char *path, u64 leaks_fixed, u64 copied_fixed)
{
	struct json_writer jw;
	size_t i;

	json_init(&jw, stdout);
	json_object_begin(&jw, NULL);
	json_string(&jw, "filename", path);
	json_string(&jw, "format", "qcow2");
	json_u64(&jw, "check-errors", w->check_errors);
	json_u64(&jw, "corruptions", w->corruptions);
	json_u64(&jw, "leaks", w->leaks);
	json_u64(&jw, "corruptions-fixed", copied_fixed);
	json_u64(&jw, "leaks-fixed", leaks_fixed);
	json_u64(&jw, "image-end-offset", w->image_end_offset);
	json_u64(&jw, "total-clusters", w->total_clusters);
	json_u64(&jw, "allocated-clusters", w->allocated_clusters);
	json_u64(&jw, "fragmented-clusters", w->fragmented_clusters);
	json_u64(&jw, "compressed-clusters", w->compressed_clusters);
	json_array_begin(&jw, "problems");
	for (i = 0; i < c->nr; i++) {
		const struct qc_problem *p = &c->problems[i];

		json_object_begin(&jw, NULL);
		json_string(&jw, "severity", qc_sev_name(p->sev));
		json_string(&jw, "type", p->type);
		if (p->offset != U64_MAX)
			json_u64(&jw, "offset", p->offset);
		json_u64(&jw, "count", p->count);
		json_string(&jw, "message", p->msg);
		json_object_end(&jw);
	}
	json_array_end(&jw);
	json_object_end(&jw);
}

static void qc_check_text(const struct qc_walk *w, u64 leaks_fixed,
			  u64 copied_fixed)
{
	double alloc = w->allocated_clusters;

	if (leaks_fixed || copied_fixed)
		printf("Repaired %llu leaked clusters and %llu COPIED flags.\n",
		       leaks_fixed, copied_fixed);
	if (leaks_fixed || copied_fixed)
		printf("The repaired image, checked again:\n\n");
	if (!w->corruptions && !w->leaks && !w->check_errors) {
		printf("No errors were found on the image.\n");
	} else {
		if (w->corruptions)
			printf("\n%llu errors were found on the image.\n"
			       "Its data may be damaged, and writing to it may damage it further.\n",
			       w->corruptions);
		if (w->leaks)
			printf("\n%llu leaked clusters were found on the image.\n"
			       "They waste space in the file but do not harm data ('qcowctl check -r leaks' frees them).\n",
			       w->leaks);
		if (w->check_errors)
			printf("\n%llu clusters have unreadable refcounts.\n",
			       w->check_errors);
	}
	if (w->total_clusters && w->allocated_clusters) {
		printf("%llu/%llu = %0.2f%% allocated, ", w->allocated_clusters,
		       w->total_clusters, alloc * 100 / w->total_clusters);
		printf("%0.2f%% fragmented, %0.2f%% compressed clusters\n",
		       w->fragmented_clusters * 100 / alloc,
		       w->compressed_clusters * 100 / alloc);
	}
	printf("Image end offset: %llu\n", w->image_end_offset);
}

/* Give every leaked cluster the refcount its references call for. */
static int qc_check_fix_leaks(struct qc_walk *w, u64 *fixed)
{
	u64 k, stored, want;
	int ret;

	*fixed = 0;
	for (k = 0; k < w->nb_clusters; k++) {
		if (qc_refs_get(&w->refs, k, &stored))
			continue;
		want = qc_walk_expected(w, k);
		if (stored <= want)
			continue;
		ret = qc_refs_set(&w->refs, k, want);
		if (ret)
			return ret;
		(*fixed)++;
	}
	return qc_refs_write_back(&w->refs);
}

/*
 * Set the COPIED flag of every active L1 and L2 entry exactly when the
 * stored refcount is 1.  Called only when nothing else is wrong, so that
 * the refcounts can be trusted; each L1 entry is one 8-byte write, each
 * changed L2 table one write.
 */
static int qc_check_fix_copied(struct qc_walk *w, u64 *fixed)
{
	const struct qcow2_header *h = w->h;
	u64 *l1 = NULL, l2, rc, word, bitmap;
	struct qcow2_l2e e;
	bool dirty;
	__be64 be;
	ssize_t n;
	u32 i, j;
	int ret;

	*fixed = 0;
	ret = qc_read_l1(w, h->l1_table_offset, h->l1_size, &l1);
	if (ret)
		return ret;
	for (i = 0; i < h->l1_size; i++) {
		bool copied = l1[i] & QCOW2_OFLAG_COPIED;

		qcow2_l1e_inspect(h, l1[i], w->file_size, &l2);
		if (!l2)
			continue;
		ret = qc_refs_get(&w->refs, l2 >> h->cluster_bits, &rc);
		if (ret)
			goto out;
		if (!qc_copied_ok(copied, rc)) {
			be = cpu_to_be64(qcow2_l1e_encode(l2, rc == 1));
			n = pwrite(w->qi->fd, &be, sizeof(be),
				   h->l1_table_offset + (u64)i * sizeof(be));
			if (n != sizeof(be)) {
				ret = n < 0 ? -errno : -EIO;
				goto out;
			}
			fprintf(stderr, "Repairing: COPIED flag of L1 entry %u %s\n",
				i, rc == 1 ? "set" : "cleared");
			(*fixed)++;
		}
		ret = qc_pread_zero(w->qi->fd, w->l2buf, h->cluster_size, l2);
		if (ret)
			goto out;
		dirty = false;
		for (j = 0; j < 1U << h->l2_bits; j++) {
			qcow2_l2_get(h, w->l2buf, j, &word, &bitmap);
			qcow2_l2e_inspect(h, word, bitmap, w->file_size, &e);
			if (e.type != QCOW2_CLUSTER_NORMAL &&
			    e.type != QCOW2_CLUSTER_ZERO_ALLOC)
				continue;
			ret = qc_refs_get(&w->refs, e.host_offset >> h->cluster_bits,
					  &rc);
			if (ret)
				goto out;
			if (qc_copied_ok(e.copied, rc))
				continue;
			qcow2_l2_set(h, w->l2buf, j, word ^ QCOW2_OFLAG_COPIED,
				     bitmap);
			fprintf(stderr, "Repairing: COPIED flag of guest 0x%llx %s\n",
				qcow2_guest_offset(h, i, j),
				rc == 1 ? "set" : "cleared");
			dirty = true;
			(*fixed)++;
		}
		if (!dirty)
			continue;
		n = pwrite(w->qi->fd, w->l2buf, h->cluster_size, (off_t)l2);
		if (n < 0 || (u64)n != h->cluster_size) {
			ret = n < 0 ? -errno : -EIO;
			goto out;
		}
	}
	ret = fdatasync(w->qi->fd) ? -errno : 0;
out:
	free(l1);
	return ret;
}

/*
 * With the refcounts now consistent, clear the dirty bit (lazy refcounts)
 * and the corrupt bit, as qemu-img check -r does; a single field write,
 * after the refcount blocks reached the disk.
 */
static int qc_check_mark_clean(struct qc_image *qi)
{
	struct qcow2_header h = qi->img.hdr;
	struct qcow2_header_disk d;
	const u64 bits = QCOW2_INCOMPAT_DIRTY | QCOW2_INCOMPAT_CORRUPT;
	ssize_t n;

	if (h.version < 3 || !(h.incompatible_features & bits))
		return 0;
	h.incompatible_features &= ~bits;
	qcow2_header_encode(&h, &d);
	n = pwrite(qi->fd, &d.incompatible_features,
		   sizeof(d.incompatible_features),
		   offsetof(struct qcow2_header_disk, incompatible_features));
	if (n != sizeof(d.incompatible_features))
		return n < 0 ? -errno : -EIO;
	if (fdatasync(qi->fd))
		return -errno;
	qi->img.hdr.incompatible_features = h.incompatible_features;
	return 0;
}

static int qc_check_status(const struct qc_walk *w)
{
	if (w->check_errors)
		return QC_CHECK_FAILED;
	if (w->corruptions)
		return QC_CHECK_CORRUPT;
	return w->leaks ? QC_CHECK_LEAKS : QC_CHECK_CLEAN;
}

/* One pass: walk, report; *@w is left for the caller to free. */
static int qc_check_pass(struct qc_check *c, struct qc_walk *w,
			 struct qc_image *qi)
{
	int ret;

	ret = qc_walk_init(w, qi, true);
	if (ret)
		return ret;
	w->report = qc_check_report;
	w->priv = c;
	ret = qc_walk_run(w);
	if (ret)
		qc_err("%s: the check could not complete: %s", qi->path,
		       strerror(-ret));
	return ret;
}

int cmd_check(const struct qc_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "repair", required_argument, NULL, 'r' },
		{ "force-share", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct qc_check c = {};
	struct qc_walk w = {};
	struct qc_image *qi;
	bool repair = false, force_share = false;
	u64 fixed = 0, copied_fixed = 0;
	int opt, ret, status = QC_CHECK_FAILED;

	optind = 0;
	while ((opt = getopt_long(argc, argv, ":jr:Uh", opts, NULL)) != -1) {
		switch (opt) {
		case 'j':
			c.json = true;
			break;
		case 'r':
			if (strcmp(optarg, "leaks")) {
				qc_usage_error(cmd, "only -r leaks is supported");
				return QC_CHECK_FAILED;
			}
			repair = true;
			break;
		case 'U':
			force_share = true;
			break;
		case 'h':
			qc_cmd_usage(cmd, stdout);
			return QC_EXIT_OK;
		case ':':
			qc_usage_error(cmd, "option '%s' needs an argument",
				       argv[optind - 1]);
			return QC_CHECK_FAILED;
		default:
			qc_usage_error(cmd, NULL);
			return QC_CHECK_FAILED;
		}
	}
	/* exit status 2 means corruption here: usage errors exit 1 */
	if (argc - optind != 1) {
		qc_usage_error(cmd, argc == optind ? "missing IMAGE" :
			       "too many arguments");
		return QC_CHECK_FAILED;
	}
	if (repair && force_share) {
		qc_usage_error(cmd, "-U cannot be used with -r");
		return QC_CHECK_FAILED;
	}

	qi = qc_inspect_open(argv[optind], repair, force_share);
	if (!qi)
		return QC_CHECK_FAILED;

	if (repair) {
		c.repairing = true;
		ret = qc_check_pass(&c, &w, qi);
		if (!ret && w.rebuild) {
			qc_err("%s: the refcount structures need rebuilding, which -r leaks does not do; nothing was changed",
			       qi->path);
			ret = -EUCLEAN;
		} else if (!ret && !w.check_errors) {
			ret = qc_check_fix_leaks(&w, &fixed);
			if (ret)
				qc_err("%s: repair failed: %s", qi->path,
				       strerror(-ret));
		}
		qc_walk_free(&w);
		if (ret)
			goto out;
		/* COPIED flags, when nothing else is wrong (as qemu-img) */
		c.quiet = true;
		ret = qc_check_pass(&c, &w, qi);
		if (!ret && !w.check_errors && !w.leaks && w.copied_errors &&
		    w.corruptions == w.copied_errors) {
			ret = qc_check_fix_copied(&w, &copied_fixed);
			if (ret)
				qc_err("%s: repair failed: %s", qi->path,
				       strerror(-ret));
		}
		qc_walk_free(&w);
		if (ret)
			goto out;
		c.quiet = false;
		c.repairing = false;
	}
	ret = qc_check_pass(&c, &w, qi);
	if (ret)
		goto out_walk;
	if (repair && !w.corruptions && !w.check_errors) {
		ret = qc_check_mark_clean(qi);
		if (ret) {
			qc_err("%s: clearing the dirty bit failed: %s",
			       qi->path, strerror(-ret));
			goto out_walk;
		}
	}

	if (c.json)
		qc_check_json(&c, &w, qi->path, fixed, copied_fixed);
	else
		qc_check_text(&w, fixed, copied_fixed);
	if (fflush(stdout) || ferror(stdout)) {
		qc_err("write error on standard output");
		goto out_walk;
	}
	status = qc_check_status(&w);
	if (status == QC_CHECK_FAILED)
		qc_err("%s: the check could not complete: %llu clusters have unreadable refcounts",
		       qi->path, w.check_errors);

out_walk:
	qc_walk_free(&w);
out:
	free(c.problems);
	qc_image_close(qi);
	return status;
}
