//! The memory budget of the collector binary over real TCP: a request is charged its worst case
//! before its body is read, one that cannot be charged in time gets 503 with `Retry-After` and
//! the JSON error shape, a small report still fits beside a large charge, and the budget comes
//! back when a request ends. A budget too small for one request at the limits is refused at start.

use std::time::{Duration, Instant};

use common::cost::Cost;
use common::wire::{Encoding, gzip};
use e2e::{Collector, binary, collector_command, expect_startup_error, get_text, report};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MAX_BODY: usize = 1 << 20;
const MAX_DECOMPRESSED: usize = 8 << 20;

fn largest() -> usize {
    Cost::before_reading(MAX_BODY, Encoding::Gzip, MAX_DECOMPRESSED).total()
}

async fn charged(client: &reqwest::Client, collector: &Collector) -> usize {
    let metrics = get_text(client, &collector.admin_url("/metrics")).await;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("collector_inflight_memory_bytes "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the budget's gauge is exported")
}

#[tokio::test]
async fn requests_are_charged_before_their_body_is_read_and_refused_when_it_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let budget = (largest() + (2 << 20)).to_string();
    let collector = Collector::start(
        &binary("collector"),
        &dir.path().join("data"),
        &[
            "--max-body-size",
            "1MiB",
            "--max-decompressed-size",
            "8MiB",
            "--max-inflight-memory",
            &budget,
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let ingest = collector.public_url("/api/v1");
    assert_eq!(charged(&client, &collector).await, 0);

    // A gzip body declared at the wire limit holds the worst case while it trickles in.
    let mut slow = TcpStream::connect(collector.public).await.unwrap();
    let head = format!(
        "POST /api/v1 HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n\
         Content-Encoding: gzip\r\nContent-Length: {MAX_BODY}\r\n\r\n"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&[0x1f, 0x8b]).await.unwrap();
    let started = Instant::now();
    while charged(&client, &collector).await < largest() - 1024 {
        assert!(started.elapsed() < Duration::from_secs(10), "never charged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A gzip report cannot be charged beside it: 503 within about 100 ms, with a JSON error.
    let cluster = "2f9c93d3-156c-47aa-8802-578ffca9b50e";
    let compressed = gzip(report(cluster, 1_763_737_200).to_string().as_bytes());
    let send_gzip = || {
        client
            .post(&ingest)
            .header("Content-Type", "application/json")
            .header("Content-Encoding", "gzip")
            .body(compressed.clone())
            .send()
    };
    let asked = Instant::now();
    let refused = send_gzip().await.unwrap();
    let waited = asked.elapsed();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: serde_json::Value = refused.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("memory"),
        "{error}"
    );
    assert!(waited >= Duration::from_millis(90), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");

    // A small uncompressed report is charged what it can cost, and fits.
    let other = "7d4f2a4e-1c1b-4b5e-9a58-2d1d3f9e6b11";
    let small = client
        .post(&ingest)
        .header("Content-Type", "application/json")
        .body(report(other, 1_763_737_200).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 204);

    // When the slow request goes away, its charge comes back and the gzip report goes in.
    drop(slow);
    let started = Instant::now();
    while charged(&client, &collector).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never refunded"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(send_gzip().await.unwrap().status(), 204);
    let metrics = get_text(&client, &collector.admin_url("/metrics")).await;
    assert!(
        metrics.contains("collector_memory_budget_refusals_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_budget_smaller_than_one_request_at_the_limits_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = collector_command(&binary("collector"), &dir.path().join("data"));
    command.args(["--max-inflight-memory", "64MiB"]);
    let stderr = expect_startup_error(command).await;
    assert!(
        stderr.contains("--max-inflight-memory") && stderr.contains("--max-body-size"),
        "{stderr}"
    );
}
