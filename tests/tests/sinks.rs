//! Each sink against its peer on loopback: Segment and Woopra stand-ins that enforce the
//! services' wire contracts and play scripted answers, and a BigQuery `insertAll` stand-in for
//! what the emulator does not do (insertId dedup, per-row errors). Sinks are built from
//! configuration text exactly as the collector builds them.

use std::collections::HashSet;
use std::time::Duration;

use collector::sinks::{Configured, ItemOutcome};
use collector::store::OutboxItem;
use common::report::NodeFact;
use e2e::bigquery::BigQueryStandin;
use e2e::sink_standins::{Answer, Segment, Woopra};
use e2e::{load_sinks, outbox_item};
use serde_json::Value;

const WRITE_KEY: &str = "wk_test_0123456789";

async fn one_sink(dir: &tempfile::TempDir, config: &str) -> Configured {
    let mut sinks = load_sinks(dir.path(), config).await;
    assert_eq!(sinks.len(), 1);
    sinks.remove(0)
}

async fn segment_sink(dir: &tempfile::TempDir, url: &str, write_key: &str) -> Configured {
    // The key file that `segment_sink_table` names.
    std::fs::write(dir.path().join("segment-key"), format!("{write_key}\n")).unwrap();
    let table = e2e::segment_sink_table(dir.path(), url);
    one_sink(
        dir,
        &format!("{table}identity_extension = \"example.com/account\"\n"),
    )
    .await
}

fn items(n: usize, extensions: &[(&str, &str)]) -> Vec<OutboxItem> {
    (0..n)
        .map(|i| {
            let cluster = uuid::Uuid::new_v4().to_string();
            outbox_item(i as i64 + 1, &cluster, extensions)
        })
        .collect()
}

fn kinds(outcomes: &[ItemOutcome]) -> Vec<&'static str> {
    outcomes
        .iter()
        .map(|o| match o {
            ItemOutcome::Delivered => "delivered",
            ItemOutcome::Retry(_) => "retry",
            ItemOutcome::Dead(_) => "dead",
            ItemOutcome::Deferred => "deferred",
        })
        .collect()
}

fn rfc3339(unix: i64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(unix as u64))
        .to_string()
}

#[tokio::test]
async fn segment_events_are_authenticated_keyed_and_deduplicated_by_report_id() {
    let (segment, url) = Segment::start(WRITE_KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = segment_sink(&dir, &url, WRITE_KEY).await;
    sink.sink.healthcheck().await.unwrap();

    let mut batch = items(20, &[]);
    batch[0] = outbox_item(
        1,
        &batch[0].cluster_id,
        &[("example.com/account", "acct-7")],
    );
    let sent = sink.sink.send(&batch, false).await;
    assert_eq!(kinds(&sent.outcomes), vec!["delivered"; 20]);
    assert_eq!(sent.requests.len(), 1);
    assert_eq!(segment.batches().len(), 1);
    assert!(segment.refused().is_empty(), "{:?}", segment.refused());

    let events = segment.events();
    for (event, item) in events.iter().zip(&batch) {
        assert_eq!(event["type"], "track");
        assert_eq!(event["event"], "Cluster Report");
        assert_eq!(event["messageId"], item.id.to_string());
        assert_eq!(event["timestamp"], rfc3339(item.report_time));
        let properties = event["properties"].as_object().unwrap();
        assert_eq!(properties["clusterID"], item.cluster_id.as_str());
        assert_eq!(properties["nodes"], 1);
        assert_eq!(properties["architectures"], "amd64");
        assert_eq!(properties["masterVersion"], "v1.31.2");
        assert!(
            properties.values().all(|v| !v.is_object() && !v.is_array()),
            "properties are flat: {properties:?}"
        );
    }
    // The keying strategy: the named extension when present, else the cluster id.
    assert_eq!(events[0]["userId"], "acct-7");
    assert_eq!(events[1]["userId"], batch[1].cluster_id.as_str());

    // A resend (a lost answer, a restart) reaches Segment again, and its messageId dedup keeps
    // one of each.
    let again = sink.sink.send(&batch, false).await;
    assert_eq!(kinds(&again.outcomes), vec!["delivered"; 20]);
    assert_eq!(segment.events().len(), 40);
    let expected: HashSet<String> = batch.iter().map(|i| i.id.to_string()).collect();
    assert_eq!(segment.message_ids(), expected);
}

#[tokio::test]
async fn segment_answers_are_retried_only_where_segment_says_so() {
    let (segment, url) = Segment::start(WRITE_KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = segment_sink(&dir, &url, WRITE_KEY).await;
    let cases = [
        (Answer::Status(500), "retry"),
        (Answer::Status(503), "retry"),
        (Answer::Status(408), "retry"),
        (Answer::Status(501), "dead"),
        (Answer::Status(400), "dead"),
        (Answer::Status(413), "dead"),
        (Answer::Drop, "retry"),
    ];
    for (answer, expected) in cases {
        segment.script.push(&[answer]);
        let batch = items(3, &[]);
        let sent = sink.sink.send(&batch, false).await;
        assert_eq!(kinds(&sent.outcomes), vec![expected; 3], "{answer:?}");
    }
    // 429 with Retry-After: retried, and the wait is passed on to the worker.
    segment.script.push(&[Answer::RetryAfter(429, 7)]);
    let sent = sink.sink.send(&items(2, &[]), false).await;
    assert_eq!(kinds(&sent.outcomes), vec!["retry"; 2]);
    assert_eq!(sent.retry_after, Some(Duration::from_secs(7)));
    // 500 then 200: the same batch goes through on the next try.
    segment.script.push(&[Answer::Status(500)]);
    let batch = items(4, &[]);
    assert_eq!(
        kinds(&sink.sink.send(&batch, false).await.outcomes),
        ["retry"; 4]
    );
    assert_eq!(
        kinds(&sink.sink.send(&batch, false).await.outcomes),
        ["delivered"; 4]
    );
    assert_eq!(segment.events().len(), 4, "only the last try was recorded");

    // A wrong write key is refused by Segment (401) and not retried.
    let wrong_dir = tempfile::tempdir().unwrap();
    let wrong = segment_sink(&wrong_dir, &url, "wk_wrong").await;
    let sent = wrong.sink.send(&items(2, &[]), false).await;
    match &sent.outcomes[0] {
        ItemOutcome::Dead(reason) => assert!(reason.contains("401"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(segment.refused().last().unwrap().0, 401);
}

#[tokio::test]
async fn segment_batches_stay_under_the_size_cap_and_oversized_events_are_dead_lettered() {
    let (segment, url) = Segment::start(WRITE_KEY).await;
    let dir = tempfile::tempdir().unwrap();
    let sink = segment_sink(&dir, &url, WRITE_KEY).await;
    let filler = "x".repeat(900);
    let mut batch = items(700, &[("example.com/notes", &filler)]);
    // 40 extensions of 1000 bytes: an event of about 40 KB, over Segment's 32 KB.
    let big = "y".repeat(1000);
    let names: Vec<String> = (0..40).map(|i| format!("example.com/big-{i}")).collect();
    let extensions: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), big.as_str())).collect();
    batch[350] = outbox_item(351, &batch[350].cluster_id, &extensions);

    let sent = sink.sink.send(&batch, false).await;
    let outcomes = kinds(&sent.outcomes);
    assert_eq!(outcomes.iter().filter(|k| **k == "delivered").count(), 699);
    match &sent.outcomes[350] {
        ItemOutcome::Dead(reason) => assert!(reason.contains("32768"), "{reason}"),
        other => panic!("the oversized event was not dead-lettered: {other:?}"),
    }
    assert!(segment.refused().is_empty(), "{:?}", segment.refused());
    let batches = segment.batches();
    assert!(batches.len() >= 3, "{batches:?}");
    for record in &batches {
        assert!(record.bytes <= 475_000, "{record:?}");
    }
    // Every request but the last is well filled.
    for record in &batches[..batches.len() - 1] {
        assert!(record.bytes >= 427_500, "{record:?}");
    }

    // When more reports wait, a poorly filled tail is deferred to fill a later request.
    let before = segment.batches().len();
    let sent = sink
        .sink
        .send(&items(700, &[("example.com/notes", &filler)]), true)
        .await;
    let outcomes = kinds(&sent.outcomes);
    let deferred = outcomes.iter().filter(|k| **k == "deferred").count();
    assert!(deferred > 0, "nothing deferred");
    assert!(
        outcomes[..700 - deferred].iter().all(|k| *k == "delivered"),
        "only the tail is deferred"
    );
    for record in &segment.batches()[before..] {
        assert!(record.bytes >= 427_500, "{record:?}");
    }
}

async fn woopra_sink(dir: &tempfile::TempDir, url: &str, concurrency: usize) -> Configured {
    one_sink(
        dir,
        &format!(
            r#"
            [[sink]]
            name = "woopra"
            type = "woopra"
            endpoint = "{url}"
            project = "example.com"
            timeout = "2s"
            concurrency = {concurrency}
            "#
        ),
    )
    .await
}

#[tokio::test]
async fn woopra_gets_one_event_per_report_with_the_documented_parameters() {
    let (woopra, url) = Woopra::start("example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = woopra_sink(&dir, &url, 4).await;
    sink.sink.healthcheck().await.unwrap();
    let batch = items(9, &[("example.com/team", "blue")]);
    let sent = sink.sink.send(&batch, false).await;
    assert_eq!(kinds(&sent.outcomes), vec!["delivered"; 9]);
    assert!(woopra.refused().is_empty(), "{:?}", woopra.refused());
    let events = woopra.events();
    assert_eq!(events.len(), 9);
    for item in &batch {
        let event = events
            .iter()
            .find(|e| e["ce_report_id"] == item.id.to_string())
            .unwrap_or_else(|| panic!("no event for {}: {events:?}", item.id));
        assert_eq!(event["project"], "example.com");
        assert_eq!(event["event"], "cluster_report");
        assert_eq!(event["cv_id"], item.cluster_id);
        assert_eq!(event["cookie"], item.cluster_id);
        assert_eq!(event["timestamp"], (item.report_time * 1000).to_string());
        assert_eq!(event["timeout"], "300000");
        assert_eq!(event["ce_nodes"], "1");
        assert_eq!(event["ce_master_version"], "v1.31.2");
        assert_eq!(event["ce_ext_example_com_team"], "blue");
    }
}

#[tokio::test]
async fn woopra_is_retried_only_when_the_event_surely_did_not_arrive() {
    let (woopra, url) = Woopra::start("example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let sink = woopra_sink(&dir, &url, 1).await;
    woopra.script.push(&[
        Answer::Status(503),
        Answer::RetryAfter(429, 3),
        Answer::Status(400),
        Answer::Drop,
    ]);
    let sent = sink.sink.send(&items(5, &[]), false).await;
    assert_eq!(
        kinds(&sent.outcomes),
        ["retry", "retry", "dead", "dead", "delivered"]
    );
    assert_eq!(sent.retry_after, Some(Duration::from_secs(3)));
    match &sent.outcomes[3] {
        ItemOutcome::Dead(reason) => assert!(reason.contains("unknown whether"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(woopra.events().len(), 1);

    // Nothing listens: the request surely did not arrive, so it is retried.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let unreachable = woopra_sink(&dir, &format!("http://127.0.0.1:{port}"), 1).await;
    assert!(unreachable.sink.healthcheck().await.is_err());
    let sent = unreachable.sink.send(&items(2, &[]), false).await;
    assert_eq!(kinds(&sent.outcomes), ["retry", "retry"]);
}

async fn bigquery_sink(dir: &tempfile::TempDir, endpoint: &str) -> Configured {
    one_sink(
        dir,
        &format!(
            r#"
            [[sink]]
            name = "warehouse"
            type = "bigquery"
            table = "test-project.telemetry.reports"
            endpoint = "{endpoint}"
            "#
        ),
    )
    .await
}

#[tokio::test]
async fn bigquery_creates_a_spartakus_compatible_table_and_inserts_rows_by_report_id() {
    let (bigquery, endpoint) = BigQueryStandin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = bigquery_sink(&dir, &endpoint).await;
    sink.sink.healthcheck().await.unwrap();
    let schema = bigquery
        .schema("telemetry", "reports")
        .expect("the table was created");
    let columns: Vec<&str> = schema.iter().map(|f| f["name"].as_str().unwrap()).collect();
    // Spartakus's columns first, as its bigquery.schema.json has them, then ours.
    assert_eq!(&columns[..6], e2e::spartakus::COLUMNS);
    for column in [
        "namespaces",
        "objects",
        "skipped",
        "report_id",
        "time_source",
        "received_at",
    ] {
        assert!(columns.contains(&column), "{column} missing: {columns:?}");
    }
    let received_at = schema.iter().find(|f| f["name"] == "received_at").unwrap();
    assert_eq!(received_at["type"], "TIMESTAMP");
    let timestamp = schema.iter().find(|f| f["name"] == "timestamp").unwrap();
    assert_eq!(timestamp["type"], "STRING");
    let node_fields: Vec<&str> = schema.iter().find(|f| f["name"] == "nodes").unwrap()["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    // Spartakus's node columns: the id, every node fact (the wire names common pins), capacity.
    let facts = NodeFact::ALL.iter().map(|fact| fact.wire_name());
    for field in ["id", "capacity"].into_iter().chain(facts) {
        assert!(node_fields.contains(&field), "nodes.{field} missing");
    }

    // 1,200 rows: three requests of at most 500, each row keyed by its report id.
    let batch = items(1_200, &[]);
    let sent = sink.sink.send(&batch, false).await;
    assert_eq!(kinds(&sent.outcomes), vec!["delivered"; 1_200]);
    let inserts = bigquery.inserts();
    assert_eq!(
        inserts.iter().map(|i| i.rows).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    let rows = bigquery.rows();
    assert_eq!(rows.len(), 1_200);
    for ((insert_id, row), item) in rows.iter().zip(&batch) {
        assert_eq!(insert_id.as_deref(), Some(item.id.to_string().as_str()));
        assert_eq!(row["report_id"], item.id.to_string());
        assert_eq!(row["timestamp"], item.report_time.to_string());
        assert_eq!(row["received_at"], rfc3339(item.received_at));
        assert_eq!(row["clusterID"], item.cluster_id);
    }
    // A resend is deduplicated by insertId.
    let again = sink.sink.send(&batch[..10], false).await;
    assert_eq!(kinds(&again.outcomes), vec!["delivered"; 10]);
    assert_eq!(bigquery.rows().len(), 1_200);
}

#[tokio::test]
async fn bigquery_row_errors_dead_letter_invalid_rows_and_retry_stopped_ones() {
    let (bigquery, endpoint) = BigQueryStandin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = bigquery_sink(&dir, &endpoint).await;
    sink.sink.healthcheck().await.unwrap();
    let batch = items(6, &[]);
    bigquery.poison(&[&batch[2].cluster_id]);

    // HTTP 200 with insertErrors: the invalid row is dead, the others were `stopped`.
    let sent = sink.sink.send(&batch, false).await;
    assert_eq!(
        kinds(&sent.outcomes),
        ["retry", "retry", "dead", "retry", "retry", "retry"]
    );
    match &sent.outcomes[2] {
        ItemOutcome::Dead(reason) => assert!(reason.contains("invalid"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(bigquery.rows().is_empty());
    // The worker sends the retried rows again, without the dead one.
    let retried: Vec<OutboxItem> = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, item)| item.clone())
        .collect();
    let sent = sink.sink.send(&retried, false).await;
    assert_eq!(kinds(&sent.outcomes), vec!["delivered"; 5]);
    assert_eq!(bigquery.rows().len(), 5);

    // Request-level answers.
    let cases = [
        (Answer::Status(500), "retry"),
        (Answer::Status(503), "retry"),
        (Answer::RetryAfter(429, 2), "retry"),
        (Answer::Status(403), "dead"),
        (Answer::Status(400), "dead"),
        (Answer::Drop, "retry"),
    ];
    for (answer, expected) in cases {
        bigquery.script.push(&[answer]);
        let sent = sink.sink.send(&items(3, &[]), false).await;
        assert_eq!(kinds(&sent.outcomes), vec![expected; 3], "{answer:?}");
    }
}

#[tokio::test]
async fn bigquery_recreates_a_table_deleted_behind_its_back() {
    let (bigquery, endpoint) = BigQueryStandin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let sink = bigquery_sink(&dir, &endpoint).await;
    // The healthcheck failed at startup (the service was down), so the table does not exist:
    // the first insert answers 404, the sink creates the table, the retry lands.
    let batch = items(3, &[]);
    let sent = sink.sink.send(&batch, false).await;
    assert_eq!(kinds(&sent.outcomes), vec!["retry"; 3]);
    assert!(bigquery.schema("telemetry", "reports").is_some());
    let sent = sink.sink.send(&batch, false).await;
    assert_eq!(kinds(&sent.outcomes), vec!["delivered"; 3]);
    let ids: Vec<Value> = bigquery
        .rows()
        .into_iter()
        .map(|(_, row)| row["report_id"].clone())
        .collect();
    assert_eq!(ids.len(), 3);
}
