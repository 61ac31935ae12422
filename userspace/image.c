// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl: read an image file and decode it with the format core.
 *
 * Everything that interprets image bytes is qcow2_format.c, the very code
 * the kernel module runs; this file only moves bytes from the file into
 * buffers and turns a struct qcow2_diag into the tool's one-line error.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>

#include "qcowctl.h"

/* Enough for any header plus extensions when clusters are small. */
#define QC_PROBE_LEN		4096U
/* First read of the snapshot table; it grows until the table fits. */
#define QC_SNAPSHOT_READ_MIN	(64U << 10)

/* Read exactly @len bytes at @off; -EIO on a premature end of file. */
int qc_pread_full(int fd, void *buf, size_t len, u64 off)
{
	char *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

static void qc_report_diag(const char *path, const struct qcow2_diag *diag,
			   int ret)
{
	const char *msg = diag->msg[0] ? diag->msg : strerror(-ret);

	if (diag->field)
		qc_err("%s: %s: %s", path, diag->field, msg);
	else
		qc_err("%s: %s", path, msg);
}

static int qc_file_size(struct qc_image *qi)
{
	struct stat st;
	u64 size;

	if (fstat(qi->fd, &st) < 0)
		return -errno;
	if (S_ISREG(st.st_mode)) {
		qi->file_size = st.st_size;
		return 0;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(qi->fd, BLKGETSIZE64, &size) < 0)
			return -errno;
		qi->file_size = size;
		return 0;
	}
	return -EINVAL;
}

/**
 * qc_image_open() - open an image and decode its first cluster
 * @path: image file or block device
 *
 * Return: the image, or NULL after printing one line on stderr.
 */
struct qc_image *qc_image_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		qc_err("%s: %s", path, strerror(errno));
		return NULL;
	}
	return qc_image_open_fd(path, fd);
}

/**
 * qc_image_open_fd() - decode the first cluster of an image already open
 * @path: name of the image in messages (kept, not copied)
 * @fd: file descriptor open for reading; the image owns it from now on,
 *	it is closed on failure too
 *
 * Return: the image, or NULL after printing one line on stderr.
 */
struct qc_image *qc_image_open_fd(const char *path, int fd)
{
	struct qcow2_diag diag = {};
	struct qc_image *qi;
	void *buf = NULL, *nbuf;
	size_t len;
	int ret;

	qi = calloc(1, sizeof(*qi));
	if (!qi) {
		qc_err("%s: %s", path, strerror(ENOMEM));
		close(fd);
		return NULL;
	}
	qi->path = path;
	qi->fd = fd;
	ret = qc_file_size(qi);
	if (ret == -EINVAL) {
		qc_err("%s: not a regular file or block device", path);
		goto out_close;
	} else if (ret) {
		qc_err("%s: %s", path, strerror(-ret));
		goto out_close;
	}

	/* The header says how big the first cluster is ... */
	len = min_t(u64, QC_PROBE_LEN, qi->file_size);
	buf = malloc(QC_PROBE_LEN);
	if (!buf) {
		qc_err("%s: %s", path, strerror(ENOMEM));
		goto out_close;
	}
	ret = qc_pread_full(qi->fd, buf, len, 0);
	if (ret) {
		qc_err("%s: read: %s", path, strerror(-ret));
		goto out_buf;
	}
	ret = qcow2_header_parse(buf, len, qi->file_size, &qi->img.hdr, &diag);
	if (ret && !qi->img.hdr.cluster_size) {
		qc_report_diag(path, &diag, ret);
		goto out_buf;
	}
	/*
	 * Once cluster_bits is known, qcow2_image_parse() has the final
	 * word: it sees the whole cluster and the image's feature name
	 * table (which names unknown incompatible bits).
	 */

	/* ... which holds the extensions and the backing file name. */
	len = min_t(u64, qi->img.hdr.cluster_size, qi->file_size);
	nbuf = realloc(buf, max_t(size_t, len, QC_PROBE_LEN));
	if (!nbuf) {
		qc_err("%s: %s", path, strerror(ENOMEM));
		goto out_buf;
	}
	buf = nbuf;
	ret = qc_pread_full(qi->fd, buf, len, 0);
	if (ret) {
		qc_err("%s: read: %s", path, strerror(-ret));
		goto out_buf;
	}
	memset(&diag, 0, sizeof(diag));
	ret = qcow2_image_parse(buf, len, qi->file_size, &qi->img, &diag);
	if (ret) {
		qc_report_diag(path, &diag, ret);
		goto out_buf;
	}
	free(buf);
	return qi;

out_buf:
	free(buf);
out_close:
	close(qi->fd);
	free(qi);
	return NULL;
}

void qc_image_close(struct qc_image *qi)
{
	if (!qi)
		return;
	close(qi->fd);
	free(qi);
}

/**
 * qc_image_read_snapshots() - read and decode the snapshot table
 * @qi: open image
 * @sns: filled in; release with qc_snapshots_free()
 *
 * The table's length is only known once it is parsed, so the read starts
 * small and grows (up to the format's table size limit) until
 * qcow2_snapshot_table_check() accepts it.
 *
 * Return: 0, or a negative errno after printing one line on stderr.
 */
int qc_image_read_snapshots(struct qc_image *qi, struct qc_snapshots *sns)
{
	const struct qcow2_header *h = &qi->img.hdr;
	struct qcow2_diag diag = {};
	size_t want, cap, table_len = 0, off, consumed;
	void *nbuf;
	unsigned int i;
	int ret;

	memset(sns, 0, sizeof(*sns));
	if (!h->nb_snapshots)
		return 0;
	if (h->snapshots_offset >= qi->file_size) {
		qc_err("%s: snapshots_offset: table at %llu is beyond the end of the file (%llu bytes)",
		       qi->path, h->snapshots_offset, qi->file_size);
		return -EINVAL;
	}
	cap = min_t(u64, qi->file_size - h->snapshots_offset,
		    QCOW2_MAX_SNAPSHOT_TABLE_BYTES);
	want = min_t(size_t, cap, QC_SNAPSHOT_READ_MIN);
	for (;;) {
		nbuf = realloc(sns->buf, want);
		if (!nbuf) {
			ret = -ENOMEM;
			qc_err("%s: %s", qi->path, strerror(ENOMEM));
			goto fail;
		}
		sns->buf = nbuf;
		ret = qc_pread_full(qi->fd, sns->buf, want, h->snapshots_offset);
		if (ret) {
			qc_err("%s: read snapshot table: %s", qi->path,
			       strerror(-ret));
			goto fail;
		}
		memset(&diag, 0, sizeof(diag));
		ret = qcow2_snapshot_table_check(h, sns->buf, want,
						 qi->file_size, &table_len,
						 &diag);
		if (!ret)
			break;
		if (want == cap) {
			qc_report_diag(qi->path, &diag, ret);
			goto fail;
		}
		want = min_t(size_t, cap, want * 4);
	}

	sns->sn = calloc(h->nb_snapshots, sizeof(*sns->sn));
	if (!sns->sn) {
		ret = -ENOMEM;
		qc_err("%s: %s", qi->path, strerror(ENOMEM));
		goto fail;
	}
	for (i = 0, off = 0; i < h->nb_snapshots; i++) {
		memset(&diag, 0, sizeof(diag));
		ret = qcow2_snapshot_parse(h, (u8 *)sns->buf + off,
					   table_len - off, qi->file_size,
					   &sns->sn[i], &consumed, &diag);
		if (ret) {
			qc_report_diag(qi->path, &diag, ret);
			goto fail;
		}
		off += consumed;
	}
	sns->nr = h->nb_snapshots;
	return 0;

fail:
	qc_snapshots_free(sns);
	return ret;
}

void qc_snapshots_free(struct qc_snapshots *sns)
{
	free(sns->sn);
	free(sns->buf);
	memset(sns, 0, sizeof(*sns));
}
