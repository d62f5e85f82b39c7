//! The outage test: Segment is down while thousands of reports arrive, the collector is killed
//! (`kill -9`) while ingesting and again while draining, and when Segment is back every accepted
//! report reaches it at least once; a stand-in that deduplicates by `messageId`, as Segment does,
//! ends with exactly the accepted set.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use e2e::sink_standins::Segment;
use e2e::{Collector, binary, get_json, metric, now, post_reports, wait_for, without_rate_limits};

const WRITE_KEY: &str = "wk_outage_test";
const CLUSTERS: usize = 600;
const REPORTS_PER_CLUSTER: i64 = 5;

async fn start(data: &Path, config: &str) -> Collector {
    Collector::start(
        &binary("collector"),
        data,
        &without_rate_limits(&["--delivery-max-backoff", "1s", "--config", config]),
    )
    .await
}

async fn kill_9(collector: &mut Collector) {
    collector.child.start_kill().unwrap();
    collector.child.wait().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_and_two_crashes_lose_no_report_and_segment_ends_with_exactly_the_accepted_set() {
    let (segment, url) = Segment::start(WRITE_KEY).await;
    segment.script.set_down(true);
    let dir = tempfile::tempdir().unwrap();
    let config = e2e::write_sink_config(
        dir.path(),
        WRITE_KEY,
        &e2e::segment_sink_table(dir.path(), &url),
    );
    let data = dir.path().join("data");
    let client = reqwest::Client::new();

    let start_time = now();
    let all: Vec<(String, i64)> = (0..CLUSTERS)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .flat_map(|cluster| {
            (0..REPORTS_PER_CLUSTER).map(move |i| (cluster.clone(), start_time - i))
        })
        .collect();
    let total = all.len();
    let expected: HashSet<String> = all
        .iter()
        .map(|(cluster, time)| common::id::for_time(cluster, *time).to_string())
        .collect();
    assert_eq!(expected.len(), total);

    // 1. Segment is down; the collector is killed a third of the way through the reports.
    let mut collector = start(&data, &config).await;
    let acked_count = Arc::new(AtomicUsize::new(0));
    let sender = {
        let (client, url, acked_count, all) = (
            client.clone(),
            collector.public_url("/api/v1"),
            acked_count.clone(),
            all.clone(),
        );
        tokio::spawn(async move { post_reports(&client, &url, all, 32, acked_count).await })
    };
    wait_for(
        "a third of the reports to be accepted",
        Duration::from_secs(120),
        || {
            let acked = acked_count.load(Ordering::SeqCst);
            async move { (acked >= total / 3).then_some(()) }
        },
    )
    .await;
    kill_9(&mut collector).await;
    let acked_first = sender.await.unwrap();
    assert!(acked_first.len() < total, "killed mid-stream");
    assert!(segment.events().is_empty(), "Segment was down");

    // 2. Restarted, still without Segment: every report is sent (again); all are accepted.
    let collector = start(&data, &config).await;
    let acked = post_reports(
        &client,
        &collector.public_url("/api/v1"),
        all.clone(),
        32,
        Default::default(),
    )
    .await;
    assert_eq!(acked.len(), total, "every report is accepted");
    let labels = [("sink", "segment"), ("type", "segment")];
    wait_for("the outbox gauge", Duration::from_secs(30), || {
        let client = client.clone();
        let url = collector.admin_url("/metrics");
        async move {
            let text = get_text(&client, &url).await;
            (metric(&text, "collector_outbox_depth", &labels) == Some(total as f64)).then_some(())
        }
    })
    .await;

    // 3. Segment is back, slow to answer; the collector is killed while it drains, so that some
    // batches reached Segment without their answer reaching the collector.
    segment.script.set_latency(Duration::from_millis(300));
    segment.script.set_down(false);
    let mut collector = collector;
    wait_for(
        "Segment to receive a first batch",
        Duration::from_secs(60),
        || async { (!segment.batches().is_empty()).then_some(()) },
    )
    .await;
    kill_9(&mut collector).await;
    let delivered_before_crash = segment.message_ids().len();
    assert!(
        delivered_before_crash < total,
        "killed while draining: {delivered_before_crash} of {total} delivered"
    );

    // 4. Restarted once more: the rest drains.
    segment.script.set_latency(Duration::ZERO);
    let collector = start(&data, &config).await;
    wait_for(
        "Segment to have every accepted report",
        Duration::from_secs(120),
        || async { (segment.message_ids().len() >= total).then_some(()) },
    )
    .await;
    assert_eq!(
        segment.message_ids(),
        expected,
        "exactly the accepted set, none missing"
    );
    let events = segment.events().len();
    assert!(events >= total);
    assert!(segment.refused().is_empty(), "{:?}", segment.refused());
    println!(
        "{total} reports: {events} events sent ({} resent after the crash while draining), \
         {} batches",
        events - total,
        segment.batches().len()
    );
    wait_for("an empty outbox", Duration::from_secs(30), || {
        let client = client.clone();
        let url = collector.admin_url("/api/v1/deliveries?sink=segment");
        async move {
            let page = get_json(&client, &url).await;
            page["deliveries"]
                .as_array()
                .unwrap()
                .is_empty()
                .then_some(())
        }
    })
    .await;
}

async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}
