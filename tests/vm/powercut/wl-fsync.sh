# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Power-cut workload "fsync" (sourced by tests/vm/powercut/guest.sh): the
# pcwrite writer (pcwrite.c) on the whole device, O_DIRECT, several threads,
# 4 KiB records at random offsets (allocating writes, overwrites, RWF_DSYNC
# writes, zero-outs and discards), fdatasync every few operations.  The
# verification reads the image the way QEMU sees it (qemu-img convert) and
# checks every block against what the writer had made durable before the cut.
#
# With clusters smaller than 4 KiB a block is several clusters, not one
# aligned 4 KiB piece of the host disk, and a cut can tear a write that was
# not durable: the verification then takes each cluster-sized unit of a
# block on its own (pcwrite init atom=CLUSTER_SIZE).
#
# Environment: QCOW_PC_SIZE (virtual size, default 128M), QCOW_PC_IMGOPTS
# (qemu-img create -o, default cluster_size=65536), QCOW_PC_WRITER
# (pcwrite init key=value options: threads, stripe, maxlen, zero, discard,
# fua, batch, atom), QCOW_PC_SEED.

# wl_init ROUND: the first round that will write is ROUND.
wl_init() {
	local size cs atom=
	size=$(numfmt --from=iec "${QCOW_PC_SIZE:-128M}") || fail "bad QCOW_PC_SIZE"
	expect qemu-img create -q -f qcow2 -o "${QCOW_PC_IMGOPTS:-cluster_size=65536}" \
		"$PC_IMG" "$size"
	# cluster_bits: a big-endian u32 at offset 20 of the header
	cs=$((1 << $(od -An -tu1 -j23 -N1 "$PC_IMG" | tr -d ' ')))
	[ "$cs" -ge 4096 ] || atom=atom=$cs
	# shellcheck disable=SC2086 # a list of key=value words
	expect "$PC_BIN/pcwrite" init "$PC_DIR/state" "$size" "${QCOW_PC_SEED:-1}" \
		after=$(($1 - 1)) $atom ${QCOW_PC_WRITER:-}
}

# wl_run DEV ROUND LIMIT PROGRESS
wl_run() {
	"$PC_BIN/pcwrite" write "$PC_DIR/state" "$1" "$2" "$4" "$3"
}

# wl_verify ROUND PROGRESS
wl_verify() {
	local rc=0 view=/tmp/powercut-view.raw
	# On tmpfs: quicker than the scratch disk under TCG, and nothing for
	# the next boot's journal replay.
	qemu-img convert -O raw "$PC_IMG" "$view" || return 1
	"$PC_BIN/pcwrite" verify "$PC_DIR/state" "$view" "$1" "$2" || rc=$?
	rm -f "$view"
	return "$rc"
}
