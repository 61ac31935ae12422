#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# packaging/udev-vm: the udev rule at work on real devices, in the test VM
# (guest-udev.sh: the real systemd-udevd with only 60-qcow.rules; a static
# /dev/qcow-control, its add event, /dev/qcowN and a partition, and the
# same attach without the rule as the control).  One VM boot, ~15 s.
set -uo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

ko=$top/drivers/block/qcow/qcow.ko
if [ ! -f "$ko" ] || [ ! -x "$top/userspace/qcowctl" ]; then
	if ! make -s -C "$top" all >"$work/build.log" 2>&1; then
		fail udev-vm "make all failed:" "$(tail -n 20 "$work/build.log")"
		exit 1
	fi
fi
console=$top/build/vm-logs/packaging-udev.log
if "$top/tests/vm/run-vm.sh" --name packaging-udev "$top/tests/packaging/guest-udev.sh" >"$work/vm.log" 2>&1; then
	grep '^ok: ' "$console"
	pass udev-vm
else
	fail udev-vm "$(tail -n 5 "$work/vm.log")" \
		"$(grep -E '^(FAIL|---|ok:)' "$console" 2>/dev/null | tail -n 20)" \
		"console log: $console"
fi
[ "$failures" -eq 0 ]
