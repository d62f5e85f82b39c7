//! Benchmark tools for the collector: `loadgen` (closed- and open-loop HTTP load) and
//! `noop-server` (the HTTP ceiling of the machine). See `bench/run.sh` and BENCHMARKS.md.
