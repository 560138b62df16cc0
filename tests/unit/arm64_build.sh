#!/usr/bin/env bash
# unit: the generic code and arch/arm64 compile for aarch64, so the arch split stays real.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
cc=aarch64-linux-gnu-gcc
command -v $cc >/dev/null || { echo "skip: $cc is not installed" >&2; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$src"
for f in common/*.c gmem/*.c devices/*.c devices/virtio/*.c arch/arm64/*.c; do
	$cc -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$src/common" -I"$src/gmem" \
		-I"$src/devices" -I"$src/devices/virtio" -I"$src/arch" -I"$src/firmware/include" \
		-c "$f" -o "$out/$(basename "$f").o"
done
echo "aarch64: $(ls "$out" | wc -l) objects built"
