#!/usr/bin/env bash
# The arm64 nested platform: qemu-system-aarch64 (TCG, -M virt,virtualization=on,gic-version=3)
# runs Debian's stock trixie-backports 7.3 arm64 kernel as L1, whose built-in KVM runs the L2.
#
# Usage: arm64.sh SUBCOMMAND
#   prepare        packages, the L1 kernel, arm64 busybox, the probe (idempotent, cached)
#   probe          boots L1 and runs arm64-probe.c in it: KVM's capabilities, and one tiny
#                  guest run from guest_memfd (MMIO exits, a revoked host mapping, PSCI off)
#   linux          boots L1, and in it `veil caps`, then veil boots the shared cocoguest kernel
#                  (arm64 Image) on 2 vCPUs with a virtio-mmio disk, rng, balloon and console: the L2's
#                  markers, every veil thread in seccomp mode 2 while the guest runs, PSCI
#                  SYSTEM_OFF (exit 0), a second boot's SYSTEM_RESET (exit 3) and a third's
#                  panic under panic=-1 (exit 3)
#   linux-stock    the same L1 boots Debian 12's stock arm64 kernel under veil (2 vCPUs,
#                  512 MiB): init on 2 vCPUs, MemTotal in range, SYSTEM_OFF exits 0
#   confidential-boot|-off|-data  the cocoguest under --confidential (docs/confidential.md):
#                  boot with bits 2-4 and a digest checked against its manifest; the same kernel
#                  without it shares nothing; 64 MiB through bounced DMA with --convert-stress
#   confidential-refusal  an arm64 firmware guest under --confidential points virtio-blk at a
#                  page it never shared (refused: IOERR, counted, disk unchanged) and sends bad
#                  SMCCC arguments (-3, counted)
#   selftest       veil's firmware guests in L1: selftest on 1 and 2 vCPUs (PSCI CPU_ON), and
#                  the conversions firmware converting by MEM_SHARE/MEM_UNSHARE
#   stress         `veil stress` in L1: guest conversions through MEM_SHARE/MEM_UNSHARE > 0,
#                  0 lost writes, 0 violations
#   virtio-blk-integrity  the cocoguest L2 writes 64 MiB of `prng 42` to a virtio-mmio disk,
#                  syncs, drops its caches and reads it back; L1 then checks the image
#   bench-boot [ROUNDS]  Debian 12's stock arm64 L2 booted to poweroff under veil and under
#                  QEMU (-M virt -accel kvm -cpu host, Debian's arm64 qemu-system-arm) in one
#                  L1, alternating, ROUNDS times each (default 3): min/median/max and ratios
#   measure-smp [ROUNDS]  L1's -smp 2/3/4 and TCG threading against a 2-vCPU L2's boot time
#   peer-root      bench-boot's QEMU and its libraries, as a newc archive (peer.cpio)
#   l1-run 'CMD'   debugging: boots L1 and runs one shell command in it
#   sysroot        the arm64 -dev packages veil links (liburing, libseccomp, libfdt, ...)
#                  unpacked into <build>/nested-work/arm64/sysroot, and a meson cross file
#   veil           veil cross-built statically for aarch64 against that sysroot, with its
#                  arm64 firmware guests (firmware/arm64)
#
# Environment: NESTED_SRC, NESTED_BUILD (source and build directory, as for nested.sh),
# NESTED_DEBIAN_MIRROR (a mirror URI instead of the machine's own), NESTED_ARM64_L1_SMP (L1's
# vCPUs) and NESTED_TCG_THREAD (multi or single): tests/nested/README.md says why the defaults;
# NESTED_ARM64_L1_EXTRA_CPIO (an archive appended to L1's initramfs, e.g. peer.cpio for l1-run).
# Everything is cached under <build>/nested-cache (downloads) and <build>/nested-work/arm64.
set -euo pipefail
export LC_ALL=C

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SELF")
SRC=$(readlink -f "${NESTED_SRC:-$HERE/../..}")
BUILD=$(readlink -m "${NESTED_BUILD:-$SRC/build}")
CACHE=$BUILD/nested-cache
WORK=$BUILD/nested-work/arm64
SHARED=$(readlink -m "${NESTED_SHARED:-$SRC/../shared}")
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
T_L1=${NESTED_ARM64_T_L1:-240} # seconds for L1 to boot, run its step and power off
# L1's vCPUs and TCG threading: -smp 4, multi-threaded booted a 2-vCPU L2 fastest (median of
# 3 passes of measure-smp; tests/nested/README.md has the figures).
L1_SMP=${NESTED_ARM64_L1_SMP:-4}
TCG_THREAD=${NESTED_TCG_THREAD:-multi}
L1_EXTRA_CPIO=${NESTED_ARM64_L1_EXTRA_CPIO:-} # a newc archive appended to L1's initramfs (bench-boot: QEMU)

# shellcheck source=tests/nested/debian.sh
. "$HERE/debian.sh"

say() { printf 'nested-arm64: %s\n' "$*"; }
die() { say "$*"; exit 1; }
skip() { say "skip: $*"; exit 77; }

# A private apt state for arm64 packages: bookworm (busybox) and trixie-backports (the L1
# kernel), from this machine's mirror; the machine's own apt lists are untouched.
apt_arm64() {
	local apt=$CACHE/apt-arm64 uri
	if [ ! -f "$apt/updated" ]; then
		uri=$(mirror_uri)
		mkdir -p "$apt"/{lists/partial,cache/archives/partial}
		{
			echo "deb [arch=arm64 signed-by=$KEYRING] $uri bookworm main"
			echo "deb [arch=arm64 signed-by=$KEYRING] $uri trixie-backports main"
		} >"$apt/sources.list"
	fi
	APT_O=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
		-o "Dir::State::lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=0
		-o APT::Architecture=arm64 -o APT::Architectures=arm64)
	if [ ! -f "$apt/updated" ]; then
		say "fetching the arm64 package lists" >&2
		apt-get "${APT_O[@]}" update -qq || die "the Debian mirror is unreachable (apt-get update failed)"
		touch "$apt/updated"
	fi
}

# fetch_deb REGEX: the newest cached .deb whose package name matches, downloading it if needed.
fetch_deb() {
	local re=$1 debs=$CACHE/debs-arm64 pkg deb tmp
	mkdir -p "$debs"
	deb=$(ls "$debs"/*_arm64.deb 2>/dev/null | while read -r f; do
		n=$(basename "$f"); [[ ${n%%_*} =~ $re ]] && echo "$f"; done | sort -V | tail -n1 || true)
	if [ -z "$deb" ]; then
		apt_arm64
		pkg=$(apt-cache "${APT_O[@]}" search --names-only "$re" | awk '{ print $1 }' | sort -V | tail -n1)
		[ -n "$pkg" ] || die "no arm64 package matches $re"
		tmp=$(mktemp -d "$debs/.dl.XXXXXX")
		chmod 755 "$tmp"
		say "downloading $pkg (arm64)" >&2
		# shellcheck disable=SC2046
		(cd "$tmp" && apt-get "${APT_O[@]}" $(apt_dl_opts) download -q "$pkg:arm64") >&2
		mv "$tmp"/*.deb "$debs/"
		rmdir "$tmp"
		deb=$(ls "$debs/$pkg"_*_arm64.deb | sort -V | tail -n1)
	fi
	echo "$deb"
}

prepare() {
	# Without qemu-system-aarch64 (and no way to install it) or a QEMU that cannot start a TCG
	# machine, this platform cannot run here: skipped (77), as nested.sh does for x86.
	"$HERE/deps.sh" || command -v qemu-system-aarch64 >/dev/null || skip "qemu-system-aarch64 is not installed and deps.sh could not install it"
	echo quit | timeout 30 qemu-system-aarch64 -machine none -accel tcg -nodefaults -display none \
		-monitor stdio >/dev/null 2>&1 || skip "qemu-system-aarch64 cannot start a TCG machine here"
	command -v aarch64-linux-gnu-gcc >/dev/null || die "aarch64-linux-gnu-gcc is missing (scripts/deps installs it)"
	mkdir -p "$WORK"
	local kdeb bdeb tmp
	kdeb=$(fetch_deb '^linux-binary-7\.3\.[0-9]+\+deb13-arm64$')
	bdeb=$(fetch_deb '^busybox-static$')
	if [ "$(cat "$WORK/stamp" 2>/dev/null)" != "$kdeb $bdeb" ]; then
		tmp=$(mktemp -d "$WORK/.unpack.XXXXXX")
		dpkg-deb -x "$kdeb" "$tmp/k"
		dpkg-deb -x "$bdeb" "$tmp/b"
		cp "$(find "$tmp/k" -type f -name 'vmlinuz*' | head -n1)" "$WORK/vmlinuz"
		cp "$tmp/b/bin/busybox" "$WORK/busybox"
		rm -rf "$tmp"
		echo "$kdeb $bdeb" >"$WORK/stamp"
	fi
	say "L1: $(basename "$kdeb" .deb); busybox: $(basename "$bdeb" .deb)"
	aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -Werror -I"$SRC/common" \
		-o "$WORK/arm64-probe" "$HERE/arm64-probe.c"
	# The integrity test's generator, for L2 (fills the disk) and L1 (checks the image).
	aarch64-linux-gnu-gcc -static -O2 -Wall -Wextra -Werror -o "$WORK/prng" "$HERE/prng.c"
}

# The arm64 libraries veil links, unpacked; and a meson cross file that uses them.
SYSROOT_DEBS=(liburing-dev liburing2 libseccomp-dev libseccomp2 libfdt-dev libfdt1
	libjson-c-dev libjson-c5 libhttp-parser-dev libhttp-parser2.9 zlib1g-dev zlib1g
	nettle-dev libnettle8)
sysroot() {
	local root=$WORK/sysroot p deb stamp=
	mkdir -p "$WORK"
	for p in "${SYSROOT_DEBS[@]}"; do
		deb=$(fetch_deb "^${p//./\\.}\$")
		stamp+="$(basename "$deb") "
	done
	if [ "$(cat "$root/stamp" 2>/dev/null)" != "$stamp" ]; then
		rm -rf "$root"
		for deb in $stamp; do dpkg-deb -x "$CACHE/debs-arm64/$deb" "$root"; done
		echo "$stamp" >"$root/stamp"
	fi
	cat >"$WORK/cross.ini" <<-EOF
		[binaries]
		c = 'aarch64-linux-gnu-gcc'
		ar = 'aarch64-linux-gnu-ar'
		strip = 'aarch64-linux-gnu-strip'
		objcopy = 'aarch64-linux-gnu-objcopy'
		pkgconfig = 'pkg-config'
		[built-in options]
		c_args = ['-I$root/usr/include', '-I$root/usr/include/aarch64-linux-gnu']
		c_link_args = ['-L$root/usr/lib/aarch64-linux-gnu']
		[properties]
		pkg_config_libdir = '$root/usr/lib/aarch64-linux-gnu/pkgconfig:$root/usr/share/pkgconfig'
		sys_root = '$root'
		veil_lib_dirs = ['$root/usr/lib/aarch64-linux-gnu']
		[host_machine]
		system = 'linux'
		cpu_family = 'aarch64'
		cpu = 'aarch64'
		endian = 'little'
	EOF
	say "arm64 sysroot: $root ($(echo $stamp | wc -w) packages); cross file $WORK/cross.ini"
}

veil_arm64() {
	local b=$WORK/veil-build
	sysroot
	export PKG_CONFIG_SYSROOT_DIR=$WORK/sysroot
	if [ ! -f "$b/build.ninja" ]; then
		meson setup --cross-file "$WORK/cross.ini" \
			--buildtype=release -Dstatic=true -Db_sanitize=none "$b" "$SRC"
	fi
	ninja -C "$b" vmm/veil
}

# l2_initrd OUT: the L2's initramfs: arm64 busybox with its applets and the same /init as the
# x86 L2s (l2-init: VEIL-L2: markers, then what veiltest= asks), and prng.
l2_initrd() {
	local r=$WORK/l2root a applets
	rm -rf "$r"
	mkdir -p "$r"/{bin,dev,proc,sys,tmp,lib/modules}
	cp "$WORK/busybox" "$r/bin/busybox"
	# The host's busybox-static is the same Debian release: its list is the arm64 one's.
	applets=$(busybox --list 2>/dev/null) || die "no host busybox to list the applets (scripts/deps)"
	for a in $applets; do [ "$a" = busybox ] || ln -sf busybox "$r/bin/$a"; done
	cp "$HERE/l2-init" "$r/init"
	chmod 755 "$r/init"
	cp "$WORK/prng" "$r/bin/prng"
	(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$1"
}

# In L1, beside a running veil: waits until veil and every one of its threads (the main
# thread, the vCPUs, the I/O thread) are in seccomp mode 2, looks again 2 s later (threads
# started late are counted too) and prints each thread's mode, or what it last saw.  Into a
# file that the step prints after veil exits: on the console its lines met the L2's mid-line.
seccomp_watch_script='#!/bin/sh
snap() { # DIR: prints nothing, sets n (threads) and m (threads in mode 2)
	n=0 m=0
	for t in $1/task/*; do
		while read -r k v; do [ "$k" = Seccomp: ] && break; done <$t/status 2>/dev/null
		n=$((n + 1))
		[ "$v" = 2 ] && m=$((m + 1))
	done
}
show() { # DIR: each thread, and the counts of exactly the threads shown
	n=0 m=0
	for t in $1/task/*; do
		read -r c <$t/comm 2>/dev/null
		while read -r k v; do [ "$k" = Seccomp: ] && break; done <$t/status 2>/dev/null
		echo "VEIL-SECCOMP: tid=${t##*/} comm=$c seccomp=$v"
		n=$((n + 1))
		[ "$v" = 2 ] && m=$((m + 1))
	done
	echo "VEIL-SECCOMP: threads=$n mode2=$m"
}
i=0 last="no veil process" seen=0
while [ $i -lt 900 ]; do
	now=0
	for d in /proc/[0-9]*; do
		read -r c <$d/comm 2>/dev/null || continue
		[ "$c" = veil ] || continue
		seen=1 now=1
		snap $d
		last="threads=$n mode2=$m"
		[ $n -ge 3 ] && [ $n = $m ] || continue
		sleep 2
		if [ -d $d/task ]; then snap $d; fi
		show $d
		exit 0
	done
	[ $seen = 0 ] || [ $now = 1 ] || break # veil came and went
	sleep 0.1
	i=$((i + 1))
done
echo "VEIL-SECCOMP: never saw every veil thread in mode 2 (last: $last)"
'

# initramfs CMD: an arm64 busybox L1 that runs CMD as a step, reports its exit and powers off.
initramfs() {
	local root=$WORK/root a
	rm -rf "$root"
	mkdir -p "$root"/{bin,dev,proc,sys,tmp}
	cp "$WORK/busybox" "$root/bin/busybox"
	for a in sh mount poweroff cat ls echo uname sleep grep dd head md5sum cut timeout; do
		ln -sf busybox "$root/bin/$a"
	done
	cp "$WORK/arm64-probe" "$root/bin/arm64-probe"
	cp "$WORK/prng" "$root/bin/prng"
	printf '%s' "$seccomp_watch_script" >"$root/bin/seccomp-watch"
	chmod 755 "$root/bin/seccomp-watch"
	[ ! -x "$WORK/veil-build/vmm/veil" ] || cp "$WORK/veil-build/vmm/veil" "$root/bin/veil"
	# L2: the shared cocoguest kernel when there is one, and a busybox initrd that says it
	# runs and powers off (PSCI SYSTEM_OFF).
	mkdir -p "$root/l2"
	[ ! -f "$SHARED/kernels/Image-7.3.4-cocoguest" ] ||
		cp "$SHARED/kernels/Image-7.3.4-cocoguest" "$root/l2/Image"
	[ ! -f "$WORK/l2-stock/vmlinuz" ] || cp "$WORK/l2-stock/vmlinuz" "$root/l2/stock.vmlinuz"
	l2_initrd "$root/l2/initrd.cpio"
	! declare -F coco_l2_initrd >/dev/null || coco_l2_initrd "$root/l2/coco.cpio" # confidential block
	cat >"$root/init" <<-EOF
		#!/bin/sh
		mount -t proc proc /proc
		mount -t sysfs sys /sys
		mount -t devtmpfs dev /dev
		echo "VEIL-ARM64-L1: up, \$(uname -r), \$(ls /dev/kvm 2>/dev/null || echo no /dev/kvm)"
		( $1 ) 2>&1
		echo "VEIL-ARM64-L1: step exit=\$?"
		poweroff -f
	EOF
	chmod 755 "$root/init"
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$WORK/l1.cpio"
	# Concatenated newc archives: the kernel unpacks both.
	[ -z "$L1_EXTRA_CPIO" ] || cat "$L1_EXTRA_CPIO" >>"$WORK/l1.cpio"
}

# boot_l1 CMD: boots L1 with CMD as its step; the console goes to $WORK/console.log and stdout.
boot_l1() {
	initramfs "$1"
	local t0=$SECONDS rc=0
	say "booting L1 (qemu-system-aarch64 TCG, -smp $L1_SMP, thread=$TCG_THREAD) with: $1"
	timeout -k 5 "$T_L1" qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max \
		-smp "$L1_SMP" -m 1024 -accel "tcg,thread=$TCG_THREAD" -nographic -no-reboot \
		-kernel "$WORK/vmlinuz" -initrd "$WORK/l1.cpio" \
		-append "console=ttyAMA0 panic=-1 rdinit=/init quiet" </dev/null |
		tr -d '\r' | tee "$WORK/console.log" || rc=$?
	say "L1 ran for $((SECONDS - t0)) s (QEMU exit $rc)"
	# L1's KVM needs QEMU's emulated EL2 (virtualization=on); without it there is no platform.
	if grep -a '^VEIL-ARM64-L1: up, .*no /dev/kvm' "$WORK/console.log" >/dev/null; then
		skip "L1 has no /dev/kvm (this QEMU gives L1 no usable EL2)"
	fi
	grep -aq "VEIL-ARM64-L1: step exit=" "$WORK/console.log" ||
		die "L1 did not finish its step within ${T_L1} s"
}

# want DESCRIPTION REGEX: one check on L1's console; counts failures in $fails.
want() { grep -aEq -- "$2" "$WORK/console.log" && say "ok: $1" || { say "FAIL: $1"; fails=$((fails + 1)); }; }
# want_not DESCRIPTION REGEX: no line on L1's console matches.
want_not() { ! grep -aEq -- "$2" "$WORK/console.log" && say "ok: $1" || { say "FAIL: $1"; fails=$((fails + 1)); }; }
# want_in DESCRIPTION PREFIX LO HI: the number after PREFIX on the first line starting with it
# lies in [LO, HI].
want_in() {
	local v
	v=$(grep -a -m1 -- "^$2" "$WORK/console.log" | sed -n "s/^$2\([0-9]*\).*/\1/p")
	if [ -n "$v" ] && [ "$v" -ge "$3" ] && [ "$v" -le "$4" ]; then say "ok: $1 ($v)"
	else say "FAIL: $1 (${v:-no line '$2'})"; fails=$((fails + 1)); fi
}

# Debian 12's stock arm64 kernel for the L2 (its vmlinuz is an Image), in the next L1 image.
stock_l2() {
	local deb
	deb=$(fetch_deb '^linux-image-6\.1\.0-[0-9]+-arm64$')
	if [ "$(cat "$WORK/l2-stock/stamp" 2>/dev/null)" != "$deb" ]; then
		rm -rf "$WORK/l2-stock" && mkdir -p "$WORK/l2-stock"
		dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$WORK/l2-stock" --wildcards './boot/vmlinuz-*'
		mv "$WORK/l2-stock"/boot/vmlinuz-* "$WORK/l2-stock/vmlinuz"
		echo "$deb" >"$WORK/l2-stock/stamp"
	fi
	say "stock L2: $(basename "$deb" .deb)"
}

# QEMU as the VMM inside L1 (bench-boot's peer): Debian 12's arm64 qemu-system-arm and the
# shared libraries its qemu-system-aarch64 needs.  ldd cannot run an arm64 binary here, so the
# packages of its dependency closure are unpacked and DT_NEEDED (readelf) is followed through
# them from the binary; only those files go into a newc archive appended to L1's initramfs.
PEER_LIBDIRS=lib/aarch64-linux-gnu:usr/lib/aarch64-linux-gnu
peer_root() {
	local dl=$CACHE/debs-arm64/peer stage=$WORK/peer-stage root=$WORK/peer-root pkgs deb stamp
	local -a queue=() so=()
	local f n d found
	mkdir -p "$dl"
	if [ ! -f "$dl/complete" ]; then
		apt_arm64
		# Depends and Pre-Depends only (libraries are in lib* packages, but not only: zlib1g).
		pkgs=$(apt-cache "${APT_O[@]}" depends --recurse --no-recommends --no-suggests \
			--no-conflicts --no-breaks --no-replaces --no-enhances qemu-system-arm |
			grep -E '^[a-z0-9][a-z0-9.+-]*$' | grep -v -- '-dev$' | sort -u)
		say "downloading qemu-system-arm (arm64) and $(($(wc -w <<<"$pkgs") - 1)) packages it depends on" >&2
		# shellcheck disable=SC2046,SC2086
		(cd "$dl" && apt-get "${APT_O[@]}" $(apt_dl_opts) download -q $(sed 's/$/:arm64/' <<<"$pkgs")) >&2
		touch "$dl/complete"
	fi
	stamp=$(cd "$dl" && ls ./*.deb | sort | md5sum | cut -d' ' -f1)
	[ "$(cat "$WORK/peer.stamp" 2>/dev/null)" != "$stamp" ] || [ ! -s "$WORK/peer.cpio" ] || return 0
	rm -rf "$stage" "$root"
	mkdir -p "$stage" "$root/usr/bin" "$root/lib"
	# bookworm's packages only: the closure also names trixie-backports' t64 libraries (as
	# alternatives), whose files would shadow bookworm's and need a newer glibc.
	for deb in "$dl"/*.deb; do [[ $deb == *bpo* ]] || dpkg-deb -x "$deb" "$stage"; done
	cp "$stage/usr/bin/qemu-system-aarch64" "$root/usr/bin/"
	# The loader at the path the binaries name (PT_INTERP), then DT_NEEDED, breadth first.
	cp -L "$stage/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1" "$root/lib/ld-linux-aarch64.so.1"
	queue=("$root/usr/bin/qemu-system-aarch64")
	local -A seen=()
	while [ ${#queue[@]} -gt 0 ]; do
		f=${queue[0]}
		queue=("${queue[@]:1}")
		mapfile -t so < <(readelf -d "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
		for n in "${so[@]}"; do
			[ -z "${seen[$n]:-}" ] || continue
			seen[$n]=1
			found=
			for d in ${PEER_LIBDIRS//:/ }; do
				if [ -e "$stage/$d/$n" ]; then
					mkdir -p "$root/$d"
					cp -L "$stage/$d/$n" "$root/$d/$n"
					queue+=("$root/$d/$n")
					found=1
					break
				fi
			done
			[ -n "$found" ] || die "peer: $n (needed by ${f#"$root"/}) is in none of the packages"
		done
	done
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$WORK/peer.cpio"
	echo "$stamp" >"$WORK/peer.stamp"
	say "peer: $(strings "$root/usr/bin/qemu-system-aarch64" | grep -m1 '^QEMU emulator version' || true)," \
		"${#seen[@]} libraries," \
		"$(du -h "$WORK/peer.cpio" | cut -f1)"
}

# bench-boot [ROUNDS]: the stock Debian 12 L2 (2 vCPUs, 512 MiB, the same Image, initramfs and
# command line) booted to poweroff under veil and under QEMU (-M virt,gic-version=3 -accel kvm
# -cpu host) in one L1, alternating, ROUNDS times each.  Times are L1's clock: from the VMM's
# start to the L2's init marker and to the VMM's exit, stamped in L1 by a shell loop that reads
# the VMM's output (the same loop for both).  No console= on the command line: each kernel
# takes its console from the tree's stdout-path (veil's ns16550a, QEMU's PL011).
bench_boot() {
	local rounds=${1:-3} i steps='' v q cmdline='quiet panic=-1 veiltest=poweroff'
	prepare
	stock_l2
	build_veil
	peer_root
	L1_EXTRA_CPIO=$WORK/peer.cpio
	T_L1=${NESTED_ARM64_T_L1:-$((300 + rounds * 2 * 120))}
	v="/bin/veil run --kernel /l2/stock.vmlinuz --initrd /l2/initrd.cpio --cpus 2 --mem 512M -q --cmdline '$cmdline'"
	q="/usr/bin/qemu-system-aarch64 -M virt,gic-version=3"
	q+=" -accel kvm -cpu host -smp 2 -m 512M -nodefaults -nographic -serial stdio -monitor none"
	q+=" -no-reboot -kernel /l2/stock.vmlinuz -initrd /l2/initrd.cpio -append '$cmdline'"
	for i in $(seq "$rounds"); do steps+="bench veil$i $v
		bench qemu$i $q
		"; done
	boot_l1 "export LD_LIBRARY_PATH=/${PEER_LIBDIRS//:/:\/}
		bench() {
			n=\$1; shift
			read -r b _ </proc/uptime
			echo VEIL-BENCH: \$n begin \$b
			{ timeout 400 \"\$@\" </dev/null; echo VEIL-BENCH: \$n exit \$?; } 2>&1 | while IFS= read -r l; do
				case \$l in
				*'VEIL-L2: init '*) read -r u _ </proc/uptime; echo VEIL-BENCH: \$n init \$u ;;
				'VEIL-BENCH: '*' exit '*) read -r u _ </proc/uptime; echo VEIL-BENCH: \$n end \$u ;;
				esac
				printf '%s\\n' \"\$l\"
			done
		}
		$steps"
	bench_report "$rounds"
}

# bench_report ROUNDS: each run's seconds to init and to exit, min/median/max per VMM, ratios.
bench_report() {
	local rounds=$1 vm i b t_init t_end rc rounds_r=''
	local -A t_in=() t_out=() r_in=()
	field() { sed -n "s/^VEIL-BENCH: $1 $2 \\([0-9.]*\\).*/\\1/p" "$WORK/console.log" | head -n1; }
	for i in $(seq "$rounds"); do
		for vm in veil qemu; do
			b=$(field "$vm$i" begin) t_init=$(field "$vm$i" init) t_end=$(field "$vm$i" end)
			rc=$(field "$vm$i" exit)
			if [ -z "$b" ] || [ -z "$t_init" ] || [ -z "$t_end" ] || [ "$rc" != 0 ]; then
				say "bench-boot: $vm$i did not boot and power off cleanly (exit ${rc:-none}): left out"
				continue
			fi
			t_init=$(awk "BEGIN { printf \"%.2f\", $t_init - $b }")
			t_end=$(awk "BEGIN { printf \"%.2f\", $t_end - $b }")
			say "bench-boot: $vm$i: L2 init marker $t_init s, VMM exit $t_end s"
			t_in[$vm]+="$t_init " t_out[$vm]+="$t_end "
			r_in[$vm$i]=$t_init
		done
		# Each round's own ratio: its two runs shared the host's load.
		[ -z "${r_in[veil$i]:-}" ] || [ -z "${r_in[qemu$i]:-}" ] ||
			rounds_r+="$(awk "BEGIN { printf \"%.2f\", ${r_in[veil$i]} / ${r_in[qemu$i]} }") "
	done
	mmm() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[1], a[int((NR + 1) / 2)], a[NR] }'; }
	local -A med_in=() med_out=()
	local -a m
	for vm in veil qemu; do
		[ -n "${t_in[$vm]:-}" ] || die "bench-boot: $vm: no clean run (console: $WORK/console.log)"
		# shellcheck disable=SC2086
		read -r -a m <<<"$(mmm ${t_in[$vm]})"
		med_in[$vm]=${m[1]}
		say "bench-boot: $vm to init: min ${m[0]} median ${m[1]} max ${m[2]} s ($(wc -w <<<"${t_in[$vm]}") runs)"
		# shellcheck disable=SC2086
		read -r -a m <<<"$(mmm ${t_out[$vm]})"
		med_out[$vm]=${m[1]}
		say "bench-boot: $vm to exit: min ${m[0]} median ${m[1]} max ${m[2]} s"
	done
	# shellcheck disable=SC2086
	[ -z "$rounds_r" ] || say "bench-boot: the rounds' own ratios veil/QEMU to init: $rounds_r(min median max: $(mmm $rounds_r))"
	say "bench-boot: median veil/QEMU to init $(awk "BEGIN { printf \"%.2f\", ${med_in[veil]} / ${med_in[qemu]} }")," \
		"to exit $(awk "BEGIN { printf \"%.2f\", ${med_out[veil]} / ${med_out[qemu]} }")" \
		"(L1 -smp $L1_SMP, TCG thread=$TCG_THREAD; $(cat "$WORK/l2-stock/stamp" | xargs basename))"
}

# measure-smp [ROUNDS]: how L1's -smp and TCG threading affect a 2-vCPU L2.  For each of
# -smp 2, 3, 4 with multi-threaded TCG and -smp 2, 3 with single-threaded TCG, one L1 boots the
# cocoguest L2 (2 vCPUs, 256 MiB) ROUNDS times (default 2) to poweroff; prints each boot's
# seconds (L1's clock, veil's start to its exit), the L2's uptime at its init marker, the whole
# L1 run (host clock) and the host's load average, which other users of the machine raise.
# NESTED_ARM64_SMP_CONFIGS: other settings, as "SMP/THREAD ..." (e.g. "2/multi 2/single").
measure_smp() {
	local rounds=${1:-2} cfg smp thr t0 i out=$WORK/measure-smp.txt
	need_cocoguest
	prepare
	build_veil
	: >"$out"
	for cfg in ${NESTED_ARM64_SMP_CONFIGS:-2/multi 3/multi 4/multi 2/single 3/single}; do
		smp=${cfg%/*} thr=${cfg#*/}
		t0=$SECONDS
		(L1_SMP=$smp TCG_THREAD=$thr T_L1=${NESTED_ARM64_T_L1:-480} boot_l1 "i=1; while [ \$i -le $rounds ]; do
			read -r b _ </proc/uptime
			/bin/veil run --kernel /l2/Image --initrd /l2/initrd.cpio --cpus 2 --mem 256M -q \
				--cmdline 'console=ttyS0 quiet veiltest=poweroff'
			rc=\$?
			read -r e _ </proc/uptime
			echo VEIL-SMP: run=\$i rc=\$rc begin=\$b end=\$e
			i=\$((i + 1))
		done") >/dev/null || true
		local l1=$((SECONDS - t0)) line
		while read -r line; do
			local r rc b e u
			r=$(sed -n 's/.*run=\([0-9]*\).*/\1/p' <<<"$line")
			rc=$(sed -n 's/.*rc=\([0-9]*\).*/\1/p' <<<"$line")
			b=$(sed -n 's/.*begin=\([0-9.]*\).*/\1/p' <<<"$line")
			e=$(sed -n 's/.*end=\([0-9.]*\).*/\1/p' <<<"$line")
			u=$(grep -a '^VEIL-L2: init uptime=' "$WORK/console.log" | sed -n "${r}s/.*uptime=\\([0-9.]*\\).*/\\1/p")
			printf 'smp=%s tcg=%-6s run=%s rc=%s boot-to-exit=%5.1f s L2-init-uptime=%s s\n' \
				"$smp" "$thr" "$r" "$rc" "$(awk "BEGIN { print $e - $b }")" "${u:-?}" | tee -a "$out"
		done < <(grep -a '^VEIL-SMP: ' "$WORK/console.log")
		printf 'smp=%s tcg=%-6s L1 run %d s (host clock); load average %s\n' "$smp" "$thr" "$l1" \
			"$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
	done
	say "measure-smp: $out"
}

need_cocoguest() {
	[ -f "$SHARED/kernels/Image-7.3.4-cocoguest" ] || { say "skip: no $SHARED/kernels/Image-7.3.4-cocoguest"; exit 77; }
}
build_veil() {
	veil_arm64 >"$WORK/veil-build.log" 2>&1 || { tail -20 "$WORK/veil-build.log"; die "the aarch64 build of veil failed"; }
}

step_exit() { sed -n 's/.*VEIL-ARM64-L1: step exit=\([0-9]*\).*/\1/p' "$WORK/console.log" | head -n1; }

# ---- BEGIN confidential (issue 14; owner: coco) ---------------------------------------------
# The cocoguest as a confidential-style guest (docs/confidential.md).  Its L2 init does disk I/O
# of veilblk=N MiB (written, synced, read back with O_DIRECT, compared) and powers off.
coco_l2_initrd() {
	local r=$WORK/cocoroot a
	rm -rf "$r"
	mkdir -p "$r"/{bin,dev,proc,sys,tmp}
	cp "$WORK/busybox" "$r/bin/busybox"
	for a in sh mount poweroff cat echo uname grep cut sed dd md5sum sync dmesg wc; do ln -sf busybox "$r/bin/$a"; done
	cat >"$r/init" <<-'EOF'
		#!/bin/sh
		mount -t proc proc /proc
		mount -t sysfs sys /sys
		mount -t devtmpfs dev /dev
		# The boot's messages went to the console (no quiet); from here on only init's
		# markers do, so no late kernel message splits them.  The log stays in dmesg.
		echo 1 >/proc/sys/kernel/printk
		n=$(sed -n 's/.*veilblk=\([0-9]*\).*/\1/p' /proc/cmdline)
		if [ -n "$n" ] && [ -b /dev/vda ]; then
			dd if=/dev/urandom of=/tmp/w bs=1M count="$n" 2>/dev/null
			dd if=/tmp/w of=/dev/vda bs=64k 2>/dev/null
			sync
			echo 3 >/proc/sys/vm/drop_caches
			a=$(md5sum </tmp/w | cut -d' ' -f1)
			b=$(dd if=/dev/vda bs=1M count="$n" iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
			echo "VEIL-COCO-L2: blk ${n}MiB wrote $a read $b"
			echo "VEIL-COCO-L2: io-errors=$(dmesg | grep -c 'I/O error')"
		fi
		echo "VEIL-COCO-L2: dmesg bounce=$(dmesg | grep -c 'Memory encryption is active and system is using DMA bounce buffers')"
		# Last, so that no late kernel message splits the line (the boot test runs without quiet).
		echo "VEIL-COCO-L2: init $(uname -r) nproc=$(grep -c ^processor /proc/cpuinfo)"
		poweroff -f
	EOF
	chmod 755 "$r/init"
	(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$1"
}

# coco_blk_ok N: the L2 read back N MiB as it wrote them, and saw no I/O error.
coco_blk_ok() {
	local a
	a=$(sed -n "s/^VEIL-COCO-L2: blk $1MiB wrote \([0-9a-f]*\) read \([0-9a-f]*\).*/\1 \2/p" "$WORK/console.log" | head -n1)
	if [ -n "$a" ] && [ "${a% *}" = "${a#* }" ]; then say "ok: $1 MiB read back from virtio-blk as written (0 lost writes)"
	else say "FAIL: virtio-blk read-back of $1 MiB: '$a'"; fails=$((fails + 1)); fi
	want "the L2 saw 0 I/O errors" '^VEIL-COCO-L2: io-errors=0'
	want "veil's virtio-blk saw 0 errors" 'virtio-blk0: .* 0 errors'
}

# The guest's 'hypervisor services detected (a3 a2 a1 a0)': a0's bits 2-4 all set (want) or none.
coco_bits() {
	local a0
	a0=$(sed -n 's/.*hypervisor services detected (0x[0-9a-f]* 0x[0-9a-f]* 0x[0-9a-f]* 0x\([0-9a-f]*\)).*/\1/p' "$WORK/console.log" | head -n1)
	if [ -z "$a0" ]; then say "FAIL: no 'hypervisor services detected' line"; fails=$((fails + 1)); return; fi
	if [ "$1" = set ] && [ $((0x$a0 & 0x1c)) = $((0x1c)) ]; then say "ok: FEATURES 0x$a0 has bits 2-4"
	elif [ "$1" = clear ] && [ $((0x$a0 & 0x1c)) = 0 ]; then say "ok: FEATURES 0x$a0 has none of bits 2-4"
	else say "FAIL: FEATURES 0x$a0: bits 2-4 should be $1"; fails=$((fails + 1)); fi
}

coco_prepare() {
	[ -f "$SHARED/kernels/Image-7.3.4-cocoguest" ] || { say "skip: no $SHARED/kernels/Image-7.3.4-cocoguest"; exit 77; }
	prepare
	veil_arm64 >"$WORK/veil-build.log" 2>&1 || { tail -20 "$WORK/veil-build.log"; die "the aarch64 build of veil failed"; }
	T_L1=${NESTED_ARM64_T_L1:-420}
	COCO_RUN='/bin/veil run --kernel /l2/Image --initrd /l2/coco.cpio --cpus 2 --mem 384M'
}

coco_main() {
	local sub=$1 d p
	fails=0
	case $sub in
	confidential-boot)
		coco_prepare
		boot_l1 "dd if=/dev/zero of=/tmp/d.img bs=1M count=16 2>/dev/null
			$COCO_RUN --confidential --launch-manifest /tmp/m --cmdline 'console=ttyS0 veilblk=8' --disk /tmp/d.img; echo VEIL-ARM64-L1: coco-exit=\$?
			echo VEIL-ARM64-L1: manifest \$(busybox sha256sum /tmp/m)
			echo VEIL-ARM64-L1: first-blob \$(busybox head -n1 /tmp/m | busybox cut -c1-80)
			echo VEIL-ARM64-L1: image-size \$(busybox wc -c </l2/Image)
			$COCO_RUN --confidential --cmdline 'console=ttyS0 veilblk=8' --disk /tmp/d.img 2>&1 | grep '^veil: launch digest:' | busybox sed 's/^/VEIL-ARM64-L1: again /'"
		want "the L2 kernel ran init on 2 vCPUs" '^VEIL-COCO-L2: init 7\.3\.4-veil-cocoguest nproc=2'
		coco_bits set
		want "the guest bounces its DMA (its log says so)" '^VEIL-COCO-L2: dmesg bounce=[1-9]'
		want "the guest shared memory" '^veil: confidential: guest shares [1-9][0-9]* '
		p=$(sed -n 's/^veil: confidential: RAM private \([0-9]*\)\.[0-9]% now.*/\1/p' "$WORK/console.log" | head -n1)
		if [ -n "$p" ] && [ "$p" -ge 90 ]; then say "ok: $p% of RAM private at the end"
		else say "FAIL: RAM private at the end: '$p'"; fails=$((fails + 1)); fi
		want "PSCI SYSTEM_OFF: veil exits 0" '^VEIL-ARM64-L1: coco-exit=0'
		coco_blk_ok 8
		d=$(sed -n 's/^veil: launch digest: sha256:\([0-9a-f]\{64\}\).*/\1/p' "$WORK/console.log" | head -n1)
		if [ -n "$d" ] && grep -aq "^VEIL-ARM64-L1: manifest $d " "$WORK/console.log"; then
			say "ok: sha256sum of the launch manifest is the launch digest ($d)"
		else say "FAIL: launch digest '$d' not sha256sum of the manifest"; fails=$((fails + 1)); fi
		want "the same launch again gives the same digest" "^VEIL-ARM64-L1: again veil: launch digest: sha256:${d:-none}\$"
		# The kernel blob comes first, at its GPA, with the Image's own size.
		p=$(sed -n 's/^VEIL-ARM64-L1: image-size \([0-9]*\).*/\1/p' "$WORK/console.log" | head -n1)
		want "the manifest starts with the kernel" "^VEIL-ARM64-L1: first-blob veil-launch-v1 kernel gpa=0x[0-9a-f]{16} size=0x$(printf %016x "${p:-0}")"
		;;
	confidential-off)
		coco_prepare
		boot_l1 "dd if=/dev/zero of=/tmp/d.img bs=1M count=16 2>/dev/null
			$COCO_RUN --cmdline 'console=ttyS0 veilblk=8' --disk /tmp/d.img; echo VEIL-ARM64-L1: plain-exit=\$?"
		want "the L2 kernel ran init on 2 vCPUs" '^VEIL-COCO-L2: init 7\.3\.4-veil-cocoguest nproc=2'
		coco_bits clear
		if grep -aqE '^veil: (guest conversions|confidential):' "$WORK/console.log" ||
			! grep -aq '^VEIL-COCO-L2: dmesg bounce=0' "$WORK/console.log"; then
			say "FAIL: the ordinary guest shared memory or bounced"; fails=$((fails + 1))
		else say "ok: the ordinary guest shared nothing"; fi
		want "PSCI SYSTEM_OFF: veil exits 0" '^VEIL-ARM64-L1: plain-exit=0'
		coco_blk_ok 8
		;;
	confidential-data)
		coco_prepare
		boot_l1 "dd if=/dev/zero of=/tmp/d.img bs=1M count=64 2>/dev/null
			$COCO_RUN --confidential --cmdline 'console=ttyS0 quiet veilblk=64' --disk /tmp/d.img --convert-stress; echo VEIL-ARM64-L1: data-exit=\$?"
		want "PSCI SYSTEM_OFF: veil exits 0" '^VEIL-ARM64-L1: data-exit=0'
		coco_blk_ok 64
		want "host round trips ran, none failed" '^veil: convert-stress: [1-9][0-9]* round trips .* 0 failed'
		want "no device access was refused" '^veil: confidential: .*refused device accesses 0'
		;;
	confidential-bench)
		# Not a test: boot to poweroff with and without the mode, alternating, in one L1,
		# with a 16 MiB disk (the partition scan bounces); seconds from /proc/uptime.  Both
		# with --timing (two clock reads per exit): the exit profile and the mode's counters
		# (where its extra time goes) are printed after each round.
		coco_prepare
		T_L1=${NESTED_ARM64_T_L1:-900}
		boot_l1 "dd if=/dev/zero of=/tmp/d.img bs=1M count=16 2>/dev/null
			for i in 1 2 3; do for m in plain confidential; do
				f=; [ \$m = plain ] || f=--confidential
				t0=\$(busybox cut -d' ' -f1 /proc/uptime)
				$COCO_RUN \$f --timing --cmdline 'console=ttyS0 quiet' --disk /tmp/d.img >/tmp/out 2>&1
				r=\$?
				echo VEIL-ARM64-L1: bench \$m round=\$i exit=\$r \$t0 \$(busybox cut -d' ' -f1 /proc/uptime)
				grep -E '^veil: (profile: (vCPU|hypercall)|timing|confidential: (guest|launch digest of))' /tmp/out |
					busybox sed \"s/^/VEIL-ARM64-L1: \$m round=\$i /\"
			done; done"
		grep -a '^VEIL-ARM64-L1: bench ' "$WORK/console.log" |
			awk '{ t = $7 - $6; printf "nested-arm64: %s %s: %.2f s (%s)\n", $3, $4, t, $5 > "/dev/stderr"; s[$3] = s[$3] " " t }
			END { print "plain:" s["plain"]; print "confidential:" s["confidential"] }'
		return 0
		;;
	esac
	[ "$fails" = 0 ] || die "$fails check(s) failed (console: $WORK/console.log)"
	say "arm64 $sub: all checks passed"
}
# ---- END confidential -----------------------------------------------------------------------

# ---- fw64: the firmware guests in the arm64 L1 (subcommands selftest and stress) ------------
# selftest  veil run --firmware selftest on 2 vCPUs (the second started by PSCI CPU_ON): both
#           check their MPIDR and veil's probes, write result pages veil checks; exit 0.  And
#           veil run --firmware conversions: the private_mem_conversions_test stages, the guest
#           converting by MEM_SHARE/MEM_UNSHARE, contents preserved; exit 0
# stress    veil stress on 2 vCPUs for 5 s: the guest converts through pKVM's MEM_SHARE and
#           MEM_UNSHARE hypercalls; exit 0, guest conversions > 0, 0 lost writes, 0 violations
fw64_build() {
	prepare
	veil_arm64 >"$WORK/veil-build.log" 2>&1 || { tail -20 "$WORK/veil-build.log"; die "the aarch64 build of veil failed"; }
}

fw64_selftest() {
	fw64_build
	boot_l1 "/bin/veil run --firmware selftest --cpus 2; echo VEIL-ARM64-L1: selftest-exit=\$?
		/bin/veil run --firmware selftest --cpus 1 --mem 32M; echo VEIL-ARM64-L1: selftest1-exit=\$?
		/bin/veil run --firmware conversions --mem 64M; echo VEIL-ARM64-L1: conversions-exit=\$?"
	fails=0
	want "vCPU 0 is up with MPIDR affinity 0" '^selftest: cpu 0/2 up, MPIDR affinity 0$'
	want "vCPU 1 came up by PSCI CPU_ON with MPIDR affinity 1" '^selftest: cpu 1/2 up, MPIDR affinity 1$'
	want "both vCPUs read veil's probes and wrote their result pages" '^selftest: 2 vCPUs read [1-9][0-9]* probes'
	want "the selftest passed" '^selftest: pass'
	want "veil run --firmware selftest exits 0 (2 vCPUs)" '^VEIL-ARM64-L1: selftest-exit=0'
	want "veil run --firmware selftest exits 0 (1 vCPU)" '^VEIL-ARM64-L1: selftest1-exit=0'
	want "conversions: contents preserved, by hypercall, every qword checked" \
		'^conversions: .*contents preserved on conversion, by hypercall, guest checks 1 qword in 1$'
	for t in "explicit conversion" "explicit conversion, backing allocated first" \
		"punch hole, precise" "punch hole, whole area"; do
		want "conversions: $t: 5 stages pass" "^conversions: $t: 5 stages pass"
	done
	want "veil run --firmware conversions exits 0" '^VEIL-ARM64-L1: conversions-exit=0'
	[ "$fails" = 0 ] || die "$fails check(s) failed (console: $WORK/console.log)"
	say "arm64 selftest: all checks passed"
}

fw64_stress() {
	local json
	fw64_build
	boot_l1 "/bin/veil stress --cpus 2 --seconds 5 --json >/tmp/stress.out 2>/tmp/stress.err
		echo VEIL-ARM64-L1: stress-exit=\$?; cat /tmp/stress.err; tail -n1 /tmp/stress.out | sed 's/^/VEIL-ARM64-JSON: /'"
	fails=0
	json=$(sed -n 's/^VEIL-ARM64-JSON: //p' "$WORK/console.log" | head -n1)
	jwant() { grep -qE -- "$2" <<<"$json" && say "ok: $1" || { say "FAIL: $1"; fails=$((fails + 1)); }; }
	want "veil stress exits 0 (every invariant held)" '^VEIL-ARM64-L1: stress-exit=0'
	want "the stress firmware passed" '^stress: pass'
	if grep -aq '^stress: the guest converts through' "$WORK/console.log"; then
		say "FAIL: the guest converted through the register fallback, not MEM_SHARE/MEM_UNSHARE"
		fails=$((fails + 1))
	else say "ok: the guest converted by hypercall (MEM_SHARE/MEM_UNSHARE)"; fi
	jwant "the report is JSON" '^\{"model":'
	jwant "the guest converted pages" '"guest_conversions":[1-9]'
	jwant "the guest's conversions were all accepted" '"guest_refused":0,'
	jwant "the host converted pages" '"host_conversions":[1-9]'
	jwant "DMA ran" '"dma":[1-9]'
	jwant "0 lost writes" '"lost_writes":0,'
	jwant "0 invariant violations" '"violations":0,'
	[ "$fails" = 0 ] || die "$fails check(s) failed (console: $WORK/console.log)"
	say "arm64 stress: all checks passed; $(grep -ao '"guest_conversions":[0-9]*' <<<"$json")"
}
# ---- end fw64 --------------------------------------------------------------------------------

# ---- BEGIN confidential-refusal (issue 14; owner: refuse) ------------------------------------
# confidential-refusal  veil run --confidential --firmware refusal --disk IMG: the firmware
#           (firmware/arm64/refusal.c) shares its virtqueue, header and one data page, writes
#           pattern A to sector 0 from the shared page (OK), then pattern B from a private page
#           it never shared (IOERR), reads A back, finds its private page unchanged, and sends
#           bad MEM_SHARE/MEM_UNSHARE/HYP_MEMINFO arguments (each -3) and a share of a shared /
#           unshare of a private page (the no-op 0).  L1 checks veil's exit 0 (the firmware's
#           verdict), refused_device > 0 and guest_faults >= 6 in --json's line, the stderr line
#           naming the refusal at the private page's GPA, and the image's sector 0 (A, not B).
refusal_main() {
	local json gpa want_md5 d
	fw64_build
	boot_l1 "dd if=/dev/zero of=/tmp/r.img bs=1M count=1 2>/dev/null
		/bin/veil run --confidential --firmware refusal --mem 64M --disk /tmp/r.img --json >/tmp/r.out 2>/tmp/r.err
		echo VEIL-ARM64-L1: refusal-exit=\$?; cat /tmp/r.err; cat /tmp/r.out
		tail -n1 /tmp/r.out | sed 's/^/VEIL-ARM64-JSON: /'
		echo VEIL-ARM64-L1: sector0 \$(busybox head -c 512 /tmp/r.img | busybox md5sum | busybox cut -d' ' -f1)
		/bin/veil run --confidential --firmware refusal --mem 64M --disk /tmp/r.img 2>&1 | grep '^veil: launch digest:' | busybox sed 's/^/VEIL-ARM64-L1: again /'"
	fails=0
	json=$(sed -n 's/^VEIL-ARM64-JSON: //p' "$WORK/console.log" | head -n1)
	jwant() { grep -qE -- "$2" <<<"$json" && say "ok: $1" || { say "FAIL: $1"; fails=$((fails + 1)); }; }
	want "the launch was measured" '^veil: launch digest: sha256:[0-9a-f]{64}'
	want "the write from the shared page: OK" '^refusal: ok: write of sector 0 from a shared page'
	want "the write from the private page: IOERR" '^refusal: ok: write of sector 0 from a private page: status IOERR'
	want "the private page kept its data" '^refusal: ok: the private page still holds its data'
	want "sector 0 read back holds the shared write" '^refusal: ok: sector 0 holds the shared write'
	for t in "an unaligned IPA" "an IPA below RAM" "an IPA above RAM" "x2 = 1"; do
		want "MEM_SHARE of $t: -3" "^refusal: ok: MEM_SHARE (of|with) $t: -3"
	done
	want "MEM_UNSHARE with x3 = 1: -3" '^refusal: ok: MEM_UNSHARE with x3 = 1: -3'
	want "HYP_MEMINFO with x1 = 1: -3" '^refusal: ok: HYP_MEMINFO with x1 = 1: -3'
	want "MEM_SHARE of a shared page: the no-op 0" '^refusal: ok: MEM_SHARE of a shared page: the no-op 0'
	want "MEM_UNSHARE of a private page: the no-op 0" '^refusal: ok: MEM_UNSHARE of a private page: the no-op 0'
	want "the device still worked after the refusal" '^refusal: ok: a last read of sector 0'
	want "the firmware passed" '^refusal: PASS'
	want "veil exits 0, the firmware's verdict" '^VEIL-ARM64-L1: refusal-exit=0'
	gpa=$(sed -n 's/^refusal: the private page is at GPA \(0x[0-9a-f]*\).*/\1/p' "$WORK/console.log" | head -n1)
	want "stderr names the first refusal: virtio-blk0 at the private page's GPA ${gpa:-?}" \
		"virtio-blk0: refused a device access to private memory at GPA ${gpa:-none} "
	jwant "the summary is JSON" '^\{'
	jwant "refused_device > 0" '"refused_device":[1-9]'
	jwant "guest_faults >= 6 (the bad calls, counted)" '"guest_faults":([6-9]|[1-9][0-9])'
	jwant "guest_shares 4 (three pages, and the no-op share of a shared one)" '"guest_shares":4,'
	jwant "guest_unshares 1 (the no-op unshare of a private page)" '"guest_unshares":1,'
	want_md5=$(python3 -c 'import sys,hashlib; sys.stdout.write(hashlib.md5((b"veil-shared-A." * 40)[:512]).hexdigest())')
	want "the image's sector 0 in L1 holds pattern A ($want_md5)" "^VEIL-ARM64-L1: sector0 $want_md5"
	[ "$fails" = 0 ] || die "$fails check(s) failed (console: $WORK/console.log)"
	say "arm64 confidential-refusal: all checks passed; $(grep -ao '"refused_device":[0-9]*' <<<"$json"), $(grep -ao '"guest_faults":[0-9]*' <<<"$json")"
}
# ---- END confidential-refusal ----------------------------------------------------------------

cmd=${1:-}
shift || true
case $cmd in
prepare) prepare ;;
probe)
	prepare
	boot_l1 /bin/arm64-probe
	[ "$(step_exit)" = 0 ] || die "arm64-probe failed (exit $(step_exit))"
	grep -aq "ARM64-PROBE: all checks passed" "$WORK/console.log" || die "arm64-probe did not pass"
	say "arm64-probe passed"
	;;
l1-run)
	prepare
	boot_l1 "$*"
	;;
linux)
	need_cocoguest
	prepare
	build_veil
	run='/bin/veil run --kernel /l2/Image --initrd /l2/initrd.cpio --cpus 2 --mem 256M'
	boot_l1 "/bin/veil caps; echo VEIL-ARM64-L1: caps-exit=\$?
		dd if=/dev/zero of=/tmp/d.img bs=1M count=16 2>/dev/null
		/bin/seccomp-watch >/tmp/seccomp.txt 2>&1 &
		printf 'VEILINPUT over hvc0\\n' | $run --cmdline 'console=ttyS0 quiet veiltest=poweroff' \
			--disk /tmp/d.img --rng --balloon --console virtio
		echo VEIL-ARM64-L1: off-exit=\$?
		wait
		cat /tmp/seccomp.txt
		$run --cmdline 'console=ttyS0 quiet veiltest=reboot'; echo VEIL-ARM64-L1: reset-exit=\$?
		$run --cmdline 'console=ttyS0 quiet veiltest=panic panic=-1'; echo VEIL-ARM64-L1: panic-exit=\$?"
	fails=0
	want "veil caps exits 0 in the arm64 L1" '^VEIL-ARM64-L1: caps-exit=0'
	# What veil caps printed (between L1's first marker and its exit) names arm64's KVM: its
	# probe guest's pKVM MEM_SHARE call reached veil through the SMCCC filter; and its
	# revocation probe ran an arm64 guest.
	sed -n '/^VEIL-ARM64-L1: up/,/^VEIL-ARM64-L1: caps-exit=/p' "$WORK/console.log" >"$WORK/caps.txt"
	if grep -aqE '^MEM_SHARE reaches veil: +yes' "$WORK/caps.txt"; then
		say "ok: veil caps: a guest's MEM_SHARE (arm64's share call) reaches veil"
	else say "FAIL: veil caps: $(grep -a 'reaches veil:' "$WORK/caps.txt" || echo 'no MEM_SHARE line')"; fails=$((fails + 1)); fi
	if grep -aqE '^host mapping revocable: +(yes|no) \(probed\)' "$WORK/caps.txt"; then
		say "ok: veil caps ran its revocation probe guest on arm64"
	else say "FAIL: veil caps: $(grep -a '^host mapping revocable:' "$WORK/caps.txt")"; fails=$((fails + 1)); fi
	want "the L2 kernel ran init" '^VEIL-L2: init uptime=[0-9.]+ kernel=7\.3\.4-veil-cocoguest'
	want "the L2 runs on 2 vCPUs" '^VEIL-L2: nproc=2$'
	want_in "MemTotal is 200 to 256 MiB (kB)" 'VEIL-L2: memtotal_kb=' 204800 262144
	want "4 virtio-mmio devices bound" '^VEIL-L2: virtio_devices=4$'
	want "virtio-console (hvc0) carried a shell's line" '^VEIL-L2: hvc0 shell uid=0 says hello'
	# Not anchored: hvc0's echo of the line shares veil's stdout with the UART.
	want "veil's stdin reached the guest through hvc0" 'VEIL-L2: hvc0 read=VEILINPUT over hvc0'
	want "virtio-rng feeds /dev/hwrng" '^VEIL-L2: hwrng=virtio_rng\.[0-9]+ bytes=64'
	want "every veil thread was in seccomp mode 2 while the guest ran" \
		'^VEIL-SECCOMP: threads=([3-9]|[1-9][0-9]) mode2=\1$'
	want_not "no veil thread outside seccomp mode 2" '^VEIL-SECCOMP: (tid=.* seccomp=[^2]|never)'
	want "PSCI SYSTEM_OFF: veil exits 0" '^VEIL-ARM64-L1: off-exit=0'
	want "PSCI SYSTEM_RESET: veil exits 3" '^VEIL-ARM64-L1: reset-exit=3'
	want "the L2 was asked to panic" '^VEIL-L2: action=panic'
	want_not "the L2 did not outlive its panic" '^VEIL-L2: still alive after the panic'
	want "a panic with panic=-1: veil exits 3" '^VEIL-ARM64-L1: panic-exit=3'
	[ "$fails" = 0 ] || die "$fails check(s) failed (console: $WORK/console.log)"
	say "arm64 linux: all checks passed"
	;;
linux-stock)
	prepare
	stock_l2
	build_veil
	T_L1=${NESTED_ARM64_T_L1:-420}
	boot_l1 "/bin/veil run --kernel /l2/stock.vmlinuz --initrd /l2/initrd.cpio --cpus 2 --mem 512M \
		--cmdline 'console=ttyS0 quiet veiltest=poweroff' --timing; echo VEIL-ARM64-L1: stock-exit=\$?"
	fails=0
	want "Debian's stock arm64 kernel ran init" '^VEIL-L2: init uptime=[0-9.]+ kernel=6\.1\.0-[0-9]+-arm64$'
	want "the L2 runs on 2 vCPUs" '^VEIL-L2: nproc=2$'
	want_in "MemTotal is 400 to 512 MiB (kB)" 'VEIL-L2: memtotal_kb=' 409600 524288
	want "PSCI SYSTEM_OFF: veil exits 0" '^VEIL-ARM64-L1: stock-exit=0'
	[ "$fails" = 0 ] || die "$fails check(s) failed (console: $WORK/console.log)"
	say "arm64 linux-stock: all checks passed; $(grep -a -m1 '^veil: timing:' "$WORK/console.log")"
	;;
confidential-boot | confidential-off | confidential-data | confidential-bench) coco_main "$cmd" ;; # confidential block
selftest) fw64_selftest ;; # fw64
stress) fw64_stress ;; # fw64
confidential-refusal) refusal_main ;; # confidential-refusal block
virtio-blk-integrity)
	# As x86's test_blk_integrity: 64 MiB on a 72 MiB image, then the image checked in L1.
	need_cocoguest
	prepare
	build_veil
	n=$((64 << 20))
	boot_l1 "dd if=/dev/zero of=/tmp/disk.img bs=1M count=72 2>/dev/null
		/bin/veil run --kernel /l2/Image --initrd /l2/initrd.cpio --cpus 2 --mem 256M \
			--cmdline 'console=ttyS0 quiet veiltest=blk-integrity veilseed=42' --disk /tmp/disk.img
		echo VEIL-ARM64-L1: blk-exit=\$?
		echo VEIL-ARM64-L1: image_md5=\$(head -c $n /tmp/disk.img | md5sum | cut -d' ' -f1) \
			want_md5=\$(prng 42 $n | md5sum | cut -d' ' -f1)"
	fails=0
	want "L2 found the virtio-mmio disk" '^VEIL-L2: blk=present sectors=147456$'
	want "L2 wrote 64 MiB and synced" '^VEIL-L2: blk_write_rc=0 '
	want "L2 read back what it wrote" '^VEIL-L2: blk=ok$'
	want "veil exits 0 after the guest's poweroff" '^VEIL-ARM64-L1: blk-exit=0'
	want "veil saw no I/O errors and no malformed requests" '^veil: virtio-blk0: .* 0 errors, 0 malformed'
	want "the image in L1 holds the generator's 64 MiB" \
		'^VEIL-ARM64-L1: image_md5=([0-9a-f]{32}) want_md5=\1$'
	[ "$fails" = 0 ] || die "$fails check(s) failed (console: $WORK/console.log)"
	say "arm64 virtio-blk-integrity: all checks passed"
	;;
bench-boot) bench_boot "$@" ;;
peer-root) peer_root ;;
measure-smp) measure_smp "$@" ;;
sysroot) sysroot ;;
veil) veil_arm64 ;;
*) sed -n '2,/^# Everything is cached/p' "$SELF" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
