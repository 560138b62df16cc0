#!/usr/bin/env bash
# libveil.so exports the veil_* functions of include/veil.h and nothing else: every other
# name in the core is hidden (visibility) and local (version script), so an embedder's own
# symbols never collide with veil's internals.  libveil.a's global names are the same.
set -u
usage="usage: $0 path/to/libveil.so path/to/veil.h [path/to/libveil.a]"
LIB=${1:?$usage}
HDR=${2:?$usage}
ALIB=${3:-}
fails=0

if [ -n "$ALIB" ]; then
	# Its global definitions (capital nm types), which a static link would see.  An ASan
	# build also defines the LeakSanitizer hook of vmm/jail.c, which the runtime must find.
	bad=$(nm --defined-only "$ALIB" | awk 'NF == 3 && $2 ~ /^[A-Z]$/ && $3 !~ /^veil_/ { print $3 }' |
		grep -vx '__lsan_is_turned_off' | sort -u)
	[ -z "$bad" ] || { echo "FAIL: $ALIB defines global names besides veil_*:"; head -20 <<<"$bad"; fails=$((fails + 1)); }
	n=$(nm --defined-only "$ALIB" | awk 'NF == 3 && $2 ~ /^[A-Z]$/ && $3 ~ /^veil_/' | wc -l)
	[ "$n" -gt 0 ] || { echo "FAIL: $ALIB defines no veil_* function"; fails=$((fails + 1)); }
	echo "$ALIB: $n global definitions, all veil_*"
fi

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
