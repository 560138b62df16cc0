#!/usr/bin/env bash
# `meson install --destdir` puts veil, libveil (shared and static), veil.h and libveil.pc in a
# tree from which examples/embed.c builds with `pkg-config --cflags --libs libveil` alone, and
# the example runs from there.  The build is the test's own, unsanitized: a sanitizer runtime
# must come first in a program, and the example does not link one.
set -u
SRC=${1:?usage: $0 path/to/source-tree}
CC=${CC:-cc}
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "skip: no usable /dev/kvm" >&2; exit 77; }
command -v pkg-config >/dev/null || { echo "skip: no pkg-config" >&2; exit 77; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
B=$TMP/build
D=$TMP/dest
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }
step() { # step WHAT CMD...: runs CMD with its output in the log, shown if it fails
	local what=$1
	shift
	"$@" >"$TMP/log" 2>&1 || { fail "$what"; sed 's/^/    /' "$TMP/log" >&2; return 1; }
}

# The test's own build, from the same source tree, with the default prefix.
step "meson setup" env -u CFLAGS -u LDFLAGS meson setup "$B" "$SRC" --buildtype=release \
	-Db_sanitize=none -Dstatic=false || exit 1
# Only what installs is built: the tests and benchmarks of that tree are not needed here.
targets=$(meson introspect "$B" --installed | python3 -c '
import json, sys
b = sys.argv[1].rstrip("/") + "/"
for path in json.load(sys.stdin):
    if path.startswith(b) and not path.startswith(b + "meson-private/"):
        print(path[len(b):])' "$B")
# shellcheck disable=SC2086
step "build of the installed targets ($(echo $targets))" ninja -C "$B" $targets || exit 1
step "meson install --destdir" meson install -C "$B" --no-rebuild --destdir "$D" || exit 1

# What an embedder gets: the binary, both libraries with the SONAME, the header, the .pc file.
prefix=$(meson introspect "$B" --buildoptions |
	python3 -c 'import json, sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
pc=$(find "$D" -name libveil.pc)
so=$(find "$D" -name 'libveil.so.0' -type l)
for f in "$D$prefix/bin/veil" "$D$prefix/include/veil.h" "$pc" "$so" \
	"$(dirname "$so")/libveil.so" "$(dirname "$so")/libveil.a"; do
	[ -e "$f" ] || fail "not installed: ${f:-libveil.pc or libveil.so.0}"
done
[ "$fails" -eq 0 ] || exit 1
readelf -d "$so" | grep -q 'SONAME.*\[libveil\.so\.0\]' || fail "$so: SONAME is not libveil.so.0"
"$D$prefix/bin/veil" --version >"$TMP/log" 2>&1 || fail "installed veil --version: $(cat "$TMP/log")"

# The example, compiled outside the source tree, sees nothing but the installed tree: the
# .pc file's prefix is moved under DESTDIR by PKG_CONFIG_SYSROOT_DIR.
cp "$SRC/examples/embed.c" "$TMP/embed.c"
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$D
flags=$(pkg-config --cflags --libs libveil) || { fail "pkg-config --cflags --libs libveil"; exit 1; }
echo "pkg-config --cflags --libs libveil: $flags"
# shellcheck disable=SC2086
step "cc embed.c \$(pkg-config --cflags --libs libveil)" \
	"$CC" -std=gnu11 -Wall -Wextra -Werror -o "$TMP/embed" "$TMP/embed.c" $flags || exit 1
LD_LIBRARY_PATH=$(dirname "$so") ldd "$TMP/embed" | grep -q "libveil.so.0 => $(dirname "$so")/" ||
	fail "embed does not load libveil.so.0 from the installed tree: $(ldd "$TMP/embed" | grep veil)"
if LD_LIBRARY_PATH=$(dirname "$so") timeout 120 "$TMP/embed" >"$TMP/out" 2>&1; then
	grep -q '^embed: pass$' "$TMP/out" || fail "embed exited 0 without saying pass"
else
	fail "embed (shared) exited $?"
fi
sed 's/^/    shared: /' "$TMP/out"

# Statically against libveil.a, with the private requirements pkg-config --static names.
sflags=$(pkg-config --static --cflags --libs libveil) || fail "pkg-config --static"
# shellcheck disable=SC2086
if step "cc -static embed.c \$(pkg-config --static --cflags --libs libveil)" \
	"$CC" -std=gnu11 -static -o "$TMP/embed-static" "$TMP/embed.c" $sflags; then
	if readelf -d "$TMP/embed-static" 2>/dev/null | grep -q NEEDED; then
		fail "embed-static is not static"
	elif timeout 120 "$TMP/embed-static" >"$TMP/out" 2>&1; then
		grep -q '^embed: pass$' "$TMP/out" || fail "embed-static exited 0 without saying pass"
	else
		fail "embed (static) exited $?"
	fi
	sed 's/^/    static: /' "$TMP/out"
fi

echo "$fails failed"
[ "$fails" -eq 0 ]
