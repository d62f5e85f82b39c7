#!/usr/bin/env bash
# The upper bound of issue 16's "append-only ingest journal, indexing behind it in larger
# transactions": what the store's writer saves when a transaction holds ~1,000 reports instead
# of the ~10 that are in flight under wrk. One collector binary, two fresh stores, the same
# Spartakus README report under a random cluster id each:
#   wrk      wrk -t2 -c32 (bench/post.lua): 6 s of warm-up, then 8 s measured;
#   import   POST /api/v1/import of WARM_UP (default 100,000) lines, then of MEASURED (default
#            150,000) measured; the import stores its lines in batches of 1,000, whose inserts
#            share the writer's commits.
# For each it prints the reports per commit, the bytes written per stored report (the log and
# the checkpoints, /proc/<pid>/io) and, per thread, CPU microseconds and bytes written per stored
# report. The import's time and figures include the weekly rollup it runs before it answers. A
# journal would still pay its own append, sync and a second write of every report, so the
# import's writer figure is a floor the journal's indexing cannot go below, not its cost.
#
#   bench/large_groups.sh [COLLECTOR_BINARY, default target/release/collector]   (needs root)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${BENCH_IN_NAMESPACE:-}" ]; then
    command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
    exec env BENCH_IN_NAMESPACE=1 unshare -n "$0" "$@"
fi
ip link set lo up
binary="${1:-target/release/collector}"
warm_up="${WARM_UP:-100000}"
measured="${MEASURED:-150000}"
work="$(mktemp -d)"
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
source bench/lib.sh

# lines FILE COUNT: COUNT bare Spartakus reports, one per line, each under a fresh cluster id
# and stamped now (an import takes a bare report's timestamp as its receive time).
lines() {
    python3 - "$1" "$2" <<'PY'
import json, sys, time, uuid
report = json.load(open("common/tests/fixtures/spartakus-readme.json"))
report["timestamp"] = str(int(time.time()))
with open(sys.argv[1], "w") as out:
    for _ in range(int(sys.argv[2])):
        report["clusterID"] = str(uuid.uuid4())
        out.write(json.dumps(report, separators=(",", ":")) + "\n")
PY
}

start() {
    rm -rf "$work/data"
    "$binary" --data-dir "$work/data" --listen 127.0.0.1:18080 --admin-listen 127.0.0.1:19090 \
        --rate-limit-per-hour 0 --stats-rollup-interval 0 2>"$work/collector.log" &
    pid=$!
    wait_for_port 18080 400
    wait_for_port 19090 400
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
metric() { curl -s 127.0.0.1:19090/metrics | awk -v m="$1" '$1 == m { print $2 }'; }
# stored: reports stored so far, posted (accepted) and imported alike.
stored() {
    curl -s 127.0.0.1:19090/metrics | awk '$1 == "collector_reports_total{outcome=\"accepted\"}" ||
        $1 == "collector_reports_imported_total" { n += $2 } END { print n + 0 }'
}

declare -A cpu0 io0
before() {
    written0=$(awk '/^write_bytes/ { print $2 }' "/proc/$pid/io")
    stored0=$(stored)
    groups0=$(metric collector_store_commit_group_size_count)
    cpu0=() io0=()
    for task in /proc/"$pid"/task/*; do
        cpu0[${task##*/}]=$(awk '{ print $14 + $15 }' "$task/stat")
        io0[${task##*/}]=$(awk '/^write_bytes/ { print $2 }' "$task/io")
    done
}
after() {
    sleep 1
    local written1 stored1 groups1 stored tick_us
    written1=$(awk '/^write_bytes/ { print $2 }' "/proc/$pid/io")
    stored1=$(stored)
    groups1=$(metric collector_store_commit_group_size_count)
    stored=$(python3 -c "print(int(float('$stored1') - float('$stored0')))")
    echo "  stored reports: $stored"
    python3 -c "print('  reports per commit:', round($stored / (float('$groups1') - float('$groups0')), 1))"
    echo "  bytes written per report: $(( (written1 - written0) / stored ))"
    tick_us=$(( 1000000 / $(getconf CLK_TCK) ))
    for task in /proc/"$pid"/task/*; do
        echo "$(cat "$task/comm") $(( $(awk '{ print $14 + $15 }' "$task/stat") - ${cpu0[${task##*/}]:-0} ))" \
            "$(( $(awk '/^write_bytes/ { print $2 }' "$task/io") - ${io0[${task##*/}]:-0} ))"
    done | awk -v n="$stored" -v t="$tick_us" '{ a[$1] += $2; b[$1] += $3 } END {
        for (k in a) if (a[k] > 0 || b[k] > 0)
            printf "  per report, %s: %.1f us of cpu, %d bytes written\n", k, a[k] * t / n, b[k] / n }' | sort
}

lines "$work/warm-up.ndjson" "$warm_up"
lines "$work/measured.ndjson" "$measured"
machine

echo "wrk (commit groups as large as the requests in flight):"
start
wrk -t2 -c32 -d6s -s bench/post.lua http://127.0.0.1:18080/api/v1 >/dev/null
before
wrk -t2 -c32 -d8s -s bench/post.lua http://127.0.0.1:18080/api/v1 | awk '/Requests\/sec/ { print "  rate:", $2, "/s" }'
after
stop

import() {
    curl -sS --fail-with-body -H 'Content-Type: application/x-ndjson' \
        --data-binary @"$1" -w '\n  %{time_total} s\n' http://127.0.0.1:19090/api/v1/import
}
echo "import (batches of 1,000 reports):"
start
import "$work/warm-up.ndjson" >/dev/null
before
import "$work/measured.ndjson" | python3 -c '
import json, sys
summary, seconds = sys.stdin.read().split("\n")[:2]
stored = json.loads(summary)["stored"]
print(f"  rate: {stored / float(seconds.split()[0]):.0f} /s")'
after
stop
