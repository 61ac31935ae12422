// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl detach and list, and what they share with attach and features:
 * the control device /dev/qcow-control, the attributes the module
 * publishes in /sys/block/qcowN/qcow/ (Documentation/ioctl-abi.rst), and
 * which device names are free (attach -f).
 *
 * sysfs is the only place the tool learns about devices: there is no
 * "get device info" ioctl, and none is needed.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/qcow.h>

#include "json.h"
#include "qcowctl.h"

#define QC_CTL_PATH		"/dev/" QCOW_CTRL_DEV_NAME
#define QC_SYS_BLOCK		"/sys/block"
#define QC_SYSFS_MAX		(64U << 10)

/* --- control device ---------------------------------------------------- */

/**
 * qc_ctl_open() - open /dev/qcow-control
 *
 * Return: the file descriptor, or -1 after printing one line on stderr.
 */
int qc_ctl_open(void)
{
	int fd = open(QC_CTL_PATH, O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		return fd;
	switch (errno) {
	case ENOENT:
		qc_err("the qcow module is not loaded (%s missing)", QC_CTL_PATH);
		break;
	case ENODEV:
	case ENXIO:
		qc_err("the qcow module is not loaded and could not be loaded (%s: %s)",
		       QC_CTL_PATH, strerror(errno));
		break;
	case EACCES:
	case EPERM:
		qc_err("%s: needs root (CAP_SYS_ADMIN)", QC_CTL_PATH);
		break;
	default:
		qc_err("%s: %s", QC_CTL_PATH, strerror(errno));
		break;
	}
	return -1;
}

/**
 * qc_ctl_get_features() - QCOW_CTL_GET_FEATURES
 * @fd: from qc_ctl_open()
 * @f: filled in
 *
 * Return: 0, or -1 after printing one line on stderr.
 */
int qc_ctl_get_features(int fd, struct qcow_features *f)
{
	memset(f, 0, sizeof(*f));
	if (!ioctl(fd, QCOW_CTL_GET_FEATURES, f))
		return 0;
	if (errno == EPERM)
		qc_err("%s: needs root (CAP_SYS_ADMIN)", QC_CTL_PATH);
	else
		qc_err("%s: QCOW_CTL_GET_FEATURES: %s", QC_CTL_PATH,
		       strerror(errno));
	return -1;
}

/* --- sysfs ------------------------------------------------------------- */

/*
 * /sys/block/qcowN/qcow/@attr without its trailing newline, allocated, or
 * NULL with errno set.
 */
static char *qc_sysfs_read(unsigned int idx, const char *attr)
{
	char path[PATH_MAX], *buf;
	size_t len = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), QC_SYS_BLOCK "/qcow%u/qcow/%s", idx, attr);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = malloc(QC_SYSFS_MAX + 1);
	if (!buf) {
		close(fd);
		errno = ENOMEM;
		return NULL;
	}
	while (len < QC_SYSFS_MAX) {
		n = read(fd, buf + len, QC_SYSFS_MAX - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			n = errno;
			free(buf);
			close(fd);
			errno = n;
			return NULL;
		}
		if (!n)
			break;
		len += n;
	}
	close(fd);
	if (len && buf[len - 1] == '\n')
		len--;
	buf[len] = '\0';
	return buf;
}

/**
 * qc_sysfs_u64() - a numeric attribute of /sys/block/qcowN/qcow/
 * @idx: N
 * @attr: attribute name ("virtual_size")
 * @v: its value
 *
 * Return: 0, -errno of the read (-ENOENT: no such device), or -EINVAL when
 * it is not a number.  Prints nothing.
 */
int qc_sysfs_u64(unsigned int idx, const char *attr, u64 *v)
{
	char *s = qc_sysfs_read(idx, attr), *end;
	int ret = 0;

	if (!s)
		return -errno;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		ret = -EINVAL;
	free(s);
	return ret;
}

static int qc_cmp_uint(const void *a, const void *b)
{
	unsigned int x = *(const unsigned int *)a, y = *(const unsigned int *)b;

	return x < y ? -1 : x > y;
}

/* "qcowN" -> N; false for anything else ("qcow0p1", "qcow01"). */
static bool qc_parse_disk_name(const char *name, unsigned int *idx)
{
	unsigned long v;
	char *end;

	if (strncmp(name, "qcow", 4) || !isdigit((unsigned char)name[4]))
		return false;
	if (name[4] == '0' && name[5])
		return false;
	errno = 0;
	v = strtoul(name + 4, &end, 10);
	if (errno || *end || v > UINT_MAX)
		return false;
	*idx = v;
	return true;
}

/*
 * The indexes of the qcow devices, ascending, in *@out (free() it).
 * Return: their number, or -1 after printing one line on stderr.
 */
static int qc_devices(unsigned int **out)
{
	unsigned int *idx = NULL, *n, i, nr = 0, cap = 0;
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;

	*out = NULL;
	d = opendir(QC_SYS_BLOCK);
	if (!d) {
		qc_err("%s: %s", QC_SYS_BLOCK, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (!qc_parse_disk_name(de->d_name, &i))
			continue;
		/* a qcow disk of ours carries the attribute group */
		snprintf(path, sizeof(path), QC_SYS_BLOCK "/%s/qcow", de->d_name);
		if (stat(path, &st) || !S_ISDIR(st.st_mode))
			continue;
		if (nr == cap) {
			cap = cap ? cap * 2 : 16;
			n = reallocarray(idx, cap, sizeof(*idx));
			if (!n) {
				qc_err("%s", strerror(ENOMEM));
				free(idx);
				closedir(d);
				return -1;
			}
			idx = n;
		}
		idx[nr++] = i;
	}
	closedir(d);
	if (nr)
		qsort(idx, nr, sizeof(*idx), qc_cmp_uint);
	*out = idx;
	return nr;
}

/**
 * qc_parse_dev_name() - the N of a device name given on the command line
 * @arg: "/dev/qcowN", "qcowN" or "N" (no leading zeros)
 * @idx: N, when it is one
 *
 * Only looks at the string: the device need not exist (attach --device).
 *
 * Return: true when @arg is such a name.
 */
bool qc_parse_dev_name(const char *arg, unsigned int *idx)
{
	char name[32];

	if (!strncmp(arg, "/dev/", 5))
		arg += 5;
	if (qc_parse_disk_name(arg, idx))
		return true;
	if (!isdigit((unsigned char)arg[0]) || strlen(arg) > 10 ||
	    strspn(arg, "0123456789") != strlen(arg))
		return false;
	snprintf(name, sizeof(name), "qcow%s", arg);
	return qc_parse_disk_name(name, idx);
}

/**
 * qc_device_exists() - whether /dev/qcowN exists (its sysfs directory does)
 * @idx: N
 *
 * Return: true when it does.
 */
bool qc_device_exists(unsigned int idx)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), QC_SYS_BLOCK "/qcow%u", idx);
	return !lstat(path, &st);
}

/* max_devices of the loaded module from sysfs; false when not loaded. */
static bool qc_sysfs_max_devices(unsigned int *max)
{
	FILE *f = fopen("/sys/module/qcow/parameters/max_devices", "re");
	bool ok;

	if (!f)
		return false;
	ok = fscanf(f, "%u", max) == 1;
	fclose(f);
	return ok;
}

/**
 * qc_max_devices() - how many /dev/qcowN the loaded module allows
 * @max: set on success
 *
 * Reads /sys/module/qcow/parameters/max_devices (no root needed); when
 * that is missing, asks /dev/qcow-control, whose opening loads the module.
 *
 * Return: 0, or -1 after printing one line on stderr.
 */
int qc_max_devices(unsigned int *max)
{
	struct qcow_features f;
	int fd, ret;

	if (qc_sysfs_max_devices(max))
		return 0;
	fd = qc_ctl_open();
	if (fd < 0)
		return -1;
	ret = qc_ctl_get_features(fd, &f);
	close(fd);
	if (ret)
		return -1;
	*max = f.max_devices;
	return 0;
}

/**
 * qc_free_device() - the device the next attach without --device gets
 * @idx: its N: the lowest one that does not exist
 *
 * The module hands out the lowest free index, so this is what `attach`
 * would print now -- unless another attach comes first (as with
 * `losetup -f`).
 *
 * Return: 0, or -1 after printing one line on stderr (also when every
 * index below max_devices is taken).
 */
int qc_free_device(unsigned int *idx)
{
	unsigned int *devs, max, i, n = 0;
	int nr;

	if (qc_max_devices(&max))
		return -1;
	nr = qc_devices(&devs);
	if (nr < 0)
		return -1;
	/* ascending: the first gap is the lowest free index */
	for (i = 0; i < (unsigned int)nr && devs[i] == n; i++)
		n++;
	free(devs);
	if (n >= max) {
		qc_err("no free qcow device: all %u are in use (module parameter max_devices)",
		       max);
		return -1;
	}
	*idx = n;
	return 0;
}

/* --- detach ------------------------------------------------------------ */

/*
 * Which device @arg names, if it names one: "/dev/qcowN", "qcowN", "N", or
 * any block device node of a qcow disk.
 * Return: 1 and *@idx set; 0 when @arg is not a device (an image, then);
 * -1 after printing one line on stderr.
 */
static int qc_arg_device(const char *arg, unsigned int *idx)
{
	char path[PATH_MAX], link[PATH_MAX];
	const char *base;
	struct stat st;
	ssize_t n;

	if (qc_parse_dev_name(arg, idx))
		return 1;
	if (stat(arg, &st) || !S_ISBLK(st.st_mode))
		return 0;

	/* some other node (a symlink in /dev/disk/...): ask sysfs what it is */
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u", major(st.st_rdev),
		 minor(st.st_rdev));
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0) {
		qc_err("%s: %s: %s", arg, path, strerror(errno));
		return -1;
	}
	link[n] = '\0';
	base = strrchr(link, '/');
	base = base ? base + 1 : link;
	if (qc_parse_disk_name(base, idx))
		return 1;
	if (!strncmp(base, "qcow", 4)) {
		qc_err("%s: %s is a partition; name the whole disk", arg, base);
		return -1;
	}
	qc_err("%s: not a qcow device (it is %s)", arg, base);
	return -1;
}

/*
 * The device @image is attached as, matched by inode (so that any path to
 * the file works), else by name (for an image that is gone).
 */
static int qc_image_device(const char *image, unsigned int *idx)
{
	unsigned int *devs, *match = NULL;
	unsigned int i, nr_match = 0;
	struct stat want, st;
	char *real, *sys;
	int nr, ret = -1;

	if (stat(image, &want)) {
		qc_err("%s: %s", image, strerror(errno));
		return -1;
	}
	real = realpath(image, NULL);
	nr = qc_devices(&devs);
	if (nr < 0)
		goto out;
	match = calloc(nr ? nr : 1, sizeof(*match));
	if (!match) {
		qc_err("%s", strerror(ENOMEM));
		goto out;
	}
	for (i = 0; i < (unsigned int)nr; i++) {
		bool same;

		sys = qc_sysfs_read(devs[i], "image");
		if (!sys)
			continue;	/* detached meanwhile */
		same = (!stat(sys, &st) && st.st_dev == want.st_dev &&
			st.st_ino == want.st_ino) ||
		       (real && !strcmp(sys, real));
		free(sys);
		if (same)
			match[nr_match++] = devs[i];
	}

	if (nr_match == 1) {
		*idx = match[0];
		ret = 0;
	} else if (!nr_match) {
		qc_err("%s: not attached to any qcow device", image);
	} else {
		fprintf(stderr, "%s: %s is attached as", qc_progname, image);
		for (i = 0; i < nr_match; i++)
			fprintf(stderr, "%s/dev/qcow%u",
				!i ? " " : i + 1 < nr_match ? ", " : " and ",
				match[i]);
		fputs("; name the device\n", stderr);
	}
out:
	free(match);
	free(devs);
	free(real);
	return ret;
}

/**
 * qc_resolve_device() - the qcow device a command-line argument names
 * @arg: "/dev/qcowN", "qcowN", "N", another node of the disk, or the path
 *	 of the image attached as the device
 * @idx: N, on success
 *
 * Return: 0, or -1 after printing one line on stderr.
 */
int qc_resolve_device(const char *arg, unsigned int *idx)
{
	int ret = qc_arg_device(arg, idx);

	if (!ret)
		ret = qc_image_device(arg, idx) ? -1 : 1;
	return ret < 0 ? -1 : 0;
}

/**
 * qc_dev_open() - open the qcow device a command-line argument names
 * @arg: as qc_resolve_device() takes it
 * @rw: open read-write (the commands that change the image)
 * @need_rw: for the message when the disk is attached read-only: what
 *	     needs a read-write attach ("snapshots need")
 * @d: filled in
 *
 * Return: 0, or -1 after printing one line on stderr.
 */
int qc_dev_open(const char *arg, bool rw, const char *need_rw,
		struct qc_devfd *d)
{
	if (qc_resolve_device(arg, &d->idx))
		return -1;
	snprintf(d->path, sizeof(d->path), "/dev/qcow%u", d->idx);
	d->fd = open(d->path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (d->fd >= 0)
		return 0;
	switch (errno) {
	case ENOENT:
	case ENXIO:
	case ENODEV:
		qc_err("%s: no such qcow device", d->path);
		break;
	case EROFS:
		qc_err("%s: attached read-only; %s a read-write attach",
		       d->path, need_rw);
		break;
	case EACCES:
	case EPERM:
		qc_err("%s: needs root (CAP_SYS_ADMIN)", d->path);
		break;
	default:
		qc_err("%s: %s", d->path, strerror(errno));
		break;
	}
	return -1;
}

/*
 * QCOW_CTL_DETACH; 0, or -errno after printing one line on stderr (none
 * for -ENXIO when @gone_ok: a device that went away meanwhile).
 */
static int qc_detach_index(int ctl, unsigned int idx, u32 flags, bool gone_ok)
{
	struct qcow_detach d = { .index = idx, .flags = flags };
	struct qc_busy busy = {};
	int err;

	/* udev's short opens (probing the disk) are waited out */
	while (ioctl(ctl, QCOW_CTL_DETACH, &d)) {
		err = errno;
		if (err != EBUSY || (flags & QCOW_DETACH_LAZY) ||
		    !qc_busy_retry(&busy))
			goto failed;
	}
	return 0;

failed:
	if (err == ENXIO && gone_ok)
		return -err;
	switch (err) {
	case EBUSY:
		if (flags & QCOW_DETACH_LAZY)
			qc_err("/dev/qcow%u is already being detached", idx);
		else
			qc_err("/dev/qcow%u is in use (mounted or open); unmount it, or use --lazy to detach on last close",
			       idx);
		break;
	case ENXIO:
		qc_err("/dev/qcow%u: no such qcow device", idx);
		break;
	case EPERM:
	case EACCES:
		qc_err("/dev/qcow%u: detaching needs root (CAP_SYS_ADMIN)", idx);
		break;
	default:
		qc_err("/dev/qcow%u: QCOW_CTL_DETACH: %s", idx, strerror(err));
		break;
	}
	return -err;
}

static int qc_detach_all(int ctl, u32 flags)
{
	unsigned int *devs, i;
	int nr, ret = QC_EXIT_OK, err;

	nr = qc_devices(&devs);
	if (nr < 0)
		return QC_EXIT_FAIL;
	for (i = 0; i < (unsigned int)nr; i++) {
		err = qc_detach_index(ctl, devs[i], flags, true);
		if (err && err != -ENXIO)
			ret = QC_EXIT_FAIL;
	}
	free(devs);
	return ret;
}

int cmd_detach(const struct qc_cmd *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lazy", no_argument, NULL, 'l' },
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	unsigned int *idx;
	bool all = false;
	u32 flags = 0;
	int c, i, nr, ctl, ret;

	optind = 0;
	while ((c = getopt_long(argc, argv, "lah", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			flags |= QCOW_DETACH_LAZY;
			break;
		case 'a':
			all = true;
			break;
		case 'h':
			qc_cmd_usage(cmd, stdout);
			return QC_EXIT_OK;
		default:
			return qc_usage_error(cmd, NULL);
		}
	}
	if (all && optind != argc)
		return qc_usage_error(cmd, "--all takes no DEV or IMAGE");
	if (!all && optind == argc)
		return qc_usage_error(cmd, "missing DEV or IMAGE");

	if (all) {
		ctl = qc_ctl_open();
		if (ctl < 0)
			return QC_EXIT_FAIL;
		ret = qc_detach_all(ctl, flags);
		close(ctl);
		return ret;
	}

	/* Resolve every name first: a typo detaches nothing. */
	nr = argc - optind;
	idx = calloc(nr, sizeof(*idx));
	if (!idx) {
		qc_err("%s", strerror(ENOMEM));
		return QC_EXIT_FAIL;
	}
	for (i = 0; i < nr; i++) {
		if (qc_resolve_device(argv[optind + i], &idx[i])) {
			free(idx);
			return QC_EXIT_FAIL;
		}
	}
	ctl = qc_ctl_open();
	if (ctl < 0) {
		free(idx);
		return QC_EXIT_FAIL;
	}
	ret = QC_EXIT_OK;
	for (i = 0; i < nr; i++)
		if (qc_detach_index(ctl, idx[i], flags, false))
			ret = QC_EXIT_FAIL;
	close(ctl);
	free(idx);
	return ret;
}

/* --- list -------------------------------------------------------------- */

/* An attribute this qcowctl knows that an older module may not have. */
#define QC_UNKNOWN		UINT64_MAX

/**
 * struct qc_devinfo - what sysfs says about one device
 * @idx: N of /dev/qcowN
 * @image: path of the image file
 * @backing: the "backing" attribute: one "FORMAT PATH" line per layer, top
 *	     layer's backing file first
 * @virtual_size: disk size in bytes
 * @cluster_size: in bytes
 * @version: qcow2 version
 * @read_only: exposed read-only
 * @cache_size: L2 cache budget in bytes
 * @cache_hits: cache lookups that hit
 * @cache_misses: cache lookups that missed
 * @corrupt: metadata was found inconsistent
 * @stopped: a failed header write stopped every write (or QC_UNKNOWN)
 * @dirty_slices: metadata slices waiting for write-back (or QC_UNKNOWN)
 * @open_count: opens of the disk, an open partition counting once (or
 *		QC_UNKNOWN)
 */
struct qc_devinfo {
	unsigned int idx;
	char *image;
	char *backing;
	u64 virtual_size;
	u64 cluster_size;
	u64 version;
	u64 read_only;
	u64 cache_size;
	u64 cache_hits;
	u64 cache_misses;
	u64 corrupt;
	u64 stopped;
	u64 dirty_slices;
	u64 open_count;
};

/* -ENOENT when the device went away while we looked at it. */
static int qc_devinfo_read(unsigned int idx, struct qc_devinfo *di)
{
	static const struct {
		const char *name;
		size_t off;
		bool optional;	/* newer than the first modules */
	} nums[] = {
		{ "virtual_size", offsetof(struct qc_devinfo, virtual_size), false },
		{ "cluster_size", offsetof(struct qc_devinfo, cluster_size), false },
		{ "version", offsetof(struct qc_devinfo, version), false },
		{ "read_only", offsetof(struct qc_devinfo, read_only), false },
		{ "cache_size", offsetof(struct qc_devinfo, cache_size), false },
		{ "cache_hits", offsetof(struct qc_devinfo, cache_hits), false },
		{ "cache_misses", offsetof(struct qc_devinfo, cache_misses), false },
		{ "corrupt", offsetof(struct qc_devinfo, corrupt), false },
		{ "stopped", offsetof(struct qc_devinfo, stopped), true },
		{ "dirty_slices", offsetof(struct qc_devinfo, dirty_slices), true },
		{ "open_count", offsetof(struct qc_devinfo, open_count), true },
	};
	unsigned int i;
	int ret;

	memset(di, 0, sizeof(*di));
	di->idx = idx;
	di->image = qc_sysfs_read(idx, "image");
	if (!di->image)
		goto fail_errno;
	di->backing = qc_sysfs_read(idx, "backing");
	if (!di->backing)
		goto fail_errno;
	for (i = 0; i < ARRAY_SIZE(nums); i++) {
		u64 *v = (u64 *)((char *)di + nums[i].off);

		ret = qc_sysfs_u64(idx, nums[i].name, v);
		if (ret == -ENOENT && nums[i].optional &&
		    qc_device_exists(idx)) {
			*v = QC_UNKNOWN;
			continue;
		}
		if (ret == -ENOENT)
			goto fail;
		if (ret) {
			qc_err(QC_SYS_BLOCK "/qcow%u/qcow/%s: %s", idx,
			       nums[i].name, ret == -EINVAL ?
			       "not a number" : strerror(-ret));
			goto fail;
		}
	}
	return 0;

fail_errno:
	ret = -errno;
	if (ret != -ENOENT)
		qc_err(QC_SYS_BLOCK "/qcow%u/qcow: %s", idx, strerror(-ret));
fail:
	free(di->image);
	free(di->backing);
	return ret;
}

static void qc_devinfo_free(struct qc_devinfo *di)
{
	free(di->image);
	free(di->backing);
}

/*
 * Next line of the backing attribute: *@fmt and *@path point into @s,
 * which is modified.  Returns the rest, or NULL at the end.
 */
static char *qc_backing_next(char *s, const char **fmt, const char **path)
{
	char *nl, *sp;

	if (!s || !*s)
		return NULL;
	nl = strchr(s, '\n');
	if (nl)
		*nl = '\0';
	sp = strchr(s, ' ');
	if (sp) {
		*sp = '\0';
		*fmt = s;
		*path = sp + 1;
	} else {
		*fmt = "?";
		*path = s;
	}
	return nl ? nl + 1 : s + strlen(s);
}

/* "base.raw <- mid.qcow2": the chain below the image, deepest first. */
static char *qc_backing_chain(const char *backing)
{
	const char *fmt, *path, *paths[QCOW_MAX_LAYERS];
	char *copy, *p, *out = NULL;
	unsigned int nr = 0;
	size_t len = 0;
	FILE *f;

	copy = strdup(backing);
	if (!copy)
		return NULL;
	for (p = copy; (p = qc_backing_next(p, &fmt, &path));)
		if (nr < ARRAY_SIZE(paths))
			paths[nr++] = path;
	f = open_memstream(&out, &len);
	if (f) {
		if (!nr)
			fputc('-', f);
		while (nr--) {
			qc_put_text(f, paths[nr], strlen(paths[nr]));
			if (nr)
				fputs(" <- ", f);
		}
		if (fclose(f)) {
			free(out);
			out = NULL;
		}
	}
	free(copy);
	return out;
}

static void qc_hit_ratio(char *buf, size_t len, const struct qc_devinfo *di)
{
	u64 total = di->cache_hits + di->cache_misses;

	if (!total)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f",
			 100.0 * (double)di->cache_hits / (double)total);
}

enum {
	COL_DEVICE, COL_IMAGE, COL_SIZE, COL_CLUSTER, COL_RO, COL_OPEN,
	COL_BACKING, COL_CACHE, COL_HIT, COL_VERSION, COL_CORRUPT,
	COL_STOPPED, COL_DIRTY, NR_COLS
};

/**
 * struct qc_col - a column of `qcowctl list`
 * @name: its heading, and its name for -o
 * @right: right-aligned (numbers, as losetup aligns them)
 * @dflt: shown without -o
 */
static const struct qc_col {
	const char *name;
	bool right;
	bool dflt;
} qc_cols[NR_COLS] = {
	[COL_DEVICE] = { "DEVICE", false, true },
	[COL_IMAGE] = { "IMAGE", false, true },
	[COL_SIZE] = { "SIZE", true, true },
	[COL_CLUSTER] = { "CLUSTER", true, true },
	[COL_RO] = { "RO", true, true },
	[COL_OPEN] = { "OPEN", true, true },
	[COL_BACKING] = { "BACKING", false, true },
	[COL_CACHE] = { "CACHE", true, true },
	[COL_HIT] = { "HIT%", true, true },
	[COL_VERSION] = { "VERSION", true, false },
	[COL_CORRUPT] = { "CORRUPT", true, false },
	[COL_STOPPED] = { "STOPPED", true, false },
	[COL_DIRTY] = { "DIRTY", true, false },
};

/**
 * struct qc_list_opts - how `qcowctl list` prints
 * @cols: the columns, in order
 * @nr_cols: number of @cols
 * @headings: print the heading line (not -n)
 * @bytes: sizes in bytes (-b), not 64K, 1.5G
 */
struct qc_list_opts {
	unsigned int cols[4 * NR_COLS];
	unsigned int nr_cols;
	bool headings;
	bool bytes;
};

static void qc_list_size(char *buf, size_t len, u64 v, bool bytes)
{
	if (bytes)
		snprintf(buf, len, "%llu", v);
	else
		qc_size_short(buf, len, v);
}

static void qc_list_num(char *buf, size_t len, u64 v)
{
	if (v == QC_UNKNOWN)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%llu", v);
}

/* The cell of column @col for one device, allocated. */
static char *qc_list_cell(const struct qc_devinfo *di, unsigned int col,
			  const struct qc_list_opts *o)
{
	char buf[32];

	switch (col) {
	case COL_DEVICE:
		snprintf(buf, sizeof(buf), "/dev/qcow%u", di->idx);
		break;
	case COL_IMAGE:
		return qc_escape(di->image);
	case COL_BACKING:
		return qc_backing_chain(di->backing);
	case COL_SIZE:
		qc_list_size(buf, sizeof(buf), di->virtual_size, o->bytes);
		break;
	case COL_CLUSTER:
		qc_list_size(buf, sizeof(buf), di->cluster_size, o->bytes);
		break;
	case COL_CACHE:
		qc_list_size(buf, sizeof(buf), di->cache_size, o->bytes);
		break;
	case COL_RO:
		qc_list_num(buf, sizeof(buf), di->read_only);
		break;
	case COL_OPEN:
		qc_list_num(buf, sizeof(buf), di->open_count);
		break;
	case COL_HIT:
		qc_hit_ratio(buf, sizeof(buf), di);
		break;
	case COL_VERSION:
		qc_list_num(buf, sizeof(buf), di->version);
		break;
	case COL_CORRUPT:
		qc_list_num(buf, sizeof(buf), di->corrupt);
		break;
	case COL_STOPPED:
		qc_list_num(buf, sizeof(buf), di->stopped);
		break;
	default:
		qc_list_num(buf, sizeof(buf), di->dirty_slices);
		break;
	}
	return strdup(buf);
}

static int qc_list_table(const struct qc_devinfo *dis, unsigned int nr,
			 const struct qc_list_opts *o)
{
	size_t width[ARRAY_SIZE(o->cols)];
	char **cells;
	unsigned int r, c, nc = o->nr_cols;
	int ret = 0;

	if (!nr)
		return 0;	/* like losetup: no devices, no header */
	cells = calloc((size_t)nr * nc, sizeof(*cells));
	if (!cells) {
		qc_err("%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	for (c = 0; c < nc; c++)
		width[c] = o->headings ? strlen(qc_cols[o->cols[c]].name) : 0;
	for (r = 0; r < nr && !ret; r++) {
		for (c = 0; c < nc; c++) {
			char *cell = qc_list_cell(&dis[r], o->cols[c], o);

			if (!cell) {
				qc_err("%s", strerror(ENOMEM));
				ret = -ENOMEM;
				break;
			}
			cells[r * nc + c] = cell;
			width[c] = max_t(size_t, width[c], strlen(cell));
		}
	}
	for (r = 0; !ret && r <= nr; r++) {
		if (!r && !o->headings)
			continue;
		for (c = 0; c < nc; c++) {
			const char *cell = r ? cells[(r - 1) * nc + c] :
					   qc_cols[o->cols[c]].name;
			bool last = c + 1 == nc;

			/* no padding after a left-aligned last column */
			printf("%s%*s", c ? " " : "",
			       qc_cols[o->cols[c]].right ? (int)width[c] :
			       last ? 0 : -(int)width[c], cell);
		}
		putchar('\n');
	}
	for (r = 0; r < (unsigned int)nr * nc; r++)
		free(cells[r]);
	free(cells);
	return ret;
}

static void qc_json_opt_u64(struct json_writer *w, const char *key, u64 v)
{
	if (v == QC_UNKNOWN)
		json_null(w, key);
	else
		json_u64(w, key, v);
}

static void qc_list_json(const struct qc_devinfo *dis, unsigned int nr)
{
	struct json_writer w;
	unsigned int i;

	json_init(&w, stdout);
	json_object_begin(&w, NULL);
	json_array_begin(&w, "devices");
	for (i = 0; i < nr; i++) {
		const struct qc_devinfo *di = &dis[i];
		const char *fmt, *path;
		char name[32], *copy, *p;

		json_object_begin(&w, NULL);
		snprintf(name, sizeof(name), "/dev/qcow%u", di->idx);
		json_string(&w, "device", name);
		json_u64(&w, "index", di->idx);
		json_string(&w, "image", di->image);
		json_array_begin(&w, "backing");
		copy = strdup(di->backing);
		for (p = copy; (p = qc_backing_next(p, &fmt, &path));) {
			json_object_begin(&w, NULL);
			json_string(&w, "format", fmt);
			json_string(&w, "filename", path);
			json_object_end(&w);
		}
		free(copy);
		json_array_end(&w);
		json_u64(&w, "virtual-size", di->virtual_size);
		json_u64(&w, "cluster-size", di->cluster_size);
		json_u64(&w, "version", di->version);
		json_bool(&w, "read-only", di->read_only);
		qc_json_opt_u64(&w, "open-count", di->open_count);
		json_u64(&w, "cache-size", di->cache_size);
		json_u64(&w, "cache-hits", di->cache_hits);
		json_u64(&w, "cache-misses", di->cache_misses);
		json_bool(&w, "corrupt", di->corrupt);
		if (di->stopped == QC_UNKNOWN)
			json_null(&w, "stopped");
		else
			json_bool(&w, "stopped", di->stopped);
		qc_json_opt_u64(&w, "dirty-slices", di->dirty_slices);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
}

/*
 * -o COLUMNS: a comma-separated list of column names (any case); a
 * leading '+' appends them to the default columns, as losetup does.
 */
static int qc_list_parse_cols(const struct qc_cmd *cmd, const char *arg,
			      struct qc_list_opts *o)
{
	char *copy, *tok, *save = NULL;
	unsigned int c;
	int ret = 0;

	if (*arg == '+')
		arg++;
	else
		o->nr_cols = 0;
	copy = strdup(arg);
	if (!copy) {
		qc_err("%s", strerror(ENOMEM));
		return QC_EXIT_FAIL;
	}
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (c = 0; c < NR_COLS; c++)
			if (!strcasecmp(tok, qc_cols[c].name))
				break;
		if (c == NR_COLS) {
			ret = qc_usage_error(cmd, "unknown column '%s' (see 'qcowctl list --help')",
					     tok);
			break;
		}
		if (o->nr_cols == ARRAY_SIZE(o->cols)) {
			ret = qc_usage_error(cmd, "too many columns");
			break;
		}
		o->cols[o->nr_cols++] = c;
	}
	if (!ret && !o->nr_cols)
		ret = qc_usage_error(cmd, "no columns in '%s'", arg);
	free(copy);
	return ret;
}

static void qc_list_all_cols(struct qc_list_opts *o)
{
	unsigned int c;

	o->nr_cols = 0;
	for (c = 0; c < NR_COLS; c++)
		o->cols[o->nr_cols++] = c;
}

int cmd_list(const struct qc_cmd *cmd, int argc, char **argv)
{
	enum { OPT_OUTPUT_ALL = 0x100 };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "noheadings", no_argument, NULL, 'n' },
		{ "output", required_argument, NULL, 'o' },
		{ "output-all", no_argument, NULL, OPT_OUTPUT_ALL },
		{ "bytes", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct qc_list_opts o = { .headings = true };
	struct qc_devinfo *dis = NULL;
	unsigned int *devs, i, nr_info = 0;
	bool json = false, table_opt = false;
	int c, nr, ret = QC_EXIT_FAIL;

	for (i = 0; i < NR_COLS; i++)
		if (qc_cols[i].dflt)
			o.cols[o.nr_cols++] = i;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":jno:bh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'n':
			o.headings = false;
			table_opt = true;
			break;
		case 'o':
			ret = qc_list_parse_cols(cmd, optarg, &o);
			if (ret)
				return ret;
			table_opt = true;
			break;
		case OPT_OUTPUT_ALL:
			qc_list_all_cols(&o);
			table_opt = true;
			break;
		case 'b':
			o.bytes = true;
			table_opt = true;
			break;
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
	if (optind != argc)
		return qc_usage_error(cmd, "too many arguments");
	if (json && table_opt)
		return qc_usage_error(cmd,
				      "--json prints every field; -n, -o, --output-all and -b are for the table");

	ret = QC_EXIT_FAIL;
	nr = qc_devices(&devs);
	if (nr < 0)
		return QC_EXIT_FAIL;
	if (nr) {
		dis = calloc(nr, sizeof(*dis));
		if (!dis) {
			qc_err("%s", strerror(ENOMEM));
			goto out;
		}
	}
	for (i = 0; i < (unsigned int)nr; i++) {
		int err = qc_devinfo_read(devs[i], &dis[nr_info]);

		if (err == -ENOENT)
			continue;	/* detached while we listed */
		if (err)
			goto out;
		nr_info++;
	}

	if (json)
		qc_list_json(dis, nr_info);
	else if (qc_list_table(dis, nr_info, &o))
		goto out;
	if (fflush(stdout) || ferror(stdout)) {
		qc_err("write error on standard output");
		goto out;
	}
	ret = QC_EXIT_OK;
out:
	for (i = 0; i < nr_info; i++)
		qc_devinfo_free(&dis[i]);
	free(dis);
	free(devs);
	return ret;
}
