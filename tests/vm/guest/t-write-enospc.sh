#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# ENOSPC: a 256 MiB image on a filesystem of 48 MiB.  Data written first
# (8 MiB, fsynced) must survive the image file running out of space:
#
#   1. 8 MiB written at offset 0 and read back;
#   2. fio, two writers at QD 32, random 1M writes over the rest of the
#      disk with continue_on_error: writes start failing with EIO (fio must
#      report errors, never success for everything); then a sequential dd
#      (O_DIRECT) and a buffered dd with fsync must fail too;
#   3. the device stays readable: the first 8 MiB read back unchanged and
#      the whole device reads without an error; it is not marked corrupt;
#   4. detach works; `qemu-img check` finds no corruption (leaked clusters
#      are allowed: a cluster allocated for a write that then failed) and
#      qemu reads the first 8 MiB unchanged;
#   5. space freed (a ballast file deleted), attach again: 4 MiB written
#      and read back; after detach `qemu-img check` finds no corruption and
#      qemu reads both the old and the new data.
#
# Cases: ext4 (the small filesystem on loop; the image file opened with
# O_DIRECT) and tmpfs (size=48M; buffered I/O to the image file).
# Nothing may oops or warn (the harness scans dmesg after the script).
# Prints "PASS write-enospc/<case>" or "FAIL write-enospc/<case>"; exits 1
# if any failed.  QCOW_WRITE_PEER=nbd runs it on qemu-nbd instead.
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
. "$QCOW_TOP/tests/vm/lib/write-lib.sh"

[ "$WL_PEER" = nbd ] || [ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
for t in fio jq mkfs.ext4; do
	command -v "$t" >/dev/null || fail "$t is not installed"
done

wl_begin write-enospc
mkdir -p "$W/small"

step "data"
wl_mkbase "$W/old.raw" $((8 * M))
head -c $((4 * M)) /dev/urandom >"$W/new.raw"

# region DEV OFFSET FILE: DEV holds FILE at byte OFFSET (O_DIRECT read).
region() {
	local n
	n=$(stat -c %s "$3")
	dd if="$1" bs=1M skip=$(($2 / M)) count=$((n / M)) iflag=direct status=none |
		cmp - "$3" || die "$1 at $2 does not hold $3"
}

# qemu_region IMAGE OFFSET FILE: qemu reads FILE at OFFSET of IMAGE.
# (qemu-img dd cannot skip past count*bs, so the whole disk, sparse.)
qemu_region() {
	qemu-img convert -O raw "$1" qr.raw
	cmp -i "$2:0" -n "$(stat -c %s "$3")" qr.raw "$3" || die "qemu does not read $3 at $2 of $1"
	rm -f qr.raw
}

# fs_ext4 / fs_tmpfs: mount the 48 MiB filesystem on small/.
fs_ext4() {
	local lo
	truncate -s 48M small.ext4
	mkfs.ext4 -q -m 0 small.ext4
	lo=$(wl_loop small.ext4)
	mount "$lo" small
}

fs_tmpfs() {
	mount -t tmpfs -o size=48M tmpfs small
}

t_enospc() {
	local dev img=small/img.qcow2 rc free
	"fs_$1"
	# 6 MiB to give back in step 5
	dd if=/dev/zero of=small/ballast bs=1M count=6 status=none
	qemu-img create -q -f qcow2 "$img" 256M
	dev=$(wl_attach "$img")

	dd if=old.raw of="$dev" bs=1M oflag=direct conv=fsync status=none
	region "$dev" 0 old.raw

	cat >fill.fio <<-EOF
	[fill]
	filename=$dev
	ioengine=libaio
	direct=1
	iodepth=32
	numjobs=2
	rw=randwrite
	bs=1M
	offset=$((16 * M))
	size=$((120 * M))
	offset_increment=$((120 * M))
	continue_on_error=write
	EOF
	rc=0
	timeout 300 fio --output-format=json --output=fill.json fill.fio 2>fill.err || rc=$?
	sed -n '/^{/,$p' fill.json >fill.j
	jq -c '.jobs[] | {error, total_err, first_error, written: .write.io_bytes}' fill.j ||
		{ head fill.err; die "fio wrote no report (exit $rc)"; }
	jq -e '[.jobs[] | select(.error != 0 or .total_err > 0)] | length > 0' fill.j >/dev/null ||
		die "fio saw no error filling 240 MiB into 48 MiB"
	jq -e '[.jobs[] | select(.error != 0 and .error != 5)] | length == 0' fill.j >/dev/null ||
		die "an error other than EIO"
	df -k small | tail -n 1

	rc=0
	dd if=/dev/zero of="$dev" bs=1M seek=16 count=240 oflag=direct status=none 2>dd.err || rc=$?
	cat dd.err
	[ "$rc" -ne 0 ] || die "dd (O_DIRECT) of 240 MiB succeeded"
	grep -q "Input/output error" dd.err || die "dd did not fail with EIO"
	rc=0
	dd if=/dev/zero of="$dev" bs=1M seek=200 count=40 conv=fsync status=none 2>dd.err || rc=$?
	cat dd.err
	[ "$rc" -ne 0 ] || die "buffered dd of 40 MiB with fsync succeeded"

	region "$dev" 0 old.raw
	dd if="$dev" of=/dev/null bs=1M iflag=direct status=none || die "$dev is not readable"
	echo "$dev still reads, the first 8 MiB unchanged"
	[ "$(wl_corrupt_flag "$dev")" = 0 ] || die "$dev was marked corrupt"
	wl_detach "$dev"
	wl_qcheck "$img" --leaks-ok
	qemu_region "$img" 0 old.raw

	rm small/ballast
	free=$(df -k --output=avail small | tail -n 1)
	echo "freed the ballast: ${free} KiB available"
	dev=$(wl_attach "$img")
	dd if=new.raw of="$dev" bs=1M seek=8 oflag=direct conv=fsync status=none ||
		die "writing after freeing space failed"
	region "$dev" $((8 * M)) new.raw
	region "$dev" 0 old.raw
	wl_detach "$dev"
	wl_qcheck "$img" --leaks-ok
	qemu_region "$img" 0 old.raw
	qemu_region "$img" $((8 * M)) new.raw
	echo "written again after freeing space; qemu reads old and new data"
	rm -f "$img"
}

wl_case ext4 t_enospc ext4
wl_case tmpfs t_enospc tmpfs

wl_end
