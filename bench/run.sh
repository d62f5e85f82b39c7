#!/usr/bin/env bash
# Benchmarks, printed as JSON lines and Markdown (see BENCHMARKS.md):
#
# collector: the release collector (embedded store, no sink, every background task at its
#   default: group commit, checkpoints, the weekly rollup every minute) beside a do-nothing axum
#   server and, when SPARTAKUS_COLLECTOR names its binary, the Spartakus collector
#   (`--database=stdout` to /dev/null), all in one invocation, inside a network namespace of their
#   own with only loopback up (`unshare -n`; the Spartakus collector binds every interface).
#   Two closed-loop generators, 32 keep-alive connections, a distinct random cluster id per
#   request: bench/src/bin/loadgen.rs and wrk (bench/post.lua; installed through apt when
#   missing). ROUNDS rounds (default 3), each server under each generator in turn; medians and
#   ratios. Then the open loop at half the collector's median maximum, against the collector and
#   the do-nothing server at the same offered rate. At the end, the collector must have caught
#   up: every acknowledged report counted by its read API and folded by the rollup. The
#   generators share the machine's cores with the server under test. COLLECTOR_ARGS adds flags
#   to the collector (a sink, for instance); BENCH_NAMESPACE=0 stays on the host's loopback (for a
#   sink's peer listening there; not with the Spartakus collector). SEQUENTIAL_IDS=1 adds a loadgen run with ids that
#   sort in the order they are sent (`--sequential-ids`) after each collector run.
# volunteer: the volunteer as shipped (the size-optimised `volunteer` profile) reading the
#   Kubernetes API stand-in at several cluster sizes: peak RSS (GNU time), wall time, API requests.
#
#   bench/run.sh [seconds per run, default 60] [collector|volunteer|all, default all]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-60}"
WHICH="${2:-all}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS=32

if [ "$WHICH" = volunteer ] || [ "$WHICH" = all ]; then
    bench/volunteer.sh
fi
[ "$WHICH" = collector ] || [ "$WHICH" = all ] || exit 0
if [ -z "${BENCH_IN_NAMESPACE:-}" ]; then
    cargo build --release --locked -p collector -p bench >&2
    if ! command -v wrk >/dev/null; then
        apt-get install -y wrk >&2 || sudo apt-get install -y wrk >&2
    fi
    if [ "${BENCH_NAMESPACE:-1}" = 1 ] && unshare -n true 2>/dev/null; then
        exec unshare -n env BENCH_IN_NAMESPACE=1 "$0" "$SECONDS_PER_RUN" collector
    elif [ -n "${SPARTAKUS_COLLECTOR:-}" ]; then
        echo "the Spartakus collector binds every interface: run this where unshare -n works" >&2
        exit 1
    fi
    echo "measuring on the host's loopback, not in a namespace of its own" >&2
else
    ip link set lo up
fi

work="$(mktemp -d)"
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

source bench/lib.sh

target/release/noop-server --listen 127.0.0.1:18081 2>"$work/noop.log" &
pids+=($!)
# shellcheck disable=SC2086 # COLLECTOR_ARGS is a list of flags
target/release/collector --data-dir "$work/data" --listen 127.0.0.1:18080 \
    --admin-listen 127.0.0.1:19090 --rate-limit-per-hour 0 ${COLLECTOR_ARGS:-} \
    2>"$work/collector.log" &
collector_pid=$!
pids+=($collector_pid)
servers=(collector:18080 noop:18081)
if [ -n "${SPARTAKUS_COLLECTOR:-}" ]; then
    "$SPARTAKUS_COLLECTOR" collector --port=18082 --database=stdout >/dev/null 2>"$work/spartakus.log" &
    pids+=($!)
    servers=(collector:18080 spartakus:18082 noop:18081)
    wait_for_port 18082
fi
wait_for_port 18081
wait_for_port 18080

# loadgen PORT LABEL DURATION CONNECTIONS [more loadgen flags]: one JSON line.
loadgen() { target/release/loadgen --target "127.0.0.1:$1" --label "$2" --duration "$3" \
    --connections "$4" "${@:5}"; }
# wrk_run PORT LABEL DURATION: the same JSON line's fields from wrk's summary.
wrk_run() {
    wrk -t2 -c"$CONNECTIONS" -d"$3" --latency -s bench/post.lua "http://127.0.0.1:$1/api/v1" \
        | python3 -c '
import json, re, sys
out, label = sys.stdin.read(), sys.argv[1]
unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
def ms(q):
    value, u = re.search(rf"^\s*{q}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
    return float(value) * unit[u]
total = int(re.search(r"(\d+) requests in", out).group(1))
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
failed = int(bad.group(1)) if bad else 0
errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
print(json.dumps({"label": label, "generator": "wrk", "mode": "closed", "ok": total - failed,
    "failed": failed + errors, "throughput": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
    "p50_ms": ms(50), "p99_ms": ms(99)}))' "$2"
}
# CPU ticks of each collector thread (name and utime+stime), to say where the time goes.
thread_ticks() { for t in /proc/"$collector_pid"/task/*; do
    echo "$(tr ' ' '_' <"$t/comm") $(awk '{print $14 + $15}' "$t/stat")"; done; }
# metric NAME: the collector's value of one metric (the whole name with its labels), as an integer.
metric() { curl -s 127.0.0.1:19090/metrics | awk -v name="$1" '$1 == name {print int($2)}'; }
accepted() { metric 'collector_reports_total{outcome="accepted"}'; }

# Warm-up (connection setup, page cache, SQLite file growth), not reported.
for server in "${servers[@]}"; do
    loadgen "${server#*:}" warmup 3s "$CONNECTIONS" >/dev/null
done

runs=()
cpu=()
# run_loadgen NAME PORT [loadgen flags] / run_wrk NAME PORT: one closed-loop run, kept and
# printed; the collector's CPU by thread is kept for its runs named `collector`.
run_loadgen() {
    local before stored_before
    before=$(thread_ticks) stored_before=$(accepted)
    runs+=("$(loadgen "$2" "$1" "${SECONDS_PER_RUN}s" "$CONNECTIONS" "${@:3}")")
    echo "${runs[-1]}"
    if [ "$1" = collector ]; then
        cpu+=("$(printf '%s\n--\n%s\n--\n%s %s' "$before" "$(thread_ticks)" "$stored_before" "$(accepted)")")
    fi
}
run_wrk() { runs+=("$(wrk_run "$2" "$1" "${SECONDS_PER_RUN}s")"); echo "${runs[-1]}"; }
for round in $(seq 1 "$ROUNDS"); do
    for server in "${servers[@]}"; do
        name="${server%%:*}" port="${server#*:}"
        # The store grows with every run: the generators take turns going first.
        if [ $((round % 2)) = 1 ]; then
            run_loadgen "$name" "$port"; run_wrk "$name" "$port"
        else
            run_wrk "$name" "$port"; run_loadgen "$name" "$port"
        fi
        if [ "$name" = collector ] && [ "${SEQUENTIAL_IDS:-0}" = 1 ]; then
            run_loadgen collector-sequential-ids "$port" --sequential-ids
        fi
    done
done
median_max=$(python3 - "${runs[@]}" <<'PY'
import json, statistics, sys
runs = [json.loads(a) for a in sys.argv[1:]]
print(round(statistics.median(r["throughput"] for r in runs
                              if r["label"] == "collector" and "generator" not in r)))
PY
)
half=$((median_max / 2))
open_runs=()
metrics_before=$(curl -s 127.0.0.1:19090/metrics)
for server in collector:18080 noop:18081; do
    open_runs+=("$(loadgen "${server#*:}" "${server%%:*}" "${SECONDS_PER_RUN}s" 64 --rate "$half" --threads 4)")
    echo "${open_runs[-1]}"
    if [ "${server%%:*}" = collector ]; then metrics_after=$(curl -s 127.0.0.1:19090/metrics); fi
done
# The collector's own view of its open-loop run: p99 of its request-duration histogram (the
# bound of the bucket it falls in).
server_p99=$(python3 - "$metrics_before" "$metrics_after" <<'PY'
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

# Caught up: every report folded by the rollup (the next rollup at most a minute away), then
# every acknowledged report counted by the read API (each is a cluster of its own; a request cut
# off when a run ends may be stored without being acknowledged, so the count may be higher).
total=$(accepted)
rolled=0
for _ in $(seq 1 120); do
    rolled=$(metric collector_stats_rolled_up_reports_total)
    [ "${rolled:-0}" -ge "$total" ] && break
    sleep 1
done
counted=$(curl -s -m 600 "127.0.0.1:19090/api/v1/stats?window=1d" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["clusters"])' || echo 0)
caught_up=no
if [ "${rolled:-0}" -ge "$total" ] && [ "$counted" -ge "$total" ]; then caught_up=yes; fi

python3 - "$total" "$counted" "$rolled" "$caught_up" "$(getconf CLK_TCK)" "$SECONDS_PER_RUN" "$server_p99" \
    "${#cpu[@]}" "${cpu[@]}" "${runs[@]}" -- "${open_runs[@]}" <<'PY'
import json, statistics, sys
from collections import defaultdict
total, counted, rolled, caught_up, hz, seconds, server_p99, n_cpu = sys.argv[1:9]
hz, n_cpu = int(hz), int(n_cpu)
cpu_runs = sys.argv[9:9 + n_cpu]
rest = sys.argv[9 + n_cpu:]
split = rest.index("--")
runs = [json.loads(a) for a in rest[:split]]
opens = [json.loads(a) for a in rest[split + 1:]]
def ticks(text):
    out = defaultdict(int)
    for line in text.splitlines():
        name, n = line.rsplit(" ", 1)
        out[name] += int(n)
    return out
per_thread = defaultdict(list)
for run in cpu_runs:
    before, after, counts = run.split("\n--\n")
    b, a = ticks(before), ticks(after)
    n = float(counts.split()[1]) - float(counts.split()[0])
    for name in set(a) | set(b):
        per_thread[name].append((a[name] - b.get(name, 0)) / hz * 1e6 / n)
names = sorted({r["label"] for r in runs},
               key=["collector", "collector-sequential-ids", "spartakus", "noop"].index)
gens = ["loadgen", "wrk"]
med = {}
print()
print(f"{seconds} s a run, 32 connections, a random cluster id per request; the generators share the cores.")
print()
print("| server | generator | closed-loop throughput per run (reports/s) | median | p99 ms (median) | failed |")
print("|---|---|---|---|---|---|")
for name in names:
    for gen in gens:
        rs = [r for r in runs if r["label"] == name and r.get("generator", "loadgen") == gen]
        if not rs:
            continue
        med[name, gen] = statistics.median(r["throughput"] for r in rs)
        print(f"| {name} | {gen} | {' · '.join(format(r['throughput'], ',.0f') for r in rs)} | "
              f"{med[name, gen]:,.0f} | {statistics.median(r['p99_ms'] for r in rs):.2f} | "
              f"{sum(r['failed'] for r in rs)} |")
print()
for gen in gens:
    line = f"- {gen}: collector / do-nothing {med['collector', gen] / med['noop', gen]:.0%}"
    if "spartakus" in names:
        line += f"; collector / Spartakus {med['collector', gen] / med['spartakus', gen]:.2f}x"
    print(line)
print()
print("| open loop, 64 connections | offered/s | achieved/s | p50 ms | p99 ms | failed |")
print("|---|---|---|---|---|---|")
for r in opens:
    print(f"| {r['label']} | {r['offered_rate']:,.0f} | {r['throughput']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['failed']} |")
print()
print(f"the collector's own p99 of its open-loop run (request-duration histogram): <= {server_p99} ms")
print()
print("collector CPU per stored report in its loadgen runs (median over the rounds), by thread:")
total_cpu = 0.0
for name in sorted(per_thread):
    m = statistics.median(per_thread[name])
    total_cpu += m
    if m >= 0.05:
        print(f"- {name}: {m:.1f} us")
print(f"- all threads: {total_cpu:.1f} us")
print()
print(f"caught up at the end: {caught_up} ({int(total):,} reports acknowledged, "
      f"{int(rolled):,} folded by the rollup, {int(counted):,} clusters counted by GET /api/v1/stats)")
PY
machine
