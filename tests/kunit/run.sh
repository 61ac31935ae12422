#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the qcow KUnit suites in a UML kernel built with KASAN, lockdep and
# kmemleak.
#
# The driver joins the Debian kernel tree (scripts/kernel-source.sh) through
# an overlay: a symlink drivers/block/qcow -> this repo's driver directory,
# one `source` line in drivers/block/Kconfig and one obj- line in
# drivers/block/Makefile.  The UML build directory lives in $QCOW_CACHE, so
# reruns only recompile what changed.
#
# usage: tests/kunit/run.sh [kunit.py run arguments...]
#   e.g. tests/kunit/run.sh 'qcow_format*'        one suite
#        tests/kunit/run.sh 'qcow_format.l2_*'    some cases of it
#
# Appends "PASS|FAIL|SKIP kunit/<suite>.<case>" lines to $QCOW_RESULTS and
# exits non-zero on a build failure, a failed case, no case run at all, or
# a KASAN/lockdep/BUG report in the kernel log.  The last suite,
# qcow_kmemleak, scans for leaked qcow objects (CONFIG_DEBUG_KMEMLEAK); a run
# without filter arguments fails if it did not run.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${QCOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qcow}
build=$cache/kunit-build
logdir=$repo/build/kunit
driver=$repo/drivers/block/qcow

if [ -z "${QCOW_RESULTS:-}" ]; then
	QCOW_RESULTS=$repo/build/results-kunit.txt
	mkdir -p "$(dirname "$QCOW_RESULTS")"
	: > "$QCOW_RESULTS"
fi
mkdir -p "$cache" "$logdir" "$(dirname "$QCOW_RESULTS")"

fail() {
	echo "kunit: $1" >&2
	echo "FAIL kunit/$2" >> "$QCOW_RESULTS"
	exit 1
}

tree=$("$repo/scripts/kernel-source.sh") || fail "no kernel source tree" setup

# One run at a time per cache: the overlay and the build directory are shared.
exec 8> "$cache/.kunit.lock"
if ! flock -n 8; then
	echo "kunit: waiting for another run using $cache" >&2
	flock 8
fi

# --- overlay ---------------------------------------------------------------
link=$tree/drivers/block/qcow
if [ -e "$link" ] && [ ! -L "$link" ]; then
	fail "$link exists and is not our symlink" setup
fi
if [ "$(readlink "$link" 2>/dev/null || true)" != "$driver" ]; then
	ln -sfn "$driver" "$link"
	# Another checkout's sources may carry older mtimes than the objects
	# built from the previous one: drop those objects.
	rm -rf "$build/drivers/block/qcow"
fi

kconfig=$tree/drivers/block/Kconfig
if ! grep -q '^source "drivers/block/qcow/Kconfig"' "$kconfig"; then
	grep -q '^endif # BLK_DEV$' "$kconfig" ||
		fail "no 'endif # BLK_DEV' in $kconfig" setup
	sed -i 's|^endif # BLK_DEV$|# qcow overlay (tests/kunit/run.sh)\nsource "drivers/block/qcow/Kconfig"\n\n&|' "$kconfig"
fi
makefile=$tree/drivers/block/Makefile
if ! grep -q '^obj-$(CONFIG_BLK_DEV_QCOW)' "$makefile"; then
	printf '\n# qcow overlay (tests/kunit/run.sh)\nobj-$(CONFIG_BLK_DEV_QCOW)\t+= qcow/\n' >> "$makefile"
fi

# A build directory made from another source tree (older package version)
# cannot be reused.
if [ -d "$build" ] && [ "$(cat "$build/.qcow-srctree" 2>/dev/null || true)" != "$tree" ]; then
	echo "kunit: build directory belongs to another kernel tree, starting over" >&2
	rm -rf "$build"
fi
mkdir -p "$build"
echo "$tree" > "$build/.qcow-srctree"

# --- build and run -----------------------------------------------------------
log=$logdir/kunit.log
t0=$SECONDS
echo "kunit: tree $tree, build dir $build"
set +e
(cd "$tree" && python3 tools/testing/kunit/kunit.py run \
	--arch=um \
	--build_dir="$build" \
	--kunitconfig="$driver/.kunitconfig" \
	--jobs="$(nproc)" \
	--raw_output=all \
	"$@") 2>&1 | tee "$log" |
	# show the build part live; the kernel log goes to $log only
	awk '/Starting KUnit Kernel/ { quiet = 1; print; fflush() } !quiet { print; fflush() }'
rc=${PIPESTATUS[0]}
set -e
echo "kunit: kunit.py finished in $((SECONDS - t0))s (exit $rc), full log: $log"

# kunit.py validates the .config against the .kunitconfig too, but the
# debugging options are the point of running here: check them by name.
if [ -f "$build/.config" ]; then
	missing=
	for opt in KUNIT KASAN KASAN_VMALLOC PROVE_LOCKING LOCKDEP DEBUG_KMEMLEAK FRAME_POINTER \
		   BLK_DEV_QCOW QCOW_KUNIT_TEST; do
		grep -q "^CONFIG_$opt=y$" "$build/.config" || missing="$missing CONFIG_$opt"
	done
	# kmemleak built in but off until kmemleak=on would check nothing
	if grep -q '^CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF=y$' "$build/.config"; then
		missing="$missing (CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF=y)"
	fi
	[ -z "$missing" ] || fail "not enabled in $build/.config:$missing" config
fi

if ! grep -q 'Starting KUnit Kernel' "$log"; then
	fail "build failed (see $log)" build
fi

set +e
# A run of all suites must end with the leak check.
required=()
[ $# -gt 0 ] || required=(qcow_kmemleak)
python3 "$repo/tests/kunit/results.py" "$tree" "$log" "$QCOW_RESULTS" "${required[@]}"
prc=$?
set -e
if [ "$prc" -ne 0 ] || [ "$rc" -ne 0 ]; then
	echo "kunit: FAILED (log: $log)"
	exit 1
fi
echo "kunit: all passed"
