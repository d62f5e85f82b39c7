//! The fold: what one report adds to its week's cells, and the sum of many such changes.

use std::borrow::Cow;

use common::Report;
use rustc_hash::FxHashMap;

use super::dimensions::{EXTENSION_PREFIX, NOT_REPORTED, REGISTRY};
use super::week::Week;

/// One report's part in one cell of its week: a value of a dimension and the nodes it adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution<'r> {
    /// Dimension name.
    pub dimension: Cow<'static, str>,
    /// The value.
    pub value: Cow<'r, str>,
    /// Nodes it adds.
    pub nodes: i64,
}

/// Every cell `report` counts in, once each: the registered dimensions, then each extension
/// key's value.
pub fn contributions(report: &Report) -> Vec<Contribution<'_>> {
    let mut cells = Vec::with_capacity(REGISTRY.len() + report.extensions.len() + 8);
    for dimension in REGISTRY.iter() {
        for (value, nodes) in dimension.values(report).into_inner() {
            cells.push(Contribution {
                dimension: Cow::Borrowed(dimension.name.as_str()),
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
                dimension: Cow::Owned(format!("{EXTENSION_PREFIX}{}", extension.name)),
                value: Cow::Borrowed(value),
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

/// Clusters and nodes added to the cells of one dimension, by value.
type ValueDeltas = FxHashMap<String, (i64, i64)>;

/// Changes to cells, summed per cell, so that a batch of reports writes each cell once. Keyed
/// week, then dimension, then value, so that adding a report allocates only for cells it is the
/// first to change.
#[derive(Debug, Default)]
pub struct CellDeltas(FxHashMap<Week, FxHashMap<Cow<'static, str>, ValueDeltas>>);

impl CellDeltas {
    /// Counts `report` in `week` (`sign` 1), or takes it out again (`sign` -1).
    pub fn add(&mut self, week: Week, report: &Report, sign: i64) {
        let dimensions = self.0.entry(week).or_default();
        for cell in contributions(report) {
            if !dimensions.contains_key(cell.dimension.as_ref()) {
                dimensions.insert(cell.dimension.clone(), ValueDeltas::default());
            }
            let values = dimensions
                .get_mut(cell.dimension.as_ref())
                .expect("inserted above");
            if !values.contains_key(cell.value.as_ref()) {
                values.insert(cell.value.to_string(), (0, 0));
            }
            let entry = values.get_mut(cell.value.as_ref()).expect("inserted above");
            entry.0 += sign;
            entry.1 += sign * cell.nodes;
        }
    }

    /// The non-zero changes, in no particular order.
    pub fn into_changes(self) -> impl Iterator<Item = CellChange> {
        self.0.into_iter().flat_map(|(week, dimensions)| {
            dimensions.into_iter().flat_map(move |(dimension, values)| {
                values
                    .into_iter()
                    .filter(|(_, (clusters, nodes))| *clusters != 0 || *nodes != 0)
                    .map(move |(value, (clusters, nodes))| CellChange {
                        week,
                        dimension: dimension.to_string(),
                        value,
                        clusters,
                        nodes,
                    })
            })
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
        let two_teams = report(
            "amd64",
            &[("example.com/team", "blue"), ("example.com/team", "red")],
        );
        let cells = contributions(&two_teams);
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
                .map(|c| (c.value.as_ref(), c.nodes))
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
