//! The validation rules, each breaking one field.

use super::*;
use crate::report::{
    AgePercentiles, Extension, Node, OBJECTS_PER_NAMESPACE_BUCKETS, ObjectKind, ObjectStats,
    Resource, Skipped,
};

fn valid() -> Report {
    Report {
        version: "v1.0.0".into(),
        cluster_id: "2f9c93d3-156c-47aa-8802-578ffca9b50e".into(),
        nodes: vec![Node {
            id: "c8863d09ecc5be8d9791f72acd275fc2".into(),
            capacity: vec![Resource {
                resource: "cpu".into(),
                value: "4".into(),
            }],
            ..Node::default()
        }],
        ..Report::default()
    }
}

fn fields(report: &Report, rule: ClusterIdRule) -> Vec<String> {
    match validate(report, rule) {
        Ok(()) => vec![],
        Err(problems) => problems.0.into_iter().map(|p| p.field).collect(),
    }
}

#[test]
fn a_valid_report_passes() {
    assert_eq!(fields(&valid(), ClusterIdRule::Uuid), Vec::<String>::new());
}

#[test]
fn each_rule_names_its_field() {
    type Mutation = fn(&mut Report);
    let long = "x".repeat(MAX_STRING_CHARS + 1);
    let cases: Vec<(&str, Mutation, &str)> = vec![
        ("missing version", |r| r.version.clear(), "version"),
        ("missing cluster id", |r| r.cluster_id.clear(), "clusterID"),
        (
            "non-uuid cluster id",
            |r| r.cluster_id = "my-cluster".into(),
            "clusterID",
        ),
        (
            "nil uuid",
            |r| r.cluster_id = "00000000-0000-0000-0000-000000000000".into(),
            "clusterID",
        ),
        (
            "control chars",
            |r| r.master_version = Some("v1\n".into()),
            "masterVersion",
        ),
        (
            "timestamp control chars",
            |r| r.timestamp = "\u{7}".into(),
            "timestamp",
        ),
        ("empty node id", |r| r.nodes[0].id.clear(), "nodes[0].id"),
        (
            "empty capacity value",
            |r| r.nodes[0].capacity[0].value.clear(),
            "nodes[0].capacity[0].value",
        ),
        (
            "negative namespaces",
            |r| r.namespaces = Some(-1),
            "namespaces",
        ),
        (
            "huge namespaces",
            |r| r.namespaces = Some(MAX_INTEGER + 1),
            "namespaces",
        ),
        (
            "too many capacity entries",
            |r| r.nodes[0].capacity = vec![Resource::default(); MAX_CAPACITY_ENTRIES + 1],
            "nodes[0].capacity",
        ),
        (
            "too many extensions",
            |r| r.extensions = vec![Extension::default(); MAX_EXTENSIONS + 1],
            "extensions",
        ),
        (
            "too many nodes",
            |r| r.nodes = vec![r.nodes[0].clone(); MAX_NODES + 1],
            "nodes",
        ),
        (
            "short histogram",
            |r| {
                r.objects.set(
                    ObjectKind::Pods,
                    Some(ObjectStats {
                        total: 1,
                        per_namespace: vec![1],
                        age_seconds: None,
                    }),
                )
            },
            "objects.pods.perNamespace",
        ),
        (
            "negative bucket",
            |r| {
                let mut buckets = vec![0; OBJECTS_PER_NAMESPACE_BUCKETS];
                buckets[3] = -2;
                r.objects.set(
                    ObjectKind::Jobs,
                    Some(ObjectStats {
                        total: 1,
                        per_namespace: buckets,
                        age_seconds: None,
                    }),
                )
            },
            "objects.jobs.perNamespace[3]",
        ),
        (
            "decreasing percentiles",
            |r| {
                r.objects.set(
                    ObjectKind::Secrets,
                    Some(ObjectStats {
                        total: 1,
                        per_namespace: vec![0; OBJECTS_PER_NAMESPACE_BUCKETS],
                        age_seconds: Some(AgePercentiles {
                            p50: 10,
                            p90: 5,
                            p99: 20,
                            max: 30,
                        }),
                    }),
                )
            },
            "objects.secrets.ageSeconds",
        ),
        (
            "empty skipped reason",
            |r| {
                r.skipped = vec![Skipped {
                    section: "nodes".into(),
                    reason: String::new(),
                }]
            },
            "skipped[0].reason",
        ),
    ];
    for (name, mutate, field) in cases {
        let mut report = valid();
        mutate(&mut report);
        assert_eq!(
            fields(&report, ClusterIdRule::Uuid),
            vec![field.to_string()],
            "{name}"
        );
    }
    let mut report = valid();
    report.nodes[0].kubelet_version = Some(long);
    assert_eq!(
        fields(&report, ClusterIdRule::Uuid),
        vec!["nodes[0].kubeletVersion"]
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let mut report = valid();
    report.version.clear();
    report.nodes[0].id.clear();
    report.nodes[0].os_image = Some("\u{0}".into());
    report.namespaces = Some(-5);
    assert_eq!(
        fields(&report, ClusterIdRule::Uuid),
        vec!["version", "nodes[0].id", "nodes[0].osImage", "namespaces"]
    );
}

#[test]
fn problem_lists_are_bounded() {
    let mut report = valid();
    report.nodes = vec![Node::default(); 1000];
    let problems = validate(&report, ClusterIdRule::Uuid).unwrap_err();
    assert_eq!(problems.0.len(), MAX_PROBLEMS + 1);
    assert!(problems.0.last().unwrap().message.contains("more problems"));
}

#[test]
fn cluster_id_rules() {
    let cases = [
        ("2f9c93d3-156c-47aa-8802-578ffca9b50e", true, true),
        ("2F9C93D3-156C-47AA-8802-578FFCA9B50E", true, true),
        ("1E679954-3666-4275-ACB2", false, true),
        ("prod.eu-west_1", false, true),
        ("has space", false, false),
        ("ünïcode", false, false),
    ];
    for (id, uuid_ok, relaxed_ok) in cases {
        let mut report = valid();
        report.cluster_id = id.into();
        assert_eq!(
            validate(&report, ClusterIdRule::Uuid).is_ok(),
            uuid_ok,
            "{id}"
        );
        assert_eq!(
            validate(&report, ClusterIdRule::Relaxed).is_ok(),
            relaxed_ok,
            "{id}"
        );
    }
    let mut report = valid();
    report.cluster_id = "a".repeat(MAX_RELAXED_CLUSTER_ID + 1);
    assert!(validate(&report, ClusterIdRule::Relaxed).is_err());
}

#[test]
fn length_counts_characters_not_bytes() {
    assert_eq!(string_problem(&"é".repeat(256), 256), None);
    assert!(string_problem(&"é".repeat(257), 256).is_some());
}
