//! The whole path with real processes over loopback: the Kubernetes API stand-in (a synthetic
//! cluster with canaries planted in every identifying field) → the volunteer binary (kubeconfig;
//! one-shot, then periodic) → the collector binary with its embedded store and every sink at once
//! (the BigQuery emulator, the Segment and Woopra stand-ins) → each report stored, readable
//! through the read API, kept across a restart, delivered to every sink under the same id,
//! readable as a Spartakus v1 record, and free of canaries.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use e2e::bigquery::{BigQueryEmulator, EMULATOR_PROJECT};
use e2e::kube_standin::{ClusterSize, Faults, KUBE_SYSTEM_UID, assert_no_canaries, cluster};
use e2e::sink_standins::{Segment, Woopra};
use e2e::{
    Collector, binary, get_json_with_token, run_captured, segment_sink_table, sigterm,
    volunteer_command, wait_for, write_sink_config,
};
use serde_json::Value;

const SIZE: ClusterSize = ClusterSize {
    nodes: 5,
    namespaces: 9,
    pods: 120,
};
const WRITE_KEY: &str = "wk_whole_path";
const WOOPRA_PROJECT: &str = "usage.example.com";
const ADMIN_TOKEN: &str = "whole-path-admin-token";
const ACCOUNT: (&str, &str) = ("example.com/account", "trial-42");
const DEADLINE: Duration = Duration::from_secs(60);

fn spartakus_record(report: &Value) -> e2e::spartakus::Record {
    let record = e2e::spartakus::record(report);
    // Spartakus stores `version` as given (its schema is v1; ours is a superset, v1.x).
    assert!(record.version.starts_with("v1"), "{}", record.version);
    assert!(
        record.timestamp.parse::<i64>().is_ok(),
        "Spartakus writes unix seconds as a string"
    );
    assert_eq!(record.nodes().len(), SIZE.nodes);
    assert!(record.nodes().iter().all(|node| node.id.len() >= 32));
    record
}

/// Object statistics read twice a few seconds apart: equal but for ages, which may have grown.
fn assert_same_objects(later: &Value, earlier: &Value) {
    let without_ages = |objects: &Value| {
        let mut objects = objects.clone();
        for stats in objects.as_object_mut().unwrap().values_mut() {
            stats.as_object_mut().unwrap().remove("ageSeconds");
        }
        objects
    };
    assert_eq!(without_ages(later), without_ages(earlier));
    // A percentile is its bucket's bound (about 9% wide), so a second can move it up one bucket.
    for (kind, stats) in earlier.as_object().unwrap() {
        for (percentile, age) in stats["ageSeconds"].as_object().into_iter().flatten() {
            let (before, after) = (
                age.as_i64().unwrap(),
                later[kind]["ageSeconds"][percentile].as_i64().unwrap(),
            );
            assert!(
                before <= after && after <= before + (before / 10).max(10),
                "{kind} {percentile}: {before} s, then {after} s"
            );
        }
    }
}

fn expected_cluster_id() -> String {
    volunteer::identity::cluster_id_from_uid(KUBE_SYSTEM_UID).to_string()
}

/// The collector with its embedded store and every sink, and the sinks' peers.
struct Deployment {
    dir: tempfile::TempDir,
    emulator: BigQueryEmulator,
    segment: std::sync::Arc<Segment>,
    woopra: std::sync::Arc<Woopra>,
    collector: Collector,
}

async fn collector(dir: &Path, args: &[&str]) -> Collector {
    let token = dir.join("admin-token");
    std::fs::write(&token, format!("{ADMIN_TOKEN}\n")).unwrap();
    let token = token.display().to_string();
    let mut all = vec!["--admin-token-file", token.as_str()];
    all.extend_from_slice(args);
    Collector::start(&binary("collector"), &dir.join("data"), &all).await
}

async fn deploy() -> Deployment {
    let emulator = BigQueryEmulator::start().await;
    let (segment, segment_url) = Segment::start(WRITE_KEY).await;
    let (woopra, woopra_url) = Woopra::start(WOOPRA_PROJECT).await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_sink_config(
        dir.path(),
        WRITE_KEY,
        &format!(
            r#"
            {segment}
            identity_extension = "{account}"

            [[sink]]
            name = "woopra"
            type = "woopra"
            endpoint = "{woopra_url}"
            project = "{WOOPRA_PROJECT}"

            [[sink]]
            name = "warehouse"
            type = "bigquery"
            table = "{EMULATOR_PROJECT}.telemetry.reports"
            flush_interval = "200ms"
            "#,
            segment = segment_sink_table(dir.path(), &segment_url),
            account = ACCOUNT.0,
        ),
    );
    let endpoint = emulator.endpoint();
    let collector = collector(
        dir.path(),
        &["--config", &config, "--bigquery-endpoint", &endpoint],
    )
    .await;
    Deployment {
        dir,
        emulator,
        segment,
        woopra,
        collector,
    }
}

impl Deployment {
    /// The reports of the test cluster, newest first, through the admin read API.
    async fn stored(&self, client: &reqwest::Client) -> Vec<Value> {
        let url = self.collector.admin_url(&format!(
            "/api/v1/clusters/{}/reports",
            expected_cluster_id()
        ));
        let unauthorised = client.get(&url).send().await.unwrap();
        assert_eq!(unauthorised.status(), 401, "the read API needs the token");
        let page = get_json_with_token(client, &url, ADMIN_TOKEN).await;
        page["reports"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until every sink holds exactly `ids` (each once), and returns what each received,
    /// as text, for the canary check.
    async fn delivered_everywhere(&self, ids: &BTreeSet<String>) -> Vec<String> {
        let segment_ids = wait_for("Segment to receive every report", DEADLINE, || async {
            let got: BTreeSet<String> = self.segment.message_ids().into_iter().collect();
            (got == *ids).then_some(got)
        })
        .await;
        assert_eq!(self.segment.events().len(), ids.len(), "no Segment resend");
        let woopra_ids = wait_for("Woopra to receive every report", DEADLINE, || async {
            let got: BTreeSet<String> = self
                .woopra
                .events()
                .iter()
                .filter_map(|event| event.get("ce_report_id").cloned())
                .collect();
            (got == *ids).then_some(got)
        })
        .await;
        assert_eq!(self.woopra.events().len(), ids.len(), "no Woopra resend");
        let table = format!("`{EMULATOR_PROJECT}.telemetry.reports`");
        let rows = wait_for("BigQuery to hold every report", DEADLINE, || async {
            let rows = self
                .emulator
                .query(&format!(
                    "SELECT report_id, clusterID, masterVersion, ARRAY_LENGTH(nodes) FROM {table}"
                ))
                .await;
            (rows.len() == ids.len()).then_some(rows)
        })
        .await;
        let bigquery_ids: BTreeSet<String> = rows
            .iter()
            .map(|row| row[0].as_str().unwrap().to_string())
            .collect();
        assert_eq!(segment_ids, *ids);
        assert_eq!(woopra_ids, *ids);
        assert_eq!(bigquery_ids, *ids, "the same id in every sink");
        for row in &rows {
            assert_eq!(row[1], expected_cluster_id().as_str());
            assert_eq!(row[2], "v1.31.2");
            assert_eq!(row[3].as_str(), Some(SIZE.nodes.to_string().as_str()));
        }
        let extensions = self
            .emulator
            .query(&format!(
                "SELECT e.name, e.value FROM {table}, UNNEST(extensions) AS e"
            ))
            .await;
        assert_eq!(extensions.len(), ids.len(), "{extensions:?}");
        assert!(
            extensions
                .iter()
                .all(|row| row[0] == ACCOUNT.0 && row[1] == ACCOUNT.1)
        );
        for event in self.segment.events() {
            assert_eq!(event["userId"], ACCOUNT.1, "identity from the extension");
            assert_eq!(
                event["properties"]["clusterID"],
                expected_cluster_id().as_str()
            );
        }
        for event in self.woopra.events() {
            assert_eq!(event["cv_id"], expected_cluster_id());
        }
        vec![
            serde_json::to_string(&self.segment.events()).unwrap(),
            format!("{:?}", self.woopra.events()),
            format!("{rows:?}"),
        ]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_report_travels_from_the_api_server_to_every_sink() {
    let cluster = cluster(SIZE, Faults::default()).await;
    let mut deployment = deploy().await;
    let client = reqwest::Client::new();
    let collector_url = format!("http://{}", deployment.collector.public);
    let extensions = deployment.dir.path().join("extensions");
    std::fs::create_dir(&extensions).unwrap();
    std::fs::write(
        extensions.join("account.json"),
        serde_json::json!({ACCOUNT.0: ACCOUNT.1}).to_string(),
    )
    .unwrap();
    let extensions = extensions.display().to_string();

    // What would leave the cluster, as an operator checks it first.
    let (code, dry_run, log) = run_captured(
        volunteer_command(
            &cluster.kubeconfig,
            &["--dry-run", "--extensions", &extensions],
        ),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, Some(0), "{log}");
    let printed: Value = serde_json::from_str(&dry_run).unwrap();
    spartakus_record(&printed);
    assert_no_canaries(&dry_run, "the --dry-run report");

    // One-shot: one report, delivered and stored before the volunteer exits 0.
    let (code, _, log) = run_captured(
        volunteer_command(
            &cluster.kubeconfig,
            &[
                "--collector",
                &collector_url,
                "--period",
                "0",
                "--extensions",
                &extensions,
            ],
        ),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, Some(0), "{log}");
    assert_no_canaries(&log, "the volunteer's log");
    let stored = deployment.stored(&client).await;
    assert_eq!(stored.len(), 1);
    let first = &stored[0];
    assert_eq!(first["timeSource"], "client");
    let record = spartakus_record(&first["report"]);
    assert_eq!(record.cluster_id, expected_cluster_id());
    assert_eq!(record.master_version.as_deref(), Some("v1.31.2"));
    assert!(
        record
            .extensions()
            .iter()
            .any(|e| e.name == ACCOUNT.0 && e.value == ACCOUNT.1)
    );
    // The stored report is the printed one, but for the time it was read: object ages may have
    // grown by the seconds between the two reads.
    assert_eq!(first["report"]["nodes"], printed["nodes"]);
    assert_same_objects(&first["report"]["objects"], &printed["objects"]);
    let mut ids: BTreeSet<String> = [first["id"].as_str().unwrap().to_string()].into();
    let mut received = deployment.delivered_everywhere(&ids).await;

    // Periodic: two more reports two seconds apart, each delivered everywhere, then a clean stop.
    let mut periodic = volunteer_command(
        &cluster.kubeconfig,
        &[
            "--collector",
            &collector_url,
            "--period",
            "2s",
            "--initial-delay-max",
            "0s",
            "--extensions",
            &extensions,
        ],
    );
    periodic
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = periodic.spawn().unwrap();
    let stored = wait_for("two periodic reports", DEADLINE, || async {
        let stored = deployment.stored(&client).await;
        (stored.len() >= 3).then_some(stored)
    })
    .await;
    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the volunteer stops promptly on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    let stored = {
        // A period may have ended between the wait and the signal.
        let now = deployment.stored(&client).await;
        if now.len() > stored.len() {
            now
        } else {
            stored
        }
    };
    ids = stored
        .iter()
        .map(|report| report["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.len(),
        stored.len(),
        "every period has its own report id"
    );
    let times: HashSet<&str> = stored
        .iter()
        .map(|r| r["reportTime"].as_str().unwrap())
        .collect();
    assert_eq!(times.len(), stored.len());
    for report in &stored {
        spartakus_record(&report["report"]);
    }
    received.extend(deployment.delivered_everywhere(&ids).await);

    // Nothing identifying anywhere along the path: the store's answers, every sink's payloads,
    // the collector's log.
    assert_no_canaries(&serde_json::to_string(&stored).unwrap(), "the read API");
    for (text, sink) in received
        .iter()
        .zip(["Segment", "Woopra", "BigQuery"].iter().cycle())
    {
        assert_no_canaries(text, sink);
    }
    assert_no_canaries(
        &deployment.collector.log.lock().unwrap().join("\n"),
        "the collector's log",
    );

    // The store keeps them across a restart (no sinks this time: nothing is sent again).
    sigterm(&deployment.collector.child);
    deployment.collector.child.wait().await.unwrap();
    deployment.collector = collector(deployment.dir.path(), &[]).await;
    let kept: BTreeSet<String> = deployment
        .stored(&client)
        .await
        .iter()
        .map(|report| report["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, ids);
}
