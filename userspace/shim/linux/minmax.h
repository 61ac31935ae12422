/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace shim for <linux/minmax.h>.  Single evaluation like the kernel's,
 * without its type check (which the kernel build already enforces).
 */
#ifndef _QCOW_SHIM_LINUX_MINMAX_H
#define _QCOW_SHIM_LINUX_MINMAX_H

#include <linux/compiler_types.h>

#define __shim_cmp(x, y, op) ({						\
	__auto_type __x = (x);						\
	__auto_type __y = (y);						\
	__x op __y ? __x : __y;						\
})

#define min(x, y)		__shim_cmp(x, y, <)
#define max(x, y)		__shim_cmp(x, y, >)
#define min3(x, y, z)		min((typeof(x))min(x, y), z)
#define max3(x, y, z)		max((typeof(x))max(x, y), z)
#define min_t(type, x, y)	__shim_cmp((type)(x), (type)(y), <)
#define max_t(type, x, y)	__shim_cmp((type)(x), (type)(y), >)
#define min_not_zero(x, y) ({						\
	typeof(x) __a = (x);						\
	typeof(y) __b = (y);						\
	__a == 0 ? __b : ((__b == 0) ? __a : min(__a, __b));		\
})
#define clamp(val, lo, hi)	min((typeof(val))max(val, lo), hi)
#define clamp_t(type, val, lo, hi) \
	min_t(type, max_t(type, val, lo), hi)
#define clamp_val(val, lo, hi)	clamp_t(typeof(val), val, lo, hi)

#define swap(a, b) do {							\
	typeof(a) __tmp = (a);						\
	(a) = (b);							\
	(b) = __tmp;							\
} while (0)

#endif /* _QCOW_SHIM_LINUX_MINMAX_H */
