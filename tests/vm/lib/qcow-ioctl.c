// SPDX-License-Identifier: GPL-2.0
/*
 * Issue the qcow ioctls by hand, with whatever arguments a caller (or an
 * attacker) might pass, for tests/vm/guest/t-security.sh and t-races.sh.
 * Built in the guest at test time:
 *
 *   cc -Wall -I$QCOW_TOP/include/uapi -o qioc tests/vm/lib/qcow-ioctl.c
 *
 * Commands (OPTIONS before the command):
 *   qioc [--ctl-fd N] features
 *   qioc [--ctl-fd N] attach [-m r|w|rw|path] [-R] [-f FLAGS] IMAGE [q:PATH|r:PATH...]
 *        IMAGE opened with mode -m (default r), QCOW_ATTACH_READ_ONLY if -R,
 *        or the raw flags of -f; backing layers opened read-only, top first.
 *        Prints /dev/qcowN.
 *   qioc [--ctl-fd N] detach [-l] [-r TRIES] N
 *        -r: retry on EBUSY (every 200 us) up to TRIES times
 *   qioc [--dev-fd N] snap create|apply|delete DEV NAME
 *   qioc [--dev-fd N] snap list DEV        prints the number of snapshots
 *   qioc [--dev-fd N] resize DEV SIZE
 *        DEV is opened read-write (read-only if that is refused), unless
 *        --dev-fd gives a descriptor
 *   qioc reserved IMAGE BACKED BACKING
 *        every reserved field and unknown flag of every uapi struct, one at
 *        a time: each call must fail with EINVAL and change nothing (no
 *        device, no snapshot, same size); prints "ok CASE" or
 *        "not ok CASE: why" per case, exits 1 if any is not ok.  IMAGE is a
 *        writable v3 qcow2 image without backing file, BACKED one whose
 *        backing file (raw) is BACKING.
 *   qioc [--ctl-fd N] [--dev-fd N] denied IMAGE INDEX DEV
 *        every privileged call must fail with EPERM: GET_FEATURES, ATTACH
 *        (IMAGE, read-only), DETACH and lazy DETACH of INDEX, and on DEV
 *        (or the --dev-fd) SNAPSHOT_CREATE/LIST/APPLY/DELETE and RESIZE;
 *        prints "EPERM call" or "not denied: call: ..." per call, exits 1
 *        if any was not denied
 *   qioc hammer DEV OP COUNT [PAUSE_US]
 *        COUNT times: open DEV, do OP (none, list, create, read), close,
 *        pause PAUSE_US microseconds (default 0);
 *        ENOENT/ENXIO/ENODEV at open mean the device went away (stops after
 *        20 of them).  Prints "created NAME" for each snapshot created
 *        (OP create) and a summary; exits 1 on an errno that the device
 *        going away does not explain.
 *
 * A failed call prints the errno name (EPERM, EINVAL...) on stderr and
 * exits 1; usage errors exit 2.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/qcow.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int ctl_fd = -1, dev_fd = -1;

static const char *ename(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static int fail(int e)
{
	fprintf(stderr, "%s\n", ename(e));
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: see the comment at the top of tests/vm/lib/qcow-ioctl.c\n");
	return 2;
}

static int ctl(void)
{
	if (ctl_fd < 0)
		ctl_fd = open("/dev/qcow-control", O_RDWR);
	return ctl_fd;
}

static int open_mode(const char *path, const char *m)
{
	if (!strcmp(m, "r"))
		return open(path, O_RDONLY);
	if (!strcmp(m, "w"))
		return open(path, O_WRONLY);
	if (!strcmp(m, "rw"))
		return open(path, O_RDWR);
	if (!strcmp(m, "path"))
		return open(path, O_PATH);
	errno = EINVAL;
	return -1;
}

/* Number of /sys/block/qcow* entries. */
static int ndevs(void)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, "qcow", 4);
	closedir(d);
	return n;
}

static int cmd_features(void)
{
	struct qcow_features f = {};

	if (ctl() < 0 || ioctl(ctl(), QCOW_CTL_GET_FEATURES, &f) < 0)
		return fail(errno);
	printf("abi %u features 0x%llx max_devices %u\n", f.abi_version,
	       (unsigned long long)f.features, f.max_devices);
	return 0;
}

static int cmd_attach(int argc, char **argv)
{
	struct qcow_layer_desc layers[QCOW_MAX_LAYERS] = {};
	struct qcow_attach a = {};
	const char *mode = "r";
	long flags = -1;
	int ro = 0, i, fd, c;

	optind = 1;
	while ((c = getopt(argc, argv, "m:Rf:")) != -1) {
		switch (c) {
		case 'm':
			mode = optarg;
			break;
		case 'R':
			ro = 1;
			break;
		case 'f':
			flags = strtol(optarg, NULL, 0);
			break;
		default:
			return usage();
		}
	}
	if (optind >= argc || argc - optind - 1 > QCOW_MAX_LAYERS)
		return usage();
	fd = open_mode(argv[optind], mode);
	if (fd < 0) {
		perror(argv[optind]);
		return 2;
	}
	a.image_fd = fd;
	for (i = optind + 1; i < argc; i++) {
		struct qcow_layer_desc *l = &layers[i - optind - 1];

		if ((argv[i][0] != 'q' && argv[i][0] != 'r') || argv[i][1] != ':')
			return usage();
		l->format = argv[i][0] == 'q' ? QCOW_FMT_QCOW2 : QCOW_FMT_RAW;
		fd = open(argv[i] + 2, O_RDONLY);
		if (fd < 0) {
			perror(argv[i] + 2);
			return 2;
		}
		l->fd = fd;
	}
	a.flags = flags >= 0 ? (__u32)flags : ro ? QCOW_ATTACH_READ_ONLY : 0;
	a.nr_layers = argc - optind - 1;
	a.layers = (uintptr_t)layers;
	if (ctl() < 0 || ioctl(ctl(), QCOW_CTL_ATTACH, &a) < 0)
		return fail(errno);
	printf("/dev/qcow%u\n", a.index);
	return 0;
}

static int cmd_detach(int argc, char **argv)
{
	struct qcow_detach d = {};
	unsigned long tries = 1, t;
	int c;

	optind = 1;
	while ((c = getopt(argc, argv, "lr:")) != -1) {
		switch (c) {
		case 'l':
			d.flags = QCOW_DETACH_LAZY;
			break;
		case 'r':
			tries = strtoul(optarg, NULL, 0);
			break;
		default:
			return usage();
		}
	}
	if (optind + 1 != argc)
		return usage();
	d.index = strtoul(argv[optind], NULL, 0);
	if (ctl() < 0)
		return fail(errno);
	for (t = 1; ioctl(ctl(), QCOW_CTL_DETACH, &d) < 0; t++) {
		if (errno != EBUSY || t >= tries)
			return fail(errno);
		usleep(200);
	}
	if (tries > 1)
		printf("detached after %lu tries\n", t);
	return 0;
}

/*
 * Snapshot and resize calls need a descriptor opened for writing; a
 * read-only device opens read-only (its calls fail with EROFS then).
 */
static int open_dev_rw(const char *path)
{
	int fd = open(path, O_RDWR);

	return fd < 0 && (errno == EROFS || errno == EACCES) ? open(path, O_RDONLY) : fd;
}

static int dev_open(const char *path)
{
	return dev_fd >= 0 ? dev_fd : open_dev_rw(path);
}

static int cmd_snap(int argc, char **argv)
{
	struct qcow_snapshot_cmd c = {};
	unsigned long req;
	int fd;

	if (argc < 3)
		return usage();
	fd = dev_open(argv[2]);
	if (fd < 0)
		return fail(errno);
	if (!strcmp(argv[1], "list")) {
		struct qcow_snapshot_list l = {};

		if (ioctl(fd, QCOW_SNAPSHOT_LIST, &l) < 0)
			return fail(errno);
		printf("%u\n", l.count);
		return 0;
	}
	if (argc != 4 || strlen(argv[3]) >= sizeof(c.name))
		return usage();
	if (!strcmp(argv[1], "create"))
		req = QCOW_SNAPSHOT_CREATE;
	else if (!strcmp(argv[1], "apply"))
		req = QCOW_SNAPSHOT_APPLY;
	else if (!strcmp(argv[1], "delete"))
		req = QCOW_SNAPSHOT_DELETE;
	else
		return usage();
	strcpy(c.name, argv[3]);
	if (ioctl(fd, req, &c) < 0)
		return fail(errno);
	printf("%s\n", c.id);
	return 0;
}

static int cmd_resize(int argc, char **argv)
{
	struct qcow_resize r = {};
	int fd;

	if (argc != 3)
		return usage();
	fd = dev_open(argv[1]);
	if (fd < 0)
		return fail(errno);
	r.size = strtoull(argv[2], NULL, 0);
	if (ioctl(fd, QCOW_RESIZE, &r) < 0)
		return fail(errno);
	return 0;
}

/* ------------------------------------------------------------------------
 * reserved fields and flags
 */

static int nbad;

static void report(const char *name, int ok, const char *fmt, const char *a)
{
	if (ok) {
		printf("ok %s\n", name);
	} else {
		printf("not ok %s: ", name);
		printf(fmt, a);
		printf("\n");
		nbad++;
	}
}

/* The call returned rc (and set errno): it must have failed with want. */
static int expect_err(const char *name, int rc, int want)
{
	int e = errno;

	if (rc >= 0) {
		report(name, 0, "%s succeeded", "the call");
		return 0;
	}
	if (e != want) {
		report(name, 0, "failed with %s", ename(e));
		return 0;
	}
	return 1;
}

static struct qcow_attach attach_base(int img_fd)
{
	struct qcow_attach a = {};

	a.image_fd = img_fd;
	return a;
}

/* Try an attach that must fail with want and leave no device. */
static void try_attach(const char *name, struct qcow_attach *a, int want)
{
	int before = ndevs(), rc;

	int e;

	rc = ioctl(ctl(), QCOW_CTL_ATTACH, a);
	e = errno;
	if (rc >= 0) {
		struct qcow_detach d = { .index = a->index };

		ioctl(ctl(), QCOW_CTL_DETACH, &d);
	}
	errno = e;
	if (!expect_err(name, rc, want))
		return;
	report(name, ndevs() == before, "%s", "a device appeared");
}

static int sys_exists(unsigned int idx)
{
	char p[64];

	snprintf(p, sizeof(p), "/sys/block/qcow%u", idx);
	return access(p, F_OK) == 0;
}

static void reserved_dev(unsigned int idx);

static void reserved_ctl(const char *image, const char *backed, const char *backing)
{
	struct qcow_layer_desc l = {};
	struct qcow_features f;
	struct qcow_attach a;
	struct qcow_detach d;
	char name[96];
	unsigned int i, idx;
	int img, bimg, bfd, rc;

	/* GET_FEATURES */
	memset(&f, 0, sizeof(f));
	rc = ioctl(ctl(), QCOW_CTL_GET_FEATURES, &f);
	report("features.baseline", rc == 0, "failed with %s", ename(errno));
	memset(&f, 0, sizeof(f));
	f.reserved0 = 1;
	if (expect_err("features.reserved0", ioctl(ctl(), QCOW_CTL_GET_FEATURES, &f), EINVAL))
		report("features.reserved0", 1, "", "");
	for (i = 0; i < ARRAY_SIZE(f.reserved); i++) {
		memset(&f, 0, sizeof(f));
		f.reserved[i] = 0x80000000u;
		snprintf(name, sizeof(name), "features.reserved[%u]", i);
		if (expect_err(name, ioctl(ctl(), QCOW_CTL_GET_FEATURES, &f), EINVAL))
			report(name, 1, "", "");
	}

	/* ATTACH: the image read-write, then a backed one with one layer */
	img = open(image, O_RDWR);
	bimg = open(backed, O_RDONLY);
	bfd = open(backing, O_RDONLY);
	if (img < 0 || bimg < 0 || bfd < 0) {
		report("attach.open", 0, "cannot open %s", "the images");
		return;
	}
	a = attach_base(img);
	a.reserved0 = 1;
	try_attach("attach.reserved0", &a, EINVAL);
	for (i = 0; i < ARRAY_SIZE(a.reserved); i++) {
		a = attach_base(img);
		a.reserved[i] = 1;
		snprintf(name, sizeof(name), "attach.reserved[%u]", i);
		try_attach(name, &a, EINVAL);
	}
	a = attach_base(img);
	a.index = 1;
	try_attach("attach.index-in", &a, EINVAL);
	for (i = 0; i < 32; i++) {
		if ((1U << i) & QCOW_ATTACH_ALL)
			continue;
		a = attach_base(img);
		a.flags = 1U << i;
		snprintf(name, sizeof(name), "attach.flags-bit%u", i);
		try_attach(name, &a, EINVAL);
	}
	a = attach_base(img);
	a.cache_size = 1;
	try_attach("attach.cache_size-tiny", &a, EINVAL);
	a = attach_base(img);
	a.cache_size = ~0ULL;
	try_attach("attach.cache_size-huge", &a, EINVAL);
	a = attach_base(img);
	a.nr_layers = QCOW_MAX_LAYERS;
	a.layers = (uintptr_t)&l;
	try_attach("attach.nr_layers-max", &a, E2BIG);
	a = attach_base(img);
	a.nr_layers = 0xffffffffu;
	a.layers = (uintptr_t)&l;
	try_attach("attach.nr_layers-huge", &a, E2BIG);
	a = attach_base(img);
	a.nr_layers = 1;
	a.layers = 8;	/* an unmapped user address */
	try_attach("attach.layers-bad-pointer", &a, EFAULT);
	/* the layer descriptor, on the backed image (read-only) */
	a = attach_base(bimg);
	a.flags = QCOW_ATTACH_READ_ONLY;
	a.nr_layers = 1;
	a.layers = (uintptr_t)&l;
	l.fd = bfd;
	l.format = QCOW_FMT_RAW;
	l.reserved = 1;
	try_attach("layer.reserved", &a, EINVAL);
	l.reserved = 1ULL << 63;
	try_attach("layer.reserved-high", &a, EINVAL);
	l.reserved = 0;
	l.format = 0;
	try_attach("layer.format-0", &a, EINVAL);
	l.format = QCOW_FMT_RAW + 1;
	try_attach("layer.format-unknown", &a, EINVAL);
	l.format = QCOW_FMT_RAW;
	l.fd = 0x7fffffff;
	try_attach("layer.fd-closed", &a, EBADF);
	l.fd = bfd;
	/* baseline: the same calls with the fields zero succeed */
	rc = ioctl(ctl(), QCOW_CTL_ATTACH, &a);
	report("layer.baseline", rc == 0, "failed with %s", ename(errno));
	if (!rc) {
		d = (struct qcow_detach){ .index = a.index };
		ioctl(ctl(), QCOW_CTL_DETACH, &d);
	}
	a = attach_base(img);
	rc = ioctl(ctl(), QCOW_CTL_ATTACH, &a);
	report("attach.baseline", rc == 0, "failed with %s", ename(errno));
	if (rc)
		return;
	idx = a.index;

	/* DETACH: the device must stay */
	for (i = 0; i < 32; i++) {
		if ((1U << i) & QCOW_DETACH_ALL)
			continue;
		d = (struct qcow_detach){ .index = idx, .flags = 1U << i };
		snprintf(name, sizeof(name), "detach.flags-bit%u", i);
		if (expect_err(name, ioctl(ctl(), QCOW_CTL_DETACH, &d), EINVAL))
			report(name, sys_exists(idx), "%s", "the device went away");
	}
	for (i = 0; i < ARRAY_SIZE(d.reserved); i++) {
		d = (struct qcow_detach){ .index = idx };
		d.reserved[i] = 1;
		snprintf(name, sizeof(name), "detach.reserved[%u]", i);
		if (expect_err(name, ioctl(ctl(), QCOW_CTL_DETACH, &d), EINVAL))
			report(name, sys_exists(idx), "%s", "the device went away");
	}
	d = (struct qcow_detach){ .index = 0xffffff };
	if (expect_err("detach.no-such-device", ioctl(ctl(), QCOW_CTL_DETACH, &d), ENXIO))
		report("detach.no-such-device", 1, "", "");

	/* unknown commands, and a known number with another size */
	if (expect_err("ctl.unknown-cmd", ioctl(ctl(), _IO(QCOW_IOCTL_MAGIC, 0x7e)), ENOTTY))
		report("ctl.unknown-cmd", 1, "", "");
	if (expect_err("ctl.attach-wrong-size",
		       ioctl(ctl(), _IOWR(QCOW_IOCTL_MAGIC, 0x01, struct qcow_detach), &d), ENOTTY))
		report("ctl.attach-wrong-size", sys_exists(idx), "%s", "the device went away");

	reserved_dev(idx);

	d = (struct qcow_detach){ .index = idx };
	rc = ioctl(ctl(), QCOW_CTL_DETACH, &d);
	report("detach.baseline", rc == 0 && !sys_exists(idx), "failed with %s", ename(errno));
}

static int snap_count(int fd)
{
	struct qcow_snapshot_list l = {};

	if (ioctl(fd, QCOW_SNAPSHOT_LIST, &l) < 0)
		return -1;
	return l.count;
}

static unsigned long long dev_size(int fd)
{
	unsigned long long n = 0;

	ioctl(fd, BLKGETSIZE64, &n);
	return n;
}

/* A snapshot command that must fail with EINVAL and leave the table as is. */
static void try_snap(int fd, const char *name, unsigned long req,
		     struct qcow_snapshot_cmd *c, int count)
{
	if (expect_err(name, ioctl(fd, req, c), EINVAL))
		report(name, snap_count(fd) == count, "%s", "the snapshot table changed");
}

static void reserved_dev(unsigned int idx)
{
	static const struct {
		const char *name;
		unsigned long req;
	} cmds[] = {
		{ "snapshot-create", QCOW_SNAPSHOT_CREATE },
		{ "snapshot-apply", QCOW_SNAPSHOT_APPLY },
		{ "snapshot-delete", QCOW_SNAPSHOT_DELETE },
	};
	struct qcow_snapshot_cmd c;
	struct qcow_snapshot_list l;
	struct qcow_resize r;
	unsigned long long size;
	char path[64], name[96];
	unsigned int i, k;
	int fd, rc;

	snprintf(path, sizeof(path), "/dev/qcow%u", idx);
	fd = open_dev_rw(path);
	if (fd < 0) {
		report("dev.open", 0, "cannot open %s", path);
		return;
	}
	/* one snapshot to apply and delete */
	memset(&c, 0, sizeof(c));
	strcpy(c.name, "base");
	rc = ioctl(fd, QCOW_SNAPSHOT_CREATE, &c);
	report("snapshot-create.baseline", rc == 0 && c.id[0] && snap_count(fd) == 1,
	       "failed with %s", ename(errno));
	for (k = 0; k < ARRAY_SIZE(cmds); k++) {
		memset(&c, 0, sizeof(c));
		strcpy(c.name, k ? "base" : "new");
		c.flags = 1;
		snprintf(name, sizeof(name), "%s.flags", cmds[k].name);
		try_snap(fd, name, cmds[k].req, &c, 1);
		for (i = 0; i < ARRAY_SIZE(c.reserved); i++) {
			memset(&c, 0, sizeof(c));
			strcpy(c.name, k ? "base" : "new");
			c.reserved[i] = 1;
			snprintf(name, sizeof(name), "%s.reserved[%u]", cmds[k].name, i);
			try_snap(fd, name, cmds[k].req, &c, 1);
		}
		memset(&c, 0, sizeof(c));
		memset(c.name, 'a', sizeof(c.name));
		snprintf(name, sizeof(name), "%s.name-unterminated", cmds[k].name);
		try_snap(fd, name, cmds[k].req, &c, 1);
		memset(&c, 0, sizeof(c));
		strcpy(c.name, k ? "base" : "new");
		memset(c.id, '1', sizeof(c.id));
		snprintf(name, sizeof(name), "%s.id-unterminated", cmds[k].name);
		try_snap(fd, name, cmds[k].req, &c, 1);
	}
	memset(&c, 0, sizeof(c));
	try_snap(fd, "snapshot-create.name-empty", QCOW_SNAPSHOT_CREATE, &c, 1);
	try_snap(fd, "snapshot-delete.name-and-id-empty", QCOW_SNAPSHOT_DELETE, &c, 1);
	try_snap(fd, "snapshot-apply.name-and-id-empty", QCOW_SNAPSHOT_APPLY, &c, 1);

	memset(&l, 0, sizeof(l));
	l.flags = 1;
	if (expect_err("snapshot-list.flags", ioctl(fd, QCOW_SNAPSHOT_LIST, &l), EINVAL))
		report("snapshot-list.flags", 1, "", "");
	for (i = 0; i < ARRAY_SIZE(l.reserved); i++) {
		memset(&l, 0, sizeof(l));
		l.reserved[i] = 1ULL << 40;
		snprintf(name, sizeof(name), "snapshot-list.reserved[%u]", i);
		if (expect_err(name, ioctl(fd, QCOW_SNAPSHOT_LIST, &l), EINVAL))
			report(name, 1, "", "");
	}
	memset(&l, 0, sizeof(l));
	l.count = 1;
	l.entries = 8;	/* unmapped */
	if (expect_err("snapshot-list.bad-pointer", ioctl(fd, QCOW_SNAPSHOT_LIST, &l), EFAULT))
		report("snapshot-list.bad-pointer", 1, "", "");

	size = dev_size(fd);
	memset(&r, 0, sizeof(r));
	r.size = size + (1 << 20);
	r.flags = 1;
	if (expect_err("resize.flags", ioctl(fd, QCOW_RESIZE, &r), EINVAL))
		report("resize.flags", dev_size(fd) == size, "%s", "the size changed");
	for (i = 0; i < ARRAY_SIZE(r.reserved); i++) {
		memset(&r, 0, sizeof(r));
		r.size = size + (1 << 20);
		r.reserved[i] = 1;
		snprintf(name, sizeof(name), "resize.reserved[%u]", i);
		if (expect_err(name, ioctl(fd, QCOW_RESIZE, &r), EINVAL))
			report(name, dev_size(fd) == size, "%s", "the size changed");
	}
	memset(&r, 0, sizeof(r));
	r.size = size + 1;
	if (expect_err("resize.unaligned", ioctl(fd, QCOW_RESIZE, &r), EINVAL))
		report("resize.unaligned", dev_size(fd) == size, "%s", "the size changed");
	r.size = size - 512;
	if (expect_err("resize.shrink", ioctl(fd, QCOW_RESIZE, &r), EINVAL))
		report("resize.shrink", dev_size(fd) == size, "%s", "the size changed");
	r.size = ~0ULL << 9;
	if (expect_err("resize.huge", ioctl(fd, QCOW_RESIZE, &r), EINVAL))
		report("resize.huge", dev_size(fd) == size, "%s", "the size changed");
	r.size = size + (1 << 20);
	rc = ioctl(fd, QCOW_RESIZE, &r);
	report("resize.baseline", rc == 0 && dev_size(fd) == size + (1 << 20),
	       "failed with %s", ename(errno));

	if (expect_err("dev.unknown-cmd", ioctl(fd, _IO(QCOW_IOCTL_MAGIC, 0x7e)), ENOTTY))
		report("dev.unknown-cmd", 1, "", "");
	memset(&c, 0, sizeof(c));
	strcpy(c.name, "wrong-size");
	if (expect_err("dev.create-wrong-size",
		       ioctl(fd, _IOWR(QCOW_IOCTL_MAGIC, 0x10, struct qcow_snapshot_list), &c),
		       ENOTTY))
		report("dev.create-wrong-size", snap_count(fd) == 1, "%s", "a snapshot appeared");

	memset(&c, 0, sizeof(c));
	strcpy(c.name, "base");
	rc = ioctl(fd, QCOW_SNAPSHOT_DELETE, &c);
	report("snapshot-delete.baseline", rc == 0 && snap_count(fd) == 0,
	       "failed with %s", ename(errno));
	close(fd);
}

static int cmd_reserved(int argc, char **argv)
{
	if (argc != 4)
		return usage();
	if (ctl() < 0)
		return fail(errno);
	reserved_ctl(argv[1], argv[2], argv[3]);
	printf("%d not ok\n", nbad);
	return nbad ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * hammer: open, act, close, while the device is torn down
 */

static int cmd_hammer(int argc, char **argv)
{
	unsigned long count, i, opens = 0, gone = 0, ok = 0, bad = 0, pause;
	unsigned long errs[200] = {};
	const char *op;
	char buf[4096];
	int fd, rc, e;

	if (argc != 4 && argc != 5)
		return usage();
	op = argv[2];
	count = strtoul(argv[3], NULL, 0);
	pause = argc == 5 ? strtoul(argv[4], NULL, 0) : 0;
	for (i = 0; i < count && gone < 20; i++) {
		fd = open_dev_rw(argv[1]);
		if (fd < 0) {
			e = errno;
			if (e == ENOENT || e == ENXIO || e == ENODEV) {
				gone++;
				usleep(1000);
				continue;
			}
			printf("open: unexpected %s\n", ename(e));
			bad++;
			continue;
		}
		opens++;
		rc = 0;
		e = 0;
		if (!strcmp(op, "list")) {
			struct qcow_snapshot_list l = {};

			rc = ioctl(fd, QCOW_SNAPSHOT_LIST, &l);
		} else if (!strcmp(op, "create")) {
			struct qcow_snapshot_cmd c = {};

			snprintf(c.name, sizeof(c.name), "h%lu", i);
			rc = ioctl(fd, QCOW_SNAPSHOT_CREATE, &c);
			if (!rc)
				printf("created %s\n", c.name);
		} else if (!strcmp(op, "read")) {
			rc = pread(fd, buf, sizeof(buf), (i % 64) * sizeof(buf)) ==
			     sizeof(buf) ? 0 : -1;
		} else if (strcmp(op, "none")) {
			return usage();
		}
		if (rc < 0) {
			e = errno;
			errs[e < 200 ? e : 0]++;
			/* what a device being torn down may answer */
			if (e != ENXIO && e != EIO && e != ENODEV) {
				printf("%s: unexpected %s\n", op, ename(e));
				bad++;
			}
		} else {
			ok++;
		}
		close(fd);
		if (pause)
			usleep(pause);
	}
	printf("hammer %s: %lu opens, %lu ok, %lu gone", op, opens, ok, gone);
	for (i = 0; i < ARRAY_SIZE(errs); i++)
		if (errs[i])
			printf(", %s %lu", i ? ename(i) : "E>=200", errs[i]);
	printf("\n");
	return bad ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * denied: every privileged call without CAP_SYS_ADMIN
 */

static int ndenied_bad;

static void denied(const char *what, int rc)
{
	int e = errno;

	if (rc < 0 && e == EPERM) {
		printf("EPERM %s\n", what);
	} else {
		printf("not denied: %s: %s\n", what, rc < 0 ? ename(e) : "succeeded");
		ndenied_bad++;
	}
}

static int cmd_denied(int argc, char **argv)
{
	struct qcow_snapshot_cmd c;
	struct qcow_snapshot_list l;
	struct qcow_features f;
	struct qcow_attach a;
	struct qcow_detach d;
	struct qcow_resize r;
	int fd, cfd;

	if (argc != 4)
		return usage();
	cfd = ctl();
	if (cfd < 0) {
		printf("not denied: open /dev/qcow-control: %s (the ioctl is to refuse)\n",
		       ename(errno));
		return 1;
	}
	memset(&f, 0, sizeof(f));
	denied("GET_FEATURES", ioctl(cfd, QCOW_CTL_GET_FEATURES, &f));
	memset(&a, 0, sizeof(a));
	a.image_fd = open(argv[1], O_RDONLY);
	a.flags = QCOW_ATTACH_READ_ONLY;
	if ((int)a.image_fd < 0) {
		printf("not denied: open %s: %s\n", argv[1], ename(errno));
		return 1;
	}
	denied("ATTACH", ioctl(cfd, QCOW_CTL_ATTACH, &a));
	d = (struct qcow_detach){ .index = strtoul(argv[2], NULL, 0) };
	denied("DETACH", ioctl(cfd, QCOW_CTL_DETACH, &d));
	d.flags = QCOW_DETACH_LAZY;
	denied("DETACH lazy", ioctl(cfd, QCOW_CTL_DETACH, &d));

	fd = dev_open(argv[3]);
	if (fd < 0) {
		printf("not denied: open %s: %s\n", argv[3], ename(errno));
		return 1;
	}
	memset(&c, 0, sizeof(c));
	strcpy(c.name, "denied");
	denied("SNAPSHOT_CREATE", ioctl(fd, QCOW_SNAPSHOT_CREATE, &c));
	memset(&l, 0, sizeof(l));
	denied("SNAPSHOT_LIST", ioctl(fd, QCOW_SNAPSHOT_LIST, &l));
	memset(&c, 0, sizeof(c));
	strcpy(c.name, "base");
	denied("SNAPSHOT_APPLY", ioctl(fd, QCOW_SNAPSHOT_APPLY, &c));
	memset(&c, 0, sizeof(c));
	strcpy(c.name, "base");
	denied("SNAPSHOT_DELETE", ioctl(fd, QCOW_SNAPSHOT_DELETE, &c));
	memset(&r, 0, sizeof(r));
	ioctl(fd, BLKGETSIZE64, &r.size);
	r.size += 1 << 20;
	denied("RESIZE", ioctl(fd, QCOW_RESIZE, &r));
	return ndenied_bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	while (argc > 2 && !strncmp(argv[1], "--", 2)) {
		if (!strcmp(argv[1], "--ctl-fd"))
			ctl_fd = atoi(argv[2]);
		else if (!strcmp(argv[1], "--dev-fd"))
			dev_fd = atoi(argv[2]);
		else
			return usage();
		argc -= 2;
		argv += 2;
	}
	if (argc < 2)
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	argc--;
	argv++;
	if (!strcmp(argv[0], "features"))
		return cmd_features();
	if (!strcmp(argv[0], "attach"))
		return cmd_attach(argc, argv);
	if (!strcmp(argv[0], "detach"))
		return cmd_detach(argc, argv);
	if (!strcmp(argv[0], "snap"))
		return cmd_snap(argc, argv);
	if (!strcmp(argv[0], "resize"))
		return cmd_resize(argc, argv);
	if (!strcmp(argv[0], "reserved"))
		return cmd_reserved(argc, argv);
	if (!strcmp(argv[0], "denied"))
		return cmd_denied(argc, argv);
	if (!strcmp(argv[0], "hammer"))
		return cmd_hammer(argc, argv);
	return usage();
}
