#!/usr/bin/env bash
# kvm: the conversions firmware (the stages of the kernel's private_mem_conversions_test) on a
# default VM, where veil enforces the attribute map itself (DESIGN.md §2c).  This KVM emulates
# every guest instruction, so the guest samples one qword per page (--check-stride 512); the
# host side checks whole pages.  The nested suite runs it at full density on §2a and §2b.
. "$(dirname "$0")/../lib/sh.sh"
need_kvm

expect 0 "conversions: pass" -- run --firmware conversions --mem 64M --check-stride 512
for t in "explicit conversion" "explicit conversion, backing allocated first" \
	"punch hole, precise" "punch hole, whole area"; do
	grep -q "^conversions: $t: 5 stages pass" "$TMP/out" || fail "no pass line for '$t'"
done
grep -q "contents preserved on conversion" "$TMP/out" || fail "default VM: contents not announced as preserved"
# Each stage's host write to a private range, and its read, were refused (I3): 5 stages x 2
# explicit tests x 2 accesses.
grep -q " 20 refused private accesses" "$TMP/out" || fail "expected 20 refused private accesses"
finish
