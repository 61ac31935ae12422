#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fault injection: the disk under the image fails, and the driver must
# report it and survive it.  Faults come from device-mapper in the guest's
# kernel.  The images are files on an ext4 (1 KiB blocks, mounted
# barrier=0 so that it sends the disk no flushes) on a dm device over loop
# over a sparse file.  A case switches the dm table live (dmsetup
# load/suspend/resume) from `linear` to one whose segments under the image
# file's extents (filefrag; the file is fallocated and synced first, so
# allocations stay inside known blocks) are faulty: dm-flakey error_writes
# (writes fail, reads work) or the `error` target (everything fails).
# ext4's own blocks are never hit: e2fsck must find it clean at the end.
# A fault on the file's first sector hits exactly the qcow2 header: the
# header writes of snapshot create, refcount-table growth, the
# lazy-refcounts dirty bit and a read-write attach; on the refcount block,
# a metadata write that the module issues through the page cache and that
# only the following fsync reports.  Whatever the module writes through
# the page cache (metadata; data that is not O_DIRECT: copy-on-write of a
# partial cluster, every write to a block device) fails at the fsync, and
# a failed fsync stops the image as a failed header write does
# (Documentation/design.rst, "Stopped image").
#
# What the cases assert (besides no oops/WARNING/KASAN/hung task, which
# the harness checks after the script):
#   - writes fail with EIO while the disk fails them (fio: no error but
#     EIO); reads of what was written work where the disk reads;
#   - an I/O error is not corruption: sysfs corrupt stays 0; stopped is 1
#     exactly when a header write or a flush of the image file failed (the
#     kernel log says which), and then every write and every flush fails,
#     even after the disk recovered, until detach;
#   - when no header write and no flush failed, the device works again
#     once the disk does;
#   - detach works, also while every write-back fails;
#   - `qemu-img check` finds no corruption after the faults (leaked
#     clusters allowed: clusters allocated for writes that failed), and
#     the image, attached again, holds the data written and flushed before.
#
# Cases:
#   error-writes     error_writes on the image file's data clusters: new
#                    and allocated clusters, O_DIRECT and FUA writes fail,
#                    nothing stops, the device works once the disk does;
#                    then a FUA write of part of a new cluster (copied
#                    through the page cache): its fsync fails: stopped
#   error-all        every I/O fails, 4K clusters and the smallest L2
#                    cache: L2 and data reads fail, a flush after an
#                    allocating write fails and stops the image; once the
#                    disk works the same reads return the data (no failure
#                    cached)
#   fio-schedule     fio random reads and writes while the file goes
#                    linear -> error_writes -> error -> linear; stopped
#                    if a flush failed meanwhile (the log says so), else
#                    the device works again
#   header-snapshot  snapshot create whose header write fails: stopped,
#                    also once the disk works again; the snapshot table on
#                    disk is the old one
#   header-reftable  refcount-table growth (1 KiB clusters, 64-bit
#                    refcounts) whose header write fails: stopped; every
#                    write acknowledged with FUA before is in the image
#   header-lazy      lazy refcounts: the dirty bit cannot be set: stopped,
#                    and the image is untouched (clean, no leaks)
#   header-attach    a read-write attach that clears an autoclear bit
#                    cannot write the header: refused, no device left;
#                    read-only still attaches
#   refblock-flush   the refcount block's write-back fails (EIO to the
#                    guest's fsync): stopped; the next flush, with the
#                    disk working again, fails too, so no L2 entry whose
#                    clusters' refcounts never got there reaches the disk
#   detach-errors    detach with dirty metadata while every I/O fails
#   blockdev         the image on the raw dm device (as on LVM), which
#                    the module writes through the page cache: errors come
#                    with FUA and flushes, and the failed flush stops the
#                    image; attached again once the disk works, it works
#   ext4-clean       e2fsck of the file system under all of the above
# Running out of space is t-write-enospc.  dm-flakey's corrupt_bio_byte on
# reads has no effect in Debian's 6.1 kernel, so wrong data from the disk
# is left to the hostile-image tests.
#
# Prints "PASS faults/<case>" or "FAIL faults/<case>"; exits 1 if any
# failed.  QCOW_WRITE_CASES=GLOB runs some cases only.
# vm-timeout: 900
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
. "$QCOW_TOP/tests/vm/lib/write-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
for t in fio jq dmsetup filefrag mkfs.ext4 e2fsck fallocate; do
	command -v "$t" >/dev/null || fail "$t is not installed"
done
dm_loaded=
[ -d /sys/module/dm_flakey ] || dm_loaded=1
modprobe dm-flakey || fail "modprobe dm-flakey (the guest kernel has no dm-flakey)"

# Thousands of I/O error lines would crawl through the serial console
# under TCG: keep them in the log (the harness scans it), off the console.
printk0=$(cut -f1 /proc/sys/kernel/printk)
echo 1 >/proc/sys/kernel/printk
trap 'echo "$printk0" >/proc/sys/kernel/printk' EXIT

wl_begin faults

step "data"
head -c $((4 * M)) /dev/urandom >"$W/old.raw"
head -c $((4 * M)) /dev/urandom >"$W/new.raw"

# --- device-mapper -------------------------------------------------------

# dm_make NAME SIZE_MIB [DIR]: a linear dm device over loop over a sparse
# file in DIR (default $W); sets DM (/dev/mapper/NAME), LO (the loop
# device), SECTORS.  Devices made in $W go away after the case.
dm_make() {
	local dir=${3:-$W}
	truncate -s "$2M" "$dir/$1.disk"
	LO=$(losetup -f --show --direct-io=on "$dir/$1.disk")
	[ "$dir" != "$W" ] || echo "$LO" >>"$W/.wl-loops"
	SECTORS=$(($2 * 2048))
	echo "0 $SECTORS linear $LO 0" | dmsetup create "$1"
	[ "$dir" != "$W" ] || echo "$1" >>"$W/.dms"
	dmsetup mknodes "$1"
	DM=/dev/mapper/$1
	[ -b "$DM" ] || die "$DM did not appear"
}

# dm_set NAME TABLE: switch NAME to TABLE (lines) while it is in use.
dm_set() {
	printf '%s\n' "$2" | dmsetup load "$1"
	dmsetup suspend --nolockfs "$1"
	dmsetup resume "$1"
	echo "dm $1: $(dmsetup table "$1" | awk '{ print $3 }' | sort | uniq -c | xargs)"
}

# The file system all file cases share: ext4 on the dm device qfs.
FSD=$QCOW_SCRATCH/faults-fs
MNT=$FSD/mnt
rm -rf "$FSD"
mkdir -p "$MNT"
dm_make qfs 384 "$FSD"
FS_LO=$LO FS_SECTORS=$SECTORS
# 1 KiB blocks: the header cluster of a 1 KiB-cluster image is a block of
# its own, and a fault on it hits nothing else
mkfs.ext4 -q -b 1024 -E nodiscard "$DM" >/dev/null || fail "mkfs.ext4 failed"
# barrier=0: ext4 sends no flushes to the dm device, since dm-flakey fails
# them with error_writes; the faults stay with the image file's blocks
mount -o barrier=0 "$DM" "$MNT" || fail "cannot mount the ext4 on $DM"

# tab_file FILE FROM TO TARGET ARGS: the table of qfs that maps bytes
# FROM..TO of FILE (through its extents) to TARGET ("error", or "flakey"
# with ARGS after the device and offset), the rest linear.
tab_file() {
	filefrag -e -b512 "$1" | awk -F'[:.]+' -v ls=$(($2 / 512)) -v le=$(($3 / 512)) \
		-v lo="$FS_LO" -v total="$FS_SECTORS" -v tgt="$4" -v targs="${5:-}" '
		function min(a, b) { return a < b ? a : b }
		function max(a, b) { return a > b ? a : b }
		BEGIN { n = 0 }
		/^ *[0-9]+:/ {
			l0 = $2 + 0; l1 = $3 + 1; p0 = $4 + 0
			a = max(l0, ls); b = min(l1, le)
			if (a < b) { s[n] = p0 + a - l0; z[n] = b - a; n++ }
		}
		END {
			for (i = 0; i < n; i++)
				for (j = i + 1; j < n; j++)
					if (s[j] < s[i]) {
						t = s[i]; s[i] = s[j]; s[j] = t
						t = z[i]; z[i] = z[j]; z[j] = t
					}
			pos = 0
			for (i = 0; i < n; i++) {
				if (s[i] > pos)
					print pos, s[i] - pos, "linear", lo, pos
				if (tgt == "error")
					print s[i], z[i], "error"
				else
					print s[i], z[i], tgt, lo, s[i], targs
				pos = s[i] + z[i]
			}
			if (pos < total)
				print pos, total - pos, "linear", lo, pos
		}'
}

# fault KIND [FROM TO]: fault the case's image file ($IMG), all of it or
# bytes FROM..TO: KIND is writes (error_writes), all (error) or off.
fault() {
	local from=${2:-0} to=${3:-$((1 << 50))} t
	case $1 in
	writes) t=$(tab_file "$IMG" "$from" "$to" flakey "0 1 1 error_writes") ;;
	all) t=$(tab_file "$IMG" "$from" "$to" error) ;;
	off) t="0 $FS_SECTORS linear $FS_LO 0" ;;
	esac
	dm_set qfs "$t"
}

# Template images, made once (qemu-img is slow to start in the guest):
# 32 MiB, 64K clusters (plain), 4K clusters (c4k), lazy refcounts (lazy),
# with a bitmap (bitmap: its autoclear bit set); and for header-reftable.
step "template images"
qemu-img create -q -f qcow2 "$W/t-plain.qcow2" 32M
qemu-img create -q -f qcow2 -o cluster_size=4k "$W/t-c4k.qcow2" 64M
qemu-img create -q -f qcow2 -o lazy_refcounts=on "$W/t-lazy.qcow2" 32M
cp "$W/t-plain.qcow2" "$W/t-bitmap.qcow2"
qemu-img bitmap --add "$W/t-bitmap.qcow2" b0
qemu-img create -q -f qcow2 -o cluster_size=1k,refcount_bits=64,preallocation=metadata \
	"$W/t-reftable.qcow2" 15M
qemu-img resize -q "$W/t-reftable.qcow2" 24M

# mkimg NAME [TEMPLATE]: IMG=$MNT/NAME.qcow2, a copy of a template,
# fallocated to 40 MiB so that the clusters it will allocate lie in the
# extents that faults cover.
mkimg() {
	IMG=$MNT/$1.qcow2
	cp "$W/t-${2:-plain}.qcow2" "$IMG"
	fallocate -l 40M "$IMG"
	sync "$IMG"
}

# dm_cleanup: after a case: the file system back to linear, the dm
# devices the case made removed (wl_cleanup detached and unmounted what
# sat on them), their loop devices too, the case's image deleted.
dm_cleanup() {
	local d
	dm_set qfs "0 $FS_SECTORS linear $FS_LO 0" >/dev/null
	if [ -f "$W/.dms" ]; then
		while read -r d; do
			dmsetup remove --retry "$d" 2>/dev/null || true
		done <"$W/.dms"
		rm -f "$W/.dms"
	fi
	wl_cleanup
	rm -f "$W"/*.disk "$MNT"/*.qcow2
}

# fl_case NAME FUNCTION: wl_case, then the dm devices go too; the
# kernel's lines from a failed case are shown (the console gets none).
fl_case() {
	local n0 f0=$WL_NFAIL
	n0=$(dmesg | wc -l)
	wl_case "$@"
	dm_cleanup
	[ "$WL_NFAIL" = "$f0" ] ||
		dmesg | tail -n +$((n0 + 1)) | grep -v "Buffer I/O error" | tail -n 40 | sed 's/^/    kernel: /'
}

# --- checks ----------------------------------------------------------------

# ndevs: how many qcow devices exist.
ndevs() {
	local d n=0
	for d in /sys/block/qcow*; do
		[ ! -e "$d" ] || n=$((n + 1))
	done
	echo "$n"
}

# logged TEXT: the kernel log has a line containing TEXT.
logged() {
	dmesg >"$W/dmesg.txt"
	grep -qF -- "$1" "$W/dmesg.txt"
}

# io_count DEV: reads + writes completed on DEV so far.
io_count() {
	local st
	read -ra st <"/sys/block/${1#/dev/}/stat"
	echo $((st[0] + st[4]))
}

# dropc: what a failed write-back left in the page cache (content that
# never reached the disk) is dropped, so that qemu sees the disk.
dropc() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
}

# region DEV OFFSET FILE: DEV holds FILE at byte OFFSET (O_DIRECT read).
region() {
	local n
	n=$(stat -c %s "$3")
	dd if="$1" bs=64k iflag=direct,skip_bytes,count_bytes skip="$2" count="$n" status=none |
		cmp - "$3" || die "$1 at $2 does not hold $3"
}

# verify IMAGE CHECK [OFFSET FILE]...: after the faults: `qemu-img check`
# finds no corruption (CHECK --leaks-ok: leaks allowed; "": nothing at
# all), and the image, attached again (read-only), holds each FILE at its
# OFFSET.
verify() {
	local img=$1 chk=$2 dev
	shift 2
	dropc
	wl_qcheck "$img" ${chk:+"$chk"}
	dev=$(wl_attach -r "$img")
	while [ $# -gt 1 ]; do
		region "$dev" "$1" "$2"
		shift 2
	done
	wl_detach "$dev"
}

# eio CMD...: CMD must fail, and say EIO.
eio() {
	local rc=0
	"$@" 2>"$W/eio.err" || rc=$?
	[ "$rc" -ne 0 ] || die "succeeded while the disk fails: $*"
	grep -Eq "Input/output error|I/O error" "$W/eio.err" ||
		die "failed without EIO: $*: $(cat "$W/eio.err")"
}

# wr DEV OFFSET LEN [FLAGS]: write LEN bytes of old.raw at OFFSET with dd,
# O_DIRECT (and FLAGS: dsync).
wr() {
	dd if="$W/old.raw" of="$1" bs=64k iflag=count_bytes count="$3" \
		oflag="direct,seek_bytes${4:+,$4}" seek="$2" status=none
}

# put DEV OFFSET FILE: write FILE at OFFSET and flush.
put() {
	dd if="$3" of="$1" bs=64k oflag=direct,seek_bytes seek="$2" conv=fsync status=none
}

# flush DEV: fsync the device (a REQ_OP_FLUSH).
flush() {
	dd if=/dev/null of="$1" conv=fsync status=none
}

# flags DEV CORRUPT STOPPED: the sysfs attributes are what we expect.
flags() {
	local q=/sys/block/${1#/dev/}/qcow c st
	c=$(cat "$q/corrupt")
	st=$(cat "$q/stopped")
	echo "$1: corrupt=$c stopped=$st"
	[ "$c" = "$2" ] || die "$1: corrupt is $c, want $2"
	[ "$st" = "$3" ] || die "$1: stopped is $st, want $3"
}

# flush_stop NAME: the kernel logged that the image file NAME (its last
# path component) stopped because a flush of it failed.
flush_stop() {
	logged "qcow: $1: flush failed (-5): what the disk holds is unknown, all writes are stopped"
}

# be64 FILE OFFSET: the big-endian 64-bit number at OFFSET of FILE.
be64() {
	od -An -tu8 --endian=big -j "$2" -N 8 "$1" | tr -d ' '
}

# data_start IMAGE: where the data of guest cluster 0 lies in IMAGE (64K
# clusters, cluster 0 written): every cluster before it is metadata, and
# so are all of the image's tables while its disk is below 512 MiB (one
# L2 table, one refcount block).
data_start() {
	local l1 l2 host m=$((0x00fffffffffffe00))
	l1=$(be64 "$1" 40)
	l2=$(($(be64 "$1" "$l1") & m))
	host=$(($(be64 "$1" "$l2") & m))
	if [ "$l2" -eq 0 ] || [ "$host" -le "$l2" ] || [ "$host" -gt $((1 * M)) ]; then
		die "guest cluster 0 of $1 is not where it should be (L2 at $l2, data at $host)"
	fi
	[ "$(be64 "$1" 48)" -lt "$host" ] || die "the refcount table of $1 lies after its data"
	echo "$host"
}

# fio_check JSON: every job's errors were EIO; prints how many errors.
fio_check() {
	sed -n '/^{/,$p' "$1" >"$1.j"
	jq -e . "$1.j" >/dev/null 2>&1 || die "fio wrote no report"
	jq -c '.jobs[] | {error, total_err, first_error, r: .read.io_bytes, w: .write.io_bytes}' "$1.j" >&2
	jq -e '[.jobs[] | select((.error != 0 and .error != 5) or
		(.total_err > 0 and .first_error != 5))] | length == 0' "$1.j" >/dev/null ||
		die "fio saw an error other than EIO"
	jq '[.jobs[].total_err] | add' "$1.j"
}

# attach_cache IMAGE SIZE [-r]: attach with an L2 cache of SIZE.
attach_cache() {
	local dev
	dev=$("$QCOW_CTL" attach ${3:+"$3"} --cache-size "$2" "$1") || die "attach failed"
	echo "$dev" >>"$W/.wl-devs"
	echo "$dev"
}

# --- cases -----------------------------------------------------------------

# The data clusters fail, the metadata before them does not.  Data goes
# straight to the disk (O_DIRECT), whole clusters and parts of a new
# cluster with the rest of it (zeros) alike: their errors come with the
# write, the new cluster is given back, no flush fails, nothing stops, and
# the image is exact afterwards (no leak).  (A failed flush stopping the
# image: error-all.)
t_error_writes() {
	local dev ds
	mkimg ew
	dev=$(wl_attach "$IMG")
	put "$dev" 0 old.raw
	ds=$(data_start "$IMG")
	echo "data from $ds"

	fault writes "$ds"
	eio wr "$dev" $((16 * M)) $((1 * M))
	eio wr "$dev" $((64 * K)) $((64 * K))
	eio wr "$dev" $((20 * M)) $((64 * K)) dsync
	eio wr "$dev" $((128 * K)) 4096 dsync
	flush "$dev" || die "a flush failed although no metadata write did"
	region "$dev" 0 old.raw
	flags "$dev" 0 0

	fault off
	put "$dev" $((24 * M)) new.raw || die "writing failed once the disk works"
	wr "$dev" $((16 * M)) $((1 * M)) || die "writing failed once the disk works"
	flush "$dev" || die "flushing failed once the disk works"
	region "$dev" $((24 * M)) new.raw
	region "$dev" 0 old.raw
	flags "$dev" 0 0
	flush_stop ew.qcow2 && die "the log says the image stopped"

	fault writes "$ds"
	eio wr "$dev" $((20 * M)) 4096 dsync
	eio wr "$dev" $((20 * M + 8 * K)) 4096
	flush "$dev" || die "a flush failed although no metadata write did"
	flush_stop ew.qcow2 && die "the log says the image stopped"
	flags "$dev" 0 0
	fault off
	wr "$dev" $((20 * M)) 4096 dsync || die "writing failed once the disk works"
	flush "$dev" || die "flushing failed once the disk works"
	region "$dev" $((24 * M)) new.raw
	wl_detach "$dev"
	head -c $((1 * M)) old.raw >old1.raw
	head -c $((4 * K)) old.raw >old4k.raw
	head -c $((60 * K)) /dev/zero >zero60k.raw
	verify "$IMG" "" 0 old.raw $((24 * M)) new.raw $((16 * M)) old1.raw \
		$((20 * M)) old4k.raw $((20 * M + 4 * K)) zero60k.raw
}

# 4K clusters: a 4 KiB L2 slice maps 2 MiB, the smallest cache holds 16 of
# them; 24 MiB of data need 12 slices; reading the second half of the
# 64 MiB disk fills the cache with 16 other ones.  A write past the data
# allocates an L2 table (written through the page cache) before its data
# write fails: the flush after it fails and stops the image.
t_error_all() {
	local dev off
	mkimg ea c4k
	head -c $((24 * M)) /dev/urandom >data.raw
	dev=$(attach_cache "$IMG" 64K)
	put "$dev" 0 data.raw
	# fill the cache with other tables (the second half of the disk)
	dd if="$dev" of=/dev/null bs=1M skip=32 iflag=direct status=none

	fault all
	for off in 1 5 9 17; do
		eio dd if="$dev" of=/dev/null bs=4k count=1 skip=$((off * 256 + 5)) iflag=direct status=none
	done
	eio wr "$dev" 0 $((64 * K)) dsync
	flags "$dev" 0 0
	eio wr "$dev" $((28 * M)) $((64 * K))
	eio flush "$dev"
	flush_stop ea.qcow2 || die "the failed flush did not stop the image"
	flags "$dev" 0 1

	fault off
	region "$dev" 0 data.raw
	flags "$dev" 0 1
	eio wr "$dev" $((28 * M)) $((64 * K))
	eio flush "$dev"
	wl_detach "$dev"
	verify "$IMG" --leaks-ok 0 data.raw
}

t_fio_schedule() {
	local dev fpid c0 i n rc=0
	mkimg fs
	dev=$(wl_attach "$IMG")
	put "$dev" 0 old.raw
	fio --name=f --filename="$dev" --ioengine=libaio --direct=1 --iodepth=8 \
		--numjobs=2 --rw=randrw --bsrange=4k-128k --blockalign=4k \
		--offset=$((8 * M)) --size=$((12 * M)) --offset_increment=$((12 * M)) \
		--continue_on_error=all --time_based --runtime=6 --randrepeat=1 \
		--output-format=json --output=fio.json 2>fio.err &
	fpid=$!
	# fio takes seconds to start under TCG: the schedule starts with its I/O
	c0=$(io_count "$dev")
	for i in $(seq 300); do
		[ "$(io_count "$dev")" -le $((c0 + 20)) ] || break
		sleep 0.1
	done
	echo "fio's I/O began after $((i / 10)) s"
	sleep 1
	fault writes
	sleep 2
	fault all
	sleep 2
	fault off
	wait "$fpid" || true
	n=$(fio_check fio.json)
	[ "$n" -gt 0 ] || die "fio saw no error while the image file failed for 4 s"
	# A write-back that failed meanwhile (the module's, or the kernel's
	# flusher writing the module's page cache) is reported to this flush
	# at the latest.  Partial clusters go through the page cache, so it
	# usually is one.
	flush "$dev" 2>/dev/null || rc=$?
	if flush_stop fs.qcow2; then
		echo "a flush failed while the disk failed: stopped"
		[ "$rc" -ne 0 ] || die "a flush succeeded on the stopped image"
		stopped "$dev"
		wl_detach "$dev"
		verify "$IMG" --leaks-ok 0 old.raw
		return
	fi
	echo "no flush failed: the device works"
	[ "$rc" -eq 0 ] || die "the flush failed, the image did not stop"
	flags "$dev" 0 0
	region "$dev" 0 old.raw
	put "$dev" $((4 * M)) new.raw || die "writing failed once the disk works"
	region "$dev" $((4 * M)) new.raw
	wl_detach "$dev"
	verify "$IMG" --leaks-ok 0 old.raw $((4 * M)) new.raw
}

# stopped DEV: the image is stopped: writes, discards, flushes and
# snapshots fail with EIO; reads of old.raw at 0 work.
stopped() {
	local dev=$1
	flags "$dev" 0 1
	eio wr "$dev" 0 $((64 * K))
	eio wr "$dev" $((30 * M)) $((64 * K))
	eio blkdiscard -o $((1 * M)) -l $((1 * M)) "$dev"
	eio flush "$dev"
	eio "$QCOW_CTL" snapshot create "$dev" after-stop
	region "$dev" 0 old.raw
}

t_header_snapshot() {
	local dev
	mkimg hs
	dev=$(wl_attach "$IMG")
	put "$dev" 0 old.raw
	"$QCOW_CTL" snapshot create "$dev" before || die "snapshot create failed"
	# and clusters only the active layer uses (COPIED)
	put "$dev" $((24 * M)) new.raw

	fault writes 0 512
	eio "$QCOW_CTL" snapshot create "$dev" s1
	logged "header write failed" || die "the failed header write was not logged"
	stopped "$dev"
	fault off
	echo "the disk works again: the image stays stopped"
	stopped "$dev"
	wl_detach "$dev"
	dropc
	[ "$(qemu-img info --output=json "$IMG" | jq -c '[.snapshots[].name]')" = '["before"]' ] ||
		die "the snapshot table is not the one from before the fault"
	verify "$IMG" --leaks-ok 0 old.raw $((24 * M)) new.raw
}

# 1 KiB clusters, 64-bit refcounts: a one-cluster refcount table covers
# 16 MiB of file.  The image: 15 MiB with preallocated metadata (every
# cluster allocated), grown to 24 MiB; writing past 15 MiB allocates past
# 16 MiB of file, which grows the table, and that header write fails.
t_header_reftable() {
	local dev rc=0 n
	IMG=$MNT/hr.qcow2
	cp --sparse=always "$W/t-reftable.qcow2" "$IMG"
	sync "$IMG"
	dev=$(wl_attach "$IMG")
	fault writes 0 512
	dd if=old.raw of="$dev" bs=64k seek=240 count=64 oflag=direct,dsync 2>dd.err || rc=$?
	cat dd.err
	[ "$rc" -ne 0 ] || die "4 MiB were written without growing the refcount table"
	grep -q "Input/output error" dd.err || die "dd did not fail with EIO"
	logged "header write failed" || die "the failed header write was not logged"
	n=$(sed -n 's/^\([0-9]*\) bytes .* copied.*/\1/p' dd.err)
	echo "$n bytes written with FUA before the stop"
	head -c "$n" old.raw >done.raw
	flags "$dev" 0 1
	eio wr "$dev" 0 4096
	region "$dev" $((15 * M)) done.raw
	fault off
	eio wr "$dev" 0 4096
	wl_detach "$dev"
	verify "$IMG" --leaks-ok $((15 * M)) done.raw
}

# Lazy refcounts: the first allocating write sets the dirty bit; it cannot.
t_header_lazy() {
	local dev
	mkimg hl lazy
	dev=$(wl_attach "$IMG")
	fault writes 0 512
	eio wr "$dev" 0 $((64 * K))
	flags "$dev" 0 1
	dd if="$dev" of=/dev/null bs=1M count=4 iflag=direct status=none || die "reading failed"
	fault off
	eio wr "$dev" 0 $((64 * K))
	wl_detach "$dev"
	# nothing reached the disk: clean, no leaks, no dirty bit
	dropc
	wl_qcheck "$IMG"
}

# An autoclear bit (a bitmap) is cleared by a read-write attach: a header
# write before the device exists.
t_header_attach() {
	local dev n rc=0
	mkimg ha bitmap
	fault writes 0 512
	n=$(ndevs)
	"$QCOW_CTL" attach "$IMG" >out 2>err || rc=$?
	echo "qcowctl attach: exit $rc: $(cat err)"
	[ "$rc" -ne 0 ] || { cat out >>"$W/.wl-devs"; die "the attach worked"; }
	[ "$(ndevs)" = "$n" ] || die "a device was left behind"
	logged "header write failed" || die "the failed header write was not logged"
	dev=$(wl_attach -r "$IMG")
	dd if="$dev" of=/dev/null bs=1M count=4 iflag=direct status=none || die "reading failed"
	wl_detach "$dev"
	fault off
	dropc
	dev=$(wl_attach "$IMG")
	put "$dev" 0 old.raw
	wl_detach "$dev"
	# the bitmap's clusters leak: the attach cleared its autoclear bit, so
	# qemu ignores the bitmap (as after any writer without bitmap support)
	verify "$IMG" --leaks-ok 0 old.raw
}

# The refcount block is written back through the page cache: its write
# "succeeds", the fsync after it fails, and the guest's fsync gets EIO.
# The refcounts of the clusters just written never reached the disk, so no
# L2 entry pointing at those clusters may reach it either: the image stops,
# and the next flush, with the disk working again, fails too.
t_refblock_flush() {
	local dev rto rb rc=0
	mkimg rf
	dev=$(wl_attach "$IMG")
	put "$dev" 0 old.raw
	rto=$(be64 "$IMG" 48)
	rb=$(be64 "$IMG" "$rto")
	echo "refcount block at $rb"
	head -c $((1 * M)) old.raw >old1.raw
	fault writes "$rb" $((rb + 64 * K))
	put "$dev" $((8 * M)) old1.raw 2>err || rc=$?
	echo "1 MiB to new clusters and fsync, the refcount block failing: exit $rc $(cat err)"
	[ "$rc" -ne 0 ] || die "the fsync succeeded although the refcount block could not be written"
	grep -q "Input/output error" err || die "the fsync did not fail with EIO"
	flush_stop rf.qcow2 || die "the failed flush did not stop the image"
	flags "$dev" 0 1
	[ "$(cat "/sys/block/${dev#/dev/}/qcow/stopped")" = 1 ] || die "sysfs stopped is not 1"
	# what the guest wrote reads back from memory
	region "$dev" $((8 * M)) old1.raw
	fault off
	echo "the disk works again: the image stays stopped"
	stopped "$dev"
	region "$dev" $((8 * M)) old1.raw
	wl_detach "$dev"
	# no L2 entry reached the disk after the failed flush: 8 MiB reads as zeros
	head -c $((1 * M)) /dev/zero >zero1.raw
	verify "$IMG" --leaks-ok 0 old.raw $((8 * M)) zero1.raw
}

# Dirty metadata (written without a flush), then the disk fails: detach
# must come back (its write-back fails and is logged) and the device go.
t_detach_errors() {
	local dev t0
	mkimg de
	dev=$(wl_attach "$IMG")
	put "$dev" 0 old.raw
	dd if=new.raw of="$dev" bs=64k seek=200 oflag=direct status=none
	fault all
	t0=$SECONDS
	timeout 120 "$QCOW_CTL" detach "$dev" || die "detach failed"
	sed -i "\|^$dev\$|d" "$W/.wl-devs"
	echo "detached in $((SECONDS - t0)) s"
	[ ! -e "/sys/block/${dev#/dev/}" ] || die "$dev still exists"
	logged "write-back at detach failed" || die "the failed write-back was not logged"
	fault off
	verify "$IMG" --leaks-ok 0 old.raw
}

# The image on the raw dm device: the module writes block devices through
# their page cache, so a write "succeeds" and its error comes with FUA or
# the next flush, which stops the image.  Detached, its file system checked
# and attached again once the disk works, the image works.
t_blockdev() {
	local dev
	dm_make qb 48
	dd if="$W/t-plain.qcow2" of="$DM" bs=64k conv=fsync status=none
	dev=$(wl_attach "$DM")
	put "$dev" 0 old.raw
	dm_set qb "0 $SECTORS flakey $LO 0 0 1 1 error_writes"
	eio wr "$dev" $((16 * M)) $((64 * K)) dsync
	flush_stop qb || die "the failed flush did not stop the image"
	flags "$dev" 0 1
	eio wr "$dev" 0 $((64 * K)) dsync
	eio flush "$dev"
	region "$dev" 0 old.raw
	dm_set qb "0 $SECTORS linear $LO 0"
	echo "the disk works again: the image stays stopped"
	flags "$dev" 0 1
	eio wr "$dev" $((24 * M)) $((64 * K))
	eio flush "$dev"
	region "$dev" 0 old.raw
	wl_detach "$dev"
	# the page cache holds what never reached the disk: drop it
	blockdev --flushbufs "$DM"
	verify "$DM" --leaks-ok 0 old.raw
	dev=$(wl_attach "$DM")
	flags "$dev" 0 0
	put "$dev" $((24 * M)) new.raw || die "writing failed once the disk works"
	region "$dev" $((24 * M)) new.raw
	wl_detach "$dev"
	blockdev --flushbufs "$DM"
	verify "$DM" --leaks-ok 0 old.raw $((24 * M)) new.raw
}

t_ext4_clean() {
	umount "$MNT"
	e2fsck -fn "/dev/mapper/qfs" >fsck.out 2>&1 || { cat fsck.out; die "e2fsck found errors"; }
	tail -n 1 fsck.out
	mount -o barrier=0 /dev/mapper/qfs "$MNT"
}

fl_case error-writes t_error_writes
fl_case error-all t_error_all
fl_case fio-schedule t_fio_schedule
fl_case header-snapshot t_header_snapshot
fl_case header-reftable t_header_reftable
fl_case header-lazy t_header_lazy
fl_case header-attach t_header_attach
fl_case refblock-flush t_refblock_flush
fl_case detach-errors t_detach_errors
fl_case blockdev t_blockdev
fl_case ext4-clean t_ext4_clean

umount "$MNT" 2>/dev/null || true
dmsetup remove --retry qfs || true
losetup -d "$FS_LO" || true
rm -rf "$FSD"
rc=0
wl_end || rc=$?
[ -z "$dm_loaded" ] || modprobe -r dm-flakey 2>/dev/null || true
[ "$rc" -eq 0 ]
