#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Shared by the packaging tests (tests/packaging/*.sh): result lines, a
# scratch directory, the kernel the module is built for, and the modinfo
# check both the tree's module and the DKMS-built one must pass.
#
# Sourced, not run.  Sets: top, KDIR, KVER, work (removed on exit unless
# QCOW_KEEP=1); defines pass, fail, need, check_modinfo.

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
suite=packaging
failures=0

if [ -z "${QCOW_RESULTS:-}" ]; then
	QCOW_RESULTS=$top/build/results-packaging.txt
	mkdir -p "$(dirname "$QCOW_RESULTS")"
	: > "$QCOW_RESULTS"
fi
export QCOW_RESULTS
PATH=$PATH:/usr/sbin:/sbin

pass() {
	echo "PASS $suite/$1" | tee -a "$QCOW_RESULTS"
}

# fail CASE [DETAIL...]: record the failure, show the details indented.
fail() {
	local name=$1
	shift
	echo "FAIL $suite/$name" | tee -a "$QCOW_RESULTS"
	if [ $# -gt 0 ]; then
		printf '%s\n' "$@" | sed 's/^/    /'
	fi
	failures=$((failures + 1))
}

# check CASE DETAIL...: pass when the collected problems ($problems, one
# per line) are none, else fail with them.
problems=
problem() {
	problems+="$*"$'\n'
}
verdict() {
	if [ -z "$problems" ]; then
		pass "$1"
	else
		fail "$1" "${problems%$'\n'}"
	fi
	problems=
}

# need CASE TOOL...: fail CASE (and return 1) when a tool is missing.
need() {
	local name=$1 t missing=()
	shift
	for t in "$@"; do
		command -v "$t" >/dev/null || missing+=("$t")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	fail "$name" "missing ${missing[*]} (scripts/install-deps.sh installs it)"
	return 1
}

# The kernel build tree, as the top Makefile picks it.
if [ -z "${KDIR:-}" ]; then
	KDIR=/lib/modules/$(uname -r)/build
	[ -d "$KDIR" ] || KDIR=$(printf "%s\n" /lib/modules/*/build | sort -V | tail -n 1)
fi
KVER=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$KDIR/include/generated/utsrelease.h" 2>/dev/null || true)
export KDIR

# The package version: dkms.conf's PACKAGE_VERSION.
QCOW_VERSION=$(sed -n 's/^PACKAGE_VERSION="\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$top/dkms.conf")

work=$(mktemp -d "${TMPDIR:-/tmp}/qcow-packaging.XXXXXX")
trap '[ "${QCOW_KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"' EXIT

# The module parameters the driver source declares (module_param*(NAME, ...)).
source_params() {
	grep -ho 'module_param[a-z_]*( *[A-Za-z0-9_]*' "$top"/drivers/block/qcow/*.c |
		sed 's/.*( *//' | sort -u
}

# check_modinfo KO: the fields `modinfo` must show for qcow.ko; appends
# what is wrong to $problems.  Every module parameter in the source must be
# listed with a description.
check_modinfo() {
	local ko=$1 f v p params want_ver
	local -A field=()

	if [ ! -f "$ko" ]; then
		problem "$ko: no such file"
		return
	fi
	for f in name license description version vermagic srcversion alias; do
		field[$f]=$(modinfo -F "$f" "$ko" 2>&1) || problem "modinfo -F $f $ko failed: ${field[$f]}"
	done
	[ "${field[name]}" = qcow ] || problem "name: '${field[name]}', want qcow"
	[ "${field[license]}" = GPL ] || problem "license: '${field[license]}', want GPL"
	[ -n "${field[description]}" ] || problem "no description"
	want_ver=$QCOW_VERSION
	[ "${field[version]}" = "$want_ver" ] ||
		problem "version: '${field[version]}', want '$want_ver' (dkms.conf PACKAGE_VERSION = MODULE_VERSION)"
	[ -n "${field[srcversion]}" ] || problem "no srcversion"
	v=${field[vermagic]%% *}
	[ "$v" = "$KVER" ] || problem "vermagic: '${field[vermagic]}', want $KVER ..."
	grep -qx 'devname:qcow-control' <<<"${field[alias]}" ||
		problem "alias devname:qcow-control missing (autoload on opening /dev/qcow-control)"
	grep -qx 'char-major-10-[0-9]*' <<<"${field[alias]}" ||
		problem "alias char-major-10-MINOR missing"

	params=$(source_params)
	[ -n "$params" ] || problem "no module_param in drivers/block/qcow/*.c (the source scan is broken)"
	for p in $params; do
		grep -q "^$p:" < <(modinfo -F parmtype "$ko") ||
			problem "parameter $p: not in modinfo parmtype"
		v=$(modinfo -F parm "$ko" | sed -n "s/^$p:\(.*\) ([a-z]*)\$/\1/p")
		[ -n "$v" ] || problem "parameter $p: no description (MODULE_PARM_DESC)"
	done
	# and nothing modinfo lists that the scan missed
	while IFS=: read -r p _; do
		grep -qx "$p" <<<"$params" || problem "modinfo lists parameter $p the source scan did not find"
	done < <(modinfo -F parmtype "$ko")
}
