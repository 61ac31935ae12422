/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qcowctl: shared declarations of the command-line tool.
 *
 * Every subcommand is a row of the command table in qcowctl.c; a command
 * gets argv with argv[0] set to its own name, returns the process exit
 * status, and reports failures as one line on stderr through qc_err().
 */
#ifndef QCOWCTL_H
#define QCOWCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <linux/qcow.h>

#include "qcow2_format.h"

#define QC_EXIT_OK		0
#define QC_EXIT_FAIL		1	/* the operation failed */
#define QC_EXIT_USAGE		2	/* bad command line */

/**
 * struct qc_cmd - one subcommand
 * @name: word on the command line
 * @fn: implementation; returns a QC_EXIT_* status
 * @args: argument synopsis shown in usage lines
 * @summary: one line for `qcowctl --help`
 * @help: full help text for `qcowctl CMD --help` (after the usage line)
 * @hidden: left out of `qcowctl --help` (commands for the test suite)
 */
struct qc_cmd {
	const char *name;
	int (*fn)(const struct qc_cmd *cmd, int argc, char **argv);
	const char *args;
	const char *summary;
	const char *help;
	bool hidden;
};

extern const char *qc_progname;

__printf(1, 2) void qc_err(const char *fmt, ...);
int qc_usage_error(const struct qc_cmd *cmd, const char *fmt, ...)
	__printf(2, 3);
void qc_cmd_usage(const struct qc_cmd *cmd, FILE *out);
void qc_set_argv(char **argv);
int qc_parse_json_opts(const struct qc_cmd *cmd, int argc, char **argv,
		       bool *json);

/* Commands. */
int cmd_info(const struct qc_cmd *cmd, int argc, char **argv);
int cmd_features(const struct qc_cmd *cmd, int argc, char **argv);
int cmd_attach(const struct qc_cmd *cmd, int argc, char **argv);
int cmd_lock_test(const struct qc_cmd *cmd, int argc, char **argv);
int cmd_detach(const struct qc_cmd *cmd, int argc, char **argv);
int cmd_list(const struct qc_cmd *cmd, int argc, char **argv);
int cmd_snapshot(const struct qc_cmd *cmd, int argc, char **argv);
int cmd_check(const struct qc_cmd *cmd, int argc, char **argv);
int cmd_dump(const struct qc_cmd *cmd, int argc, char **argv);
int cmd_map(const struct qc_cmd *cmd, int argc, char **argv);
int cmd_resize(const struct qc_cmd *cmd, int argc, char **argv);

/* dev.c: the control device and /sys/block/qcowN/qcow/. */

struct qcow_features;

int qc_ctl_open(void);
int qc_ctl_get_features(int fd, struct qcow_features *f);
int qc_resolve_device(const char *arg, unsigned int *idx);
bool qc_parse_dev_name(const char *arg, unsigned int *idx);
bool qc_device_exists(unsigned int idx);
int qc_max_devices(unsigned int *max);
int qc_free_device(unsigned int *idx);
int qc_sysfs_u64(unsigned int idx, const char *attr, u64 *v);

/**
 * struct qc_devfd - an open qcow device (qc_dev_open())
 * @idx: N of /dev/qcowN
 * @path: "/dev/qcowN", the name used in messages
 * @fd: open file descriptor
 */
struct qc_devfd {
	unsigned int idx;
	char path[32];
	int fd;
};

int qc_dev_open(const char *arg, bool rw, const char *need_rw,
		struct qc_devfd *d);

/* image.c: reading an image file through the format core. */

/**
 * struct qc_image - an image file opened for inspection
 * @path: as given on the command line
 * @fd: read-only file descriptor
 * @file_size: bytes in the file (or block device)
 * @img: header and extensions decoded by qcow2_image_parse()
 */
struct qc_image {
	const char *path;
	int fd;
	u64 file_size;
	struct qcow2_image img;
};

/**
 * struct qc_snapshots - the snapshot table read from an image
 * @buf: the raw table (entries point into it)
 * @nr: number of entries
 * @sn: decoded entries
 */
struct qc_snapshots {
	void *buf;
	unsigned int nr;
	struct qcow2_snapshot *sn;
};

/* attach.c: an image and its backing chain, opened and locked. */

/**
 * struct qc_layer - one file of the chain
 * @path: name the file was opened by (allocated)
 * @disp: @path escaped for messages (allocated): names come from images
 * @fd: file descriptor, read-write for the top image of a read-write
 *	attach, else read-only; carries the layer's image locks
 * @format: QCOW_FMT_QCOW2 or QCOW_FMT_RAW
 * @dev: st_dev of the file, with @ino its identity for loop detection
 * @ino: st_ino of the file
 * @qi: decoded header of a qcow2 layer (owns @fd); NULL for raw
 */
struct qc_layer {
	char *path;
	char *disp;
	int fd;
	u32 format;
	dev_t dev;
	ino_t ino;
	struct qc_image *qi;
};

/**
 * struct qc_chain - an image and its backing files, top first
 * @nr: number of layers in @l
 * @read_only: the top image is opened and locked read-only
 * @force_share: lock sharing every permission (-U, read-only only)
 * @l: the layers
 */
struct qc_chain {
	unsigned int nr;
	bool read_only;
	bool force_share;
	struct qc_layer l[QCOW_MAX_LAYERS];
};

int qc_chain_open(struct qc_chain *ch, const char *image, bool read_only,
		  bool force_share);
void qc_chain_free(struct qc_chain *ch);
const char *qc_disp(const struct qc_layer *l);

struct qc_image *qc_image_open(const char *path);
struct qc_image *qc_image_open_fd(const char *path, int fd);
void qc_image_close(struct qc_image *qi);
int qc_image_read_snapshots(struct qc_image *qi, struct qc_snapshots *sns);
void qc_snapshots_free(struct qc_snapshots *sns);
int qc_pread_full(int fd, void *buf, size_t len, u64 off);

/* util.c */

/*
 * Detach and snapshot apply need the disk closed, but udev opens a disk
 * for a moment while it handles the disk's events (a new disk, a change,
 * a close after writing): on EBUSY they wait while udev has events queued,
 * as `udevadm settle` does, at most this long, and try again.
 */
#define QC_BUSY_WAIT_MS		10000

/**
 * struct qc_busy - state of qc_busy_retry() for one call
 * @tries: retries granted so far
 * @waited_ms: time spent waiting for udev
 */
struct qc_busy {
	unsigned int tries;
	unsigned int waited_ms;
};

bool qc_busy_retry(struct qc_busy *b);
void qc_size_str(char *buf, size_t len, u64 size);
void qc_size_short(char *buf, size_t len, u64 size);
int qc_parse_size(const char *s, u64 *out);
void qc_put_text(FILE *out, const char *s, size_t len);
char *qc_escape(const char *s);
const char *qc_compression_name(unsigned int type);
const char *qc_crypt_name(unsigned int method);

#endif /* QCOWCTL_H */
