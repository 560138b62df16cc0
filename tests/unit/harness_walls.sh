#!/usr/bin/env bash
# unit: the stress harness stays outside the core (issue 11 §1): no harness object in the core
# library, no vm.h or struct vm field in the harness, and vm.h knows none of its types.
# Usage: harness_walls.sh SRCDIR CORE_LIBRARY.a
set -u
SRC=${1:?usage: $0 srcdir core.a}
LIB=${2:?usage: $0 srcdir core.a}
fails=0
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# Objects, and the harness's entry points, that must not be in the core library.
objs=$(ar t "$LIB") || { echo "FAIL: cannot list $LIB" >&2; exit 1; }
for o in stress stress_dma convstress fwsvc internal; do
	echo "$objs" | grep -Eq "(^|[_/])$o\.c\.o$" && fail "$LIB holds $o.c.o"
done
syms=$(nm -g --defined-only "$LIB" 2>/dev/null | awk '{ print $3 }')
for s in stress_run stress_dma_create convstress_start fwsvc_prepare fwsvc_serve \
	 veil_internal_gmem veil_hooks_run; do
	echo "$syms" | grep -qx "$s" && fail "$LIB defines $s"
done

# The harness reaches the VM through veil.h and veil_internal.h only.
for f in "$SRC"/vmm/harness/*.[ch]; do
	grep -Eq '^#include "(vm|vcpu|virtio_devs|caps|sandbox)\.h"' "$f" &&
		fail "$(basename "$f") includes a core header: $(grep -E '^#include "(vm|vcpu|virtio_devs|caps|sandbox)\.h"' "$f" | tr '\n' ' ')"
	grep -Eq 'vm->(vcpus|bus|gmem|kvm_fd|cfg|virtio|stop_reason|nr_vcpus|map_gpa_range_exits|guest_conv_lat)' "$f" &&
		fail "$(basename "$f") uses struct vm's fields"
done
grep -Eq 'struct fwsvc|struct convstress|struct stress' "$SRC/vmm/vm.h" &&
	fail "vm.h knows the harness's types"

[ "$(ls "$SRC"/vmm/harness/*.c | wc -l)" -ge 4 ] || fail "vmm/harness/ has fewer than 4 sources"
echo "harness walls: $fails failed"
[ $fails = 0 ]
