//! The minimum group size: a published cell counts at least k distinct clusters; smaller ones
//! are folded into `other`, and an extension key seen in fewer than k clusters is not named.

use std::collections::BTreeMap;

use serde::Serialize;

use super::dimensions::{EXTENSION_KEYS, EXTENSION_PREFIX, OTHER};

/// One value of a dimension in one week.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    /// The value.
    pub value: String,
    /// Distinct clusters with it.
    pub clusters: i64,
    /// Nodes with it (for a cluster dimension: the nodes of those clusters).
    pub nodes: i64,
}

/// One week's cells as published: per dimension, every cell of fewer than `k` clusters folded
/// into `other`; the values of an extension key that fewer than `k` clusters reported that
/// week are left out, its clusters counted under `other` of [`EXTENSION_KEYS`].
pub fn publish_week(raw: Vec<(String, Cell)>, k: i64) -> BTreeMap<String, Vec<Cell>> {
    let mut by_dimension: BTreeMap<String, Vec<Cell>> = BTreeMap::new();
    for (dimension, cell) in raw {
        by_dimension.entry(dimension).or_default().push(cell);
    }
    let published_keys: Vec<String> = by_dimension
        .get(EXTENSION_KEYS)
        .map(|keys| {
            keys.iter()
                .filter(|key| key.clusters >= k && key.value != OTHER)
                .map(|key| key.value.clone())
                .collect()
        })
        .unwrap_or_default();
    by_dimension.retain(
        |dimension, _| match dimension.strip_prefix(EXTENSION_PREFIX) {
            Some(key) => published_keys.iter().any(|published| published == key),
            None => true,
        },
    );
    by_dimension
        .into_iter()
        .map(|(dimension, cells)| (dimension, fold_small(cells, k)))
        .collect()
}

/// Folds every cell of fewer than `k` clusters into `other` (beside any value already called
/// so); the sums of clusters and nodes are unchanged.
pub fn fold_small(cells: Vec<Cell>, k: i64) -> Vec<Cell> {
    let mut other = Cell {
        value: OTHER.to_string(),
        clusters: 0,
        nodes: 0,
    };
    let mut kept = Vec::with_capacity(cells.len());
    for cell in cells {
        if cell.clusters < k || cell.value == OTHER {
            other.clusters += cell.clusters;
            other.nodes += cell.nodes;
        } else {
            kept.push(cell);
        }
    }
    if other.clusters > 0 || other.nodes > 0 {
        kept.push(other);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(value: &str, clusters: i64) -> Cell {
        Cell {
            value: value.into(),
            clusters,
            nodes: clusters * 3,
        }
    }

    #[test]
    fn groups_smaller_than_k_are_folded_into_other_and_totals_stay_exact() {
        let published = fold_small(
            vec![
                cell("amd64", 40),
                cell("arm64", 5),
                cell("s390x", 4),
                cell("other", 2),
            ],
            5,
        );
        assert_eq!(
            published,
            [cell("amd64", 40), cell("arm64", 5), cell("other", 6)]
        );
        assert_eq!(fold_small(vec![cell("amd64", 4)], 5), [cell("other", 4)]);
        assert_eq!(fold_small(vec![cell("amd64", 4)], 1), [cell("amd64", 4)]);
    }

    #[test]
    fn a_rare_extension_key_is_not_named_anywhere() {
        let raw = vec![
            (EXTENSION_KEYS.to_string(), cell("example.com/team", 9)),
            (EXTENSION_KEYS.to_string(), cell("acme.corp/secret", 1)),
            ("extension:example.com/team".to_string(), cell("blue", 6)),
            ("extension:example.com/team".to_string(), cell("red", 3)),
            ("extension:acme.corp/secret".to_string(), cell("x", 1)),
        ];
        let published = publish_week(raw, 5);
        let text = format!("{published:?}");
        assert!(!text.contains("acme"), "{text}");
        assert_eq!(
            published[EXTENSION_KEYS],
            [cell("example.com/team", 9), cell("other", 1)]
        );
        assert_eq!(
            published["extension:example.com/team"],
            [cell("blue", 6), cell("other", 3)]
        );
    }
}
