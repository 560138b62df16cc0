#!/usr/bin/env bash
# The nested platform (PLATFORM.md §B): QEMU TCG runs an L1 Linux with KVM, veil runs inside
# L1, and real Linux guests run as L2 under veil.  Results come back as marker lines on L1's
# serial console.
#
# Usage: nested.sh SUBCOMMAND [ARGS]
#   prepare                      packages, kernels, static veil, initramfs images (idempotent)
#   run-test NAME                one test of the meson suite `nested` (prepares first):
#                                selftest, linux-stock, linux-swprot, linux-panic,
#                                stress-default, stress-swprot, stress-inplace,
#                                virtio-blk-integrity, virtio-balloon, virtio-pci,
#                                virtio-pci-intx, seed-inplace, virtio-blk-jail, api,
#                                guest-script (guest-script.sh)
#   qemu-direct [stock|swprot] [poweroff|panic|shell] [-- QEMU ARGS]
#                                debugging: boots an L2 kernel with the L2 initramfs directly
#                                under host-level QEMU TCG (no L1, no veil) and checks markers
#   l1-run 'SHELL COMMAND'       debugging: boots L1 and runs one command in it (veil is /bin/veil,
#                                the L2 kernels and initramfs are in /l2; with NESTED_L1_PEER=1,
#                                QEMU is there too, as /usr/bin/qemu-system-x86_64)
#   l1-shell                     debugging: boots L1 with an interactive shell on this terminal
#   l1-peer [stock|swprot] [poweroff|panic]
#                                debugging: the same L2 boot as the linux tests, but with Debian's
#                                QEMU (-accel kvm) as the VMM inside L1: a peer to compare veil with
#   bench-boot [stock|swprot] [ROUNDS]
#                                veil and QEMU (-accel kvm) booting the same L2 to poweroff,
#                                alternating in one L1, 5 rounds by default, the stock kernel
#                                as bzImage and as ELF vmlinux; min/median/max, veil/QEMU and
#                                veil's profile (bench/)
#   bench-blk [ROUNDS] [BOOTS]   virtio-blk O_DIRECT in the stock L2 under veil and under QEMU
#                                (aio=io_uring and its default), alternating in one L1 (every
#                                second boot in the reverse order): 4 KiB
#                                random reads at QD 1 and 32, 1 MiB sequential reads and writes;
#                                min/median/max and veil/QEMU (bench/)
#   bench-blk-prof [ROUNDS] [BOOTS] [FULL]
#                                the QD 32 row of bench-blk alone (ROUNDS rounds, default 6) under
#                                veil (--timing) and QEMU aio=io_uring, with L1's /proc sampled
#                                per VMM thread across it (blk-prof.sh): CPU time, run-queue
#                                wait, switches; L2's CPU time and interrupts; with FULL > 0,
#                                then one unsampled boot of each with all rows, FULL rounds
#   bench-convert [ITERATIONS [ROUNDS [SIZE...]]]
#                                bench/veil-bench-convert in one L1: gmem_convert() against the raw
#                                kernel loop on a SW_PROTECTED VM (out-of-place with
#                                VEIL_NESTED_L1=swprot, in-place with VEIL_NESTED_L1=inplace) and on
#                                a default VM; min/median/max and veil/raw per range size (bench/)
#
# Environment:
#   NESTED_SRC, NESTED_BUILD     source and meson build directory (default: ../.. and ../../build)
#   NESTED_SHARED                the shared folder (default: $NESTED_SRC/../shared)
#   VEIL_NESTED_L1               auto (default: the shared swprot kernel if present, else stock),
#                                swprot, inplace, stock (trixie-backports), or a bzImage path
#   NESTED_VEIL_ARGS             extra arguments for every `veil run` inside L1
#   NESTED_L2_CMDLINE_EXTRA      extra words for the L2 kernel command line
#                                (e.g. "tsc=reliable no_timer_check"; none by default)
#   NESTED_L2_VERBOSE=1          drop `quiet` from the L2 command line
#   NESTED_SWPROT_NOXSAVE=0      do not add `noxsave` to the swprot L2's command line (see
#                                l2_cmdline: a workaround for this platform's CPUID leaf 0xD)
#   NESTED_TCG_THREAD            multi or single: QEMU's TCG threading for L1 (default: single
#                                for the firmware tests, multi for Linux boots; see run_test)
#   NESTED_L1_CMDLINE_EXTRA      extra words for the L1 kernel command line
#   NESTED_T_L2_INIT             seconds from veil's start to the L2 init marker (default 120)
#   NESTED_KVM_HOLD=0            do not hold a KVM VM open in L1 (see kvm-hold.c)
#   NESTED_TSC_EARLY_KHZ         L1's tsc_early_khz= (default: the host's TSC rate, measured by
#                                tsc-khz.c; 0 leaves it out)
#   NESTED_BENCH_VMLINUX=0       bench-boot: the bzImage only, no vmlinux rounds
#   NESTED_DEBIAN_MIRROR         a Debian mirror URI to use instead of the one in
#                                /etc/apt/sources.list.d/debian.sources
#
# Everything is cached under the build directory: nested-cache/ (downloads), nested-veil/ (the
# static veil build), nested-work/ (unpacked kernels, images, per-run console logs).
set -euo pipefail
export LC_ALL=C # byte semantics: serial consoles carry the odd stray byte

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SELF")
SRC=$(readlink -f "${NESTED_SRC:-$HERE/../..}")
BUILD=$(readlink -m "${NESTED_BUILD:-$SRC/build}")
SHARED=$(readlink -m "${NESTED_SHARED:-$SRC/../shared}")
CACHE=$BUILD/nested-cache
WORK=$BUILD/nested-work
VEILB=$BUILD/nested-veil
L1_CHOICE=${VEIL_NESTED_L1:-auto}
SWPROT=$SHARED/kernels/vmlinuz-7.3.4-swprot
INPLACE=$SHARED/kernels/vmlinuz-7.3.4-inplace
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# shellcheck source=tests/nested/debian.sh
. "$HERE/debian.sh"
# shellcheck source=tests/nested/guest-script.sh
. "$HERE/guest-script.sh"
export NESTED_SRC=$SRC NESTED_BUILD=$BUILD NESTED_SHARED=$SHARED VEIL_NESTED_L1=$L1_CHOICE

# QEMU for L1 (PLATFORM.md §B).
# shellcheck disable=SC2054
L1_QEMU=(qemu-system-x86_64 -accel tcg,thread=${NESTED_TCG_THREAD:-multi} -cpu max -smp 3 -m 3072 -nographic -no-reboot)
L1_CMDLINE="console=ttyS0 panic=-1 quiet ${NESTED_L1_CMDLINE_EXTRA:-}"
[ "${NESTED_KVM_HOLD:-1}" != 0 ] || L1_CMDLINE+=" veilnested.hold=0"

# Stage timeouts, in seconds.
T_PACKAGES=900
T_DOWNLOAD=600
T_VEIL_BUILD=600
T_IMAGES=120
T_L1_BOOT=60        # measured: 3 s on an idle machine, 8 to 13 s on this busy 2-core one
T_L1_POWEROFF=30
T_L2_INIT=${NESTED_T_L2_INIT:-120} # veil start to the L2 init marker; measured 20 to 50 s
T_QEMU_DIRECT=120   # measured: the stock L2 reaches init in about 2 s under plain TCG

say() { printf 'nested: %s\n' "$*"; }
# clean_line: drops carriage returns, terminal escape sequences and other unprintable bytes
# (a UART sometimes delivers a stray 0xff) from a console line.
shopt -s extglob
clean_line() {
	line=${line//$'\e['*([0-9;?])[A-Za-z]/}
	line=${line//$'\e'[cD-Z]/}
	line=${line//[^[:print:]$'\t']/}
}
die() { say "$*"; exit 1; }
skip() { say "skip: $*"; exit 77; }

now_us() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }
# secs_since START_US: elapsed seconds with 2 decimals.
secs_since() { local d=$(($(now_us) - $1)); printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000)); }

# Children started with run_timeout are ended if we are (meson sends SIGTERM on its own timeout;
# GNU timeout runs in its own process group, so it must be told explicitly).
CHILD=
on_signal() {
	[ -z "$CHILD" ] || kill -TERM "$CHILD" 2>/dev/null || true
	[ -z "${QEMU_PIDFILE:-}" ] || [ ! -s "$QEMU_PIDFILE" ] || kill -TERM "$(cat "$QEMU_PIDFILE")" 2>/dev/null || true
	exit 143
}
trap on_signal TERM INT HUP

# run_timeout SECS CMD...: CMD under timeout(1), in the background so signals reach us.
run_timeout() {
	local rc=0
	timeout -k 10 "$@" &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=
	return "$rc"
}

# stage NAME SECS FUNCTION [ARGS]: runs a function of this script in a child under a timeout and
# says which stage broke.
stage() {
	local name=$1 secs=$2 rc=0 t0
	shift 2
	t0=$(now_us)
	run_timeout "$secs" "$BASH" "$SELF" __fn "$@" || rc=$?
	case $rc in
	0) say "stage '$name' done in $(secs_since "$t0") s" ;;
	77) exit 77 ;;
	124 | 137) die "stage '$name' timed out after $secs s" ;;
	*) die "stage '$name' failed (exit $rc)" ;;
	esac
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"
	elif command -v sudo >/dev/null; then sudo -n "$@"
	else echo "need root or sudo for: $*" >&2; return 1
	fi
}

# unko FILE.ko[.xz|.zst] OUT.ko
unko() {
	case $1 in
	*.ko.xz) xz -dc "$1" >"$2" ;;
	*.ko.zst) zstd -qdc "$1" >"$2" ;;
	*.ko.gz) gzip -dc "$1" >"$2" ;;
	*) cp "$1" "$2" ;;
	esac
}

# mod_deps FILE.ko: the module names it depends on, from its .modinfo.
mod_deps() { tr '\0' '\n' <"$1" | sed -n 's/^depends=//p' | head -n1 | tr ',' ' '; }

# copy_modules TREE OUTDIR NAME...: copies the named modules (as in `modprobe NAME`) and, first,
# everything they depend on, uncompressed, into OUTDIR, and writes OUTDIR/load-order.
copy_modules() {
	local tree=$1 out=$2 f n
	shift 2
	declare -A path=() seen=()
	while IFS= read -r f; do
		n=${f##*/}; n=${n%%.ko*}; n=${n//-/_}
		path[$n]=$f
	done < <(find "$tree" -name '*.ko*' -type f)
	mkdir -p "$out"
	: >"$out/load-order"
	visit() {
		local m=${1//-/_} d
		[ -z "${seen[$m]:-}" ] || return 0
		seen[$m]=1
		[ -n "${path[$m]:-}" ] || { echo "module $m not found under $tree" >&2; return 1; }
		unko "${path[$m]}" "$out/$m.ko"
		for d in $(mod_deps "$out/$m.ko"); do visit "$d"; done
		echo "$m.ko" >>"$out/load-order"
	}
	for n in "$@"; do visit "$n"; done
}

# cpio_dir DIR OUT: packs DIR as an uncompressed newc archive (the kernels are compressed
# already, and an L2 under nested TCG unpacks a plain cpio much faster than a gzipped one).
cpio_dir() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$2"; }

busybox_tree() {
	local root=$1 a bb
	bb=$(command -v busybox)
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
	cp "$bb" "$root/bin/busybox"
	for a in $("$bb" --list); do
		[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
	done
}

# ---------------------------------------------------------------------------------------------
# Stages (run as `nested.sh __fn NAME` under stage(), each in its own process)

fn_l1_kernel() {
	local out=$WORK/l1 k=
	rm -rf "$out.new"
	mkdir -p "$out.new"
	case $L1_CHOICE in
	auto) if [ -f "$SWPROT" ]; then k=$SWPROT; else echo "no $SWPROT: falling back to the stock kernel"; fi ;;
	swprot) k=$SWPROT ;;
	inplace) k=$INPLACE ;;
	stock) ;;
	/*) k=$L1_CHOICE ;;
	*) echo "VEIL_NESTED_L1=$L1_CHOICE: expected auto, swprot, inplace, stock or an absolute path" >&2; return 1 ;;
	esac
	if [ -n "$k" ]; then
		[ -f "$k" ] || { echo "L1 kernel $k is missing" >&2; return 1; }
		cp "$k" "$out.new/vmlinuz"
		echo "$(basename "$k") (built-in KVM)" >"$out.new/name"
	else
		fetch_stock_l1 "$out.new"
	fi
	rm -rf "$out"
	mv "$out.new" "$out"
	echo "L1 kernel: $(cat "$out/name")"
}

# The stock trixie-backports kernel and its KVM modules, through a private apt state that
# reuses this machine's mirror URI; the machine's own apt lists are untouched.
fetch_stock_l1() {
	local out=$1 apt=$CACHE/apt-trixie-backports debs=$CACHE/debs bin mods uri pkg kver tmp
	mkdir -p "$debs"
	bin=$(ls "$debs"/linux-binary-7.3.*+deb13-amd64_*.deb 2>/dev/null | sort -V | tail -n1 || true)
	if [ -n "$bin" ]; then
		pkg=$(basename "$bin"); pkg=${pkg%%_*}
		mods=$(ls "$debs/linux-modules-${pkg#linux-binary-}"_*.deb 2>/dev/null | sort -V | tail -n1 || true)
	fi
	if [ -z "$bin" ] || [ -z "${mods:-}" ]; then
		uri=$(mirror_uri)
		mkdir -p "$apt"/{lists/partial,cache/archives/partial}
		# Signed: apt checks the InRelease signature against Debian's archive keyring.
		echo "deb [signed-by=$KEYRING] $uri trixie-backports main" >"$apt/sources.list"
		local o=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
			-o "Dir::State::lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=0)
		echo "fetching the trixie-backports package lists"
		apt-get "${o[@]}" update -qq || { echo "trixie-backports is unreachable (apt-get update failed)" >&2; return 1; }
		pkg=$(apt-cache "${o[@]}" search --names-only '^linux-binary-7\.3\.[0-9]+\+deb13-amd64$' |
			awk '{ print $1 }' | sort -V | tail -n1)
		[ -n "$pkg" ] || { echo "trixie-backports offers no linux-binary-7.3.*+deb13-amd64" >&2; return 1; }
		tmp=$(mktemp -d "$debs/.dl.XXXXXX")
		chmod 755 "$tmp"
		echo "downloading $pkg and linux-modules-${pkg#linux-binary-}"
		# shellcheck disable=SC2046
		(cd "$tmp" && apt-get "${o[@]}" $(apt_dl_opts) download -q "$pkg" "linux-modules-${pkg#linux-binary-}")
		mv "$tmp"/*.deb "$debs/"
		rmdir "$tmp"
		bin=$(ls "$debs/${pkg}"_*.deb | sort -V | tail -n1)
		mods=$(ls "$debs/linux-modules-${pkg#linux-binary-}"_*.deb | sort -V | tail -n1)
	fi
	if [ "$(cat "$WORK/l1/stamp" 2>/dev/null)" = "$bin $mods" ]; then
		cp -a "$WORK/l1/." "$out/" # unpacked already
		return 0
	fi
	tmp=$(mktemp -d "$WORK/.stock-l1.XXXXXX")
	dpkg-deb -x "$bin" "$tmp/bin"
	local vmlinuz
	vmlinuz=$(find "$tmp/bin" -type f -name 'vmlinuz*' | head -n1)
	[ -n "$vmlinuz" ] || { echo "no vmlinuz in $bin" >&2; return 1; }
	cp "$vmlinuz" "$out/vmlinuz"
	dpkg-deb --fsys-tarfile "$mods" |
		tar -x -C "$tmp" --wildcards '*/kvm.ko*' '*/kvm-amd.ko*' '*/irqbypass.ko*' '*/ccp.ko*'
	# PLATFORM.md §B: irqbypass, ccp, kvm, kvm-amd (copy_modules orders by .modinfo depends).
	copy_modules "$tmp" "$out/modules" irqbypass ccp kvm kvm_amd
	rm -rf "$tmp"
	echo "$(basename "$bin" .deb) + KVM modules ($(tr '\n' ' ' <"$out/modules/load-order"))" >"$out/name"
	echo "$bin $mods" >"$out/stamp"
}

# Debian 12's stock kernel, from the machine's own apt sources, with its virtio modules.
fn_l2_stock() {
	local debs=$CACHE/debs out=$WORK/l2-stock deb pkg tmp kver
	mkdir -p "$debs"
	deb=$(ls "$debs"/linux-image-6.1.0-*-amd64_*.deb 2>/dev/null | sort -V | tail -n1 || true)
	if [ -z "$deb" ]; then
		pick() {
			apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{ print $1 }' | sort -V | tail -n1
		}
		pkg=$(pick)
		if [ -z "$pkg" ]; then
			echo "apt knows no linux-image-6.1.0-*-amd64: running apt-get update"
			as_root apt-get update -qq
			pkg=$(pick)
		fi
		[ -n "$pkg" ] || { echo "no linux-image-6.1.0-*-amd64 in this machine's apt sources" >&2; return 1; }
		tmp=$(mktemp -d "$debs/.dl.XXXXXX")
		chmod 755 "$tmp"
		echo "downloading $pkg"
		# shellcheck disable=SC2046
		(cd "$tmp" && apt-get $(apt_dl_opts) download -q "$pkg")
		mv "$tmp"/*.deb "$debs/"
		rmdir "$tmp"
		deb=$(ls "$debs/$pkg"_*.deb | sort -V | tail -n1)
	fi
	if [ "$(cat "$out/stamp" 2>/dev/null)" != "$(basename "$deb")" ]; then
		echo "unpacking $(basename "$deb")"
		rm -rf "$out"
		mkdir -p "$out"
		dpkg-deb -x "$deb" "$out/root"
		basename "$deb" >"$out/stamp"
	fi
	kver=$(ls "$out/root/lib/modules" | head -n1)
	[ -f "$out/root/boot/vmlinuz-$kver" ] || { echo "no /boot/vmlinuz-$kver in $(basename "$deb")" >&2; return 1; }
	# All of drivers/virtio plus the virtio device drivers, with what they depend on.
	local mods=() f
	for f in "$out/root/lib/modules/$kver"/kernel/drivers/virtio/*.ko*; do
		f=$(basename "$f"); mods+=("${f%%.ko*}")
	done
	mods+=(virtio_mmio virtio_pci virtio_blk virtio_balloon virtio_console virtio-rng virtio_net)
	rm -rf "$out/modules"
	copy_modules "$out/root/lib/modules/$kver/kernel" "$out/modules" "${mods[@]}"
	echo "$kver" >"$out/modules/version"
	echo "L2 kernel: $kver; virtio modules: $(tr '\n' ' ' <"$out/modules/load-order")"
}

fn_veil_build() {
	if [ ! -f "$VEILB/build.ninja" ] || [ "$(cat "$VEILB/.nested-src" 2>/dev/null)" != "$SRC" ]; then
		rm -rf "$VEILB"
		meson setup --buildtype=release -Dstatic=true -Db_sanitize=none "$VEILB" "$SRC"
		echo "$SRC" >"$VEILB/.nested-src"
	fi
	ninja -C "$VEILB" vmm/veil tests/test_memfault
	file_is_static "$VEILB/vmm/veil"
	file_is_static "$VEILB/tests/test_memfault"
}

file_is_static() {
	local out
	out=$(LC_ALL=C ldd "$1" 2>&1 || true)
	if grep -q 'not a dynamic executable' <<<"$out"; then return 0; fi
	echo "$1 is not statically linked:" >&2
	ldd "$1" >&2 || true
	return 1
}

fn_helpers() {
	if [ ! -x "$WORK/kvm-hold" ] || [ "$HERE/kvm-hold.c" -nt "$WORK/kvm-hold" ]; then
		"${CC:-cc}" -static -O2 -Wall -Wextra -o "$WORK/kvm-hold" "$HERE/kvm-hold.c"
	fi
	file_is_static "$WORK/kvm-hold"
	if [ ! -x "$WORK/prng" ] || [ "$HERE/prng.c" -nt "$WORK/prng" ]; then
		"${CC:-cc}" -static -O2 -Wall -Wextra -o "$WORK/prng" "$HERE/prng.c"
	fi
	file_is_static "$WORK/prng"
	if [ ! -x "$WORK/blk-bench" ] || [ "$HERE/blk-bench.c" -nt "$WORK/blk-bench" ]; then
		"${CC:-cc}" -static -O2 -Wall -Wextra -o "$WORK/blk-bench" "$HERE/blk-bench.c" -luring -lpthread
	fi
	file_is_static "$WORK/blk-bench"
	if [ ! -x "$WORK/api-client" ] || [ "$HERE/api-client.c" -nt "$WORK/api-client" ]; then
		"${CC:-cc}" -static -O2 -Wall -Wextra -o "$WORK/api-client" "$HERE/api-client.c"
	fi
	file_is_static "$WORK/api-client"
	if [ ! -x "$WORK/tsc-khz" ] || [ "$HERE/tsc-khz.c" -nt "$WORK/tsc-khz" ]; then
		"${CC:-cc}" -O2 -Wall -Wextra -o "$WORK/tsc-khz" "$HERE/tsc-khz.c"
	fi
	# The host's TSC rate for L1's tsc_early_khz= (see tsc-khz.c); only for a constant TSC.
	rm -f "$WORK/host-tsc-khz"
	if grep -qw constant_tsc /proc/cpuinfo; then
		"$WORK/tsc-khz" >"$WORK/host-tsc-khz"
		echo "host TSC: $(cat "$WORK/host-tsc-khz") kHz"
	fi
}

# l1_cmdline: L1's kernel command line.
l1_cmdline() {
	local c=$L1_CMDLINE k=${NESTED_TSC_EARLY_KHZ:-}
	[ -n "$k" ] || k=$(cat "$WORK/host-tsc-khz" 2>/dev/null || true)
	[ -z "$k" ] || [ "$k" = 0 ] || c+=" tsc_early_khz=$k"
	echo "$c" | tr -s ' ' | sed 's/ $//'
}

fn_l2_initramfs() {
	local root=$WORK/l2-initramfs
	rm -rf "$root"
	busybox_tree "$root"
	cp "$HERE/l2-init" "$root/init"
	chmod 755 "$root/init"
	cp "$WORK/l2-stock/modules"/* "$root/lib/modules/"
	cp "$WORK/prng" "$root/bin/prng"
	cp "$WORK/blk-bench" "$root/bin/blk-bench"
	cpio_dir "$root" "$WORK/l2-initrd.cpio"
	echo "L2 initramfs: $(du -h "$WORK/l2-initrd.cpio" | cut -f1)"
}

fn_l1_initramfs() {
	local root=$WORK/l1-initramfs kver
	rm -rf "$root"
	busybox_tree "$root"
	cp "$HERE/l1-init" "$root/init"
	chmod 755 "$root/init"
	cp "$VEILB/vmm/veil" "$root/bin/veil"
	cp "$VEILB/tests/test_memfault" "$root/bin/test_memfault"
	cp "$WORK/kvm-hold" "$root/bin/kvm-hold"
	cp "$WORK/prng" "$root/bin/prng"
	cp "$WORK/api-client" "$root/bin/api-client"
	cp "$HERE/api-l1.sh" "$root/bin/api-test"
	chmod 755 "$root/bin/api-test"
	cp "$HERE/blk-prof.sh" "$root/bin/blk-prof"
	chmod 755 "$root/bin/blk-prof"
	if [ -d "$WORK/l1/modules" ]; then cp "$WORK/l1/modules"/* "$root/lib/modules/"; fi
	mkdir -p "$root/l2"
	kver=$(cat "$WORK/l2-stock/modules/version")
	cp "$WORK/l2-stock/root/boot/vmlinuz-$kver" "$root/l2/stock.bzImage"
	if [ -f "$SWPROT" ]; then cp "$SWPROT" "$root/l2/swprot.bzImage"; fi
	cp "$WORK/l2-initrd.cpio" "$root/l2/initrd.cpio"
	cpio_dir "$root" "$WORK/l1-base.cpio"
	echo "L1 initramfs: $(du -h "$WORK/l1-base.cpio" | cut -f1) (veil, busybox, $(ls "$root/l2" | tr '\n' ' '))"
}

# ---------------------------------------------------------------------------------------------

stage_packages() {
	local rc=0
	run_timeout "$T_PACKAGES" "$BASH" "$HERE/deps.sh" || rc=$?
	if [ $rc -ne 0 ]; then
		if ! command -v qemu-system-x86_64 >/dev/null && [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
			skip "qemu-system-x86_64 is not installed, and installing it needs root or sudo"
		fi
		[ $rc -eq 124 ] || [ $rc -eq 137 ] && die "stage 'packages' timed out after $T_PACKAGES s"
		die "stage 'packages' failed (exit $rc)"
	fi
	# QEMU must at least start a TCG machine; if it cannot, nothing here can run.
	local out
	if ! out=$(echo quit | timeout 30 qemu-system-x86_64 -machine none -accel tcg -nodefaults \
		-display none -monitor stdio 2>&1); then
		skip "qemu-system-x86_64 cannot start a TCG machine here: $out"
	fi
	say "stage 'packages' ok ($(qemu-system-x86_64 --version | head -n1))"
}

prepare() {
	local t0
	t0=$(now_us)
	mkdir -p "$CACHE" "$WORK"
	exec 9>"$WORK/.lock"
	run_timeout 1800 flock 9 || die "stage 'lock' timed out waiting for another nested run"
	stage_packages
	stage "L1 kernel ($L1_CHOICE)" "$T_DOWNLOAD" fn_l1_kernel
	stage "L2 kernel (Debian 12 stock)" "$T_DOWNLOAD" fn_l2_stock
	stage "veil static build" "$T_VEIL_BUILD" fn_veil_build
	stage "L1 helpers" "$T_IMAGES" fn_helpers
	stage "L2 initramfs" "$T_IMAGES" fn_l2_initramfs
	stage "L1 initramfs" "$T_IMAGES" fn_l1_initramfs
	say "prepared in $(secs_since "$t0") s"
	# The lock stays held until run_l1 has copied the images it needs.
}

# ---------------------------------------------------------------------------------------------
# Running L1

# A test script for L1 is a list of `step NAME TIMEOUT CMD...` lines (see l1-init).
STEPS=()
declare -A STEP_T=() STEP_L2=()
add_step() {
	local name=$1 secs=$2 line
	shift 2
	printf -v line '%q ' "$@"
	STEPS+=("step $name $secs $line")
	STEP_T[$name]=$secs
}

# The console log has one "[SECONDS] line" per line, SECONDS counted from QEMU's start.
strip_ts() { sed 's/^\[ *[0-9.]*\] //'; }
log_has() { grep -aq -- "$1" "$RUN/console.log" 2>/dev/null; }
# ts_of PATTERN: the host timestamp of the first line matching PATTERN.
ts_of() { grep -a -m1 -- "$1" "$RUN/console.log" | sed -n 's/^\[ *\([0-9.]*\)\].*/\1/p'; }
step_output() { strip_ts <"$RUN/console.log" | sed -n "/^VEIL-L1: step=$1 begin/,/^VEIL-L1: step=$1 exit=/p"; }
step_exit() { strip_ts <"$RUN/console.log" | sed -n "s/^VEIL-L1: step=$1 exit=\([0-9]*\).*/\1/p" | head -n1; }
step_secs() { strip_ts <"$RUN/console.log" | sed -n "s/^VEIL-L1: step=$1 exit=.* seconds=\([0-9.]*\).*/\1/p" | head -n1; }

qemu_kill() {
	local pid _
	[ -s "$QEMU_PIDFILE" ] || return 0
	pid=$(cat "$QEMU_PIDFILE")
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 25); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null || true
}

# fail_stage NAME MESSAGE: stops QEMU, shows the end of the console, and records the failure
# in RUN_ERR (the caller returns 1).
RUN_ERR=
fail_stage() {
	qemu_kill
	wait 2>/dev/null || true
	QEMU_PIDFILE=
	say "---- last console lines ($RUN/console.log) ----"
	tail -n 40 "$RUN/console.log" | strip_ts | sed 's/^/    /'
	RUN_ERR="stage '$1' $2"
	say "$RUN_ERR"
}

# run_l1 NAME: boots L1 with the steps in STEPS and waits for each stage's marker.
run_l1() {
	local name=$1 total=0 s
	RUN=$WORK/runs/$name
	rm -rf "$RUN"
	mkdir -p "$RUN/extra"
	{
		echo "# generated by nested.sh for $name"
		for s in "${STEPS[@]}"; do echo "$s"; done
	} >"$RUN/extra/test.sh"
	cpio_dir "$RUN/extra" "$RUN/extra.cpio"
	# Concatenated newc archives: the kernel unpacks both.
	cat "$WORK/l1-base.cpio" "$RUN/extra.cpio" ${L1_EXTRA_CPIO:+"$L1_EXTRA_CPIO"} >"$RUN/initrd.cpio"
	cp "$WORK/l1/vmlinuz" "$RUN/vmlinuz"
	exec 9>&- # prepare's lock: this run has its own copies now
	for s in "${STEP_T[@]}"; do total=$((total + s + 15)); done
	total=$((total + T_L1_BOOT + T_L1_POWEROFF))

	QEMU_PIDFILE=$RUN/qemu.pid
	local start
	start=$(now_us)
	say "L1: $(cat "$WORK/l1/name"); booting QEMU TCG, ${L1_QEMU[2]#tcg,} (whole-run limit $total s)"
	say "L1 command line: $(l1_cmdline)"
	(
		rc=0
		timeout -k 5 "$total" "${L1_QEMU[@]}" -pidfile "$QEMU_PIDFILE" -kernel "$RUN/vmlinuz" \
			-initrd "$RUN/initrd.cpio" -append "$(l1_cmdline)" </dev/null 2>&1 || rc=$?
		echo "VEIL-HOST: qemu exit=$rc"
	) | while IFS= read -r line || [ -n "$line" ]; do
		clean_line
		d=$(($(now_us) - start))
		printf -v line '[%4d.%03d] %s' $((d / 1000000)) $((d % 1000000 / 1000)) "$line"
		printf '%s\n' "$line" >>"$RUN/console.log"
		printf '%s\n' "$line"
	done &
	local reader=$!

	# Wait for each marker in turn, each with its own deadline.
	wait_marker() { # STAGE SECS PATTERN [ANOTHER PATTERN THAT ENDS THE WAIT TOO]
		local deadline=$(($(now_us) + $2 * 1000000))
		while ! log_has "$3"; do
			[ -z "${4:-}" ] || ! log_has "$4" || return 0
			if log_has '^\[[ 0-9.]*\] VEIL-HOST: qemu exit='; then
				log_has "$3" && return 0
				fail_stage "$1" "failed: QEMU exited ($(strip_ts <"$RUN/console.log" | sed -n 's/^VEIL-HOST: qemu exit=//p')) before the marker /$3/"
				return 1
			fi
			if [ "$(now_us)" -ge "$deadline" ]; then
				fail_stage "$1" "timed out after $2 s (no marker /$3/)"
				return 1
			fi
			sleep 0.2
		done
	}
	wait_marker "L1 boot" "$T_L1_BOOT" 'VEIL-L1: init ' || return 1
	for s in "${STEPS[@]}"; do
		set -- $s
		wait_marker "step $2" 30 "VEIL-L1: step=$2 begin" || return 1
		if [ -n "${STEP_L2[$2]:-}" ]; then
			wait_marker "step $2: L2 boot to init" "${STEP_L2[$2]}" 'VEIL-L2: init ' \
				"VEIL-L1: step=$2 exit=" || return 1
		fi
		wait_marker "step $2" $(($3 + 15)) "VEIL-L1: step=$2 exit=" || return 1
	done
	wait_marker "L1 poweroff" "$T_L1_POWEROFF" 'VEIL-L1: done' || return 1
	wait_marker "L1 poweroff" "$T_L1_POWEROFF" 'VEIL-HOST: qemu exit=' || return 1
	wait "$reader" || true
	QEMU_PIDFILE=
	say "L1 run finished in $(secs_since "$start") s (host clock)"
}

# timings: L1 boot, and each step's time (L1 clock) and its L2 markers (host clock).
print_timings() {
	local s n b l2 l2u
	say "timing: L1 boot to init: $(ts_of 'VEIL-L1: init ') s host clock" \
		"(L1 uptime at init $(strip_ts <"$RUN/console.log" | sed -n 's/^VEIL-L1: init uptime=\([0-9.]*\).*/\1/p') s)"
	for s in "${STEPS[@]}"; do
		set -- $s
		n=$2
		say "timing: step $n: $(step_secs "$n") s (L1 clock)"
		b=$(ts_of "VEIL-L1: step=$n begin")
		l2=$(step_output "$n" | grep -m1 '^VEIL-L2: init ' || true)
		if [ -n "$l2" ]; then
			l2u=$(echo "$l2" | sed -n 's/.*uptime=\([0-9.]*\).*/\1/p')
			say "timing: step $n: L2 init marker $(awk "BEGIN { printf \"%.2f\", $(ts_of 'VEIL-L2: init ') - $b }") s" \
				"after veil started (host clock); L2's own uptime at init: $l2u s"
		fi
		step_output "$n" | grep -iE 'first KVM_RUN|first serial|time to' | sed "s/^/nested: timing: step $n: veil: /" || true
	done
}

# ---------------------------------------------------------------------------------------------
# Tests

FAILS=0
check() { # DESCRIPTION COMMAND...: one assertion on the run's results
	local what=$1
	shift
	if "$@"; then say "ok: $what"; else say "FAIL: $what"; FAILS=$((FAILS + 1)); fi
}
exit_is() { [ "$(step_exit "$1")" = "$2" ]; }
# grep reads to the end (no -q): an early exit would SIGPIPE the writer, and under pipefail a
# match would read as a failure (seen in CI: the panic test's long trace after its marker).
output_has() { step_output "$1" | grep -aE -- "$2" >/dev/null; }
not_output_has() { ! output_has "$@"; }
memtotal_in() { # STEP MIN_MIB MAX_MIB
	local kb
	kb=$(step_output "$1" | sed -n 's/^VEIL-L2: memtotal_kb=\([0-9]*\).*/\1/p' | head -n1)
	[ -n "$kb" ] && [ "$kb" -ge $(($2 * 1024)) ] && [ "$kb" -le $(($3 * 1024)) ]
}

l2_cmdline() { # ACTION [KERNEL]
	local q=quiet x=
	[ "${NESTED_L2_VERBOSE:-0}" = 1 ] && q=
	# Platform workaround, not a veil one: under this nested KVM (TCG's SVM in L1), the CPUID
	# leaf 0xD that KVM offers is inconsistent ("XSAVE consistency problem: size 2696 !=
	# kernel_size 576").  Debian's 6.1 warns and falls back to FXSAVE; 7.3 oopses on that
	# fallback path (NULL pointer in fpstate_reset), under QEMU as the L1 VMM too (l1-peer).
	# noxsave puts 7.3 where 6.1 ends up.  NESTED_SWPROT_NOXSAVE=0 drops it.
	[ "${2:-}" = swprot ] && [ "${NESTED_SWPROT_NOXSAVE:-1}" != 0 ] && x=noxsave
	echo "console=ttyS0 veiltest=$1 panic=-1 $q $x ${NESTED_L2_CMDLINE_EXTRA:-}" | tr -s ' ' | sed 's/ $//'
}

# veil's --timing (time to the first KVM_RUN and the first serial byte), when it has one.
veil_timing_arg() {
	if "$VEILB/vmm/veil" run --help 2>&1 | grep -q -- '--timing'; then echo --timing; fi
}

# shellcheck disable=SC2086,SC2046
veil_linux_step() { # STEP KERNEL ACTION
	add_step "$1" 240 /bin/veil run --kernel "/l2/$2.bzImage" --initrd /l2/initrd.cpio \
		--cmdline "$(l2_cmdline "$3" "$2")" --cpus 2 --mem 256M $(veil_timing_arg) ${NESTED_VEIL_ARGS:-}
	STEP_L2[$1]=$T_L2_INIT
}

test_selftest() {
	add_step caps 60 /bin/veil caps
	# shellcheck disable=SC2086
	add_step selftest 120 /bin/veil run --firmware selftest --cpus 2 --mem 64M ${NESTED_VEIL_ARGS:-}
	run_l1 selftest || return 1
	check "L1 has /dev/kvm" log_has 'VEIL-L1: kvm=yes'
	check "veil caps exits 0" exit_is caps 0
	check "veil caps: host mapping revocable: yes (real KVM, DESIGN.md §1)" \
		output_has caps '^host mapping revocable: +yes'
	check "veil run --firmware selftest --cpus 2 --mem 64M exits 0" exit_is selftest 0
	check "the selftest prints 'selftest: pass'" output_has selftest '^selftest: pass'
}

test_linux() { # NAME KERNEL
	veil_linux_step linux "$2" poweroff
	run_l1 "$1" || return 1
	check "L2 init ran" output_has linux '^VEIL-L2: init '
	check "L2 sees 2 CPUs (VEIL-L2: nproc=2)" output_has linux '^VEIL-L2: nproc=2$'
	check "L2 MemTotal is between 200 and 256 MiB with --mem 256M" memtotal_in linux 200 256
	check "L2 reached its poweroff" output_has linux '^VEIL-L2: action=poweroff'
	check "veil exits 0 after the guest's poweroff" exit_is linux 0
}

# virtio-blk end to end (issue 6): the stock L2 finds the disk through ACPI (virtio-mmio),
# writes 64 MiB of `prng 42` to it, syncs, reads it back and compares; after veil exits, L1
# checks the image against the same generator.
blk_integrity_steps() { # EXTRA VEIL ARGS...
	local n=$((64 * 1024 * 1024))
	add_step mkdisk 60 dd if=/dev/zero of=/tmp/disk.img bs=1M count=72
	# shellcheck disable=SC2046,SC2086
	add_step linux 300 /bin/veil run --kernel /l2/stock.bzImage --initrd /l2/initrd.cpio \
		--cmdline "$(l2_cmdline blk-integrity stock) veilseed=42" --cpus 2 --mem 256M \
		--disk /tmp/disk.img "$@" $(veil_timing_arg) ${NESTED_VEIL_ARGS:-}
	STEP_L2[linux]=$T_L2_INIT
	add_step image 60 sh -c "echo image_md5=\$(head -c $n /tmp/disk.img | md5sum | cut -d' ' -f1) \
		want_md5=\$(prng 42 $n | md5sum | cut -d' ' -f1)"
}

test_blk_integrity() { # NAME [VEIL ARGS...]
	local name=$1
	shift
	blk_integrity_steps "$@"
	run_l1 "$name" || return 1
	check "L2 found the virtio-blk disk (through ACPI)" output_has linux '^VEIL-L2: blk=present sectors=147456'
	check "L2 read back what it wrote" output_has linux '^VEIL-L2: blk=ok'
	check "veil exits 0 after the guest's poweroff" exit_is linux 0
	check "veil saw no I/O errors and no malformed requests" \
		output_has linux '^veil: virtio-blk0: .* 0 errors, 0 malformed'
	check "the image in L1 holds the generator's 64 MiB" image_matches
	if [[ " $* " == *" --transport pci "* ]]; then
		check "L2's virtio-pci driver bound both functions (blk, rng)" \
			output_has linux '^VEIL-L2: virtio_pci_functions=2'
		check "virtio-rng on PCI feeds /dev/hwrng" \
			output_has linux '^VEIL-L2: hwrng=virtio_rng\.0 bytes=64'
		if [[ ${NESTED_L2_CMDLINE_EXTRA:-} == *pci=nomsi* ]]; then
			check "interrupts were INTx: INTA# of both functions, through the _PRT's GSIs" \
				output_has linux '^veil: INTx: [1-9][0-9]* assertions of INTA# by 2 virtio-pci functions'
			check "no MSI-X message was sent" not_output_has linux '^veil: MSI: '
		else
			check "interrupts were MSI-X messages through irqfd" \
				output_has linux '^veil: MSI: [1-9][0-9]* messages through irqfd'
		fi
	fi
}
# The integrity test with veil jailed (veil run --jail): an empty root, user 65534, no
# capabilities.  A watcher in L1 finds the jailed veil (PID 1 of its own PID namespace) once
# its seccomp filter is on, that is once the guest runs, and prints what /proc says of it.
jail_watch_script='
i=0
while [ $i -lt 300 ]; do
	for d in /proc/[0-9]*; do
		read -r c 2>/dev/null <$d/comm || continue # a builtin: no fork per process under TCG
		[ "$c" = veil ] || continue
		grep -q "^NSpid:.*[[:space:]]1$" $d/status 2>/dev/null || continue
		grep -q "^Seccomp:[[:space:]]*2" $d/status || continue
		echo "VEIL-JAIL: $(grep -E "^(Uid|Gid|CapEff|CapBnd|NoNewPrivs):" $d/status | tr -s "\t\n" "  ")"
		for n in mnt pid ipc uts net; do
			[ "$(readlink $d/ns/$n)" = "$(readlink /proc/1/ns/$n)" ] || echo "VEIL-JAIL: own $n namespace"
		done
		echo "VEIL-JAIL: root=[$(ls -A $d/root | tr "\n" " ")]"
		exit 0
	done
	i=$((i + 1))
	sleep 1
done
echo "VEIL-JAIL: no jailed veil seen"'
jail_own_ns() { local n; for n in mnt pid ipc uts net; do output_has linux "^VEIL-JAIL: own $n namespace" || return 1; done; }
test_blk_jail() {
	add_step mkjail 30 mkdir -p /tmp/jail
	# In the background: the step returns at once, the watcher prints during the next steps.
	add_step watch 30 sh -c "(sh -c '$jail_watch_script') &"
	blk_integrity_steps --jail /tmp/jail --user 65534:65534
	run_l1 virtio-blk-jail || return 1
	check "L2 found the virtio-blk disk (through ACPI)" output_has linux '^VEIL-L2: blk=present sectors=147456'
	check "L2 read back what it wrote" output_has linux '^VEIL-L2: blk=ok'
	check "veil exits 0 after the guest's poweroff, through its jail's parent" exit_is linux 0
	check "veil saw no I/O errors and no malformed requests" \
		output_has linux '^veil: virtio-blk0: .* 0 errors, 0 malformed'
	check "the image in L1 holds the generator's 64 MiB" image_matches
	check "the running veil was uid/gid 65534, no capabilities, no_new_privs" output_has linux \
		'^VEIL-JAIL: Uid: 65534 65534 65534 65534 Gid: 65534 65534 65534 65534 CapEff: 0+ CapBnd: 0+ NoNewPrivs: 1'
	check "it had its own mount, PID, IPC, UTS and network namespaces" jail_own_ns
	check "its root was the empty /tmp/jail" output_has linux '^VEIL-JAIL: root=\[\]'
}

# The seeds' scenario end to end (issue 6), on the in-place kernel with a SW_PROTECTED VM, so
# conversions are real kernel conversions that keep contents: while the stock L2 does the
# integrity test's I/O, veil round-trips ranges of its RAM, half of them over the disk's live
# buffers, waiting for I/O pins or retrying EAGAIN; the balloon punches what the guest frees.
test_seed_inplace() {
	add_step caps 60 /bin/veil caps
	blk_integrity_steps --vm-type sw-protected --balloon --convert-stress
	run_l1 seed-inplace || return 1
	check "veil caps: sw-protected gets the in-place model" output_has caps '^ +sw-protected +in-place'
	check "the run used the in-place model" output_has linux '^veil: memory model: in-place'
	check "L2 read back what it wrote while its memory was converted under it" \
		output_has linux '^VEIL-L2: blk=ok'
	check "veil exits 0: the guest powered off and no round trip failed" exit_is linux 0
	check "the image in L1 holds the generator's 64 MiB (0 lost writes)" image_matches
	check "round trips ran, some over live disk buffers, none failed" seed_counts
	check "veil saw no I/O errors and no malformed requests" \
		output_has linux '^veil: virtio-blk0: .* 0 errors, 0 malformed'
	check "the balloon punched reported pages, none refused" balloon_punched 1
}
seed_counts() {
	local line rt io failed
	line=$(step_output linux | grep -a '^veil: convert-stress:' | head -n1)
	rt=$(echo "$line" | sed -n 's/.*: \([0-9]*\) round trips.*/\1/p')
	io=$(echo "$line" | sed -n 's/.*(\([0-9]*\) over the latest.*/\1/p')
	failed=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
	echo "    $line"
	[ -n "$rt" ] && [ "$rt" -ge 100 ] && [ -n "$io" ] && [ "$io" -ge 10 ] && [ "$failed" = 0 ]
}

# Free page reporting (issue 6): the guest frees 96 MiB; veil punches what it reports and
# measures, by fstat of guest_memfd, how much allocation that gave back.
test_balloon() {
	# A line on veil's stdin for the guest's hvc0 (--console virtio takes the input).
	# shellcheck disable=SC2046,SC2086,SC2016
	add_step linux 300 sh -c 'printf "VEILINPUT over hvc0\n" | "$@"' sh \
		/bin/veil run --kernel /l2/stock.bzImage --initrd /l2/initrd.cpio \
		--cmdline "$(l2_cmdline balloon stock)" --cpus 2 --mem 256M --balloon --rng --console virtio \
		$(veil_timing_arg) ${NESTED_VEIL_ARGS:-}
	STEP_L2[linux]=$T_L2_INIT
	run_l1 virtio-balloon || return 1
	check "L2's virtio_balloon bound to the device" output_has linux '^VEIL-L2: balloon=bound'
	check "L2 filled and freed its tmpfs" output_has linux '^VEIL-L2: balloon=done'
	check "veil exits 0 after the guest's poweroff" exit_is linux 0
	check "at least 64 MiB reported and punched, none refused" balloon_punched 64
	check "virtio-rng feeds /dev/hwrng" output_has linux '^VEIL-L2: hwrng=virtio_rng\.0 bytes=64'
	check "virtio-console (hvc0) carried a shell's line" \
		output_has linux '^VEIL-L2: hvc0 shell uid=0 says hello'
	check "veil counted the console's bytes and the rng's requests" vcon_rng_counted
	# Not anchored: hvc0's echo of the line shares veil's stdout with the UART.
	check "veil's stdin reached the guest through hvc0" \
		output_has linux 'VEIL-L2: hvc0 read=VEILINPUT over hvc0'
	check "L1's MemFree rose by at least 64 MiB across the reports" balloon_freed 64
}
vcon_rng_counted() {
	output_has linux '^veil: virtio-console: [1-9][0-9]* bytes' &&
		output_has linux '^veil: virtio-rng: [1-9][0-9]* requests, [1-9]'
}
balloon_field() { # REGEX: the number before it on veil's balloon line
	step_output linux | grep -a '^veil: virtio-balloon:' | head -n1 | sed -n "s/.* \([0-9]*\) $1.*/\1/p"
}
balloon_punched() {
	local p r
	p=$(balloon_field 'MiB punched')
	r=$(balloon_field 'refused')
	[ -n "$p" ] && [ "$p" -ge "$1" ] && [ "$r" = 0 ]
}
balloon_freed() {
	local d
	d=$(step_output linux | grep -a '^veil: virtio-balloon:' | head -n1 |
		sed -n 's/.*MemFree rose by \([0-9]*\) MiB.*/\1/p')
	[ -n "$d" ] && [ "$d" -ge "$1" ]
}

image_matches() {
	local line
	line=$(step_output image | grep -a '^image_md5=' | head -n1)
	[ -n "$line" ] && [ "${line#image_md5=}" != "$line" ] &&
		[ "$(echo "$line" | sed 's/.*image_md5=\([0-9a-f]*\).*/\1/')" = \
		  "$(echo "$line" | sed 's/.*want_md5=\([0-9a-f]*\).*/\1/')" ]
}

# The control API (issue 11): a Linux L2 created, booted, paused, resumed, ballooned and shut
# down through the socket of `veil serve`, from L1 (api-l1.sh, with the static api-client).
# Unanchored: the guest's console (veil's stdout, through tee) shares L1's console with these
# lines, and the one run so far had "VEIL-L2: api tick 13 memtotalVEIL-API: shutdown 204".
api_line() { step_output api | sed -n "s/.*VEIL-API: $1 //p" | head -n1; }
api_paused_frozen() {
	local l a b
	l=$(api_line paused)
	a=$(sed -n 's/^exits=\([0-9]*\) .*/\1/p' <<<"$l")
	b=$(sed -n 's/.* then=\([0-9]*\) .*/\1/p' <<<"$l")
	say "exits while paused: $a then $b ($l)"
	[ -n "$a" ] && [ "$a" = "$b" ] && [[ $l == *"state=paused" ]]
}
api_resumed_moving() {
	local l b r
	l=$(api_line paused)
	b=$(sed -n 's/.* then=\([0-9]*\) .*/\1/p' <<<"$l")
	r=$(api_line resumed | sed -n 's/^exits=\([0-9]*\).*/\1/p')
	say "exits after resume: $r"
	[ -n "$b" ] && [ -n "$r" ] && [ "$r" -gt "$b" ]
}
# MemTotal in L2's ticks fell by at least MIN_MIB after vm.resize.
api_balloon_gave() { # MIN_MIB
	local first last
	first=$(step_output api | sed -n 's/^VEIL-L2: api tick [0-9]* memtotal_kb=\([0-9]*\)/\1/p' | head -n1)
	last=$(step_output api | sed -n 's/^VEIL-L2: api tick [0-9]* memtotal_kb=\([0-9]*\)/\1/p' | tail -n1)
	say "L2 MemTotal: $first kB at the first tick, $last kB at the last"
	[ -n "$first" ] && [ -n "$last" ] && [ $((first - last)) -ge $(($1 * 1024)) ]
}
test_api() {
	add_step api 420 /bin/api-test "$(l2_cmdline api stock)"
	run_l1 api || return 1
	check "the socket is mode 600" output_has api 'VEIL-API: socket mode=600$'
	check "vmm.ping answers 200" output_has api 'VEIL-API: ping 200 \{"version"'
	check "vm.create answers 204" output_has api 'VEIL-API: create 204'
	check "vm.boot answers 204" output_has api 'VEIL-API: boot 204'
	check "L2 init ran and ticks" output_has api '^VEIL-L2: api tick 0 '
	check "vm.info says running" output_has api 'VEIL-API: state running$'
	check "vm.pause answers 204" output_has api 'VEIL-API: pause 204'
	check "exits stay frozen for 3 s while paused" api_paused_frozen
	check "vm.resume answers 204" output_has api 'VEIL-API: resume 204'
	check "exits move after vm.resume" api_resumed_moving
	check "vm.resize answers 204" output_has api 'VEIL-API: resize 204'
	check "the balloon took at least 48 MiB from L2 (MemTotal)" api_balloon_gave 48
	check "vm.shutdown answers 204" output_has api 'VEIL-API: shutdown 204'
	check "vm.info: stopped with code 0" output_has api 'VEIL-API: stopped stopped \{"code":0'
	check "vmm.shutdown answers 204" output_has api 'VEIL-API: vmm.shutdown 204'
	check "veil serve exits 0" output_has api 'VEIL-API: veil exit=0'
	check "the socket is gone" output_has api 'VEIL-API: socket gone=yes'
	check "no seccomp trap" not_output_has api 'veil: seccomp'
}

test_linux_panic() {
	veil_linux_step linux stock panic
	run_l1 linux-panic || return 1
	check "L2 init ran and triggered the panic" output_has linux '^VEIL-L2: action=panic'
	check "veil exits 3 (guest reset) after a panic under panic=-1" exit_is linux 3
}

# The conversion engine on real KVM (issue 5).  The stress JSON is the last line of the step.
stress_step() { # STEP ARGS...
	local step=$1
	shift
	# shellcheck disable=SC2086
	add_step "$step" 180 /bin/veil stress --cpus 2 --seconds 5 --json "$@" ${NESTED_VEIL_ARGS:-}
}
json_has() { step_output "$1" | grep -a '^{"model"' | grep -aE -- "$2" >/dev/null; }
no_port_fallback() { ! output_has "$1" 'converts through port'; }

# The stages of the kernel's private_mem_conversions_test in veil's conversions firmware, at
# full density (every qword); SEMANTICS is what the model does to contents.
conversions_step() { # STEP ARGS...
	local step=$1
	shift
	# shellcheck disable=SC2086
	add_step "$step" 120 /bin/veil run --firmware conversions --mem 64M "$@" ${NESTED_VEIL_ARGS:-}
}
conversions_checks() { # STEP SEMANTICS
	local t
	check "the conversions firmware exits 0" exit_is "$1" 0
	check "contents are $2 on conversion, as announced" output_has "$1" "contents $2 on conversion"
	check "the guest converted by hypercall" output_has "$1" 'by hypercall, guest checks 1 qword in 1[^0-9]*$'
	for t in "explicit conversion" "explicit conversion, backing allocated first" \
		"punch hole, precise" "punch hole, whole area"; do
		check "conversions: $t: 5 stages pass" output_has "$1" "^conversions: $t: 5 stages pass"
	done
}

stress_checks() { # STEP MODEL
	check "veil stress exits 0 (every invariant held)" exit_is "$1" 0
	check "the model is $2" json_has "$1" "\"model\":\"$2\""
	check "the guest converted pages" json_has "$1" '"guest_conversions":[1-9]'
	check "the host converted pages" json_has "$1" '"host_conversions":[1-9]'
	check "DMA ran" json_has "$1" '"dma":[1-9]'
	check "0 lost writes" json_has "$1" '"lost_writes":0,'
	check "0 invariant violations" json_has "$1" '"violations":0,'
	check "the stress firmware passed" output_has "$1" '^stress: pass'
}

# Default VM on real KVM: host-enforced, and here revoking the host mapping is safe, so
# conversions mprotect private pages while the guest keeps using them.
test_stress_default() {
	add_step caps 60 /bin/veil caps
	stress_step stress
	stress_step destructive --destructive
	conversions_step conversions
	run_l1 stress-default || return 1
	check "veil caps: the guest's MAP_GPA_RANGE reaches veil" \
		output_has caps '^MAP_GPA_RANGE reaches veil: yes'
	check "veil caps: revocation is safe, so default VMs revoke veil's mapping of private pages" \
		output_has caps '^ +default +host-enforced: .*revokes its mapping of private ranges'
	stress_checks stress host-enforced
	stress_checks destructive host-enforced
	check "the guest converted by hypercall, not the port fallback" no_port_fallback stress
	conversions_checks conversions preserved
}

# SW_PROTECTED VM on the swprot kernel: VM attributes, out-of-place (DESIGN.md §2a).
test_stress_swprot() {
	add_step caps 60 /bin/veil caps
	stress_step stress --vm-type sw-protected
	conversions_step conversions --vm-type sw-protected
	add_step memfault 60 /bin/test_memfault
	run_l1 stress-swprot || return 1
	check "veil caps: sw-protected gets the out-of-place model" \
		output_has caps '^ +sw-protected +out-of-place'
	stress_checks stress out-of-place
	conversions_checks conversions zeroed
	check "KVM_EXIT_MEMORY_FAULT (private_mem_kvm_exits_test's two cases) stops veil with its GPA" \
		output_has memfault '^memfault: all checks passed'
	check "the memfault test ran, not skipped" exit_is memfault 0
}

# SW_PROTECTED VM on the in-place kernel (DESIGN.md §2b), with a pin veil does not hold.
test_stress_inplace() {
	add_step caps 60 /bin/veil caps
	stress_step stress --vm-type sw-protected --foreign-pin
	conversions_step conversions --vm-type sw-protected
	run_l1 stress-inplace || return 1
	check "veil caps: sw-protected gets the in-place model" output_has caps '^ +sw-protected +in-place'
	stress_checks stress in-place
	check "a GUP_TEST pin made the conversion fail, offset named, nothing converted" \
		json_has stress '"foreign_pin":"refused"'
	check "the kernel answered EAGAIN" json_has stress '"eagain":[1-9]'
	conversions_checks conversions preserved
}

run_test() {
	local name=${1:?run-test needs a test name}
	case $name in
	selftest | linux-stock | linux-panic | stress-default | virtio-blk-integrity | virtio-balloon | virtio-pci | api) ;;
	virtio-blk-jail | guest-script) ;;
	virtio-pci-intx)
		# Linux's virtio-pci then falls back to INTx (the ACPI _PRT's GSI, level-triggered).
		export NESTED_L2_CMDLINE_EXTRA="${NESTED_L2_CMDLINE_EXTRA:-} pci=nomsi"
		;;
	linux-swprot | stress-swprot) [ -f "$SWPROT" ] || skip "no kernel $SWPROT (the shared folder is absent)" ;;
	stress-inplace | seed-inplace)
		[ -f "$INPLACE" ] || skip "no kernel $INPLACE (the shared folder is absent)"
		export VEIL_NESTED_L1=inplace
		export NESTED_L1_CMDLINE_EXTRA="${NESTED_L1_CMDLINE_EXTRA:-} kvm.gmem_in_place_conversion=1"
		L1_CHOICE=inplace
		L1_CMDLINE+=" kvm.gmem_in_place_conversion=1"
		;;
	*) die "unknown test '$name' (selftest, linux-stock, linux-swprot, linux-panic, stress-default, stress-swprot, stress-inplace, virtio-blk-integrity, virtio-balloon, seed-inplace, virtio-pci, virtio-pci-intx, virtio-blk-jail, api, guest-script)" ;;
	esac
	# Firmware guests run under single-threaded TCG.  Multi-threaded TCG gave two kinds of
	# failure here that single-threaded TCG never showed in 10 firmware runs (5 of them with a CPU
	# hog beside): the stale int3 below, and L1 resetting silently mid-stress (a CI run).  The
	# vCPU triple faults retried below were also seen under multi-threaded TCG only.  Linux
	# L2 boots need multi-threaded TCG's speed: single-threaded, the stock L2 did not reach its
	# init within 120 s.
	case $name in
	linux-* | virtio-* | seed-* | api | guest-script) L1_QEMU[2]=tcg,thread=${NESTED_TCG_THREAD:-multi} ;;
	*) L1_QEMU[2]=tcg,thread=${NESTED_TCG_THREAD:-single} ;;
	esac
	prepare
	local attempt
	for attempt in 1 2 3; do
		STEPS=() STEP_T=() STEP_L2=() FAILS=0 RUN_ERR=
		# A failed run has set RUN_ERR; report below says so.
		case $name in
		selftest) test_selftest || true ;;
		linux-stock) test_linux linux-stock stock || true ;;
		linux-swprot) test_linux linux-swprot swprot || true ;;
		linux-panic) test_linux_panic || true ;;
		stress-default) test_stress_default || true ;;
		stress-swprot) test_stress_swprot || true ;;
		stress-inplace) test_stress_inplace || true ;;
		virtio-blk-integrity) test_blk_integrity virtio-blk-integrity || true ;;
		virtio-blk-jail) test_blk_jail || true ;;
		virtio-pci) test_blk_integrity virtio-pci --transport pci --rng || true ;;
		virtio-pci-intx) test_blk_integrity virtio-pci-intx --transport pci --rng || true ;;
		virtio-balloon) test_balloon || true ;;
		seed-inplace) test_seed_inplace || true ;;
		api) test_api || true ;;
		guest-script) test_guest_script || true ;;
		esac
		if report "$name"; then
			if [ "$attempt" -eq 1 ]; then say "nested-$name: pass"; else say "nested-$name: pass (on attempt $attempt)"; fi
			return 0
		fi
		[ "$attempt" -lt 3 ] || break
		# Known QEMU flakes, not veil's, are retried (3 attempts in all): with multi-threaded
		# TCG, a vCPU sometimes runs a stale int3 after a kernel (L1, or L2, which TCG runs
		# too) has finished patching its text; and L1 sometimes hangs or resets before its
		# init (veil has not run yet).
		if log_has 'Oops: int3'; then
			say "attempt $attempt hit 'Oops: int3': QEMU multi-threaded TCG ran a stale int3 while" \
				"a kernel patched its text (PLATFORM.md §B); retrying"
		elif [[ $RUN_ERR == "stage 'L1 boot' "* ]]; then
			say "attempt $attempt failed before L1's init, so before veil ran; retrying"
		elif strip_ts <"$RUN/console.log" | grep -aE '^(veil: stopped|stress: FAILED): vCPU [0-9]+: guest reset \(triple fault\)' >/dev/null; then
			# Open question, not understood yet: a vCPU of a veil guest, Linux or firmware,
			# with or without conversions, now and then triple-faults on this platform only
			# (QEMU TCG emulating nested SVM); never on this machine's KVM.  About one nested
			# run in seven hit it.  It is retried up to twice, and reported.
			say "attempt $attempt: a vCPU triple-faulted (seen only on the nested platform, cause" \
				"not found yet); retrying"
		elif [[ $RUN_ERR == *"failed: QEMU exited (0) before the marker"* ]] &&
			! grep -aqE 'Kernel panic|Oops|BUG:|general protection|veil: seccomp' "$RUN/console.log"; then
			# L1 reset with no word from its kernel: QEMU runs with -no-reboot, so a reset
			# ends it with 0.  A triple fault of L1 itself, which a process in L1 such as
			# veil cannot cause without an L1 kernel bug that would oops first.  Seen twice
			# in CI under multi-threaded TCG (a stress, and seed-inplace's disk I/O).
			say "attempt $attempt: L1 reset silently (QEMU exited 0 with no panic or oops on" \
				"L1's console); retrying"
		elif [ "$attempt" -eq 1 ] && [[ $RUN_ERR == *"L2 boot to init' timed out"* ]]; then
			say "attempt 1: L2 never reached its init; L2 boots on this platform sometimes hang with" \
				"QEMU as the L1 VMM too (see README.md); retrying once"
		else
			break
		fi
		mv "$RUN/console.log" "$WORK/runs/$name.attempt$attempt.log"
		say "(attempt $attempt's console log: $WORK/runs/$name.attempt$attempt.log)"
	done
	die "nested-$name: ${RUN_ERR:-$FAILS check(s) failed} (console log: $RUN/console.log)"
}

# report NAME: prints each step's exit, the timings, and on failure the steps' output.
report() {
	local s e
	say "---- results of nested-$1 ----"
	for s in "${STEPS[@]}"; do
		set -- $s
		e=$(step_exit "$2")
		say "step $2: exit=${e:-none}: ${s#step "$2" "$3" }"
	done
	print_timings
	[ -z "$RUN_ERR" ] && [ "$FAILS" -eq 0 ] && return 0
	say "---- output of the failed run's steps ----"
	for s in "${STEPS[@]}"; do
		set -- $s
		step_output "$2" | sed 's/^/    /'
	done
	return 1
}

# ---------------------------------------------------------------------------------------------
# Debugging helpers

qemu_direct() {
	local kernel=stock action=poweroff k
	[ $# -gt 0 ] && [ "$1" != -- ] && { kernel=$1; shift; }
	[ $# -gt 0 ] && [ "$1" != -- ] && { action=$1; shift; }
	[ $# -gt 0 ] && [ "$1" = -- ] && shift
	mkdir -p "$CACHE" "$WORK"
	stage_packages
	stage "L2 kernel (Debian 12 stock)" "$T_DOWNLOAD" fn_l2_stock
	stage "L2 initramfs" "$T_IMAGES" fn_l2_initramfs
	case $kernel in
	stock) k=$WORK/l2-stock/root/boot/vmlinuz-$(cat "$WORK/l2-stock/modules/version") ;;
	swprot) k=$SWPROT ;;
	/*) k=$kernel ;;
	*) die "qemu-direct: kernel is stock, swprot or a path" ;;
	esac
	local cmd=(qemu-system-x86_64 -accel tcg -kernel "$k" -initrd "$WORK/l2-initrd.cpio"
		-append "$(l2_cmdline "$action" "$kernel")" -smp 2 -m 256 -nographic -no-reboot "$@")
	say "${cmd[*]}"
	if [ "$action" = shell ]; then exec "${cmd[@]}"; fi
	RUN=$WORK/runs/qemu-direct-$kernel-$action
	rm -rf "$RUN"
	mkdir -p "$RUN"
	local start rc=0 d
	start=$(now_us)
	{ run_timeout "$T_QEMU_DIRECT" "${cmd[@]}" </dev/null 2>&1 || rc=$?; echo "VEIL-HOST: qemu exit=$rc"; } |
		while IFS= read -r line || [ -n "$line" ]; do
			clean_line
			d=$(($(now_us) - start))
			printf -v line '[%4d.%03d] %s' $((d / 1000000)) $((d % 1000000 / 1000)) "$line"
			printf '%s\n' "$line" | tee -a "$RUN/console.log"
		done
	log_has 'VEIL-HOST: qemu exit=124' && die "stage 'qemu-direct' timed out after $T_QEMU_DIRECT s"
	say "timing: L2 init marker $(ts_of 'VEIL-L2: init ') s after QEMU started (host clock)"
	local want=("VEIL-L2: init " "VEIL-L2: nproc=2" "VEIL-L2: action=$action")
	[ "$kernel" = stock ] && want+=("VEIL-L2: modules loaded=[0-9]* failed=0")
	for d in "${want[@]}"; do
		check "marker /$d/" log_has "$d"
	done
	check "memtotal between 200 and 256 MiB" \
		bash -c "kb=\$(sed -n 's/.*VEIL-L2: memtotal_kb=\([0-9]*\).*/\1/p' '$RUN/console.log'); [ \"\$kb\" -ge 204800 ] && [ \"\$kb\" -le 262144 ]"
	[ "$FAILS" -eq 0 ] || die "qemu-direct: $FAILS check(s) failed"
	say "qemu-direct: pass"
}

l1_run() {
	prepare
	if [ "${NESTED_L1_PEER:-0}" = 1 ]; then
		stage "peer VMM files" "$T_IMAGES" fn_peer_root
		L1_EXTRA_CPIO=$WORK/peer.cpio
	fi
	add_step cmd 600 sh -c "$1"
	run_l1 l1-run || true
	report l1-run
}

# A peer VMM for L1: this machine's QEMU with the libraries and firmware it needs.
fn_peer_root() {
	local root=$WORK/peer-root q f
	q=$(command -v qemu-system-x86_64)
	rm -rf "$root"
	mkdir -p "$root/usr/bin" "$root/usr/share/qemu"
	cp "$q" "$root/usr/bin/"
	for f in $(ldd "$q" | grep -o '/[^ ]*'); do
		mkdir -p "$root$(dirname "$f")"
		cp -L "$f" "$root$f"
	done
	for f in /usr/share/qemu/{kvmvapic.bin,linuxboot.bin,linuxboot_dma.bin,pvh.bin} /usr/share/seabios/bios-256k.bin; do
		cp -L "$f" "$root/usr/share/qemu/"
	done
	cpio_dir "$root" "$WORK/peer.cpio"
	echo "peer: $(du -h "$WORK/peer.cpio" | cut -f1)"
}

l1_peer() {
	local kernel=${1:-stock} action=${2:-poweroff}
	prepare
	stage "peer VMM files" "$T_IMAGES" fn_peer_root
	L1_EXTRA_CPIO=$WORK/peer.cpio
	add_step peer 300 /usr/bin/qemu-system-x86_64 -M pc -accel kvm -cpu host -smp 2 -m 256 \
		-nodefaults -nographic -serial stdio -monitor none -no-reboot -L /usr/share/qemu \
		-kernel "/l2/$kernel.bzImage" -initrd /l2/initrd.cpio -append "$(l2_cmdline "$action" "$kernel")"
	run_l1 "l1-peer-$kernel-$action" || true
	report "l1-peer-$kernel-$action" || die "l1-peer: ${RUN_ERR:-the peer exited $(step_exit peer)}"
}

# step_ts NAME PATTERN: the host timestamp of the first line matching PATTERN inside step NAME.
step_ts() {
	awk -v b="VEIL-L1: step=$1 begin" -v e="VEIL-L1: step=$1 exit=" -v p="$2" '
		index($0, b) { on = 1; next }
		on && index($0, e) { exit }
		on && $0 ~ p { sub(/^\[ */, ""); sub(/\].*/, ""); print; exit }' "$RUN/console.log"
}

# The stock L2 kernel as an ELF vmlinux, taken out of its bzImage the way the kernel's
# scripts/extract-vmlinux does: the payload is the xz stream after the setup code (Debian's 6.1
# is CONFIG_KERNEL_XZ), and what it unpacks to is the vmlinux the build linked (stripped).
fn_l2_vmlinux() {
	local kver bz out=$WORK/l2-stock/vmlinux off
	kver=$(cat "$WORK/l2-stock/modules/version")
	bz=$WORK/l2-stock/root/boot/vmlinuz-$kver
	if [ ! -s "$out" ] || [ "$bz" -nt "$out" ]; then
		off=$(grep -obUaP '\xfd7zXZ\x00' "$bz" | head -n1 | cut -d: -f1)
		[ -n "$off" ] || { echo "no xz stream in $bz (not CONFIG_KERNEL_XZ?)" >&2; return 1; }
		# xz stops at the end of its stream and complains of the trailing bytes: expected.
		tail -c +$((off + 1)) "$bz" | xz -dc >"$out.new" 2>/dev/null || true
		[ "$(head -c 4 "$out.new" | od -An -c | tr -d ' ')" = '177ELF' ] ||
			{ echo "the xz stream of $bz did not unpack to an ELF file" >&2; return 1; }
		mv "$out.new" "$out"
	fi
	rm -rf "$WORK/vmlinux-root"
	mkdir -p "$WORK/vmlinux-root/l2"
	ln "$out" "$WORK/vmlinux-root/l2/stock.vmlinux" 2>/dev/null || cp "$out" "$WORK/vmlinux-root/l2/stock.vmlinux"
	cpio_dir "$WORK/vmlinux-root" "$WORK/vmlinux.cpio"
	echo "L2 vmlinux: $(du -h "$out" | cut -f1), $(file -b "$out" 2>/dev/null | cut -d, -f1-2)"
}

# bench-boot [KERNEL] [ROUNDS]: the same L2 boot-to-poweroff under veil and under QEMU
# (-accel kvm, the peer VMM) in one L1, alternating, ROUNDS times each (default 5), for the
# bzImage and, for the stock kernel, the same kernel as an ELF vmlinux (veil: the 64-bit entry
# with boot_params; QEMU: the PVH entry note).  Prints each run's time to the L2 init marker
# and to the step's end, min/median/max per VMM and image, the ratios veil/QEMU, and from veil's
# --timing profile the breakdown of veil's part (setup to the first KVM_RUN, exit handling).
bench_boot() {
	local kernel=${1:-stock} rounds=${2:-5} i n b t_init t_end vm img
	local -a imgs=(bz) vms=()
	L1_QEMU[2]=tcg,thread=${NESTED_TCG_THREAD:-multi}
	prepare
	stage "peer VMM files" "$T_IMAGES" fn_peer_root
	L1_EXTRA_CPIO=$WORK/peer.cpio
	if [ "$kernel" = stock ] && [ "${NESTED_BENCH_VMLINUX:-1}" != 0 ]; then
		stage "L2 vmlinux" "$T_IMAGES" fn_l2_vmlinux
		cat "$WORK/peer.cpio" "$WORK/vmlinux.cpio" >"$WORK/peer-vmlinux.cpio"
		L1_EXTRA_CPIO=$WORK/peer-vmlinux.cpio
		imgs+=(elf)
		# L1 unpacks the 65 MiB vmlinux with its initramfs: seen past 60 s on a busy host.
		T_L1_BOOT=180
	fi
	for img in "${imgs[@]}"; do vms+=("veil-$img" "qemu-$img"); done
	kfile() { if [ "$1" = elf ]; then echo "/l2/$kernel.vmlinux"; else echo "/l2/$kernel.bzImage"; fi; }
	for i in $(seq "$rounds"); do
		for img in "${imgs[@]}"; do
			add_step "veil-$img$i" 240 /bin/veil run --kernel "$(kfile "$img")" \
				--initrd /l2/initrd.cpio --cmdline "$(l2_cmdline poweroff "$kernel")" \
				--cpus 2 --mem 256M -q --timing
			add_step "qemu-$img$i" 300 /usr/bin/qemu-system-x86_64 -M pc -accel kvm -cpu host -smp 2 \
				-m 256 -nodefaults -nographic -serial stdio -monitor none -no-reboot \
				-L /usr/share/qemu -kernel "$(kfile "$img")" -initrd /l2/initrd.cpio \
				-append "$(l2_cmdline poweroff "$kernel")"
		done
	done
	local attempt
	for attempt in 1 2 3; do
		RUN_ERR=
		run_l1 "bench-boot-$kernel" && break
		# L1 failing before its init (QEMU TCG on a busy host) is before veil ran: retried.
		[[ $RUN_ERR == "stage 'L1 boot' "* ]] && [ "$attempt" -lt 3 ] || die "bench-boot: ${RUN_ERR:-L1 failed}"
		say "bench-boot: attempt $attempt: $RUN_ERR; retrying"
	done
	say "bench-boot: L2 $kernel, 2 vCPUs, 256 MiB, boot to poweroff; seconds from the VMM's start"
	local -A t_in=() t_out=()
	for i in $(seq "$rounds"); do
		for vm in "${vms[@]}"; do
			n=$vm$i
			b=$(ts_of "VEIL-L1: step=$n begin")
			t_init=$(step_ts "$n" 'VEIL-L2: init ')
			t_end=$(ts_of "VEIL-L1: step=$n exit=")
			if [ -z "$b" ] || [ -z "$t_init" ] || [ -z "$t_end" ] || [ "$(step_exit "$n")" != 0 ]; then
				say "bench-boot: run $n did not boot and power off cleanly (exit $(step_exit "$n")): left out"
				step_output "$n" | grep -a '^veil: ' | sed 's/^/    /' || true
				continue
			fi
			t_init=$(awk "BEGIN { printf \"%.2f\", $t_init - $b }")
			t_end=$(awk "BEGIN { printf \"%.2f\", $t_end - $b }")
			say "bench-boot: $n: L2 init marker $t_init s, poweroff $t_end s"
			t_in[$vm]+="$t_init " t_out[$vm]+="$t_end "
		done
	done
	# mmm VALUES...: "min median max" (the median of an even count is the lower middle).
	mmm() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[1], a[int((NR + 1) / 2)], a[NR] }'; }
	ratio() { awk "BEGIN { printf \"%.2f\", $1 / $2 }"; }
	local -A med_in=() med_out=()
	local m
	for vm in "${vms[@]}"; do
		[ -n "${t_in[$vm]:-}" ] || { say "bench-boot: $vm: no clean run"; continue; }
		# shellcheck disable=SC2086
		read -r -a m <<<"$(mmm ${t_in[$vm]})"
		med_in[$vm]=${m[1]}
		say "bench-boot: $vm to init: min ${m[0]} median ${m[1]} max ${m[2]} s ($(wc -w <<<"${t_in[$vm]}") runs)"
		# shellcheck disable=SC2086
		read -r -a m <<<"$(mmm ${t_out[$vm]})"
		med_out[$vm]=${m[1]}
		say "bench-boot: $vm to poweroff: min ${m[0]} median ${m[1]} max ${m[2]} s"
	done
	for img in "${imgs[@]}"; do
		[ -n "${med_in[veil-$img]:-}" ] && [ -n "${med_in[qemu-$img]:-}" ] || continue
		say "bench-boot: $img: median veil/QEMU to init $(ratio "${med_in[veil-$img]}" "${med_in[qemu-$img]}")," \
			"to poweroff $(ratio "${med_out[veil-$img]}" "${med_out[qemu-$img]}")"
	done
	[ -z "${med_in[veil-elf]:-}" ] || [ -z "${med_in[qemu-bz]:-}" ] ||
		say "bench-boot: veil's vmlinux against QEMU's bzImage: to init $(ratio "${med_in[veil-elf]}" "${med_in[qemu-bz]}")"
	bench_boot_profile "$rounds" "${imgs[@]}"
}

# bench_boot_profile ROUNDS IMG...: veil's part of each boot from its --timing report, the median
# over the rounds: setup (start to the first KVM_RUN) and the vCPUs' time in veil handling exits,
# against their time inside KVM_RUN; then one run's profile by exit kind and device.
bench_boot_profile() {
	local rounds=$1 img i n out setup line
	shift
	for img in "$@"; do
		local -a su=() hd=() rn=() ex=()
		for i in $(seq "$rounds"); do
			n=veil-$img$i
			out=$(step_output "$n")
			setup=$(sed -n 's/^veil: timing: first KVM_RUN \([0-9.]*\) ms.*/\1/p' <<<"$out" | head -n1)
			line=$(grep -a -m1 '^veil: profile: vCPU time' <<<"$out" || true)
			[ -n "$setup" ] && [ -n "$line" ] || continue
			su+=("$setup")
			rn+=("$(sed -n 's/.*: \([0-9.]*\) ms inside KVM_RUN.*/\1/p' <<<"$line")")
			hd+=("$(sed -n 's/.*, \([0-9.]*\) ms in veil handling.*/\1/p' <<<"$line")")
			ex+=("$(sed -n 's/.* handling \([0-9]*\) exits.*/\1/p' <<<"$line")")
		done
		[ ${#su[@]} -gt 0 ] || { say "bench-boot: veil-$img: no --timing profile in the output"; continue; }
		mid() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
		say "bench-boot: veil-$img, veil's part (medians of ${#su[@]} runs): setup to the first KVM_RUN" \
			"$(mid "${su[@]}") ms; exit handling $(mid "${hd[@]}") ms of vCPU time for $(mid "${ex[@]}")" \
			"exits, against $(mid "${rn[@]}") ms inside KVM_RUN (both vCPUs)"
		say "bench-boot: veil-$img, profile of run ${n}:"
		step_output "$n" | grep -a '^veil: \(profile\|timing\):' | sed 's/^/    /'
	done
}

# bench-blk [ROUNDS] [BOOTS]: virtio-blk under veil (--transport pci, one queue per vCPU) and
# under QEMU (virtio-blk-pci, -accel kvm) with -drive aio=io_uring and with its default aio,
# alternating in one L1, on the same tmpfs-backed image.  Each boot of the stock L2 runs
# ROUNDS rounds (default 5) of blk-bench (blk-bench.c: 4 KiB random reads at queue depth 1
# and 32, 1 MiB sequential reads and writes, O_DIRECT on /dev/vda); BOOTS boots (default 1)
# per VMM.  Prints min/median/max per row and VMM, and veil/QEMU of the medians (bench/).
bench_blk() {
	local rounds=${1:-5} boots=${2:-1} i cmd
	L1_QEMU[2]=tcg,thread=${NESTED_TCG_THREAD:-multi}
	prepare
	stage "peer VMM files" "$T_IMAGES" fn_peer_root
	L1_EXTRA_CPIO=$WORK/peer.cpio
	cmd="$(l2_cmdline blk-bench stock) veilrounds=$rounds"
	local -a qemu=(/usr/bin/qemu-system-x86_64 -M pc -accel kvm -cpu host -smp 2
		-m 256 -nodefaults -nographic -serial stdio -monitor none -no-reboot
		-L /usr/share/qemu -kernel /l2/stock.bzImage -initrd /l2/initrd.cpio -append "$cmd"
		-device virtio-blk-pci,drive=d0)
	add_step mkdisk 60 dd if=/dev/zero of=/tmp/disk.img bs=1M count=72
	# Even boots run the VMMs in the reverse order (ABBA): the host's load drifts over a run
	# (bench-blk-prof saw every VMM's IOPS rise 2-3 times from its first boot to its last), and
	# a fixed order hands that drift to whichever VMM comes last.
	for i in $(seq "$boots"); do
		local vms="veil quring qemu" vm
		[ $((i % 2)) = 0 ] && vms="qemu quring veil"
		for vm in $vms; do
			case $vm in
			veil) add_step "veil$i" $((240 + 40 * rounds)) /bin/veil run \
				--kernel /l2/stock.bzImage --initrd /l2/initrd.cpio --cmdline "$cmd" \
				--cpus 2 --mem 256M --disk /tmp/disk.img --transport pci ;;
			quring) add_step "quring$i" $((240 + 40 * rounds)) "${qemu[@]}" \
				-drive file=/tmp/disk.img,if=none,id=d0,format=raw,aio=io_uring ;;
			qemu) add_step "qemu$i" $((240 + 40 * rounds)) "${qemu[@]}" \
				-drive file=/tmp/disk.img,if=none,id=d0,format=raw ;;
			esac
		done
	done
	run_l1 bench-blk || die "bench-blk: ${RUN_ERR:-L1 failed}"
	bench_blk_report "$rounds" "$boots"
}

# bench_blk_report ROUNDS BOOTS: the table of the last bench-blk run (nested.sh __fn bench_blk_report
# ROUNDS BOOTS prints it again from its console log).
bench_blk_report() {
	local rounds=$1 boots=$2 i vm n line
	local -a lines=()
	RUN=${RUN:-$WORK/runs/bench-blk}
	say "bench-blk: stock L2, 2 vCPUs, O_DIRECT on /dev/vda (virtio-blk-pci, MSI-X)"
	for vm in veil quring qemu; do
		for i in $(seq "$boots"); do
			n=$vm$i
			say "bench-blk: $n: $(step_output "$n" | grep -m1 'blk_bench queues=' | sed 's/^VEIL-L2: //' || true)"
			while read -r line; do
				say "bench-blk: $n: $line"
			done < <(step_output "$n" | grep -e '^veil: virtio-blk' -e '^veil: MSI' -e 'blk_bench failed' || true)
			# QEMU exits 0 on the step's SIGTERM, so a hung L2 shows as missing rounds.
			[ "$(step_output "$n" | grep -c '^VEIL-L2: blk_bench round=')" = "$rounds" ] ||
				say "bench-blk: run $n finished $(step_output "$n" | grep -c '^VEIL-L2: blk_bench round=')" \
					"of its $rounds rounds (exit $(step_exit "$n"), $(step_secs "$n") s; L2 hung?)"
			while read -r line; do
				lines+=("$vm $line")
				say "bench-blk: $n: $line"
			done < <(step_output "$n" | sed -n 's/^VEIL-L2: blk_bench \(round=.*\)/\1/p')
		done
	done
	printf '%s\n' "${lines[@]}" | grep -q '^veil ' && printf '%s\n' "${lines[@]}" | grep -q '^q' ||
		die "bench-blk: no complete round for one of the VMMs"
	printf '%s\n' "${lines[@]}" | awk '
		function sort(v, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) {
				t = v[j]; v[j] = v[j - 1]; v[j - 1] = t
			}
		}
		{
			for (f = 3; f <= NF; f++) {
				if (split($f, kv, "=") != 2 || kv[2] !~ /^[0-9.]+$/) continue
				k = $1 " " kv[1]; n[k]++; val[k, n[k]] = kv[2]
			}
		}
		END {
			split("rand4k_qd1 rand4k_qd32 seqread_1m seqwrite_1m", rows, " ")
			split("veil quring qemu", vms, " ")
			for (i = 1; i <= 4; i++) {
				m = rows[i]; unit = m ~ /^rand/ ? "IOPS" : "MB/s"; out = ""
				for (v = 1; v <= 3; v++) {
					k = vms[v] " " m; c = n[k]
					if (!c) { med[v] = 0; out = out sprintf(" %s -;", vms[v]); continue }
					delete t; for (j = 1; j <= c; j++) t[j] = val[k, j]
					sort(t, c); med[v] = t[int((c + 1) / 2)]
					out = out sprintf(" %s %s/%s/%s;", vms[v], t[1], med[v], t[c])
				}
				printf "nested: bench-blk: %s (%s, min/median/max):%s veil/QEMU-io_uring %.2f, veil/QEMU-default %.2f\n",
					m, unit, out, med[2] ? med[1] / med[2] : 0, med[3] ? med[1] / med[3] : 0
			}
		}'
}

# bench-blk-prof [ROUNDS] [BOOTS] [FULL]: where the QD 32 time goes.  The stock L2 runs only the
# rand4k_qd32 row (veilrows=qd32), ROUNDS times in a row between two markers; blk-prof.sh
# in L1 snapshots /proc at each marker and prints, per thread of the VMM, its CPU time and its
# wait for a CPU over that window.  veil runs with --timing (its exit profile and device
# counters cover the whole run, boot included).  BOOTS boots of each VMM, alternating.
bench_blk_prof() {
	local rounds=${1:-6} boots=${2:-1} full=${3:-0} i cmd n vm
	L1_QEMU[2]=tcg,thread=${NESTED_TCG_THREAD:-multi}
	prepare
	stage "peer VMM files" "$T_IMAGES" fn_peer_root
	L1_EXTRA_CPIO=$WORK/peer.cpio
	cmd="$(l2_cmdline blk-bench stock) veilrounds=$rounds veilrows=qd32"
	add_step mkdisk 60 dd if=/dev/zero of=/tmp/disk.img bs=1M count=72
	for i in $(seq "$boots"); do
		add_step "veil$i" $((240 + 20 * rounds)) /bin/blk-prof /bin/veil run \
			--kernel /l2/stock.bzImage --initrd /l2/initrd.cpio --cmdline "$cmd" \
			--cpus 2 --mem 256M --disk /tmp/disk.img --transport pci --timing
		add_step "quring$i" $((240 + 20 * rounds)) /bin/blk-prof /usr/bin/qemu-system-x86_64 \
			-name l2,debug-threads=on -M pc -accel kvm -cpu host -smp 2 -m 256 -nodefaults \
			-nographic -serial stdio \
			-monitor none -no-reboot -L /usr/share/qemu -kernel /l2/stock.bzImage \
			-initrd /l2/initrd.cpio -append "$cmd" -device virtio-blk-pci,drive=d0 \
			-drive file=/tmp/disk.img,if=none,id=d0,format=raw,aio=io_uring
	done
	# FULL > 0: then one boot of each with the four bench-blk rows, FULL rounds, unsampled,
	# to see whether the QD 32 row behaves the same inside the full sequence in this L1.
	if [ "$full" -gt 0 ]; then
		cmd="$(l2_cmdline blk-bench stock) veilrounds=$full"
		add_step vfull $((240 + 40 * full)) /bin/veil run --kernel /l2/stock.bzImage \
			--initrd /l2/initrd.cpio --cmdline "$cmd" --cpus 2 --mem 256M \
			--disk /tmp/disk.img --transport pci
		add_step qfull $((240 + 40 * full)) /usr/bin/qemu-system-x86_64 -M pc -accel kvm \
			-cpu host -smp 2 -m 256 -nodefaults -nographic -serial stdio -monitor none \
			-no-reboot -L /usr/share/qemu -kernel /l2/stock.bzImage -initrd /l2/initrd.cpio \
			-append "$cmd" -device virtio-blk-pci,drive=d0 \
			-drive file=/tmp/disk.img,if=none,id=d0,format=raw,aio=io_uring
	fi
	run_l1 bench-blk-prof || die "bench-blk-prof: ${RUN_ERR:-L1 failed}"
	for n in vfull qfull; do
		[ "$full" -gt 0 ] || break
		say "bench-blk-prof: $n (all four rows; exit $(step_exit "$n"), $(step_secs "$n") s):"
		step_output "$n" | grep -a -e '^VEIL-L2: blk_bench' -e '^veil: virtio-blk' | sed 's/^/    /'
	done
	for vm in veil quring; do
		for i in $(seq "$boots"); do
			n=$vm$i
			say "bench-blk-prof: $n (exit $(step_exit "$n"), $(step_secs "$n") s):"
			step_output "$n" | grep -a -e '^blk_prof:' -e '^VEIL-L2: blk_prof' \
				-e '^VEIL-L2: blk_bench' -e '^veil: virtio-blk' -e '^veil: MSI' \
				-e '^veil: profile' -e '^veil: timing' -e '^veil: [0-9]* exits' | sed 's/^/    /'
		done
	done
}

# bench-convert [ITERATIONS [ROUNDS [SIZE...]]]: the conversion benchmark (bench/convert.c),
# built static from the same tree as L1's veil and carried in an extra initramfs archive, run
# once on a SW_PROTECTED VM (the model L1's kernel offers) and once on a default VM.
fn_bench_convert_build() {
	local root=$WORK/bench-convert-root
	ninja -C "$VEILB" bench/veil-bench-convert
	file_is_static "$VEILB/bench/veil-bench-convert"
	rm -rf "$root"
	mkdir -p "$root/bin"
	cp "$VEILB/bench/veil-bench-convert" "$root/bin/"
	cpio_dir "$root" "$WORK/bench-convert.cpio"
}

bench_convert() {
	local iters=${1:-20000} rounds=${2:-5} vm
	local -a sizes=(4K 2M 64M 1G)
	[ $# -le 2 ] || sizes=("${@:3}")
	case $L1_CHOICE in
	inplace)
		[ -f "$INPLACE" ] || skip "no kernel $INPLACE (the shared folder is absent)"
		L1_CMDLINE+=" kvm.gmem_in_place_conversion=1"
		;;
	swprot | auto) [ -f "$SWPROT" ] || skip "no kernel $SWPROT (the shared folder is absent)" ;;
	esac
	L1_QEMU[2]=tcg,thread=${NESTED_TCG_THREAD:-multi}
	prepare
	stage "bench-convert build" "$T_VEIL_BUILD" fn_bench_convert_build
	L1_EXTRA_CPIO=$WORK/bench-convert.cpio
	add_step sw-protected 900 /bin/veil-bench-convert sw-protected "$iters" "$rounds" "${sizes[@]}"
	add_step default 900 /bin/veil-bench-convert default "$iters" "$rounds" "${sizes[@]}"
	run_l1 "bench-convert-$L1_CHOICE" || die "bench-convert: ${RUN_ERR:-L1 failed}"
	say "bench-convert: L1 $(cat "$WORK/l1/name"), $(strip_ts <"$RUN/console.log" |
		sed -n 's/^VEIL-L1: init .*cpus=\([0-9]*\).*/\1/p') vCPUs; conversions per second"
	for vm in sw-protected default; do
		step_output "$vm" | grep -av '^VEIL-L1: ' | sed "s/^/nested: bench-convert: $vm: /"
		[ "$(step_exit "$vm")" = 0 ] || die "bench-convert: $vm exited $(step_exit "$vm")"
	done
}

l1_shell() {
	prepare
	RUN=$WORK/runs/l1-shell
	rm -rf "$RUN"
	mkdir -p "$RUN/extra"
	echo 'echo "VEIL-L1: interactive shell; poweroff -f to leave"; setsid cttyhack sh' >"$RUN/extra/test.sh"
	cpio_dir "$RUN/extra" "$RUN/extra.cpio"
	cat "$WORK/l1-base.cpio" "$RUN/extra.cpio" >"$RUN/initrd.cpio"
	exec 9>&-
	exec "${L1_QEMU[@]}" -kernel "$WORK/l1/vmlinuz" -initrd "$RUN/initrd.cpio" -append "$(l1_cmdline)"
}

# ---------------------------------------------------------------------------------------------

sub=${1:-}
[ $# -gt 0 ] && shift
case $sub in
__fn) "$@" ;;
prepare) prepare ;;
run-test) run_test "$@" ;;
qemu-direct) qemu_direct "$@" ;;
l1-run) l1_run "${1:?l1-run needs a shell command}" ;;
l1-shell) l1_shell ;;
l1-peer) l1_peer "$@" ;;
bench-boot) bench_boot "$@" ;;
bench-blk) bench_blk "$@" ;;
bench-blk-prof) bench_blk_prof "$@" ;;
bench-convert) bench_convert "$@" ;;
*)
	sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'
	[ -z "$sub" ] || [ "$sub" = help ] || [ "$sub" = --help ] || exit 2
	;;
esac
