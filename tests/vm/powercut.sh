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
#   tests/vm/powercut.sh [-n ROUNDS] [-c N] [-b BACKEND] [-s SEED] [-d MAX_DELAY] [-m DISK] [-k] [WORKLOAD]
#
#   -n ROUNDS     power cuts (default 20).  One boot per round plus one: the
#                 check of round R shares a boot with the writing of R+1
#   -c N          a new image every N rounds (default 10; 0: one image),
#                 created with the next of the option sets in
#                 $QCOW_PC_IMAGES (default: 64K clusters; 512-byte clusters,
#                 whose refcount table must grow and move; 4K clusters;
#                 64K + extended L2; 2M + extended L2; refcount_bits=1;
#                 refcount_bits=64).  Before an image is dropped, and at
#                 the end, a clean round runs on it to completion and
#                 detaches: then it must pass qemu-img check with no leaks
#   -b BACKEND    what attaches the image in the guest: qcow (default,
#                 qcowctl), nbd (qemu-nbd --cache=none, the peer used to
#                 validate the harness); negative controls that must FAIL:
#                 nbd-unsafe (qemu-nbd --cache=unsafe: buffered, ignores
#                 flushes), nbd-noflush (O_DIRECT, ignores flushes)
#   -s SEED       seed of the writes and of the cut times (default: random,
#                 printed); a failure is re-run with the same seed
#   -d MAX_DELAY  the cut comes 0.1..MAX_DELAY seconds (default 4) after
#                 the writer signalled its start on the console
#   -m DISK       how the disk under the guest behaves at the cut: lossy
#                 (default) has a volatile write cache (powercut/lossy-nbd.py
#                 serves it over NBD): each written 4 KiB block the guest had
#                 not flushed is lost or kept at random, so completed writes
#                 can be lost and reordered, as on a real disk; stable is a
#                 plain file (qemu cache=unsafe): a completed write survives
#   -k            keep the scratch disk of a passing run
#   WORKLOAD      tests/vm/powercut/wl-WORKLOAD.sh (default fsync); see
#                 tests/vm/powercut/guest.sh for the interface
#
# Appends "PASS|FAIL powercut/round-R" and "powercut/clean-K" lines (with
# another workload than fsync: powercut-WORKLOAD/...) to
# $QCOW_RESULTS (default build/results-powercut.txt) and exits non-zero on
# any failure.  Refcount table growth: the module logs each move of the
# table; a round's result counts the moves while it wrote, and says when the
# cut landed in one (the file's data reaches past what the header's table counts:
# the new table was written, the header not switched yet; or the header
# names a table the module had not logged).  A run with 5 or more cut
# rounds on an image whose first refcount table counts less than a quarter
# of the disk (fsync workload, qcow backend; 512-byte clusters by default)
# also gets powercut/reftable-growth, FAIL if no cut round moved the table.
# Work files are in build/powercut/run/ (console-bB.log is the console of
# boot B).  A failure stops the run and keeps, in
# build/powercut/fail-NAME-<time>/, the image as the failing check saw it,
# qemu-img check's report, the consoles of the cut and of the check, the
# writer's progress log and the workload state.
#
# Environment: QCOW_PC_IMAGES (see -c), QCOW_PC_* settings of the workload
# (wl-fsync.sh), QCOW_VM_* of run-vm.sh; QCOW_VM_TIMEOUT is per boot
# (default 300).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

usage() {
	sed -n '12,41p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

rounds=20
cycle=10
backend=qcow
seed=
max_delay=4
keep=0
disk=lossy
while getopts n:c:b:s:d:m:kh opt; do
	case $opt in
	n) rounds=$OPTARG ;;
	c) cycle=$OPTARG ;;
	b) backend=$OPTARG ;;
	s) seed=$OPTARG ;;
	d) max_delay=$OPTARG ;;
	k) keep=1 ;;
	m) disk=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
wl=${1:-fsync}
[ $# -le 1 ] || usage
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "powercut: -n needs a positive number" >&2; exit 2; }
[[ $cycle =~ ^[0-9]+$ ]] || { echo "powercut: -c needs a number" >&2; exit 2; }
[[ $max_delay =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "powercut: bad -d '$max_delay'" >&2; exit 2; }
case $disk in
lossy) lossy=1 ;;
stable) lossy=0 ;;
*) echo "powercut: -m lossy|stable" >&2; exit 2 ;;
esac
case $backend in
qcow | nbd | nbd-unsafe | nbd-noflush) ;;
*) echo "powercut: unknown backend '$backend'" >&2; exit 2 ;;
esac
[ -f "$here/powercut/wl-$wl.sh" ] || { echo "powercut: no workload $here/powercut/wl-$wl.sh" >&2; exit 2; }
if [ -z "$seed" ]; then
	seed=$(( (RANDOM << 15 | RANDOM) + 1 ))
fi
[[ $seed =~ ^[0-9]+$ ]] || { echo "powercut: -s needs a number" >&2; exit 2; }
RANDOM=$seed
read -r -a images <<<"${QCOW_PC_IMAGES:-cluster_size=65536 cluster_size=512 cluster_size=4096 cluster_size=65536,extended_l2=on cluster_size=2097152,extended_l2=on refcount_bits=1 refcount_bits=64}"
[ ${#images[@]} -gt 0 ] || { echo "powercut: QCOW_PC_IMAGES is empty" >&2; exit 2; }

if [ -z "${QCOW_RESULTS:-}" ]; then
	export QCOW_RESULTS=$top/build/results-powercut.txt
	mkdir -p "$(dirname "$QCOW_RESULTS")"
	: > "$QCOW_RESULTS"
fi

# Results are powercut/NAME, or powercut-WORKLOAD/NAME for another workload.
rname=powercut
[ "$wl" = fsync ] || rname=powercut-$wl
result() {
	echo "$1 $rname/$2" >> "$QCOW_RESULTS"
	echo "==> $1 $rname/$2${3:+ ($3)}"
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

# The guest runs host binaries over 9p: build the helpers here, once.
for src in "$here"/powercut/*.c; do
	prog=$(basename "$src" .c)
	if [ ! -x "$bin/$prog" ] || [ "$src" -nt "$bin/$prog" ] ||
	   [ "$here/powercut/pcunits.h" -nt "$bin/$prog" ] ||
	   [ "$top/include/uapi/linux/qcow.h" -nt "$bin/$prog" ]; then
		if ! gcc -O2 -Wall -Wextra -Werror -pthread -I"$top/include/uapi" \
			-o "$bin/$prog.tmp" "$src"; then
			result FAIL round-1 "cannot build $prog"
			exit 1
		fi
		mv "$bin/$prog.tmp" "$bin/$prog"
	fi
done

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

# delay= a uniformly random delay in [0.1, max_delay] seconds.  Not in a
# $(subshell): bash reseeds RANDOM there, and -s SEED must replay the cuts.
max_ms=$(awk -v d="$max_delay" 'BEGIN { printf "%d", d * 1000 }')
[ "$max_ms" -gt 100 ] || max_ms=101
rand_delay() {
	local ms=$(( 100 + (RANDOM << 15 | RANDOM) % (max_ms - 100 + 1) ))
	printf -v delay '%d.%03d' $((ms / 1000)) $((ms % 1000))
}

# progress_summary FILE: "N ops synced, M FUA" over all writer threads.
progress_summary() {
	awk '$1 == "S" && $3 > s[$2] { s[$2] = $3 }
	     $1 == "F" { f++ }
	     END { for (t in s) n += s[t]; printf "%d ops synced, %d FUA-durable writes", n, f }' "$1"
}

# save_failure NAME WHY BOOT...: keep what it takes to look at a failure:
# the consoles and writer logs of the boots, the image as the failing check
# saw it (and, for a clean round, as it started), qemu-img's report on it.
save_failure() {
	local name=$1 why=$2 d f b
	shift 2
	d=$base/fail-$name-$(date +%Y%m%d-%H%M%S)
	mkdir -p "$d"
	for b in "$@"; do
		for f in "$run/console-b$b.log" "$run/run-vm-b$b.txt" "$run/progress-r$b.txt" \
			 "$run/progress-clean-b$b.txt" "$run/lossy-b$b.txt"; do
			[ -s "$f" ] && cp "$f" "$d/"
		done
	done
	# The scratch file system: replay its journal (a cut boot left one),
	# then copy the image and the workload state out of it.
	if e2fsck -y -E journal_only "$scratch" >/dev/null 2>&1 &&
	   debugfs -R "dump /powercut/disk.qcow2 $d/disk.qcow2" "$scratch" >/dev/null 2>&1 &&
	   [ -s "$d/disk.qcow2" ]; then
		debugfs -R "dump /powercut/state $d/state" "$scratch" >/dev/null 2>&1
		debugfs -R "rdump /powercut/snap $d" "$scratch" >/dev/null 2>&1
		if [[ $name == clean-* ]]; then
			debugfs -R "dump /powercut/pre-clean.qcow2 $d/pre-clean.qcow2" "$scratch" >/dev/null 2>&1
		fi
		qemu-img check "$d/disk.qcow2" > "$d/qemu-img-check.txt" 2>&1
		qemu-img info "$d/disk.qcow2" > "$d/qemu-img-info.txt" 2>&1
	else
		echo "(could not copy the image out of $scratch)" > "$d/disk.missing"
	fi
	{
		echo "powercut: FAIL $name: $why"
		echo "seed $seed, backend $backend, workload $wl, $rounds rounds, new image every $cycle rounds"
		echo "image $image: qemu-img create -o $imgopts"
		echo "re-run: tests/vm/powercut.sh -n $rounds -c $cycle -b $backend -s $seed -d $max_delay -m $disk $wl"
		echo "cut delays:${delays}"
	} > "$d/README"
	echo "powercut: kept the evidence in ${d#"$top"/}/ (scratch disk: ${scratch#"$top"/})" >&2
	keep=1
}

echo "powercut: $rounds rounds, workload $wl, backend $backend, new image every $cycle rounds, $disk disk, seed $seed (re-run with -s $seed)"
t_start=$SECONDS
failed=0
delays=
synced_total=0
image=1
imgopts=${images[0]}
declare -A cut_delay tags=()

# The lossy scratch disk of one boot: a server that serves it to qemu, then
# at the disconnect (the cut) keeps or drops what was not flushed.
sock=$run/nbd.sock
py=$(command -v /usr/bin/python3 || command -v python3)
start_lossy() {
	rm -f "$sock"
	"$py" "$here/powercut/lossy-nbd.py" "$scratch" "$sock" $((seed * 1000 + $1)) \
		--report "$run/lossy-b$1.txt" > /dev/null 2> "$run/lossy-b$1.err" &
	nbd_pid=$!
	for _ in $(seq 300); do
		[ -S "$sock" ] && return 0
		kill -0 "$nbd_pid" 2>/dev/null || break
		sleep 0.1
	done
	stop_lossy
	return 1
}
# Wait until the server has written what survives the cut, then it exits.
stop_lossy() {
	for _ in $(seq 600); do
		kill -0 "$nbd_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill "$nbd_pid" 2>/dev/null
	wait "$nbd_pid" 2>/dev/null
	nbd_pid=
}

# small_image OPTS: is OPTS an image whose first refcount table (one
# cluster) counts less than a quarter of the disk, so that the fsync
# workload makes it grow and move?
small_image() {
	local cs=65536 rb=16 size entries per_block
	[ "$wl" = fsync ] || return 1
	[[ $1 =~ (^|,)cluster_size=([0-9]+)(,|$) ]] && cs=${BASH_REMATCH[2]}
	[[ $1 =~ (^|,)refcount_bits=([0-9]+)(,|$) ]] && rb=${BASH_REMATCH[2]}
	size=$(numfmt --from=iec "${QCOW_PC_SIZE:-128M}") || return 1
	entries=$((cs / 8))
	per_block=$((cs * 8 / rb))
	[ $((entries * per_block * cs)) -lt $((size / 4)) ]
}

# reftable_moves BOOT: the refcount table moves of round BOOT, the
# module's "refcount table moved to 0x..." lines after the writer's cue in
# its console, into rt_moves[BOOT] and rt_to[BOOT] (the new offsets); the
# table's offset before the round into rt_start[BOOT].
declare -A rt_moves=() rt_to=() rt_start=() rt_opts=()
reftable_moves() {
	local n to
	read -r n to < <(awk -v cue="PC-WRITER-START round=$1" '
		!on && index($0, cue) { on = 1; next }
		on && match($0, /refcount table moved to 0x[0-9a-f]+/) {
			n++; to = to " " substr($0, RSTART + 24, RLENGTH - 24)
		}
		END { print n + 0, to }' "$run/console-b$1.log")
	rt_moves[$1]=$n
	rt_to[$1]=$to
	rt_start[$1]=$(grep -ao "PC-REFTABLE start round $1: offset 0x[0-9a-f]*" \
		"$run/console-b$1.log" | head -n 1 | sed 's/.* //')
}

# reftable_cut R: rt="; refcount table moves: N[; where the cut landed]"
# for the result of round R, from the moves and the guest's account of the
# table after the cut; counts the moves and the cuts in a move.  The fsync
# workload on the module only: snapshots switch to new refcount tables too,
# and qemu-nbd logs nothing.
rt_total=0 rt_rounds=0 rt_moved=0 rt_small=0 rt_in_move=0
reftable_cut() {
	local r=$1 off='' cover='' size='' o known=0 where=''
	rt=
	[ "$wl" = fsync ] && [ "$backend" = qcow ] || return 0
	small_image "${rt_opts[$r]}" && rt_small=$((rt_small + 1))
	rt_rounds=$((rt_rounds + 1))
	rt_total=$((rt_total + rt_moves[$r]))
	[ "${rt_moves[$r]}" -eq 0 ] || rt_moved=$((rt_moved + 1))
	# "PC-REFTABLE after round R: offset O clusters N covers BYTES file BYTES"
	# (file: where the file's data ends; a hole may follow)
	read -r off cover size < <(grep -aoE "PC-REFTABLE after round $r: offset 0x[0-9a-f]+ clusters [0-9]+ covers [0-9]+ file [0-9]+" \
		"$run/console-b$((r + 1)).log" | tail -n 1 | awk '{ print $6, $10, $12 }')
	if [[ $off =~ ^0x[0-9a-f]+$ && $cover =~ ^[0-9]+$ && $size =~ ^[0-9]+$ ]]; then
		for o in ${rt_start[$r]} ${rt_to[$r]}; do
			[ $((o)) -ne $((off)) ] || known=1
		done
		if [ "$size" -gt "$cover" ]; then
			where="; the cut came in a refcount table move: the file's data (to $size) reaches past what the table at $off counts ($cover)"
		elif [ "$known" = 0 ]; then
			where="; the cut came in a refcount table move: the header names the table at $off, the module had not logged the move"
		fi
		[ -z "$where" ] || rt_in_move=$((rt_in_move + 1))
	fi
	if [ "${rt_moves[$r]}" -gt 0 ] || [ -n "$where" ] || small_image "${rt_opts[$r]}"; then
		rt="; refcount table moves: ${rt_moves[$r]}${where}"
	fi
}

# verdict NAME: the guest's verdict line for powercut/NAME in this boot.
verdict_of() { grep -o "^\(PASS\|FAIL\) powercut/$1\( \|:\).*" <<<"$verdicts" | head -n 1; }

# fail_check NAME WHY BOOT...: report a failed check and keep the evidence.
fail_check() {
	local name=$1 why=$2 b
	shift 2
	result FAIL "$name" "$why"
	if grep -q "^FAIL powercut/$name:" <<<"$verdicts"; then
		# The guest's own account of the check.
		sed -n "/: checking the image\|clean round/,/powercut\/$name/p" "$run/console-b$boot.log" |
			grep -av '^\[' | head -n 60 | sed 's/^/    /'
	else
		sed 's/^/    /' "$run/run-vm-b$boot.txt"
	fi
	save_failure "$name" "$why" "$@"
	failed=1
}

for ((boot = 1; boot <= rounds + 1; boot++)); do
	args=(-w "$wl" -b "$backend")
	env=(QCOW_VM_SCRATCH_FILE="$scratch")
	clean=0
	[ "$boot" -gt 1 ] && args+=(-v $((boot - 1)) -p "$run/progress-r$((boot - 1)).txt")
	if [ "$boot" -gt "$rounds" ] ||
	   { [ "$cycle" -gt 0 ] && [ "$boot" -gt 1 ] && [ $(((boot - 1) % cycle)) -eq 0 ]; }; then
		# The image is done: a clean round on it, then a new one.
		clean=1
		args+=(-F "$boot" -K "$image")
	fi
	if [ "$boot" -le "$rounds" ]; then
		if [ "$boot" -eq 1 ] || [ "$clean" = 1 ]; then
			[ "$boot" -eq 1 ] || image=$((image + 1))
			imgopts=${images[$(((image - 1) % ${#images[@]}))]}
			args+=(-i)
			echo "    image $image: qemu-img create -o $imgopts"
		fi
		args+=(-W "$boot")
		rand_delay
		cut_delay[$boot]=$delay
		delays+=" r$boot=$delay"
		env+=(QCOW_VM_KILL_ON='PC-WRITER-START' QCOW_VM_KILL_DELAY="$delay")
	fi
	env+=(QCOW_PC_IMGOPTS="$imgopts")
	rt_opts[$boot]=$imgopts
	t0=$SECONDS
	nbd_pid=
	if [ "$lossy" = 1 ]; then
		start_lossy "$boot" || { fail_check "round-$boot" "lossy-nbd.py did not start" "$boot"; break; }
		env+=(QCOW_VM_SCRATCH_NBD="$sock")
	fi
	env "${env[@]}" "$here/run-vm.sh" --name powercut "$here/powercut/guest.sh" "${args[@]}" \
		> "$run/run-vm-b$boot.txt" 2>&1
	rc=$?
	[ -z "$nbd_pid" ] || stop_lossy
	cp "$vmlog" "$run/console-b$boot.log" 2>/dev/null
	for f in progress progress-clean; do
		if [ -f "$vmout/$f.txt" ]; then
			mv "$vmout/$f.txt" "$run/$f-r$boot.txt"
		else
			: > "$run/$f-r$boot.txt"
		fi
	done
	mv "$run/progress-clean-r$boot.txt" "$run/progress-clean-b$boot.txt"
	verdicts=$(cat "$vmout/verdict.txt" 2>/dev/null)
	secs=$((SECONDS - t0))
	[ "$boot" -gt "$rounds" ] || reftable_moves "$boot"

	# The check of the previous round, made in this boot.
	if [ "$boot" -gt 1 ]; then
		r=$((boot - 1))
		v=$(verdict_of "round-$r")
		if [ "${v%% *}" != PASS ]; then
			fail_check "round-$r" "${v#*: }" $((boot - 1)) "$boot"
			break
		fi
		line=$(grep -ao "pcwrite: round $r verified: .*" "$run/console-b$boot.log" | tail -n 1)
		cache=
		[ "$lossy" = 1 ] && cache=$(sed -n 's/.*flushed: \([0-9]*\) kept, \([0-9]*\) lost.*/; unflushed disk blocks kept \1, lost \2/p' "$run/lossy-b$r.txt" 2>/dev/null)
		# A workload may say where the cut landed: "PC-NOTE round R [TAG]: TEXT".
		note=$(grep -ao "PC-NOTE round $r \[.*" "$run/console-b$boot.log" | tail -n 1 | tr -d '\r')
		reftable_cut "$r"
		if [ -n "$note" ]; then
			tag=${note#*[}
			tag=${tag%%]*}
			tags[$tag]=$((${tags[$tag]:-0} + 1))
			result PASS "round-$r" "cut ${cut_delay[$r]}s in${cache}; durable: $(progress_summary "$run/progress-r$r.txt"); ${note#*]: }; $(grep -o 'leaked clusters: [0-9]*' <<<"$v")$rt"
		else
			result PASS "round-$r" "cut ${cut_delay[$r]}s in${cache}; durable: $(progress_summary "$run/progress-r$r.txt"), $(sed -n 's/.*verified: \([0-9]*\) blocks.*/\1/p' <<<"$line") blocks checked; unsynced blocks landed: $(sed -n 's/.* \([0-9]*\) unsynced writes landed.*/\1/p' <<<"$line")$(sed -n 's/.* \([1-9][0-9]*\) torn between allowed contents.*/ (\1 blocks torn)/p' <<<"$line"); $(grep -o 'leaked clusters: [0-9]*' <<<"$v")$rt"
		fi
	fi
	if [ "$clean" = 1 ]; then
		k=$((boot > rounds ? image : image - 1))
		v=$(verdict_of "clean-$k")
		if [ "${v%% *}" != PASS ]; then
			fail_check "clean-$k" "${v#*: }" "$boot"
			break
		fi
		result PASS "clean-$k" "${images[$(((k - 1) % ${#images[@]}))]}: $(progress_summary "$run/progress-clean-b$boot.txt"), detached, qemu-img check clean"
	fi
	if [ "$boot" -le "$rounds" ]; then
		n=$(awk '$1 == "S" && $3 > s[$2] { s[$2] = $3 } END { for (t in s) n += s[t]; print n + 0 }' \
			"$run/progress-r$boot.txt")
		synced_total=$((synced_total + n))
		# A writer that got no fdatasync through in seconds is stuck (the
		# first ones take well under a second even on a loaded machine):
		# without this, a hang would pass for a cut.
		if [ "$n" -eq 0 ] && [ "${delay%.*}" -ge 3 ] &&
		   grep -q ': power cut ' "$run/run-vm-b$boot.txt"; then
			fail_check "round-$boot" "no fdatasync completed in the ${delay}s before the cut: the writer is stuck" "$boot"
			break
		fi
		# This boot's own round must have ended in the power cut.
		if [ "$rc" -ne 0 ] || ! grep -q ': power cut ' "$run/run-vm-b$boot.txt"; then
			v=$(verdict_of "round-$boot")
			fail_check "round-$boot" "${v:+${v#*: }}${v:-the boot did not end in the power cut (run-vm exit $rc)}" "$boot"
			break
		fi
		echo "    boot $boot: round $boot cut ${delay}s after the writer started (${secs}s)"
	elif [ "$rc" -ne 0 ]; then
		fail_check "final-boot" "run-vm exit $rc" "$boot"
	fi
done

# A harness whose writer never got an fdatasync through tested nothing.
if [ "$failed" = 0 ] && [ "$synced_total" -eq 0 ]; then
	result FAIL progress "no write was ever made durable before a cut"
	failed=1
fi

# Refcount table growth: a run on an image that must move its table and
# no cut round that did tested less than it claims.
if [ "$failed" = 0 ] && { [ "$rt_small" -gt 0 ] || [ "$rt_total" -gt 0 ]; }; then
	rt_line="refcount table moved $rt_total times in cut rounds ($rt_moved of $rt_rounds rounds; $rt_small on images whose first refcount table counts less than a quarter of the disk), $rt_in_move rounds cut while a move was under way"
	echo "powercut: $rt_line"
	if [ "$rt_small" -ge 5 ]; then
		if [ "$rt_total" -gt 0 ]; then
			result PASS reftable-growth "$rt_line"
		else
			result FAIL reftable-growth "$rt_line: the refcount table never grew while a cut came"
			failed=1
		fi
	fi
fi

if [ "$keep" = 0 ]; then
	rm -f "$scratch"
fi
if [ ${#tags[@]} -gt 0 ]; then
	tally=
	for tag in $(printf '%s\n' "${!tags[@]}" | sort); do
		tally+=", $tag ${tags[$tag]}"
	done
	echo "powercut: where the verified cuts landed: ${tally#, }"
fi
echo "powercut: $( [ "$failed" = 0 ] && echo passed || echo FAILED ): $rounds rounds, backend $backend, seed $seed, $((SECONDS - t_start))s"
exit "$failed"
