// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl: command-line tool for qcow, qcow2 images as block devices.
 *
 * Commands are rows of qc_cmds[] below: adding one means writing its
 * function (taking argv with argv[0] == command name and returning a
 * QC_EXIT_* status) and a row.  Conventions every command keeps:
 *   - `qcowctl CMD --help` prints usage on stdout and exits 0;
 *   - a bad command line prints one line (with the usage) on stderr and
 *     exits 2;
 *   - a failed operation prints one line on stderr naming the cause
 *     ("qcowctl: disk.qcow2: cluster_bits: ...") and exits 1.
 */
#include <ctype.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/qcow.h>

#include "json.h"
#include "qcowctl.h"

#ifndef QCOWCTL_VERSION
#define QCOWCTL_VERSION "unknown"
#endif

const char *qc_progname = "qcowctl";

/* The option getopt_long() just refused (it prints nothing: opterr = 0). */
static char **qc_argv;

/* Commands with subcommands parse the subcommand's argv. */
void qc_set_argv(char **argv)
{
	qc_argv = argv;
}

static void qc_put_bad_option(FILE *out)
{
	/* optopt of a long option is its val, not a character */
	if (optopt > 0 && optopt < 0x7f && isgraph(optopt))
		fprintf(out, "invalid option '-%c'", optopt);
	else if (optind > 0 && qc_argv[optind - 1])
		fprintf(out, "invalid option '%s'", qc_argv[optind - 1]);
	else
		fputs("invalid option", out);
}

void qc_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", qc_progname);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void qc_cmd_usage(const struct qc_cmd *cmd, FILE *out)
{
	fprintf(out, "usage: %s %s %s\n", qc_progname, cmd->name, cmd->args);
	if (cmd->help)
		fprintf(out, "\n%s", cmd->help);
}

/**
 * qc_parse_json_opts() - options of a command that takes only --json/--help
 * @cmd: the command
 * @argc: argument count
 * @argv: arguments
 * @json: set when --json was given
 *
 * Return: -1 to go on (optind at the first operand), else the exit status
 * the command returns (help printed, or a usage error).
 */
int qc_parse_json_opts(const struct qc_cmd *cmd, int argc, char **argv,
		       bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	*json = false;
	optind = 0;
	while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			*json = true;
			break;
		case 'h':
			qc_cmd_usage(cmd, stdout);
			return QC_EXIT_OK;
		default:
			return qc_usage_error(cmd, NULL);
		}
	}
	return -1;
}

/*
 * Report a bad command line for @cmd as one line on stderr and return
 * QC_EXIT_USAGE.  With a NULL @fmt, the problem is the option getopt just
 * refused.
 */
int qc_usage_error(const struct qc_cmd *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: %s: ", qc_progname, cmd->name);
	if (fmt) {
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	} else {
		qc_put_bad_option(stderr);
	}
	fprintf(stderr, " (usage: %s %s %s)\n", qc_progname, cmd->name,
		cmd->args);
	return QC_EXIT_USAGE;
}

/* --- features ---------------------------------------------------------- */

static const struct {
	u64 bit;
	const char *name;
} qc_feature_names[] = {
	{ QCOW_FEAT_FORMAT_V2, "format-v2" },
	{ QCOW_FEAT_FORMAT_V3, "format-v3" },
	{ QCOW_FEAT_READ, "read" },
	{ QCOW_FEAT_BACKING, "backing" },
	{ QCOW_FEAT_COMPRESSED, "compressed" },
	{ QCOW_FEAT_EXTENDED_L2, "extended-l2" },
	{ QCOW_FEAT_WRITE, "write" },
	{ QCOW_FEAT_SNAPSHOT, "snapshot" },
	{ QCOW_FEAT_RESIZE, "resize" },
	{ QCOW_FEAT_ATTACH_INDEX, "attach-index" },
};

static const char *qc_feature_name(u64 bit)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(qc_feature_names); i++)
		if (qc_feature_names[i].bit == bit)
			return qc_feature_names[i].name;
	return NULL;
}

int cmd_features(const struct qc_cmd *cmd, int argc, char **argv)
{
	struct qcow_features f;
	struct json_writer w;
	bool json = false;
	unsigned int bit;
	const char *sep = "";
	int c, fd, ret;

	c = qc_parse_json_opts(cmd, argc, argv, &json);
	if (c >= 0)
		return c;
	if (optind != argc)
		return qc_usage_error(cmd, "too many arguments");

	fd = qc_ctl_open();
	if (fd < 0)
		return QC_EXIT_FAIL;
	ret = qc_ctl_get_features(fd, &f);
	close(fd);
	if (ret)
		return QC_EXIT_FAIL;

	if (json) {
		json_init(&w, stdout);
		json_object_begin(&w, NULL);
		json_u64(&w, "abi-version", f.abi_version);
		json_u64(&w, "tool-abi-version", QCOW_ABI_VERSION);
		json_u64(&w, "features-mask", f.features);
		json_array_begin(&w, "features");
		for (bit = 0; bit < 64; bit++) {
			char unknown[16];
			const char *name;

			if (!(f.features & BIT_ULL(bit)))
				continue;
			name = qc_feature_name(BIT_ULL(bit));
			if (!name) {
				snprintf(unknown, sizeof(unknown), "bit%u", bit);
				name = unknown;
			}
			json_string(&w, NULL, name);
		}
		json_array_end(&w);
		json_u64(&w, "max-devices", f.max_devices);
		json_object_end(&w);
	} else {
		printf("ABI version: %u (qcowctl built for %u)\n",
		       f.abi_version, QCOW_ABI_VERSION);
		printf("features:");
		for (bit = 0; bit < 64; bit++) {
			const char *name;

			if (!(f.features & BIT_ULL(bit)))
				continue;
			name = qc_feature_name(BIT_ULL(bit));
			if (name)
				printf("%s %s", sep, name);
			else
				printf("%s bit%u", sep, bit);
		}
		printf("%s\n", f.features ? "" : " none");
		printf("max devices: %u\n", f.max_devices);
	}
	if (fflush(stdout) || ferror(stdout)) {
		qc_err("write error on standard output");
		return QC_EXIT_FAIL;
	}
	return QC_EXIT_OK;
}

/* --- dispatch ---------------------------------------------------------- */

static int cmd_help(const struct qc_cmd *cmd, int argc, char **argv);

static const struct qc_cmd qc_cmds[] = {
	{
		.name = "attach",
		.fn = cmd_attach,
		.args = "[-r [-U]] [-P] [--cache-size SIZE] [--show] [-f | [-d] DEV] IMAGE | -f",
		.summary = "expose a qcow2 image as /dev/qcowN (prints the device)",
		.help =
		"Check the qcow2 image IMAGE with the module's format code, open it and\n"
		"its backing chain, and attach it as the lowest free /dev/qcowN (or as\n"
		"DEV).  The device is printed on stdout, always: --show is accepted\n"
		"for losetup's sake and changes nothing.  The disk is read-write\n"
		"unless -r is given.  `attach -f` alone prints the device the next\n"
		"attach would get, as `losetup -f` does.\n"
		"\n"
		"  -r, --read-only      expose the disk read-only; the image is never written\n"
		"  -U, --force-share    with -r only: attach even while another program\n"
		"                       (QEMU, qemu-nbd, a qcow device) writes the image, as\n"
		"                       qemu-img -U does; what the disk shows may then change\n"
		"                       or be inconsistent\n"
		"  -P, --partscan       scan the partition table: /dev/qcowNpM\n"
		"      --cache-size SIZE\n"
		"                       L2 metadata cache in bytes, or with a K, M or G suffix\n"
		"                       (binary: 1K = 1024), 64K..1G; 0 or absent: default\n"
		"  -f, --find           without IMAGE: print the lowest free /dev/qcowN and\n"
		"                       exit; with IMAGE: attach there (what attach does\n"
		"                       anyway)\n"
		"  -d, --device DEV     attach as DEV (/dev/qcowN, qcowN or N) rather than the\n"
		"                       lowest free device; fails if DEV is attached already.\n"
		"                       As with losetup, `attach DEV IMAGE` says the same\n"
		"      --show           print the device (it always is)\n"
		"  -h, --help           show this help\n"
		"\n"
		"Backing files: a relative name is resolved against the directory of the\n"
		"image that names it; the format comes from the image's backing-format\n"
		"extension (qcow2 or raw), or, when it has none, from the file's first\n"
		"bytes (qcow2 magic: qcow2, else raw).  This probing happens only here:\n"
		"the kernel never opens a path named in an image and never guesses a\n"
		"format; it gets the open files.  At most 16 layers, the image included.\n"
		"\n"
		"Locking: every file is locked the way QEMU locks it, until detach.  An\n"
		"image that QEMU, qemu-nbd or another qcow device is writing is refused\n"
		"(read-only too, unless -U); while attached, QEMU cannot write the image\n"
		"(nor read it, unless -U, when attached read-write) and cannot write any\n"
		"of its backing files.  A read-write attach also refuses an image marked\n"
		"corrupt or dirty (repair with 'qemu-img check -r all').\n",
	},
	{
		.name = "detach",
		.fn = cmd_detach,
		.args = "[-l] DEV|IMAGE... | -a",
		.summary = "remove /dev/qcowN devices",
		.help =
		"Remove the qcow device DEV (/dev/qcowN, qcowN or N), or the one IMAGE is\n"
		"attached as, after writing back all cached metadata.  A device that is\n"
		"open (mounted) is refused unless --lazy.  While udev handles events\n"
		"(it opens the disk to probe it), detach waits for it, as `udevadm\n"
		"settle` does, at most 10 seconds.\n"
		"\n"
		"  -l, --lazy   if the device is open, remove it on its last close\n"
		"  -a, --all    remove every qcow device\n"
		"  -h, --help   show this help\n",
	},
	{
		.name = "list",
		.fn = cmd_list,
		.args = "[--json | [-n] [-b] [-o COLUMNS | --output-all]]",
		.summary = "show the qcow devices and their images",
		.help =
		"Show every /dev/qcowN, one line each, from /sys/block/qcowN/qcow/, as\n"
		"`losetup --list` shows loop devices.  Prints nothing when there are no\n"
		"devices.\n"
		"\n"
		"  -j, --json           print {\"devices\": [...]} with every attribute\n"
		"  -n, --noheadings     leave out the heading line\n"
		"  -o, --output COLUMNS the columns to show, comma-separated (any case);\n"
		"                       +COLUMNS adds to the default ones\n"
		"      --output-all     show every column\n"
		"  -b, --bytes          sizes in bytes rather than 64K, 1.5G\n"
		"  -h, --help           show this help\n"
		"\n"
		"Columns (* shown by default):\n"
		"  DEVICE *   the device node\n"
		"  IMAGE *    the image file\n"
		"  SIZE *     virtual disk size\n"
		"  CLUSTER *  cluster size\n"
		"  RO *       1: attached read-only, 0: read-write\n"
		"  OPEN *     open count: opens of the disk, each open partition counting\n"
		"             once (mounts included); detach needs 0\n"
		"  BACKING *  backing chain, deepest file first (- for none)\n"
		"  CACHE *    L2 metadata cache size\n"
		"  HIT% *     L2 cache hit rate since attach (- before the first lookup)\n"
		"  VERSION    qcow2 version of the image\n"
		"  CORRUPT    1 once metadata was found inconsistent (writes then fail)\n"
		"  STOPPED    1 once a failed header write stopped every write\n"
		"  DIRTY      metadata slices waiting for write-back\n",
	},
	{
		.name = "snapshot",
		.fn = cmd_snapshot,
		.args = "create|list|apply|delete ...",
		.summary = "take, list, apply and delete snapshots of an attached disk",
		.help =
		"  qcowctl snapshot create DEV NAME\n"
		"      take a snapshot named NAME of the disk, online\n"
		"  qcowctl snapshot list [--json] DEV\n"
		"      show the snapshots (the table of `qemu-img snapshot -l`)\n"
		"  qcowctl snapshot apply DEV NAME|ID\n"
		"      revert the disk to a snapshot (refused while the disk is in use)\n"
		"  qcowctl snapshot delete DEV NAME|ID\n"
		"      delete a snapshot and free the clusters only it used\n"
		"\n"
		"Internal snapshots, as QEMU keeps them in the image: the module takes,\n"
		"reverts to and deletes them while the image stays attached, and\n"
		"`qemu-img snapshot` sees the same table after detach.  DEV is /dev/qcowN\n"
		"(or qcowN, N) or the path of the attached image.  NAME|ID: an argument\n"
		"equal to a snapshot's id selects it, otherwise it is a name (as in\n"
		"qemu-img).  Run 'qcowctl snapshot COMMAND --help' for one of them.\n",
	},
	{
		.name = "resize",
		.fn = cmd_resize,
		.args = "DEV [SIZE|+SIZE]",
		.summary = "grow an attached disk online, or show its size",
		.help =
		"Grow the disk DEV to SIZE bytes, or by SIZE bytes with +SIZE, while it\n"
		"stays attached (and mounted).  Without SIZE, print the disk's virtual\n"
		"size in bytes.  SIZE takes a K, M, G or T suffix (binary: 1K = 1024, as\n"
		"qemu-img does) and must be a multiple of 512.\n"
		"\n"
		"The module writes a larger L1 table to new clusters when the image needs\n"
		"one, then switches the table and the size in one header write, so a crash\n"
		"leaves the old size or the new one; the kernel announces the new capacity\n"
		"(a uevent with RESIZE=1), and `qemu-img info` shows it after detach.  The\n"
		"new range reads as zeros, or as the backing file where that is larger.\n"
		"Grow a file system on it afterwards (resize2fs, xfs_growfs).\n"
		"\n"
		"Refused: shrinking; a version 2 image with snapshots (QEMU refuses it\n"
		"too); a read-only attach.  DEV is /dev/qcowN (or qcowN, N) or the path\n"
		"of the attached image.\n"
		"\n"
		"  -h, --help   show this help\n",
	},
	{
		.name = "info",
		.fn = cmd_info,
		.args = "[--json] IMAGE",
		.summary = "show what an image's header, extensions and snapshot table say",
		.help =
		"Decode the header, header extensions, backing file name and snapshot\n"
		"table of the qcow2 image IMAGE with the kernel module's format code.\n"
		"\n"
		"  -j, --json   print one JSON object (names as `qemu-img info --output=json`)\n"
		"  -h, --help   show this help\n",
	},
	{
		.name = "check",
		.fn = cmd_check,
		.args = "[--json] [-r leaks] [-U] IMAGE",
		.summary = "look for leaks and corruption in an image, as qemu-img check",
		.help =
		"Walk every metadata structure of the qcow2 image IMAGE with the module's\n"
		"format code -- header, active L1 and L2 tables, every snapshot's tables,\n"
		"refcount table and blocks, bitmaps -- count the references to each host\n"
		"cluster and compare them with the stored refcounts, as 'qemu-img check'\n"
		"does (the counts agree with it).  Problems are printed on stderr, one\n"
		"line each, naming the cluster and what it holds; a summary on stdout.\n"
		"\n"
		"  -j, --json         print one JSON object (names as qemu-img check\n"
		"                     --output=json, plus \"problems\")\n"
		"  -r, --repair leaks lower the refcount of leaked clusters to their number\n"
		"                     of references (the image must not be in use), then\n"
		"                     check again; errors are never repaired\n"
		"  -U, --force-share  check even while another program writes the image\n"
		"  -h, --help         show this help\n"
		"\n"
		"Exit status: 0 no problem, 1 the check could not complete (unreadable\n"
		"image or refcounts, bad command line), 2 corruptions found, 3 leaked\n"
		"clusters found and nothing worse.  Leaks waste space; corruptions mean a\n"
		"refcount lower than the references to a cluster, a wrong COPIED flag or\n"
		"a damaged table entry: writing to such an image can lose data.\n",
	},
	{
		.name = "dump",
		.fn = cmd_dump,
		.args = "[--json] [--l2] [-U] IMAGE",
		.summary = "show every metadata table of an image and what each host cluster holds",
		.help =
		"Print the metadata of the qcow2 image IMAGE table by table, decoded by the\n"
		"module's format code: every header field, the header extensions, the\n"
		"active L1 table, the refcount table (each block: the clusters it covers,\n"
		"how many are in use), the snapshot table, the bitmap directory, and a\n"
		"map of the file: for each run of host clusters, what it holds (header,\n"
		"L1 or L2 table and the guest range it maps, refcount table or block,\n"
		"snapshot table, data and its guest offset, bitmap structures, free or\n"
		"leaked) with its refcount and the references 'qcowctl check' counted.\n"
		"\n"
		"  -j, --json         print one JSON object\n"
		"  -l, --l2           also every L2 table of the active state and of each\n"
		"                     snapshot, entry by entry (can be long)\n"
		"  -U, --force-share  read even while another program writes the image\n"
		"  -h, --help         show this help\n",
	},
	{
		.name = "map",
		.fn = cmd_map,
		.args = "[--json] [-U] IMAGE",
		.summary = "show where each guest byte of an image is, as qemu-img map",
		.help =
		"Show, for every run of guest bytes of the qcow2 image IMAGE, which layer\n"
		"of its backing chain holds it and where, as 'qemu-img map' does (the\n"
		"output is the same).  The backing chain is found and opened as attach\n"
		"finds it; the tables are decoded by the module's format code.\n"
		"\n"
		"  -j, --json         one object per run: start, length, depth (0: IMAGE,\n"
		"                     1: its backing file, ...), present (that layer has\n"
		"                     the bytes), zero (they read as zeros), data (they\n"
		"                     are stored), offset (where, when there is a place)\n"
		"  -U, --force-share  read even while another program writes the image\n"
		"  -h, --help         show this help\n"
		"\n"
		"Without --json: one line per run of stored data (guest offset, length,\n"
		"file offset, file); compressed clusters have no file offset to show, so\n"
		"an image with some needs --json.\n",
	},
	{
		.name = "features",
		.fn = cmd_features,
		.args = "[--json]",
		.summary = "show the ABI version and features of the loaded module",
		.help =
		"Ask /dev/" QCOW_CTRL_DEV_NAME " (QCOW_CTL_GET_FEATURES) for the module's ABI\n"
		"version, feature flags and device limit.\n"
		"\n"
		"  -j, --json   print one JSON object\n"
		"  -h, --help   show this help\n",
	},
	{
		/* the test suite's: attach's opening and locking, then wait */
		.name = "__lock-test",
		.fn = cmd_lock_test,
		.args = "[-r [-U]] IMAGE",
		.summary = "lock IMAGE as attach does; hold until stdin closes",
		.hidden = true,
	},
	{
		.name = "help",
		.fn = cmd_help,
		.args = "[COMMAND]",
		.summary = "show help for qcowctl or one command",
	},
};

static const struct qc_cmd *qc_find_cmd(const char *name)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(qc_cmds); i++)
		if (!strcmp(qc_cmds[i].name, name))
			return &qc_cmds[i];
	return NULL;
}

static void qc_usage(FILE *out)
{
	unsigned int i;

	fprintf(out,
		"usage: %s [--help] [--version] COMMAND [ARGS]\n"
		"\n"
		"qcow exposes qcow2 images as block devices (/dev/qcowN).\n"
		"\n"
		"commands:\n", qc_progname);
	for (i = 0; i < ARRAY_SIZE(qc_cmds); i++)
		if (!qc_cmds[i].hidden)
			fprintf(out, "  %-10s %s\n", qc_cmds[i].name,
				qc_cmds[i].summary);
	fprintf(out, "\nRun '%s COMMAND --help' for a command's options.\n",
		qc_progname);
}

static int cmd_help(const struct qc_cmd *cmd, int argc, char **argv)
{
	const struct qc_cmd *c;

	if (argc > 2)
		return qc_usage_error(cmd, "too many arguments");
	if (argc < 2) {
		qc_usage(stdout);
		return QC_EXIT_OK;
	}
	/* `help --help` and `help -h`: help's own usage, like other commands. */
	c = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ? cmd :
	    qc_find_cmd(argv[1]);
	if (!c) {
		qc_err("unknown command '%s'", argv[1]);
		return QC_EXIT_USAGE;
	}
	qc_cmd_usage(c, stdout);
	return QC_EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	const struct qc_cmd *cmd;
	int c;

	opterr = 0;
	qc_argv = argv;
	/* '+': stop at the command, its options are its own */
	while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			qc_usage(stdout);
			return QC_EXIT_OK;
		case 'V':
			printf("qcowctl %s (qcow ABI %u)\n", QCOWCTL_VERSION,
			       QCOW_ABI_VERSION);
			return QC_EXIT_OK;
		default:
			fprintf(stderr, "%s: ", qc_progname);
			qc_put_bad_option(stderr);
			fprintf(stderr, " (try '%s --help')\n", qc_progname);
			return QC_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		qc_err("missing command (try '%s --help')", qc_progname);
		return QC_EXIT_USAGE;
	}
	cmd = qc_find_cmd(argv[optind]);
	if (!cmd) {
		qc_err("unknown command '%s' (try '%s --help')", argv[optind],
		       qc_progname);
		return QC_EXIT_USAGE;
	}
	qc_argv = argv + optind;
	return cmd->fn(cmd, argc - optind, argv + optind);
}
