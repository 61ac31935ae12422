/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qcowctl: image locking that QEMU understands.
 *
 * QEMU's file-posix driver advertises, on every image file it opens, which
 * block-layer permissions it uses and which it refuses to share, as shared
 * (F_RDLCK) open-file-description locks on single bytes:
 *
 *	byte QC_LOCK_PERM_BASE + bit	held: "I use permission bit"
 *	byte QC_LOCK_SHARED_BASE + bit	held: "nobody else may use bit"
 *
 * Locks of this kind never conflict with each other; a conflict is found by
 * asking F_OFD_GETLK whether an exclusive lock on the opposite byte could be
 * had.  qcowctl takes the same bytes QEMU 6.2+ takes for the same use of a
 * qcow2 image, on the very file descriptors it hands to the kernel: the
 * module keeps those open files (and so their OFD locks) for the life of the
 * attachment, long after qcowctl has exited.  See Documentation/design.rst,
 * "Image locking".
 */
#ifndef QCOWCTL_LOCK_H
#define QCOWCTL_LOCK_H

#include <stdbool.h>

/* QEMU's block permission bits (include/block/block-common.h). */
#define QC_PERM_CONSISTENT_READ		0x01
#define QC_PERM_WRITE			0x02
#define QC_PERM_WRITE_UNCHANGED		0x04
#define QC_PERM_RESIZE			0x08
#define QC_PERM_ALL			0x0f
#define QC_NR_PERMS			4

/* Byte offsets of the lock ranges (QEMU block/file-posix.c). */
#define QC_LOCK_PERM_BASE		100
#define QC_LOCK_SHARED_BASE		200

/**
 * enum qc_lock_use - what a file of an attachment is used for
 * @QC_LOCK_READ_WRITE: the top image of a read-write attach
 * @QC_LOCK_READ_ONLY: the top image of a read-only attach
 * @QC_LOCK_BACKING: a backing file (always read-only)
 */
enum qc_lock_use {
	QC_LOCK_READ_WRITE,
	QC_LOCK_READ_ONLY,
	QC_LOCK_BACKING,
};

/**
 * struct qc_lock_perms - permissions a holder takes on one file
 * @perm: QC_PERM_* bits it uses (locked at QC_LOCK_PERM_BASE + bit)
 * @shared: QC_PERM_* bits it lets others use (the bits *not* in @shared
 *	    are locked at QC_LOCK_SHARED_BASE + bit)
 */
struct qc_lock_perms {
	unsigned int perm;
	unsigned int shared;
};

void qc_lock_perms_for(enum qc_lock_use use, bool force_share,
		       struct qc_lock_perms *p);
int qc_lock_apply(int fd, const struct qc_lock_perms *p, int *byte);
int qc_lock_check(int fd, const struct qc_lock_perms *p, int *byte);
const char *qc_lock_byte_str(int byte);
int qc_lock_take(int fd, const struct qc_lock_perms *p, int *byte);

#endif /* QCOWCTL_LOCK_H */
