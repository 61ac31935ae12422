#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The packaging tests (make check's "packaging" stage, one to two
# minutes): shellcheck over these scripts, then
#   manpage.sh     Documentation/qcowctl.8: lint and coverage of the CLI
#   completion.sh  packaging/bash-completion/qcowctl
#   modinfo.sh     the tree's qcow.ko: version, aliases, parameters described
#   install.sh     make install/uninstall into a DESTDIR; the udev rule
#                  through udev's parser
#   dkms.sh        dkms add/build/install/remove in a scratch DKMS tree
#   udev-vm.sh     the udev rule applied by systemd-udevd to real devices,
#                  in the test VM (one boot)
# Each appends "PASS|FAIL packaging/<case>" lines to $QCOW_RESULTS (default
# build/results-packaging.txt); the exit status is non-zero if any failed.
# Nothing is installed on the host and no module is loaded into it.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
if [ -z "${QCOW_RESULTS:-}" ]; then
	QCOW_RESULTS=$top/build/results-packaging.txt
	mkdir -p "$(dirname "$QCOW_RESULTS")"
	: > "$QCOW_RESULTS"
fi
export QCOW_RESULTS

rc=0
if ! command -v shellcheck >/dev/null; then
	echo "FAIL packaging/shellcheck" | tee -a "$QCOW_RESULTS"
	echo "    shellcheck is not installed (scripts/install-deps.sh installs it)"
	rc=1
elif out=$(cd "$here" && shellcheck -x ./*.sh 2>&1); then
	echo "PASS packaging/shellcheck" | tee -a "$QCOW_RESULTS"
else
	echo "FAIL packaging/shellcheck" | tee -a "$QCOW_RESULTS"
	printf '%s\n' "$out" | sed 's/^/    /'
	rc=1
fi

for t in manpage completion modinfo install dkms udev-vm; do
	echo "--- packaging: $t"
	"$here/$t.sh" || rc=1
done
exit "$rc"
