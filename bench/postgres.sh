#!/usr/bin/env bash
# Issue 17's benchmark: closed-loop ingest (bench/src/bin/loadgen.rs, 32 keep-alive connections,
# a random cluster id per request, no sink) into the collector on its embedded store and into a
# collector on PostgreSQL (a throwaway server, tests/postgres/server.sh, synchronous_commit=on),
# beside PostgreSQL's own ceiling for the same inserts: pgbench, one client like the collector's
# one writer, each transaction inserting as many reports into `clusters`, `reports` and
# `report_nodes` as the PostgreSQL collector's commits held on average in its runs. All in one
# invocation, inside a network namespace with only loopback up; the generator, both collectors
# and the database server share the machine's cores. ROUNDS rounds (default 3), medians.
#
#   bench/postgres.sh [seconds per run, default 30]   (needs root: unshare -n, the postgres user)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${1:-30}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS=32
if [ -z "${BENCH_IN_NAMESPACE:-}" ]; then
    cargo build --release --locked -p collector -p bench >&2
    exec unshare -n env BENCH_IN_NAMESPACE=1 "$0" "$@"
fi
ip link set lo up

work="$(mktemp -d)"
chmod 755 "$work"
pids=()
cleanup() {
    kill -9 "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    tests/postgres/server.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT
source bench/lib.sh

mkdir "$work/pg"
server="$(tests/postgres/server.sh start "$work/pg")"
bindir="$(cat "$work/pg/bindir")"
psql() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$server" -c 'CREATE DATABASE bench' -c 'CREATE DATABASE ceiling'
database="${server%/postgres}/bench?sslmode=disable"
ceiling="${server%/postgres}/ceiling?sslmode=disable"

# start NAME PORT ADMIN_PORT [flags]: a release collector, without rate limits.
start() {
    target/release/collector --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$3" \
        --rate-limit-per-hour 0 "${@:4}" 2>"$work/$1.log" &
    pids+=($!)
    wait_for_port "$2" 400
}
start embedded 18080 19090 --data-dir "$work/data"
start postgres 18083 19093 --database-url "$database"
# The ceiling's database gets the same schema from a collector started on it once.
start schema 18084 19094 --database-url "$ceiling"
kill "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null || true
unset 'pids[-1]'
psql "$ceiling" -c 'CREATE SEQUENCE bench_seq'

loadgen() { target/release/loadgen --target "127.0.0.1:$1" --label "$2" --duration "$3" \
    --connections "$CONNECTIONS"; }
metric() { curl -s "127.0.0.1:$1/metrics" | awk -v name="$2" '$1 == name {print $2}'; }
body_bytes=$(python3 -c 'import json; print(len(json.dumps(json.load(open("common/tests/fixtures/spartakus-readme.json")), separators=(",", ":"))))')
cat >"$work/insert.sql" <<SQL
BEGIN;
WITH c AS (
  INSERT INTO clusters (cluster_id, first_seen, last_seen, reports, latest_seq,
                        latest_report_time, latest_node_count)
  SELECT gen_random_uuid()::text, 0, 0, 1, 0, 0, 1 FROM generate_series(1, :group)
  RETURNING cluster_no
), r AS (
  INSERT INTO reports (seq, cluster_no, id, report_time, time_source, received_at,
                       content_sha256, master_version, node_count, body)
  SELECT nextval('bench_seq'), cluster_no, gen_random_uuid(), 0, 'client', 0,
         sha256(cluster_no::text::bytea), 'v1.31.0', 1, repeat('x', $body_bytes) FROM c
  RETURNING seq
)
INSERT INTO report_nodes (report_seq, operating_system, os_image, architecture,
                          container_runtime, kubelet_version, cloud_provider, nodes)
SELECT seq, 'linux', 'ubuntu 22.04', 'amd64', 'containerd', 'v1.31.0', 'aws', 1 FROM r;
END;
SQL

for port in 18080 18083; do loadgen "$port" warmup 3s >/dev/null; done
runs=()
for round in $(seq 1 "$ROUNDS"); do
    for name in embedded postgres; do
        port=18080 admin=19090
        [ "$name" = postgres ] && port=18083 admin=19093
        before_sum=$(metric "$admin" collector_store_commit_group_size_sum)
        before_count=$(metric "$admin" collector_store_commit_group_size_count)
        line=$(loadgen "$port" "$name" "${SECONDS_PER_RUN}s")
        group=$(python3 -c "print(($(metric "$admin" collector_store_commit_group_size_sum) - $before_sum) / ($(metric "$admin" collector_store_commit_group_size_count) - $before_count))")
        runs+=("$(python3 -c 'import json, sys; r = json.loads(sys.argv[1]); r["group"] = float(sys.argv[2]); print(json.dumps(r))' "$line" "$group")")
        echo "${runs[-1]}"
    done
    # The ceiling, in the PostgreSQL collector's mean group size of this round; the collectors
    # are idle meanwhile.
    group=$(python3 -c 'import json, sys; print(max(1, round(json.loads(sys.argv[1])["group"])))' "${runs[-1]}")
    tps=$("$bindir/pgbench" -n -c 1 -j 1 -T "$SECONDS_PER_RUN" -D "group=$group" -f "$work/insert.sql" "$ceiling" 2>/dev/null \
        | awk '/^tps = / { print $3 }')
    runs+=("$(python3 -c 'import json, sys; print(json.dumps({"label": "pgbench", "group": int(sys.argv[1]), "tps": float(sys.argv[2]), "throughput": int(sys.argv[1]) * float(sys.argv[2])}))' "$group" "$tps")")
    echo "${runs[-1]}"
done

machine
python3 - "${runs[@]}" <<'PY'
import json, statistics, sys
runs = [json.loads(a) for a in sys.argv[1:]]
def median(label, key="throughput"):
    return statistics.median(r[key] for r in runs if r["label"] == label)
embedded, postgres, pgbench = median("embedded"), median("postgres"), median("pgbench")
print("| run | reports/s per round | median | p99 ms (median) | reports per commit (median) |")
print("|---|---|---|---|---|")
for label in ["embedded", "postgres", "pgbench"]:
    values = " · ".join(f"{r['throughput']:,.0f}" for r in runs if r["label"] == label)
    p99 = f"{median(label, 'p99_ms'):.1f}" if label != "pgbench" else "–"
    print(f"| {label} | {values} | {median(label):,.0f} | {p99} | {median(label, 'group'):.1f} |")
print()
print(f"PostgreSQL collector: {postgres:,.0f} reports/s (target >= 10,000: "
      f"{'met' if postgres >= 10_000 else 'missed'}), {postgres / pgbench:.0%} of the pgbench "
      f"ceiling (target >= 50%: {'met' if postgres >= 0.5 * pgbench else 'missed'}), "
      f"{postgres / embedded:.0%} of the embedded store")
PY
