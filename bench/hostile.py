#!/usr/bin/env python3
"""Hostile clients against a release collector on 127.0.0.1 (see BENCHMARKS.md "Hostile clients").

Phases, each bounded in count and time, all traffic on loopback; the script stops by itself:
  burst:  2,000 connections opened at once, each posting one report: how many got an HTTP answer
          (by status) and how many were reset, refused or timed out.
  sockets: for SECONDS (default 60), 500 idle sockets and 200 slow-header sockets (a byte a
          second), each reopened when the collector closes it, while a prober asks /healthz every
          200 ms and posts a report every 100 ms: /healthz latency, the reports' answers, how long
          the collector kept slow-header sockets open.
  bombs:  100 connections at once, each posting a 32 KiB gzip body that inflates to 31 MiB of
          whitespace around a report; then 100 more that inflate to 31 MiB of tiny nodes
          ({"id":"0"}, about 2.9 million): answers by status, the collector's peak RSS while they
          run, and whether it answers /healthz and takes a report afterwards.
  sources: a collector with the default rate limits, 127.0.0.1 trusted as a proxy: one source
          (by X-Forwarded-For) posts 2,000 reports under fresh random cluster ids while 500 other
          clusters report from addresses of their own: what each got.
  soak:   for SOAK seconds (default 3600), reports at a fixed 200 a second, each from a new
          cluster id: RSS (anonymous and file-backed) and threads every 10 s; the end against
          the value after 5 minutes, as single samples and as medians of minutes 4-6 and the
          last two.
Then every report answered 204 is looked up through the admin API, or (after a soak) counted in
the store's gauge: nothing lost.

  bench/hostile.py [--seconds 60] [--burst 2000] [--soak 3600] [--phases burst,sockets,bombs,sources,soak]
                   [--collector BINARY]
      (builds this tree's release collector unless given one, and starts it on a fresh store)
"""

import argparse
import asyncio
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PUBLIC, ADMIN = 18980, 19980
# Flags every run passes besides the addresses: the rate limits are off (every report here comes
# from its own cluster id, all from 127.0.0.1, and this measures the listener, not the limiters;
# the "sources" phase runs a collector of its own with the default limits).
# The per-source limits go through the environment, which an older binary (--collector) ignores.
NO_LIMITS = ["--rate-limit-per-hour", "0"]
NO_SOURCE_LIMITS = {"COLLECTOR_SOURCE_RATE_LIMIT_PER_MINUTE": "0",
                    "COLLECTOR_SOURCE_NEW_CLUSTERS_PER_HOUR": "0"}
with open(os.path.join(ROOT, "common/tests/fixtures/spartakus-readme.json")) as f:
    TEMPLATE = json.load(f)


def report_request(cluster, forwarded_for=None):
    body = dict(TEMPLATE, clusterID=cluster)
    data = json.dumps(body).encode()
    forwarded = f"X-Forwarded-For: {forwarded_for}\r\n" if forwarded_for else ""
    head = (
        f"POST /api/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{forwarded}Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + data


async def exchange(request, timeout=30.0, port=None):
    """Sends one request on a new connection; the answer's status, or what went wrong."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port or PUBLIC), timeout)
    except ConnectionRefusedError:
        return "refused"
    except ConnectionResetError:
        return "reset"
    except asyncio.TimeoutError:
        return "connect timeout"
    try:
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        if not line:
            return "closed without an answer"
        status = line.split()[1].decode()
        await asyncio.wait_for(reader.read(), timeout)
        return status
    except ConnectionResetError:
        return "reset"
    except asyncio.TimeoutError:
        return "answer timeout"
    finally:
        writer.close()


async def burst(count):
    clusters = [str(uuid.uuid4()) for _ in range(count)]
    started = time.monotonic()
    answers = await asyncio.gather(*(exchange(report_request(c)) for c in clusters))
    seconds = time.monotonic() - started
    tally = {}
    for answer in answers:
        tally[answer] = tally.get(answer, 0) + 1
    accepted = [c for c, a in zip(clusters, answers) if a == "204"]
    return {"connections": count, "seconds": round(seconds, 2), "answers": tally}, accepted


async def reopen():
    """A new connection to the public listener, or None (after a pause) when it cannot be had."""
    try:
        return await asyncio.open_connection("127.0.0.1", PUBLIC)
    except OSError:
        await asyncio.sleep(0.1)
        return None


async def idle_socket(stop, closes):
    while not stop.is_set():
        connection = await reopen()
        if connection is None:
            continue
        reader, writer = connection
        opened = time.monotonic()
        try:
            await asyncio.wait_for(reader.read(), timeout=max(0.1, stop_in(stop)))
            closes.append(time.monotonic() - opened)
        except (asyncio.TimeoutError, OSError):
            pass
        writer.close()


async def slow_header_socket(stop, closes):
    head = b"POST /api/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    while not stop.is_set():
        connection = await reopen()
        if connection is None:
            continue
        reader, writer = connection
        opened = time.monotonic()
        try:
            for byte in head:
                if stop.is_set():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), timeout=1.0) == b"":
                        break
                except asyncio.TimeoutError:
                    pass
            if not stop.is_set():
                closes.append(time.monotonic() - opened)
        except OSError:
            closes.append(time.monotonic() - opened)
        writer.close()


STOP_AT = {}


def stop_in(stop):
    return STOP_AT[id(stop)] - time.monotonic()


async def prober(stop, health, reports, accepted):
    next_health = next_report = time.monotonic()
    while not stop.is_set():
        now = time.monotonic()
        if now >= next_health:
            next_health += 0.2
            started = time.monotonic()
            answer = await exchange(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 5.0)
            health.append((answer, time.monotonic() - started))
        if now >= next_report:
            next_report += 0.1
            cluster = str(uuid.uuid4())
            answer = await exchange(report_request(cluster), 5.0)
            reports[answer] = reports.get(answer, 0) + 1
            if answer == "204":
                accepted.append(cluster)
        await asyncio.sleep(0.01)


async def sockets(pid, seconds, idle, slow):
    stop = asyncio.Event()
    samples = []
    STOP_AT[id(stop)] = time.monotonic() + seconds
    idle_closes, slow_closes, health, reports, accepted = [], [], [], {}, []
    tasks = [asyncio.create_task(idle_socket(stop, idle_closes)) for _ in range(idle)]
    tasks += [asyncio.create_task(slow_header_socket(stop, slow_closes)) for _ in range(slow)]
    tasks.append(asyncio.create_task(prober(stop, health, reports, accepted)))
    tasks.append(asyncio.create_task(sample_rss(pid, stop, samples)))
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.wait(tasks, timeout=15)
    latencies = [t for a, t in health if a == "200"]
    return {
        "seconds": seconds,
        "idle_sockets": idle,
        "slow_header_sockets": slow,
        "healthz": {
            "asked": len(health),
            "answered_200": len(latencies),
            "p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
            "max_ms": round(max(latencies) * 1000, 1) if latencies else None,
        },
        "reports": reports,
        "idle_closed_after_s": round(statistics.median(idle_closes), 1) if idle_closes else None,
        "slow_header_closed_after_s": round(statistics.median(slow_closes), 1) if slow_closes else None,
        "slow_header_closes": len(slow_closes),
        "peak_rss_mib": round(max(samples), 1),
    }, accepted


def rss_mib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} for {pid}")


def bomb_request(kind):
    """A gzip body of about 32 KiB that inflates to about 31 MiB."""
    body = dict(TEMPLATE, clusterID=str(uuid.uuid4()))
    size = 31 << 20
    if kind == "whitespace":
        data = json.dumps(body).encode()
        data = data[:1] + b" " * (size - len(data)) + data[1:]
    else:
        node = b'{"id":"0"},'
        body.pop("nodes", None)
        head = json.dumps(body).encode()[:-1] + b', "nodes": ['
        data = head + node * ((size - len(head)) // len(node)) + b'{"id":"0"}]}'
    compressed = gzip.compress(data, compresslevel=9)
    head = (
        f"POST /api/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Encoding: gzip\r\nContent-Length: {len(compressed)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + compressed, len(compressed), len(data)


async def sample_rss(pid, stop, samples):
    while not stop.is_set():
        samples.append(rss_mib(pid))
        await asyncio.sleep(0.02)


async def bombs(pid, count, kind):
    request, wire, inflated = bomb_request(kind)
    stop, samples = asyncio.Event(), []
    sampler = asyncio.create_task(sample_rss(pid, stop, samples))
    started = time.monotonic()
    answers = await asyncio.gather(*(exchange(request, 60.0) for _ in range(count)))
    seconds = time.monotonic() - started
    stop.set()
    await sampler
    tally = {}
    for answer in answers:
        tally[answer] = tally.get(answer, 0) + 1
    health_started = time.monotonic()
    health = await exchange(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", 5.0)
    health_ms = round((time.monotonic() - health_started) * 1000, 1)
    cluster = str(uuid.uuid4())
    after = await exchange(report_request(cluster), 5.0)
    return {
        "kind": kind, "requests": count, "wire_bytes": wire, "inflated_bytes": inflated,
        "seconds": round(seconds, 2), "answers": tally, "peak_rss_mib": round(max(samples), 1),
        "healthz_after": health, "healthz_after_ms": health_ms, "report_after": after,
    }, [cluster] if after == "204" else []


def memory_sample(pid, started):
    """Seconds since `started`, then RSS, its anonymous and file-backed parts (MiB) and the
    thread count, from /proc."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            fields[name] = value.split()[0] if value.split() else ""
    mib = lambda name: round(int(fields[name]) / 1024, 1)
    return [round(time.monotonic() - started), mib("VmRSS"), mib("RssAnon"), mib("RssFile"),
            int(fields["Threads"])]


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


async def soak(pid, seconds, rate):
    """Reports at a fixed rate (open loop: each on its own task, so a slow answer does not slow
    the rate); memory every 10 s. The target's figure compares single samples (the one at minute
    5, the last one); beside it, the medians of minutes 4-6 and of the last two minutes."""
    accepted, answers, samples, tasks = [], {}, [], set()

    async def one():
        cluster = str(uuid.uuid4())
        answer = await exchange(report_request(cluster), 10.0)
        answers[answer] = answers.get(answer, 0) + 1
        if answer == "204":
            accepted.append(cluster)

    started = time.monotonic()
    sent = 0
    next_sample = started
    while (now := time.monotonic()) < started + seconds:
        if now >= next_sample:
            samples.append(memory_sample(pid, started))
            next_sample += 10
        due = int((now - started) * rate) + 1
        while sent < due:
            task = asyncio.create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(0.005)
    await asyncio.wait(tasks, timeout=30) if tasks else None
    samples.append(memory_sample(pid, started))
    rss = [sample[1] for sample in samples[::6]]
    if samples[-1][0] % 60:
        rss.append(samples[-1][1])
    after_5_min = rss[min(5, len(rss) - 1)]
    window = lambda low, high: [s[1] for s in samples if low <= s[0] <= high] or [samples[-1][1]]
    early, late = median(window(240, 360)), median(window(seconds - 120, seconds + 60))
    return {
        "seconds": seconds, "rate": rate, "sent": sent, "answers": answers,
        "rss_mib_each_minute": rss, "rss_after_5_min": after_5_min, "rss_end": rss[-1],
        "end_vs_5_min_percent": round((rss[-1] / after_5_min - 1) * 100, 1),
        "median_minutes_4_to_6": early, "median_last_2_minutes": late,
        "medians_percent": round((late / early - 1) * 100, 1),
        "samples_every_10s": samples,
    }, accepted


async def sources(port, attack, legitimate):
    """One source (203.0.113.66, through a trusted proxy) sends ATTACK reports under fresh random
    cluster ids, 32 at a time, while LEGITIMATE clusters report once each from addresses of
    their own."""
    async def tally(requests):
        answers = {}
        pending = list(requests)
        while pending:
            batch, pending = pending[:32], pending[32:]
            for answer in await asyncio.gather(*(exchange(r, 10.0, port) for r in batch)):
                answers[answer] = answers.get(answer, 0) + 1
        return answers

    attacker = [report_request(str(uuid.uuid4()), "203.0.113.66") for _ in range(attack)]
    others = [report_request(str(uuid.uuid4()), f"198.51.{i // 250}.{i % 250 + 1}")
              for i in range(legitimate)]
    started = time.monotonic()
    attack_answers, other_answers = await asyncio.gather(tally(attacker), tally(others))
    return {"attacker_reports": attack, "attacker_answers": attack_answers,
            "other_clusters": legitimate, "other_answers": other_answers,
            "seconds": round(time.monotonic() - started, 2)}


async def store_reports():
    reader, writer = await asyncio.open_connection("127.0.0.1", ADMIN)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await writer.drain()
    text = (await reader.read()).decode()
    writer.close()
    for line in text.splitlines():
        if line.startswith("collector_store_reports "):
            return int(float(line.split()[1]))
    raise SystemExit("no collector_store_reports in /metrics")


async def stored(clusters):
    missing = 0
    for cluster in clusters:
        reader, writer = await asyncio.open_connection("127.0.0.1", ADMIN)
        writer.write(f"GET /api/v1/clusters/{cluster}/reports HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        status = (await reader.readline()).split()[1]
        await reader.read()
        writer.close()
        if status != b"200":
            missing += 1
    return missing


def start(binary, work, name, public, admin, flags, env=None):
    """A collector on a fresh store in WORK, once it accepts connections."""
    log = open(os.path.join(work, f"{name}.log"), "w")
    child = subprocess.Popen(
        [binary, "--data-dir", os.path.join(work, name),
         "--listen", f"127.0.0.1:{public}", "--admin-listen", f"127.0.0.1:{admin}", *flags],
        stderr=log, env={**os.environ, **(env or {})},
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{public}"], check=True,
                           stderr=subprocess.DEVNULL)
            return child
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit(f"the {name} collector did not start")
            time.sleep(0.05)


def main():
    global PUBLIC, ADMIN
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--bombs", type=int, default=100)
    parser.add_argument("--soak", type=int, default=3600, help="seconds of the soak")
    parser.add_argument("--soak-rate", type=int, default=200)
    parser.add_argument("--attack", type=int, default=2000, help="reports of the sources phase's attacker")
    parser.add_argument("--legitimate", type=int, default=500, help="clusters reporting beside it")
    parser.add_argument("--phases", default="burst,sockets,bombs,sources,soak")
    parser.add_argument("--port", type=int, default=PUBLIC,
                        help="the public port (the admin one is 1,000 above, the sources phase's 1 above each)")
    parser.add_argument("--collector", help="a collector binary to attack instead of this tree's release build")
    args = parser.parse_args()
    PUBLIC, ADMIN = args.port, args.port + 1000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    binary = args.collector
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "collector", "--bin", "collector"],
                       cwd=ROOT, check=True, stdout=sys.stderr)
        binary = os.path.join(ROOT, "target/release/collector")
    work = tempfile.mkdtemp()
    collector = start(binary, work, "collector", PUBLIC, ADMIN, NO_LIMITS, NO_SOURCE_LIMITS)
    limited = None
    try:
        print(json.dumps({"phase": "idle", "rss_mib": round(rss_mib(collector.pid), 1)}), flush=True)
        phases = args.phases.split(",")
        accepted, looked_up = [], []
        if "burst" in phases:
            result, clusters = asyncio.run(burst(args.burst))
            print(json.dumps({"phase": "burst", **result}), flush=True)
            accepted += clusters
        if "sockets" in phases:
            result, clusters = asyncio.run(sockets(collector.pid, args.seconds, args.idle, args.slow))
            print(json.dumps({"phase": "sockets", **result}), flush=True)
            accepted += clusters
        if "bombs" in phases:
            for kind in ["whitespace", "tiny nodes"]:
                result, clusters = asyncio.run(bombs(collector.pid, args.bombs, kind))
                print(json.dumps({"phase": "bombs", **result}), flush=True)
                accepted += clusters
        looked_up = accepted
        if "sources" in phases:
            # A collector of its own, with the default limits, believing 127.0.0.1 as a proxy so
            # that one machine can be many sources.
            limited = start(binary, work, "limited", PUBLIC + 1, ADMIN + 1,
                            ["--trusted-proxies", "127.0.0.0/8"])
            result = asyncio.run(sources(PUBLIC + 1, args.attack, args.legitimate))
            print(json.dumps({"phase": "sources", **result}), flush=True)
        if "soak" in phases:
            result, clusters = asyncio.run(soak(collector.pid, args.soak, args.soak_rate))
            print(json.dumps({"phase": "soak", **result}), flush=True)
            accepted = accepted + clusters
        missing = asyncio.run(stored(looked_up))
        time.sleep(1)
        in_store = asyncio.run(store_reports())
        print(json.dumps({"phase": "stored", "acknowledged": len(accepted), "looked_up": len(looked_up),
                          "missing": missing, "in_store": in_store,
                          "peak_rss_mib": round(rss_mib(collector.pid, "VmHWM"), 1),
                          "collector_alive": collector.poll() is None}), flush=True)
    finally:
        for child in [collector, limited]:
            if child is not None:
                child.terminate()
                child.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
