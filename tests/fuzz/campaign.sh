#!/usr/bin/env bash
# A libFuzzer campaign: runs each target of a -Dlibfuzzer=true build for SECONDS (default 240)
# from its committed corpus, then merges what it found back into tests/fuzz/corpus/<target>/.
# Usage: tests/fuzz/campaign.sh BUILD_DIR [SECONDS] [TARGET...]; logs in $LOGDIR (default /tmp/veil-fuzz).
set -uo pipefail
cd "$(dirname "$0")/../.."
build=$1; secs=${2:-240}; shift 2 || shift $#
logdir=${LOGDIR:-/tmp/veil-fuzz}
mkdir -p "$logdir"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=($(cd "$build/tests/fuzz" && ls *_lf))
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1
for t in "${targets[@]}"; do
	corpus=tests/fuzz/corpus/$t work=$logdir/$t
	mkdir -p "$corpus" "$work/new" "$work/crashes"
	nice -n 10 "$build/tests/fuzz/$t" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$work/crashes/" "$work/new" "$corpus" > "$work/fuzz.log" 2>&1
	echo "$t: rc $? $(grep -o 'cov: [0-9]*' "$work/fuzz.log" | tail -1)," \
		"$(grep -o 'number_of_executed_units: [0-9]*' "$work/fuzz.log")," \
		"$(grep -o 'average_exec_per_sec: *[0-9]*' "$work/fuzz.log")," \
		"crashes $(ls "$work/crashes" | wc -l)" | tee -a "$logdir/summary"
	# Keep only what adds coverage: merge the found inputs into a fresh minimal corpus.
	rm -rf "$work/min" && mkdir -p "$work/min"
	nice -n 10 "$build/tests/fuzz/$t" -merge=1 "$work/min" "$corpus" "$work/new" > "$work/merge.log" 2>&1 &&
		rm -rf "$corpus" && mv "$work/min" "$corpus"
done
