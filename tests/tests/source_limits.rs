//! Per-source limits of the collector binary over real TCP: one address gets its burst of
//! reports and a few new cluster ids an hour (known clusters always pass, and are known again
//! after a restart), `X-Forwarded-For` counts only through a trusted proxy, refusals are 429 with
//! `Retry-After` and say which limit, and no address reaches the log.

use std::time::Duration;

use e2e::{Collector, binary, get_text, report, sigterm};

const TIME: i64 = 1_763_737_200;

struct Sender {
    client: reqwest::Client,
    url: String,
}

impl Sender {
    /// Posts a report of `cluster` as if from `address`; the status and the error, if any.
    async fn post(&self, cluster: &str, address: &str, at: i64) -> (u16, String) {
        let answer = self
            .client
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("X-Forwarded-For", address)
            .body(report(cluster, at).to_string())
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        if status == 429 {
            assert!(answer.headers().contains_key("retry-after"));
        }
        let text = answer.text().await.unwrap();
        (status, text)
    }
}

fn cluster() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn start(data: &std::path::Path) -> Collector {
    let flags = [
        "--trusted-proxies",
        "127.0.0.1/32",
        "--source-new-clusters-per-hour",
        "3",
        "--source-rate-limit-per-minute",
        "60",
        "--source-rate-limit-burst",
        "8",
    ];
    Collector::start(&binary("collector"), data, &flags).await
}

#[tokio::test]
async fn one_source_cannot_bring_random_cluster_ids_or_flood_and_others_are_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut collector = start(&data).await;
    let sender = Sender {
        client: reqwest::Client::new(),
        url: collector.public_url("/api/v1"),
    };

    // Three new cluster ids an hour from one address; the fourth is refused.
    let attacker = "203.0.113.77";
    let brought: Vec<String> = (0..3).map(|_| cluster()).collect();
    for id in &brought {
        assert_eq!(sender.post(id, attacker, TIME).await.0, 204);
    }
    let (status, error) = sender.post(&cluster(), attacker, TIME).await;
    assert_eq!(status, 429);
    assert!(
        error.contains("too many new cluster ids from this address"),
        "{error}"
    );
    // Clusters it brought still report; another address has an allowance of its own.
    assert_eq!(sender.post(&brought[0], attacker, TIME + 60).await.0, 204);
    assert_eq!(sender.post(&cluster(), "198.51.100.1", TIME).await.0, 204);

    // A burst of 8 reports from one address, then the per-minute rate.
    let busy = "198.51.100.2";
    let known = cluster();
    for i in 0..8 {
        assert_eq!(
            sender.post(&known, busy, TIME + i).await.0,
            204,
            "report {i}"
        );
    }
    let (status, error) = sender.post(&known, busy, TIME + 8).await;
    assert_eq!(status, 429);
    assert!(
        error.contains("too many reports from this address"),
        "{error}"
    );

    let metrics = get_text(&sender.client, &collector.admin_url("/metrics")).await;
    for line in [
        "collector_rate_limited_total{limit=\"source_new_clusters\"} 1\n",
        "collector_rate_limited_total{limit=\"source\"} 1\n",
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }

    // After a restart, the clusters in the store are known: bringing them again costs nothing.
    sigterm(&collector.child);
    let _ = tokio::time::timeout(Duration::from_secs(20), collector.child.wait()).await;
    let log = collector.log.lock().unwrap().join("\n");
    for address in [attacker, busy, "198.51.100.1"] {
        assert!(!log.contains(address), "{address} reached the log:\n{log}");
    }
    let collector = start(&data).await;
    let sender = Sender {
        client: reqwest::Client::new(),
        url: collector.public_url("/api/v1"),
    };
    let newcomer = "192.0.2.50";
    for id in brought.iter().chain([&known]) {
        assert_eq!(sender.post(id, newcomer, TIME + 120).await.0, 204);
    }
    for _ in 0..3 {
        assert_eq!(sender.post(&cluster(), newcomer, TIME).await.0, 204);
    }
    assert_eq!(sender.post(&cluster(), newcomer, TIME).await.0, 429);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_not_believed() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--source-new-clusters-per-hour", "2"];
    let collector = Collector::start(&binary("collector"), &dir.path().join("data"), &flags).await;
    let sender = Sender {
        client: reqwest::Client::new(),
        url: collector.public_url("/api/v1"),
    };
    // Each claims another address, but 127.0.0.1 is not a trusted proxy: one source.
    assert_eq!(sender.post(&cluster(), "192.0.2.1", TIME).await.0, 204);
    assert_eq!(sender.post(&cluster(), "192.0.2.2", TIME).await.0, 204);
    assert_eq!(sender.post(&cluster(), "192.0.2.3", TIME).await.0, 429);
}
