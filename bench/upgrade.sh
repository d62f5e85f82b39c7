#!/usr/bin/env bash
# Upgrading a store in place: BEFORE fills a fresh store under the closed-loop load generator
# (a distinct random cluster per report) for SECONDS, waits until its weekly rollup folded every
# report, and keeps the read API's answers; it stops, and AFTER opens the same store, migrating it
# to its own schema. Prints the reports stored, the store's size, how long AFTER took from start
# to answering /healthz (the migration, which runs before it listens; the page cache dropped
# first when the script may), and whether AFTER answers the read API exactly as BEFORE did: the
# first page of clusters and the page after it, the reports of three clusters with three reports
# each, the windowed statistics, and the weekly statistics' tables.
#
#   bench/upgrade.sh BEFORE_BINARY AFTER_BINARY [SECONDS, default 120]
set -euo pipefail
cd "$(dirname "$0")/.."
before="$1"
after="$2"
seconds="${3:-120}"
cargo build --release --locked -p bench --bin loadgen >&2
work="$(mktemp -d)"
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh

start() {
    "$1" --data-dir "$work/data" --listen 127.0.0.1:18580 --admin-listen 127.0.0.1:19590 \
        --rate-limit-per-hour 0 --stats-rollup-interval 1s 2>>"$work/collector.log" &
    pid=$!
}
stop() { kill -INT "$pid"; wait "$pid" || true; pid=""; }
api() { curl -sf -m 900 "http://127.0.0.1:19590$1"; }
metric() { api /metrics | awk -v m="$1" '$1 == m { v = int($2) } END { print v + 0 }'; }
# answers NAME: what the read API answers, into $work/NAME.*
answers() {
    api "/api/v1/clusters?limit=1000" >"$work/$1.clusters"
    local first="$work/$1.clusters" next ids
    next=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["next"])' "$first")
    ids=$(python3 -c 'import json,sys; print(*[c["clusterID"] for c in
        json.load(open(sys.argv[1]))["clusters"][:3]])' "$first")
    api "/api/v1/clusters?limit=1000&after=$next" >"$work/$1.page2"
    for id in $ids; do api "/api/v1/clusters/$id/reports"; done >"$work/$1.reports"
    # (without `since`, which is the time of the request less the window)
    api "/api/v1/stats?window=30d" | sed 's/"since":"[^"]*",//' >"$work/$1.stats"
    # The weekly statistics of the current week are not published until it is complete: read
    # from the store (Python's sqlite3, a reader beside the collector).
    python3 - "$work/data/collector.sqlite3" >"$work/$1.weekly" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
for query in ("SELECT week, active, new, churned, nodes FROM stats_weeks ORDER BY week",
              "SELECT * FROM stats_cells ORDER BY week, dimension, value",
              "SELECT count(*) FROM stats_cluster_weeks", "SELECT count(*) FROM stats_clusters"):
    for row in db.execute(query):
        print(*row)
PY
}

start "$before"
wait_for_port 18580 400
target/release/loadgen --target 127.0.0.1:18580 --connections 32 --duration "${seconds}s" \
    --label fill >/dev/null
# Three clusters that sort first, with several reports each: one of them received after a newer
# one (by its own time), which must not become the latest.
for cluster in 1 2 3; do
    for at in 1764500000 1764600000 1764400000; do
        printf '{"version":"v1.1.0","timestamp":"%s","clusterID":"00000000-0000-4000-8000-00000000000%s","masterVersion":"v1.3%s.0","nodes":[{"id":"c8863d09ecc5be8d9791f72acd275fc2","kubeletVersion":"v1.3%s.0"}]}' \
            "$at" "$cluster" "$cluster" "$(( at % 7 ))" \
            | curl -sf -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary @- \
                http://127.0.0.1:18580/api/v1
    done
done
stored=$(metric 'collector_reports_total{outcome="accepted"}')
for waited in $(seq 1 901); do
    [ "$(metric collector_stats_rolled_up_reports_total)" -ge "$stored" ] && break
    [ "$waited" = 901 ] && { echo "BEFORE's rollup did not catch up in 900 s" >&2; exit 1; }
    sleep 1
done
answers before
stop
bytes=$(du -sb "$work/data" | cut -f1)
bytes_db=$(stat -c %s "$work/data/collector.sqlite3")
# A cold start, as after a pod's rescheduling: the store out of the page cache (when allowed).
sync
cold="cold page cache"
echo 3 2>/dev/null >/proc/sys/vm/drop_caches || cold="warm page cache (cannot drop caches)"

started=$(date +%s.%N)
start "$after"
wal_peak=0
until curl -sf -m 1 http://127.0.0.1:18580/healthz >/dev/null; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/collector.log" >&2; exit 1; }
    wal=$(stat -c %s "$work/data/collector.sqlite3-wal" 2>/dev/null || echo 0)
    [ "$wal" -gt "$wal_peak" ] && wal_peak=$wal
    sleep 0.05
done
ready=$(date +%s.%N)
answers after
sleep 1  # a checkpoint or more: the migration's pages are in the file
grown=$(( $(stat -c %s "$work/data/collector.sqlite3") - bytes_db ))
echo "reports stored by BEFORE: $stored"
echo "store size: $(( bytes / 1048576 )) MiB"
python3 -c "print(f'AFTER answered /healthz after {$ready - $started:.1f} s ($cold)')"
echo "write-ahead log during the migration: at most $(( wal_peak / 1048576 )) MiB" \
    "($(( wal_peak * 100 / bytes_db ))% of the store, sampled every 50 ms); the file grew" \
    "$(( grown / 1048576 )) MiB"
same=yes
for part in clusters page2 reports stats weekly; do
    if cmp -s "$work/before.$part" "$work/after.$part"; then
        echo "$part: the same ($(wc -c <"$work/after.$part") bytes)"
    else
        echo "$part: DIFFERENT"; diff <(head -c 2000 "$work/before.$part") \
            <(head -c 2000 "$work/after.$part") || true; same=no
    fi
done
echo "weekly statistics: $(head -1 "$work/after.weekly") (week, active, new, churned, nodes)"
machine
[ "$same" = yes ]
