#!/usr/bin/env bash
# Benchmarks, printed as JSON lines and Markdown (see BENCHMARKS.md):
#
# collector: the release collector (embedded store, no sink, default limits) against a do-nothing
#   axum server in the same run, closed loop with 32 connections, then open loop at half the
#   collector's measured maximum for latency. The load generator shares the machine's cores
#   with the server under test.
# volunteer: the volunteer as shipped (the size-optimised `volunteer` profile) reading the
#   Kubernetes API stand-in at several cluster sizes: peak RSS (GNU time), wall time, API requests.
#
#   bench/run.sh [seconds per collector run, default 10] [collector|volunteer|all, default all]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-10}"
WHICH="${2:-all}"
CONNECTIONS=32

if [ "$WHICH" = volunteer ] || [ "$WHICH" = all ]; then
    bench/volunteer.sh
fi
[ "$WHICH" = collector ] || [ "$WHICH" = all ] || exit 0
cargo build --release --locked -p collector -p bench >&2

work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

source bench/lib.sh

target/release/noop-server --listen 127.0.0.1:18081 2>"$work/noop.log" &
pids+=($!)
target/release/collector --data-dir "$work/data" --listen 127.0.0.1:18080 \
    --admin-listen 127.0.0.1:19090 2>"$work/collector.log" &
collector_pid=$!
pids+=($collector_pid)
wait_for_port 18081
wait_for_port 18080

# load PORT LABEL DURATION CONNECTIONS [more loadgen flags]
load() { target/release/loadgen --target "127.0.0.1:$1" --label "$2" --duration "$3" \
    --connections "$4" "${@:5}"; }

# Warm-up (connection setup, page cache, SQLite file growth), not reported.
load 18080 warmup 2s "$CONNECTIONS" >/dev/null
load 18081 warmup 2s "$CONNECTIONS" >/dev/null

# CPU ticks of each collector thread (name and utime+stime), to say where the time goes.
thread_ticks() { for t in /proc/"$collector_pid"/task/*; do
    echo "$(cat "$t/comm" | tr ' ' '_') $(awk '{print $14 + $15}' "$t/stat")"; done; }

noop=$(load 18081 noop "${SECONDS_PER_RUN}s" "$CONNECTIONS")
ticks_before=$(thread_ticks)
collector=$(load 18080 collector "${SECONDS_PER_RUN}s" "$CONNECTIONS")
ticks_after=$(thread_ticks)
max=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["throughput"])' "$collector")
half=$(python3 -c "print(round($max / 2))")
before=$(curl -s 127.0.0.1:19090/metrics)
latency=$(load 18080 collector-half-rate "${SECONDS_PER_RUN}s" 64 --rate "$half" --threads 4)
after=$(curl -s 127.0.0.1:19090/metrics)
# The collector's own view of the same run: p99 of its request-duration histogram (bucket bound).
server_p99=$(python3 - "$before" "$after" <<'PY'
import re, sys
def buckets(text):
    pattern = r'collector_http_request_duration_seconds_bucket\{le="([^"]+)",route="/api/v1",status="204"\} (\d+)'
    return {le: int(n) for le, n in re.findall(pattern, text)}
b, a = buckets(sys.argv[1]), buckets(sys.argv[2])
counts = sorted(((float(le), a[le] - b.get(le, 0)) for le in a), key=lambda x: x[0])
total = counts[-1][1]
print(next(f"{le * 1000:g}" for le, n in counts if n >= 0.99 * total))
PY
)
stored=$(curl -s 127.0.0.1:19090/metrics | grep '^collector_reports_total{outcome="accepted"}' | awk '{print $2}')

# The same closed loop with wrk, when installed, for comparison with numbers measured by wrk.
wrk_noop="" wrk_collector=""
if command -v wrk >/dev/null; then
    wrk_rate() { wrk -t2 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" -s bench/post.lua "http://127.0.0.1:$1/api/v1" \
        | awk '/Requests\/sec/ {print $2}'; }
    wrk_noop=$(wrk_rate 18081)
    wrk_collector=$(wrk_rate 18080)
fi

echo "$noop"; echo "$collector"; echo "$latency"
python3 - "$noop" "$collector" "$latency" "$stored" "$wrk_noop" "$wrk_collector" "$server_p99" \
    "$ticks_before" "$ticks_after" "$(getconf CLK_TCK)" <<'PY'
import json, sys, os, platform, subprocess, datetime
from collections import defaultdict
noop, coll, lat = (json.loads(a) for a in sys.argv[1:4])
stored, wrk_noop, wrk_coll, server_p99 = sys.argv[4:8]
def by_thread(text):
    ticks = defaultdict(int)
    for line in text.splitlines():
        name, n = line.rsplit(" ", 1)
        ticks[name] += int(n)
    return ticks
before, after, hz = by_thread(sys.argv[8]), by_thread(sys.argv[9]), int(sys.argv[10])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print()
print(f"Measured {datetime.date.today()} on {os.cpu_count()} x {cpu}, Linux {platform.release()}; "
      f"load generator on the same cores.")
print()
print("| run | mode | throughput (reports/s) | p50 ms | p99 ms | non-204 |")
print("|---|---|---|---|---|---|")
for r in (noop, coll, lat):
    mode = "closed, 32 conns" if r["mode"] == "closed" else f"open, {r['offered_rate']:.0f}/s offered, 64 conns"
    print(f"| {r['label']} | {mode} | {r['throughput']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['failed']} |")
print()
print(f"collector / no-op ceiling: {coll['throughput'] / noop['throughput']:.0%}; "
      f"reports durably stored during the whole run: {stored}; "
      f"collector-side p99 of the open-loop run: <= {server_p99} ms")
print()
print("collector CPU per stored report during the closed-loop run, by thread:")
total = 0.0
for name in sorted(after):
    micros = (after[name] - before.get(name, 0)) / hz * 1e6 / coll["ok"]
    total += micros
    if micros >= 0.05:
        print(f"- {name}: {micros:.1f} us")
print(f"- all threads: {total:.1f} us")
if wrk_noop and wrk_coll:
    print()
    print(f"wrk -t2 -c32 (bench/post.lua): no-op {float(wrk_noop):,.0f}/s, collector {float(wrk_coll):,.0f}/s "
          f"({float(wrk_coll) / float(wrk_noop):.0%} of its no-op ceiling)")
PY
