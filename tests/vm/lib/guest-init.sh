#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stage-2 init of the qcow test VM (PID 1 after switch_root).  The root is
# the host's / (read-only 9p) under a tmpfs overlay.  Sets up /tmp, /run,
# the scratch disk and the output share, runs the job the host described in
# $qcowvm_job, checks dmesg, reports on the console and powers off.
#
# Console protocol, parsed by run-vm.sh:
#   QCOW-VM-EXIT=<rc>              exit status of the guest script
#   QCOW-VM-DMESG=clean|dirty      whether the kernel reported a bug
#   qcow-vm: dmesg: <line>         the kernel log lines that did
set -u

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8

say() { echo "qcow-vm: [$(cut -d" " -f1 /proc/uptime)] $*"; }

# The marker lines also go through printk, which reaches the serial port
# synchronously; a plain write to the tty may still sit in its buffer when
# the machine powers off.
marker() {
	echo "$1"
	echo "$1" > /dev/kmsg
}

# Wait with a shell builtin: once the power-off starts, the 9p root (and
# with it /usr/bin/sleep) is gone.
pause() {
	[ -p /dev/qcow-vm-wait ] || mkfifo /dev/qcow-vm-wait
	read -r -t "$1" _ <> /dev/qcow-vm-wait
}

poweroff_now() {
	pause 0.3
	echo o > /proc/sysrq-trigger
	pause 30
	# Still here: exiting PID 1 panics, and panic=-1 with -no-reboot ends qemu.
	exit 1
}

# Setup failures are reported as a non-numeric exit marker so the host
# never mistakes them for a test result.
setup_fail() {
	say "setup failed: $*"
	marker "QCOW-VM-EXIT=setup"
	poweroff_now
}

# shellcheck disable=SC1091
. "$(dirname "$0")/kernel-check.sh" || setup_fail "cannot read kernel-check.sh"
# shellcheck disable=SC1090
. "${qcowvm_job:?}" || setup_fail "cannot read job file $qcowvm_job"

say "stage 2 up, setting up"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run || setup_fail "tmpfs /run"
mkdir -p /run/lock
# A fresh /tmp, unless the project or the script lives under the host's
# /tmp (the overlay already makes /tmp writable).
case "$QCOW_TOP/ $QCOW_VM_SCRIPT" in
/tmp/* | *" /tmp/"*) ;;
*) mount -t tmpfs -o mode=1777 tmpfs /tmp || setup_fail "tmpfs /tmp" ;;
esac

modprobe -a virtio_blk ext4 || setup_fail "modprobe virtio_blk ext4"
for _ in $(seq 100); do
	[ -b /dev/vda ] && break
	sleep 0.1
done
mkdir -p "$QCOW_SCRATCH"
mount -t ext4 /dev/vda "$QCOW_SCRATCH" || setup_fail "mount scratch disk"

if [ -n "${QCOW_VM_OUT:-}" ]; then
	mkdir -p "$QCOW_VM_OUT"
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 qcowout \
		"$QCOW_VM_OUT" || setup_fail "mount output share"
fi

# Kernel messages interleave with the script's output on the console, even
# after a quiet boot.
echo 7 > /proc/sys/kernel/printk
say "running ${QCOW_VM_SCRIPT} ${QCOW_VM_ARGS[*]}"
cd "$QCOW_SCRATCH" || setup_fail "cd $QCOW_SCRATCH"
taint0=$(cat /proc/sys/kernel/tainted)
bash "$QCOW_VM_SCRIPT" "${QCOW_VM_ARGS[@]}" < /dev/null
rc=$?
cd /
say "guest script exited with $rc"

dmesg_state=clean
kernel_check "$taint0" || dmesg_state=dirty

sync
umount "$QCOW_SCRATCH" 2>/dev/null
[ -n "${QCOW_VM_OUT:-}" ] && umount "$QCOW_VM_OUT" 2>/dev/null
marker "QCOW-VM-EXIT=$rc"
marker "QCOW-VM-DMESG=$dmesg_state"
poweroff_now
