/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <asm/unaligned.h> (Linux <= 6.11 location). */
#ifndef _QCOW_SHIM_ASM_UNALIGNED_H
#define _QCOW_SHIM_ASM_UNALIGNED_H

#include <linux/types.h>
#include <string.h>
#include <asm/byteorder.h>

#define __SHIM_UNALIGNED(bits)						\
static __always_inline u##bits get_unaligned_be##bits(const void *p)	\
{									\
	__be##bits v;							\
									\
	memcpy(&v, p, sizeof(v));					\
	return be##bits##_to_cpu(v);					\
}									\
static __always_inline u##bits get_unaligned_le##bits(const void *p)	\
{									\
	__le##bits v;							\
									\
	memcpy(&v, p, sizeof(v));					\
	return le##bits##_to_cpu(v);					\
}									\
static __always_inline void put_unaligned_be##bits(u##bits val, void *p) \
{									\
	__be##bits v = cpu_to_be##bits(val);				\
									\
	memcpy(p, &v, sizeof(v));					\
}									\
static __always_inline void put_unaligned_le##bits(u##bits val, void *p) \
{									\
	__le##bits v = cpu_to_le##bits(val);				\
									\
	memcpy(p, &v, sizeof(v));					\
}

__SHIM_UNALIGNED(16)
__SHIM_UNALIGNED(32)
__SHIM_UNALIGNED(64)

#undef __SHIM_UNALIGNED

#define get_unaligned(ptr) ({						\
	typeof(*(ptr)) __v;						\
	memcpy(&__v, (ptr), sizeof(__v));				\
	__v;								\
})
#define put_unaligned(val, ptr) do {					\
	typeof(*(ptr)) __v = (val);					\
	memcpy((ptr), &__v, sizeof(__v));				\
} while (0)

#endif /* _QCOW_SHIM_ASM_UNALIGNED_H */
