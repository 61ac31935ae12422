#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of `make bench` (started by tests/bench/run.sh through
# tests/vm/run-vm.sh): measure /dev/qcowN against loop and qemu-nbd on the
# same data, in the same guest, with fio, reading and writing.
#
# Every row runs on one "set" of images, and in each set the three devices
# are the same layout seen three ways:
#   ro     read rows: a fully allocated qcow2 (64K clusters) and its raw
#          conversion, attached read-only:
#            qcow   qcowctl attach -r IMAGE (default L2 cache: covers it)
#            qcows  qcowctl attach -r --cache-size 64K IMAGE (L2 not covered)
#            loop   losetup --direct-io=on -r on the raw conversion
#            nbd    qemu-nbd -r --cache=none --aio=native
#            nbds   the same with a 64 KiB L2 cache of 4 KiB entries
#            file   fio straight on the raw file (O_DIRECT on ext4)
#   rw     writes on allocated images: copies of the ro images (qcow and
#          nbd each write their own copy), attached read-write
#   empty  allocating writes: a fresh empty qcow2 (64K clusters, 4x the
#          size) per point; loop on a fresh sparse raw file of that size
#   cow64  writes over a fully populated backing file: a fresh qcow2
#          overlay (64K clusters) on the ro qcow2 per point; loop borrows
#          the empty row's sparse raw file (report.py); reads of such an
#          overlay, all from the backing file, are compared with the ro
#          set's loop and qcow
#   cowel2 the same with 128K clusters and extended_l2=on
# and runs every workload row on its devices for several rounds.  Within a
# round the devices of a row run back to back, in an order rotated every
# round, so the drifting speed of TCG touches them all alike.  The empty
# and overlay images are created before and detached and deleted after each
# point, so every point starts from the same allocation state; the qcow
# ones must pass `qemu-img check` after detach, or the bench fails.
#
# Until the module can attach read-write, the qcow points of the write
# rows are recorded as "n/a" with the reason (qcowctl's message).
#
# Output in $QCOW_VM_OUT (build/vm-out/bench/ on the host): meta.json and,
# per point, raw/<round>-<row>-<device>.json (fio's JSON),
# raw/<round>-<row>-<device>.cpu (guest CPU over the measured window and
# qcow cache counters), .ds (sectors and writes of the scratch disk and of
# the device, before fio and after fio and a flush: write amplification),
# .disk (the scratch disk's /proc/diskstats line at the same two moments:
# its requests and the milliseconds they took, the emulated disk's latency),
# .vm (/proc/vmstat and /proc/meminfo at the same two moments: reclaim,
# page allocation and free memory around the point),
# .na (why the point could not run), .perf.txt (perf report, when asked).
# tests/bench/report.py turns them into the report.
#
# Knobs (environment, passed through by run-vm.sh): QCOW_BENCH_RUNTIME
# (seconds per point, default 4), QCOW_BENCH_RAMP (2), QCOW_BENCH_ROUNDS
# (3), QCOW_BENCH_SIZE (image size, 1G), QCOW_BENCH_ROWS (space-separated
# row names, default all), QCOW_BENCH_PERF (row names whose points run
# under `perf record`; summaries in raw/*.perf.txt and raw/*.offcpu.txt).
#
# vm-timeout: 3600
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

runtime=${QCOW_BENCH_RUNTIME:-4}
ramp=${QCOW_BENCH_RAMP:-2}
rounds=${QCOW_BENCH_ROUNDS:-3}
size=${QCOW_BENCH_SIZE:-1G}
perf_rows=${QCOW_BENCH_PERF:-}
small_cache=64K

# Workload rows: name | set | devices | fio arguments.  Random rows on
# allocated images use --norandommap.  The allocating rows (sets empty,
# cow64, cowel2) replay a log instead (fio --read_iolog): 4K writes at the
# start of every 64K slot of the image, in a random order, each slot once,
# so that every write lands in a cluster no earlier write allocated (fio's
# own random offsets repeat clusters: --blockalign turns its random map
# off).  "@slots" in the arguments names that log, "@slots-sync" the same
# with an fsync after every write (the log replaces --fsync=1, which fio
# ignores when it replays).
ROWS=(
	"randread-qd1|ro|qcow loop nbd|--rw=randread --bs=4k --iodepth=1 --norandommap"
	"randread-qd16|ro|qcow loop nbd file|--rw=randread --bs=4k --iodepth=16 --norandommap"
	"randread-qd16-uring|ro|qcow loop nbd|--rw=randread --bs=4k --iodepth=16 --norandommap --ioengine=io_uring"
	"randread-qd16x2|ro|qcow loop nbd|--rw=randread --bs=4k --iodepth=16 --norandommap --numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split"
	"read-64k|ro|qcow loop nbd|--rw=read --bs=64k --iodepth=16"
	"read-1m|ro|qcow loop nbd|--rw=read --bs=1m --iodepth=16"
	"randread-qd16-l2miss|ro|qcows nbds|--rw=randread --bs=4k --iodepth=16 --norandommap"
	"randread-overlay|cow64|qcow nbd|--rw=randread --bs=4k --iodepth=16 --norandommap"
	"randwrite-qd1|rw|qcow loop nbd|--rw=randwrite --bs=4k --iodepth=1 --norandommap"
	"randwrite-qd16|rw|qcow loop nbd|--rw=randwrite --bs=4k --iodepth=16 --norandommap"
	"randwrite-qd16-uring|rw|qcow loop nbd|--rw=randwrite --bs=4k --iodepth=16 --norandommap --ioengine=io_uring"
	"randwrite-qd16x2|rw|qcow loop nbd|--rw=randwrite --bs=4k --iodepth=16 --norandommap --numjobs=2 --cpus_allowed=0-1 --cpus_allowed_policy=split"
	"randrw-qd16|rw|qcow loop nbd|--rw=randrw --rwmixread=70 --bs=4k --iodepth=16 --norandommap"
	"write-64k|rw|qcow loop nbd|--rw=write --bs=64k --iodepth=16"
	"write-1m|rw|qcow loop nbd|--rw=write --bs=1m --iodepth=16"
	"randwrite-empty|empty|qcow loop nbd|@slots --iodepth=16"
	"randwrite-fsync|empty|qcow loop nbd|@slots-sync --iodepth=1"
	"randwrite-cow64k|cow64|qcow nbd|@slots --iodepth=16"
	"randwrite-cow128k-el2|cowel2|qcow nbd|@slots --iodepth=16"
)
want_rows=${QCOW_BENCH_ROWS:-}

out=$QCOW_VM_OUT
mkdir -p "$out/raw"
cd "$QCOW_SCRATCH" || exit 1
scratch_disk=$(basename "$(findmnt -n -o SOURCE "$QCOW_SCRATCH")")

# DEV[set/device]: the block device (or file) of a device in a set.
declare -A DEV
# Why qcow cannot attach read-write (empty while it can).
qcow_rw_na=

detach_all() {
	local d n
	for n in 0 1 2 3; do
		[ -e /sys/block/nbd$n/pid ] && qemu-nbd --disconnect /dev/nbd$n >/dev/null
	done
	for d in "${DEV[@]}"; do
		case $d in
		/dev/loop*) losetup -d "$d" ;;
		/dev/qcow*) qcowctl detach "$d" ;;
		esac
	done
	DEV=()
}

cleanup() {
	set +e
	detach_all
	[ -e /sys/module/qcow ] && rmmod qcow
	[ -z "${tracefs_mounted:-}" ] || umount /sys/kernel/tracing
	return 0
}
trap cleanup EXIT

now() { date +%s; }
t_start=$(now)

# Rows selected, and the sets they need.
row_names=()
declare -A NEED
for spec in "${ROWS[@]}"; do
	IFS='|' read -r row set _ _ <<<"$spec"
	if [ -n "$want_rows" ] && [[ " $want_rows " != *" $row "* ]]; then
		continue
	fi
	row_names+=("$row")
	NEED[$set]=1
	# The overlays' backing file and the borrowed loop of the cow rows.
	case $set in cow64|cowel2) NEED[ro]=1 ;; esac
done
[ ${#row_names[@]} -gt 0 ] || fail "QCOW_BENCH_ROWS='$want_rows' names no row"

# The tools run at every point, copied with their libraries to the guest's
# tmpfs and started through the dynamic loader with that directory as the
# library path: started from the 9p root, each exec costs tens (fio: 60
# libraries, hundreds) of 9p lookups, which take seconds of TCG time per
# point when the host is busy.  Functions of the same names run the copies.
local_dir=/tmp/bench-bin
mkdir -p "$local_dir/bin" "$local_dir/lib"
localize() {
	local name=$1 path=$2
	cp -L "$path" "$local_dir/bin/$name"
	ldd "$path" | awk '/=> \// { print $3 } /^\t\/.*ld-linux/ { print $1 }' |
		xargs cp -Ln -t "$local_dir/lib"
}
for b in fio jq sync losetup blockdev qemu-img qemu-nbd; do
	localize "$b" "$(command -v "$b")"
done
[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (run make)"
localize qcowctl "$QCOW_CTL"
ld_so=$local_dir/lib/$(basename "$(ldd "$(command -v fio)" | awk '/ld-linux/ { print $1 }')")
lrun() {
	local b=$1
	shift
	"$ld_so" --library-path "$local_dir/lib" "$local_dir/bin/$b" "$@"
}
fio() { lrun fio "$@"; }
jq() { lrun jq "$@"; }
# shellcheck disable=SC2120 # called with and without arguments
sync() { lrun sync "$@"; }
losetup() { lrun losetup "$@"; }
blockdev() { lrun blockdev "$@"; }
qemu-img() { lrun qemu-img "$@"; }
qemu-nbd() { lrun qemu-nbd "$@"; }
qcowctl() { lrun qcowctl "$@"; }
fio --version > /dev/null || fail "fio does not start from $local_dir"
ncpu=$(nproc)

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
bytes=$(stat -c %s bench.raw)
# The allocating rows write into images this large, so that their writes
# stay far from filling them (one 64K slot per write: see @slots).
empty_bytes=$((4 * bytes))
if [ -n "${NEED[rw]:-}" ]; then
	step "images for the write rows: copies that qcow, loop and nbd each own"
	cp bench.raw wr.raw
	cp bench.qcow2 wr.qcow2
	cp bench.qcow2 wr-nbd.qcow2
fi
# qemu-img and cp wrote through the page cache: flush it now, or its
# writeback would run during the first points.
sync
echo 3 > /proc/sys/vm/drop_caches
t_images=$(now)
echo "images ready in $((t_images - t_start)) s"

# wait_size DEV: wait until DEV has appeared with its size, and print it.
wait_size() {
	local dev=$1 s
	for _ in $(seq 50); do
		s=$(blockdev --getsize64 "$dev" 2>/dev/null || echo 0)
		[ "$s" != 0 ] && break
		sleep 0.1
	done
	blockdev --getsize64 "$dev"
}

# check_dev SET/DEVICE BYTES: the device exists, has the right size and,
# for loop, runs with direct I/O.
check_dev() {
	local key=$1 want=$2 dev=${DEV[$1]} got
	got=$(wait_size "$dev")
	[ "$got" = "$want" ] || fail "$key ($dev) is $got bytes, want $want"
	case $dev in
	/dev/loop*)
		[ "$(cat "/sys/block/${dev#/dev/}/loop/dio")" = 1 ] ||
			fail "$key: loop did not enable direct I/O" ;;
	esac
}

# qcow_attach_rw KEY [ARGS...] IMAGE: attach read-write; on refusal record the
# reason as qcow_rw_na and leave DEV[KEY] unset.
qcow_attach_rw() {
	local key=$1 dev
	shift
	[ -z "$qcow_rw_na" ] || return 0
	if dev=$(qcowctl attach "$@" 2>"$out/attach.err"); then
		DEV[$key]=$dev
	else
		qcow_rw_na=$(head -n 1 "$out/attach.err")
		[ -n "$qcow_rw_na" ] || qcow_rw_na="qcowctl attach failed"
		echo "  qcow read-write: n/a ($qcow_rw_na)"
	fi
	rm -f "$out/attach.err"
}

step "devices"
if [ -n "$perf_rows" ] && [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs tracefs /sys/kernel/tracing
	tracefs_mounted=1
fi
modprobe loop
modprobe nbd nbds_max=4
qcow_load
if [ -n "${NEED[ro]:-}" ]; then
	DEV[ro/qcow]=$(qcowctl attach -r bench.qcow2)
	DEV[ro/qcows]=$(qcowctl attach -r --cache-size "$small_cache" bench.qcow2)
	DEV[ro/loop]=$(losetup --direct-io=on -r -f --show bench.raw)
	qemu-nbd -r --cache=none --aio=native -f qcow2 --connect=/dev/nbd0 bench.qcow2
	# QEMU keeps at least two L2 entries; 4 KiB entries make 64K the same
	# budget, in the same slice size, as the module's.
	qemu-nbd -r --cache=none --aio=native --connect=/dev/nbd1 --image-opts \
		"driver=qcow2,file.driver=file,file.filename=bench.qcow2,l2-cache-size=65536,l2-cache-entry-size=4096"
	DEV[ro/nbd]=/dev/nbd0
	DEV[ro/nbds]=/dev/nbd1
	DEV[ro/file]=$QCOW_SCRATCH/bench.raw
	for d in qcow qcows loop nbd nbds; do
		check_dev "ro/$d" "$bytes"
		echo "  ro/$d = ${DEV[ro/$d]}"
	done
	for d in qcow qcows; do
		echo "  $d L2 cache: $(cat "/sys/block/${DEV[ro/$d]#/dev/}/qcow/cache_size") bytes"
	done
	# The same data through every path: spot-check a few MiB.
	ref=$(head -c 8M bench.raw | sha256sum)
	for d in qcow qcows nbd; do
		[ "$(head -c 8M "${DEV[ro/$d]}" | sha256sum)" = "$ref" ] ||
			fail "$d reads other data than loop"
	done
fi
if [ -n "${NEED[rw]:-}" ]; then
	qcow_attach_rw rw/qcow wr.qcow2
	DEV[rw/loop]=$(losetup --direct-io=on -f --show wr.raw)
	qemu-nbd --cache=none --aio=native -f qcow2 --connect=/dev/nbd2 wr-nbd.qcow2
	DEV[rw/nbd]=/dev/nbd2
	for d in qcow loop nbd; do
		[ -n "${DEV[rw/$d]:-}" ] || continue
		check_dev "rw/$d" "$bytes"
		echo "  rw/$d = ${DEV[rw/$d]}"
	done
fi

# Per-point images of the allocating sets.  new_image SET DEVICE creates
# the image and sets DEV[SET/DEVICE] (left unset when qcow cannot attach
# read-write); drop_image SET DEVICE detaches and deletes it, after
# `qemu-img check` for qcow.  The files are named after the device, so a
# failed check leaves evidence in the console log, not a collision.
pt_bytes=0
new_image() {
	local set=$1 d=$2 img=pt-$2 opts
	case $set in
	empty)
		pt_bytes=$empty_bytes
		if [ "$d" = loop ]; then
			truncate -s "$pt_bytes" "$img.raw"
		else
			qemu-img create -q -f qcow2 -o cluster_size=64k "$img.qcow2" "$pt_bytes"
		fi ;;
	cow64|cowel2)
		pt_bytes=$bytes
		opts=cluster_size=64k
		[ "$set" = cowel2 ] && opts=cluster_size=128k,extended_l2=on
		qemu-img create -q -f qcow2 -o "$opts" -b bench.qcow2 -F qcow2 \
			"$img.qcow2" ;;
	esac
	case $d in
	qcow) qcow_attach_rw "$set/qcow" "$img.qcow2" ;;
	loop) DEV[$set/loop]=$(losetup --direct-io=on -f --show "$img.raw") ;;
	nbd)
		qemu-nbd --cache=none --aio=native -f qcow2 --connect=/dev/nbd3 "$img.qcow2"
		DEV[$set/nbd]=/dev/nbd3 ;;
	esac
	[ -n "${DEV[$set/$d]:-}" ] || return 0
	check_dev "$set/$d" "$pt_bytes"
}

drop_image() {
	local set=$1 d=$2 img=pt-$2 dev=${DEV[$1/$2]:-}
	if [ -n "$dev" ]; then
		case $d in
		qcow) qcowctl detach "$dev" ;;
		loop) losetup -d "$dev" ;;
		nbd) qemu-nbd --disconnect "$dev" >/dev/null ;;
		esac
		unset "DEV[$set/$d]"
	fi
	if [ "$d" = qcow ] && [ -n "$dev" ]; then
		qemu-img check "$img.qcow2" > "$out/check.txt" 2>&1 || {
			cat "$out/check.txt"
			fail "qemu-img check of the qcow image after $set points"
		}
		rm -f "$out/check.txt"
	fi
	rm -f "$img.raw" "$img.qcow2"
}

# perf_report DATA BASE: BASE.perf.txt, where the CPUs spend their time
# (cpu-clock samples by process, object and symbol), and BASE.offcpu.txt,
# where threads go to sleep (sched_switch samples by the first frames
# above the scheduler: lock waits, I/O waits, hand-offs), most frequent
# first.
perf_report() {
	local data=$1 base=$2
	{
		echo "## by symbol, all processes (self time)"
		perf report -i "$data" --stdio --no-children -g none \
			--percent-limit 0.3 --sort sym 2>/dev/null
		echo "## by symbol, including callees (inclusive time)"
		perf report -i "$data" --stdio --children -g none \
			--percent-limit 2 --sort sym 2>/dev/null
		echo "## by process, object and symbol"
		perf report -i "$data" --stdio --no-children -g none \
			--percent-limit 0.5 --sort comm,dso,sym 2>/dev/null |
			sed 's/kworker\/[0-9a-zA-Z:+.-]*/kworker/'
	} | grep -v -e '^#$' -e '^# \.\.\.' > "$base.perf.txt" || true
	perf script -i "$data" -F comm,event,ip,sym 2>/dev/null | awk '
		function done() {
			if (key != "") count[key]++
			key = ""
		}
		/^[^ \t]/ {
			done(); n = 0
			off = $0 ~ /sched_switch/
			comm = $1; sub(/\/.*/, "", comm)
			next
		}
		off && NF >= 2 {
			f = $2; sub(/\+0x[0-9a-f]+$/, "", f)
			if (n == 0 && f ~ /^(__schedule|schedule|schedule_.*|io_schedule.*|preempt_schedule.*|__cond_resched)$/)
				next
			if (n < 6) key = key (n ? " < " : comm ": ") f
			n++
		}
		END {
			done()
			for (k in count) total += count[k]
			for (k in count)
				printf "%6d %5.1f%%  %s\n", count[k], 100 * count[k] / total, k
		}' | sort -rn | head -n 40 > "$base.offcpu.txt" || true
}

# nap SECONDS: sleep without a fork (a read that times out on a FIFO
# nobody writes).
mkfifo /tmp/bench-nap
exec {nap_fd}<>/tmp/bench-nap
nap() { read -r -t "$1" -u "$nap_fd" _ || true; }

# wait_io DISK: return once the disk (a name in /proc/diskstats) has
# completed an I/O more than when called, or after a minute; bash
# builtins only, polled every 20 ms.
wait_io() {
	local n0='' n i _a _b name r w
	for i in $(seq 3000); do
		n=0
		while read -r _a _b name r _ _ _ w _; do
			[ "$name" = "$1" ] && n=$((r + w)) && break
		done < /proc/diskstats
		[ -n "$n0" ] || n0=$n
		[ "$n" = "$n0" ] || return 0
		nap 0.02
	done
}

# Busy and total jiffies of all CPUs, and context switches, from
# /proc/stat (bash builtins: a fork and an exec cost milliseconds of TCG
# time, an exec from the 9p root far more when the host is busy).
cpu_jiffies() {
	local key t=0 b=0 c=0 i
	local -a v
	while read -r key rest; do
		case $key in
		cpu)
			read -r -a v <<<"$rest"
			for i in "${v[@]}"; do t=$((t + i)); done
			b=$((t - v[3] - v[4])) ;;
		ctxt) c=$rest ;;
		esac
	done < /proc/stat
	echo "$b $t $c"
}

# snap DEV: the counters a point compares before and after (bash
# builtins, see cpu_jiffies): sectors written of the scratch disk, sectors
# and writes completed of DEV (zeros for a file), and for a qcow device its
# L2 cache hits and misses.
snap() {
	local dev=${1#/dev/} s=/sys/block/${1#/dev/}/qcow _a _b name w ws
	local hs=0 ds=0 dw=0 h=0 m=0 hw=0
	while read -r _a _b name _ _ _ _ w _ ws _; do
		[ "$name" = "$scratch_disk" ] && hs=$ws && hw=$w
		[ "$name" = "$dev" ] && ds=$ws && dw=$w
	done < /proc/diskstats
	if [ -e "$s/cache_hits" ]; then
		read -r h < "$s/cache_hits"
		read -r m < "$s/cache_misses"
	fi
	echo "$hs $ds $dw $h $m $hw"
}

# The scratch disk's line of /proc/diskstats (request counts and the
# milliseconds they took: the emulated disk's latency, for .disk).
disk_line() {
	local line
	while read -r line; do
		if [[ " $line " == *" $scratch_disk "* ]]; then
			echo "$line"
		fi
	done < /proc/diskstats
}

# mem_lines LABEL: /proc/vmstat and /proc/meminfo under a "## LABEL" line
# (for .vm; builtins only, see cpu_jiffies).
mem_lines() {
	local line
	echo "## $1"
	while read -r line; do echo "$line"; done < /proc/vmstat
	while read -r line; do echo "$line"; done < /proc/meminfo
}

# slot_log N [sync]: set SLOT_LOG to a fio replay log (v2) of 4K writes
# at the start of 64K slots drawn at random among N, each at most once, in
# the same order in every point, with an fsync after each write when asked,
# and SLOT_WRITES to its number of writes.  The device is named "dev" and
# redirected by --replay_redirect.  fio parses the whole log before it
# starts, so the log stops at what a point can use: 65536 writes (16384
# with fsyncs) are more than a point of TCG time does.
slot_log() {
	local n=$1 sync=${2:-} max=65536
	[ -z "$sync" ] || max=16384
	[ "$max" -le "$n" ] || max=$n
	SLOT_LOG=/tmp/slots-$n${sync:+-sync}.log
	SLOT_WRITES=$max
	[ ! -f "$SLOT_LOG" ] || return 0
	awk -v n="$n" -v max="$max" -v sync="$sync" 'BEGIN {
		print "fio version 2 iolog"; print "dev add"; print "dev open"
		srand(1)
		for (i = 0; i < n; i++) a[i] = i
		for (i = 0; i < max; i++) {
			j = i + int(rand() * (n - i)); t = a[i]; a[i] = a[j]; a[j] = t
			printf "dev write %.0f 4096\n", a[i] * 65536
			if (sync) print "dev sync 0 0"
		}
		print "dev close" }' > "$SLOT_LOG"
}

# point ROUND ROW SET DEVICE FIO_ARGS...: one fio run, plus guest CPU
# sampled over the measured window (after the ramp, short of the end), and
# the writes of the scratch disk and of the device around the run and a
# flush of both (write amplification).
point() {
	local round=$1 row=$2 set=$3 d=$4 base dev sampler s0 s1 slots=0 perf=''
	local t0 t1 t2 t3 a first perf_pid
	# --thread and --disk_util=0: no fork, no sysfs walk, a second less
	# of fio start-up per point under TCG.
	local args=(--direct=1 --ioengine=libaio --runtime="$runtime"
		--ramp_time="$ramp" --randrepeat=1 --group_reporting
		--lat_percentiles=1 --eta=never --output-format=json
		--thread --disk_util=0)
	shift 4
	base=$out/raw/$round-$row-$d
	t0=${EPOCHREALTIME/./}
	case $set in
	empty|cow64|cowel2) new_image "$set" "$d" ;;
	esac
	dev=${DEV[$set/$d]:-}
	if [ -z "$dev" ]; then
		echo "${qcow_rw_na:-no device}" > "$base.na"
		return 0
	fi
	[ "$set" = ro ] && args+=(--readonly)
	for a in "$@"; do
		case $a in
		@slots|@slots-sync)
			# Replayed: no time_based, or fio would start the log over
			# and write slots it has allocated; it stops at the end
			# of the log if that comes before the runtime.
			slot_log $((pt_bytes / 65536)) "${a#@slots}"
			# What the point can write: the log's writes.
			slots=$SLOT_WRITES
			args+=(--read_iolog="$SLOT_LOG" --replay_redirect="$dev"
			       --replay_no_stall=1) ;;
		*) args+=("$a") ;;
		esac
	done
	[ "$slots" != 0 ] || args+=(--time_based)
	[ "$set" = ro ] || sync
	if [[ " $perf_rows " == *" $row "* ]]; then
		perf=/tmp/perf-$row.data
	fi
	s0=$(snap "$dev")
	disk_line > "$base.disk"
	mem_lines before > "$base.vm"
	# perf, when asked, over the whole fio run (perf takes seconds to
	# start under TCG: started first, stopped when fio is done).
	if [ -n "$perf" ]; then
		perf record -q -a -g -e cpu-clock -e sched:sched_switch -o "$perf" \
			> /dev/null 2>&1 &
		perf_pid=$!
		for _ in $(seq 100); do
			[ -s "$perf" ] && break
			nap 0.1
		done
		nap 1
	fi
	# Guest CPU over the measured window: fio takes
	# seconds to start under TCG, so the window is timed from the first
	# I/O the device (the scratch disk for the file) sees, not from fio's
	# start: after the ramp and half a second, for runtime - 1 seconds.
	(
		t=${EPOCHREALTIME/./}
		name=${dev#/dev/}
		[ "$d" = file ] && name=$scratch_disk
		wait_io "$name"
		t=$(((${EPOCHREALTIME/./} - t) / 1000))
		nap "$ramp"
		nap 0.5
		j0=$(cpu_jiffies)
		nap $((runtime - 1))
		j1=$(cpu_jiffies)
		# busy0 total0 ctxt0 busy1 total1 ctxt1 ncpu fio_start_ms
		echo "$j0 $j1 $ncpu $t" > "$base.cpu"
	) &
	sampler=$!
	t1=${EPOCHREALTIME/./}
	fio --name="$row" --filename="$dev" --output="$base.json" "${args[@]}" ||
		fail "fio $row on $d failed"
	t2=${EPOCHREALTIME/./}
	# fio prints its warnings into the JSON file, ahead of the JSON.
	read -r first < "$base.json" || true
	[ "${first:0:1}" = "{" ] || sed -i '/^{/,$!d' "$base.json"
	wait "$sampler"
	if [ -n "$perf" ]; then
		kill -INT "$perf_pid"
		wait "$perf_pid" || true
		perf_report "$perf" "$base"
		rm -f "$perf"
	fi
	if [ "$set" != ro ]; then
		# fsync the device (a flush: qcow and qemu-nbd write their
		# metadata back), then the scratch filesystem.
		sync "$dev"
		sync
	fi
	s1=$(snap "$dev")
	disk_line >> "$base.disk"
	mem_lines after >> "$base.vm"
	# host_sectors dev_sectors dev_writes l2_hits l2_misses host_writes,
	# before and after; slots
	echo "$s0 $s1 $slots" > "$base.ds"
	case $set in
	empty|cow64|cowel2) drop_image "$set" "$d" ;;
	esac
	t3=${EPOCHREALTIME/./}
	# Where the time of a point goes: setup, fio, the rest (ms).
	echo "$(((t1 - t0) / 1000)) $(((t2 - t1) / 1000)) $(((t3 - t2) / 1000))" > "$base.t"
}

step "fio: $rounds rounds, ${runtime}s per point after a ${ramp}s ramp"
for round in $(seq 1 "$rounds"); do
	for spec in "${ROWS[@]}"; do
		IFS='|' read -r row set devs args <<<"$spec"
		[[ " ${row_names[*]} " == *" $row "* ]] || continue
		read -r -a dl <<<"$devs"
		n=${#dl[@]}
		for i in $(seq 0 $((n - 1))); do
			d=${dl[$(((i + round - 1) % n))]}
			t0=$(now)
			# shellcheck disable=SC2086 # $args is a list of fio options
			point "$round" "$row" "$set" "$d" $args
			base=$out/raw/$round-$row-$d
			if [ -f "$base.na" ]; then
				res="n/a"
			else
				res=$(jq -r '[.jobs[0].read, .jobs[0].write] |
					"\(map(.iops) | add | floor) IOPS \(map(.bw) | add / 1024 | floor) MiB/s"' \
					"$base.json")
			fi
			ts=0 tf=0 te=0
			[ -f "$base.t" ] && read -r ts tf te < "$base.t"
			printf '  round %d %-22s %-6s %s (%d s: setup %d ms, fio %d ms, after %d ms)\n' \
				"$round" "$row" "$d" "$res" "$(($(now) - t0))" \
				"$ts" "$tf" "$te"
		done
	done
done
t_end=$(now)

cache_of() {
	local dev=${DEV[$1]:-}
	[ -n "$dev" ] && cat "/sys/block/${dev#/dev/}/qcow/cache_size" || echo 0
}

{
	jq -n \
		--arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
		--arg kernel "$(uname -r)" \
		--arg fio "$(command fio --version)" \
		--arg qemu "$(command qemu-nbd --version | head -n 1)" \
		--arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)" \
		--argjson ncpu "$(nproc)" \
		--argjson mem "$(awk '/^MemTotal/ { print $2 * 1024 }' /proc/meminfo)" \
		--argjson size "$bytes" \
		--argjson empty "$empty_bytes" \
		--argjson runtime "$runtime" --argjson ramp "$ramp" \
		--argjson rounds "$rounds" \
		--arg rows "${row_names[*]}" \
		--argjson cache "$(cache_of ro/qcow)" \
		--argjson small "$(cache_of ro/qcows)" \
		--arg rw_na "$qcow_rw_na" \
		--argjson t_images "$((t_images - t_start))" \
		--argjson t_fio "$((t_end - t_images))" \
		'{date: $date, kernel: $kernel, fio: $fio, qemu: $qemu,
		  guest_cpu: $cpu, guest_ncpu: $ncpu, guest_mem: $mem,
		  image_size: $size, empty_image_size: $empty, cluster_size: 65536,
		  runtime: $runtime, ramp: $ramp, rounds: $rounds,
		  rows: ($rows | split(" ")),
		  qcow_cache_size: $cache, qcow_small_cache_size: $small,
		  qcow_rw_na: $rw_na,
		  seconds_images: $t_images, seconds_fio: $t_fio}'
} > "$out/meta.json"
echo "fio done in $((t_end - t_images)) s"

# The allocated images qcow wrote all along must still be consistent.
if [ -n "${DEV[rw/qcow]:-}" ]; then
	qcowctl detach "${DEV[rw/qcow]}"
	unset "DEV[rw/qcow]"
	qemu-img check wr.qcow2 || fail "qemu-img check of wr.qcow2 after the write rows"
fi

trap - EXIT
cleanup
