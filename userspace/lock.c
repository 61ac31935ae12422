// SPDX-License-Identifier: GPL-2.0
/*
 * qcowctl: QEMU-compatible image locking (see lock.h for the scheme).
 *
 * Which permissions a use takes and shares follows QEMU's block layer for
 * a qcow2 node over a file node, as QEMU 7.2 (Debian 12) applies them and
 * as /proc/locks shows them while qemu-io holds an image:
 *
 *  - the image file carries the qcow2 metadata, so its user needs it
 *    consistent and never lets anyone else write or resize it; a writer
 *    also needs "resize" (clusters are appended to the file):
 *	read-write:  uses consistent-read, write, resize   (bytes 100 101 103)
 *	             shares consistent-read, write-unchanged (locks 201 203)
 *	read-only:   uses consistent-read                  (byte 100)
 *	             shares the same two                   (locks 201 203)
 *  - a backing file is read for copy-on-write; a node that does not cope
 *    with its backing file changing (qcow2 does not) shares neither write
 *    nor resize of it: the same bytes as a read-only image;
 *  - force-share (qemu-img -U), allowed for read-only use only, shares
 *    everything: only byte 100 is locked and nothing a writer takes
 *    conflicts with it.
 *
 * Like QEMU, the locks are applied first and the conflicts checked after,
 * so of two users racing for conflicting permissions at least one sees the
 * other.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "lock.h"

/**
 * qc_lock_perms_for() - the permissions QEMU takes for @use of a file
 * @use: what the file is used for
 * @force_share: share every permission (qemu-img -U); read-only uses only
 * @p: filled in
 */
void qc_lock_perms_for(enum qc_lock_use use, bool force_share,
		       struct qc_lock_perms *p)
{
	p->perm = QC_PERM_CONSISTENT_READ;
	if (use == QC_LOCK_READ_WRITE)
		p->perm |= QC_PERM_WRITE | QC_PERM_RESIZE;
	/* nobody may change the file under the qcow2 metadata */
	p->shared = QC_PERM_ALL & ~(QC_PERM_WRITE | QC_PERM_RESIZE);
	if (force_share && use != QC_LOCK_READ_WRITE)
		p->shared = QC_PERM_ALL;
}

/* A shared lock on one byte; -EBUSY if an exclusive lock is in the way. */
static int qc_ofd_lock(int fd, int byte)
{
	struct flock fl = {
		.l_type = F_RDLCK,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	if (fcntl(fd, F_OFD_SETLK, &fl) < 0)
		return errno == EACCES || errno == EAGAIN ? -EBUSY : -errno;
	return 0;
}

/*
 * Would an exclusive lock on @byte conflict with a lock someone else holds?
 * Locks of @fd's own open file description never conflict.
 */
static int qc_ofd_test(int fd, int byte)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = byte,
		.l_len = 1,
	};

	if (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		return -errno;
	return fl.l_type == F_UNLCK ? 0 : -EAGAIN;
}

/**
 * qc_lock_apply() - take the lock bytes for @p on @fd
 * @fd: the file; the locks belong to its open file description and go
 *	away when the last descriptor (or kernel reference) to it is closed
 * @p: permissions used and shared
 * @byte: set to the byte that could not be locked on failure
 *
 * Return: 0; -EBUSY if someone holds an exclusive lock on one of the
 * bytes (QEMU never does); another -errno if the file cannot be locked.
 */
int qc_lock_apply(int fd, const struct qc_lock_perms *p, int *byte)
{
	unsigned int i;
	int ret, off;

	for (i = 0; i < QC_NR_PERMS; i++) {
		if (p->perm & (1U << i)) {
			off = QC_LOCK_PERM_BASE + i;
			ret = qc_ofd_lock(fd, off);
			if (ret)
				goto fail;
		}
		if (!(p->shared & (1U << i))) {
			off = QC_LOCK_SHARED_BASE + i;
			ret = qc_ofd_lock(fd, off);
			if (ret)
				goto fail;
		}
	}
	return 0;
fail:
	*byte = off;
	return ret;
}

/**
 * qc_lock_check() - look for other users that conflict with @p
 * @fd: the file
 * @p: permissions we use and share
 * @byte: set to the lock byte found held on -EAGAIN
 *
 * A permission we do not share conflicts with someone holding its byte at
 * QC_LOCK_PERM_BASE (they use it); a permission we use conflicts with
 * someone holding its byte at QC_LOCK_SHARED_BASE (they forbid it).  The
 * first kind is looked for first: "someone writes" says more than
 * "someone forbids writers".
 *
 * Return: 0 if nobody conflicts, -EAGAIN, or another -errno.
 */
int qc_lock_check(int fd, const struct qc_lock_perms *p, int *byte)
{
	unsigned int i;
	int ret, off;

	for (i = 0; i < QC_NR_PERMS; i++) {
		if (p->shared & (1U << i))
			continue;
		off = QC_LOCK_PERM_BASE + i;
		ret = qc_ofd_test(fd, off);
		if (ret) {
			*byte = off;
			return ret;
		}
	}
	for (i = 0; i < QC_NR_PERMS; i++) {
		if (!(p->perm & (1U << i)))
			continue;
		off = QC_LOCK_SHARED_BASE + i;
		ret = qc_ofd_test(fd, off);
		if (ret) {
			*byte = off;
			return ret;
		}
	}
	return 0;
}

/**
 * qc_lock_take() - apply the locks for @p on @fd, then check for conflicts
 * @fd: the file
 * @p: permissions used and shared
 * @byte: on failure, the lock byte someone else holds or that could not
 *	  be locked
 *
 * On failure the caller closes @fd, which drops what was applied.
 *
 * Return: 0, -EAGAIN on a conflict, -EBUSY if an exclusive lock is in the
 * way, another -errno if locking failed.
 */
int qc_lock_take(int fd, const struct qc_lock_perms *p, int *byte)
{
	int ret;

	ret = qc_lock_apply(fd, p, byte);
	if (ret)
		return ret;
	return qc_lock_check(fd, p, byte);
}

/**
 * qc_lock_byte_str() - what a held lock byte says about its holder
 * @byte: QC_LOCK_PERM_BASE + bit or QC_LOCK_SHARED_BASE + bit
 *
 * Return: a phrase that completes "another process ... has it ...".
 */
const char *qc_lock_byte_str(int byte)
{
	static const char *const use[QC_NR_PERMS] = {
		"open for consistent reads",
		"open for writing",
		"open for unchanging writes",
		"open with permission to resize it",
	};
	static const char *const deny[QC_NR_PERMS] = {
		"open and forbids consistent reads by others",
		"open and forbids writing by others",
		"open and forbids unchanging writes by others",
		"open and forbids resizing by others",
	};
	unsigned int i;

	if (byte >= QC_LOCK_PERM_BASE && byte < QC_LOCK_PERM_BASE + QC_NR_PERMS) {
		i = byte - QC_LOCK_PERM_BASE;
		return use[i];
	}
	if (byte >= QC_LOCK_SHARED_BASE &&
	    byte < QC_LOCK_SHARED_BASE + QC_NR_PERMS) {
		i = byte - QC_LOCK_SHARED_BASE;
		return deny[i];
	}
	return "locked";
}
