/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace shim for <linux/kernel.h>: the grab bag of helpers kernel code
 * expects from it (ARRAY_SIZE, min/max, ALIGN, U64_MAX, pr_*, WARN_ON, ...),
 * with snprintf()/vsnprintf() from libc.
 */
#ifndef _QCOW_SHIM_LINUX_KERNEL_H
#define _QCOW_SHIM_LINUX_KERNEL_H

#include_next <linux/kernel.h>
#include <linux/compiler.h>
#include <linux/types.h>
#include <linux/stddef.h>
#include <linux/limits.h>
#include <linux/bits.h>
#include <linux/bitops.h>
#include <linux/build_bug.h>
#include <linux/bug.h>
#include <linux/log2.h>
#include <linux/math.h>
#include <linux/minmax.h>
#include <linux/printk.h>
#include <linux/stdarg.h>
#include <stdio.h>

#define ARRAY_SIZE(arr)		(sizeof(arr) / sizeof((arr)[0]) + __must_be_array(arr))

#define ALIGN(x, a)		__ALIGN_KERNEL((x), (a))
#define ALIGN_DOWN(x, a)	__ALIGN_KERNEL((x) - ((a) - 1), (a))
#define PTR_ALIGN(p, a)		((typeof(p))ALIGN((unsigned long)(p), (a)))
#define IS_ALIGNED(x, a)	(((x) & ((typeof(x))(a) - 1)) == 0)

#define upper_32_bits(n)	((u32)(((n) >> 16) >> 16))
#define lower_32_bits(n)	((u32)((n) & 0xffffffff))

#define container_of(ptr, type, member) ({				\
	char *__mptr = (char *)(ptr);					\
	((type *)(__mptr - offsetof(type, member)));			\
})

#define might_sleep()		do { } while (0)
#define cond_resched()		do { } while (0)

#endif /* _QCOW_SHIM_LINUX_KERNEL_H */
