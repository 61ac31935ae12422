/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Userspace shim for <linux/printk.h>.  The format core reports problems
 * through struct qcow2_diag, so log lines are noise for a command-line tool:
 * pr_*() print to stderr only when QCOW_DEBUG is set in the environment.
 */
#ifndef _QCOW_SHIM_LINUX_PRINTK_H
#define _QCOW_SHIM_LINUX_PRINTK_H

#include <linux/compiler_types.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#ifndef pr_fmt
#define pr_fmt(fmt) fmt
#endif

#define KERN_EMERG	"<0>"
#define KERN_ALERT	"<1>"
#define KERN_CRIT	"<2>"
#define KERN_ERR	"<3>"
#define KERN_WARNING	"<4>"
#define KERN_NOTICE	"<5>"
#define KERN_INFO	"<6>"
#define KERN_DEBUG	"<7>"
#define KERN_CONT	""

static inline __printf(1, 2) int printk(const char *fmt, ...)
{
	va_list ap;
	int ret;

	if (!getenv("QCOW_DEBUG"))
		return 0;
	va_start(ap, fmt);
	ret = vfprintf(stderr, fmt, ap);
	va_end(ap);
	return ret;
}

#define pr_emerg(fmt, ...)	printk(KERN_EMERG pr_fmt(fmt), ##__VA_ARGS__)
#define pr_alert(fmt, ...)	printk(KERN_ALERT pr_fmt(fmt), ##__VA_ARGS__)
#define pr_crit(fmt, ...)	printk(KERN_CRIT pr_fmt(fmt), ##__VA_ARGS__)
#define pr_err(fmt, ...)	printk(KERN_ERR pr_fmt(fmt), ##__VA_ARGS__)
#define pr_warn(fmt, ...)	printk(KERN_WARNING pr_fmt(fmt), ##__VA_ARGS__)
#define pr_notice(fmt, ...)	printk(KERN_NOTICE pr_fmt(fmt), ##__VA_ARGS__)
#define pr_info(fmt, ...)	printk(KERN_INFO pr_fmt(fmt), ##__VA_ARGS__)
#define pr_debug(fmt, ...)	printk(KERN_DEBUG pr_fmt(fmt), ##__VA_ARGS__)
#define pr_cont(fmt, ...)	printk(KERN_CONT fmt, ##__VA_ARGS__)
#define pr_err_ratelimited	pr_err
#define pr_warn_ratelimited	pr_warn
#define pr_info_ratelimited	pr_info
#define pr_err_once		pr_err
#define pr_warn_once		pr_warn
#define pr_info_once		pr_info

#endif /* _QCOW_SHIM_LINUX_PRINTK_H */
