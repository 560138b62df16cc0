# The x86 debugging helpers (sourced by nested.sh): qemu-direct, l1-run, l1-peer, l1-shell.
# shellcheck shell=bash disable=SC2034 # variables shared across the sourced files

qemu_direct() {
	local kernel=stock action=poweroff k
	[ $# -gt 0 ] && [ "$1" != -- ] && { kernel=$1; shift; }
	[ $# -gt 0 ] && [ "$1" != -- ] && { action=$1; shift; }
	[ $# -gt 0 ] && [ "$1" = -- ] && shift
	mkdir -p "$CACHE" "$WORK"
	stage_packages qemu-system-x86_64
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

