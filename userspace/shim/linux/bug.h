/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace shim for <linux/bug.h>.  WARN_ON() evaluates to its condition
 * and, like the kernel's, always reports (a warning is a bug in the core);
 * BUG() aborts.
 */
#ifndef _QCOW_SHIM_LINUX_BUG_H
#define _QCOW_SHIM_LINUX_BUG_H

#include <linux/build_bug.h>
#include <linux/compiler_types.h>
#include <stdio.h>
#include <stdlib.h>

#define WARN(cond, fmt, ...) ({						\
	int __ret_warn_on = !!(cond);					\
	if (unlikely(__ret_warn_on))					\
		fprintf(stderr, "WARNING: %s:%d: " fmt "\n",		\
			__FILE__, __LINE__, ##__VA_ARGS__);		\
	unlikely(__ret_warn_on);					\
})
#define WARN_ON(cond)		WARN(cond, "%s", "WARN_ON(" #cond ")")
#define WARN_ON_ONCE(cond)	WARN_ON(cond)
#define WARN_ONCE(cond, fmt, ...) WARN(cond, fmt, ##__VA_ARGS__)

#define BUG() do {							\
	fprintf(stderr, "BUG: %s:%d\n", __FILE__, __LINE__);		\
	abort();							\
} while (0)
#define BUG_ON(cond) do {						\
	if (unlikely(cond))						\
		BUG();							\
} while (0)

#endif /* _QCOW_SHIM_LINUX_BUG_H */
