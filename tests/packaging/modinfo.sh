#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# modinfo on the tree's qcow.ko (built by `make module` when missing):
# name, license, description, version (= dkms.conf's PACKAGE_VERSION),
# vermagic of the kernel in KDIR, the autoload aliases, and every
# module_param*() of drivers/block/qcow/*.c listed with a description.
# One "PASS|FAIL packaging/modinfo" line to $QCOW_RESULTS.
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

need modinfo modinfo make || exit 1
ko=$top/drivers/block/qcow/qcow.ko
if [ ! -f "$ko" ] && ! make -s -C "$top" module >"$work/build.log" 2>&1; then
	fail modinfo "make module failed:" "$(tail -n 20 "$work/build.log")"
	exit 1
fi
check_modinfo "$ko"
verdict modinfo
[ "$failures" -eq 0 ]
