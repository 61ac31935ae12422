#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# qcowctl's device commands against the real module:
#   attach   read-only, the refused read-write attach, backing chains
#            qcow2 -> qcow2 -> raw with relative names (from another cwd)
#            and probed formats, loops, missing files, the 16-layer limit,
#            -P partitions, --cache-size; losetup's -f (the free device,
#            predicted and then given), --show, --device DEV and DEV IMAGE
#            (taken, out of range, max_devices reached), and the
#            QCOW_ATTACH_INDEX ioctl itself (EBUSY, EINVAL);
#   list     table columns (OPEN follows opens of the disk and its
#            partitions and mounts, as sysfs open_count), -n, -o, +COLS,
#            --output-all, -b, --json (checked with jq);
#   detach   by device (/dev/qcowN, qcowN, N) and by image, an image
#            attached twice, an open device (EBUSY, then --lazy), --all;
#            detach and snapshot apply wait while udev's queue is not empty
#            (a faked /run/udev/queue and a short-lived opener);
#   help     every command's and snapshot subcommand's --help, -h and
#            `help CMD` print its usage and exit 0; a bad option exits 2;
#   plus info/features in the guest and the messages without the module.
# Data read through /dev/qcowN is compared with `qemu-img convert -O raw`.
# Prints "PASS cli/<case>" or "FAIL cli/<case>" (with details) per check;
# exits 1 if any check failed.  QCOW_CLI_CTL=path runs another qcowctl
# binary, e.g. the ASan build (build/userspace-san/qcowctl).
# shellcheck disable=SC2015  # "test && test || die" is meant
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

QCOW_CTL=${QCOW_CLI_CTL:-$QCOW_CTL}
[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
W=$QCOW_SCRATCH/cli
rm -rf "$W"
mkdir -p "$W"
cd "$W"
CHECK_GROUP=cli
CHECK_LOG=$W/check.log
CHECK_DIR=$W

# after each check: detach whatever it left attached
check_after() {
	if [ -e /dev/qcow-control ]; then
		"$QCOW_CTL" detach -a >/dev/null 2>&1 || true
	fi
}

# ctl ARGS...: run qcowctl; stdout in $W/out, stderr in $W/err, status in rc.
ctl() {
	rc=0
	"$QCOW_CTL" "$@" >"$W/out" 2>"$W/err" || rc=$?
}

# want_error STATUS TEXT ARGS...: qcowctl ARGS exits STATUS, prints nothing
# on stdout and one line on stderr that contains TEXT.
want_error() {
	local want=$1 text=$2
	shift 2
	ctl "$@"
	cat "$W/err"
	[ "$rc" -eq "$want" ] || die "qcowctl $* exited $rc, want $want"
	[ "$(wc -l <"$W/err")" -eq 1 ] || die "stderr is not one line"
	grep -qF -- "$text" "$W/err" || die "stderr does not say '$text'"
	[ ! -s "$W/out" ] || die "unexpected stdout: $(cat "$W/out")"
}

# attach ARGS...: qcowctl attach ARGS must print one /dev/qcowN; sets $dev.
attach() {
	ctl attach "$@"
	[ "$rc" -eq 0 ] || die "qcowctl attach $* exited $rc: $(cat "$W/err")"
	[ ! -s "$W/err" ] || die "qcowctl attach $* wrote to stderr: $(cat "$W/err")"
	[ "$(wc -l <"$W/out")" -eq 1 ] && grep -qxE '/dev/qcow[0-9]+' "$W/out" ||
		die "qcowctl attach $* printed '$(cat "$W/out")', want /dev/qcowN"
	dev=$(cat "$W/out")
	[ -b "$dev" ] || die "$dev is not a block device"
	echo "attach $* -> $dev"
}

# ndevs: number of qcow devices according to list --json.
ndevs() {
	"$QCOW_CTL" list --json | jq '.devices | length'
}

# same_data DEV IMAGE: DEV reads exactly what qemu-img converts IMAGE to.
same_data() {
	local a b
	rm -f "$W/ref.raw"
	qemu-img convert -f qcow2 -O raw "$2" "$W/ref.raw"
	a=$(sha256sum <"$1" | cut -d' ' -f1)
	b=$(sha256sum <"$W/ref.raw" | cut -d' ' -f1)
	rm -f "$W/ref.raw"
	[ "$a" = "$b" ] || die "$1 ($a) differs from qemu-img convert of $2 ($b)"
	echo "$1 matches $2 (sha256 $a)"
}

# unformat IMAGE: rename the backing-format header extension (0xe2792aca) to
# an unknown type, so that the backing file's format must be probed.
unformat() {
	local off
	off=$(head -c 4096 "$1" | LC_ALL=C grep -obUaP '\xe2\x79\x2a\xca' |
	      head -n 1 | cut -d: -f1)
	[ -n "$off" ] || die "no backing format extension in $1"
	printf '\x7e\x57\x00\x01' | dd of="$1" bs=1 seek="$off" conv=notrunc status=none
	! qemu-img info -U "$1" | grep -q 'backing file format' ||
		die "$1 still has a backing format"
}

# raw_attach IMAGE FLAGS INDEX: QCOW_CTL_ATTACH of IMAGE (read-only fd, no
# backing layers) straight from Python, bypassing qcowctl's checks; prints
# "ok N" or the errno name (EBUSY, EINVAL).
raw_attach() {
	python3 - "$@" <<'PY'
import errno, fcntl, os, struct, sys
img, flags, index = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3], 0)
# _IOWR(0xA7, 0x01, struct qcow_attach): 64 bytes
ATTACH = (3 << 30) | (64 << 16) | (0xA7 << 8) | 0x01
fd = os.open(img, os.O_RDONLY)
ctl = os.open("/dev/qcow-control", os.O_RDWR)
# image_fd flags layers nr_layers reserved0 cache_size index reserved[7]
buf = bytearray(struct.pack("=IIQIIQI28x", fd, flags, 0, 0, 0, 0, index))
try:
    fcntl.ioctl(ctl, ATTACH, buf)
except OSError as e:
    print(errno.errorcode[e.errno])
    sys.exit(0)
print("ok", struct.unpack_from("=I", buf, 32)[0])
PY
}

# want_col DEV COLUMN VALUE: `qcowctl list -n -o COLUMN` says VALUE for DEV.
want_col() {
	local got
	got=$("$QCOW_CTL" list -n -o "DEVICE,$2" | awk -v d="$1" '$1 == d { print $2 }')
	[ "$got" = "$3" ] || die "list: $2 of $1 is '$got', want '$3'"
}

# --- images ---------------------------------------------------------------

step "making images in $W"
# simple.qcow2: 64 MiB minus 100 bytes (the disk rounds up to a sector)
qemu-img create -q -f qcow2 simple.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 32M 64k' \
	-c 'write -c -P 0x33 8M 256k' simple.qcow2 >/dev/null
size_be=$(printf '%016x' $((64 * 1024 * 1024 - 100)) | sed 's/../\\x&/g')
# shellcheck disable=SC2059
printf "$size_be" | dd of=simple.qcow2 bs=1 seek=24 conv=notrunc status=none
[ "$("$QCOW_CTL" info --json simple.qcow2 | jq '."virtual-size"')" -eq 67108764 ] ||
	fail "could not set the virtual size of simple.qcow2"
# aligned.qcow2: like simple, aligned size, for data comparisons
qemu-img create -q -f qcow2 aligned.qcow2 16M
qemu-io -f qcow2 -c 'write -P 0x5a 0 1M' -c 'write -c -P 0x33 8M 256k' \
	aligned.qcow2 >/dev/null

# chain/: top.qcow2 -> mid.qcow2 -> base.raw, relative backing names
mkdir -p chain other
head -c 32M /dev/urandom >chain/base.raw
(
	cd chain
	qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 64M
	qemu-io -f qcow2 -c 'write -P 0x11 1M 2M' -c 'write -c -P 0x22 40M 1M' \
		-c 'write -z 5M 64k' mid.qcow2 >/dev/null
	qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2 64M
	qemu-io -f qcow2 -c 'write -P 0x33 2M 64k' -c 'write -z 1536k 128k' \
		-c 'write -P 0x44 63M 1M' top.qcow2 >/dev/null
	# the same chain without backing-format extensions: formats probed
	cp base.raw pbase.raw
	cp mid.qcow2 pmid.qcow2
	cp top.qcow2 ptop.qcow2
	qemu-img rebase -u -b pbase.raw -F raw pmid.qcow2
	qemu-img rebase -u -b pmid.qcow2 -F qcow2 ptop.qcow2
)
unformat chain/pmid.qcow2
unformat chain/ptop.qcow2

# loop/: a.qcow2 and b.qcow2 name each other
mkdir -p loop
qemu-img create -q -f qcow2 loop/a.qcow2 16M
qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 loop/b.qcow2
qemu-img rebase -u -b b.qcow2 -F qcow2 loop/a.qcow2

# missing.qcow2 names a backing file that does not exist
qemu-img create -q -f qcow2 -u -b gone.raw -F raw missing.qcow2 16M

# deep/: l0 <- l1 <- ... <- l16 (l15 is 16 layers deep, l16 17)
mkdir -p deep
qemu-img create -q -f qcow2 deep/l0.qcow2 4M
qemu-io -f qcow2 -c 'write -P 0x10 0 64k' deep/l0.qcow2 >/dev/null
for i in $(seq 1 16); do
	qemu-img create -q -f qcow2 -b "l$((i - 1)).qcow2" -F qcow2 "deep/l$i.qcow2"
	qemu-io -f qcow2 -c "write -P $((0x10 + i)) $((i * 64))k 64k" \
		"deep/l$i.qcow2" >/dev/null
done

# part.qcow2: an MBR with one 16 MiB Linux partition holding ext4 with a file
truncate -s 32M part.raw
printf 'label: dos\nstart=2048, size=32768, type=83\n' | sfdisk -q part.raw
mkdir -p fsroot
echo "hello from a qcow2 partition" >fsroot/hello.txt
mkfs.ext4 -q -F -E offset=$((2048 * 512)) -d fsroot part.raw 16M
qemu-img convert -f raw -O qcow2 part.raw part.qcow2

# --- checks ---------------------------------------------------------------

t_load() {
	qcow_load
	[ -c /dev/qcow-control ] || die "/dev/qcow-control missing after insmod"
}

t_features() {
	ctl features
	[ "$rc" -eq 0 ] || die "features exited $rc: $(cat "$W/err")"
	cat "$W/out"
	grep -q '^features:.*read' "$W/out" || die "features does not list read"
	"$QCOW_CTL" features --json | jq -e '.features | index("backing") != null' >/dev/null ||
		die "features --json does not list backing"
}

t_info() {
	ctl info --json chain/top.qcow2
	[ "$rc" -eq 0 ] || die "info exited $rc: $(cat "$W/err")"
	[ "$(jq -r '."backing-filename"' "$W/out")" = mid.qcow2 ] ||
		die "info --json: backing-filename is not mid.qcow2"
	ctl info simple.qcow2
	[ "$rc" -eq 0 ] || die "info exited $rc: $(cat "$W/err")"
}

t_attach_ro() {
	local size
	attach -r simple.qcow2
	[ "$dev" = /dev/qcow0 ] || die "first device is $dev, want /dev/qcow0"
	size=$(blockdev --getsize64 /dev/qcow0)
	[ "$size" -eq $((64 * 1024 * 1024)) ] ||
		die "size $size, want 67108864 (64 MiB - 100 rounded up to 512)"
	[ "$(blockdev --getro /dev/qcow0)" = 1 ] || die "/dev/qcow0 is not read-only"
	[ "$(cat /sys/block/qcow0/qcow/read_only)" = 1 ] || die "sysfs read_only != 1"
}

t_list() {
	local hdr row
	attach -r simple.qcow2
	ctl list
	cat "$W/out"
	[ "$rc" -eq 0 ] && [ ! -s "$W/err" ] || die "list exited $rc: $(cat "$W/err")"
	[ "$(wc -l <"$W/out")" -eq 2 ] || die "want a header and one row"
	hdr=$(head -n 1 "$W/out")
	row=$(tail -n 1 "$W/out")
	# shellcheck disable=SC2086
	[ "$(tr -s " " <<<"$hdr")" = "DEVICE IMAGE SIZE CLUSTER RO OPEN BACKING CACHE HIT%" ] ||
		die "header is '$hdr'"
	# shellcheck disable=SC2086
	set -- $row
	[ "$1" = /dev/qcow0 ] || die "DEVICE is '$1'"
	[ "$2" = "$W/simple.qcow2" ] || die "IMAGE is '$2', want $W/simple.qcow2"
	[ "$3" = 64M ] || die "SIZE is '$3', want 64M"
	[ "$4" = 64K ] || die "CLUSTER is '$4', want 64K"
	[ "$5" = 1 ] || die "RO is '$5', want 1"
	[ "$6" = 0 ] || die "OPEN is '$6', want 0"
	[ "$7" = - ] || die "BACKING is '$7', want -"
	[ "$9" = - ] || grep -qE '^[0-9]+\.[0-9]$' <<<"$9" || die "HIT% is '$9'"
	[ $# -eq 9 ] || die "$# fields, want 9"
	[ "$row" = "${row% }" ] || die "trailing blank after the last column"
}

# list -n, -o, +COLUMNS, --output-all, -b: exact fields and headings.
t_list_output() {
	local out
	attach -r simple.qcow2
	attach -r "$W/chain/top.qcow2"
	out=$("$QCOW_CTL" list -n)
	echo "$out"
	[ "$(wc -l <<<"$out")" -eq 2 ] || die "list -n: want two rows and no header"
	grep -q DEVICE <<<"$out" && die "list -n printed the header"
	out=$("$QCOW_CTL" list -o device,RO,Size)
	echo "$out"
	[ "$(sed -n 1p <<<"$out" | tr -s ' ')" = "DEVICE RO SIZE" ] || die "-o: header is wrong"
	[ "$(sed -n 2p <<<"$out" | tr -s ' ')" = "/dev/qcow0 1 64M" ] || die "-o: qcow0 row is wrong"
	[ "$(sed -n 3p <<<"$out" | tr -s ' ')" = "/dev/qcow1 1 64M" ] || die "-o: qcow1 row is wrong"
	out=$("$QCOW_CTL" list -o +VERSION,CORRUPT,STOPPED,DIRTY | head -n 1 | tr -s ' ')
	[ "$out" = "DEVICE IMAGE SIZE CLUSTER RO OPEN BACKING CACHE HIT% VERSION CORRUPT STOPPED DIRTY" ] ||
		die "-o +COLUMNS: header is '$out'"
	out=$("$QCOW_CTL" list --output-all -n -o DEVICE,VERSION)
	[ "$(tr -s ' ' <<<"$out")" = "$(printf '/dev/qcow0 3\n/dev/qcow1 3')" ] ||
		die "-o after --output-all: '$out'"
	out=$("$QCOW_CTL" list --output-all | head -n 1 | wc -w)
	[ "$out" -eq 13 ] || die "--output-all: $out columns, want 13"
	out=$("$QCOW_CTL" list -b -n -o DEVICE,SIZE,CLUSTER,CACHE | head -n 1)
	# shellcheck disable=SC2086
	set -- $out
	# the image's virtual size (the disk rounds it up to a sector)
	[ "$2" = 67108764 ] && [ "$3" = 65536 ] &&
		[ "$4" = "$(cat /sys/block/qcow0/qcow/cache_size)" ] || die "-b: '$out'"
	want_error 2 "unknown column 'NOPE'" list -o DEVICE,NOPE
	want_error 2 "--json prints every field" list --json -o DEVICE
	want_error 2 "option '-o' needs an argument" list -o
}

# OPEN and sysfs open_count: each open of the disk counts, an open
# partition counts once however often it is open, a mount counts.
t_open_count() {
	local mnt=$W/mnt-open
	local sys
	attach -r -P part.qcow2
	sys=/sys/block/${dev#/dev/}/qcow/open_count
	for _ in $(seq 30); do [ -b "${dev}p1" ] && break; sleep 0.1; done
	[ "$(cat "$sys")" = 0 ] || die "open_count is not 0"
	want_col "$dev" OPEN 0
	exec 3<"$dev" 4<"$dev"
	[ "$(cat "$sys")" = 2 ] || die "two opens: open_count is not 2"
	want_col "$dev" OPEN 2
	exec 5<"${dev}p1" 6<"${dev}p1"
	want_col "$dev" OPEN 3
	exec 3<&- 4<&- 5<&- 6<&-
	want_col "$dev" OPEN 0
	mkdir -p "$mnt"
	mount -o ro "${dev}p1" "$mnt"
	# shellcheck disable=SC2064  # expanded now
	trap "umount $(printf %q "$mnt") 2>/dev/null || true" EXIT
	want_col "$dev" OPEN 1
	"$QCOW_CTL" list --json | jq -e '.devices[0]."open-count" == 1' >/dev/null ||
		die "list --json: open-count is not 1 while mounted"
	umount "$mnt"
	want_col "$dev" OPEN 0
}

t_list_json() {
	local j
	attach -r simple.qcow2
	j=$("$QCOW_CTL" list --json)
	echo "$j"
	jq -e --arg img "$W/simple.qcow2" '
		(.devices | length) == 1 and
		(.devices[0] | .device == "/dev/qcow0" and .index == 0 and
		 .image == $img and ."virtual-size" == 67108764 and
		 ."cluster-size" == 65536 and .version == 3 and
		 ."read-only" == true and .corrupt == false and
		 ."open-count" == 0 and .stopped == false and
		 ."dirty-slices" == 0 and
		 .backing == [] and (."cache-size" | type) == "number" and
		 ."cache-size" > 0 and (."cache-hits" | type) == "number" and
		 (."cache-misses" | type) == "number")' <<<"$j" >/dev/null ||
		die "list --json does not describe simple.qcow2 on /dev/qcow0"
}

t_read_write_refused() {
	local n
	n=$(ndevs)
	if "$QCOW_CTL" features --json | jq -e '.features | index("write")' >/dev/null; then
		echo "the module grants write; nothing to refuse"
		return 0
	fi
	want_error 1 "simple.qcow2: read-write attach is not supported yet (the write path has not landed); use -r to attach read-only" \
		attach simple.qcow2
	[ "$(ndevs)" -eq "$n" ] || die "a device appeared"
}

t_chain() {
	attach -r "$W/chain/top.qcow2"
	same_data "$dev" chain/top.qcow2
	[ "$(blockdev --getsize64 "$dev")" -eq $((64 * 1024 * 1024)) ] || die "wrong size"
	"$QCOW_CTL" list --json | jq -e --arg d "$W/chain" '
		.devices[0].backing == [
			{ "format": "qcow2", "filename": ($d + "/mid.qcow2") },
			{ "format": "raw", "filename": ($d + "/base.raw") } ]' >/dev/null ||
		die "list --json backing is wrong: $("$QCOW_CTL" list --json)"
	"$QCOW_CTL" list | tail -n 1 | grep -qF "$W/chain/base.raw <- $W/chain/mid.qcow2" ||
		die "list BACKING column is wrong: $("$QCOW_CTL" list)"
}

# Relative names inside the images resolve against chain/, not the cwd.
t_chain_other_cwd() {
	cd "$W/other"
	attach -r ../chain/top.qcow2
	cd /
	attach -r "$W/chain/mid.qcow2"
	cd "$W"
	same_data /dev/qcow0 chain/top.qcow2
	same_data /dev/qcow1 chain/mid.qcow2
}

t_chain_probed() {
	cd /
	attach -r "$W/chain/ptop.qcow2"
	cd "$W"
	"$QCOW_CTL" list --json | jq -e '[.devices[0].backing[].format] == ["qcow2", "raw"]' \
		>/dev/null || die "probed formats are wrong: $("$QCOW_CTL" list --json)"
	same_data "$dev" chain/ptop.qcow2
}

t_loop() {
	want_error 1 "backing chain loops: loop/a.qcow2 is already in the chain" \
		attach -r loop/a.qcow2
	[ "$(ndevs)" -eq 0 ] || die "a device appeared"
}

t_missing() {
	want_error 1 "backing file gone.raw (named by missing.qcow2): No such file or directory" \
		attach -r missing.qcow2
}

t_not_qcow2() {
	want_error 1 "part.raw: magic" attach -r part.raw
}

t_depth() {
	attach -r deep/l15.qcow2
	same_data "$dev" deep/l15.qcow2
	[ "$("$QCOW_CTL" list --json | jq '.devices[0].backing | length')" -eq 15 ] ||
		die "want 15 backing layers"
	want_error 1 "backing chain deeper than 16 layers" attach -r deep/l16.qcow2
}

t_detach_dev() {
	local form
	for form in /dev/qcow0 qcow0 0; do
		attach -r aligned.qcow2
		[ "$dev" = /dev/qcow0 ] || die "got $dev, want /dev/qcow0"
		ctl detach "$form"
		[ "$rc" -eq 0 ] && [ ! -s "$W/err" ] || die "detach $form exited $rc: $(cat "$W/err")"
		[ ! -e /sys/block/qcow0 ] || die "qcow0 still exists after detach $form"
		[ ! -e /dev/qcow0 ] || die "/dev/qcow0 still exists after detach $form"
	done
	want_error 1 "/dev/qcow7: no such qcow device" detach /dev/qcow7
}

t_detach_image() {
	attach -r aligned.qcow2
	attach -r simple.qcow2
	cd "$W/other"
	ctl detach ../simple.qcow2
	[ "$rc" -eq 0 ] || die "detach ../simple.qcow2 exited $rc: $(cat "$W/err")"
	[ ! -e /sys/block/qcow1 ] || die "qcow1 (simple.qcow2) still exists"
	[ -e /sys/block/qcow0 ] || die "qcow0 (aligned.qcow2) was detached too"
	cd "$W"
	want_error 1 "not attached" detach simple.qcow2
	attach -r aligned.qcow2
	want_error 1 "aligned.qcow2 is attached as /dev/qcow0 and /dev/qcow1; name the device" \
		detach aligned.qcow2
	[ "$(ndevs)" -eq 2 ] || die "a device went away"
}

t_detach_busy() {
	local i
	attach -r aligned.qcow2
	exec 3<"$dev"
	want_error 1 "$dev is in use (mounted or open); unmount it, or use --lazy to detach on last close" \
		detach "$dev"
	[ -b "$dev" ] || die "$dev went away"
	ctl detach --lazy "$dev"
	[ "$rc" -eq 0 ] || die "detach --lazy exited $rc: $(cat "$W/err")"
	[ -b "$dev" ] || die "$dev went away while still open"
	head -c 4096 <&3 >/dev/null || die "reading the open device failed"
	exec 3<&-
	for i in $(seq 50); do
		[ -e "/sys/block/${dev#/dev/}" ] || break
		sleep 0.1
	done
	[ ! -e "/sys/block/${dev#/dev/}" ] || die "$dev still exists 5 s after the last close"
	echo "$dev went away after $i tenths of a second"
}

t_detach_all() {
	attach -r aligned.qcow2
	attach -r simple.qcow2
	attach -r "$W/chain/top.qcow2"
	ctl detach -a
	[ "$rc" -eq 0 ] && [ ! -s "$W/err" ] || die "detach -a exited $rc: $(cat "$W/err")"
	[ "$(ndevs)" -eq 0 ] || die "devices left after detach -a"
	ctl list
	[ "$rc" -eq 0 ] && [ ! -s "$W/out" ] && [ ! -s "$W/err" ] ||
		die "list with no devices printed something or failed ($rc)"
	ctl detach -a
	[ "$rc" -eq 0 ] || die "detach -a with no devices exited $rc"
}

t_partscan() {
	local p
	attach -r part.qcow2
	[ ! -e "${dev}p1" ] || die "${dev}p1 exists without -P"
	attach -r -P part.qcow2
	p=${dev}p1
	for _ in $(seq 30); do
		[ -b "$p" ] && break
		sleep 0.1
	done
	[ -b "$p" ] || die "$p does not exist"
	[ "$(blockdev --getsize64 "$p")" -eq $((16 * 1024 * 1024)) ] ||
		die "$p is $(blockdev --getsize64 "$p") bytes, want 16 MiB"
	ls -l "$dev"*
}

# The user's job: attach -P, mount a partition, and detach once unmounted.
t_mounted() {
	local mnt=$W/mnt i
	mkdir -p "$mnt"
	attach -r -P part.qcow2
	mount -o ro "${dev}p1" "$mnt"
	# the check runs in a subshell: this undoes the mount however it ends
	# shellcheck disable=SC2064  # expanded now: $mnt is local
	trap "umount $(printf %q "$mnt") 2>/dev/null || true" EXIT
	grep -qx "hello from a qcow2 partition" "$mnt/hello.txt" ||
		die "hello.txt is not what was written"
	want_error 1 "$dev is in use (mounted or open)" detach "$dev"
	ctl detach --lazy part.qcow2
	[ "$rc" -eq 0 ] || die "detach --lazy part.qcow2 exited $rc: $(cat "$W/err")"
	[ -b "$dev" ] || die "$dev went away while mounted"
	umount "$mnt"
	for i in $(seq 50); do
		[ -e "/sys/block/${dev#/dev/}" ] || break
		sleep 0.1
	done
	[ ! -e "/sys/block/${dev#/dev/}" ] || die "$dev still exists 5 s after umount"
}

t_cache_size() {
	attach -r --cache-size 128K aligned.qcow2
	[ "$(cat "/sys/block/${dev#/dev/}/qcow/cache_size")" -eq 131072 ] ||
		die "cache_size is $(cat "/sys/block/${dev#/dev/}/qcow/cache_size"), want 131072"
	"$QCOW_CTL" list | tail -n 1 | grep -qw 128K || die "list does not show 128K"
	attach -r --cache-size 2M aligned.qcow2
	[ "$(cat "/sys/block/${dev#/dev/}/qcow/cache_size")" -eq 2097152 ] ||
		die "cache_size is not 2 MiB"
	want_error 2 "invalid cache size '12X'" attach -r --cache-size 12X aligned.qcow2
	want_error 2 "cache size '1K' out of range" attach -r --cache-size 1K aligned.qcow2
	want_error 2 "cache size '2G' out of range" attach -r --cache-size 2G aligned.qcow2
	[ "$(ndevs)" -eq 2 ] || die "a refused attach created a device"
}

# udev opens a disk for a moment while it handles its events: detach and
# snapshot apply wait while udev's queue (/run/udev/queue, what udevadm
# settle waits for) is not empty.  Faked here: no udevd runs in this test;
# an opener that goes away after a second stands for udev's probe.
t_busy_udev() {
	local t0 t1 i
	[ ! -e /run/udev/queue ] || die "/run/udev/queue exists: is udevd running?"
	mkdir -p /run/udev
	# shellcheck disable=SC2064
	trap "rm -f /run/udev/queue" EXIT
	cp aligned.qcow2 busy.qcow2
	for i in detach apply; do
		attach busy.qcow2
		[ "$i" = apply ] && expect "$QCOW_CTL" snapshot create "$dev" s1
		touch /run/udev/queue
		rm -f "$W/opened"
		# the opener holds the disk 1.5 s from the moment it says so (a
		# process start under TCG can take longer than a fixed sleep)
		(exec 3<"$dev"; touch "$W/opened"; sleep 1.5; exec 3<&-; sleep 0.3
		 rm -f /run/udev/queue) &
		for _ in $(seq 500); do
			[ -e "$W/opened" ] && break
			sleep 0.02
		done
		[ -e "$W/opened" ] || die "the opener did not open $dev"
		[ "$(cat "/sys/block/${dev#/dev/}/qcow/open_count")" -gt 0 ] ||
			die "open_count is 0 while the opener holds $dev"
		t0=$(date +%s%N)
		if [ "$i" = detach ]; then
			ctl detach "$dev"
		else
			ctl snapshot apply "$dev" s1
		fi
		t1=$(date +%s%N)
		wait
		[ "$rc" -eq 0 ] && [ ! -s "$W/err" ] ||
			die "$i while 'udev' held the disk: exit $rc, $(cat "$W/err")"
		echo "$i waited $(((t1 - t0) / 1000000)) ms for the queue to drain"
		[ $((t1 - t0)) -ge 900000000 ] || die "$i did not wait for the queue"
		[ "$i" = apply ] && expect "$QCOW_CTL" detach "$dev"
		[ ! -e "/sys/block/${dev#/dev/}" ] || die "$dev is still there"
	done
	# with the queue empty, a real opener gets EBUSY without a wait (a
	# process start under TCG takes a few hundred ms)
	attach busy.qcow2
	exec 3<"$dev"
	t0=$(date +%s%N)
	ctl detach "$dev"
	t1=$(date +%s%N)
	exec 3<&-
	[ "$rc" -eq 1 ] && grep -q "is in use (mounted or open)" "$W/err" ||
		die "detach of the open $dev: exit $rc, $(cat "$W/err")"
	echo "EBUSY after $(((t1 - t0) / 1000000)) ms"
	[ $((t1 - t0)) -lt 2500000000 ] || die "EBUSY took $(((t1 - t0) / 1000000)) ms"
}

# losetup -f: the free device, printed alone; then attached there.
t_find() {
	ctl attach -f
	[ "$rc" -eq 0 ] && [ ! -s "$W/err" ] && [ "$(cat "$W/out")" = /dev/qcow0 ] ||
		die "attach -f with no devices: rc $rc, printed '$(cat "$W/out")' $(cat "$W/err")"
	attach -f --show -r aligned.qcow2
	[ "$dev" = /dev/qcow0 ] || die "attach -f --show gave $dev"
	attach --show -r simple.qcow2
	[ "$dev" = /dev/qcow1 ] || die "attach --show gave $dev"
	ctl attach --find
	[ "$(cat "$W/out")" = /dev/qcow2 ] || die "attach -f with 0 and 1 taken: '$(cat "$W/out")'"
	expect "$QCOW_CTL" detach /dev/qcow0
	ctl attach -f
	[ "$(cat "$W/out")" = /dev/qcow0 ] || die "attach -f with 1 taken: '$(cat "$W/out")'"
	attach -r -f aligned.qcow2
	[ "$dev" = /dev/qcow0 ] || die "attach -f IMAGE took $dev, not the predicted /dev/qcow0"
	want_error 2 "missing IMAGE" attach -r
	want_error 2 "-f/--find and a device exclude each other" attach -f -d 3 aligned.qcow2
	[ "$(ndevs)" -eq 2 ] || die "a refused attach created a device"
}

# losetup /dev/loop3 file: --device DEV, -d N, and DEV IMAGE.
t_device() {
	attach -r --device /dev/qcow5 aligned.qcow2
	[ "$dev" = /dev/qcow5 ] || die "--device /dev/qcow5 gave $dev"
	same_data /dev/qcow5 aligned.qcow2
	attach -r qcow7 simple.qcow2
	[ "$dev" = /dev/qcow7 ] || die "attach qcow7 IMAGE gave $dev"
	attach -d 255 -r aligned.qcow2
	[ "$dev" = /dev/qcow255 ] || die "-d 255 gave $dev"
	same_data /dev/qcow255 aligned.qcow2
	want_error 1 "/dev/qcow5 is already attached" attach -r -d 5 simple.qcow2
	want_error 1 "/dev/qcow7 is already attached" attach -r /dev/qcow7 simple.qcow2
	want_error 1 "/dev/qcow256: out of range: the module has /dev/qcow0 to /dev/qcow255 (module parameter max_devices=256)" \
		attach -r -d 256 simple.qcow2
	want_error 2 "'/dev/sda' is not a qcow device name" attach -r -d /dev/sda simple.qcow2
	want_error 2 "'qcow05' is not a qcow device name" attach -r -d qcow05 simple.qcow2
	want_error 2 "too many arguments" attach -r /dev/qcow3 simple.qcow2 aligned.qcow2
	[ "$(ndevs)" -eq 3 ] || die "a refused attach created a device"
	# the lowest free device is still the default
	ctl attach -f
	[ "$(cat "$W/out")" = /dev/qcow0 ] || die "attach -f: '$(cat "$W/out")'"
	attach -r simple.qcow2
	[ "$dev" = /dev/qcow0 ] || die "plain attach gave $dev"
	# a refused --device leaves the image unlocked: read-write works
	cp aligned.qcow2 rw.qcow2
	want_error 1 "/dev/qcow5 is already attached" attach -d 5 rw.qcow2
	attach -d 3 rw.qcow2
	[ "$dev" = /dev/qcow3 ] || die "-d 3 gave $dev"
	[ "$(cat /sys/block/qcow3/qcow/read_only)" = 0 ] || die "qcow3 is not read-write"
	same_data /dev/qcow3 aligned.qcow2
}

# The ioctl itself, without qcowctl's checks in front of it.
t_attach_index_ioctl() {
	local r
	"$QCOW_CTL" features --json | jq -e '.features | index("attach-index") != null' >/dev/null ||
		die "features does not list attach-index"
	r=$(raw_attach aligned.qcow2 5 9)	# READ_ONLY | INDEX
	[ "$r" = "ok 9" ] || die "INDEX 9: $r"
	[ -b /dev/qcow9 ] || die "no /dev/qcow9"
	r=$(raw_attach aligned.qcow2 5 9)
	[ "$r" = EBUSY ] || die "INDEX 9 again: $r, want EBUSY"
	r=$(raw_attach aligned.qcow2 5 256)
	[ "$r" = EINVAL ] || die "INDEX 256 (max_devices 256): $r, want EINVAL"
	r=$(raw_attach aligned.qcow2 5 0xffffffff)
	[ "$r" = EINVAL ] || die "INDEX 0xffffffff: $r, want EINVAL"
	r=$(raw_attach aligned.qcow2 1 9)	# an index without the flag
	[ "$r" = EINVAL ] || die "index without QCOW_ATTACH_INDEX: $r, want EINVAL"
	r=$(raw_attach aligned.qcow2 1 0)
	[ "$r" = "ok 0" ] || die "no index: $r, want the lowest free (0)"
	r=$(raw_attach aligned.qcow2 5 0)
	[ "$r" = EBUSY ] || die "INDEX 0 while attached: $r, want EBUSY"
	[ "$(ndevs)" -eq 2 ] || die "want 2 devices, have $(ndevs)"
	# a device being detached lazily still holds its index
	exec 3</dev/qcow9
	expect "$QCOW_CTL" detach --lazy /dev/qcow9
	r=$(raw_attach aligned.qcow2 5 9)
	[ "$r" = EBUSY ] || die "INDEX 9 while lazily detached: $r, want EBUSY"
	exec 3<&-
	for _ in $(seq 50); do [ -e /sys/block/qcow9 ] || break; sleep 0.1; done
	r=$(raw_attach aligned.qcow2 5 9)
	[ "$r" = "ok 9" ] || die "INDEX 9 after the detach: $r"
}

# max_devices=3: -f and attach run out; -d 3 is out of range.
t_max_devices() {
	# shellcheck disable=SC2064
	trap "'$QCOW_CTL' detach -a >/dev/null 2>&1; rmmod qcow 2>/dev/null; insmod '$QCOW_KO'" EXIT
	"$QCOW_CTL" detach -a
	qcow_unload
	qcow_load max_devices=3
	attach -r aligned.qcow2
	attach -r -d 2 aligned.qcow2
	ctl attach -f
	[ "$(cat "$W/out")" = /dev/qcow1 ] || die "attach -f: '$(cat "$W/out")'"
	attach -r aligned.qcow2
	[ "$dev" = /dev/qcow1 ] || die "third attach gave $dev"
	want_error 1 "no free qcow device: all 3 are in use" attach -f
	want_error 1 "no free qcow device (max_devices reached)" attach -r aligned.qcow2
	want_error 1 "/dev/qcow3: out of range: the module has /dev/qcow0 to /dev/qcow2 (module parameter max_devices=3)" \
		attach -r -d 3 aligned.qcow2
	"$QCOW_CTL" detach -a
	qcow_unload
	qcow_load
	trap - EXIT
}

# Every command's --help (and -h, and `help CMD`): usage on stdout, exit 0;
# an unknown option: exit 2, one line on stderr.
t_help() {
	local c h s cmds subs want
	cmds=$("$QCOW_CTL" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][-a-z0-9]*\) .*/\1/p')
	[ "$(wc -w <<<"$cmds")" -ge 10 ] || die "qcowctl --help lists: $cmds"
	for c in $cmds; do
		for h in --help -h; do
			[ "$c" = help ] && [ "$h" = -h ] && continue
			ctl "$c" "$h"
			[ "$rc" -eq 0 ] && [ ! -s "$W/err" ] ||
				die "qcowctl $c $h exited $rc: $(cat "$W/err")"
			head -n 1 "$W/out" | grep -q "^usage: qcowctl $c" ||
				die "qcowctl $c $h: first line is '$(head -n 1 "$W/out")'"
		done
		ctl help "$c"
		[ "$rc" -eq 0 ] && head -n 1 "$W/out" | grep -q "^usage: qcowctl $c" ||
			die "qcowctl help $c: exit $rc, '$(head -n 1 "$W/out")'"
		[ "$c" = help ] && continue
		# check's usage errors exit 1: 2 means corruption there
		want=2
		[ "$c" = check ] && want=1
		ctl "$c" --no-such-option
		[ "$rc" -eq "$want" ] && [ "$(wc -l <"$W/err")" -eq 1 ] && [ ! -s "$W/out" ] ||
			die "qcowctl $c --no-such-option: exit $rc, stderr '$(cat "$W/err")'"
		grep -qE "(invalid option|unknown subcommand) '--no-such-option'" "$W/err" ||
			die "qcowctl $c --no-such-option: $(cat "$W/err")"
	done
	subs=$("$QCOW_CTL" snapshot --help | sed -n '1s/^usage: [^ ]* snapshot \([a-z|]*\) .*/\1/p' | tr '|' ' ')
	[ "$(wc -w <<<"$subs")" -eq 4 ] || die "snapshot subcommands: '$subs'"
	for s in $subs; do
		ctl snapshot "$s" --help
		[ "$rc" -eq 0 ] && head -n 1 "$W/out" | grep -q "^usage: qcowctl snapshot $s" ||
			die "qcowctl snapshot $s --help: exit $rc"
	done
	ctl --help
	[ "$rc" -eq 0 ] && grep -q '^usage: qcowctl' "$W/out" || die "qcowctl --help: exit $rc"
	ctl --version
	[ "$rc" -eq 0 ] && grep -qE '^qcowctl .* \(qcow ABI [0-9]+\)$' "$W/out" ||
		die "qcowctl --version: exit $rc"
	want_error 2 "unknown command 'frobnicate'" frobnicate
}

t_unload() {
	qcow_unload
	want_error 1 "the qcow module is not loaded (/dev/qcow-control missing)" \
		attach -r aligned.qcow2
	want_error 1 "the qcow module is not loaded (/dev/qcow-control missing)" \
		attach -f
	ctl list
	[ "$rc" -eq 0 ] && [ ! -s "$W/out" ] || die "list without the module: $rc"
}

check load t_load
if [ "$nfail" -ne 0 ]; then
	echo "cli: the module does not load"
	exit 1
fi
check features t_features
check info t_info
check attach-read-only t_attach_ro
check list t_list
check list-json t_list_json
check list-output t_list_output
check list-open-count t_open_count
check read-write-refused t_read_write_refused
check backing-chain t_chain
check backing-relative-to-image t_chain_other_cwd
check backing-format-probed t_chain_probed
check backing-loop t_loop
check backing-missing t_missing
check backing-depth t_depth
check not-qcow2 t_not_qcow2
check detach-device t_detach_dev
check detach-image t_detach_image
check detach-busy-lazy t_detach_busy
check detach-all t_detach_all
check partscan t_partscan
check mount-detach-lazy t_mounted
check cache-size t_cache_size
check busy-waits-for-udev t_busy_udev
check attach-find t_find
check attach-device t_device
check attach-index-ioctl t_attach_index_ioctl
check max-devices t_max_devices
check help t_help
check unload t_unload
cd /
rm -rf "$W"

echo "cli: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
