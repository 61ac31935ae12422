#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The user's job: a VM disk as guests have them -- a partition table, ext4
# on a partition, a tree of files -- converted to qcow2, attached read-only
# with `qcowctl attach -r -P`, its partition mounted, and the files read
# back exactly.
#
# The disks are built in the guest with the tools users have: sfdisk,
# losetup -P, mkfs.ext4, qemu-img convert, qemu-nbd.  Variants:
#   plain     GPT (ext4 root + raw data partition), qemu-img convert -O qcow2
#   zlib      the same, compressed (-c)
#   zstd      the same, compressed with compression_type=zstd
#   overlay   a qcow2 overlay on top of the zlib image, its files changed
#             through qemu-nbd: reads come partly from the backing file
#   mbr       MBR with a primary and a logical ext4 (small: 1 KiB blocks),
#             old-style qcow2 (compat=0.10, version 2)
# For each: the device and its partitions appear with the right sizes,
# lsblk shows them, the mounted tree (names, types, modes, sizes, link
# counts, block counts, mtimes, symlink targets, sha256 of every file)
# matches what was written, writes are refused, the whole device equals
# qemu's reading of the image (qemu-img compare), and detach removes it.
# Prints "PASS guest-disk/<case>" or "FAIL guest-disk/<case>" per check and
# exits 1 if any failed.
# vm-timeout: 400
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
W=$QCOW_SCRATCH/guest-disk
rm -rf "$W"
mkdir -p "$W/mnt"
cd "$W"
CHECK_GROUP=guest-disk
CHECK_DIR=$W
CHECK_SHOW=live

t_start=$SECONDS

# cleanup: undo whatever a failed check left behind.
cleanup() {
	local l
	while grep -q " $W/" /proc/mounts; do
		umount "$(grep " $W/" /proc/mounts | tail -n 1 | cut -d' ' -f2)" || break
	done
	if [ -f "$W/nbd.pid" ]; then
		qemu-nbd -d "$(cat "$W/nbd.dev")" >/dev/null 2>&1 || true
		wait_gone "$(cat "$W/nbd.pid")" || true
		rm -f "$W/nbd.pid"
	fi
	for l in $(losetup -j "$W/gpt.raw" -O NAME -n 2>/dev/null) \
		 $(losetup -j "$W/mbr.raw" -O NAME -n 2>/dev/null); do
		losetup -d "$l" || true
	done
	if [ -e /dev/qcow-control ]; then
		"$QCOW_CTL" detach -a >/dev/null 2>&1 || true
	fi
}

check_after() {
	cleanup
}

# wait_gone PID: wait up to 10 s for a process that is not our child to exit.
wait_gone() {
	local i
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# wait_blk DEV [SECONDS]: wait for a block device node (default 5 s).
wait_blk() {
	local i
	for i in $(seq $((${2:-5} * 10))); do
		[ -b "$1" ] && return 0
		sleep 0.1
	done
	die "$1 did not appear"
}

# manifest DIR: everything about a tree that must survive the round trip.
manifest() {
	(
		cd "$1"
		find . -printf '%y %m %n %s %b %T@ %P -> %l\n' | LC_ALL=C sort
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
	)
}

# fill DIR: the tree of a small Linux guest.
fill() {
	local d=$1 i
	mkdir -p "$d"/{etc,home/user/docs,var/lib/app,var/log,usr/bin,usr/share/deep/a/b/c/d}
	echo guest >"$d/etc/hostname"
	printf 'LABEL=guest-root / ext4 defaults 0 1\n' >"$d/etc/fstab"
	: >"$d/etc/empty"
	printf x >"$d/etc/one-byte"
	for i in 511 4095 4096 4097 65535 65536 65537; do
		head -c "$i" /dev/urandom >"$d/var/lib/app/size-$i"
	done
	head -c $((1024 * 1024 + 17)) /dev/urandom >"$d/var/lib/app/blob"
	head -c $((6 * 1024 * 1024)) /dev/urandom >"$d/home/user/big.bin"
	cp /bin/ls "$d/usr/bin/ls"
	chmod 4755 "$d/usr/bin/ls"
	seq 1 20000 >"$d/var/log/messages"
	printf 'notes of the guest user\n' >"$d/home/user/notes.txt"
	chmod 0600 "$d/home/user/notes.txt"
	echo deep >"$d/usr/share/deep/a/b/c/d/file"
	# a directory big enough for an htree index
	for i in $(seq 1 300); do
		echo "$i" >"$d/home/user/docs/document-with-a-long-name-$i.txt"
	done
	ln -s ../home/user/notes.txt "$d/etc/motd"
	ln -s /nonexistent/target "$d/etc/dangling"
	ln "$d/etc/hostname" "$d/etc/hostname.hardlink"
	# sparse: 64 MiB with two short extents
	truncate -s 64M "$d/var/lib/app/sparse.img"
	printf head | dd of="$d/var/lib/app/sparse.img" conv=notrunc status=none
	printf tail | dd of="$d/var/lib/app/sparse.img" bs=1M seek=40 conv=notrunc status=none
}

# --- building the disks -------------------------------------------------

build_gpt() {
	local lo
	truncate -s 160M gpt.raw
	sfdisk -q gpt.raw <<-EOF
	label: gpt
	size=120MiB, type=linux, name=guest-root
	size=16MiB, type=linux, name=guest-data
	EOF
	sfdisk -l gpt.raw
	lo=$(losetup -P -f --show gpt.raw)
	echo "gpt.raw on $lo"
	wait_blk "${lo}p1"
	wait_blk "${lo}p2"
	mkfs.ext4 -q -b 4096 -L guest-root "${lo}p1"
	mount "${lo}p1" mnt
	fill mnt
	sync
	manifest mnt >gpt-p1.manifest
	[ "$(du -k mnt/var/lib/app/sparse.img | cut -f1)" -lt 1024 ] ||
		die "sparse.img is not sparse"
	df -h mnt
	umount mnt
	# compressible data, so that -c really compresses clusters
	head -c $((12 * 1024 * 1024)) /dev/urandom | base64 -w 0 >"${lo}p2"
	sha256sum <"${lo}p2" | cut -d' ' -f1 >gpt-p2.sha256
	blockdev --getsize64 "${lo}p1" >gpt-p1.size
	blockdev --getsize64 "${lo}p2" >gpt-p2.size
	losetup -d "$lo"
	echo "$(wc -l <gpt-p1.manifest) manifest lines"

	qemu-img convert -f raw -O qcow2 gpt.raw plain.qcow2
	qemu-img convert -f raw -O qcow2 -c gpt.raw zlib.qcow2
	qemu-img convert -f raw -O qcow2 -c -o compression_type=zstd gpt.raw zstd.qcow2
	ls -ls gpt.raw ./*.qcow2
	[ "$(stat -c %s zlib.qcow2)" -lt $(($(stat -c %s plain.qcow2) * 9 / 10)) ] ||
		die "zlib.qcow2 is hardly smaller than plain.qcow2: few compressed clusters"
}

build_mbr() {
	local lo
	truncate -s 48M mbr.raw
	# p1 primary, p2 extended holding p5 logical
	sfdisk -q mbr.raw <<-EOF
	label: dos
	size=24MiB, type=83
	type=5
	size=12MiB, type=83
	EOF
	sfdisk -l mbr.raw
	lo=$(losetup -P -f --show mbr.raw)
	wait_blk "${lo}p1"
	wait_blk "${lo}p5"
	mkfs.ext4 -q -L mbr-one "${lo}p1"
	mkfs.ext4 -q -L mbr-five "${lo}p5"
	mount "${lo}p1" mnt
	mkdir -p mnt/etc mnt/root
	echo mbr-guest >mnt/etc/hostname
	ln -s ../etc/hostname mnt/root/link
	head -c 1500000 /dev/urandom >mnt/root/data
	truncate -s 10M mnt/root/sparse
	printf end | dd of=mnt/root/sparse bs=1K seek=9000 conv=notrunc status=none
	sync
	manifest mnt >mbr-p1.manifest
	umount mnt
	mount "${lo}p5" mnt
	mkdir mnt/logical
	head -c 3000000 /dev/urandom >mnt/logical/data
	echo "in a logical partition" >mnt/logical/readme
	sync
	manifest mnt >mbr-p5.manifest
	umount mnt
	blockdev --getsize64 "${lo}p1" >mbr-p1.size
	blockdev --getsize64 "${lo}p5" >mbr-p5.size
	losetup -d "$lo"
	qemu-img convert -f raw -O qcow2 -o compat=0.10 mbr.raw mbr.qcow2
	qemu-img info mbr.qcow2 | grep -q 'compat: 0.10' || die "mbr.qcow2 is not compat=0.10"
}

# The cloud-image pattern: a compressed base, the VM's changes in an
# overlay, written by qemu (through qemu-nbd) into a live ext4.
build_overlay() {
	local pid b nbd=
	qemu-img create -q -f qcow2 -b zlib.qcow2 -F qcow2 overlay.qcow2
	modprobe nbd
	for b in /sys/block/nbd*; do
		[ -e "$b/pid" ] || { nbd=/dev/${b##*/}; break; }
	done
	[ -n "$nbd" ] || die "no free nbd device"
	echo "$nbd" >"$W/nbd.dev"
	qemu-nbd -c "$nbd" -f qcow2 --pid-file="$W/nbd.pid" overlay.qcow2
	for _ in $(seq 100); do
		[ "$(cat "/sys/block/${nbd#/dev/}/size")" = 0 ] || break
		sleep 0.1
	done
	# nbd scans partitions on the first open, which is udev's job; no udev here
	blockdev --rereadpt "$nbd"
	wait_blk "${nbd}p1"
	mount "${nbd}p1" mnt
	manifest mnt | cmp -s - gpt-p1.manifest || die "the tree read through qemu-nbd differs"
	# change some files, leave most of them to the backing file
	head -c $((1024 * 1024)) /dev/urandom |
		dd of=mnt/home/user/big.bin bs=1M seek=3 conv=notrunc status=none
	echo "a line the VM added" >>mnt/home/user/notes.txt
	rm mnt/var/lib/app/size-65536
	head -c $((2 * 1024 * 1024 + 5)) /dev/urandom >mnt/var/lib/app/new-in-overlay
	mkdir mnt/home/user/new-dir
	echo later >mnt/home/user/new-dir/file
	ln -sfn ../home/user/new-dir/file mnt/etc/motd
	printf middle | dd of=mnt/var/lib/app/sparse.img bs=1M seek=20 conv=notrunc status=none
	sync
	manifest mnt >overlay-p1.manifest
	umount mnt
	pid=$(cat "$W/nbd.pid")
	qemu-nbd -d "$nbd" >/dev/null
	wait_gone "$pid" || die "qemu-nbd did not exit"
	rm -f "$W/nbd.pid"
	! cmp -s gpt-p1.manifest overlay-p1.manifest || die "the overlay changed nothing"
	qemu-img info --backing-chain overlay.qcow2 | grep -E '^(image|backing file|disk size):'
	# both layers must hold data for the check to mean something
	qemu-img map --output=json overlay.qcow2 >overlay.map
	jq -r 'group_by(.depth)[] |
		"layer \(.[0].depth): \(map(select(.data) | .length) | add // 0) bytes of data"' overlay.map
	jq -e 'any(.[]; .depth == 0 and .data) and any(.[]; .depth == 1 and .data)' \
		overlay.map >/dev/null || die "overlay.qcow2 or its backing file holds no data"
}

# --- checking a disk through qcow -----------------------------------------

# verify IMAGE N:WHAT:SIZE...: attach IMAGE and check partition N against
# WHAT (a .manifest or a .sha256 file) and SIZE (a file with its size).
verify() {
	local img=$1 dev p spec n m sz want i
	shift
	dev=$("$QCOW_CTL" attach -r -P "$img")
	echo "$img -> $dev"
	[[ $dev =~ ^/dev/qcow[0-9]+$ ]] || die "attach printed '$dev'"
	for spec in "$@"; do
		wait_blk "${dev}p${spec%%:*}"
	done
	"$QCOW_CTL" list
	lsblk -i -o NAME,MAJ:MIN,SIZE,RO,TYPE "$dev"
	blkid "$dev"p*
	for spec in "$@"; do
		n=${spec%%:*}
		lsblk -rno NAME "$dev" | grep -qx "${dev#/dev/}p$n" ||
			die "lsblk does not show ${dev#/dev/}p$n"
	done
	[ "$(blockdev --getro "$dev")" = 1 ] || die "$dev is not read-only"
	for spec in "$@"; do
		IFS=: read -r n m sz <<<"$spec"
		p=${dev}p$n
		want=$(cat "$sz")
		[ "$(blockdev --getsize64 "$p")" = "$want" ] ||
			die "$p is $(blockdev --getsize64 "$p") bytes, want $want"
		case $m in
		*.manifest)
			mount -o ro "$p" mnt
			manifest mnt >got.manifest
			if ! cmp -s "$m" got.manifest; then
				diff "$m" got.manifest | head -n 20
				die "the tree on $p differs from $m"
			fi
			echo "$p: $(wc -l <"$m") manifest lines match $m"
			if touch mnt/new-file 2>/dev/null; then
				die "wrote to a read-only mount of $p"
			fi
			umount mnt
			;;
		*.sha256)
			[ "$(sha256sum <"$p" | cut -d' ' -f1)" = "$(cat "$m")" ] ||
				die "$p differs from what was written"
			echo "$p: sha256 matches $m"
			;;
		esac
	done
	# every byte of the disk, partition table and free space included
	qemu-img compare -f qcow2 -F raw "$img" "$dev"
	grep . /sys/block/"${dev#/dev/}"/qcow/{cache_hits,cache_misses,corrupt} |
		sed 's|^/sys/block/||'
	[ "$(cat /sys/block/"${dev#/dev/}"/qcow/corrupt)" = 0 ] || die "$img marked corrupt"
	"$QCOW_CTL" detach "$dev"
	for i in $(seq 50); do
		[ -e "/sys/block/${dev#/dev/}" ] || break
		sleep 0.1
	done
	[ ! -e "/sys/block/${dev#/dev/}" ] || die "$dev still exists after detach"
	[ ! -e "${dev}p1" ] || die "${dev}p1 still exists after detach"
}

t_load() {
	qcow_load
	modprobe loop
	[ ! -d /sys/module/nbd ] || touch "$W/nbd.was-loaded"
}

t_unload() {
	qcow_unload
	[ -f "$W/nbd.was-loaded" ] || modprobe -r nbd 2>/dev/null || true
}

check load t_load
if [ "$nfail" -ne 0 ]; then
	echo "guest-disk: the module does not load"
	exit 1
fi
check build-gpt build_gpt
if [ "$nfail" -eq 0 ]; then
	check plain verify plain.qcow2 1:gpt-p1.manifest:gpt-p1.size 2:gpt-p2.sha256:gpt-p2.size
	check zlib verify zlib.qcow2 1:gpt-p1.manifest:gpt-p1.size 2:gpt-p2.sha256:gpt-p2.size
	check zstd verify zstd.qcow2 1:gpt-p1.manifest:gpt-p1.size 2:gpt-p2.sha256:gpt-p2.size
	check build-overlay build_overlay
	if [ -f overlay-p1.manifest ]; then
		check overlay verify overlay.qcow2 1:overlay-p1.manifest:gpt-p1.size 2:gpt-p2.sha256:gpt-p2.size
	fi
fi
check build-mbr build_mbr
if [ -f mbr.qcow2 ]; then
	check mbr verify mbr.qcow2 1:mbr-p1.manifest:mbr-p1.size 5:mbr-p5.manifest:mbr-p5.size
fi
check unload t_unload
cd /
rm -rf "$W"

echo "guest-disk: $npass passed, $nfail failed ($((SECONDS - t_start))s)"
[ "$nfail" -eq 0 ]
