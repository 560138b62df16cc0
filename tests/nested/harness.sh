# The nested harness, shared by the platforms (sourced by nested.sh; arm64.sh can source it
# too): logging, timeouts and stages, the L1 run and its console log, the steps' markers,
# checks, the report, the retry policy, and run-test's driver over a platform's test table.
#
# A platform file (x86-platform.sh) sets, before run_l1:
#   L1_QEMU        the QEMU command line for L1 (an array), without -kernel, -initrd, -append
#                  and -pidfile; its `-accel` value is printed with each run
#   L1_KERNEL      L1's kernel; L1_BASE_CPIO its initramfs, with l1-init as /init (it runs the
#                  steps and prints `VEIL-L1: step=NAME begin` and `... exit=RC` markers);
#                  L1_NAME_FILE a file whose line names L1's kernel
#   T_L1_BOOT, T_L1_POWEROFF   seconds for L1 to reach its init and to power off after its steps
# and defines platform_l1_cmdline (L1's kernel command line) and platform_prepare (builds what
# run_l1 needs; it may hold fd 9 as a lock, which run_l1 closes once it has its copies) and
# platform_test_setup (a test's NEEDS column).  The entry script sets SELF (itself), WORK and
# RUN's parent, and runs `SELF __fn FUNCTION ARGS...` as that function (stage uses it).
# shellcheck shell=bash disable=SC2034 # variables shared across the sourced files

SAY=${SAY:-nested}           # the prefix of every line this prints
TEST_PREFIX=${TEST_PREFIX:-nested-} # test NAME is meson's ${TEST_PREFIX}NAME
say() { printf '%s: %s\n' "$SAY" "$*"; }
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

# cpio_dir DIR OUT: packs DIR as an uncompressed newc archive (the kernels are compressed
# already, and an L2 under nested TCG unpacks a plain cpio much faster than a gzipped one).
cpio_dir() { (cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$2"; }

# busybox_tree ROOT [BUSYBOX]: a busybox userland in ROOT (the host's busybox by default; the
# applet list comes from the host's busybox, which can run here).
busybox_tree() {
	local root=$1 bb a
	bb=${2:-$(command -v busybox)}
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}
	cp "$bb" "$root/bin/busybox"
	for a in $(busybox --list); do
		[ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
	done
}

file_is_static() {
	local out
	out=$(LC_ALL=C ldd "$1" 2>&1 || true)
	if grep -q 'not a dynamic executable' <<<"$out"; then return 0; fi
	echo "$1 is not statically linked:" >&2
	ldd "$1" >&2 || true
	return 1
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

# l1_accel: the -accel value of L1_QEMU (tcg,thread=multi or single).
l1_accel() {
	local i
	for ((i = 0; i + 1 < ${#L1_QEMU[@]}; i++)); do
		[ "${L1_QEMU[i]}" != -accel ] || { echo "${L1_QEMU[i + 1]}"; return; }
	done
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
	cat "$L1_BASE_CPIO" "$RUN/extra.cpio" ${L1_EXTRA_CPIO:+"$L1_EXTRA_CPIO"} >"$RUN/initrd.cpio"
	cp "$L1_KERNEL" "$RUN/vmlinuz"
	exec 9>&- # prepare's lock: this run has its own copies now
	for s in "${STEP_T[@]}"; do total=$((total + s + 15)); done
	total=$((total + T_L1_BOOT + T_L1_POWEROFF))

	QEMU_PIDFILE=$RUN/qemu.pid
	local start
	start=$(now_us)
	say "L1: $(cat "$L1_NAME_FILE"); booting ${L1_QEMU[0]} -accel $(l1_accel) (whole-run limit $total s)"
	say "L1 command line: $(platform_l1_cmdline)"
	(
		rc=0
		timeout -k 5 "$total" "${L1_QEMU[@]}" -pidfile "$QEMU_PIDFILE" -kernel "$RUN/vmlinuz" \
			-initrd "$RUN/initrd.cpio" -append "$(platform_l1_cmdline)" </dev/null 2>&1 || rc=$?
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
		step_output "$n" | grep -iE 'first KVM_RUN|first serial|time to' | sed "s/^/$SAY: timing: step $n: veil: /" || true
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

# step_ts NAME PATTERN: the host timestamp of the first line matching PATTERN inside step NAME.
step_ts() {
	awk -v b="VEIL-L1: step=$1 begin" -v e="VEIL-L1: step=$1 exit=" -v p="$2" '
		index($0, b) { on = 1; next }
		on && index($0, e) { exit }
		on && $0 ~ p { sub(/^\[ */, ""); sub(/\].*/, ""); print; exit }' "$RUN/console.log"
}

# report NAME: prints each step's exit, the timings, and on failure the steps' output.
report() {
	local s e
	say "---- results of $TEST_PREFIX$1 ----"
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

# l1_tcg_thread multi|single: L1's TCG threading (NESTED_TCG_THREAD overrides it).
l1_tcg_thread() {
	local i
	for ((i = 0; i + 1 < ${#L1_QEMU[@]}; i++)); do
		[ "${L1_QEMU[i]}" != -accel ] || L1_QEMU[i + 1]=tcg,thread=${NESTED_TCG_THREAD:-$1}
	done
}

as_root() {
	if [ "$(id -u)" -eq 0 ]; then "$@"
	elif command -v sudo >/dev/null; then sudo -n "$@"
	else echo "need root or sudo for: $*" >&2; return 1
	fi
}

# stage_packages QEMU: installs the nested packages (deps.sh) and checks that QEMU (for example
# qemu-system-x86_64) starts a TCG machine; skips the test (77) when it cannot.
stage_packages() {
	local q=$1 rc=0
	run_timeout "$T_PACKAGES" "$BASH" "$HERE/deps.sh" || rc=$?
	if [ $rc -ne 0 ]; then
		if ! command -v "$q" >/dev/null && [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
			skip "$q is not installed, and installing it needs root or sudo"
		fi
		[ $rc -eq 124 ] || [ $rc -eq 137 ] && die "stage 'packages' timed out after $T_PACKAGES s"
		die "stage 'packages' failed (exit $rc)"
	fi
	# QEMU must at least start a TCG machine; if it cannot, nothing here can run.
	local out
	if ! out=$(echo quit | timeout 30 "$q" -machine none -accel tcg -nodefaults \
		-display none -monitor stdio 2>&1); then
		skip "$q cannot start a TCG machine here: $out"
	fi
	say "stage 'packages' ok ($("$q" --version | head -n1))"
}

# ---------------------------------------------------------------------------------------------
# The retry policy.  A failed run is retried only when it is shown to be the platform's, never
# for a veil error or a failed check; tests/nested/README.md gives the evidence for each class.
# Every retry is printed as "NAME: RETRY ..." with its cause (scripts/test lists these lines in
# its summary), and the console log of the failed attempt is kept beside the run's.

# veil_error_seen: veil (or the stress harness) reported an error on L1's console.
veil_error_seen() {
	strip_ts <"$RUN/console.log" | grep -aE '^veil: (error|stopped|seccomp)|^stress: FAILED' >/dev/null
}
# kernel_trouble_seen: a kernel (L1's, or L2's through veil's output) panicked or oopsed.
kernel_trouble_seen() {
	grep -aE 'Kernel panic|Oops|BUG:|general protection' "$RUN/console.log" >/dev/null
}

# retry_cause: prints the platform cause of the failed run and returns 0 if it may be retried;
# returns 1 otherwise.
retry_cause() {
	# A run that finished has failed a check: that is the test's verdict, whatever the cause.
	[ -n "$RUN_ERR" ] || return 1
	# L1 never reached its init (it hung, reset or oopsed while booting): veil had not run.
	if [[ $RUN_ERR == "stage 'L1 boot' "* ]]; then
		echo "L1 did not reach its init, so veil had not run yet ($RUN_ERR)"
		return 0
	fi
	# From here on veil ran; anything it reported as an error fails the test.
	if veil_error_seen; then return 1; fi
	# Multi-threaded TCG ran a stale int3 in a kernel that had just patched it out; QEMU as
	# the L1 VMM hit it too (PLATFORM.md §B: L1 oopsed with `int3` in __schedule).
	if grep -a 'Oops: int3' "$RUN/console.log" >/dev/null; then
		echo "a kernel oopsed on a stale int3 (QEMU multi-threaded TCG, PLATFORM.md §B) and the" \
			"run did not finish ($RUN_ERR)"
		return 0
	fi
	# L1 reset with no word from its kernel: QEMU runs with -no-reboot, so a reset ends it with
	# 0.  A process in L1 such as veil cannot reset L1 without an L1 kernel bug, which would
	# oops or panic first.
	if [[ $RUN_ERR == *"failed: QEMU exited (0) before the marker"* ]] &&
		! log_has 'VEIL-L1: done' && ! kernel_trouble_seen; then
		echo "L1 reset silently: QEMU exited 0 (-no-reboot) with no panic or oops on the console" \
			"and no error from veil ($RUN_ERR)"
		return 0
	fi
	return 1
}

# ---------------------------------------------------------------------------------------------
# The test table: each platform registers its tests with
#   nested_test NAME TCG NEEDS FUNCTION [ARGS...]
# TCG is L1's TCG threading (multi or single); NEEDS is handed to platform_test_setup (which
# may skip the test or pick another L1); FUNCTION adds its steps (add_step), calls run_l1 NAME
# and checks the results (check).  run_test NAME runs one, with the retry policy above.
TEST_NAMES=()
declare -A TEST_TCG=() TEST_NEEDS=() TEST_CMD=()
nested_test() {
	local name=$1
	TEST_NAMES+=("$name")
	TEST_TCG[$name]=$2
	TEST_NEEDS[$name]=$3
	shift 3
	TEST_CMD[$name]=$(printf '%q ' "$@")
}

NESTED_ATTEMPTS=${NESTED_ATTEMPTS:-3}
run_test() {
	local name=${1:?run-test needs a test name} attempt cause t=$TEST_PREFIX${1:-}
	local -a retries=()
	[ -n "${TEST_CMD[$name]:-}" ] || die "unknown test '$name' (${TEST_NAMES[*]})"
	TEST=$name
	platform_test_setup "${TEST_NEEDS[$name]}"
	l1_tcg_thread "${TEST_TCG[$name]}"
	platform_prepare
	for ((attempt = 1; ; attempt++)); do
		STEPS=() STEP_T=() STEP_L2=() FAILS=0 RUN_ERR=
		# A failed run sets RUN_ERR or FAILS; report says so.
		eval "${TEST_CMD[$name]}" || true
		if report "$name"; then
			if [ ${#retries[@]} -eq 0 ]; then say "$t: pass"; return 0; fi
			say "$t: pass on attempt $attempt, after ${#retries[@]} retries:"
			printf '%s\n' "${retries[@]}" | sed "s/^/$SAY: retried: /"
			return 0
		fi
		cause=$(retry_cause) || { say "$t: not retried: the failure is not shown to be the platform's"; break; }
		if [ "$attempt" -ge "$NESTED_ATTEMPTS" ]; then
			say "$t: $cause; no attempts left ($NESTED_ATTEMPTS in all)"
			break
		fi
		mv "$RUN/console.log" "$RUN.attempt$attempt.log"
		retries+=("attempt $attempt: $cause (console log: $RUN.attempt$attempt.log)")
		say "RETRY $t ${retries[-1]}"
	done
	[ ${#retries[@]} -eq 0 ] || printf '%s\n' "${retries[@]}" | sed "s/^/$SAY: retried: /"
	die "$t: ${RUN_ERR:-$FAILS check(s) failed} (console log: $RUN/console.log)"
}
