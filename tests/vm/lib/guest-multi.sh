#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest script for `run-tests.sh --shared`: runs several guest test scripts
# in one boot.  Each runs in its own directory on the scratch disk with its
# own time limit; after each, the kernel log is checked and cleared, and the
# test must have unloaded the qcow module and unmounted what it mounted.  Prints one line per test:
#   QCOW-VM-TEST <name> rc=<rc> dmesg=clean|dirty
set -u
# shellcheck disable=SC1091
. "$(dirname "$0")/kernel-check.sh"

failed=0
kernel_check || failed=1	# the boot itself
dmesg -C
for t in "$@"; do
	n=$(basename "$t" .sh)
	n=${n#t-}
	limit=$(sed -n 's/^# vm-timeout: *\([0-9][0-9]*\).*/\1/p' "$t" | head -n 1)
	echo "==> vm/$n"
	taint0=$(cat /proc/sys/kernel/tainted)
	mkdir -p "$QCOW_SCRATCH/$n"
	(cd "$QCOW_SCRATCH/$n" && exec timeout -k 5 "${limit:-600}" bash "$t" < /dev/null)
	rc=$?
	state=clean
	kernel_check "$taint0" || state=dirty
	dmesg -C
	if [ -e /sys/module/qcow ]; then
		echo "qcow-vm: $n left the qcow module loaded"
		rmmod qcow || true
		[ "$rc" -ne 0 ] || rc=leftover
	fi
	if grep -q " $QCOW_SCRATCH/${n}[/ ]" /proc/mounts; then
		echo "qcow-vm: $n left file systems mounted"
		umount -R "$QCOW_SCRATCH/$n"/* 2>/dev/null || true
		[ "$rc" -ne 0 ] || rc=leftover
	fi
	rm -rf "${QCOW_SCRATCH:?}/$n"
	msg="QCOW-VM-TEST $n rc=$rc dmesg=$state"
	echo "$msg"
	echo "$msg" > /dev/kmsg
	[ "$rc" = 0 ] && [ $state = clean ] || failed=1
done
exit $failed
