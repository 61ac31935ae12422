/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/log2.h>. */
#ifndef _QCOW_SHIM_LINUX_LOG2_H
#define _QCOW_SHIM_LINUX_LOG2_H

#include <linux/bitops.h>
#include <linux/types.h>

/* floor(log2(n)); like the kernel, undefined (here -1) for n == 0. */
#define ilog2(n)	((int)(fls64((u64)(n)) - 1))

static inline __attribute__((const)) bool is_power_of_2(unsigned long n)
{
	return n != 0 && ((n & (n - 1)) == 0);
}

static inline __attribute__((const)) unsigned long
roundup_pow_of_two(unsigned long n)
{
	return n <= 1 ? 1 : 1UL << fls64((u64)n - 1);
}

static inline __attribute__((const)) unsigned long
rounddown_pow_of_two(unsigned long n)
{
	return 1UL << (fls64((u64)n) - 1);
}

#define order_base_2(n)	((n) > 1 ? ilog2((n) - 1) + 1 : 0)

#endif /* _QCOW_SHIM_LINUX_LOG2_H */
