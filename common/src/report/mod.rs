//! The report as it travels on the wire: Spartakus v1 fields plus optional, integer-only sections.
//!
//! Field names and types match Spartakus v1 (`pkg/report/record.go`) exactly, so a Spartakus
//! report decodes here and a report of ours decodes in a Spartakus collector (which ignores the
//! sections it does not know). Integers are `i64` on purpose: a negative number decodes and is then
//! reported by validation with its field path, instead of failing the whole decode.

mod bounded;
mod facts;
mod integer;
mod kinds;
mod object;
mod skipped;

use serde::{Deserialize, Serialize};

pub use bounded::{MAX_CAPACITY_ENTRIES, MAX_EXTENSIONS, MAX_NODES, MAX_SKIPPED};
pub use facts::NodeFact;
pub use kinds::ObjectKind;
pub use skipped::{Section, SkipReason};

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
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
        )
    )]
    pub version: String,
    /// Unix seconds when the report was made, as a decimal string. Spartakus volunteers send an
    /// empty string; the collector replaces a missing or implausible value with its receive time.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub timestamp: String,
    /// Stable identifier of the cluster: a UUID other than the nil one (or, with a relaxed
    /// collector, 1-128 characters of `[A-Za-z0-9._-]`).
    #[serde(rename = "clusterID", default)]
    // Its pattern depends on the collector's rule: the collector's document states it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub cluster_id: String,
    /// Version of the Kubernetes API server, e.g. `v1.31.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub master_version: Option<String>,
    /// One entry per node.
    #[serde(
        default,
        deserialize_with = "bounded::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[cfg_attr(feature = "openapi", schema(max_items = 15000, nullable))]
    pub nodes: Vec<Node>,
    /// Operator-chosen key/value pairs.
    #[serde(
        default,
        deserialize_with = "bounded::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[cfg_attr(feature = "openapi", schema(max_items = 100, nullable))]
    pub extensions: Vec<Extension>,
    /// Number of namespaces in the cluster.
    #[serde(
        default,
        deserialize_with = "integer::optional",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9007199254740991_i64)
    )]
    pub namespaces: Option<i64>,
    /// Object statistics per kind.
    #[serde(
        default,
        deserialize_with = "object::required",
        skip_serializing_if = "Objects::is_empty"
    )]
    pub objects: Objects,
    /// Sections the volunteer could not read, so a missing number is never mistaken for zero.
    #[serde(
        default,
        deserialize_with = "bounded::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[cfg_attr(feature = "openapi", schema(max_items = 64, nullable))]
    pub skipped: Vec<Skipped>,
}

/// Facts about one node. Every field but `id` is optional, as in Spartakus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Node {
    /// Keyed hash identifying the node within its cluster (32 lowercase hex characters).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
        )
    )]
    pub id: String,
    /// `linux`, `windows`, ... or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub operating_system: Option<String>,
    /// Distribution and version, e.g. `ubuntu 22.04`, or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub os_image: Option<String>,
    /// Kernel version with a known flavour, e.g. `5.15.0-azure`, or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub kernel_version: Option<String>,
    /// `amd64`, `arm64`, ... or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub architecture: Option<String>,
    /// Runtime name and version, e.g. `containerd://1.7.11`, or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub container_runtime_version: Option<String>,
    /// Kubelet version, e.g. `v1.31.2`, or `other`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub kubelet_version: Option<String>,
    /// Public cloud provider name from the allow-list, or `unknown`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 256, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")
    )]
    pub cloud_provider: Option<String>,
    /// Capacity per resource, e.g. `cpu` = `4`.
    #[serde(
        default,
        deserialize_with = "bounded::list",
        skip_serializing_if = "Vec::is_empty"
    )]
    #[cfg_attr(feature = "openapi", schema(max_items = 64, nullable))]
    pub capacity: Vec<Resource>,
}

/// One capacity entry of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Resource {
    /// Resource name, e.g. `cpu`, `memory`, `nvidia.com/gpu`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
        )
    )]
    pub resource: String,
    /// Kubernetes quantity, e.g. `15437428Ki`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
        )
    )]
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
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub pods: Option<ObjectStats>,
    /// Services.
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub services: Option<ObjectStats>,
    /// Deployments.
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub deployments: Option<ObjectStats>,
    /// StatefulSets.
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub statefulsets: Option<ObjectStats>,
    /// DaemonSets.
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub daemonsets: Option<ObjectStats>,
    /// Jobs.
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub jobs: Option<ObjectStats>,
    /// CronJobs.
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub cronjobs: Option<ObjectStats>,
    /// PersistentVolumeClaims.
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub persistentvolumeclaims: Option<ObjectStats>,
    /// ConfigMaps.
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub configmaps: Option<ObjectStats>,
    /// Secrets (counted only when the operator opts in).
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub secrets: Option<ObjectStats>,
    /// Ingresses.
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub ingresses: Option<ObjectStats>,
}

/// Counts and ages of one kind of object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ObjectStats {
    /// Number of objects of this kind in the counted namespaces.
    #[serde(deserialize_with = "integer::exact")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9007199254740991_i64)
    )]
    pub total: i64,
    /// Histogram of objects per namespace: exactly [`OBJECTS_PER_NAMESPACE_BUCKETS`] counts of
    /// namespaces, bucketed by [`OBJECTS_PER_NAMESPACE_BOUNDS`].
    #[serde(deserialize_with = "integer::list")]
    #[cfg_attr(feature = "openapi", schema(schema_with = per_namespace_schema))]
    pub per_namespace: Vec<i64>,
    /// Object age percentiles in whole seconds; absent when there are no objects.
    #[serde(
        default,
        deserialize_with = "object::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub age_seconds: Option<AgePercentiles>,
}

/// `perNamespace`'s schema: exactly one count per bucket, each a count.
#[cfg(feature = "openapi")]
fn per_namespace_schema() -> utoipa::openapi::Array {
    use utoipa::openapi::schema::{ArrayBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let count = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .maximum(Some(crate::validate::MAX_INTEGER));
    ArrayBuilder::new()
        .items(count)
        .min_items(Some(OBJECTS_PER_NAMESPACE_BUCKETS))
        .max_items(Some(OBJECTS_PER_NAMESPACE_BUCKETS))
        .description(Some(
            "Namespaces by how many objects of this kind each holds, one count per bucket",
        ))
        .build()
}

/// Object age percentiles, in whole seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgePercentiles {
    /// Median age.
    #[serde(deserialize_with = "integer::exact")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9007199254740991_i64)
    )]
    pub p50: i64,
    /// 90th percentile.
    #[serde(deserialize_with = "integer::exact")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9007199254740991_i64)
    )]
    pub p90: i64,
    /// 99th percentile.
    #[serde(deserialize_with = "integer::exact")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9007199254740991_i64)
    )]
    pub p99: i64,
    /// Oldest object.
    #[serde(deserialize_with = "integer::exact")]
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9007199254740991_i64)
    )]
    pub max: i64,
}

/// A section the volunteer could not read, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Skipped {
    /// `masterVersion`, `nodes`, `nodeIdKey`, `namespaces` or `objects.<kind>`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
        )
    )]
    pub section: String,
    /// `forbidden`, `unauthorized`, `notFound`, `expired`, `timeout`, `unavailable`, `disabled` or
    /// `error`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(
            required = true,
            min_length = 1,
            max_length = 256,
            pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$"
        )
    )]
    pub reason: String,
}
