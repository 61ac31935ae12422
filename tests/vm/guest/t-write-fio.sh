#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Verified fio writes to read-write attached images, judged by qemu-img.
# For each image shape the standard job (tests/vm/lib/write-lib.sh,
# wl_fio_job: two writers, libaio, O_DIRECT, QD 32, random 4K..1M,
# sequential 4K..1M and random 512 B..8K writes, fixed seed, every phase
# verified by fio) runs on /dev/qcowN; after detach `qemu-img check` must
# find no error and no leak, and `qemu-img compare` must find the image
# identical to a raw reference: the starting content (flattened for
# backing chains) on which the identical job ran through a loop device
# (made once per starting content and job: wl_ref).
#
#   empty-c64k-rc16   empty image, 64K clusters, refcount_bits=16
#   backing-raw       empty overlay on a raw backing file (COW from it);
#                     the backing file is unchanged
#   backing-chain     overlay on a two-level qcow2 chain (a v2 base and a
#                     partly written middle); the backing files unchanged
#   snapshots         data, internal snapshot, more data, snapshot (made
#                     with qemu-img snapshot -c): writes COW clusters the
#                     snapshots share, discards drop shared clusters (the
#                     job with its trim phases); both snapshots still read
#                     back their content (qemu-img convert -l)
#   extl2-backing     extended_l2=on, 128K clusters, partly written, over a
#                     qcow2 backing file: subcluster allocation and COW;
#                     the job with its trim phases (whole subclusters get
#                     the zero flag over the backing file)
#   compressed        every data cluster compressed (qemu-img convert -c),
#                     data in a quarter of the disk: writes COW compressed
#                     clusters
#   c4k-rc1           empty image, 4K clusters, refcount_bits=1
#   c2m-rc64-backing  2M clusters, refcount_bits=64, over a raw backing file
#   discard-mix       overlay on a raw backing file: the job with its trim
#                     phases (64K-aligned random discards, sub-cluster
#                     discard-then-write, writes into discarded space),
#                     then blkdiscard of cluster-aligned ranges and
#                     write-zeroes (blkdiscard -z) of unaligned ranges, which
#                     must read zeros, not the backing file; the same
#                     operations on the loop reference
#   negative-control  the job with another seed: compare must fail
#
# Prints "PASS write-fio/<case>" or "FAIL write-fio/<case>"; exits 1 if
# any failed.  QCOW_WRITE_PEER=nbd runs it all on qemu-nbd instead.
# vm-timeout: 900
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
. "$QCOW_TOP/tests/vm/lib/write-lib.sh"

[ "$WL_PEER" = nbd ] || [ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
command -v fio >/dev/null || fail "fio is not installed"
command -v jq >/dev/null || fail "jq is not installed"

SIZE=$((64 * M))

wl_begin write-fio

step "base content and the standard job"
wl_mkbase "$W/base.raw" "$SIZE"
truncate -s "$SIZE" "$W/zero.raw"
wl_fio_job "$W/job.fio" "$SIZE" 4242
wl_fio_job "$W/job-trim.fio" "$SIZE" 777 1

# sum FILE: its sha256.
sum() { sha256sum <"$1" | cut -d' ' -f1; }

# empty OPTIONS: a fresh image; it starts as zeros.
t_empty() {
	qemu-img create -q -f qcow2 -o "$1" img.qcow2 "$SIZE"
	wl_fio_ref img.qcow2 zero.raw job.fio
}

# over_raw OPTIONS: an empty overlay with OPTIONS on base.raw.
t_over_raw() {
	local before
	before=$(sum base.raw)
	qemu-img create -q -f qcow2 -o "$1" -b base.raw -F raw img.qcow2 "$SIZE"
	wl_fio_ref img.qcow2 base.raw job.fio
	[ "$(sum base.raw)" = "$before" ] || die "the backing file changed"
}

t_chain() {
	local sb sm
	qemu-img convert -f raw -O qcow2 -o compat=0.10 base.raw chain-base.qcow2
	qemu-img create -q -f qcow2 -b chain-base.qcow2 -F qcow2 chain-mid.qcow2 "$SIZE"
	qemu-io -f qcow2 -c "write -P 0x61 $((3 * M)) $((5 * M))" \
		-c "write -P 0x62 $((30 * M + 4 * K)) $((68 * K))" \
		-c "write -z $((40 * M)) $((2 * M))" \
		-c "write -P 0x63 $((63 * M)) $((1 * M))" chain-mid.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b chain-mid.qcow2 -F qcow2 img.qcow2 "$SIZE"
	qemu-img convert -O raw img.qcow2 chain.raw
	sb=$(sum chain-base.qcow2)
	sm=$(sum chain-mid.qcow2)
	wl_fio_ref img.qcow2 chain.raw job.fio
	[ "$(sum chain-base.qcow2)" = "$sb" ] || die "the base image changed"
	[ "$(sum chain-mid.qcow2)" = "$sm" ] || die "the middle image changed"
}

t_snapshots() {
	local s1 s2
	qemu-img convert -f raw -O qcow2 base.raw img.qcow2
	qemu-img snapshot -c s1 img.qcow2
	qemu-io -f qcow2 -c "write -P 0x71 $((2 * M)) $((6 * M))" \
		-c "write -P 0x72 $((33 * M + 512)) $((100 * K))" \
		-c "discard $((50 * M)) $((2 * M))" img.qcow2 >/dev/null
	qemu-img snapshot -c s2 img.qcow2
	qemu-io -f qcow2 -c "write -P 0x73 $((4 * M)) $((1 * M))" img.qcow2 >/dev/null
	s1=$(wl_sum_raw img.qcow2 s1)
	s2=$(wl_sum_raw img.qcow2 s2)
	[ "$s1" != "$s2" ] || die "the two snapshots hold the same data"
	qemu-img convert -O raw img.qcow2 snap.raw
	wl_fio_ref img.qcow2 snap.raw job-trim.fio
	qemu-img snapshot -l img.qcow2 | grep -c -E '^[0-9]+ +s[12] ' | grep -qx 2 ||
		die "the snapshots are not both listed"
	[ "$(wl_sum_raw img.qcow2 s1)" = "$s1" ] || die "snapshot s1 changed"
	[ "$(wl_sum_raw img.qcow2 s2)" = "$s2" ] || die "snapshot s2 changed"
	echo "snapshots s1 and s2 read back unchanged"
}

t_extl2() {
	local sb
	qemu-img convert -f raw -O qcow2 base.raw xbase.qcow2
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=128k \
		-b xbase.qcow2 -F qcow2 img.qcow2 "$SIZE"
	# partly written clusters: some subclusters (4K each) allocated, a
	# zeroed one, whole clusters
	qemu-io -f qcow2 -c "write -P 0x81 $((1 * M + 4 * K)) $((8 * K))" \
		-c "write -P 0x82 $((9 * M + 60 * K)) $((12 * K))" \
		-c "write -z $((17 * M + 32 * K)) $((4 * K))" \
		-c "write -P 0x83 $((33 * M)) $((256 * K))" \
		-c "write -P 0x84 $((47 * M + 124 * K)) $((8 * K))" img.qcow2 >/dev/null
	qemu-img convert -O raw img.qcow2 extl2.raw
	sb=$(sum xbase.qcow2)
	wl_fio_ref img.qcow2 extl2.raw job-trim.fio
	[ "$(sum xbase.qcow2)" = "$sb" ] || die "the backing file changed"
}

t_compressed() {
	local used off
	# a quarter of the data (4M of every 16M): qemu-img convert -c is slow
	# under TCG
	cp base.raw comp.raw
	for off in 4 20 36 52; do
		fallocate -p -o $((off * M)) -l $((12 * M)) comp.raw
	done
	qemu-img convert -c -W -f raw -O qcow2 comp.raw img.qcow2
	used=$(($(stat -c %b img.qcow2) * 512))
	echo "compressed image: $used bytes for 16 MiB of data"
	[ "$used" -lt $((8 * M)) ] || die "the image is not compressed"
	wl_fio_ref img.qcow2 comp.raw job.fio
}

# zeros DEV OFF LEN: DEV reads zeros there.
zeros() {
	dd if="$1" bs=4k skip=$(($2 / 4096)) count=$(($3 / 4096)) iflag=direct status=none |
		cmp -s -n "$3" /dev/zero - || die "$1 does not read zeros at $2+$3"
}

# Cluster-aligned (64K) ranges to discard, 4K-aligned ranges to zero.
DISCARDS="0:$((256 * K)) $((3 * M + 64 * K)):$((64 * K)) $((10 * M)):$((M + 128 * K))
	$((32 * M - 64 * K)):$((192 * K)) $((44 * M)):$((3 * M)) $((60 * M)):$((4 * M))"
ZEROES="$((5 * M + 4 * K)):$((8 * K)) $((20 * M + 12 * K)):$((200 * K))
	$((40 * M + 60 * K)):$((68 * K)) $((52 * M)):$((M + 4 * K))"

# discard_ops DEV: the operations of discard-mix, on the image or on loop.
discard_ops() {
	local dev=$1 r
	wl_fio "$dev" job-trim.fio
	for r in $DISCARDS; do
		blkdiscard -o "${r%:*}" -l "${r#*:}" "$dev" || die "blkdiscard $r on $dev failed"
	done
	for r in $ZEROES; do
		blkdiscard -z -o "${r%:*}" -l "${r#*:}" "$dev" || die "blkdiscard -z $r on $dev failed"
	done
	for r in $DISCARDS $ZEROES; do
		zeros "$dev" "${r%:*}" "${r#*:}"
	done
	echo "discarded and zeroed ranges read zeros on $dev"
}

t_discard() {
	local dev lo
	qemu-img create -q -f qcow2 -b base.raw -F raw img.qcow2 "$SIZE"
	cp base.raw ref.raw
	dev=$(wl_attach img.qcow2)
	discard_ops "$dev"
	[ "$(wl_corrupt_flag "$dev")" = 0 ] || die "$dev is marked corrupt"
	wl_detach "$dev"
	lo=$(wl_loop ref.raw)
	discard_ops "$lo"
	wl_unloop "$lo"
	wl_qcheck img.qcow2
	wl_compare img.qcow2 ref.raw
}

# The same job with another seed: the comparison must see the difference.
t_negative() {
	local ref dev
	wl_fio_job job-neg.fio "$SIZE" 4243
	ref=$(wl_ref zero.raw job.fio)
	qemu-img create -q -f qcow2 img.qcow2 "$SIZE"
	dev=$(wl_attach img.qcow2)
	wl_fio "$dev" job-neg.fio
	wl_detach "$dev"
	wl_qcheck img.qcow2
	! qemu-img compare -q -f qcow2 -F raw img.qcow2 "$ref" ||
		die "qemu-img compare did not notice another seed"
	echo "another seed: qemu-img compare sees the difference"
}

# Every case starts from a clean directory but base.raw, zero.raw, the
# jobs and the references.
tidy() { rm -f img.qcow2 ref.raw ./*.raw.tmp chain*.raw snap.raw extl2.raw comp.raw chain-*.qcow2 xbase.qcow2; }

wl_case empty-c64k-rc16 t_empty cluster_size=64k,refcount_bits=16; tidy
wl_case backing-raw t_over_raw cluster_size=64k; tidy
wl_case backing-chain t_chain; tidy
wl_case snapshots t_snapshots; tidy
wl_case extl2-backing t_extl2; tidy
wl_case compressed t_compressed; tidy
wl_case c4k-rc1 t_empty cluster_size=4k,refcount_bits=1; tidy
wl_case c2m-rc64-backing t_over_raw cluster_size=2M,refcount_bits=64; tidy
wl_case discard-mix t_discard; tidy
wl_case negative-control t_negative; tidy

wl_end
