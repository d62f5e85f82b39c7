//! The collector process with sinks configured, over real TCP: every stored report reaches
//! every sink (Segment, Woopra, a JSON-lines file, another collector, BigQuery on the real
//! emulator), a sink that is down holds back no other, dead letters are listed and re-queued
//! through the admin API, and a sink added later is backfilled only on request.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use e2e::bigquery::{BigQueryEmulator, EMULATOR_PROJECT};
use e2e::sink_standins::{Answer, Segment, Woopra};
use e2e::{
    Collector, WITHOUT_RATE_LIMITS, binary, fixture, get_json_with_token, metric, now,
    post_reports, sigterm, wait_for, without_rate_limits,
};
use serde_json::Value;

const WRITE_KEY: &str = "wk_delivery_test";
const ADMIN_TOKEN: &str = "admin-token-for-tests";
const DEADLINE: Duration = Duration::from_secs(60);

/// Reports of fresh clusters at the current time, and their report ids.
fn reports(n: usize) -> (Vec<(String, i64)>, HashSet<String>) {
    let time = now();
    let items: Vec<(String, i64)> = (0..n)
        .map(|_| (uuid::Uuid::new_v4().to_string(), time))
        .collect();
    let ids = items
        .iter()
        .map(|(cluster, time)| common::id::for_time(cluster, *time).to_string())
        .collect();
    (items, ids)
}

async fn post_all(client: &reqwest::Client, collector: &Collector, items: Vec<(String, i64)>) {
    let n = items.len();
    let acked = post_reports(
        client,
        &collector.public_url("/api/v1"),
        items,
        8,
        Default::default(),
    )
    .await;
    assert_eq!(acked.len(), n, "every report is accepted");
}

/// A configuration file with `body` in `dir`, beside the Segment key file it names.
fn write_config(dir: &Path, body: &str) -> String {
    e2e::write_sink_config(dir, WRITE_KEY, body)
}

async fn start_collector(dir: &Path, config: Option<&str>) -> Collector {
    let token = dir.join("admin-token");
    std::fs::write(&token, ADMIN_TOKEN).unwrap();
    let token = token.display().to_string();
    let mut args =
        without_rate_limits(&["--delivery-max-backoff", "1s", "--admin-token-file", &token]);
    if let Some(config) = config {
        args.extend(["--config", config]);
    }
    Collector::start(&binary("collector"), &dir.join("data"), &args).await
}

async fn admin_get(client: &reqwest::Client, collector: &Collector, path: &str) -> Value {
    get_json_with_token(client, &collector.admin_url(path), ADMIN_TOKEN).await
}

async fn metrics(client: &reqwest::Client, collector: &Collector) -> String {
    e2e::get_text(client, &collector.admin_url("/metrics")).await
}

/// `collector_<name>{sink=…}` once it equals `value`.
async fn wait_for_metric(
    client: &reqwest::Client,
    collector: &Collector,
    name: &str,
    labels: &[(&str, &str)],
    value: f64,
) {
    wait_for(&format!("{name}{labels:?} = {value}"), DEADLINE, || async {
        let text = metrics(client, collector).await;
        (metric(&text, name, labels) == Some(value)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sink_gets_every_report_and_a_sink_that_is_down_holds_back_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let (segment, segment_url) = Segment::start(WRITE_KEY).await;
    let (woopra, woopra_url) = Woopra::start("example.com").await;
    woopra.script.set_down(true);
    let downstream_dir = dir.path().join("downstream");
    let downstream =
        Collector::start(&binary("collector"), &downstream_dir, &WITHOUT_RATE_LIMITS).await;
    let jsonl = dir.path().join("reports.jsonl");
    let config = write_config(
        dir.path(),
        &format!(
            r#"{segment}
            [[sink]]
            name = "woopra"
            type = "woopra"
            endpoint = "{woopra_url}"
            project = "example.com"
            timeout = "2s"

            [[sink]]
            name = "archive"
            type = "jsonl"
            path = "{jsonl}"

            [[sink]]
            name = "upstream"
            type = "http"
            endpoint = "{downstream}"
            "#,
            segment = e2e::segment_sink_table(dir.path(), &segment_url),
            jsonl = jsonl.display(),
            downstream = downstream.public_url(""),
        ),
    );
    let collector = start_collector(dir.path(), Some(&config)).await;
    let client = reqwest::Client::new();
    let (items, ids) = reports(40);
    post_all(&client, &collector, items.clone()).await;

    wait_for("Segment to have every report", DEADLINE, || async {
        (segment.message_ids() == ids).then_some(())
    })
    .await;
    wait_for(
        "the JSON-lines file to have every report",
        DEADLINE,
        || async {
            let text = std::fs::read_to_string(&jsonl).unwrap_or_default();
            let lines: HashSet<String> = text
                .lines()
                .map(|line| {
                    let entry: Value = serde_json::from_str(line).unwrap();
                    entry["id"].as_str().unwrap().to_string()
                })
                .collect();
            (lines == ids).then_some(())
        },
    )
    .await;
    wait_for(
        "the other collector to have every report",
        DEADLINE,
        || async {
            let stats = admin_get_open(&client, &downstream, "/api/v1/stats").await;
            (stats["clusters"] == 40).then_some(())
        },
    )
    .await;
    for (cluster, time) in &items[..5] {
        let page = admin_get_open(
            &client,
            &downstream,
            &format!("/api/v1/clusters/{cluster}/reports"),
        )
        .await;
        assert_eq!(
            page["reports"][0]["id"],
            common::id::for_time(cluster, *time).to_string(),
            "the forwarded report keeps its id"
        );
    }

    // Woopra is down the whole time: its deliveries wait, listed with their last error.
    assert!(woopra.events().is_empty());
    let woopra_labels = [("sink", "woopra"), ("type", "woopra")];
    wait_for_metric(
        &client,
        &collector,
        "collector_outbox_depth",
        &woopra_labels,
        40.0,
    )
    .await;
    // Queued reports are listed as soon as they are stored; each shows its error once the
    // worker has tried it.
    wait_for(
        "every Woopra delivery to be tried and listed with its error",
        DEADLINE,
        || async {
            let pending = admin_get(
                &client,
                &collector,
                "/api/v1/deliveries?sink=woopra&state=pending",
            )
            .await;
            let pending = pending["deliveries"].as_array().unwrap().clone();
            (pending.len() == 40
                && pending.iter().all(|d| {
                    d["lastError"]
                        .as_str()
                        .is_some_and(|e| e.contains("unreachable"))
                }))
            .then_some(())
        },
    )
    .await;
    let text = metrics(&client, &collector).await;
    for sink in [
        ("segment", "segment"),
        ("archive", "jsonl"),
        ("upstream", "http"),
    ] {
        let labels = [("sink", sink.0), ("type", sink.1), ("outcome", "delivered")];
        assert_eq!(
            metric(&text, "collector_deliveries_total", &labels),
            Some(40.0),
            "{sink:?}"
        );
        assert_eq!(
            metric(
                &text,
                "collector_outbox_depth",
                &[("sink", sink.0), ("type", sink.1)]
            ),
            Some(0.0),
            "{sink:?}"
        );
    }
    assert!(
        metric(
            &text,
            "collector_sink_request_duration_seconds_count",
            &[("sink", "segment")]
        )
        .unwrap()
            >= 1.0
    );
    // The startup healthcheck saw Woopra down (the gauge is 0 before the check too: the log says
    // it ran).
    wait_for("Woopra's healthcheck to fail", DEADLINE, || async {
        let log = collector.log.lock().unwrap();
        log.iter()
            .any(|line| line.contains("sink healthcheck failed") && line.contains("\"woopra\""))
            .then_some(())
    })
    .await;
    assert_eq!(
        metric(&text, "collector_sink_up", &woopra_labels),
        Some(0.0)
    );

    // Woopra comes back: its backlog drains.
    woopra.script.set_down(false);
    wait_for("Woopra to have every report", DEADLINE, || async {
        let seen: HashSet<String> = woopra
            .events()
            .iter()
            .map(|e| e["ce_report_id"].clone())
            .collect();
        (seen == ids).then_some(())
    })
    .await;
    assert_eq!(woopra.events().len(), 40, "Woopra counted each report once");
    wait_for_metric(
        &client,
        &collector,
        "collector_outbox_depth",
        &woopra_labels,
        0.0,
    )
    .await;
}

/// GET on a collector started without an admin token.
async fn admin_get_open(client: &reqwest::Client, collector: &Collector, path: &str) -> Value {
    e2e::get_json(client, &collector.admin_url(path)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_and_requeued_with_the_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let (segment, url) = Segment::start(WRITE_KEY).await;
    // One batch for all five reports (they arrive well within a second).
    let table = e2e::segment_sink_table(dir.path(), &url).replace("200ms", "1s");
    let config = write_config(dir.path(), &table);
    // Segment refuses the first batch for good.
    segment.script.push(&[Answer::Status(400)]);
    let collector = start_collector(dir.path(), Some(&config)).await;
    let client = reqwest::Client::new();
    let (items, ids) = reports(5);
    post_all(&client, &collector, items).await;

    let labels = [("sink", "segment"), ("type", "segment")];
    wait_for_metric(&client, &collector, "collector_outbox_dead", &labels, 5.0).await;
    let text = metrics(&client, &collector).await;
    assert_eq!(
        metric(
            &text,
            "collector_deliveries_total",
            &[("sink", "segment"), ("outcome", "dead")]
        ),
        Some(5.0)
    );
    let dead = admin_get(&client, &collector, "/api/v1/deliveries?state=dead").await;
    let dead = dead["deliveries"].as_array().unwrap();
    let listed: HashSet<String> = dead
        .iter()
        .map(|d| d["reportID"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(listed, ids);
    for delivery in dead {
        assert_eq!(delivery["sink"], "segment");
        assert_eq!(delivery["state"], "dead");
        let reason = delivery["lastError"].as_str().unwrap();
        assert!(reason.contains("400"), "{reason}");
    }
    assert!(segment.events().is_empty());

    // Reading and re-queueing need the admin token.
    let requeue = collector.admin_url("/api/v1/deliveries/requeue?sink=segment&state=dead");
    for path in ["/api/v1/deliveries?state=dead"] {
        let answer = client.get(collector.admin_url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 401);
    }
    assert_eq!(client.post(&requeue).send().await.unwrap().status(), 401);
    let unknown = client
        .post(collector.admin_url("/api/v1/deliveries/requeue?sink=nope"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let answer = e2e::send_json(client.post(&requeue).bearer_auth(ADMIN_TOKEN)).await;
    assert_eq!(answer["requeued"], 5);
    wait_for(
        "the re-queued reports to reach Segment",
        DEADLINE,
        || async { (segment.message_ids() == ids).then_some(()) },
    )
    .await;
    wait_for_metric(&client, &collector, "collector_outbox_dead", &labels, 0.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_added_later_gets_new_reports_and_a_backfill_only_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let (segment, url) = Segment::start(WRITE_KEY).await;
    let mut first = start_collector(dir.path(), None).await;
    let (before, before_ids) = reports(4);
    post_all(&client, &first, before).await;
    sigterm(&first.child);
    first.child.wait().await.unwrap();

    let config = write_config(dir.path(), &e2e::segment_sink_table(dir.path(), &url));
    let collector = start_collector(dir.path(), Some(&config)).await;
    let (after, after_ids) = reports(3);
    post_all(&client, &collector, after).await;
    wait_for("Segment to have the new reports", DEADLINE, || async {
        (segment.message_ids() == after_ids).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        segment.events().len(),
        3,
        "nothing from before the sink was added"
    );

    let answer = e2e::send_json(
        client
            .post(collector.admin_url("/api/v1/deliveries/requeue?sink=segment"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(answer["requeued"], 4, "only the reports it never had");
    let all: HashSet<String> = before_ids.union(&after_ids).cloned().collect();
    wait_for("the backfill to reach Segment", DEADLINE, || async {
        (segment.message_ids() == all).then_some(())
    })
    .await;
    assert_eq!(segment.events().len(), 7, "nothing was sent twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bigquery_emulator_gets_every_report_through_the_collector() {
    let emulator = BigQueryEmulator::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            r#"
            [[sink]]
            name = "warehouse"
            type = "bigquery"
            table = "{EMULATOR_PROJECT}.telemetry.reports"
            flush_interval = "200ms"
            "#
        ),
    );
    // The emulator's address comes from the flag, as an operator would point at one.
    let endpoint = emulator.endpoint();
    let collector = Collector::start(
        &binary("collector"),
        &dir.path().join("data"),
        &without_rate_limits(&["--config", &config, "--bigquery-endpoint", &endpoint]),
    )
    .await;
    let client = reqwest::Client::new();
    let (items, mut ids) = reports(30);
    post_all(&client, &collector, items).await;
    // A report exactly as a Spartakus volunteer sends it, with a meaningless timestamp.
    let spartakus = client
        .post(collector.public_url("/api/v1"))
        .header("Content-Type", "application/json")
        .body(fixture("spartakus-readme.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(spartakus.status(), 204);

    let labels = [
        ("sink", "warehouse"),
        ("type", "bigquery"),
        ("outcome", "delivered"),
    ];
    wait_for_metric(
        &client,
        &collector,
        "collector_deliveries_total",
        &labels,
        31.0,
    )
    .await;
    // The healthcheck created the table.
    wait_for_metric(
        &client,
        &collector,
        "collector_sink_up",
        &[("sink", "warehouse")],
        1.0,
    )
    .await;

    let table = format!("`{EMULATOR_PROJECT}.telemetry.reports`");
    let rows = emulator
        .query(&format!(
            "SELECT report_id, clusterID, timestamp, time_source, received_at FROM {table}"
        ))
        .await;
    assert_eq!(rows.len(), 31);
    let spartakus_row = rows
        .iter()
        .find(|row| row[3] == "received")
        .expect("the Spartakus report's time is the collector's");
    let stored: HashSet<String> = rows
        .iter()
        .map(|row| row[0].as_str().unwrap().to_string())
        .collect();
    ids.insert(spartakus_row[0].as_str().unwrap().to_string());
    assert_eq!(stored, ids);
    for row in &rows {
        // `timestamp` is unix seconds in a string, as Spartakus wrote it; `received_at` is a
        // TIMESTAMP (the REST API gives microseconds).
        let seconds: i64 = row[2].as_str().unwrap().parse().unwrap();
        assert!((seconds - now()).abs() < 600, "{row:?}");
        let micros: i64 = row[4].as_str().unwrap().parse().unwrap();
        assert!((micros / 1_000_000 - now()).abs() < 600, "{row:?}");
    }
    // A Spartakus-style question still works on the table: nodes by architecture.
    let architectures = emulator
        .query(&format!(
            "SELECT n.architecture, COUNT(*) FROM {table}, UNNEST(nodes) AS n \
             GROUP BY n.architecture ORDER BY n.architecture"
        ))
        .await;
    let amd64 = architectures
        .iter()
        .find(|row| row[0] == "amd64")
        .expect("amd64 nodes are counted");
    assert!(amd64[1].as_str().unwrap().parse::<i64>().unwrap() >= 30);
    let columns = emulator.columns("telemetry", "reports").await;
    assert_eq!(&columns[..6], e2e::spartakus::COLUMNS);
}
