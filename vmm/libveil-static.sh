#!/usr/bin/env bash
# Makes libveil.a one relocatable object whose hidden names are local, so that a program linked
# statically against it sees veil's API (veil_*) and no other name of veil's, as libveil.so
# shows it.  Usage: libveil-static.sh OUT.a IN.a OBJCOPY AR CC...
set -euo pipefail
out=$1 in=$2 objcopy=$3 ar=$4
shift 4
obj=$out.o
"$@" -r -nostdlib -o "$obj" -Wl,--whole-archive "$in" -Wl,--no-whole-archive
"$objcopy" --localize-hidden "$obj"
rm -f "$out"
"$ar" rcsD "$out" "$obj"
rm -f "$obj"
