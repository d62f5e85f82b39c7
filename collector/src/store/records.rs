//! What the writer stores: a report ready to be written, its nodes grouped by their counted
//! facts, and what storing it did.

use common::Admitted;
use common::report::{Node, NodeFact};
use common::time::TimeSource;
use uuid::Uuid;

/// What storing one report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Stored as a new report.
    Stored,
    /// A report with the same id and content was already stored; nothing changed.
    Duplicate,
    /// A report with the same id but different content was already stored; it was kept.
    Conflict,
}

/// A report ready to be written.
#[derive(Debug, Clone)]
pub struct NewReport {
    /// Report id.
    pub id: Uuid,
    /// Cluster id (canonical form).
    pub cluster_id: String,
    /// The report's time, unix seconds.
    pub report_time: i64,
    /// Where the time came from.
    pub time_source: TimeSource,
    /// When the collector received it, unix seconds.
    pub received_at: i64,
    /// SHA-256 of `body`.
    pub content_sha256: [u8; 32],
    /// `masterVersion`, if reported.
    pub master_version: Option<String>,
    /// Number of nodes.
    pub node_count: i64,
    /// Nodes counted by their reduced facts.
    pub node_groups: Vec<NodeGroup>,
    /// Canonical JSON of the sanitized report, with an empty `timestamp`.
    pub body: String,
}

/// Nodes of one report that share every counted fact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeGroup {
    /// The value of each fact of [`NodeFact::COUNTED`], in that order (empty when not
    /// reported).
    pub facts: [String; NodeFact::COUNTED.len()],
    /// How many nodes.
    pub nodes: i64,
}

/// The `report_nodes` column of each counted fact, in [`NodeFact::COUNTED`] order.
pub(super) const NODE_FACT_COLUMNS: [&str; NodeFact::COUNTED.len()] = [
    "operating_system",
    "os_image",
    "architecture",
    "container_runtime",
    "kubelet_version",
    "cloud_provider",
];

impl From<Admitted> for NewReport {
    fn from(admitted: Admitted) -> Self {
        let report = admitted.report;
        NewReport {
            id: admitted.id,
            node_groups: node_groups(&report.nodes),
            node_count: report.nodes.len() as i64,
            cluster_id: report.cluster_id,
            report_time: admitted.time.seconds,
            time_source: admitted.time.source,
            received_at: admitted.received_at,
            content_sha256: admitted.content_sha256,
            master_version: report.master_version,
            body: String::from_utf8(admitted.canonical).expect("serde_json writes UTF-8"),
        }
    }
}

/// Counts nodes by their counted facts (most reports have one or a few distinct groups).
fn node_groups(nodes: &[Node]) -> Vec<NodeGroup> {
    let mut groups: Vec<(NodeGroup, [Option<&str>; NodeFact::COUNTED.len()])> = Vec::new();
    for node in nodes {
        let facts = NodeFact::COUNTED.map(|fact| node.fact(fact));
        match groups.iter_mut().find(|(_, known)| *known == facts) {
            Some((group, _)) => group.nodes += 1,
            None => {
                let group = NodeGroup {
                    facts: facts.map(|value| value.unwrap_or_default().to_string()),
                    nodes: 1,
                };
                groups.push((group, facts));
            }
        }
    }
    groups.into_iter().map(|(group, _)| group).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_grouped_by_their_counted_facts() {
        let node = |arch: &str, kernel: &str| Node {
            architecture: Some(arch.into()),
            kernel_version: Some(kernel.into()),
            ..Node::default()
        };
        let groups = node_groups(&[
            node("amd64", "6.1.0"),
            node("arm64", "6.1.0"),
            node("amd64", "5.15.0"),
        ]);
        assert_eq!(groups.len(), 2, "the kernel is not a counted fact");
        assert_eq!(groups[0].nodes, 2);
        assert_eq!(groups[0].facts[2], "amd64");
        assert_eq!(groups[1].facts, ["", "", "arm64", "", "", ""]);
        assert_eq!(
            NodeFact::COUNTED[2],
            NodeFact::Architecture,
            "NODE_FACT_COLUMNS follows COUNTED"
        );
    }
}
