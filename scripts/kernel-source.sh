#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract the Debian linux-source tarball (/usr/src/linux-source-*.tar.xz,
# newest version) into $QCOW_CACHE/linux-source-<debian version> once, and
# print the path of the extracted tree.  The KUnit runner builds UML from it
# and lint takes scripts/checkpatch.pl from it.
#
# Idempotent: a stamp file marks a complete extraction; a new package
# version gets a new directory and older trees are removed.  Concurrent runs
# serialise on a lock file, and extraction goes to a temporary directory that
# is renamed into place, so a tree that exists is always complete.
set -euo pipefail

cache=${QCOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qcow}
mkdir -p "$cache"

tarball=$(ls -d /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$tarball" ]; then
	echo "kernel-source: no /usr/src/linux-source-*.tar.xz (apt-get install linux-source-6.1, or run scripts/install-deps.sh)" >&2
	exit 1
fi

# linux-source-6.1.tar.xz belongs to package linux-source-6.1; name the tree
# after the package version so a security update re-extracts.  Without dpkg,
# fall back to the tarball's name and mtime.
pkg=$(basename "$tarball" .tar.xz)
version=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
[ -n "$version" ] || version=${pkg#linux-source-}-$(stat -c %Y "$tarball")
tree=$cache/linux-source-$version
stamp=$tree/.qcow-extracted

if [ -f "$stamp" ]; then
	echo "$tree"
	exit 0
fi

exec 9> "$cache/.kernel-source.lock"
flock 9

# Someone else may have finished while we waited for the lock.
if [ ! -f "$stamp" ]; then
	echo "kernel-source: extracting $tarball ($version) to $tree" >&2
	rm -rf "$cache"/.extract.*	# left by an interrupted run
	tmp=$(mktemp -d "$cache/.extract.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	tar -xJf "$tarball" -C "$tmp"
	top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n 1)
	if [ -z "$top" ] || [ ! -f "$top/Makefile" ]; then
		echo "kernel-source: $tarball does not hold a kernel tree" >&2
		exit 1
	fi
	echo "$tarball $version" > "$top/.qcow-extracted"
	rm -rf "$tree"
	mv "$top" "$tree"
	# Older versions are dead weight (about 1.3 GB each).
	for old in "$cache"/linux-source-*; do
		[ "$old" = "$tree" ] || rm -rf "$old"
	done
fi

echo "$tree"
