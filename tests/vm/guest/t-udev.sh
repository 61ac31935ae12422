#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# qcow devices as udev, systemd and lsblk see them, with the real
# systemd-udevd running the system's rules plus packaging/udev/60-qcow.rules:
#   properties   `udevadm info` of a disk attached with -P: QCOW_IMAGE,
#                QCOW_READ_ONLY, QCOW_VERSION, QCOW_CLUSTER_SIZE, the
#                partition table (ID_PART_TABLE_TYPE); of its partition: the
#                same QCOW_* (from the disk), the ext4 on it (ID_FS_TYPE,
#                ID_FS_UUID, ID_FS_LABEL), ID_PART_ENTRY_NUMBER; the
#                /dev/disk/by-uuid, by-label and by-partuuid links;
#   lsblk        the disk and its partition with type, size, RO, FSTYPE,
#                LABEL and UUID (lsblk -J), read-only attach included;
#   uevents      `udevadm monitor --kernel --udev`: add on attach (the udev
#                event carries QCOW_IMAGE), change with RESIZE=1 on resize
#                (lsblk and blockdev then show the new size), remove on
#                detach, and the links and udev database entries go away;
#   watch        mkfs on an attached disk: udev probes it again (the "watch"
#                option), ID_FS_TYPE and the by-label link appear;
#   busy         detach right after a write (udev probing the disk may hold
#                it open for a moment) and snapshot apply right after umount
#                succeed: qcowctl waits while udev has events queued; a
#                real opener still gets EBUSY, at once with udev idle.
# Leaves the guest clean: udevd stopped, devices detached, module unloaded.
# shellcheck disable=SC2015  # "test && test || die" is meant
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
udevd=$(udevd_path)
for t in udevadm lsblk jq sfdisk mkfs.ext4; do
	command -v "$t" >/dev/null || fail "$t is not installed"
done

W=$QCOW_SCRATCH/udev
rm -rf "$W"
mkdir -p "$W"
cd "$W"
CHECK_GROUP=udev
CHECK_LOG=$W/check.log
CHECK_DIR=$W

check_after() {
	"$QCOW_CTL" detach -a >/dev/null 2>&1 || true
	udevadm settle --timeout=30 || true
}
monpid=

settle() {
	udevadm settle --timeout=60 || die "udevadm settle timed out"
}

# attach ARGS...: sets $dev, waits for udev to finish with it.
attach() {
	dev=$("$QCOW_CTL" attach "$@") || die "qcowctl attach $* failed"
	[ -b "$dev" ] || die "$dev is not a block device"
	settle
	echo "attach $* -> $dev"
}

# prop DEV NAME: the udev property NAME of DEV ("" when unset).
prop() {
	udevadm info --query=property --name="$1" | sed -n "s/^$2=//p"
}

# want_prop DEV NAME VALUE
want_prop() {
	local got
	got=$(prop "$1" "$2")
	[ "$got" = "$3" ] || die "udevadm info $1: $2='$got', want '$3'"
	echo "ok: $1 $2=$got"
}

# want_link LINK TARGET: /dev/disk/... points at TARGET.
want_link() {
	local got
	got=$(readlink -f "$1" 2>/dev/null) || true
	[ "$got" = "$2" ] || die "$1 -> '$got', want $2"
	echo "ok: $1 -> $got"
}

# --- images ---------------------------------------------------------------

uuid=5d3c6a1e-0b6f-4d2e-9a57-2c1f0e9b8a71
step "making images in $W"
truncate -s 64M part.raw
printf 'label: dos\nlabel-id: 0x5eed0001\nstart=2048, size=65536, type=83\n' |
	sfdisk -q part.raw
mkdir -p fsroot
echo "hello from a qcow2 partition" >fsroot/hello.txt
mkfs.ext4 -q -F -U "$uuid" -L qcowtest -E offset=$((2048 * 512)) -d fsroot part.raw 32M
qemu-img convert -f raw -O qcow2 part.raw part.qcow2
rm part.raw
qemu-img create -q -f qcow2 blank.qcow2 32M

step "systemd-udevd with the system's rules and 60-qcow.rules"
mkdir -p /run/udev/rules.d
cp "$QCOW_TOP/packaging/udev/60-qcow.rules" /run/udev/rules.d/
expect "$udevd" --daemon
expect udevadm control --ping
cleanup() {
	[ -n "$monpid" ] && kill "$monpid" 2>/dev/null
	"$QCOW_CTL" detach -a >/dev/null 2>&1 || true
	udevadm settle --timeout=30 || true
	udevadm control --exit || true
	rm -f /run/udev/rules.d/60-qcow.rules
	[ -e /sys/module/qcow ] && rmmod qcow
	cd /
	rm -rf "$W"
}
trap cleanup EXIT
qcow_load
settle

# --- checks ---------------------------------------------------------------

t_properties() {
	local p
	attach -P part.qcow2
	p=${dev}p1
	[ -b "$p" ] || die "$p does not exist"
	udevadm info --query=property --name="$dev"
	want_prop "$dev" DEVTYPE disk
	want_prop "$dev" QCOW_IMAGE "$W/part.qcow2"
	want_prop "$dev" QCOW_READ_ONLY 0
	want_prop "$dev" QCOW_VERSION 3
	want_prop "$dev" QCOW_CLUSTER_SIZE 65536
	want_prop "$dev" ID_PART_TABLE_TYPE dos
	want_prop "$dev" ID_PART_TABLE_UUID 5eed0001
	udevadm info --query=property --name="$p"
	want_prop "$p" DEVTYPE partition
	want_prop "$p" QCOW_IMAGE "$W/part.qcow2"
	want_prop "$p" QCOW_READ_ONLY 0
	want_prop "$p" ID_FS_TYPE ext4
	want_prop "$p" ID_FS_UUID "$uuid"
	want_prop "$p" ID_FS_LABEL qcowtest
	want_prop "$p" ID_PART_ENTRY_NUMBER 1
	want_link "/dev/disk/by-uuid/$uuid" "$p"
	want_link /dev/disk/by-label/qcowtest "$p"
	want_link /dev/disk/by-partuuid/5eed0001-01 "$p"
	# mount by UUID, as an fstab line would
	mkdir -p mnt
	mount -o ro "UUID=$uuid" mnt
	grep -qx "hello from a qcow2 partition" mnt/hello.txt ||
		{ umount mnt; die "mounted by UUID, hello.txt is wrong"; }
	umount mnt
}

t_lsblk() {
	local j n
	attach -P part.qcow2
	n=${dev#/dev/}
	j=$(lsblk -J -b -o NAME,TYPE,SIZE,RO,FSTYPE,LABEL,UUID "$dev")
	echo "$j"
	jq -e --arg n "$n" --arg u "$uuid" '
		.blockdevices | length == 1 and
		(.[0] | .name == $n and .type == "disk" and
		 (.size | tostring) == "67108864" and (.ro | tostring | test("^(false|0)$")) and
		 (.children | length) == 1 and
		 (.children[0] | .name == ($n + "p1") and .type == "part" and
		  (.size | tostring) == "33554432" and .fstype == "ext4" and
		  .label == "qcowtest" and .uuid == $u))' <<<"$j" >/dev/null ||
		die "lsblk does not show $dev and its ext4 partition"
	# every qcow disk is listed, with the major the module registered
	lsblk -d -n -o NAME,MAJ:MIN | grep -qE "^$n +$(awk '$2 == "qcow" { print $1 }' /proc/devices):0 *\$" ||
		die "lsblk -d: no $n with the qcow major: $(lsblk -d -n -o NAME,MAJ:MIN)"
	expect "$QCOW_CTL" detach "$dev"
	settle
	attach -r -P part.qcow2
	j=$(lsblk -J -o NAME,RO "$dev")
	echo "$j"
	jq -e '.blockdevices[0] | (.ro | tostring | test("^(true|1)$")) and
		(.children[0].ro | tostring | test("^(true|1)$"))' <<<"$j" >/dev/null ||
		die "lsblk: the read-only attach is not RO"
	want_prop "$dev" QCOW_READ_ONLY 1
	want_prop "${dev}p1" QCOW_READ_ONLY 1
}

# events DEV: "SOURCE ACTION RESIZE QCOW_IMAGE" per event of DEV in mon.log.
events() {
	awk -v n="${1#/dev/}" '
		/^(KERNEL|UDEV) *\[/ {
			src = $0 ~ /^KERNEL/ ? "KERNEL" : "UDEV"
			line = $0
			sub(/^[A-Z]+ *\[[^]]*\] */, "", line)
			split(line, f, " ")
			act = f[1]
			on = (f[2] ~ ("/" n "$")); resize = "-"; img = "-"; next
		}
		on && /^RESIZE=/ { resize = substr($0, 8) }
		on && /^QCOW_IMAGE=/ { img = substr($0, 12) }
		on && /^$/ { print src, act, resize, img; on = 0 }
		END { if (on) print src, act, resize, img }' mon.log
}

t_uevents() {
	local ev want size
	udevadm monitor --kernel --udev --property --subsystem-match=block >mon.log 2>&1 &
	monpid=$!
	for _ in $(seq 50); do grep -q '^KERNEL - ' mon.log && break; sleep 0.1; done
	sleep 0.5
	attach blank.qcow2
	expect "$QCOW_CTL" resize "$dev" +16M
	settle
	size=$(lsblk -b -d -n -o SIZE "$dev" | tr -d ' ')
	[ "$size" = $((48 << 20)) ] || die "lsblk: size $size after resize, want 48 MiB"
	[ "$(blockdev --getsize64 "$dev")" = $((48 << 20)) ] || die "blockdev: wrong size after resize"
	want_prop "$dev" QCOW_IMAGE "$W/blank.qcow2"
	expect "$QCOW_CTL" detach "$dev"
	settle
	sleep 0.5
	kill "$monpid"
	wait "$monpid" 2>/dev/null || true
	monpid=
	ev=$(events "$dev")
	echo "events of $dev:"
	echo "$ev"
	want="KERNEL add - -
UDEV add - $W/blank.qcow2
KERNEL change 1 -
UDEV change 1 $W/blank.qcow2
KERNEL remove - -
UDEV remove"
	# udev's own "watch" change events (qcowctl resize opened the disk for
	# writing) may come in between: leave them out; udev's remove event
	# repeats what its database held (QCOW_IMAGE) or not
	[ "$(grep -v -e 'change - ' <<<"$ev" | sed 's/^UDEV remove .*/UDEV remove/')" = "$want" ] ||
		die "events are not add, change RESIZE=1, remove (kernel and udev)"
	udevadm info --query=property --name="$dev" >/dev/null 2>&1 &&
		die "udevadm info still knows $dev after detach"
	echo "ok: udev forgot $dev"
}

t_links_removed() {
	attach -P part.qcow2
	want_link "/dev/disk/by-uuid/$uuid" "${dev}p1"
	expect "$QCOW_CTL" detach "$dev"
	settle
	[ ! -e "/dev/disk/by-uuid/$uuid" ] && [ ! -L "/dev/disk/by-uuid/$uuid" ] ||
		die "/dev/disk/by-uuid/$uuid is still there after detach"
	[ ! -e /dev/disk/by-label/qcowtest ] || die "by-label link left after detach"
}

t_watch() {
	attach blank.qcow2
	[ -z "$(prop "$dev" ID_FS_TYPE)" ] || die "blank disk has ID_FS_TYPE"
	mkfs.ext4 -q -L watched "$dev"
	settle
	want_prop "$dev" ID_FS_TYPE ext4
	want_prop "$dev" ID_FS_LABEL watched
	want_link /dev/disk/by-label/watched "$dev"
	want_prop "$dev" QCOW_IMAGE "$W/blank.qcow2"
}

# The moment after a write or an unmount, udev probes the disk (watch) and
# holds it open: detach and snapshot apply must wait that out, not fail.
t_busy() {
	local i t0 t1 mnt=$W/mnt
	for i in 1 2 3; do
		attach blank.qcow2
		dd if=/dev/urandom of="$dev" bs=64k count=4 conv=fsync status=none
		echo "round $i: open_count right after the write: $(cat "/sys/block/${dev#/dev/}/qcow/open_count")"
		"$QCOW_CTL" detach "$dev" || die "detach right after a write failed (round $i)"
		[ ! -e "/sys/block/${dev#/dev/}" ] || die "$dev still exists"
		settle
	done
	attach -P part.qcow2
	expect "$QCOW_CTL" snapshot create "$dev" clean
	mkdir -p "$mnt"
	for i in 1 2 3; do
		mount "${dev}p1" "$mnt"
		echo "round $i" >"$mnt/new.txt"
		umount "$mnt"
		"$QCOW_CTL" snapshot apply "$dev" clean ||
			die "snapshot apply right after umount failed (round $i)"
		settle
		mount -o ro "${dev}p1" "$mnt"
		[ ! -e "$mnt/new.txt" ] || { umount "$mnt"; die "new.txt survived the apply"; }
		umount "$mnt"
	done
	# a real holder still gets EBUSY, and at once while udev is idle
	settle
	exec 3<"$dev"
	t0=$(date +%s%N)
	if "$QCOW_CTL" detach "$dev" 2>err; then
		die "detach of an open device succeeded"
	fi
	t1=$(date +%s%N)
	exec 3<&-
	grep -q "is in use" err || die "unexpected error: $(cat err)"
	echo "EBUSY after $(((t1 - t0) / 1000000)) ms"
	[ $((t1 - t0)) -lt 3000000000 ] || die "detach took $(((t1 - t0) / 1000000)) ms to say EBUSY with udev idle"
}

check properties t_properties
check lsblk t_lsblk
check uevents t_uevents
check links-removed t_links_removed
check watch t_watch
check busy-waited t_busy

echo "udev: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
