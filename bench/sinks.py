#!/usr/bin/env python3
"""Sink benchmarks (see BENCHMARKS.md): the release collector draining a queue of stored reports
to the Segment stand-in and to the BigQuery emulator, a steady trickle to Segment at several flush
intervals, and the ingest benchmark of bench/run.sh with and without a sink configured.

    bench/sinks.py [--reports 100000] [--trickle-rate 200] [--trickle-seconds 30]
                   [--ingest-seconds 10] [--skip bigquery,trickle,ingest]

Every number comes from the collector's own metrics (collector_deliveries_total,
collector_sink_request_bytes, collector_sink_request_items) and from what the stand-in received
(GET /stats of target/release/sink-standin). Prints Markdown for BENCHMARKS.md on stdout and
progress on stderr.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RELEASE = os.path.join(ROOT, "target", "release")
LISTEN, ADMIN = "127.0.0.1:18080", "127.0.0.1:19090"
SEGMENT_CAP = 475_000
WRITE_KEY = "bench-write-key"
HZ = os.sysconf("SC_CLK_TCK")

children = []


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def cleanup():
    for child in children:
        if child.poll() is None:
            child.kill()
            child.wait()


atexit.register(cleanup)


def spawn(args, log_path, env=None, stdout=None):
    child = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=stdout if stdout is not None else open(log_path, "ab"),
        stderr=open(log_path, "ab"),
        env={**os.environ, **(env or {})},
    )
    children.append(child)
    return child


def stop(child):
    """SIGTERM, as an orchestrator stops it; the collector drains and exits."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def wait_port(address, timeout=60):
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {address}")


def http(method, url, body=None, timeout=60):
    request = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return answer.read().decode()


def metric(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$", line)
        if not match or match.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total


def scrape():
    return http("GET", f"http://{ADMIN}/metrics")


def cpu_seconds(child):
    with open(f"/proc/{child.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def collector(data_dir, log_path, config=None, extra=()):
    args = [
        os.path.join(RELEASE, "collector"),
        "--data-dir", data_dir, "--listen", LISTEN, "--admin-listen", ADMIN,
        # Every report comes from 127.0.0.1: the per-source limits would measure themselves.
        "--source-rate-limit-per-minute", "0", "--source-new-clusters-per-hour", "0", *extra,
    ]
    if config:
        args += ["--config", config]
    child = spawn(args, log_path, env={"BENCH_SEGMENT_WRITE_KEY": WRITE_KEY})
    wait_port(LISTEN)
    wait_port(ADMIN)
    return child


def loadgen(*args):
    out = subprocess.run(
        [os.path.join(RELEASE, "loadgen"), "--target", LISTEN, *args],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


class Standin:
    """The Segment stand-in binary: its URL and its /stats."""

    def __init__(self, work, name):
        self.child = spawn(
            [os.path.join(RELEASE, "sink-standin"), "--write-key", WRITE_KEY],
            os.path.join(work, f"{name}.log"), stdout=subprocess.PIPE,
        )
        words = self.child.stdout.readline().decode().split()
        self.url, self.stats_url = words[1], words[3]

    def stats(self):
        return json.loads(http("GET", f"{self.stats_url}/stats"))

    def config(self, path, flush_interval=None):
        with open(path, "w") as f:
            f.write('[[sink]]\nname = "segment"\ntype = "segment"\n')
            f.write(f'endpoint = "{self.url}"\nwrite_key_env = "BENCH_SEGMENT_WRITE_KEY"\n')
            if flush_interval is not None:
                f.write(f'flush_interval = "{flush_interval}"\n')
        return path


def wait_delivered(sink, expected, timeout, interval=0.1):
    """Polls the metrics until `expected` deliveries of `sink` are confirmed; returns the last
    metrics text and the (seconds, delivered) samples."""
    started = time.monotonic()
    samples = []
    last_report = started
    while True:
        text = scrape()
        done = metric(text, "collector_deliveries_total", sink=sink, outcome="delivered")
        dead = metric(text, "collector_deliveries_total", sink=sink, outcome="dead")
        samples.append((time.monotonic() - started, done))
        if dead:
            sys.exit(f"{sink}: {dead:.0f} deliveries dead-lettered; see the collector log")
        if done >= expected:
            return text, samples
        if time.monotonic() - started > timeout:
            sys.exit(f"{sink}: {done:.0f} of {expected} delivered after {timeout}s")
        if time.monotonic() - last_report > 10:
            log(f"  {sink}: {done:.0f} of {expected} delivered")
            last_report = time.monotonic()
        time.sleep(interval)


def before_last_batch(samples):
    """(seconds, delivered) when the last full batch was confirmed: the start of the final
    plateau, while the remainder waits its flush interval."""
    final = samples[-1][1]
    previous = max((n for _, n in samples if n < final), default=0)
    return next(((t, n) for t, n in samples if n == previous), (0.0, 0))


def requests_made(text, sink):
    count = metric(text, "collector_sink_request_bytes_count", sink=sink)
    return {
        "requests": count,
        "bytes": metric(text, "collector_sink_request_bytes_sum", sink=sink),
        "items": metric(text, "collector_sink_request_items_sum", sink=sink),
        "seconds": metric(text, "collector_sink_request_duration_seconds_sum", sink=sink),
    }


def fill_store(work, reports):
    data = os.path.join(work, "queued")
    log(f"storing {reports} reports (no sink configured)")
    child = collector(data, os.path.join(work, "fill.log"))
    run = loadgen("--requests", str(reports), "--connections", "32", "--label", "fill")
    stored = metric(scrape(), "collector_reports_total", outcome="accepted")
    stop(child)
    if run["failed"] or stored != reports:
        sys.exit(f"fill: {run['failed']} failed, {stored:.0f} stored of {reports}")
    return data


def drain(work, data, reports, sink, config, check=None):
    """Copies the filled store, starts the collector with `config`, backfills `sink` and times
    the drain."""
    copy = os.path.join(work, f"drain-{sink}")
    shutil.copytree(data, copy)
    child = collector(copy, os.path.join(work, f"drain-{sink}.log"), config)
    before = cpu_seconds(child)
    started = time.monotonic()
    answer = json.loads(http("POST", f"http://{ADMIN}/api/v1/deliveries/requeue?sink={sink}"))
    log(f"draining {reports} reports to {sink}: {answer}")
    text, samples = wait_delivered(sink, reports, timeout=3600)
    elapsed = time.monotonic() - started
    plateau_at, plateau_delivered = before_last_batch(samples)
    cpu = cpu_seconds(child) - before
    result = {"sink": sink, "reports": reports, "elapsed": elapsed, "collector_cpu": cpu,
              "steady_rate": plateau_delivered / plateau_at if plateau_at else None,
              **requests_made(text, sink)}
    if check:
        result.update(check())
    stop(child)
    shutil.rmtree(copy)
    return result


def segment_drain(work, data, reports):
    standin = Standin(work, "standin-drain")
    config = standin.config(os.path.join(work, "segment.toml"))
    before = cpu_seconds(standin.child)

    def check():
        stats = standin.stats()
        return {"distinct": stats["distinct"], "max_batch_bytes": stats["max_batch_bytes"],
                "refused": stats["refused"], "peer_cpu": cpu_seconds(standin.child) - before}

    result = drain(work, data, reports, "segment", config, check)
    stop(standin.child)
    return result


def bigquery_drain(work, data, reports):
    program = subprocess.run(
        [os.path.join(ROOT, "tests", "bqemulator", "setup.sh")],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]
    port = 19050
    emulator = spawn(
        [program, "start", "--rest-host", "127.0.0.1", "--rest-port", str(port),
         "--grpc-port", "0", "--project", "bench-project", "--ephemeral"],
        os.path.join(work, "bqemulator.log"),
    )
    wait_port(f"127.0.0.1:{port}", timeout=120)
    endpoint = f"http://127.0.0.1:{port}/bigquery/v2"
    config = os.path.join(work, "bigquery.toml")
    with open(config, "w") as f:
        f.write('[[sink]]\nname = "warehouse"\ntype = "bigquery"\n')
        f.write(f'table = "bench-project.bench.reports"\nendpoint = "{endpoint}"\n')
    before = cpu_seconds(emulator)

    def check():
        peer_cpu = cpu_seconds(emulator) - before
        query = json.dumps({
            "query": "SELECT COUNT(*) AS n, COUNT(DISTINCT report_id) AS d "
                     "FROM `bench-project.bench.reports`",
            "useLegacySql": False,
        }).encode()
        answer = json.loads(http("POST", f"{endpoint}/projects/bench-project/queries", query))
        row = answer["rows"][0]["f"]
        return {"rows": int(row[0]["v"]), "distinct": int(row[1]["v"]), "peer_cpu": peer_cpu}

    result = drain(work, data, reports, "warehouse", config, check)
    stop(emulator)
    return result


def trickle(work, rate, seconds, flush):
    log(f"trickle: {rate}/s for {seconds}s, Segment flush_interval {flush}")
    standin = Standin(work, f"standin-trickle-{flush}")
    config = standin.config(os.path.join(work, f"trickle-{flush}.toml"), flush)
    data = os.path.join(work, f"trickle-{flush}")
    child = collector(data, os.path.join(work, f"trickle-{flush}.log"), config)
    run = loadgen("--rate", str(rate), "--duration", f"{seconds}s", "--connections", "4",
                  "--threads", "1", "--label", "trickle")
    accepted = metric(scrape(), "collector_reports_total", outcome="accepted")
    text, _ = wait_delivered("segment", accepted, timeout=120)
    stats = standin.stats()
    stop(child)
    stop(standin.child)
    shutil.rmtree(data)
    return {"flush": flush, "accepted": accepted, "failed": run["failed"],
            **requests_made(text, "segment"), **{k: stats[k] for k in
            ("distinct", "lag_mean_s", "lag_p50_s", "lag_max_s")}}


def ingest(work, seconds, sink):
    """bench/run.sh's collector benchmark with no sink, a JSON-lines sink (the outbox's own cost:
    the sink itself is a buffered file write) or a Segment sink (the stand-in shares the cores)."""
    env = dict(os.environ)
    standin = None
    if sink == "jsonl":
        config = os.path.join(work, "ingest-jsonl.toml")
        with open(config, "w") as f:
            f.write('[[sink]]\nname = "archive"\ntype = "jsonl"\n')
            f.write(f'path = "{os.path.join(work, "ingest.jsonl")}"\n')
        env["COLLECTOR_CONFIG"] = config
    elif sink == "segment":
        standin = Standin(work, "standin-ingest")
        env["COLLECTOR_CONFIG"] = standin.config(os.path.join(work, "ingest.toml"))
        env["BENCH_SEGMENT_WRITE_KEY"] = WRITE_KEY
    log(f"ingest benchmark, sink: {sink}")
    # One round, on the host's loopback, where the stand-in listens.
    env.update(ROUNDS="1", BENCH_NAMESPACE="0")
    out = subprocess.run([os.path.join(ROOT, "bench", "run.sh"), str(seconds), "collector"],
                         check=True, capture_output=True, text=True, env=env).stdout
    runs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    collector = [r for r in runs if r["label"] == "collector" and "generator" not in r]
    closed = next(r for r in collector if r["mode"] == "closed")
    open_loop = next(r for r in collector if r["mode"] == "open")
    lines = out.splitlines()
    start = next((i for i, line in enumerate(lines) if "CPU per stored report" in line), len(lines))
    threads = dict(line[2:].split(": ", 1) for line in lines[start + 1:]
                   if line.startswith("- ") and ": " in line)
    result = {"ingest_sink": sink, "closed": closed, "open": open_loop,
              "cpu_per_report": threads.pop("all threads", "?"), "cpu_by_thread": threads}
    if standin:
        stop(standin.child)
    if sink == "jsonl":
        os.remove(os.path.join(work, "ingest.jsonl"))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=100_000)
    parser.add_argument("--trickle-rate", type=int, default=200)
    parser.add_argument("--trickle-seconds", type=int, default=30)
    parser.add_argument("--ingest-seconds", type=int, default=10)
    parser.add_argument("--skip", default="",
                        help="comma-separated: drain, bigquery, trickle, ingest")
    parser.add_argument("--ingest-sinks", default="none,jsonl,segment",
                        help="sinks of the ingest runs, comma-separated: none, jsonl, segment")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))

    for package in (["-p", "collector", "-p", "bench"], ["-p", "e2e", "--bin", "sink-standin"]):
        subprocess.run(["cargo", "build", "--release", "--locked", *package], cwd=ROOT,
                       check=True, stdout=sys.stderr)
    work = tempfile.mkdtemp(prefix="sink-bench-")
    atexit.register(shutil.rmtree, work, True)

    drains = []
    if "drain" not in skip:
        data = fill_store(work, args.reports)
        drains.append(segment_drain(work, data, args.reports))
        if "bigquery" not in skip:
            drains.append(bigquery_drain(work, data, args.reports))
    trickles = [] if "trickle" in skip else [
        trickle(work, args.trickle_rate, args.trickle_seconds, flush)
        for flush in ("0s", "500ms", "2s", "5s")
    ]
    ingests = [] if "ingest" in skip else [
        ingest(work, args.ingest_seconds, sink) for sink in args.ingest_sinks.split(",")
    ]

    for result in drains + trickles + ingests:
        print(json.dumps(result))
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    print()
    print(f"Measured {datetime.date.today()} on {os.cpu_count()} x {cpu}, "
          f"Linux {platform.release()}; every peer on the same cores.")
    if drains:
        print()
        print("| sink | reports | seconds | reports/s | reports/s before the last batch "
              "| requests | items/request | avg bytes/request | fill of 475,000 B "
              "| max request bytes | collector CPU | peer CPU | check |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for d in drains:
            per_request = d["bytes"] / d["requests"]
            fill = f"{per_request / SEGMENT_CAP:.1%}" if d["sink"] == "segment" else "n/a"
            largest = d.get("max_batch_bytes", "")
            check = (f"{d['distinct']} distinct ids received" if d["sink"] == "segment"
                     else f"{d['rows']} rows, {d['distinct']} distinct report_id")
            print(f"| {d['sink']} | {d['reports']:,} | {d['elapsed']:.1f} | "
                  f"{d['reports'] / d['elapsed']:,.0f} | {d['steady_rate'] or 0:,.0f} | "
                  f"{d['requests']:.0f} | "
                  f"{d['items'] / d['requests']:.1f} | {per_request:,.0f} | {fill} | {largest} | "
                  f"{d['collector_cpu']:.1f} s | {d['peer_cpu']:.1f} s | {check} |")
    if trickles:
        print()
        print(f"Trickle: {args.trickle_rate} reports/s for {args.trickle_seconds} s to the Segment "
              "stand-in. Delay = arrival at the stand-in minus the report's receive time, which "
              "is whole seconds (so about 0.5 s of each figure is rounding).")
        print()
        print("| flush_interval | reports | requests | items/request | fill of 475,000 B "
              "| delay mean s | delay p50 s | delay max s |")
        print("|---|---|---|---|---|---|---|---|")
        for t in trickles:
            print(f"| {t['flush']} | {t['accepted']:.0f} | {t['requests']:.0f} | "
                  f"{t['items'] / t['requests']:.1f} | "
                  f"{t['bytes'] / t['requests'] / SEGMENT_CAP:.1%} | {t['lag_mean_s']:.2f} | "
                  f"{t['lag_p50_s']:.2f} | {t['lag_max_s']:.2f} |")
    if ingests:
        print()
        print("| ingest (bench/run.sh) | closed loop reports/s | p99 ms | open loop offered/s "
              "| open p50 ms | open p99 ms | collector CPU per report |")
        print("|---|---|---|---|---|---|---|")
        for i in ingests:
            c, o = i["closed"], i["open"]
            label = {"none": "no sink", "jsonl": "one JSON-lines sink",
                     "segment": "one Segment sink"}[i["ingest_sink"]]
            print(f"| {label} | {c['throughput']:,.0f} | {c['p99_ms']:.2f} | "
                  f"{o['offered_rate']:,.0f} | {o['p50_ms']:.2f} | {o['p99_ms']:.2f} | "
                  f"{i['cpu_per_report']} |")


if __name__ == "__main__":
    main()
