#!/usr/bin/env bash
# Unit test of the nested harness's retry policy (harness.sh, suite unit, no QEMU): which failed
# runs are retried, that veil errors, failed checks and unexplained hangs never are, and that
# run_test prints every retry with its cause.  Each case is a made-up console log.
set -euo pipefail
export LC_ALL=C
HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# shellcheck disable=SC2034 # harness.sh's stage() would run it
SELF=$HERE/nested.sh
# shellcheck source=tests/nested/harness.sh
. "$HERE/harness.sh"
bad=0

# case WANT RUN_ERR CONSOLE-LINES...: retry_cause on that run says yes (retried) or no.
case_() {
	local want=$1 got=no cause
	RUN_ERR=$2
	shift 2
	RUN=$WORK/runs/case
	mkdir -p "$RUN"
	printf '[   1.000] %s\n' "$@" >"$RUN/console.log"
	if cause=$(retry_cause); then got=yes; fi
	if [ "$got" = "$want" ]; then echo "ok: retried=$want: ${RUN_ERR:-(a failed check)}${cause:+ -> $cause}"
	else echo "FAIL: retried=$got, want $want: ${RUN_ERR:-(a failed check)}: $*"; bad=$((bad + 1)); fi
}
boot="stage 'L1 boot' timed out after 60 s (no marker /VEIL-L1: init /)"
reset="stage 'step linux' failed: QEMU exited (0) before the marker /VEIL-L1: step=linux exit=/"
hang="stage 'step linux: L2 boot to init' timed out after 120 s (no marker /VEIL-L2: init /)"
stuck="stage 'step stress' timed out after 195 s (no marker /VEIL-L1: step=stress exit=/)"
int3='[    4.001009] Oops: int3: 0000 [#1] SMP NOPTI'
triple='veil: stopped: vCPU 1: guest reset (triple fault)'

case_ yes "$boot" 'Linux version 7.3.4'
case_ yes "$boot" "$int3" 'VEIL-HOST: qemu exit=0'
case_ yes "$reset" 'VEIL-L1: init uptime=3.1' 'VEIL-L1: step=linux begin' 'VEIL-HOST: qemu exit=0'
case_ yes "$stuck" 'VEIL-L1: init uptime=3.1' 'VEIL-L1: step=stress begin' "$int3"
# A finished run that failed a check is never retried, whatever else the console shows.
case_ no "" 'VEIL-L1: step=linux exit=3 seconds=40' "$triple"
case_ no "" "$int3" 'VEIL-L1: step=linux exit=1 seconds=40'
# veil's errors, and failures nobody has shown to be the platform's.
case_ no "$stuck" 'VEIL-L1: step=stress begin' 'stress: FAILED: vCPU 0: guest reset (triple fault)'
case_ no "$stuck" 'VEIL-L1: step=stress begin' "$int3" 'veil: error: conversion failed'
case_ no "$reset" 'VEIL-L1: step=linux begin' "$triple" 'VEIL-HOST: qemu exit=0'
case_ no "$reset" 'VEIL-L1: step=linux begin' 'Kernel panic - not syncing: Fatal exception' 'VEIL-HOST: qemu exit=0'
case_ no "$reset" 'VEIL-L1: step=linux begin' 'VEIL-L1: done uptime=50' 'VEIL-HOST: qemu exit=0'
case_ no "$hang" 'VEIL-L1: step=linux begin'
case_ no "$stuck" 'VEIL-L1: step=stress begin'

# run_test: a table entry whose first two runs fail the platform's way, then passes; and one
# whose run fails a check and must not be retried.
platform_test_setup() { :; }
platform_prepare() { :; }
l1_tcg_thread() { :; }
TRIES=$WORK/tries
fake_run() { # FAILURES: fails its first FAILURES runs with an L1 reset, then passes
	local n
	n=$(($(cat "$TRIES" 2>/dev/null || echo 0) + 1))
	echo "$n" >"$TRIES"
	RUN=$WORK/runs/$TEST
	mkdir -p "$RUN"
	printf '[   1.000] %s\n' 'VEIL-L1: init uptime=1.0' >"$RUN/console.log"
	if [ "$n" -le "$1" ]; then RUN_ERR=$reset; return 1; fi
}
fake_check_fails() { fake_run 0; check "a check that fails" false; }
nested_test flaky multi - fake_run 2
nested_test wrong multi - fake_check_fails
out=$( (run_test flaky) 2>&1) || { echo "FAIL: run_test flaky failed:"; echo "$out"; bad=$((bad + 1)); }
n=$(grep -c '^nested: RETRY nested-flaky attempt [12]: L1 reset silently' <<<"$out" || true)
if [ "$n" = 2 ] && grep '^nested: nested-flaky: pass on attempt 3, after 2 retries' <<<"$out" >/dev/null; then
	echo "ok: run_test prints both retries with their cause and passes on attempt 3"
else echo "FAIL: run_test flaky:"; echo "$out"; bad=$((bad + 1)); fi
rm -f "$TRIES"
if out=$( (run_test wrong) 2>&1); then echo "FAIL: run_test wrong passed"; bad=$((bad + 1))
elif [ "$(cat "$TRIES")" = 1 ] && ! grep RETRY <<<"$out" >/dev/null; then
	echo "ok: a failed check fails at once, not retried"
else echo "FAIL: run_test wrong:"; echo "$out"; bad=$((bad + 1)); fi

[ "$bad" = 0 ] || { echo "$bad case(s) failed"; exit 1; }
echo "retry policy: all cases pass"
