#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Hostile images: valid qemu-img images patched byte by byte by
# tests/vm/hostile/mkbad.py (see there for the list and the manifest).
#
#   refuse  header, extension, snapshot table and backing chain problems:
#           `qcowctl attach -r` exits non-zero with one line on stderr
#           naming the field; the kernel, handed the image directly by
#           tests/vm/hostile/rawattach.c (a bare QCOW_CTL_ATTACH, as a
#           tool that skips the checks would do; built here), refuses too
#           and logs one "qcow:" line naming the field; no device appears.
#   eio     L1/L2 entry problems and damaged compressed data: the attach
#           works, reading the affected range fails with EIO (also a
#           second time), /sys/block/qcowN/qcow/corrupt goes from 0 to 1,
#           one "corrupt image" line is logged (once), and a good range
#           still reads correctly afterwards.
#
# The harness scans the kernel log for BUG/WARNING/KASAN/oops afterwards
# and the kernel panics on oops, so none of this may crash or hang it.
# Prints "PASS hostile/<case>" or "FAIL hostile/<case>" per case; exits 1
# if any failed.
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
HOSTILE=$QCOW_TOP/tests/vm/hostile
W=$QCOW_SCRATCH/hostile
rm -rf "$W"
mkdir -p "$W"
cd "$W"

nfail=0
npass=0

die() {
	echo "$*" >&2
	exit 1
}

# Cases run QCOW_HOSTILE_JOBS (default 2, one per vCPU) at a time, each in
# its own directory; kernel log lines are told apart by the image's file
# name (every module line about an image or its device names one of them).
JOBS=${QCOW_HOSTILE_JOBS:-2}
cases=()

# case_ NAME FUNCTION [ARGS...]: start one case in the background in a
# subshell with errexit; output and status go to $W/cases/NAME.{log,rc}.
case_() {
	local name=$1
	shift
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
		wait -n || true
	done
	cases+=("$name")
	mkdir -p "$W/cases/$name"
	{
		(set -e; cd "$W/cases/$name"; "$@") </dev/null >"$W/cases/$name.log" 2>&1
		echo $? >"$W/cases/$name.rc"
	} &
}

# report: wait for all cases, print the verdicts in order.
report() {
	local name rc
	wait
	for name in "${cases[@]}"; do
		rc=$(<"$W/cases/$name.rc")
		if [ "$rc" -eq 0 ]; then
			echo "PASS hostile/$name"
			npass=$((npass + 1))
		else
			echo "FAIL hostile/$name"
			sed 's/^/    /' "$W/cases/$name.log"
			nfail=$((nfail + 1))
		fi
	done
	"$QCOW_CTL" detach -a >/dev/null 2>&1 || true
}

# Process creation is slow under TCG: the helpers below use bash builtins
# where they can.  (No process substitution: the guest has no /dev/fd.)

# mark_log: remember how long the kernel log is.
mark_log() {
	local -a l
	mapfile -t l <<<"$(dmesg)"
	log_mark=${#l[@]}
}

# new_qcow_lines IMAGE [DEV]: set qlines to the module's log lines since
# mark_log that name IMAGE's file name (or DEV), without timestamps.  A
# "qcowN: detached" line can belong to the previous user of the number.
new_qcow_lines() {
	local base=${1##*/} dev=${2:-} i line
	local -a l
	qlines=()
	mapfile -t l <<<"$(dmesg)"
	for ((i = log_mark; i < ${#l[@]}; i++)); do
		line=${l[i]#\[*\] }
		[[ $line == "qcow: "* ]] || continue
		if [[ $line == *"$base"* ]] ||
		   { [ -n "$dev" ] && [[ $line == "qcow: ${dev#/dev/}: "* && $line != *": detached" ]]; }; then
			qlines+=("$line")
		fi
	done
	printf '  %s\n' "${qlines[@]}"
}

# attached IMAGE: true if some qcow device has IMAGE attached.
attached() {
	local f
	for f in /sys/block/qcow*/qcow/image; do
		[ -e "$f" ] || continue
		[ "$(<"$f")" != "$1" ] || return 0
	done
	return 1
}

# readf FILE: set $lines to the lines of FILE.
readf() { mapfile -t lines <"$1"; }

# t_refuse IMAGE CTL_TEXT KERNEL_TEXT LAYERS
t_refuse() {
	local img=$1 ctl_text=$2 kernel_text=$3 layers=$4 rc
	local -a lines qlines
	rc=0
	"$QCOW_CTL" attach -r "$img" >out 2>err || rc=$?
	readf err
	echo "qcowctl attach -r: exit $rc: ${lines[*]}"
	[ "$rc" -ne 0 ] || die "qcowctl attach succeeded: $(<out)"
	[ ! -s out ] || die "qcowctl printed on stdout: $(<out)"
	[ ${#lines[@]} -eq 1 ] || die "qcowctl wrote ${#lines[@]} lines on stderr, want 1"
	[[ ${lines[0]} == *"$ctl_text"* ]] || die "qcowctl's message does not name '$ctl_text'"
	! attached "$img" || die "a device appeared"

	# The kernel on its own.  qcowctl may have logged nothing (it checks
	# first) or one line (had it let the kernel decide).
	mark_log
	rc=0
	# shellcheck disable=SC2086  # LAYERS is a list
	"$RAWATTACH" "$img" $layers >out 2>err || rc=$?
	readf err
	echo "kernel: exit $rc (${lines[*]}); log:"
	new_qcow_lines "$img"
	[ "$rc" -ne 0 ] || die "the kernel attached the image as $(<out)"
	[[ ${lines[*]} =~ ^E(INVAL|OPNOTSUPP|LOOP)$ ]] || die "the kernel failed with ${lines[*]}"
	[ ${#qlines[@]} -eq 1 ] || die "the kernel logged ${#qlines[@]} lines, want 1"
	[[ ${qlines[0]} == *"$kernel_text"* ]] ||
		die "the kernel log line does not name '$kernel_text'"
	! attached "$img" || die "a device appeared"
}

# rd DEV OFF LEN [FLAGS]: read LEN bytes at OFF (O_DIRECT unless FLAGS says
# otherwise) and print their sha256.
rd() {
	local sum
	dd if="$1" bs=64k iflag="${4-direct,}skip_bytes,count_bytes" skip="$2" count="$3" \
		status=none >chunk || return
	sum=$(sha256sum chunk)
	echo "${sum%% *}"
}

# t_eio IMAGE BAD_OFF BAD_LEN GOOD_OFF GOOD_LEN GOOD_SHA256
t_eio() {
	local img=$1 bad_off=$2 bad_len=$3 good_off=$4 good_len=$5 good_sha=$6
	local dev sys i sum
	local -a lines qlines
	dev=$("$QCOW_CTL" attach -r "$img") || die "qcowctl attach -r failed"
	sys=/sys/block/${dev#/dev/}/qcow
	echo "attached $dev"
	[ "$(<"$sys/corrupt")" = 0 ] || die "corrupt is set before any read"
	mark_log
	for i in 1 2; do
		if rd "$dev" "$bad_off" "$bad_len" >/dev/null 2>err; then
			die "read $i of the bad range $bad_off+$bad_len succeeded"
		fi
		readf err
		echo "read $i of the bad range: ${lines[*]}"
		[[ ${lines[*]} == *'Input/output error'* ]] || die "the bad read did not fail with EIO"
		[ "$(<"$sys/corrupt")" = 1 ] || die "corrupt is not 1 after a bad read"
	done
	sum=$(rd "$dev" "$good_off" "$good_len") || die "reading the good range failed"
	[ "$sum" = "$good_sha" ] ||
		die "the good range $good_off+$good_len reads wrong data ($sum)"
	# through the page cache too
	sum=$(rd "$dev" "$good_off" "$good_len" '') || die "buffered read of the good range failed"
	[ "$sum" = "$good_sha" ] || die "buffered read of the good range reads wrong data"
	echo "kernel log:"
	new_qcow_lines "$img" "$dev"
	[ ${#qlines[@]} -eq 1 ] || die "the module logged ${#qlines[@]} lines, want 1"
	[[ ${qlines[0]} == *'corrupt image'* ]] || die "the line is not a 'corrupt image' report"
	"$QCOW_CTL" detach "$dev" || die "detach failed"
}

step "building rawattach"
RAWATTACH=$W/rawattach
cc -Wall -I"$QCOW_TOP/include/uapi" -o "$RAWATTACH" "$HOSTILE/rawattach.c" ||
	fail "cannot build rawattach"

step "making hostile images"
t0=$SECONDS
python3 "$HOSTILE/mkbad.py" "$W/img" || fail "mkbad.py failed"
echo "made in $((SECONDS - t0)) s"

qcow_load
while IFS='|' read -r name kind img a b c d e; do
	case $kind in
	refuse) case_ "$name" t_refuse "$img" "$a" "$b" "$c" ;;
	eio) case_ "$name" t_eio "$img" "$a" "$b" "$c" "$d" "$e" ;;
	*) fail "cases.txt: unknown kind '$kind' for $name" ;;
	esac
done <"$W/img/cases.txt"
report
qcow_unload
cd /
rm -rf "$W"
echo "hostile: $npass passed, $nfail failed"
[ "$nfail" -eq 0 ]
