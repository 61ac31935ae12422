#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Documentation/user-guide.rst, followed to the letter: every command in
# its literal blocks between ".. guide-test: begin" and ".. guide-test: end"
# ("# CMD" or "$ CMD" lines, a trailing backslash continuing one) runs in
# order, in one scratch directory, and must exit 0; where the guide shows
# output under a command, the command must print exactly that (a "..." line
# ends the comparison), except for the commands whose output changes from
# run to run (sizes of files, dates, cache hit rates), listed below.
# Prints "PASS guide/<section>" or "FAIL guide/<section>" per section of
# the guide; a failed command stops the run (what follows depends on it).
. "$QCOW_TOP/tests/vm/lib/guest-lib.sh"

guide=$QCOW_TOP/Documentation/user-guide.rst
[ -x "$QCOW_CTL" ] || fail "no qcowctl at $QCOW_CTL (make qcowctl)"
W=$QCOW_SCRATCH/guide
rm -rf "$W"
mkdir -p "$W"
cd "$W"
# the guide's commands by their short names, from the build tree
PATH=$(dirname "$QCOW_CTL"):$PATH
export PATH LC_ALL=C

# Commands whose output the guide shows as an example only.
unchecked() {
	case $1 in
	"qcowctl list"* | "du "* | "fstrim "* | "qcowctl snapshot list"* | "df "* | "resize2fs "* | \
	"qemu-img info"*) return 0 ;;
	esac
	return 1
}

# The guide as records: "C<TAB>SECTION<TAB>COMMAND" and "O<TAB>LINE" (the
# output shown under the command before it).
awk '
	/^\.\. guide-test: begin$/ { on = 1; next }
	/^\.\. guide-test: end$/ { on = 0; next }
	/^=+$/ && prev != "" && prev !~ /^=/ { section = prev }
	{ line = $0 }
	block && line != "" && line !~ /^    / { block = 0 }
	on && block && line ~ /^    [#$] / {
		cmd = substr(line, 7)
		while (cmd ~ /\\$/ && (getline nxt) > 0) {
			sub(/\\$/, "", cmd)
			sub(/^ +/, "", nxt)
			cmd = cmd nxt
		}
		printf "C\t%s\t%s\n", section, cmd
		prev = line
		next
	}
	on && block && line ~ /^    / { printf "O\t%s\n", substr(line, 5) }
	!block && line ~ /::$/ { block = 1 }
	{ prev = line }
' "$guide" >"$W/../guide.rec"
grep -c '^C' "$W/../guide.rec" | grep -qv '^0$' || fail "no commands found in $guide"

qcow_load
cleanup() {
	mountpoint -q /mnt/guest && umount /mnt/guest
	"$QCOW_CTL" detach -a >/dev/null 2>&1 || true
	[ -e /sys/module/qcow ] && rmmod qcow
	cd /
	rm -rf "$W" "$QCOW_SCRATCH/guide.rec" "$QCOW_SCRATCH/out" "$QCOW_SCRATCH/du.log"
}
trap cleanup EXIT

nfail=0
npass=0
section=
sfail=0
# end_section: report the section that just ended.
end_section() {
	[ -n "$section" ] || return 0
	if [ "$sfail" -eq 0 ]; then
		echo "PASS guide/$section"
		npass=$((npass + 1))
	else
		echo "FAIL guide/$section"
		nfail=$((nfail + 1))
	fi
}

# run_cmd: run $cmd, compare with $want (the output the guide shows).
run_cmd() {
	local rc=0 got w
	echo "\$ $cmd"
	bash -o pipefail -c "$cmd" >"$W/../out" 2>&1 || rc=$?
	# the sizes du shows, in KiB, for the trim check at the end
	[[ $cmd == "du -h disk.qcow2" ]] && du -k disk.qcow2 | cut -f1 >>"$W/../du.log"
	sed 's/^/  | /' "$W/../out"
	if [ "$rc" -ne 0 ]; then
		echo "    exit status $rc"
		return 1
	fi
	[ -n "$want" ] && ! unchecked "$cmd" || return 0
	got=$(cat "$W/../out")
	w=$want
	if grep -qx '\.\.\.' <<<"$want"; then
		w=$(sed '/^\.\.\.$/,$d' <<<"$want")
		got=$(head -n "$(wc -l <<<"$w")" <<<"$got")
	fi
	if [ "$got" != "$w" ]; then
		echo "    the guide shows:"
		# shellcheck disable=SC2001  # a prefix on every line
		sed 's/^/  | /' <<<"$w"
		return 1
	fi
}

cmd=
want=
stop=0
flush() {
	[ -n "$cmd" ] || return 0
	if [ "$stop" -eq 0 ] && ! run_cmd; then
		sfail=1
		stop=1
	fi
	cmd=
	want=
}
while IFS=$'\t' read -r kind a b; do
	case $kind in
	C)
		flush
		if [ "$a" != "$section" ]; then
			end_section
			section=$a
			sfail=0
			echo "--- $section"
		fi
		[ "$stop" -eq 1 ] && sfail=1
		cmd=$b
		;;
	O)
		want=${want:+$want$'\n'}$a
		;;
	esac
done <"$W/../guide.rec"
flush
end_section

# Trim: the image file must shrink by most of the 64 MiB file deleted (the
# guide shows du's numbers as an example only).
if [ -s "$W/../du.log" ]; then
	mapfile -t du_kib <"$W/../du.log"
	echo "du -k disk.qcow2 at the guide's du commands: ${du_kib[*]}"
	if [ "${#du_kib[@]}" -lt 2 ] || [ "${du_kib[1]}" -gt $((du_kib[0] - 48 * 1024)) ]; then
		echo "FAIL guide/trim-shrinks (the image did not shrink by 48 MiB)"
		nfail=$((nfail + 1))
	else
		echo "PASS guide/trim-shrinks"
		npass=$((npass + 1))
	fi
fi

echo "guide: $npass sections passed, $nfail failed"
[ "$nfail" -eq 0 ]
