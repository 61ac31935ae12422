/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/bitops.h>: bit searches and weights on builtins. */
#ifndef _QCOW_SHIM_LINUX_BITOPS_H
#define _QCOW_SHIM_LINUX_BITOPS_H

#include <linux/bits.h>
#include <linux/types.h>
#include <strings.h>

/* 1-based index of the most significant set bit; fls(0) == 0. */
static __always_inline int fls(unsigned int x)
{
	return x ? 32 - __builtin_clz(x) : 0;
}

static __always_inline int fls64(u64 x)
{
	return x ? 64 - __builtin_clzll(x) : 0;
}

/* ffs(): 1-based index of the least significant set bit, from libc. */

/* 0-based index of the least significant set bit; undefined for 0. */
static __always_inline unsigned long __ffs(unsigned long word)
{
	return __builtin_ctzl(word);
}

static __always_inline unsigned long __ffs64(u64 word)
{
	return __builtin_ctzll(word);
}

/* 0-based index of the most significant set bit; undefined for 0. */
static __always_inline unsigned long __fls(unsigned long word)
{
	return BITS_PER_LONG - 1 - __builtin_clzl(word);
}

static __always_inline unsigned long ffz(unsigned long word)
{
	return __ffs(~word);
}

#define hweight8(w)	((unsigned int)__builtin_popcount((u8)(w)))
#define hweight16(w)	((unsigned int)__builtin_popcount((u16)(w)))
#define hweight32(w)	((unsigned int)__builtin_popcount((u32)(w)))
#define hweight64(w)	((unsigned int)__builtin_popcountll((u64)(w)))
#define hweight_long(w)	((unsigned long)__builtin_popcountl((unsigned long)(w)))

static inline u32 rol32(u32 word, unsigned int shift)
{
	return (word << (shift & 31)) | (word >> ((-shift) & 31));
}

static inline u32 ror32(u32 word, unsigned int shift)
{
	return (word >> (shift & 31)) | (word << ((-shift) & 31));
}

#endif /* _QCOW_SHIM_LINUX_BITOPS_H */
