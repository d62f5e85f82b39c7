//! The fold: what one report adds to its week's cells, and the sum of many such changes.

use std::collections::HashMap;

use common::Report;

use super::dimensions::{EXTENSION_PREFIX, NOT_REPORTED, REGISTRY};
use super::week::Week;

/// One report's part in one cell of its week: a value of a dimension and the nodes it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    /// Dimension name.
    pub dimension: String,
    /// The value.
    pub value: String,
    /// Nodes it adds.
    pub nodes: i64,
}

/// Every cell `report` counts in, once each: the registered dimensions, then each extension
/// key's value.
pub fn contributions(report: &Report) -> Vec<Contribution> {
    let mut cells = Vec::new();
    for dimension in REGISTRY.iter() {
        for (value, nodes) in dimension.values(report).into_inner() {
            cells.push(Contribution {
                dimension: dimension.name.clone(),
                value,
                nodes,
            });
        }
    }
    let nodes = report.nodes.len() as i64;
    for (index, extension) in report.extensions.iter().enumerate() {
        let repeated = report.extensions[..index]
            .iter()
            .any(|earlier| earlier.name == extension.name);
        if !repeated {
            let value = match extension.value.as_str() {
                "" => NOT_REPORTED,
                value => value,
            };
            cells.push(Contribution {
                dimension: format!("{EXTENSION_PREFIX}{}", extension.name),
                value: value.to_string(),
                nodes,
            });
        }
    }
    cells
}

/// A change to one stored cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellChange {
    /// The week.
    pub week: Week,
    /// Dimension name.
    pub dimension: String,
    /// The value.
    pub value: String,
    /// Clusters added (negative: removed).
    pub clusters: i64,
    /// Nodes added (negative: removed).
    pub nodes: i64,
}

/// Changes to cells, summed per cell, so that a batch of reports writes each cell once.
#[derive(Debug, Default)]
pub struct CellDeltas(HashMap<(Week, String, String), (i64, i64)>);

impl CellDeltas {
    /// Counts `report` in `week` (`sign` 1), or takes it out again (`sign` -1).
    pub fn add(&mut self, week: Week, report: &Report, sign: i64) {
        for cell in contributions(report) {
            let entry = self
                .0
                .entry((week, cell.dimension, cell.value))
                .or_default();
            entry.0 += sign;
            entry.1 += sign * cell.nodes;
        }
    }

    /// The non-zero changes, in no particular order.
    pub fn into_changes(self) -> impl Iterator<Item = CellChange> {
        self.0
            .into_iter()
            .filter(|(_, (clusters, nodes))| *clusters != 0 || *nodes != 0)
            .map(|((week, dimension, value), (clusters, nodes))| CellChange {
                week,
                dimension,
                value,
                clusters,
                nodes,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::report::{Extension, Node};

    fn report(arch: &str, extensions: &[(&str, &str)]) -> Report {
        Report {
            master_version: Some("v1.31.2".into()),
            nodes: vec![
                Node {
                    architecture: Some(arch.into()),
                    ..Node::default()
                };
                2
            ],
            extensions: extensions
                .iter()
                .map(|(name, value)| Extension {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            ..Report::default()
        }
    }

    #[test]
    fn a_report_counts_once_per_cell_and_a_replaced_one_leaves_no_trace() {
        let cells = contributions(&report(
            "amd64",
            &[("example.com/team", "blue"), ("example.com/team", "red")],
        ));
        let team: Vec<_> = cells
            .iter()
            .filter(|c| c.dimension == "extension:example.com/team")
            .collect();
        assert_eq!(team.len(), 1, "a repeated key counts once");
        assert_eq!(team[0].value, "blue");
        assert_eq!(
            cells
                .iter()
                .filter(|c| c.dimension == "architecture")
                .map(|c| (c.value.as_str(), c.nodes))
                .collect::<Vec<_>>(),
            [("amd64", 2)]
        );

        let week = Week::of(0);
        let mut deltas = CellDeltas::default();
        deltas.add(week, &report("amd64", &[]), 1);
        deltas.add(week, &report("amd64", &[]), -1);
        deltas.add(week, &report("arm64", &[]), 1);
        let changes: Vec<CellChange> = deltas.into_changes().collect();
        let arch: Vec<_> = changes
            .iter()
            .filter(|c| c.dimension == "architecture")
            .collect();
        assert_eq!(arch.len(), 1, "amd64 came and went: {arch:?}");
        assert_eq!((arch[0].value.as_str(), arch[0].clusters), ("arm64", 1));
        assert_eq!(arch[0].nodes, 2);
        let minor: Vec<_> = changes
            .iter()
            .filter(|c| c.dimension == "server-version-minor")
            .map(|c| (c.value.as_str(), c.clusters, c.nodes))
            .collect();
        assert_eq!(minor, [("v1.31", 1, 2)]);
    }
}
