#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lifecycle races: detach, open, snapshot, resize and rmmod against each
# other and against I/O.  Nothing may hang, oops or use freed memory (the
# harness scans the kernel log for BUG/WARNING/KASAN/hung tasks after the
# script; a hung task panics the guest), and every outcome must be one of
# the documented ones.  Loops are bounded by count.  Raw ioctls come from
# tests/vm/lib/qcow-ioctl.c (built here as qioc).
#
#   mounted-detach   ext4 mounted on /dev/qcowN: detach refused (EBUSY,
#                    the message says so), --lazy accepted; the file
#                    system keeps working, rmmod is refused; umount makes
#                    the device go; check clean, files intact
#   detach-fio       fio with verification on the device: detaches
#                    refused, then --lazy; fio finishes and verifies, the
#                    device goes after it; again with fio killed (-9) in
#                    the middle of its I/O; check clean (no leaks)
#   parallel-attach  3 writers (own image each, read-write and read-only
#                    attaches in turn) and 1 reader (a shared image,
#                    read-only) attach, write or read, verify and detach
#                    4 times each, all at once; data and checks verified
#   rmmod-busy       rmmod refused while a device exists, while a lazily
#                    detached device is still open, while /dev/qcow-control
#                    is open; accepted after
#   snapshot-detach  snapshots created in a loop (qioc: open, create,
#                    close; then qcowctl snapshot create) while detach is
#                    retried until it wins: each create succeeds or fails
#                    with ENXIO/ENOENT; after detach the image holds
#                    exactly the snapshots whose create succeeded
#   open-teardown    two loops open the device and list snapshots or read
#                    (qioc hammer), a third opens it with dd, while it is
#                    detached (retried until no opener) or lazily detached:
#                    opens fail with ENOENT/ENXIO, ioctls and reads with
#                    ENXIO/EIO, never anything else
#   resize-io        online resize (+1M, 8 times) and snapshot create while
#                    fio writes and verifies; the final size everywhere,
#                    zeros in the new range, check clean
#
# Prints "PASS races/<case>" or "FAIL races/<case>"; exits 1 if any
# failed.  QCOW_WRITE_CASES=GLOB runs some cases only.
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
. "$QCOW_TOP/tests/vm/lib/write-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
for t in cc fio jq mkfs.ext4 e2fsck; do
	command -v "$t" >/dev/null || fail "$t is not installed"
done

wl_begin races
Q=$W/qioc
cc -Wall -O1 -I"$QCOW_TOP/include/uapi" -o "$Q" "$QCOW_TOP/tests/vm/lib/qcow-ioctl.c" ||
	fail "cannot build qcow-ioctl.c"

# --- helpers -------------------------------------------------------------

# ndevs: how many qcow devices exist.
ndevs() {
	local d n=0
	for d in /sys/block/qcow*; do
		[ ! -e "$d" ] || n=$((n + 1))
	done
	echo "$n"
}

# gone DEV [SECONDS]: wait until DEV's sysfs directory is gone (default
# 10 s); it is no longer ours to detach.
gone() {
	local t0=$SECONDS
	while [ -e "/sys/block/${1#/dev/}" ] && [ $((SECONDS - t0)) -lt "${2:-10}" ]; do
		sleep 0.1
	done
	[ ! -e "/sys/block/${1#/dev/}" ] || die "$1 still exists after ${2:-10} s"
	echo "$1 went away after $((SECONDS - t0)) s"
	if [ -f "$W/.wl-devs" ]; then
		grep -vxF "$1" "$W/.wl-devs" >"$W/.wl-devs.new" || true
		mv "$W/.wl-devs.new" "$W/.wl-devs"
	fi
}

# busy DEV: qcowctl detach DEV is refused because DEV is open.
busy() {
	local rc=0
	"$QCOW_CTL" detach "$1" 2>"$W/err" || rc=$?
	[ "$rc" -eq 1 ] || die "detach of the open $1: exit $rc, want 1"
	grep -q "in use (mounted or open)" "$W/err" || die "detach: $(cat "$W/err")"
	[ -b "$1" ] || die "$1 went away"
}

# io_count DEV: reads + writes completed on DEV so far.
io_count() {
	local st
	read -ra st <"/sys/block/${1#/dev/}/stat"
	echo $((st[0] + st[4]))
}

# io_started DEV: wait (up to 30 s) until DEV sees I/O: fio takes seconds to
# start under TCG.
io_started() {
	local c0 i
	c0=$(io_count "$1")
	for i in $(seq 300); do
		[ "$(io_count "$1")" -le $((c0 + 10)) ] || return 0
		sleep 0.1
	done
	die "no I/O on $1 after 30 s"
}

# rc_case NAME FUNCTION: wl_case, then detach whatever workers left.
rc_case() {
	wl_case "$@"
	"$QCOW_CTL" detach -a >/dev/null 2>&1 || true
}

# fio_verify DEV SIZE SEED [EXTRA...] &: a verified random-write job (2
# writers, each its half of SIZE, threads of one process); run it in the
# background: it becomes fio, $! is fio's pid.
fio_verify() {
	local dev=$1 size=$2 seed=$3
	shift 3
	exec fio --name=v --filename="$dev" --thread --ioengine=libaio --direct=1 --iodepth=16 \
		--numjobs=2 --rw=randwrite --bsrange=4k-64k --blockalign=4k \
		--size=$((size / 2)) --offset_increment=$((size / 2)) \
		--randrepeat=1 --randseed="$seed" --verify=crc32c --verify_fatal=1 \
		--output-format=json --output="$W/fio-$seed.json" "$@" 2>"$W/fio-$seed.err"
}

# fio_ok SEED: the job wrote, verified and saw no error.
fio_ok() {
	local j=$W/fio-$1.json
	sed -n '/^{/,$p' "$j" >"$j.j"
	jq -c '.jobs[] | {error, w: .write.io_bytes, r: .read.io_bytes}' "$j.j" ||
		{ head "$W/fio-$1.err"; die "fio wrote no report"; }
	jq -e '[.jobs[] | select(.error != 0 or .write.io_bytes == 0)] | length == 0' "$j.j" >/dev/null ||
		die "fio failed"
}

# --- cases -----------------------------------------------------------------

t_mounted_detach() {
	local dev rc=0
	qemu-img create -q -f qcow2 img.qcow2 64M
	dev=$(wl_attach img.qcow2)
	mkfs.ext4 -q -E nodiscard "$dev"
	mkdir -p mnt
	mount "$dev" mnt
	head -c $((2 * M)) /dev/urandom >a.ref
	cp a.ref mnt/a
	sync
	busy "$dev"
	cmp mnt/a a.ref || die "the file changed"
	"$QCOW_CTL" detach --lazy "$dev" || die "detach --lazy failed"
	[ -b "$dev" ] || die "$dev went away while mounted"
	head -c $((1 * M)) /dev/urandom >b.ref
	cp b.ref mnt/b
	sync
	rmmod qcow 2>err || rc=$?
	[ "$rc" -ne 0 ] || die "rmmod succeeded while a device is mounted"
	echo "rmmod: $(cat err)"
	umount mnt
	gone "$dev" 10
	wl_qcheck img.qcow2
	dev=$(wl_attach -r img.qcow2)
	e2fsck -fn "$dev" >fsck.out 2>&1 || { cat fsck.out; die "e2fsck found errors"; }
	mount -o ro "$dev" mnt
	cmp mnt/a a.ref || die "a is not what was written"
	cmp mnt/b b.ref || die "b (written after the lazy detach) is not what was written"
	umount mnt
	wl_detach "$dev"
}

t_detach_fio() {
	local dev pid i rc=0
	qemu-img create -q -f qcow2 img.qcow2 64M
	dev=$(wl_attach img.qcow2)
	fio_verify "$dev" $((32 * M)) 7 --io_size=$((12 * M)) &
	pid=$!
	io_started "$dev"
	# our own descriptor too, so that every detach meets an opener even if
	# fio is quicker than the loop
	exec 5<"$dev"
	for i in $(seq 5); do
		busy "$dev"
	done
	echo "5 detaches refused while fio ran"
	"$QCOW_CTL" detach --lazy "$dev" || die "detach --lazy failed"
	exec 5<&-
	wait "$pid" || rc=$?
	fio_ok 7
	gone "$dev"
	wl_qcheck img.qcow2

	# fio killed in the middle; the lazy detach completes on its exit
	dev=$(wl_attach img.qcow2)
	fio_verify "$dev" $((32 * M)) 8 --time_based --runtime=120 &
	pid=$!
	io_started "$dev"
	"$QCOW_CTL" detach --lazy "$dev" || die "detach --lazy failed"
	sleep 1
	if ! kill -9 "$pid" 2>/dev/null; then
		wait "$pid" || true
		head -n 20 "$W/fio-8.err"
		sed -n '/^{/,$p' "$W/fio-8.json" | jq -c '.jobs[] | {error, w: .write.io_bytes, r: .read.io_bytes}' || true
		die "fio (120 s) ended within a second of the lazy detach"
	fi
	wait "$pid" || true
	gone "$dev" 30
	wl_qcheck img.qcow2
}

# writer K: 4 rounds on img-K.qcow2: attach read-write, write a 4 KiB
# block of its own at a round's offset, read it back, detach; every other
# round also attach read-only and read all blocks so far.
writer() {
	local k=$1 i j dev
	for i in $(seq 4); do
		dev=$("$QCOW_CTL" attach "$W/img-$k.qcow2") || { echo "attach failed"; return 1; }
		dd if="$W/p-$k-$i" of="$dev" bs=4k seek=$((i * 16)) oflag=direct status=none ||
			{ echo "write to $dev failed"; return 1; }
		dd if="$dev" bs=4k skip=$((i * 16)) count=1 iflag=direct status=none | cmp - "$W/p-$k-$i" ||
			{ echo "$dev: read back differs"; return 1; }
		"$QCOW_CTL" detach "$dev" || { echo "detach $dev failed"; return 1; }
		[ $((i % 2)) -eq 0 ] || continue
		dev=$("$QCOW_CTL" attach -r "$W/img-$k.qcow2") || { echo "attach -r failed"; return 1; }
		for j in $(seq "$i"); do
			dd if="$dev" bs=4k skip=$((j * 16)) count=1 iflag=direct status=none |
				cmp - "$W/p-$k-$j" || { echo "$dev: block $j differs"; return 1; }
		done
		"$QCOW_CTL" detach "$dev" || { echo "detach $dev failed"; return 1; }
	done
}

# reader: 4 read-only attaches of the shared image, its first MiB checked.
reader() {
	local i dev
	for i in $(seq 4); do
		dev=$("$QCOW_CTL" attach -r "$W/shared.qcow2") || { echo "attach -r failed"; return 1; }
		head -c $((1 * M)) "$dev" | cmp - "$W/shared.raw" || { echo "$dev differs"; return 1; }
		"$QCOW_CTL" detach "$dev" || { echo "detach $dev failed"; return 1; }
	done
}

t_parallel_attach() {
	local k i pids=() bad=0
	for k in 0 1 2; do
		qemu-img create -q -f qcow2 "img-$k.qcow2" 16M
		for i in $(seq 4); do
			head -c 4096 /dev/urandom >"p-$k-$i"
		done
	done
	head -c $((1 * M)) /dev/urandom >shared.raw
	qemu-img convert -O qcow2 shared.raw shared.qcow2
	for k in 0 1 2; do
		writer "$k" >"w-$k.log" 2>&1 &
		pids+=($!)
	done
	reader >r.log 2>&1 &
	pids+=($!)
	for k in 0 1 2 3; do
		if ! wait "${pids[k]}"; then
			bad=1
			echo "worker $k failed:"
			cat "w-$k.log" 2>/dev/null || cat r.log
		fi
	done
	[ "$bad" = 0 ] || die "a worker failed"
	[ "$(ndevs)" -eq 0 ] || die "devices left: $(ls /sys/block)"
	for k in 0 1 2; do
		wl_qcheck "img-$k.qcow2"
		qemu-img convert -O raw "img-$k.qcow2" out.raw
		for i in $(seq 4); do
			cmp -i $((i * 64 * K)):0 -n 4096 out.raw "p-$k-$i" ||
				die "img-$k.qcow2: block $i is not what writer $k wrote"
		done
	done
	echo "3 writers x 4 rounds and a reader x 4, all data as written"
}

t_rmmod_busy() {
	local dev i rc=0
	qemu-img create -q -f qcow2 img.qcow2 16M
	dev=$(wl_attach img.qcow2)
	rmmod qcow 2>err || rc=$?
	[ "$rc" -ne 0 ] || die "rmmod succeeded while $dev exists"
	echo "rmmod with $dev attached: $(cat err)"
	dd if="$dev" of=/dev/null bs=1M count=1 iflag=direct status=none || die "$dev broke"
	exec 3<"$dev"
	"$QCOW_CTL" detach --lazy "$dev"
	rc=0
	rmmod qcow 2>err || rc=$?
	[ "$rc" -ne 0 ] || die "rmmod succeeded while the lazily detached $dev is open"
	echo "rmmod with $dev open after a lazy detach: $(cat err)"
	head -c 4096 <&3 >/dev/null || die "reading the open $dev failed"
	exec 3<&-
	gone "$dev"
	exec 3<>/dev/qcow-control
	rc=0
	rmmod qcow 2>err || rc=$?
	[ "$rc" -ne 0 ] || die "rmmod succeeded while /dev/qcow-control is open"
	echo "rmmod with /dev/qcow-control open: $(cat err)"
	exec 3>&-
	# the lazy detach's work may still be returning from module_put()
	for i in $(seq 50); do
		rmmod qcow 2>/dev/null && break
		sleep 0.1
	done
	[ ! -e /sys/module/qcow ] || die "rmmod refused with nothing attached or open"
	echo "unloaded after $((i - 1))/10 s"
	qcow_load
}

t_snapshot_detach() {
	local r dev pid names want i n idx
	for r in 1 2; do
		qemu-img create -q -f qcow2 "img-$r.qcow2" 32M
		dev=$(wl_attach "img-$r.qcow2")
		idx=${dev#/dev/qcow}
		dd if=/dev/urandom of="$dev" bs=64k count=16 oflag=direct conv=fsync status=none
		"$Q" hammer "$dev" create 200 2000 >"h-$r.out" &
		pid=$!
		sleep "0.$((r * 4))"
		"$Q" detach -r 100000 "$idx" || die "detach never won against the snapshot loop"
		wait "$pid" || { cat "h-$r.out"; die "the snapshot loop saw an unexpected error"; }
		gone "$dev"
		tail -n 1 "h-$r.out"
		names=$(sed -n 's/^created //p' "h-$r.out" | sort | xargs)
		want=$(qemu-img snapshot -l "img-$r.qcow2" | awk 'NR > 2 { print $2 }' | sort | xargs)
		[ "$names" = "$want" ] ||
			die "round $r: created '$names' but the image holds '$want'"
		echo "round $r: $(echo "$names" | wc -w) snapshots created, all in the image"
		wl_qcheck "img-$r.qcow2"
	done

	# qcowctl snapshot create in a loop
	qemu-img create -q -f qcow2 img-q.qcow2 32M
	dev=$(wl_attach img-q.qcow2)
	idx=${dev#/dev/qcow}
	(
		for i in $(seq 12); do
			if "$QCOW_CTL" snapshot create "$dev" "q$i" 2>>qerr.log; then
				echo "created q$i"
			fi
		done
	) >q.out &
	pid=$!
	sleep 1
	"$Q" detach -r 100000 "$idx" || die "detach never won against qcowctl"
	wait "$pid"
	gone "$dev"
	n=$(grep -c created q.out || true)
	echo "qcowctl: $n snapshots created; errors after detach:"
	sort qerr.log | uniq -c
	! grep -Ev "no such qcow device|No such device or address" qerr.log ||
		die "qcowctl failed otherwise than with 'no such qcow device'"
	names=$(sed -n 's/^created //p' q.out | sort | xargs)
	want=$(qemu-img snapshot -l img-q.qcow2 | awk 'NR > 2 { print $2 }' | sort | xargs)
	[ "$names" = "$want" ] || die "qcowctl created '$names' but the image holds '$want'"
	wl_qcheck img-q.qcow2
}

t_open_teardown() {
	local r dev idx p1 p2 p3 i
	qemu-img create -q -f qcow2 img.qcow2 16M
	qemu-io -f qcow2 -c 'write -P 0x11 0 1M' img.qcow2 >/dev/null
	for r in 1 2 3 4; do
		dev=$(wl_attach -r img.qcow2)
		idx=${dev#/dev/qcow}
		"$Q" hammer "$dev" list 100000 500 >"l-$r.out" &
		p1=$!
		"$Q" hammer "$dev" read 100000 500 >"r-$r.out" &
		p2=$!
		(
			for i in $(seq 300); do
				dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null ||
					[ -e "$dev" ] || break
			done
		) &
		p3=$!
		sleep 0.5
		if [ $((r % 2)) -eq 1 ]; then
			"$Q" detach -r 100000 "$idx" || die "round $r: detach never won"
		else
			"$Q" detach -l "$idx" || die "round $r: lazy detach failed"
		fi
		wait "$p1" || { cat "l-$r.out"; die "round $r: the list loop saw an unexpected error"; }
		wait "$p2" || { cat "r-$r.out"; die "round $r: the read loop saw an unexpected error"; }
		wait "$p3" || true
		gone "$dev"
		echo "round $r: $(tail -n 1 "l-$r.out"); $(tail -n 1 "r-$r.out")"
	done
	wl_qcheck img.qcow2
}

t_resize_io() {
	local dev pid i size
	qemu-img create -q -f qcow2 img.qcow2 64M
	dev=$(wl_attach img.qcow2)
	fio_verify "$dev" $((32 * M)) 9 --io_size=$((6 * M)) &
	pid=$!
	io_started "$dev"
	for i in $(seq 8); do
		"$QCOW_CTL" resize "$dev" +1M || die "resize $i failed"
		[ $((i % 3)) -ne 0 ] || "$QCOW_CTL" snapshot create "$dev" "r$i" >/dev/null ||
			die "snapshot create during I/O failed"
	done
	wait "$pid" || true
	fio_ok 9
	size=$((72 * M))
	[ "$(blockdev --getsize64 "$dev")" -eq "$size" ] || die "$dev: size $(blockdev --getsize64 "$dev")"
	[ "$(cat "/sys/block/${dev#/dev/}/qcow/virtual_size")" -eq "$size" ] || die "sysfs virtual_size"
	cmp -i $((64 * M)) -n $((8 * M)) "$dev" /dev/zero || die "the new range does not read zeros"
	wl_detach "$dev"
	[ "$(qemu-img info --output=json img.qcow2 | jq '."virtual-size"')" -eq "$size" ] ||
		die "qemu-img info does not show the new size"
	[ "$(qemu-img snapshot -l img.qcow2 | awk 'NR > 2 { print $2 }' | xargs)" = "r3 r6" ] ||
		die "snapshots: $(qemu-img snapshot -l img.qcow2)"
	wl_qcheck img.qcow2
}

rc_case mounted-detach t_mounted_detach
rc_case detach-fio t_detach_fio
rc_case parallel-attach t_parallel_attach
rc_case rmmod-busy t_rmmod_busy
rc_case snapshot-detach t_snapshot_detach
rc_case open-teardown t_open_teardown
rc_case resize-io t_resize_io

wl_end
