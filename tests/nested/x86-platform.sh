# The x86 nested platform (PLATFORM.md §B), sourced by nested.sh: QEMU TCG with SVM runs L1
# (the shared swprot or in-place kernel with KVM built in, or trixie-backports' stock kernel and
# its KVM modules); L2 is Debian 12's stock 6.1 kernel (or a shared one) under a static veil.
# This file prepares everything an x86 run needs (packages, kernels, the static veil, helpers,
# the two initramfs images) and fills the harness's platform hooks (see harness.sh).
# shellcheck shell=bash disable=SC2034 # variables shared across the sourced files

VEILB=$BUILD/nested-veil
L1_CHOICE=${VEIL_NESTED_L1:-auto}
SWPROT=$SHARED/kernels/vmlinuz-7.3.4-swprot
INPLACE=$SHARED/kernels/vmlinuz-7.3.4-inplace
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
export VEIL_NESTED_L1=$L1_CHOICE

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

# What run_l1 boots (prepare makes them).
L1_KERNEL=$WORK/l1/vmlinuz
L1_BASE_CPIO=$WORK/l1-base.cpio
L1_NAME_FILE=$WORK/l1/name

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

prepare() {
	local t0
	t0=$(now_us)
	mkdir -p "$CACHE" "$WORK"
	exec 9>"$WORK/.lock"
	run_timeout 1800 flock 9 || die "stage 'lock' timed out waiting for another nested run"
	stage_packages qemu-system-x86_64
	stage "L1 kernel ($L1_CHOICE)" "$T_DOWNLOAD" fn_l1_kernel
	stage "L2 kernel (Debian 12 stock)" "$T_DOWNLOAD" fn_l2_stock
	stage "veil static build" "$T_VEIL_BUILD" fn_veil_build
	stage "L1 helpers" "$T_IMAGES" fn_helpers
	stage "L2 initramfs" "$T_IMAGES" fn_l2_initramfs
	stage "L1 initramfs" "$T_IMAGES" fn_l1_initramfs
	say "prepared in $(secs_since "$t0") s"
	# The lock stays held until run_l1 has copied the images it needs.
}

platform_prepare() { prepare; }
platform_l1_cmdline() { l1_cmdline; }

# platform_test_setup NEEDS: a test's needs from the table (x86-tests.sh).
#   -        nothing
#   swprot   the shared swprot kernel (as L2, or as the L1 default VMs run on); skips without it
#   inplace  the shared in-place kernel as L1, with in-place conversions on; skips without it
platform_test_setup() {
	case $1 in
	-) ;;
	swprot) [ -f "$SWPROT" ] || skip "no kernel $SWPROT (the shared folder is absent)" ;;
	inplace)
		[ -f "$INPLACE" ] || skip "no kernel $INPLACE (the shared folder is absent)"
		export VEIL_NESTED_L1=inplace
		export NESTED_L1_CMDLINE_EXTRA="${NESTED_L1_CMDLINE_EXTRA:-} kvm.gmem_in_place_conversion=1"
		L1_CHOICE=inplace
		L1_CMDLINE+=" kvm.gmem_in_place_conversion=1"
		;;
	*) die "x86-platform: unknown test need '$1'" ;;
	esac
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
	if "$VEILB/vmm/veil" run --help 2>&1 | grep -- '--timing' >/dev/null; then echo --timing; fi
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
