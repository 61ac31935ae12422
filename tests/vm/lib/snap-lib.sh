# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Helpers for the snapshot VM tests (tests/vm/guest/t-snapshot.sh).  Source
# it after guest-lib.sh.  What it gives:
#
#   sl_begin NAME         work directory $W=$QCOW_SCRATCH/NAME, driver loaded
#   sl_case CASE FN...    run FN in a subshell with errexit, print
#                         "PASS NAME/CASE" or "FAIL NAME/CASE", clean up
#   sl_end                unload, remove $W, summary; false if a case failed
#   sl_attach [-r] IMAGE  attach read-write (-r: read-only), print the device
#   sl_detach DEV         detach; the image is closed when it returns
#   sl_snap OP DEV NAME   snapshot create|apply|delete through qcowctl
#   sl_snap_names DEV     "id name" lines of qcowctl snapshot list --json
#   sl_qemu_names IMAGE   the same as qemu-img info reads them (detached)
#   sl_sum DEV [OFF LEN]  sha256 of the device (or a range), read with
#                         O_DIRECT
#   sl_sum_buffered DEV   the same through the page cache
#   sl_img_sum IMAGE [SNAPSHOT]   sha256 of the guest content qemu reads
#   sl_check IMAGE        qemu-img check: no corruption, no leaks, clean bits
#   sl_alloc IMAGE        bytes the image file occupies on disk
#   sl_fill DEV OFF LEN   write LEN bytes of random data at OFF (O_DIRECT)
#   sl_dm_linear NAME DEV OFF LEN   a device-mapper linear target over LEN
#                         bytes of DEV at OFF (so that its writers can be
#                         held off with dmsetup suspend); prints /dev/dm-N;
#                         resumed and removed by the cleanup
#
# QCOW_SNAP_CASES (globs) runs only the cases it names, for development.
#
# The driver under test is qcow unless QCOW_SNAP_PEER=qemu: then images are
# served by qemu-nbd and each snapshot operation detaches the image, runs
# `qemu-img snapshot` and attaches it again on the same nbd device.  The
# peer checks the test logic itself (checksums, sizes, expected lists) on
# a driver known to be right; cases that need the online ioctls (errors,
# EBUSY, snapshots under load) do not run there.

SL_PEER=${QCOW_SNAP_PEER:-qcow}
case $SL_PEER in
qcow | qemu) ;;
*) fail "QCOW_SNAP_PEER must be qcow or qemu, not $SL_PEER" ;;
esac

# shellcheck disable=SC2034 # for the tests that source this
K=1024 M=$((1024 * 1024))
SL_NPASS=0
SL_NFAIL=0
SL_FAILED=()

# die MSG: fail the current case (cases run in a subshell).
die() {
	echo "$*" >&2
	exit 1
}

# sl_begin NAME: create the work directory and load the driver.
sl_begin() {
	SL_NAME=$1
	W=$QCOW_SCRATCH/$SL_NAME
	rm -rf "$W"
	mkdir -p "$W"
	cd "$W"
	SL_T0=$SECONDS
	echo "$SL_NAME: driver under test: $SL_PEER"
	if [ "$SL_PEER" = qemu ]; then
		[ -d /sys/module/nbd ] || touch "$W/.nbd-was-unloaded"
		modprobe nbd nbds_max=8 || fail "modprobe nbd"
	else
		qcow_load
	fi
}

# sl_end: unload, clean up, print the summary; false if any case failed.
sl_end() {
	sl_cleanup
	if [ "$SL_PEER" = qcow ]; then
		sl_case unload qcow_unload
	elif [ -f "$W/.nbd-was-unloaded" ]; then
		modprobe -r nbd 2>/dev/null || true
	fi
	if [ -f "$W/.dm-was-unloaded" ]; then
		modprobe -r dm-mod 2>/dev/null || true
	fi
	cd /
	rm -rf "$W"
	echo "$SL_NAME: $SL_NPASS passed, $SL_NFAIL failed ($((SECONDS - SL_T0))s, $SL_PEER)"
	[ "$SL_NFAIL" -eq 0 ] || echo "$SL_NAME: failed: ${SL_FAILED[*]}"
	[ "$SL_NFAIL" -eq 0 ]
}

# sl_qcow_only CASE: true on qcow; on the peer, say the case does not run.
sl_qcow_only() {
	[ "$SL_PEER" = qcow ] && return 0
	echo "($SL_NAME/$1 needs the online ioctls: not run on the $SL_PEER peer)"
	return 1
}

# sl_case CASE FUNCTION [ARGS...]: one case in a subshell with errexit,
# its output indented; then whatever it left behind is undone.
sl_case() {
	local name=$1 rc t0=$SECONDS p sel=0
	local -a pats
	shift
	# QCOW_SNAP_CASES="glob...": run only the matching cases (development)
	read -ra pats <<<"${QCOW_SNAP_CASES:-*}"
	for p in "${pats[@]}"; do
		# shellcheck disable=SC2053
		[[ $name == $p ]] && sel=1
	done
	if [ $sel = 0 ] && [ "$name" != unload ]; then
		echo "($SL_NAME/$name not selected by QCOW_SNAP_CASES)"
		return 0
	fi
	set +e
	(set -e; cd "$W"; "$@") 2>&1 | sed -u 's/^/    /'
	rc=${PIPESTATUS[0]}
	set -e
	sl_cleanup
	if [ "$rc" -eq 0 ]; then
		echo "PASS $SL_NAME/$name ($((SECONDS - t0))s)"
		SL_NPASS=$((SL_NPASS + 1))
	else
		echo "FAIL $SL_NAME/$name"
		SL_NFAIL=$((SL_NFAIL + 1))
		SL_FAILED+=("$name")
	fi
}

# sl_cleanup: kill what a case left running (after resuming the dm devices
# it may wait on), remove those, unmount what is mounted under $W, detach
# the devices the case attached.
sl_cleanup() {
	local mnt line alive _
	# a writer blocked on a suspended dm device would never exit
	if [ -f "$W/.sl-dm" ]; then
		while read -r line; do
			dmsetup resume "$line" 2>/dev/null || true
		done <"$W/.sl-dm"
	fi
	if [ -f "$W/.sl-pids" ]; then
		while read -r line; do
			kill "$line" 2>/dev/null || true
		done <"$W/.sl-pids"
		# up to 10 s for them to end (fio first completes what is in flight)
		for _ in $(seq 100); do
			alive=0
			while read -r line; do
				grep -qs '^State:[[:space:]]*[^Z[:space:]]' "/proc/$line/status" && alive=1
			done <"$W/.sl-pids"
			[ $alive = 1 ] || break
			sleep 0.1
		done
		rm -f "$W/.sl-pids"
		sleep 1
	fi
	if [ -f "$W/.sl-dm" ]; then
		while read -r line; do
			dmsetup remove --retry "$line" 2>/dev/null ||
				dmsetup remove --force "$line" 2>/dev/null || true
		done <"$W/.sl-dm"
		rm -f "$W/.sl-dm"
	fi
	while mnt=$(awk -v w="$W/" 'index($2, w) == 1 { m = $2 } END { print m }' /proc/mounts) &&
		[ -n "$mnt" ]; do
		umount "$mnt" 2>/dev/null || umount -l "$mnt" || break
	done
	if [ -f "$W/.sl-devs" ]; then
		# newest first; no process substitution: the guest has no /dev/fd
		tac "$W/.sl-devs" >"$W/.sl-devs.rev"
		while read -r line; do
			(sl_detach "${line%% *}") >/dev/null 2>&1 || true
		done <"$W/.sl-devs.rev"
		rm -f "$W/.sl-devs" "$W/.sl-devs.rev"
	fi
}

# sl_nbd_up DEV IMAGE [-r]: serve IMAGE on the nbd device DEV.
sl_nbd_up() {
	local dev=$1 img=$2 _
	local -a opt=(-f qcow2 --cache=none --aio=native --discard=unmap)
	[ "${3:-}" != -r ] || opt+=(-r)
	qemu-nbd -c "$dev" "${opt[@]}" --pid-file="$W/.nbd-${dev#/dev/}.pid" "$img" ||
		die "qemu-nbd -c $dev $img failed"
	for _ in $(seq 100); do
		[ "$(cat "/sys/block/${dev#/dev/}/size")" = 0 ] || return 0
		sleep 0.1
	done
	die "$dev: no size after qemu-nbd -c"
}

# sl_nbd_down DEV: disconnect, wait until qemu-nbd has closed the image.
sl_nbd_down() {
	local dev=$1 pidf pid _
	pidf=$W/.nbd-${dev#/dev/}.pid
	pid=$(cat "$pidf" 2>/dev/null) || pid=
	qemu-nbd -d "$dev" >/dev/null || die "qemu-nbd -d $dev failed"
	if [ -n "$pid" ]; then
		for _ in $(seq 300); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		! kill -0 "$pid" 2>/dev/null || die "qemu-nbd ($pid) did not exit"
	fi
	rm -f "$pidf"
}

# sl_attach [-r] IMAGE: attach IMAGE, print the device.
sl_attach() {
	local ro='' img dev b
	if [ "$1" = -r ]; then
		ro=-r
		shift
	fi
	img=$1
	if [ "$SL_PEER" = qcow ]; then
		dev=$("$QCOW_CTL" attach $ro "$img") || die "qcowctl attach $ro $img failed"
	else
		dev=
		for b in /sys/block/nbd*; do
			if [ ! -e "$b/pid" ] && [ "$(cat "$b/size")" = 0 ] &&
				! grep -q "^/dev/${b##*/} " "$W/.sl-devs" 2>/dev/null; then
				dev=/dev/${b##*/}
				break
			fi
		done
		[ -n "$dev" ] || die "no free nbd device"
		sl_nbd_up "$dev" "$img" $ro
	fi
	echo "$dev $img $ro" >>"$W/.sl-devs"
	echo "$dev"
}

# sl_dev_image DEV: the image sl_attach attached as DEV.
sl_dev_image() {
	awk -v d="$1" '$1 == d { print $2 }' "$W/.sl-devs" | tail -n 1
}

# sl_detach DEV
sl_detach() {
	local dev=$1
	if [ "$SL_PEER" = qcow ]; then
		"$QCOW_CTL" detach "$dev" || die "qcowctl detach $dev failed"
	else
		sl_nbd_down "$dev"
	fi
	if [ -f "$W/.sl-devs" ]; then
		awk -v d="$dev" '$1 != d' "$W/.sl-devs" >"$W/.sl-devs.new"
		mv "$W/.sl-devs.new" "$W/.sl-devs"
	fi
}

# sl_snap create|apply|delete DEV NAME|ID: one snapshot operation; on the
# peer, offline with qemu-img between a disconnect and a reconnect.
sl_snap() {
	local op=$1 dev=$2 arg=$3 img flag
	if [ "$SL_PEER" = qcow ]; then
		"$QCOW_CTL" snapshot "$op" "$dev" "$arg" ||
			die "qcowctl snapshot $op $dev '$arg' failed"
		return
	fi
	case $op in
	create) flag=-c ;;
	apply) flag=-a ;;
	delete) flag=-d ;;
	*) die "sl_snap: unknown operation $op" ;;
	esac
	img=$(sl_dev_image "$dev")
	if [ "$op" = delete ]; then
		# qemu-img snapshot -d takes a name only; qcowctl, like -a, an id too
		arg=$(sl_qemu_names_u "$img" | awk -v a="$arg" '$1 == a { sub(/^[^ ]* /, ""); n = $0 }
			END { print (n == "" ? a : n) }')
	fi
	sl_nbd_down "$dev"
	qemu-img snapshot "$flag" "$arg" "$img" || die "qemu-img snapshot $flag '$arg' $img failed"
	sl_nbd_up "$dev" "$img"
}

# sl_snap_names DEV: "ID NAME" per snapshot, in table order.
sl_snap_names() {
	local out
	if [ "$SL_PEER" = qcow ]; then
		out=$("$QCOW_CTL" snapshot list --json "$1") || die "qcowctl snapshot list --json $1 failed"
		jq -r '.[] | "\(.id) \(.name)"' <<<"$out"
	else
		sl_qemu_names_u "$(sl_dev_image "$1")"
	fi
}

# sl_qemu_names IMAGE: "ID NAME" per snapshot as qemu-img reads them.
sl_qemu_names() {
	qemu-img info --output=json "$1" | jq -r '(.snapshots // [])[] | "\(.id) \(.name)"'
}

# sl_qemu_names_u IMAGE: the same, of an image in use (qemu-img -U).
sl_qemu_names_u() {
	qemu-img info -U --output=json "$1" | jq -r '(.snapshots // [])[] | "\(.id) \(.name)"'
}

# sl_sum DEV [OFF LEN]: sha256 of the device or of LEN bytes at OFF (MiB
# aligned), read with O_DIRECT so the page cache cannot answer.
sl_sum() {
	local dev=$1 size
	if [ $# -gt 1 ]; then
		dd if="$dev" bs=1M iflag=direct,skip_bytes,count_bytes skip="$2" count="$3" \
			status=none | sha256sum | cut -d' ' -f1
	else
		size=$(blockdev --getsize64 "$dev")
		dd if="$dev" bs=1M iflag=direct,count_bytes count="$size" status=none |
			sha256sum | cut -d' ' -f1
	fi
}

# sl_sum_buffered DEV: sha256 of the device read through the page cache.
sl_sum_buffered() {
	sha256sum <"$1" | cut -d' ' -f1
}

# sl_img_sum IMAGE [SNAPSHOT]: sha256 of the guest content qemu reads
# (of SNAPSHOT, a name, when given).
sl_img_sum() {
	local img=$1 tmp
	tmp=$W/.sum-$BASHPID.raw
	if [ $# -gt 1 ]; then
		# a comma in an option value is written twice
		qemu-img convert -l "snapshot.name=${2//,/,,}" -O raw "$img" "$tmp" ||
			die "qemu-img convert -l snapshot.name=$2 $img failed"
	else
		qemu-img convert -O raw "$img" "$tmp" || die "qemu-img convert $img failed"
	fi
	sha256sum <"$tmp" | cut -d' ' -f1
	rm -f "$tmp"
}

# sl_incompat IMAGE: the header's incompatible feature bits (v3), decimal.
sl_incompat() {
	local v
	v=$(od -An -tu4 --endian=big -j 4 -N 4 "$1" | tr -d ' ')
	if [ "$v" -lt 3 ]; then
		echo 0
	else
		od -An -tu8 --endian=big -j 72 -N 8 "$1" | tr -d ' '
	fi
}

# sl_check IMAGE: qemu-img check finds no corruption and no leaked
# clusters; the header has neither the dirty nor the corrupt bit.
sl_check() {
	local img=$1 rc=0 out bits
	out=$(qemu-img check --output=json "$img" 2>&1) || rc=$?
	if ! jq -e '(.corruptions // 0) == 0 and (.leaks // 0) == 0 and
		."check-errors" == 0' >/dev/null 2>&1 <<<"$out" || [ "$rc" -ne 0 ]; then
		qemu-img check "$img" 2>&1 | head -n 30
		die "qemu-img check $img: not clean (exit $rc)"
	fi
	bits=$(sl_incompat "$img")
	[ $((bits & 3)) -eq 0 ] || die "$img: incompatible features $bits (dirty/corrupt bit set)"
}

# sl_alloc IMAGE: bytes allocated to the image file.
sl_alloc() {
	echo $(($(stat -c %b "$1") * $(stat -c %B "$1")))
}

# sl_fill DEV OFF LEN: LEN bytes of random data written at OFF with
# O_DIRECT (OFF and LEN multiples of 64 KiB).
sl_fill() {
	local dev=$1 off=$2 len=$3
	dd if=/dev/urandom of="$dev" bs=64K count=$((len / 65536)) \
		seek=$((off / 65536)) oflag=direct iflag=fullblock status=none ||
		die "writing $len bytes at $off of $dev failed"
}

# sl_dm_linear NAME DEV OFF LEN: a dm-linear device NAME mapping LEN bytes
# of DEV from OFF (multiples of 512); prints its node, /dev/dm-N (there is
# no udev to make /dev/mapper/NAME).  Suspend it (dmsetup suspend NAME) to
# hold its writers off: the call returns once the I/O they had in flight
# has completed, and what they submit meanwhile waits for the resume.
sl_dm_linear() {
	local name=$1 dev=$2 off=$3 len=$4 minor _
	command -v dmsetup >/dev/null || die "no dmsetup (Debian package dmsetup)"
	if [ ! -e /sys/module/dm_mod ]; then
		touch "$W/.dm-was-unloaded"
		modprobe dm-mod || die "modprobe dm-mod failed"
	fi
	dmsetup create "$name" --table "0 $((len / 512)) linear $dev $((off / 512))" >&2 ||
		die "dmsetup create $name over $dev failed"
	echo "$name" >>"$W/.sl-dm"
	minor=$(dmsetup info -c --noheadings -o minor "$name") ||
		die "dmsetup info $name failed"
	for _ in $(seq 50); do
		[ -b "/dev/dm-$minor" ] && break
		sleep 0.1
	done
	[ -b "/dev/dm-$minor" ] || die "/dev/dm-$minor did not appear"
	echo "/dev/dm-$minor"
}

# sl_bg CMD...: run CMD in the background, killed by the cleanup; prints
# nothing, sets SL_BG_PID.
sl_bg() {
	"$@" &
	SL_BG_PID=$!
	echo "$SL_BG_PID" >>"$W/.sl-pids"
}
