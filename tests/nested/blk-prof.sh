#!/bin/sh
# blk-prof VMM ARGS... (in L1, for nested.sh bench-blk-prof): runs the VMM with its console
# copied to this one, and when the L2 prints "blk_prof begin" and "blk_prof end" (l2-init,
# veilrows=qd32) takes a snapshot of L1's /proc: the uptime, L1's cpu line of /proc/stat, and
# for each of the VMM's threads its name, utime and stime (ticks), schedstat (ns on the CPU,
# ns waiting for one, timeslices) and voluntary/involuntary context switches.  Prints the
# differences between the two as "blk_prof:" lines, after the VMM's output (kept in a file
# until it exits: busybox's tail -f polls once a second and would drop its last lines).
# Exits with the VMM's status.
out=/tmp/blk-prof.out
: >"$out"
"$@" >"$out" 2>&1 </dev/null &
pid=$!
trap 'kill "$pid" 2>/dev/null; cat "$out"; exit 143' TERM INT

snap() {
	{
		echo "uptime $(cut -d' ' -f1 /proc/uptime)"
		head -n1 /proc/stat
		for t in /proc/"$pid"/task/*; do
			# stat's comm may hold spaces ("CPU 0/KVM"): the fields after ") " count from state.
			echo "task ${t##*/} $(tr ' ' '_' <"$t/comm")" \
				"$(sed 's/.*) //' "$t/stat" | cut -d' ' -f12,13)" \
				"$(cat "$t/schedstat" 2>/dev/null || echo '0 0 0')" \
				"$(awk '/^(non)?voluntary_ctxt_switches/ { printf "%s ", $2 }' "$t/status")"
		done
	} >"$1" 2>/dev/null
}

state=0
while kill -0 "$pid" 2>/dev/null; do
	if [ $state = 0 ] && grep -q 'blk_prof begin' "$out"; then
		snap /tmp/blk-prof.0
		state=1
	elif [ $state = 1 ] && grep -q 'blk_prof end' "$out"; then
		snap /tmp/blk-prof.1
		state=2
	fi
	sleep 0.1
done
wait "$pid"
rc=$?
cat "$out"

if [ $state = 2 ]; then
	# One line per thread alive at both snapshots; % of wall = CPU time / window.
	awk '
		FNR == 1 { f++ }
		$1 == "uptime" { up[f] = $2 }
		$1 == "cpu" { for (i = 2; i <= NF; i++) cpu[f, i] = $i; ncpu = NF }
		$1 == "task" && NF >= 10 {
			k = $2; name[k] = $3
			ut[f, k] = $4; st[f, k] = $5; run[f, k] = $6; wt[f, k] = $7; sl[f, k] = $8
			vcs[f, k] = $9; ncs[f, k] = $10; seen[f, k] = 1
		}
		END {
			w = up[2] - up[1]
			printf "blk_prof: window %.2f s (L1 uptime at the L2 markers, 0.1 s polling)\n", w
			split("user nice system idle iowait irq softirq steal", cn, " ")
			line = ""
			for (i = 2; i <= 9 && i <= ncpu; i++)
				line = line sprintf(" %s %.2f", cn[i - 1], (cpu[2, i] - cpu[1, i]) / 100 / w)
			printf "blk_prof: L1 CPUs (all, in CPUs busy over the window):%s\n", line
			for (k in name) {
				if (!seen[1, k] || !seen[2, k]) continue
				u = (ut[2, k] - ut[1, k]) * 10; s = (st[2, k] - st[1, k]) * 10
				r = (run[2, k] - run[1, k]) / 1e6; q = (wt[2, k] - wt[1, k]) / 1e6
				printf "blk_prof: thread %s %s: utime %d ms, stime %d ms, on CPU %.0f ms (%.0f%% of the window), runnable waiting %.0f ms, %d slices, %d voluntary and %d involuntary switches\n",
					k, name[k], u, s, r, 100 * r / 1000 / w, q, sl[2, k] - sl[1, k],
					vcs[2, k] - vcs[1, k], ncs[2, k] - ncs[1, k]
			}
		}' /tmp/blk-prof.0 /tmp/blk-prof.1
else
	echo "blk_prof: no window (markers seen: $state of 2)"
fi
exit $rc
