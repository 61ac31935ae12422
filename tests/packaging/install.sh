#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# make install / make uninstall into a DESTDIR, and the udev rule:
#   install-files       PREFIX=/usr: exactly these files, these modes, the
#                       same bytes as the tree's (module, qcowctl, man page,
#                       completion, udev rule); the installed qcowctl runs;
#                       no depmod output in DESTDIR and the host's
#                       /lib/modules/KVER untouched
#   install-prefix      the default PREFIX=/usr/local, and SBINDIR= etc.
#   install-uninstall   make uninstall DESTDIR= removes every file
#   install-consumers   bash-completion's loader finds the completion and
#                       man finds the page where they were installed
#   udev-rules          the rule parses without a complaint from udev's own
#                       parser (`udevadm test` in a private mount namespace,
#                       rules dir on a tmpfs; a broken copy must draw one, as
#                       a control), and says what the documentation says:
#                       qcow-control root:root 0600 (+ static_node),
#                       qcowN and qcowNpM root:disk 0660
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

need install-files make install cmp stat || exit 1
if [ -z "$KVER" ]; then
	fail install-files "no kernel release in KDIR=$KDIR (include/generated/utsrelease.h)"
	exit 1
fi

# host state that a DESTDIR install must not touch
hoststate() {
	stat -c '%n %s %Y' "/lib/modules/$KVER/modules.dep" 2>/dev/null
	ls -d "/lib/modules/$KVER/extra" 2>/dev/null
}
before=$(hoststate)

# files DIR: "mode path" of every file and symlink under DIR, sorted
files() {
	(cd "$1" && find . \( -type f -o -type l \) -printf '%m %P\n' | sort -k2)
}

# --- PREFIX=/usr
d=$work/usr
if ! make -s -C "$top" install DESTDIR="$d" PREFIX=/usr >"$work/install.log" 2>&1; then
	fail install-files "make install DESTDIR=$d PREFIX=/usr failed:" "$(tail -n 20 "$work/install.log")"
	exit 1
fi
want="644 lib/modules/$KVER/extra/qcow.ko
755 usr/sbin/qcowctl
644 usr/share/man/man8/qcowctl.8
644 usr/share/bash-completion/completions/qcowctl
644 usr/lib/udev/rules.d/60-qcow.rules"
want=$(sort -k2 <<<"$want")
got=$(files "$d")
[ "$got" = "$want" ] || problem "installed files:" "$got" "want:" "$want"
for pair in drivers/block/qcow/qcow.ko:lib/modules/$KVER/extra/qcow.ko \
	    userspace/qcowctl:usr/sbin/qcowctl \
	    Documentation/qcowctl.8:usr/share/man/man8/qcowctl.8 \
	    packaging/bash-completion/qcowctl:usr/share/bash-completion/completions/qcowctl \
	    packaging/udev/60-qcow.rules:usr/lib/udev/rules.d/60-qcow.rules; do
	cmp -s "$top/${pair%%:*}" "$d/${pair#*:}" || problem "${pair#*:} differs from ${pair%%:*}"
done
v=$("$d/usr/sbin/qcowctl" --version 2>&1) || problem "installed qcowctl --version failed: $v"
[[ $v == qcowctl* ]] || problem "installed qcowctl --version: '$v'"
grep -q 'not running depmod' "$work/install.log" || problem "make install with DESTDIR did not say it skips depmod"
ls "$d/lib/modules/$KVER"/modules.* >/dev/null 2>&1 && problem "depmod ran into DESTDIR"
[ "$(hoststate)" = "$before" ] || problem "the host's /lib/modules/$KVER changed:" "$before" "now:" "$(hoststate)"
verdict install-files

# --- default PREFIX, and one directory variable overridden
p=$work/local
if make -s -C "$top" install DESTDIR="$p" BASHCOMPDIR=/etc/bash_completion.d >"$work/install2.log" 2>&1; then
	want="644 lib/modules/$KVER/extra/qcow.ko
755 usr/local/sbin/qcowctl
644 usr/local/share/man/man8/qcowctl.8
644 etc/bash_completion.d/qcowctl
644 usr/local/lib/udev/rules.d/60-qcow.rules"
	want=$(sort -k2 <<<"$want")
	got=$(files "$p")
	[ "$got" = "$want" ] || problem "installed files:" "$got" "want:" "$want"
else
	problem "make install DESTDIR=$p failed:" "$(tail -n 20 "$work/install2.log")"
fi
verdict install-prefix

# --- uninstall
if make -s -C "$top" uninstall DESTDIR="$d" PREFIX=/usr >"$work/uninstall.log" 2>&1; then
	got=$(files "$d")
	[ -z "$got" ] || problem "left after make uninstall:" "$got"
else
	problem "make uninstall failed:" "$(tail -n 20 "$work/uninstall.log")"
fi
[ "$(hoststate)" = "$before" ] || problem "the host's /lib/modules/$KVER changed"
verdict install-uninstall

# --- the completion and the man page where their readers look
# (reinstall: the uninstall above emptied $d)
make -s -C "$top" install DESTDIR="$d" PREFIX=/usr >"$work/install3.log" 2>&1 ||
	problem "make install (again) failed:" "$(tail -n 20 "$work/install3.log")"
bc=/usr/share/bash-completion/bash_completion
if [ -r "$bc" ]; then
	# bash-completion's loader searches $XDG_DATA_DIRS/bash-completion/completions
	out=$(XDG_DATA_DIRS=$d/usr/share bash -c '. "$1" && __load_completion qcowctl && complete -p qcowctl' _ "$bc" 2>&1)
	[ "$out" = "complete -F _qcowctl qcowctl" ] ||
		problem "bash-completion did not load the installed completion: $out"
else
	problem "no $bc (scripts/install-deps.sh installs bash-completion)"
fi
if command -v man >/dev/null; then
	out=$(MANWIDTH=80 man -M "$d/usr/share/man" 8 qcowctl 2>&1 | head -n 5)
	grep -qE 'qcowctl +- +attach qcow2 images' <<<"$(col -bx <<<"$out")" ||
		problem "man -M DESTDIR/usr/share/man 8 qcowctl:" "$out"
else
	problem "man is not installed (scripts/install-deps.sh installs man-db)"
fi
verdict install-consumers

# --- udev rule
rules=$top/packaging/udev/60-qcow.rules

# udev_complaints FILE: what udev's rule parser says about FILE (as
# /run/udev/rules.d/60-qcow.rules, on a tmpfs in a private mount namespace
# so the host's /run is untouched).  The device path does not exist on
# purpose: `udevadm test` loads every rule before it looks for the device,
# and stops there, before it could change anything under /dev.
# Returns 2 when the parser could not be run.
udev_complaints() {
	local out
	# shellcheck disable=SC2016  # expanded by the inner bash
	out=$(unshare -m bash -c '
		mount -t tmpfs qcow-udev-test /run || exit 2
		mkdir -p /run/udev/rules.d && cp "$1" /run/udev/rules.d/60-qcow.rules || exit 2
		udevadm test --action=add /sys/devices/virtual/qcow-no-such-device 2>&1' _ "$1")
	grep -q '^Reading rules file: /run/udev/rules.d/60-qcow.rules$' <<<"$out" || return 2
	grep '^/run/udev/rules.d/60-qcow.rules:' <<<"$out"
	return 0
}

if command -v udevadm >/dev/null && command -v unshare >/dev/null &&
	udev_complaints "$rules" >"$work/udev.out"; then
	[ -s "$work/udev.out" ] && problem "udev's parser on 60-qcow.rules:" "$(cat "$work/udev.out")"
	# control: a typo must draw a complaint, or the check above checks nothing
	sed 's/MODE="0600"/MODE="0600", GROUPP="disk"/' "$rules" > "$work/broken.rules"
	udev_complaints "$work/broken.rules" > "$work/udev-broken.out"
	grep -q "Invalid key 'GROUPP'" "$work/udev-broken.out" ||
		problem "udev's parser did not flag a broken copy of the rule:" "$(cat "$work/udev-broken.out")"
	echo "udev-rules: parsed by udevadm test ($(udevadm --version))"
else
	# No udevadm, or no mount namespace (unprivileged): the strict
	# grep below is all there is.
	echo "udev-rules: udevadm test not usable here; syntax by grep only"
	while IFS= read -r line; do
		[[ $line =~ ^[[:space:]]*(#|$) ]] && continue
		[[ $line =~ ^([A-Z]+(\{[^}]*\})?(==|!=|=|\+=|:=)\"[^\"]*\"(,[[:space:]]*|$))+$ ]] ||
			problem "not a udev rule line: $line"
		for k in $(grep -oE '(^|, *)[A-Z]+' <<<"$line" | tr -d ', '); do
			[[ " ACTION DEVPATH KERNEL KERNELS SUBSYSTEM SUBSYSTEMS DRIVER DRIVERS ATTR ATTRS ENV TAG TAGS NAME SYMLINK OWNER GROUP MODE OPTIONS RUN PROGRAM IMPORT " == *" $k "* ]] ||
				problem "unknown udev key $k in: $line"
		done
	done < "$rules"
fi
# what the rules say, key by key (order within a line is free)
has() { # LINE-PATTERN KEY...: one rule line matching the pattern has every KEY
	local line k ok
	while IFS= read -r line; do
		[[ $line == *"$1"* ]] || continue
		ok=1
		for k in "${@:2}"; do
			[[ $line == *"$k"* ]] || ok=0
		done
		((ok)) && return 0
	done < "$rules"
	return 1
}
has 'KERNEL=="qcow-control"' 'SUBSYSTEM=="misc"' 'OWNER="root"' 'GROUP="root"' 'MODE="0600"' \
	'OPTIONS+="static_node=qcow-control"' || problem "no rule making qcow-control root:root 0600 with static_node"
has 'KERNEL=="qcow[0-9]*"' 'SUBSYSTEM=="block"' 'GROUP="disk"' 'MODE="0660"' ||
	problem "no rule making qcowN root:disk 0660"
# udev matches KERNEL with fnmatch(3), as bash's [[ == ]] does
for n in qcow0 qcow15 qcow0p1 qcow12p15; do
	[[ $n == qcow[0-9]* ]] || problem "KERNEL==\"qcow[0-9]*\" does not match $n"
done
[[ qcow-control == qcow[0-9]* ]] && problem "the block rule would match qcow-control"
verdict udev-rules
[ "$failures" -eq 0 ]
