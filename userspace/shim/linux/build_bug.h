/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/build_bug.h>. */
#ifndef _QCOW_SHIM_LINUX_BUILD_BUG_H
#define _QCOW_SHIM_LINUX_BUILD_BUG_H

#include <linux/compiler_types.h>

#define BUILD_BUG_ON_ZERO(e)	((int)(sizeof(struct { int:(-!!(e)); })))
#define BUILD_BUG_ON_MSG(cond, msg)	_Static_assert(!(cond), msg)
#define BUILD_BUG_ON(cond)	BUILD_BUG_ON_MSG(cond, "BUILD_BUG_ON failed: " #cond)
#define BUILD_BUG()		BUILD_BUG_ON_MSG(1, "BUILD_BUG failed")

/* static_assert(expr[, msg]): the message is optional, as in the kernel. */
#undef static_assert
#define static_assert(expr, ...)	__static_assert(expr, ##__VA_ARGS__, #expr)
#define __static_assert(expr, msg, ...)	_Static_assert(expr, msg)

#endif /* _QCOW_SHIM_LINUX_BUILD_BUG_H */
