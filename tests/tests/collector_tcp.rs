//! The collector binary over real TCP: Spartakus example reports in, read API out, and a
//! graceful stop on SIGTERM that keeps every acknowledged report.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use e2e::{Collector, WITHOUT_RATE_LIMITS, binary, fixture, get_json, now, post_reports, sigterm};

async fn post(
    client: &reqwest::Client,
    collector: &Collector,
    body: Vec<u8>,
) -> reqwest::StatusCode {
    client
        .post(collector.public_url("/api/v1"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn spartakus_examples_are_accepted_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(
        &binary("collector"),
        &dir.path().join("data"),
        &["--relaxed-cluster-ids"],
    )
    .await;
    let client = reqwest::Client::new();

    for name in [
        "spartakus-readme.json",
        "spartakus-walkthrough.json",
        "spartakus-extensions.json",
    ] {
        assert_eq!(
            post(&client, &collector, fixture(name)).await,
            204,
            "{name}"
        );
    }
    // A resend (as a Spartakus volunteer retrying) is acknowledged and stored once.
    assert_eq!(
        post(&client, &collector, fixture("spartakus-readme.json")).await,
        204
    );

    let clusters = get_json(&client, &collector.admin_url("/api/v1/clusters")).await;
    let ids: Vec<&str> = clusters["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clusterID"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "1e679954-3666-4275-acb2",
            "2f9c93d3-156c-47aa-8802-578ffca9b50e",
            "8e4a1f5c-6f0e-4b7d-9d6c-2a3b4c5d6e7f"
        ]
    );
    let readme = get_json(
        &client,
        &collector.admin_url("/api/v1/clusters/2f9c93d3-156c-47aa-8802-578ffca9b50e/reports"),
    )
    .await;
    let reports = readme["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1);
    let node = &reports[0]["report"]["nodes"][0];
    assert_eq!(node["id"], "c8863d09ecc5be8d9791f72acd275fc2");
    assert_eq!(node["osImage"], "debian 7");
    assert_eq!(node["containerRuntimeVersion"], "docker://1.11.2");

    let stats = get_json(&client, &collector.admin_url("/api/v1/stats?window=1d")).await;
    assert_eq!(stats["clusters"], 3);
    assert_eq!(stats["nodes"], 4);
    assert_eq!(stats["osImages"]["debian 7"], 2);

    let metrics = e2e::get_text(&client, &collector.admin_url("/metrics")).await;
    assert!(
        metrics.contains("collector_reports_total{outcome=\"accepted\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("collector_reports_total{outcome=\"duplicate\"} 1"),
        "{metrics}"
    );

    // The OpenAPI document is served for outside tools.
    let document = get_json(&client, &collector.public_url("/openapi.json")).await;
    assert!(document["paths"]["/api/v1"]["post"].is_object());
}

#[tokio::test]
async fn sigterm_finishes_in_flight_reports_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut collector = Collector::start(&binary("collector"), &data, &WITHOUT_RATE_LIMITS).await;
    let client = reqwest::Client::new();
    let url = collector.public_url("/api/v1");
    let acked = Arc::new(AtomicUsize::new(0));
    let cluster = uuid::Uuid::new_v4().to_string();
    let start = now();

    let items: Vec<(String, i64)> = (0..2000).map(|i| (cluster.clone(), start - i)).collect();
    let sender = {
        let (client, url, acked) = (client.clone(), url.clone(), acked.clone());
        tokio::spawn(async move { post_reports(&client, &url, items, 32, acked).await })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.load(Ordering::SeqCst) < 200 {
        assert!(
            Instant::now() < deadline,
            "reports are not being acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let signalled = Instant::now();
    sigterm(&collector.child);
    let status = tokio::time::timeout(Duration::from_secs(10), collector.child.wait())
        .await
        .expect("the collector exits within 10 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status}");
    assert!(signalled.elapsed() < Duration::from_secs(10));
    let acked_offsets: Vec<i64> = sender
        .await
        .unwrap()
        .into_iter()
        .map(|(_, timestamp)| start - timestamp)
        .collect();
    assert!(acked_offsets.len() >= 200);
    let log = collector.log.lock().unwrap().join("\n");
    assert!(log.contains("store closed"), "{log}");
    // No line per report, but a summary of them (at the latest when it stops).
    let accepted: u64 = collector
        .log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["fields"]["message"] == "reports received since the last summary")
        .map(|entry| entry["fields"]["accepted"].as_u64().unwrap())
        .sum();
    assert!(
        accepted >= acked_offsets.len() as u64,
        "{accepted} accepted in the summaries, {} acknowledged",
        acked_offsets.len()
    );
    assert!(
        collector.log.lock().unwrap().len() < 100,
        "a line per report? {log}"
    );

    // Every acknowledged report is there after a restart.
    let restarted = Collector::start(&binary("collector"), &data, &[]).await;
    let page = get_json(
        &client,
        &restarted.admin_url(&format!("/api/v1/clusters/{cluster}/reports?limit=1000")),
    )
    .await;
    let mut stored: Vec<i64> = Vec::new();
    let mut next = page["next"].as_i64();
    let mut pages = vec![page];
    while let Some(before) = next {
        let page = get_json(
            &client,
            &restarted.admin_url(&format!(
                "/api/v1/clusters/{cluster}/reports?limit=1000&before={before}"
            )),
        )
        .await;
        next = page["next"].as_i64();
        pages.push(page);
    }
    for page in &pages {
        for entry in page["reports"].as_array().unwrap() {
            let timestamp: i64 = entry["report"]["timestamp"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            stored.push(start - timestamp);
        }
    }
    for offset in &acked_offsets {
        assert!(
            stored.contains(offset),
            "acknowledged report {offset} is missing"
        );
    }
}
