#!/usr/bin/env bash
# shellcheck disable=SC2015 # ok and fail always succeed
# scripts/guest without the network: its argument errors (exit 2, what is wrong, nothing
# created), then, when this host has a static busybox, the initramfs it assembles from that
# busybox and a stand-in kernel, with apt and dpkg-deb replaced by stubs that fail.
# Usage: guest.sh PATH-TO-scripts/guest
set -uo pipefail
export LC_ALL=C
guest=$(readlink -f "${1:?usage: guest.sh PATH-TO-scripts/guest}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

host=
case $(uname -m) in x86_64) host=x86_64 ;; aarch64) host=arm64 ;; esac

# A stand-in kernel of ARCH: just the magic veil's loaders look for.
fake_kernel() { # ARCH OUT
	head -c 4096 /dev/zero >"$2"
	case $1 in
	x86_64) printf 'HdrS' | dd of="$2" bs=1 seek=514 conv=notrunc status=none ;;
	arm64) printf 'ARMd' | dd of="$2" bs=1 seek=56 conv=notrunc status=none ;;
	esac
}
fake_kernel x86_64 "$tmp/bzImage"
fake_kernel arm64 "$tmp/Image"
# An ELF header of the other architecture (e_machine at 18).
printf '\177ELF\002\001\001' >"$tmp/foreign-elf"
head -c 57 /dev/zero >>"$tmp/foreign-elf"
printf '\267\000' | dd of="$tmp/foreign-elf" bs=1 seek=18 conv=notrunc status=none # aarch64
[ "$host" != arm64 ] || printf '\076\000' | dd of="$tmp/foreign-elf" bs=1 seek=18 conv=notrunc status=none
other=$([ "$host" = arm64 ] && echo x86_64 || echo arm64)
touch "$tmp/a-file"

# expect_error DESCRIPTION MESSAGE-REGEX ARGS...: exit 2, MESSAGE on stderr, no DIR made.
expect_error() {
	local what=$1 want=$2 err rc=0
	shift 2
	err=$("$guest" "$@" 2>&1 >/dev/null) || rc=$?
	if [ "$rc" != 2 ]; then fail "$what: exit $rc, wanted 2 ($err)"
	elif ! grep -qE -- "$want" <<<"$err"; then fail "$what: message '$err' lacks /$want/"
	elif [ -e "$tmp/not-made" ]; then fail "$what: created the directory"
	elif [ "$(wc -l <<<"$err")" -gt 2 ]; then fail "$what: more than the message and the usage: $err"
	else ok "$what: exit 2, '$(head -n1 <<<"$err")'"
	fi
}
d=$tmp/not-made
expect_error "no DIR" 'DIR is missing'
expect_error "an unknown --arch" '--arch mips: expected x86_64 or arm64' "$d" --arch mips
expect_error "--arch without a value" '--arch needs a value' "$d" --arch
expect_error "an unknown option" "unknown option '--bogus'" "$d" --bogus
expect_error "two directories" "one DIR only" "$d" "$tmp/other"
expect_error "DIR is a file" 'a-file exists and is not a directory' "$tmp/a-file"
expect_error "a missing --kernel" 'nope: no such file' "$d" --kernel "$tmp/nope"
expect_error "a directory as --kernel" 'is not a regular file' "$d" --kernel "$tmp"
expect_error "a --kernel that is no kernel" 'is not a kernel image veil boots on amd64' \
	"$d" --arch x86_64 --kernel "$tmp/a-file"
expect_error "an arm64 Image for x86_64" 'is not a kernel image veil boots on amd64' \
	"$d" --arch x86_64 --kernel "$tmp/Image"
expect_error "a busybox of the other architecture" 'foreign-elf is not an' \
	"$d" --busybox "$tmp/foreign-elf" --kernel "$tmp/$([ "$host" = arm64 ] && echo Image || echo bzImage)"
if "$guest" --help | grep -q '^Usage: scripts/guest DIR'; then ok "--help prints the usage, exit 0"
else fail "--help"; fi

# The assembly, offline: a static busybox of this host, if there is one.
bb=$(command -v busybox || true)
if [ -z "$host" ] || [ -z "$bb" ] || ldd "$bb" >/dev/null 2>&1; then
	echo "skip: the initramfs assembly needs a static busybox (Debian's busybox-static) on x86_64 or arm64"
	[ "$fails" = 0 ] || exit 1
	exit 0
fi
mkdir -p "$tmp/stubs"
for t in apt-get apt-cache dpkg-deb; do
	printf '#!/bin/sh\necho "%s was called: scripts/guest went to the network" >&2\nexit 99\n' "$t" >"$tmp/stubs/$t"
	chmod 755 "$tmp/stubs/$t"
done
kernel=$tmp/$([ "$host" = arm64 ] && echo Image || echo bzImage)
expect_error "a foreign busybox for --arch $other" 'is not an arm64 executable|is not an amd64 executable' \
	"$d" --arch "$other" --busybox "$bb" --kernel "$tmp/$([ "$other" = arm64 ] && echo Image || echo bzImage)"

g="$tmp/guest dir"
out=$(PATH=$tmp/stubs:$PATH "$guest" "$g" --kernel "$kernel" --busybox "$bb" 2>"$tmp/err") && rc=0 || rc=$?
if [ "$rc" = 0 ]; then ok "assembled offline from $bb"; else fail "assembly: exit $rc: $(cat "$tmp/err")"; fi
line=$(tail -n1 <<<"$out")
want="run --kernel $(printf %q "$g/vmlinuz") --initrd $(printf %q "$g/initrd.cpio") --cmdline 'console=ttyS0 panic=-1 quiet' --cpus 2 --mem 256M"
if [[ $line == *veil\ "$want" ]]; then ok "the last line is the veil run command: $line"
else fail "the last line: '$line', wanted '...veil $want'"; fi
cmp -s "$kernel" "$g/vmlinuz" && ok "DIR/vmlinuz is the given kernel" || fail "DIR/vmlinuz differs from $kernel"

list=$(cpio -itv --quiet <"$g/initrd.cpio" 2>&1)
for want in '^-rwxr-xr-x +1 root +root .* init$' '^-rwxr-xr-x +1 root +root .* bin/busybox$' \
	'^lrwxrwxrwx .* bin/sh -> busybox$' '^d.* root +root .* (dev|proc|sys|tmp)$'; do
	grep -qE -- "$want" <<<"$list" && ok "initrd.cpio has /${want}/" || fail "initrd.cpio lacks /$want/: $list"
done
grep -vqE ' root +root ' <<<"$list" && fail "an entry not owned by root:root: $list" || ok "every entry is root:root"
mkdir "$tmp/x"
(cd "$tmp/x" && cpio -id --quiet --no-absolute-filenames <"$g/initrd.cpio")
cmp -s "$bb" "$tmp/x/bin/busybox" && ok "its busybox is $bb" || fail "its busybox differs from $bb"
"$bb" sh -n "$tmp/x/init" && ok "init parses (busybox sh -n)" || fail "init does not parse"
for want in '^#!/bin/sh$' '^mount -t proc proc /proc$' '^mount -t sysfs sysfs /sys$' \
	'^mount -t devtmpfs devtmpfs /dev$' '^echo "veil guest: ' '^setsid cttyhack sh$' '^poweroff -f$'; do
	grep -qE -- "$want" "$tmp/x/init" && ok "init has /$want/" || fail "init lacks /$want/"
done
# The shell comes before the poweroff.
[ "$(grep -nE '^setsid cttyhack sh$' "$tmp/x/init" | cut -d: -f1)" -lt "$(grep -nE '^poweroff -f$' "$tmp/x/init" | cut -d: -f1)" ] &&
	ok "init powers off after the shell exits" || fail "init's poweroff is not after the shell"

cp "$g/initrd.cpio" "$tmp/first.cpio"
PATH=$tmp/stubs:$PATH "$guest" "$g" --kernel "$kernel" --busybox "$bb" >/dev/null 2>"$tmp/err" &&
	cmp -s "$tmp/first.cpio" "$g/initrd.cpio" && ok "a second run makes the same initrd.cpio, byte for byte" ||
	fail "a second run: $(cat "$tmp/err"); initrd.cpio $(cmp "$tmp/first.cpio" "$g/initrd.cpio" 2>&1)"
leftover=$(find "$g" -name '.tmp.*')
[ -z "$leftover" ] && ok "no temporary files left in DIR" || fail "left behind: $leftover"

[ "$fails" = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
