/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace shim for <linux/errno.h>: the uapi errno values, plus the
 * kernel-internal ones that never reach userspace as such.
 */
#ifndef _QCOW_SHIM_LINUX_ERRNO_H
#define _QCOW_SHIM_LINUX_ERRNO_H

#include_next <linux/errno.h>

#define ERESTARTSYS	512
#define ENOIOCTLCMD	515
#define EPROBE_DEFER	517
#define EOPENSTALE	518
#define ENOPARAM	519
#define EBADHANDLE	521
#define ENOTSUPP	524
#define EBADTYPE	527
#define EJUKEBOX	528
#define EIOCBQUEUED	529

#define MAX_ERRNO	4095

#endif /* _QCOW_SHIM_LINUX_ERRNO_H */
