#!/usr/bin/env bash
# unit: run --confidential's usage errors exit 2 with a sentence, before any KVM work; on x86
# the mode itself is refused so (docs/confidential.md, "Why not x86").
set -u
veil=$1
fails=0
# expect WHAT REGEX ARGS...: veil exits 2 and says REGEX on stderr.
expect() {
	local what=$1 re=$2 err rc
	shift 2
	err=$("$veil" "$@" 2>&1 >/dev/null); rc=$?
	if [ "$rc" = 2 ] && grep -qE -- "$re" <<<"$err"; then echo "ok: $what"
	else echo "FAIL: $what: exit $rc, '$err'"; fails=$((fails + 1)); fi
}
expect "--launch-manifest needs --confidential" 'needs --confidential' \
	run --launch-manifest /tmp/m --kernel "$veil"
expect "--confidential needs --kernel" 'needs --kernel' run --confidential
if [ "$(uname -m)" = x86_64 ]; then
	expect "x86: the mode is arm64's only" 'confidential: arm64 only' \
		run --confidential --kernel "$veil"
	expect "x86: a firmware guest in the mode too" 'confidential: arm64 only' \
		run --confidential --firmware refusal
	expect "x86: refusal is arm64's firmware" "firmware 'refusal': built-in firmware 'refusal' is not built for this architecture" \
		run --firmware refusal
fi
[ "$fails" = 0 ]
