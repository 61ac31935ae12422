// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl attach: check an image, resolve and open its backing chain, and
 * hand the open files to the module in one QCOW_CTL_ATTACH call.
 *
 * The module never opens a path named inside an image and never guesses a
 * format (Documentation/ioctl-abi.rst).  Both happen here, in the tool:
 *   - a backing file name is resolved relative to the directory of the
 *     image that names it (as QEMU does); an absolute name is used as is;
 *   - the backing-format extension says "qcow2" or "raw"; when an image has
 *     none, the backing file's first four bytes decide (the qcow2 magic
 *     means qcow2, anything else raw).  This probe exists only in qcowctl.
 * Every image of the chain is decoded by the format core before the module
 * sees it, so most problems are reported here with the offending field
 * named, without a trip to the kernel log.
 *
 * The device is the lowest free /dev/qcowN, which the module picks, or
 * the one named with --device (QCOW_ATTACH_INDEX), as losetup picks a loop
 * device; `attach -f` alone prints the lowest free one (dev.c).
 *
 * Each file is locked the way QEMU locks it (lock.h) right after it is
 * opened and before a byte of it is read: the top image for read-write or
 * read-only use, backing files as backing files.  The locks live on the
 * open files the module keeps, so they hold until detach; while they do,
 * QEMU refuses to write the image (or any backing file), and qcowctl
 * refuses an image QEMU or another qcow device is writing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/qcow.h>

#include "lock.h"
#include "qcowctl.h"

/* The L2 cache budget the module accepts (Documentation/ioctl-abi.rst). */
#define QC_CACHE_MIN		(64ULL << 10)
#define QC_CACHE_MAX		BIT_ULL(30)

const char *qc_disp(const struct qc_layer *l)
{
	return l->disp ? l->disp : l->path;
}

static void qc_layer_free(struct qc_layer *l)
{
	if (l->qi)
		qc_image_close(l->qi);	/* closes l->fd */
	else if (l->fd >= 0)
		close(l->fd);
	free(l->path);
	free(l->disp);
	memset(l, 0, sizeof(*l));
	l->fd = -1;
}

void qc_chain_free(struct qc_chain *ch)
{
	unsigned int i;

	for (i = 0; i < ch->nr; i++)
		qc_layer_free(&ch->l[i]);
	ch->nr = 0;
}

/* @name relative to the directory of @parent, unless it is absolute. */
static char *qc_backing_path(const char *parent, const char *name)
{
	const char *slash = strrchr(parent, '/');
	char *path;
	int dirlen;

	if (name[0] == '/' || !slash)
		return strdup(name);
	dirlen = (int)(slash - parent);
	if (asprintf(&path, "%.*s/%s", dirlen, parent, name) < 0)
		return NULL;
	return path;
}

static int qc_layer_set_identity(struct qc_layer *l)
{
	struct stat st;

	if (fstat(l->fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	return 0;
}

/* The qcow2 magic at offset 0 means qcow2; anything else is raw. */
static int qc_probe_format(int fd, u32 *format)
{
	__be32 magic;
	int ret;

	ret = qc_pread_full(fd, &magic, sizeof(magic), 0);
	if (ret == -EIO) {
		*format = QCOW_FMT_RAW;	/* shorter than a magic */
		return 0;
	}
	if (ret)
		return ret;
	*format = be32_to_cpu(magic) == QCOW2_MAGIC ? QCOW_FMT_QCOW2 :
						      QCOW_FMT_RAW;
	return 0;
}

/*
 * The kernel validates the snapshot table at attach; validate it here first
 * with the same format code, so the user gets the field named.
 */
static int qc_check_snapshots(struct qc_layer *l)
{
	struct qc_snapshots sns;
	int ret;

	ret = qc_image_read_snapshots(l->qi, &sns);
	if (!ret)
		qc_snapshots_free(&sns);
	return ret;
}

static int qc_check_data_file(const struct qc_layer *l)
{
	if (!(l->qi->img.hdr.incompatible_features & QCOW2_INCOMPAT_DATA_FILE))
		return 0;
	qc_err("%s: incompatible_features: images with an external data file cannot be attached",
	       qc_disp(l));
	return -EOPNOTSUPP;
}

/*
 * Take the image locks of layer @l of @ch (lock.h).  Messages name @image,
 * the image the user asked for, and for a backing file the file itself and
 * the layer that names it.
 */
static int qc_layer_lock(const struct qc_chain *ch, const struct qc_layer *l,
			 const char *image)
{
	const bool top = l == &ch->l[0];
	enum qc_lock_use use = !top ? QC_LOCK_BACKING :
			       ch->read_only ? QC_LOCK_READ_ONLY :
			       QC_LOCK_READ_WRITE;
	struct qc_lock_perms p, ro;
	const char *hint = "";
	char *what = NULL;
	int ret, byte, unused;

	qc_lock_perms_for(use, ch->force_share, &p);
	ret = qc_lock_take(l->fd, &p, &byte);
	if (!ret)
		return 0;

	if (top)
		what = strdup("image");
	else if (asprintf(&what, "backing file %s (named by %s)", qc_disp(l),
			  qc_disp(l - 1)) < 0)
		what = NULL;
	if (ret == -EAGAIN && !ch->force_share) {
		/* would a read-only attach get along with the other user? */
		qc_lock_perms_for(QC_LOCK_READ_ONLY, false, &ro);
		if (use == QC_LOCK_READ_WRITE &&
		    !qc_lock_check(l->fd, &ro, &unused))
			hint = "; use -r to attach read-only";
		else
			hint = "; use -r -U to attach read-only anyway";
	}
	if (ret == -EAGAIN)
		qc_err("%s: %s is in use: another process or qcow device has it %s (lock byte %d)%s",
		       image, what ? what : "backing file", qc_lock_byte_str(byte),
		       byte, hint);
	else if (ret == -EBUSY)
		qc_err("%s: %s is in use: another process holds an exclusive lock on byte %d",
		       image, what ? what : "backing file", byte);
	else
		qc_err("%s: cannot lock the %s: %s", image,
		       what ? what : "backing file", strerror(-ret));
	free(what);
	return ret;
}

/* What a read-write attach refuses in the top image's header. */
static int qc_check_writable(const struct qc_layer *l)
{
	u64 incompat = l->qi->img.hdr.incompatible_features;

	if (incompat & QCOW2_INCOMPAT_CORRUPT) {
		qc_err("%s: incompatible_features: the image is marked corrupt; attach it read-only with -r, or repair it first with 'qemu-img check -r all'",
		       qc_disp(l));
		return -EUCLEAN;
	}
	if (incompat & QCOW2_INCOMPAT_DIRTY) {
		qc_err("%s: incompatible_features: the dirty bit is set (its last writer did not close it cleanly, refcounts may be stale); run 'qemu-img check -r all' on it first, or attach read-only with -r",
		       qc_disp(l));
		return -EUCLEAN;
	}
	return 0;
}

/*
 * Open the backing file named by the last layer of @ch and append it.
 * Messages name @image, the image the user asked for, and the layer that
 * names the file.
 */
static int qc_chain_add_backing(struct qc_chain *ch, const char *image)
{
	const struct qc_layer *parent = &ch->l[ch->nr - 1];
	const struct qcow2_extensions *ext = &parent->qi->img.ext;
	struct qc_layer *l = &ch->l[ch->nr];
	unsigned int i;
	char *fmt;
	int ret;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (ext->has_backing_format) {
		if (!strcmp(ext->backing_format, "qcow2")) {
			l->format = QCOW_FMT_QCOW2;
		} else if (!strcmp(ext->backing_format, "raw")) {
			l->format = QCOW_FMT_RAW;
		} else {
			fmt = qc_escape(ext->backing_format);
			qc_err("%s: unsupported backing format %s (named by %s; qcow2 and raw are)",
			       image, fmt ? fmt : "?", qc_disp(parent));
			free(fmt);
			return -EOPNOTSUPP;
		}
	}
	l->path = qc_backing_path(parent->path, ext->backing_file);
	if (!l->path) {
		qc_err("%s: %s", image, strerror(ENOMEM));
		return -ENOMEM;
	}
	l->disp = qc_escape(l->path);
	/* the chain owns l from here: qc_chain_free() undoes it */
	ch->nr++;

	l->fd = open(l->path, O_RDONLY | O_CLOEXEC);
	if (l->fd < 0) {
		ret = -errno;
		qc_err("%s: backing file %s (named by %s): %s", image,
		       qc_disp(l), qc_disp(parent), strerror(-ret));
		return ret;
	}
	ret = qc_layer_set_identity(l);
	if (ret) {
		qc_err("%s: backing file %s (named by %s): %s", image,
		       qc_disp(l), qc_disp(parent), ret == -EINVAL ?
		       "not a regular file or block device" : strerror(-ret));
		return ret;
	}
	for (i = 0; i + 1 < ch->nr; i++) {
		if (ch->l[i].dev == l->dev && ch->l[i].ino == l->ino) {
			qc_err("%s: backing chain loops: %s is already in the chain (named by %s)",
			       image, qc_disp(l), qc_disp(parent));
			return -ELOOP;
		}
	}
	ret = qc_layer_lock(ch, l, image);
	if (ret)
		return ret;
	if (!ext->has_backing_format) {
		ret = qc_probe_format(l->fd, &l->format);
		if (ret) {
			qc_err("%s: backing file %s (named by %s): read: %s",
			       image, qc_disp(l), qc_disp(parent),
			       strerror(-ret));
			return ret;
		}
	}
	if (l->format == QCOW_FMT_QCOW2) {
		l->qi = qc_image_open_fd(l->path, l->fd);
		if (!l->qi) {
			l->fd = -1;	/* closed by qc_image_open_fd() */
			return -EINVAL;
		}
		ret = qc_check_data_file(l);
		if (ret)
			return ret;
		ret = qc_check_snapshots(l);
		if (ret)
			return ret;
	}
	return 0;
}

/* Open the top image read-write unless @ch->read_only. */
static int qc_top_open(const struct qc_chain *ch, struct qc_layer *top)
{
	int err;

	top->fd = open(top->path, (ch->read_only ? O_RDONLY : O_RDWR) |
		       O_CLOEXEC);
	if (top->fd >= 0)
		return 0;
	err = errno;
	if (!ch->read_only && (err == EACCES || err == EPERM ||
			       err == EROFS || err == ETXTBSY))
		qc_err("%s: the image is not writable (%s); use -r to attach read-only",
		       qc_disp(top), strerror(err));
	else
		qc_err("%s: %s", qc_disp(top), strerror(err));
	return -err;
}

/**
 * qc_chain_open() - open an image and its backing chain, locked
 * @ch: filled in; release with qc_chain_free()
 * @image: the top image
 * @read_only: open and lock the top image read-only (else read-write)
 * @force_share: lock sharing every permission (-U, read-only only)
 *
 * Backing files are found and their formats decided as described at the
 * top of this file; every layer is decoded by the format core.
 *
 * Return: 0, or a negative errno after one line on stderr (@ch is empty).
 */
int qc_chain_open(struct qc_chain *ch, const char *image, bool read_only,
		  bool force_share)
{
	struct qc_layer *top = &ch->l[0];
	int ret;

	memset(ch, 0, sizeof(*ch));
	ch->read_only = read_only;
	ch->force_share = force_share;
	top->fd = -1;
	top->path = strdup(image);
	if (!top->path) {
		qc_err("%s: %s", image, strerror(ENOMEM));
		return -ENOMEM;
	}
	top->disp = qc_escape(image);
	top->format = QCOW_FMT_QCOW2;
	ch->nr = 1;
	ret = qc_top_open(ch, top);
	if (ret)
		goto fail;
	ret = qc_layer_set_identity(top);
	if (ret) {
		qc_err("%s: %s", qc_disp(top), ret == -EINVAL ?
		       "not a regular file or block device" : strerror(-ret));
		goto fail;
	}
	/* locked before the first read: nobody writes what is checked */
	ret = qc_layer_lock(ch, top, qc_disp(top));
	if (ret)
		goto fail;
	top->qi = qc_image_open_fd(top->path, top->fd);
	if (!top->qi) {
		top->fd = -1;	/* closed by qc_image_open_fd() */
		ret = -EINVAL;
		goto fail;
	}
	ret = qc_check_data_file(top);
	if (ret)
		goto fail;
	if (!read_only) {
		ret = qc_check_writable(top);
		if (ret)
			goto fail;
	}
	ret = qc_check_snapshots(top);
	if (ret)
		goto fail;

	for (;;) {
		const struct qc_layer *last = &ch->l[ch->nr - 1];

		if (last->format != QCOW_FMT_QCOW2 ||
		    !last->qi->img.ext.has_backing_file)
			break;
		if (ch->nr == QCOW_MAX_LAYERS) {
			qc_err("%s: backing chain deeper than %u layers",
			       qc_disp(top), QCOW_MAX_LAYERS);
			ret = -E2BIG;
			goto fail;
		}
		ret = qc_chain_add_backing(ch, qc_disp(top));
		if (ret)
			goto fail;
	}
	return 0;

fail:
	qc_chain_free(ch);
	return ret;
}

/* The device asked for with --device: can the loaded module give it? */
static int qc_check_index(const struct qcow_features *f, unsigned int idx)
{
	if (!(f->features & QCOW_FEAT_ATTACH_INDEX)) {
		qc_err("/dev/qcow%u: the loaded qcow module cannot attach at a chosen device (no QCOW_FEAT_ATTACH_INDEX); leave out the device",
		       idx);
		return -EOPNOTSUPP;
	}
	if (idx >= f->max_devices) {
		qc_err("/dev/qcow%u: out of range: the module has /dev/qcow0 to /dev/qcow%u (module parameter max_devices=%u)",
		       idx, f->max_devices - 1, f->max_devices);
		return -EINVAL;
	}
	return 0;
}

/* Refuse what the loaded module says it cannot do, before asking it. */
static int qc_check_features(const struct qc_chain *ch,
			     const struct qcow_features *f, bool read_only,
			     const char *image)
{
	unsigned int i;

	if (!(f->features & QCOW_FEAT_READ)) {
		qc_err("%s: the loaded qcow module cannot attach images (no QCOW_FEAT_READ)",
		       image);
		return -EOPNOTSUPP;
	}
	if (!read_only && !(f->features & QCOW_FEAT_WRITE)) {
		qc_err("%s: read-write attach is not supported yet (the write path has not landed); use -r to attach read-only",
		       image);
		return -EOPNOTSUPP;
	}
	if (ch->nr > 1 && !(f->features & QCOW_FEAT_BACKING)) {
		qc_err("%s: the loaded qcow module does not support backing files",
		       image);
		return -EOPNOTSUPP;
	}
	for (i = 0; i < ch->nr; i++) {
		const struct qc_layer *l = &ch->l[i];
		const struct qcow2_header *h;

		if (!l->qi)
			continue;
		h = &l->qi->img.hdr;
		if ((h->version == 2 && !(f->features & QCOW_FEAT_FORMAT_V2)) ||
		    (h->version == 3 && !(f->features & QCOW_FEAT_FORMAT_V3))) {
			qc_err("%s: version: the loaded qcow module does not support qcow2 version %u",
			       qc_disp(l), h->version);
			return -EOPNOTSUPP;
		}
		if (h->extended_l2 && !(f->features & QCOW_FEAT_EXTENDED_L2)) {
			qc_err("%s: incompatible_features: the loaded qcow module does not support extended L2 entries",
			       qc_disp(l));
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* One line for a failed QCOW_CTL_ATTACH; @a as it was passed. */
static void qc_attach_error(const char *image, const struct qcow_attach *a,
			    int err)
{
	if (err == EBUSY && (a->flags & QCOW_ATTACH_INDEX)) {
		qc_err("/dev/qcow%u is already attached ('qcowctl list' shows to what); pick another device, or leave out the device to get a free one",
		       a->index);
		return;
	}
	switch (err) {
	case EINVAL:
		qc_err("%s: the kernel refused the image (see dmesg)", image);
		break;
	case EOPNOTSUPP:
		qc_err("%s: the kernel does not support this image (see dmesg)",
		       image);
		break;
	case ELOOP:
		qc_err("%s: the kernel found the same file twice in the backing chain (see dmesg)",
		       image);
		break;
	case E2BIG:
		qc_err("%s: backing chain deeper than the kernel accepts (%u layers)",
		       image, QCOW_MAX_LAYERS);
		break;
	case ENOSPC:
		qc_err("%s: no free qcow device (max_devices reached)", image);
		break;
	case EBUSY:
		qc_err("%s: the kernel says the device or image is busy (EBUSY)",
		       image);
		break;
	case EPERM:
	case EACCES:
		qc_err("%s: attaching needs root (CAP_SYS_ADMIN)", image);
		break;
	case ENOTTY:
		qc_err("%s: the loaded qcow module does not know QCOW_CTL_ATTACH (qcowctl built for ABI %u)",
		       image, QCOW_ABI_VERSION);
		break;
	default:
		qc_err("%s: QCOW_CTL_ATTACH: %s", image, strerror(err));
		break;
	}
}

/* --cache-size: QC_EXIT_OK, or QC_EXIT_USAGE after saying why. */
static int qc_parse_cache_size(const struct qc_cmd *cmd, const char *arg,
			       u64 *size)
{
	if (qc_parse_size(arg, size))
		return qc_usage_error(cmd, "invalid cache size '%s' (want N, NK, NM or NG)",
				      arg);
	if (*size && (*size < QC_CACHE_MIN || *size > QC_CACHE_MAX))
		return qc_usage_error(cmd, "cache size '%s' out of range 64K..1G",
				      arg);
	return QC_EXIT_OK;
}

/*
 * __lock-test: hold the chain's locks until standard input reaches its end.
 * Prints "locked" once they are held.  Used by tests/userspace/run.sh to
 * check the locks against qemu-io and qemu-nbd without the module.
 */
static int qc_hold_locks(void)
{
	char buf[256];
	ssize_t n;

	printf("locked\n");
	if (fflush(stdout) || ferror(stdout)) {
		qc_err("write error on standard output");
		return QC_EXIT_FAIL;
	}
	do {
		n = read(STDIN_FILENO, buf, sizeof(buf));
	} while (n > 0 || (n < 0 && errno == EINTR));
	return n < 0 ? QC_EXIT_FAIL : QC_EXIT_OK;
}

/* attach -f without IMAGE: print the device the next attach gets. */
static int qc_print_free_device(void)
{
	unsigned int idx;

	if (qc_free_device(&idx))
		return QC_EXIT_FAIL;
	printf("/dev/qcow%u\n", idx);
	if (fflush(stdout) || ferror(stdout)) {
		qc_err("write error on standard output");
		return QC_EXIT_FAIL;
	}
	return QC_EXIT_OK;
}

/* attach, or with @hold the hidden __lock-test (qc_hold_locks()) */
static int qc_attach(const struct qc_cmd *cmd, int argc, char **argv,
		     bool hold)
{
	enum { OPT_CACHE_SIZE = 0x100, OPT_SHOW };
	static const struct option opts[] = {
		{ "read-only", no_argument, NULL, 'r' },
		{ "force-share", no_argument, NULL, 'U' },
		{ "partscan", no_argument, NULL, 'P' },
		{ "cache-size", required_argument, NULL, OPT_CACHE_SIZE },
		{ "find", no_argument, NULL, 'f' },
		{ "device", required_argument, NULL, 'd' },
		{ "show", no_argument, NULL, OPT_SHOW },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct qcow_layer_desc descs[QCOW_MAX_LAYERS - 1] = {};
	struct qcow_attach a = {};
	struct qcow_features f;
	struct qc_chain ch;
	const char *image, *device = NULL;
	bool read_only = false, force_share = false, find = false;
	u64 cache_size = 0;
	int c, ret, ctl, nr_args;
	unsigned int i, idx = 0;

	optind = 0;
	/* ':' first: a missing SIZE is reported as such, not as '?' */
	while ((c = getopt_long(argc, argv, ":rUPfd:h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			read_only = true;
			break;
		case 'U':
			force_share = true;
			break;
		case 'P':
			a.flags |= QCOW_ATTACH_PARTSCAN;
			break;
		case OPT_CACHE_SIZE:
			ret = qc_parse_cache_size(cmd, optarg, &cache_size);
			if (ret)
				return ret;
			break;
		case 'f':
			find = true;
			break;
		case 'd':
			device = optarg;
			break;
		case OPT_SHOW:
			break;	/* losetup's: the device is always printed */
		case 'h':
			qc_cmd_usage(cmd, stdout);
			return QC_EXIT_OK;
		case ':':
			return qc_usage_error(cmd, "option '%s' needs an argument",
					      argv[optind - 1]);
		default:
			return qc_usage_error(cmd, NULL);
		}
	}
	nr_args = argc - optind;
	/* losetup's order: "attach /dev/qcow3 disk.qcow2" is --device */
	if (nr_args == 2 && !device && !hold &&
	    qc_parse_dev_name(argv[optind], &idx)) {
		device = argv[optind++];
		nr_args--;
	}
	if (nr_args > 1)
		return qc_usage_error(cmd, "too many arguments");
	if (hold && (find || device))
		return qc_usage_error(cmd, "-f and -d are for attach");
	if (find && device)
		return qc_usage_error(cmd, "-f/--find and a device exclude each other");
	if (device && !qc_parse_dev_name(device, &idx))
		return qc_usage_error(cmd,
				      "'%s' is not a qcow device name (/dev/qcowN, qcowN or N)",
				      device);
	if (!nr_args && find)
		return qc_print_free_device();
	if (!nr_args)
		return qc_usage_error(cmd, "missing IMAGE");
	/* as qemu-img: sharing a disk that is written is for readers only */
	if (force_share && !read_only)
		return qc_usage_error(cmd, "-U/--force-share is only allowed with -r/--read-only");
	image = argv[optind];
	if (device) {
		a.flags |= QCOW_ATTACH_INDEX;
		a.index = idx;
		/* before the image is opened and locked: the cheap refusal */
		if (qc_device_exists(idx)) {
			qc_attach_error(image, &a, EBUSY);
			return QC_EXIT_FAIL;
		}
	}

	if (qc_chain_open(&ch, image, read_only, force_share))
		return QC_EXIT_FAIL;
	if (hold) {
		ret = qc_hold_locks();
		goto out_chain;
	}

	ret = QC_EXIT_FAIL;
	ctl = qc_ctl_open();
	if (ctl < 0)
		goto out_chain;
	if (qc_ctl_get_features(ctl, &f))
		goto out_ctl;
	if (qc_check_features(&ch, &f, read_only, qc_disp(&ch.l[0])))
		goto out_ctl;
	if ((a.flags & QCOW_ATTACH_INDEX) && qc_check_index(&f, a.index))
		goto out_ctl;

	if (read_only)
		a.flags |= QCOW_ATTACH_READ_ONLY;
	/* the module keeps these open files, and with them their locks */
	a.image_fd = ch.l[0].fd;
	a.cache_size = cache_size;
	a.nr_layers = ch.nr - 1;
	for (i = 1; i < ch.nr; i++) {
		descs[i - 1].fd = ch.l[i].fd;
		descs[i - 1].format = ch.l[i].format;
	}
	a.layers = (uintptr_t)descs;
	if (ioctl(ctl, QCOW_CTL_ATTACH, &a) < 0) {
		qc_attach_error(qc_disp(&ch.l[0]), &a, errno);
		goto out_ctl;
	}

	printf("/dev/qcow%u\n", a.index);
	if (fflush(stdout) || ferror(stdout))
		qc_err("write error on standard output (attached /dev/qcow%u)",
		       a.index);
	else
		ret = QC_EXIT_OK;

out_ctl:
	close(ctl);
out_chain:
	qc_chain_free(&ch);
	return ret;
}

int cmd_attach(const struct qc_cmd *cmd, int argc, char **argv)
{
	return qc_attach(cmd, argc, argv, false);
}

/*
 * qcowctl __lock-test [-r [-U]] IMAGE: not in the help on purpose.  Opens
 * and locks IMAGE and its backing chain exactly as attach does, prints
 * "locked", and holds the locks until its standard input is closed.
 */
int cmd_lock_test(const struct qc_cmd *cmd, int argc, char **argv)
{
	return qc_attach(cmd, argc, argv, true);
}
