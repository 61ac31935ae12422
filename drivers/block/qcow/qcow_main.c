// SPDX-License-Identifier: GPL-2.0
/*
 * qcow: qcow2 images as native block devices.
 *
 * Module entry points and the /dev/qcow-control misc device.  The control
 * device has a fixed minor and a devname alias so that opening it loads
 * the module, the way /dev/loop-control does for loop.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>
#include <linux/qcow.h>

#include "qcow_main.h"

static unsigned int max_devices = 256;
module_param(max_devices, uint, 0444);
MODULE_PARM_DESC(max_devices, "Maximum number of /dev/qcowN devices (default 256)");

static bool qcow_reserved_zero(const __u32 *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (r[i])
			return false;
	return true;
}

static long qcow_ctl_get_features(void __user *argp)
{
	struct qcow_features f;

	if (copy_from_user(&f, argp, sizeof(f)))
		return -EFAULT;
	if (f.reserved0 || !qcow_reserved_zero(f.reserved, ARRAY_SIZE(f.reserved)))
		return -EINVAL;

	memset(&f, 0, sizeof(f));
	f.abi_version = QCOW_ABI_VERSION;
	f.features = QCOW_FEAT_ALL;
	f.max_devices = max_devices;
	if (copy_to_user(argp, &f, sizeof(f)))
		return -EFAULT;
	return 0;
}

static long qcow_ctl_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	switch (cmd) {
	case QCOW_CTL_GET_FEATURES:
		return qcow_ctl_get_features(argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations qcow_ctl_fops = {
	.owner		= THIS_MODULE,
	.open		= nonseekable_open,
	.unlocked_ioctl	= qcow_ctl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice qcow_misc = {
	.minor		= QCOW_CTRL_MINOR,
	.name		= QCOW_CTRL_DEV_NAME,
	.fops		= &qcow_ctl_fops,
};

static int __init qcow_init(void)
{
	int err;

	if (!max_devices || max_devices > QCOW_MAX_DEVICES_LIMIT) {
		pr_err("max_devices=%u out of range 1..%u\n", max_devices,
		       QCOW_MAX_DEVICES_LIMIT);
		return -EINVAL;
	}

	err = misc_register(&qcow_misc);
	if (err) {
		pr_err("cannot register /dev/%s: %d\n", QCOW_CTRL_DEV_NAME, err);
		return err;
	}
	pr_info("loaded, control device /dev/%s\n", QCOW_CTRL_DEV_NAME);
	return 0;
}

static void __exit qcow_exit(void)
{
	misc_deregister(&qcow_misc);
}

module_init(qcow_init);
module_exit(qcow_exit);

MODULE_DESCRIPTION("qcow2 images as block devices");
MODULE_LICENSE("GPL");
MODULE_ALIAS_MISCDEV(QCOW_CTRL_MINOR);
MODULE_ALIAS("devname:" QCOW_CTRL_DEV_NAME);
