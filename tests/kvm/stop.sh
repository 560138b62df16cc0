#!/usr/bin/env bash
# kvm: nothing the guest or stdout's reader does makes veil unstoppable.  With stdout on a FIFO
# nobody reads, SIGTERM/SIGHUP/SIGQUIT end veil with 128+N, and what stdout still owes at the
# end is given up after a deadline, said on stderr.  Bounds are generous (sanitizer builds on a
# loaded machine); the release build's stop time is what bench/ and the README report.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm

# Firmware as flat images.  Blind: prints 'x' forever without looking at LSR (the 9 bytes of
# issue 10).  Polite: waits for THRE before each 'y', as a driver does.
printf '\x66\xba\xf8\x03\xb0\x78\xee\xeb\xfd' >"$TMP/blind.bin"
printf '\x66\xba\xfd\x03\xec\xa8\x20\x74\xfb\x66\xba\xf8\x03\xb0\x79\xee\xeb\xee' >"$TMP/polite.bin"
mkfifo "$TMP/fifo"
# The read end, held and never read: veil's open does not block, and its writes find no reader.
exec 3<>"$TMP/fifo"

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# stop_at DELAY SIGNAL CODE ARGS...: runs veil ARGS with stdout on the FIFO, sends SIGNAL after
# DELAY seconds, and checks the exit code and a 10 s bound; sets $stop_ms.
stop_at() {
	local delay=$1 sig=$2 want=$3 i code t0
	shift 3
	checks=$((checks + 1))
	"$VEIL" "$@" >"$TMP/fifo" 2>"$TMP/err" </dev/null &
	local pid=$!
	sleep "$delay"
	t0=$(now_ms)
	kill -s "$sig" $pid
	for i in $(seq 200); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
	stop_ms=$(($(now_ms) - t0))
	kill -9 $pid 2>/dev/null
	wait $pid
	code=$?
	[ "$code" = "$want" ] || { fail "$* with SIG$sig: exit $code, expected $want"; sed 's/^/    /' "$TMP/err" >&2; }
	[ $stop_ms -lt 10000 ] || fail "$* with SIG$sig: took $stop_ms ms to stop"
	echo "SIG$sig, $*: stopped in $stop_ms ms"
}

drain_fifo() { timeout 5 cat <&3 >/dev/null & sleep 0.5; kill $! 2>/dev/null; wait $! 2>/dev/null; }
fill_fifo() { drain_fifo; head -c 65536 /dev/zero >"$TMP/fifo"; } # a pipe holds 64 KiB

# The blind printer fills the console queue behind the full FIFO; the rest is dropped, counted.
fill_fifo
stop_at 4 TERM 143 run --firmware "$TMP/blind.bin"
grep -q "stopped by SIGTERM" "$TMP/err" || fail "blind: no stop reason"
grep -E "console: [0-9]+ bytes of guest output dropped" "$TMP/err" ||
	{ fail "blind: console output not counted"; sed 's/^/    /' "$TMP/err" >&2; }
stop_at 1 HUP 129 run --firmware "$TMP/blind.bin" --cpus 2
grep -q "stopped by SIGHUP" "$TMP/err" || fail "SIGHUP: no stop reason"
stop_at 1 QUIT 131 run --firmware "$TMP/blind.bin"
grep -q "stopped by SIGQUIT" "$TMP/err" || fail "SIGQUIT: no stop reason"
stop_at 1 INT 130 run --firmware "$TMP/blind.bin" --console virtio

# The polite printer sees a full transmitter (LSR THRE clear) and waits: nothing is dropped.
fill_fifo
stop_at 8 TERM 143 run --firmware "$TMP/polite.bin"
grep -E "console:" "$TMP/err"
grep -Eq "console: 0 bytes of guest output dropped .*, [1-9][0-9]* still unwritten" "$TMP/err" ||
	{ fail "polite: bytes were dropped, or none were held back"; sed 's/^/    /' "$TMP/err" >&2; }

# What stdout owes at the end waits 1 s for the reader, then veil says so and exits anyway.
fill_fifo
checks=$((checks + 1))
t0=$(now_ms)
timeout 30 "$VEIL" caps --json >"$TMP/fifo" 2>"$TMP/err"
code=$? ms=$(($(now_ms) - t0))
[ $code = 0 ] || fail "caps to a full FIFO: exit $code"
grep -q "stdout did not take the last [1-9][0-9]* bytes of output within 1000 ms" "$TMP/err" ||
	{ fail "caps to a full FIFO: not said on stderr"; sed 's/^/    /' "$TMP/err" >&2; }
echo "caps with a full stdout: exited after $ms ms"

# veil stress --json: SIGHUP stops it early, and the report and its JSON still come out.
checks=$((checks + 1))
"$VEIL" stress --json --seconds 60 >"$TMP/stress.json" 2>"$TMP/err" </dev/null &
pid=$!
for i in $(seq 300); do grep -q "stress: *1 s:" "$TMP/err" && break; sleep 0.1; done
t0=$(now_ms)
kill -HUP $pid
for i in $(seq 200); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
ms=$(($(now_ms) - t0))
kill -9 $pid 2>/dev/null
wait $pid
code=$?
echo "stress --json with SIGHUP: stopped in $ms ms"
[ $code = 129 ] || { fail "stress with SIGHUP: exit $code, expected 129"; tail -5 "$TMP/err" >&2; }
[ $ms -lt 10000 ] || fail "stress with SIGHUP: took $ms ms"
tail -n 1 "$TMP/stress.json" | grep -q '"interrupted":true' ||
	fail "stress with SIGHUP: no JSON with \"interrupted\":true: $(tail -c 300 "$TMP/stress.json")"
grep -q "stress: interrupted" "$TMP/err" || fail "stress with SIGHUP: not said it was interrupted"
grep -q "stress report:" "$TMP/err" || fail "stress with SIGHUP: no report"

# And with stdout full: the JSON cannot go out, veil says so and still exits 129 in time.
fill_fifo
stop_at 3 HUP 129 stress --json --seconds 60
grep -q "stdout did not take the last" "$TMP/err" ||
	{ fail "stress to a full stdout: not said on stderr"; tail -5 "$TMP/err" >&2; }
exec 3<&-
finish
