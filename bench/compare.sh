#!/usr/bin/env bash
# Two collector binaries side by side in one invocation: each on a fresh store of its own, the
# closed-loop load generator (bench/src/bin/loadgen.rs, 32 connections, a distinct cluster per
# report) alternated between them ROUNDS times for SECONDS_PER_RUN seconds, the collector not
# under load stopped meanwhile; prints each run's JSON line and the medians. For a change on the ingest path: build the commit before it,
# copy its binary aside, build this one, and compare.
#
# With OPEN_RATE=N, each round also runs an open loop at N reports/s (64 connections, latency from
# each request's scheduled send time) against each binary, after its closed loop; a second table
# gives their latencies. For a change to the latency tail.
#
# With INSTRUCTIONS=1, instead: each binary under valgrind's callgrind taking 4,000 reports over 4
# connections, and the instructions it executed (a count the machine's speed does not sway).
#
#   bench/compare.sh BEFORE_BINARY AFTER_BINARY     (ROUNDS default 5, SECONDS_PER_RUN default 8)
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE="$1"
AFTER="$2"
ROUNDS="${ROUNDS:-5}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-8}"
cargo build --release --locked -p bench --bin loadgen >&2

work="$(mktemp -d)"
pids=()
cleanup() { kill -CONT "${pids[@]}" 2>/dev/null || true; kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
source bench/lib.sh

# start NAME BINARY PUBLIC_PORT ADMIN_PORT
start() {
    "$2" --data-dir "$work/$1" --listen "127.0.0.1:$3" --admin-listen "127.0.0.1:$4" \
        --rate-limit-per-hour 0 2>"$work/$1.log" &
    pids+=($!)
    wait_for_port "$3" 400
    wait_for_port "$4" 400
}
if [ "${INSTRUCTIONS:-0}" = 1 ]; then
    for label in before after; do
        binary="$BEFORE"; [ "$label" = after ] && binary="$AFTER"
        valgrind --tool=callgrind --callgrind-out-file="$work/$label.callgrind" "$binary" \
            --data-dir "$work/$label" --listen 127.0.0.1:18880 --admin-listen 127.0.0.1:19890 \
            --rate-limit-per-hour 0 --stats-rollup-interval 0 2>"$work/$label.log" &
        pid=$!
        wait_for_port 18880 2000
        target/release/loadgen --target 127.0.0.1:18880 --connections 4 --requests 4000 \
            --duration 300s --label "$label" >/dev/null
        kill -INT "$pid"
        wait "$pid" || true
        echo "$label: $(sed -n 's/^summary: //p' "$work/$label.callgrind") instructions"
    done
    exit 0
fi
start before "$BEFORE" 18680 19690
start after "$AFTER" 18780 19790
# load PORT LABEL [loadgen flags, default: 32 connections]: one run against the collector on PORT, the other one stopped (SIGSTOP) meanwhile,
# so that its background work (the weekly rollup folding its last run's reports, checkpoints)
# does not take the CPU from the one measured.
load() {
    local idle="${pids[0]}"
    [ "$1" = 18680 ] && idle="${pids[1]}"
    local status=0 flags=("${@:3}")
    [ "${#flags[@]}" -gt 0 ] || flags=(--connections 32)
    kill -STOP "$idle"
    target/release/loadgen --target "127.0.0.1:$1" --label "$2" \
        --duration "${SECONDS_PER_RUN}s" "${flags[@]}" || status=$?
    kill -CONT "$idle"
    return "$status"
}
load 18680 warmup >/dev/null
load 18780 warmup >/dev/null
results=()
for _ in $(seq 1 "$ROUNDS"); do
    results+=("$(load 18680 before)") || { echo "a run against BEFORE failed" >&2; exit 1; }
    results+=("$(load 18780 after)") || { echo "a run against AFTER failed" >&2; exit 1; }
    if [ -n "${OPEN_RATE:-}" ]; then
        open=(--connections 64 --threads 4 --rate "$OPEN_RATE")
        results+=("$(load 18680 before "${open[@]}")") || { echo "a run against BEFORE failed" >&2; exit 1; }
        results+=("$(load 18780 after "${open[@]}")") || { echo "a run against AFTER failed" >&2; exit 1; }
    fi
done
for pid in "${pids[@]}"; do
    kill -0 "$pid" || { echo "a collector died during the runs; see $work" >&2; exit 1; }
done
printf '%s\n' "${results[@]}"
# Each collector's slow commits and the writer's checkpoints between groups, from its metrics.
for side in before:19690 after:19790; do
    curl -s "127.0.0.1:${side#*:}/metrics" | python3 -c '
import re, sys
text, side = sys.stdin.read(), sys.argv[1]
def buckets(name):
    return {float(le): int(n) for le, n in re.findall(name + r"_bucket\{le=\"([^\"+]+)\"\} (\d+)", text)}
commits = buckets("collector_store_commit_duration_seconds")
total = max(commits.values(), default=0)
slow = total - commits.get(0.0256, total)
restarts = buckets("collector_store_log_restart_duration_seconds")
line = f"{side}: {total:,} commits, {slow:,} over 25.6 ms"
if restarts:
    count = max(restarts.values())
    worst = next((le for le, n in sorted(restarts.items()) if n == count), None)
    line += f"; {count:,} log restarts by the writer, all within {worst * 1000:g} ms" if count else "; no log restart by the writer"
print(line)' "${side%%:*}"
done
python3 - "${results[@]}" <<'PY'
import json, sys, statistics
every = [json.loads(a) for a in sys.argv[1:]]
runs = [r for r in every if r["mode"] == "closed"]
opens = [r for r in every if r["mode"] == "open"]
print()
print("| binary | closed-loop throughput per run (reports/s) | median | p99 per run (ms) |")
print("|---|---|---|---|")
for label in ("before", "after"):
    mine = [r for r in runs if r["label"] == label]
    t = [r["throughput"] for r in mine]
    print(f"| {label} | {' · '.join(f'{x:,.0f}' for x in t)} | {statistics.median(t):,.0f} | "
          f"{' · '.join(format(r['p99_ms'], '.1f') for r in mine)} |")
before = statistics.median(r["throughput"] for r in runs if r["label"] == "before")
after = statistics.median(r["throughput"] for r in runs if r["label"] == "after")
print()
print(f"after / before: {after / before:.1%}")
if opens:
    print()
    print(f"Open loop at {opens[0]['offered_rate']:,.0f} reports/s offered, 64 connections:")
    print()
    print("| binary | achieved per run (reports/s) | p90 per run (ms) | p99 per run (ms) | median p99 (ms) |")
    print("|---|---|---|---|---|")
    for label in ("before", "after"):
        mine = [r for r in opens if r["label"] == label]
        achieved = " · ".join(format(r["throughput"], ",.0f") for r in mine)
        print(f"| {label} | {achieved} | "
              f"{' · '.join(format(r['p90_ms'], '.1f') for r in mine)} | "
              f"{' · '.join(format(r['p99_ms'], '.1f') for r in mine)} | "
              f"{statistics.median(r['p99_ms'] for r in mine):.1f} |")
PY
machine
