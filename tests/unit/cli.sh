#!/usr/bin/env bash
# unit: every bad command line that needs no KVM exits 2 with a message naming the bad value.
. "$(dirname "$0")/../lib/sh.sh"

printf '' >"$TMP/empty.bin"
mkdir "$TMP/dir"

expect 2 "usage: veil" -- 
expect 2 "unknown command 'frobnicate'" -- frobnicate
expect 2 "unknown option '--frob'" -- run --frob
expect 2 "unknown option '--refresh'" -- run --refresh # a caps option
expect 2 "unexpected argument 'extra'" -- run extra
expect 2 "'--mem' needs a value" -- run --mem
expect 2 "--firmware 'nosuch': no built-in firmware .*selftest" -- run --firmware nosuch
expect 2 "--firmware '/nonexistent/fw.bin': No such file" -- run --firmware /nonexistent/fw.bin
expect 2 "--firmware '$TMP/empty.bin': the file is empty" -- run --firmware "$TMP/empty.bin"
expect 2 "--firmware '$TMP/dir': a directory, not a file" -- run --firmware "$TMP/dir"
expect 2 "--cpus '0': a VM needs at least 1 vCPU" -- run --cpus 0
expect 2 "--disk 'x.img,rw': unknown option 'rw' \(ro, direct, queues=N\)" -- run --disk x.img,rw
expect 2 "--disk ',ro': no file name" -- run --disk ,ro
expect 2 "--disk: at most 4 disks" -- run --disk a --disk b --disk c --disk d --disk e
expect 2 "--convert-stress needs a --disk" -- run --convert-stress
expect 2 "--console 'hvc': serial or virtio" -- run --console hvc
expect 2 "--transport 'isa': mmio or pci" -- run --transport isa
expect 2 "--seccomp 'strict': on or off" -- run --seccomp strict
expect 2 "--check-stride '0': not a number from 1 to 512" -- run --firmware conversions --check-stride 0
expect 2 "--check-stride '513': not a number from 1 to 512" -- run --firmware conversions --check-stride 513
expect 2 "--check-stride applies to --firmware conversions only" -- run --check-stride 4
expect 2 "--mem 8 MiB is too small for firmware 'conversions'" -- run --firmware conversions --mem 8M
expect 2 "--cpus 'two': not a number" -- run --cpus two
expect 2 "--cpus '99999999999999999999999': too many: .*at most [0-9]+ vCPUs" -- run --cpus 99999999999999999999999
expect 2 "--mem '1': not a multiple of 4K" -- run --mem 1
expect 2 "--mem '4K': must be at least 2M" -- run --mem 4K
expect 2 "--mem '0': must not be zero" -- run --mem 0
expect 2 "--mem '4097K': not a multiple of 4K" -- run --mem 4097K
expect 2 "--mem '64X': not a size" -- run --mem 64X
expect 2 "--mem '': not a size" -- run --mem ''
expect 2 "--mem '64MB': not a size" -- run --mem 64MB
expect 2 "--mem '99999999999G': too large" -- run --mem 99999999999G
expect 2 "--mem '4096G': more than this host's [0-9]+ MiB" -- run --mem 4096G
expect 2 "--mem 2 MiB is too small for firmware 'selftest' .* on 200 vCPUs: needs at least [0-9]+ MiB" -- run --mem 2M --cpus 200
expect 2 "unknown option '--frob'" -- caps --frob
expect 2 "veil stress: --cpus '0': a VM needs at least 1 vCPU" -- stress --cpus 0
expect 2 "veil stress: --mem '3K': not a multiple of 4K" -- stress --mem 3K
expect 2 "veil stress: --seconds 'x'" -- stress --seconds x
expect 2 "veil stress: unknown option '--frob'" -- stress --frob
expect 2 "veil stress: --seed 'x': not a number" -- stress --seed x
expect 2 "veil stress: --seed '-1': not a number" -- stress --seed -1
expect 2 "veil stress: --seed '18446744073709551616': not a number" -- stress --seed 18446744073709551616
expect 2 "veil run: --vm-type 'tdx': not default or sw-protected" -- run --vm-type tdx
expect 2 "--kernel and --firmware 'selftest' exclude each other" -- run --kernel /x --firmware selftest
expect 2 "--initrd needs --kernel" -- run --initrd /x
expect 2 "--cmdline needs --kernel" -- run --cmdline x
expect 2 "--kernel '/nonexistent': No such file" -- run --kernel /nonexistent
expect 2 "--kernel '$TMP/empty.bin': the file is empty" -- run --kernel "$TMP/empty.bin"
# --jail DIR [--user UID:GID]: checked before anything is opened or any namespace entered.
expect 2 "--jail '/nonexistent': No such file or directory" -- run --jail /nonexistent
expect 2 "--jail '$TMP/empty.bin': not a directory" -- run --jail "$TMP/empty.bin"
expect 2 "--jail '': No such file or directory" -- run --jail ''
expect 2 "--jail '/': the root directory itself is no jail" -- run --jail /
expect 2 "option '--jail' needs a value" -- run --jail
expect 2 "--user needs --jail" -- run --user 65534:65534
for u in abc 1 1: :1 1:2:3 -1:0 0:-1 4294967295:0 0:4294967295 99999999999:0 " 1:1" 1:0x1; do
	expect 2 "--user '$u': not UID:GID" -- run --jail "$TMP/dir" --user "$u"
done
expect 2 "option '--user' needs a value" -- run --jail "$TMP/dir" --user
expect 2 "veil stress: unknown option '--jail'" -- stress --jail "$TMP/dir"
expect 2 "veil caps: unknown option '--jail'" -- caps --jail "$TMP/dir"
expect 2 "veil stress: unknown option '--user'" -- stress --user 0:0
head -c 8192 /dev/urandom >"$TMP/random.bin"
expect 2 "--kernel '$TMP/random.bin': not a Linux kernel" -- run --kernel "$TMP/random.bin"
# Damaged ELF vmlinux files (x86 only: elsewhere an ELF kernel is not a boot format).
le() { local v=$1 n=$2 i; for ((i = 0; i < n; i++)); do printf "\\x$(printf %02x $(((v >> (8 * i)) & 255)))"; done; }
mkelf() { # OUT ENTRY [FILE_OFFSET PADDR FILESZ MEMSZ]...: PT_LOADs linked at PADDR + 0xffffffff80000000
	local out=$1 entry=$2
	shift 2
	{
		printf '\x7fELF\x02\x01\x01'; le 0 9; le 2 2; le 62 2; le 1 4; le "$entry" 8; le 64 8; le 0 8
		le 0 4; le 64 2; le 56 2; le $(($# / 4)) 2; le 0 6
		while [ $# -ge 4 ]; do
			le 1 4; le 7 4; le "$1" 8; le $((0xffffffff80000000 + $2)) 8; le "$2" 8; le "$3" 8; le "$4" 8; le 4096 8
			shift 4
		done
	} >"$out"
	truncate -s 8192 "$out"
}
if [ "$(uname -m)" = x86_64 ]; then
	mkelf "$TMP/overlap.elf" $((0x1000000)) 4096 $((0x1000000)) 256 65536 4096 $((0x1008000)) 256 4096
	expect 2 "--kernel '$TMP/overlap.elf': ELF segments at 0x1000000 and 0x1008000 overlap" -- \
		run --kernel "$TMP/overlap.elf"
	mkelf "$TMP/trunc.elf" $((0x1000000)) 4096 $((0x1000000)) 65536 65536
	expect 2 "--kernel '$TMP/trunc.elf': truncated: an ELF segment runs past the end" -- \
		run --kernel "$TMP/trunc.elf"
	mkelf "$TMP/bss-entry.elf" $((0x1008000)) 4096 $((0x1000000)) 256 65536
	expect 2 "--kernel '$TMP/bss-entry.elf': the ELF entry point 0x1008000 is in no loadable" -- \
		run --kernel "$TMP/bss-entry.elf"
fi

# The eleven errors a new user met (issue 15), each with what to do.  A row whose
# situation this host cannot make is skipped, saying why.
skip() { echo "skip: $*"; }
# 1. --kernel: a directory, an empty file and one too large say which they are.
truncate -s 300M "$TMP/big.bin"
expect 2 "--kernel '$TMP/dir': a directory, not a file" -- run --kernel "$TMP/dir"
expect 2 "--kernel '$TMP/empty.bin': the file is empty" -- run --kernel "$TMP/empty.bin"
expect 2 "--kernel '$TMP/big.bin': 300 MiB, more than the 256 MiB this file may have" -- \
	run --kernel "$TMP/big.bin"
rm -f "$TMP/big.bin"
# 2. --mem takes T; too much names the host's limit.
expect 2 "--mem '1T': more than this host's [0-9]+ MiB of memory" -- run --mem 1T
expect 2 "--mem '99999T': more than this host's [0-9]+ MiB of memory" -- run --mem 99999T
# 3. --cpus: the limit is named; a negative count is not "not a number".
expect 2 "--cpus '100000': too many: (this host's KVM runs at most [0-9]+ vCPUs per VM|veil runs at most 65536 vCPUs)" -- \
	run --cpus 100000
expect 2 "--cpus '-1': must be at least 1" -- run --cpus -1
expect 2 "veil stress: --cpus '-1': must be at least 1" -- stress --cpus -1
# 4. A mistyped command gets a suggestion.
expect 2 "unknown command 'rnu'; did you mean 'run'\\?" -- rnu
expect 2 "unknown command 'stres'; did you mean 'stress'\\?" -- stres
expect 2 "unknown command 'frobnicate' \\(see veil --help\\)" -- frobnicate
# 5. veil help COMMAND is the command's help.
expect 0 "^usage: veil run " -- help run
expect 0 "^usage: veil stress " -- help stress
expect 0 "^usage: veil caps " -- help caps
expect 0 "^usage: veil serve " -- help serve
expect 2 "unknown command 'rnu'; did you mean 'run'" -- help rnu
# 6. caps takes -j as stress does; an extra argument gets the hint.
expect 0 "^usage: veil caps .*\\[--json\\]" -- caps -h
grep -q -- "-j, --json" "$TMP/out" || fail "veil caps --help does not mention -j"
expect 2 "veil caps: unexpected argument 'extra' \\(see veil caps --help\\)" -- caps extra
expect 2 "veil stress: unexpected argument 'extra' \\(see veil stress --help\\)" -- stress extra
# 7 and 8 run veil as nobody: outside the kvm group, and unable to write a root-owned image.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
	pub=$(mktemp -d /tmp/veil-cli.XXXXXX)
	chmod 755 "$pub"
	truncate -s 1M "$pub/ro.img"
	chmod 644 "$pub/ro.img"
	expect_as_nobody() { # CODE PATTERN -- ARGS
		local code=$1 pat=$2 got
		shift 3
		checks=$((checks + 1))
		timeout 60 "${as_nobody[@]}" "$VEIL" "$@" >"$TMP/out" 2>&1 </dev/null
		got=$?
		if [ "$got" != "$code" ]; then
			fail "(as nobody) veil $*: exit $got, expected $code"; sed 's/^/    /' "$TMP/out" >&2
		elif ! grep -Eq -- "$pat" "$TMP/out"; then
			fail "(as nobody) veil $*: output lacks /$pat/"; sed 's/^/    /' "$TMP/out" >&2
		fi
	}
	if [ -e /dev/kvm ] && ! "${as_nobody[@]}" test -w /dev/kvm; then
		expect_as_nobody 2 "veil caps: cannot use /dev/kvm: Permission denied; add your user to the 'kvm' group" -- caps
		expect_as_nobody 2 "veil run: cannot use /dev/kvm: Permission denied; add your user to the 'kvm' group" -- run
		expect_as_nobody 2 "veil stress: cannot use /dev/kvm: Permission denied; add your user to the 'kvm' group" -- stress
	else
		skip "7: /dev/kvm is absent or writable by nobody, so no user here is refused it"
	fi
	expect_as_nobody 2 "--disk '$pub/ro.img': Permission denied: .*add ',ro' \\(--disk '$pub/ro.img,ro'\\)" -- \
		run --disk "$pub/ro.img"
	rm -rf "$pub"
else
	skip "7 and 8: not root (or no setpriv), so veil cannot be run as another user"
fi
# 10. --foreign-pin never passes unrun.
expect 2 "--foreign-pin needs --vm-type sw-protected" -- stress --foreign-pin --seconds 1
if [ ! -e /sys/kernel/debug/gup_test ]; then
	expect 2 "--foreign-pin: cannot use /sys/kernel/debug/gup_test: No such file" -- \
		stress --foreign-pin --vm-type sw-protected --seconds 1
else
	skip "10 (no gup_test): this host has /sys/kernel/debug/gup_test; the nested suite runs the check"
fi
# 9 and 11 run guests.
if [ -r /dev/kvm ] && [ -w /dev/kvm ] && [ "$(uname -m)" = x86_64 ]; then
	# 9. vCPU 0 triple-faults (ud2, no IDT) while vCPU 1 halts: the first line is why the VM
	# stopped, then vCPU 0's registers; vCPU 1, not the cause, is not dumped (only with -v).
	printf '\x85\xff\x75\x02\x0f\x0b\xf4\xeb\xfd' >"$TMP/tf.bin"
	expect 3 "stopped: vCPU 0: guest reset \\(triple fault\\)" -- run --firmware "$TMP/tf.bin" --cpus 2
	head -1 "$TMP/out" | grep -Eq "^veil: error: vCPU 0: guest reset \(triple fault\); vCPU 0 registers" ||
		fail "9: the output does not lead with the stop's cause: $(head -1 "$TMP/out")"
	! grep -q "vCPU 1" "$TMP/out" || fail "9: vCPU 1, not the cause, was dumped"
	# vCPU 0 writes failure status 1 to the debug-exit port while vCPU 1 halts.
	printf '\x85\xff\x75\x0a\x66\xba\x01\x05\xb8\x01\x00\x00\x00\xef\xf4\xeb\xfd' >"$TMP/fail.bin"
	expect 1 "stopped: guest wrote failure status 1 to the debug-exit port" -- \
		run --firmware "$TMP/fail.bin" --cpus 2
	! grep -q "registers" "$TMP/out" || fail "9: a register dump for the guest's own failure status"
	# 11. -q prints only errors; signals by name; "1 vCPU".
	truncate -s 4M "$TMP/disk.img"
	expect 0 "" -- run -q --cpus 1 --disk "$TMP/disk.img" --convert-stress
	! grep -q "^veil: " "$TMP/out" || fail "11: -q printed: $(grep '^veil: ' "$TMP/out")"
	expect 0 "^veil: 1 vCPU, " -- run --cpus 1
	grep -q "selftest: 1 vCPU read" "$TMP/out" || fail "11: the selftest says '1 vCPUs'"
	# A guest that never stops (vCPU 0 halts), stopped by SIGTERM.
	printf '\xf4\xeb\xfd' >"$TMP/halt.bin"
	checks=$((checks + 1))
	timeout --preserve-status -s TERM 3 "$VEIL" run --firmware "$TMP/halt.bin" --cpus 1 >"$TMP/out" 2>&1
	got=$?
	[ "$got" = 143 ] || fail "11: SIGTERM: exit $got, expected 143"
	grep -q "stopped: stopped by SIGTERM (exit code 143)" "$TMP/out" ||
		fail "11: SIGTERM is not named: $(grep stopped "$TMP/out")"
else
	skip "9 and 11: no usable /dev/kvm (or not x86_64), so no guest can run here"
fi

# Help and version name every option.
expect 0 "--firmware.*" -- run --help
for opt in --firmware --cpus --mem --quiet --verbose --help "exit codes"; do
	grep -q -- "$opt" "$TMP/out" || fail "veil run --help does not mention $opt"
done
expect 0 "--json" -- caps --help
expect 0 "--seconds" -- stress --help
for opt in --cpus --mem --seconds --vm-type --destructive --no-dma --foreign-pin --seed --json; do
	grep -q -- "$opt" "$TMP/out" || fail "veil stress --help does not mention $opt"
done
expect 0 "--kernel" -- run --help
for opt in --kernel --initrd --cmdline --vm-type --timing --jail --user; do
	grep -q -- "$opt" "$TMP/out" || fail "veil run --help does not mention $opt"
done
expect 0 "commands:" -- --help
expect 0 "^veil [0-9]+\.[0-9]+" -- --version
finish
