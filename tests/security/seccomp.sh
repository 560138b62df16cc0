#!/usr/bin/env bash
# security: under `veil run`, every thread veil starts and the main thread run under a
# seccomp filter (mode 2) while the guest runs; `--seccomp off` leaves them unfiltered;
# a stop by signal still tears down cleanly under the filters; /dev/kvm is closed once the
# VM is built.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm

printf '\xfa\xf4\xeb\xfc' >"$TMP/halt.bin" # cli; hlt forever
truncate -s 1M "$TMP/disk.img"

# threads PID: "NAME SECCOMP-MODE" for each of the process's threads; the main thread is
# renamed "main" (its comm is the program's name, which other threads inherit).
threads() {
	local t name
	for t in /proc/$1/task/*; do
		name=$(cat "$t/comm" 2>/dev/null)
		[ "${t##*/}" = "$1" ] && name=main
		printf '%s %s\n' "$name" "$(sed -n 's/^Seccomp:[[:space:]]*//p' "$t/status" 2>/dev/null)"
	done
}

# ThreadSanitizer's runtime starts a thread of its own before main(): not veil's.
other_threads='^veil '
readelf -d "$VEIL" 2>/dev/null | grep -q 'libtsan' && other_threads='^$'

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
			grep -q "^main $mode\$" <<<"$list" && break
		sleep 0.1
	done
	echo "threads of veil $* (name, seccomp mode):"
	sed 's/^/    /' <<<"$list"
	for name in main 'vCPU 0' 'vCPU 1' 'I/O'; do
		grep -q "^$name " <<<"$list" || fail "$*: no thread named '$name'"
	done
	[ "$(wc -l <<<"$list")" -ge 4 ] || fail "$*: expected at least 4 threads"
	# The VM is built before the threads start: /dev/kvm is closed by then.
	if ls -l /proc/$pid/fd 2>/dev/null | grep -q '/dev/kvm$'; then
		fail "$*: /dev/kvm is still open while the guest runs"
	fi
	# veil's threads, and any other it started (named like the program), not KVM's kernel
	# worker (kvm-nx-lpage-recovery) that shows up among them.
	awk -v m="$mode" -v o="$other_threads" '(/^(main|vCPU [0-9]+|I\/O) / || $0 ~ o) &&
		$NF != m { bad = 1 } END { exit bad }' <<<"$list" ||
		fail "$*: a thread of veil's is not in seccomp mode $mode"
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

# On a terminal the main thread restores the console under its filter (tcsetattr: TCSETS,
# then TCGETS to check).  script(1) gives veil a pseudo-terminal.
if command -v script >/dev/null 2>&1; then
	checks=$((checks + 1))
	script -qec "'$VEIL' run --firmware selftest" /dev/null </dev/null >"$TMP/tty" 2>&1
	code=$?
	[ "$code" = 0 ] || { fail "on a terminal: exit $code, expected 0"; cat "$TMP/tty" >&2; }
	! grep -aq "veil: seccomp:" "$TMP/tty" || fail "on a terminal: a forbidden call"
fi
finish
