# Shared helpers for shell tests: sourced, never run.  Each test gets $VEIL as $1.
set -u
VEIL=${1:?usage: $0 path/to/veil}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
checks=0

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

need_kvm() {
	[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "skip: no usable /dev/kvm" >&2; exit 77; }
}

# expect CODE PATTERN -- ARGS...: veil ARGS exits CODE and its output matches PATTERN (grep -E).
expect() {
	local code=$1 pat=$2 got
	shift 3
	checks=$((checks + 1))
	timeout 60 "$VEIL" "$@" >"$TMP/out" 2>&1 </dev/null
	got=$?
	if [ "$got" != "$code" ]; then
		fail "veil $*: exit $got, expected $code"; sed 's/^/    /' "$TMP/out" >&2
	elif ! grep -Eq -- "$pat" "$TMP/out"; then
		fail "veil $*: output lacks /$pat/"; sed 's/^/    /' "$TMP/out" >&2
	fi
}

finish() {
	echo "$checks checks, $fails failed"
	[ "$fails" -eq 0 ]
}
