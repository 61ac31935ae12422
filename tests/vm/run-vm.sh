#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Boot the Debian kernel that qcow.ko is built for in qemu and run one guest
# script in it as root.
#
#   tests/vm/run-vm.sh [--name NAME] [--verbose] GUEST_SCRIPT [ARGS...]
#
# The guest's root is the host's / (read-only 9p, under a tmpfs overlay), so
# the guest sees the project at the same path ($QCOW_TOP) and every host
# binary.  Images belong on $QCOW_SCRATCH, an ext4 scratch disk.  Files the
# script writes to $QCOW_VM_OUT land on the host in build/vm-out/NAME/.
# Exit status 0 iff the guest script exited 0 and the kernel log is clean.
# The console log is kept in build/vm-logs/NAME.log.
#
# Environment: QCOW_VM_TIMEOUT (seconds, default 600), QCOW_VM_ACCEL
# (tcg|kvm, default tcg), QCOW_VM_CPU (TCG CPU model, default max),
# QCOW_VM_MEM (default 2G), QCOW_VM_SMP (default 2),
# QCOW_VM_SCRATCH_SIZE (default 4G), QCOW_VM_KERNEL (kernel image, default
# /boot/vmlinuz-<release of KDIR>), QCOW_VM_VERBOSE=1 (stream the console),
# QCOW_VM_QUIET=1 (no kernel boot messages), QCOW_VM_APPEND (extra kernel
# command line), KDIR, QCOW_CACHE.  Every QCOW_* variable is passed on to
# the guest script.
#
# Power cuts (tests/vm/powercut.sh):
#   QCOW_VM_SCRATCH_FILE=PATH  use PATH as the scratch disk and keep it: an
#       existing file is used as it is (not reformatted), a missing one is
#       created (QCOW_VM_SCRATCH_SIZE, ext4).  Without it the scratch disk is
#       a fresh file deleted at the end.
#   QCOW_VM_SCRATCH_NBD=SOCKET  the scratch disk is served over NBD on this
#       unix socket (tests/vm/powercut/lossy-nbd.py: a disk with a volatile
#       write cache), with cache=writeback so the guest's flushes reach it.
#   QCOW_VM_KILL_ON=ERE, QCOW_VM_KILL_DELAY=SECONDS (default 0, fractions
#       allowed)  SIGKILL qemu that long after the first console line that
#       matches ERE: a power cut.  Writes the guest's virtual disk completed
#       are in the host's page cache and survive; what only the guest's RAM
#       held (its page cache, queued requests) is lost.  Then the exit status
#       is 0 iff no kernel warning reached the console before the cut.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)

name=
verbose=${QCOW_VM_VERBOSE:-0}
while [ $# -gt 0 ]; do
	case $1 in
	--name) name=$2; shift 2 ;;
	--name=*) name=${1#--name=}; shift ;;
	-v|--verbose) verbose=1; shift ;;
	--) shift; break ;;
	-*) echo "run-vm: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
if [ $# -lt 1 ]; then
	sed -n '7p' "$0" | sed 's/^# */usage: /' >&2
	exit 2
fi
script=$(realpath "$1")
shift
[ -f "$script" ] || { echo "run-vm: no such guest script: $script" >&2; exit 2; }
name=${name:-$(basename "$script" .sh)}
case $name in
'' | */* | .*) echo "run-vm: bad --name '$name'" >&2; exit 2 ;;
esac

die() { echo "run-vm: $*" >&2; exit 1; }

# The console log as text: no CRs, no terminal escapes (SeaBIOS clears the
# screen, which would wipe the user's terminal).
clean_console() {
	sed -u -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' -e 's/\x1b[()][0-9A-Za-z]//g'
}

case "$top$script" in
*[[:space:]]*) die "paths with whitespace are not supported ($top, $script)" ;;
esac
case "$top/" in
/run/*) die "the project cannot live under /run (the guest mounts a tmpfs there)" ;;
esac

# --- which kernel -----------------------------------------------------------
if [ -z "${KDIR:-}" ]; then
	KDIR=$(printf '%s\n' /lib/modules/*/build | sort -V | tail -n 1)
fi
if [ ! -f "$KDIR/include/generated/utsrelease.h" ]; then
	die "no kernel build tree (KDIR='$KDIR'); run scripts/install-deps.sh"
fi
kver=$(sed -n 's/^#define UTS_RELEASE "\(.*\)"$/\1/p' "$KDIR/include/generated/utsrelease.h")
[ -n "$kver" ] || die "cannot read the kernel release from $KDIR"

ko=$top/drivers/block/qcow/qcow.ko
if [ -f "$ko" ]; then
	ko_ver=$(modinfo -F vermagic "$ko" | awk '{print $1}')
	[ "$ko_ver" = "$kver" ] ||
		die "$ko is built for $ko_ver but KDIR is $kver; run make module"
fi

[ -d "/lib/modules/$kver/kernel" ] || die "no modules in /lib/modules/$kver"
cache=${QCOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qcow}
mkdir -p "$cache/vm"

# Booting the bzImage spends ~3 s of TCG time in real mode and in the xz
# decompressor.  A kernel built with CONFIG_PVH can instead be loaded as the
# uncompressed ELF, straight into 64-bit code; extract it once and cache it.
pvh_kernel() {
	local bz=$1 out off tmp
	grep -qx 'CONFIG_PVH=y' "/boot/config-$kver" 2>/dev/null || return 1
	out=$cache/vm/vmlinux-$kver-$(stat -c '%s-%Y' "$bz")
	if [ ! -f "$out" ]; then
		off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$bz" | head -n 1 | cut -d: -f1)
		[ -n "$off" ] || return 1
		tmp=$(mktemp "$cache/vm/vmlinux.XXXXXX")
		# xz stops at the end of the stream; tail's SIGPIPE is no failure.
		if ! xz -dc --single-stream < <(tail -c +$((off + 1)) "$bz") > "$tmp" 2>/dev/null ||
		   [ "$(head -c 4 "$tmp" | od -An -c | tr -d ' ')" != '177ELF' ]; then
			rm -f "$tmp"
			return 1
		fi
		chmod 0644 "$tmp"
		mv "$tmp" "$out"
		find "$cache/vm" -maxdepth 1 -name "vmlinux-$kver-*" ! -name "${out##*/}" -delete
	fi
	echo "$out"
}

if [ -n "${QCOW_VM_KERNEL:-}" ]; then
	kernel=$QCOW_VM_KERNEL
else
	kernel=/boot/vmlinuz-$kver
	[ -r "$kernel" ] || die "no kernel image $kernel (install linux-image-$kver)"
	kernel=$(pvh_kernel "$kernel") || kernel=/boot/vmlinuz-$kver
fi
[ -r "$kernel" ] || die "no kernel image $kernel"

# --- initramfs: busybox + the modules that mount the host root ---------------
busybox=$(command -v busybox) || die "busybox not found (apt-get install busybox-static)"
ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked; install busybox-static"

mods=$(modprobe -a -S "$kver" --show-depends 9pnet_virtio 9p virtio_pci overlay |
	awk '$1 == "insmod" && !seen[$2]++ { print $2 }')
key=$({ echo "$kver"; echo "$mods"; cat "$here/lib/initramfs-init";
	stat -c '%s %Y' "$busybox"; } | sha256sum | cut -c1-16)
initrd=$cache/vm/initramfs-$kver-$key.cpio
if [ ! -f "$initrd" ]; then
	echo "run-vm: building $initrd"
	stage=$(mktemp -d "$cache/vm/initramfs.XXXXXX")
	mkdir -p "$stage"/{bin,dev,proc,sys,lib/modules}
	cp "$busybox" "$stage/bin/busybox"
	install -m 0755 "$here/lib/initramfs-init" "$stage/init"
	: > "$stage/modules.order"
	for m in $mods; do
		cp "$m" "$stage/lib/modules/"
		basename "$m" >> "$stage/modules.order"
	done
	(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$stage.cpio"
	rm -rf "$stage"
	mv "$stage.cpio" "$initrd"
	find "$cache/vm" -maxdepth 1 -name "initramfs-$kver-*.cpio" ! -name "${initrd##*/}" -delete
fi

# --- per-run files ------------------------------------------------------------
logdir=$top/build/vm-logs
outdir=$top/build/vm-out/$name
mkdir -p "$logdir"
rm -rf "$outdir"
mkdir -p "$outdir"
log=$logdir/$name.log

rundir=$(mktemp -d "$cache/vm/run.XXXXXX")
trap 'rm -rf "$rundir"' EXIT

scratch=${QCOW_VM_SCRATCH_FILE:-$rundir/scratch.img}
case $scratch in
*[[:space:]]*) die "QCOW_VM_SCRATCH_FILE must not contain whitespace" ;;
esac
if [ -z "${QCOW_VM_SCRATCH_NBD:-}" ] && [ ! -e "$scratch" ]; then
	truncate -s "${QCOW_VM_SCRATCH_SIZE:-4G}" "$scratch"
	mkfs.ext4 -q -F -L qcow-scratch -E lazy_itable_init=0,lazy_journal_init=0 "$scratch" ||
		die "mkfs.ext4 of the scratch disk failed"
fi

job=$rundir/job.sh
{
	echo "# qcow VM job for $name"
	while IFS= read -r v; do
		printf 'export %s=%q\n' "$v" "${!v}"
	done < <(compgen -e | grep '^QCOW_' || true)
	printf 'export QCOW_TOP=%q\n' "$top"
	printf 'export QCOW_KO=%q\n' "$ko"
	printf 'export QCOW_CTL=%q\n' "$top/userspace/qcowctl"
	printf 'export QCOW_SCRATCH=/scratch\n'
	printf 'export QCOW_VM_OUT=/run/qcow-out\n'
	printf 'export QCOW_VM_NAME=%q\n' "$name"
	printf 'export QCOW_VM_KVER=%q\n' "$kver"
	printf 'QCOW_VM_SCRIPT=%q\n' "$script"
	printf 'QCOW_VM_ARGS=('
	[ $# -eq 0 ] || printf '%q ' "$@"
	printf ')\n'
} > "$job"

# --- boot ---------------------------------------------------------------------
# shellcheck disable=SC2054 # commas inside qemu option values
case ${QCOW_VM_ACCEL:-tcg} in
tcg) accel=(-accel tcg,thread=multi -cpu "${QCOW_VM_CPU:-max}") ;;
kvm) [ -w /dev/kvm ] || die "QCOW_VM_ACCEL=kvm but /dev/kvm is not usable"
     accel=(-accel kvm -cpu host) ;;
*) die "QCOW_VM_ACCEL must be tcg or kvm" ;;
esac

scratch_drive="file=${scratch//,/,,},format=raw,if=virtio,cache=unsafe"
if [ -n "${QCOW_VM_SCRATCH_NBD:-}" ]; then
	scratch_drive="file.driver=nbd,file.server.type=unix,file.server.path=${QCOW_VM_SCRATCH_NBD//,/,,}"
	scratch_drive+=",format=raw,if=virtio,cache=writeback"
fi

append="console=ttyS0 panic=-1 oops=panic hung_task_panic=1 log_buf_len=4M"
# quiet only hides the boot messages: the guest raises the console log level
# again before it runs the script.
[ "${QCOW_VM_QUIET:-0}" = 1 ] && append+=" quiet"
append+=" qcowvm_init=$here/lib/guest-init.sh qcowvm_job=$job ${QCOW_VM_APPEND:-}"

# shellcheck disable=SC2054
qemu_cmd=(
	qemu-system-x86_64 "${accel[@]}"
	-m "${QCOW_VM_MEM:-2G}" -smp "${QCOW_VM_SMP:-2}"
	-nographic -monitor none -serial stdio -no-reboot -nic none
	-kernel "$kernel" -initrd "$initrd" -append "$append"
	-fsdev "local,path=/,security_model=none,readonly=on,multidevs=remap,id=root"
	-device virtio-9p-pci,fsdev=root,mount_tag=hostroot
	-fsdev "local,path=${outdir//,/,,},security_model=none,id=out"
	-device virtio-9p-pci,fsdev=out,mount_tag=qcowout
	-drive "$scratch_drive"
	-pidfile "$rundir/qemu.pid"
)

# QCOW_VM_KILL_ON: pass the console through, and SIGKILL qemu
# QCOW_VM_KILL_DELAY seconds after the first line matching the ERE.
# cache=unsafe above only drops the guest's flushes on the host side: a
# completed write is in the host's page cache the moment the guest sees it
# complete, so killing qemu loses exactly what a power cut loses in the guest.
kill_on=${QCOW_VM_KILL_ON:-}
kill_delay=${QCOW_VM_KILL_DELAY:-0}
[[ $kill_delay =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "QCOW_VM_KILL_DELAY must be a number of seconds"
kill_watch() {
	local line killer=
	# (a last line cut short by the kill has no newline)
	while IFS= read -r line || [ -n "$line" ]; do
		printf '%s\n' "$line"
		if [ -z "$killer" ] && [[ $line =~ $kill_on ]]; then
			{
				sleep "$kill_delay"
				pid=$(cat "$rundir/qemu.pid" 2>/dev/null) &&
					kill -0 "$pid" 2>/dev/null &&
					echo "$kill_delay" > "$rundir/killed" &&
					kill -KILL "$pid"
			} &
			killer=$!
		fi
	done
	[ -z "$killer" ] || kill "$killer" 2>/dev/null
	wait
}
console() {
	if [ -n "$kill_on" ]; then
		clean_console | kill_watch
	else
		clean_console
	fi
}

timeout_s=${QCOW_VM_TIMEOUT:-600}
t0=$EPOCHREALTIME
set +e
# (In a subshell whose stderr is dropped: after a power cut, bash would
# report the killed job there.)
if [ "$verbose" = 1 ]; then
	(timeout -k 10 "$timeout_s" "${qemu_cmd[@]}" < /dev/null 2>&1 | console | tee "$log"
	 exit "${PIPESTATUS[0]}") 2>/dev/null
	qrc=$?
else
	(timeout -k 10 "$timeout_s" "${qemu_cmd[@]}" < /dev/null 2>&1 | console > "$log"
	 exit "${PIPESTATUS[0]}") 2>/dev/null
	qrc=$?
fi
set -e
secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

rmdir "$outdir" 2>/dev/null || true	# nothing written there

# --- verdict ------------------------------------------------------------------
marker() { grep -ao "$1=[0-9a-z]*" "$log" | tail -n 1 | cut -d= -f2 || true; }
exit_marker=$(marker QCOW-VM-EXIT)
dmesg_marker=$(marker QCOW-VM-DMESG)

why=
if [ -e "$rundir/killed" ] && [ -z "$exit_marker" ]; then
	# Power cut as asked: the guest never got to check its kernel log, so
	# look for the kernel's reports on the console instead.
	# shellcheck disable=SC1091
	. "$here/lib/kernel-check.sh"
	bad=$(grep -a -E '^\[ *[0-9]+\.[0-9]+\] ' "$log" | grep -av 'ommand line' |
		grep -aE "$QCOW_DMESG_BAD" || true)
	if [ -z "$bad" ]; then
		echo "run-vm: $name: power cut $(cat "$rundir/killed")s after /$kill_on/ (${secs}s, log: ${log#"$top"/})"
		exit 0
	fi
	echo "run-vm: $name FAILED: kernel warnings before the power cut (${secs}s)" >&2
	printf '%s\n' "$bad" | sed 's/^/  /' | cat -v >&2
	exit 1
elif [ "$qrc" -eq 124 ] || [ "$qrc" -eq 137 ]; then
	why="timed out after ${timeout_s}s (QCOW_VM_TIMEOUT)"
elif [ -z "$exit_marker" ]; then
	why="guest did not report (kernel panic or qemu failure, qemu exit $qrc)"
elif [ "$exit_marker" = setup ] || [ "$exit_marker" = initramfs ]; then
	why="guest setup failed"
elif [ "$exit_marker" != 0 ]; then
	why="guest script exited with $exit_marker"
fi
if [ "$dmesg_marker" = dirty ]; then
	why+="${why:+; }the kernel log has warnings"
elif [ -z "$why" ] && [ "$dmesg_marker" != clean ]; then
	why="guest did not report on the kernel log"
fi

if [ -z "$why" ]; then
	echo "run-vm: $name passed in ${secs}s (log: ${log#"$top"/})"
	exit 0
fi

echo "run-vm: $name FAILED: $why (${secs}s)" >&2
if [ "$verbose" != 1 ]; then
	echo "run-vm: ---- last 60 console lines of ${log#"$top"/} ----" >&2
	tail -n 60 "$log" | cat -v >&2
	echo "run-vm: ---- end of console ----" >&2
fi
if [ "$dmesg_marker" = dirty ]; then
	echo "run-vm: offending kernel log lines:" >&2
	grep -a 'qcow-vm: dmesg: ' "$log" | sed 's/^.*qcow-vm: dmesg: /  /' | cat -v >&2
fi
exit 1
