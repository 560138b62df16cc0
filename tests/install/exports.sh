#!/usr/bin/env bash
# libveil.so exports the veil_* functions of include/veil.h and nothing else: every other
# name in the core is hidden (visibility) and local (version script), so an embedder's own
# symbols never collide with veil's internals.
set -u
LIB=${1:?usage: $0 path/to/libveil.so path/to/veil.h}
HDR=${2:?usage: $0 path/to/libveil.so path/to/veil.h}
fails=0

syms=$(nm -D --defined-only "$LIB" | awk '{ print $NF }' | sort -u)
[ -n "$syms" ] || { echo "FAIL: $LIB exports nothing"; exit 1; }
while read -r s; do
	case $s in
	veil_*) ;;
	*) echo "FAIL: $LIB exports $s"; fails=$((fails + 1)) ;;
	esac
done <<<"$syms"

# Every function the header declares is there, and every export is declared in the header.
declared=$(grep -oE '^VEIL_EXPORT [^(]*\bveil_[a-z_0-9]+\(' "$HDR" | grep -oE 'veil_[a-z_0-9]+\($' |
	tr -d '(' | sort -u)
[ -n "$declared" ] || { echo "FAIL: no VEIL_EXPORT function found in $HDR"; exit 1; }
for f in $declared; do
	grep -qx "$f" <<<"$syms" || { echo "FAIL: $f is declared in veil.h but not exported"; fails=$((fails + 1)); }
done
for s in $(grep '^veil_' <<<"$syms"); do
	grep -qx "$s" <<<"$declared" || { echo "FAIL: $s is exported but not declared in veil.h"; fails=$((fails + 1)); }
done

echo "$(wc -l <<<"$syms") symbols exported, $(wc -w <<<"$declared") declared, $fails problems"
[ "$fails" -eq 0 ]
