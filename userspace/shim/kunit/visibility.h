/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <kunit/visibility.h>: KUnit is never enabled here. */
#ifndef _QCOW_SHIM_KUNIT_VISIBILITY_H
#define _QCOW_SHIM_KUNIT_VISIBILITY_H

#define VISIBLE_IF_KUNIT static
#define EXPORT_SYMBOL_IF_KUNIT(symbol)

#endif /* _QCOW_SHIM_KUNIT_VISIBILITY_H */
