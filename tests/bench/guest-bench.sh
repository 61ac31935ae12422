#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make bench` (started by tests/bench/run.sh through
# tests/vm/run-vm.sh): measure /dev/qcowN against loop and qemu-nbd on the
# same data, in the same guest, with fio.
#
# It builds a fully allocated qcow2 image on the ext4 scratch disk and its
# raw conversion, exposes them as
#   qcow    qcowctl attach -r IMAGE (default L2 cache: covers the image)
#   qcows   qcowctl attach -r --cache-size 64K IMAGE (L2 not covered)
#   loop    losetup --direct-io=on on the raw conversion (the physical limit)
#   nbd     qemu-nbd --cache=none --aio=native (default L2 cache)
#   nbds    the same with a 64 KiB L2 cache of 4 KiB entries
#   file    fio straight on the raw file (O_DIRECT on ext4): no block device
#           in between, the ceiling of this guest (4K QD16 row only)
# and runs every workload row on its devices for several rounds.  Within a
# round the devices of a row run back to back, in an order rotated every
# round, so the drifting speed of TCG touches them all alike.
#
# Output in $QCOW_VM_OUT (build/vm-out/bench/ on the host): meta.json and,
# per point, raw/<round>-<row>-<device>.json (fio's JSON) and
# raw/<round>-<row>-<device>.cpu (guest CPU over the measured window and
# qcow cache counters).  tests/bench/report.py turns them into the report.
#
# Knobs (environment, passed through by run-vm.sh): QCOW_BENCH_RUNTIME
# (seconds per point, default 10), QCOW_BENCH_RAMP (3), QCOW_BENCH_ROUNDS (3),
# QCOW_BENCH_SIZE (image size, 1G), QCOW_BENCH_ROWS (space-separated row
# names, default all).
#
# vm-timeout: 1800
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

runtime=${QCOW_BENCH_RUNTIME:-10}
ramp=${QCOW_BENCH_RAMP:-3}
rounds=${QCOW_BENCH_ROUNDS:-3}
size=${QCOW_BENCH_SIZE:-1G}
small_cache=64K

# Workload rows: name, devices, fio arguments.  Reads only for now (the
# module attaches read-only); write rows will join this table.
ROWS=(
	"randread-qd1|qcow loop nbd|--rw=randread --bs=4k --iodepth=1 --numjobs=1"
	"randread-qd16|qcow loop nbd file|--rw=randread --bs=4k --iodepth=16 --numjobs=1"
	"randread-qd32x2|qcow loop nbd|--rw=randread --bs=4k --iodepth=32 --numjobs=2"
	"read-64k|qcow loop nbd|--rw=read --bs=64k --iodepth=16 --numjobs=1"
	"read-1m|qcow loop nbd|--rw=read --bs=1m --iodepth=16 --numjobs=1"
	"randread-qd16-l2miss|qcows nbds|--rw=randread --bs=4k --iodepth=16 --numjobs=1"
)
want_rows=${QCOW_BENCH_ROWS:-}

out=$QCOW_VM_OUT
mkdir -p "$out/raw"
cd "$QCOW_SCRATCH" || exit 1

declare -A DEV

cleanup() {
	set +e
	for n in 0 1; do
		[ -e /sys/block/nbd$n/pid ] && qemu-nbd --disconnect /dev/nbd$n >/dev/null
	done
	[ -n "${DEV[loop]:-}" ] && losetup -d "${DEV[loop]}"
	for d in qcow qcows; do
		[ -n "${DEV[$d]:-}" ] && "$QCOW_CTL" detach "${DEV[$d]}"
	done
	[ -e /sys/module/qcow ] && rmmod qcow
	return 0
}
trap cleanup EXIT

now() { date +%s; }
t_start=$(now)

step "images: $size fully allocated qcow2 (64K clusters) and its raw conversion"
# fio's write buffers are not zero, so every cluster of the qcow2 made from
# this raw file gets allocated (qemu-img convert skips zero blocks).
fio --name=fill --filename=bench.raw --rw=write --bs=1m --size="$size" \
	--ioengine=libaio --iodepth=8 --direct=1 \
	--eta=never --output=/dev/null
qemu-img convert -f raw -O qcow2 -o cluster_size=64k bench.raw bench.qcow2
qemu-img info bench.qcow2 | sed 's/^/  /'
unalloc=$(qemu-img map -f qcow2 --output=json bench.qcow2 |
	jq '[.[] | select(.data != true) | .length] | add // 0')
[ "$unalloc" = 0 ] || fail "bench.qcow2 has $unalloc unallocated bytes"
# qemu-img wrote through the page cache: flush it now, or its writeback
# would run during the first points.
sync
echo 3 > /proc/sys/vm/drop_caches
t_images=$(now)
echo "images ready in $((t_images - t_start)) s"

step "devices"
modprobe loop
modprobe nbd nbds_max=2
qcow_load
[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (run make)"
DEV[qcow]=$("$QCOW_CTL" attach -r bench.qcow2)
DEV[qcows]=$("$QCOW_CTL" attach -r --cache-size "$small_cache" bench.qcow2)
DEV[loop]=$(losetup --direct-io=on -r -f --show bench.raw)
qemu-nbd -r --cache=none --aio=native -f qcow2 --connect=/dev/nbd0 bench.qcow2
# QEMU keeps at least two L2 entries; 4 KiB entries make 64K the same
# budget, in the same slice size, as the module's.
qemu-nbd -r --cache=none --aio=native --connect=/dev/nbd1 --image-opts \
	"driver=qcow2,file.driver=file,file.filename=bench.qcow2,l2-cache-size=65536,l2-cache-entry-size=4096"
DEV[nbd]=/dev/nbd0
DEV[nbds]=/dev/nbd1
DEV[file]=$QCOW_SCRATCH/bench.raw
loop_dio=$(cat "/sys/block/${DEV[loop]#/dev/}/loop/dio")
[ "$loop_dio" = 1 ] || fail "loop did not enable direct I/O"
bytes=$(stat -c %s bench.raw)
for d in qcow qcows loop nbd nbds; do
	dev=${DEV[$d]}
	for _ in $(seq 50); do
		[ "$(blockdev --getsize64 "$dev" 2>/dev/null || echo 0)" = "$bytes" ] && break
		sleep 0.1
	done
	[ "$(blockdev --getsize64 "$dev")" = "$bytes" ] ||
		fail "$d ($dev) is $(blockdev --getsize64 "$dev") bytes, want $bytes"
	echo "  $d = $dev"
done
for d in qcow qcows; do
	echo "  $d L2 cache: $(cat "/sys/block/${DEV[$d]#/dev/}/qcow/cache_size") bytes"
done
# The same data through every path: spot-check a few MiB.
ref=$(head -c 8M bench.raw | sha256sum)
for d in qcow qcows nbd; do
	[ "$(head -c 8M "${DEV[$d]}" | sha256sum)" = "$ref" ] || fail "$d reads other data than loop"
done

# Busy and total jiffies of all CPUs, and context switches, from /proc/stat.
cpu_jiffies() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; b = t - $5 - $6 }
		$1 == "ctxt" { c = $2 }
		END { print b, t, c }' /proc/stat
}

qcow_counters() {
	local d=$1 s
	case $d in
	qcow|qcows)
		s=/sys/block/${DEV[$d]#/dev/}/qcow
		echo "$(cat "$s/cache_hits") $(cat "$s/cache_misses")" ;;
	*) echo "0 0" ;;
	esac
}

# point ROUND ROW DEVICE FIO_ARGS...: one fio run, plus guest CPU sampled
# over the measured window (after the ramp, short of the end).
point() {
	local round=$1 row=$2 d=$3 base sampler c0 c1
	shift 3
	base=$out/raw/$round-$row-$d
	c0=$(qcow_counters "$d")
	(
		sleep $((ramp + 1))
		a=$(cpu_jiffies)
		sleep $((runtime - 2))
		b=$(cpu_jiffies)
		echo "$a $b $(nproc)" > "$base.win"
	) &
	sampler=$!
	fio --name="$row" --filename="${DEV[$d]}" --readonly --direct=1 \
		--ioengine=libaio --time_based --runtime="$runtime" \
		--ramp_time="$ramp" --norandommap --randrepeat=1 \
		--group_reporting --lat_percentiles=1 --eta=never \
		--output-format=json --output="$base.json" "$@" ||
		fail "fio $row on $d failed"
	wait "$sampler"
	c1=$(qcow_counters "$d")
	# busy0 total0 ctxt0 busy1 total1 ctxt1 ncpu hits0 misses0 hits1 misses1
	echo "$(cat "$base.win") $c0 $c1" > "$base.cpu"
	rm -f "$base.win"
}

step "fio: $rounds rounds, ${runtime}s per point after a ${ramp}s ramp"
row_names=()
for spec in "${ROWS[@]}"; do
	IFS='|' read -r row devs args <<<"$spec"
	if [ -n "$want_rows" ] && ! grep -qw -- "$row" <<<"$want_rows"; then
		continue
	fi
	row_names+=("$row")
done
[ ${#row_names[@]} -gt 0 ] || fail "QCOW_BENCH_ROWS='$want_rows' names no row"

for round in $(seq 1 "$rounds"); do
	for spec in "${ROWS[@]}"; do
		IFS='|' read -r row devs args <<<"$spec"
		grep -qw -- "$row" <<<"${row_names[*]}" || continue
		read -r -a dl <<<"$devs"
		n=${#dl[@]}
		for i in $(seq 0 $((n - 1))); do
			d=${dl[$(((i + round - 1) % n))]}
			t0=$(now)
			# shellcheck disable=SC2086 # $args is a list of fio options
			point "$round" "$row" "$d" $args
			printf '  round %d %-22s %-6s %s\n' "$round" "$row" "$d" \
				"$(jq -r '.jobs[0].read | "\(.iops | floor) IOPS \(.bw / 1024 | floor) MiB/s"' \
					"$out/raw/$round-$row-$d.json") ($(($(now) - t0)) s)"
		done
	done
done
t_end=$(now)

{
	jq -n \
		--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		--arg kernel "$(uname -r)" \
		--arg fio "$(fio --version)" \
		--arg qemu "$(qemu-nbd --version | head -n 1)" \
		--arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
		--argjson ncpu "$(nproc)" \
		--argjson mem "$(awk '/^MemTotal/ { print $2 * 1024 }' /proc/meminfo)" \
		--argjson size "$bytes" \
		--argjson runtime "$runtime" --argjson ramp "$ramp" \
		--argjson rounds "$rounds" \
		--arg rows "${row_names[*]}" \
		--argjson cache "$(cat "/sys/block/${DEV[qcow]#/dev/}/qcow/cache_size")" \
		--argjson small "$(cat "/sys/block/${DEV[qcows]#/dev/}/qcow/cache_size")" \
		--argjson t_images "$((t_images - t_start))" \
		--argjson t_fio "$((t_end - t_images))" \
		'{date: $date, kernel: $kernel, fio: $fio, qemu: $qemu,
		  guest_cpu: $cpu, guest_ncpu: $ncpu, guest_mem: $mem,
		  image_size: $size, cluster_size: 65536,
		  runtime: $runtime, ramp: $ramp, rounds: $rounds,
		  rows: ($rows | split(" ")),
		  qcow_cache_size: $cache, qcow_small_cache_size: $small,
		  seconds_images: $t_images, seconds_fio: $t_fio}'
} > "$out/meta.json"
echo "fio done in $((t_end - t_images)) s"

trap - EXIT
cleanup
