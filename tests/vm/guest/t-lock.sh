#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Image locking against the real module, both ways, with real QEMU tools:
#   qemu holds it   qemu-nbd serving an image read-write: `qcowctl attach`
#                   and `attach -r` fail with one line naming the conflict,
#                   `attach -r -U` works and reads the right data; a
#                   qemu-io holding a backing file for writing stops the
#                   overlay's attach; a read-only qemu-io lets `attach -r`
#                   through and refuses a read-write attach;
#   qcow holds it   after `qcowctl attach` has exited, the OFD lock bytes are
#                   still held (by the module's open files: /proc/locks shows
#                   QEMU's set) and QEMU obeys them: read-write attached,
#                   qemu-io cannot write the image, qemu-img info needs -U,
#                   qemu-nbd and qemu-img snapshot cannot open it, the
#                   backing file cannot be written, a second attach fails;
#                   read-only attached, readers (and a second attach -r) are
#                   fine and writers are not;
#   after detach    no lock is left, qemu-io writes again, the data written
#                   through /dev/qcowN is in the image and qemu-img check is
#                   clean.
# Prints "PASS lock/<case>" or "FAIL lock/<case>"; exits 1 if any failed.
# The read-write cases need the module's QCOW_FEAT_WRITE; without it they
# fail (naming that), after checking that attach refuses read-write.
# shellcheck disable=SC2015  # "test && test || die" is meant
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
W=$QCOW_SCRATCH/lock
rm -rf "$W"
mkdir -p "$W"
cd "$W"
CHECK_GROUP=lock
CHECK_LOG=$W/check.log
CHECK_DIR=$W

declare -A hold_pid=() hold_fd=()

# kill what a case left holding (on the way out of the check)
check_exit() {
	local p
	for p in "${hold_pid[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait
}

# detach what it left attached
check_after() {
	"$QCOW_CTL" detach -a >/dev/null 2>&1 || true
}

# lock_bytes FILE: the OFD lock bytes anyone holds on FILE, "100 201 ..."
lock_bytes() {
	local id
	id=$(stat -c '%Hd %Ld %i' "$1" | awk '{ printf "%02x:%02x:%s", $1, $2, $3 }')
	awk -v id="$id" '$2 == "OFDLCK" && $6 == id { for (b = $7; b <= $8; b++) print b }' \
		/proc/locks | sort -un | paste -sd ' '
}

bytes_are() {
	[ "$(lock_bytes "$1")" = "$2" ]
}

# wait_until SECONDS CMD...: poll CMD every 0.2 s until it succeeds
wait_until() {
	local i n=$(($1 * 5))
	shift
	for ((i = 0; i < n; i++)); do
		"$@" && return 0
		sleep 0.2
	done
	return 1
}

# hold NAME BYTES FILE CMD...: run CMD in the background (stdin on a fifo
# kept open until `release NAME`) and wait until FILE carries lock BYTES.
hold() {
	local name=$1 bytes=$2 file=$3 fd f
	shift 3
	rm -f "$W/$name.fifo"
	mkfifo "$W/$name.fifo"
	(
		for f in "${hold_fd[@]}"; do
			exec {f}>&-
		done
		exec "$@"
	) <"$W/$name.fifo" >"$W/$name.out" 2>"$W/$name.err" &
	hold_pid[$name]=$!
	exec {fd}>"$W/$name.fifo"
	hold_fd[$name]=$fd
	wait_until 60 bytes_are "$file" "$bytes" ||
		die "$* holds '$(lock_bytes "$file")' on $file, want '$bytes':" \
		    "$(cat "$W/$name.err")"
}

# release NAME: close NAME's stdin, kill it, wait for it
release() {
	local name=$1 fd=${hold_fd[$1]}
	exec {fd}>&-
	kill "${hold_pid[$name]}" 2>/dev/null || true
	wait "${hold_pid[$name]}" || true
	unset "hold_pid[$name]" "hold_fd[$name]"
}

# refuses TEXT CMD...: CMD fails and says TEXT on stderr
refuses() {
	local text=$1
	shift
	if "$@" >"$W/q.out" 2>"$W/q.err"; then
		die "succeeded although the image is locked: $*"
	fi
	grep -qF -- "$text" "$W/q.err" ||
		die "$*: stderr does not say '$text':" "$(cat "$W/q.err")"
	echo "refused as expected: $*: $(head -n 1 "$W/q.err")"
}

# works CMD...: CMD succeeds
works() {
	"$@" >"$W/q.out" 2>"$W/q.err" ||
		die "failed: $*:" "$(cat "$W/q.out" "$W/q.err")"
}

ndevs() {
	"$QCOW_CTL" list --json | jq '.devices | length'
}

# ctl_refuses LINE ARGS...: qcowctl ARGS exits 1 printing exactly
# "qcowctl: LINE" on stderr, nothing on stdout, and no device appears.
ctl_refuses() {
	local want="qcowctl: $1" rc=0 n
	shift
	n=$(ndevs)
	"$QCOW_CTL" "$@" >"$W/c.out" 2>"$W/c.err" || rc=$?
	[ "$rc" -eq 1 ] || die "qcowctl $* exited $rc, want 1:" "$(cat "$W/c.out" "$W/c.err")"
	[ "$(cat "$W/c.err")" = "$want" ] ||
		die "qcowctl $*: stderr:" "$(cat "$W/c.err")" "want:" "$want"
	[ ! -s "$W/c.out" ] || die "qcowctl $*: stdout: $(cat "$W/c.out")"
	[ "$(ndevs)" -eq "$n" ] || die "qcowctl $*: a device appeared"
	echo "refused as expected: qcowctl $*"
}

# attach ARGS...: qcowctl attach ARGS succeeds; sets $dev
attach() {
	local rc=0
	"$QCOW_CTL" attach "$@" >"$W/c.out" 2>"$W/c.err" || rc=$?
	[ "$rc" -eq 0 ] || die "qcowctl attach $* exited $rc:" "$(cat "$W/c.err")"
	dev=$(cat "$W/c.out")
	[ -b "$dev" ] || die "qcowctl attach $* printed '$dev'"
	echo "attach $* -> $dev"
}

# pattern BYTE LEN: LEN bytes of value BYTE (octal escape, e.g. 021)
pattern() {
	head -c "$2" /dev/zero | tr '\0' "\\$1"
}

RW_BYTES="100 101 103 201 203"
RO_BYTES="100 201 203"
IN_USE="image is in use: another process or qcow device has it"

# --- images ------------------------------------------------------------------

step "making images in $W"
# base.qcow2: 0x11 in its first MiB; top.qcow2 and top2.qcow2 overlay it;
# plain.qcow2: 0x33 in its first MiB, no backing file.
qemu-img create -q -f qcow2 base.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x11 0 1M' base.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top.qcow2
qemu-img create -q -f qcow2 -b base.qcow2 -F qcow2 top2.qcow2
qemu-img create -q -f qcow2 plain.qcow2 64M
qemu-io -f qcow2 -c 'write -P 0x33 0 1M' plain.qcow2 >/dev/null

qcow_load
have_write=0
if "$QCOW_CTL" features --json | jq -e '.features | index("write")' >/dev/null; then
	have_write=1
fi

# --- QEMU holds the image ----------------------------------------------------

# (a) qemu-nbd serving plain.qcow2 read-write
t_vs_qemu_nbd_rw() {
	hold nbd "$RW_BYTES" plain.qcow2 \
		qemu-nbd --persistent -f qcow2 -k "$W/nbd.sock" plain.qcow2
	ctl_refuses "plain.qcow2: $IN_USE open for writing (lock byte 101); use -r -U to attach read-only anyway" \
		attach plain.qcow2
	ctl_refuses "plain.qcow2: $IN_USE open for writing (lock byte 101); use -r -U to attach read-only anyway" \
		attach -r plain.qcow2
	attach -r -U plain.qcow2
	pattern 063 1048576 >"$W/p33"	# '3' = 0x33 (no /dev/fd in the guest)
	cmp -n 1048576 "$dev" "$W/p33" ||
		die "$dev does not read the image's 0x33 pattern"
	"$QCOW_CTL" detach "$dev"
	release nbd
}

# qemu-io writing the backing file: the overlay cannot be attached at all.
t_vs_qemu_io_backing() {
	hold qio "$RW_BYTES" base.qcow2 qemu-io -f qcow2 base.qcow2
	ctl_refuses "top.qcow2: backing file base.qcow2 (named by top.qcow2) is in use: another process or qcow device has it open for writing (lock byte 101); use -r -U to attach read-only anyway" \
		attach -r top.qcow2
	attach -r -U top.qcow2
	"$QCOW_CTL" detach "$dev"
	release qio
}

# qemu-io reading plain.qcow2: readers get along, a writer does not.
t_vs_qemu_io_ro() {
	hold qio "$RO_BYTES" plain.qcow2 qemu-io -r -f qcow2 plain.qcow2
	ctl_refuses "plain.qcow2: $IN_USE open and forbids writing by others (lock byte 201); use -r to attach read-only" \
		attach plain.qcow2
	attach -r plain.qcow2
	"$QCOW_CTL" detach "$dev"
	release qio
}

# --- qcow holds the image ----------------------------------------------------

# Attached read-only: qcowctl has exited, the module's files keep the locks.
t_held_ro() {
	attach -r top.qcow2
	local first=$dev
	bytes_are top.qcow2 "$RO_BYTES" ||
		die "image lock bytes '$(lock_bytes top.qcow2)' after qcowctl exited, want '$RO_BYTES'"
	bytes_are base.qcow2 "$RO_BYTES" ||
		die "backing lock bytes '$(lock_bytes base.qcow2)', want '$RO_BYTES'"
	refuses 'Failed to get "write" lock' qemu-io -f qcow2 -c 'write 0 4k' top.qcow2
	refuses 'Failed to get "write" lock' qemu-io -f qcow2 -c 'write 0 4k' base.qcow2
	works qemu-img info top.qcow2
	works qemu-io -r -f qcow2 -c 'read -P 0x11 0 1M' top.qcow2
	attach -r top.qcow2		# a second reader
	ctl_refuses "top.qcow2: $IN_USE open and forbids writing by others (lock byte 201); use -r to attach read-only" \
		attach top.qcow2
	"$QCOW_CTL" detach "$dev"
	"$QCOW_CTL" detach "$first"
	bytes_are top.qcow2 "" && bytes_are base.qcow2 "" ||
		die "locks left after detach: '$(lock_bytes top.qcow2)' / '$(lock_bytes base.qcow2)'"
	works qemu-io -f qcow2 -c 'write -P 0x11 0 4k' top.qcow2
}

t_rw_refused_without_write() {
	ctl_refuses "top.qcow2: read-write attach is not supported yet (the write path has not landed); use -r to attach read-only" \
		attach top.qcow2
	die "the module lacks QCOW_FEAT_WRITE: the read-write locking cases cannot run"
}

# (b) attached read-write, then (c) detached.
t_held_rw() {
	attach top.qcow2
	bytes_are top.qcow2 "$RW_BYTES" ||
		die "image lock bytes '$(lock_bytes top.qcow2)' after qcowctl exited, want '$RW_BYTES'"
	bytes_are base.qcow2 "$RO_BYTES" ||
		die "backing lock bytes '$(lock_bytes base.qcow2)', want '$RO_BYTES'"
	refuses 'Failed to get "write" lock' qemu-io -f qcow2 -c 'write 0 4k' top.qcow2
	refuses 'Failed to get shared "write" lock' qemu-img info top.qcow2
	works qemu-img info -U top.qcow2
	refuses 'Failed to get "write" lock' \
		timeout 60 qemu-nbd -f qcow2 -k "$W/nbd2.sock" top.qcow2
	refuses 'Failed to get "write" lock' qemu-img snapshot -c s1 top.qcow2
	refuses 'Failed to get "write" lock' qemu-io -f qcow2 -c 'write 0 4k' base.qcow2
	works qemu-img info base.qcow2
	ctl_refuses "top.qcow2: $IN_USE open for writing (lock byte 101); use -r -U to attach read-only anyway" \
		attach top.qcow2
	ctl_refuses "top.qcow2: $IN_USE open for writing (lock byte 101); use -r -U to attach read-only anyway" \
		attach -r top.qcow2
	# another overlay of the same backing file is no conflict
	local first=$dev
	attach top2.qcow2
	"$QCOW_CTL" detach "$dev"
	dev=$first

	pattern 132 65536 >"$W/pat"	# 'Z' = 0x5a
	dd if="$W/pat" of="$dev" bs=64k oflag=direct conv=fsync status=none
	"$QCOW_CTL" detach "$dev"

	bytes_are top.qcow2 "" && bytes_are base.qcow2 "" ||
		die "locks left after detach: '$(lock_bytes top.qcow2)' / '$(lock_bytes base.qcow2)'"
	works qemu-img check top.qcow2
	works qemu-io -f qcow2 -c 'read -P 0x5a 0 64k' -c 'read -P 0x11 64k 960k' top.qcow2
	works qemu-io -f qcow2 -c 'write -P 0x5b 128k 4k' -c 'read -P 0x5b 128k 4k' top.qcow2
	works qemu-io -f qcow2 -c 'write -P 0x11 1M 4k' base.qcow2
}

check qemu-nbd-rw-holds t_vs_qemu_nbd_rw
check qemu-io-holds-backing t_vs_qemu_io_backing
check qemu-io-ro-holds t_vs_qemu_io_ro
check qcow-ro-holds t_held_ro
if [ "$have_write" -eq 1 ]; then
	check qcow-rw-holds t_held_rw
else
	check qcow-rw-holds t_rw_refused_without_write
fi

qcow_unload
cd /
rm -rf "$W"

echo "lock: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
