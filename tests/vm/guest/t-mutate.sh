#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Mutated images: valid images of many layouts made by qemu-img
# (tests/vm/mutate/mkbases.py) are corrupted from a seed
# (tests/vm/mutate/mutate.py: header fields, extension headers and lengths,
# L1/L2/refcount entries, snapshot tables, compressed descriptors, bitmaps,
# bit flips, boundary values, pointers into other metadata or past the end
# of the file) and each mutant is attached, read end to end, written to,
# snapshotted and detached (tests/vm/mutate/runner.py, which says exactly
# what counts as a failure).  Expected: a clean refusal or EIO, the corrupt
# flag where metadata was found inconsistent, no kernel warning, no write
# outside the image (canary files around it, backing files unchanged, no
# new corruption that qemu-img check finds in an image the kernel did not
# mark corrupt).
#
# Environment:
#   QCOW_MUTATE_COUNT   images (default 200)
#   QCOW_MUTATE_SEED    run seed (default: random, printed)
#   QCOW_MUTATE_FIRST   index of the first image (default 0)
#   QCOW_MUTATE_SEEDS   test just these image seeds (a failure's "seed")
#   QCOW_MUTATE_JOBS    images tested at a time (default 2, one per vCPU)
#   QCOW_MUTATE_BUDGET  seconds after which no new image starts (default
#                       240); the images left out are reported, not failed
#   QCOW_MUTATE_BASES   a mkbases.py directory to use instead of making
#                       the bases here (make stress makes them on the host)
#   QCOW_MUTATE_LAYOUTS only these layouts (names from layouts.json)
#   QCOW_MUTATE_QEMU_CHECK  images written to are checked by qcowctl check,
#                       and by qemu-img check when it finds a problem and
#                       in 1 case out of this many anyway (default 4; 1: all)
# Prints "PASS|FAIL mutate/batch-K" per 50 images and the tally line
#   mutate: N images: R refused, E with EIO, C clean, O oopses, X corruptions
# A failing image is kept in $QCOW_VM_OUT/fail-SEED/ (host:
# build/vm-out/mutate/), the bases in $QCOW_VM_OUT/bases/.
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
M=$QCOW_TOP/tests/vm/mutate
W=$QCOW_SCRATCH/mutate
rm -rf "$W"
mkdir -p "$W"
cd "$W" || fail "cannot cd to $W"

count=${QCOW_MUTATE_COUNT:-200}
seed=${QCOW_MUTATE_SEED:-$(( (RANDOM << 15 | RANDOM) + 1 ))}
first=${QCOW_MUTATE_FIRST:-0}
jobs=${QCOW_MUTATE_JOBS:-2}
budget=${QCOW_MUTATE_BUDGET:-240}
[[ $count =~ ^[0-9]+$ && $seed =~ ^[0-9]+$ && $first =~ ^[0-9]+$ &&
   $jobs =~ ^[1-9][0-9]*$ && $budget =~ ^[0-9]+$ ]] ||
	fail "QCOW_MUTATE_COUNT/SEED/FIRST/JOBS/BUDGET must be numbers"
t_start=$SECONDS

if [ -n "${QCOW_MUTATE_BASES:-}" ]; then
	step "bases: $QCOW_MUTATE_BASES"
	bases=$QCOW_MUTATE_BASES
	[ -f "$bases/layouts.json" ] || fail "no layouts.json in $bases"
else
	step "making the base images with qemu-img"
	bases=$W/bases
	python3 "$M/mkbases.py" "$bases" || fail "mkbases.py failed"
	# For reproducing a failure on the host: mutate.py gen BASES SEED OUT
	cp -r --sparse=always "$bases" "$QCOW_VM_OUT/bases"
	echo "made in $((SECONDS - t_start)) s"
fi
cp -r --sparse=always "$bases/backing" "$W/backing"

if [ -n "${QCOW_MUTATE_SEEDS:-}" ]; then
	step "mutate: image seeds $QCOW_MUTATE_SEEDS"
	args=(--seeds "$QCOW_MUTATE_SEEDS")
else
	step "mutate: $count images from index $first of run seed $seed (re-run: QCOW_MUTATE_SEED=$seed)"
	args=(--seed "$seed" --first "$first" --count "$count")
fi

qcow_load
t_img0=$SECONDS
deadline=$(( $(date +%s) + budget ))
pids=()
for ((i = 0; i < jobs; i++)); do
	python3 "$M/runner.py" run --bases "$bases" --work "$W" "${args[@]}" \
		--jobs "$jobs" --shard "$i" --results "$QCOW_VM_OUT/results-$i.jsonl" \
		--out "$QCOW_VM_OUT" --deadline "$deadline" &
	pids+=($!)
done
rc=0
for p in "${pids[@]}"; do
	wait "$p" || { echo "FAIL mutate/runner: a worker exited with $?"; rc=1; }
done
t_images=$((SECONDS - t_img0))

# Whatever a failed worker left attached must still detach.
left=(/sys/block/qcow[0-9]*)
if [ -e "${left[0]}" ]; then
	echo "FAIL mutate/cleanup: ${#left[@]} devices left attached"
	"$QCOW_CTL" list || true
	"$QCOW_CTL" detach -a || true
	rc=1
fi
qcow_unload

tested=$(cat "$QCOW_VM_OUT"/results-*.jsonl 2>/dev/null | wc -l)
python3 "$M/runner.py" summary "$QCOW_VM_OUT"/results-*.jsonl || rc=1
if [ -z "${QCOW_MUTATE_SEEDS:-}" ] && [ "$tested" -lt "$count" ]; then
	echo "mutate: $tested of $count images tested (time budget ${budget}s)"
fi
echo "mutate: run seed $seed, $tested images in ${t_images}s ($(awk -v n="$tested" -v t="$t_images" 'BEGIN { if (t > 0) printf "%.0f", n * 60 / t }') images/min)"
cd / || exit 1
rm -rf "$W"
exit "$rc"
