#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Power cuts: kill the test VM (SIGKILL to qemu: no shutdown, no flush, the
# guest's RAM is gone) in the middle of fsync-heavy writes to a read-write
# qcow device, then check in a fresh boot that `qemu-img check` finds no
# corruption and that every write made durable before the cut (fdatasync or
# a RWF_DSYNC write had returned) is on the image.  The next round attaches
# that same crashed image and writes on, so attach-after-crash is tested
# every round too.
#
#   tests/vm/powercut.sh [-n ROUNDS] [-b BACKEND] [-s SEED] [-d MAX_DELAY] [-k] [WORKLOAD]
#
#   -n ROUNDS     power cuts (default 20); one boot per round plus one: the
#                 check of round R shares a boot with the writing of R+1,
#                 and a last boot checks the last cut, then runs a final
#                 round to completion, detaches and wants a clean image
#   -b BACKEND    what attaches the image in the guest: qcow (default,
#                 qcowctl), nbd (qemu-nbd --cache=none, the peer used to
#                 validate the harness), nbd-unsafe (qemu-nbd --cache=unsafe
#                 ignores flushes: a negative control that must FAIL)
#   -s SEED       seed of the writes and of the cut times (default: random,
#                 printed); a failure is re-run with the same seed
#   -d MAX_DELAY  the cut comes 0.1..MAX_DELAY seconds (default 4) after
#                 the writer signalled its start on the console
#   -k            keep the scratch disk of a passing run
#   WORKLOAD      tests/vm/powercut/wl-WORKLOAD.sh (default fsync); see
#                 tests/vm/powercut/guest.sh for the interface
#
# Appends "PASS|FAIL powercut/round-N" and "powercut/final" to $QCOW_RESULTS
# (default build/results-powercut.txt) and exits non-zero on any failure.
# Work files are in build/powercut/run/ (the console of boot B in
# console-bB.log).  A failure stops the run and keeps, in
# build/powercut/fail-rN-<time>/, the image as the failing check saw it,
# qemu-img check's report, the consoles of the cut and of the check, the
# writer's progress log and the workload state.
#
# Environment: QCOW_PC_* settings of the workload (see wl-fsync.sh),
# QCOW_VM_* of run-vm.sh; QCOW_VM_TIMEOUT is per boot (default 300).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

usage() {
	sed -n '12,26p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

rounds=20
backend=qcow
seed=
max_delay=4
keep=0
while getopts n:b:s:d:kh opt; do
	case $opt in
	n) rounds=$OPTARG ;;
	b) backend=$OPTARG ;;
	s) seed=$OPTARG ;;
	d) max_delay=$OPTARG ;;
	k) keep=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
wl=${1:-fsync}
[ $# -le 1 ] || usage
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "powercut: -n needs a positive number" >&2; exit 2; }
[[ $max_delay =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "powercut: bad -d '$max_delay'" >&2; exit 2; }
case $backend in
qcow | nbd | nbd-unsafe) ;;
*) echo "powercut: unknown backend '$backend'" >&2; exit 2 ;;
esac
[ -f "$here/powercut/wl-$wl.sh" ] || { echo "powercut: no workload $here/powercut/wl-$wl.sh" >&2; exit 2; }
if [ -z "$seed" ]; then
	seed=$(( (RANDOM << 15 | RANDOM) + 1 ))
fi
[[ $seed =~ ^[0-9]+$ ]] || { echo "powercut: -s needs a number" >&2; exit 2; }
RANDOM=$seed

if [ -z "${QCOW_RESULTS:-}" ]; then
	export QCOW_RESULTS=$top/build/results-powercut.txt
	mkdir -p "$(dirname "$QCOW_RESULTS")"
	: > "$QCOW_RESULTS"
fi

result() {
	echo "$1 powercut/$2" >> "$QCOW_RESULTS"
	echo "==> $1 powercut/$2${3:+ ($3)}"
}

base=$top/build/powercut
run=$base/run
bin=$base/bin
mkdir -p "$bin"

if [ "$backend" = qcow ]; then
	for f in drivers/block/qcow/qcow.ko userspace/qcowctl; do
		if [ ! -e "$top/$f" ]; then
			echo "powercut: $f is not built (make all)" >&2
			result FAIL round-1 "$f not built"
			exit 1
		fi
	done
fi

# The guest runs host binaries over 9p: build the writer here, once.
src=$here/powercut/pcwrite.c
if [ ! -x "$bin/pcwrite" ] || [ "$src" -nt "$bin/pcwrite" ]; then
	if ! gcc -O2 -Wall -Wextra -Werror -pthread -o "$bin/pcwrite.tmp" "$src"; then
		result FAIL round-1 "cannot build pcwrite"
		exit 1
	fi
	mv "$bin/pcwrite.tmp" "$bin/pcwrite"
fi

rm -rf "$run"
mkdir -p "$run"
# The scratch disk outlives the boots.  Small: the image, a raw copy of it
# and the workload state fit in 1 GiB, and a small journal is replayed
# quickly at the next boot.
scratch=$run/scratch.img
truncate -s "${QCOW_PC_SCRATCH_SIZE:-1G}" "$scratch"
if ! mkfs.ext4 -q -F -L qcow-powercut -J size=16 -E lazy_itable_init=0,lazy_journal_init=0 \
	"$scratch"; then
	result FAIL round-1 "mkfs.ext4 of the scratch disk failed"
	exit 1
fi
vmlog=$top/build/vm-logs/powercut.log
vmout=$top/build/vm-out/powercut

export QCOW_PC_BIN=$bin QCOW_PC_SEED=$seed
export QCOW_VM_TIMEOUT=${QCOW_VM_TIMEOUT:-300}

# A uniformly random delay in [0.1, max_delay] seconds.
rand_delay() {
	local lo=100 hi ms
	hi=$(awk -v d="$max_delay" 'BEGIN { printf "%d", d * 1000 }')
	[ "$hi" -gt "$lo" ] || hi=$((lo + 1))
	ms=$(( lo + (RANDOM << 15 | RANDOM) % (hi - lo + 1) ))
	printf '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# progress_summary FILE: "N ops synced, M FUA" over all writer threads.
progress_summary() {
	awk '$1 == "S" && $3 > s[$2] { s[$2] = $3 }
	     $1 == "F" { f++ }
	     END { for (t in s) n += s[t]; printf "%d ops synced, %d FUA-durable writes", n, f }' "$1"
}

# save_failure ROUND WHY: keep what the lead needs to look at the failure.
save_failure() {
	local r=$1 why=$2 d f
	d=$base/fail-r$r-$(date +%Y%m%d-%H%M%S)
	mkdir -p "$d"
	for f in "$run"/console-b"$r".log "$run"/console-b$((r + 1)).log \
		 "$run"/run-vm-b"$r".txt "$run"/run-vm-b$((r + 1)).txt "$run"/progress-r"$r".txt; do
		[ -f "$f" ] && cp "$f" "$d/"
	done
	# The scratch file system: replay its journal (a cut boot left one),
	# then copy the image and the workload state out of it.
	if e2fsck -y -E journal_only "$scratch" >/dev/null 2>&1 &&
	   debugfs -R "dump /powercut/disk.qcow2 $d/disk.qcow2" "$scratch" >/dev/null 2>&1 &&
	   [ -s "$d/disk.qcow2" ]; then
		debugfs -R "dump /powercut/state $d/state" "$scratch" >/dev/null 2>&1
		qemu-img check "$d/disk.qcow2" > "$d/qemu-img-check.txt" 2>&1
		qemu-img info "$d/disk.qcow2" > "$d/qemu-img-info.txt" 2>&1
	else
		echo "(could not copy the image out of $scratch)" > "$d/disk.missing"
	fi
	{
		echo "powercut failure at round $r: $why"
		echo "seed $seed, backend $backend, workload $wl, $rounds rounds, max delay ${max_delay}s"
		echo "re-run: tests/vm/powercut.sh -n $rounds -b $backend -s $seed -d $max_delay $wl"
		echo "cut delays so far:${delays}"
	} > "$d/README"
	echo "powercut: kept the evidence in ${d#"$top"/}/ (scratch disk: ${scratch#"$top"/})" >&2
	keep=1
}

echo "powercut: $rounds rounds, workload $wl, backend $backend, seed $seed (re-run with -s $seed)"
t_start=$SECONDS
failed=0
delays=
prev_delay=
synced_total=0
for ((b = 1; b <= rounds + 1; b++)); do
	args=(-w "$wl" -b "$backend")
	[ "$b" -eq 1 ] && args+=(-i)
	[ "$b" -gt 1 ] && args+=(-v $((b - 1)) -p "$run/progress-r$((b - 1)).txt")
	env=(QCOW_VM_SCRATCH_FILE="$scratch")
	delay=
	if [ "$b" -le "$rounds" ]; then
		args+=(-W "$b")
		delay=$(rand_delay)
		delays+=" r$b=$delay"
		env+=(QCOW_VM_KILL_ON='PC-WRITER-START' QCOW_VM_KILL_DELAY="$delay")
	else
		args+=(-F "$b")
	fi
	t0=$SECONDS
	env "${env[@]}" "$here/run-vm.sh" --name powercut "$here/powercut/guest.sh" "${args[@]}" \
		> "$run/run-vm-b$b.txt" 2>&1
	rc=$?
	cp "$vmlog" "$run/console-b$b.log" 2>/dev/null
	if [ -f "$vmout/progress.txt" ]; then
		mv "$vmout/progress.txt" "$run/progress-r$b.txt"
	else
		: > "$run/progress-r$b.txt"
	fi
	verdicts=$(cat "$vmout/verdict.txt" 2>/dev/null)
	secs=$((SECONDS - t0))

	# The check of the previous round, made in this boot.
	if [ "$b" -gt 1 ]; then
		r=$((b - 1))
		if grep -q "^PASS powercut/round-$r " <<<"$verdicts"; then
			summary=$(grep -ao "pcwrite: round $r verified: .*" "$run/console-b$b.log" |
				tail -n 1 | sed 's/^pcwrite: round [0-9]* verified: //')
			result PASS "round-$r" "cut ${prev_delay}s after the writer started: $(progress_summary "$run/progress-r$r.txt"); $(grep -o 'leaked clusters: [0-9]*' <<<"$verdicts" | head -n 1); ${summary}"
		else
			why=$(grep -o "^FAIL powercut/round-$r: .*" <<<"$verdicts" | sed 's/^[^:]*: //')
			result FAIL "round-$r" "${why:-the check did not finish}"
			if [ -n "$why" ]; then
				# The guest's own account of the check.
				sed -n "/round $r: checking the image/,/powercut\/round-$r/p" \
					"$run/console-b$b.log" | grep -av '^\[' | head -n 60 | sed 's/^/    /'
			else
				sed 's/^/    /' "$run/run-vm-b$b.txt"
			fi
			save_failure "$r" "check after the cut: ${why:-did not finish}"
			failed=1
			break
		fi
	fi
	if [ "$b" -le "$rounds" ]; then
		n=$(awk '$1 == "S" && $3 > s[$2] { s[$2] = $3 } END { for (t in s) n += s[t]; print n + 0 }' \
			"$run/progress-r$b.txt")
		synced_total=$((synced_total + n))
		# This boot's own round must have ended in the power cut.
		if [ "$rc" -ne 0 ] || ! grep -q ': power cut ' "$run/run-vm-b$b.txt"; then
			why=$(grep -o "^FAIL powercut/round-$b: .*" <<<"$verdicts" | sed 's/^[^:]*: //')
			result FAIL "round-$b" "${why:-the boot did not end in the power cut}"
			sed 's/^/    /' "$run/run-vm-b$b.txt"
			save_failure "$b" "${why:-boot $b did not end in the power cut (run-vm exit $rc)}"
			failed=1
			break
		fi
		echo "    boot $b: round $b cut after ${delay}s (${secs}s)"
		prev_delay=$delay
	else
		if [ "$rc" -eq 0 ] && grep -q '^PASS powercut/final' <<<"$verdicts"; then
			result PASS final "$(progress_summary "$run/progress-r$b.txt"), clean detach, qemu-img check clean"
		else
			why=$(grep -o "^FAIL powercut/final: .*" <<<"$verdicts" | sed 's/^[^:]*: //')
			result FAIL final "${why:-run-vm exit $rc}"
			sed 's/^/    /' "$run/run-vm-b$b.txt"
			save_failure "$b" "final round: ${why:-run-vm exit $rc}"
			failed=1
		fi
	fi
done

# A harness whose writer never got an fdatasync through tested nothing.
if [ "$failed" = 0 ] && [ "$synced_total" -eq 0 ]; then
	result FAIL progress "no write was ever made durable before a cut"
	failed=1
fi

if [ "$keep" = 0 ]; then
	rm -f "$scratch"
fi
echo "powercut: $( [ "$failed" = 0 ] && echo passed || echo FAILED ): $rounds rounds, backend $backend, seed $seed, $((SECONDS - t_start))s"
exit "$failed"
