#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest half of udev-vm.sh (runs in the test VM through tests/vm/run-vm.sh):
# the real systemd-udevd, with packaging/udev/60-qcow.rules as its only rule
# (tmpfs over the system rule directories), sets the permissions the rule
# promises on real qcow devices:
#   - static_node: a /dev/qcow-control made before the module is loaded
#     (as systemd-tmpfiles does at boot from modules.devname), left 0666
#     root:disk, is 0600 root:root once udevd starts (and stays 0666
#     when udevd starts without the rule);
#   - the control device's add event: chmod 0666 by hand, `udevadm trigger`
#     brings it back to 0600 root:root;
#   - /dev/qcowN and /dev/qcowNp1 of an attach -P: root:disk 0660, where
#     the same attach without the rule leaves devtmpfs's root:root 0600
#     (the control: the rule, not a default, makes the difference).
# Leaves the guest clean: devices detached, module unloaded, udevd stopped.
# shellcheck source-path=SCRIPTDIR source=../vm/lib/guest-lib.sh
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

minor=$(sed -n 's/^#define QCOW_CTRL_MINOR[[:space:]]*\([0-9]*\).*/\1/p' \
	"$QCOW_TOP/include/uapi/linux/qcow.h")
[ -n "$minor" ] || fail "cannot read QCOW_CTRL_MINOR"
[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL"
udevd=$(udevd_path)

perms() { stat -c '%a %U:%G' "$1"; }
want() { # NODE "MODE OWNER:GROUP" WHAT
	local got
	got=$(perms "$1")
	[ "$got" = "$2" ] || fail "$3: $1 is $got, want $2"
	echo "ok: $3: $1 $got"
}
settle() {
	expect udevadm settle --timeout=60
}

step "udevd with no rules but 60-qcow.rules"
for d in /etc/udev/rules.d /usr/lib/udev/rules.d; do
	[ -d "$d" ] && expect mount -t tmpfs qcow-norules "$d"
done
mkdir -p /run/udev/rules.d

step "static node before the module is loaded"
mknod -m 0666 /dev/qcow-control c 10 "$minor"
chgrp disk /dev/qcow-control
# control: udevd without the rule leaves it alone
expect "$udevd" --daemon
expect udevadm control --ping
want /dev/qcow-control "666 root:disk" "no rule"
expect udevadm control --exit
cp "$QCOW_TOP/packaging/udev/60-qcow.rules" /run/udev/rules.d/
expect "$udevd" --daemon
expect udevadm control --ping
want /dev/qcow-control "600 root:root" "static_node= at udevd start"
rm -f /dev/qcow-control

step "control device add event"
qcow_load
settle
chmod 0666 /dev/qcow-control
expect udevadm trigger --action=add --settle /sys/class/misc/qcow-control
want /dev/qcow-control "600 root:root" "rule on the add event"

img=$QCOW_SCRATCH/udev.qcow2
truncate -s 64M "$QCOW_SCRATCH/udev.raw"
echo ',,L' | sfdisk -q "$QCOW_SCRATCH/udev.raw" || fail "sfdisk"
expect qemu-img convert -O qcow2 "$QCOW_SCRATCH/udev.raw" "$img"

step "control: attach -P without the rule"
rm /run/udev/rules.d/60-qcow.rules
expect udevadm control --reload
dev=$("$QCOW_CTL" attach -P "$img") || fail "attach"
settle
want "$dev" "600 root:root" "no rule"
want "${dev}p1" "600 root:root" "no rule"
expect "$QCOW_CTL" detach "$dev"
settle

step "attach -P with the rule"
cp "$QCOW_TOP/packaging/udev/60-qcow.rules" /run/udev/rules.d/
expect udevadm control --reload
dev=$("$QCOW_CTL" attach -P "$img") || fail "attach"
settle
want "$dev" "660 root:disk" "disk"
want "${dev}p1" "660 root:disk" "partition"
expect "$QCOW_CTL" detach "$dev"
settle

step "clean up"
expect udevadm control --exit
qcow_unload
for d in /etc/udev/rules.d /usr/lib/udev/rules.d; do
	mountpoint -q "$d" && expect umount "$d"
done
rm -f "$img" "$QCOW_SCRATCH/udev.raw" /run/udev/rules.d/60-qcow.rules
step "udev rule test passed"
