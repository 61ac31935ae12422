#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest half of tests/vm/demo.sh: each step is narrated with "==> " and
# the commands are echoed with "$ " before they run.
set -euo pipefail

say() { printf '\n==> %s\n' "$*"; }
run() { echo "\$ $*"; "$@"; }

ko=$QCOW_KO
say "Inside the VM: kernel $(uname -r), running as root"

say "The module file knows its kernel and its aliases"
echo "\$ modinfo $ko"
modinfo "$ko" | grep -E '^(description|license|alias|vermagic|parm):'

say "Loading it"
run insmod "$ko"

say "It registered the control device /dev/qcow-control (misc major 10)"
run ls -l /dev/qcow-control
run cat /sys/class/misc/qcow-control/dev
run cat /sys/module/qcow/parameters/max_devices

if [ -x "$QCOW_CTL" ] && "$QCOW_CTL" help 2>&1 | grep -qw features; then
	say "qcowctl asks the module what it supports (QCOW_CTL_GET_FEATURES)"
	run "$QCOW_CTL" features
fi

say "Unloading it: the control device goes away with it"
run rmmod qcow
if [ -e /dev/qcow-control ] || [ -e /sys/module/qcow ]; then
	echo "qcow left /dev/qcow-control or /sys/module/qcow behind" >&2
	exit 1
fi
run ls /dev/qcow-control 2>&1 || true
