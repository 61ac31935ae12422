#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make check: every test the project has, in order of cost.  Each stage
# appends "PASS name" / "FAIL name" / "SKIP name (reason)" lines to
# $QCOW_RESULTS; the tally at the end is the line CI reads.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

export QCOW_RESULTS=${QCOW_RESULTS:-$top/build/results.txt}
mkdir -p "$(dirname "$QCOW_RESULTS")"
: > "$QCOW_RESULTS"

"$top/scripts/install-deps.sh" || { echo "check: dependency install failed" >&2; exit 1; }

stage() {
	local name=$1; shift
	local t0=$SECONDS
	echo "==== check: $name"
	if "$@"; then
		echo "==== check: $name ok ($((SECONDS - t0))s)"
	else
		echo "==== check: $name FAILED ($((SECONDS - t0))s)"
		echo "FAIL stage:$name" >> "$QCOW_RESULTS"
	fi
}

stage build make all
stage lint scripts/lint.sh
stage userspace tests/userspace/run.sh
stage packaging tests/packaging/run.sh
stage kunit tests/kunit/run.sh
stage fuzz tests/fuzz/run.sh --bounded
stage vm tests/vm/run-tests.sh
stage powercut tests/vm/powercut.sh -n 20
# Power cuts during snapshot creates and deletes: 22 rounds put at least 10
# cuts in each (the workload alternates create and delete rounds).
stage powercut-snap tests/vm/powercut.sh -n 22 snap

pass=$(grep -c '^PASS ' "$QCOW_RESULTS")
fail=$(grep -c '^FAIL ' "$QCOW_RESULTS")
skip=$(grep -c '^SKIP ' "$QCOW_RESULTS")
if [ "$fail" -gt 0 ]; then
	echo "failures:"
	grep '^FAIL ' "$QCOW_RESULTS" | sed 's/^/  /'
fi
echo "check: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
