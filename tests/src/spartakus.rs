//! Spartakus v1's `report.Record` as the Spartakus collector's Go types declare it
//! (kubernetes-retired/spartakus `pkg/report`): what a Spartakus database or query reads. Go's
//! decoder ignores fields it does not know; the ones it knows must have these types, and a
//! `null` list is an empty one.

use serde::Deserialize;
use serde_json::Value;

/// Spartakus's BigQuery columns, in the order of its `bigquery.schema.json`: a table the
/// collector creates starts with them, so Spartakus's queries run on it unchanged.
pub const COLUMNS: [&str; 6] = [
    "version",
    "timestamp",
    "clusterID",
    "masterVersion",
    "nodes",
    "extensions",
];

/// One report, field for field with Go's types.
#[derive(Debug, Deserialize)]
pub struct Record {
    /// `version`
    pub version: String,
    /// `timestamp`: unix seconds as a string.
    pub timestamp: String,
    /// `clusterID`
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    /// `masterVersion`
    #[serde(rename = "masterVersion")]
    pub master_version: Option<String>,
    nodes: Option<Vec<Node>>,
    extensions: Option<Vec<Pair>>,
}

impl Record {
    /// `nodes`
    pub fn nodes(&self) -> &[Node] {
        self.nodes.as_deref().unwrap_or_default()
    }

    /// `extensions`
    pub fn extensions(&self) -> &[Pair] {
        self.extensions.as_deref().unwrap_or_default()
    }
}

/// One node.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, missing_docs)]
pub struct Node {
    pub id: String,
    operating_system: Option<String>,
    os_image: Option<String>,
    kernel_version: Option<String>,
    architecture: Option<String>,
    container_runtime_version: Option<String>,
    kubelet_version: Option<String>,
    cloud_provider: Option<String>,
    capacity: Option<Vec<Resource>>,
}

/// One capacity entry.
#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct Resource {
    resource: String,
    value: String,
}

/// One extension.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub struct Pair {
    pub name: String,
    pub value: String,
}

/// `report` read as a Spartakus record, failing the test with the reason when it is not one.
pub fn record(report: &Value) -> Record {
    serde_json::from_value(report.clone())
        .unwrap_or_else(|error| panic!("not a Spartakus v1 record: {error}\n{report}"))
}
