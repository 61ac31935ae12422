/* SPDX-License-Identifier: GPL-2.0 */
/*
 * qcow: shared definitions of the module's layers.
 *
 * Lock order (outermost first), fixed once here for every later layer:
 *   qcow_ctl_mutex (device index) -> qcow_device.lock (state machine)
 *   -> metadata cache locks -> allocator lock
 */
#ifndef QCOW_MAIN_H
#define QCOW_MAIN_H

#define QCOW_MAX_DEVICES_LIMIT	(1U << 20)

#endif /* QCOW_MAIN_H */
