# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers for the read-write VM tests (tests/vm/guest/t-write-*.sh).  Source
# it after guest-lib.sh.  What it gives:
#
#   wl_begin NAME       work directory $W=$QCOW_SCRATCH/NAME, backend loaded
#   wl_case CASE FN...  run FN in a subshell with errexit, print
#                       "PASS NAME/CASE" or "FAIL NAME/CASE", then clean up
#   wl_end              unload, remove $W, summary; returns 1 if a case failed
#   wl_attach [-r] [-P] IMAGE   attach, print the device
#   wl_detach DEV       detach (the image is closed when it returns)
#   wl_loop FILE        loop device (direct I/O) on a raw file: the reference
#   wl_qcheck IMAGE [--leaks-ok]  qemu-img check: no errors, no leaks
#   wl_compare IMAGE RAW          qemu-img compare: identical
#   wl_fio_job FILE SIZE SEED     the standard verified write job
#   wl_fio DEV JOBFILE            run it, fail on any error
#   wl_ref START JOBFILE          the job run through loop on a copy of START
#   wl_fio_ref IMAGE START JOBFILE  the job on IMAGE, whose content is START;
#                                 then check and compare with the reference
#
# The device under test is qcow (qcowctl attach) unless QCOW_WRITE_PEER=nbd:
# then images are served by qemu-nbd through nbd.ko.  The peer validates the
# tests themselves (the reference runs, the checks, the expected sizes) on a
# driver known to be right; a test that fails on the peer is a broken test.

# errexit in $(...) too: helpers print their results on stdout
shopt -s inherit_errexit

WL_PEER=${QCOW_WRITE_PEER:-qcow}
case $WL_PEER in
qcow | nbd) ;;
*) fail "QCOW_WRITE_PEER must be qcow or nbd, not $WL_PEER" ;;
esac

# shellcheck disable=SC2034 # for the tests that source this
K=1024 M=$((1024 * 1024))
WL_NPASS=0
WL_NFAIL=0
WL_FAILED=()

# die MSG: fail the current case (cases run in a subshell).
die() {
	echo "$*" >&2
	exit 1
}

# wl_begin NAME: create the work directory and load the device driver.
wl_begin() {
	WL_NAME=$1
	W=$QCOW_SCRATCH/$WL_NAME
	rm -rf "$W"
	mkdir -p "$W"
	cd "$W"
	WL_T0=$SECONDS
	echo "$WL_NAME: device under test: $WL_PEER"
	[ -d /sys/module/loop ] || touch "$W/.loop-was-unloaded"
	modprobe loop || fail "modprobe loop"
	if [ "$WL_PEER" = nbd ]; then
		[ -d /sys/module/nbd ] || touch "$W/.nbd-was-unloaded"
		modprobe nbd nbds_max=16 max_part=16 || fail "modprobe nbd"
	else
		qcow_load
	fi
}

# wl_end: unload, clean up, print the summary; false if any case failed.
wl_end() {
	wl_cleanup
	if [ "$WL_PEER" = qcow ]; then
		wl_case unload qcow_unload
	elif [ -f "$W/.nbd-was-unloaded" ]; then
		modprobe -r nbd 2>/dev/null || true
	fi
	if [ -f "$W/.loop-was-unloaded" ]; then
		modprobe -r loop 2>/dev/null || true
	fi
	cd /
	rm -rf "$W"
	echo "$WL_NAME: $WL_NPASS passed, $WL_NFAIL failed ($((SECONDS - WL_T0))s, $WL_PEER)"
	[ "$WL_NFAIL" -eq 0 ] || echo "$WL_NAME: failed: ${WL_FAILED[*]}"
	[ "$WL_NFAIL" -eq 0 ]
}

# wl_case CASE FUNCTION [ARGS...]: one case in a subshell with errexit,
# its output indented; then whatever it left behind is undone.
wl_case() {
	local name=$1 rc t0=$SECONDS
	shift
	# QCOW_WRITE_CASES: a glob of the cases to run (development aid)
	# shellcheck disable=SC2053
	[[ $name == ${QCOW_WRITE_CASES:-*} || $name == unload ]] || return 0
	set +e
	(set -e; [ -z "${QCOW_WRITE_TRACE:-}" ] || { PS4='+ [$SECONDS] '; set -x; }; cd "$W"; "$@") 2>&1 | sed -u 's/^/    /'
	rc=${PIPESTATUS[0]}
	set -e
	wl_cleanup
	if [ "$rc" -eq 0 ]; then
		echo "PASS $WL_NAME/$name ($((SECONDS - t0))s)"
		WL_NPASS=$((WL_NPASS + 1))
	else
		echo "FAIL $WL_NAME/$name"
		WL_NFAIL=$((WL_NFAIL + 1))
		WL_FAILED+=("$name")
	fi
}

# wl_cleanup: unmount what is mounted under $W, detach the devices and
# loop devices the case made.
wl_cleanup() {
	local mnt line
	while mnt=$(awk -v w="$W/" 'index($2, w) == 1 { m = $2 } END { print m }' /proc/mounts) &&
		[ -n "$mnt" ]; do
		umount "$mnt" 2>/dev/null || umount -l "$mnt" || break
	done
	if [ -f "$W/.wl-devs" ]; then
		# newest first; no process substitution: the guest has no /dev/fd
		tac "$W/.wl-devs" >"$W/.wl-devs.rev"
		while read -r line; do
			(wl_detach "$line") >/dev/null 2>&1 || true
		done <"$W/.wl-devs.rev"
		rm -f "$W/.wl-devs" "$W/.wl-devs.rev"
	fi
	if [ -f "$W/.wl-loops" ]; then
		while read -r line; do
			losetup -d "$line" 2>/dev/null || true
		done <"$W/.wl-loops"
		rm -f "$W/.wl-loops"
	fi
}

# wl_wait_blk DEV [SECONDS]: wait for a block device node (default 5 s).
wl_wait_blk() {
	local _
	for _ in $(seq $((${2:-5} * 10))); do
		[ -b "$1" ] && return 0
		sleep 0.1
	done
	die "$1 did not appear"
}

# wl_wait_gone PID: wait up to 30 s for a process that is not our child.
wl_wait_gone() {
	local _
	for _ in $(seq 300); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# wl_attach [-r] [-P] IMAGE: attach IMAGE read-write (-r: read-only, -P:
# partition scan) and print the device.
wl_attach() {
	local ro=0 part=0 img dev b
	while [ $# -gt 1 ]; do
		case $1 in
		-r) ro=1 ;;
		-P) part=1 ;;
		*) die "wl_attach: unknown option $1" ;;
		esac
		shift
	done
	img=$1
	if [ "$WL_PEER" = qcow ]; then
		local -a opt=()
		[ $ro = 0 ] || opt+=(-r)
		[ $part = 0 ] || opt+=(-P)
		dev=$("$QCOW_CTL" attach "${opt[@]}" "$img") ||
			die "qcowctl attach ${opt[*]} $img failed"
		echo "$dev" >>"$W/.wl-devs"
		[ "$(cat "/sys/block/${dev#/dev/}/qcow/read_only")" = "$ro" ] ||
			die "$dev: sysfs read_only is not $ro"
	else
		dev=
		for b in /sys/block/nbd*; do
			if [ ! -e "$b/pid" ] && [ "$(cat "$b/size")" = 0 ]; then
				dev=/dev/${b##*/}
				break
			fi
		done
		[ -n "$dev" ] || die "no free nbd device"
		local -a opt=(-f qcow2 --discard=unmap)
		# O_DIRECT where the filesystem has it (not on tmpfs)
		if dd if="$img" of=/dev/null bs=4k count=1 iflag=direct status=none 2>/dev/null; then
			opt+=(--cache=none --aio=native)
		else
			opt+=(--cache=writeback)
		fi
		[ $ro = 0 ] || opt+=(-r)
		qemu-nbd -c "$dev" "${opt[@]}" --pid-file="$W/.nbd-${dev#/dev/}.pid" "$img" ||
			die "qemu-nbd -c $dev $img failed"
		echo "$dev" >>"$W/.wl-devs"
		for _ in $(seq 100); do
			[ "$(cat "/sys/block/${dev#/dev/}/size")" = 0 ] || break
			sleep 0.1
		done
		if [ $part = 1 ]; then
			# nbd scans partitions on the first open, which is udev's job
			blockdev --rereadpt "$dev"
		fi
	fi
	if [ $part = 1 ]; then
		# the first partition, if the disk has a table, shows up shortly
		for _ in $(seq 20); do
			[ -b "${dev}p1" ] && break
			sleep 0.1
		done
	fi
	echo "$dev"
}

# wl_detach DEV: detach; for the peer, wait until qemu-nbd closed the image.
wl_detach() {
	local dev=$1 pidf pid
	if [ "$WL_PEER" = qcow ]; then
		"$QCOW_CTL" detach "$dev" || die "qcowctl detach $dev failed"
	else
		pidf=$W/.nbd-${dev#/dev/}.pid
		pid=$(cat "$pidf" 2>/dev/null) || pid=
		qemu-nbd -d "$dev" >/dev/null || die "qemu-nbd -d $dev failed"
		if [ -n "$pid" ]; then
			wl_wait_gone "$pid" || die "qemu-nbd ($pid) did not exit"
		fi
		rm -f "$pidf"
	fi
	if [ -f "$W/.wl-devs" ]; then
		grep -vxF "$dev" "$W/.wl-devs" >"$W/.wl-devs.new" || true
		mv "$W/.wl-devs.new" "$W/.wl-devs"
	fi
}

# wl_corrupt_flag DEV: the device's corrupt attribute (0 for the peer).
wl_corrupt_flag() {
	if [ "$WL_PEER" = qcow ]; then
		cat "/sys/block/${1#/dev/}/qcow/corrupt"
	else
		echo 0
	fi
}

# wl_loop FILE: a loop device with direct I/O on FILE; prints it.
wl_loop() {
	local lo
	lo=$(losetup -f --show --direct-io=on "$1") || die "losetup $1 failed"
	echo "$lo" >>"$W/.wl-loops"
	echo "$lo"
}

# wl_unloop DEV
wl_unloop() {
	losetup -d "$1" || die "losetup -d $1 failed"
}

# wl_incompat IMAGE: the header's incompatible feature bits (v3), decimal.
wl_incompat() {
	local v
	v=$(od -An -tu4 --endian=big -j 4 -N 4 "$1" | tr -d ' ')
	if [ "$v" -lt 3 ]; then
		echo 0
	else
		od -An -tu8 --endian=big -j 72 -N 8 "$1" | tr -d ' '
	fi
}

# wl_qcheck IMAGE [--leaks-ok]: qemu-img check finds no errors and (unless
# --leaks-ok) no leaked clusters; the header has neither the dirty nor the
# corrupt bit.
wl_qcheck() {
	local img=$1 leaks_ok=false rc=0 out sum bits
	[ "${2:-}" != --leaks-ok ] || leaks_ok=true
	# the JSON on stdout, the findings on stderr
	out=$(qemu-img check --output=json "$img" 2>/dev/null) || rc=$?
	sum=$(echo "$out" | jq -c --argjson rc "$rc" '{corruptions: (.corruptions // 0),
		leaks: (.leaks // 0), "check-errors": ."check-errors", "image-end-offset", rc: $rc}') ||
		die "qemu-img check $img (exit $rc): $out"
	echo "qemu-img check: $sum"
	if ! echo "$sum" | jq -e --argjson lok "$leaks_ok" '.corruptions == 0 and
		."check-errors" == 0 and ($lok or (.leaks == 0 and .rc == 0))' >/dev/null; then
		qemu-img check "$img" 2>&1 | head -n 30
		die "qemu-img check: $img is not clean"
	fi
	bits=$(wl_incompat "$img")
	[ $((bits & 3)) -eq 0 ] || die "$img: incompatible features $bits (dirty/corrupt bit set)"
}

# wl_compare IMAGE RAW: qemu reads IMAGE exactly as RAW.
wl_compare() {
	qemu-img compare -f qcow2 -F raw "$1" "$2" || die "qemu-img compare $1 $2: they differ"
}

# wl_sum_raw IMAGE [SNAPSHOT]: sha256 of the image's (or a snapshot's)
# guest content as qemu reads it.
wl_sum_raw() {
	local img=$1 tmp
	tmp=$W/.sum-$$.raw
	if [ $# -gt 1 ]; then
		qemu-img convert -l "snapshot.name=$2" -O raw "$img" "$tmp"
	else
		qemu-img convert -O raw "$img" "$tmp"
	fi
	sha256sum <"$tmp" | cut -d' ' -f1
	rm -f "$tmp"
}

# wl_mkbase FILE SIZE: a raw file of SIZE bytes whose every 4 KiB block is
# different (a 13-byte pattern with the block's offset in it, so no two
# sectors of a block are alike either); it compresses well, which keeps
# qemu-img convert -c fast under TCG.
wl_mkbase() {
	rm -f "$1"
	fio --name=base --filename="$1" --size="$2" --rw=write --bs=4k \
		--verify=pattern --verify_pattern='0xa5%o"base"' --do_verify=0 \
		--ioengine=psync --eta=never --output=/dev/null || die "fio could not write $1"
}

# wl_fio_job FILE SIZE SEED [TRIM]: the standard write job for a device of
# SIZE bytes, reproducible byte for byte given SEED.  Two writers (each its
# own half, so their writes never overlap), libaio, O_DIRECT, QD 32, the
# data a 13-byte pattern with the I/O's offset in it, verified by fio
# after each phase:
#   rand   random writes of 4K..1M (mostly small), 1/16 of each half
#   seq    sequential writes of 4K..1M over another 1/16
#   small  random 512 B..8K writes, 512-aligned (sub-cluster, sub-page)
# With TRIM=1, then:
#   trim     random discards of 64K..256K, 64K-aligned (whole clusters of
#            64K images: they must read zeros afterwards)
#   trimw    sequential discard-then-write of 4K..60K at QD 1 (sub-cluster
#            discards; the write makes the result not depend on what the
#            device does with a partial discard)
#   rewrite  random writes again, into discarded space too
# fio's random map keeps a job from writing a block twice, and the phases
# are stonewalled, so the result does not depend on completion order.
# The volume is small (about 9 MiB for 64 MiB): TCG is slow.
wl_fio_job() {
	local f=$1 seed=$3 trim=${4:-0} half
	half=$(($2 / 2))
	cat >"$f" <<-EOF
	[global]
	filename=\${WL_DEV}
	thread
	ioengine=libaio
	direct=1
	iodepth=32
	numjobs=2
	randrepeat=1
	randseed=$seed
	verify=pattern
	verify_pattern=0x5a%o"qcow"
	verify_fatal=1
	offset_increment=$half

	[rand]
	rw=randwrite
	bssplit=4k/40:12k/20:68k/20:200k/15:1m/5
	blockalign=4k
	size=$half
	io_size=$((half / 16))

	[seq]
	stonewall
	rw=write
	bssplit=4k/30:60k/30:256k/30:1m/10
	offset=$((half / 2))
	size=$((half / 16))

	[small]
	stonewall
	rw=randwrite
	bsrange=512-8k
	blockalign=512
	offset=$((half / 8))
	size=$((half / 4))
	io_size=$((half / 64))
	EOF
	if [ "$trim" = 1 ]; then
		cat >>"$f" <<-EOF

		[trim]
		stonewall
		rw=randtrim
		bsrange=64k-256k
		blockalign=64k
		size=$half
		io_size=$((half / 8))
		verify=0

		[trimw]
		stonewall
		rw=trimwrite
		bsrange=4k-60k
		iodepth=1
		offset=$((half * 5 / 8))
		size=$((half / 32))

		[rewrite]
		stonewall
		rw=randwrite
		bssplit=4k/40:12k/20:68k/20:200k/15:1m/5
		blockalign=4k
		size=$half
		io_size=$((half / 16))
		EOF
	fi
}

# wl_fio DEV JOBFILE: run the job on DEV; every job must finish without an
# error (a verify mismatch is one) and have written something.
wl_fio() {
	local dev=$1 job=$2 rc=0 out
	out=$W/fio-${dev##*/}.json
	WL_DEV=$dev timeout 600 fio --output-format=json --output="$out" "$job" 2>"$out.err" || rc=$?
	sed -n '/^{/,$p' "$out" >"$out.j"
	if ! jq -e . "$out.j" >/dev/null 2>&1; then
		head -n 20 "$out.err" "$out"
		die "fio on $dev wrote no report (exit $rc)"
	fi
	jq -r --arg d "$dev" '(.jobs | map(.write.io_bytes) | add) as $w |
		(.jobs | map(.read.io_bytes) | add) as $r |
		(.jobs | map(.trim.io_bytes) | add) as $t |
		[.jobs[] | select(.error != 0) | "\(.jobname): error \(.error)"] as $e |
		"fio on \($d): wrote \($w) B, verified \($r) B, trimmed \($t) B\(if ($e | length) > 0 then ", " + ($e | join(", ")) else "" end)"' "$out.j"
	if [ "$rc" -ne 0 ] || ! jq -e '[.jobs[] | select(.error != 0 or .write.io_bytes + .trim.io_bytes == 0)] | length == 0' "$out.j" >/dev/null; then
		grep -v '^fio: multiple writers' "$out.err" | head -n 10 || true
		jq -c '.jobs[] | {jobname, error, w: .write.io_bytes, t: .trim.io_bytes}' "$out.j" || true
		die "fio on $dev failed (exit $rc)"
	fi
	rm -f "$out" "$out.j" "$out.err"
}

# wl_ref START JOBFILE: the reference for JOBFILE run on a disk holding the
# raw file START: a copy of START on which the job ran through loop.  Made
# once per (START, JOBFILE) and kept in $W/.ref/; prints its path.
wl_ref() {
	local ref lo
	ref=$W/.ref/$(basename "$1" .raw)-$(basename "$2" .fio).raw
	if [ ! -f "$ref" ]; then
		mkdir -p "$W/.ref"
		cp --sparse=always "$1" "$ref.tmp"
		lo=$(wl_loop "$ref.tmp")
		wl_fio "$lo" "$2" >&2
		wl_unloop "$lo"
		mv "$ref.tmp" "$ref"
	fi
	echo "$ref"
}

# wl_fio_ref IMAGE START JOBFILE: run the job on IMAGE attached read-write
# and detach; IMAGE must then check clean and equal the reference for
# (START, JOBFILE), START being IMAGE's content before, as raw.
wl_fio_ref() {
	local img=$1 ref dev
	ref=$(wl_ref "$2" "$3")
	dev=$(wl_attach "$img")
	[ "$(blockdev --getsize64 "$dev")" -eq "$(stat -c %s "$ref")" ] ||
		die "$dev and $ref differ in size"
	wl_fio "$dev" "$3"
	[ "$(wl_corrupt_flag "$dev")" = 0 ] || die "$dev is marked corrupt"
	wl_detach "$dev"
	wl_qcheck "$img"
	wl_compare "$img" "$ref"
}
