#!/usr/bin/env bash
# kvm: `veil stress --report` writes one SVG that is well-formed XML with exactly one latency
# series per kind, each with samples and the same count and median as the JSON report, and a
# conversion count for each second of the run; a report that cannot be written exits 2.
# usage: stress_report.sh VEIL CHECK_REPORT_SVG_PY
. "$(dirname "$0")/../lib/sh.sh"
CHECK=${2:?usage: $0 veil check_report_svg.py}
need_kvm

checks=$((checks + 1))
timeout 120 "$VEIL" stress --seconds 2 --json --report "$TMP/r.svg" >"$TMP/out" 2>"$TMP/err"
code=$?
if [ "$code" != 0 ]; then
	fail "stress --report: exit $code"; sed 's/^/    /' "$TMP/err" >&2
elif ! tail -n 1 "$TMP/out" >"$TMP/report.json" ||
	! python3 "$CHECK" "$TMP/r.svg" --json "$TMP/report.json" --seconds 2 --nonempty \
		>"$TMP/problems"; then
	fail "stress --report: the SVG does not check out:"; sed 's/^/    /' "$TMP/problems" >&2
fi

# Written at the end, so a device that fills up fails the run with exit 2, naming the file.
expect 2 "veil stress: --report '/dev/full': cannot write" -- stress --seconds 1 --report /dev/full
finish
