#!/usr/bin/env bash
# unit: arm64's device tree decompiled with dtc (Debian's device-tree-compiler) and compared
# node by node with tests/unit/arm64_fdt.dts: every node there, with exactly its properties (in
# any order), and no other node.  dtc's own checks may warn only of what is listed below.
# Usage: arm64_fdt_dtc.sh TEST_ARM64_FDT EXPECTED.dts.  Exit 77 (skip) without dtc.
set -euo pipefail
exe=$1 expected=$2
command -v dtc >/dev/null || { echo "arm64-fdt-dtc: skip: no dtc (scripts/deps installs device-tree-compiler)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$exe" --dump "$tmp/veil.dtb"
dtc -I dtb -O dts -o "$tmp/veil.dts" "$tmp/veil.dtb" 2>"$tmp/warnings"
# The GIC node has no #address-cells: Linux needs it only with ITS children or interrupt-map
# users, neither of which veil's tree has.
known='Warning \(interrupt_provider\): /intc@[0-9a-f]+: Missing #address-cells in interrupt provider'
fails=0
while IFS= read -r w; do
	[ -n "$w" ] || continue
	if [[ $w =~ $known ]]; then echo "arm64-fdt-dtc: dtc (known): $w"
	else echo "arm64-fdt-dtc: FAIL: dtc warns: $w"; fails=$((fails + 1)); fi
done <"$tmp/warnings"

# nodes FILE: one "PATH<TAB>PROPERTY LINE" per property, comments and blank lines dropped.
nodes() {
	sed -e 's://.*$::' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$1" | awk '
		/^$/ || /^\/dts-v1\/;$/ { next }
		/\{$/ {
			n = $0; sub(/[[:space:]]*\{$/, "", n)
			path[++d] = (d == 1 ? "/" : (d == 2 ? "/" n : path[d - 1] "/" n))
			print path[d] "\t(node)"
			next
		}
		/^\};$/ { d--; next }
		{ print path[d] "\t" $0 }' | LC_ALL=C sort
}
nodes "$expected" >"$tmp/want"
nodes "$tmp/veil.dts" >"$tmp/got"
n=0
for p in $(cut -f1 "$tmp/want" "$tmp/got" | LC_ALL=C sort -u); do
	n=$((n + 1))
	w=$(awk -F'\t' -v p="$p" '$1 == p' "$tmp/want")
	g=$(awk -F'\t' -v p="$p" '$1 == p' "$tmp/got")
	if [ -z "$g" ]; then echo "arm64-fdt-dtc: FAIL: node $p is missing"; fails=$((fails + 1)); continue; fi
	if [ -z "$w" ]; then echo "arm64-fdt-dtc: FAIL: node $p is not expected"; fails=$((fails + 1)); continue; fi
	if [ "$w" = "$g" ]; then
		echo "arm64-fdt-dtc: ok: $p ($(($(wc -l <<<"$g") - 1)) properties)"
	else
		echo "arm64-fdt-dtc: FAIL: node $p differs (- expected, + veil's):"
		diff <(cut -f2 <<<"$w") <(cut -f2 <<<"$g") | sed -n -e 's/^< /    - /p' -e 's/^> /    + /p' || true
		fails=$((fails + 1))
	fi
done
[ "$n" -ge 12 ] || { echo "arm64-fdt-dtc: FAIL: only $n nodes parsed"; fails=$((fails + 1)); }
[ "$fails" = 0 ] || { echo "arm64-fdt-dtc: $fails failure(s); veil's tree: $(cat "$tmp/veil.dts")"; exit 1; }
echo "arm64-fdt-dtc: all $n nodes as expected"
