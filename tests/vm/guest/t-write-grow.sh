#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Refcount table growth: images filled by writing through /dev/qcowN until
# the refcount table, one cluster when qemu-img made the image, is too
# small for the image file and must be grown and moved.  The header (read
# with a few lines of python) must show a new refcount_table_offset and
# more refcount_table_clusters; `qemu-img check` must be clean (no errors,
# no leaks) and the content equal to a raw reference written with the same
# fio job through loop.  The fill is fio: two writers, libaio, O_DIRECT,
# QD 32, random 4K..256K writes covering the area, verified; allocation
# goes on from both CPUs while the table grows.
#
#   c512-rc16   512-byte clusters, 16-bit refcounts: one 512-byte table
#               covers 8 MiB of file; 32 MiB written
#   c512-rc64   512-byte clusters, 64-bit refcounts: one table covers 2 MiB
#   c4k-rc64    4K clusters, 64-bit refcounts: one table covers 1 GiB; the
#               image is made with preallocation=metadata at 1000 MiB (a
#               sparse 1 GiB file whose L2 entries are allocated zero
#               clusters) and resized to 1100 MiB; 40 MiB written past the
#               preallocated part push the file over 1 GiB; 8 MiB written
#               into the preallocated part overwrite zero clusters
#
# Prints "PASS write-grow/<case>" or "FAIL write-grow/<case>"; exits 1 if
# any failed.  QCOW_WRITE_PEER=nbd runs it on qemu-nbd instead.
# vm-timeout: 900
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
. "$QCOW_TOP/tests/vm/lib/write-lib.sh"

[ "$WL_PEER" = nbd ] || [ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
for t in fio jq python3; do
	command -v "$t" >/dev/null || fail "$t is not installed"
done

wl_begin write-grow

# rtable IMAGE: "refcount_table_offset refcount_table_clusters refcount_bits"
rtable() {
	python3 - "$1" <<-'EOF'
	import struct, sys
	h = open(sys.argv[1], "rb").read(104)
	magic, version = struct.unpack(">II", h[:8])
	assert magic == 0x514649fb, "not a qcow2 image"
	rto, rtc = struct.unpack(">QI", h[48:60])
	order = struct.unpack(">I", h[96:100])[0] if version >= 3 else 4
	print(rto, rtc, 1 << order)
	EOF
}

# fill_job FILE OFFSET LENGTH SEED: two writers, each half of the area,
# random 4K..256K writes covering it all once (fio's random map), pattern
# data with the offset in it, verified.
fill_job() {
	local half=$(($3 / 2))
	cat >"$1" <<-EOF
	[fill]
	filename=\${WL_DEV}
	ioengine=libaio
	direct=1
	iodepth=32
	numjobs=2
	rw=randwrite
	bsrange=4k-256k
	blockalign=4k
	randrepeat=1
	randseed=$4
	offset=$2
	size=$half
	offset_increment=$half
	verify=pattern
	verify_pattern=0x3c%o"grow"
	verify_fatal=1
	EOF
}

# grow IMAGE JOB...: run the jobs on IMAGE and on a sparse raw reference
# through loop; the refcount table must have moved and grown; check and
# compare.
grow() {
	local img=$1 before after dev lo j
	local -a a b
	shift
	before=$(rtable "$img")
	truncate -s "$(qemu-img info --output=json "$img" | jq '."virtual-size"')" ref.raw
	dev=$(wl_attach "$img")
	for j in "$@"; do
		wl_fio "$dev" "$j"
	done
	[ "$(wl_corrupt_flag "$dev")" = 0 ] || die "$dev is marked corrupt"
	wl_detach "$dev"
	after=$(rtable "$img")
	echo "refcount table (offset clusters bits): before $before, after $after"
	read -r -a b <<<"$before"
	read -r -a a <<<"$after"
	[ "${a[0]}" != "${b[0]}" ] || die "the refcount table did not move"
	[ "${a[1]}" -gt "${b[1]}" ] || die "the refcount table did not grow"
	[ "${a[2]}" = "${b[2]}" ] || die "refcount_bits changed"
	echo "image file: $(stat -c %s "$img") bytes"
	lo=$(wl_loop ref.raw)
	for j in "$@"; do
		wl_fio "$lo" "$j"
	done
	wl_unloop "$lo"
	wl_qcheck "$img"
	wl_compare "$img" ref.raw
	rm -f "$img" ref.raw
}

t_c512() {
	qemu-img create -q -f qcow2 -o "cluster_size=512,refcount_bits=$1" img.qcow2 32M
	fill_job fill.fio 0 $((32 * M)) 5150
	grow img.qcow2 fill.fio
}

t_c4k() {
	qemu-img create -q -f qcow2 -o cluster_size=4k,refcount_bits=64,preallocation=metadata \
		img.qcow2 1000M
	qemu-img resize -q img.qcow2 1100M
	echo "preallocated image file: $(stat -c %s img.qcow2) bytes"
	fill_job new.fio $((1000 * M)) $((40 * M)) 4040
	fill_job old.fio $((500 * M)) $((8 * M)) 5050
	grow img.qcow2 new.fio old.fio
}

wl_case c512-rc16 t_c512 16
wl_case c512-rc64 t_c512 64
wl_case c4k-rc64 t_c4k

wl_end
