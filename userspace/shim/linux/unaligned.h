/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/unaligned.h> (Linux >= 6.12 location). */
#include <asm/unaligned.h>
