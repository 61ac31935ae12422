#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the VM tests (tests/vm/guest/t-*.sh), each in a fresh VM boot, and
# append "PASS vm/<name>" / "FAIL vm/<name>" lines to $QCOW_RESULTS.
#
#   tests/vm/run-tests.sh [--shared] [PATTERN...]
#
# PATTERN is a glob on the test name without "t-" and ".sh" (smoke, snap*).
# --shared runs all selected tests one after the other in a single boot
# (faster; a test that crashes the kernel takes the rest down with it).
# A test can ask for a longer time limit with a "# vm-timeout: SECONDS"
# line; the default is QCOW_VM_TIMEOUT or 600.  Console logs: build/vm-logs/.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

shared=0
pats=()
for a in "$@"; do
	case $a in
	--shared) shared=1 ;;
	-h|--help) sed -n '4,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run-tests: unknown option $a" >&2; exit 2 ;;
	*) pats+=("$a") ;;
	esac
done

if [ -z "${QCOW_RESULTS:-}" ]; then
	export QCOW_RESULTS=$top/build/results-vm.txt
	mkdir -p "$(dirname "$QCOW_RESULTS")"
	: > "$QCOW_RESULTS"
fi

# name -> script, in order.
tests=()
for f in "$here"/guest/t-*.sh; do
	[ -e "$f" ] || continue
	n=$(basename "$f" .sh)
	n=${n#t-}
	if [ ${#pats[@]} -gt 0 ]; then
		ok=0
		for p in "${pats[@]}"; do
			# shellcheck disable=SC2053
			[[ $n == $p || t-$n == $p ]] && ok=1
		done
		[ $ok = 1 ] || continue
	fi
	tests+=("$f")
done
if [ ${#tests[@]} -eq 0 ]; then
	echo "run-tests: no VM test matches ${pats[*]:-(none found)}" >&2
	exit 1
fi

tname() { local n; n=$(basename "$1" .sh); echo "${n#t-}"; }
ttimeout() {
	sed -n 's/^# vm-timeout: *\([0-9][0-9]*\).*/\1/p' "$1" | head -n 1 | grep . ||
		echo "${QCOW_VM_TIMEOUT:-600}"
}

pass=0
fail=0
result() {
	local verdict=$1 name=$2 why=${3:-}
	echo "$verdict vm/$name" >> "$QCOW_RESULTS"
	echo "==> $verdict vm/$name${why:+ ($why)}"
	if [ "$verdict" = PASS ]; then pass=$((pass + 1)); else fail=$((fail + 1)); fi
}

if [ ! -f "$top/drivers/block/qcow/qcow.ko" ]; then
	echo "run-tests: drivers/block/qcow/qcow.ko is not built (make module)" >&2
	for t in "${tests[@]}"; do result FAIL "$(tname "$t")" "qcow.ko not built"; done
	exit 1
fi

t_start=$SECONDS
if [ $shared = 0 ]; then
	for t in "${tests[@]}"; do
		n=$(tname "$t")
		echo "==> vm/$n"
		t0=$SECONDS
		if QCOW_VM_TIMEOUT=$(ttimeout "$t") "$here/run-vm.sh" --name "$n" "$t"; then
			result PASS "$n" "$((SECONDS - t0))s"
		else
			result FAIL "$n" "$((SECONDS - t0))s"
		fi
	done
else
	total=0
	for t in "${tests[@]}"; do total=$((total + $(ttimeout "$t"))); done
	echo "==> vm: ${#tests[*]} tests in one boot"
	QCOW_VM_TIMEOUT=$((total + 120)) "$here/run-vm.sh" --name shared \
		"$here/lib/guest-multi.sh" "${tests[@]}"
	log=$top/build/vm-logs/shared.log
	for t in "${tests[@]}"; do
		n=$(tname "$t")
		r=$(grep -ao "QCOW-VM-TEST $n [a-z0-9=]* [a-z0-9=]*" "$log" | tail -n 1)
		case $r in
		"QCOW-VM-TEST $n rc=0 dmesg=clean") result PASS "$n" ;;
		"") result FAIL "$n" "no result: the guest died first" ;;
		*) result FAIL "$n" "${r#QCOW-VM-TEST "$n" }" ;;
		esac
	done
fi

echo "==> vm: $pass passed, $fail failed ($((SECONDS - t_start))s)"
[ "$fail" -eq 0 ]
