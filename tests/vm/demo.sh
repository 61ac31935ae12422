#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: show qcow at work in a throwaway VM, narrating each step.
# Boots the Debian kernel the module is built for, loads qcow.ko, shows
# /dev/qcow-control and the module's identity, and unloads it again.  The
# guest's console streams to the terminal.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

say() { printf '\n==> %s\n' "$*"; }

if [ ! -f "$top/drivers/block/qcow/qcow.ko" ]; then
	say "Building the module (make module)"
	make -C "$top" module
fi

kdir=${KDIR:-$(printf '%s\n' /lib/modules/*/build | sort -V | tail -n 1)}
kver=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$kdir/include/generated/utsrelease.h")
accel=${QCOW_VM_ACCEL:-tcg}

say "qcow turns qcow2 images into block devices; this demo runs it in a VM"
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
	say "Demo finished in $((SECONDS - t0))s: the module loaded, served /dev/qcow-control and unloaded cleanly"
	echo "    Console log: build/vm-logs/demo.log"
else
	say "Demo FAILED (console log: build/vm-logs/demo.log)"
	exit 1
fi
