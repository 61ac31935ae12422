#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# qcowctl's device commands against the real module:
#   attach   read-only, the refused read-write attach, backing chains
#            qcow2 -> qcow2 -> raw with relative names (from another cwd)
#            and probed formats, loops, missing files, the 16-layer limit,
#            -P partitions, --cache-size;
#   list     table and --json (checked with jq);
#   detach   by device (/dev/qcowN, qcowN, N) and by image, an image
#            attached twice, an open device (EBUSY, then --lazy), --all;
#   plus info/features in the guest and the message without the module.
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

nfail=0
npass=0

# die MSG: fail the current check (checks run in a subshell).
die() {
	echo "$*" >&2
	exit 1
}

# check NAME FUNCTION [ARGS...]: run one check in a subshell with errexit,
# print its verdict, then detach whatever it left attached.
check() {
	local name=$1 rc
	shift
	set +e
	(set -e; cd "$W"; "$@") >"$W/check.log" 2>&1
	rc=$?
	set -e
	if [ "$rc" -eq 0 ]; then
		echo "PASS cli/$name"
		npass=$((npass + 1))
	else
		echo "FAIL cli/$name"
		sed 's/^/    /' "$W/check.log"
		nfail=$((nfail + 1))
	fi
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
	for col in DEVICE IMAGE SIZE CLUSTER RO BACKING CACHE HIT%; do
		grep -qw -- "$col" <<<"$hdr" || die "no $col column"
	done
	# shellcheck disable=SC2086
	set -- $row
	[ "$1" = /dev/qcow0 ] || die "DEVICE is '$1'"
	[ "$2" = "$W/simple.qcow2" ] || die "IMAGE is '$2', want $W/simple.qcow2"
	[ "$3" = 64M ] || die "SIZE is '$3', want 64M"
	[ "$4" = 64K ] || die "CLUSTER is '$4', want 64K"
	[ "$5" = 1 ] || die "RO is '$5', want 1"
	[ "$6" = - ] || die "BACKING is '$6', want -"
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

t_unload() {
	qcow_unload
	want_error 1 "the qcow module is not loaded (/dev/qcow-control missing)" \
		attach -r aligned.qcow2
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
check unload t_unload
cd /
rm -rf "$W"

echo "cli: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
