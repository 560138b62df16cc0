# The x86 benchmarks (sourced by nested.sh; bench/README.md has their tables): bench-boot,
# bench-blk, bench-blk-prof and bench-convert, each in one L1 with QEMU as the peer VMM.
# shellcheck shell=bash disable=SC2034 # variables shared across the sourced files

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
	l1_tcg_thread multi
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
	l1_tcg_thread multi
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
	printf '%s\n' "${lines[@]}" | grep '^veil ' >/dev/null && printf '%s\n' "${lines[@]}" | grep '^q' >/dev/null ||
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
	l1_tcg_thread multi
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
	l1_tcg_thread multi
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
