#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Make the fuzz targets' seed corpus from real images: qemu-img and
# qemu-io build qcow2 images of many shapes (v2/v3, every cluster size
# class, each refcount width, extended L2, zlib and zstd compressed
# clusters, zero clusters, backing files, internal snapshots, bitmaps,
# lazy refcounts, external data files, preallocation, a dirty image, huge
# virtual sizes), then mkseeds.py cuts each target's input out of them.
#
# usage: tests/fuzz/mkseeds.sh OUTDIR
#
# OUTDIR/<target>/ gets the seeds; the images themselves are deleted.
# Needs qemu-img, qemu-io and python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: mkseeds.sh OUTDIR}
work=$(mktemp -d "${TMPDIR:-/tmp}/qcow-fuzz-seeds.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

# mk NAME SIZE [-o OPTIONS] [qemu-img create arguments...]
mk() {
	local name=$1 size=$2
	shift 2
	qemu-img create -q -f qcow2 "$@" "$name.qcow2" "$size"
}

# io NAME qemu-io command...
io() {
	local name=$1 c
	local -a args=()
	shift
	for c in "$@"; do
		args+=(-c "$c")
	done
	qemu-io -f qcow2 "${args[@]}" "$name.qcow2" >/dev/null
}

mk v3-64k 64M
io v3-64k 'write -P 0x11 0 64k' 'write -P 0x22 1M 128k' 'write -z 2M 64k' \
	'write -z -u 3M 64k' 'discard 1M 64k'
mk v2-512 4M -o compat=0.10,cluster_size=512
io v2-512 'write -P 0x33 0 4k' 'write -P 0x44 1M 512'
mk v3-512 4M -o cluster_size=512
io v3-512 'write -P 0x55 4k 8k' 'write -z 64k 4k'
mk v3-4k 16M -o cluster_size=4k
io v3-4k 'write -P 0x66 0 12k' 'write -P 0x67 8M 4k'
mk v3-2m 64M -o cluster_size=2M
io v3-2m 'write -P 0x77 0 4k'
for bits in 1 2 4 8 32 64; do
	mk "rc$bits" 8M -o "refcount_bits=$bits,cluster_size=4k"
	io "rc$bits" 'write -P 0x12 0 16k'
done
mk extl2-64k 64M -o extended_l2=on
io extl2-64k 'write -P 0x21 0 2k' 'write -P 0x22 70k 4k' 'write -z 256k 8k' \
	'write -P 0x23 1M 64k'
mk extl2-16k 16M -o extended_l2=on,cluster_size=16k
io extl2-16k 'write -P 0x24 512 512' 'write -z 32k 1k'
mk zstd 16M -o compression_type=zstd,cluster_size=4k
io zstd 'write -c -P 0x31 0 4k' 'write -c -P 0x32 64k 4k' 'write -P 0x33 128k 4k'
qemu-img create -q -f raw raw-data.raw 4M
qemu-io -f raw -c 'write -P 0x41 0 1M' -c 'write -P 0x42 2M 4k' raw-data.raw >/dev/null
qemu-img convert -c -O qcow2 -o cluster_size=4k raw-data.raw zlib.qcow2
qemu-img convert -c -O qcow2 -o cluster_size=512,compat=0.10 raw-data.raw zlib-v2-512.qcow2
mk base 16M
io base 'write -P 0x51 0 1M'
mk backing-qcow2 16M -b base.qcow2 -F qcow2
io backing-qcow2 'write -P 0x52 64k 4k'
mk backing-raw 4M -b raw-data.raw -F raw
mk backing-v2 16M -o compat=0.10 -b base.qcow2 -F qcow2
mk backing-missing 16M -u -b 'a backing file name with spaces.raw' -F raw
mk snapshots 16M -o cluster_size=4k
io snapshots 'write -P 0x61 0 8k'
qemu-img snapshot -c first snapshots.qcow2
io snapshots 'write -P 0x62 4k 8k'
qemu-img snapshot -c 'second one' snapshots.qcow2
qemu-img snapshot -c 'snäp "quoted" tab	end' snapshots.qcow2
qemu-img snapshot -d first snapshots.qcow2
mk snapshots-v2 8M -o compat=0.10,cluster_size=512
io snapshots-v2 'write -P 0x63 0 2k'
qemu-img snapshot -c s1 snapshots-v2.qcow2
qemu-img snapshot -c s2 snapshots-v2.qcow2
mk snapshots-resized 4M -o cluster_size=4k
qemu-img snapshot -c small snapshots-resized.qcow2
qemu-img resize -q snapshots-resized.qcow2 64M
qemu-img snapshot -c big snapshots-resized.qcow2
mk bitmaps 64M -o cluster_size=4k
qemu-img bitmap --add bitmaps.qcow2 bm0
qemu-img bitmap --add -g 128k bitmaps.qcow2 'bitmap one'
io bitmaps 'write -P 0x71 0 64k'
qemu-img bitmap --add --disable bitmaps.qcow2 bm2
mk lazy 16M -o lazy_refcounts=on
io lazy 'write -P 0x72 0 64k'
# qemu-io dies with the dirty bit still set (lazy refcounts use it).
mk dirty 16M -o lazy_refcounts=on
sh -c "ulimit -c 0; qemu-io -f qcow2 -c 'write -P 0x73 0 64k' -c abort dirty.qcow2 \
	>/dev/null 2>&1; exit 0"
mk datafile 16M -o data_file=datafile.raw
io datafile 'write -P 0x74 0 64k'
mk datafile-raw 16M -o data_file=datafile-raw.raw,data_file_raw=on
mk prealloc 4M -o preallocation=metadata,cluster_size=4k
mk huge 4T
mk huge-512 100G -o cluster_size=512
mk full-header 1G -o cluster_size=64k,compression_type=zstd,lazy_refcounts=on,extended_l2=on \
	-b base.qcow2 -F qcow2

rm -rf "$out"
mkdir -p "$out"
python3 "$here/mkseeds.py" "$out" ./*.qcow2
echo "mkseeds: $(find "$out" -type f | wc -l) seeds from $(find . -name "*.qcow2" | wc -l) images in $out"
