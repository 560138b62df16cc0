#!/usr/bin/env bash
# kvm: `veil caps --json` (and -j) is one JSON object with schema 1 whose flag names are the
# ones the text output prints: guest_memfd flags, VM types, memory attributes, hypercall exits.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm
export VEIL_CACHE_DIR="$TMP/cache"

checks=$((checks + 1))
# Probed and cached once, so that the text and the JSON both read the same cached results.
"$VEIL" caps >/dev/null 2>&1
"$VEIL" caps >"$TMP/text" 2>"$TMP/err" || fail "caps: exit $?: $(cat "$TMP/err")"
"$VEIL" caps --json >"$TMP/long" 2>"$TMP/err" || fail "caps --json: exit $?: $(cat "$TMP/err")"
"$VEIL" caps -j >"$TMP/short" 2>"$TMP/err" || fail "caps -j: exit $?: $(cat "$TMP/err")"
cmp -s "$TMP/long" "$TMP/short" || fail "caps -j and caps --json differ"
python3 - "$TMP/text" "$TMP/long" >"$TMP/problems" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
raw = open(sys.argv[2]).read()
def bad(m):
    print(m)
if raw.count("\n") != 1 or not raw.endswith("\n"):
    bad("not one line: %r" % raw[:200])
try:
    d = json.loads(raw)
except ValueError as e:
    bad("not JSON: %s" % e)
    sys.exit(0)
if not isinstance(d, dict):
    bad("not one object")
    sys.exit(0)
if d.get("schema") != 1:
    bad("schema is %r, not 1" % d.get("schema"))
def names(s):
    return [] if s in ("", "none") else s.split("|")
m = re.search(r"^guest_memfd: .*flags (\S+) \(0x([0-9a-f]+)\)", text, re.M)
if not m:
    bad("text has no guest_memfd flags line")
else:
    if d.get("guest_memfd_flag_names") != names(m.group(1)):
        bad("guest_memfd_flag_names %r, text says %s" % (d.get("guest_memfd_flag_names"), m.group(1)))
    if d.get("guest_memfd_flags") != int(m.group(2), 16):
        bad("guest_memfd_flags %r, text says 0x%s" % (d.get("guest_memfd_flags"), m.group(2)))
    if d["vm"]["default"].get("guest_memfd_flag_names") != names(m.group(1)):
        bad("vm.default.guest_memfd_flag_names differ from the text's %s" % m.group(1))
m = re.search(r"^VM types: +0x([0-9a-f]+):(.*)$", text, re.M)
if not m or d.get("vm_type_names") != m.group(2).split() or d.get("vm_types") != int(m.group(1), 16):
    bad("vm_types %r %r, text says %r" % (d.get("vm_types"), d.get("vm_type_names"), m and m.group(0)))
for t in d.get("vm_type_names", []):
    if not d["vm"].get(t, {}).get("supported"):
        bad("vm.%s is not supported though vm_type_names names it" % t)
for label, key in (("default:", "default"), ("sw-prot:", "sw-protected")):
    m = re.search(r"^memory attributes, %s +VM level 0x([0-9a-f]+) \(([^)]*)\)" % label, text, re.M)
    v = d["vm"].get(key, {})
    if m and (v.get("memory_attribute_names") != names(m.group(2)) or
              v.get("memory_attributes") != int(m.group(1), 16)):
        bad("vm.%s memory attributes %r %r, text says %s" % (key, v.get("memory_attributes"),
            v.get("memory_attribute_names"), m.group(0)))
    if not m and v.get("supported"):
        bad("text has no memory attributes line for %s" % key)
m = re.search(r"^exit on hypercall: +0x([0-9a-f]+)(?: \(([^)]*)\))?$", text, re.M)
if not m or d.get("exit_hypercall_names") != names(m.group(2) or "") or \
        d.get("exit_hypercall") != int(m.group(1), 16):
    bad("exit_hypercall %r %r, text says %r" % (d.get("exit_hypercall"),
        d.get("exit_hypercall_names"), m and m.group(0)))
m = re.search(r"^(\S+) reaches veil: +(yes|no|unknown) \((\w+)\)", text, re.M)
want = {"yes": True, "no": False, "unknown": None}
if not m or d.get("share_call") != m.group(1) or d.get("map_gpa_range_exits") != want[m.group(2)] \
        or d.get("map_gpa_range_from") != m.group(3):
    bad("share call %r %r %r, text says %r" % (d.get("share_call"), d.get("map_gpa_range_exits"),
        d.get("map_gpa_range_from"), m and m.group(0)))
m = re.search(r"^max vCPUs per VM: +(\d+)$", text, re.M)
if not m or d.get("max_vcpus") != int(m.group(1)):
    bad("max_vcpus %r, text says %r" % (d.get("max_vcpus"), m and m.group(0)))
for key in ("default", "sw-protected"):
    m = re.search(r"^  %s +(\S+): (.*)$" % re.escape(key), text, re.M)
    v = d["vm"].get(key, {})
    if not m or v.get("model") != m.group(1) or v.get("why") != m.group(2):
        bad("vm.%s model %r, text says %r" % (key, v.get("model"), m and m.group(0)))
PY
[ -s "$TMP/problems" ] && { fail "caps --json against the text:"; sed 's/^/    /' "$TMP/problems" >&2; }
expect 2 "unexpected argument 'extra' \(see veil caps --help\)" -- caps -j extra
finish
