#!/usr/bin/env bash
# kvm: the probe cache.  With a fresh cache the first `veil run` of a default VM creates a probe
# VM and the real one; the second run on the same boot creates exactly one VM.  A cache file
# that is corrupt, for another boot, or unwritable costs a probe again, never a guessed answer.
# VMs are counted twice: veil's own log of KVM_CREATE_VM (-v), and strace where installed.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm

export VEIL_CACHE_DIR="$TMP/cache"
CACHE="$VEIL_CACHE_DIR/caps"
have_strace=false
command -v strace >/dev/null && strace -f -o /dev/null true 2>/dev/null && have_strace=true

# run_count NAME: runs the selftest; sets VMS (veil's log) and SVMS (strace, or VMS without it).
run_count() {
	local name=$1 pre=()
	checks=$((checks + 1))
	# LeakSanitizer cannot work under ptrace: leaks are left to the other tests.
	$have_strace && pre=(env ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
		strace -f -e trace=ioctl -o "$TMP/$name.strace")
	timeout 60 "${pre[@]}" "$VEIL" run -v --firmware selftest >"$TMP/$name" 2>&1 </dev/null
	local rc=$?
	[ "$rc" = 0 ] && grep -q '^selftest: pass' "$TMP/$name" ||
		{ fail "$name: the selftest did not pass (exit $rc)"; sed 's/^/    /' "$TMP/$name" >&2; }
	VMS=$(grep -c 'created (KVM_CREATE_VM' "$TMP/$name")
	SVMS=$VMS
	$have_strace && SVMS=$(grep -c 'KVM_CREATE_VM' "$TMP/$name.strace")
}

# expect_vms NAME N: the run created N VMs, by both counts.
expect_vms() {
	[ "$VMS" = "$2" ] || fail "$1: veil logged $VMS VMs created, expected $2"
	[ "$SVMS" = "$2" ] || fail "$1: strace saw $SVMS KVM_CREATE_VM, expected $2"
}

run_count first
expect_vms first 2
grep -q 'probe VM (is revoking the host mapping safe) created' "$TMP/first" ||
	fail "first run: no revoke probe VM"
grep -Eq 'host mapping revocable: (yes|no) \(probed\)' "$TMP/first" || fail "first run: not probed"
[ -f "$CACHE" ] || fail "no cache file at $CACHE"
[ "$(stat -c %a "$CACHE" 2>/dev/null)" = 600 ] || fail "cache file mode is not 0600"
ls -A "$VEIL_CACHE_DIR" | grep -v '^caps$' && fail "temporary files left in the cache directory"
answer=$(grep -Eo 'host mapping revocable: (yes|no)' "$TMP/first")

run_count second
expect_vms second 1
grep -q "$answer (cached)" "$TMP/second" || fail "second run: '$answer' not from the cache"

# corrupt NAME: after CMD mangles the cache, a run probes again and stores a good file.
corrupt() {
	local name=$1
	run_count "$name"
	expect_vms "$name" 2
	grep -q "$answer (probed)" "$TMP/$name" || fail "$name: '$answer' not probed again"
	run_count "$name-after"
	expect_vms "$name-after" 1
}
cp "$CACHE" "$TMP/good"
head -c 4096 /dev/urandom >"$CACHE"; corrupt garbage
sed 's/^revoke_safe [01]/revoke_safe 2/' "$TMP/good" >"$CACHE"; corrupt bad-value
sed 's/^revoke_safe \([01]\)/revoke_safe  \1/' "$TMP/good" >"$CACHE"; corrupt extra-space
{ cat "$TMP/good"; echo "revoke_safe 1 trailing line"; } >"$CACHE"; corrupt extra-line
head -c 40 "$TMP/good" >"$CACHE"; corrupt truncated
sed 's/^key \([^ ]*\) .*/key \1 00000000-0000-0000-0000-000000000000/' "$TMP/good" >"$CACHE"
corrupt other-boot
sed 's/^revoke_safe [01]/revoke_safe -1/' "$TMP/good" >"$CACHE"; corrupt unknown
rm -f "$CACHE"; ln -s "$TMP/good" "$CACHE"; corrupt symlink

# A cache that cannot be written: every run probes, and still passes.
export VEIL_CACHE_DIR=/proc/veil-no-such-dir
run_count unwritable-1
expect_vms unwritable-1 2
run_count unwritable-2
expect_vms unwritable-2 2
grep -q "$answer (probed)" "$TMP/unwritable-2" || fail "unwritable: '$answer' not probed"

# veil caps: says where each answer came from; --no-cache probes and writes nothing.
export VEIL_CACHE_DIR="$TMP/cache2"
expect 0 'host mapping revocable: +(yes|no) \(probed\)' -- caps --no-cache
[ -e "$VEIL_CACHE_DIR/caps" ] && fail "caps --no-cache wrote the cache"
expect 0 'host mapping revocable: +(yes|no) \(probed\)' -- caps
expect 0 'host mapping revocable: +(yes|no) \(cached\)' -- caps
expect 0 '"revoke_from":"cached"' -- caps --json
expect 0 'host mapping revocable: +(yes|no) \(probed\)' -- caps --refresh
finish
