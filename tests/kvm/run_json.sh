#!/usr/bin/env bash
# kvm: `veil run --json` puts the end-of-run summary as one JSON object on the last line of
# stdout (docs/formats.md), for a passing guest, a failing one, a signal, with and without -q.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm
command -v python3 >/dev/null || { echo "skip: no python3" >&2; exit 77; }

# check NAME STATUS KIND CODE REASON-SUBSTRING [DEVICE]: $TMP/out's last line, parsed.
check() {
	checks=$((checks + 1))
	python3 - "$TMP/out" "$@" <<'PY' || fail "$1: the JSON line does not check out"
import json, sys
path, name, status, kind, code, reason = sys.argv[1:7]
device = sys.argv[7] if len(sys.argv) > 7 else None
data = open(path, "rb").read()
def bad(msg):
    print(f"{name}: {msg}", file=sys.stderr)
    sys.exit(1)
if not data.endswith(b"}\n"):
    bad(f"stdout does not end with the JSON line: {data[-80:]!r}")
last = data.rstrip(b"\n").split(b"\n")[-1]
d = json.loads(last)
isint = lambda v: isinstance(v, int) and not isinstance(v, bool)
if d.get("schema") != 1: bad(f"schema {d.get('schema')!r}")
if d["status"] != int(status): bad(f"status {d['status']} != {status}")
e = d["exit"]
if e["kind"] != kind or e["code"] != int(code): bad(f"exit {e}")
if reason not in e["reason"]: bad(f"reason {e['reason']!r} lacks {reason!r}")
c = d["counters"]
for k in ("exits", "io_exits", "guest_conversions", "host_conversions", "refused_private",
          "unhandled_io", "share_p50_ns", "refused_device"):
    if not isint(c.get(k)): bad(f"counters.{k} = {c.get(k)!r}")
if not all(isint(v) for v in c.values()): bad("a counter that is not an integer")
if kind != "signal" and c["exits"] <= 0: bad("no exits counted")  # hlt in-kernel: none
p = d["exits"]["count"]
if sum(p.values()) - p["kick"] != c["exits"]: bad(f"exit profile {p} does not add up to {c['exits']}")
for dev, cs in d["devices"].items():
    if not all(isint(v) for v in cs.values()): bad(f"device {dev}: a counter not an integer")
if device and device not in d["devices"]: bad(f"no device {device}: {list(d['devices'])}")
if d["vm"]["cpus"] < 1 or not isint(d["vm"]["mem_bytes"]): bad(f"vm {d['vm']}")
PY
}

# run CODE ARGS...: veil run ARGS with stdout and stderr apart.
run() {
	local code=$1 got
	shift
	checks=$((checks + 1))
	timeout 60 "$VEIL" run "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
	got=$?
	[ "$got" = "$code" ] || { fail "run $*: exit $got, expected $code"; cat "$TMP/err" >&2; }
}

run 0 --firmware selftest --json
check selftest 0 poweroff 0 "status 0"
grep -q "selftest: pass" "$TMP/out" || fail "selftest: the console is not on stdout before the JSON"
grep -q "^veil: stopped:" "$TMP/err" || fail "selftest: the words of the summary left stderr"
python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().split("\n")[-2]); sys.exit(not d["host_check"]["passed"])' "$TMP/out" || fail "selftest: host_check not passed"

# -q: errors and the JSON only.
run 0 --firmware selftest --json -q --disk "$(truncate -s 1M "$TMP/d.img"; echo "$TMP/d.img")"
check selftest-q 0 poweroff 0 "status 0" virtio-blk0
[ ! -s "$TMP/err" ] || { fail "-q --json: stderr is not empty"; cat "$TMP/err" >&2; }

# The guest's failure: the JSON still comes, with its reason.
printf '\xb8\x05\x00\x00\x00\xba\x01\x05\x00\x00\xef\xf4' >"$TMP/status5.bin" # out 0x501, 5
# Its file name, with a quote, a backslash and a tab, comes back escaped and whole.
odd=$TMP/$'st"a\\t\tus5.bin'
cp "$TMP/status5.bin" "$odd"
run 1 --firmware "$odd" --cpus 2 --json -q
check status5 1 failure 1 "failure status 5"
checks=$((checks + 1))
python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().split("\n")[-2]); sys.exit(d["vm"]["guest"] != sys.argv[2])' \
	"$TMP/out" "$odd" || fail "status5: vm.guest is not the file name: $(tail -n 1 "$TMP/out" | head -c 400)"
grep -q "failure status 5" "$TMP/err" || fail "status5 -q: the error left stderr"

# Stopped by a signal: 128 + 15, kind signal.
printf '\xfa\xf4\xeb\xfc' >"$TMP/halt.bin" # cli; hlt forever
checks=$((checks + 1))
"$VEIL" run --firmware "$TMP/halt.bin" --json >"$TMP/out" 2>"$TMP/err" </dev/null &
pid=$!
sleep 1
kill -TERM $pid
for i in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -9 $pid 2>/dev/null
wait $pid
got=$?
[ "$got" = 143 ] || fail "SIGTERM: exit $got, expected 143"
check sigterm 143 signal 143 "stopped by"

# Without --json, no JSON.
run 0 --firmware selftest -q
! grep -q '"schema"' "$TMP/out" || fail "without --json: JSON on stdout"
finish
