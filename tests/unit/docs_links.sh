#!/usr/bin/env bash
# unit: README.md and docs/ point only inside the repository: every relative link resolves to a
# file of the tree, and nothing names the folder beside it (../shared) or an absolute path.
set -u
SRC=${1:?usage: $0 SOURCE_ROOT}
fails=0
checks=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

for f in "$SRC/README.md" "$SRC"/docs/*.md "$SRC/man/veil.1.scd"; do
	[ -e "$f" ] || continue
	rel=${f#"$SRC"/}
	checks=$((checks + 1))
	if grep -nE '\.\./shared|/work/|\.\./(seeds|kernels|peer-tests)/' "$f"; then
		fail "$rel points outside the repository"
	fi
	# [text](target): targets that are not URLs or in-page anchors must exist.
	while IFS= read -r target; do
		target=${target%%#*}
		[ -n "$target" ] || continue
		checks=$((checks + 1))
		[ -e "$(dirname "$f")/$target" ] || fail "$rel links to $target, which does not exist"
		case $(readlink -m "$(dirname "$f")/$target") in
		"$(readlink -m "$SRC")"/*) ;;
		*) fail "$rel links to $target, outside the repository" ;;
		esac
	done < <(grep -oE '\]\([^)]+\)' "$f" | sed -E 's/^\]\(//; s/\)$//' | grep -vE '^(https?:|mailto:|#)')
done
echo "$checks checks, $fails failed"
[ "$fails" -eq 0 ]
