#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# packaging/bash-completion/qcowctl, sourced into this shell; _qcowctl is
# called with COMP_WORDS/COMP_CWORD set as bash sets them and COMPREPLY is
# compared with what it must be:
#   completion-lint      bash -n and shellcheck
#   completion-commands  the commands and top-level options, from the
#                        binary's --help; every command has an operand rule
#   completion-options   per command and snapshot subcommand: exactly the
#                        options its --help documents; option values
#                        (nothing for SIZE, the words for "-r leaks")
#   completion-operands  IMAGE (files), DEV (attached devices and images),
#                        snapshot NAME|ID (names of that device's
#                        snapshots), COMMAND of help, nothing where no
#                        operand goes
#   completion-bash-completion  the same file cases with bash-completion's
#                        _filedir (how it runs for users)
# A stub qcowctl on PATH answers `list --json` and `snapshot list --json
# DEV` with canned JSON (no module here) and hands everything else to the
# real userspace/qcowctl.
# shellcheck source-path=SCRIPTDIR
set -o pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

compfile=$top/packaging/bash-completion/qcowctl
real=$top/userspace/qcowctl

# --- lint
need completion-lint shellcheck || exit 1
out=$(bash -n "$compfile" 2>&1) || problem "bash -n: $out"
out=$(shellcheck -s bash "$compfile" 2>&1) || problem "shellcheck:" "$out"
verdict completion-lint

if [ ! -x "$real" ] && ! make -s -C "$top" qcowctl >"$work/build.log" 2>&1; then
	fail completion-commands "make qcowctl failed:" "$(tail -n 20 "$work/build.log")"
	exit 1
fi

# --- the stub and a directory of files
mkdir -p "$work/bin" "$work/img/sub"
touch "$work/img/a.qcow2" "$work/img/b.img" "$work/img/sub/c.qcow2"
cat > "$work/list.json" <<'JSON'
{
  "devices": [
    {
      "device": "/dev/qcow0",
      "index": 0,
      "image": "/images/vm.qcow2",
      "backing": [
        {
          "format": "qcow2",
          "filename": "/images/base.qcow2"
        }
      ],
      "virtual-size": 1073741824,
      "read-only": false
    },
    {
      "device": "/dev/qcow3",
      "index": 3,
      "image": "/images/my disk \"x\".qcow2",
      "backing": [],
      "virtual-size": 1048576,
      "read-only": true
    }
  ]
}
JSON
snaps() { # NAME...: the JSON of `snapshot list --json` with these names
	local i=0 sep='' n
	echo '['
	for n in "$@"; do
		i=$((i + 1))
		printf '%s  {\n    "id": "%d",\n    "name": "%s",\n    "date_sec": 1,\n    "disk_size": 1048576\n  }' "$sep" "$i" "$n"
		sep=$',\n'
	done
	printf '\n]\n'
}
snaps before 'my snap' 'with \"quote\"' > "$work/snaps0.json"
snaps other > "$work/snaps3.json"
cat > "$work/bin/qcowctl" <<STUB
#!/bin/bash
case "\$*" in
"list --json") cat "$work/list.json" ;;
"snapshot list --json /dev/qcow0" | "snapshot list --json /images/vm.qcow2") cat "$work/snaps0.json" ;;
"snapshot list --json /dev/qcow3") cat "$work/snaps3.json" ;;
"list --json"* | "snapshot list --json"*) echo "stub: unexpected \$*" >&2; exit 1 ;;
*) exec "$real" "\$@" ;;
esac
STUB
chmod +x "$work/bin/qcowctl"
stub=$work/bin/qcowctl

# shellcheck source=/dev/null  # linted on its own above
. "$compfile"

# comp WORD...: run the completion with the cursor at the end of the last
# word; $got is COMPREPLY, sorted, one per line.
comp() {
	COMP_WORDS=("$@")
	COMP_CWORD=$(($# - 1))
	COMP_LINE="$*"
	COMP_POINT=${#COMP_LINE}
	COMPREPLY=()
	_qcowctl
	got=$(printf '%s\n' "${COMPREPLY[@]}" | sed '/^$/d' | sort)
}

# expect WANT... -- WORD...: COMPREPLY must be the words WANT (in any
# order); a mismatch is a problem.
expect() {
	local -a want=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		want+=("$1")
		shift
	done
	shift
	comp "$@"
	local w
	w=$(printf '%s\n' "${want[@]}" | sed '/^$/d' | sort)
	[ "$got" = "$w" ] ||
		problem "completing [$*]: got [$(tr '\n' ' ' <<<"$got")], want [$(tr '\n' ' ' <<<"$w")]"
}

# --- commands
commands=$("$real" --help | sed -n '/^commands:/,/^$/s/^  \([a-z][-a-z0-9]*\) .*/\1/p')
[ -n "$commands" ] || problem "qcowctl --help lists no commands"
mapfile -t cmds <<<"$commands"
for c in attach detach list snapshot resize info check features help; do
	grep -qx "$c" <<<"$commands" || problem "qcowctl --help does not list $c"
done
expect "${cmds[@]}" -- "$stub" ''
PATH=$work/bin:$PATH expect "${cmds[@]}" -- qcowctl-not-in-path-so-the-stub-is-used ''
expect attach -- "$stub" at
expect snapshot -- "$stub" sn
expect --help --version -- "$stub" -
expect --version -- "$stub" --v
expect -- "$stub" nosuchcommand
for c in $commands; do
	_qcowctl_knows "$c" || problem "no operand rule for command $c in the completion (_qcowctl_knows)"
done
verdict completion-commands

# --- options
# opts_of CMD...: the options CMD's --help documents; with "long", only
# the long ones.
opts_of() {
	local long=$1
	shift
	"$real" "$@" --help | grep -oE '^ {2,6}(-[[:alnum:]], )?--[[:alnum:]][-[:alnum:]]*' |
		tr -d ' ,' | sed 's/^\(-[[:alnum:]]\)\(--\)/\1\n\2/' |
		{ if [ "$long" = long ]; then grep -e '^--'; else cat; fi; }
}
for c in $commands; do
	[ "$c" = help ] && continue
	if [ "$c" = snapshot ]; then
		for s in create list apply delete; do
			mapfile -t want < <(opts_of all snapshot "$s")
			expect "${want[@]}" -- "$stub" snapshot "$s" -
			mapfile -t want < <(opts_of long snapshot "$s")
			expect "${want[@]}" -- "$stub" snapshot "$s" --
		done
		continue
	fi
	mapfile -t want < <(opts_of all "$c")
	expect "${want[@]}" -- "$stub" "$c" -
	mapfile -t want < <(opts_of long "$c")
	expect "${want[@]}" -- "$stub" "$c" --
done
expect -r --read-only -U --force-share -P --partscan --cache-size -f --find -d --device --show -h --help -- "$stub" attach -
expect --read-only -- "$stub" attach --rea
expect -j --json -h --help -- "$stub" snapshot list -
expect -l --lazy -a --all -h --help -- "$stub" detach -
# a value: --cache-size SIZE takes the next word
expect -- "$stub" attach --cache-size ''
expect "$work/img/a.qcow2" -- "$stub" attach --cache-size 64M "$work/img/a"
expect "$work/img/a.qcow2" -- "$stub" attach -r -P "$work/img/a"
# a placeholder value: attach -d DEV; then IMAGE, also after "attach DEV"
expect -- "$stub" attach -d ''
expect "$work/img/a.qcow2" -- "$stub" attach -d /dev/qcow3 "$work/img/a"
expect "$work/img/a.qcow2" -- "$stub" attach /dev/qcow3 "$work/img/a"
expect "$work/img/a.qcow2" -- "$stub" attach -r 3 "$work/img/a"
expect -- "$stub" attach "$work/img/b.img" "$work/img/a"
expect -j --json -n --noheadings -o --output --output-all -b --bytes -h --help -- "$stub" list -
# list -o COLUMNS: the columns list --help names, the last of a comma list
mapfile -t cols < <("$real" list --help | sed -n '/^Columns/,$s/^  \([A-Z][A-Z%]*\) .*/\1/p')
[ "${#cols[@]}" -ge 9 ] || problem "list --help names ${#cols[@]} columns"
expect "${cols[@]}" -- "$stub" list -o ''
expect "${cols[@]}" -- "$stub" list --output ''
expect DEVICE,SIZE DEVICE,STOPPED -- "$stub" list -o DEVICE,S
expect +VERSION -- "$stub" list -n -o +v
expect OPEN -- "$stub" list -o op
# a value from a word list: check -r leaks
expect leaks -- "$stub" check -r ''
expect leaks -- "$stub" check --repair l
expect "$work/img/a.qcow2" -- "$stub" check -r leaks "$work/img/a"
verdict completion-options

# --- operands
expect "$work/img/a.qcow2" "$work/img/b.img" "$work/img/sub" -- "$stub" attach "$work/img/"
expect "$work/img/a.qcow2" -- "$stub" info "$work/img/a"
expect -- "$stub" attach "$work/img/a.qcow2" "$work/img/"
expect /dev/qcow0 /dev/qcow3 /images/vm.qcow2 '/images/my\ disk\ \"x\".qcow2' -- "$stub" detach ''
expect /dev/qcow0 /dev/qcow3 -- "$stub" detach /dev/q
expect /dev/qcow3 -- "$stub" detach /dev/qcow0 /dev/qcow3
expect '/images/my\ disk\ \"x\".qcow2' -- "$stub" detach /images/my
expect /dev/qcow0 /dev/qcow3 -- "$stub" resize ''
expect -- "$stub" resize /dev/qcow0 ''
expect -- "$stub" list ''
expect -- "$stub" features ''
expect create list apply delete -- "$stub" snapshot ''
expect apply -- "$stub" snapshot ap
expect /dev/qcow0 /dev/qcow3 /images/vm.qcow2 '/images/my\ disk\ \"x\".qcow2' -- "$stub" snapshot apply ''
expect before 'my\ snap' 'with\ \"quote\"' -- "$stub" snapshot apply /dev/qcow0 ''
expect before -- "$stub" snapshot delete /dev/qcow0 b
expect 'my\ snap' -- "$stub" snapshot delete /dev/qcow0 my
expect before 'my\ snap' 'with\ \"quote\"' -- "$stub" snapshot apply /images/vm.qcow2 ''
expect other -- "$stub" snapshot apply /dev/qcow3 ''
expect -- "$stub" snapshot create /dev/qcow0 ''
expect -- "$stub" snapshot list /dev/qcow0 ''
expect -- "$stub" snapshot apply /dev/qcow0 before ''
expect "${cmds[@]}" -- "$stub" help ''
expect snapshot -- "$stub" help sn
expect -- "$stub" help snapshot ''
verdict completion-operands

# --- with bash-completion's helpers, as users run it
bc=/usr/share/bash-completion/bash_completion
if [ ! -r "$bc" ]; then
	fail completion-bash-completion "no $bc (scripts/install-deps.sh installs bash-completion)"
else
	# shellcheck source=/dev/null
	. "$bc"
	declare -F _filedir >/dev/null || problem "bash-completion defines no _filedir"
	expect "$work/img/a.qcow2" "$work/img/b.img" "$work/img/sub" -- "$stub" attach "$work/img/"
	expect "$work/img/sub/c.qcow2" -- "$stub" check "$work/img/sub/"
	expect before -- "$stub" snapshot apply /dev/qcow0 be
	verdict completion-bash-completion
fi
[ "$failures" -eq 0 ]
