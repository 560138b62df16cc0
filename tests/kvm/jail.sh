#!/usr/bin/env bash
# kvm: veil run --jail DIR --user UID:GID, seen from outside while it runs: its ids, no
# capabilities, no_new_privs, its own namespaces, DIR as its root, the rlimits; guests still
# run and stop with the right code, and signals reach the jailed veil through its parent.
. "$(dirname "$0")/../lib/sh.sh"
BZ=${2:?usage: $0 path/to/veil path/to/linuxboot.bzImage}
need_kvm
[ "$(id -u)" = 0 ] || { echo "skip: --jail needs root" >&2; exit 77; }
for ns in mount:--mount pid:"--pid --fork" ipc:--ipc uts:--uts network:--net; do
	# shellcheck disable=SC2086 # the flags are meant to split
	unshare ${ns#*:} true 2>/dev/null ||
		{ echo "skip: this sandbox refuses a new ${ns%%:*} namespace" >&2; exit 77; }
done

JAIL=$TMP/jail
mkdir "$JAIL"
echo "inside" >"$JAIL/marker"
truncate -s 1M "$TMP/disk.img"
NOBODY=65534:65534
# out 0x3f8 'J', '\n'; then spin: a guest that has started and runs until stopped.
printf '\x66\xba\xf8\x03\xb0\x4a\xee\xb0\x0a\xee\xeb\xfe' >"$TMP/hello-spin.bin"
printf '\xb8\x05\x00\x00\x00\xba\x01\x05\x00\x00\xef\xf4' >"$TMP/status5.bin" # out 0x501, 5
printf '\x0f\x0b' >"$TMP/ud2.bin"                                           # triple fault

# Guests run jailed, with every device, and their exit codes come through the parent.
expect 0 "selftest host check passed: 2 result pages" -- run --jail "$JAIL" --user $NOBODY \
	--cpus 2 --disk "$TMP/disk.img" --disk "$TMP/disk.img,ro" --balloon --rng --console virtio
grep -q "selftest: pass" "$TMP/out" || fail "jailed selftest: no pass from the guest"
expect 0 "virtio-blk0: 0 reads" -- run --jail "$JAIL" --cpus 2 --transport pci --disk "$TMP/disk.img"
expect 1 "failure status 5" -- run --jail "$JAIL" --user $NOBODY --firmware "$TMP/status5.bin"
expect 3 "guest reset \(triple fault\)" -- run --jail "$JAIL" --user $NOBODY --firmware "$TMP/ud2.bin"
# A kernel and initrd, read before the jail: the linuxboot firmware checks every initrd byte.
python3 -c 'import sys; sys.stdout.buffer.write(bytes((i * 7 + 3) & 0xff for i in range(100003)))' \
	>"$TMP/initrd" || { echo "skip: cannot write the initrd (python3)" >&2; exit 77; }
expect 0 "linuxboot: pass" -- run --jail "$JAIL" --user $NOBODY --kernel "$BZ" --initrd "$TMP/initrd" \
	--cmdline "console=ttyS0 veiltest=linuxboot" --cpus 2
grep -q "linuxboot: initrd: 100003 bytes at" "$TMP/out" || fail "jailed linuxboot: initrd not checked"
[ "$(ls -A "$JAIL")" = marker ] || fail "the jail changed DIR: $(ls -A "$JAIL")"

# start ARGS...: a jailed veil in the background; $PARENT, and $CHILD once the guest runs.
start() {
	"$VEIL" run --firmware "$TMP/hello-spin.bin" --jail "$JAIL" "$@" >"$TMP/out" 2>&1 </dev/null &
	PARENT=$!
	CHILD=
	local i
	for i in $(seq 100); do
		grep -q '^J' "$TMP/out" && CHILD=$(pgrep -P $PARENT) && [ -n "$CHILD" ] && return 0
		sleep 0.1
	done
	fail "jailed veil $*: the guest did not start, or no child"; cat "$TMP/out" >&2
	return 1
}

# stop SIGNAL CODE: the parent forwards SIGNAL, and exits with CODE within 10 s.
stop() {
	local start=$SECONDS i code
	checks=$((checks + 1))
	kill -s "$1" $PARENT
	for i in $(seq 100); do kill -0 $PARENT 2>/dev/null || break; sleep 0.1; done
	kill -9 $PARENT 2>/dev/null
	wait $PARENT
	code=$?
	[ "$code" = "$2" ] || { fail "SIG$1 to the parent: exit $code, expected $2"; cat "$TMP/out" >&2; }
	[ $((SECONDS - start)) -lt 10 ] || fail "SIG$1: took $((SECONDS - start)) s"
	grep -q "stopped by" "$TMP/out" || fail "SIG$1: no stop reason from the jailed veil"
}

field() { sed -n "s/^$1:[[:space:]]*//p" "/proc/$CHILD/status" | tr -s ' \t' ' '; }

if start --user $NOBODY --cpus 2 --disk "$TMP/disk.img"; then
	checks=$((checks + 1))
	[ "$(field Uid)" = "65534 65534 65534 65534" ] || fail "Uid: $(field Uid)"
	[ "$(field Gid)" = "65534 65534 65534 65534" ] || fail "Gid: $(field Gid)"
	[ -z "$(field Groups)" ] || fail "Groups: $(field Groups)"
	for c in CapInh CapPrm CapEff CapBnd CapAmb; do
		[ "$(field $c)" = 0000000000000000 ] || fail "$c: $(field $c)"
	done
	[ "$(field NoNewPrivs)" = 1 ] || fail "NoNewPrivs: $(field NoNewPrivs)"
	[ "$(field Seccomp)" = 2 ] || fail "Seccomp: $(field Seccomp)"
	[ "$(field NSpid)" = "$CHILD 1" ] || fail "NSpid: $(field NSpid), expected PID 1 of a new namespace"
	for ns in mnt pid ipc uts net; do
		[ "$(readlink /proc/$CHILD/ns/$ns)" != "$(readlink /proc/$$/ns/$ns)" ] ||
			fail "the jailed veil shares the $ns namespace: $(readlink /proc/$CHILD/ns/$ns)"
	done
	[ "$(ls -A /proc/$CHILD/root)" = marker ] || fail "its root is not DIR: $(ls -A /proc/$CHILD/root)"
	[ "$(cat /proc/$CHILD/root/marker)" = inside ] || fail "its root's marker file differs"
	[ "$(readlink /proc/$CHILD/cwd)" = / ] || fail "its cwd: $(readlink /proc/$CHILD/cwd)"
	for l in "Max open files" "Max processes" "Max file size"; do
		grep "^$l " /proc/$CHILD/limits | grep -q unlimited && fail "$l: unlimited"
	done
	# Opened before the jail, outside DIR: the disk is still served.
	ls -l /proc/$CHILD/fd | grep -q "disk.img" || fail "the jailed veil has no fd on the disk"
	# Forwarded, SIGHUP stops the jailed veil as it stops any veil: 128 + 1.
	stop HUP 129
fi
# Without --user: still uid 0, but no capability at all.
if start --cpus 1; then
	checks=$((checks + 1))
	[ "$(field Uid)" = "0 0 0 0" ] || fail "no --user: Uid $(field Uid)"
	[ "$(field CapEff)" = 0000000000000000 ] || fail "no --user: CapEff $(field CapEff)"
	[ "$(field CapBnd)" = 0000000000000000 ] || fail "no --user: CapBnd $(field CapBnd)"
	stop INT 130
fi
# SIGTERM, forwarded: 128 + 15.
if start --user $NOBODY; then
	stop TERM 143
fi
# The jailed veil dies with its parent; and a child killed outright gives 128+9.
if start --user $NOBODY; then
	checks=$((checks + 1))
	kill -9 $CHILD
	wait $PARENT
	code=$?
	[ "$code" = 137 ] || fail "jailed veil killed by SIGKILL: parent exit $code, expected 137"
fi
if start --user $NOBODY; then
	checks=$((checks + 1))
	kill -9 $PARENT
	wait $PARENT 2>/dev/null
	alive() { grep -qs "^State:[[:space:]]*[^Z]" /proc/$CHILD/status; } # a zombie is dead
	for i in $(seq 50); do alive || break; sleep 0.1; done
	alive && { fail "the jailed veil outlived its parent"; kill -9 $CHILD; }
fi

# Bad jail arguments that need a real run; and root without CAP_SYS_ADMIN gets no jail.
expect 2 "--disk '$TMP/nosuch.img': No such file" -- run --jail "$JAIL" --disk "$TMP/nosuch.img"
if command -v setpriv >/dev/null; then
	checks=$((checks + 1))
	setpriv --bounding-set -sys_admin "$VEIL" run --jail "$JAIL" >"$TMP/out" 2>&1 </dev/null
	code=$?
	[ "$code" = 2 ] && grep -q "new PID namespace: Operation not permitted (a jail needs root)" "$TMP/out" ||
		{ fail "no CAP_SYS_ADMIN: exit $code, expected 2 with a message"; cat "$TMP/out" >&2; }
fi
finish
