#!/usr/bin/env bash
# kvm: the selftest on 1 and 2 vCPUs, the KVM vCPU limit, and stops that must not hang.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm

expect 0 "selftest: pass" -- run --firmware selftest --cpus 1 --mem 16M
grep -q "cpu 0/1 up, APIC ID 0" "$TMP/out" || fail "1 vCPU: no greeting from cpu 0"
grep -q "host check passed: 1 result pages" "$TMP/out" || fail "1 vCPU: host check missing"
expect 0 "selftest: pass" -- run --cpus 2 --mem 64M
for i in 0 1; do
	grep -q "cpu $i/2 up, APIC ID $i" "$TMP/out" || fail "2 vCPUs: no greeting from cpu $i"
done
grep -q "host check passed: 2 result pages" "$TMP/out" || fail "2 vCPUs: host check missing"
# RAM above the 4 GiB hole is guest_memfd too, and probed by the selftest.
expect 0 "selftest: pass" -- run --cpus 1 --mem 4100M -q

# Disks that cannot back a virtio-blk device: exit 2, naming the file and the reason.
printf 'x%.0s' $(seq 1000) >"$TMP/odd.img"
expect 2 "--disk '$TMP/nosuch.img': No such file or directory" -- run --disk "$TMP/nosuch.img"
expect 2 "--disk '$TMP/odd.img': its size, 1000 bytes, is not a positive multiple of 512" -- run --disk "$TMP/odd.img"
expect 2 "--disk '$TMP': Is a directory" -- run --disk "$TMP"
expect 2 "--disk '/dev/null': not a regular file or block device" -- run --disk /dev/null
truncate -s 1M "$TMP/ok.img"
expect 0 "virtio-blk1: 0 reads" -- run --firmware selftest --disk "$TMP/ok.img" --disk "$TMP/ok.img,ro"

max=$("$VEIL" caps --json | sed -n 's/.*"max_vcpus":\([0-9]*\).*/\1/p')
[ -n "$max" ] || fail "caps --json has no max_vcpus"
expect 2 "--cpus '$((max + 1))': too many: this host's KVM runs at most $max vCPUs per VM" -- run --cpus $((max + 1)) --mem 64M

# Firmware that fails, resets or never stops, given as flat images.
printf '\xb8\x05\x00\x00\x00\xba\x01\x05\x00\x00\xef\xf4' >"$TMP/status5.bin" # out 0x501, 5
printf '\x0f\x0b' >"$TMP/ud2.bin"                                           # no IDT: triple fault
printf '\xfa\xf4\xeb\xfc' >"$TMP/halt.bin"                                  # cli; hlt forever
printf '\xeb\xfe' >"$TMP/spin.bin"                                          # jmp .
printf '\xb0\xfe\xe6\x64\xf4' >"$TMP/i8042.bin"                            # the board's reset
expect 1 "failure status 5" -- run --firmware "$TMP/status5.bin" --cpus 2
expect 3 "guest reset \(triple fault\)" -- run --firmware "$TMP/ud2.bin"
grep -q "rip=" "$TMP/out" || fail "triple fault: no register dump"
expect 3 "stopped: guest reset \(i8042 reset\) \(exit code 3\)" -- run --firmware "$TMP/i8042.bin"

# SIGTERM/SIGINT stop vCPUs halted in the in-kernel LAPIC, or spinning, within seconds.
stop_test() { # FIRMWARE SIGNAL CODE
	checks=$((checks + 1))
	"$VEIL" run --firmware "$1" --cpus 2 >"$TMP/out" 2>&1 </dev/null &
	local pid=$! start=$SECONDS
	sleep 1
	kill -s "$2" $pid
	# Bounded: a stop that hangs fails the test instead of wedging it.
	local i
	for i in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
	kill -9 $pid 2>/dev/null
	wait $pid
	local code=$?
	[ "$code" = "$3" ] || { fail "$1 with SIG$2: exit $code, expected $3"; cat "$TMP/out" >&2; }
	[ $((SECONDS - start)) -lt 10 ] || fail "$1 with SIG$2: took $((SECONDS - start)) s"
	grep -q "stopped by" "$TMP/out" || fail "$1 with SIG$2: no stop reason"
}
stop_test "$TMP/halt.bin" TERM 143
stop_test "$TMP/spin.bin" INT 130
finish
