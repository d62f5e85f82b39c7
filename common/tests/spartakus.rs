//! Spartakus wire compatibility: its published example reports are accepted (with their odd
//! timestamps). That our reports decode as Spartakus v1 records is tested beside the Spartakus
//! record type, in `tests/tests/spartakus.rs`.

use common::report::Report;
use common::time::TimeSource;
use common::{ClusterIdRule, admit};

const NOW: i64 = 1_763_737_200;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn spartakus_readme_example_is_accepted_and_reduced() {
    let admitted = admit(&fixture("spartakus-readme.json"), ClusterIdRule::Uuid, NOW).unwrap();
    // "867530909031976" is not unix seconds: the receive time becomes the report's time.
    assert_eq!(admitted.time.source, TimeSource::Received);
    assert_eq!(admitted.report.timestamp, NOW.to_string());
    assert_eq!(admitted.report.master_version.as_deref(), Some("v1.3.5"));
    assert_eq!(admitted.report.nodes.len(), 2);
    let node = &admitted.report.nodes[0];
    assert_eq!(node.id, "c8863d09ecc5be8d9791f72acd275fc2");
    assert_eq!(node.os_image.as_deref(), Some("debian 7"));
    assert_eq!(node.kernel_version.as_deref(), Some("3.16.0"));
    assert_eq!(
        node.container_runtime_version.as_deref(),
        Some("docker://1.11.2")
    );
    assert_eq!(node.cloud_provider.as_deref(), Some("aws"));
    let resources: Vec<_> = node.capacity.iter().map(|r| r.resource.as_str()).collect();
    assert_eq!(
        resources,
        ["alpha.kubernetes.io/nvidia-gpu", "cpu", "memory", "pods"]
    );
    assert_eq!(admitted.unknown_fields, 0);
}

#[test]
fn spartakus_walkthrough_example_needs_the_relaxed_cluster_id_rule() {
    let body = fixture("spartakus-walkthrough.json");
    let err = admit(&body, ClusterIdRule::Uuid, NOW).unwrap_err();
    assert_eq!(err.problems().len(), 1);
    assert_eq!(err.problems()[0].field, "clusterID");

    let admitted = admit(&body, ClusterIdRule::Relaxed, NOW).unwrap();
    assert_eq!(admitted.report.cluster_id, "1e679954-3666-4275-acb2");
    assert_eq!(admitted.time.source, TimeSource::Received);
    let node = &admitted.report.nodes[0];
    assert_eq!(node.os_image.as_deref(), Some("docker-desktop"));
    assert_eq!(node.kernel_version.as_deref(), Some("4.9.75-linuxkit"));
    assert_eq!(node.cloud_provider, None);
}

#[test]
fn spartakus_extensions_with_bad_keys_are_dropped_not_fatal() {
    let admitted = admit(
        &fixture("spartakus-extensions.json"),
        ClusterIdRule::Uuid,
        NOW,
    )
    .unwrap();
    let names: Vec<_> = admitted
        .report
        .extensions
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["example.com/environment"]);
    assert_eq!(admitted.changes.dropped_extensions.len(), 1);
    assert_eq!(admitted.changes.dropped_extensions[0].0, "Deployed By");
    assert_eq!(
        admitted.report.nodes[0].os_image.as_deref(),
        Some("ubuntu 16.04")
    );
    assert_eq!(
        admitted.report.nodes[0].kernel_version.as_deref(),
        Some("4.4.0-aws")
    );
}

#[test]
fn our_full_example_passes_unchanged() {
    let body = fixture("full-report.json");
    let admitted = admit(&body, ClusterIdRule::Uuid, NOW).unwrap();
    assert!(admitted.changes.is_empty(), "{:?}", admitted.changes);
    assert_eq!(admitted.time.source, TimeSource::Client);
    let original: Report = serde_json::from_slice(&body).unwrap();
    assert_eq!(admitted.report, original);
}
