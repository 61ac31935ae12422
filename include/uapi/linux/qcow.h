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
#define QCOW_FEAT_READ			(1ULL << 2)	/* attach, read path */
#define QCOW_FEAT_BACKING		(1ULL << 3)	/* backing chains (raw, qcow2) */
#define QCOW_FEAT_COMPRESSED		(1ULL << 4)	/* deflate and zstd clusters */
#define QCOW_FEAT_EXTENDED_L2		(1ULL << 5)	/* subclusters */
#define QCOW_FEAT_WRITE			(1ULL << 6)	/* read-write attach */
#define QCOW_FEAT_SNAPSHOT		(1ULL << 7)	/* QCOW_SNAPSHOT_* ioctls */
#define QCOW_FEAT_RESIZE		(1ULL << 8)	/* QCOW_RESIZE ioctl */
#define QCOW_FEAT_ATTACH_INDEX		(1ULL << 9)	/* QCOW_ATTACH_INDEX flag */
#define QCOW_FEAT_ALL			(QCOW_FEAT_FORMAT_V2 | QCOW_FEAT_FORMAT_V3 | \
					 QCOW_FEAT_READ | QCOW_FEAT_BACKING | \
					 QCOW_FEAT_COMPRESSED | QCOW_FEAT_EXTENDED_L2 | \
					 QCOW_FEAT_WRITE | QCOW_FEAT_SNAPSHOT | \
					 QCOW_FEAT_RESIZE | QCOW_FEAT_ATTACH_INDEX)

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

/* Image layer formats (struct qcow_layer_desc.format). */
#define QCOW_FMT_QCOW2		1
#define QCOW_FMT_RAW		2

/* Deepest backing chain accepted, top image included. */
#define QCOW_MAX_LAYERS		16

/**
 * struct qcow_layer_desc - one backing layer passed to QCOW_CTL_ATTACH
 * @fd: file descriptor opened by the caller (read access suffices)
 * @format: QCOW_FMT_QCOW2 or QCOW_FMT_RAW; the kernel never probes
 * @reserved: must be zero
 */
struct qcow_layer_desc {
	__u32 fd;
	__u32 format;
	__u64 reserved;
};

/* struct qcow_attach.flags */
#define QCOW_ATTACH_READ_ONLY	(1U << 0)	/* expose the disk read-only */
#define QCOW_ATTACH_PARTSCAN	(1U << 1)	/* scan partitions: /dev/qcowNpM */
#define QCOW_ATTACH_INDEX	(1U << 2)	/* @index is an input: /dev/qcow<index> */
#define QCOW_ATTACH_ALL		(QCOW_ATTACH_READ_ONLY | QCOW_ATTACH_PARTSCAN | \
				 QCOW_ATTACH_INDEX)

/**
 * struct qcow_attach - argument of QCOW_CTL_ATTACH
 * @image_fd: the top qcow2 image (in); opened read-write unless READ_ONLY
 * @flags: QCOW_ATTACH_* (in)
 * @layers: user pointer to @nr_layers struct qcow_layer_desc, the backing chain
 *	    from the top image's backing file down (in)
 * @nr_layers: number of backing layers, 0..QCOW_MAX_LAYERS - 1 (in)
 * @reserved0: must be zero
 * @cache_size: L2 cache size in bytes, 0 for the default (in)
 * @index: N of the new /dev/qcowN (out); with QCOW_ATTACH_INDEX, the N
 *	   wanted (in), else must be zero on input
 * @reserved: must be zero
 *
 * The call is atomic: on success the disk exists, fully configured; on
 * failure nothing was created.  Problems with the image are logged to the
 * kernel log with the offending field named.  Without QCOW_ATTACH_INDEX
 * the disk gets the lowest free N.  With it (granted when GET_FEATURES
 * reports QCOW_FEAT_ATTACH_INDEX), it gets @index or the call fails:
 * -EBUSY when /dev/qcow<index> exists (also while it is being detached),
 * -EINVAL when @index is not below max_devices; both before the image is
 * looked at.
 */
struct qcow_attach {
	__u32 image_fd;
	__u32 flags;
	__u64 layers;
	__u32 nr_layers;
	__u32 reserved0;
	__u64 cache_size;
	__u32 index;
	__u32 reserved[7];
};

/* struct qcow_detach.flags */
#define QCOW_DETACH_LAZY	(1U << 0)	/* detach on last close if busy */
#define QCOW_DETACH_ALL		(QCOW_DETACH_LAZY)

/**
 * struct qcow_detach - argument of QCOW_CTL_DETACH
 * @index: N of /dev/qcowN (in)
 * @flags: QCOW_DETACH_* (in)
 * @reserved: must be zero
 *
 * Fails with -EBUSY while the disk is open, unless QCOW_DETACH_LAZY is
 * given: then the disk goes away when its last opener closes it.
 */
struct qcow_detach {
	__u32 index;
	__u32 flags;
	__u32 reserved[6];
};

/*
 * Internal snapshots: ioctls on /dev/qcowN itself (CAP_SYS_ADMIN).  Names
 * and ids are NUL-terminated strings as stored in the image (QEMU's ids are
 * decimal numbers assigned in increasing order).
 */
#define QCOW_SNAPSHOT_NAME_MAX	1024	/* bytes with the NUL (the field) */
#define QCOW_SNAPSHOT_NAME_LEN	255	/* create: longest name, QEMU's limit */
#define QCOW_SNAPSHOT_ID_MAX	128	/* bytes with the NUL: ids up to 127 */

/**
 * struct qcow_snapshot_cmd - argument of SNAPSHOT_CREATE/APPLY/DELETE
 * @name: name (create: required, unique; apply/delete: this name, or "")
 * @id: id (create: out, the id assigned; apply/delete: this id, or "")
 * @flags: must be zero
 * @reserved: must be zero
 *
 * Apply and delete select the snapshot by @id when it is not empty, else
 * by @name; on success they fill in both @id and @name of the snapshot
 * acted on (CREATE copies the struct back; APPLY and DELETE are _IOW and
 * report them in the kernel log).  Errors: -EEXIST (create: name in use),
 * -ENAMETOOLONG (create: name longer than QCOW_SNAPSHOT_NAME_LEN bytes,
 * which QEMU could not address), -ENOENT (no such snapshot), -ENOSPC
 * (snapshot table full or no space), -ERANGE (create, apply: a cluster's
 * refcount would exceed what the image's refcount_bits can hold), -EBUSY (apply: the device is open
 * elsewhere), -EROFS (read-only attach), -EBADF (create, apply, delete
 * through a descriptor not opened for writing), -EIO (the image is corrupt
 * or stopped), -EINVAL (a string not terminated, empty where required,
 * reserved fields set).
 */
struct qcow_snapshot_cmd {
	char name[QCOW_SNAPSHOT_NAME_MAX];
	char id[QCOW_SNAPSHOT_ID_MAX];
	__u32 flags;
	__u32 reserved[7];
};

/**
 * struct qcow_snapshot_info - one snapshot, as SNAPSHOT_LIST reports it
 * @id: id string
 * @name: name
 * @date_sec: creation time, seconds since the epoch
 * @date_nsec: creation time, nanoseconds
 * @reserved0: zero
 * @vm_clock_nsec: guest clock when taken (0 for disk-only snapshots)
 * @disk_size: virtual disk size when taken
 * @vm_state_size: bytes of saved VM state (0 for disk-only snapshots)
 * @reserved: zero
 */
struct qcow_snapshot_info {
	char id[QCOW_SNAPSHOT_ID_MAX];
	char name[QCOW_SNAPSHOT_NAME_MAX];
	__u64 date_sec;
	__u32 date_nsec;
	__u32 reserved0;
	__u64 vm_clock_nsec;
	__u64 disk_size;
	__u64 vm_state_size;
	__u64 reserved[4];
};

/**
 * struct qcow_snapshot_list - argument of QCOW_SNAPSHOT_LIST
 * @entries: user pointer to an array of struct qcow_snapshot_info (in)
 * @count: entries the array holds (in); snapshots in the image (out)
 * @flags: must be zero
 * @reserved: must be zero
 *
 * Fills min(count in, snapshots) entries in table order.
 */
struct qcow_snapshot_list {
	__u64 entries;
	__u32 count;
	__u32 flags;
	__u64 reserved[3];
};

/**
 * struct qcow_resize - argument of QCOW_RESIZE (on /dev/qcowN)
 * @size: the new virtual size in bytes (in): a multiple of 512, not
 *	  smaller than the current one (online shrinking is not offered)
 * @flags: must be zero
 * @reserved: must be zero
 *
 * Grows the disk online; the L1 table grows and moves when it must, and
 * the capacity change is announced (a uevent with RESIZE=1).  Errors:
 * -EINVAL (smaller, unaligned, beyond the format's limit, flags or
 * reserved fields set), -EOPNOTSUPP (a version 2 image with snapshots),
 * -EROFS (read-only attach), -EBADF (a descriptor not opened for writing),
 * -ENOSPC, -EIO (I/O error, corrupt or stopped image), -EPERM (no
 * CAP_SYS_ADMIN).
 */
struct qcow_resize {
	__u64 size;
	__u32 flags;
	__u32 reserved[5];
};

#define QCOW_SNAPSHOT_CREATE	_IOWR(QCOW_IOCTL_MAGIC, 0x10, struct qcow_snapshot_cmd)
#define QCOW_SNAPSHOT_LIST	_IOWR(QCOW_IOCTL_MAGIC, 0x11, struct qcow_snapshot_list)
#define QCOW_SNAPSHOT_APPLY	_IOW(QCOW_IOCTL_MAGIC, 0x12, struct qcow_snapshot_cmd)
#define QCOW_SNAPSHOT_DELETE	_IOW(QCOW_IOCTL_MAGIC, 0x13, struct qcow_snapshot_cmd)
#define QCOW_RESIZE		_IOW(QCOW_IOCTL_MAGIC, 0x20, struct qcow_resize)

#define QCOW_CTL_GET_FEATURES	_IOWR(QCOW_IOCTL_MAGIC, 0x00, struct qcow_features)
#define QCOW_CTL_ATTACH		_IOWR(QCOW_IOCTL_MAGIC, 0x01, struct qcow_attach)
#define QCOW_CTL_DETACH		_IOW(QCOW_IOCTL_MAGIC, 0x02, struct qcow_detach)

#endif /* _UAPI_LINUX_QCOW_H */
