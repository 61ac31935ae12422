#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Fuzz the qcow2 format core (drivers/block/qcow/qcow2_format.c, the very
# file the module compiles) in userspace with libFuzzer, ASan and UBSan.
#
# Each target (tests/fuzz/fuzz_*.c) asserts properties of what the format
# core returns -- round trips, the validator's documented guarantees, a
# diag exactly on failure, agreement with brute-force models -- so a wrong
# answer fails like a crash.  Steps:
#
#  1. build the targets (tests/fuzz/Makefile, clang -fsanitize=fuzzer,
#     address,undefined);
#  2. make the seed corpus from real qemu-img images (mkseeds.sh) into
#     build/fuzz/seeds/ (again only when the generator changed);
#  3. replay tests/fuzz/regress/<target>/ (every crasher found so far) and
#     the seeds; fuzz_header must accept every qemu-img seed;
#  4. fuzz each target, two at a time, growing build/fuzz/corpus/<target>/.
#
# usage: tests/fuzz/run.sh [MODE] [TARGET...]
#   --bounded    make check: FUZZ_BOUNDED_SECONDS (default 20) per target
#   --long       make fuzz: FUZZ_SECONDS (default 600) per target, then
#                a coverage report
#   --replay     steps 1-3 only
#   --coverage   replay corpus, seeds and regressions through a coverage
#                build; print llvm-cov's report for qcow2_format.c
#                (build/fuzz/coverage.txt)
# FUZZ_JOBS (default 2) targets fuzz at once.
#
# One "PASS|FAIL fuzz/<case>" line per step and target goes to
# $QCOW_RESULTS (default build/results-fuzz.txt); the exit status is
# non-zero if any failed.  A crasher is left in build/fuzz/artifacts/ with
# the command that reproduces it; once fixed, keep it in
# tests/fuzz/regress/<target>/.  Needs clang and libclang-rt-14-dev (the
# libFuzzer runtime), qemu-img, qemu-io and python3.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$top/build/fuzz
all_targets=(fuzz_header fuzz_snapshot fuzz_entries fuzz_overlap fuzz_bitmap)

if [ -z "${QCOW_RESULTS:-}" ]; then
	QCOW_RESULTS=$top/build/results-fuzz.txt
	mkdir -p "$(dirname "$QCOW_RESULTS")"
	: > "$QCOW_RESULTS"
fi
export QCOW_RESULTS

failures=0

pass() {
	echo "PASS fuzz/$1" | tee -a "$QCOW_RESULTS"
}

# fail CASE [DETAIL...]
fail() {
	local name=$1
	shift
	echo "FAIL fuzz/$name" | tee -a "$QCOW_RESULTS"
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" | sed 's/^/    /'
	fi
	failures=$((failures + 1))
}

usage() {
	sed -n '/^# usage:/,/^# FUZZ_JOBS/p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
}

mode=bounded
targets=()
for arg in "$@"; do
	case $arg in
	--bounded) mode=bounded ;;
	--long) mode=long ;;
	--replay) mode=replay ;;
	--coverage) mode=coverage ;;
	fuzz_*) targets+=("$arg") ;;
	-h | --help) usage ;;
	*) echo "run.sh: unknown argument $arg" >&2; usage ;;
	esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
	[ -f "$here/$t.c" ] || { echo "run.sh: no target $t" >&2; exit 2; }
done

case $mode in
bounded) seconds=${FUZZ_BOUNDED_SECONDS:-20} ;;
long) seconds=${FUZZ_SECONDS:-600} ;;
*) seconds=0 ;;
esac
jobs=${FUZZ_JOBS:-2}

for tool in clang qemu-img qemu-io python3 make; do
	if ! command -v "$tool" >/dev/null; then
		fail prerequisites "missing $tool (scripts/install-deps.sh installs it)"
		exit 1
	fi
done

# libFuzzer keeps going after a leak report only with these; a sanitizer
# report is a crash it saves the input for.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$out/logs" "$out/artifacts"

# --- build ------------------------------------------------------------------

log=$out/logs/build.log
if make -C "$here" -j"$jobs" >"$log" 2>&1; then
	pass build
else
	fail build "$(tail -n 20 "$log")"
	exit 1
fi

# --- seeds ------------------------------------------------------------------

seeds=$out/seeds
stamp=$seeds/.stamp
if [ ! -f "$stamp" ] || [ "$here/mkseeds.sh" -nt "$stamp" ] ||
   [ "$here/mkseeds.py" -nt "$stamp" ]; then
	if "$here/mkseeds.sh" "$seeds" >"$out/logs/seeds.log" 2>&1; then
		touch "$stamp"
		pass seeds
	else
		fail seeds "$(tail -n 20 "$out/logs/seeds.log")"
		exit 1
	fi
else
	pass seeds
fi

# dirs TARGET: the corpus directories of TARGET that exist, the writable
# corpus first.
dirs() {
	local d
	mkdir -p "$out/corpus/$1"
	echo "$out/corpus/$1"
	for d in "$seeds/$1" "$here/regress/$1"; do
		[ -d "$d" ] && echo "$d"
	done
}

# flags TARGET: the libFuzzer options every run of TARGET gets.
flags() {
	echo "-timeout=10 -rss_limit_mb=2048 -print_final_stats=1"
	echo "-artifact_prefix=$out/artifacts/$1-"
	[ -f "$here/$1.dict" ] && echo "-dict=$here/$1.dict"
}

# report TARGET LOG: the crash and how to reproduce it.
report() {
	local t=$1 log=$2 unit
	unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
	grep -E 'property violated|ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error|SUMMARY' \
		"$log" | head -n 6
	if [ -n "$unit" ]; then
		echo "input: $unit"
		echo "reproduce: $out/bin/$t $unit"
		echo "once fixed: cp $unit $here/regress/$t/<what-it-was>"
	fi
	echo "log: $log"
}

# --- coverage ---------------------------------------------------------------

# coverage: replay every target's corpus, seeds and regressions through
# the coverage build and report on qcow2_format.c.
coverage() {
	local profdir=$out/logs/profraw t rc=0
	local -a d objs=()

	if ! make -C "$here" -j"$jobs" cov >"$out/logs/build-cov.log" 2>&1; then
		fail coverage "$(tail -n 20 "$out/logs/build-cov.log")"
		return 1
	fi
	rm -rf "$profdir"
	mkdir -p "$profdir"
	for t in "${targets[@]}"; do
		mapfile -t d < <(dirs "$t")
		LLVM_PROFILE_FILE=$profdir/$t.profraw "$out/cov/$t" -runs=0 \
			"${d[@]}" >"$out/logs/$t-cov.log" 2>&1 || rc=1
		objs+=(-object "$out/cov/$t")
	done
	llvm-profdata-14 merge -o "$profdir/all.profdata" "$profdir"/*.profraw || rc=1
	# the first binary is positional, the others go with -object
	{
		llvm-cov-14 report "${objs[@]:1}" -instr-profile="$profdir/all.profdata" \
			"$top/drivers/block/qcow/qcow2_format.c" &&
		llvm-cov-14 report "${objs[@]:1}" -instr-profile="$profdir/all.profdata" \
			-show-functions "$top/drivers/block/qcow/qcow2_format.c"
	} >"$out/coverage.txt" 2>&1 || rc=1
	if [ "$rc" -ne 0 ]; then
		fail coverage "$(tail -n 5 "$out/coverage.txt")"
		return 1
	fi
	grep -m 1 '^TOTAL' "$out/coverage.txt" |
		awk -v t="${targets[*]}" '{ printf "fuzz: qcow2_format.c covered by %s: regions %s, functions %s, lines %s, branches %s\n", t, $4, $7, $10, $13 }'
	echo "fuzz: per-function report in $out/coverage.txt"
	pass coverage
}

if [ "$mode" = coverage ]; then
	coverage
	exit $((failures > 0))
fi

# --- replay -----------------------------------------------------------------

for t in "${targets[@]}"; do
	if [ -d "$here/regress/$t" ]; then
		log=$out/logs/$t-regress.log
		# shellcheck disable=SC2046 # flags are words
		if "$out/bin/$t" $(flags "$t") -runs=0 "$here/regress/$t" >"$log" 2>&1; then
			pass "$t/regress"
		else
			fail "$t/regress" "$(report "$t" "$log")"
		fi
	fi
	log=$out/logs/$t-seeds.log
	# shellcheck disable=SC2046
	if [ -d "$seeds/$t" ] &&
	   QCOW_FUZZ_EXPECT_VALID=1 "$out/bin/$t" $(flags "$t") -runs=0 "$seeds/$t" \
	   >"$log" 2>&1; then
		pass "$t/seeds"
	elif [ -d "$seeds/$t" ]; then
		fail "$t/seeds" "$(report "$t" "$log")"
	fi
done

if [ "$mode" = replay ]; then
	exit $((failures > 0))
fi

# --- fuzz -------------------------------------------------------------------

# fuzz TARGET: one bounded libFuzzer run; its status is the result.
fuzz() {
	local t=$1 log=$out/logs/$1-fuzz.log
	local -a d
	mapfile -t d < <(dirs "$t")
	# shellcheck disable=SC2046
	"$out/bin/$t" $(flags "$t") -max_total_time="$seconds" "${d[@]}" >"$log" 2>&1
}

# summary TARGET: runs, exec/s and coverage from libFuzzer's final stats.
summary() {
	local log=$out/logs/$1-fuzz.log runs eps last
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 |
	       sed 's/.*\(cov: [0-9]* ft: [0-9]* corp: [0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/')
	echo "fuzz: $1: ${runs:-?} runs in ${seconds}s (${eps:-?} exec/s), $last"
}

echo "fuzz: ${#targets[@]} targets, ${seconds}s each, $jobs at a time"
running=0
for t in "${targets[@]}"; do
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	rm -f "$out/logs/$t-fuzz.rc"
	(fuzz "$t"; echo $? >"$out/logs/$t-fuzz.rc") &
	running=$((running + 1))
done
wait
for t in "${targets[@]}"; do
	if [ "$(cat "$out/logs/$t-fuzz.rc" 2>/dev/null)" = 0 ]; then
		summary "$t"
		pass "$t/fuzz"
	else
		fail "$t/fuzz" "$(report "$t" "$out/logs/$t-fuzz.log")"
	fi
done

[ "$mode" = long ] && coverage

exit $((failures > 0))
