#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The user's job, read-write: a filesystem made and used on a qcow2 image
# attached with `qcowctl attach -P`, then judged by qemu.
#
#   mkfs-fill        an empty image: GPT (sfdisk) with one partition,
#                    mkfs.ext4 on /dev/qcowNp1, mount, a deterministic tree
#                    of a few hundred files (0..200K) copied in, fsync,
#                    umount, detach; `qemu-img check` clean
#   reattach         attach again: e2fsck -fn clean, every file's sha256
#                    matches (sha256sum -c); qemu's own reading of the image
#                    (qemu-img convert -O raw, loop, e2fsck, mount) agrees
#   fstrim-shrink    delete most files, fstrim, umount, detach: the image
#                    file's allocated size shrinks by at least half of what
#                    was deleted; `qemu-img check` clean; the remaining files
#                    intact through the device and through qemu's reading
#   blkdiscard-all   a second image, written full, then blkdiscard of the
#                    whole device: its allocated size drops to the metadata
#                    (under 1 MiB), it reads zeros, `qemu-img check` clean
#
# Prints "PASS write-fs/<case>" or "FAIL write-fs/<case>"; exits 1 if any
# failed.  QCOW_WRITE_PEER=nbd runs it on qemu-nbd instead.
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
. "$QCOW_TOP/tests/vm/lib/write-lib.sh"

[ "$WL_PEER" = nbd ] || [ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
for t in sfdisk mkfs.ext4 e2fsck fstrim blkdiscard python3 jq; do
	command -v "$t" >/dev/null || fail "$t is not installed"
done

wl_begin write-fs
mkdir -p "$W/mnt"

# alloc FILE: bytes the file occupies on the scratch filesystem.
alloc() { echo $(($(stat -c %b "$1") * 512)); }

step "generating the tree"
# 300 files in 12 directories, sizes 0..200K (some at the edges), data
# from a seeded generator: the same tree every run.
python3 - "$W/src" <<-'EOF'
	import os, random, sys
	r = random.Random(20240901)
	top = sys.argv[1]
	edges = [0, 1, 511, 512, 4095, 4096, 4097, 65536, 65537, 200 * 1024]
	for i in range(300):
	    d = os.path.join(top, "dir%02d" % (i % 12), "sub%d" % (i % 3))
	    os.makedirs(d, exist_ok=True)
	    size = edges[i] if i < len(edges) else r.randint(0, 200 * 1024)
	    with open(os.path.join(d, "file%03d.bin" % i), "wb") as f:
	        f.write(r.randbytes(size))
EOF
(cd "$W/src" && find . -type f | LC_ALL=C sort | xargs sha256sum) >"$W/all.sha256"
[ "$(wc -l <"$W/all.sha256")" -eq 300 ] || fail "the tree does not have 300 files"
# the files kept by fstrim-shrink: every tenth
awk 'NR % 10 == 1' "$W/all.sha256" >"$W/kept.sha256"
echo "tree: $(du -sb "$W/src" | cut -f1) bytes in 300 files"

IMG=$W/disk.qcow2

# part1 DEV: the first partition of DEV, once it shows up.
part1() {
	wl_wait_blk "${1}p1"
	echo "${1}p1"
}

# qemu_view SUMS: qemu's reading of the image (qemu-img convert), through
# loop: the filesystem checks clean and holds the files SUMS lists.
qemu_view() {
	local lo
	rm -f q.raw
	qemu-img convert -O raw "$IMG" q.raw
	lo=$(losetup -f --show -r -P q.raw) || die "losetup q.raw failed"
	echo "$lo" >>"$W/.wl-loops"
	wl_wait_blk "${lo}p1"
	e2fsck -fn "${lo}p1" >e2fsck.out 2>&1 || { cat e2fsck.out; die "e2fsck on qemu's reading failed"; }
	mount -o ro,noload "${lo}p1" mnt
	(cd mnt && sha256sum --quiet -c "$1") || die "files differ in qemu's reading"
	[ "$(find mnt -type f | wc -l)" -eq "$(wc -l <"$1")" ] || die "qemu's reading has other files"
	umount mnt
	losetup -d "$lo"
	rm -f q.raw
	echo "qemu's reading: e2fsck clean, $(wc -l <"$1") files match"
}

t_mkfs_fill() {
	local dev p
	qemu-img create -q -f qcow2 "$IMG" 128M
	dev=$(wl_attach -P "$IMG")
	sfdisk -q "$dev" <<-EOF
	label: gpt
	start=2048, name=data
	EOF
	p=$(part1 "$dev")
	mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 -L qcowfs "$p"
	mount "$p" mnt
	cp -a src/. mnt/
	# fsync every file and the filesystem
	find mnt -type f -exec sync {} +
	sync -f mnt
	umount mnt
	wl_detach "$dev"
	wl_qcheck "$IMG"
	alloc "$IMG" >alloc.full
	echo "image allocated: $(cat alloc.full) bytes"
}

# our_view SUMS: attach, e2fsck -fn, mount, the files SUMS lists match.
our_view() {
	local dev p
	dev=$(wl_attach -P "$IMG")
	p=$(part1 "$dev")
	e2fsck -fn "$p" >e2fsck.out 2>&1 || { cat e2fsck.out; die "e2fsck -fn $p failed"; }
	mount "$p" mnt
	(cd mnt && sha256sum --quiet -c "$1") || die "files differ"
	[ "$(find mnt -type f | wc -l)" -eq "$(wc -l <"$1")" ] || die "the filesystem has other files"
	umount mnt
	wl_detach "$dev"
	echo "through the device: e2fsck clean, $(wc -l <"$1") files match"
}

t_reattach() {
	our_view "$W/all.sha256"
	wl_qcheck "$IMG"
	qemu_view "$W/all.sha256"
}

t_fstrim() {
	local dev p deleted full now
	[ -f alloc.full ] || die "mkfs-fill did not finish"
	dev=$(wl_attach -P "$IMG")
	p=$(part1 "$dev")
	mount "$p" mnt
	# delete the files kept.sha256 does not list
	cut -c67- "$W/kept.sha256" >kept.list
	(cd mnt && find . -type f | LC_ALL=C sort | grep -vxF -f "$W/kept.list") >deleted.list
	[ "$(wc -l <deleted.list)" -eq 270 ] || die "want 270 files to delete"
	deleted=$(cd mnt && xargs stat -c %s <"$W/deleted.list" | awk '{ s += $1 } END { print s }')
	(cd mnt && xargs rm <"$W/deleted.list")
	sync -f mnt
	fstrim -v mnt
	umount mnt
	wl_detach "$dev"
	full=$(cat alloc.full)
	now=$(alloc "$IMG")
	echo "deleted $deleted bytes of files; image allocated $full -> $now bytes"
	[ $((full - now)) -ge $((deleted / 2)) ] ||
		die "the image shrank by $((full - now)) bytes only"
	wl_qcheck "$IMG"
	our_view "$W/kept.sha256"
	qemu_view "$W/kept.sha256"
}

t_blkdiscard() {
	local dev img=$W/whole.qcow2 full now
	qemu-img create -q -f qcow2 "$img" 64M
	dev=$(wl_attach "$img")
	dd if=/dev/urandom of="$dev" bs=1M count=64 oflag=direct status=none
	wl_detach "$dev"
	full=$(alloc "$img")
	[ "$full" -ge $((64 * M)) ] || die "only $full bytes allocated after writing 64 MiB"
	dev=$(wl_attach "$img")
	blkdiscard -v "$dev"
	cmp -n $((64 * M)) "$dev" /dev/zero || die "$dev does not read zeros after blkdiscard"
	wl_detach "$dev"
	now=$(alloc "$img")
	echo "allocated after writing: $full bytes, after blkdiscard: $now bytes"
	[ "$now" -lt $((1 * M)) ] || die "$now bytes still allocated after discarding everything"
	wl_qcheck "$img"
	truncate -s 64M zero.raw
	wl_compare "$img" zero.raw
	rm -f "$img" zero.raw
}

wl_case mkfs-fill t_mkfs_fill
wl_case reattach t_reattach
wl_case fstrim-shrink t_fstrim
wl_case blkdiscard-all t_blkdiscard

wl_end
