/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/swab.h>. */
#ifndef _QCOW_SHIM_LINUX_SWAB_H
#define _QCOW_SHIM_LINUX_SWAB_H

#include <linux/compiler_types.h>
#include_next <linux/swab.h>

#define swab16(x)	__builtin_bswap16((__u16)(x))
#define swab32(x)	__builtin_bswap32((__u32)(x))
#define swab64(x)	__builtin_bswap64((__u64)(x))

#endif /* _QCOW_SHIM_LINUX_SWAB_H */
