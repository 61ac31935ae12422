#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Online resize (QCOW_RESIZE, `qcowctl resize DEV [SIZE|+SIZE]`), checked
# against QEMU's reading of the image after detach.  Every write goes to the
# device and to a raw reference file at the same offset; the reference is
# grown with the disk (zeros, or the backing file's bytes where it is
# larger), and `qemu-img compare` of the image against it must find them
# identical.  After each grow: /sys/block/qcowN/size, `blockdev --getsize64`,
# qcow/virtual_size and `qcowctl resize DEV` give the new size; the data of
# before the grow reads back, the new range reads as the reference says;
# after detach `qemu-img check` is clean (no leak: the old L1 table is
# freed) and `qemu-img info` has the new virtual size.
#
#   grow-64k       64K clusters, 8M -> 64M (DEV given as the image path)
#                  -> +448M: one L1 entry still covers it, the table stays
#   grow-l1-4k     4K clusters, 8M -> 3G: the L1 table (4 entries) grows to
#                  1536 entries over three clusters and moves; data at the
#                  very end of the new disk
#   grow-l1-512    512-byte clusters, 4M -> +60M -> 1G: the L1 table moves
#                  twice, the second time to 512 clusters (more than one
#                  refcount block of 256 counts); the header's
#                  l1_table_offset and l1_size (read with od) are what QEMU
#                  computes
#   backing        an overlay of 8M on a raw backing file of 24M grown to
#                  16M and then 32M: the new range reads the backing file
#                  where it has data, zeros past its end (QEMU's reading of
#                  an unallocated cluster; note `qemu-img resize` itself
#                  zero-fills that range (QEMU 7.2), the module does not)
#   ext4-online    a mounted ext4 grown 32M -> 128M (device, then resize2fs
#                  online); a uevent with RESIZE=1 for the disk (udevadm
#                  monitor --kernel); files written before and after intact,
#                  e2fsck clean
#   snapshot-apply 4K clusters: snapshot "small" at 8M, grow to 24M (the L1
#                  table moves), write, snapshot "big", write; apply
#                  "small": the device is 8M again with its content; grow
#                  once more to 16M: zeros there (not big's data), write;
#                  apply "big": 24M and its content; qemu-img reads both
#                  snapshots (small: its 8M, zeros after) and the disk alike
#   v2             a version 2 image grows (the L1 table moves); with a
#                  snapshot it is refused (EOPNOTSUPP, QEMU refuses it too)
#   errors         `qcowctl features` names resize; shrink refused with
#                  qcowctl's message, size unchanged;
#                  the ioctl itself refuses unaligned sizes, flags and
#                  reserved fields (EINVAL); without CAP_SYS_ADMIN (EPERM);
#                  on a partition (ENOTTY from the ioctl, qcowctl names the
#                  disk; the partition keeps its size); a read-only attach
#                  (EROFS, the image file unchanged) still shows the size;
#                  the same size is a no-op; check clean afterwards
#   limit          512-byte clusters: one sector past 128 GiB (an L1 table
#                  over 32 MiB) refused with qcowctl's message; 128 GiB
#                  itself works (a 32 MiB L1 table), data at its very end
#   enospc         the image on a full tmpfs: a grow that needs a new L1
#                  table fails with ENOSPC and changes nothing; after space
#                  is freed it works; check clean
#
# Measured: 12.5 minutes under TCG with a host load average of 16 on 2
# cores (several other VMs running); a few minutes on an idle host.
# vm-timeout: 1200
# Prints "PASS resize/<case>" or
# "FAIL resize/<case>"; exits 1 if any case failed.
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
. "$QCOW_TOP/tests/vm/lib/snap-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
for t in jq python3 udevadm resize2fs setpriv sfdisk; do
	command -v "$t" >/dev/null || fail "$t is not installed"
done

# same WHAT GOT WANT: fail unless equal.
same() {
	[ "$2" = "$3" ] || die "$1: got '$2', want '$3'"
}

# expect_msg STATUS MESSAGE CMD...: CMD exits STATUS with exactly MESSAGE as
# its stderr.
expect_msg() {
	local want=$1 msg=$2 rc=0 err
	shift 2
	err=$("$@" 2>&1 >/dev/null) || rc=$?
	[ "$rc" -eq "$want" ] || die "$*: exit $rc, want $want ($err)"
	same "stderr of $*" "$err" "$msg"
}

# hdr IMAGE size|l1_size|l1_offset: a header field, decimal.
hdr() {
	case $2 in
	size) od -An -tu8 --endian=big -j 24 -N 8 "$1" | tr -d ' ' ;;
	l1_size) od -An -tu4 --endian=big -j 36 -N 4 "$1" | tr -d ' ' ;;
	l1_offset) od -An -tu8 --endian=big -j 40 -N 8 "$1" | tr -d ' ' ;;
	*) die "hdr: unknown field $2" ;;
	esac
}

# l1_entries SIZE CLUSTER: L1 entries a disk of SIZE bytes needs (standard
# L2 tables: CLUSTER / 8 entries of CLUSTER bytes each).
l1_entries() {
	local per=$(($2 * $2 / 8))
	echo $((($1 + per - 1) / per))
}

# put DEV REF OFF LEN: LEN random bytes at OFF of the device (O_DIRECT) and
# of the reference file REF (multiples of 4K).
put() {
	local dev=$1 ref=$2 off=$3 len=$4
	head -c "$len" /dev/urandom >"$W/.chunk"
	dd if="$W/.chunk" of="$dev" bs=64K oflag=direct,seek_bytes seek="$off" \
		status=none || die "writing $len bytes at $off of $dev failed"
	dd if="$W/.chunk" of="$ref" bs=64K oflag=seek_bytes seek="$off" conv=notrunc \
		status=none || die "writing $len bytes at $off of $ref failed"
	rm -f "$W/.chunk"
}

# holds DEV REF OFF LEN: the device reads at OFF what REF holds there.
holds() {
	local got want
	got=$(sl_sum "$1" "$3" "$4")
	want=$(dd if="$2" bs=1M iflag=skip_bytes,count_bytes skip="$3" count="$4" \
		status=none | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] || die "$1: $4 bytes at $3 differ from $2"
}

# grow DEV REF SIZE|+SIZE [NAME]: qcowctl resize NAME (default DEV); the
# reference grows with zeros.
grow() {
	"$QCOW_CTL" resize "${4:-$1}" "$3" || die "qcowctl resize ${4:-$1} $3 failed"
	truncate -s "$(blockdev --getsize64 "$1")" "$2"
}

# sl_recheck DEV IMAGE: detach, qemu-img check clean, attach again; prints
# the new device.
sl_recheck() {
	sl_detach "$1"
	sl_check "$2"
	sl_attach "$2"
}

# sizes DEV BYTES: every view of the disk's size says BYTES.
sizes() {
	local dev=$1 n=${1#/dev/}
	same "/sys/block/$n/size" $(($(cat "/sys/block/$n/size") * 512)) "$2"
	same "blockdev --getsize64 $dev" "$(blockdev --getsize64 "$dev")" "$2"
	same "/sys/block/$n/qcow/virtual_size" "$(cat "/sys/block/$n/qcow/virtual_size")" "$2"
	same "qcowctl resize $dev" "$("$QCOW_CTL" resize "$dev")" "$2"
}

# offline IMAGE REF: detached: check clean, qemu-img's virtual size is the
# reference's, qemu reads the reference.
offline() {
	local img=$1 ref=$2
	sl_check "$img"
	same "qemu-img info $img: virtual-size" \
		"$(qemu-img info --output=json "$img" | jq '."virtual-size"')" \
		"$(stat -c %s "$ref")"
	qemu-img compare -q -f qcow2 -F raw "$img" "$ref" ||
		die "qemu-img compare $img $ref: they differ"
}

# ioctl_errno DEV SIZE [FLAGS [RESERVED0..4]]: QCOW_RESIZE straight from
# python; prints 0 or the errno.
ioctl_errno() {
	python3 - "$@" <<-'EOF'
	import fcntl, os, struct, sys
	# _IOW(0xA7, 0x20, struct qcow_resize): 32 bytes
	QCOW_RESIZE = (1 << 30) | (32 << 16) | (0xA7 << 8) | 0x20
	a = [int(x) for x in sys.argv[2:]] + [0] * 7
	fd = os.open(sys.argv[1], os.O_RDWR)
	try:
	    fcntl.ioctl(fd, QCOW_RESIZE, struct.pack("=QI5I", *a[:7]))
	    print(0)
	except OSError as e:
	    print(e.errno)
	EOF
}

# --- cases ---------------------------------------------------------------------

c_grow_64k() {
	local img=$W/g64.qcow2 ref=$W/g64.raw dev off l1
	qemu-img create -q -f qcow2 "$img" 8M
	truncate -s 8M "$ref"
	l1=$(hdr "$img" l1_offset)
	dev=$(sl_attach "$img")
	put "$dev" "$ref" 0 $((1 * M))
	put "$dev" "$ref" $((7 * M)) $((1 * M))
	grow "$dev" "$ref" 64M "$img"	# DEV given as the image path
	sizes "$dev" $((64 * M))
	holds "$dev" "$ref" 0 $((12 * M))
	holds "$dev" "$ref" $((60 * M)) $((4 * M))
	put "$dev" "$ref" $((6 * M)) $((4 * M))	# across the old end
	put "$dev" "$ref" $((63 * M)) $((1 * M))
	grow "$dev" "$ref" +448M
	sizes "$dev" $((512 * M))
	put "$dev" "$ref" $((511 * M)) $((1 * M))
	for off in 0 $((8 * M)) $((60 * M)) $((508 * M)); do
		holds "$dev" "$ref" "$off" $((4 * M))
	done
	sl_detach "$dev"
	same "l1_table_offset (no move)" "$(hdr "$img" l1_offset)" "$l1"
	same "l1_size" "$(hdr "$img" l1_size)" 1
	offline "$img" "$ref"
}

c_grow_l1_4k() {
	local img=$W/g4k.qcow2 ref=$W/g4k.raw dev l1 size=$((3 * 1024 * M))
	qemu-img create -q -f qcow2 -o cluster_size=4k "$img" 8M
	truncate -s 8M "$ref"
	l1=$(hdr "$img" l1_offset)
	same "l1_size before" "$(hdr "$img" l1_size)" 4
	dev=$(sl_attach "$img")
	put "$dev" "$ref" 0 $((1 * M))
	put "$dev" "$ref" $((7 * M)) $((1 * M))
	grow "$dev" "$ref" 3G
	sizes "$dev" "$size"
	holds "$dev" "$ref" 0 $((10 * M))
	holds "$dev" "$ref" $((size - 2 * M)) $((2 * M))
	put "$dev" "$ref" $((size - 1 * M)) $((1 * M))	# the last L1 entry
	put "$dev" "$ref" $((1536 * M)) $((1 * M))
	put "$dev" "$ref" $((7 * M)) $((2 * M))
	holds "$dev" "$ref" $((size - 4 * M)) $((4 * M))
	holds "$dev" "$ref" 0 $((10 * M))
	sl_detach "$dev"
	[ "$(hdr "$img" l1_offset)" != "$l1" ] || die "the L1 table did not move"
	same "l1_size" "$(hdr "$img" l1_size)" "$(l1_entries "$size" 4096)"
	offline "$img" "$ref"
}

c_grow_l1_512() {
	local img=$W/g512.qcow2 ref=$W/g512.raw dev l1 l1b size
	qemu-img create -q -f qcow2 -o cluster_size=512 "$img" 4M
	truncate -s 4M "$ref"
	l1=$(hdr "$img" l1_offset)
	dev=$(sl_attach "$img")
	put "$dev" "$ref" 0 $((512 * K))
	put "$dev" "$ref" $((3 * M)) $((1 * M))
	grow "$dev" "$ref" +60M
	sizes "$dev" $((64 * M))
	holds "$dev" "$ref" 0 $((8 * M))
	put "$dev" "$ref" $((63 * M)) $((1 * M))
	sl_detach "$dev"
	l1b=$(hdr "$img" l1_offset)
	[ "$l1b" != "$l1" ] || die "the L1 table did not move (64M)"
	same "l1_size (64M)" "$(hdr "$img" l1_size)" "$(l1_entries $((64 * M)) 512)"
	offline "$img" "$ref"

	# a 256 KiB L1 table: more clusters than one refcount block counts
	dev=$(sl_attach "$img")
	grow "$dev" "$ref" 1G
	size=$((1024 * M))
	sizes "$dev" "$size"
	holds "$dev" "$ref" $((60 * M)) $((8 * M))
	put "$dev" "$ref" $((size - 64 * K)) $((64 * K))
	put "$dev" "$ref" $((2 * M)) $((2 * M))
	holds "$dev" "$ref" 0 $((4 * M))
	holds "$dev" "$ref" $((size - M)) $((1 * M))
	sl_detach "$dev"
	[ "$(hdr "$img" l1_offset)" != "$l1b" ] || die "the L1 table did not move (1G)"
	same "l1_size (1G)" "$(hdr "$img" l1_size)" "$(l1_entries "$size" 512)"
	offline "$img" "$ref"
}

c_backing() {
	local img=$W/ov.qcow2 ref=$W/ov.raw base=$W/base.raw dev
	head -c $((24 * M)) /dev/urandom >"$base"
	qemu-img create -q -f qcow2 -b base.raw -F raw "$img" 8M
	head -c $((8 * M)) "$base" >"$ref"
	dev=$(sl_attach "$img")
	put "$dev" "$ref" $((1 * M)) $((1 * M))
	put "$dev" "$ref" $((7 * M)) $((1 * M))
	grow "$dev" "$ref" 16M
	# the backing file shows through where it has data
	dd if="$base" of="$ref" bs=1M skip=8 seek=8 count=8 conv=notrunc status=none
	sizes "$dev" $((16 * M))
	holds "$dev" "$ref" 0 $((16 * M))
	put "$dev" "$ref" $((12 * M)) $((1 * M))
	grow "$dev" "$ref" 32M
	# 16M..24M from the backing file, zeros past its end
	dd if="$base" of="$ref" bs=1M skip=16 seek=16 count=8 conv=notrunc status=none
	sizes "$dev" $((32 * M))
	holds "$dev" "$ref" 0 $((32 * M))
	put "$dev" "$ref" $((22 * M)) $((4 * M))	# across the backing's end
	holds "$dev" "$ref" $((20 * M)) $((8 * M))
	sl_detach "$dev"
	offline "$img" "$ref"
}

c_ext4_online() {
	local img=$W/fs.qcow2 dev mnt=$W/mnt before after n
	qemu-img create -q -f qcow2 "$img" 32M
	dev=$(sl_attach "$img")
	n=${dev#/dev/}
	mkfs.ext4 -q -F -b 4096 "$dev" || die "mkfs.ext4 failed"
	mkdir -p "$mnt"
	mount "$dev" "$mnt" || die "mount failed"
	head -c $((4 * M)) /dev/urandom >"$mnt/a.bin"
	cp "$QCOW_TOP/README.md" "$mnt/readme"
	sync
	before=$(df -B1 --output=size "$mnt" | tail -n 1)
	sl_bg udevadm monitor --kernel --property --subsystem-match=block >uevents.txt 2>&1
	sleep 1	# subscribed before the resize
	"$QCOW_CTL" resize "$dev" 128M || die "qcowctl resize $dev 128M (mounted) failed"
	sizes "$dev" $((128 * M))
	resize2fs "$dev" >resize2fs.log 2>&1 || {
		cat resize2fs.log
		die "resize2fs $dev (online) failed"
	}
	after=$(df -B1 --output=size "$mnt" | tail -n 1)
	[ "$after" -gt $((before * 3)) ] || die "ext4 did not grow: $before -> $after bytes"
	head -c $((48 * M)) /dev/urandom >"$mnt/b.bin"	# needs the new space
	sha256sum "$mnt/a.bin" "$mnt/b.bin" | sed "s|$mnt/||" >sums
	sync
	sleep 1
	kill "$SL_BG_PID" 2>/dev/null || true
	# one block of --property output per event; ours: change, RESIZE=1
	awk -v RS= -v n="$n" '{
		a = r = d = 0
		k = split($0, l, "\n")
		for (i = 1; i <= k; i++) {
			a += l[i] == "ACTION=change"
			r += l[i] == "RESIZE=1"
			d += l[i] == "DEVNAME=" n || l[i] == "DEVNAME=/dev/" n
		}
		if (a && r && d)
			found = 1
	} END { exit !found }' uevents.txt || {
		cat uevents.txt
		die "no change uevent with RESIZE=1 for $n"
	}
	umount "$mnt"
	e2fsck -fn "$dev" >e2fsck.log 2>&1 || {
		cat e2fsck.log
		die "e2fsck after the online grow: not clean"
	}
	mount -o ro "$dev" "$mnt"
	(cd "$mnt" && sha256sum -c --quiet "$W/sums") || die "files changed"
	cmp "$mnt/readme" "$QCOW_TOP/README.md" || die "readme changed"
	umount "$mnt"
	sl_detach "$dev"
	sl_check "$img"
	same "qemu-img info: virtual-size" \
		"$(qemu-img info --output=json "$img" | jq '."virtual-size"')" $((128 * M))
}

# qemu_snap_sum IMAGE SNAPSHOT LEN: sha256 of the first LEN bytes qemu
# reads of SNAPSHOT; qemu reads it at the image's current size, and what
# lies past LEN, the snapshot's own size, must be zeros.
qemu_snap_sum() {
	local tmp=$W/.snap.raw
	qemu-img convert -l "snapshot.name=$2" -O raw "$1" "$tmp" ||
		die "qemu-img convert -l snapshot.name=$2 $1 failed"
	cmp -s -i "$3:0" "$tmp" /dev/zero -n $(($(stat -c %s "$tmp") - $3)) ||
		die "qemu reads non-zero data past $3 bytes of snapshot $2"
	head -c "$3" "$tmp" | sha256sum | cut -d' ' -f1
	rm -f "$tmp"
}

c_snapshot_apply() {
	local img=$W/snap.qcow2 dev small big cur
	qemu-img create -q -f qcow2 -o cluster_size=4k "$img" 8M
	dev=$(sl_attach "$img")
	sl_fill "$dev" 0 $((1 * M))
	sl_fill "$dev" $((7 * M)) $((1 * M))
	small=$(sl_sum "$dev")
	sl_snap create "$dev" small
	"$QCOW_CTL" resize "$dev" 24M || die "resize to 24M failed"
	sizes "$dev" $((24 * M))
	sl_fill "$dev" $((512 * K)) $((1 * M))
	sl_fill "$dev" $((22 * M)) $((2 * M))
	sl_fill "$dev" $((12 * M)) $((1 * M))	# within the second grow below
	big=$(sl_sum "$dev")
	sl_snap create "$dev" big
	sl_fill "$dev" $((23 * M)) $((1 * M))
	sl_fill "$dev" 0 $((1 * M))

	sl_snap apply "$dev" small
	sizes "$dev" $((8 * M))
	same "content after apply small" "$(sl_sum "$dev")" "$small"
	"$QCOW_CTL" resize "$dev" 16M || die "resize after apply failed"
	sizes "$dev" $((16 * M))
	same "zeros past the old end" "$(sl_sum "$dev" $((8 * M)) $((8 * M)))" \
		"$(head -c $((8 * M)) /dev/zero | sha256sum | cut -d' ' -f1)"
	sl_fill "$dev" $((14 * M)) $((2 * M))
	cur=$(sl_sum "$dev")
	same "snapshots" "$(sl_snap_names "$dev")" "$(printf '1 small\n2 big')"
	dev=$(sl_recheck "$dev" "$img")
	same "content after the recheck" "$(sl_sum "$dev")" "$cur"

	sl_snap apply "$dev" big
	sizes "$dev" $((24 * M))
	same "content after apply big" "$(sl_sum "$dev")" "$big"
	sl_detach "$dev"
	sl_check "$img"
	same "qemu-img info: virtual-size" \
		"$(qemu-img info --output=json "$img" | jq '."virtual-size"')" $((24 * M))
	same "qemu reads snapshot small" "$(qemu_snap_sum "$img" small $((8 * M)))" "$small"
	same "qemu reads snapshot big" "$(sl_img_sum "$img" big)" "$big"
	same "qemu reads the disk" "$(sl_img_sum "$img")" "$big"
}

c_v2() {
	local img=$W/v2.qcow2 ref=$W/v2.raw dev l1
	qemu-img create -q -f qcow2 -o compat=0.10,cluster_size=4k "$img" 16M
	truncate -s 16M "$ref"
	l1=$(hdr "$img" l1_offset)
	dev=$(sl_attach "$img")
	put "$dev" "$ref" $((15 * M)) $((1 * M))
	grow "$dev" "$ref" 40M
	sizes "$dev" $((40 * M))
	put "$dev" "$ref" $((39 * M)) $((1 * M))
	sl_detach "$dev"
	[ "$(hdr "$img" l1_offset)" != "$l1" ] || die "the L1 table did not move"
	same "l1_size" "$(hdr "$img" l1_size)" 20
	offline "$img" "$ref"

	qemu-img snapshot -c s1 "$img"
	dev=$(sl_attach "$img")
	expect_msg 1 "qcowctl: $dev: a version 2 image with snapshots cannot be resized (QEMU refuses it too)" \
		"$QCOW_CTL" resize "$dev" 64M
	sizes "$dev" $((40 * M))
	holds "$dev" "$ref" $((14 * M)) $((4 * M))
	sl_detach "$dev"
	offline "$img" "$ref"
}

c_errors() {
	local img=$W/err.qcow2 ref=$W/err.raw dev sum n
	"$QCOW_CTL" features --json | jq -e '.features | index("resize")' >/dev/null ||
		die "qcowctl features does not name resize (QCOW_FEAT_RESIZE)"
	"$QCOW_CTL" features | grep -q '^features:.* resize' ||
		die "qcowctl features (text) does not name resize"
	qemu-img create -q -f qcow2 "$img" 32M
	truncate -s 32M "$ref"
	dev=$(sl_attach "$img")
	n=${dev#/dev/}
	put "$dev" "$ref" 0 $((1 * M))
	expect_msg 1 "qcowctl: $dev: shrinking is not supported (the disk has 33554432 bytes, 16777216 asked)" \
		"$QCOW_CTL" resize "$dev" 16M
	expect_msg 2 "qcowctl: resize: size '1000' is not a multiple of 512 bytes (usage: qcowctl resize DEV [SIZE|+SIZE])" \
		"$QCOW_CTL" resize "$dev" 1000
	same "EINVAL: smaller" "$(ioctl_errno "$dev" $((32 * M - 512)))" 22
	same "EINVAL: unaligned" "$(ioctl_errno "$dev" $((32 * M + 100)))" 22
	same "EINVAL: flags" "$(ioctl_errno "$dev" $((33 * M)) 1)" 22
	same "EINVAL: reserved" "$(ioctl_errno "$dev" $((33 * M)) 0 0 0 0 0 1)" 22
	same "same size" "$(ioctl_errno "$dev" $((32 * M)))" 0
	"$QCOW_CTL" resize "$dev" 32M || die "resize to the same size failed"
	expect_msg 1 "qcowctl: $dev: resizing needs root (CAP_SYS_ADMIN)" \
		setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin "$QCOW_CTL" resize "$dev" 64M
	sizes "$dev" $((32 * M))
	holds "$dev" "$ref" 0 $((2 * M))
	sl_detach "$dev"
	offline "$img" "$ref"

	# a partition: the ioctl is for the whole disk
	dev=$("$QCOW_CTL" attach -P "$img") || die "attach -P failed"
	echo "$dev $img" >>"$W/.sl-devs"
	echo 'start=2048, size=16384, type=83' | sfdisk -q "$dev" >/dev/null || die "sfdisk failed"
	[ -b "${dev}p1" ] || die "no ${dev}p1"
	same "ENOTTY on a partition" "$(ioctl_errno "${dev}p1" $((64 * M)))" 25
	expect_msg 1 "qcowctl: ${dev}p1: ${n}p1 is a partition; name the whole disk" \
		"$QCOW_CTL" resize "${dev}p1" 64M
	"$QCOW_CTL" resize "$dev" 64M || die "resize of a partitioned disk failed"
	same "the partition after the grow" "$(cat "/sys/block/${dev#/dev/}/${n}p1/size")" 16384
	sl_detach "$dev"
	sl_check "$img"

	# read-only attach
	sum=$(sha256sum <"$img")
	dev=$(sl_attach -r "$img")
	expect_msg 1 "qcowctl: $dev: attached read-only; resizing needs a read-write attach" \
		"$QCOW_CTL" resize "$dev" +1M
	same "EROFS from the ioctl" "$(ioctl_errno "$dev" $((128 * M)))" 30
	sizes "$dev" $((64 * M))
	sl_detach "$dev"
	same "the image after the refused grow" "$(sha256sum <"$img")" "$sum"
}

# 512-byte clusters: L1 entries of 32 KiB each, 4 Mi entries (32 MiB) at
# most, as QEMU allows.
c_limit() {
	local img=$W/limit.qcow2 dev
	qemu-img create -q -f qcow2 -o cluster_size=512 "$img" 1M
	dev=$(sl_attach "$img")
	expect_msg 1 "qcowctl: $dev: 137438953984 bytes is more than an image with 512-byte clusters can address" \
		"$QCOW_CTL" resize "$dev" $((128 * 1024 * M + 512))
	sizes "$dev" $((1 * M))
	"$QCOW_CTL" resize "$dev" 128G || die "resize to 128G (the limit) failed"
	sizes "$dev" $((128 * 1024 * M))
	sl_fill "$dev" $((128 * 1024 * M - 64 * K)) $((64 * K))
	sl_detach "$dev"
	sl_check "$img"
	same "l1_size at the limit" "$(hdr "$img" l1_size)" $((4 * M))
	same "qemu-img info: virtual-size" \
		"$(qemu-img info --output=json "$img" | jq '."virtual-size"')" $((128 * 1024 * M))
}

c_enospc() {
	local img=$W/small/full.qcow2 ref=$W/full.raw dev l1
	mkdir -p small
	mount -t tmpfs -o size=4M tmpfs small || die "mount tmpfs failed"
	qemu-img create -q -f qcow2 -o cluster_size=512 "$img" 4M
	truncate -s 4M "$ref"
	l1=$(hdr "$img" l1_offset)
	dev=$(sl_attach "$img")
	put "$dev" "$ref" 0 $((256 * K))
	sync "$dev"	# a flush: the module's metadata is on the tmpfs now
	dd if=/dev/zero of=small/ballast bs=4k status=none 2>/dev/null || true
	# needs 32 KiB of new L1 table
	expect_msg 1 "qcowctl: $dev: no space for the larger L1 table: the file system holding the image is full" \
		"$QCOW_CTL" resize "$dev" 128M
	sizes "$dev" $((4 * M))
	holds "$dev" "$ref" 0 $((4 * M))
	rm small/ballast
	grow "$dev" "$ref" 128M
	sizes "$dev" $((128 * M))
	put "$dev" "$ref" $((127 * M)) $((64 * K))
	sl_detach "$dev"
	[ "$(hdr "$img" l1_offset)" != "$l1" ] || die "the L1 table did not move"
	offline "$img" "$ref"
	umount small
}

sl_begin resize
sl_case grow-64k c_grow_64k
sl_case grow-l1-4k c_grow_l1_4k
sl_case grow-l1-512 c_grow_l1_512
sl_case backing c_backing
sl_case ext4-online c_ext4_online
sl_case snapshot-apply c_snapshot_apply
sl_case v2 c_v2
sl_case errors c_errors
sl_case limit c_limit
sl_case enospc c_enospc
sl_end
