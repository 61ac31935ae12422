/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/stddef.h>. */
#ifndef _QCOW_SHIM_LINUX_STDDEF_H
#define _QCOW_SHIM_LINUX_STDDEF_H

#include <linux/compiler_types.h>
#include_next <linux/stddef.h>
#include <stdbool.h>
#include <stddef.h>

#define sizeof_field(TYPE, MEMBER)	sizeof((((TYPE *)0)->MEMBER))
#define offsetofend(TYPE, MEMBER) \
	(offsetof(TYPE, MEMBER) + sizeof_field(TYPE, MEMBER))

#endif /* _QCOW_SHIM_LINUX_STDDEF_H */
