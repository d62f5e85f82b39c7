# Shell functions the benchmark scripts share (sourced, not run).

# Every report of a benchmark comes from 127.0.0.1: the per-source limits would measure
# themselves. Turned off through the environment, which a collector binary of an older commit
# (bench/compare.sh) ignores instead of refusing an unknown flag.
export COLLECTOR_SOURCE_RATE_LIMIT_PER_MINUTE=0 COLLECTOR_SOURCE_NEW_CLUSTERS_PER_HOUR=0

# wait_for_port PORT [TRIES]: waits until something listens on 127.0.0.1:PORT, polling every
# 50 ms, at most TRIES times (default 200: ten seconds).
wait_for_port() {
    for _ in $(seq 1 "${2:-200}"); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    return 1
}

# machine: prints the line BENCHMARKS.md records with each measurement (date, CPUs, kernel).
machine() {
    python3 - <<'PY'
import os, platform, datetime
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"Measured {datetime.date.today()} on {os.cpu_count()} x {cpu}, Linux {platform.release()}.")
PY
}
