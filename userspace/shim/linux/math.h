/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/math.h>. */
#ifndef _QCOW_SHIM_LINUX_MATH_H
#define _QCOW_SHIM_LINUX_MATH_H

#include <linux/types.h>

#define __round_mask(x, y)	((__typeof__(x))((y) - 1))
/* @y must be a power of two */
#define round_up(x, y)		((((x) - 1) | __round_mask(x, y)) + 1)
#define round_down(x, y)	((x) & ~__round_mask(x, y))

#define DIV_ROUND_UP(n, d)	(((n) + (d) - 1) / (d))
#define DIV_ROUND_UP_ULL(ll, d)	DIV_ROUND_UP((unsigned long long)(ll), (d))
#define DIV_ROUND_DOWN_ULL(ll, d) ((unsigned long long)(ll) / (d))
#define roundup(x, y) ({						\
	typeof(y) __y = y;						\
	(((x) + (__y - 1)) / __y) * __y;				\
})
#define rounddown(x, y) ({						\
	typeof(x) __x = (x);						\
	__x - (__x % (y));						\
})

static inline u64 div_u64(u64 dividend, u32 divisor)
{
	return dividend / divisor;
}

static inline u64 div64_u64(u64 dividend, u64 divisor)
{
	return dividend / divisor;
}

static inline u64 div_u64_rem(u64 dividend, u32 divisor, u32 *remainder)
{
	*remainder = dividend % divisor;
	return dividend / divisor;
}

#define do_div(n, base) ({						\
	u32 __base = (base);						\
	u32 __rem = (u32)((n) % __base);				\
	(n) /= __base;							\
	__rem;								\
})

#endif /* _QCOW_SHIM_LINUX_MATH_H */
