# The test nested-guest-script (sourced by the x86 nested tests; uses the harness's add_step,
# run_l1, check, exit_is and output_has): scripts/guest assembles Debian 12's stock kernel and
# its busybox initramfs on the host; L1 runs the `veil run` line it printed (only the paths
# changed to L1's), waits for the guest's shell, types a command and `exit` into it through
# veil's console, and the guest powers off.
# shellcheck shell=bash

# The L1 side: the printed line with the console's input from a FIFO and its output in a file
# (followed on L1's console).  Once busybox greets, it types a command and `exit`; a guest
# whose shell does not come within 150 s (35 to 50 s seen) is stopped.
guest_script_driver() { # VEIL-RUN-LINE
	cat <<-EOF
		#!/bin/sh
		mkfifo /tmp/guest-in
		: >/tmp/guest-out
		tail -f /tmp/guest-out &
		tailpid=\$!
		$1 </tmp/guest-in >/tmp/guest-out 2>&1 &
		pid=\$!
		exec 3>/tmp/guest-in
		i=0
		# Input sent before the guest has opened its console is lost: wait for the greeting.
		while ! grep -q 'built-in shell' /tmp/guest-out; do
			i=\$((i + 1))
			if [ \$i -gt 300 ]; then
				echo "VEIL-GUEST: no shell within 150 s; stopping veil"
				kill \$pid
				break
			fi
			sleep 0.5
		done
		sleep 1
		echo 'echo VEIL-GUEST: the shell says \$((6 * 7))' >&3
		sleep 1
		echo exit >&3
		exec 3>&-
		wait \$pid
		rc=\$?
		sleep 2 # tail -f shows the last lines
		kill \$tailpid
		exit \$rc
	EOF
}

test_guest_script() {
	local out=$WORK/guest root=$WORK/guest-l1 printed run
	printed=$("$SRC/scripts/guest" "$out" --debs "$CACHE/debs" | tail -n1) ||
		{ RUN_ERR="scripts/guest $out failed"; say "$RUN_ERR"; return 1; }
	say "scripts/guest printed: $printed"
	# Exactly the printed line, with L1's veil and paths.
	run="/bin/veil ${printed#* }"
	run=${run//"$out/"//guest/}
	rm -rf "$root"
	mkdir -p "$root/guest" "$root/bin"
	cp "$out/vmlinuz" "$out/initrd.cpio" "$root/guest/"
	guest_script_driver "$run ${NESTED_VEIL_ARGS:-}" >"$root/bin/guest-boot"
	chmod 755 "$root/bin/guest-boot"
	cpio_dir "$root" "$WORK/guest-l1.cpio"
	# shellcheck disable=SC2034 # run_l1 appends it to L1's initramfs
	L1_EXTRA_CPIO=$WORK/guest-l1.cpio
	add_step guest 240 /bin/guest-boot
	run_l1 "${TEST:-guest-script}" || return 1
	check "scripts/guest printed a veil run line with its kernel, initrd and console=ttyS0" \
		grep -qE "^[^ ]*veil run --kernel $out/vmlinuz --initrd $out/initrd.cpio --cmdline 'console=ttyS0[ ']" <<<"$printed"
	check "the guest's init printed its banner: Debian's 6.1 kernel, 2 CPUs" \
		output_has guest 'veil guest: Linux 6\.1\.0-[0-9]+-amd64 x86_64, 2 CPU\(s\), '
	check "the shell on the console ran the typed command" output_has guest 'VEIL-GUEST: the shell says 42'
	check "exit in the shell powered the guest off" output_has guest 'veil guest: powering off'
	check "veil exits 0 after the guest's poweroff" exit_is guest 0
}
