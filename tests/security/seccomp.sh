#!/usr/bin/env bash
# security: under `veil run`, every thread veil starts and the main thread run under a
# seccomp filter (mode 2) while the guest runs; `--seccomp off` leaves them unfiltered;
# a stop by signal still tears down cleanly under the filters.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm

printf '\xfa\xf4\xeb\xfc' >"$TMP/halt.bin" # cli; hlt forever
truncate -s 1M "$TMP/disk.img"

# threads PID: "NAME SECCOMP-MODE" for each of the process's threads.
threads() {
	local t
	for t in /proc/$1/task/*; do
		printf '%s %s\n' "$(cat "$t/comm" 2>/dev/null)" \
			"$(sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status" 2>/dev/null)"
	done
}

# check MODE ARGS...: runs the halting firmware with 2 vCPUs, a disk and a balloon (so an
# I/O thread); once its threads are up every one of them is in seccomp mode MODE.
check() {
	local mode=$1 pid i list
	shift
	checks=$((checks + 1))
	"$VEIL" run --firmware "$TMP/halt.bin" --cpus 2 --disk "$TMP/disk.img" --balloon "$@" \
		>"$TMP/out" 2>&1 </dev/null &
	pid=$!
	for i in $(seq 100); do
		list=$(threads $pid)
		grep -q '^I/O ' <<<"$list" && grep -q '^vCPU 1 ' <<<"$list" &&
			[ "$(head -n1 <<<"$list" | awk '{ print $NF }')" = "$mode" ] && break
		sleep 0.1
	done
	echo "threads of veil $* (name, seccomp mode):"
	sed 's/^/    /' <<<"$list"
	for name in 'vCPU 0' 'vCPU 1' 'I/O'; do
		grep -q "^$name " <<<"$list" || fail "$*: no thread named '$name'"
	done
	[ "$(wc -l <<<"$list")" -ge 4 ] || fail "$*: expected at least 4 threads"
	# Only veil's own threads: KVM may attach a kernel worker (kvm-nx-lpage-recovery).
	awk -v m="$mode" '/^(veil|vCPU [0-9]+|I\/O) / && $NF != m { bad = 1 } END { exit bad }' \
		<<<"$list" || fail "$*: a thread of veil's is not in seccomp mode $mode"
	kill -TERM $pid
	for i in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
	kill -9 $pid 2>/dev/null
	wait $pid
	local code=$?
	[ "$code" = 143 ] || { fail "$*: SIGTERM gave exit $code, expected 143"; cat "$TMP/out" >&2; }
	grep -q "stopped by" "$TMP/out" || fail "$*: no stop reason"
	! grep -q "veil: seccomp:" "$TMP/out" || { fail "$*: a forbidden call"; cat "$TMP/out" >&2; }
}

check 2
check 2 --seccomp on
check 0 --seccomp off
finish
