#!/usr/bin/env bash
# kvm: the linuxboot bzImage through `veil run --kernel`: boot_params, e820, the initrd,
# ACPI and INIT/SIPI bring-up as a kernel sees them; damaged images refused with exit 2.
. "$(dirname "$0")/../lib/sh.sh"
BZ=${2:?usage: $0 path/to/veil path/to/linuxboot.bzImage}
need_kvm

CMDLINE="console=ttyS0 veiltest=linuxboot"
# Not a multiple of 8 or of a page, so the firmware's word loop and its byte tail both run.
INITRD_SIZE=100003
python3 -c 'import sys; n = int(sys.argv[1]); sys.stdout.buffer.write(bytes((i * 7 + 3) & 0xff for i in range(n)))' \
	$INITRD_SIZE >"$TMP/initrd" || { echo "skip: cannot write the initrd (python3)" >&2; exit 77; }

# boot CPUS MEM [ARGS...]: linuxboot passes on CPUS vCPUs, and every AP reports in once.
boot() {
	local n=$1 mem=$2 i
	shift 2
	expect 0 "linuxboot: pass" -- run --kernel "$BZ" --cmdline "$CMDLINE" --cpus "$n" --mem "$mem" "$@"
	grep -q "linuxboot: FAIL" "$TMP/out" && fail "$n vCPUs, $mem: the firmware reported a failure"
	grep -q "linuxboot: MADT: $n enabled CPUs" "$TMP/out" || fail "$n vCPUs, $mem: MADT count missing"
	[ "$(grep -c 'linuxboot: AP [0-9]* up' "$TMP/out")" = $((n - 1)) ] ||
		fail "$n vCPUs, $mem: expected $((n - 1)) 'AP ... up' lines"
	for i in $(seq 1 $((n - 1))); do
		grep -q "linuxboot: AP $i up" "$TMP/out" || fail "$n vCPUs, $mem: AP $i did not report"
	done
	grep -q "linuxboot: $n CPUs up via INIT/SIPI" "$TMP/out" || fail "$n vCPUs, $mem: no CPU count"
}

for n in 1 2 3; do
	boot $n 64M --initrd "$TMP/initrd"
	grep -q "linuxboot: initrd: $INITRD_SIZE bytes at" "$TMP/out" || fail "$n vCPUs: initrd not checked"
done
cat "$TMP/out" # the 3-vCPU transcript, for the log
# Without an initrd; and with the LAPIC's gigabyte already in veil's page tables (RAM above 4 GiB).
boot 1 64M
grep -q "linuxboot: no initrd" "$TMP/out" || fail "no initrd: not reported"
boot 2 4100M -q

# The firmware notices what veil would get wrong.
cp "$TMP/initrd" "$TMP/initrd.bad"
printf '\xff' | dd of="$TMP/initrd.bad" bs=1 seek=77777 conv=notrunc status=none
expect 1 "linuxboot: FAIL initrd byte 77777 " -- run --kernel "$BZ" --initrd "$TMP/initrd.bad" \
	--cmdline "$CMDLINE" --mem 64M
expect 1 "linuxboot: FAIL the command line .* lacks veiltest=linuxboot" -- run --kernel "$BZ" \
	--cmdline "console=ttyS0" --mem 64M

# Damaged images, through the real CLI: refused before the guest runs.
damaged() { # NAME OFFSET BYTES: a copy of the bzImage with BYTES (printf escapes) at OFFSET
	cp "$BZ" "$TMP/$1"
	printf "$3" | dd of="$TMP/$1" bs=1 seek=$(($2)) conv=notrunc status=none
}
head -c $(($(stat -c %s "$BZ") / 2)) "$BZ" >"$TMP/half"
expect 2 "--kernel '.*half': truncated" -- run --kernel "$TMP/half"
damaged nohdrs 0x202 '\0\0\0\0'
expect 2 "--kernel '.*nohdrs': not a Linux kernel" -- run --kernel "$TMP/nohdrs"
damaged old 0x206 '\0\2'
expect 2 "--kernel '.*old': boot protocol 2.00 is too old" -- run --kernel "$TMP/old"
damaged no64 0x236 '\0\0'
expect 2 "--kernel '.*no64': .*64-bit" -- run --kernel "$TMP/no64"
head -c 4096 /dev/urandom >"$TMP/random"
expect 2 "--kernel '.*random': not a Linux kernel" -- run --kernel "$TMP/random"
long=$(printf '%*s' 2048 '' | tr ' ' x)
expect 2 "--cmdline is 2048 bytes; this kernel takes at most 2047" -- run --kernel "$BZ" \
	--cmdline "$long"
finish
