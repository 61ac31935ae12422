#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# DKMS with Debian's dkms against the installed Debian headers (KDIR's
# kernel), through the Makefile's targets, in a private tree: the source
# goes where /usr/src/qcow-VERSION would be but under a scratch directory,
# every dkms call gets --sourcetree/--dkmstree/--installtree there plus
# --no-depmod (make ... DKMS="dkms OPTIONS"), and the module-signing key
# dkms makes goes there too, so /usr/src, /var/lib/dkms and /lib/modules
# stay as they were (checked).
#   dkms-source   make dkms-source DESTDIR=: dkms.conf, Kbuild, Makefile,
#                 the driver and uapi sources, nothing built, nothing else
#   dkms-build    make dkms-install (dkms add, build -k KVER, install):
#                 the built qcow.ko passes the modinfo check
#                 (tests/packaging/lib.sh: version, vermagic, aliases,
#                 every parameter described)
#   dkms-install  updates/dkms/qcow.ko in the install tree, same bytes as
#                 the built one, `dkms status` says installed; depmod over
#                 that tree resolves every symbol against the headers'
#                 Module.symvers and makes the devname autoload entry;
#                 modprobe --show-depends finds it (nothing is loaded: this
#                 kernel cannot load modules)
#   dkms-remove   make dkms-uninstall: no module, no DKMS entry, no source
#   dkms-host     the host's DKMS, source and module trees untouched
set -uo pipefail
# shellcheck source-path=SCRIPTDIR
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

need dkms-build dkms make modinfo depmod modprobe || exit 1
if [ -z "$KVER" ] || [ ! -d "/lib/modules/$KVER/build" ]; then
	fail dkms-build "dkms builds against /lib/modules/KVER/build: none for KDIR=$KDIR (KVER '$KVER')"
	exit 1
fi
if [ -z "$QCOW_VERSION" ]; then
	fail dkms-source "no PACKAGE_VERSION in dkms.conf"
	exit 1
fi

hoststate() {
	ls -la /var/lib/dkms 2>&1
	ls -d /usr/src/qcow-* 2>&1
	stat -c '%n %s %Y' "/lib/modules/$KVER/modules.dep" 2>&1
	find "/lib/modules/$KVER" -name 'qcow.ko*' 2>&1
}
before=$(hoststate)

src=$work/src
tree=$work/dkms
root=$work/root
inst=$root/lib/modules
mkdir -p "$tree" "$inst/$KVER"
# dkms reads its signing key paths from framework.conf or the environment
export mok_signing_key=$work/mok.key mok_certificate=$work/mok.pub
opts=(--dkmstree "$tree" --sourcetree "$src" --installtree "$inst")

# --- the staged source
if make -s -C "$top" dkms-source DESTDIR="$work/stage" >"$work/stage.log" 2>&1; then
	s=$work/stage/usr/src/qcow-$QCOW_VERSION
	for f in dkms.conf Kbuild Makefile include/uapi/linux/qcow.h drivers/block/qcow/Makefile \
		 drivers/block/qcow/Kconfig drivers/block/qcow/qcow_main.c drivers/block/qcow/qcow2_format.c; do
		cmp -s "$top/$f" "$s/$f" || problem "$f: missing or not the tree's"
	done
	extra=$(cd "$s" && find . -type f ! -name '*.[ch]' ! -name Makefile ! -name Kconfig ! -name Kbuild ! -name dkms.conf)
	[ -z "$extra" ] || problem "unexpected files staged:" "$extra"
	built=$(cd "$s" && find . -name '*.o' -o -name '*.ko' -o -name '*.mod*' -o -name '.*.cmd')
	[ -z "$built" ] || problem "build products staged:" "$built"
	for f in "$top"/drivers/block/qcow/*.[ch]; do
		[[ $f == *.mod.c ]] && continue
		[ -f "$s/drivers/block/qcow/${f##*/}" ] || problem "not staged: ${f#"$top"/}"
	done
else
	problem "make dkms-source failed:" "$(tail -n 20 "$work/stage.log")"
fi
verdict dkms-source

# --- make dkms-install: add + build + install
ko=$tree/qcow/$QCOW_VERSION/$KVER/$(uname -m)/module/qcow.ko
dkms=(DKMS="dkms ${opts[*]} --no-depmod" DKMS_SRCDIR="$src/qcow-$QCOW_VERSION")
if ! make -C "$top" dkms-install "${dkms[@]}" >"$work/dkms-install.log" 2>&1; then
	problem "make dkms-install failed:" "$(tail -n 30 "$work/dkms-install.log")" \
		"$(tail -n 30 "$tree/qcow/$QCOW_VERSION/build/make.log" 2>/dev/null)"
fi
if [ -f "$ko" ]; then
	check_modinfo "$ko"
	grep -q '^Signing module' "$work/dkms-install.log" &&
		echo "dkms-build: signed by dkms with a scratch key: $(modinfo -F signer "$ko")"
else
	problem "dkms built no $ko"
fi
verdict dkms-build

# --- install (into the scratch install tree)
if [ ! -f "$ko" ]; then
	fail dkms-install "nothing built"
else
	m=$inst/$KVER/updates/dkms/qcow.ko
	cmp -s "$ko" "$m" || problem "$m: missing or not the built module"
	st=$(dkms status "${opts[@]}" 2>&1)
	grep -q "^qcow/$QCOW_VERSION, $KVER, $(uname -m): installed" <<<"$st" ||
		problem "dkms status: $st"
	# depmod over the scratch tree: -e -E reports every symbol the
	# module needs that the kernel (its Module.symvers) does not export
	touch "$inst/$KVER"/modules.{order,builtin,builtin.modinfo}
	out=$(depmod -b "$root" -e -E "$KDIR/Module.symvers" "$KVER" 2>&1) ||
		problem "depmod failed: $out"
	out=$(grep -v 'could not open modules' <<<"$out")
	[ -z "$out" ] || problem "depmod -e:" "$out"
	grep -qx "updates/dkms/qcow.ko:" "$inst/$KVER/modules.dep" ||
		problem "modules.dep: $(cat "$inst/$KVER/modules.dep")"
	grep -qE '^qcow qcow-control c10:[0-9]+$' "$inst/$KVER/modules.devname" ||
		problem "modules.devname has no qcow-control entry: $(cat "$inst/$KVER/modules.devname")"
	out=$(modprobe -d "$root" -S "$KVER" --show-depends qcow 2>&1)
	[ "$out" = "insmod $m " ] || [ "$out" = "insmod $m" ] || problem "modprobe --show-depends qcow: $out"
	# control: the symbol check must see a symbol the kernel lacks
	grep -v "$(printf '\tcapable\t')" "$KDIR/Module.symvers" > "$work/Module.symvers"
	out=$(depmod -b "$root" -e -E "$work/Module.symvers" "$KVER" 2>&1)
	grep -q 'needs unknown symbol capable' <<<"$out" ||
		problem "control: depmod -e did not notice a missing symbol: $out"
	verdict dkms-install
fi

# --- make dkms-uninstall: dkms remove --all, the source gone
make -C "$top" dkms-uninstall "${dkms[@]}" >"$work/dkms-uninstall.log" 2>&1 ||
	problem "make dkms-uninstall failed:" "$(tail -n 20 "$work/dkms-uninstall.log")"
[ -e "$inst/$KVER/updates/dkms/qcow.ko" ] && problem "module still installed after make dkms-uninstall"
[ -e "$tree/qcow" ] && problem "left in the DKMS tree: $(find "$tree/qcow" | head)"
[ -e "$src/qcow-$QCOW_VERSION" ] && problem "source left in $src/qcow-$QCOW_VERSION"
st=$(dkms status "${opts[@]}" 2>&1)
[ -z "$st" ] || problem "dkms status after remove: $st"
verdict dkms-remove

[ "$(hoststate)" = "$before" ] || problem "host state changed:" "$before" "now:" "$(hoststate)"
verdict dkms-host
[ "$failures" -eq 0 ]
