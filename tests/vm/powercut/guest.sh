#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Guest side of the power-cut test (tests/vm/powercut.sh runs it once per
# boot, on a scratch disk that outlives the VM).  A boot does these steps,
# each optional, in this order:
#
#   -v R -p FILE  check round R, cut short by the previous boot's power cut:
#                 `qemu-img check` must find no corruption (leaks are fine
#                 after a crash; they are repaired once they pile up), the
#                 header must not be marked corrupt, and the workload's own
#                 verification must pass against FILE, the progress the
#                 writer logged before the cut (on the host, read over 9p)
#   -F R -K K     clean round on image K: repair the leaks (those past the
#                 end of the file too), attach, run round R to completion,
#                 detach; then the image must be fully clean (no leaks
#                 either, not even past the end of the file) and verify like
#                 any round
#   -i            start over: a new image (qemu-img create -o
#                 $QCOW_PC_IMGOPTS) and workload state
#   -W R          attach the image read-write and run round R of the
#                 workload until the host cuts the power
#
#   guest.sh -w WORKLOAD -b BACKEND [-v R -p FILE] [-F R -K K] [-i] [-W R]
#
# BACKEND attaches the image: qcow (qcowctl attach, the device under test),
# nbd (qemu-nbd --cache=none --aio=native: the peer that validates the
# harness), and two negative controls the verification must catch:
# nbd-unsafe (qemu-nbd --cache=unsafe: buffered, flushes dropped) and
# nbd-noflush (O_DIRECT, flushes dropped: the ext4 under the image loses
# the extents of new clusters, a lossy disk the data too).
#
# WORKLOAD is tests/vm/powercut/wl-WORKLOAD.sh, sourced; it defines
#   wl_init ROUND           state for a fresh $PC_IMG; ROUND writes first
#   wl_run DEV ROUND LIMIT PROGRESS
#                           run round ROUND on DEV, logging what is durable
#                           to PROGRESS (on the 9p share: on the host as
#                           soon as write() returns).  LIMIT 0: run until
#                           the cut, and print the cue PC-WRITER-START to
#                           /dev/kmsg once running; else finish, no cue
#   wl_verify ROUND PROGRESS
#                           verify $PC_IMG (not attached) after round ROUND
# with $PC_DIR (on the scratch disk), $PC_IMG and $PC_BIN (host-built
# helpers) set.  $QCOW_PC_* settings reach it from the host.
#
# Verdicts: "PASS|FAIL powercut/round-R" and "powercut/clean-K" on the
# console and in $QCOW_VM_OUT/verdict.txt; exit status non-zero on failure.
# "PC-REFTABLE start|after round R: offset O clusters N covers BYTES file
# BYTES" on the console name the image's refcount table (from the header)
# before round R writes and after its cut, how much of the file it can count
# and the size of the file: the host tells from them and from the module's
# "refcount table moved" lines whether a cut landed in a move.
# shellcheck disable=SC1091
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

wl=fsync
backend=qcow
init=0
vround=
vprog=
fround=
image=1
wround=
while getopts w:b:iv:p:F:K:W: opt; do
	case $opt in
	w) wl=$OPTARG ;;
	b) backend=$OPTARG ;;
	i) init=1 ;;
	v) vround=$OPTARG ;;
	p) vprog=$OPTARG ;;
	F) fround=$OPTARG ;;
	K) image=$OPTARG ;;
	W) wround=$OPTARG ;;
	*) fail "bad arguments" ;;
	esac
done
[ -z "$vround" ] || [ -n "$vprog" ] || fail "-v needs -p"
[ "$init" = 0 ] || [ -n "$wround" ] || fail "-i needs -W"

export PC_DIR=$QCOW_SCRATCH/powercut
export PC_IMG=$PC_DIR/disk.qcow2
export PC_BIN=${QCOW_PC_BIN:?the host sets QCOW_PC_BIN}
verdicts=$QCOW_VM_OUT/verdict.txt
# Leaked clusters are repaired once there are this many.
leak_max=${QCOW_PC_LEAK_MAX:-2000}

wlfile=$QCOW_TOP/tests/vm/powercut/wl-$wl.sh
[ -f "$wlfile" ] || fail "no workload $wlfile"
# shellcheck disable=SC1090,SC1091
. "$wlfile"

# step MSG, with the guest's uptime: where a boot spends its time.
step() { echo "--- [$(cut -d' ' -f1 /proc/uptime)] $*"; }

# say MSG: to the console through printk, which the host sees at once.
say() {
	echo "$*"
	echo "$*" > /dev/kmsg
}

verdict() {
	say "$*"
	echo "$*" >> "$verdicts"
}

# --- backends ------------------------------------------------------------

dev=
attach() {
	case $backend in
	qcow)
		dev=$("$QCOW_CTL" attach "$PC_IMG") || fail "qcowctl attach $PC_IMG failed"
		;;
	nbd | nbd-unsafe | nbd-noflush)
		dev=/dev/nbd0
		case $backend in
		nbd) expect qemu-nbd -f qcow2 --cache=none --aio=native --discard=unmap \
			-c "$dev" "$PC_IMG" ;;
		nbd-unsafe) expect qemu-nbd -f qcow2 --cache=unsafe --discard=unmap \
			-c "$dev" "$PC_IMG" ;;
		nbd-noflush) expect qemu-nbd --image-opts --aio=native --discard=unmap -c "$dev" \
			"driver=qcow2,file.filename=$PC_IMG,cache.direct=on,cache.no-flush=on" ;;
		esac
		for _ in $(seq 100); do
			[ "$(blockdev --getsize64 "$dev" 2>/dev/null || echo 0)" -gt 0 ] && break
			sleep 0.1
		done
		;;
	esac
	echo "attached $PC_IMG as $dev ($backend)"
}

detach() {
	case $backend in
	qcow) expect "$QCOW_CTL" detach "$dev" ;;
	*)
		expect qemu-nbd -d "$dev"
		# qemu-nbd exits once it has flushed and closed the image.
		for _ in $(seq 100); do
			pgrep -x qemu-nbd >/dev/null || break
			sleep 0.1
		done
		! pgrep -x qemu-nbd >/dev/null || fail "qemu-nbd did not exit"
		;;
	esac
	dev=
}

case $backend in
qcow)
	[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
	qcow_load
	;;
nbd | nbd-unsafe | nbd-noflush) expect modprobe nbd nbds_max=2 ;;
*) fail "unknown backend $backend" ;;
esac

# --- image checks ----------------------------------------------------------

# check_image MAXLEAKS: qemu-img check must find no corruption and no more
# than MAXLEAKS leaked clusters (-1: any number), and the header must not
# carry the corrupt bit (nor the dirty bit: no lazy refcounts here); sets
# $leaks.
leaks=0
check_image() {
	local max=$1 json counts corrupt errs incompat
	json=$(qemu-img check --output=json "$PC_IMG" 2>/dev/null) || true
	if ! counts=$(jq -r '"\(.corruptions // 0) \(."check-errors" // 0) \(.leaks // 0)"' \
		<<<"$json" 2>/dev/null) || [ -z "$counts" ]; then
		echo "qemu-img check did not produce a report:"
		qemu-img check "$PC_IMG" 2>&1 | head -n 20
		return 1
	fi
	read -r corrupt errs leaks <<<"$counts"
	if [ "$corrupt" != 0 ] || [ "$errs" != 0 ]; then
		echo "qemu-img check: $corrupt corruptions, $errs check errors:"
		qemu-img check "$PC_IMG" 2>&1 | head -n 40
		return 1
	fi
	if [ "$max" -ge 0 ] && [ "$leaks" -gt "$max" ]; then
		echo "qemu-img check: $leaks leaked clusters (at most $max allowed here)"
		qemu-img check "$PC_IMG" 2>&1 | head -n 20
		return 1
	fi
	# incompatible_features, a big-endian u64 at offset 72 (v3): bit 0
	# dirty, bit 1 corrupt.
	incompat=$(od -An -tu1 -j79 -N1 "$PC_IMG" | tr -d ' ')
	if (((incompat & 3) != 0)); then
		echo "the image header has the $( ((incompat & 2)) && echo corrupt || echo dirty) bit set"
		return 1
	fi
	echo "qemu-img check: no corruption, $leaks leaked clusters"
}

# verify_round NAME R PROGRESS MAXLEAKS
verify_round() {
	local name=$1 r=$2 prog=$3 max=$4
	step "round $r: checking the image"
	if ! check_image "$max"; then
		verdict "FAIL powercut/$name: qemu-img check"
		exit 1
	fi
	if ! wl_verify "$r" "$prog"; then
		verdict "FAIL powercut/$name: data verification"
		exit 1
	fi
	verdict "PASS powercut/$name (leaked clusters: $leaks)"
}

# A cut can leave refcounts for clusters past the end of the image file
# (allocated, then the cut came before anything was written there).
# qemu-img check only looks at clusters inside the file, yet those turn into
# leaks as soon as the file grows past them.  Grow the file (sparse, by 1024
# clusters) so that check sees them; zeros past the last cluster are no
# concern of qcow2.
reveal_past_eof() {
	local cs size
	# cluster_bits: a big-endian u32 at offset 20 of the header
	cs=$((1 << $(od -An -tu1 -j23 -N1 "$PC_IMG" | tr -d ' ')))
	size=$(stat -c %s "$PC_IMG")
	expect truncate -s $((size + 1024 * cs)) "$PC_IMG"
}

# reftable WHEN: the refcount table the header names (refcount_table_offset
# at 48, _clusters at 56; cluster_bits at 20, refcount_order at 96 in v3),
# the bytes of file it can count, and where the file's data ends (the
# module keeps a hole past its allocation end: the size would overstate).
# One od: a process costs a good part of a second under TCG.
reftable() {
	local -a b
	local cb order=4 clusters entries cover off=0 i
	read -r -d '' -a b <<<"$(od -An -tu1 -v -N104 "$PC_IMG")" || true
	[ ${#b[@]} -ge 72 ] || { say "PC-REFTABLE $1: no header"; return 0; }
	cb=${b[23]}
	clusters=$((b[56] << 24 | b[57] << 16 | b[58] << 8 | b[59]))
	for ((i = 48; i < 56; i++)); do
		off=$((off << 8 | b[i]))
	done
	[ "${b[7]}" -lt 3 ] || [ ${#b[@]} -lt 100 ] || order=${b[99]}
	entries=$(((clusters << cb) / 8))
	cover=$((entries * ((1 << cb) * 8 >> order) << cb))
	printf -v off '0x%x' "$off"
	say "PC-REFTABLE $1: offset $off clusters $clusters covers $cover file $("$PC_BIN/pcwrite" dataend "$PC_IMG")"
}

repair_leaks() {
	step "repairing leaked clusters ($leaks in the file)"
	qemu-img check -r leaks "$PC_IMG" >/dev/null 2>&1 || true
	check_image 0 || fail "qemu-img check -r leaks left the image unclean"
}

# --- the boot --------------------------------------------------------------

if [ -n "$vround" ]; then
	[ -f "$PC_IMG" ] || fail "no image at $PC_IMG"
	reftable "after round $vround"
	verify_round "round-$vround" "$vround" "$vprog" -1
	if [ "$leaks" -gt "$leak_max" ]; then
		repair_leaks
	fi
	sync
fi

if [ -n "$fround" ]; then
	step "clean round $fround on image $image: to completion, then detach"
	reveal_past_eof
	repair_leaks
	# What the clean round starts from, for a failure report.
	cp --sparse=always "$PC_IMG" "$PC_DIR/pre-clean.qcow2"
	sync
	attach
	wl_run "$dev" "$fround" "${QCOW_PC_CLEAN_OPS:-50}" "$QCOW_VM_OUT/progress-clean.txt" ||
		{ verdict "FAIL powercut/clean-$image: the workload failed"; exit 1; }
	detach
	# No leak allowed now, not even past the end of the file.
	reveal_past_eof
	verify_round "clean-$image" "$fround" "$QCOW_VM_OUT/progress-clean.txt" 0
fi

if [ "$init" = 1 ]; then
	step "new image: ${QCOW_PC_IMGOPTS:-default options}"
	rm -rf "$PC_DIR"
	mkdir -p "$PC_DIR"
	wl_init "$wround"
fi

if [ -z "$wround" ]; then
	if [ "$backend" = qcow ]; then
		qcow_unload
	fi
	exit 0
fi

[ -f "$PC_IMG" ] || fail "no image at $PC_IMG"
# The power cut may come any time after the writer's start cue: nothing the
# next boot needs may be left in this VM's page cache.
reftable "start round $wround"
sync
attach
step "round $wround: running until the power cut"
set +e
wl_run "$dev" "$wround" 0 "$QCOW_VM_OUT/progress.txt"
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
	verdict "FAIL powercut/round-$wround: the workload failed (exit $rc) before the power cut"
	exit 1
fi
say "PC-WAITING: round $wround finished before the power cut"
# The cut is due any moment; wait for it without touching the disk.
sleep 3600
exit 1
