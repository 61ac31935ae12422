/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/bits.h>. */
#ifndef _QCOW_SHIM_LINUX_BITS_H
#define _QCOW_SHIM_LINUX_BITS_H

#include <linux/const.h>

#define BITS_PER_BYTE		8
#define BITS_PER_LONG		(__SIZEOF_LONG__ * 8)
#define BITS_PER_LONG_LONG	64

#define BIT(nr)			(1UL << (nr))
#define BIT_ULL(nr)		(1ULL << (nr))
#define BIT_MASK(nr)		(1UL << ((nr) % BITS_PER_LONG))
#define BIT_WORD(nr)		((nr) / BITS_PER_LONG)
#define BIT_ULL_MASK(nr)	(1ULL << ((nr) % BITS_PER_LONG_LONG))
#define BIT_ULL_WORD(nr)	((nr) / BITS_PER_LONG_LONG)

/* Bits @l..@h inclusive; a reversed range fails to build, as in the kernel. */
#define GENMASK_INPUT_CHECK(h, l) \
	((int)sizeof(struct { int:(-!!(__builtin_choose_expr( \
		__is_constexpr((l) > (h)), (l) > (h), 0))); }))
#define GENMASK(h, l) \
	(GENMASK_INPUT_CHECK(h, l) * 0 + \
	 (((~0UL) - (1UL << (l)) + 1) & (~0UL >> (BITS_PER_LONG - 1 - (h)))))
#define GENMASK_ULL(h, l) \
	(GENMASK_INPUT_CHECK(h, l) * 0 + \
	 (((~0ULL) - (1ULL << (l)) + 1) & (~0ULL >> (BITS_PER_LONG_LONG - 1 - (h)))))

#endif /* _QCOW_SHIM_LINUX_BITS_H */
