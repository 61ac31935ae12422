#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: compare /dev/qcowN with loop (direct I/O on a raw file: the
# physical limit) and qemu-nbd (what users run today) side by side in one VM
# run, reading and writing, and report medians, ratios and the goals of
# issues 3, 4 and 6.
#
#   tests/bench/run.sh [--quick]
#   make bench [BENCH=quick]
#
# Needs a built qcow.ko and qcowctl (make all).  Installs gnuplot-nox when
# missing.  Output in build/bench/: results.json, ratios.png, report.txt
# (the table printed here) and raw/ (fio's JSON per round, row and device).
# Method and how to read the numbers: Documentation/benchmark.rst.
#
# Environment: QCOW_BENCH_QUICK=1 or BENCH=quick (same as --quick: one
# round of 2 s points on a 256M image, a few minutes, for iteration; the
# knobs below still win), QCOW_BENCH_RUNTIME (seconds per point, default
# 4), QCOW_BENCH_RAMP (2), QCOW_BENCH_ROUNDS (3), QCOW_BENCH_SIZE (1G),
# QCOW_BENCH_ROWS (only these rows, e.g. "randwrite-qd16 randread-qd16"),
# QCOW_BENCH_PERF (rows whose qcow points run under perf record in the
# guest), QCOW_BENCH_COMMIT (what to record as the tree measured, for a
# copy outside git; default: git log -1 of this tree),
# QCOW_BENCH_SCRATCH (tmpfs, the default: the VM's scratch disk is a file
# in /dev/shm when the host has the memory for it, so that the host never
# writes it back to a disk of its own during the run; disk: the usual file
# under the cache directory), and the QCOW_VM_* variables of
# tests/vm/run-vm.sh (the scratch disk defaults to 12G here).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$top/build/bench
guest=$here/guest-bench.sh

quick=${QCOW_BENCH_QUICK:-0}
[ "${BENCH:-}" = quick ] && quick=1
case ${1:-} in
--quick) quick=1 ;;
'') ;;
*) echo "usage: $0 [--quick]" >&2; exit 2 ;;
esac
if [ "$quick" = 1 ]; then
	export QCOW_BENCH_ROUNDS=${QCOW_BENCH_ROUNDS:-1}
	export QCOW_BENCH_RUNTIME=${QCOW_BENCH_RUNTIME:-2}
	export QCOW_BENCH_RAMP=${QCOW_BENCH_RAMP:-1}
	export QCOW_BENCH_SIZE=${QCOW_BENCH_SIZE:-256M}
fi
# Read and write images, their copies and the allocating points' images.
export QCOW_VM_SCRATCH_SIZE=${QCOW_VM_SCRATCH_SIZE:-12G}

# The scratch disk in the host's memory.  On a file of the host's own file
# system, the gigabytes the write rows write are written back by the host's
# flusher some 30 s later, in the middle of later points, on the host CPUs
# that run the guest: points then differ by up to a third from round to
# round (benchmark.rst).  tmpfs has nothing to write back.  It needs the
# scratch disk's size in free memory (the guest touches a part of it),
# with 6 GiB to spare for the VM and the host.
scratch_on=disk
if [ -z "${QCOW_VM_SCRATCH_FILE:-}" ] && [ "${QCOW_BENCH_SCRATCH:-tmpfs}" = tmpfs ]; then
	need=$(numfmt --from=iec "$QCOW_VM_SCRATCH_SIZE")
	mem=$(($(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo) * 1024))
	shm=$(df -B1 --output=avail /dev/shm 2>/dev/null | tail -n 1 || echo 0)
	if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] &&
	   [ "$shm" -ge "$need" ] && [ "$mem" -ge $((need + (6 << 30))) ]; then
		shm_dir=$(mktemp -d /dev/shm/qcow-bench.XXXXXX)
		trap 'rm -rf "$shm_dir"' EXIT
		export QCOW_VM_SCRATCH_FILE=$shm_dir/scratch.img
		scratch_on=tmpfs
	else
		echo "bench: not enough free memory for the scratch disk in /dev/shm: on disk"
	fi
fi

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
other_vms=$(pgrep -c qemu-system || true)
t0=$(date +%s)
echo "bench: host load average $load_start, other VMs running: ${other_vms:-0}"
if [ "$quick" = 1 ]; then
	echo "bench: quick mode (numbers only for iteration); progress in build/vm-logs/bench.log"
else
	echo "bench: about 25 minutes; progress in build/vm-logs/bench.log"
fi

"$top/tests/vm/run-vm.sh" --name bench "$guest"
scratch_used=0
if [ "$scratch_on" = tmpfs ]; then
	scratch_used=$(du -B1 "$QCOW_VM_SCRATCH_FILE" | cut -f1)
	rm -rf "$shm_dir"
fi

t1=$(date +%s)
rm -rf "$out"
mkdir -p "$out"
cp -r "$top/build/vm-out/bench/raw" "$out/raw"
cp "$top/build/vm-out/bench/meta.json" "$out/raw/meta.json"
dirty=false
git -C "$top" status --porcelain -- drivers userspace include 2>/dev/null | grep -q . &&
	dirty=true
jq -n --arg load_start "$load_start" --arg load_end "$(load)" \
	--argjson other_vms "${other_vms:-0}" --arg host_kernel "$(uname -r)" \
	--argjson host_ncpu "$(nproc)" --argjson seconds_vm $((t1 - t0)) \
	--arg commit "${QCOW_BENCH_COMMIT:-$(git -C "$top" log -1 --format='%h %s' 2>/dev/null || true)}" \
	--argjson tree_dirty "$dirty" \
	--arg scratch "$scratch_on" --argjson scratch_used "$scratch_used" \
	--argjson quick "$([ "$quick" = 1 ] && echo true || echo false)" \
	'$ARGS.named' > "$out/host.json"

python3 "$here/report.py" "$top/build/vm-out/bench" "$out" "$out/host.json" |
	tee "$out/report.txt"
(cd "$out" && gnuplot "$here/ratios.gp")
echo "bench: $out/results.json, $out/ratios.png (VM run $((t1 - t0)) s)"
