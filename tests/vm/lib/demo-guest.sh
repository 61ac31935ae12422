#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The guest half of tests/vm/demo.sh: load qcow.ko, build a VM disk the way
# a guest has one (GPT, ext4, a few files) and convert it to qcow2, attach
# it read-only with partitions, mount the guest's file system, read it,
# show the device's statistics; then attach it read-write, change files,
# trim, detach, and let qemu-img check and read the result; attach it again,
# take an online snapshot of the mounted file system (sync + fsfreeze),
# change files, show that apply is refused while mounted, unmount, apply,
# and show every file back as it was (checksums compared); qemu-img lists
# the snapshot and checks the image; tear everything down again.  Each step
# is narrated with "==> " and the commands are echoed with "$ " before they
# run.  Any failing step ends the demo with a non-zero status.
set -euo pipefail

say() { printf '\n==> %s\n' "$*"; }
run() { echo "\$ $*"; "$@"; }
# refused CMD...: a command that must fail; show its error message.
refused() {
	echo "\$ $*"
	if "$@"; then
		echo "demo: '$*' should have been refused" >&2
		exit 1
	fi
}
# wait_blk DEV: wait up to 5 s for a block device node (no udev here).
wait_blk() {
	for _ in $(seq 50); do
		[ -b "$1" ] && return 0
		sleep 0.1
	done
	echo "demo: $1 did not appear" >&2
	exit 1
}

# sums DIR FILE: sha256 of every file under DIR into FILE (sorted, names
# relative to DIR); print those of a few files and one of the whole list.
sums() {
	echo "\$ (cd $1 && find . -type f | sort | xargs sha256sum) > $2"
	(cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$2"
	grep -E ' \./(home/user/hello\.txt|var/lib/app/[^/]*|etc/hostname)$' "$2"
	printf '(%s files in all; sha256 of the whole list: %s)\n' "$(wc -l <"$2")" \
		"$(sha256sum <"$2" | cut -d' ' -f1)"
}

ko=$QCOW_KO
ctl=$QCOW_CTL
[ -x "$ctl" ] || { echo "demo: no qcowctl at $ctl (make qcowctl)" >&2; exit 1; }
cd "$QCOW_SCRATCH"
# Show the short command names; the binaries come from the project tree.
PATH=$(dirname "$ctl"):$PATH
export PATH

say "Inside the VM: kernel $(uname -r), running as root"

say "Loading the module"
echo "\$ modinfo $ko"
modinfo "$ko" | grep -E '^(description|license|vermagic):'
run insmod "$ko"
run ls -l /dev/qcow-control
say "qcowctl asks the module what it supports"
run qcowctl features

say "Making a sample VM disk: a raw disk with a GPT partition table and one ext4 partition"
run truncate -s 256M guest.raw
echo "\$ sfdisk guest.raw    # label: gpt; one 200 MiB Linux partition named guest-root"
sfdisk -q guest.raw <<EOF
label: gpt
size=200MiB, type=linux, name=guest-root
EOF
modprobe loop
echo "\$ losetup -P -f --show guest.raw"
lo=$(losetup -P -f --show guest.raw)
echo "$lo"
wait_blk "${lo}p1"
run mkfs.ext4 -q -L guest-root "${lo}p1"
mkdir -p /mnt/build
run mount "${lo}p1" /mnt/build

say "Putting a few files on it, as a guest would"
g=/mnt/build
mkdir -p "$g"/etc "$g"/home/user "$g"/var/lib/app
echo demo-guest >"$g/etc/hostname"
cp /etc/os-release "$g/etc/os-release"
printf 'Hello from inside a qcow2 image.\nThe kernel read this file through /dev/qcow0p1.\n' \
	>"$g/home/user/hello.txt"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$g/var/lib/app/data.bin"
ln -s ../../etc/hostname "$g/home/user/hostname-link"
run ls -la "$g" "$g/home/user"
echo "\$ sha256sum $g/var/lib/app/data.bin"
want=$(sha256sum <"$g/var/lib/app/data.bin" | cut -d' ' -f1)
echo "$want  $g/var/lib/app/data.bin"
run umount "$g"
run losetup -d "$lo"

say "Converting it to qcow2 with qemu-img, as a VM disk is usually stored"
run qemu-img convert -f raw -O qcow2 guest.raw guest.qcow2
run ls -ls guest.raw guest.qcow2
run qcowctl info guest.qcow2
rm -f guest.raw

say "Attaching the image read-only, with its partition table scanned"
echo "\$ qcowctl attach -r -P guest.qcow2"
dev=$(qcowctl attach -r -P guest.qcow2)
echo "$dev"
wait_blk "${dev}p1"
run qcowctl list
run lsblk -i -o NAME,MAJ:MIN,SIZE,RO,TYPE "$dev"
run blkid "${dev}p1"

say "Mounting the guest's partition read-only and reading its files"
mkdir -p /mnt/guest
run mount -o ro "${dev}p1" /mnt/guest
run ls -la /mnt/guest /mnt/guest/home/user
run cat /mnt/guest/home/user/hello.txt
run cat /mnt/guest/home/user/hostname-link
echo "\$ sha256sum /mnt/guest/var/lib/app/data.bin"
got=$(sha256sum </mnt/guest/var/lib/app/data.bin | cut -d' ' -f1)
echo "$got  /mnt/guest/var/lib/app/data.bin"
if [ "$got" != "$want" ]; then
	echo "demo: data.bin read back differs from what was written" >&2
	exit 1
fi
echo "(the same checksum as when it was written)"
run df -h /mnt/guest

say "The device and the mount are read-only: writes are refused"
refused touch /mnt/guest/new-file

say "What the driver reports in /sys/block/${dev#/dev/}/qcow/"
for f in /sys/block/"${dev#/dev/}"/qcow/*; do
	v=$(paste -sd ' ' "$f")
	printf '%-14s %s\n' "${f##*/}:" "${v:-(none)}"
done

say "Unmounting and detaching"
run umount /mnt/guest
run qcowctl detach "$dev"
run qcowctl list
echo "(no devices left)"

say "Attaching it read-write (the default) and changing the guest's files"
echo "\$ qcowctl attach -P guest.qcow2"
dev=$(qcowctl attach -P guest.qcow2)
echo "$dev"
wait_blk "${dev}p1"
run mount "${dev}p1" /mnt/guest
echo "\$ echo 'Written through /dev/qcow0p1 by the kernel module.' >> /mnt/guest/home/user/hello.txt"
echo 'Written through /dev/qcow0p1 by the kernel module.' >>/mnt/guest/home/user/hello.txt
echo "\$ cp -a /usr/share/doc/bash /usr/share/doc/coreutils /mnt/guest/home/user/"
cp -a /usr/share/doc/bash /usr/share/doc/coreutils /mnt/guest/home/user/
echo "\$ head -c 16M /dev/urandom > /mnt/guest/var/lib/app/new.bin"
head -c $((16 * 1024 * 1024)) /dev/urandom >/mnt/guest/var/lib/app/new.bin
new=$(sha256sum </mnt/guest/var/lib/app/new.bin | cut -d' ' -f1)
run sync
run ls -ls guest.qcow2
echo "(the image file grew: clusters were allocated as the guest wrote)"

say "Deleting a file and trimming: freed clusters go back and the image shrinks"
run rm /mnt/guest/var/lib/app/data.bin
run sync
run fstrim -v /mnt/guest
run umount /mnt/guest
run qcowctl detach "$dev"
run ls -ls guest.qcow2

say "QEMU's own checker agrees the image is consistent"
run qemu-img check guest.qcow2
run qemu-img info guest.qcow2

say "Attaching it again to read back what was written, and to take a snapshot"
echo "\$ qcowctl attach -P guest.qcow2"
dev=$(qcowctl attach -P guest.qcow2)
echo "$dev"
wait_blk "${dev}p1"
run mount "${dev}p1" /mnt/guest
run cat /mnt/guest/home/user/hello.txt
run ls /mnt/guest/home/user /mnt/guest/var/lib/app
echo "\$ sha256sum /mnt/guest/var/lib/app/new.bin"
got=$(sha256sum </mnt/guest/var/lib/app/new.bin | cut -d' ' -f1)
echo "$got  /mnt/guest/var/lib/app/new.bin"
if [ "$got" != "$new" ]; then
	echo "demo: new.bin read back differs from what was written" >&2
	exit 1
fi
echo "(the same checksum as when it was written)"

say "The files as they are now: a checksum of each file of the guest's file system"
sums /mnt/guest before.sums

say "Taking an online snapshot of the whole disk, with the file system mounted"
echo "    sync writes everything out and fsfreeze holds new writes off while"
echo "    the module takes the snapshot, so it holds a consistent file system."
run sync
run fsfreeze --freeze /mnt/guest
echo "\$ qcowctl snapshot create $dev before-change"
if ! qcowctl snapshot create "$dev" before-change; then
	fsfreeze --unfreeze /mnt/guest
	echo "demo: qcowctl snapshot create failed" >&2
	exit 1
fi
run fsfreeze --unfreeze /mnt/guest
run qcowctl snapshot list "$dev"

say "Changing the files: one edited, a directory and a file deleted, one added"
echo "\$ echo 'A change made after the snapshot.' >> /mnt/guest/home/user/hello.txt"
echo 'A change made after the snapshot.' >>/mnt/guest/home/user/hello.txt
run rm -r /mnt/guest/home/user/bash /mnt/guest/var/lib/app/new.bin
echo "\$ head -c 8M /dev/urandom > /mnt/guest/var/lib/app/other.bin"
head -c $((8 * 1024 * 1024)) /dev/urandom >/mnt/guest/var/lib/app/other.bin
run sync
run cat /mnt/guest/home/user/hello.txt
run ls /mnt/guest/home/user /mnt/guest/var/lib/app
sums /mnt/guest after.sums
if cmp -s before.sums after.sums; then
	echo "demo: the changes did not change the files" >&2
	exit 1
fi
echo "(the files differ from the snapshot now)"

say "Applying the snapshot is refused while the file system is mounted"
refused qcowctl snapshot apply "$dev" before-change

say "Unmounting, applying the snapshot, mounting again: the files are back"
run umount /mnt/guest
run qcowctl snapshot apply "$dev" before-change
run e2fsck -fn "${dev}p1"
run mount "${dev}p1" /mnt/guest
run cat /mnt/guest/home/user/hello.txt
run ls /mnt/guest/home/user /mnt/guest/var/lib/app
sums /mnt/guest applied.sums
if ! cmp -s before.sums applied.sums; then
	echo "demo: after the apply the files differ from the snapshot:" >&2
	diff before.sums applied.sums >&2 || true
	exit 1
fi
echo "(every file has the checksum it had when the snapshot was taken)"
run umount /mnt/guest
run qcowctl detach "$dev"

say "The snapshot is an ordinary qcow2 internal snapshot: QEMU lists it"
run qemu-img snapshot -l guest.qcow2
if ! qemu-img snapshot -l guest.qcow2 | grep -qw before-change; then
	echo "demo: qemu-img does not list the snapshot before-change" >&2
	exit 1
fi
run qemu-img check guest.qcow2

say "Unloading the module"
run rmmod qcow
if [ -e /dev/qcow-control ] || [ -e /sys/module/qcow ]; then
	echo "demo: qcow left /dev/qcow-control or /sys/module/qcow behind" >&2
	exit 1
fi
rm -f guest.qcow2 before.sums after.sums applied.sums
