//! The registry of dimensions: each a name, a description and how a report maps to its values.
//! A later dimension is added by registering it here; the fold, the store and the outputs take
//! every registered dimension as it comes.

use std::borrow::Cow;
use std::sync::LazyLock;

use common::Report;
use common::report::{Node, ObjectKind, Section};
use serde::Serialize;

use super::buckets::Buckets;
use super::versions::{minor_label, skew};

/// What a missing value is counted as.
pub const NOT_REPORTED: &str = "(not reported)";
/// The value every group too small to publish is folded into (also the sanitizer's word for a
/// value outside its vocabulary).
pub const OTHER: &str = common::sanitize::OTHER;
/// The dimension counting clusters by the extension keys they report.
pub const EXTENSION_KEYS: &str = "extension-keys";
/// Prefix of the dimension of one extension key's values: `extension:example.com/team`.
pub const EXTENSION_PREFIX: &str = "extension:";

/// What a dimension's cells count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Clusters by a value of the whole cluster; `nodes` is the nodes of those clusters.
    Cluster,
    /// Clusters with at least one node of the value, and the nodes that have it.
    Node,
}

/// The values one report has in one dimension, each with its nodes; values borrow from the
/// report where they can (the rollup folds every report, so allocations count).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Values<'r>(Vec<(Cow<'r, str>, i64)>);

impl<'r> Values<'r> {
    /// Counts `nodes` more for `value`.
    pub fn add(&mut self, value: impl Into<Cow<'r, str>>, nodes: i64) {
        let value = value.into();
        match self.0.iter_mut().find(|(known, _)| *known == value) {
            Some((_, total)) => *total += nodes,
            None => self.0.push((value, nodes)),
        }
    }

    /// The values and their nodes, in the order first seen.
    pub fn into_inner(self) -> Vec<(Cow<'r, str>, i64)> {
        self.0
    }
}

type Mapping = Box<dyn for<'r> Fn(&'r Report, &mut Values<'r>) + Send + Sync>;

/// One registered dimension.
pub struct Dimension {
    /// Name in the API, e.g. `architecture`.
    pub name: String,
    /// What it counts, for people.
    pub description: String,
    /// What its cells count.
    pub scope: Scope,
    /// Its values in their natural order (buckets), when they have one; else by count.
    pub order: Option<Vec<String>>,
    /// Bumped when the mapping changes, so that stored statistics are rebuilt from the reports.
    pub revision: u32,
    map: Mapping,
}

impl Dimension {
    /// The values `report` has in this dimension.
    pub fn values<'r>(&self, report: &'r Report) -> Values<'r> {
        let mut values = Values::default();
        (self.map)(report, &mut values);
        values
    }
}

/// Every registered dimension, in the order the API lists them. Extension values are a family
/// of their own ([`EXTENSION_PREFIX`]), one dimension per key seen.
pub static REGISTRY: LazyLock<Vec<Dimension>> = LazyLock::new(|| {
    let mut registry = vec![
        cluster(
            "server-version-minor",
            "Clusters by the minor version of their API server, e.g. v1.31",
            |r| r.master_version.as_deref().map(minor_label),
        ),
        cluster(
            "server-version",
            "Clusters by the full version of their API server, e.g. v1.31.2",
            |r| r.master_version.as_deref().map(Cow::Borrowed),
        ),
        node("os", "Nodes by operating system", |n| {
            n.operating_system.as_deref().map(Cow::Borrowed)
        }),
        node(
            "os-distribution",
            "Nodes by the distribution of their OS image, e.g. ubuntu",
            |n| {
                n.os_image
                    .as_deref()
                    .and_then(|image| image.split_whitespace().next())
                    .map(Cow::Borrowed)
            },
        ),
        node(
            "os-image",
            "Nodes by OS image, distribution and version, e.g. ubuntu 22.04",
            |n| n.os_image.as_deref().map(Cow::Borrowed),
        ),
        node("architecture", "Nodes by CPU architecture", |n| {
            n.architecture.as_deref().map(Cow::Borrowed)
        }),
        node(
            "container-runtime",
            "Nodes by container runtime, e.g. containerd",
            |n| {
                n.container_runtime_version
                    .as_deref()
                    .map(|runtime| Cow::Borrowed(runtime.split("://").next().unwrap_or(runtime)))
            },
        ),
        node(
            "container-runtime-version",
            "Nodes by container runtime and version, e.g. containerd://1.7.11",
            |n| n.container_runtime_version.as_deref().map(Cow::Borrowed),
        ),
        node(
            "kubelet-version-minor",
            "Nodes by the minor version of their kubelet",
            |n| n.kubelet_version.as_deref().map(minor_label),
        ),
        node("cloud-provider", "Nodes by public cloud provider", |n| {
            n.cloud_provider.as_deref().map(Cow::Borrowed)
        }),
        Dimension {
            name: "version-skew".into(),
            description: "Nodes by how many minor versions their kubelet lags the API server \
                          (newer: a kubelet newer than the server)"
                .into(),
            scope: Scope::Node,
            order: Some(SKEW_ORDER.iter().map(|s| s.to_string()).collect()),
            revision: 1,
            map: Box::new(|report, values| {
                for node in &report.nodes {
                    let lag = skew(
                        report.master_version.as_deref(),
                        node.kubelet_version.as_deref(),
                    );
                    values.add(lag.unwrap_or(NOT_REPORTED), 1);
                }
            }),
        },
        bucketed(
            "cluster-size",
            "Clusters by their number of nodes",
            &CLUSTER_SIZE,
            |r| {
                let nodes_skipped = r
                    .skipped
                    .iter()
                    .any(|s| Section::parse(&s.section) == Some(Section::Nodes));
                (!nodes_skipped).then_some(r.nodes.len() as u64)
            },
        ),
        bucketed(
            "namespaces",
            "Clusters by their number of namespaces",
            &NAMESPACES,
            |r| r.namespaces.map(|n| n.max(0) as u64),
        ),
    ];
    for kind in ObjectKind::ALL.iter().copied() {
        registry.push(bucketed(
            &format!("objects-{}", kind.as_str()),
            &format!("Clusters by their number of {}", kind.as_str()),
            &OBJECTS,
            move |r| r.objects.get(kind).map(|stats| stats.total.max(0) as u64),
        ));
    }
    registry.push(cluster(
        "report-version",
        "Clusters by the schema version of their report (the volunteer's), e.g. v1.1.0",
        |r| Some(Cow::Borrowed(r.version.as_str())),
    ));
    registry.push(Dimension {
        name: EXTENSION_KEYS.into(),
        description: "Clusters by the extension keys they report".into(),
        scope: Scope::Cluster,
        order: None,
        revision: 1,
        map: Box::new(|report, values| {
            for extension in &report.extensions {
                if !values.0.iter().any(|(known, _)| *known == extension.name) {
                    values.add(extension.name.as_str(), report.nodes.len() as i64);
                }
            }
        }),
    });
    registry
});

/// The registered dimension called `name`.
pub fn registered(name: &str) -> Option<&'static Dimension> {
    REGISTRY.iter().find(|d| d.name == name)
}

/// The names of the registered dimensions, in the registry's order.
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|d| d.name.as_str())
}

/// The registry's fingerprint: stored statistics made under another one are rebuilt.
pub fn fingerprint() -> String {
    let mut parts: Vec<String> = REGISTRY
        .iter()
        .map(|d| format!("{}@{}", d.name, d.revision))
        .collect();
    parts.push(format!("{EXTENSION_PREFIX}*@1"));
    parts.join(",")
}

/// Cluster sizes in nodes.
static CLUSTER_SIZE: LazyLock<Buckets> =
    LazyLock::new(|| Buckets::new(&[0, 1, 5, 20, 100, 500, 2000]));
/// Namespace counts.
static NAMESPACES: LazyLock<Buckets> =
    LazyLock::new(|| Buckets::new(&[0, 10, 20, 50, 100, 500, 2000]));
/// Object counts.
static OBJECTS: LazyLock<Buckets> =
    LazyLock::new(|| Buckets::new(&[0, 10, 100, 1000, 10_000, 100_000]));
/// The version-skew values, in order.
const SKEW_ORDER: [&str; 6] = ["0", "1", "2", "3+", "newer", NOT_REPORTED];

fn cluster(
    name: &str,
    description: &str,
    value: impl for<'r> Fn(&'r Report) -> Option<Cow<'r, str>> + Send + Sync + 'static,
) -> Dimension {
    Dimension {
        name: name.into(),
        description: description.into(),
        scope: Scope::Cluster,
        order: None,
        revision: 1,
        map: Box::new(move |report, values| {
            let value = value(report).filter(|v| !v.is_empty());
            values.add(
                value.unwrap_or(Cow::Borrowed(NOT_REPORTED)),
                report.nodes.len() as i64,
            );
        }),
    }
}

fn node(
    name: &str,
    description: &str,
    value: impl for<'r> Fn(&'r Node) -> Option<Cow<'r, str>> + Send + Sync + 'static,
) -> Dimension {
    Dimension {
        name: name.into(),
        description: description.into(),
        scope: Scope::Node,
        order: None,
        revision: 1,
        map: Box::new(move |report, values| {
            for node in &report.nodes {
                let value = value(node).filter(|v| !v.is_empty());
                values.add(value.unwrap_or(Cow::Borrowed(NOT_REPORTED)), 1);
            }
        }),
    }
}

fn bucketed(
    name: &str,
    description: &str,
    buckets: &'static LazyLock<Buckets>,
    count: impl Fn(&Report) -> Option<u64> + Send + Sync + 'static,
) -> Dimension {
    let mut order = buckets.labels.clone();
    order.push(NOT_REPORTED.into());
    Dimension {
        name: name.into(),
        description: description.into(),
        scope: Scope::Cluster,
        order: Some(order),
        revision: 1,
        map: Box::new(move |report, values| {
            let label = match count(report) {
                Some(n) => buckets.label(n),
                None => NOT_REPORTED,
            };
            values.add(label, report.nodes.len() as i64);
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::report::{Extension, ObjectStats, Objects};

    fn values(name: &str, report: &Report) -> Vec<(String, i64)> {
        registered(name)
            .unwrap()
            .values(report)
            .into_inner()
            .into_iter()
            .map(|(value, nodes)| (value.into_owned(), nodes))
            .collect()
    }

    fn node(kubelet: &str, arch: &str) -> Node {
        Node {
            kubelet_version: Some(kubelet.into()),
            architecture: Some(arch.into()),
            os_image: Some("ubuntu 22.04".into()),
            container_runtime_version: Some("containerd://1.7.11".into()),
            ..Node::default()
        }
    }

    #[test]
    fn reports_map_to_their_values_in_every_dimension() {
        let mut objects = Objects::default();
        objects.set(
            ObjectKind::Pods,
            Some(ObjectStats {
                total: 101,
                ..ObjectStats::default()
            }),
        );
        let report = Report {
            version: "v1.1.0".into(),
            master_version: Some("v1.31.2-eks-1".into()),
            nodes: vec![
                node("v1.31.0", "amd64"),
                node("v1.29.5", "amd64"),
                node("v1.27.1", "arm64"),
            ],
            namespaces: Some(12),
            objects,
            extensions: vec![Extension {
                name: "example.com/team".into(),
                value: "blue".into(),
            }],
            ..Report::default()
        };
        let one = |value: &str| vec![(value.to_string(), 3)];
        assert_eq!(values("server-version-minor", &report), one("v1.31"));
        assert_eq!(values("server-version", &report), one("v1.31.2-eks-1"));
        assert_eq!(
            values("architecture", &report),
            [("amd64".into(), 2), ("arm64".into(), 1)]
        );
        assert_eq!(
            values("version-skew", &report),
            [("0".into(), 1), ("2".into(), 1), ("3+".into(), 1)]
        );
        assert_eq!(values("os-distribution", &report), one("ubuntu"));
        assert_eq!(values("container-runtime", &report), one("containerd"));
        assert_eq!(values("kubelet-version-minor", &report).len(), 3);
        assert_eq!(values("os", &report), one(NOT_REPORTED));
        assert_eq!(values("cluster-size", &report), one("2-5"));
        assert_eq!(values("namespaces", &report), one("11-20"));
        assert_eq!(values("objects-pods", &report), one("101-1000"));
        assert_eq!(values("objects-secrets", &report), one(NOT_REPORTED));
        assert_eq!(values("report-version", &report), one("v1.1.0"));
        assert_eq!(values(EXTENSION_KEYS, &report), one("example.com/team"));
        let spartakus = Report::default();
        assert_eq!(values("cluster-size", &spartakus), [("0".into(), 0)]);
        assert_eq!(
            values("server-version-minor", &spartakus),
            [(NOT_REPORTED.into(), 0)]
        );
        assert!(values("architecture", &spartakus).is_empty());
    }

    #[test]
    fn buckets_are_fixed_and_labelled_by_their_bounds() {
        assert_eq!(
            CLUSTER_SIZE.labels,
            [
                "0", "1", "2-5", "6-20", "21-100", "101-500", "501-2000", "2001+"
            ]
        );
        let size = registered("cluster-size").unwrap();
        for (nodes, label) in [(1, "1"), (5, "2-5"), (6, "6-20"), (2000, "501-2000")] {
            let report = Report {
                nodes: vec![Node::default(); nodes],
                ..Report::default()
            };
            assert_eq!(size.values(&report).into_inner()[0].0, label, "{nodes}");
        }
        let report = Report {
            nodes: vec![Node::default(); 2001],
            ..Report::default()
        };
        assert_eq!(size.values(&report).into_inner()[0].0, "2001+");
    }

    #[test]
    fn names_are_unique_and_the_fingerprint_names_every_dimension() {
        let mut names: Vec<&str> = REGISTRY.iter().map(|d| d.name.as_str()).collect();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
        assert!(names.iter().all(|n| !n.starts_with(EXTENSION_PREFIX)));
        assert!(fingerprint().contains("objects-ingresses@1"));
    }
}
