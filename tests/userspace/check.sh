#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Offline inspection tests: qcowctl check, dump and map against qemu-img,
# on images the real qemu-img makes (no module, no VM).
#
#  check  clean images of many shapes (v2/v3, 512 B..2 MiB clusters,
#         refcount widths 1..64, extended L2, compressed, zstd, snapshots
#         sharing L2 tables, backing files, metadata preallocation, lazy
#         refcounts, bitmaps, external data file), leaky ones (refcounts
#         bumped, a crashed lazy-refcount writer) and corrupted ones (a
#         refcount too low, an L2 entry into the L1 table, wrong COPIED
#         flags, offsets past the end of the file, two L1 entries sharing an
#         L2 table, bad compressed descriptors, subcluster bitmaps, reserved
#         bits, unaligned tables, refcount overflow): `qcowctl check --json`
#         must give qemu-img check's exit status and numbers (corruptions,
#         leaks, check-errors, image-end-offset, total/allocated/
#         fragmented/compressed clusters) and the same summary sentences;
#         `check -r leaks` must leave an image qemu-img check finds clean;
#  map    `qcowctl map --json` must equal `qemu-img map --output=json`
#         (both parsed, runs as qemu-img merges them), and the human
#         output must equal qemu-img's where qemu-img can print one;
#  dump   header fields equal `qemu-img info`'s, and the host cluster map
#         accounts for every cluster whose stored refcount is not zero.
#
# Damage is done by qcow2poke.py, an independent Python reading of the
# format.  Appends "PASS|FAIL userspace/<case>" lines to $QCOW_RESULTS;
# exits non-zero if a case failed.  QCOWCTL names the binary to test
# (default: the sanitized build, made if missing); QCOW_KEEP=1 keeps the
# work directory.  Needs qemu-img, qemu-io, jq and python3.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ -z "${QCOW_RESULTS:-}" ]; then
	QCOW_RESULTS=$top/build/results-userspace-check.txt
	mkdir -p "$(dirname "$QCOW_RESULTS")"
	: > "$QCOW_RESULTS"
fi

suite=userspace
failures=0

pass() {
	echo "PASS $suite/$1" | tee -a "$QCOW_RESULTS"
}

fail() {
	local name=$1
	shift
	echo "FAIL $suite/$name" | tee -a "$QCOW_RESULTS"
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" | sed 's/^/    /'
	fi
	failures=$((failures + 1))
}

for tool in qemu-img qemu-io jq python3; do
	if ! command -v "$tool" >/dev/null; then
		fail check-prerequisites "missing $tool (scripts/install-deps.sh installs it)"
		exit 1
	fi
done

if [ -z "${QCOWCTL:-}" ]; then
	QCOWCTL=$top/build/userspace-san/qcowctl
	make -s -C "$top/userspace" SANITIZE=1 >/dev/null
fi
if [ ! -x "$QCOWCTL" ]; then
	fail check-prerequisites "$QCOWCTL is missing"
	exit 1
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:exitcode=86:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:exitcode=86}

work=$(mktemp -d "${TMPDIR:-/tmp}/qcow-ucheck.XXXXXX")
if [ -n "${QCOW_KEEP:-}" ]; then
	trap 'echo "check: kept $work"' EXIT
else
	trap 'rm -rf "$work"' EXIT
fi
cd "$work"

# --- helpers ----------------------------------------------------------------

mk() {
	local name=$1 size=$2
	shift 2
	qemu-img create -q -f qcow2 ${1:+-o "$1"} "$name.qcow2" "$size"
}

io() {
	local img=$1 c args=()
	shift
	for c in "$@"; do
		args+=(-c "$c")
	done
	qemu-io -f qcow2 "${args[@]}" "$img" >/dev/null
}

poke() {
	python3 "$here/qcow2poke.py" "$@" >/dev/null
}

# pokeval IMG ARGS...: print what qcow2poke.py reads
pokeval() {
	python3 "$here/qcow2poke.py" "$@"
}

# Some data in a few places: contiguous, sparse, zero, rewritten.
fill() {
	local img=$1 size=$2
	io "$img" 'write -P 0x11 0 300k' "write -P 0x22 $((size / 2)) 64k" \
		"write -z $((size / 4)) 128k" "write -P 0x33 $((size - 64 * 1024)) 64k"
}

# The numbers both tools must agree on (qemu-img leaves out zeros).
numbers='{
	"check-errors": (."check-errors" // 0),
	corruptions: (.corruptions // 0),
	leaks: (.leaks // 0),
	"image-end-offset": (."image-end-offset" // 0),
	"total-clusters": (."total-clusters" // 0),
	"allocated-clusters": (."allocated-clusters" // 0),
	"fragmented-clusters": (."fragmented-clusters" // 0),
	"compressed-clusters": (."compressed-clusters" // 0)
}'

fixed_numbers="$numbers"' + {
	"leaks-fixed": (."leaks-fixed" // 0),
	"corruptions-fixed": (."corruptions-fixed" // 0)
}'

# The summary sentences of the human output.
summary() {
	grep -E '^(No errors were found on the image\.|[0-9]+ errors were found on the image\.|[0-9]+ leaked clusters were found on the image\.)$' "$1" || true
}

# same_check CASE IMAGE WANT: qemu-img check exits WANT on IMAGE (so the
# damage is real) and qcowctl check agrees with it on status and numbers.
same_check() {
	local case=check-$1 img=$2 want=$3 qrc=0 crc=0 diffs

	qemu-img check --output=json "$img" >q.json 2>q.err || qrc=$?
	"$QCOWCTL" check --json "$img" >c.json 2>c.err || crc=$?
	if [ "$qrc" -ne "$want" ]; then
		fail "$case" "qemu-img check exited $qrc, the test expects $want" \
			"$(head -n 5 q.err)"
		return
	fi
	if [ "$crc" -ne "$qrc" ]; then
		fail "$case" "qcowctl check exited $crc, qemu-img check $qrc" \
			"$(head -n 20 c.err)" "qemu-img:" "$(head -n 10 q.err)"
		return
	fi
	if [ -s q.json ]; then
		if ! diffs=$(diff <(jq -S "$numbers" q.json) \
				  <(jq -S "$numbers" c.json)); then
			fail "$case" "numbers differ (< qemu-img, > qcowctl):" \
				"$diffs" "$(head -n 20 c.err)"
			return
		fi
	fi
	qemu-img check "$img" >q.txt 2>/dev/null || true
	"$QCOWCTL" check "$img" >c.txt 2>/dev/null || true
	if ! diffs=$(diff <(summary q.txt) <(summary c.txt)); then
		fail "$case" "summary lines differ:" "$diffs"
		return
	fi
	pass "$case"
}

# --- clean images -----------------------------------------------------------

clean() {
	local name=$1 size=$2 opts=${3:-}
	mk "$name" "$size" "$opts"
	fill "$name.qcow2" "$(numfmt --from=iec "$size")"
	same_check "$name" "$name.qcow2" 0
}

clean v2 64M compat=0.10
clean v3 64M
clean cluster-512 8M cluster_size=512
clean cluster-4k 64M cluster_size=4k
clean cluster-2m 256M cluster_size=2M
clean refcount-1 64M refcount_bits=1
clean refcount-2 64M refcount_bits=2
clean refcount-4 64M refcount_bits=4
clean refcount-8 64M refcount_bits=8
clean refcount-32 64M refcount_bits=32
clean refcount-64 64M refcount_bits=64
clean refcount-64-c512 8M refcount_bits=64,cluster_size=512
clean extended-l2 64M extended_l2=on,cluster_size=32k
clean extended-l2-2m 256M extended_l2=on,cluster_size=2M
clean lazy-refcounts 64M lazy_refcounts=on
clean zstd 64M compression_type=zstd
clean prealloc-metadata 64M preallocation=metadata
clean prealloc-falloc 16M preallocation=falloc
clean data-file 64M data_file=data-file.data

mk compressed-src 64M
fill compressed-src.qcow2 $((64 << 20))
qemu-img convert -c -O qcow2 compressed-src.qcow2 compressed.qcow2
same_check compressed compressed.qcow2 0
qemu-img convert -c -O qcow2 -o compression_type=zstd,cluster_size=4k \
	compressed-src.qcow2 compressed-zstd-4k.qcow2
same_check compressed-zstd-4k compressed-zstd-4k.qcow2 0

# Snapshots share L2 tables and data clusters with the active state; a
# deleted one leaves refcounts > 1 behind that must still add up.
mk snapshots 64M
fill snapshots.qcow2 $((64 << 20))
qemu-img snapshot -c one snapshots.qcow2
io snapshots.qcow2 'write -P 0x44 64k 64k' 'write -P 0x45 40M 1M'
qemu-img snapshot -c two snapshots.qcow2
qemu-img snapshot -c three snapshots.qcow2
qemu-img snapshot -d two snapshots.qcow2
io snapshots.qcow2 'write -P 0x46 0 8k'
same_check snapshots snapshots.qcow2 0

mk snapshots-v2 64M compat=0.10
fill snapshots-v2.qcow2 $((64 << 20))
qemu-img snapshot -c s1 snapshots-v2.qcow2
io snapshots-v2.qcow2 'write -P 0x47 0 64k'
same_check snapshots-v2 snapshots-v2.qcow2 0

mk snapshots-extl2 64M extended_l2=on,cluster_size=64k
io snapshots-extl2.qcow2 'write -P 0x48 0 12k' 'write -P 0x49 1M 100k'
qemu-img snapshot -c s1 snapshots-extl2.qcow2
io snapshots-extl2.qcow2 'write -P 0x4a 4k 4k'
same_check snapshots-extl2 snapshots-extl2.qcow2 0

mk base 64M
fill base.qcow2 $((64 << 20))
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2 128M
io overlay.qcow2 'write -P 0x55 32k 8k' 'write -P 0x56 100M 64k'
same_check backing overlay.qcow2 0

mk bitmaps 64M
fill bitmaps.qcow2 $((64 << 20))
qemu-img bitmap --add bitmaps.qcow2 bm0
qemu-img bitmap --add -g 128k bitmaps.qcow2 'bm 1'
# a bitmap with dirty bits has data clusters of its own
qemu-img bitmap --add -g 512 bitmaps.qcow2 bm2
qemu-img bitmap --merge bm2 -b base.qcow2 -F qcow2 bitmaps.qcow2 bm2 2>/dev/null || true
same_check bitmaps bitmaps.qcow2 0

# bitmaps written through: qemu-io loads the enabled bitmaps, writes dirty
# them, and closing stores their tables and data clusters
io bitmaps.qcow2 'write -P 0x57 1M 2M'
same_check bitmaps-dirty bitmaps.qcow2 0

# --- leaks ------------------------------------------------------------------

# damaged NAME: a fresh copy of the v3 image to damage, cluster size 64k
damaged() {
	cp v3.qcow2 "$1.qcow2"
}

# the cluster index of the host offset of guest byte GUEST
data_cluster() {
	echo $(($(pokeval "$1" data-offset "$2") / 65536))
}

# the header cluster: no COPIED flag depends on its refcount
damaged leak-one
poke leak-one.qcow2 refcount 0 add 1
same_check leak-one leak-one.qcow2 3

# refcounts on clusters nothing references, inside and past the file end
# (past the end qemu-img looks no further than the file: not leaks)
damaged leak-unused
size=$(stat -c %s leak-unused.qcow2)
truncate -s $((size + 3 * 65536)) leak-unused.qcow2
poke leak-unused.qcow2 refcount $((size / 65536 + 1)) set 1
poke leak-unused.qcow2 refcount $((size / 65536 + 2)) set 2
poke leak-unused.qcow2 refcount $((size / 65536 + 5)) set 1
same_check leak-unused leak-unused.qcow2 3

damaged leak-l2
poke leak-l2.qcow2 refcount $(($(pokeval leak-l2.qcow2 l2-offset 0) / 65536)) add 1
same_check leak-l2 leak-l2.qcow2 2	# the L1 entry's COPIED flag is now wrong

# A writer with lazy refcounts that dies: refcounts never written.
mk lazy-crash 64M lazy_refcounts=on
(ulimit -c 0; qemu-io -f qcow2 -c 'write -P 1 0 1M' -c 'write -P 2 10M 64k' \
	-c abort lazy-crash.qcow2 || true) >/dev/null 2>&1
same_check lazy-crash lazy-crash.qcow2 2

# A crash after the refcounts of new clusters reached the disk but before
# the L2 entries that use them did: refcounts without references.
damaged crash-leak
io crash-leak.qcow2 'write -P 0x66 5M 256k'
for g in 0x500000 0x510000 0x520000 0x530000; do
	poke crash-leak.qcow2 l2 $g set 0
done
same_check crash-leak crash-leak.qcow2 3

# --- corruption -------------------------------------------------------------

damaged refcount-low
poke refcount-low.qcow2 refcount "$(data_cluster refcount-low.qcow2 0x10000)" set 0
same_check refcount-low refcount-low.qcow2 2

damaged l2-into-l1
l1=$(pokeval l2-into-l1.qcow2 header | awk '{print $4}')
poke l2-into-l1.qcow2 l2 0x20000 set $((0x8000000000000000 | l1))
same_check l2-into-l1 l2-into-l1.qcow2 2

damaged copied-clear
poke copied-clear.qcow2 l2 0 andnot 0x8000000000000000
same_check copied-clear copied-clear.qcow2 2

damaged copied-l1
poke copied-l1.qcow2 l1 0 andnot 0x8000000000000000
same_check copied-l1 copied-l1.qcow2 2

cp snapshots.qcow2 copied-shared.qcow2
poke copied-shared.qcow2 l2 $((40 << 20)) or 0x8000000000000000
poke copied-shared.qcow2 l1 0 or 0x8000000000000000
same_check copied-shared copied-shared.qcow2 2

damaged past-eof
poke past-eof.qcow2 l2 0x10000 set $((0x8000000000000000 | 1 << 30))
same_check past-eof past-eof.qcow2 2

damaged past-eof-zero
poke past-eof-zero.qcow2 l2 0x30000 set $((1 << 30 | 1))
same_check past-eof-zero past-eof-zero.qcow2 2

# 4k clusters: an L1 entry per 2 MiB, so there is a second one to point
cp cluster-4k.qcow2 l2-shared.qcow2
poke l2-shared.qcow2 l1 1 set "$(pokeval l2-shared.qcow2 l1 0)"
same_check l2-shared l2-shared.qcow2 2

damaged unaligned-data
poke unaligned-data.qcow2 l2 0x10000 or 0x1000
same_check unaligned-data unaligned-data.qcow2 2

damaged unaligned-l2
poke unaligned-l2.qcow2 l1 0 or 0x200
same_check unaligned-l2 unaligned-l2.qcow2 2

damaged reserved-l1
poke reserved-l1.qcow2 l1 0 or 0x0100000000000000
same_check reserved-l1 reserved-l1.qcow2 2

# only reserved bits: qemu-img walks the header cluster as the L2 table
cp cluster-4k.qcow2 reserved-only-l1.qcow2
poke reserved-only-l1.qcow2 l1 3 set 8
same_check reserved-only-l1 reserved-only-l1.qcow2 2

# a refcount block past 2^63 - 1 GiB cannot even be read: check errors
damaged reftable-huge
poke reftable-huge.qcow2 reftable 0 set 0xffffffffffff0000
same_check reftable-huge reftable-huge.qcow2 1

damaged reserved-l2
poke reserved-l2.qcow2 l2 0 or 0x2
same_check reserved-l2 reserved-l2.qcow2 2

damaged reserved-reftable
poke reserved-reftable.qcow2 reftable 0 or 0x100
same_check reserved-reftable reserved-reftable.qcow2 2

damaged reftable-past-eof
poke reftable-past-eof.qcow2 reftable 1 set $((1 << 34))
same_check reftable-past-eof reftable-past-eof.qcow2 2

damaged refblock-unaligned
poke refblock-unaligned.qcow2 reftable 0 or 0x200
same_check refblock-unaligned refblock-unaligned.qcow2 1

cp compressed.qcow2 compressed-copied.qcow2
poke compressed-copied.qcow2 l2 0 or 0x8000000000000000
same_check compressed-copied compressed-copied.qcow2 2

cp compressed.qcow2 compressed-past-eof.qcow2
poke compressed-past-eof.qcow2 l2 0x10000 set $((0x4000000000000000 | 3 << 54 | 1 << 33 | 0x1234))
same_check compressed-past-eof compressed-past-eof.qcow2 2

cp compressed.qcow2 compressed-header.qcow2
poke compressed-header.qcow2 l2 0x20000 set $((0x4000000000000000 | 0x200))
same_check compressed-header compressed-header.qcow2 2

# an L2 table that is the refcount block: refcounts read as L2 entries
damaged l2-over-refblock
poke l2-over-refblock.qcow2 l1 0 set $((0x8000000000000000 | $(pokeval l2-over-refblock.qcow2 reftable 0)))
same_check l2-over-refblock l2-over-refblock.qcow2 2

# 512-byte clusters: the compressed offset field reaches bit 60
qemu-img convert -c -O qcow2 -o cluster_size=512 compressed-src.qcow2 compressed-c512.qcow2
same_check compressed-c512 compressed-c512.qcow2 0
cp compressed-c512.qcow2 compressed-c512-high.qcow2
poke compressed-c512-high.qcow2 l2 0 or $((1 << 58))
same_check compressed-c512-high compressed-c512-high.qcow2 2

cp snapshots-extl2.qcow2 extl2-alloc-zero.qcow2
poke extl2-alloc-zero.qcow2 l2 0 bitmap 0x0000000300000007
same_check extl2-alloc-zero extl2-alloc-zero.qcow2 2

cp extended-l2.qcow2 extl2-unalloc.qcow2
poke extl2-unalloc.qcow2 l2 0x200000 bitmap 0x1
same_check extl2-unalloc extl2-unalloc.qcow2 2

cp compressed.qcow2 extl2-none.qcow2
same_check compressed-again extl2-none.qcow2 0

# refcount_bits=1: a second reference overflows the refcount
cp refcount-1.qcow2 overflow.qcow2
poke overflow.qcow2 l2 0x10000 set "$(pokeval overflow.qcow2 l2 0)"
same_check refcount-overflow overflow.qcow2 2

# --- repair -------------------------------------------------------------------

# same_repair CASE IMAGE [keep-bits]: `qcowctl check -r leaks` on one copy
# and `qemu-img check -r leaks` on another agree (status, numbers, leaks
# fixed), then qemu-img check finds the same in both copies, and the dirty
# and corrupt bits (byte 79) ended the same -- or with keep-bits, qcowctl
# left them as they were: qemu-img clears the dirty bit when it closes the
# image even if refcounts stay wrong, which qcowctl does not copy.
same_repair() {
	local case=repair-$1 img=$2 bits=${3:-} qrc=0 crc=0 arc=0 brc=0 diffs

	cp "$img" rq.qcow2
	cp "$img" rc.qcow2
	qemu-img check -r leaks --output=json rq.qcow2 >q.json 2>/dev/null || qrc=$?
	"$QCOWCTL" check -r leaks --json rc.qcow2 >c.json 2>c.err || crc=$?
	if [ "$crc" -ne "$qrc" ]; then
		fail "$case" "qcowctl check -r leaks exited $crc, qemu-img $qrc" \
			"$(head -n 10 c.err)"
		return
	fi
	if ! diffs=$(diff <(jq -S "$fixed_numbers" q.json) \
			  <(jq -S "$fixed_numbers" c.json)); then
		fail "$case" "numbers differ (< qemu-img, > qcowctl):" "$diffs"
		return
	fi
	qemu-img check --output=json rq.qcow2 >a.json 2>/dev/null || arc=$?
	qemu-img check --output=json rc.qcow2 >b.json 2>/dev/null || brc=$?
	if [ "$arc" -ne "$brc" ] ||
	   { [ "$qrc" -ne 1 ] && [ "$(jq .leaks b.json)" != null ]; }; then
		fail "$case" "after repair qemu-img check exits $brc (leaks $(jq .leaks b.json)), after its own repair $arc"
		return
	fi
	if ! diffs=$(diff <(jq -S "$numbers" a.json) <(jq -S "$numbers" b.json)); then
		fail "$case" "qemu-img check after the repairs differs:" "$diffs"
		return
	fi
	if [ "$bits" = keep-bits ]; then
		if [ "$(od -An -tx1 -j79 -N1 "$img")" != "$(od -An -tx1 -j79 -N1 rc.qcow2)" ]; then
			fail "$case" "qcowctl changed the incompatible feature bits"
			return
		fi
	elif [ "$(od -An -tx1 -j79 -N1 rq.qcow2)" != "$(od -An -tx1 -j79 -N1 rc.qcow2)" ]; then
		fail "$case" "incompatible feature bits differ after repair"
		return
	fi
	pass "$case"
}

same_repair leak-one leak-one.qcow2
same_repair leak-unused leak-unused.qcow2
same_repair crash-leak crash-leak.qcow2
same_repair l2-into-l1 l2-into-l1.qcow2
same_repair lazy-crash lazy-crash.qcow2 keep-bits
same_repair clean v3.qcow2
same_repair reserved-reftable reserved-reftable.qcow2
same_repair copied-clear copied-clear.qcow2
same_repair copied-l1 copied-l1.qcow2
same_repair copied-shared copied-shared.qcow2
same_repair leak-l2 leak-l2.qcow2

# the dirty bit of lazy refcounts over consistent refcounts: cleared
cp lazy-refcounts.qcow2 lazy-dirty.qcow2
poke lazy-dirty.qcow2 refcount 0 add 1
printf '\x01' | dd of=lazy-dirty.qcow2 bs=1 seek=79 conv=notrunc status=none
same_repair lazy-dirty lazy-dirty.qcow2

# --- map ----------------------------------------------------------------------

# same_map CASE IMAGE: `qcowctl map --json` prints what `qemu-img map
# --output=json` prints (same runs, same bytes), and the human output and
# exit status are the same too.
same_map() {
	local case=map-$1 img=$2 qrc=0 crc=0 diffs b0 b1 _

	# Both tools guess metadata preallocation from the blocks the files
	# have (st_blocks), which moves while delayed allocation settles:
	# settle it first (every file here, backing files included).  An image
	# near QEMU's threshold (refcounts claiming 10/9 of the file's blocks)
	# flips with one block, and which ranges read as holes may settle
	# later still: both tools are functions of the file's bytes and
	# extents, so when they differ both run again on the settled file (a
	# difference that stays is a failure).
	for _ in 1 2 3; do
		sync ./*.qcow2 ./*.raw sub/*.qcow2 2>/dev/null || true
		b0=$(stat -c %b "$img")
		if ! qemu-img map --output=json "$img" >q.json 2>q.err; then
			fail "$case" "qemu-img map failed:" "$(cat q.err)"
			return
		fi
		if ! "$QCOWCTL" map --json "$img" >c.json 2>c.err; then
			fail "$case" "qcowctl map failed:" "$(cat c.err)"
			return
		fi
		b1=$(stat -c %b "$img")
		diffs=$(diff <(jq -c '.[]' q.json) <(jq -c '.[]' c.json)) && break
		sleep 1
	done
	if [ -n "$diffs" ]; then
		fail "$case" "runs differ (< qemu-img, > qcowctl; st_blocks $b0 before, $b1 after):" \
			"$(echo "$diffs" | head -n 20)"
		return
	fi
	if ! cmp -s q.json c.json; then
		fail "$case" "same runs, different bytes:" "$(diff q.json c.json | head)"
		return
	fi
	qemu-img map "$img" >q.txt 2>/dev/null || qrc=$?
	"$QCOWCTL" map "$img" >c.txt 2>c.err || crc=$?
	if [ "$qrc" -ne "$crc" ] || ! diffs=$(diff q.txt c.txt); then
		fail "$case" "human output differs (exit $qrc/$crc):" "${diffs:-}" \
			"$(head -n 3 c.err)"
		return
	fi
	pass "$case"
}

for name in v2 v3 cluster-512 cluster-4k cluster-2m refcount-1 refcount-64 \
	    extended-l2 extended-l2-2m lazy-refcounts zstd prealloc-metadata \
	    prealloc-falloc compressed compressed-zstd-4k snapshots \
	    snapshots-extl2; do
	same_map "$name" "$name.qcow2"
done
same_map backing overlay.qcow2
qemu-img create -q -f qcow2 empty.qcow2 0
same_map empty empty.qcow2
qemu-img create -q -f qcow2 odd-size.qcow2 1000000
io odd-size.qcow2 'write -P 0x60 999000 1000'
same_map odd-size odd-size.qcow2

# A raw backing file with holes, shorter than the image.
truncate -s 3M chain-raw.raw
printf 'raw data' | dd of=chain-raw.raw bs=64k seek=5 conv=notrunc status=none
qemu-img create -q -f qcow2 -b chain-raw.raw -F raw chain-raw.qcow2 8M
io chain-raw.qcow2 'write -P 0x61 64k 64k' 'write -z 128k 64k'
same_map backing-raw chain-raw.qcow2

# Three layers, each shorter than the one above, in a subdirectory (names
# resolved against it), zero clusters and discards at every level.
mkdir -p sub
qemu-img create -q -f qcow2 sub/l0.qcow2 4M
io sub/l0.qcow2 'write -P 0x71 0 1M' 'write -z 1M 64k'
qemu-img create -q -f qcow2 -b l0.qcow2 -F qcow2 sub/l1.qcow2 6M
io sub/l1.qcow2 'write -P 0x72 512k 128k' 'discard 0 64k' 'write -P 0x73 5M 64k'
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k \
	-b l1.qcow2 -F qcow2 sub/l2.qcow2 8M
io sub/l2.qcow2 'write -P 0x74 4k 4k' 'write -P 0x75 520k 8k' 'write -z 2M 16k' \
	'write -P 0x76 7M 64k'
same_map chain-3 sub/l2.qcow2

# Subclusters allocated but not written, with and without a backing file.
qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k subc.qcow2 4M
io subc.qcow2 'write -P 0x77 0 2k' 'write -P 0x78 1M 6k' 'write -z 2M 2k'
same_map subclusters subc.qcow2

# A v2 image over a v2 backing file (no zero clusters).
mk base-v2-src 32M compat=0.10
io base-v2-src.qcow2 'write -P 0x79 0 1M'
qemu-img create -q -f qcow2 -o compat=0.10 -b base-v2-src.qcow2 -F qcow2 \
	v2-over.qcow2 64M
io v2-over.qcow2 'write -P 0x7a 512k 64k'
same_map backing-v2 v2-over.qcow2

# --- dump ---------------------------------------------------------------------

# same_dump CASE IMAGE: dump --json agrees with qemu-img info and map and
# with the refcounts in the file (dumpcheck.py); the text and --l2 forms
# work too.
same_dump() {
	local case=dump-$1 img=$2 out

	if ! "$QCOWCTL" dump --json "$img" >d.json 2>d.err ||
	   ! "$QCOWCTL" dump --json --l2 "$img" >dl2.json 2>>d.err ||
	   ! "$QCOWCTL" dump --l2 "$img" >d.txt 2>>d.err; then
		fail "$case" "qcowctl dump failed:" "$(head -n 5 d.err)"
		return
	fi
	qemu-img info --output=json "$img" >i.json
	qemu-img map --output=json "$img" >m.json
	if ! out=$(python3 "$here/dumpcheck.py" "$img" d.json i.json m.json); then
		fail "$case" "$out"
		return
	fi
	# --l2 lists every allocated cluster of the active state
	if [ "$(jq '[.l1_table.entries[].l2_entries[] | select(.type != "unallocated" and .type != "zero")] | length' dl2.json)" != \
	     "$(qemu-img check --output=json "$img" 2>/dev/null | jq '."allocated-clusters" // 0')" ]; then
		fail "$case" "--l2 entries do not add up to qemu-img check's allocated clusters"
		return
	fi
	if ! grep -q '^Host clusters of ' d.txt; then
		fail "$case" "no cluster map in the text output"
		return
	fi
	pass "$case"
}

for name in v2 v3 cluster-512 cluster-2m refcount-1 refcount-64 extended-l2 \
	    compressed zstd prealloc-metadata snapshots snapshots-extl2 \
	    bitmaps data-file leak-one leak-unused crash-leak; do
	same_dump "$name" "$name.qcow2"
done
same_dump backing overlay.qcow2
same_dump chain-3 sub/l2.qcow2

# --- command line ---------------------------------------------------------------

# cli CASE STATUS STREAM PATTERN ARGS...: qcowctl ARGS exits STATUS, and
# STREAM (out|err) matches the extended regex PATTERN; an error is one line.
cli() {
	local case=cli-$1 want=$2 stream=$3 pattern=$4 rc=0
	shift 4

	"$QCOWCTL" "$@" >cli.out 2>cli.err || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$case" "qcowctl $* exited $rc, expected $want" "$(head -n 5 cli.err)"
	elif ! grep -qE -- "$pattern" "cli.$stream"; then
		fail "$case" "qcowctl $*: std$stream does not match '$pattern'" \
			"$(head -n 5 "cli.$stream")"
	elif [ "$stream" = err ] && [ "$(wc -l <cli.err)" -ne 1 ]; then
		fail "$case" "more than one line on stderr:" "$(head -n 5 cli.err)"
	else
		pass "$case"
	fi
}

cli check-help 0 out '^usage: qcowctl check ' check --help
cli dump-help 0 out '^usage: qcowctl dump ' dump --help
cli map-help 0 out '^usage: qcowctl map ' map --help
cli help-lists-them 0 out '^  dump ' --help
# check's status 2 means corruption: its usage errors exit 1
cli check-no-image 1 err '^qcowctl: check: missing IMAGE' check
cli check-repair-errors 1 err "^qcowctl: check: only -r leaks is supported" check -r all v3.qcow2
cli check-repair-shared 1 err '^qcowctl: check: -U cannot be used with -r' check -r leaks -U v3.qcow2
cli check-bad-option 1 err "^qcowctl: check: invalid option" check --frob v3.qcow2
cli dump-no-image 2 err '^qcowctl: dump: missing IMAGE' dump
cli map-too-many 2 err '^qcowctl: map: too many arguments' map v3.qcow2 v2.qcow2
cli check-missing-file 1 err '^qcowctl: nothing.qcow2: No such file' check nothing.qcow2
truncate -s 1M raw.img
cli check-raw-file 1 err '^qcowctl: raw.img: magic: ' check raw.img
cli dump-raw-file 1 err '^qcowctl: raw.img: magic: ' dump raw.img
qemu-img create -q -f qcow2 -u -b gone.qcow2 -F qcow2 orphan.qcow2 64M
cli map-missing-backing 1 err '^qcowctl: orphan.qcow2: backing file gone.qcow2 \(named by orphan.qcow2\): No such file' map orphan.qcow2
cli check-json-after-image 0 out '"leaks": 0' check v3.qcow2 --json

# An image another program writes (here: locked as a read-write attach
# locks it) is refused, unless -U; -r leaks is refused even then.
cp v3.qcow2 busy.qcow2
mkfifo busy.fifo
"$QCOWCTL" __lock-test busy.qcow2 <busy.fifo >busy.out 2>&1 &
busy_pid=$!
exec {busy_fd}>busy.fifo
for _ in $(seq 100); do
	grep -qx locked busy.out && break
	sleep 0.1
done
cli check-busy 1 err '^qcowctl: busy.qcow2: the image is in use: .*; use -U' check busy.qcow2
cli check-busy-shared 0 out '^No errors were found on the image\.$' check -U busy.qcow2
cli check-busy-repair 1 err '^qcowctl: busy.qcow2: the image is in use' check -r leaks busy.qcow2
cli dump-busy 1 err '^qcowctl: busy.qcow2: the image is in use' dump busy.qcow2
cli map-busy 1 err '^qcowctl: busy.qcow2: image is in use' map busy.qcow2
cli map-busy-shared 0 out '"depth": 0' map -U --json busy.qcow2
exec {busy_fd}>&-
wait "$busy_pid" || true

echo "userspace check: $failures failed"
[ "$failures" -eq 0 ]
