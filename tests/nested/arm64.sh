#!/usr/bin/env bash
# The arm64 nested platform: qemu-system-aarch64 (TCG, -M virt,virtualization=on,gic-version=3)
# runs Debian's stock trixie-backports 7.3 arm64 kernel as L1, whose built-in KVM runs the L2.
#
# Usage: arm64.sh SUBCOMMAND
#   prepare        packages, the L1 kernel, arm64 busybox, the probe (idempotent, cached)
#   probe          boots L1 and runs arm64-probe.c in it: KVM's capabilities, and one tiny
#                  guest run from guest_memfd (MMIO exits, a revoked host mapping, PSCI off)
#   linux          boots L1, and in it veil boots the shared cocoguest kernel (arm64 Image) on
#                  2 vCPUs with a virtio-mmio disk, rng and balloon: checks the L2's markers,
#                  8 MiB written and read back through the disk, PSCI SYSTEM_OFF (exit 0), a
#                  second boot's SYSTEM_RESET (exit 3) and a third's panic under panic=-1 (exit 3)
#   linux-stock    the same L1 boots Debian 12's stock arm64 kernel under veil (2 vCPUs,
#                  512 MiB): init on 2 vCPUs, MemTotal in range, SYSTEM_OFF exits 0
#   confidential-boot|-off|-data  the cocoguest under --confidential (docs/confidential.md):
#                  boot with bits 2-4 and a digest checked against its manifest; the same kernel
#                  without it shares nothing; 64 MiB through bounced DMA with --convert-stress
#   l1-run 'CMD'   debugging: boots L1 and runs one shell command in it
#   sysroot        the arm64 -dev packages veil links (liburing, libseccomp, libfdt, ...)
#                  unpacked into <build>/nested-work/arm64/sysroot, and a meson cross file
#   veil           veil cross-built statically for aarch64 against that sysroot (without
#                  firmware guests: they are x86 programs)
#
# Environment: NESTED_SRC, NESTED_BUILD (source and build directory, as for nested.sh),
# NESTED_DEBIAN_MIRROR (a mirror URI instead of the machine's own).
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

l2_initrd() {
	local r=$WORK/l2root a
	rm -rf "$r"
	mkdir -p "$r"/{bin,dev,proc,sys,tmp}
	cp "$WORK/busybox" "$r/bin/busybox"
	for a in sh mount poweroff reboot cat echo uname grep cut ls wc dd md5sum sync sleep; do ln -sf busybox "$r/bin/$a"; done
	cat >"$r/init" <<-'EOF'
		#!/bin/sh
		mount -t proc proc /proc
		mount -t sysfs sys /sys
		echo "VEIL-ARM64-L2: init $(uname -r) nproc=$(grep -c ^processor /proc/cpuinfo) uptime=$(cut -d' ' -f1 /proc/uptime)"
		echo "VEIL-ARM64-L2: $(grep MemTotal /proc/meminfo)"
		echo "VEIL-ARM64-L2: virtio devices=$(ls /sys/bus/virtio/devices 2>/dev/null | wc -l)"
		mount -t devtmpfs dev /dev
		if [ -b /dev/vda ]; then
			dd if=/dev/urandom of=/tmp/w bs=1M count=8 2>/dev/null
			dd if=/tmp/w of=/dev/vda bs=1M oflag=direct 2>/dev/null
			sync
			a=$(md5sum </tmp/w | cut -d' ' -f1)
			b=$(dd if=/dev/vda bs=1M count=8 iflag=direct 2>/dev/null | md5sum | cut -d' ' -f1)
			echo "VEIL-ARM64-L2: blk wrote $a read $b"
		fi
		[ ! -c /dev/hwrng ] || echo "VEIL-ARM64-L2: hwrng bytes=$(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c)"
		if grep -q veiltest=reboot /proc/cmdline; then echo "VEIL-ARM64-L2: rebooting"; reboot -f; fi
		if grep -q veiltest=panic /proc/cmdline; then
			echo "VEIL-ARM64-L2: panicking"
			echo 1 >/proc/sys/kernel/sysrq
			sleep 1 # the marker leaves the UART before the panic's printk
			echo c >/proc/sysrq-trigger
		fi
		poweroff -f
	EOF
	chmod 755 "$r/init"
	(cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$1"
}

# initramfs CMD: an arm64 busybox L1 that runs CMD as a step, reports its exit and powers off.
initramfs() {
	local root=$WORK/root a
	rm -rf "$root"
	mkdir -p "$root"/{bin,dev,proc,sys,tmp}
	cp "$WORK/busybox" "$root/bin/busybox"
	for a in sh mount poweroff cat ls echo uname sleep grep; do ln -sf busybox "$root/bin/$a"; done
	cp "$WORK/arm64-probe" "$root/bin/arm64-probe"
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
}

# boot_l1 CMD: boots L1 with CMD as its step; the console goes to $WORK/console.log and stdout.
boot_l1() {
	initramfs "$1"
	local t0=$SECONDS rc=0
	say "booting L1 (qemu-system-aarch64 TCG) with: $1"
	timeout -k 5 "$T_L1" qemu-system-aarch64 -M virt,virtualization=on,gic-version=3 -cpu max \
		-smp 2 -m 1024 -accel tcg,thread=multi -nographic -no-reboot \
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
		# with a 16 MiB disk (the partition scan bounces); seconds from /proc/uptime.
		coco_prepare
		T_L1=${NESTED_ARM64_T_L1:-900}
		boot_l1 "dd if=/dev/zero of=/tmp/d.img bs=1M count=16 2>/dev/null
			for i in 1 2 3; do for m in plain confidential; do
				f=; [ \$m = plain ] || f=--confidential
				t0=\$(busybox cut -d' ' -f1 /proc/uptime)
				$COCO_RUN \$f --cmdline 'console=ttyS0 quiet' --disk /tmp/d.img -q >/dev/null 2>&1
				r=\$?
				echo VEIL-ARM64-L1: bench \$m round=\$i exit=\$r \$t0 \$(busybox cut -d' ' -f1 /proc/uptime)
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
	[ -f "$SHARED/kernels/Image-7.3.4-cocoguest" ] || { say "skip: no $SHARED/kernels/Image-7.3.4-cocoguest"; exit 77; }
	prepare
	veil_arm64 >"$WORK/veil-build.log" 2>&1 || { tail -20 "$WORK/veil-build.log"; die "the aarch64 build of veil failed"; }
	run='/bin/veil run --kernel /l2/Image --initrd /l2/initrd.cpio --cpus 2 --mem 256M'
	boot_l1 "dd if=/dev/zero of=/tmp/d.img bs=1M count=16 2>/dev/null
		$run --cmdline 'console=ttyS0 quiet' --disk /tmp/d.img --rng --balloon; echo VEIL-ARM64-L1: off-exit=\$?
		$run --cmdline 'console=ttyS0 quiet veiltest=reboot'; echo VEIL-ARM64-L1: reset-exit=\$?
		$run --cmdline 'console=ttyS0 quiet veiltest=panic panic=-1'; echo VEIL-ARM64-L1: panic-exit=\$?"
	fails=0
	want "the L2 kernel ran init on 2 vCPUs" '^VEIL-ARM64-L2: init 7\.3\.4-veil-cocoguest nproc=2 '
	want "MemTotal is 200 to 256 MiB" '^VEIL-ARM64-L2: MemTotal: +(2[0-5][0-9]{4}|26[0-1][0-9]{3}) kB'
	want "3 virtio-mmio devices bound" '^VEIL-ARM64-L2: virtio devices=3'
	a=$(sed -n 's/^VEIL-ARM64-L2: blk wrote \([0-9a-f]*\) read \([0-9a-f]*\).*/\1 \2/p' "$WORK/console.log" | head -n1)
	if [ -n "$a" ] && [ "${a% *}" = "${a#* }" ]; then say "ok: 8 MiB read back from virtio-blk as written"
	else say "FAIL: virtio-blk read-back: '$a'"; fails=$((fails + 1)); fi
	want "virtio-rng gave 32 bytes" '^VEIL-ARM64-L2: hwrng bytes=32'
	want "PSCI SYSTEM_OFF: veil exits 0" '^VEIL-ARM64-L1: off-exit=0'
	want "PSCI SYSTEM_RESET: veil exits 3" '^VEIL-ARM64-L1: reset-exit=3'
	want "the L2 panicked" '^VEIL-ARM64-L2: panicking'
	want "a panic with panic=-1: veil exits 3" '^VEIL-ARM64-L1: panic-exit=3'
	want "veil saw no I/O errors" 'virtio-blk0: .* 0 errors'
	[ "$fails" = 0 ] || die "$fails check(s) failed (console: $WORK/console.log)"
	say "arm64 linux: all checks passed"
	;;
linux-stock)
	prepare
	stock_l2
	veil_arm64 >"$WORK/veil-build.log" 2>&1 || { tail -20 "$WORK/veil-build.log"; die "the aarch64 build of veil failed"; }
	T_L1=${NESTED_ARM64_T_L1:-420}
	boot_l1 "/bin/veil run --kernel /l2/stock.vmlinuz --initrd /l2/initrd.cpio --cpus 2 --mem 512M \
		--cmdline 'console=ttyS0 quiet' --timing; echo VEIL-ARM64-L1: stock-exit=\$?"
	fails=0
	want "Debian's stock arm64 kernel ran init on 2 vCPUs" '^VEIL-ARM64-L2: init 6\.1\.0-[0-9]+-arm64 nproc=2 '
	want "MemTotal is 400 to 512 MiB" '^VEIL-ARM64-L2: MemTotal: +(4[0-9]{5}|5[0-1][0-9]{4}|52[0-3][0-9]{3}) kB'
	want "PSCI SYSTEM_OFF: veil exits 0" '^VEIL-ARM64-L1: stock-exit=0'
	[ "$fails" = 0 ] || die "$fails check(s) failed (console: $WORK/console.log)"
	say "arm64 linux-stock: all checks passed; $(grep -a -m1 '^veil: timing:' "$WORK/console.log")"
	;;
confidential-boot | confidential-off | confidential-data | confidential-bench) coco_main "$cmd" ;; # confidential block
selftest) fw64_selftest ;; # fw64
stress) fw64_stress ;; # fw64
sysroot) sysroot ;;
veil) veil_arm64 ;;
*) sed -n '2,/^# Everything is cached/p' "$SELF" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
