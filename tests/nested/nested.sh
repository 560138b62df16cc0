#!/usr/bin/env bash
# The nested platform (PLATFORM.md §B): QEMU TCG runs an L1 Linux with KVM, veil runs inside
# L1, and real Linux guests run as L2 under veil.  Results come back as marker lines on L1's
# serial console.
#
# Usage: nested.sh SUBCOMMAND [ARGS]
#   prepare                      packages, kernels, static veil, initramfs images (idempotent)
#   run-test NAME                one test of the meson suite `nested` (prepares first): a name
#                                from the table in x86-tests.sh (selftest, linux-stock, ...)
#   qemu-direct [stock|swprot] [poweroff|panic|shell] [-- QEMU ARGS]
#                                debugging: boots an L2 kernel with the L2 initramfs directly
#                                under host-level QEMU TCG (no L1, no veil) and checks markers
#   l1-run 'SHELL COMMAND'       debugging: boots L1 and runs one command in it (veil is /bin/veil,
#                                the L2 kernels and initramfs are in /l2; with NESTED_L1_PEER=1,
#                                QEMU is there too, as /usr/bin/qemu-system-x86_64)
#   l1-shell                     debugging: boots L1 with an interactive shell on this terminal
#   l1-peer [stock|swprot] [poweroff|panic]
#                                debugging: the same L2 boot as the linux tests, but with Debian's
#                                QEMU (-accel kvm) as the VMM inside L1: a peer to compare veil with
#   bench-boot [stock|swprot] [ROUNDS]
#                                veil and QEMU (-accel kvm) booting the same L2 to poweroff,
#                                alternating in one L1, 5 rounds by default, the stock kernel
#                                as bzImage and as ELF vmlinux; min/median/max, veil/QEMU and
#                                veil's profile (bench/)
#   bench-blk [ROUNDS] [BOOTS]   virtio-blk O_DIRECT in the stock L2 under veil and under QEMU
#                                (aio=io_uring and its default), alternating in one L1 (every
#                                second boot in the reverse order): 4 KiB
#                                random reads at QD 1 and 32, 1 MiB sequential reads and writes;
#                                min/median/max and veil/QEMU (bench/)
#   bench-blk-prof [ROUNDS] [BOOTS] [FULL]
#                                the QD 32 row of bench-blk alone (ROUNDS rounds, default 6) under
#                                veil (--timing) and QEMU aio=io_uring, with L1's /proc sampled
#                                per VMM thread across it (blk-prof.sh): CPU time, run-queue
#                                wait, switches; L2's CPU time and interrupts; with FULL > 0,
#                                then one unsampled boot of each with all rows, FULL rounds
#   bench-convert [ITERATIONS [ROUNDS [SIZE...]]]
#                                bench/veil-bench-convert in one L1: gmem_convert() against the raw
#                                kernel loop on a SW_PROTECTED VM (out-of-place with
#                                VEIL_NESTED_L1=swprot, in-place with VEIL_NESTED_L1=inplace) and on
#                                a default VM; min/median/max and veil/raw per range size (bench/)
#
# Environment:
#   NESTED_SRC, NESTED_BUILD     source and meson build directory (default: ../.. and ../../build)
#   NESTED_SHARED                the shared folder (default: $NESTED_SRC/../shared)
#   VEIL_NESTED_L1               auto (default: the shared swprot kernel if present, else stock),
#                                swprot, inplace, stock (trixie-backports), or a bzImage path
#   NESTED_VEIL_ARGS             extra arguments for every `veil run` inside L1
#   NESTED_L2_CMDLINE_EXTRA      extra words for the L2 kernel command line
#                                (e.g. "tsc=reliable no_timer_check"; none by default)
#   NESTED_L2_VERBOSE=1          drop `quiet` from the L2 command line
#   NESTED_SWPROT_NOXSAVE=0      do not add `noxsave` to the swprot L2's command line (see
#                                l2_cmdline: a workaround for this platform's CPUID leaf 0xD)
#   NESTED_TCG_THREAD            multi or single: QEMU's TCG threading for L1 (default: single
#                                for the firmware tests, multi for Linux boots; see run_test)
#   NESTED_L1_CMDLINE_EXTRA      extra words for the L1 kernel command line
#   NESTED_T_L2_INIT             seconds from veil's start to the L2 init marker (default 120)
#   NESTED_KVM_HOLD=0            do not hold a KVM VM open in L1 (see kvm-hold.c)
#   NESTED_TSC_EARLY_KHZ         L1's tsc_early_khz= (default: the host's TSC rate, measured by
#                                tsc-khz.c; 0 leaves it out)
#   NESTED_BENCH_VMLINUX=0       bench-boot: the bzImage only, no vmlinux rounds
#   NESTED_DEBIAN_MIRROR         a Debian mirror URI to use instead of the one in
#                                /etc/apt/sources.list.d/debian.sources
#
# The files: harness.sh (shared by the platforms: stages, the L1 run, checks, the retry
# policy, run-test's driver), x86-platform.sh (what an x86 run needs, prepared and cached),
# x86-tests.sh (the test table and the tests), x86-bench.sh, x86-debug.sh; README.md.
#
# Everything is cached under the build directory: nested-cache/ (downloads), nested-veil/ (the
# static veil build), nested-work/ (unpacked kernels, images, per-run console logs).
set -euo pipefail
export LC_ALL=C # byte semantics: serial consoles carry the odd stray byte

SELF=$(readlink -f "${BASH_SOURCE[0]}")
HERE=$(dirname "$SELF")
SRC=$(readlink -f "${NESTED_SRC:-$HERE/../..}")
BUILD=$(readlink -m "${NESTED_BUILD:-$SRC/build}")
SHARED=$(readlink -m "${NESTED_SHARED:-$SRC/../shared}")
# Used by the sourced files.
# shellcheck disable=SC2034
{ CACHE=$BUILD/nested-cache; WORK=$BUILD/nested-work; }
# shellcheck source=tests/nested/debian.sh
. "$HERE/debian.sh"
# shellcheck source=tests/nested/harness.sh
. "$HERE/harness.sh"
# shellcheck source=tests/nested/x86-platform.sh
. "$HERE/x86-platform.sh"
# shellcheck source=tests/nested/x86-tests.sh
. "$HERE/x86-tests.sh"
# shellcheck source=tests/nested/x86-bench.sh
. "$HERE/x86-bench.sh"
# shellcheck source=tests/nested/x86-debug.sh
. "$HERE/x86-debug.sh"
export NESTED_SRC=$SRC NESTED_BUILD=$BUILD NESTED_SHARED=$SHARED

sub=${1:-}
[ $# -gt 0 ] && shift
case $sub in
__fn) "$@" ;;
prepare) prepare ;;
run-test) run_test "$@" ;;
qemu-direct) qemu_direct "$@" ;;
l1-run) l1_run "${1:?l1-run needs a shell command}" ;;
l1-shell) l1_shell ;;
l1-peer) l1_peer "$@" ;;
bench-boot) bench_boot "$@" ;;
bench-blk) bench_blk "$@" ;;
bench-blk-prof) bench_blk_prof "$@" ;;
bench-convert) bench_convert "$@" ;;
*)
	sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'
	[ -z "$sub" ] || [ "$sub" = help ] || [ "$sub" = --help ] || exit 2
	;;
esac
