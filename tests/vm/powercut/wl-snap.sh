# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Power-cut workload "snap" (sourced by tests/vm/powercut/guest.sh): the
# power is cut while a snapshot is being created or deleted on the
# read-write device, with data writes going on meanwhile.  The pcsnap
# helper (pcsnap.c) runs writer threads as pcwrite does (O_DIRECT records,
# zero-outs, discards, fdatasync every few operations) and, in its main
# thread, the snapshot operations one after the other: the first of a
# round through `qcowctl snapshot create|delete`, the others through the
# QCOW_SNAPSHOT_CREATE/DELETE ioctls themselves, so that the progress lines
# written before and after each one bracket the kernel's work only.  Odd
# rounds cut during creates, even rounds during deletes: an odd round trims
# the snapshots to one and creates them back to back, an even round tops
# them up to eight and deletes them back to back; they begin a random
# 200..400 ms before the cut is due ($QCOW_VM_KILL_DELAY after the cue), and
# less if at the pace of an operation timed just before the snapshots (or
# the room for more) would run out first.  The verification knows from the
# progress log which operation the cut interrupted, and checks that
#   - `qemu-img snapshot -l` lists exactly the snapshots (ids, names, in
#     table order) before that operation, or exactly those after it;
#   - every snapshot reads (`qemu-img convert -l`) what it read at the last
#     verification; one created this round holds, in every block, what its
#     writer thread had written when the create began, or a write that was
#     in flight until the create returned: nothing later;
#   - the active image holds every write made durable (by fdatasync, or by
#     a create that returned: it writes everything back), or a later one.
# With clusters under 4 KiB a 4 KiB block of the device is several host
# pieces, and a cut may tear a write that was not durable: the blocks are
# then verified per cluster (pcsnap init atom=CLUSTER_SIZE), each unit on
# its own, as the fsync workload does.
# The harness checks before that `qemu-img check` finds no corruption.
# "PC-NOTE round R [create|delete|idle]: ..." says where the cut landed.
#
# Environment: QCOW_PC_SNAP_SIZE (virtual size, default 8M),
# QCOW_PC_IMGOPTS (qemu-img create -o; refcount_bits below 8 is raised to
# 8: one bit cannot count a shared cluster), QCOW_PC_SNAP_OPTS (pcsnap init
# key=value: threads, stripe, maxlen, zero, discard, batch; low, top, max:
# the snapshot counts), QCOW_PC_SNAP_WINDOW (seconds, default 0.4),
# QCOW_PC_SNAP_CMD (the setup's snapshot command, default
# "$QCOW_CTL snapshot"), QCOW_PC_SNAP_JOBS (qemu-img converts at once,
# default 2), QCOW_PC_SEED.

# wl_init ROUND: the first round that will write is ROUND.
wl_init() {
	local size opts cs atom=
	# shellcheck disable=SC2154 # guest.sh sets it
	[ "$backend" = qcow ] ||
		fail "workload snap: snapshots need the online snapshot ioctls of the qcow backend, not $backend"
	size=$(numfmt --from=iec "${QCOW_PC_SNAP_SIZE:-8M}") || fail "bad QCOW_PC_SNAP_SIZE"
	opts=${QCOW_PC_IMGOPTS:-cluster_size=65536}
	if [[ $opts =~ (^|,)refcount_bits=([124])(,|$) ]]; then
		echo "workload snap: refcount_bits=${BASH_REMATCH[2]} cannot count the references of many snapshots; refcount_bits=8 instead"
		opts=$(sed -E 's/(^|,)refcount_bits=[124](,|$)/\1refcount_bits=8\2/' <<<"$opts")
	fi
	expect qemu-img create -q -f qcow2 -o "$opts" "$PC_IMG" "$size"
	# cluster_bits: a big-endian u32 at offset 20 of the header
	cs=$((1 << $(od -An -tu1 -j23 -N1 "$PC_IMG" | tr -d ' ')))
	[ "$cs" -ge 4096 ] || atom=atom=$cs
	# shellcheck disable=SC2086 # a list of key=value words
	expect "$PC_BIN/pcsnap" init "$PC_DIR/snap" "$size" "${QCOW_PC_SEED:-1}" \
		after=$(($1 - 1)) $atom ${QCOW_PC_SNAP_OPTS:-}
}

# wl_run DEV ROUND LIMIT PROGRESS
wl_run() {
	"$PC_BIN/pcsnap" run "$PC_DIR/snap" "$1" "$2" "$4" "$3"
}

# wl_verify ROUND PROGRESS
wl_verify() {
	# The raw views go to /tmp (tmpfs): quicker than the scratch disk.
	TMPDIR=/tmp "$PC_BIN/pcsnap" verify "$PC_DIR/snap" "$PC_IMG" "$1" "$2"
}
