#!/usr/bin/env bash
# Where one collector binary spends its CPU under wrk, for an A/B of the write path: a fresh store,
# 6 s of warm-up, then 8 s measured (`wrk -t2 -c32`, bench/post.lua, a random cluster id per
# request), inside a network namespace of its own with only loopback up. Prints the rate, bytes
# written per stored report (the log and the checkpoints, /proc/<pid>/io), the mean commit group
# and, per thread name, CPU microseconds per stored report. PERF=FILE also records
# `perf record -g` of the measured seconds into FILE.
#
#   bench/threads.sh [COLLECTOR_BINARY, default target/release/collector]   (needs root for unshare)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BENCH_IN_NAMESPACE:-}" ]; then
    command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
    exec env BENCH_IN_NAMESPACE=1 unshare -n "$0" "$@"
fi
ip link set lo up
binary="${1:-target/release/collector}"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
source bench/lib.sh
"$binary" --data-dir "$work/data" --listen 127.0.0.1:18080 --admin-listen 127.0.0.1:19090 \
    --rate-limit-per-hour 0 --stats-rollup-interval 0 2>"$work/collector.log" &
pid=$!
wait_for_port 18080 400
wait_for_port 19090 400
metric() { curl -s 127.0.0.1:19090/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
wrk -t2 -c32 -d6s -s bench/post.lua http://127.0.0.1:18080/api/v1 >/dev/null
written0=$(awk '/^write_bytes/ { print $2 }' "/proc/$pid/io")
stored0=$(metric 'collector_reports_total{outcome="accepted"}')
groups0=$(metric collector_store_commit_group_size_count)
declare -A cpu0
for task in /proc/"$pid"/task/*; do cpu0[${task##*/}]=$(awk '{ print $14 + $15 }' "$task/stat"); done
if [ -n "${PERF:-}" ]; then perf record -F 999 -g -p "$pid" -o "$PERF" -- sleep 8 >/dev/null 2>&1 & fi
wrk -t2 -c32 -d8s -s bench/post.lua http://127.0.0.1:18080/api/v1 | awk '/Requests\/sec/ { print "rate:", $2, "/s" }'
sleep 1
written1=$(awk '/^write_bytes/ { print $2 }' "/proc/$pid/io")
stored1=$(metric 'collector_reports_total{outcome="accepted"}')
groups1=$(metric collector_store_commit_group_size_count)
stored=$(python3 -c "print(int(float('$stored1') - float('$stored0')))")
echo "stored reports: $stored"
echo "bytes written per report: $(( (written1 - written0) / stored ))"
python3 -c "print('reports per commit:', round($stored / (float('$groups1') - float('$groups0')), 1))"
tick_us=$(( 1000000 / $(getconf CLK_TCK) ))
for task in /proc/"$pid"/task/*; do
    used=$(( $(awk '{ print $14 + $15 }' "$task/stat") - ${cpu0[${task##*/}]:-0} ))
    echo "$(cat "$task/comm") $used"
done | awk -v n="$stored" -v t="$tick_us" '{ a[$1] += $2 } END {
    for (k in a) if (a[k] > 0) printf "cpu per report, %s: %.1f us\n", k, a[k] * t / n }' | sort
