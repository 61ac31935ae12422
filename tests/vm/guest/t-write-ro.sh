#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Attaching must not write what nobody wrote.
#
#   ro-<shape>   attach -r: every byte of the device is read (its sha256
#                must equal qemu's reading, qemu-img convert -O raw), writes
#                and discards are refused, detach; the image file and its
#                backing files keep their sha256, size, allocated blocks,
#                mtime and ctime: not a byte written
#   rw-<shape>   attach read-write, no write, detach: `qemu-img check`
#                clean (no errors, no leaks) and qemu reads the same data
#                as before (sha256 of qemu-img convert -O raw)
#
# Shapes: plain (v3, 64K clusters, data), v2 (compat=0.10), chain (overlay
# on a compressed qcow2 base on a raw base), snapshots (two internal
# snapshots, clusters shared), extl2 (extended_l2=on), dirty (lazy_refcounts
# with the dirty bit set, as a crashed writer leaves it: ro only, and
# attach may refuse it, but must not touch it).
#
# Prints "PASS write-ro/<case>" or "FAIL write-ro/<case>"; exits 1 if any
# failed.  QCOW_WRITE_PEER=nbd runs it on qemu-nbd instead.
# vm-timeout: 900
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
. "$QCOW_TOP/tests/vm/lib/write-lib.sh"

[ "$WL_PEER" = nbd ] || [ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"

SIZE=$((32 * M))

wl_begin write-ro

wl_mkbase "$W/base.raw" "$SIZE"

t_images() {
	qemu-io -f raw -c "write -P 0 $((4 * M)) $((3 * M))" -c "write -P 0x11 $((20 * M)) 12k" \
		base.raw >/dev/null
	qemu-img convert -f raw -O qcow2 base.raw plain.qcow2
	qemu-img convert -f raw -O qcow2 -o compat=0.10 base.raw v2.qcow2
	qemu-img convert -f raw -O qcow2 -o extended_l2=on base.raw extl2.qcow2
	qemu-io -f qcow2 -c "write -P 0x22 $((9 * M + 4 * K)) 8k" extl2.qcow2 >/dev/null
	cp base.raw chain-raw.raw
	qemu-img create -q -f qcow2 -b chain-raw.raw -F raw chain-mid.qcow2
	qemu-io -f qcow2 -c "write -P 0x33 $((2 * M)) $((2 * M))" chain-mid.qcow2 >/dev/null
	qemu-img convert -c -O qcow2 chain-mid.qcow2 chain-base.qcow2
	rm chain-mid.qcow2
	qemu-img create -q -f qcow2 -o extended_l2=on -b chain-base.qcow2 -F qcow2 chain.qcow2
	qemu-io -f qcow2 -c "write -P 0x44 $((12 * M + 512)) 40k" chain.qcow2 >/dev/null
	qemu-img convert -f raw -O qcow2 base.raw snapshots.qcow2
	qemu-img snapshot -c one snapshots.qcow2
	qemu-io -f qcow2 -c "write -P 0x55 $((1 * M)) $((1 * M))" snapshots.qcow2 >/dev/null
	qemu-img snapshot -c two snapshots.qcow2
	qemu-io -f qcow2 -c "write -P 0x66 $((1 * M + 64 * K)) 64k" snapshots.qcow2 >/dev/null
	qemu-img convert -f raw -O qcow2 -o lazy_refcounts=on base.raw dirty.qcow2
	# the dirty bit (incompatible feature bit 0) a crashed writer leaves
	printf '\0\0\0\0\0\0\0\1' | dd of=dirty.qcow2 bs=1 seek=72 conv=notrunc status=none
	[ "$(wl_incompat dirty.qcow2)" = 1 ] || die "could not set the dirty bit"
}

# files SHAPE: the image file and its backing files.
files() {
	case $1 in
	chain) echo "chain.qcow2 chain-base.qcow2 chain-raw.raw" ;;
	*) echo "$1.qcow2" ;;
	esac
}

# qsum SHAPE: sha256 of qemu's reading of the image, taken once (neither
# kind of case may change it).
qsum() {
	[ -f "$1.qsum" ] || wl_sum_raw "$1.qcow2" >"$1.qsum"
	cat "$1.qsum"
}

# fingerprint FILE...: what a write would change.
fingerprint() {
	local f
	for f in "$@"; do
		echo "$f $(sha256sum <"$f" | cut -d' ' -f1) $(stat -c 'size %s blocks %b mtime %y ctime %z' "$f")"
	done
}

t_ro() {
	local shape=$1 img=$1.qcow2 dev sum qsum rc=0
	local -a fl
	read -r -a fl <<<"$(files "$shape")"
	qsum=$(qsum "$shape")
	fingerprint "${fl[@]}" >before.fp
	# the clock moves on: a write during the attachment would show in mtime
	sleep 1.1
	dev=$(wl_attach -r "$img") || rc=$?
	if [ "$rc" -ne 0 ]; then
		[ "$shape" = dirty ] || die "attach -r $img failed"
		echo "attach -r of the dirty image refused"
	else
		[ "$(blockdev --getro "$dev")" = 1 ] || die "$dev is not read-only"
		sum=$(sha256sum <"$dev" | cut -d' ' -f1)
		[ "$sum" = "$qsum" ] || die "$dev does not read what qemu reads"
		echo "read all of $dev: same as qemu"
		! dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none 2>/dev/null ||
			die "a write to $dev succeeded"
		! dd if=/dev/zero of="$dev" bs=4k seek=5 count=1 conv=fsync status=none 2>/dev/null ||
			die "a buffered write to $dev succeeded"
		! blkdiscard -o 0 -l $((1 * M)) "$dev" 2>/dev/null || die "a discard on $dev succeeded"
		! blkdiscard -z -o 0 -l $((1 * M)) "$dev" 2>/dev/null || die "write-zeroes on $dev succeeded"
		wl_detach "$dev"
	fi
	fingerprint "${fl[@]}" >after.fp
	if ! cmp -s before.fp after.fp; then
		diff before.fp after.fp || true
		die "the image files changed"
	fi
	echo "not a byte written: ${fl[*]}"
}

t_rw() {
	local shape=$1 img=$1.qcow2 dev qsum
	local -a fl
	read -r -a fl <<<"$(files "$shape")"
	qsum=$(qsum "$shape")
	fingerprint "${fl[@]}" >before.fp
	dev=$(wl_attach "$img")
	[ "$(blockdev --getro "$dev")" = 0 ] || die "$dev is read-only"
	wl_detach "$dev"
	wl_qcheck "$img"
	[ "$(wl_sum_raw "$img")" = "$qsum" ] || die "qemu reads other data after the attachment"
	fingerprint "${fl[@]}" >after.fp
	# the backing files are not written either
	[ "$(tail -n +2 before.fp)" = "$(tail -n +2 after.fp)" ] || die "a backing file changed"
	if [ "$(head -n 1 before.fp)" = "$(head -n 1 after.fp)" ]; then
		echo "qemu-img check clean, the data unchanged; the image file untouched"
	else
		echo "qemu-img check clean, the data unchanged; the image file was rewritten"
	fi
}

wl_case images t_images
for s in plain v2 chain snapshots extl2 dirty; do
	wl_case "ro-$s" t_ro "$s"
done
for s in plain v2 chain snapshots extl2; do
	wl_case "rw-$s" t_rw "$s"
done

wl_end
