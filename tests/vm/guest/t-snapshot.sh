#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Online internal snapshots (issue 5) through `qcowctl snapshot`, checked
# against QEMU's own reading and writing of the snapshot table:
#   feature        the module grants QCOW_FEAT_SNAPSHOT (without it every
#                  snapshot ioctl is ENOTTY and qcowctl says so: the test
#                  fails there, naming it)
#   interop-online snapshots taken online, with writes and discards between
#                  them and the device's sha256 recorded at each, are
#                  listed by qemu-img after detach with the same ids and
#                  names (the tables of `qcowctl snapshot list` and
#                  `qemu-img snapshot -l` agree column for column), and
#                  `qemu-img convert -l` of each equals its checksum
#   interop-qemu   snapshots made by `qemu-img snapshot -c` are listed,
#                  applied (by name and by id) and deleted by qcowctl
#   apply          after a write-heavy period (fio, discards) apply brings
#                  back the exact content, read with O_DIRECT and through a
#                  page cache that held the newer data
#   apply-busy     a snapshot of a mounted ext4 (frozen around the create);
#                  apply is refused while mounted, and while another
#                  process holds the device open, with qcowctl's message;
#                  after umount it works and the files are as they were
#   apply-resized  the image grown by `qemu-img resize` between snapshot and
#                  apply: the device's size follows the snapshot's
#   errors         duplicate name (EEXIST), unknown name (ENOENT), a name of
#                  255 bytes (QEMU's limit; 256 refused), DEV given as the
#                  image path, read-only
#                  attach (list works, the rest EROFS)
#   delete-frees   deleting a snapshot whose clusters were all overwritten
#                  shrinks the image file by their size
#   hundred        100 snapshots with a write between each, then all deleted
#                  in a mixed order: the image is back to its allocated size
#                  within a few clusters
#   load           fio verified writes (crc32c) to the whole disk for 60 s
#                  (QCOW_SNAP_LOAD_SECONDS overrides) while a snapshot is
#                  created every 2 s and the oldest beyond four deleted: no
#                  I/O error (fio, kernel log), no verify failure, check
#                  clean.  Two writers, of the first 8 MiB and of the other
#                  32, each through dm-linear: before each create both are
#                  held off (dmsetup suspend waits for their in-flight
#                  writes), the sha256 of the first 8 MiB is taken, the
#                  second writer resumes and the snapshot is created while
#                  it writes, then the first resumes.  qemu's reading of
#                  every remaining snapshot must match that checksum, and
#                  qcow's apply of the oldest must read as qemu reads it.
#                  fio never has two overlapping I/Os in flight
#                  (serialize_overlap: a block device may apply those in
#                  either order).  On a verify failure the case prints what
#                  the bad piece holds and whether the image holds it too
#                  (sl_load_diag)
# After every step that changes the image, the image is detached and
# `qemu-img check` must find no corruption and no leak (the kernel caches
# metadata, so an attached image cannot be checked), then reattached.
#
# About 5 minutes under TCG on an idle 2-core host.
# vm-timeout: 1200
#
# QCOW_SNAP_PEER=qemu runs the cases that do not need the online ioctls
# with qemu-nbd as the device and qemu-img doing each snapshot operation
# offline: a check of the test itself (tests/vm/lib/snap-lib.sh).
# Prints "PASS snapshot/<case>" or "FAIL snapshot/<case>"; exits 1 if any
# case failed.
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
. "$QCOW_TOP/tests/vm/lib/snap-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"

# sl_recheck DEV IMAGE: detach, qemu-img check clean, attach again; prints
# the new device.
sl_recheck() {
	sl_detach "$1"
	sl_check "$2"
	sl_attach "$2"
}

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

# --- cases ---------------------------------------------------------------------

c_feature() {
	local out
	out=$("$QCOW_CTL" features --json) || die "qcowctl features failed"
	if ! jq -e '.features | index("snapshot")' >/dev/null <<<"$out"; then
		qemu-img create -q -f qcow2 f.qcow2 1M
		dev=$(sl_attach f.qcow2)
		expect_msg 1 "qcowctl: $dev: the module does not support snapshots" \
			"$QCOW_CTL" snapshot list "$dev"
		die "the module does not grant QCOW_FEAT_SNAPSHOT: $(jq -c .features <<<"$out")"
	fi
}

c_interop_online() {
	local img=$W/online.qcow2 dev cur i n2='second snapshot, é' ours theirs
	local -a sum names
	qemu-img create -q -f qcow2 "$img" 32M
	dev=$(sl_attach "$img")
	sl_fill "$dev" 0 $((4 * M))
	sl_fill "$dev" $((24 * M)) $((2 * M))
	sum[1]=$(sl_sum "$dev")
	sl_snap create "$dev" first
	dev=$(sl_recheck "$dev" "$img")
	sl_fill "$dev" $((2 * M)) $((4 * M))	# half over snapshotted data
	blkdiscard -o $((24 * M)) -l $((1 * M)) "$dev"
	sum[2]=$(sl_sum "$dev")
	sl_snap create "$dev" "$n2"
	sl_fill "$dev" 0 $((1 * M))
	sl_fill "$dev" $((16 * M)) $((1 * M))
	cur=$(sl_sum "$dev")
	names=("" first "$n2")
	same "snapshots listed" "$(sl_snap_names "$dev")" "$(printf '1 %s\n2 %s' first "$n2")"
	if [ "$SL_PEER" = qcow ]; then
		"$QCOW_CTL" snapshot list --json "$dev" >list.json
		jq -e --arg now "$(date +%s)" 'length == 2 and
			all(.[]; .disk_size == 33554432 and .vm_state_size == 0 and
				.vm_clock_nsec == 0 and .date_nsec < 1000000000 and
				(.date_sec - ($now | tonumber) | fabs) < 600)' list.json >/dev/null ||
			die "snapshot list --json: unexpected fields: $(cat list.json)"
		"$QCOW_CTL" snapshot list "$dev" >ours.txt
	fi
	same "content after the snapshots" "$(sl_sum "$dev")" "$cur"
	sl_detach "$dev"
	sl_check "$img"
	same "qemu-img's list" "$(sl_qemu_names "$img")" "$(printf '1 %s\n2 %s' first "$n2")"
	qemu-img snapshot -l "$img" | tee theirs.txt
	if [ "$SL_PEER" = qcow ]; then
		# the same table but for ICOUNT (its last 11 columns), which the
		# ioctl does not report
		ours=$(sed 's/.\{0,11\}$//' ours.txt)
		theirs=$(sed 's/.\{0,11\}$//' theirs.txt)
		[ "$ours" = "$theirs" ] || {
			diff ours.txt theirs.txt || true
			die "qcowctl snapshot list and qemu-img snapshot -l differ"
		}
	fi
	for i in 1 2; do
		same "qemu-img convert -l '${names[i]}'" "$(sl_img_sum "$img" "${names[i]}")" "${sum[i]}"
	done
	same "qemu-img convert (current)" "$(sl_img_sum "$img")" "$cur"
}

c_interop_qemu() {
	local img=$W/qemu.qcow2 dev q1 q2 q3
	qemu-img create -q -f qcow2 "$img" 32M
	qemu-io -f qcow2 -c 'write -P 0x11 0 4M' -c 'write -P 0x22 24M 2M' "$img" >/dev/null
	q1=$(sl_img_sum "$img")
	qemu-img snapshot -c q1 "$img"
	qemu-io -f qcow2 -c 'write -P 0x33 2M 4M' -c 'discard 24M 1M' \
		-c 'write -z 0 64k' "$img" >/dev/null
	q2=$(sl_img_sum "$img")
	qemu-img snapshot -c 'q 2' "$img"
	qemu-io -f qcow2 -c 'write -P 0x44 16M 2M' -c 'write -P 0x55 1M 64k' "$img" >/dev/null
	q3=$(sl_img_sum "$img")
	sl_check "$img"

	dev=$(sl_attach "$img")
	same "snapshots listed" "$(sl_snap_names "$dev")" "$(printf '1 q1\n2 q 2')"
	same "content before apply" "$(sl_sum "$dev")" "$q3"
	sl_snap apply "$dev" q1
	same "after apply q1 (by name)" "$(sl_sum "$dev")" "$q1"
	sl_snap apply "$dev" 2
	same "after apply 2 (by id)" "$(sl_sum "$dev")" "$q2"
	sl_fill "$dev" 0 $((2 * M))
	sl_snap apply "$dev" q1
	same "after apply q1 again" "$(sl_sum "$dev")" "$q1"
	dev=$(sl_recheck "$dev" "$img")
	sl_snap delete "$dev" q1
	same "after delete q1 (by name)" "$(sl_snap_names "$dev")" "2 q 2"
	dev=$(sl_recheck "$dev" "$img")
	sl_snap delete "$dev" 2
	same "after delete 2 (by id)" "$(sl_snap_names "$dev")" ""
	same "content after the deletes" "$(sl_sum "$dev")" "$q1"
	sl_detach "$dev"
	sl_check "$img"
	same "qemu-img's list" "$(sl_qemu_names "$img")" ""
	same "qemu-img convert" "$(sl_img_sum "$img")" "$q1"
}

c_apply() {
	local img=$W/apply.qcow2 dev base
	qemu-img create -q -f qcow2 "$img" 32M
	dev=$(sl_attach "$img")
	sl_fill "$dev" 0 $((8 * M))
	sl_fill "$dev" $((24 * M)) $((2 * M))
	base=$(sl_sum "$dev")
	sl_snap create "$dev" base
	cat >heavy.fio <<-EOF
	[heavy]
	filename=$dev
	ioengine=libaio
	direct=1
	iodepth=16
	rw=randwrite
	bsrange=4k-256k
	blockalign=4k
	size=32M
	io_size=16M
	randrepeat=0
	EOF
	fio --output=heavy.out heavy.fio || { cat heavy.out; die "fio failed"; }
	blkdiscard -o $((4 * M)) -l $((4 * M)) "$dev"
	sl_fill "$dev" $((20 * M)) $((4 * M))
	# fill the page cache with the new content
	same "buffered read before apply" "$(sl_sum_buffered "$dev")" "$(sl_sum "$dev")"
	[ "$(sl_sum "$dev")" != "$base" ] || die "the writes changed nothing"
	sl_snap apply "$dev" base
	same "after apply, O_DIRECT" "$(sl_sum "$dev")" "$base"
	same "after apply, page cache" "$(sl_sum_buffered "$dev")" "$base"
	dev=$(sl_recheck "$dev" "$img")
	same "after reattach" "$(sl_sum "$dev")" "$base"
	sl_detach "$dev"
	same "qemu-img convert" "$(sl_img_sum "$img")" "$base"
	same "qemu-img convert -l base" "$(sl_img_sum "$img" base)" "$base"
}

c_apply_busy() {
	local img=$W/busy.qcow2 dev mnt=$W/mnt busy fd
	sl_qcow_only apply-busy || return 0
	busy="device is in use (mounted or open elsewhere); unmount it first"
	qemu-img create -q -f qcow2 "$img" 32M
	dev=$(sl_attach "$img")
	mkfs.ext4 -q -E nodiscard "$dev"
	mkdir -p "$mnt"
	mount "$dev" "$mnt"
	head -c 300000 /dev/urandom >"$mnt/kept"
	sha256sum "$mnt/kept" >kept.sum
	fsfreeze --freeze "$mnt"
	"$QCOW_CTL" snapshot create "$dev" fs1 || { fsfreeze --unfreeze "$mnt"; die "create while mounted failed"; }
	fsfreeze --unfreeze "$mnt"
	rm "$mnt/kept"
	echo later >"$mnt/later"
	sync
	expect_msg 1 "qcowctl: $dev: $busy" "$QCOW_CTL" snapshot apply "$dev" fs1
	if [ ! -f "$mnt/later" ] || [ -e "$mnt/kept" ]; then
		die "a refused apply changed the file system"
	fi
	umount "$mnt"
	exec {fd}<"$dev"
	expect_msg 1 "qcowctl: $dev: $busy" "$QCOW_CTL" snapshot apply "$dev" fs1
	exec {fd}<&-
	"$QCOW_CTL" snapshot apply "$dev" fs1 || die "apply after umount failed"
	fsck.ext4 -n "$dev" || die "fsck.ext4 after apply found errors"
	mount "$dev" "$mnt"
	(cd "$mnt" && sha256sum -c "$W/kept.sum") || die "kept is not back as it was"
	[ ! -e "$mnt/later" ] || die "later survived the apply"
	umount "$mnt"
	dev=$(sl_recheck "$dev" "$img")
	sl_detach "$dev"
}

c_apply_resized() {
	local img=$W/resize.qcow2 dev small
	qemu-img create -q -f qcow2 "$img" 16M
	dev=$(sl_attach "$img")
	sl_fill "$dev" 0 $((16 * M))
	small=$(sl_sum "$dev")
	sl_snap create "$dev" small
	sl_detach "$dev"
	qemu-img resize -q "$img" 40M
	sl_check "$img"
	dev=$(sl_attach "$img")
	same "size after resize" "$(blockdev --getsize64 "$dev")" $((40 * M))
	sl_fill "$dev" $((30 * M)) $((4 * M))
	sl_fill "$dev" 0 $((1 * M))
	sl_snap apply "$dev" small
	same "size after apply" "$(blockdev --getsize64 "$dev")" $((16 * M))
	same "content after apply" "$(sl_sum "$dev")" "$small"
	sl_detach "$dev"
	sl_check "$img"
	same "virtual size qemu-img sees" "$(qemu-img info --output=json "$img" | jq '."virtual-size"')" $((16 * M))
	same "qemu-img convert" "$(sl_img_sum "$img")" "$small"
}

c_errors() {
	local img=$W/errors.qcow2 dev long
	sl_qcow_only errors || return 0
	long=$(printf 'n%.0s' $(seq 255))
	qemu-img create -q -f qcow2 "$img" 16M
	dev=$(sl_attach "$img")
	sl_fill "$dev" 0 $((1 * M))
	sl_snap create "$dev" s1
	expect_msg 1 "qcowctl: $dev: snapshot 's1' already exists" \
		"$QCOW_CTL" snapshot create "$dev" s1
	expect_msg 1 "qcowctl: $dev: no snapshot 'nope'" "$QCOW_CTL" snapshot apply "$dev" nope
	expect_msg 1 "qcowctl: $dev: no snapshot '7'" "$QCOW_CTL" snapshot delete "$dev" 7
	sl_snap create "$dev" "$long"
	expect_msg 2 "qcowctl: snapshot create: the snapshot name is 256 bytes long, at most 255 are allowed (usage: qcowctl snapshot create DEV NAME)" \
		"$QCOW_CTL" snapshot create "$dev" "${long}n"
	"$QCOW_CTL" snapshot create "$img" viapath || die "create with DEV as the image path failed"
	same "list by image path" "$("$QCOW_CTL" snapshot list --json "$img" | jq -r '.[].id' | paste -sd' ')" "1 2 3"
	same "long name" "$(sl_snap_names "$dev" | sed -n 2p)" "2 $long"
	sl_detach "$dev"
	sl_check "$img"
	same "qemu-img's list" "$(sl_qemu_names "$img")" "$(printf '1 s1\n2 %s\n3 viapath' "$long")"
	qemu-img info --output=json "$img" | jq -e '.snapshots[1]."vm-state-size" == 0' >/dev/null ||
		die "qemu-img info does not read the snapshot with a long name"
	same "the long name as qcowctl info reads it" \
		"$("$QCOW_CTL" info --json "$img" | jq -r '.snapshots[1].name')" "$long"

	dev=$(sl_attach -r "$img")
	same "list, read-only" "$(sl_snap_names "$dev" | cut -c1-12)" "$(printf '1 s1\n2 nnnnnnnnnn\n3 viapath')"
	expect_msg 1 "qcowctl: $dev: attached read-only; snapshots need a read-write attach" \
		"$QCOW_CTL" snapshot create "$dev" s4
	expect_msg 1 "qcowctl: $dev: attached read-only; snapshots need a read-write attach" \
		"$QCOW_CTL" snapshot apply "$dev" s1
	expect_msg 1 "qcowctl: $dev: attached read-only; snapshots need a read-write attach" \
		"$QCOW_CTL" snapshot delete "$dev" s1
	sl_detach "$dev"
	sl_check "$img"
	same "qemu-img's list after the refusals" "$(sl_qemu_names "$img" | wc -l)" 3
}

c_delete_frees() {
	local img=$W/free.qcow2 dev cur a1 a2
	qemu-img create -q -f qcow2 "$img" 32M
	dev=$(sl_attach "$img")
	sl_fill "$dev" 0 $((16 * M))
	sl_snap create "$dev" old
	sl_fill "$dev" 0 $((16 * M))	# every cluster copied away from "old"
	cur=$(sl_sum "$dev")
	sl_detach "$dev"
	sl_check "$img"
	a1=$(sl_alloc "$img")
	dev=$(sl_attach "$img")
	sl_snap delete "$dev" old
	same "content after delete" "$(sl_sum "$dev")" "$cur"
	sl_detach "$dev"
	sl_check "$img"
	a2=$(sl_alloc "$img")
	echo "allocated: $a1 with the snapshot, $a2 after deleting it"
	[ $((a1 - a2)) -ge $((15 * M)) ] ||
		die "deleting the snapshot freed $(((a1 - a2) / K)) KiB, want about 16 MiB"
	same "qemu-img convert" "$(sl_img_sum "$img")" "$cur"
}

c_hundred() {
	local img=$W/hundred.qcow2 dev i a0 a1 a2 cur cl=65536 ids
	local -A sum=()
	qemu-img create -q -f qcow2 "$img" 8M
	dev=$(sl_attach "$img")
	sl_fill "$dev" 0 $((4 * M))
	sl_detach "$dev"
	sl_check "$img"
	a0=$(sl_alloc "$img")
	dev=$(sl_attach "$img")
	for i in $(seq 1 100); do
		# every fourth: one cluster of the 64 allocated ones, a different
		# one each time, so that the snapshots differ
		if [ $((i % 4)) -eq 1 ]; then
			sl_fill "$dev" $(((i * 37 % 64) * cl)) $cl
		fi
		if [ $((i % 32)) -eq 1 ]; then
			sum[$i]=$(sl_sum "$dev")
		fi
		sl_snap create "$dev" "s$i"
	done
	cur=$(sl_sum "$dev")
	same "ids listed" "$(sl_snap_names "$dev" | cut -d' ' -f1 | paste -sd' ')" "$(seq -s' ' 1 100)"
	same "names listed" "$(sl_snap_names "$dev" | cut -d' ' -f2 | paste -sd' ')" "$(seq -f 's%g' -s' ' 1 100)"
	sl_detach "$dev"
	sl_check "$img"
	a1=$(sl_alloc "$img")
	same "qemu-img's list" "$(sl_qemu_names "$img" | wc -l)" 100
	for i in "${!sum[@]}"; do
		same "qemu-img convert -l s$i" "$(sl_img_sum "$img" "s$i")" "${sum[$i]}"
	done
	dev=$(sl_attach "$img")
	# the even ones by name from the top, then the odd ones by id from the
	# bottom: entries leave the start, the middle and the end of the table
	for i in $(seq 100 -2 2); do
		sl_snap delete "$dev" "s$i"
		if [ "$i" -eq 50 ]; then
			dev=$(sl_recheck "$dev" "$img")
		fi
	done
	ids=$(sl_snap_names "$dev" | cut -d' ' -f1 | paste -sd' ')
	same "ids left" "$ids" "$(seq -s' ' 1 2 99)"
	for i in $(seq 1 2 99); do
		sl_snap delete "$dev" "$i"
	done
	same "snapshots left" "$(sl_snap_names "$dev")" ""
	same "content after the deletes" "$(sl_sum "$dev")" "$cur"
	sl_detach "$dev"
	sl_check "$img"
	a2=$(sl_alloc "$img")
	echo "allocated: $a0 before, $a1 with 100 snapshots, $a2 after deleting them"
	[ "$a2" -le $((a0 + 4 * cl)) ] ||
		die "allocated $a2 bytes after deleting every snapshot, $a0 before (more than 4 clusters more)"
	same "qemu-img's list" "$(sl_qemu_names "$img")" ""
	same "qemu-img convert" "$(sl_img_sum "$img")" "$cur"
}

# sl_load_diag DEV IMG HELD FREE HLEN: what a verify failure of c_load was.
# fio (verify_dump) left each failing 4 KiB piece as it read it
# (NAME.OFFSET.received) and as it wrote it (.expected).  Printed: the
# 512-byte sectors that differ, what the first few hold, and what the
# device reads there now that fio is done (the region is no longer
# written): the expected data again means the read was torn or misdirected,
# the received data means the image holds the wrong bytes.  Then the same
# range as QEMU reads the image after a detach, and qemu-img check.  fio's
# header (the first 64 bytes: time and sequence fields) is rebuilt for the
# .expected file, so it is left out of every comparison.
sl_piece_sum() { tail -c +65 | sha256sum; }
# sl_piece_off NAME FREE HLEN: the device offset of a dumped piece
sl_piece_off() {
	local off=${1%.received}
	off=${off##*.}
	if [ "${1%%.*}" = "${2##*/}" ]; then echo $(($3 + off)); else echo "$off"; fi
}
sl_piece_diff() { cmp -l "$1" "$2" | awk '$1 > 64 { print int(($1 - 1) / 512) }' | uniq; }
sl_load_diag() {
	local dev=$1 img=$2 held=$3 free=$4 hlen=$5 r e name part off s n=0 now q
	for r in ./*.received; do
		[ -e "$r" ] || { echo "diag: fio dumped no piece"; return 0; }
		e=${r%.received}.expected
		name=${r#./}
		part=${name%%.*}
		[ "$part" = "${held##*/}" ] || [ "$part" = "${free##*/}" ] ||
			echo "diag: $name: not from $held or $free"
		off=$(sl_piece_off "$name" "$free" "$hlen")
		echo "diag: piece at device offset $off (cluster-relative $((off % 65536))):" \
			"sectors that differ: $(sl_piece_diff "$r" "$e" | paste -sd, -)"
		for s in $(sl_piece_diff "$r" "$e" | head -n 3); do
			if cmp -s <(dd if="$r" bs=512 skip="$s" count=1 status=none) \
				<(head -c 512 /dev/zero); then
				echo "diag:   sector $s as read: zeros"
			else
				echo "diag:   sector $s as read: $(dd if="$r" bs=512 skip="$s" count=1 status=none |
					od -An -tx1 -N24 | tr -s ' ' | head -n 2 | paste -sd' ' -)"
			fi
		done
		now=$(dd if="$dev" bs=512 iflag=direct skip=$((off / 512)) count=8 status=none |
			sl_piece_sum)
		if [ "$now" = "$(sl_piece_sum <"$e")" ]; then
			echo "diag:   $dev reads it now as fio wrote it: the read was torn or misdirected"
		elif [ "$now" = "$(sl_piece_sum <"$r")" ]; then
			echo "diag:   $dev reads it now as fio read it: the image holds the wrong bytes"
		else
			echo "diag:   $dev reads it now as neither"
		fi
		n=$((n + 1))
		[ "$n" -lt 4 ] || break
	done
	dmsetup remove sl-held sl-free >/dev/null 2>&1 || true
	sl_detach "$dev"
	qemu-img convert -O raw "$img" diag.raw || return 0
	for r in ./*.received; do
		off=$(sl_piece_off "${r#./}" "$free" "$hlen")
		q=$(dd if=diag.raw bs=512 skip=$((off / 512)) count=8 status=none | sl_piece_sum)
		if [ "$q" = "$(sl_piece_sum <"${r%.received}.expected")" ]; then
			echo "diag: qemu-img reads the piece at $off as fio wrote it"
		else
			echo "diag: qemu-img reads the piece at $off otherwise than fio wrote it"
		fi
	done
	rm -f diag.raw
	qemu-img check "$img" 2>&1 | tail -n 5 | sed 's/^/diag: /'
}

c_load() {
	local img=$W/load.qcow2 dev held free secs n=0 rc=0 hlen=$((8 * M)) flen=$((32 * M)) keep=4
	local next s err0 t0 held_us=0
	local -A sum=() qsum=()
	local -a live=()
	sl_qcow_only load || return 0
	secs=${QCOW_SNAP_LOAD_SECONDS:-60}
	err0=$(dmesg | grep -c 'I/O error') || true
	qemu-img create -q -f qcow2 "$img" $((hlen + flen))
	dev=$(sl_attach "$img")
	# each part through dm-linear, so that its writer can be held off
	held=$(sl_dm_linear sl-held "$dev" 0 "$hlen")
	free=$(sl_dm_linear sl-free "$dev" "$hlen" "$flen")
	cat >load.fio <<-EOF
	[global]
	ioengine=libaio
	direct=1
	iodepth=8
	rw=randwrite
	bsrange=4k-128k
	blockalign=4k
	time_based=1
	runtime=$secs
	verify=crc32c
	verify_backlog=64
	verify_fatal=1
	verify_dump=1
	randrepeat=0
	serialize_overlap=1
	[held]
	filename=$held
	size=$hlen
	[free]
	filename=$free
	size=$flen
	EOF
	echo "fio verified writes for $secs s to the whole disk; every 2 s both writers are"
	echo "held off (dmsetup suspend) for a sha256 of the first $((hlen / M)) MiB, the writer of"
	echo "the rest resumes, a snapshot is created, the first writer resumes, the oldest"
	echo "snapshot beyond $keep is deleted"
	# not on the case's stdout: a pipe held open would keep sl_case waiting
	fio --output-format=json --output=load.json load.fio </dev/null >/dev/null 2>load.err &
	local fio_pid=$!
	echo "$fio_pid" >>"$W/.sl-pids"
	next=$((SECONDS + 2))
	while sleep $((next > SECONDS ? next - SECONDS : 0)) && kill -0 "$fio_pid" 2>/dev/null; do
		next=$((SECONDS + 2))
		n=$((n + 1))
		s=load-$n
		t0=${EPOCHREALTIME/./}
		# each returns once the writer's in-flight writes are done; the
		# free one is held too for a faster read, and resumed (its
		# queued writes go at once) before the create
		dmsetup suspend sl-held || die "dmsetup suspend sl-held failed"
		dmsetup suspend sl-free || die "dmsetup suspend sl-free failed"
		sum[$s]=$(sl_sum "$dev" 0 "$hlen")
		dmsetup resume sl-free || die "dmsetup resume sl-free failed"
		sl_snap create "$dev" "$s"
		dmsetup resume sl-held || die "dmsetup resume sl-held failed"
		held_us=$((held_us + ${EPOCHREALTIME/./} - t0))
		live+=("$s")
		if [ ${#live[@]} -gt $keep ]; then
			sl_snap delete "$dev" "${live[0]}"
			live=("${live[@]:1}")
		fi
	done
	wait "$fio_pid" || rc=$?
	sed -n '/^{/,$p' load.json >load.j
	jq -r '.jobs[] | "fio \(.jobname): wrote \(.write.io_bytes) B, verified \(.read.io_bytes) B, error \(.error)"' load.j ||
		{ cat load.json load.err; die "fio wrote no report (exit $rc)"; }
	if [ "$rc" -ne 0 ] || ! jq -e '(.jobs | length) == 2 and all(.jobs[]; .error == 0 and
		.write.io_bytes > 0 and .read.io_bytes > 0)' load.j >/dev/null; then
		head -n 20 load.err
		sl_load_diag "$dev" "$img" "$held" "$free" "$hlen"
		die "fio failed (exit $rc)"
	fi
	# one every 2 s on an idle host; TCG on a busy one takes longer
	[ "$n" -ge 5 ] || die "only $n snapshots in $secs s"
	echo "$n snapshots created, $((n - ${#live[@]})) deleted while fio ran; the first"
	echo "$((hlen / M)) MiB were held off for $((held_us / 1000000)) s in all"
	same "I/O errors in the kernel log" "$(dmesg | grep -c 'I/O error' || true)" "$err0"
	same "corrupt flag" "$(cat "/sys/block/${dev#/dev/}/qcow/corrupt")" 0
	same "snapshots listed" "$(sl_snap_names "$dev" | cut -d' ' -f2- | paste -sd' ')" "${live[*]}"
	dmsetup remove sl-held sl-free || die "dmsetup remove failed"
	sl_detach "$dev"
	sl_check "$img"
	same "qemu-img's list" "$(sl_qemu_names "$img" | cut -d' ' -f2- | paste -sd' ')" "${live[*]}"
	for s in "${live[@]}"; do
		qemu-img convert -l "snapshot.name=$s" -O raw "$img" snap.raw
		same "qemu-img convert -l $s, the first $((hlen / M)) MiB" \
			"$(head -c "$hlen" snap.raw | sha256sum | cut -d' ' -f1)" "${sum[$s]}"
		qsum[$s]=$(sha256sum <snap.raw | cut -d' ' -f1)
		rm -f snap.raw
	done
	# qcow reads the oldest one, the part written under load too, as qemu does
	dev=$(sl_attach "$img")
	s=${live[0]}
	sl_snap apply "$dev" "$s"
	same "after apply $s, the whole disk" "$(sl_sum "$dev")" "${qsum[$s]}"
	sl_detach "$dev"
	sl_check "$img"
}

sl_begin snapshot
if [ "$SL_PEER" = qcow ]; then
	sl_case feature c_feature
fi
sl_case interop-online c_interop_online
sl_case interop-qemu c_interop_qemu
sl_case apply c_apply
sl_case apply-busy c_apply_busy
sl_case apply-resized c_apply_resized
sl_case errors c_errors
sl_case delete-frees c_delete_frees
sl_case hundred c_hundred
sl_case load c_load
sl_end
