#!/usr/bin/env bash
# kvm: veil stress on a default VM (host-enforced model): conversions by the guest and the host,
# punches and DMA at once; every invariant must hold and the counters must show the work was done.
# The JSON report (schema 2) is checked field by field; a run stopped by SIGINT must say so.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm

# check_json FILE SECONDS SEED VERDICT INTERRUPTED: the report on FILE's last line; prints problems.
check_json() {
	python3 - "$@" <<'EOF'
import json, sys
path, seconds, seed, verdict, interrupted = sys.argv[1:]
lines = open(path).read().splitlines()
try:
    d = json.loads(lines[-1])
except (IndexError, ValueError) as e:
    print("the last line of stdout is not one JSON object: %s" % e)
    sys.exit(0)
def bad(msg):
    print(msg)
def want(key, cond, what):
    if key not in d:
        bad("no %s" % key)
    elif not cond(d[key]):
        bad("%s is %r, %s" % (key, d[key], what))
want("schema", lambda v: v == 2, "not 2")
want("verdict", lambda v: v == verdict, "not " + verdict)
want("interrupted", lambda v: v is (interrupted == "true"), "not " + interrupted)
want("seed", lambda v: isinstance(v, int) and 0 <= v < 2**64 and (seed == "-" or v == int(seed)),
     "not the seed " + seed)
want("seconds_requested", lambda v: v == int(seconds), "not " + seconds)
if interrupted == "false":
    want("seconds_actual", lambda v: int(seconds) - 0.5 <= v < int(seconds) + 30, "not the run's length")
else:
    want("seconds_actual", lambda v: 0 < v < int(seconds), "not shorter than asked")
want("vm_type", lambda v: v == "default", "not default")
want("model", lambda v: v == "host-enforced", "not host-enforced")
want("vcpus", lambda v: v == 2, "not 2")
for k in ("contents", "stop_reason", "first_host_failure", "foreign_pin"):
    want(k, lambda v: isinstance(v, str), "not a string")
for k in ("conversions", "guest_conversions", "host_conversions", "punches", "dma",
          "dma_refused_private"):
    want(k, lambda v: isinstance(v, int) and v > 0, "not positive")
for k in ("guest_refused", "retries", "eagain", "spec_retries", "pin_waits", "drain_waits",
          "longterm_releases", "host_failures", "dma_registered", "dma_errors", "dma_pin_timeouts"):
    want(k, lambda v: isinstance(v, int) and v >= 0, "not a count")
for k in ("lost_writes", "violations"):
    want(k, lambda v: v == 0, "not 0")
lat = d.get("latency_us", {})
# Every sample of the run is in the histograms: their counts are the counters.
for kind, counter, slack in (("guest_convert", "guest_conversions", 2), ("host_convert",
        "host_conversions", 0), ("punch", "punches", 0), ("dma", "dma", 0)):
    h = lat.get(kind)
    if not h:
        bad("no latency_us.%s" % kind)
        continue
    qs = [h.get(q) for q in ("p50", "p90", "p99", "p99.9", "max")]
    if None in qs or qs != sorted(qs) or qs[0] <= 0:
        bad("latency_us.%s: percentiles not rising: %r" % (kind, h))
    if abs(h.get("n", -1) - d.get(counter, 0)) > slack:
        bad("latency_us.%s.n is %r, %s is %r" % (kind, h.get("n"), counter, d.get(counter)))
EOF
}

run_stress() { # NAME SECONDS SEED ARGS...: runs veil stress --json, checks exit 0 and the report
	local name=$1 seconds=$2 seed=$3 problems
	shift 3
	checks=$((checks + 1))
	if [ "$seed" != - ]; then set -- --seed "$seed" "$@"; fi
	timeout 120 "$VEIL" stress --json --seconds "$seconds" "$@" >"$TMP/$name.json" 2>"$TMP/$name.err"
	local code=$?
	[ "$code" = 0 ] || { fail "$name: exit $code"; tail -20 "$TMP/$name.err" >&2; return; }
	problems=$(check_json "$TMP/$name.json" "$seconds" "$seed" pass false)
	[ -z "$problems" ] || fail "$name: $problems"$'\n'"$(tail -n 1 "$TMP/$name.json")"
	grep -q "stress: pass" "$TMP/$name.err" || fail "$name: the firmware did not pass"
	grep -q "stress: verdict: pass" "$TMP/$name.err" || fail "$name: the text report has no verdict"
}

# Contents kept across conversions: the guest checks its patterns survive.
run_stress preserved 5 42 --cpus 2
grep -q "contents preserved" "$TMP/preserved.err" || fail "preserved: semantics not reported"
grep -q "seed 42" "$TMP/preserved.err" || fail "preserved: the text report does not give the seed"
# Destructive conversions: the guest checks that every converted page reads zeros.
run_stress destructive 3 - --cpus 2 --destructive
grep -q "contents zeroed" "$TMP/destructive.err" || fail "destructive: semantics not reported"
seed=$(tail -n 1 "$TMP/destructive.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["seed"])')
grep -q "seed $seed" "$TMP/destructive.err" || fail "destructive: text and JSON disagree on the seed"

# SIGINT halfway: the report still comes, says the run was interrupted, and fails it.  timeout(1)
# passes the signal on to veil and then to its process group: veil gets it twice.
checks=$((checks + 1))
timeout 120 "$VEIL" stress --json --seconds 30 >"$TMP/int.json" 2>"$TMP/int.err" &
pid=$!
for _ in $(seq 300); do grep -q "stress:   1 s:" "$TMP/int.err" && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"
code=$?
[ "$code" = 130 ] || fail "interrupted: exit $code, expected 130"
problems=$(check_json "$TMP/int.json" 30 - fail true)
[ -z "$problems" ] || fail "interrupted: $problems"$'\n'"$(tail -n 1 "$TMP/int.json")"

# Bad input.
expect 2 "--seconds '0'" -- stress --seconds 0
expect 2 "at most 63 vCPUs" -- stress --cpus 64
expect 2 "--destructive applies to default VMs only" -- stress --destructive --vm-type sw-protected
finish
