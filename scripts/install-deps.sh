#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the Debian packages qcow needs to build and test, only when some
# are missing (so a warm machine does not touch apt at all).
set -euo pipefail

PKGS=(
	build-essential make gcc bc flex bison libelf-dev libssl-dev kmod cpio
	linux-image-amd64 linux-headers-amd64 linux-source-6.1
	python3 qemu-system-x86 qemu-utils busybox-static
	e2fsprogs fdisk parted fio sparse jq xz-utils
	dkms udev groff-base man-db bsdextrautils bash-completion shellcheck
	clang libclang-rt-14-dev llvm-14
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q "${missing[@]}"
