#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: compare /dev/qcowN with loop (direct I/O on the raw
# conversion: the physical limit) and qemu-nbd (what users run today) side by
# side in one VM run, and report medians and ratios.
#
#   tests/bench/run.sh
#
# Needs a built qcow.ko and qcowctl (make all).  Installs gnuplot-nox when
# missing.  Output in build/bench/: results.json, ratios.png, report.txt
# (the table printed here) and raw/ (fio's JSON per round, row and device).
# Method and how to read the numbers: Documentation/benchmark.rst.
#
# Environment: QCOW_BENCH_RUNTIME (seconds per point, default 10),
# QCOW_BENCH_RAMP (3), QCOW_BENCH_ROUNDS (3), QCOW_BENCH_SIZE (1G),
# QCOW_BENCH_ROWS (only these rows, e.g. "randread-qd16 randread-qd1"),
# and the QCOW_VM_* variables of tests/vm/run-vm.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$top/build/bench
guest=$here/guest-bench.sh

# Bench-only packages, installed the way scripts/install-deps.sh does.
PKGS=(gnuplot-nox)
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "bench: installing ${missing[*]}"
	SUDO=
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	$SUDO apt-get install -y -q "${missing[@]}"
fi

[ -f "$top/drivers/block/qcow/qcow.ko" ] || { echo "bench: no qcow.ko (run make all)" >&2; exit 1; }
[ -x "$top/userspace/qcowctl" ] || { echo "bench: no qcowctl (run make all)" >&2; exit 1; }

# The guest script states its own time limit.
if [ -z "${QCOW_VM_TIMEOUT:-}" ]; then
	QCOW_VM_TIMEOUT=$(sed -n 's/^# vm-timeout: *\([0-9][0-9]*\).*/\1/p' "$guest" | head -n 1)
	export QCOW_VM_TIMEOUT
fi

# Other work on the host skews absolute numbers (ratios less so): record it.
load() { cut -d' ' -f1-3 /proc/loadavg; }
load_start=$(load)
other_vms=$(pgrep -c -x qemu-system-x86 || pgrep -c qemu-system || true)
t0=$(date +%s)
echo "bench: host load average $load_start, other VMs running: ${other_vms:-0}"
echo "bench: about 17 minutes; progress in build/vm-logs/bench.log"

"$top/tests/vm/run-vm.sh" --name bench "$guest"

t1=$(date +%s)
rm -rf "$out"
mkdir -p "$out"
cp -r "$top/build/vm-out/bench/raw" "$out/raw"
cp "$top/build/vm-out/bench/meta.json" "$out/raw/meta.json"
cat > "$out/host.json" <<EOF
{"load_start": "$load_start", "load_end": "$(load)", "other_vms": ${other_vms:-0},
 "host_kernel": "$(uname -r)", "host_ncpu": $(nproc), "seconds_vm": $((t1 - t0))}
EOF

python3 "$here/report.py" "$top/build/vm-out/bench" "$out" "$out/host.json" |
	tee "$out/report.txt"
(cd "$out" && gnuplot "$here/ratios.gp")
echo "bench: $out/results.json, $out/ratios.png (VM run $((t1 - t0)) s)"
