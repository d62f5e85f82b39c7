//! Durability of the collector process: `kill -9` mid-stream loses no acknowledged report and
//! stores none twice, on the embedded store and on PostgreSQL; a corrupt or unwritable store is a clear startup error, not a panic.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use e2e::database::TestDatabase;
use e2e::{
    Collector, WITHOUT_RATE_LIMITS, binary, collector_command, expect_startup_error, now,
    post_reports,
};
use serde_json::Value;

const CLUSTERS: usize = 300;
const REPORTS_PER_CLUSTER: i64 = 10;

async fn stored_ids(client: &reqwest::Client, collector: &Collector, cluster: &str) -> Vec<String> {
    let url = collector.admin_url(&format!("/api/v1/clusters/{cluster}/reports?limit=1000"));
    let response = client.get(&url).send().await.unwrap();
    if response.status() == 404 {
        return Vec::new();
    }
    let page: Value = response.json().await.unwrap();
    assert!(page.get("next").is_none());
    page["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acknowledged_report() {
    kill_9_mid_stream(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acknowledged_report_on_postgres() {
    let Some(database) = TestDatabase::create("kill_9_mid_stream on postgres").await else {
        return;
    };
    kill_9_mid_stream(&["--database-url", &database.url]).await;
}

/// Kills the collector (started with `store_args`) mid-stream and restarts it on the same store.
async fn kill_9_mid_stream(store_args: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args: Vec<&str> = WITHOUT_RATE_LIMITS
        .iter()
        .chain(store_args)
        .copied()
        .collect();
    let mut collector = Collector::start(&binary("collector"), &data, &args).await;
    let client = reqwest::Client::new();
    let url = collector.public_url("/api/v1");

    let clusters: Vec<String> = (0..CLUSTERS)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let start = now();
    let all: Vec<(String, i64)> = (0..REPORTS_PER_CLUSTER)
        .flat_map(|i| clusters.iter().map(move |c| (c.clone(), start - i)))
        .collect();
    let total = all.len();
    let acked_count = Arc::new(AtomicUsize::new(0));

    let sender = {
        let (client, url, acked_count, all) = (
            client.clone(),
            url.clone(),
            acked_count.clone(),
            all.clone(),
        );
        tokio::spawn(async move { post_reports(&client, &url, all, 64, acked_count).await })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked_count.load(Ordering::SeqCst) < total / 3 {
        assert!(
            Instant::now() < deadline,
            "reports are not being acknowledged"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    collector.child.start_kill().unwrap(); // SIGKILL
    collector.child.wait().await.unwrap();
    let acked = sender.await.unwrap();
    assert!(
        acked.len() >= total / 3 && acked.len() < total,
        "killed mid-stream: {} of {total}",
        acked.len()
    );

    let restarted = Collector::start(&binary("collector"), &data, &args).await;
    let mut stored: HashMap<String, Vec<String>> = HashMap::new();
    for cluster in &clusters {
        let ids = stored_ids(&client, &restarted, cluster).await;
        let unique: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            unique.len(),
            ids.len(),
            "a report of {cluster} is stored twice"
        );
        stored.insert(cluster.clone(), ids);
    }
    for (cluster, timestamp) in &acked {
        let id = common::id::for_time(cluster, *timestamp).to_string();
        assert!(
            stored[cluster].contains(&id),
            "acknowledged report {id} was lost"
        );
    }
    let stored_total: usize = stored.values().map(Vec::len).sum();
    assert!(stored_total >= acked.len() && stored_total <= total);

    // Sending everything again stores each missing report once and nothing twice.
    let again = post_reports(
        &client,
        &restarted.public_url("/api/v1"),
        all,
        32,
        Default::default(),
    )
    .await;
    assert_eq!(again.len(), total, "every resend is answered 204");
    for cluster in &clusters {
        assert_eq!(
            stored_ids(&client, &restarted, cluster).await.len(),
            REPORTS_PER_CLUSTER as usize
        );
    }
}

#[tokio::test]
async fn a_corrupt_store_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("collector.sqlite3"),
        "this is not a database\n".repeat(4096),
    )
    .unwrap();
    let stderr = expect_startup_error(collector_command(&binary("collector"), &data)).await;
    assert!(
        stderr.contains("corrupt or not a collector store"),
        "{stderr}"
    );
    assert!(stderr.contains("collector.sqlite3"), "{stderr}");
}

#[tokio::test]
async fn a_data_dir_that_is_a_file_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(&data, "not a directory").unwrap();
    let stderr = expect_startup_error(collector_command(&binary("collector"), &data)).await;
    assert!(stderr.contains("cannot use data directory"), "{stderr}");
}

/// Root writes through file permissions, so as root the collector runs as `nobody` from a copy
/// of the binary in a world-readable directory; either way the store it finds is read-only.
#[tokio::test]
async fn a_read_only_store_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    // A healthy store first.
    let mut first = Collector::start(&binary("collector"), &data, &[]).await;
    first.child.start_kill().unwrap();
    first.child.wait().await.unwrap();

    let probe = dir.path().join("whoami");
    std::fs::write(&probe, "").unwrap();
    let as_root = std::fs::metadata(&probe).unwrap().uid() == 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o555)).unwrap();

    let program = dir.path().join("collector");
    std::fs::copy(binary("collector"), &program).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut command = collector_command(&program, &data);
    if as_root {
        command.uid(65534).gid(65534);
    }
    let stderr = expect_startup_error(command).await;
    assert!(stderr.contains("not writable"), "{stderr}");
}
