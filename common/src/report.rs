//! The report as it travels on the wire: Spartakus v1 fields plus optional, integer-only sections.
//!
//! Field names and types match Spartakus v1 (`pkg/report/record.go`) exactly, so a Spartakus
//! report decodes here and a report of ours decodes in a Spartakus collector (which ignores the
//! sections it does not know). Integers are `i64` on purpose: a negative number decodes and is then
//! reported by validation with its field path, instead of failing the whole decode.

use serde::{Deserialize, Deserializer, Serialize};

/// Schema version our volunteer writes into `version`.
pub const SCHEMA_VERSION: &str = "v1.1.0";

/// Upper bounds (inclusive) of the objects-per-namespace histogram buckets.
///
/// A namespace holding `n` objects of a kind is counted in the first bucket whose bound is `>= n`;
/// one more bucket after the last bound counts everything larger. The bounds are part of the
/// format: changing them needs a new schema version.
pub const OBJECTS_PER_NAMESPACE_BOUNDS: [u64; 18] = [
    0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536,
];

/// Number of buckets in a per-namespace histogram: one per bound plus the overflow bucket.
pub const OBJECTS_PER_NAMESPACE_BUCKETS: usize = OBJECTS_PER_NAMESPACE_BOUNDS.len() + 1;

/// One report from one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Schema version of the report, e.g. `v1.0.0` (Spartakus) or `v1.1.0`.
    #[serde(default)]
    pub version: String,
    /// Unix seconds when the report was made, as a decimal string. Spartakus volunteers send an
    /// empty string; the collector replaces a missing or implausible value with its receive time.
    #[serde(default)]
    pub timestamp: String,
    /// Stable identifier of the cluster: a UUID (or, with a relaxed collector, 1-128 characters
    /// of `[A-Za-z0-9._-]`).
    #[serde(rename = "clusterID", default)]
    pub cluster_id: String,
    /// Version of the Kubernetes API server, e.g. `v1.31.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_version: Option<String>,
    /// One entry per node.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub nodes: Vec<Node>,
    /// Operator-chosen key/value pairs.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extensions: Vec<Extension>,
    /// Number of namespaces in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<i64>,
    /// Object statistics per kind.
    #[serde(default, skip_serializing_if = "Objects::is_empty")]
    pub objects: Objects,
    /// Sections the volunteer could not read, so a missing number is never mistaken for zero.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub skipped: Vec<Skipped>,
}

/// Facts about one node. Every field but `id` is optional, as in Spartakus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Keyed hash identifying the node within its cluster (32 lowercase hex characters).
    #[serde(default)]
    pub id: String,
    /// `linux`, `windows`, ... or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system: Option<String>,
    /// Distribution and version, e.g. `ubuntu 22.04`, or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_image: Option<String>,
    /// Kernel version with a known flavour, e.g. `5.15.0-azure`, or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
    /// `amd64`, `arm64`, ... or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Runtime name and version, e.g. `containerd://1.7.11`, or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_runtime_version: Option<String>,
    /// Kubelet version, e.g. `v1.31.2`, or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet_version: Option<String>,
    /// Public cloud provider name from the allow-list, or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_provider: Option<String>,
    /// Capacity per resource, e.g. `cpu` = `4`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub capacity: Vec<Resource>,
}

/// The facts a node reports besides its id and capacity, each a closed vocabulary or a version;
/// every place that handles node facts goes through this list.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "camelCase")]
pub enum NodeFact {
    /// `operatingSystem`
    OperatingSystem,
    /// `osImage`
    OsImage,
    /// `kernelVersion`
    KernelVersion,
    /// `architecture`
    Architecture,
    /// `containerRuntimeVersion`
    ContainerRuntimeVersion,
    /// `kubeletVersion`
    KubeletVersion,
    /// `cloudProvider`
    CloudProvider,
}

impl NodeFact {
    /// Every fact, in wire order.
    pub const ALL: &[NodeFact] = <NodeFact as strum::VariantArray>::VARIANTS;

    /// The facts nodes are counted by in statistics and summaries: every one but the kernel
    /// version, whose builds tell little about a fleet.
    pub const COUNTED: [NodeFact; 6] = [
        NodeFact::OperatingSystem,
        NodeFact::OsImage,
        NodeFact::Architecture,
        NodeFact::ContainerRuntimeVersion,
        NodeFact::KubeletVersion,
        NodeFact::CloudProvider,
    ];

    /// The fact's field name on the wire.
    pub fn wire_name(self) -> &'static str {
        self.into()
    }

    /// The name of the fact's distribution over a fleet, in statistics and analytics summaries.
    pub fn plural(self) -> &'static str {
        match self {
            NodeFact::OperatingSystem => "operatingSystems",
            NodeFact::OsImage => "osImages",
            NodeFact::KernelVersion => "kernelVersions",
            NodeFact::Architecture => "architectures",
            NodeFact::ContainerRuntimeVersion => "containerRuntimes",
            NodeFact::KubeletVersion => "kubeletVersions",
            NodeFact::CloudProvider => "cloudProviders",
        }
    }
}

impl Node {
    /// The value of one fact, if reported.
    pub fn fact(&self, fact: NodeFact) -> Option<&str> {
        match fact {
            NodeFact::OperatingSystem => &self.operating_system,
            NodeFact::OsImage => &self.os_image,
            NodeFact::KernelVersion => &self.kernel_version,
            NodeFact::Architecture => &self.architecture,
            NodeFact::ContainerRuntimeVersion => &self.container_runtime_version,
            NodeFact::KubeletVersion => &self.kubelet_version,
            NodeFact::CloudProvider => &self.cloud_provider,
        }
        .as_deref()
    }

    /// The slot of one fact, to set or rewrite it.
    pub fn fact_mut(&mut self, fact: NodeFact) -> &mut Option<String> {
        match fact {
            NodeFact::OperatingSystem => &mut self.operating_system,
            NodeFact::OsImage => &mut self.os_image,
            NodeFact::KernelVersion => &mut self.kernel_version,
            NodeFact::Architecture => &mut self.architecture,
            NodeFact::ContainerRuntimeVersion => &mut self.container_runtime_version,
            NodeFact::KubeletVersion => &mut self.kubelet_version,
            NodeFact::CloudProvider => &mut self.cloud_provider,
        }
    }
}

/// One capacity entry of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resource {
    /// Resource name, e.g. `cpu`, `memory`, `nvidia.com/gpu`.
    #[serde(default)]
    pub resource: String,
    /// Kubernetes quantity, e.g. `15437428Ki`.
    #[serde(default)]
    pub value: String,
}

/// One operator-chosen key/value pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Extension {
    /// Kubernetes qualified name, e.g. `example.com/team`.
    #[serde(default)]
    pub name: String,
    /// Up to 1 KiB of printable text.
    #[serde(default)]
    pub value: String,
}

/// Statistics per object kind; a kind the volunteer did not count is absent.
///
/// The list of kinds is closed: an unknown kind is an unknown field and is dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Objects {
    /// Pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods: Option<ObjectStats>,
    /// Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<ObjectStats>,
    /// Deployments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployments: Option<ObjectStats>,
    /// StatefulSets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statefulsets: Option<ObjectStats>,
    /// DaemonSets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daemonsets: Option<ObjectStats>,
    /// Jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<ObjectStats>,
    /// CronJobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cronjobs: Option<ObjectStats>,
    /// PersistentVolumeClaims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistentvolumeclaims: Option<ObjectStats>,
    /// ConfigMaps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configmaps: Option<ObjectStats>,
    /// Secrets (counted only when the operator opts in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<ObjectStats>,
    /// Ingresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingresses: Option<ObjectStats>,
}

/// The closed list of object kinds a report may count.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::VariantArray,
)]
#[strum(serialize_all = "lowercase")]
pub enum ObjectKind {
    /// `pods`
    Pods,
    /// `services`
    Services,
    /// `deployments`
    Deployments,
    /// `statefulsets`
    StatefulSets,
    /// `daemonsets`
    DaemonSets,
    /// `jobs`
    Jobs,
    /// `cronjobs`
    CronJobs,
    /// `persistentvolumeclaims`
    PersistentVolumeClaims,
    /// `configmaps`
    ConfigMaps,
    /// `secrets`
    Secrets,
    /// `ingresses`
    Ingresses,
}

impl ObjectKind {
    /// Every kind, in wire order.
    pub const ALL: &[ObjectKind] = <ObjectKind as strum::VariantArray>::VARIANTS;

    /// The kind's name on the wire (its lowercase plural resource name).
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl Objects {
    /// True when no kind was counted.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// The statistics of one kind.
    pub fn get(&self, kind: ObjectKind) -> Option<&ObjectStats> {
        self.slot(kind).as_ref()
    }

    /// Sets (or clears) the statistics of one kind.
    pub fn set(&mut self, kind: ObjectKind, stats: Option<ObjectStats>) {
        *self.slot_mut(kind) = stats;
    }

    /// The counted kinds with their statistics, in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (ObjectKind, &ObjectStats)> {
        ObjectKind::ALL
            .iter()
            .filter_map(|kind| self.get(*kind).map(|stats| (*kind, stats)))
    }

    fn slot(&self, kind: ObjectKind) -> &Option<ObjectStats> {
        match kind {
            ObjectKind::Pods => &self.pods,
            ObjectKind::Services => &self.services,
            ObjectKind::Deployments => &self.deployments,
            ObjectKind::StatefulSets => &self.statefulsets,
            ObjectKind::DaemonSets => &self.daemonsets,
            ObjectKind::Jobs => &self.jobs,
            ObjectKind::CronJobs => &self.cronjobs,
            ObjectKind::PersistentVolumeClaims => &self.persistentvolumeclaims,
            ObjectKind::ConfigMaps => &self.configmaps,
            ObjectKind::Secrets => &self.secrets,
            ObjectKind::Ingresses => &self.ingresses,
        }
    }

    fn slot_mut(&mut self, kind: ObjectKind) -> &mut Option<ObjectStats> {
        match kind {
            ObjectKind::Pods => &mut self.pods,
            ObjectKind::Services => &mut self.services,
            ObjectKind::Deployments => &mut self.deployments,
            ObjectKind::StatefulSets => &mut self.statefulsets,
            ObjectKind::DaemonSets => &mut self.daemonsets,
            ObjectKind::Jobs => &mut self.jobs,
            ObjectKind::CronJobs => &mut self.cronjobs,
            ObjectKind::PersistentVolumeClaims => &mut self.persistentvolumeclaims,
            ObjectKind::ConfigMaps => &mut self.configmaps,
            ObjectKind::Secrets => &mut self.secrets,
            ObjectKind::Ingresses => &mut self.ingresses,
        }
    }
}

/// Counts and ages of one kind of object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ObjectStats {
    /// Number of objects of this kind in the counted namespaces.
    pub total: i64,
    /// Histogram of objects per namespace: exactly [`OBJECTS_PER_NAMESPACE_BUCKETS`] counts of
    /// namespaces, bucketed by [`OBJECTS_PER_NAMESPACE_BOUNDS`].
    pub per_namespace: Vec<i64>,
    /// Object age percentiles in whole seconds; absent when there are no objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<AgePercentiles>,
}

/// Object age percentiles, in whole seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgePercentiles {
    /// Median age.
    pub p50: i64,
    /// 90th percentile.
    pub p90: i64,
    /// 99th percentile.
    pub p99: i64,
    /// Oldest object.
    pub max: i64,
}

/// A section the volunteer could not read, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Skipped {
    /// `masterVersion`, `nodes`, `nodeIdKey`, `namespaces` or `objects.<kind>`.
    #[serde(default)]
    pub section: String,
    /// `forbidden`, `unauthorized`, `notFound`, `expired`, `timeout`, `unavailable`, `disabled` or
    /// `error`.
    #[serde(default)]
    pub reason: String,
}

impl Skipped {
    /// An entry saying `section` was not read, and why.
    pub fn new(section: Section, reason: SkipReason) -> Self {
        Skipped {
            section: section.to_string(),
            reason: reason.as_str().to_string(),
        }
    }
}

/// A section a [`Skipped`] entry may name: the closed vocabulary of [`Skipped::section`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `masterVersion`
    MasterVersion,
    /// `nodes`
    Nodes,
    /// `nodeIdKey`: the secret keying node ids (a random one was used instead).
    NodeIdKey,
    /// `namespaces`
    Namespaces,
    /// `objects.<kind>`
    Objects(ObjectKind),
}

impl Section {
    /// The section a [`Skipped::section`] names, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "masterVersion" => Section::MasterVersion,
            "nodes" => Section::Nodes,
            "nodeIdKey" => Section::NodeIdKey,
            "namespaces" => Section::Namespaces,
            other => Section::Objects(other.strip_prefix("objects.")?.parse().ok()?),
        })
    }
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Section::MasterVersion => f.write_str("masterVersion"),
            Section::Nodes => f.write_str("nodes"),
            Section::NodeIdKey => f.write_str("nodeIdKey"),
            Section::Namespaces => f.write_str("namespaces"),
            Section::Objects(kind) => write!(f, "objects.{}", kind.as_str()),
        }
    }
}

/// Why a section could not be read: the closed vocabulary of [`Skipped::reason`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString, strum::VariantArray,
)]
#[strum(serialize_all = "camelCase")]
pub enum SkipReason {
    /// The volunteer may not read it (HTTP 403).
    Forbidden,
    /// The volunteer's credentials were refused (HTTP 401).
    Unauthorized,
    /// The API server does not serve it (HTTP 404).
    NotFound,
    /// A list's continue token kept expiring (HTTP 410).
    Expired,
    /// The API server did not answer in time.
    Timeout,
    /// The API server was overloaded or failing.
    Unavailable,
    /// Turned off by the volunteer's flags.
    Disabled,
    /// Any other failure.
    Error,
}

impl SkipReason {
    /// The reason's name on the wire.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Go encodes an empty slice without `omitempty` as `null`; treat it as empty.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wire names are part of the format: stored reports and dashboards hold them.
    #[test]
    fn vocabularies_keep_their_wire_names() {
        let kinds: Vec<&str> = ObjectKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "pods",
                "services",
                "deployments",
                "statefulsets",
                "daemonsets",
                "jobs",
                "cronjobs",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "ingresses"
            ]
        );
        let facts: Vec<&str> = NodeFact::ALL.iter().map(|f| f.wire_name()).collect();
        assert_eq!(
            facts,
            [
                "operatingSystem",
                "osImage",
                "kernelVersion",
                "architecture",
                "containerRuntimeVersion",
                "kubeletVersion",
                "cloudProvider"
            ]
        );
        let reasons: Vec<&str> = <SkipReason as strum::VariantArray>::VARIANTS
            .iter()
            .map(|r| r.as_str())
            .collect();
        assert_eq!(
            reasons,
            [
                "forbidden",
                "unauthorized",
                "notFound",
                "expired",
                "timeout",
                "unavailable",
                "disabled",
                "error"
            ]
        );
        for reason in <SkipReason as strum::VariantArray>::VARIANTS {
            assert_eq!(reason.as_str().parse::<SkipReason>(), Ok(*reason));
        }
    }

    #[test]
    fn sections_round_trip_and_unknown_ones_are_none() {
        let mut sections = vec![
            Section::MasterVersion,
            Section::Nodes,
            Section::NodeIdKey,
            Section::Namespaces,
        ];
        sections.extend(ObjectKind::ALL.iter().map(|kind| Section::Objects(*kind)));
        for section in sections {
            assert_eq!(Section::parse(&section.to_string()), Some(section));
        }
        assert_eq!(
            Section::Objects(ObjectKind::PersistentVolumeClaims).to_string(),
            "objects.persistentvolumeclaims"
        );
        for unknown in [
            "objects.widgets",
            "objects.",
            "secret-db-names",
            "Nodes",
            "",
        ] {
            assert_eq!(Section::parse(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn facts_are_read_and_written_through_one_accessor() {
        let mut node = Node::default();
        for (i, fact) in NodeFact::ALL.iter().enumerate() {
            *node.fact_mut(*fact) = Some(format!("value-{i}"));
        }
        assert_eq!(node.os_image.as_deref(), Some("value-1"));
        assert_eq!(node.cloud_provider.as_deref(), Some("value-6"));
        for (i, fact) in NodeFact::ALL.iter().enumerate() {
            assert_eq!(node.fact(*fact), Some(format!("value-{i}").as_str()));
        }
    }
}
