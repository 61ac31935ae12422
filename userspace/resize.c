// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl resize DEV [SIZE]: grow an attached disk online through the
 * QCOW_RESIZE ioctl on /dev/qcowN (include/uapi/linux/qcow.h).  The module
 * grows (and moves) the L1 table when it must, switches to the new size
 * in one header write and announces the new capacity (a uevent with
 * RESIZE=1); `qemu-img info` reads the new size after detach.
 *
 * Without SIZE the command prints the current virtual size in bytes.
 * Shrinking is refused, as the module offers none: a file system on the
 * disk would lose its tail, and qemu-img needs --shrink for it too.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/qcow.h>

#include "qcowctl.h"

#define QC_SECTOR	512U

/*
 * SIZE of the command line: bytes with an optional K, M, G or T suffix
 * (powers of 1024, as qemu-img takes them), or +SIZE to grow by that much.
 * Return: -1 to go on, else the exit status of a usage error.
 */
static int qc_resize_parse(const struct qc_cmd *cmd, const char *arg,
			   u64 *size, bool *relative)
{
	const char *s = arg;
	int err;

	*relative = *s == '+';
	if (*relative)
		s++;
	err = qc_parse_size(s, size);
	if (err == -ERANGE)
		return qc_usage_error(cmd, "size '%s' is too large", arg);
	if (err)
		return qc_usage_error(cmd, "invalid size '%s' (want N[K|M|G|T], or +N to grow)",
				      arg);
	if (*size % QC_SECTOR)
		return qc_usage_error(cmd, "size '%s' is not a multiple of 512 bytes",
				      arg);
	return -1;
}

/*
 * Does the loaded module grant QCOW_FEAT_RESIZE?  Asked quietly: this only
 * decides how an ENOTTY is worded.  Return: 1, 0, or -1 (cannot tell).
 */
static int qc_resize_supported(void)
{
	struct qcow_features f;
	int fd, ret = -1;

	fd = open("/dev/" QCOW_CTRL_DEV_NAME, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	memset(&f, 0, sizeof(f));
	if (!ioctl(fd, QCOW_CTL_GET_FEATURES, &f))
		ret = !!(f.features & QCOW_FEAT_RESIZE);
	close(fd);
	return ret;
}

/* One line on stderr for a failed QCOW_RESIZE from @cur to @size bytes. */
static void qc_resize_report(const struct qc_devfd *d, u64 cur, u64 size,
			     int err)
{
	u64 cluster;

	switch (err) {
	case EINVAL:
		if (size < cur) {
			qc_err("%s: shrinking is not supported (the disk has %llu bytes, %llu asked)",
			       d->path, cur, size);
		} else if (size % QC_SECTOR) {
			qc_err("%s: %llu bytes is not a multiple of 512", d->path,
			       size);
		} else if (!qc_sysfs_u64(d->idx, "cluster_size", &cluster)) {
			qc_err("%s: %llu bytes is more than an image with %llu-byte clusters can address",
			       d->path, size, cluster);
		} else {
			qc_err("%s: QCOW_RESIZE to %llu bytes: %s", d->path,
			       size, strerror(err));
		}
		break;
	case EOPNOTSUPP:
		qc_err("%s: a version 2 image with snapshots cannot be resized (QEMU refuses it too)",
		       d->path);
		break;
	case EROFS:
		qc_err("%s: attached read-only; resizing needs a read-write attach",
		       d->path);
		break;
	case EPERM:
	case EACCES:
		qc_err("%s: resizing needs root (CAP_SYS_ADMIN)", d->path);
		break;
	case ENOSPC:
		qc_err("%s: no space for the larger L1 table: the file system holding the image is full",
		       d->path);
		break;
	case ENXIO:
		qc_err("%s: the device is being detached", d->path);
		break;
	case EIO:
		qc_err("%s: QCOW_RESIZE: I/O error, or the image is corrupt or stopped (the kernel log says more)",
		       d->path);
		break;
	case ENOTTY:
		if (qc_resize_supported() == 0) {
			qc_err("%s: the loaded qcow module cannot resize disks (no QCOW_FEAT_RESIZE)",
			       d->path);
			break;
		}
		fallthrough;
	default:
		qc_err("%s: QCOW_RESIZE: %s", d->path, strerror(err));
		break;
	}
}

int cmd_resize(const struct qc_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct qcow_resize r;
	struct qc_devfd d;
	bool relative = false;
	u64 cur, size = 0;
	int c, err, ret;

	optind = 0;
	/* '+': "+1G" is SIZE, and an option after the operands is refused */
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		if (c == 'h') {
			qc_cmd_usage(cmd, stdout);
			return QC_EXIT_OK;
		}
		return qc_usage_error(cmd, NULL);
	}
	if (optind == argc)
		return qc_usage_error(cmd, "missing DEV");
	if (argc - optind > 2)
		return qc_usage_error(cmd, "too many arguments");
	if (argc - optind == 2) {
		ret = qc_resize_parse(cmd, argv[optind + 1], &size, &relative);
		if (ret >= 0)
			return ret;
	}

	if (qc_dev_open(argv[optind], argc - optind == 2,
			"resizing needs", &d))
		return QC_EXIT_FAIL;
	ret = QC_EXIT_FAIL;
	err = qc_sysfs_u64(d.idx, "virtual_size", &cur);
	if (err) {
		qc_err("/sys/block/qcow%u/qcow/virtual_size: %s", d.idx,
		       err == -EINVAL ? "not a number" : strerror(-err));
		goto out;
	}
	if (argc - optind == 1) {
		printf("%llu\n", cur);
		if (fflush(stdout) || ferror(stdout))
			qc_err("write error on standard output");
		else
			ret = QC_EXIT_OK;
		goto out;
	}
	if (relative) {
		if (size > U64_MAX - cur) {
			qc_err("%s: %llu + %s bytes is too large", d.path, cur,
			       argv[optind + 1] + 1);
			goto out;
		}
		size += cur;
	}

	memset(&r, 0, sizeof(r));
	r.size = size;
	if (ioctl(d.fd, QCOW_RESIZE, &r))
		qc_resize_report(&d, cur, size, errno);
	else
		ret = QC_EXIT_OK;
out:
	close(d.fd);
	return ret;
}
