#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Smoke test: the module loads, registers /dev/qcow-control as misc
# 10:QCOW_CTRL_MINOR, carries the aliases that make the control device
# autoload it, unloads cleanly, and really autoloads when the control node
# is opened.
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

minor=$(sed -n 's/^#define QCOW_CTRL_MINOR[[:space:]]*\([0-9]*\).*/\1/p' \
	"$QCOW_TOP/include/uapi/linux/qcow.h")
[ -n "$minor" ] || fail "cannot read QCOW_CTRL_MINOR from the uapi header"

step "modinfo lists the autoload aliases"
aliases=$(modinfo -F alias "$QCOW_KO")
echo "$aliases"
grep -qx 'devname:qcow-control' <<<"$aliases" || fail "no devname:qcow-control alias"
grep -qx "char-major-10-$minor" <<<"$aliases" || fail "no char-major-10-$minor alias"

step "insmod"
qcow_load
[ -d /sys/module/qcow ] || fail "/sys/module/qcow missing after insmod"
[ -c /dev/qcow-control ] || fail "/dev/qcow-control is not a char device"
ls -l /dev/qcow-control
[ "$(stat -c '%t:%T' /dev/qcow-control)" = "a:$(printf '%x' "$minor")" ] ||
	fail "/dev/qcow-control is $(stat -c '%t:%T' /dev/qcow-control) (hex), want a:$(printf '%x' "$minor")"
[ "$(cat /sys/module/qcow/parameters/max_devices)" -gt 0 ] ||
	fail "max_devices parameter not visible"

if have_qcowctl features; then
	step "qcowctl features"
	expect "$QCOW_CTL" features
else
	echo "(qcowctl features not available, skipped)"
fi

step "rmmod"
qcow_unload

step "a bad module parameter is refused"
expect_fail insmod "$QCOW_KO" max_devices=0
[ ! -e /sys/module/qcow ] || fail "module stayed loaded after a failed init"

step "opening /dev/qcow-control autoloads the module"
# Install the module in a private module tree (depmod over the whole 9p
# /lib/modules takes tens of seconds under TCG) and point the kernel's
# usermode modprobe at it.
kver=$(uname -r)
modroot=/tmp/qcow-modroot
mkdir -p "$modroot/lib/modules/$kver/extra"
cp "$QCOW_KO" "$modroot/lib/modules/$kver/extra/"
for f in modules.builtin modules.builtin.modinfo modules.order; do
	[ ! -f "/lib/modules/$kver/$f" ] || cp "/lib/modules/$kver/$f" "$modroot/lib/modules/$kver/"
done
expect depmod -b "$modroot" "$kver"
grep -q "^qcow qcow-control c10:$minor\$" "$modroot/lib/modules/$kver/modules.devname" ||
	fail "depmod did not put qcow-control in modules.devname"
cat > /tmp/modprobe-qcow <<EOS
#!/bin/sh
exec /sbin/modprobe -d $modroot "\$@"
EOS
chmod +x /tmp/modprobe-qcow
old_modprobe=$(cat /proc/sys/kernel/modprobe)
echo /tmp/modprobe-qcow > /proc/sys/kernel/modprobe
# What systemd-tmpfiles does at boot from modules.devname.
mknod /dev/qcow-control c 10 "$minor"
# The open itself triggers request_module("char-major-10-N").
exec 3</dev/qcow-control || fail "open /dev/qcow-control did not autoload the module"
exec 3<&-
echo "$old_modprobe" > /proc/sys/kernel/modprobe
[ -d /sys/module/qcow ] || fail "opening /dev/qcow-control did not load the module"
cat /sys/module/qcow/initstate
expect rmmod qcow
[ ! -e /sys/module/qcow ] || fail "/sys/module/qcow still exists after rmmod"
# The node was made by hand, so devtmpfs leaves it; remove it ourselves.
rm -f /dev/qcow-control

step "smoke test passed"
