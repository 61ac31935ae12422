#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Userspace tests for qcowctl, which runs the module's format core
# (drivers/block/qcow/qcow2_format.c) compiled unchanged.
#
#  1. build qcowctl twice: the normal -Werror build and an ASan + UBSan one
#     (make SANITIZE=1); every test below runs the sanitized binary;
#  2. make varied images with the real qemu-img (v2/v3, every cluster size
#     class, refcount widths, lazy refcounts, extended L2, zstd, backing
#     files, preallocation, internal snapshots, 4 TiB, external data file,
#     bitmaps, dirty and corrupt bits, names that need JSON escaping) and
#     compare `qcowctl info --json` with `qemu-img info --output=json`
#     field by field (qemu-info.jq / qcowctl-info.jq say which);
#  3. feed the CLI bad input (missing file, raw file, truncated and patched
#     headers, encryption): each must exit 1 with exactly one stderr line
#     naming the offending field;
#  4. a few command-line conventions (--help, --version, usage errors);
#  5. image locking as QEMU does it, both ways, against real qemu-io,
#     qemu-img and qemu-nbd processes (no module needed);
#  6. check.sh: qcowctl check, dump and map against qemu-img check, info
#     and map on clean, leaky and corrupted images.
#
# One "PASS|FAIL userspace/<case>" line per case goes to $QCOW_RESULTS
# (default build/results-userspace.txt); the exit status is non-zero if any
# case failed.  QCOW_KEEP=1 keeps the work directory.  Needs qemu-img,
# qemu-io, qemu-nbd, jq, make and a C compiler.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)

if [ -z "${QCOW_RESULTS:-}" ]; then
	QCOW_RESULTS=$top/build/results-userspace.txt
	mkdir -p "$(dirname "$QCOW_RESULTS")"
	: > "$QCOW_RESULTS"
fi
export QCOW_RESULTS

suite=userspace
failures=0

pass() {
	echo "PASS $suite/$1" | tee -a "$QCOW_RESULTS"
}

# fail CASE [DETAIL...]: record the failure, show the details indented.
fail() {
	local name=$1
	shift
	echo "FAIL $suite/$name" | tee -a "$QCOW_RESULTS"
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" | sed 's/^/    /'
	fi
	failures=$((failures + 1))
}

for tool in qemu-img qemu-io qemu-nbd jq make cc; do
	if ! command -v "$tool" >/dev/null; then
		fail prerequisites "missing $tool (scripts/install-deps.sh installs it)"
		exit 1
	fi
done

# --- build ------------------------------------------------------------------

log=$(mktemp)
if make -s -C "$top/userspace" >"$log" 2>&1; then
	pass build
else
	fail build "$(tail -n 20 "$log")"
fi
if make -s -C "$top/userspace" SANITIZE=1 >"$log" 2>&1; then
	pass build-sanitize
else
	fail build-sanitize "$(tail -n 20 "$log")"
	rm -f "$log"
	exit 1
fi
rm -f "$log"

QCOWCTL=$top/build/userspace-san/qcowctl
# A sanitizer report must not pass for qcowctl's own "exit 1".
export ASAN_OPTIONS=detect_leaks=1:exitcode=86:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=86

work=$(mktemp -d "${TMPDIR:-/tmp}/qcow-utest.XXXXXX")
# QCOW_KEEP=1 keeps the images and outputs for a look after a failure.
if [ -n "${QCOW_KEEP:-}" ]; then
	trap 'echo "userspace: kept $work"' EXIT
else
	trap 'rm -rf "$work"' EXIT
fi
cd "$work"

# --- helpers ----------------------------------------------------------------

# mk NAME SIZE [qemu-img create -o options]: a qcow2 image NAME.qcow2
mk() {
	local name=$1 size=$2
	shift 2
	qemu-img create -q -f qcow2 ${1:+-o "$1"} "$name.qcow2" "$size"
}

# io IMAGE CMD...: run qemu-io commands on a qcow2 image
io() {
	local img=$1 c args=()
	shift
	for c in "$@"; do
		args+=(-c "$c")
	done
	qemu-io -f qcow2 "${args[@]}" "$img" >/dev/null
}

# poke FILE OFFSET HEX: overwrite bytes at OFFSET, e.g. poke f 32 00000001
poke() {
	local file=$1 off=$2 hex=$3 esc=
	while [ -n "$hex" ]; do
		esc+="\\x${hex:0:2}"
		hex=${hex:2}
	done
	# shellcheck disable=SC2059
	printf "$esc" | dd of="$file" bs=1 seek="$off" conv=notrunc status=none
}

# --- images -----------------------------------------------------------------
# Each img_NAME function creates NAME.qcow2 in the work directory.

img_v2() { mk v2 1G compat=0.10; }
img_v3() { mk v3 1G compat=1.1; }
img_cluster-512() { mk cluster-512 128M cluster_size=512; }
img_cluster-4k() { mk cluster-4k 1G cluster_size=4k; }
img_cluster-2m() { mk cluster-2m 16G cluster_size=2M; }
img_refcount-1() { mk refcount-1 1G refcount_bits=1; }
img_refcount-8() { mk refcount-8 1G refcount_bits=8; }
img_refcount-64() { mk refcount-64 1G refcount_bits=64; }
img_lazy-refcounts() { mk lazy-refcounts 1G lazy_refcounts=on; }
img_extended-l2() { mk extended-l2 1G extended_l2=on,cluster_size=32k; }
img_extended-l2-2m() { mk extended-l2-2m 8G extended_l2=on,cluster_size=2M; }
img_zstd() {
	mk zstd 256M compression_type=zstd
	io zstd.qcow2 'write -c -P 0x5a 0 64k'
}
img_large-4t() { mk large-4t 4T; }
img_prealloc-metadata() { mk prealloc-metadata 256M preallocation=metadata; }

img_backing-raw() {
	truncate -s 64M base.raw
	qemu-img create -q -f qcow2 -b base.raw -F raw backing-raw.qcow2
}

img_backing-qcow2() {
	mk base 64M
	io base.qcow2 'write -P 0x11 0 1M'
	qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 backing-qcow2.qcow2 128M
}

img_backing-v2() {
	mk base-v2 64M compat=0.10
	qemu-img create -q -f qcow2 -o compat=0.10 -b base-v2.qcow2 -F qcow2 \
		backing-v2.qcow2
}

# A backing file name that needs JSON escaping: space, quotes, UTF-8.
img_backing-odd-name() {
	truncate -s 16M 'bäse "q" \ x.raw'
	qemu-img create -q -f qcow2 -b 'bäse "q" \ x.raw' -F raw \
		backing-odd-name.qcow2
}

img_snapshots() {
	mk snapshots 1G
	io snapshots.qcow2 'write -P 0xab 0 1M'
	qemu-img snapshot -c first snapshots.qcow2
	io snapshots.qcow2 'write -P 0xcd 1M 1M'
	qemu-img snapshot -c 'second one' snapshots.qcow2
	qemu-img snapshot -c third snapshots.qcow2
	qemu-img snapshot -d 'second one' snapshots.qcow2
	qemu-img snapshot -c fourth snapshots.qcow2
}

img_snapshots-v2() {
	mk snapshots-v2 256M compat=0.10
	io snapshots-v2.qcow2 'write -P 0xab 0 1M'
	qemu-img snapshot -c s1 snapshots-v2.qcow2
	qemu-img snapshot -c s2 snapshots-v2.qcow2
}

img_snapshots-resized() {
	mk snapshots-resized 64M
	io snapshots-resized.qcow2 'write -P 0x01 0 64k'
	qemu-img snapshot -c small snapshots-resized.qcow2
	qemu-img resize -q snapshots-resized.qcow2 1G
	qemu-img snapshot -c big snapshots-resized.qcow2
}

img_snapshot-odd-name() {
	mk snapshot-odd-name 64M
	qemu-img snapshot -c 'snäp "quoted" \ tab	end' snapshot-odd-name.qcow2
	qemu-img snapshot -c '日本語' snapshot-odd-name.qcow2
}

# Invalid UTF-8 and a control character: both tools must print U+FFFD.
img_snapshot-bad-utf8() {
	mk snapshot-bad-utf8 64M
	qemu-img snapshot -c $'a\xffb\xc3\x28c\x01' snapshot-bad-utf8.qcow2
	qemu-img snapshot -c ok snapshot-bad-utf8.qcow2
}

img_data-file() { mk data-file 64M data_file=data-file.data; }
img_data-file-raw() {
	mk data-file-raw 64M data_file=data-file-raw.data,data_file_raw=on
}

img_bitmaps() {
	mk bitmaps 1G
	qemu-img bitmap --add bitmaps.qcow2 bm0
	qemu-img bitmap --add -g 128k bitmaps.qcow2 'bm 1'
}

# qemu-io dies with the dirty bit still set (lazy refcounts use it).
img_dirty() {
	mk dirty 64M lazy_refcounts=on
	(ulimit -c 0; qemu-io -f qcow2 -c 'write 0 64k' -c abort dirty.qcow2) \
		>/dev/null 2>&1 || true
}

# The corrupt bit (incompatible bit 1, byte 79) is known: info shows it.
img_corrupt() {
	mk corrupt 64M
	poke corrupt.qcow2 79 02
}

images=(
	v2 v3 cluster-512 cluster-4k cluster-2m refcount-1 refcount-8
	refcount-64 lazy-refcounts extended-l2 extended-l2-2m zstd large-4t
	prealloc-metadata backing-raw backing-qcow2 backing-v2 backing-odd-name
	snapshots snapshots-v2 snapshots-resized snapshot-odd-name
	snapshot-bad-utf8 data-file
	data-file-raw bitmaps dirty corrupt
)

# check_info NAME: compare qcowctl and qemu-img on NAME.qcow2.
check_info() {
	local name=$1 img=$1.qcow2 case=info-$1 rc=0 q m diffs

	# a subshell outside any condition, so that set -e holds inside it
	set +e
	(set -e; "img_$name") >"$name.create.log" 2>&1
	rc=$?
	set -e
	if [ "$rc" -ne 0 ]; then
		fail "$case" "creating the image failed:" "$(cat "$name.create.log")"
		return
	fi
	if ! q=$(qemu-img info -U --output=json "$img" | jq -f "$here/qemu-info.jq"); then
		fail "$case" "qemu-img info failed"
		return
	fi

	"$QCOWCTL" info --json "$img" >"$name.json" 2>"$name.err" || rc=$?
	if [ "$rc" -ne 0 ] || [ -s "$name.err" ]; then
		fail "$case" "qcowctl info --json exited $rc" "$(head -n 30 "$name.err")"
		return
	fi
	if ! m=$(jq -f "$here/qcowctl-info.jq" "$name.json"); then
		fail "$case" "qcowctl printed invalid JSON" "$(head -n 30 "$name.json")"
		return
	fi
	diffs=$(jq -rn --argjson q "$q" --argjson m "$m" '
		($q | keys) + ($m | keys) | unique[] as $k
		| select($q[$k] != $m[$k])
		| "\($k): qemu-img=\($q[$k] | tojson) qcowctl=\($m[$k] | tojson)"')
	if [ -n "$diffs" ]; then
		fail "$case" "$diffs"
		return
	fi

	# The text output must work too (and stay clean under the sanitizers).
	rc=0
	"$QCOWCTL" info "$img" >"$name.txt" 2>"$name.err" || rc=$?
	if [ "$rc" -ne 0 ] || [ -s "$name.err" ] || ! [ -s "$name.txt" ]; then
		fail "$case" "qcowctl info (text) exited $rc" "$(head -n 30 "$name.err")"
		return
	fi
	pass "$case"
}

for name in "${images[@]}"; do
	check_info "$name"
done

# --- bad input --------------------------------------------------------------

# expect_error CASE FIELD FILE: qcowctl info FILE must exit 1, print nothing
# on stdout and exactly one stderr line "qcowctl: FILE: FIELD...".
expect_error() {
	local case=bad-$1 field=$2 file=$3 rc=0 lines

	"$QCOWCTL" info "$file" >"$1.out" 2>"$1.err" || rc=$?
	lines=$(wc -l <"$1.err")
	if [ "$rc" -ne 1 ]; then
		fail "$case" "exit status $rc, expected 1" "$(head -n 30 "$1.err")"
	elif [ "$lines" -ne 1 ]; then
		fail "$case" "$lines lines on stderr, expected 1" "$(head -n 30 "$1.err")"
	elif [ -s "$1.out" ]; then
		fail "$case" "unexpected output on stdout" "$(head -n 5 "$1.out")"
	elif ! grep -qF "qcowctl: $file: $field" "$1.err"; then
		fail "$case" "expected 'qcowctl: $file: $field...', got:" "$(cat "$1.err")"
	else
		pass "$case"
	fi
}

# bad_image CASE: a fresh 64 MiB v3 image CASE.qcow2 to damage
bad_image() {
	qemu-img create -q -f qcow2 "$1.qcow2" 64M
}

expect_error nonexistent "No such file" no-such.qcow2

truncate -s 1M raw.img
expect_error raw-file "magic" raw.img

: > empty.img
expect_error empty-file "header" empty.img

bad_image full
head -c 50 full.qcow2 > truncated-50.qcow2
expect_error truncated-50 "header" truncated-50.qcow2
head -c 100 full.qcow2 > truncated-100.qcow2
expect_error truncated-100 "header_length" truncated-100.qcow2

bad_image version-4
poke version-4.qcow2 4 00000004
expect_error version-4 "version" version-4.qcow2

bad_image cluster-bits-22
poke cluster-bits-22.qcow2 20 00000016
expect_error cluster-bits-22 "cluster_bits" cluster-bits-22.qcow2

# incompatible bit 10: byte 78 holds bits 15..8
bad_image unknown-incompat
poke unknown-incompat.qcow2 78 04
expect_error unknown-incompat "incompatible_features" unknown-incompat.qcow2

bad_image crypt-aes
poke crypt-aes.qcow2 32 00000001
expect_error crypt-aes "crypt_method" crypt-aes.qcow2

# crypt_method 2 (LUKS); a real LUKS image would need qemu-img's PBKDF
# benchmark, slow and flaky on a loaded machine
bad_image crypt-luks
poke crypt-luks.qcow2 32 00000002
expect_error crypt-luks "crypt_method" crypt-luks.qcow2

bad_image l1-past-eof
poke l1-past-eof.qcow2 40 0000001000000000
expect_error l1-past-eof "l1_table_offset" l1-past-eof.qcow2

bad_image refcount-order-7
poke refcount-order-7.qcow2 96 00000007
expect_error refcount-order-7 "refcount_order" refcount-order-7.qcow2

qemu-img create -q -f qcow2 -b full.qcow2 -F qcow2 backing-too-long.qcow2
poke backing-too-long.qcow2 16 00000800
expect_error backing-too-long "backing_file_size" backing-too-long.qcow2

# One more snapshot than the table holds: the entry after the last is junk
# or past the end of the file.
bad_image snapshot-count
qemu-img snapshot -c only snapshot-count.qcow2
poke snapshot-count.qcow2 60 00000002
expect_error snapshot-count "snapshot" snapshot-count.qcow2

# --- command line -----------------------------------------------------------

# expect_cli CASE STATUS STREAM PATTERN ARGS...: qcowctl ARGS exits STATUS
# and STREAM (out|err) matches the extended regex PATTERN; usage errors
# must be one line.
expect_cli() {
	local case=cli-$1 want=$2 stream=$3 pattern=$4 rc=0
	shift 4

	"$QCOWCTL" "$@" >cli.out 2>cli.err || rc=$?
	if [ "$rc" -ne "$want" ]; then
		fail "$case" "qcowctl $* exited $rc, expected $want" "$(head -n 20 cli.err)"
	elif ! grep -qE "$pattern" "cli.$stream"; then
		fail "$case" "qcowctl $*: std$stream does not match '$pattern'" \
			"$(head -n 20 "cli.$stream")"
	elif [ "$want" -eq 2 ] && [ "$(wc -l <cli.err)" -ne 1 ]; then
		fail "$case" "usage error is not one line" "$(cat cli.err)"
	else
		pass "$case"
	fi
}

expect_cli help 0 out '^usage: qcowctl ' --help
expect_cli help-help 0 out '^usage: qcowctl help \[COMMAND\]$' help --help
expect_cli version 0 out '^qcowctl [^ ]+ \(qcow ABI [0-9]+\)$' --version
expect_cli info-help 0 out '^usage: qcowctl info ' info --help
expect_cli no-command 2 err '^qcowctl: missing command'
expect_cli unknown-command 2 err "^qcowctl: unknown command 'frobnicate'" frobnicate
expect_cli info-no-image 2 err '^qcowctl: info: missing IMAGE' info
expect_cli info-bad-option 2 err "^qcowctl: info: invalid option '--frob'" info --frob v3.qcow2
expect_cli info-json-after-image 0 out '"virtual-size": 1073741824' info v3.qcow2 --json

# Device commands: their command lines, and the backing chain resolution
# that attach does before it talks to the module (the module itself is
# exercised in the VM, tests/vm/guest/t-cli.sh).
expect_cli attach-help 0 out '^usage: qcowctl attach ' attach --help
expect_cli detach-help 0 out '^usage: qcowctl detach ' detach --help
expect_cli list-help 0 out '^usage: qcowctl list ' list --help
expect_cli attach-no-image 2 err '^qcowctl: attach: missing IMAGE' attach
expect_cli attach-no-image-ro 2 err '^qcowctl: attach: missing IMAGE' attach -r -P
expect_cli attach-too-many 2 err '^qcowctl: attach: too many arguments' attach -r v3.qcow2 v2.qcow2
expect_cli attach-bad-option 2 err "^qcowctl: attach: invalid option '-x'" attach -x v3.qcow2
expect_cli attach-cache-size-missing 2 err "^qcowctl: attach: option '--cache-size' needs an argument" attach v3.qcow2 --cache-size
expect_cli attach-cache-size-junk 2 err "^qcowctl: attach: invalid cache size '12X'" attach -r --cache-size 12X v3.qcow2
expect_cli attach-cache-size-negative 2 err "^qcowctl: attach: invalid cache size '-1'" attach -r --cache-size=-1 v3.qcow2
expect_cli attach-cache-size-overflow 2 err "^qcowctl: attach: invalid cache size '99999999999G'" attach -r --cache-size 99999999999G v3.qcow2
expect_cli attach-cache-size-small 2 err "^qcowctl: attach: cache size '1K' out of range" attach -r --cache-size 1K v3.qcow2
expect_cli attach-cache-size-large 2 err "^qcowctl: attach: cache size '2G' out of range" attach -r --cache-size 2G v3.qcow2
expect_cli detach-no-arg 2 err '^qcowctl: detach: missing DEV or IMAGE' detach
expect_cli detach-all-and-dev 2 err '^qcowctl: detach: --all takes no DEV or IMAGE' detach -a /dev/qcow0
expect_cli detach-bad-option 2 err "^qcowctl: detach: invalid option '--frob'" detach --frob 0
expect_cli list-extra-arg 2 err '^qcowctl: list: too many arguments' list x
expect_cli detach-no-such-file 1 err '^qcowctl: no-such.qcow2: No such file or directory$' detach no-such.qcow2
expect_cli attach-raw-image 1 err '^qcowctl: raw.img: magic: ' attach -r raw.img
# losetup's -f, --show and device choice
expect_cli attach-help-find 0 out '^  -f, --find ' attach --help
expect_cli attach-help-device 0 out '^  -d, --device DEV ' attach --help
expect_cli attach-help-show 0 out '^      --show ' attach --help
expect_cli attach-find-and-device 2 err '^qcowctl: attach: -f/--find and a device exclude each other' attach -f -d 3 v3.qcow2
expect_cli attach-find-and-dev-operand 2 err '^qcowctl: attach: -f/--find and a device exclude each other' attach -f /dev/qcow3 v3.qcow2
expect_cli attach-device-not-qcow 2 err "^qcowctl: attach: 'sda' is not a qcow device name \(/dev/qcowN, qcowN or N\)" attach -d sda v3.qcow2
expect_cli attach-device-partition 2 err "^qcowctl: attach: '/dev/qcow0p1' is not a qcow device name" attach -r -d /dev/qcow0p1 v3.qcow2
expect_cli attach-device-leading-zero 2 err "^qcowctl: attach: '007' is not a qcow device name" attach -r -d 007 v3.qcow2
expect_cli attach-device-no-arg 2 err "^qcowctl: attach: option '-d' needs an argument" attach -r v3.qcow2 -d
expect_cli attach-device-no-image 2 err '^qcowctl: attach: missing IMAGE' attach -d /dev/qcow3
expect_cli attach-dev-image-too-many 2 err '^qcowctl: attach: too many arguments' attach /dev/qcow3 v3.qcow2 v2.qcow2
expect_cli attach-two-images 2 err '^qcowctl: attach: too many arguments' attach v3.qcow2 v2.qcow2
expect_cli attach-show-no-image 2 err '^qcowctl: attach: missing IMAGE' attach --show -r
expect_cli attach-device-twice-ro-u 2 err '^qcowctl: attach: -U/--force-share is only allowed with -r' attach -U -d 3 v3.qcow2
# list's table options
expect_cli list-help-columns 0 out '^  OPEN \*  ' list --help
expect_cli list-help-output 0 out '^  -o, --output COLUMNS ' list --help
expect_cli list-unknown-column 2 err "^qcowctl: list: unknown column 'FOO' \(see 'qcowctl list --help'\)" list -o DEVICE,FOO
expect_cli list-no-column 2 err "^qcowctl: list: no columns in ','" list -o ,
expect_cli list-output-no-arg 2 err "^qcowctl: list: option '-o' needs an argument" list -o
expect_cli list-json-and-table 2 err '^qcowctl: list: --json prints every field' list --json -n
expect_cli list-json-and-bytes 2 err '^qcowctl: list: --json prints every field' list -b --json

# Snapshot commands: their command lines and device resolution, which
# happen before any ioctl (the ioctls are tested in the VM,
# tests/vm/guest/t-snapshot.sh).
long_name=$(printf '%01024d' 0)
expect_cli snapshot-help 0 out '^  qcowctl snapshot apply DEV NAME\|ID$' snapshot --help
expect_cli snapshot-help-cmd 0 out '^usage: qcowctl snapshot create\|list\|apply\|delete ' help snapshot
expect_cli snapshot-create-help 0 out '^usage: qcowctl snapshot create DEV NAME$' snapshot create --help
expect_cli snapshot-list-help 0 out '^usage: qcowctl snapshot list \[--json\] DEV$' snapshot list -h
expect_cli snapshot-no-sub 2 err '^qcowctl: snapshot: missing subcommand' snapshot
expect_cli snapshot-unknown-sub 2 err "^qcowctl: snapshot: unknown subcommand 'take'" snapshot take /dev/qcow0 a
expect_cli snapshot-create-no-dev 2 err '^qcowctl: snapshot create: missing DEV ' snapshot create
expect_cli snapshot-create-no-name 2 err '^qcowctl: snapshot create: missing NAME ' snapshot create /dev/qcow0
expect_cli snapshot-create-too-many 2 err '^qcowctl: snapshot create: too many arguments' snapshot create /dev/qcow0 a b
expect_cli snapshot-create-empty 2 err '^qcowctl: snapshot create: the snapshot name is empty' snapshot create /dev/qcow0 ''
expect_cli snapshot-create-long 2 err '^qcowctl: snapshot create: the snapshot name is 1024 bytes long, at most 255 are allowed' \
	snapshot create /dev/qcow0 "$long_name"
expect_cli snapshot-create-256 2 err '^qcowctl: snapshot create: the snapshot name is 256 bytes long, at most 255 are allowed' \
	snapshot create /dev/qcow0 "$(printf 'n%.0s' $(seq 256))"
expect_cli snapshot-create-bad-option 2 err "^qcowctl: snapshot create: invalid option '--frob'" snapshot create --frob /dev/qcow0 a
expect_cli snapshot-list-json-bad 2 err "^qcowctl: snapshot list: invalid option '-x'" snapshot list -x /dev/qcow0
expect_cli snapshot-list-no-dev 2 err '^qcowctl: snapshot list: missing DEV ' snapshot list --json
expect_cli snapshot-list-too-many 2 err '^qcowctl: snapshot list: too many arguments' snapshot list /dev/qcow0 /dev/qcow1
expect_cli snapshot-apply-no-name 2 err '^qcowctl: snapshot apply: missing NAME\|ID ' snapshot apply /dev/qcow0
expect_cli snapshot-delete-empty 2 err '^qcowctl: snapshot delete: the snapshot name or id is empty' snapshot delete /dev/qcow0 ''
expect_cli snapshot-delete-long 2 err '^qcowctl: snapshot delete: the snapshot name or id is 1024 bytes long' \
	snapshot delete /dev/qcow0 "$long_name"
expect_cli snapshot-no-such-image 1 err '^qcowctl: no-such.qcow2: No such file or directory$' snapshot list no-such.qcow2
expect_cli snapshot-image-not-attached 1 err '^qcowctl: v3.qcow2: not attached to any qcow device$' snapshot create v3.qcow2 s1
expect_cli snapshot-not-qcow 1 err '^qcowctl: /dev/null: ' snapshot list /dev/null

# resize: its command line and SIZE, checked before the device is looked
# up (the ioctl is tested in the VM, tests/vm/guest/t-resize.sh).
expect_cli resize-help 0 out '^usage: qcowctl resize DEV \[SIZE\|\+SIZE\]$' resize --help
expect_cli resize-help-cmd 0 out '^usage: qcowctl resize ' help resize
expect_cli resize-listed 0 out '^  resize +grow an attached disk online' --help
expect_cli resize-no-dev 2 err '^qcowctl: resize: missing DEV ' resize
expect_cli resize-too-many 2 err '^qcowctl: resize: too many arguments' resize /dev/qcow0 1G 2G
expect_cli resize-bad-option 2 err "^qcowctl: resize: invalid option '--frob'" resize --frob /dev/qcow0 1G
expect_cli resize-option-after 2 err "^qcowctl: resize: too many arguments" resize /dev/qcow0 1G --help
expect_cli resize-size-junk 2 err "^qcowctl: resize: invalid size '12X' " resize /dev/qcow0 12X
expect_cli resize-size-empty 2 err "^qcowctl: resize: invalid size '' " resize /dev/qcow0 ''
expect_cli resize-size-plus-only 2 err "^qcowctl: resize: invalid size '\+' " resize /dev/qcow0 +
expect_cli resize-size-negative 2 err "^qcowctl: resize: invalid size '-1G' " resize /dev/qcow0 -1G
expect_cli resize-size-fraction 2 err "^qcowctl: resize: invalid size '1.5G' " resize /dev/qcow0 1.5G
expect_cli resize-size-unaligned 2 err "^qcowctl: resize: size '1000' is not a multiple of 512 bytes" resize /dev/qcow0 1000
expect_cli resize-size-unaligned-plus 2 err "^qcowctl: resize: size '\+100' is not a multiple of 512 bytes" resize /dev/qcow0 +100
expect_cli resize-size-overflow 2 err "^qcowctl: resize: size '99999999T' is too large" resize /dev/qcow0 99999999T
expect_cli resize-no-such-image 1 err '^qcowctl: no-such.qcow2: No such file or directory$' resize no-such.qcow2 1G
expect_cli resize-image-not-attached 1 err '^qcowctl: v3.qcow2: not attached to any qcow device$' resize v3.qcow2 +1G
expect_cli resize-show-not-attached 1 err '^qcowctl: v3.qcow2: not attached to any qcow device$' resize v3.qcow2
expect_cli resize-not-qcow 1 err '^qcowctl: /dev/null: ' resize /dev/null 2T

# Backing chains, resolved and checked by the tool alone.
mkdir -p chain loop
qemu-img create -q -f qcow2 loop/a.qcow2 16M
qemu-img create -q -f qcow2 -b a.qcow2 -F qcow2 loop/b.qcow2
qemu-img rebase -u -b b.qcow2 -F qcow2 loop/a.qcow2
expect_cli attach-backing-loop 1 err '^qcowctl: loop/a.qcow2: backing chain loops: loop/a.qcow2 is already in the chain' attach -r loop/a.qcow2
qemu-img create -q -f qcow2 -u -b gone.raw -F raw chain/missing.qcow2 16M
expect_cli attach-backing-missing 1 err '^qcowctl: chain/missing.qcow2: backing file chain/gone.raw \(named by chain/missing.qcow2\): No such file or directory$' attach -r chain/missing.qcow2
qemu-img create -q -f qcow2 -u -b base.vmdk -F vmdk chain/vmdk.qcow2 16M
expect_cli attach-backing-format 1 err '^qcowctl: chain/vmdk.qcow2: unsupported backing format vmdk' attach -r chain/vmdk.qcow2
qemu-img create -q -f qcow2 chain/l0.qcow2 4M
for i in $(seq 1 16); do
	qemu-img create -q -f qcow2 -b "l$((i - 1)).qcow2" -F qcow2 "chain/l$i.qcow2"
done
expect_cli attach-backing-depth 1 err '^qcowctl: chain/l16.qcow2: backing chain deeper than 16 layers$' attach -r chain/l16.qcow2
# a damaged backing file is reported with its own field
bad_image chain/bad-base
poke chain/bad-base.qcow2 20 00000016
qemu-img create -q -f qcow2 -u -b bad-base.qcow2 -F qcow2 chain/bad-top.qcow2 64M
expect_cli attach-backing-invalid 1 err '^qcowctl: chain/bad-base.qcow2: cluster_bits: ' attach -r chain/bad-top.qcow2

# --- image locking ------------------------------------------------------------
# qcowctl locks image files the way QEMU's file-posix driver does
# (userspace/lock.h).  The hidden `qcowctl __lock-test [-r [-U]] IMAGE` opens
# and locks IMAGE and its backing chain exactly as attach does, prints
# "locked" and holds the locks until its stdin closes, so both directions
# are checked here without the module: qemu-io, qemu-img and qemu-nbd
# against qcowctl's locks, and qcowctl (attach stops at the lock, before it
# looks for the module) against theirs.  The lock bytes themselves are
# compared with what qemu-io holds in /proc/locks.  tests/vm/guest/t-lock.sh
# does the same against real attachments.

lk=$work/lock
mkdir -p "$lk"
declare -A hold_pid=() hold_fd=()

# lock_bytes FILE: the OFD lock bytes anyone holds on FILE, "100 201 ..."
lock_bytes() {
	local id
	id=$(stat -c '%Hd %Ld %i' "$1" | awk '{ printf "%02x:%02x:%s", $1, $2, $3 }')
	awk -v id="$id" '$2 == "OFDLCK" && $6 == id { for (b = $7; b <= $8; b++) print b }' \
		/proc/locks | sort -un | paste -sd ' '
}

# bytes_are FILE BYTES: lock_bytes FILE is exactly BYTES
bytes_are() {
	[ "$(lock_bytes "$1")" = "$2" ]
}

# wait_until SECONDS CMD...: poll CMD every 0.1 s until it succeeds
wait_until() {
	local i n=$(($1 * 10))
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

die() {
	echo "$*"
	exit 1
}

# hold NAME CMD...: run CMD in the background with its stdin on a fifo that
# stays open until `release NAME`; its output goes to $lk/NAME.out/.err.
# The child closes the other holders' fifos, or it would keep them open.
hold() {
	local name=$1 fd f
	shift
	rm -f "$lk/$name.fifo"
	mkfifo "$lk/$name.fifo"
	(
		for f in "${hold_fd[@]}"; do
			exec {f}>&-
		done
		exec "$@"
	) <"$lk/$name.fifo" >"$lk/$name.out" 2>"$lk/$name.err" &
	hold_pid[$name]=$!
	exec {fd}>"$lk/$name.fifo"
	hold_fd[$name]=$fd
}

# release NAME [kill]: close NAME's stdin (and kill it, for qemu-nbd), wait
# for it; returns its exit status.
release() {
	local name=$1 fd=${hold_fd[$1]} rc=0
	exec {fd}>&-
	if [ "${2:-}" = kill ]; then
		kill "${hold_pid[$name]}" 2>/dev/null || true
	fi
	wait "${hold_pid[$name]}" || rc=$?
	unset "hold_pid[$name]" "hold_fd[$name]"
	return "$rc"
}

# hold_qcowctl NAME ARGS...: `qcowctl __lock-test ARGS` holding its locks
hold_qcowctl() {
	local name=$1
	shift
	hold "$name" "$QCOWCTL" __lock-test "$@"
	wait_until 20 grep -qx locked "$lk/$name.out" ||
		die "__lock-test $* did not lock: $(cat "$lk/$name.err")"
}

# qemu_refuses TEXT CMD...: CMD fails, saying TEXT on stderr
qemu_refuses() {
	local text=$1
	shift
	if "$@" >"$lk/q.out" 2>"$lk/q.err"; then
		die "succeeded under the lock: $*"
	fi
	grep -qF -- "$text" "$lk/q.err" ||
		die "$*: stderr does not say '$text':" "$(cat "$lk/q.err")"
}

# qemu_ok CMD...: CMD succeeds
qemu_ok() {
	"$@" >"$lk/q.out" 2>"$lk/q.err" ||
		die "failed: $*:" "$(cat "$lk/q.out" "$lk/q.err")"
}

# ctl_refuses LINE ARGS...: qcowctl ARGS exits 1, stderr is exactly
# "qcowctl: LINE", stdout empty
ctl_refuses() {
	local want="qcowctl: $1" rc=0
	shift
	"$QCOWCTL" "$@" </dev/null >"$lk/c.out" 2>"$lk/c.err" || rc=$?
	[ "$rc" -eq 1 ] || die "qcowctl $* exited $rc, want 1:" "$(cat "$lk/c.err")"
	[ "$(cat "$lk/c.err")" = "$want" ] ||
		die "qcowctl $*: stderr:" "$(cat "$lk/c.err")" "want:" "$want"
	[ ! -s "$lk/c.out" ] || die "qcowctl $*: stdout: $(cat "$lk/c.out")"
}

# ctl_locks ARGS...: `qcowctl __lock-test ARGS` gets its locks
ctl_locks() {
	local out
	out=$("$QCOWCTL" __lock-test "$@" </dev/null 2>"$lk/c.err") ||
		die "__lock-test $* failed:" "$(cat "$lk/c.err")"
	[ "$out" = locked ] || die "__lock-test $*: printed '$out'"
}

# kill whatever a case left holding
lock_case_cleanup() {
	local p
	for p in "${hold_pid[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait
}

# lock_case NAME FUNCTION: run one case in a subshell with errexit; whatever
# it left holding is killed.
lock_case() {
	local name=lock-$1 rc
	shift
	set +e
	(
		set -e
		trap lock_case_cleanup EXIT
		"$@"
	) >"$lk/case.log" 2>&1
	rc=$?
	set -e
	if [ "$rc" -eq 0 ]; then
		pass "$name"
	else
		fail "$name" "$(tail -n 30 "$lk/case.log")"
	fi
}

L=lock
qemu-img create -q -f qcow2 "$L/base.qcow2" 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 1M' "$L/base.qcow2" >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$L/top.qcow2"
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 "$L/top2.qcow2"
qemu-img create -q -f qcow2 -b top.qcow2 -F qcow2 "$L/over.qcow2"

RW_BYTES="100 101 103 201 203"
RO_BYTES="100 201 203"

# same_bytes QEMU_FLAGS CTL_FLAGS TOP_BYTES BASE_BYTES: qemu-io with
# QEMU_FLAGS holds TOP_BYTES on top.qcow2 and BASE_BYTES on its backing
# file, and so does __lock-test CTL_FLAGS; nothing is left afterwards.
same_bytes() {
	local qf=$1 cf=$2 tb=$3 bb=$4
	# shellcheck disable=SC2086  # the flags are words
	hold q qemu-io $qf -f qcow2 "$L/top.qcow2"
	wait_until 20 bytes_are "$L/top.qcow2" "$tb" ||
		die "qemu-io $qf holds '$(lock_bytes "$L/top.qcow2")' on the image, want '$tb'"
	wait_until 20 bytes_are "$L/base.qcow2" "$bb" ||
		die "qemu-io $qf holds '$(lock_bytes "$L/base.qcow2")' on the backing file, want '$bb'"
	release q
	wait_until 20 bytes_are "$L/top.qcow2" "" || die "qemu-io left locks"
	# shellcheck disable=SC2086
	hold_qcowctl c $cf "$L/top.qcow2"
	bytes_are "$L/top.qcow2" "$tb" ||
		die "qcowctl $cf holds '$(lock_bytes "$L/top.qcow2")' on the image, want '$tb'"
	bytes_are "$L/base.qcow2" "$bb" ||
		die "qcowctl $cf holds '$(lock_bytes "$L/base.qcow2")' on the backing file, want '$bb'"
	release c || die "__lock-test exited $?"
	if ! bytes_are "$L/top.qcow2" "" || ! bytes_are "$L/base.qcow2" ""; then
		die "locks left after __lock-test exited"
	fi
}

lock_bytes_rw() { same_bytes "" "" "$RW_BYTES" "$RO_BYTES"; }
lock_bytes_ro() { same_bytes "-r" "-r" "$RO_BYTES" "$RO_BYTES"; }
lock_bytes_force_share() { same_bytes "-r -U" "-r -U" "100" "100"; }

# Held read-write, as a read-write attach holds it: QEMU can neither write
# nor (without -U) read the image, nor write its backing file.
lock_qemu_vs_rw() {
	hold_qcowctl c "$L/top.qcow2"
	qemu_refuses 'Failed to get "write" lock' \
		qemu-io -f qcow2 -c 'write -P 0x5a 0 512' "$L/top.qcow2"
	qemu_refuses 'Failed to get shared "write" lock' qemu-img info "$L/top.qcow2"
	qemu_ok qemu-img info -U "$L/top.qcow2"
	qemu_refuses 'Failed to get "write" lock' qemu-img snapshot -c s1 "$L/top.qcow2"
	qemu_refuses 'Failed to get "write" lock' \
		timeout 20 qemu-nbd -f qcow2 -k "$lk/nbd.sock" "$L/top.qcow2"
	qemu_refuses 'Failed to get "write" lock' \
		qemu-io -f qcow2 -c 'write 0 512' "$L/base.qcow2"
	qemu_ok qemu-img info "$L/base.qcow2"
	release c || die "__lock-test exited $?"
	# and once the locks are gone, qemu-io writes again
	qemu_ok qemu-io -f qcow2 -c 'write -P 0x5a 0 512' "$L/top.qcow2"
	qemu_ok qemu-io -f qcow2 -c 'read -P 0x5a 0 512' -c 'read -P 0x11 512 4k' \
		"$L/top.qcow2"
	qemu_ok qemu-io -f qcow2 -c 'write -P 0x22 1M 512' "$L/base.qcow2"
}

# Held read-only: readers are welcome, writers are not; with -U, writers too.
lock_qemu_vs_ro() {
	qemu_ok qemu-io -f qcow2 -c 'write -P 0x5c 0 512' "$L/top.qcow2"
	hold_qcowctl c -r "$L/top.qcow2"
	qemu_refuses 'Failed to get "write" lock' \
		qemu-io -f qcow2 -c 'write 0 512' "$L/top.qcow2"
	qemu_ok qemu-img info "$L/top.qcow2"
	qemu_ok qemu-io -r -f qcow2 -c 'read -P 0x5c 0 512' "$L/top.qcow2"
	release c || die "__lock-test exited $?"
}

lock_qemu_vs_force_share() {
	hold_qcowctl c -r -U "$L/top.qcow2"
	qemu_ok qemu-io -f qcow2 -c 'write -P 0x5b 0 512' "$L/top.qcow2"
	qemu_ok qemu-io -f qcow2 -c 'write -P 0x23 1M 512' "$L/base.qcow2"
	release c || die "__lock-test exited $?"
	qemu_ok qemu-io -f qcow2 -c 'read -P 0x5b 0 512' "$L/top.qcow2"
}

IN_USE="image is in use: another process or qcow device has it"

# qemu-io writing the image: attach refuses, read-only too, -r -U does not;
# an overlay whose backing file is being written is refused as well.
lock_attach_vs_qemu_io() {
	hold q qemu-io -f qcow2 "$L/top.qcow2"
	wait_until 20 bytes_are "$L/top.qcow2" "$RW_BYTES" || die "qemu-io did not lock"
	ctl_refuses "$L/top.qcow2: $IN_USE open for writing (lock byte 101); use -r -U to attach read-only anyway" \
		attach "$L/top.qcow2"
	ctl_refuses "$L/top.qcow2: $IN_USE open for writing (lock byte 101); use -r -U to attach read-only anyway" \
		attach -r "$L/top.qcow2"
	ctl_locks -r -U "$L/top.qcow2"
	ctl_refuses "$L/over.qcow2: backing file $L/top.qcow2 (named by $L/over.qcow2) is in use: another process or qcow device has it open for writing (lock byte 101); use -r -U to attach read-only anyway" \
		attach -r "$L/over.qcow2"
	ctl_locks -r -U "$L/over.qcow2"
	release q
}

# qemu-nbd serving the image read-only: a reader that forbids writers.
lock_attach_vs_qemu_nbd_ro() {
	hold n qemu-nbd -r -f qcow2 -k "$lk/nbd.sock" "$L/top.qcow2"
	wait_until 20 bytes_are "$L/top.qcow2" "$RO_BYTES" || die "qemu-nbd did not lock"
	ctl_refuses "$L/top.qcow2: $IN_USE open and forbids writing by others (lock byte 201); use -r to attach read-only" \
		attach "$L/top.qcow2"
	ctl_locks -r "$L/top.qcow2"
	release n kill || true
}

lock_attach_vs_qemu_nbd_rw() {
	hold n qemu-nbd -f qcow2 -k "$lk/nbd.sock" "$L/top.qcow2"
	wait_until 20 bytes_are "$L/top.qcow2" "$RW_BYTES" || die "qemu-nbd did not lock"
	ctl_refuses "$L/top.qcow2: $IN_USE open for writing (lock byte 101); use -r -U to attach read-only anyway" \
		attach -r "$L/top.qcow2"
	ctl_locks -r -U "$L/top.qcow2"
	release n kill || true
}

# qcowctl against itself: one writer, any number of readers, and overlays
# sharing a backing file.
lock_qcowctl_vs_qcowctl() {
	hold_qcowctl w "$L/top.qcow2"
	ctl_refuses "$L/top.qcow2: $IN_USE open for writing (lock byte 101); use -r -U to attach read-only anyway" \
		attach "$L/top.qcow2"
	ctl_locks "$L/top2.qcow2"
	ctl_locks -r "$L/base.qcow2"
	ctl_refuses "$L/base.qcow2: $IN_USE open and forbids writing by others (lock byte 201); use -r to attach read-only" \
		attach "$L/base.qcow2"
	release w || die "__lock-test exited $?"
	hold_qcowctl r1 -r "$L/top.qcow2"
	ctl_locks -r "$L/top.qcow2"
	ctl_refuses "$L/top.qcow2: $IN_USE open and forbids writing by others (lock byte 201); use -r to attach read-only" \
		attach "$L/top.qcow2"
	release r1 || die "__lock-test exited $?"
}

lock_case bytes-rw lock_bytes_rw
lock_case bytes-ro lock_bytes_ro
lock_case bytes-force-share lock_bytes_force_share
lock_case qemu-vs-rw lock_qemu_vs_rw
lock_case qemu-vs-ro lock_qemu_vs_ro
lock_case qemu-vs-force-share lock_qemu_vs_force_share
lock_case attach-vs-qemu-io lock_attach_vs_qemu_io
lock_case attach-vs-qemu-nbd-ro lock_attach_vs_qemu_nbd_ro
lock_case attach-vs-qemu-nbd-rw lock_attach_vs_qemu_nbd_rw
lock_case qcowctl-vs-qcowctl lock_qcowctl_vs_qcowctl

# What a read-write attach refuses before it talks to the module.
expect_cli attach-force-share-rw 2 err "^qcowctl: attach: -U/--force-share is only allowed with -r/--read-only" attach -U v3.qcow2
expect_cli attach-rw-corrupt 1 err "^qcowctl: corrupt.qcow2: incompatible_features: the image is marked corrupt; attach it read-only with -r, or repair it first with 'qemu-img check -r all'$" attach corrupt.qcow2
expect_cli attach-rw-dirty 1 err "^qcowctl: dirty.qcow2: incompatible_features: the dirty bit is set .*run 'qemu-img check -r all' on it first, or attach read-only with -r$" attach dirty.qcow2
lock_ro_damaged() {
	ctl_locks -r corrupt.qcow2
	ctl_locks -r dirty.qcow2
}
lock_case ro-corrupt-dirty lock_ro_damaged

# A file that cannot be opened for writing: a read-only bind mount (root
# ignores file modes), or a read-only file for anybody else.
mkdir -p ro-mnt
cp v3.qcow2 ro-mnt/
if [ "$(id -u)" -ne 0 ]; then
	chmod a-w ro-mnt/v3.qcow2
	expect_cli attach-rw-not-writable 1 err '^qcowctl: ro-mnt/v3.qcow2: the image is not writable \(Permission denied\); use -r to attach read-only$' attach ro-mnt/v3.qcow2
elif unshare -m true 2>/dev/null; then
	rc=0
	# shellcheck disable=SC2016  # $1 is the inner shell's
	unshare -m sh -c 'mount --bind ro-mnt ro-mnt && mount -o remount,ro,bind ro-mnt &&
		exec "$1" attach ro-mnt/v3.qcow2' sh "$QCOWCTL" >cli.out 2>cli.err || rc=$?
	if [ "$rc" -eq 1 ] && [ "$(cat cli.err)" = "qcowctl: ro-mnt/v3.qcow2: the image is not writable (Read-only file system); use -r to attach read-only" ]; then
		pass cli-attach-rw-not-writable
	else
		fail cli-attach-rw-not-writable "exit $rc:" "$(cat cli.err)"
	fi
else
	echo "SKIP $suite/cli-attach-rw-not-writable (root without mount namespaces)" |
		tee -a "$QCOW_RESULTS"
fi

# Without the module: past the chain, attach needs /dev/qcow-control.
if [ -e /dev/qcow-control ] || compgen -G '/sys/block/qcow[0-9]*' >/dev/null; then
	for c in features-no-module attach-no-module attach-chain-no-module \
		 detach-no-module attach-find-no-module attach-device-no-module \
		 snapshot-no-device list-no-devices list-output-all-no-devices; do
		echo "SKIP $suite/cli-$c (qcow module loaded here)" | tee -a "$QCOW_RESULTS"
	done
else
	expect_cli features-no-module 1 err '^qcowctl: the qcow module is not loaded \(/dev/qcow-control missing\)$' features
	expect_cli attach-no-module 1 err '^qcowctl: the qcow module is not loaded' attach -r v3.qcow2
	expect_cli attach-chain-no-module 1 err '^qcowctl: the qcow module is not loaded' attach -r chain/l15.qcow2
	expect_cli detach-no-module 1 err '^qcowctl: the qcow module is not loaded' detach /dev/qcow0
	expect_cli attach-find-no-module 1 err '^qcowctl: the qcow module is not loaded' attach -f
	expect_cli attach-device-no-module 1 err '^qcowctl: the qcow module is not loaded' attach -r -d 3 v3.qcow2
	expect_cli snapshot-no-device 1 err '^qcowctl: /dev/qcow0: no such qcow device$' snapshot list /dev/qcow0
	# like losetup: no devices, no output at all (not even a header)
	rc=0
	"$QCOWCTL" list >cli.out 2>cli.err || rc=$?
	if [ "$rc" -ne 0 ] || [ -s cli.out ] || [ -s cli.err ]; then
		fail cli-list-no-devices "list exited $rc or printed something:" \
			"$(cat cli.out cli.err)"
	else
		pass cli-list-no-devices
	fi
	expect_cli list-json-no-devices 0 out '"devices": \[\]' list --json
	rc=0
	"$QCOWCTL" list --output-all -b >cli.out 2>cli.err || rc=$?
	if [ "$rc" -ne 0 ] || [ -s cli.out ] || [ -s cli.err ]; then
		fail cli-list-output-all-no-devices "list --output-all exited $rc or printed something:" \
			"$(cat cli.out cli.err)"
	else
		pass cli-list-output-all-no-devices
	fi
fi

# --- offline inspection ---------------------------------------------------------
# qcowctl check, dump and map against qemu-img check, info and map.
if ! QCOWCTL=$QCOWCTL "$here/check.sh"; then
	failures=$((failures + 1))
fi

echo "userspace: $failures failed"
[ "$failures" -eq 0 ]
