// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl detach and list, and what they share with attach and features:
 * the control device /dev/qcow-control and the attributes the module
 * publishes in /sys/block/qcowN/qcow/ (Documentation/ioctl-abi.rst).
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
	const char *name = arg, *base;
	struct stat st;
	ssize_t n;

	if (!strncmp(name, "/dev/", 5))
		name += 5;
	if (qc_parse_disk_name(name, idx))
		return 1;
	if (isdigit((unsigned char)arg[0]) &&
	    strspn(arg, "0123456789") == strlen(arg)) {
		snprintf(path, sizeof(path), "qcow%s", arg);
		if (qc_parse_disk_name(path, idx))
			return 1;
	}
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
	int err;

	if (!ioctl(ctl, QCOW_CTL_DETACH, &d))
		return 0;
	err = errno;
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
};

/* -ENOENT when the device went away while we looked at it. */
static int qc_devinfo_read(unsigned int idx, struct qc_devinfo *di)
{
	static const struct {
		const char *name;
		size_t off;
	} nums[] = {
		{ "virtual_size", offsetof(struct qc_devinfo, virtual_size) },
		{ "cluster_size", offsetof(struct qc_devinfo, cluster_size) },
		{ "version", offsetof(struct qc_devinfo, version) },
		{ "read_only", offsetof(struct qc_devinfo, read_only) },
		{ "cache_size", offsetof(struct qc_devinfo, cache_size) },
		{ "cache_hits", offsetof(struct qc_devinfo, cache_hits) },
		{ "cache_misses", offsetof(struct qc_devinfo, cache_misses) },
		{ "corrupt", offsetof(struct qc_devinfo, corrupt) },
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
		ret = qc_sysfs_u64(idx, nums[i].name,
				   (u64 *)((char *)di + nums[i].off));
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
	COL_DEVICE, COL_IMAGE, COL_SIZE, COL_CLUSTER, COL_RO, COL_BACKING,
	COL_CACHE, COL_HIT, NR_COLS
};

static const char * const qc_col_names[NR_COLS] = {
	"DEVICE", "IMAGE", "SIZE", "CLUSTER", "RO", "BACKING", "CACHE", "HIT%",
};

/* Table cells of one device (allocated strings). */
static int qc_list_row(const struct qc_devinfo *di, char *cells[NR_COLS])
{
	char buf[32];
	unsigned int i;
	int ret = 0;

	memset(cells, 0, NR_COLS * sizeof(*cells));
	snprintf(buf, sizeof(buf), "/dev/qcow%u", di->idx);
	cells[COL_DEVICE] = strdup(buf);
	cells[COL_IMAGE] = qc_escape(di->image);
	qc_size_short(buf, sizeof(buf), di->virtual_size);
	cells[COL_SIZE] = strdup(buf);
	qc_size_short(buf, sizeof(buf), di->cluster_size);
	cells[COL_CLUSTER] = strdup(buf);
	cells[COL_RO] = strdup(di->read_only ? "1" : "0");
	cells[COL_BACKING] = qc_backing_chain(di->backing);
	qc_size_short(buf, sizeof(buf), di->cache_size);
	cells[COL_CACHE] = strdup(buf);
	qc_hit_ratio(buf, sizeof(buf), di);
	cells[COL_HIT] = strdup(buf);
	for (i = 0; i < NR_COLS; i++)
		if (!cells[i])
			ret = -ENOMEM;
	return ret;
}

static int qc_list_table(const struct qc_devinfo *dis, unsigned int nr)
{
	/* numbers are right-aligned, like losetup's */
	static const bool right[NR_COLS] = {
		[COL_SIZE] = true, [COL_CLUSTER] = true, [COL_RO] = true,
		[COL_CACHE] = true, [COL_HIT] = true,
	};
	size_t width[NR_COLS];
	char *(*cells)[NR_COLS];
	unsigned int r, c;
	int ret = 0;

	if (!nr)
		return 0;	/* like losetup: no devices, no header */
	cells = calloc(nr, sizeof(*cells));
	if (!cells) {
		qc_err("%s", strerror(ENOMEM));
		return -ENOMEM;
	}
	for (c = 0; c < NR_COLS; c++)
		width[c] = strlen(qc_col_names[c]);
	for (r = 0; r < nr; r++) {
		if (qc_list_row(&dis[r], cells[r]) && !ret) {
			qc_err("%s", strerror(ENOMEM));
			ret = -ENOMEM;
		}
		for (c = 0; c < NR_COLS && !ret; c++)
			width[c] = max_t(size_t, width[c], strlen(cells[r][c]));
	}
	if (!ret) {
		for (c = 0; c < NR_COLS; c++)
			printf("%s%*s", c ? " " : "",
			       right[c] ? (int)width[c] : -(int)width[c],
			       qc_col_names[c]);
		putchar('\n');
		for (r = 0; r < nr; r++) {
			for (c = 0; c < NR_COLS; c++)
				printf("%s%*s", c ? " " : "",
				       right[c] ? (int)width[c] : -(int)width[c],
				       cells[r][c]);
			putchar('\n');
		}
	}
	for (r = 0; r < nr; r++)
		for (c = 0; c < NR_COLS; c++)
			free(cells[r][c]);
	free(cells);
	return ret;
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
		json_u64(&w, "cache-size", di->cache_size);
		json_u64(&w, "cache-hits", di->cache_hits);
		json_u64(&w, "cache-misses", di->cache_misses);
		json_bool(&w, "corrupt", di->corrupt);
		json_object_end(&w);
	}
	json_array_end(&w);
	json_object_end(&w);
}

int cmd_list(const struct qc_cmd *cmd, int argc, char **argv)
{
	struct qc_devinfo *dis = NULL;
	unsigned int *devs, i, nr_info = 0;
	bool json = false;
	int c, nr, ret = QC_EXIT_FAIL;

	c = qc_parse_json_opts(cmd, argc, argv, &json);
	if (c >= 0)
		return c;
	if (optind != argc)
		return qc_usage_error(cmd, "too many arguments");

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
	else if (qc_list_table(dis, nr_info))
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
