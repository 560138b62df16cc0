#!/usr/bin/env bash
# unit: every folder of veil's C (but x86's arch code and firmware) and the arm64 firmware
# compile for aarch64, so the arch split stays real.  Library headers come from the host's
# /usr/include, which Debian's cross gcc searches after its own: liburing's, libseccomp's,
# libfdt's, json-c's and http-parser's do not depend on the architecture.
# (tests/nested/arm64.sh links it all.)
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
cc=aarch64-linux-gnu-gcc
command -v $cc >/dev/null || { echo "skip: $cc is not installed" >&2; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cd "$src"
for f in common/*.c gmem/*.c devices/*.c devices/virtio/*.c arch/arm64/*.c vmm/*.c vmm/harness/*.c \
	vmm/api/*.c firmware/none.c; do
	$cc -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I"$src/common" -I"$src/gmem" \
		-I"$src/devices" -I"$src/devices/virtio" -I"$src/arch" -I"$src/firmware/include" \
		-I"$src/firmware" -I"$src/vmm" -I"$src/vmm/harness" -I"$src/vmm/api" -I"$src/include" \
		-c "$f" -o "$out/$(dirname "$f" | tr / _)_$(basename "$f").o"
done
# The arm64 firmware guests, freestanding, as firmware/meson.build builds them.
for f in firmware/arm64/entry.S firmware/arm64/fwlib.c firmware/arm64/refusal.c firmware/common/*.c; do
	$cc -std=gnu11 -O2 -Wall -Wextra -Werror -ffreestanding -fno-pic -fno-stack-protector \
		-mgeneral-regs-only -mno-outline-atomics -fno-builtin -I"$src/firmware/include" \
		-I"$src/firmware/arm64" -I"$src/firmware/common" \
		-c "$f" -o "$out/fw_$(basename "$f").o"
done
echo "aarch64: $(ls "$out" | wc -l) objects built"
