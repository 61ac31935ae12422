/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace shim for <linux/types.h>: the uapi header gives __u32, __be32
 * and friends (__bitwise under sparse); the kernel-internal short names and
 * bool/size_t come on top.
 */
#ifndef _QCOW_SHIM_LINUX_TYPES_H
#define _QCOW_SHIM_LINUX_TYPES_H

#include <linux/compiler_types.h>
#include_next <linux/types.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s8 s8;
typedef __s16 s16;
typedef __s32 s32;
typedef __s64 s64;

typedef u64 sector_t;
typedef uintptr_t phys_addr_t;
typedef phys_addr_t resource_size_t;
typedef unsigned int gfp_t;

#endif /* _QCOW_SHIM_LINUX_TYPES_H */
