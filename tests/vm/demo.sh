#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: show qcow's main job end to end in a throwaway VM, narrating
# each step.  Boots the Debian kernel the module is built for, loads
# qcow.ko, builds a VM disk (GPT + ext4 + files) and converts it to qcow2,
# attaches it read-only with `qcowctl attach -r -P`, mounts the guest's
# partition and reads its files, shows the driver's statistics; attaches it
# read-write, changes and trims files and shows qemu-img check clean; takes
# an online snapshot of the mounted file system, changes files, applies the
# snapshot (refused while mounted) and shows every file back as it was;
# then detaches and unloads again (lib/demo-guest.sh).  The guest's console
# streams to the terminal; exits non-zero if any step fails.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

say() { printf '\n==> %s\n' "$*"; }

if [ ! -f "$top/drivers/block/qcow/qcow.ko" ] || [ ! -x "$top/userspace/qcowctl" ]; then
	say "Building the module and qcowctl (make all)"
	make -C "$top" all
fi

kdir=${KDIR:-$(printf '%s\n' /lib/modules/*/build | sort -V | tail -n 1)}
kver=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$kdir/include/generated/utsrelease.h")
accel=${QCOW_VM_ACCEL:-tcg}

say "qcow turns qcow2 images into block devices, so a VM's disk can be mounted"
echo "    natively: qcowctl attach -r -P disk.qcow2 && mount /dev/qcow0p1 /mnt."
echo "    This demo runs it in a VM, because the host cannot load modules."
say "Booting Debian kernel $kver in qemu ($accel, ${QCOW_VM_SMP:-2} vCPUs, ${QCOW_VM_MEM:-2G})"
echo "    The guest sees this machine's files read-only, so it uses the module"
echo "    just built in $top/drivers/block/qcow/qcow.ko."
# Hide the harness's own lines; the full console is in the log.
harness='QCOW-VM-|qcow-vm: |run-vm: .* passed|sysrq: |ACPI: PM: |reboot: |EXT4-fs \(vda\)|virtio_blk|^SeaBIOS|^Booting from'
t0=$SECONDS
set +e
QCOW_VM_QUIET=1 "$here/run-vm.sh" --verbose --name demo "$here/lib/demo-guest.sh" 2>&1 |
	grep --line-buffered -vE "$harness"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -eq 0 ]; then
	say "Demo finished in $((SECONDS - t0))s: a guest's ext4 partition through qcow.ko"
	echo "    It was read, written, trimmed, snapshotted online and reverted to"
	echo "    the snapshot, and qemu-img found the image clean with the snapshot"
	echo "    listed.  Console log: build/vm-logs/demo.log"
else
	say "Demo FAILED (console log: build/vm-logs/demo.log)"
	exit 1
fi
