#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Read path matrix: images made by the real qemu-img/qemu-io in every shape
# the read path has to handle, attached read-only with qcowctl; what
# /dev/qcowN reads must be what `qemu-img convert -O raw` makes of the same
# image (the whole disk, read once through the page cache and once with
# O_DIRECT and 1 MiB requests).
#
#   versions     v3 with clusters 512, 4K, 64K, 2M; v2 (compat=0.10) with
#                4K and 2M (and 512, 64K below)
#   compressed   zlib and zstd, several cluster sizes, v2 and v3, with a
#                virtual size that is not a multiple of the cluster size,
#                partly overwritten afterwards; zstd with extended L2
#   backing      chains of depth 3 mixing raw and qcow2 with backing files
#                shorter and longer than the image above them, zeros that
#                hide backing data, COW of partial clusters
#   extended L2  32K/64K/2M clusters, single-subcluster writes, write -z on
#                subclusters, over a backing file and standalone
#   prealloc     preallocation=metadata/falloc/full
#   zeros        write -z (allocated and unmapped), discard
#   snapshots    internal snapshots whose content differs from the active
#                state (v2 and v3)
#   odd size     a header size that is not a multiple of 512
#   1T sparse    read at a few offsets, compared to a converted range
#
# The source data mixes random, patterned, text and zero runs of varying
# lengths (so that compression matters and runs straddle clusters), written
# in an order that puts host clusters out of guest order.
# Prints "PASS read-matrix/<case>" or "FAIL read-matrix/<case>" per image;
# exits 1 if any failed.
# vm-timeout: 900
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
W=$QCOW_SCRATCH/read-matrix
rm -rf "$W"
mkdir -p "$W"
cd "$W"

M=$((1024 * 1024))
G=$((1024 * M))
nfail=0
npass=0

die() {
	echo "$*" >&2
	exit 1
}

# Cases run QCOW_RM_JOBS (default 2, one per vCPU) at a time: under TCG a
# case is mostly single-threaded qemu-img work, and two devices attached,
# read and detached side by side are a test of their own.  A case cleans up
# after itself; what a failed case leaves attached is detached at the end.
JOBS=${QCOW_RM_JOBS:-2}
cases=()

# case NAME FUNCTION [ARGS...]: start one case in the background, in a
# subshell with errexit, in its own directory; its output, exit status and
# run time go to $W/NAME.{log,rc}.
case_() {
	local name=$1
	shift
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n || true
	done
	cases+=("$name")
	mkdir -p "$W/$name"
	{
		t0=$EPOCHREALTIME
		(set -e; cd "$W/$name"; "$@") </dev/null >"$W/$name.log" 2>&1
		echo "$? $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')" \
			>"$W/$name.rc"
		rm -rf "${W:?}/$name"
	} &
}

# report: wait for every case and print the verdicts in order.
report() {
	local name rc secs
	wait
	for name in "${cases[@]}"; do
		read -r rc secs <"$W/$name.rc"
		if [ "$rc" -eq 0 ]; then
			echo "PASS read-matrix/$name (${secs}s)"
			npass=$((npass + 1))
		else
			echo "FAIL read-matrix/$name (${secs}s)"
			sed 's/^/    /' "$W/$name.log"
			nfail=$((nfail + 1))
		fi
	done
	"$QCOW_CTL" detach -a >/dev/null 2>&1 || true
}

# attach IMAGE: attach read-only with qcowctl; sets $dev and $sys.
attach() {
	local out
	out=$("$QCOW_CTL" attach -r "$1") || die "qcowctl attach -r $1 failed"
	[[ $out =~ ^/dev/qcow[0-9]+$ ]] || die "qcowctl attach printed '$out'"
	dev=$out
	sys=/sys/block/${dev#/dev/}/qcow
	[ -b "$dev" ] || die "$dev is not a block device"
}

detach() {
	"$QCOW_CTL" detach "$dev" || die "qcowctl detach $dev failed"
}

sha() { sha256sum | cut -d' ' -f1; }

# bytes: the distinct byte values of stdin, in hex, space separated.
bytes() { od -An -v -tx1 | tr -s ' ' '\n' | grep . | sort -u | paste -sd' '; }

# same_as_ref DEV REF: the whole of DEV reads like the raw file REF, through
# the page cache and with direct 1 MiB reads.
same_as_ref() {
	local d=$1 ref=$2 size
	size=$(blockdev --getsize64 "$d")
	[ "$size" -eq "$(stat -c %s "$ref")" ] ||
		die "$d is $size bytes, the reference $(stat -c %s "$ref")"
	cmp "$ref" "$d" || die "buffered read of $d differs from $ref"
	dd if="$d" bs=1M iflag=direct status=none | cmp "$ref" - ||
		die "direct read of $d differs from $ref"
	echo "$d matches the reference ($size bytes)"
}

# verify IMAGE [LAYERS]: attach IMAGE and compare it with qemu-img convert.
# LAYERS: the number of backing layers sysfs must list (default 0).
verify() {
	local img=$1 layers=${2:-0} corrupt
	qemu-img convert -f qcow2 -O raw "$img" ref.raw
	attach "$img"
	[ "$(cat "$sys/read_only")" = 1 ] || die "$dev is not read-only"
	[ "$(wc -l <"$sys/backing")" -eq "$layers" ] ||
		die "sysfs backing lists $(wc -l <"$sys/backing") layers, want $layers"
	same_as_ref "$dev" ref.raw
	corrupt=$(cat "$sys/corrupt")
	[ "$corrupt" = 0 ] || die "$dev was marked corrupt"
	detach
	rm -f ref.raw
}

# mksrc FILE SIZE: a raw file of mixed runs (random, pattern, zero, text,
# half pattern/half random) whose lengths vary between 40K and 240K.
mksrc() {
	local f=$1 size=$2 off=0 i=0 len
	local -a cmds=()
	head -c "$size" /dev/urandom >"$f"
	while [ "$off" -lt "$size" ]; do
		len=$(( (40 + (i * 37) % 200) * 1024 + (i % 3) * 512 ))
		[ $((off + len)) -le "$size" ] || len=$((size - off))
		case $((i % 5)) in
		0) ;;
		1) cmds+=(-c "write -P $(( (i * 7) % 255 + 1 )) $off $len") ;;
		2) cmds+=(-c "write -z $off $len") ;;
		3) cmds+=(-c "write -s $W/txt $off $len") ;;
		4) cmds+=(-c "write -P $((i % 256)) $off $(( (len / 2) & ~511 ))") ;;
		esac
		off=$((off + len))
		i=$((i + 1))
	done
	qemu-io -f raw "${cmds[@]}" "$f" >/dev/null
}

# fill IMAGE: give a fresh image of SRC_SIZE the contents of src.raw with
# clusters allocated out of guest order, then scattered small writes, the
# first and the last sector included.
fill() {
	local img=$1 size=$SRC_SIZE
	qemu-io -f qcow2 -c "write -P 0xa1 $((size - 4096)) 4096" \
		-c "write -P 0xa2 $((size / 2 + 3 * 512)) 8192" \
		-c "write -P 0xa3 $((size / 3)) 65536" \
		-c "write -P 0xa4 $((1 * M + 512)) 1024" "$img"
	qemu-img convert -n -f raw -O qcow2 "$W/src.raw" "$img"
	qemu-io -f qcow2 -c "write -P 0xb1 0 512" \
		-c "write -P 0xb2 $((size - 512)) 512" \
		-c "write -P 0xb3 $((3 * M + 1024)) 3072" \
		-c "write -P 0xb4 $((7 * M - 512)) 1024" \
		-c "write -s $W/rnd $((6 * M + 4096)) 200000" \
		-c "write -z $((5 * M + 512)) 9216" "$img"
}

# --- source data ---------------------------------------------------------

step "making source data in $W"
seq 1 80000 >"$W/txt"
head -c 300000 /dev/urandom >"$W/rnd"
# 8 MiB + 3 sectors: not a multiple of any cluster size
SRC_SIZE=$((8 * M + 1536))
# compressing is slow under TCG: compressed images use less of it
COMP_SIZE=$((4 * M + 1536))
mksrc "$W/src.raw" "$SRC_SIZE"

# --- cases ---------------------------------------------------------------

# std OPTIONS: a fresh image with OPTIONS, filled, compared.
t_std() {
	qemu-img create -q -f qcow2 -o "$1" img.qcow2 "$SRC_SIZE"
	fill img.qcow2
	qemu-img info img.qcow2 | grep -E 'cluster_size|compat' || true
	verify img.qcow2
}

# compressed OPTIONS [SIZE]: qemu-img convert -c of the first SIZE bytes of
# the source (default COMP_SIZE), then a few writes on top that turn some
# compressed clusters into normal ones.  Compressing is slow under TCG:
# small clusters get a smaller source.
t_compressed() {
	local size=${2:-$COMP_SIZE}
	head -c "$size" "$W/src.raw" >c.raw
	qemu-img convert -c -f raw -O qcow2 -o "$1" c.raw img.qcow2
	rm c.raw
	qemu-io -f qcow2 -c "write -P 0xc1 $((size / 3 / 512 * 512)) 4096" \
		-c "write -z $((size / 2 / 65536 * 65536)) 65536" \
		-c "write -P 0xc2 $((size - 1024)) 1024" img.qcow2
	qemu-img check img.qcow2 | grep -i compress
	verify img.qcow2
}

# A compressed image of a size that is not a multiple of 512 in any cluster
# size either, whose last (partial) cluster is compressed: 5M + 7K + 512.
t_compressed_odd() {
	head -c $((5 * M + 7 * 1024 + 512)) "$W/src.raw" >odd.raw
	qemu-io -f raw -c "write -P 0x5e $((5 * M)) $((7 * 1024 + 512))" odd.raw >/dev/null
	qemu-img convert -c -f raw -O qcow2 -o "$1" odd.raw img.qcow2
	verify img.qcow2
}

# raw (3M) <- qcow2 v3 4K clusters (6M) <- qcow2 v3 64K (8M+3 sectors):
# each backing file is shorter than the image above it.
t_chain_raw_short() {
	head -c $((3 * M)) "$W/src.raw" >base.raw
	qemu-img create -q -f qcow2 -o cluster_size=4096 -b base.raw -F raw mid.qcow2 6M
	qemu-io -f qcow2 -c "write -P 0x11 $((1 * M + 512)) 3000" \
		-c "write -z $((2 * M)) $((256 * 1024))" \
		-c "write -z -u $((2 * M + 512 * 1024)) 65536" \
		-c "write -s $W/rnd $((2 * M + 1024)) $((2 * M))" \
		-c "write -P 0x12 $((5 * M)) $((1 * M))" mid.qcow2
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 "$SRC_SIZE"
	qemu-io -f qcow2 -c "write -P 0x21 $((512 * 1024 + 512)) 1024" \
		-c "write -z $((2 * M + 128 * 1024)) $((128 * 1024))" \
		-c "write -z $((3 * M + 65536)) 65536" \
		-c "write -P 0x22 $((5 * M + 4096)) 4096" \
		-c "write -P 0x23 $((7 * M)) 4096" \
		-c "write -P 0x24 $((SRC_SIZE - 512)) 512" top.qcow2
	verify top.qcow2 2
}

# qcow2 v2 compressed (64K, 3M) <- qcow2 v3 extended L2 (32K, 6M) <-
# qcow2 v3 2M clusters.
t_chain_qcow2() {
	head -c $((3 * M)) "$W/src.raw" >b.raw
	qemu-img convert -c -f raw -O qcow2 -o compat=0.10 b.raw base.qcow2
	rm b.raw
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=32k \
		-b base.qcow2 -F qcow2 mid.qcow2 6M
	qemu-io -f qcow2 -c "write -P 0x31 $((32 * 1024 + 1024)) 1024" \
		-c "write -z $((64 * 1024 + 3 * 1024)) 2048" \
		-c "write -z $((2 * M)) $((96 * 1024))" \
		-c "write -P 0x32 $((3 * M - 1024)) 2048" mid.qcow2
	qemu-img create -q -f qcow2 -o cluster_size=2M -b mid.qcow2 -F qcow2 top.qcow2 "$SRC_SIZE"
	qemu-io -f qcow2 -c "write -P 0x41 $((2 * M + 4096)) 4096" \
		-c "write -z $((3 * M + 32 * 1024)) 4096" \
		-c "write -P 0x42 $((7 * M)) 4096" top.qcow2
	verify top.qcow2 2
}

# raw (8M) <- qcow2 (6M) <- qcow2 (4M): backing files longer than the
# image above them; only the top's 4M show.
t_chain_long_backing() {
	cp "$W/src.raw" base.raw
	qemu-img create -q -f qcow2 -o cluster_size=65536 -b base.raw -F raw mid.qcow2 6M
	qemu-io -f qcow2 -c "write -P 0x51 $((1 * M)) 4096" \
		-c "write -z $((3 * M + 512)) 1024" mid.qcow2
	qemu-img create -q -f qcow2 -o cluster_size=4096 -b mid.qcow2 -F qcow2 top.qcow2 4M
	qemu-io -f qcow2 -c "write -P 0x52 $((4 * M - 512)) 512" \
		-c "write -z 0 4096" top.qcow2
	verify top.qcow2 2
}

# extl2 CLUSTER [BACKING]: extended L2 entries; writes that touch single
# subclusters, write -z on subclusters, zero subclusters in an allocated
# cluster, a zeroed (unmapped) cluster; over a raw backing file or not.
t_extl2() {
	local c=$1 s=$(($1 / 32)) b=() size=$SRC_SIZE
	# room for the writes below (10 clusters), not a cluster multiple
	[ "$size" -gt $((10 * c)) ] || size=$((10 * c + 1536))
	if [ "${2:-}" = backing ]; then
		cp "$W/src.raw" base.raw
		b=(-b base.raw -F raw)
	fi
	qemu-img create -q -f qcow2 -o "extended_l2=on,cluster_size=$c" "${b[@]}" \
		img.qcow2 "$size"
	qemu-io -f qcow2 -c "write -P 0x61 $((c + 3 * s)) $s" \
		-c "write -P 0x62 $((2 * c + 31 * s)) $s" \
		-c "write -P 0x63 $((2 * c + 5 * s + 512)) 512" \
		-c "write -z $((3 * c + 7 * s)) $s" \
		-c "write -z $((c + 4 * s)) $((2 * s))" \
		-c "write -P 0x64 $((4 * c - s)) $((2 * s))" \
		-c "write -P 0x65 $((6 * c)) $c" \
		-c "write -z $((6 * c + 9 * s)) $s" \
		-c "write -z -u $((8 * c)) $c" \
		-c "write -s $W/rnd $((6 * M + 3 * s)) $((5 * s))" \
		-c "write -P 0x66 $((size - 512)) 512" img.qcow2
	verify img.qcow2 "$([ ${#b[@]} -eq 0 ] && echo 0 || echo 1)"
}

# extl2_prealloc: extended L2 with preallocation=metadata, then writes.
t_extl2_prealloc() {
	local c=65536 s=2048
	qemu-img create -q -f qcow2 -o extended_l2=on,preallocation=metadata img.qcow2 8M
	qemu-io -f qcow2 -c "write -P 0x71 $((c + s)) $s" \
		-c "write -z $((2 * c)) $s" \
		-c "write -P 0x72 $((5 * M)) $((3 * s))" img.qcow2
	verify img.qcow2
}

# prealloc MODE: preallocation=MODE, then writes and zeros.
t_prealloc() {
	qemu-img create -q -f qcow2 -o "preallocation=$1" img.qcow2 8M
	qemu-io -f qcow2 -c "write -P 0x81 $((1 * M + 512)) 8192" \
		-c "write -s $W/rnd $((4 * M)) $((1 * M))" \
		-c "write -z $((4 * M + 65536)) 65536" \
		-c "write -P 0x82 $((8 * M - 512)) 512" img.qcow2
	verify img.qcow2
}

# Zero clusters over data: write -z keeps the allocation (zero flag on an
# allocated cluster), write -z -u unmaps, discard deallocates; partial
# cluster zeroing writes zeros.
t_zeros() {
	qemu-img create -q -f qcow2 img.qcow2 "$SRC_SIZE"
	qemu-img convert -n -f raw -O qcow2 "$W/src.raw" img.qcow2
	qemu-io -f qcow2 -c "write -z $((1 * M)) $((256 * 1024))" \
		-c "write -z -u $((3 * M)) $((192 * 1024))" \
		-c "discard $((5 * M)) $((128 * 1024))" \
		-c "write -z $((6 * M + 4096)) 12288" \
		-c "write -z $((SRC_SIZE - 65536 - 1536)) 65536" img.qcow2
	qemu-img map img.qcow2 | head -n 20
	verify img.qcow2
}

# Zeros in an overlay must hide the backing file's data.
t_zeros_over_backing() {
	cp "$W/src.raw" base.raw
	qemu-img create -q -f qcow2 -b base.raw -F raw img.qcow2 "$SRC_SIZE"
	qemu-io -f qcow2 -c "write -z 0 $((1 * M))" \
		-c "write -z -u $((3 * M)) $((192 * 1024))" \
		-c "write -P 0x91 $((5 * M)) 65536" \
		-c "discard $((5 * M)) 65536" \
		-c "write -z $((6 * M + 4096)) 12288" \
		-c "write -z $((SRC_SIZE - 512)) 512" img.qcow2
	verify img.qcow2 1
	# the zeros really are there and really hide data
	[ "$(head -c $((1 * M)) base.raw | tr -d '\0' | wc -c)" -gt 0 ] ||
		die "the backing file has no data under the zeroed range"
}

# snapshots COMPAT: internal snapshots; the active state differs from them.
t_snapshots() {
	qemu-img create -q -f qcow2 -o "compat=$1" img.qcow2 "$SRC_SIZE"
	qemu-img convert -n -f raw -O qcow2 "$W/src.raw" img.qcow2
	qemu-img snapshot -c s1 img.qcow2
	qemu-io -f qcow2 -c "write -P 0xd1 $((1 * M)) $((1 * M))" \
		-c "write -z $((6 * M)) $((128 * 1024))" \
		-c "discard $((5 * M)) 65536" img.qcow2
	qemu-img snapshot -c s2 img.qcow2
	qemu-io -f qcow2 -c "write -P 0xd2 $((1 * M + 4096)) 4096" \
		-c "write -P 0xd3 $((7 * M)) 65536" img.qcow2
	qemu-img snapshot -l img.qcow2
	verify img.qcow2
	[ "$(qemu-img snapshot -l img.qcow2 | grep -c -E '^[0-9]+ +s[12] ')" -eq 2 ] ||
		die "the image does not list snapshots s1 and s2"
}

# Virtual size 4M - 100: not a multiple of 512.  qemu rounds the size down
# to a sector (qemu-img convert makes 4M - 512 bytes); the device has
# ceil(size / 512) sectors, and its last sector holds the image's last 412
# bytes followed by 100 zeros: nothing past the virtual size is exposed.
t_odd_size() {
	local size=$((4 * M - 100)) a b
	qemu-img create -q -f qcow2 img.qcow2 4M
	qemu-io -f qcow2 -c "write -s $W/rnd 0 $((4 * M - 65536))" \
		-c "write -P 0x44 $((4 * M - 65536)) 65536" img.qcow2
	# shellcheck disable=SC2059
	printf "$(printf '%016x' "$size" | sed 's/../\\x&/g')" |
		dd of=img.qcow2 bs=1 seek=24 conv=notrunc status=none
	qemu-img info img.qcow2 | grep 'virtual size'
	qemu-img convert -f qcow2 -O raw img.qcow2 ref.raw
	[ "$(stat -c %s ref.raw)" -eq $((4 * M - 512)) ] ||
		die "qemu-img converted $(stat -c %s ref.raw) bytes, expected 4M - 512"
	attach img.qcow2
	[ "$(cat "$sys/virtual_size")" -eq "$size" ] || die "sysfs virtual_size is not $size"
	[ "$(blockdev --getsize64 "$dev")" -eq $((4 * M)) ] ||
		die "$dev is $(blockdev --getsize64 "$dev") bytes, want 4M (size rounded up)"
	a=$(head -c $((4 * M - 512)) "$dev" | sha)
	b=$(sha <ref.raw)
	[ "$a" = "$b" ] || die "the first 4M - 512 bytes differ from qemu-img convert"
	for how in buffered direct; do
		if [ $how = direct ]; then
			dd if="$dev" of=last.bin bs=512 skip=$((size / 512)) count=1 \
				iflag=direct status=none
		else
			tail -c 512 "$dev" >last.bin
		fi
		a=$(head -c 412 last.bin | bytes)
		b=$(tail -c 100 last.bin | bytes)
		echo "$how: last sector: 412 bytes of $a, then 100 bytes of $b"
		[ "$a" = 44 ] || die "$how read: the last 412 bytes of the disk are not 0x44 ($a)"
		[ "$b" = 00 ] || die "$how read: the 100 bytes past the virtual size read as $b, want zeros"
	done
	detach
}

# 1 TiB virtual, 64K clusters: read a few ranges with dd and compare them
# with qemu-img convert of the same range (raw driver offset/size).
t_sparse_1t() {
	local size=$((1024 * G)) off len a b
	qemu-img create -q -f qcow2 img.qcow2 1T
	qemu-io -f qcow2 -c "write -P 0xe1 0 65536" \
		-c "write -s $W/rnd $((3 * G - 131072)) 262144" \
		-c "write -P 0xe2 $((512 * G)) $((1 * M))" \
		-c "write -z $((512 * G + 65536)) 65536" \
		-c "write -s $W/rnd $((700 * G + 512)) 200000" \
		-c "write -P 0xe3 $((size - 512)) 512" img.qcow2
	attach img.qcow2
	[ "$(blockdev --getsize64 "$dev")" -eq "$size" ] || die "$dev is not 1 TiB"
	for r in 0:$((1 * M)) $((3 * G - 1 * M)):$((2 * M)) $((512 * G)):$((2 * M)) \
		 $((700 * G)):$((1 * M)) $((size - 2 * M)):$((2 * M)); do
		off=${r%:*}
		len=${r#*:}
		qemu-img convert --image-opts -O raw \
			"driver=raw,offset=$off,size=$len,file.driver=qcow2,file.file.filename=img.qcow2" \
			range.raw
		a=$(sha <range.raw)
		b=$(dd if="$dev" bs=64k iflag=direct,skip_bytes,count_bytes skip="$off" \
			count="$len" status=none | sha)
		[ "$a" = "$b" ] || die "range $off+$len: device sha256 $b, qemu $a"
		echo "range $off+$len matches"
	done
	# the patterns are where they were written
	! qemu-io -f qcow2 -c "read -P 0xe3 $((size - 512)) 512" img.qcow2 |
		grep 'verification failed' || die "qemu-io does not read the last sector back"
	[ "$(dd if="$dev" bs=512 skip=$((size / 512 - 1)) count=1 iflag=direct status=none |
	     bytes)" = e3 ] || die "last sector is not 0xe3"
	[ "$(cat "$sys/corrupt")" = 0 ] || die "$dev was marked corrupt"
	detach
}

qcow_load

# (v2 with 512-byte and 64K clusters: see the compressed and chain cases)
case_ v2-c4k t_std "compat=0.10,cluster_size=4K"
case_ v2-c2m t_std "compat=0.10,cluster_size=2M"
for c in 512 4K 64K 2M; do
	case_ "v3-c${c,,}" t_std "compat=1.1,cluster_size=$c"
done
case_ zlib-c512-v2 t_compressed "compat=0.10,cluster_size=512" $((512 * 1024 + 512))
case_ zlib-c4k t_compressed "cluster_size=4096" $((3 * M))
case_ zlib-c64k-v2 t_compressed "compat=0.10"
case_ zlib-c2m t_compressed "cluster_size=2M"
case_ zstd-c4k t_compressed "compression_type=zstd,cluster_size=4096" $((3 * M))
case_ zstd-c64k t_compressed "compression_type=zstd"
case_ zstd-c2m t_compressed "compression_type=zstd,cluster_size=2M"
case_ zstd-extl2-c64k t_compressed "compression_type=zstd,extended_l2=on"
case_ zlib-odd-size t_compressed_odd "cluster_size=65536"
case_ zstd-odd-size-c2m t_compressed_odd "compression_type=zstd,cluster_size=2M"
case_ chain-raw-shorter t_chain_raw_short
case_ chain-qcow2-extl2-compressed t_chain_qcow2
case_ chain-longer-backing t_chain_long_backing
case_ extl2-c32k-backing t_extl2 32768 backing
case_ extl2-c64k t_extl2 65536
case_ extl2-c64k-backing t_extl2 65536 backing
case_ extl2-c2m-backing t_extl2 2097152 backing
case_ extl2-prealloc-metadata t_extl2_prealloc
case_ prealloc-metadata t_prealloc metadata
case_ prealloc-falloc t_prealloc falloc
case_ prealloc-full t_prealloc full
case_ zero-clusters t_zeros
case_ zeros-over-backing t_zeros_over_backing
case_ snapshots-v3 t_snapshots 1.1
case_ snapshots-v2 t_snapshots 0.10
case_ size-not-sector-multiple t_odd_size
case_ sparse-1t t_sparse_1t
report
qcow_unload

cd /
rm -rf "$W"
echo "read-matrix: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
