//! HTTP/1.1 load generator for `POST /api/v1`: closed loop (N connections, each sending as soon
//! as its last answer came) or open loop (a fixed offered rate, latency measured from each
//! request's scheduled send time so queueing is never hidden). Every request carries the
//! Spartakus README report under a distinct cluster id: random, as `uuidgen` makes them, so that
//! the store's indexes see keys in no particular order (`--sequential-ids` sends ids that sort
//! in the order they are sent, which flatters a B-tree: kept to show the difference).
//!
//! It speaks HTTP/1.1 over raw keep-alive sockets with one prebuilt request patched in place,
//! like wrk, because it shares the cores with the server it measures: a full HTTP client spent
//! three times the CPU per request and capped the do-nothing server at a third of wrk's rate.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// Load generator for the collector benchmark.
#[derive(Parser, Clone)]
struct Args {
    /// Target address (host:port); requests go to `POST /api/v1`.
    #[arg(long)]
    target: SocketAddr,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// How long to send.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Offered rate in requests per second (open loop); omit for closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Label printed with the result.
    #[arg(long, default_value = "run")]
    label: String,
    /// Threads of the load generator (the open loop keeps its schedule better with more).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Stop after this many requests (at the latest at `--duration`).
    #[arg(long)]
    requests: Option<u64>,
    /// Cluster ids that sort in the order they are sent, instead of random ones.
    #[arg(long)]
    sequential_ids: bool,
}

/// Tallies of one connection.
struct Tally {
    latencies: Histogram<u64>,
    ok: u64,
    failed: u64,
}

const README_REPORT: &str = include_str!("../../../common/tests/fixtures/spartakus-readme.json");
const README_CLUSTER: &str = "2f9c93d3-156c-47aa-8802-578ffca9b50e";

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let (before, after) = README_REPORT
        .split_once(README_CLUSTER)
        .context("the fixture names its cluster")?;
    let body_parts: Arc<(String, String)> = Arc::new((before.to_string(), after.to_string()));
    let run_id = uuid::Uuid::new_v4().as_u128();
    let next_ticket = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;

    let mut tasks = Vec::new();
    for _ in 0..args.connections {
        let (args, body_parts, next_ticket) =
            (args.clone(), body_parts.clone(), next_ticket.clone());
        tasks.push(tokio::spawn(async move {
            connection(args, body_parts, next_ticket, run_id, started, deadline).await
        }));
    }
    let mut total = Tally {
        latencies: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        ok: 0,
        failed: 0,
    };
    for task in tasks {
        let tally = task.await??;
        total.latencies.add(&tally.latencies)?;
        total.ok += tally.ok;
        total.failed += tally.failed;
    }
    let elapsed = if args.requests.is_some() {
        started.elapsed().as_secs_f64()
    } else {
        started
            .elapsed()
            .as_secs_f64()
            .max(args.duration.as_secs_f64())
    };
    let ms = |q: f64| total.latencies.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        serde_json::json!({
            "label": args.label,
            "mode": if args.rate.is_some() { "open" } else { "closed" },
            "connections": args.connections,
            "offered_rate": args.rate,
            "seconds": elapsed,
            "ok": total.ok,
            "failed": total.failed,
            "throughput": total.ok as f64 / elapsed,
            "p50_ms": ms(0.50),
            "p90_ms": ms(0.90),
            "p99_ms": ms(0.99),
            "max_ms": total.latencies.max() as f64 / 1000.0,
        })
    );
    Ok(())
}

async fn connection(
    args: Args,
    body_parts: Arc<(String, String)>,
    next_ticket: Arc<AtomicU64>,
    run_id: u128,
    started: Instant,
    deadline: Instant,
) -> anyhow::Result<Tally> {
    let mut stream = tokio::net::TcpStream::connect(args.target).await?;
    stream.set_nodelay(true)?;
    // One request, built once; each send patches a fresh cluster id into it in place.
    let body_len = body_parts.0.len() + 36 + body_parts.1.len();
    let mut request = format!(
        "POST /api/v1 HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {body_len}\r\n\r\n{}",
        args.target, body_parts.0
    )
    .into_bytes();
    let id_at = request.len();
    request.extend_from_slice(&[b'0'; 36]);
    request.extend_from_slice(body_parts.1.as_bytes());
    let mut response = Vec::with_capacity(8192);
    let mut tally = Tally {
        latencies: Histogram::new_with_bounds(1, 60_000_000, 3)?,
        ok: 0,
        failed: 0,
    };
    loop {
        let ticket = next_ticket.fetch_add(1, Ordering::Relaxed);
        // Open loop: each ticket has a send time; latency counts from it, queueing included.
        let scheduled = match args.rate {
            Some(rate) => started + Duration::from_secs_f64(ticket as f64 / rate),
            None => Instant::now(),
        };
        if scheduled >= deadline || args.requests.is_some_and(|limit| ticket >= limit) {
            break;
        }
        if args.rate.is_some() && scheduled > Instant::now() {
            // (Never for the closed loop: a timer rounds even a past deadline up to ~1 ms.)
            tokio::time::sleep_until(scheduled).await;
        }
        uuid::Uuid::from_u128(cluster_id(run_id, ticket, args.sequential_ids))
            .hyphenated()
            .encode_lower(&mut request[id_at..id_at + 36]);
        stream.write_all(&request).await?;
        let status = read_response(&mut stream, &mut response).await?;
        let micros = scheduled.elapsed().as_micros() as u64;
        tally.latencies.record(micros.clamp(1, 60_000_000))?;
        if status == 204 {
            tally.ok += 1;
        } else {
            tally.failed += 1;
        }
    }
    Ok(tally)
}

/// The cluster id of request `ticket` in the run `run_id`: distinct for every ticket of a run (and
/// between runs but for a 2^-64 chance). Random: the leading 64 bits are SplitMix64's output
/// function of the ticket mixed with the run, a bijection, so no two tickets share them.
/// Sequential: the run's leading bits and the ticket in the last 32.
fn cluster_id(run_id: u128, ticket: u64, sequential: bool) -> u128 {
    if sequential {
        return (run_id & !0xffff_ffff_u128) | u128::from(ticket);
    }
    let mut z = ticket ^ (run_id >> 64) as u64;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (u128::from(z) << 64) | (run_id & u128::from(u64::MAX))
}

/// Reads one HTTP/1.1 response (headers and a Content-Length body); returns its status.
async fn read_response(
    stream: &mut tokio::net::TcpStream,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<u16> {
    buffer.clear();
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buffer[..end])?;
            let status: u16 = head.get(9..12).context("short status line")?.parse()?;
            let length = head
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                .map(|(_, value)| value.trim().parse::<usize>())
                .transpose()?
                .unwrap_or(0);
            let total = end + 4 + length;
            while buffer.len() < total {
                read_more(stream, buffer).await?;
            }
            anyhow::ensure!(buffer.len() == total, "unexpected bytes after the response");
            return Ok(status);
        }
        read_more(stream, buffer).await?;
    }
}

async fn read_more(stream: &mut tokio::net::TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    anyhow::ensure!(n > 0, "the server closed the connection");
    buffer.extend_from_slice(&chunk[..n]);
    Ok(())
}
