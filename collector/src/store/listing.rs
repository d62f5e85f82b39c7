//! What the read API lists: clusters, a cluster's stored reports, fleet statistics.

use std::collections::BTreeMap;

use common::report::{NodeFact, Report};
use common::time::TimeSource;

/// One cluster as the read API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSummary {
    /// Cluster id.
    pub cluster_id: String,
    /// First report received, unix seconds.
    pub first_seen: i64,
    /// Last report received, unix seconds.
    pub last_seen: i64,
    /// Reports stored.
    pub reports: i64,
    /// `masterVersion` of the latest report.
    pub latest_master_version: Option<String>,
    /// Nodes in the latest report.
    pub latest_node_count: i64,
}

/// One stored report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReport {
    /// Insertion order; the read API's page cursor.
    pub seq: i64,
    /// Report id.
    pub id: String,
    /// The report's time, unix seconds.
    pub report_time: i64,
    /// Where the time came from.
    pub time_source: TimeSource,
    /// When the collector received it, unix seconds.
    pub received_at: i64,
    /// The sanitized report, `timestamp` set to its time.
    pub report: Report,
}

/// Fleet statistics from the latest report of each cluster seen in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Clusters seen.
    pub clusters: i64,
    /// Nodes in their latest reports.
    pub nodes: i64,
    /// Clusters by `masterVersion`.
    pub master_versions: BTreeMap<String, i64>,
    /// Nodes by the value of each of [`NodeFact::COUNTED`].
    pub node_facts: BTreeMap<NodeFact, BTreeMap<String, i64>>,
}

impl Stats {
    /// Nodes by the values of `fact` (empty for a fact that is not counted).
    pub fn nodes_by(&self, fact: NodeFact) -> BTreeMap<String, i64> {
        self.node_facts.get(&fact).cloned().unwrap_or_default()
    }
}

/// What a missing value is counted as in statistics.
pub use crate::stats::NOT_REPORTED;

/// A stored report's body read back: the sanitized report, `timestamp` set to its time.
pub(super) fn stored_body(body: &str, report_time: i64) -> serde_json::Result<Report> {
    let mut report: Report = serde_json::from_str(body)?;
    report.timestamp = report_time.to_string();
    Ok(report)
}

/// A stored value this collector cannot read: an error naming its report, never a silent
/// fallback (both backends).
#[derive(Debug, thiserror::Error)]
#[error("report seq {seq}: column {column} holds {value:?}, which is not {expected}")]
pub(super) struct BadValue {
    pub seq: i64,
    pub column: &'static str,
    pub value: String,
    pub expected: &'static str,
}
