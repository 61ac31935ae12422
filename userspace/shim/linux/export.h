/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/export.h>: one program, nothing to export. */
#ifndef _QCOW_SHIM_LINUX_EXPORT_H
#define _QCOW_SHIM_LINUX_EXPORT_H

#define EXPORT_SYMBOL(sym)
#define EXPORT_SYMBOL_GPL(sym)
#define EXPORT_SYMBOL_NS(sym, ns)
#define EXPORT_SYMBOL_NS_GPL(sym, ns)

#endif /* _QCOW_SHIM_LINUX_EXPORT_H */
