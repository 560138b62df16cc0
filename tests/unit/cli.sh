#!/usr/bin/env bash
# unit: every bad command line that needs no KVM exits 2 with a message naming the bad value.
. "$(dirname "$0")/../lib/sh.sh"

printf '' >"$TMP/empty.bin"
mkdir "$TMP/dir"

expect 2 "usage: veil" -- 
expect 2 "unknown command 'frobnicate'" -- frobnicate
expect 2 "unknown option '--frob'" -- run --frob
expect 2 "unknown option '--json'" -- run --json
expect 2 "unexpected argument 'extra'" -- run extra
expect 2 "'--mem' needs a value" -- run --mem
expect 2 "--firmware 'nosuch': no built-in firmware .*selftest" -- run --firmware nosuch
expect 2 "--firmware '/nonexistent/fw.bin': No such file" -- run --firmware /nonexistent/fw.bin
expect 2 "--firmware '$TMP/empty.bin': not a regular file of 1 byte" -- run --firmware "$TMP/empty.bin"
expect 2 "--firmware '$TMP/dir': not a regular file" -- run --firmware "$TMP/dir"
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
expect 2 "--cpus '-1': not a number" -- run --cpus -1
expect 2 "--cpus '99999999999999999999999': not a number" -- run --cpus 99999999999999999999999
expect 2 "--mem '1': not a multiple of 4K" -- run --mem 1
expect 2 "--mem '4K': must be at least 2M" -- run --mem 4K
expect 2 "--mem '0': must not be zero" -- run --mem 0
expect 2 "--mem '4097K': not a multiple of 4K" -- run --mem 4097K
expect 2 "--mem '64X': not a size" -- run --mem 64X
expect 2 "--mem '1T': not a size" -- run --mem 1T
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
expect 2 "--kernel '$TMP/empty.bin': not a regular file" -- run --kernel "$TMP/empty.bin"
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
