//! The volunteer binary against the Kubernetes API stand-in (through a kubeconfig over loopback)
//! and a real collector: dry run, one-shot and periodic delivery, degradation, failure exits,
//! and the privacy canaries.

use std::time::{Duration, Instant};

use e2e::kube_standin::{
    CANARY, ClusterSize, Faults, KUBE_SYSTEM_UID, assert_no_canaries, cluster,
};
use e2e::{
    Collector, binary, free_address, get_json, run_captured as run, run_to_end, sigterm,
    volunteer_command as volunteer,
};
use serde_json::Value;
use tokio::process::Command;

const SIZE: ClusterSize = ClusterSize {
    nodes: 7,
    namespaces: 12,
    pods: 300,
};

fn expected_cluster_id() -> String {
    volunteer::identity::cluster_id_from_uid(KUBE_SYSTEM_UID).to_string()
}

#[tokio::test]
async fn dry_run_prints_a_valid_report_that_carries_no_identifying_data() {
    let cluster = cluster(SIZE, Faults::default()).await;
    let (code, stdout, stderr) = run(
        volunteer(&cluster.kubeconfig, &["--dry-run", "--page-size", "5"]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");

    // The privacy canaries: planted in every identifying field of the cluster, absent from the
    // report bytes and from the log.
    assert_no_canaries(&stdout, "the report");
    assert_no_canaries(&stderr, "the log");

    // The collector's own admission accepts it and changes nothing.
    let now = e2e::now();
    let admitted = common::admit(stdout.as_bytes(), common::ClusterIdRule::Uuid, now).unwrap();
    assert!(admitted.changes.is_empty(), "{:?}", admitted.changes);
    assert_eq!(admitted.unknown_fields, 0);
    assert_eq!(admitted.time.source, common::time::TimeSource::Client);
    let report = admitted.report;
    assert_eq!(report.cluster_id, expected_cluster_id());
    assert_eq!(report.master_version.as_deref(), Some("v1.31.2"));
    assert_eq!(report.nodes.len(), SIZE.nodes);
    assert_eq!(report.namespaces, Some(SIZE.namespaces as i64));
    let node = &report.nodes[1];
    assert_eq!(node.os_image.as_deref(), Some("amazonlinux 2023.5"));
    assert_eq!(node.kernel_version.as_deref(), Some("6.1.109-amzn2023"));
    assert_eq!(node.cloud_provider.as_deref(), Some("aws"));
    assert_eq!(node.kubelet_version.as_deref(), Some("v1.31.2-eks-a1b2c3d"));
    assert!(
        node.capacity
            .iter()
            .all(|c| c.resource != format!("{CANARY}.example/license"))
    );

    for (kind, stats) in report.objects.iter() {
        let expected = SIZE.count(kind.as_str()) as i64;
        assert_eq!(stats.total, expected, "{}", kind.as_str());
        let namespaces: i64 = stats.per_namespace.iter().sum();
        assert_eq!(namespaces, SIZE.namespaces as i64, "{}", kind.as_str());
    }
    let pods = report.objects.pods.as_ref().unwrap();
    let ages = pods.age_seconds.unwrap();
    assert!(ages.max <= 366 * 86_400 && ages.p50 >= 60, "{ages:?}");
    let skipped: Vec<(&str, &str)> = report
        .skipped
        .iter()
        .map(|s| (s.section.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped, [("objects.secrets", "disabled")]);

    // Paged: 7 nodes in pages of 5 take 2 requests, 300 pods 60.
    assert!(
        cluster.standin.requests() > 60 + 2,
        "{}",
        cluster.standin.requests()
    );
}

#[tokio::test]
async fn unreadable_sections_are_skipped_and_an_expired_list_is_read_again() {
    let faults = Faults {
        forbidden: ["deployments".to_string(), "nodes".to_string()].into(),
        not_found: ["ingresses".to_string()].into(),
        expire_first_continue: ["pods".to_string()].into(),
    };
    let cluster = cluster(SIZE, faults).await;
    let (code, stdout, stderr) = run(
        volunteer(
            &cluster.kubeconfig,
            &["--dry-run", "--page-size", "50", "--count-secrets"],
        ),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        report["skipped"],
        serde_json::json!([
            {"section": "nodes", "reason": "forbidden"},
            {"section": "objects.deployments", "reason": "forbidden"},
            {"section": "objects.ingresses", "reason": "notFound"},
        ])
    );
    assert!(report.get("nodes").is_none());
    assert_eq!(report["objects"]["pods"]["total"], SIZE.pods);
    assert_eq!(report["objects"]["secrets"]["total"], SIZE.count("secrets"));
    assert_no_canaries(&stdout, "the report");
}

#[tokio::test]
async fn one_shot_delivers_to_the_collector_and_periodic_keeps_reporting() {
    let cluster = cluster(SIZE, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(&binary("collector"), &dir.path().join("data"), &[]).await;
    let url = format!("http://{}", collector.public);
    let client = reqwest::Client::new();
    let reports_url = collector.admin_url(&format!(
        "/api/v1/clusters/{}/reports",
        expected_cluster_id()
    ));

    let (code, _, stderr) = run(
        volunteer(&cluster.kubeconfig, &["--collector", &url, "--period", "0"]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("report delivered"), "{stderr}");
    let page = get_json(&client, &reports_url).await;
    let reports = page["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["timeSource"], "client");
    assert_no_canaries(&reports[0].to_string(), "the stored report");

    // Periodic: two more reports within a few seconds, metrics that say so, then a prompt,
    // clean stop on SIGTERM.
    let metrics_address = free_address();
    let mut periodic = volunteer(
        &cluster.kubeconfig,
        &[
            "--collector",
            &url,
            "--period",
            "2s",
            "--initial-delay-max",
            "0s",
            "--metrics-listen",
            &metrics_address,
        ],
    );
    periodic
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = periodic.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = get_json(&client, &reports_url).await;
        if page["reports"].as_array().unwrap().len() >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the periodic volunteer did not report twice"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let health = client
        .get(format!("http://{metrics_address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let metrics_url = format!("http://{metrics_address}/metrics");
    let metrics = e2e::get_text(&client, &metrics_url).await;
    assert!(
        metrics.contains("volunteer_consecutive_failures 0"),
        "{metrics}"
    );
    for zero in [
        "volunteer_reports_total{outcome=\"delivered\"} 0",
        "volunteer_api_requests_total 0",
        "volunteer_last_success_timestamp_seconds 0",
    ] {
        assert!(!metrics.contains(zero), "{zero} in:\n{metrics}");
    }

    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the volunteer stops promptly on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn sigterm_interrupts_a_backoff() {
    let cluster = cluster(SIZE, Faults::default()).await;
    let url = format!("http://{}", free_address());
    let mut command = volunteer(
        &cluster.kubeconfig,
        &["--collector", &url, "--period", "0", "--retry-for", "10m"],
    );
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    // Wait until the first attempt failed and a backoff began.
    let stderr = tokio::io::BufReader::new(child.stderr.take().unwrap());
    let mut lines = tokio::io::AsyncBufReadExt::lines(stderr);
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the volunteer logs a failed delivery")
            .unwrap()
            .expect("the volunteer is still running");
        if line.contains("delivery failed") {
            break;
        }
    }
    let signalled = Instant::now();
    sigterm(&child);
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .expect("the volunteer stops promptly in a backoff")
        .unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(5));
    // A one-shot run stopped before delivering did not deliver.
    assert_eq!(status.code(), Some(1));
}

#[tokio::test]
async fn one_shot_exits_non_zero_when_the_report_cannot_be_delivered() {
    let cluster = cluster(SIZE, Faults::default()).await;
    // Nothing listens there: network errors are retried until --retry-for runs out.
    let url = format!("http://{}", free_address());
    let started = Instant::now();
    let (code, _, stderr) = run(
        volunteer(
            &cluster.kubeconfig,
            &["--collector", &url, "--period", "0", "--retry-for", "4s"],
        ),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("could not be delivered"), "{stderr}");
    assert!(stderr.contains("delivery failed"), "retried: {stderr}");
    assert!(
        stderr.to_lowercase().contains("connection refused"),
        "the cause is said: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
}

#[tokio::test]
async fn a_refused_report_is_not_retried() {
    let cluster = cluster(SIZE, Faults::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "ingest-secret").unwrap();
    let collector = Collector::start(
        &binary("collector"),
        &dir.path().join("data"),
        &["--ingest-token-file", token.to_str().unwrap()],
    )
    .await;
    let url = format!("http://{}", collector.public);
    let started = Instant::now();
    let (code, _, stderr) = run(
        volunteer(&cluster.kubeconfig, &["--collector", &url, "--period", "0"]),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("refused the report"), "{stderr}");
    assert!(
        stderr.contains("a valid bearer token is required"),
        "the collector's error is logged: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "not retried");

    // With the token it goes through.
    let (code, _, stderr) = run(
        volunteer(
            &cluster.kubeconfig,
            &[
                "--collector",
                &url,
                "--period",
                "0",
                "--collector-token-file",
                token.to_str().unwrap(),
            ],
        ),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn bad_flags_are_clear_errors() {
    let mut command = Command::new(binary("volunteer"));
    command.args(["--dry-run", "--cluster-id", "not-a-uuid"]);
    let (code, stderr) = run_to_end(command, Duration::from_secs(10)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a UUID"), "{stderr}");

    let (code, stderr) =
        run_to_end(Command::new(binary("volunteer")), Duration::from_secs(10)).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--collector is required"), "{stderr}");
}

#[tokio::test]
async fn print_rbac_prints_a_cluster_role() {
    let mut command = Command::new(binary("volunteer"));
    command.arg("--print-rbac");
    let (code, stdout, _) = run(command, Duration::from_secs(10)).await;
    assert_eq!(code, Some(0));
    let role: k8s_openapi::api::rbac::v1::ClusterRole = serde_json::from_str(&stdout).unwrap();
    assert_eq!(role.metadata.name.as_deref(), Some("volunteer"));
    assert!(!stdout.contains("secrets"));
}
