/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace shim: the attributes the kernel gets from <linux/compiler_types.h>
 * (force-included by Kbuild).  Every other shim header includes this first.
 */
#ifndef _QCOW_SHIM_LINUX_COMPILER_TYPES_H
#define _QCOW_SHIM_LINUX_COMPILER_TYPES_H

#ifdef __CHECKER__
# define __force	__attribute__((force))
# define __kernel	__attribute__((address_space(0)))
# define __user		__attribute__((noderef, address_space(__user)))
#else
# define __force
# define __kernel
# define __user
#endif
#define __iomem
#define __rcu
#define __percpu

#define __must_hold(x)
#define __acquires(x)
#define __releases(x)

/*
 * glibc's <sys/cdefs.h> defines __always_inline like the kernel does; take
 * it first so that neither it nor the uapi <linux/stddef.h> redefines ours.
 */
#include <sys/cdefs.h>
#ifndef __always_inline
#define __always_inline		inline __attribute__((__always_inline__))
#endif
#define noinline		__attribute__((__noinline__))
#define __packed		__attribute__((__packed__))
#define __aligned(x)		__attribute__((__aligned__(x)))
#define __printf(a, b)		__attribute__((__format__(printf, a, b)))
#define __scanf(a, b)		__attribute__((__format__(scanf, a, b)))
#define __maybe_unused		__attribute__((__unused__))
#define __always_unused		__attribute__((__unused__))
#define __used			__attribute__((__used__))
#define __must_check		__attribute__((__warn_unused_result__))
#define __cold			__attribute__((__cold__))
#define __pure			__attribute__((__pure__))
#define __noreturn		__attribute__((__noreturn__))
#define __weak			__attribute__((__weak__))
#define __nonstring		__attribute__((__nonstring__))
#define __counted_by(m)
#define __section(s)		__attribute__((__section__(s)))
#define __init
#define __exit
#define __initdata
#define __visible
#define notrace
#define fallthrough		__attribute__((__fallthrough__))

#define likely(x)		__builtin_expect(!!(x), 1)
#define unlikely(x)		__builtin_expect(!!(x), 0)

#define ___PASTE(a, b)		a##b
#define __PASTE(a, b)		___PASTE(a, b)
#define __UNIQUE_ID(prefix)	__PASTE(__PASTE(__UNIQUE_ID_, prefix), __COUNTER__)

#define __same_type(a, b)	__builtin_types_compatible_p(typeof(a), typeof(b))
#define __must_be_array(a)	\
	((int)sizeof(struct { int:(-!!__same_type((a), &(a)[0])); }))

/* Evaluates to 1 when @x is an integer constant expression. */
#define __is_constexpr(x) \
	(sizeof(int) == sizeof(*(8 ? ((void *)((long)(x) * 0l)) : (int *)8)))

#endif /* _QCOW_SHIM_LINUX_COMPILER_TYPES_H */
