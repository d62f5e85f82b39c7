#!/usr/bin/env python3
"""Hostile clients against a release collector on 127.0.0.1 (see BENCHMARKS.md "Hostile clients").

Phases, each bounded in count and time, all traffic on loopback; the script stops by itself:
  burst:  2,000 connections opened at once, each posting one report: how many got an HTTP answer
          (by status) and how many were reset, refused or timed out.
  sockets: for SECONDS (default 60), 500 idle sockets and 200 slow-header sockets (a byte a
          second), each reopened when the collector closes it, while a prober asks /healthz every
          200 ms and posts a report every 100 ms: /healthz latency, the reports' answers, how long
          the collector kept slow-header sockets open.
Then every report answered 204 is looked up through the admin API (nothing lost).

  bench/hostile.py [--seconds 60] [--burst 2000] [--collector BINARY]
      (builds this tree's release collector unless given one, and starts it on a fresh store)
"""

import argparse
import asyncio
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
with open(os.path.join(ROOT, "common/tests/fixtures/spartakus-readme.json")) as f:
    TEMPLATE = json.load(f)


def report_request(cluster):
    body = dict(TEMPLATE, clusterID=cluster)
    data = json.dumps(body).encode()
    head = (
        f"POST /api/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    ).encode()
    return head + data


async def exchange(request, timeout=30.0):
    """Sends one request on a new connection; the answer's status, or what went wrong."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", PUBLIC), timeout)
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


async def sockets(seconds, idle, slow):
    stop = asyncio.Event()
    STOP_AT[id(stop)] = time.monotonic() + seconds
    idle_closes, slow_closes, health, reports, accepted = [], [], [], {}, []
    tasks = [asyncio.create_task(idle_socket(stop, idle_closes)) for _ in range(idle)]
    tasks += [asyncio.create_task(slow_header_socket(stop, slow_closes)) for _ in range(slow)]
    tasks.append(asyncio.create_task(prober(stop, health, reports, accepted)))
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
    }, accepted


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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--slow", type=int, default=200)
    parser.add_argument("--collector", help="a collector binary to attack instead of this tree's release build")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    binary = args.collector
    if binary is None:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "collector", "--bin", "collector"],
                       cwd=ROOT, check=True, stdout=sys.stderr)
        binary = os.path.join(ROOT, "target/release/collector")
    work = tempfile.mkdtemp()
    log = open(os.path.join(work, "collector.log"), "w")
    collector = subprocess.Popen(
        [binary, "--data-dir", os.path.join(work, "data"),
         "--listen", f"127.0.0.1:{PUBLIC}", "--admin-listen", f"127.0.0.1:{ADMIN}",
         "--rate-limit-per-hour", "0"],
        stderr=log,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                subprocess.run(["bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{PUBLIC}"], check=True,
                               stderr=subprocess.DEVNULL)
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise SystemExit("the collector did not start")
                time.sleep(0.05)
        burst_result, burst_accepted = asyncio.run(burst(args.burst))
        print(json.dumps({"phase": "burst", **burst_result}))
        sockets_result, sockets_accepted = asyncio.run(sockets(args.seconds, args.idle, args.slow))
        print(json.dumps({"phase": "sockets", **sockets_result}))
        accepted = burst_accepted + sockets_accepted
        missing = asyncio.run(stored(accepted))
        print(json.dumps({"phase": "stored", "acknowledged": len(accepted), "missing": missing,
                          "collector_alive": collector.poll() is None}))
    finally:
        collector.terminate()
        collector.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
