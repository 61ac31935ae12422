#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make stress: many mutated images (tests/vm/guest/t-mutate.sh, in as many
# VM boots as it takes) and the power-cut runs, then one summary line:
#
#   stress: images tried N / oopses 0 / corruptions 0 / lost fsync'd writes 0
#
#   tests/vm/mutate/stress.sh [-n IMAGES] [-b PER_BOOT] [-s SEED] [-j JOBS]
#                             [-p 'POWERCUT COMMAND']...
#
#   -n IMAGES    mutated images in all (default 10000; 0: none)
#   -b PER_BOOT  images per VM boot (default 500); a boot that runs out of
#                its time (QCOW_MUTATE_BUDGET, default 2400 s, VM timeout
#                that plus 600 s) or crashes is followed by one that goes
#                on from the first image not done
#   -s SEED      run seed (default random, printed): image J of the run is
#                always the same mutant (mutate.py image_seed)
#   -j JOBS      images at a time in the guest (default 2)
#   -p COMMAND   a power-cut run (e.g. 'tests/vm/powercut.sh -n 200'),
#                repeatable; its lost durable writes (pcwrite's "N durable
#                writes of this round lost", pcsnap's "N bad blocks"), its
#                failed qemu-img checks and the kernel warnings in its
#                consoles go into the summary
#
# The bases are made once on the host (mkbases.py, build/mutate/bases) and
# read by every boot over 9p.  An oops panics the VM: the images in flight
# are named by the last "qcow-mutate:" lines on the console, counted as
# oopses and skipped.  Everything is kept in build/mutate/stress/: each
# boot's results (JSON lines) and console, failing images (fail-SEED/),
# the power-cut outputs.  Exits non-zero if anything failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../../.." && pwd)

images=10000
per_boot=500
seed=
jobs=2
pcs=()
while getopts n:b:s:j:p:h opt; do
	case $opt in
	n) images=$OPTARG ;;
	b) per_boot=$OPTARG ;;
	s) seed=$OPTARG ;;
	j) jobs=$OPTARG ;;
	p) pcs+=("$OPTARG") ;;
	*) sed -n '4,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done
[ -n "$seed" ] || seed=$(( (RANDOM << 15 | RANDOM) + 1 ))
for v in "$images" "$per_boot" "$seed" "$jobs"; do
	[[ $v =~ ^[0-9]+$ ]] || { echo "stress: -n/-b/-s/-j take numbers" >&2; exit 2; }
done
if [ "$per_boot" -eq 0 ] || [ "$jobs" -eq 0 ]; then
	echo "stress: -b and -j must be > 0" >&2
	exit 2
fi

out=$top/build/mutate/stress
rm -rf "$out"
mkdir -p "$out"
budget=${QCOW_MUTATE_BUDGET:-2400}
export QCOW_RESULTS=${QCOW_RESULTS:-$out/results.txt}
t_start=$SECONDS
status=0

oopses=0
corruptions=0
lost=0
other=0
tried=0

# --- mutated images ------------------------------------------------------------
if [ "$images" -gt 0 ]; then
	echo "stress: $images mutated images, $per_boot per boot, run seed $seed (re-run with -s $seed)"
	bases=$top/build/mutate/bases
	if ! python3 "$here/mkbases.py" "$bases" >/dev/null; then
		echo "stress: FAIL: mkbases.py could not make the base images" >&2
		exit 1
	fi
	: > "$out/crashed.txt"
	next=0
	boot=0
	stuck=0
	while [ "$next" -lt "$images" ]; do
		boot=$((boot + 1))
		n=$((images - next < per_boot ? images - next : per_boot))
		echo "stress: boot $boot: images $next..$((next + n - 1))"
		QCOW_MUTATE_BASES=$bases QCOW_MUTATE_SEED=$seed QCOW_MUTATE_FIRST=$next \
		QCOW_MUTATE_COUNT=$n QCOW_MUTATE_JOBS=$jobs QCOW_MUTATE_BUDGET=$budget \
		QCOW_VM_TIMEOUT=$((budget + 600)) \
			"$top/tests/vm/run-vm.sh" --name mutate-stress "$top/tests/vm/guest/t-mutate.sh" \
			> "$out/run-vm-b$boot.txt" 2>&1
		rc=$?
		log=$top/build/vm-logs/mutate-stress.log
		cp "$log" "$out/console-b$boot.log" 2>/dev/null
		vmout=$top/build/vm-out/mutate-stress
		cat "$vmout"/results-*.jsonl > "$out/results-b$boot.jsonl" 2>/dev/null
		[ -f "$out/console-b$boot.log" ] || : > "$out/console-b$boot.log"
		for d in "$vmout"/fail-*; do
			[ -d "$d" ] && cp -r "$d" "$out/"
		done
		grep -a '^mutate: \|^FAIL\|^PASS' "$out/console-b$boot.log" | grep -v '^PASS' | sed 's/^/    /'
		# Images started but never finished: the VM died under them.
		inflight=$(python3 - "$out/console-b$boot.log" "$out/results-b$boot.jsonl" <<'EOF'
import json, re, sys
started = {}
for line in open(sys.argv[1], errors='replace'):
    m = re.search(r'qcow-mutate: w\d+ #(\d+) seed=(\d+) layout=(\S+)', line)
    if m:
        started[int(m.group(1))] = (m.group(2), m.group(3))
done = set()
for line in open(sys.argv[2]):
    if line.strip():
        done.add(json.loads(line)['index'])
for j in sorted(set(started) - done):
    print(j, *started[j])
EOF
)
		died=1
		grep -aq 'QCOW-VM-EXIT=[0-9]' "$out/console-b$boot.log" && died=0
		if [ "$rc" -ne 0 ] && [ "$died" = 1 ] && [ -n "$inflight" ]; then
			echo "    the VM died (run-vm exit $rc) while testing (index seed layout):"
			while read -r line; do echo "      $line"; done <<<"$inflight"
			sed -n '/FAILED/,$p' "$out/run-vm-b$boot.txt" | head -n 80 | sed 's/^/    | /'
			oopses=$((oopses + $(wc -l <<<"$inflight")))
			while read -r line; do echo "boot $boot: $line"; done <<<"$inflight" >> "$out/crashed.txt"
			status=1
		elif [ "$rc" -ne 0 ]; then
			echo "    run-vm exit $rc:"
			grep -a -A12 'mutate: FAIL\|^FAIL' "$out/console-b$boot.log" | grep -av '^\[' |
				head -n 40 | sed 's/^/    | /'
			tail -n 5 "$out/run-vm-b$boot.txt" | sed 's/^/    | /'
			# A warning the runner pinned on an image is in the tally already.
			if grep -q 'kernel log has warnings' "$out/run-vm-b$boot.txt" &&
			   ! grep -q '"oops": true' "$out/results-b$boot.jsonl"; then
				oopses=$((oopses + 1))
			fi
			status=1
		fi
		# Go on from the first image of this boot's range not done.
		prev=$next
		next=$(python3 - "$next" "$n" "$out/results-b$boot.jsonl" "$out/crashed.txt" <<'EOF'
import json, sys
first, n = int(sys.argv[1]), int(sys.argv[2])
done = set()
for line in open(sys.argv[3]):
    if line.strip():
        done.add(json.loads(line)['index'])
for line in open(sys.argv[4]):
    done.add(int(line.split()[2]))
j = first
while j < first + n and j in done:
    j += 1
print(j)
EOF
)
		if [ "$next" -eq "$prev" ]; then
			stuck=$((stuck + 1))
			if [ "$stuck" -ge 2 ]; then
				echo "stress: FAIL: two boots in a row made no progress at image $next" >&2
				status=1
				break
			fi
		else
			stuck=0
		fi
	done
	# The tally over every boot (an image re-run after a time-out counts once).
	python3 - "$out"/results-b*.jsonl > "$out/results.jsonl" <<'EOF'
import json, sys
last = {}
for p in sys.argv[1:]:
    for line in open(p):
        if line.strip():
            r = json.loads(line)
            last[r['index']] = line
for j in sorted(last):
    sys.stdout.write(last[j])
EOF
	python3 "$here/runner.py" summary --batch 1000 "$out/results.jsonl" | tee "$out/summary.txt"
	[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
	tally=$(grep '^mutate: [0-9]* images:' "$out/summary.txt")
	tried=$(($(sed -n 's/^mutate: \([0-9]*\) images:.*/\1/p' <<<"$tally") + $(grep -c . "$out/crashed.txt")))
	oopses=$((oopses + $(sed -n 's/.* \([0-9]*\) oopses.*/\1/p' <<<"$tally")))
	corruptions=$((corruptions + $(sed -n 's/.* \([0-9]*\) corruptions.*/\1/p' <<<"$tally")))
	o=$(sed -n 's/.* \([0-9]*\) other failures.*/\1/p' <<<"$tally")
	other=$((other + ${o:-0}))
	echo "stress: mutation: $tried images in $boot boots, $((SECONDS - t_start)) s"
fi

# --- power cuts ---------------------------------------------------------------
k=0
for cmd in "${pcs[@]}"; do
	k=$((k + 1))
	echo "stress: power cuts: $cmd"
	t0=$SECONDS
	# shellcheck disable=SC2086 # the command is a list of words
	(cd "$top" && exec $cmd) 2>&1 | tee "$out/powercut-$k.txt"
	rc=${PIPESTATUS[0]}
	run=$top/build/powercut/run
	cp -r "$run" "$out/powercut-$k-run" 2>/dev/null
	n_lost=$(cat "$run"/console-b*.log 2>/dev/null | tr -d '\r' |
		sed -n 's/.*(\([0-9]*\) durable writes of this round lost).*/\1/p; s/.*pcsnap: round [0-9]* verified: .*; \([0-9]*\) bad blocks.*/\1/p' |
		awk '{ n += $1 } END { print n + 0 }')
	n_fail_data=$(grep -c '^==> FAIL powercut[^/]*/.*data verification' "$out/powercut-$k.txt")
	[ "$n_lost" -ge "$n_fail_data" ] || n_lost=$n_fail_data
	n_corrupt=$(grep -c '^==> FAIL powercut[^/]*/.*qemu-img check' "$out/powercut-$k.txt")
	n_oops=0
	for f in "$run"/console-b*.log; do
		[ -f "$f" ] || continue
		grep -a -E '^\[ *[0-9]+\.[0-9]+\] ' "$f" | grep -av 'ommand line' |
			grep -aqE 'BUG:|Oops|WARNING:|KASAN|UBSAN|hung_task|lockdep|general protection|Call Trace' &&
			n_oops=$((n_oops + 1))
	done
	lost=$((lost + n_lost))
	corruptions=$((corruptions + n_corrupt))
	oopses=$((oopses + n_oops))
	if [ "$rc" -ne 0 ]; then
		status=1
		[ $((n_lost + n_corrupt + n_oops)) -gt 0 ] || other=$((other + 1))
	fi
	echo "stress: power cuts ($cmd): exit $rc, $n_lost lost durable writes, $n_corrupt failed qemu-img checks, $n_oops boots with kernel warnings, $((SECONDS - t0)) s"
done

extra=
[ "$other" -eq 0 ] || extra=" / other failures $other"
echo "stress: images tried $tried / oopses $oopses / corruptions $corruptions / lost fsync'd writes $lost$extra"
echo "stress: $( [ "$status" = 0 ] && echo passed || echo FAILED ) in $((SECONDS - t_start)) s (run seed $seed; details in ${out#"$top"/}/)"
exit "$status"
