/* SPDX-License-Identifier: GPL-2.0 */
/* Userspace shim for <linux/string.h>: libc string functions + kernel extras. */
#ifndef _QCOW_SHIM_LINUX_STRING_H
#define _QCOW_SHIM_LINUX_STRING_H

#include <linux/errno.h>
#include <linux/types.h>
#include <string.h>

/* The kernel's strscpy(): -E2BIG on truncation, always NUL terminates. */
static inline ssize_t strscpy(char *dst, const char *src, size_t size)
{
	size_t len;

	if (!size)
		return -E2BIG;
	len = strnlen(src, size);
	if (len == size) {
		memcpy(dst, src, size - 1);
		dst[size - 1] = '\0';
		return -E2BIG;
	}
	memcpy(dst, src, len + 1);
	return len;
}

static inline void *memchr_inv(const void *start, int c, size_t bytes)
{
	const unsigned char *p = start;
	size_t i;

	for (i = 0; i < bytes; i++)
		if (p[i] != (unsigned char)c)
			return (void *)(p + i);
	return NULL;
}

static inline bool mem_is_zero(const void *s, size_t n)
{
	return !memchr_inv(s, 0, n);
}

#endif /* _QCOW_SHIM_LINUX_STRING_H */
