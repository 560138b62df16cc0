#!/usr/bin/env bash
# unit: `veil stress --report`'s SVG from made-up histograms is well-formed XML with one latency
# series per kind (python3's xml.etree), the checker itself rejects a broken report, and a
# --report path veil cannot write exits 2 before any VM is made.
# usage: report_svg.sh TEST_REPORT_SVG CHECK_REPORT_SVG_PY VEIL
set -u
BIN=${1:?usage: $0 test_report_svg check_report_svg.py veil}
CHECK=${2:?}
VEIL=${3:?}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

"$BIN" "$TMP/r.svg" || fail "test_report_svg failed"
python3 "$CHECK" "$TMP/r.svg" --seconds 5 --title "a <title> & \"quotes\" 'too'" \
	--n guest_convert=1000 --n host_convert=10 --n punch=0 --n dma=2 ||
	fail "the made-up report does not pass the checker"

# The checker can fail: a second punch series, a torn document, sums that do not add up.
sed '0,/data-kind="punch"/s//data-kind="punch"/; s/data-kind="dma"/data-kind="punch"/' \
	"$TMP/r.svg" >"$TMP/dup.svg"
python3 "$CHECK" "$TMP/dup.svg" >"$TMP/out" && fail "the checker took two punch series"
grep -q "not one each" "$TMP/out" || fail "the checker did not name the duplicate kind"
head -c 2000 "$TMP/r.svg" >"$TMP/torn.svg"
python3 "$CHECK" "$TMP/torn.svg" >"$TMP/out" && fail "the checker took a torn document"
grep -q "not well-formed" "$TMP/out" || fail "the checker did not call the torn one malformed"
sed 's/data-total="55555"/data-total="55556"/' "$TMP/r.svg" >"$TMP/sum.svg"
python3 "$CHECK" "$TMP/sum.svg" >/dev/null && fail "the checker took a wrong total"

# A path veil cannot write: exit 2 at once, naming it, with no VM made (no seed line).
for bad in "$TMP/no/such/dir/r.svg" "$TMP"; do
	timeout 30 "$VEIL" stress --report "$bad" >"$TMP/out" 2>&1
	code=$?
	[ "$code" = 2 ] || fail "stress --report $bad: exit $code, expected 2"
	grep -q "veil stress: --report '$bad': cannot write: " "$TMP/out" ||
		fail "stress --report $bad: $(cat "$TMP/out")"
	grep -q "seed" "$TMP/out" && fail "stress --report $bad: ran before refusing the path"
done
# Other bad options are reported first, and no FILE is left behind for them.
timeout 30 "$VEIL" stress --report "$TMP/x.svg" --mem 8M >"$TMP/out" 2>&1
[ $? = 2 ] && grep -q "at least 16M" "$TMP/out" || fail "stress --report --mem 8M: $(cat "$TMP/out")"
[ -e "$TMP/x.svg" ] && fail "stress --report with --mem 8M created the file"
[ "$fails" -eq 0 ] && echo "report_svg: ok"
[ "$fails" -eq 0 ]
