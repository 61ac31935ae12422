#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Static checks: checkpatch --strict and sparse.
#
#   lint/checkpatch  scripts/checkpatch.pl --strict (from the kernel tree that
#                    scripts/kernel-source.sh extracts) over the driver, the
#                    uapi header and the userspace tool.
#   lint/sparse      the module built against KDIR with C=2 (sparse on every
#                    file, -Wsparse-all, endian checks included) and W=1; any
#                    sparse or compiler warning in our files fails.  A second
#                    pass turns the KUnit test files on so they are checked too.
#
# Appends "PASS|FAIL lint/checkpatch" and "PASS|FAIL lint/sparse" to
# $QCOW_RESULTS; exits non-zero if either failed.
#
# usage: scripts/lint.sh [checkpatch|sparse]   (default: both)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

if [ -z "${QCOW_RESULTS:-}" ]; then
	QCOW_RESULTS=$repo/build/results-lint.txt
	mkdir -p "$(dirname "$QCOW_RESULTS")"
	: > "$QCOW_RESULTS"
fi
mkdir -p "$(dirname "$QCOW_RESULTS")"

# Source files under DIR matching NAME (find -name patterns), sorted; the
# generated *.mod.c of a module build is not ours.  `sources -r` descends.
sources() {
	local depth=(-maxdepth 1)
	if [ "$1" = -r ]; then
		depth=()
		shift
	fi
	local dir=$1
	shift
	[ -d "$dir" ] || return 0
	local -a names=()
	for n in "$@"; do
		names+=(${names[0]+-o} -name "$n")
	done
	find "$dir" "${depth[@]}" -type f \( "${names[@]}" \) ! -name '*.mod.c' | sort
}

result() {
	echo "$1 lint/$2" >> "$QCOW_RESULTS"
	echo "lint: $1 $2"
}

# --- checkpatch ----------------------------------------------------------------
#
# No --ignore: the driver, the uapi header and the userspace tool must be
# --strict clean.  One finding is filtered instead of ignored wholesale:
# CAMELCASE for names that are not ours to rename -- the kernel's zlib/zstd
# APIs (zlib_inflateInit2, ZSTD_*) and <inttypes.h>'s PRIu64/SCNx32 & co.
# (--no-tree means checkpatch cannot look those up in the kernel headers.)
#
# userspace/shim re-creates kernel headers for libc (it defines the very
# macros checkpatch suggests, uses typedefs and __attribute__ spelled out)
# and test programs have their own conventions: they are checked but only
# reported, never failed.
CAMEL_OK='CAMELCASE: Avoid CamelCase: <(zlib_|Z_|ZSTD_|zstd_|PRI[diouxX]|SCN[diouxX])'

checkpatch_files() {
	local raw out rc=0
	raw=$(perl "$checkpatch" --strict --no-tree --show-types --terse --quiet --no-summary -f "$@" 2>&1) || rc=$?
	out=$(printf '%s\n' "$raw" | grep -Ev "$CAMEL_OK" | grep . || true)
	if [ -n "$out" ]; then
		printf '%s\n' "$out"
		return 1
	fi
	if [ "$rc" -ne 0 ] && [ -z "$raw" ]; then
		echo "lint: checkpatch.pl failed (exit $rc) on $*"
		return 1
	fi
	return 0
}

run_checkpatch() {
	local tree rc=0 f
	local -a files report
	tree=$("$repo/scripts/kernel-source.sh") || { result FAIL checkpatch; return 1; }
	checkpatch=$tree/scripts/checkpatch.pl
	mapfile -t files < <(sources drivers/block/qcow '*.[ch]'
			      echo include/uapi/linux/qcow.h
			      sources userspace '*.[ch]')
	mapfile -t report < <(sources -r userspace/shim '*.h'; sources -r tests '*.[ch]')

	echo "lint: checkpatch --strict over ${#files[@]} files"
	for f in "${files[@]}"; do
		checkpatch_files "$f" || rc=1
	done
	if [ ${#report[@]} -gt 0 ]; then
		local n
		n=$(checkpatch_files "${report[@]}" | grep -c ': \(ERROR\|WARNING\|CHECK\):' || true)
		echo "lint: checkpatch, report only (userspace/shim, tests): $n findings in ${#report[@]} files"
	fi
	if [ "$rc" -eq 0 ]; then
		result PASS checkpatch
	else
		result FAIL checkpatch
	fi
	return "$rc"
}

# --- sparse ------------------------------------------------------------------
#
# -Wsparse-all turns on every sparse warning; the kernel's own CHECKFLAGS
# already add -Wbitwise (the __be/__le checks, what __CHECK_ENDIAN__ used to
# do).  Three are turned back off because kernel idioms trip them in our
# code: -Wflexible-array-sizeof and -Wpointer-arith both fire on every
# struct_size() (sizeof(void) inside the macro), -Wptr-subtraction-blows on
# every KUNIT_ARRAY_PARAM() table of odd-sized rows.  W=1 adds gcc's extra
# warnings and kernel-doc checking of /** comments.  Only lines naming our files
# count.  -fmax-warnings=unlimited: sparse stops at 100 by default, which
# could hide ours behind someone else's.
# The build runs on a copy of the sources in a scratch directory, so it
# neither leaves objects in the repo nor races a concurrent `make module`.
run_sparse() {
	local kdir log rc=0 pass
	kdir=${KDIR:-}
	if [ -z "$kdir" ]; then
		kdir=/lib/modules/$(uname -r)/build
		[ -d "$kdir" ] || kdir=$(ls -d /lib/modules/*/build 2>/dev/null | sort -V | tail -n 1)
	fi
	if [ -z "$kdir" ] || [ ! -d "$kdir" ]; then
		echo "lint: no kernel build tree for sparse (install linux-headers-amd64 or set KDIR)" >&2
		result FAIL sparse
		return 1
	fi
	if ! command -v sparse >/dev/null; then
		echo "lint: sparse is not installed (apt-get install sparse)" >&2
		result FAIL sparse
		return 1
	fi

	scratch=$(mktemp -d "${TMPDIR:-/tmp}/qcow-sparse.XXXXXX")
	trap 'rm -rf "$scratch"' EXIT
	{
		echo Kbuild
		sources drivers/block/qcow Makefile Kconfig '*.[ch]'
		sources -r include '*.h'
	} | tar -cf - -T - | tar -xf - -C "$scratch"
	log=$scratch/build.log

	local -a make_args=(-C "$kdir" M="$scratch" -k W=1 C=2
		CF="-Wsparse-all -Wno-flexible-array-sizeof -Wno-pointer-arith -Wno-ptr-subtraction-blows -fmax-warnings=unlimited" CONFIG_BLK_DEV_QCOW=m)
	local -a passes=(module)
	# KUnit is not enabled in Debian's kernel: turn the tests on by hand
	# (headers exist; modpost only warns about the missing kunit symbols).
	if [ -n "$(sources drivers/block/qcow '*_test.c')" ]; then
		passes+=(kunit)
	fi
	echo "lint: sparse + W=1 against $kdir (${passes[*]})"
	for pass in "${passes[@]}"; do
		local -a extra=()
		[ "$pass" = kunit ] && extra=(CONFIG_QCOW_KUNIT_TEST=y KBUILD_MODPOST_WARN=1
			KCFLAGS="-DCONFIG_QCOW_KUNIT_TEST=1")
		local built=1
		make "${make_args[@]}" "${extra[@]}" modules > "$log" 2>&1 || built=0
		# "file:line:col: warning|error:" from sparse or gcc, in our files
		if grep -E "^$scratch/[^:]+:[0-9]+:([0-9]+:)? (warning|error):" "$log" |
		   sed "s|$scratch/||" | sort -u | grep .; then
			rc=1
		fi
		if [ "$built" -eq 0 ]; then
			echo "lint: sparse ($pass): the build failed:"
			grep -E 'error|Error|\*\*\*' "$log" | sed "s|$scratch/||g" | head -n 20
			rc=1
			break
		fi
	done
	if [ "$rc" -eq 0 ]; then
		result PASS sparse
	else
		result FAIL sparse
	fi
	return "$rc"
}

what=${1:-all}
rc=0
case $what in
checkpatch) run_checkpatch || rc=1 ;;
sparse) run_sparse || rc=1 ;;
all)
	run_checkpatch || rc=1
	run_sparse || rc=1
	;;
*) echo "usage: $0 [checkpatch|sparse]" >&2; exit 2 ;;
esac
exit "$rc"
