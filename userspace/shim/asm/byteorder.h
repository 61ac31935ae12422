/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace shim for <asm/byteorder.h>: the uapi header gives the __-prefixed
 * conversions; the kernel names come on top.  They cast through __force so
 * that sparse checks __be/__le use in userspace builds too.
 */
#ifndef _QCOW_SHIM_ASM_BYTEORDER_H
#define _QCOW_SHIM_ASM_BYTEORDER_H

#include <linux/compiler_types.h>
#include_next <asm/byteorder.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "qcow userspace shim: only little-endian hosts are supported"
#endif

#define cpu_to_be16(x)	((__force __be16)__builtin_bswap16((__u16)(x)))
#define cpu_to_be32(x)	((__force __be32)__builtin_bswap32((__u32)(x)))
#define cpu_to_be64(x)	((__force __be64)__builtin_bswap64((__u64)(x)))
#define be16_to_cpu(x)	__builtin_bswap16((__force __u16)(__be16)(x))
#define be32_to_cpu(x)	__builtin_bswap32((__force __u32)(__be32)(x))
#define be64_to_cpu(x)	__builtin_bswap64((__force __u64)(__be64)(x))
#define cpu_to_le16(x)	((__force __le16)(__u16)(x))
#define cpu_to_le32(x)	((__force __le32)(__u32)(x))
#define cpu_to_le64(x)	((__force __le64)(__u64)(x))
#define le16_to_cpu(x)	((__force __u16)(__le16)(x))
#define le32_to_cpu(x)	((__force __u32)(__le32)(x))
#define le64_to_cpu(x)	((__force __u64)(__le64)(x))

#define be16_to_cpup(p)	be16_to_cpu(*(const __be16 *)(p))
#define be32_to_cpup(p)	be32_to_cpu(*(const __be32 *)(p))
#define be64_to_cpup(p)	be64_to_cpu(*(const __be64 *)(p))

#define be16_add_cpu(p, v)	(*(p) = cpu_to_be16(be16_to_cpu(*(p)) + (v)))
#define be32_add_cpu(p, v)	(*(p) = cpu_to_be32(be32_to_cpu(*(p)) + (v)))
#define be64_add_cpu(p, v)	(*(p) = cpu_to_be64(be64_to_cpu(*(p)) + (v)))

#endif /* _QCOW_SHIM_ASM_BYTEORDER_H */
