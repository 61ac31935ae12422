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

# udevd_path: the systemd-udevd binary, or fail.
udevd_path() {
	local f
	for f in /lib/systemd/systemd-udevd /usr/lib/systemd/systemd-udevd; do
		if [ -x "$f" ]; then
			echo "$f"
			return 0
		fi
	done
	fail "no systemd-udevd (apt-get install udev)"
}

# --- tests made of named checks ----------------------------------------------
#
# A test that reports each of its checks as "PASS|FAIL GROUP/NAME" calls
# check() for each.  Set CHECK_GROUP (GROUP above) and CHECK_LOG (where a
# check's output is kept), optionally
#   CHECK_DIR    the directory the check runs in (default: where it is)
#   CHECK_SHOW   fail (default): show the output of a failed check; always;
#                live: indented as it comes, with the seconds on PASS
# and define the hooks it needs:
#   check_exit   trapped on EXIT inside the check: runs even when it fails
#   check_after  after each check, in the test's shell: undo what a failed
#                check left behind (detach, unmount...)
# The counts are in npass and nfail.
npass=0
nfail=0

# die MSG: fail the current check (checks run in a subshell).
die() {
	echo "$*" >&2
	exit 1
}

check_run() {
	if declare -F check_exit >/dev/null; then
		trap check_exit EXIT
	fi
	if [ -n "${CHECK_DIR:-}" ]; then
		cd "$CHECK_DIR"
	fi
	"$@"
}

# check NAME FUNCTION [ARGS...]: run one check in a subshell with errexit.
check() {
	local name=$1 rc t0=$SECONDS took=
	shift
	set +e
	if [ "${CHECK_SHOW:-fail}" = live ]; then
		(set -e; check_run "$@") 2>&1 | sed -u 's/^/    /'
		rc=${PIPESTATUS[0]}
		took=" ($((SECONDS - t0))s)"
	else
		(set -e; check_run "$@") >"$CHECK_LOG" 2>&1
		rc=$?
	fi
	set -e
	if [ "$rc" -eq 0 ]; then
		echo "PASS $CHECK_GROUP/$name$took"
		npass=$((npass + 1))
	else
		echo "FAIL $CHECK_GROUP/$name"
		nfail=$((nfail + 1))
	fi
	if [ "${CHECK_SHOW:-fail}" = always ] ||
	   { [ "$rc" -ne 0 ] && [ "${CHECK_SHOW:-fail}" = fail ]; }; then
		sed 's/^/    /' "$CHECK_LOG"
	fi
	if declare -F check_after >/dev/null; then
		check_after
	fi
}
