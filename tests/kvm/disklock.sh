#!/usr/bin/env bash
# kvm: disk images are OFD-locked, shared for ,ro and exclusive for read-write: a veil
# that would write an image another process has open, or read one another writes,
# exits 2 naming the image, and the veil already running runs on.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm

IMG=$TMP/disk.img
truncate -s 1M "$IMG"
printf '\xfa\xf4\xeb\xfc' >"$TMP/halt.bin" # cli; hlt forever: a guest that runs until stopped

# lockpy MODE: hold (r or w, until killed) or probe (prints the lock a writer would meet).
cat >"$TMP/lock.py" <<'EOF'
import fcntl, os, struct, sys, time
F_OFD_GETLK, F_OFD_SETLK = 36, 37
def flock(t):
    return struct.pack('@hhqqi4x', t, 0, 0, 0, 0)
path, mode = sys.argv[1], sys.argv[2]
if mode == 'probe':
    fd = os.open(path, os.O_RDWR)
    t = struct.unpack('@hhqqi4x', fcntl.fcntl(fd, F_OFD_GETLK, flock(fcntl.F_WRLCK)))[0]
    print({fcntl.F_RDLCK: 'r', fcntl.F_WRLCK: 'w'}.get(t, 'none'))
else:
    fd = os.open(path, os.O_RDWR if mode == 'w' else os.O_RDONLY)
    fcntl.fcntl(fd, F_OFD_SETLK, flock(fcntl.F_WRLCK if mode == 'w' else fcntl.F_RDLCK))
    print('locked', flush=True)
    time.sleep(600)
EOF
probe() { python3 "$TMP/lock.py" "$IMG" probe; }

# hold MODE: a python process holding the lock; its pid in $holder.
hold() {
	python3 "$TMP/lock.py" "$IMG" "$1" >"$TMP/hold.out" 2>&1 &
	holder=$!
	for _ in $(seq 100); do grep -q locked "$TMP/hold.out" && return; sleep 0.1; done
	fail "python could not take a '$1' lock: $(cat "$TMP/hold.out")"
}
release() { kill "$holder"; wait "$holder" 2>/dev/null; }

busy_w="--disk '$IMG(,ro)?': disk image in use by another process, which holds it locked for writing"
busy_r="--disk '$IMG': disk image in use by another process, which holds it locked for reading"

# Another process writes the image: neither read-write nor read-only.
hold w
expect 2 "$busy_w" -- run --disk "$IMG"
expect 2 "$busy_w" -- run --disk "$IMG,ro"
release
# Another process reads it: read-only is fine, read-write is refused.
hold r
expect 0 "selftest: pass" -- run --disk "$IMG,ro"
expect 2 "$busy_r" -- run --disk "$IMG"
release

# start_first ARGS: a veil running halt.bin in the background (pid $first) once its lock is seen.
start_first() { # WANT_PROBE ARGS...
	local want=$1
	shift
	"$VEIL" run --firmware "$TMP/halt.bin" "$@" >"$TMP/first.out" 2>&1 </dev/null &
	first=$!
	for _ in $(seq 200); do [ "$(probe)" = "$want" ] && return; sleep 0.1; done
	fail "the first veil ($*) never locked the image ($(probe))"
}
# stop_first: the first veil ran on, and stops with its own result when told to.
stop_first() {
	checks=$((checks + 1))
	kill -0 "$first" 2>/dev/null || fail "the first veil died: $(cat "$TMP/first.out")"
	kill -TERM "$first"
	wait "$first"
	local code=$?
	[ "$code" = 143 ] || fail "the first veil: exit $code, expected 143"
	grep -q "stopped by" "$TMP/first.out" || fail "the first veil: no stop reason"
}

# Two veils: a writer excludes everyone; readers share.
start_first w --disk "$IMG"
expect 2 "$busy_w" -- run --disk "$IMG"
expect 2 "$busy_w" -- run --disk "$IMG,ro"
stop_first
start_first r --disk "$IMG,ro"
expect 0 "selftest: pass" -- run --disk "$IMG,ro"
expect 2 "$busy_r" -- run --disk "$IMG"
stop_first
# Gone with the veil that held it.
checks=$((checks + 1))
[ "$(probe)" = none ] || fail "a lock outlived its veil: $(probe)"

# One veil with the image twice, read-only first: its own lock moves to the writer.
expect 0 "virtio-blk1: 0 reads" -- run --disk "$IMG,ro" --disk "$IMG"
finish
