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
#include <linux/slab.h>

#include "qcow_main.h"

module_param_named(max_devices, qcow_max_devices, uint, 0444);
MODULE_PARM_DESC(max_devices, "Maximum number of /dev/qcowN devices (default 256, at most 65536)");

/* Features this build implements; granted back by QCOW_CTL_GET_FEATURES. */
#define QCOW_FEATURES	(QCOW_FEAT_FORMAT_V2 | QCOW_FEAT_FORMAT_V3 | \
			 QCOW_FEAT_READ | QCOW_FEAT_BACKING | \
			 QCOW_FEAT_COMPRESSED | QCOW_FEAT_EXTENDED_L2 | \
			 QCOW_FEAT_WRITE | QCOW_FEAT_SNAPSHOT | \
			 QCOW_FEAT_RESIZE | QCOW_FEAT_ATTACH_INDEX)

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
	f.features = QCOW_FEATURES;
	f.max_devices = qcow_max_devices;
	if (copy_to_user(argp, &f, sizeof(f)))
		return -EFAULT;
	return 0;
}

static long qcow_ctl_attach(void __user *argp)
{
	struct qcow_layer_desc *descs = NULL;
	struct qcow_attach a;
	unsigned int i;
	long err;

	if (copy_from_user(&a, argp, sizeof(a)))
		return -EFAULT;
	if (a.flags & ~QCOW_ATTACH_ALL || a.reserved0 ||
	    (a.index && !(a.flags & QCOW_ATTACH_INDEX)) ||
	    !qcow_reserved_zero(a.reserved, ARRAY_SIZE(a.reserved)))
		return -EINVAL;
	if (a.nr_layers >= QCOW_MAX_LAYERS)
		return -E2BIG;
	if (a.cache_size && (a.cache_size < QCOW_CACHE_MIN ||
			     a.cache_size > QCOW_CACHE_MAX))
		return -EINVAL;
	if (a.nr_layers) {
		descs = memdup_user(u64_to_user_ptr(a.layers),
				    array_size(a.nr_layers, sizeof(*descs)));
		if (IS_ERR(descs))
			return PTR_ERR(descs);
		for (i = 0; i < a.nr_layers; i++) {
			if (descs[i].reserved ||
			    (descs[i].format != QCOW_FMT_QCOW2 &&
			     descs[i].format != QCOW_FMT_RAW)) {
				err = -EINVAL;
				goto out;
			}
		}
	}
	err = qcow_dev_attach(&a, descs);
	if (!err && copy_to_user(argp, &a, sizeof(a)))
		err = -EFAULT;	/* the device exists; the caller can find it */
out:
	kfree(descs);
	return err;
}

static long qcow_ctl_detach(void __user *argp)
{
	struct qcow_detach d;

	if (copy_from_user(&d, argp, sizeof(d)))
		return -EFAULT;
	if (d.flags & ~QCOW_DETACH_ALL ||
	    !qcow_reserved_zero(d.reserved, ARRAY_SIZE(d.reserved)))
		return -EINVAL;
	return qcow_dev_detach(&d);
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
	case QCOW_CTL_ATTACH:
		return qcow_ctl_attach(argp);
	case QCOW_CTL_DETACH:
		return qcow_ctl_detach(argp);
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

	if (!qcow_max_devices || qcow_max_devices > QCOW_MAX_DEVICES_LIMIT) {
		pr_err("max_devices=%u out of range 1..%u\n", qcow_max_devices,
		       QCOW_MAX_DEVICES_LIMIT);
		return -EINVAL;
	}

	err = qcow_dev_init();
	if (err) {
		pr_err("cannot register the block major: %d\n", err);
		return err;
	}
	err = misc_register(&qcow_misc);
	if (err) {
		pr_err("cannot register /dev/%s: %d\n", QCOW_CTRL_DEV_NAME, err);
		goto err_dev;
	}
	pr_info("loaded, control device /dev/%s\n", QCOW_CTRL_DEV_NAME);
	return 0;

err_dev:
	qcow_dev_exit();
	return err;
}

static void __exit qcow_exit(void)
{
	misc_deregister(&qcow_misc);
	qcow_dev_exit();
}

module_init(qcow_init);
module_exit(qcow_exit);

MODULE_DESCRIPTION("qcow2 images as block devices");
MODULE_VERSION("0.1");
MODULE_LICENSE("GPL");
MODULE_ALIAS_MISCDEV(QCOW_CTRL_MINOR);
MODULE_ALIAS("devname:" QCOW_CTRL_DEV_NAME);
