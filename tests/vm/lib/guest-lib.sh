# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers for guest test scripts (tests/vm/guest/t-*.sh), which run as root
# inside the test VM.  Source it with
#   . "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
# It enables errexit/nounset/pipefail.  The environment from run-vm.sh:
#   QCOW_TOP      the project (same path as on the host, read-only lower layer)
#   QCOW_KO       drivers/block/qcow/qcow.ko
#   QCOW_CTL      userspace/qcowctl (may not exist)
#   QCOW_SCRATCH  ext4 scratch disk for images (the working directory)
#   QCOW_VM_OUT   directory that appears on the host as build/vm-out/<name>/
#   QCOW_VM_KVER  the running kernel release
set -euo pipefail

# step MSG: narrate what the test does next.
step() { echo "--- $*"; }

# fail MSG: report and stop the test.
fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect CMD...: run a command that must succeed, naming it on failure.
expect() {
	"$@" || fail "command failed ($?): $*"
}

# expect_fail CMD...: run a command that must fail.
expect_fail() {
	if "$@"; then
		fail "command unexpectedly succeeded: $*"
	fi
}

# qcow_load [PARAMS...]: insmod the freshly built module.
# shellcheck disable=SC2120 # the parameters are optional
qcow_load() {
	[ -f "$QCOW_KO" ] || fail "no module at $QCOW_KO (run make module)"
	expect insmod "$QCOW_KO" "$@"
}

# qcow_unload: rmmod the module and check that it left nothing behind.
qcow_unload() {
	expect rmmod qcow
	[ ! -e /sys/module/qcow ] || fail "/sys/module/qcow still exists after rmmod"
	[ ! -e /dev/qcow-control ] || fail "/dev/qcow-control still exists after rmmod"
}

# have_qcowctl [COMMAND]: true when qcowctl is built (and knows COMMAND).
have_qcowctl() {
	[ -x "$QCOW_CTL" ] || return 1
	[ $# -eq 0 ] || "$QCOW_CTL" help 2>&1 | grep -qw "$1"
}
