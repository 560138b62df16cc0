#!/bin/sh
# nested-api, in L1 (busybox sh): a Linux L2 booted and driven through veil's control API.
# veil serve, vm.create (the stock L2, 2 vCPUs, 256 MiB, a balloon), vm.boot, vm.pause with
# exits frozen for 3 s, vm.resume with exits moving, vm.resize to a 64 MiB balloon, vm.shutdown,
# vmm.shutdown.  Each result is a "VEIL-API: " line the host checks.
# Usage: api-test L2_CMDLINE
S=/tmp/api.sock
api() { api-client "$S" "$@"; }
exits() { api GET vm.counters | sed -n 's/^200 {"exits":\([0-9]*\),.*/\1/p'; }
# wait_out PATTERN TENTHS: until veil's output (the L2 console) has PATTERN.
wait_out() {
	i=0
	while ! grep -q "$1" /tmp/veil.out && [ $i -lt "$2" ]; do sleep 0.1; i=$((i + 1)); done
	grep -q "$1" /tmp/veil.out
}

(veil serve --api-socket "$S" 2>&1; echo "VEIL-API: veil exit=$?") | tee /tmp/veil.out &
i=0
while [ ! -S "$S" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
echo "VEIL-API: socket mode=$(stat -c %a "$S")"
echo "VEIL-API: ping $(api GET vmm.ping)"
echo "VEIL-API: create $(api PUT vm.create "{\"kernel\":\"/l2/stock.bzImage\",\"initrd\":\"/l2/initrd.cpio\",\"cmdline\":\"$1\",\"cpus\":2,\"mem\":268435456,\"balloon\":true}")"
echo "VEIL-API: boot $(api PUT vm.boot)"
wait_out 'VEIL-L2: api tick' 1800 || echo "VEIL-API: no tick from L2"
echo "VEIL-API: state $(api GET vm.info | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')"
echo "VEIL-API: pause $(api PUT vm.pause)"
a=$(exits)
sleep 3
b=$(exits)
echo "VEIL-API: paused exits=$a then=$b state=$(api GET vm.info | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')"
echo "VEIL-API: resume $(api PUT vm.resume)"
sleep 3
echo "VEIL-API: resumed exits=$(exits)"
# The balloon: the L2 prints its MemTotal every tick; inflating takes it down.
echo "VEIL-API: resize $(api PUT vm.resize '{"desired_balloon":67108864}')"
sleep 10
echo "VEIL-API: counters $(api GET vm.counters)"
echo "VEIL-API: shutdown $(api PUT vm.shutdown)"
sleep 2
echo "VEIL-API: stopped $(api GET vm.info | sed -n 's/.*"state":"\([a-z]*\)".*"exit":\(.*\)}$/\1 \2/p')"
echo "VEIL-API: vmm.shutdown $(api PUT vmm.shutdown)"
wait_out 'VEIL-API: veil exit=' 100
echo "VEIL-API: socket gone=$([ -e "$S" ] && echo no || echo yes)"
