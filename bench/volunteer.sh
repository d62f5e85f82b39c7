#!/usr/bin/env bash
# Volunteer benchmark: peak RSS, wall time and API requests of one report (--dry-run) against
# the Kubernetes API stand-in at growing cluster sizes. Run by bench/run.sh; needs GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v /usr/bin/time >/dev/null || { echo "GNU time (/usr/bin/time) is required: apt-get install time" >&2; exit 1; }
cargo build --profile volunteer --locked -p volunteer --bin volunteer >&2
cargo build --release --locked -p e2e --bin kube-standin >&2

work="$(mktemp -d)"
standin=""
cleanup() { [ -n "$standin" ] && kill "$standin" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo
echo "Volunteer, one report (--dry-run, default page size), $(date +%F), $(nproc) CPUs:"
echo
echo "| nodes | namespaces | pods | peak RSS (MiB) | wall (s) | API requests | report (bytes) |"
echo "|---|---|---|---|---|---|---|"
for size in "5 10 100" "500 1000 15000" "5 10000 150000" "5000 10000 150000"; do
    set -- $size
    target/release/kube-standin --nodes "$1" --namespaces "$2" --pods "$3" \
        --kubeconfig "$work/kubeconfig" > "$work/standin.out" &
    standin=$!
    for _ in $(seq 1 100); do grep -q listening "$work/standin.out" 2>/dev/null && break; sleep 0.05; done
    address=$(grep -o '127.0.0.1:[0-9]*' "$work/standin.out")
    KUBECONFIG="$work/kubeconfig" /usr/bin/time -v target/volunteer/volunteer --dry-run \
        > "$work/report.json" 2> "$work/time.txt"
    rss_kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time.txt")
    wall=$(awk '/Elapsed \(wall clock\)/ {print $NF}' "$work/time.txt" | awk -F: '{print ($1 * 60) + $2}')
    requests=$(curl -s "http://$address/_standin/requests" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
    bytes=$(wc -c < "$work/report.json")
    printf '| %s | %s | %s | %.1f | %.2f | %s | %s |\n' "$1" "$2" "$3" \
        "$(awk -v k="$rss_kib" 'BEGIN {print k / 1024}')" "$wall" "$requests" "$bytes"
    kill "$standin"; wait "$standin" 2>/dev/null || true; standin=""
done
