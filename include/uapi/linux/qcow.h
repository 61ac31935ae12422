/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * qcow: qcow2 images as block devices -- user/kernel ABI.
 *
 * Rules every command follows (see Documentation/ioctl-abi.rst):
 *  - each command carries one struct, sized and versioned by its _IOC number;
 *  - flags are checked against the command's *_ALL mask: unknown bits fail
 *    with -EINVAL, so new flags can be added without silent misbehaviour;
 *  - reserved fields must be zero on input (else -EINVAL) and are zeroed on
 *    output;
 *  - pointers and fd arrays travel as __u64;
 *  - unknown commands fail with -ENOTTY.
 *
 * Control commands go to /dev/qcow-control (misc device, minor
 * QCOW_CTRL_MINOR, autoloads the module on first open).
 */
#ifndef _UAPI_LINUX_QCOW_H
#define _UAPI_LINUX_QCOW_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define QCOW_CTRL_DEV_NAME	"qcow-control"
#define QCOW_CTRL_MINOR		248
#define QCOW_IOCTL_MAGIC	0xA7	/* unused in ioctl-number.rst */
#define QCOW_ABI_VERSION	1

/* Feature bits granted back by QCOW_CTL_GET_FEATURES. */
#define QCOW_FEAT_FORMAT_V2		(1ULL << 0)	/* qcow2 version 2 images */
#define QCOW_FEAT_FORMAT_V3		(1ULL << 1)	/* qcow2 version 3 images */
#define QCOW_FEAT_ALL			(QCOW_FEAT_FORMAT_V2 | QCOW_FEAT_FORMAT_V3)

/**
 * struct qcow_features - result of QCOW_CTL_GET_FEATURES
 * @abi_version: QCOW_ABI_VERSION of the running module (out)
 * @reserved0: must be zero
 * @features: QCOW_FEAT_* bits the module implements (out)
 * @max_devices: number of /dev/qcowN the module allows (out)
 * @reserved: must be zero
 */
struct qcow_features {
	__u32 abi_version;
	__u32 reserved0;
	__u64 features;
	__u32 max_devices;
	__u32 reserved[9];
};

#define QCOW_CTL_GET_FEATURES	_IOWR(QCOW_IOCTL_MAGIC, 0x00, struct qcow_features)

#endif /* _UAPI_LINUX_QCOW_H */
