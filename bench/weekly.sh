#!/usr/bin/env bash
# The weekly statistics' benchmark, printed as JSON lines and Markdown (see BENCHMARKS.md):
#
# read: a release collector given a synthetic fleet of CLUSTERS clusters over WEEKS weeks (one
#   report per cluster and week, at most three nodes each) through POST /api/v1/import, then
#   GET /api/v1/stats/weekly for every dimension it lists, warm (bench/src/bin/stats-latency.rs).
#   Target: p95 <= 50 ms for any dimension at 100,000 clusters x 26 weeks. Then the dashboard
#   (bench/src/bin/dashboard-latency.rs): the admin overview over 12, 26 and 52 weeks and every
#   dimension's page, drawn per request, target p95 <= 150 ms; the public overview
#   (--public-stats, drawn once per rollup), target p95 <= 5 ms.
# ingest: two fresh release collectors in the same invocation, one rolling the statistics up
#   every second while the load runs (the default is every minute) and one never
#   (--stats-rollup-interval 0); closed-loop load (bench/src/bin/loadgen.rs, 32 connections, a
#   distinct cluster per report: the rollup's worst case, every report a new cluster-week)
#   alternated between them ROUNDS times. Target: with the rollup within 10% of without.
#
#   bench/weekly.sh [read|ingest|all, default all]     (CLUSTERS, WEEKS, ROUNDS, SECONDS_PER_RUN)
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${1:-all}"
CLUSTERS="${CLUSTERS:-100000}"
WEEKS="${WEEKS:-26}"
ROUNDS="${ROUNDS:-3}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-8}"
cargo build --release --locked -p collector -p bench -p e2e --bin collector --bin loadgen \
    --bin stats-latency --bin dashboard-latency --bin synthetic-fleet >&2

work="$(mktemp -d)"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

source bench/lib.sh

# collector NAME PUBLIC_PORT ADMIN_PORT [flags]: starts a release collector on a fresh store.
collector() {
    target/release/collector --data-dir "$work/$1" --listen "127.0.0.1:$2" \
        --admin-listen "127.0.0.1:$3" --rate-limit-per-hour 0 "${@:4}" 2>"$work/$1.log" &
    pids+=($!)
    wait_for_port "$2" 400
    wait_for_port "$3" 400
}

if [ "$WHICH" = read ] || [ "$WHICH" = all ]; then
    collector read 18180 19190 --stats-rollup-interval 0 --public-stats
    started=$(date +%s.%N)
    summary=$(target/release/synthetic-fleet --clusters "$CLUSTERS" --weeks "$WEEKS" \
        --reports-per-week 1 --max-nodes 3 2>/dev/null | gzip -1 \
        | curl -sS --fail-with-body -X POST -H 'Content-Encoding: gzip' \
            -H 'Content-Type: application/x-ndjson' -T - http://127.0.0.1:19190/api/v1/import)
    finished=$(date +%s.%N)
    store_bytes=$(du -sb "$work/read" | cut -f1)
    latency=$(target/release/stats-latency --target 127.0.0.1:19190 --weeks "$WEEKS")
    dashboard=$(target/release/dashboard-latency --admin 127.0.0.1:19190 --public 127.0.0.1:18180)
    echo "$summary"; echo "$latency"; echo "$dashboard"
    python3 - "$summary" "$started" "$finished" "$store_bytes" "$CLUSTERS" "$WEEKS" "$latency" "$dashboard" <<'PY'
import json, sys
summary = json.loads(sys.argv[1])
seconds = float(sys.argv[3]) - float(sys.argv[2])
lines = [json.loads(l) for l in sys.argv[7].splitlines()]
total, per = lines[-1], lines[:-1]
print()
print(f"{int(sys.argv[5]):,} clusters x {sys.argv[6]} weeks: {summary['stored']:,} reports imported and "
      f"rolled up in {seconds:.0f} s ({summary['stored'] / seconds:,.0f} reports/s, the import's "
      f"answer waits for the rollup); store {int(sys.argv[4]) / 2**30:.2f} GiB")
print()
print(f"GET /api/v1/stats/weekly, {total['dimensions']} dimensions x 100 warm requests: "
      f"p50 {total['p50_ms']:.2f} ms, p95 {total['p95_ms']:.2f} ms, max {total['max_ms']:.2f} ms; "
      f"worst dimension p95 {total['worst_dimension_p95']['p95_ms']:.2f} ms "
      f"({total['worst_dimension_p95']['dimension']}); target p95 <= 50 ms: "
      f"{'met' if total['worst_dimension_p95']['p95_ms'] <= 50 else 'MISSED'}")
print(f"GET /api/v1/stats/export: JSON {total['export_json_bytes'] / 1024:,.0f} KiB in "
      f"{total['export_json_first_ms']:.0f} ms first (rendered once per rollup), "
      f"{total['export_json_again_ms']:.1f} ms again; CSV {total['export_csv_bytes'] / 1024:,.0f} KiB "
      f"in {total['export_csv_first_ms']:.0f} ms")
board = [json.loads(l) for l in sys.argv[8].splitlines()][-1]
o, d, p, w = board["overview"], board["dimension_pages"], board["public_cached"], board["worst_page_p95"]
print()
print(f"GET /dashboard (admin, drawn per request), 12/26/52 weeks: p50 {o['p50_ms']:.1f} ms, "
      f"p95 {o['p95_ms']:.1f} ms, max {o['max_ms']:.1f} ms; {board['pages'] - 3} dimension pages: "
      f"p50 {d['p50_ms']:.1f} ms, p95 {d['p95_ms']:.1f} ms; worst page p95 {w['p95_ms']:.1f} ms "
      f"({w['page']}); target p95 <= 150 ms: {'met' if w['p95_ms'] <= 150 else 'MISSED'}")
print(f"GET /dashboard (public, cached per rollup), {p['bytes'] / 1024:,.0f} KiB: p50 {p['p50_ms']:.2f} ms, "
      f"p95 {p['p95_ms']:.2f} ms, max {p['max_ms']:.2f} ms; target p95 <= 5 ms: "
      f"{'met' if p['p95_ms'] <= 5 else 'MISSED'}")
PY
    machine
fi

if [ "$WHICH" = ingest ] || [ "$WHICH" = all ]; then
    collector without 18280 19290 --stats-rollup-interval 0
    collector with 18380 19390 --stats-rollup-interval 1s
    load() { target/release/loadgen --target "127.0.0.1:$1" --label "$2" \
        --duration "${SECONDS_PER_RUN}s" --connections 32; }
    load 18280 warmup >/dev/null
    load 18380 warmup >/dev/null
    results=()
    for round in $(seq 1 "$ROUNDS"); do
        results+=("$(load 18280 without-rollup)")
        results+=("$(load 18380 with-rollup-every-1s)")
    done
    # What the rolling collector's rollup folded once it caught up (proves the rollup ran; only
    # complete weeks are published, so the running week's figures are not in the read API yet).
    sleep 2
    metric() { curl -s http://127.0.0.1:19390/metrics | awk -v name="$1" '$1 == name {print $2}'; }
    rolled=$(metric collector_stats_rolled_up_reports_total)
    stored=$(metric 'collector_reports_total{outcome="accepted"}')
    printf '%s\n' "${results[@]}"
    python3 - "$rolled" "$stored" "${results[@]}" <<'PY'
import json, sys, statistics
rolled, stored = int(float(sys.argv[1])), int(float(sys.argv[2]))
runs = [json.loads(a) for a in sys.argv[3:]]
without = [r["throughput"] for r in runs if r["label"] == "without-rollup"]
with_ = [r["throughput"] for r in runs if r["label"] != "without-rollup"]
ratio = statistics.median(with_) / statistics.median(without)
print()
print("| collector | closed-loop throughput per run (reports/s) | median |")
print("|---|---|---|")
print(f"| --stats-rollup-interval 0 | {' · '.join(f'{t:,.0f}' for t in without)} | {statistics.median(without):,.0f} |")
print(f"| --stats-rollup-interval 1s | {' · '.join(f'{t:,.0f}' for t in with_)} | {statistics.median(with_):,.0f} |")
print()
print(f"with the rollup: {ratio:.1%} of the throughput without (target >= 90%: "
      f"{'met' if ratio >= 0.9 else 'MISSED'}); the rolling collector folded {rolled:,} of the "
      f"{stored:,} reports it accepted")
PY
    machine
fi
