// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl snapshot create|list|apply|delete: internal snapshots of an
 * attached image, taken and managed online by the module through the
 * QCOW_SNAPSHOT_* ioctls on /dev/qcowN itself (include/uapi/linux/qcow.h).
 *
 * DEV is resolved as detach resolves it (/dev/qcowN, qcowN, N, another node
 * of the disk, or the path of the attached image).  Apply and delete take
 * NAME|ID the way qemu-img does: an argument equal to an existing
 * snapshot's id selects that id, anything else is a name.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/qcow.h>

#include "json.h"
#include "qcowctl.h"

#define NSEC_PER_SEC	1000000000ULL

enum qc_snap_op { SNAP_CREATE, SNAP_LIST, SNAP_APPLY, SNAP_DELETE };

static const char * const qc_snap_ioctl_names[] = {
	[SNAP_CREATE] = "QCOW_SNAPSHOT_CREATE",
	[SNAP_LIST] = "QCOW_SNAPSHOT_LIST",
	[SNAP_APPLY] = "QCOW_SNAPSHOT_APPLY",
	[SNAP_DELETE] = "QCOW_SNAPSHOT_DELETE",
};

/*
 * One line on stderr for a failed snapshot ioctl.  @what is the snapshot
 * as the user named it (NULL for list).
 */
static void qc_snap_report(const struct qc_devfd *d, enum qc_snap_op op,
			   const char *what, int err)
{
	char *w = what ? qc_escape(what) : NULL;
	const char *s = w ? w : "";

	switch (err) {
	case ENOTTY:
		qc_err("%s: the module does not support snapshots", d->path);
		break;
	case EEXIST:
		qc_err("%s: snapshot '%s' already exists", d->path, s);
		break;
	case ENOENT:
		qc_err("%s: no snapshot '%s'", d->path, s);
		break;
	case EBUSY:
		if (op == SNAP_APPLY)
			qc_err("%s: device is in use (mounted or open elsewhere); unmount it first",
			       d->path);
		else
			qc_err("%s: device is busy", d->path);
		break;
	case ENXIO:
		qc_err("%s: the device is being detached", d->path);
		break;
	case EROFS:
		qc_err("%s: attached read-only; snapshots need a read-write attach",
		       d->path);
		break;
	case ENOSPC:
		qc_err("%s: no space for %s: the snapshot table or the file system holding the image is full",
		       d->path, op == SNAP_CREATE ? "a new snapshot" : "the change");
		break;
	case EPERM:
	case EACCES:
		qc_err("%s: snapshots need root (CAP_SYS_ADMIN)", d->path);
		break;
	case ERANGE:
		qc_err("%s: a cluster's refcount would exceed what the image's refcount_bits can hold; convert it with a wider refcount_bits (qemu-img amend -o refcount_bits=16)",
		       d->path);
		break;
	case ENAMETOOLONG:
		qc_err("%s: snapshot name too long (at most %u bytes)", d->path,
		       QCOW_SNAPSHOT_NAME_LEN);
		break;
	case EIO:
		qc_err("%s: %s: I/O error (the kernel log says more)", d->path,
		       qc_snap_ioctl_names[op]);
		break;
	default:
		qc_err("%s: %s: %s", d->path, qc_snap_ioctl_names[op],
		       strerror(err));
		break;
	}
	free(w);
}

/*
 * QCOW_SNAPSHOT_LIST into a buffer that fits: *@out (free() it) and its
 * number of entries.  Return: 0, or -1 after printing one line on stderr.
 */
static int qc_snap_list(const struct qc_devfd *d,
			struct qcow_snapshot_info **out, unsigned int *nr)
{
	struct qcow_snapshot_info *buf = NULL, *n;
	struct qcow_snapshot_list l;
	unsigned int i, cap = 16;

	for (;;) {
		n = reallocarray(buf, cap, sizeof(*buf));
		if (!n) {
			qc_err("%s", strerror(ENOMEM));
			free(buf);
			return -1;
		}
		buf = n;
		memset(buf, 0, cap * sizeof(*buf));
		memset(&l, 0, sizeof(l));
		l.entries = (u64)(uintptr_t)buf;
		l.count = cap;
		if (ioctl(d->fd, QCOW_SNAPSHOT_LIST, &l)) {
			qc_snap_report(d, SNAP_LIST, NULL, errno);
			free(buf);
			return -1;
		}
		if (l.count <= cap)
			break;
		/* more than fit (or snapshots were created meanwhile) */
		cap = l.count + 16;
	}
	/* strings the kernel filled in, terminated within their fields */
	for (i = 0; i < l.count; i++) {
		buf[i].id[sizeof(buf[i].id) - 1] = '\0';
		buf[i].name[sizeof(buf[i].name) - 1] = '\0';
	}
	*out = buf;
	*nr = l.count;
	return 0;
}

static void qc_snap_clock(char *buf, size_t len, u64 nsec)
{
	u64 secs = nsec / NSEC_PER_SEC;

	snprintf(buf, len, "%02llu:%02u:%02u.%03u", secs / 3600,
		 (unsigned int)(secs / 60 % 60), (unsigned int)(secs % 60),
		 (unsigned int)(nsec / 1000000 % 1000));
}

/*
 * The table `qemu-img snapshot -l` prints, column for column (its ICOUNT
 * stays empty: the ioctl does not report an instruction count, and
 * disk-only snapshots have none).  No snapshots: no output, as qemu-img.
 */
static void qc_snap_table(const struct qcow_snapshot_info *sn, unsigned int nr)
{
	unsigned int i;

	if (!nr)
		return;
	printf("Snapshot list:\n");
	printf("%-10s%-17s%8s%20s%13s%11s\n", "ID", "TAG", "VM SIZE", "DATE",
	       "VM CLOCK", "ICOUNT");
	for (i = 0; i < nr; i++) {
		const char *id = sn[i].id;
		const char *name = sn[i].name;
		char vmsize[32], date[32], clock[32];
		time_t t = (time_t)sn[i].date_sec;
		struct tm tm;
		int pad;

		qc_size_str(vmsize, sizeof(vmsize), sn[i].vm_state_size);
		if (localtime_r(&t, &tm))
			strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
		else
			snprintf(date, sizeof(date), "%llu", sn[i].date_sec);
		qc_snap_clock(clock, sizeof(clock), sn[i].vm_clock_nsec);

		/* qemu-img: "%-9s %-16s %8s%20s%13s%11s" */
		qc_put_text(stdout, id, strlen(id));
		pad = 9 - (int)strlen(id);
		printf("%*s ", pad > 0 ? pad : 0, "");
		qc_put_text(stdout, name, strlen(name));
		pad = 16 - (int)strlen(name);
		printf("%*s ", pad > 0 ? pad : 0, "");
		printf("%8s%20s%13s%11s\n", vmsize, date, clock, "");
	}
}

static void qc_snap_json(const struct qcow_snapshot_info *sn, unsigned int nr)
{
	struct json_writer w;
	unsigned int i;

	json_init(&w, stdout);
	json_array_begin(&w, NULL);
	for (i = 0; i < nr; i++) {
		json_object_begin(&w, NULL);
		json_string(&w, "id", sn[i].id);
		json_string(&w, "name", sn[i].name);
		json_u64(&w, "date_sec", sn[i].date_sec);
		json_u64(&w, "date_nsec", sn[i].date_nsec);
		json_u64(&w, "vm_clock_nsec", sn[i].vm_clock_nsec);
		json_u64(&w, "disk_size", sn[i].disk_size);
		json_u64(&w, "vm_state_size", sn[i].vm_state_size);
		json_object_end(&w);
	}
	json_array_end(&w);
}

/* --- subcommands ------------------------------------------------------- */

/*
 * Options of a subcommand that takes --help (and, with @json non-NULL,
 * --json) only.  Return: -1 to go on, else the exit status.
 */
static int qc_snap_opts(const struct qc_cmd *cmd, int argc, char **argv,
			bool *json)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	if (json)
		return qc_parse_json_opts(cmd, argc, argv, json);
	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			qc_cmd_usage(cmd, stdout);
			return QC_EXIT_OK;
		}
		return qc_usage_error(cmd, NULL);
	}
	return -1;
}

/* Operands after the options: exactly @want of them, named in @names. */
static int qc_snap_operands(const struct qc_cmd *cmd, int argc, int want,
			    const char * const *names)
{
	int have = argc - optind;

	if (have > want)
		return qc_usage_error(cmd, "too many arguments");
	if (have < want)
		return qc_usage_error(cmd, "missing %s", names[have]);
	return -1;
}

/* @max: longest accepted (QEMU's limit for new names, the field's else). */
static int qc_snap_check_name(const struct qc_cmd *cmd, const char *name,
			      const char *what, size_t max)
{
	size_t len = strlen(name);

	if (!len)
		return qc_usage_error(cmd, "the snapshot %s is empty", what);
	if (len > max)
		return qc_usage_error(cmd,
				      "the snapshot %s is %zu bytes long, at most %zu are allowed",
				      what, len, max);
	return -1;
}

static int snap_create(const struct qc_cmd *cmd, int argc, char **argv)
{
	static const char * const names[] = { "DEV", "NAME" };
	struct qcow_snapshot_cmd sc;
	struct qc_devfd d;
	int ret;

	ret = qc_snap_opts(cmd, argc, argv, NULL);
	if (ret < 0)
		ret = qc_snap_operands(cmd, argc, 2, names);
	if (ret < 0)
		ret = qc_snap_check_name(cmd, argv[optind + 1], "name",
					 QCOW_SNAPSHOT_NAME_LEN);
	if (ret >= 0)
		return ret;

	if (qc_dev_open(argv[optind], true, "snapshots need", &d))
		return QC_EXIT_FAIL;
	memset(&sc, 0, sizeof(sc));
	strcpy(sc.name, argv[optind + 1]);
	ret = QC_EXIT_OK;
	if (ioctl(d.fd, QCOW_SNAPSHOT_CREATE, &sc)) {
		qc_snap_report(&d, SNAP_CREATE, argv[optind + 1], errno);
		ret = QC_EXIT_FAIL;
	}
	close(d.fd);
	return ret;
}

static int snap_list(const struct qc_cmd *cmd, int argc, char **argv)
{
	static const char * const names[] = { "DEV" };
	struct qcow_snapshot_info *sn;
	struct qc_devfd d;
	unsigned int nr;
	bool json;
	int ret;

	ret = qc_snap_opts(cmd, argc, argv, &json);
	if (ret < 0)
		ret = qc_snap_operands(cmd, argc, 1, names);
	if (ret >= 0)
		return ret;

	if (qc_dev_open(argv[optind], false, "snapshots need", &d))
		return QC_EXIT_FAIL;
	ret = qc_snap_list(&d, &sn, &nr);
	close(d.fd);
	if (ret)
		return QC_EXIT_FAIL;
	if (json)
		qc_snap_json(sn, nr);
	else
		qc_snap_table(sn, nr);
	free(sn);
	if (fflush(stdout) || ferror(stdout)) {
		qc_err("write error on standard output");
		return QC_EXIT_FAIL;
	}
	return QC_EXIT_OK;
}

/* apply and delete: NAME|ID as qemu-img takes it, an id first. */
static int snap_select(const struct qc_cmd *cmd, int argc, char **argv,
		       enum qc_snap_op op)
{
	static const char * const names[] = { "DEV", "NAME|ID" };
	unsigned long req = op == SNAP_APPLY ? QCOW_SNAPSHOT_APPLY :
					       QCOW_SNAPSHOT_DELETE;
	struct qcow_snapshot_info *sn;
	struct qcow_snapshot_cmd sc;
	struct qc_devfd d;
	const char *arg;
	struct qc_busy busy = {};
	unsigned int i, nr;
	int ret;

	ret = qc_snap_opts(cmd, argc, argv, NULL);
	if (ret < 0)
		ret = qc_snap_operands(cmd, argc, 2, names);
	if (ret < 0)
		ret = qc_snap_check_name(cmd, argv[optind + 1], "name or id",
					 QCOW_SNAPSHOT_NAME_MAX - 1);
	if (ret >= 0)
		return ret;
	arg = argv[optind + 1];

	if (qc_dev_open(argv[optind], true, "snapshots need", &d))
		return QC_EXIT_FAIL;
	if (qc_snap_list(&d, &sn, &nr)) {
		close(d.fd);
		return QC_EXIT_FAIL;
	}
	memset(&sc, 0, sizeof(sc));
	for (i = 0; i < nr; i++)
		if (!strcmp(sn[i].id, arg))
			break;
	if (i < nr)
		strcpy(sc.id, sn[i].id);
	else
		strcpy(sc.name, arg);
	free(sn);

	ret = QC_EXIT_OK;
	while (ioctl(d.fd, req, &sc)) {
		int err = errno;	/* qc_busy_retry() may change errno */

		/* apply: udev's short opens (probing the disk) are waited out */
		if (err == EBUSY && op == SNAP_APPLY && qc_busy_retry(&busy))
			continue;
		qc_snap_report(&d, op, arg, err);
		ret = QC_EXIT_FAIL;
		break;
	}
	close(d.fd);
	return ret;
}

static int snap_apply(const struct qc_cmd *cmd, int argc, char **argv)
{
	return snap_select(cmd, argc, argv, SNAP_APPLY);
}

static int snap_delete(const struct qc_cmd *cmd, int argc, char **argv)
{
	return snap_select(cmd, argc, argv, SNAP_DELETE);
}

static const struct qc_cmd qc_snap_cmds[] = {
	{
		.name = "snapshot create",
		.fn = snap_create,
		.args = "DEV NAME",
		.summary = "take a snapshot of the attached disk",
		.help =
		"Take an internal snapshot named NAME of the disk DEV while it stays\n"
		"attached (and mounted): the module pauses I/O, writes back what is\n"
		"cached, and records the disk's current content in the image the way\n"
		"QEMU does, so `qemu-img snapshot -l` lists it after detach.  Names are\n"
		"unique per image, 1 to 255 bytes (QEMU's limit).  Prints nothing; the\n"
		"id the snapshot got is in `qcowctl snapshot list DEV`.\n"
		"\n"
		"Of a mounted file system, the snapshot holds what a power cut at that\n"
		"moment would leave on the disk (a journalled file system recovers from\n"
		"it); run `sync`, or `fsfreeze --freeze` and `--unfreeze` around the\n"
		"command, for a clean one.\n"
		"\n"
		"DEV is /dev/qcowN (or qcowN, N) or the path of the attached image.\n"
		"The disk must be attached read-write.\n"
		"\n"
		"  -h, --help   show this help\n",
	},
	{
		.name = "snapshot list",
		.fn = snap_list,
		.args = "[--json] DEV",
		.summary = "show the snapshots of the attached disk",
		.help =
		"Show the internal snapshots of the disk DEV in table order, in the\n"
		"columns of `qemu-img snapshot -l`.  Prints nothing when there are none.\n"
		"\n"
		"DEV is /dev/qcowN (or qcowN, N) or the path of the attached image.\n"
		"\n"
		"  -j, --json   print a JSON array of objects: id, name, date_sec,\n"
		"               date_nsec, vm_clock_nsec, disk_size, vm_state_size\n"
		"  -h, --help   show this help\n",
	},
	{
		.name = "snapshot apply",
		.fn = snap_apply,
		.args = "DEV NAME|ID",
		.summary = "revert the attached disk to a snapshot",
		.help =
		"Revert the disk DEV to the snapshot NAME|ID: the disk's content (and\n"
		"size) become what they were when the snapshot was taken; what was\n"
		"written since is lost.  An argument equal to a snapshot's id selects\n"
		"that snapshot, otherwise the one with that name (as `qemu-img snapshot\n"
		"-a` does).  Refused while anyone else has the disk open: unmount it\n"
		"first.  While udev handles events (it opens the disk to probe it),\n"
		"apply waits for it, as `udevadm settle` does, at most 10 seconds.\n"
		"\n"
		"DEV is /dev/qcowN (or qcowN, N) or the path of the attached image.\n"
		"The disk must be attached read-write.\n"
		"\n"
		"  -h, --help   show this help\n",
	},
	{
		.name = "snapshot delete",
		.fn = snap_delete,
		.args = "DEV NAME|ID",
		.summary = "delete a snapshot of the attached disk",
		.help =
		"Delete the snapshot NAME|ID of the disk DEV; the clusters only it used\n"
		"are freed and the image file shrinks.  NAME|ID is taken as with apply.\n"
		"\n"
		"DEV is /dev/qcowN (or qcowN, N) or the path of the attached image.\n"
		"The disk must be attached read-write.\n"
		"\n"
		"  -h, --help   show this help\n",
	},
};

int cmd_snapshot(const struct qc_cmd *cmd, int argc, char **argv)
{
	unsigned int i;

	if (argc < 2)
		return qc_usage_error(cmd, "missing subcommand (create, list, apply or delete)");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		qc_cmd_usage(cmd, stdout);
		return QC_EXIT_OK;
	}
	for (i = 0; i < ARRAY_SIZE(qc_snap_cmds); i++) {
		const struct qc_cmd *sub = &qc_snap_cmds[i];

		/* "snapshot create" -> "create" */
		if (strcmp(strchr(sub->name, ' ') + 1, argv[1]))
			continue;
		qc_set_argv(argv + 1);
		return sub->fn(sub, argc - 1, argv + 1);
	}
	return qc_usage_error(cmd, "unknown subcommand '%s' (create, list, apply or delete)",
			      argv[1]);
}
