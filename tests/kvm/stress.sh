#!/usr/bin/env bash
# kvm: veil stress on a default VM (host-enforced model): conversions by the guest and the host,
# punches and DMA at once; every invariant must hold and the counters must show the work was done.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm

json_field() { # FILE NAME: an integer field of the JSON report on the last line
	tail -n 1 "$1" | grep -o "\"$2\":[0-9][0-9]*" | head -1 | cut -d: -f2
}

run_stress() { # NAME ARGS...: runs veil stress --json, checks exit 0 and the report
	local name=$1 f
	shift
	checks=$((checks + 1))
	timeout 120 "$VEIL" stress --json "$@" >"$TMP/$name.json" 2>"$TMP/$name.err"
	local code=$?
	[ "$code" = 0 ] || { fail "$name: exit $code"; tail -20 "$TMP/$name.err" >&2; return; }
	for f in conversions guest_conversions host_conversions punches dma dma_refused_private; do
		[ "$(json_field "$TMP/$name.json" $f)" -gt 0 ] 2>/dev/null ||
			fail "$name: $f is not positive: $(tail -n 1 "$TMP/$name.json")"
	done
	for f in lost_writes violations; do
		[ "$(json_field "$TMP/$name.json" $f)" = 0 ] ||
			fail "$name: $f is not 0: $(tail -n 1 "$TMP/$name.json")"
	done
	grep -q '"latency_us":{"guest_convert":{"p50":' "$TMP/$name.json" || fail "$name: no latencies"
	grep -q "stress: pass" "$TMP/$name.err" || fail "$name: the firmware did not pass"
}

# Contents kept across conversions: the guest checks its patterns survive.
run_stress preserved --cpus 2 --seconds 5
grep -q "contents preserved" "$TMP/preserved.err" || fail "preserved: semantics not reported"
# Destructive conversions: the guest checks that every converted page reads zeros.
run_stress destructive --cpus 2 --seconds 3 --destructive
grep -q "contents zeroed" "$TMP/destructive.err" || fail "destructive: semantics not reported"

# Bad input.
expect 2 "--seconds '0'" -- stress --seconds 0
expect 2 "at most 63 vCPUs" -- stress --cpus 64
expect 2 "--destructive applies to default VMs only" -- stress --destructive --vm-type sw-protected
finish
