#!/usr/bin/env bash
# unit: the man page veil(1) builds from man/veil.1.scd and names every option --help names;
# the bash completion parses (bash -n) and completes commands, options and option values.
# Usage: man_completion.sh VEIL COMPLETION_FILE [MAN_PAGE] (no MAN_PAGE: scdoc was not found).
. "$(dirname "$0")/../lib/sh.sh"
COMP=${2:?usage: $0 veil completion.bash [veil.1]}
MAN=${3:-}

# Long options a command's --help lists.
help_opts() { "$VEIL" "$@" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u; }

if [ -n "$MAN" ]; then
	checks=$((checks + 1))
	[ -s "$MAN" ] || fail "$MAN is missing or empty"
	grep -q '^\.TH "veil" "1"' "$MAN" || fail "$MAN has no .TH veil 1 header"
	text=$(sed 's/\\//g' "$MAN")
	for cmd in run stress caps serve; do
		grep -q "veil $cmd" <<<"$text" || fail "the man page does not show 'veil $cmd'"
		for o in $(help_opts "$cmd"); do
			checks=$((checks + 1))
			grep -q -- "$o" <<<"$text" || fail "the man page lacks veil $cmd's $o"
		done
	done
	if command -v groff >/dev/null; then
		checks=$((checks + 1))
		groff -man -Tutf8 -ww "$MAN" >"$TMP/man.txt" 2>"$TMP/man.err" || fail "groff cannot render $MAN"
		[ ! -s "$TMP/man.err" ] || fail "groff warns: $(head -3 "$TMP/man.err")"
	fi
else
	echo "skip: the man page: scdoc was not found when the build was configured (scripts/deps installs it)"
fi

checks=$((checks + 1))
bash -n "$COMP" || fail "$COMP does not parse (bash -n)"

# completes WORDS... :: EXPECTED...: COMPREPLY for the command line WORDS (the last word is
# the one being completed) holds every EXPECTED word.
completes() {
	local words=() want=() got
	while [ $# -gt 0 ] && [ "$1" != "::" ]; do words+=("$1"); shift; done
	shift
	want=("$@")
	checks=$((checks + 1))
	got=$(bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _veil; printf "%s\n" "${COMPREPLY[@]}"' \
		sh "$COMP" "${words[@]}" 2>&1)
	for w in "${want[@]}"; do
		grep -qx -- "$w" <<<"$got" || fail "completing '${words[*]}': no '$w' in: $(echo $got)"
	done
}
completes veil "" :: run stress caps serve help
completes veil r :: run
completes veil st :: stress
completes veil help c :: caps
completes veil run --di :: --disk
completes veil run --vm-type sw :: sw-protected
completes veil run --transport "" :: mmio pci
completes veil run --firmware se :: selftest
completes veil caps --j :: --json
completes veil stress --for :: --foreign-pin
completes veil stress --rep :: --report
# Every option --help names is completed.
for cmd in run stress caps serve; do
	completes veil "$cmd" -- :: $(help_opts "$cmd")
done
finish
