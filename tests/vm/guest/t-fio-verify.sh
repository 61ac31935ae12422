#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Concurrent readers with data verification.  fio writes a raw file whose
# every 4 KiB block carries a verify header (its own offset and a crc32c of
# the block); qemu-img turns it into qcow2 images of several shapes; the
# images are attached read-only and two fio jobs (libaio, O_DIRECT, iodepth
# 32, random 4K..128K reads aligned to 4K) each read the whole disk once in
# random order, verifying every block against its header.  A verify error, an I/O error or a job that read
# nothing fails the case.  The L2 cache counters in /sys/block/qcowN/qcow/
# must have moved.
#
#   plain-c64k          qcow2 v3, 64K clusters (contiguous: the fast path)
#   compressed-zstd     every compressible cluster compressed (zstd)
#   chain-extl2         the data split between a zlib-compressed v2
#                       backing file and an extended-L2 overlay holding
#                       4K-aligned ranges (partial clusters: subclusters
#                       fall through to the backing file)
#   small-cache-c512    512-byte clusters with a 64 KiB L2 cache: slices
#                       are evicted and reloaded under the two readers
#   negative-control    one block changed: the same verification must fail
#
# Prints "PASS fio-verify/<case>" or "FAIL fio-verify/<case>"; exits 1 if
# any failed.
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
command -v fio >/dev/null || fail "fio is not installed"
W=$QCOW_SCRATCH/fio-verify
rm -rf "$W"
mkdir -p "$W"
cd "$W"
CHECK_GROUP=fio-verify
CHECK_LOG=$W/check.log
CHECK_SHOW=always	# fio's numbers are worth seeing

check_after() {
	"$QCOW_CTL" detach -a >/dev/null 2>&1 || true
}

M=$((1024 * 1024))
K=1024
SIZE=$((32 * M))

# attach IMAGE [qcowctl options]: sets $dev and $sys.
attach() {
	local img=$1
	shift
	dev=$("$QCOW_CTL" attach -r "$@" "$img") || die "qcowctl attach -r $* $img failed"
	sys=/sys/block/${dev#/dev/}/qcow
	echo "attached $img as $dev (cache $(cat "$sys/cache_size") bytes)"
}

counters() { echo "$(cat "$sys/cache_hits") $(cat "$sys/cache_misses")"; }

# fio_verify DEV [fio options]: the two random readers with verification;
# fails unless both jobs read the whole disk and saw no error.
fio_verify() {
	local d=$1 rc=0
	shift
	timeout 300 fio --name=verify --filename="$d" --size="$SIZE" \
		--rw=randread --bsrange=4k-128k --blockalign=4k \
		--verify=crc32c --verify_interval=4k --verify_fatal=1 \
		--ioengine=libaio --iodepth=32 --direct=1 --numjobs=2 \
		--output-format=json --output=fio.json "$@" 2>fio.err || rc=$?
	head -n 5 fio.err
	[ -s fio.json ] || die "fio wrote no report (exit $rc)"
	jq -r '.jobs | to_entries[] | "job \(.key): error \(.value.error), read \(.value.read.io_bytes) bytes in \(.value.read.total_ios) I/Os"' fio.json
	[ "$rc" -eq 0 ] || die "fio exited with $rc"
	jq -e --argjson size "$SIZE" \
		'[.jobs[] | select(.error != 0 or .read.io_bytes != $size)] | length == 0' \
		fio.json >/dev/null || die "a fio job failed or did not read the whole disk"
	[ "$(jq '.jobs | length' fio.json)" -eq 2 ] || die "want 2 fio jobs"
}

# verify_image IMAGE [qcowctl options]: attach, verify, check the counters.
verify_image() {
	local before after
	attach "$@"
	[ "$(blockdev --getsize64 "$dev")" -eq "$SIZE" ] || die "$dev has the wrong size"
	before=$(counters)
	fio_verify "$dev"
	after=$(counters)
	echo "cache hits/misses: before $before, after $after"
	[ "${after% *}" -gt "${before% *}" ] || die "cache_hits did not move"
	[ "${after#* }" -gt 0 ] || die "cache_misses is 0"
	[ "$(cat "$sys/corrupt")" = 0 ] || die "$dev was marked corrupt"
	"$QCOW_CTL" detach "$dev"
}

step "writing the verify pattern"
# Compressible buffers (60%) so that qemu-img convert -c really compresses.
fio --name=fill --filename=pat.raw --size="$SIZE" --rw=write --bs=4k \
	--verify=crc32c --do_verify=0 --buffer_compress_percentage=60 \
	--refill_buffers --output=/dev/null || fail "fio could not write the pattern"
# sanity: the pattern verifies on the raw file itself
fio --name=check --filename=pat.raw --size="$SIZE" --rw=read --bs=128k \
	--verify=crc32c --verify_interval=4k --verify_fatal=1 --output=/dev/null ||
	fail "the raw pattern does not verify"

t_plain() {
	qemu-img convert -f raw -O qcow2 pat.raw plain.qcow2
	verify_image plain.qcow2
}

t_compressed() {
	qemu-img convert -c -f raw -O qcow2 -o compression_type=zstd pat.raw comp.qcow2
	qemu-img info comp.qcow2 | grep 'disk size'
	verify_image comp.qcow2
}

# Ranges (offset:length, 4K aligned) that only the overlay holds.
TOP_RANGES="$((1 * M)):$((8 * K)) $((5 * M + 4 * K)):$((60 * K)) $((9 * M)):$((256 * K))
	$((17 * M + 12 * K)):$((4 * K)) $((23 * M + 28 * K)):$((100 * K)) $((31 * M)):$((1 * M))"

t_chain() {
	local r off len
	local -a damage=()
	cp pat.raw b.raw
	for r in $TOP_RANGES; do
		damage+=(-c "write -P 0xee ${r%:*} ${r#*:}")
	done
	qemu-io -f raw "${damage[@]}" b.raw >/dev/null
	qemu-img convert -c -f raw -O qcow2 -o compat=0.10 b.raw base.qcow2
	rm b.raw
	qemu-img create -q -f qcow2 -o extended_l2=on -b base.qcow2 -F qcow2 top.qcow2 "$SIZE"
	for r in $TOP_RANGES; do
		off=${r%:*}
		len=${r#*:}
		dd if=pat.raw of=chunk bs=4k skip=$((off / 4096)) count=$((len / 4096)) status=none
		qemu-io -f qcow2 -c "write -s chunk $off $len" top.qcow2 >/dev/null
	done
	rm chunk
	qemu-img compare -f qcow2 -F raw top.qcow2 pat.raw
	! qemu-img compare -q -f qcow2 -F raw base.qcow2 pat.raw ||
		die "the backing file alone already holds the pattern"
	verify_image top.qcow2
}

t_small_cache() {
	local misses
	qemu-img convert -f raw -O qcow2 -o cluster_size=512 pat.raw c512.qcow2
	verify_image c512.qcow2 --cache-size 64K
	# 32 MiB in 512-byte clusters: 1024 L2 tables of 512 bytes, one
	# slice each; a 64 KiB cache holds at most 128, so two sequential
	# passes miss every slice both times
	attach c512.qcow2 --cache-size 64K
	[ "$(cat "$sys/cache_size")" -eq 65536 ] || die "cache_size is not 64K"
	dd if="$dev" of=/dev/null bs=1M iflag=direct status=none
	dd if="$dev" of=/dev/null bs=1M iflag=direct status=none
	misses=$(cat "$sys/cache_misses")
	echo "two sequential passes: $(counters)"
	[ "$misses" -ge 2048 ] || die "only $misses cache misses for two passes over 1024 slices"
	"$QCOW_CTL" detach "$dev"
}

# The same verification must catch one changed block.
t_negative() {
	local rc=0
	qemu-img convert -f raw -O qcow2 pat.raw neg.qcow2
	qemu-io -f qcow2 -c "write -P 0x5a $((7 * M + 4 * K)) 512" neg.qcow2 >/dev/null
	attach neg.qcow2
	fio --name=neg --filename="$dev" --size="$SIZE" --rw=read --bs=128k \
		--verify=crc32c --verify_interval=4k --verify_fatal=1 \
		--ioengine=libaio --iodepth=32 --direct=1 --output=/dev/null \
		2>fio.err || rc=$?
	head -n 3 fio.err
	[ "$rc" -ne 0 ] || die "fio did not notice the changed block"
	grep -q "at file $dev offset $((7 * M + 4 * K))," fio.err ||
		die "fio did not report the changed block at $((7 * M + 4 * K))"
	"$QCOW_CTL" detach "$dev"
}

check load qcow_load
[ "$nfail" -eq 0 ] || fail "the module does not load"
check plain-c64k t_plain
check compressed-zstd t_compressed
check chain-extl2 t_chain
check small-cache-c512 t_small_cache
check negative-control t_negative
check unload qcow_unload

cd /
rm -rf "$W"
echo "fio-verify: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
