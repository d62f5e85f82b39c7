//! Strict validation of a decoded report: every problem, each with its field path.

use serde::Serialize;
use uuid::Uuid;

use crate::report::{OBJECTS_PER_NAMESPACE_BUCKETS, ObjectStats, Report};

/// Longest string accepted in any field but an extension value, in characters.
pub const MAX_STRING_CHARS: usize = 256;
/// Most nodes in one report: three times Kubernetes' supported maximum of 5,000.
pub const MAX_NODES: usize = 15_000;
/// Most capacity entries on one node.
pub const MAX_CAPACITY_ENTRIES: usize = 64;
/// Most extensions in one report.
pub const MAX_EXTENSIONS: usize = 100;
/// Most skipped-section entries in one report.
pub const MAX_SKIPPED: usize = 64;
/// Largest integer accepted anywhere: 2^53 - 1, exact in every JSON reader and in BigQuery.
pub const MAX_INTEGER: i64 = (1 << 53) - 1;
/// Longest relaxed (non-UUID) cluster id.
pub const MAX_RELAXED_CLUSTER_ID: usize = 128;
/// Most problems listed for one report; the rest are summarised in a last entry.
pub const MAX_PROBLEMS: usize = 100;

/// What a valid `clusterID` looks like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClusterIdRule {
    /// A UUID, as Spartakus recommended (the default).
    #[default]
    Uuid,
    /// 1-128 characters of `[A-Za-z0-9._-]`, for fleets that used other ids.
    Relaxed,
}

/// One thing wrong with a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// Path of the offending field, e.g. `nodes[3].kubeletVersion`; empty for the whole document.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub message: String,
}

impl Problem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one report (at most [`MAX_PROBLEMS`] + 1 entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(field, message));
    }

    /// Records `problem`, naming the field only when there is one (paths are built lazily).
    fn check(&mut self, problem: Option<String>, field: impl FnOnce() -> String) {
        if let Some(message) = problem {
            self.push(field(), message);
        }
    }
}

/// Checks a report against the format's limits; an `Err` lists every problem found.
///
/// Extensions are only counted here: a single bad extension is dropped by the sanitizer, not
/// rejected, so that one typo does not lose a whole report.
pub fn validate(report: &Report, rule: ClusterIdRule) -> Result<(), Problems> {
    let mut problems = Problems::default();
    let p = &mut problems;

    p.check(required(&report.version), || "version".into());
    p.check(optional(&report.timestamp), || "timestamp".into());
    p.check(cluster_id_problem(&report.cluster_id, rule), || {
        "clusterID".into()
    });
    if let Some(master) = &report.master_version {
        p.check(optional(master), || "masterVersion".into());
    }

    if report.nodes.len() > MAX_NODES {
        p.push(
            "nodes",
            format!(
                "{} nodes; at most {MAX_NODES} are accepted",
                report.nodes.len()
            ),
        );
    } else {
        for (i, node) in report.nodes.iter().enumerate() {
            p.check(required(&node.id), || format!("nodes[{i}].id"));
            for (name, value) in [
                ("operatingSystem", &node.operating_system),
                ("osImage", &node.os_image),
                ("kernelVersion", &node.kernel_version),
                ("architecture", &node.architecture),
                ("containerRuntimeVersion", &node.container_runtime_version),
                ("kubeletVersion", &node.kubelet_version),
                ("cloudProvider", &node.cloud_provider),
            ] {
                if let Some(value) = value {
                    p.check(optional(value), || format!("nodes[{i}].{name}"));
                }
            }
            if node.capacity.len() > MAX_CAPACITY_ENTRIES {
                p.push(
                    format!("nodes[{i}].capacity"),
                    format!(
                        "{} entries; at most {MAX_CAPACITY_ENTRIES} are accepted",
                        node.capacity.len()
                    ),
                );
            } else {
                for (j, entry) in node.capacity.iter().enumerate() {
                    p.check(required(&entry.resource), || {
                        format!("nodes[{i}].capacity[{j}].resource")
                    });
                    p.check(required(&entry.value), || {
                        format!("nodes[{i}].capacity[{j}].value")
                    });
                }
            }
            if p.0.len() > MAX_PROBLEMS {
                break;
            }
        }
    }

    if report.extensions.len() > MAX_EXTENSIONS {
        p.push(
            "extensions",
            format!(
                "{} extensions; at most {MAX_EXTENSIONS} are accepted",
                report.extensions.len()
            ),
        );
    }

    if let Some(namespaces) = report.namespaces {
        p.check(integer_problem(namespaces), || "namespaces".into());
    }
    for (kind, stats) in report.objects.iter() {
        object_stats(p, kind.as_str(), stats);
    }

    if report.skipped.len() > MAX_SKIPPED {
        p.push(
            "skipped",
            format!(
                "{} entries; at most {MAX_SKIPPED} are accepted",
                report.skipped.len()
            ),
        );
    } else {
        for (i, skipped) in report.skipped.iter().enumerate() {
            p.check(required(&skipped.section), || {
                format!("skipped[{i}].section")
            });
            p.check(required(&skipped.reason), || format!("skipped[{i}].reason"));
        }
    }

    if problems.0.is_empty() {
        Ok(())
    } else {
        if problems.0.len() > MAX_PROBLEMS {
            let more = problems.0.len() - MAX_PROBLEMS;
            problems.0.truncate(MAX_PROBLEMS);
            problems.push("", format!("and {more} more problems not listed"));
        }
        Err(problems)
    }
}

fn cluster_id_problem(id: &str, rule: ClusterIdRule) -> Option<String> {
    if id.is_empty() {
        return Some("required".into());
    }
    match rule {
        ClusterIdRule::Uuid => match Uuid::try_parse(id) {
            Ok(uuid) if uuid.is_nil() => Some("must not be the nil UUID".into()),
            Ok(_) => None,
            Err(_) => Some(
                "must be a UUID (e.g. the output of uuidgen); this collector does not accept \
                 other ids"
                    .into(),
            ),
        },
        ClusterIdRule::Relaxed => {
            let ok = id.len() <= MAX_RELAXED_CLUSTER_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
            (!ok)
                .then(|| format!("must be 1-{MAX_RELAXED_CLUSTER_ID} characters of [A-Za-z0-9._-]"))
        }
    }
}

fn object_stats(p: &mut Problems, kind: &str, stats: &ObjectStats) {
    p.check(integer_problem(stats.total), || {
        format!("objects.{kind}.total")
    });
    if stats.per_namespace.len() != OBJECTS_PER_NAMESPACE_BUCKETS {
        p.push(
            format!("objects.{kind}.perNamespace"),
            format!(
                "must have exactly {OBJECTS_PER_NAMESPACE_BUCKETS} buckets, has {}",
                stats.per_namespace.len()
            ),
        );
    }
    for (i, count) in stats.per_namespace.iter().enumerate() {
        p.check(integer_problem(*count), || {
            format!("objects.{kind}.perNamespace[{i}]")
        });
    }
    if let Some(age) = &stats.age_seconds {
        let fields = [
            ("p50", age.p50),
            ("p90", age.p90),
            ("p99", age.p99),
            ("max", age.max),
        ];
        for (name, value) in fields {
            p.check(integer_problem(value), || {
                format!("objects.{kind}.ageSeconds.{name}")
            });
        }
        if !fields.windows(2).all(|pair| pair[0].1 <= pair[1].1) {
            p.push(
                format!("objects.{kind}.ageSeconds"),
                "percentiles must not decrease: p50 <= p90 <= p99 <= max",
            );
        }
    }
}

fn integer_problem(value: i64) -> Option<String> {
    (!(0..=MAX_INTEGER).contains(&value))
        .then(|| format!("{value} is out of range; integers must be between 0 and {MAX_INTEGER}"))
}

fn required(value: &str) -> Option<String> {
    if value.is_empty() {
        Some("required".into())
    } else {
        optional(value)
    }
}

fn optional(value: &str) -> Option<String> {
    string_problem(value, MAX_STRING_CHARS)
}

/// Why `value` is not a printable string of at most `max_chars` characters, if it is not.
pub fn string_problem(value: &str, max_chars: usize) -> Option<String> {
    // Plain ASCII, the common case, is checked byte by byte.
    let (too_long, control) = if value.is_ascii() {
        (
            value.len() > max_chars,
            value.bytes().any(|b| b < 0x20 || b == 0x7f),
        )
    } else {
        (
            value.chars().count() > max_chars,
            value.chars().any(char::is_control),
        )
    };
    if too_long {
        Some(format!("longer than {max_chars} characters"))
    } else if control {
        Some("contains control characters".to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{AgePercentiles, Extension, Node, ObjectKind, Resource, Skipped};

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
}
