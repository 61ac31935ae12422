#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Security: what a caller without privilege, a caller with the wrong file
# descriptors and an image with hostile numbers can get out of the module.
# The threat model and which case proves what: Documentation/security.rst.
# Raw ioctls come from tests/vm/lib/qcow-ioctl.c (built here as qioc),
# which passes whatever arguments it is told, as a tool that skips
# qcowctl's checks would.
#
#   ioctl-reserved  every reserved field and unknown flag bit of every uapi
#                   struct (features, attach, layer descriptor, detach,
#                   snapshot create/apply/delete, snapshot list, resize),
#                   one at a time: EINVAL and nothing changes (no device,
#                   same snapshot table, same size); bad pointers EFAULT,
#                   unknown commands and wrong sizes ENOTTY
#   cap-control     control ioctls without CAP_SYS_ADMIN: as nobody (with
#                   the node opened by root and the fd inherited, and with
#                   the node chmod 0666), as root without the capability
#                   (setpriv), as root of a new user namespace: EPERM from
#                   the kernel, one line naming CAP_SYS_ADMIN from qcowctl;
#                   no device appears, none goes
#   cap-device      snapshot and resize ioctls on /dev/qcowN the same way:
#                   EPERM; the snapshot table, size and data do not change
#   ro-fd           the kernel checks the image fd's mode: O_RDONLY with a
#                   read-write attach, O_WRONLY, O_PATH: EBADF (logged);
#                   a directory, /dev/null: EINVAL; a read-only attach
#                   refuses writes that get past the block layer (BLKZEROOUT
#                   after blockdev --setrw); qcowctl without
#                   CAP_DAC_OVERRIDE cannot attach a 0444 image read-write;
#                   the image file does not change by one byte;
#                   snapshot create/apply/delete and resize through a
#                   descriptor of /dev/qcowN opened read-only: EBADF, the
#                   table and size unchanged (list works)
#   backing-fd      an overlay whose backing file names a secret (and one
#                   naming /etc/shadow): the kernel refuses it without a
#                   backing fd, reads the fd it is given and nothing else;
#                   qcowctl opens backing files with the caller's rights
#                   (refused without DAC override), and as root the
#                   secret is what the device shows (the caller opened
#                   it); an external data file naming the secret is
#                   refused by qcowctl and by the kernel
#   image-sizes     header and snapshot-table sizes at and past the
#                   limits that t-hostile does not try: refused by qcowctl
#                   and by the kernel with the field named; l1_size at the
#                   limit, legal, attaches (a 32 MiB table, no warning)
#   stale-clusters  the image on a block device full of old data: new
#                   clusters, partly written, read as zeros elsewhere; so
#                   do clusters reused after a discard
#
# Prints "PASS security/<case>" or "FAIL security/<case>"; exits 1 if any
# failed.  QCOW_WRITE_CASES=GLOB runs some cases only.
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"
. "$QCOW_TOP/tests/vm/lib/write-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
for t in cc setpriv unshare python3 jq; do
	command -v "$t" >/dev/null || fail "$t is not installed"
done

wl_begin security
chmod 755 "$W"
Q=$W/qioc
cc -Wall -O1 -I"$QCOW_TOP/include/uapi" -o "$Q" "$QCOW_TOP/tests/vm/lib/qcow-ioctl.c" ||
	fail "cannot build qcow-ioctl.c"

NOBODY=(setpriv --reuid=65534 --regid=65534 --clear-groups)
# root without CAP_SYS_ADMIN (dropped from the bounding set: the program
# run gets every capability but that one), without DAC override
NOCAP=(setpriv --bounding-set=-sys_admin --inh-caps=-sys_admin)
# shellcheck disable=SC2054 # setpriv's capability lists
NODAC=(setpriv --bounding-set=-dac_override,-dac_read_search --inh-caps=-dac_override,-dac_read_search)
USERNS=(unshare --user --map-root-user)

# --- helpers -------------------------------------------------------------

# ndevs: how many qcow devices exist.
ndevs() {
	local d n=0
	for d in /sys/block/qcow*; do
		[ ! -e "$d" ] || n=$((n + 1))
	done
	echo "$n"
}

# want_errno ERRNO CMD...: CMD (a qioc call) fails and prints ERRNO.
want_errno() {
	local want=$1 rc=0
	shift
	"$@" >"$W/out" 2>"$W/err" || rc=$?
	[ "$rc" -ne 0 ] || die "succeeded: $* (printed $(cat "$W/out"))"
	[ "$(cat "$W/err")" = "$want" ] || die "failed with '$(cat "$W/err")', want $want: $*"
	echo "$want: ${*##*/}"
}

# want_msg TEXT CMD...: CMD (a qcowctl call) exits 1 with one line on
# stderr containing TEXT and nothing on stdout.
want_msg() {
	local text=$1 rc=0
	shift
	"$@" >"$W/out" 2>"$W/err" || rc=$?
	echo "exit $rc: $(cat "$W/err")"
	[ "$rc" -eq 1 ] || die "exit $rc, want 1: $*"
	[ "$(wc -l <"$W/err")" -eq 1 ] || die "stderr is not one line: $*"
	grep -qF -- "$text" "$W/err" || die "stderr does not say '$text': $*"
	[ ! -s "$W/out" ] || die "stdout: $(cat "$W/out")"
}

# log_mark / log_new: the kernel log lines since log_mark in $W/klog.
log_mark() { dmesg | wc -l >"$W/klog.mark"; }
log_new() {
	dmesg | tail -n +$(($(cat "$W/klog.mark") + 1)) | sed 's/^\[[ 0-9.]*\] //' >"$W/klog"
	sed 's/^/  kernel: /' "$W/klog"
}

# put_be FILE OFFSET BYTES VALUE: store VALUE big-endian at OFFSET.
put_be() {
	python3 -c 'import sys
f, off, n, v = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4], 0)
with open(f, "r+b") as fh:
    fh.seek(off)
    fh.write(v.to_bytes(n, "big"))' "$@"
}

# get_be FILE OFFSET BYTES
get_be() {
	od -An -tu"$3" --endian=big -j "$2" -N "$3" "$1" | tr -d ' '
}

# sha FILE
sha() {
	local s
	s=$(sha256sum "$1")
	echo "${s%% *}"
}

# --- cases -----------------------------------------------------------------

t_ioctl_reserved() {
	local rc=0
	qemu-img create -q -f qcow2 img.qcow2 64M
	truncate -s 1M base.raw
	qemu-img create -q -f qcow2 -b "$W/base.raw" -F raw backed.qcow2 1M
	"$Q" reserved "$W/img.qcow2" "$W/backed.qcow2" "$W/base.raw" >res.txt 2>&1 || rc=$?
	grep -c '^ok ' res.txt | sed 's/$/ cases ok/'
	grep -v '^ok ' res.txt || true
	[ "$rc" -eq 0 ] || die "qioc reserved: exit $rc"
	[ "$(ndevs)" -eq 0 ] || die "a device was left behind"
	wl_qcheck img.qcow2
	[ -z "$(qemu-img snapshot -l img.qcow2)" ] || die "a snapshot was left in the image"
	[ "$(qemu-img info --output=json img.qcow2 | jq '."virtual-size"')" -eq $((65 * M)) ] ||
		die "the image does not have the size of the one resize that was allowed"
}

# denied_all WHO... -- QIOC_OPTS: qioc denied run as WHO: every privileged
# call fails with EPERM.
denied_all() {
	local -a who=()
	while [ "$1" != -- ]; do
		who+=("$1")
		shift
	done
	shift
	"${who[@]}" "$Q" "$@" denied "$W/img2.qcow2" "$IDX" "$DEV" >den.out 2>&1 ||
		{ cat den.out; die "not all calls were refused: ${who[*]}"; }
	echo "$(grep -c ^EPERM den.out) calls refused with EPERM: ${who[*]} $*"
}

t_cap_sys_admin() {
	local sum size
	qemu-img create -q -f qcow2 img.qcow2 64M
	cp img.qcow2 img2.qcow2
	chmod 644 img.qcow2 img2.qcow2
	DEV=$(wl_attach img.qcow2)
	IDX=${DEV#/dev/qcow}
	dd if=/dev/urandom of="$DEV" bs=1M count=2 oflag=direct conv=fsync status=none
	"$QCOW_CTL" snapshot create "$DEV" base >/dev/null || die "root cannot create a snapshot"
	size=$(blockdev --getsize64 "$DEV")
	sum=$(head -c $((4 * M)) "$DEV" | sha256sum)
	# shellcheck disable=SC2064 # now: the case runs in a subshell
	trap "chmod 600 /dev/qcow-control $DEV 2>/dev/null || true" EXIT

	# qcowctl: one line naming CAP_SYS_ADMIN
	want_msg "CAP_SYS_ADMIN" "${NOCAP[@]}" "$QCOW_CTL" features
	want_msg "CAP_SYS_ADMIN" "${NOCAP[@]}" "$QCOW_CTL" attach -r "$W/img2.qcow2"
	want_msg "CAP_SYS_ADMIN" "${NOCAP[@]}" "$QCOW_CTL" detach "$DEV"
	want_msg "CAP_SYS_ADMIN" "${NOCAP[@]}" "$QCOW_CTL" snapshot create "$DEV" x
	want_msg "CAP_SYS_ADMIN" "${NOBODY[@]}" "$QCOW_CTL" attach -r "$W/img2.qcow2"
	# the nodes open to everyone (a careless udev rule): the kernel decides
	chmod 666 /dev/qcow-control "$DEV"
	want_msg "CAP_SYS_ADMIN" "${NOBODY[@]}" "$QCOW_CTL" attach -r "$W/img2.qcow2"
	want_msg "CAP_SYS_ADMIN" "${NOBODY[@]}" "$QCOW_CTL" detach "$DEV"
	want_msg "CAP_SYS_ADMIN" "${NOBODY[@]}" "$QCOW_CTL" snapshot list "$DEV"
	want_msg "CAP_SYS_ADMIN" "${NOBODY[@]}" "$QCOW_CTL" snapshot delete "$DEV" base
	want_msg "CAP_SYS_ADMIN" "${NOBODY[@]}" "$QCOW_CTL" resize "$DEV" +1M
	# the kernel: every call, as nobody, as root without the capability,
	# as root of a user namespace (whose CAP_SYS_ADMIN is not the real one)
	denied_all "${NOBODY[@]}" --
	denied_all "${USERNS[@]}" --
	chmod 600 /dev/qcow-control "$DEV"
	denied_all "${NOCAP[@]}" --
	# descriptors root opened read-write, inherited by the unprivileged
	exec 3<>/dev/qcow-control 4<>"$DEV"
	denied_all "${NOBODY[@]}" -- --ctl-fd 3 --dev-fd 4
	denied_all "${USERNS[@]}" -- --ctl-fd 3 --dev-fd 4
	exec 3>&- 4>&-

	[ "$(ndevs)" -eq 1 ] || die "devices changed: $(ls /sys/block)"
	[ "$("$Q" snap list "$DEV")" = 1 ] || die "the snapshot table changed"
	[ "$(blockdev --getsize64 "$DEV")" = "$size" ] || die "the size changed"
	[ "$(head -c $((4 * M)) "$DEV" | sha256sum)" = "$sum" ] || die "the data changed"
	wl_detach "$DEV"
	wl_qcheck img.qcow2
	[ "$(qemu-img info --output=json img.qcow2 | jq -c '[.snapshots[].name]')" = '["base"]' ] ||
		die "qemu-img sees other snapshots than base"
}

t_ro_fd() {
	local dev sum n size rc=0
	qemu-img create -q -f qcow2 img.qcow2 64M
	qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' img.qcow2 >/dev/null
	sum=$(sha img.qcow2)
	n=$(ndevs)
	log_mark
	want_errno EBADF "$Q" attach -m r "$W/img.qcow2"
	log_new
	grep -q "img.qcow2: read-write attach of a file opened read-only" "$W/klog" ||
		die "the kernel did not log the refused read-write attach"
	want_errno EBADF "$Q" attach -m w "$W/img.qcow2"
	want_errno EBADF "$Q" attach -m w -R "$W/img.qcow2"
	want_errno EBADF "$Q" attach -m path -R "$W/img.qcow2"
	want_errno EBADF "$Q" attach -m path "$W/img.qcow2"
	want_errno EINVAL "$Q" attach -m r -R "$W"
	want_errno EINVAL "$Q" attach -m r -R /dev/null
	[ "$(ndevs)" = "$n" ] || die "a refused attach left a device"

	# the read-only attach works, and refuses writes at the driver too
	dev=$("$Q" attach -m r -R "$W/img.qcow2") || die "read-only attach failed"
	echo "$dev" >>"$W/.wl-devs"
	[ "$(cat "/sys/block/${dev#/dev/}/qcow/read_only")" = 1 ] || die "sysfs read_only is not 1"
	[ "$(blockdev --getro "$dev")" = 1 ] || die "$dev is not read-only"
	rc=0
	dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none 2>err || rc=$?
	echo "dd to the read-only device: exit $rc: $(cat err)"
	[ "$rc" -ne 0 ] || die "a write to the read-only device succeeded"
	blockdev --setrw "$dev" || true
	rc=0
	blkdiscard -z -o 0 -l $((64 * K)) "$dev" 2>err || rc=$?
	echo "BLKZEROOUT after blockdev --setrw: exit $rc: $(cat err)"
	[ "$rc" -ne 0 ] || die "zeroing the read-only device succeeded"
	rc=0
	dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none 2>err || rc=$?
	echo "dd after blockdev --setrw: exit $rc: $(cat err)"
	[ "$rc" -ne 0 ] || die "a write to the read-only device succeeded after --setrw"
	wl_detach "$dev"

	# snapshot and resize calls change the disk: not through a descriptor
	# opened read-only (EBADF, as BLKDISCARD), even for root
	dev=$(wl_attach img.qcow2)
	"$QCOW_CTL" snapshot create "$dev" base >/dev/null || die "snapshot create failed"
	size=$(blockdev --getsize64 "$dev")
	exec 5<"$dev"
	want_errno EBADF "$Q" --dev-fd 5 snap create "$dev" x
	want_errno EBADF "$Q" --dev-fd 5 snap apply "$dev" base
	want_errno EBADF "$Q" --dev-fd 5 snap delete "$dev" base
	want_errno EBADF "$Q" --dev-fd 5 resize "$dev" $((size + M))
	[ "$("$Q" --dev-fd 5 snap list "$dev")" = 1 ] || die "snapshot list through a read-only descriptor failed"
	exec 5<&-
	[ "$(blockdev --getsize64 "$dev")" = "$size" ] || die "the size changed"
	wl_detach "$dev"
	wl_qcheck img.qcow2
	[ "$(qemu-img info --output=json img.qcow2 | jq -c '[.snapshots[].name]')" = '["base"]' ] ||
		die "qemu-img sees other snapshots than base"
	qemu-img snapshot -d base img.qcow2
	sum=$(sha img.qcow2)

	# qcowctl opens the image with the caller's rights
	chmod 444 img.qcow2
	want_msg "img.qcow2" "${NODAC[@]}" "$QCOW_CTL" attach img.qcow2
	grep -q "Permission denied" "$W/err" || die "the message does not say Permission denied"
	dev=$("${NODAC[@]}" "$QCOW_CTL" attach -r img.qcow2) ||
		die "qcowctl attach -r of a 0444 image failed"
	echo "$dev" >>"$W/.wl-devs"
	wl_detach "$dev"
	[ "$(ndevs)" = "$n" ] || die "devices left"
	[ "$(sha img.qcow2)" = "$sum" ] || die "the image file changed"
}

t_backing_fd() {
	local dev n
	# the secret: 1 MiB, a marker in every 4 KiB block
	python3 -c 'import os, sys
sys.stdout.buffer.write(b"".join(b"SECRET-%06d-" % i + os.urandom(4082) for i in range(256)))' >secret.raw
	chown 1234:1234 secret.raw
	chmod 600 secret.raw
	truncate -s 1M public.raw
	qemu-io -f raw -c 'write -P 0x70 0 1M' public.raw >/dev/null
	qemu-img create -q -f qcow2 -u -b "$W/secret.raw" -F raw overlay.qcow2 1M
	qemu-img create -q -f qcow2 -u -b /etc/shadow -F raw shadow.qcow2 1M
	n=$(ndevs)

	# the kernel: no backing fd, no backing data
	log_mark
	want_errno EINVAL "$Q" attach -m r -R "$W/overlay.qcow2"
	want_errno EINVAL "$Q" attach -m r -R "$W/shadow.qcow2"
	log_new
	grep -q "overlay.qcow2: image has backing file '$W/secret.raw' but no backing layer was given" \
		"$W/klog" || die "the kernel did not name the missing backing layer"
	grep -q "shadow.qcow2: image has backing file '/etc/shadow' but no backing layer was given" \
		"$W/klog" || die "the kernel did not name the missing backing layer"
	[ "$(ndevs)" = "$n" ] || die "a refused attach left a device"
	# given another file, it reads that file
	for img in overlay shadow; do
		dev=$("$Q" attach -m r -R "$W/$img.qcow2" "r:$W/public.raw") || die "attach with a backing fd failed"
		echo "$dev" >>"$W/.wl-devs"
		cmp "$dev" public.raw || die "$img: $dev does not read the backing file it was given"
		! grep -q SECRET "$dev" || die "$img: $dev shows the secret"
		grep -q "^raw $W/public.raw$" "/sys/block/${dev#/dev/}/qcow/backing" ||
			die "sysfs backing does not name public.raw"
		wl_detach "$dev"
	done

	# qcowctl opens the backing file as the caller: without DAC override,
	# root cannot read a 0600 file of uid 1234, nor can the device
	want_msg "secret.raw" "${NODAC[@]}" "$QCOW_CTL" attach -r overlay.qcow2
	grep -q "Permission denied" "$W/err" || die "the message does not say Permission denied"
	[ "$(ndevs)" = "$n" ] || die "a refused attach left a device"
	# root with its rights can read it, so the device shows it: the name in
	# the image decides what root opens (see Documentation/security.rst)
	dev=$(wl_attach -r overlay.qcow2)
	cmp "$dev" secret.raw || die "root's attach does not show the backing file"
	wl_detach "$dev"

	# an external data file is no way around it
	qemu-img create -q -f qcow2 -o data_file="$W/data.raw",data_file_raw=on ext.qcow2 1M
	ln -sf secret.raw data.raw
	want_msg "external data file" "$QCOW_CTL" attach -r ext.qcow2
	log_mark
	want_errno EOPNOTSUPP "$Q" attach -m r -R "$W/ext.qcow2"
	log_new
	grep -q "ext.qcow2: incompatible_features: external data files are not supported" "$W/klog" ||
		die "the kernel did not name the external data file"
	[ "$(ndevs)" = "$n" ] || die "a refused attach left a device"
}

# The hostile sizes: NAME BASE FIELD OFFSET BYTES VALUE, one per line: a
# copy of BASE with VALUE stored big-endian at OFFSET (SO+n: n bytes into
# the first snapshot table entry) must be refused naming FIELD (":" for a
# space).  Fixed
# header: 36 l1_size, 56 refcount_table_clusters, 60 nb_snapshots;
# snapshot entry: +8 l1_size, +12 id_str_size, +14 name_size,
# +36 extra_data_size.
SIZES='
l1-limit-past-eof plain l1_table_offset 36 4 4194304
l1-over-limit plain l1_size 36 4 4194305
l1-huge plain l1_size 36 4 0xffffffff
reftable-limit-past-eof plain refcount_table_offset 56 4 128
reftable-over-limit plain refcount_table_clusters 56 4 129
snapshots-limit-past-eof snap snapshots_offset 60 4 65536
snapshots-over-limit snap nb_snapshots 60 4 65537
snapshots-huge snap nb_snapshots 60 4 0xffffffff
snap-l1-limit-past-eof snap snapshot:l1_table_offset SO+8 4 4194304
snap-l1-over-limit snap snapshot:l1_size SO+8 4 4194305
snap-l1-huge snap snapshot:l1_size SO+8 4 0xffffffff
snap-id-huge snap snapshot:id_str_size SO+12 2 0xffff
snap-name-huge snap snapshot:name_size SO+14 2 0xffff
snap-extra-over-limit snap snapshot:extra_data_size SO+36 4 1025
snap-extra-huge snap snapshot:extra_data_size SO+36 4 0xffffffff
'

t_image_sizes() {
	local name field n dev l1 rc
	qemu-img create -q -f qcow2 plain.qcow2 64M
	qemu-img create -q -f qcow2 snap.qcow2 64M
	qemu-img snapshot -c s1 snap.qcow2
	echo "$SIZES" >sizes.txt
	python3 - sizes.txt <<-'EOF'
	import shutil, struct, sys
	so = struct.unpack(">Q", open("snap.qcow2", "rb").read(72)[64:72])[0]
	for line in open(sys.argv[1]):
	    if not line.strip():
	        continue
	    name, base, field, off, n, val = line.split()
	    off = so + int(off[3:]) if off.startswith("SO+") else int(off)
	    shutil.copy(base + ".qcow2", name + ".qcow2")
	    with open(name + ".qcow2", "r+b") as f:
	        f.seek(off)
	        f.write(int(val, 0).to_bytes(int(n), "big"))
	EOF
	n=$(ndevs)
	log_mark
	while read -r name _ field _; do
		[ -n "$name" ] || continue
		field=${field/:/ }
		echo "$name: $field"
		rc=0
		"$QCOW_CTL" attach -r "$name.qcow2" >out 2>err || rc=$?
		[ "$rc" -ne 0 ] || { cat out >>"$W/.wl-devs"; die "$name: qcowctl attached it"; }
		grep -qF -- "$name.qcow2: $field: " err || { cat err; die "$name: qcowctl does not name $field"; }
		rc=0
		"$Q" attach -m r -R "$W/$name.qcow2" >out 2>err || rc=$?
		[ "$rc" -ne 0 ] || { cat out >>"$W/.wl-devs"; die "$name: the kernel attached it"; }
		[ "$(cat err)" = EINVAL ] || die "$name: the kernel failed with $(cat err), want EINVAL"
	done <sizes.txt
	log_new >/dev/null
	while read -r name _ field _; do
		[ -n "$name" ] || continue
		field=${field/:/ }
		[ "$(grep -c "^qcow: $name.qcow2: " "$W/klog")" -eq 1 ] ||
			die "$name: the kernel did not log one line about it"
		grep -F "qcow: $name.qcow2: $field: " "$W/klog" ||
			die "$name: the kernel did not name $field"
	done <sizes.txt
	[ "$(ndevs)" = "$n" ] || die "a refused attach left a device"

	# l1_size at the limit with the file long enough: legal, a 32 MiB L1
	# table (kvmalloc: no page allocation warning), zeros beyond
	cp plain.qcow2 l1max.qcow2
	l1=$(get_be l1max.qcow2 40 8)
	truncate -s $((l1 + 32 * M)) l1max.qcow2
	put_be l1max.qcow2 36 4 $((4 * M))
	dev=$(wl_attach -r l1max.qcow2)
	cmp -n $((1 * M)) "$dev" /dev/zero || die "$dev does not read zeros"
	[ "$(cat "/sys/block/${dev#/dev/}/qcow/corrupt")" = 0 ] || die "marked corrupt"
	wl_detach "$dev"
	[ "$(ndevs)" = "$n" ] || die "devices left"
}

# qio_writes FILE FORMAT CACHE OFFSET...: one qemu-io writing 512 bytes of
# 0xa5 at each OFFSET of FILE.
qio_writes() {
	local f=$1 fmt=$2 cache=$3 off
	local -a c=()
	shift 3
	for off in "$@"; do
		c+=(-c "write -q -P 0xa5 $off 512")
	done
	qemu-io -f "$fmt" -t "$cache" "${c[@]}" "$f" || die "qemu-io on $f failed"
}

# A block device full of old data under a new image: clusters allocated
# for partial writes are not fresh file space, the driver must zero them.
t_stale_clusters() {
	local lo dev k img
	local -a offs=() offs2=()
	python3 -c 'import sys
sys.stdout.buffer.write(b"STALE-DATA-FROM-SOMEONE-ELSE!!!\n" * (40 * 1024 * 1024 // 32))' >disk.raw
	lo=$(wl_loop disk.raw)
	qemu-img create -q -f qcow2 "$lo" 32M
	for k in $(seq 0 23); do
		offs+=($((k * 64 * K + (k % 8) * 4096 + 512)))
	done
	for k in $(seq 100 107); do
		offs2+=($((k * 64 * K + 1024)))
	done
	truncate -s 32M want1.raw
	qio_writes want1.raw raw writeback "${offs[@]}"
	cp want1.raw want.raw
	dd if=/dev/zero of=want.raw bs=64k count=8 conv=notrunc status=none
	qio_writes want.raw raw writeback "${offs2[@]}"
	dev=$(wl_attach "$lo")
	qio_writes "$dev" raw none "${offs[@]}"
	cmp "$dev" want1.raw || die "$dev reads other than what was written and zeros"
	# discard clusters 0-7, write into new ones: the allocator reuses them
	blkdiscard -o 0 -l $((8 * 64 * K)) "$dev"
	qio_writes "$dev" raw none "${offs2[@]}"
	cmp "$dev" want.raw || die "$dev: reused clusters read other than what was written and zeros"
	! grep -q STALE "$dev" || die "$dev shows the disk's old data"
	wl_detach "$dev"
	wl_qcheck "$lo"
	wl_compare "$lo" want.raw
	# the same with subclusters (extended L2): unwritten ones read zeros
	img=$lo
	qemu-img create -q -f qcow2 -o extended_l2=on,cluster_size=64k "$img" 32M
	rm want.raw
	truncate -s 32M want.raw
	qio_writes want.raw raw writeback "${offs[@]}"
	dev=$(wl_attach "$img")
	qio_writes "$dev" raw none "${offs[@]}"
	cmp "$dev" want.raw || die "extended L2: $dev reads other than what was written and zeros"
	! grep -q STALE "$dev" || die "extended L2: $dev shows the disk's old data"
	wl_detach "$dev"
	wl_qcheck "$img"
	wl_compare "$img" want.raw
}

wl_case ioctl-reserved t_ioctl_reserved
wl_case cap-sys-admin t_cap_sys_admin
wl_case ro-fd t_ro_fd
wl_case backing-fd t_backing_fd
wl_case image-sizes t_image_sizes
wl_case stale-clusters t_stale_clusters

chmod 600 /dev/qcow-control 2>/dev/null || true
wl_end
