# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# kernel_check: inside the test VM, decide whether the kernel saw a bug since
# boot (or since the last `dmesg -C`).  Prints the offending lines prefixed
# with "qcow-vm: dmesg: " (run-vm.sh picks them out of the console log) and
# returns 1 if there are any.  Sourced by guest-init.sh and guest-multi.sh.

# Kernel messages that mean a bug, wherever they come from.
QCOW_DMESG_BAD='BUG:|Oops|WARNING:|KASAN|UBSAN|hung_task|lockdep|general protection|Call Trace'
# Taint flags a bug sets even when its message has left the ring buffer:
# B bad page (5), D oops (7), W warning (9), L soft lockup (14).
QCOW_TAINT_BAD=$(((1 << 5) | (1 << 7) | (1 << 9) | (1 << 14)))

# kernel_check [TAINT_BEFORE]: TAINT_BEFORE is /proc/sys/kernel/tainted from
# before the test, so that only new bad taint flags count.
kernel_check() {
	local before=${1:-0} now bad line
	now=$(cat /proc/sys/kernel/tainted)
	# The kernel command line names hung_task_panic; it is not a report.
	bad=$(dmesg | grep -v 'ommand line' | grep -E "$QCOW_DMESG_BAD")
	if (((now & ~before) & QCOW_TAINT_BAD)); then
		bad+=${bad:+$'\n'}"kernel taint went from $before to $now"
	fi
	[ -z "$bad" ] && return 0
	echo "qcow-vm: kernel log has warnings:"
	while IFS= read -r line; do
		echo "qcow-vm: dmesg: $line"
	done <<<"$bad"
	return 1
}
