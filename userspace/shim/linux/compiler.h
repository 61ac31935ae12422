/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/compiler.h>. */
#ifndef _QCOW_SHIM_LINUX_COMPILER_H
#define _QCOW_SHIM_LINUX_COMPILER_H

#include <linux/compiler_types.h>

#define barrier()		__asm__ __volatile__("" : : : "memory")
#define READ_ONCE(x)		(*(const volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, val)	do { *(volatile typeof(x) *)&(x) = (val); } while (0)

#endif /* _QCOW_SHIM_LINUX_COMPILER_H */
