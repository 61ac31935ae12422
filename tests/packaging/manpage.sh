#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Documentation/qcowctl.8:
#   manpage-lint      `groff -man -ww -z` and `man --warnings -l` print
#                     nothing (every groff warning category on);
#   manpage-sections  NAME, SYNOPSIS, DESCRIPTION, COMMANDS, OPTIONS, EXIT
#                     STATUS, FILES, EXAMPLES, SEE ALSO are there;
#   manpage-coverage  every command `userspace/qcowctl --help` lists has a
#                     subsection, every option of `qcowctl CMD --help` (and
#                     of each snapshot subcommand) appears in it, and the
#                     exit codes of qcowctl.h are listed.
# Needs groff, man (man-db) and a built userspace/qcowctl (made if missing).
# shellcheck source-path=SCRIPTDIR
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

page=$top/Documentation/qcowctl.8
need manpage-lint groff man col || exit 1

# --- lint
out=$(groff -man -ww -z "$page" 2>&1)
[ -z "$out" ] || problem "groff -man -ww -z:" "$out"
out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
[ -z "$out" ] || problem "man --warnings -l:" "$out"
verdict manpage-lint

# --- sections
text=$(LC_ALL=C.UTF-8 MANWIDTH=100 man -l "$page" 2>/dev/null | col -bx)
for s in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS "EXIT STATUS" FILES EXAMPLES "SEE ALSO"; do
	grep -qx "$s" <<<"$text" || problem "no section $s"
done
verdict manpage-sections

# --- coverage
qcowctl=$top/userspace/qcowctl
if [ ! -x "$qcowctl" ] && ! make -s -C "$top" qcowctl >"$work/build.log" 2>&1; then
	fail manpage-coverage "make qcowctl failed:" "$(tail -n 20 "$work/build.log")"
	exit 1
fi
# The subsection of one command: from "   CMD ..." to the next
# subsection or section heading.
subsection() {
	awk -v cmd="$1" '
		/^   [a-z]/ { on = ($1 == cmd) }
		/^[A-Z]/ { on = 0 }
		on' <<<"$text"
}
# options OUTPUT-OF---help: the -x and --long options it documents
options() {
	grep -oE '^ {2,6}(-[[:alnum:]], )?--[[:alnum:]][-[:alnum:]]*' | tr -d ' ,' |
		sed 's/^\(-[[:alnum:]]\)\(--\)/\1\n\2/'
}
commands=$("$qcowctl" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][-a-z0-9]*\) .*/\1/p')
[ -n "$commands" ] || problem "qcowctl --help lists no commands"
for cmd in $commands; do
	sub=$(subsection "$cmd")
	if [ -z "$sub" ]; then
		problem "command $cmd: no subsection under COMMANDS"
		continue
	fi
	# (`qcowctl help --help` asks for help on a command named --help)
	helps=()
	[ "$cmd" = help ] || helps=("$("$qcowctl" "$cmd" --help)")
	if [ "$cmd" = snapshot ]; then
		for s in $("$qcowctl" snapshot --help | sed -n '1s/^usage: [^ ]* snapshot \([a-z|]*\) .*/\1/p' | tr '|' ' '); do
			grep -q "snapshot $s" <<<"$sub" || problem "snapshot $s: not described"
			helps+=("$("$qcowctl" snapshot "$s" --help)")
		done
	fi
	for h in "${helps[@]}"; do
		for o in $(options <<<"$h"); do
			# -h/--help: OPTIONS says every command takes them
			[ "$o" = -h ] || [ "$o" = --help ] && continue
			grep -qe "$o\b" <<<"$sub" || problem "command $cmd: option $o not in its subsection"
		done
	done
done
for o in --help --version; do
	grep -qe "$o" <<<"$(awk '/^OPTIONS/,/^EXIT/' <<<"$text")" || problem "top-level option $o not under OPTIONS"
done
status=$(awk '/^EXIT STATUS/,/^FILES/' <<<"$text")
while read -r code; do
	grep -qE "^ +$code( |\$)" <<<"$status" || problem "exit status $code (qcowctl.h) not under EXIT STATUS"
done < <(sed -n 's/^#define QC_EXIT_[A-Z_]*[[:space:]]*\([0-9]*\).*/\1/p' "$top/userspace/qcowctl.h")
verdict manpage-coverage
[ "$failures" -eq 0 ]
