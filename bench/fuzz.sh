#!/usr/bin/env bash
# Usage: bench/fuzz.sh [SECONDS_PER_TARGET]   (default 90)
# Fuzzes each target of fuzz/ for SECONDS_PER_TARGET into a scratch corpus seeded from
# fuzz/corpus/<target> (cargo-fuzz on stable, `-s none`, one job), then prints per target the
# executions, the coverage libFuzzer reports (cov: edges, ft: features), the corpus it grew to and
# the crashes found (inputs in fuzz/artifacts/<target>/). Needs cargo-fuzz (test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-90}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cargo fuzz build -s none >&2

printf '%-11s %12s %8s %8s %8s %8s\n' target executions cov ft corpus crashes
total=0
for target in decoder admission gunzip extensions; do
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    touch "$scratch/$target.started"
    status=0
    cargo fuzz run -s none "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1 || status=$?
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1 || true)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    field() { sed -n "s/.* $1: \([0-9]*\).*/\1/p" <<<"$last"; }
    crashes=$(find "artifacts/$target" -type f -newer "$scratch/$target.started" 2>/dev/null | wc -l)
    [ "$status" -eq 0 ] || crashes="$crashes (exit $status)"
    printf '%-11s %12s %8s %8s %8s %8s\n' "$target" "${executions:-?}" "$(field cov)" \
        "$(field ft)" "$(find "$scratch/$target" -type f | wc -l)" "$crashes"
    total=$((total + ${executions:-0}))
done
echo "executions over all targets: $total"
