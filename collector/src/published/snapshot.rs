//! The published statistics in memory: every kept week's summary and thresholded cells, rebuilt
//! from what changed after each rollup, and the views the API serves from them.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::views::{DimensionSeries, ExportView, ValueSeries, WeekView, WeeklyView};
use crate::stats::{
    Cell, EXTENSION_KEYS, EXTENSION_PREFIX, NOT_REPORTED, OTHER, REGISTRY, Scope, Week, dimensions,
    publish_week,
};
use crate::store::{CHURN_WEEKS, WeekSummary, WeeklyChanges};

/// One dimension as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct DimensionInfo {
    /// Name, for `?dimension=`: e.g. `architecture` or `extension:example.com/team`.
    pub name: String,
    /// What it counts.
    pub description: String,
    /// `cluster` or `node`: what its cells count.
    pub scope: Scope,
}

/// The statistics as published at one moment; immutable, shared by every request.
#[derive(Debug, Default)]
pub struct Published {
    /// False until the first rollup after startup has finished.
    pub ready: bool,
    /// Grows with every rebuild (the `ETag` of the answers).
    pub generation: u64,
    /// The minimum group size applied.
    pub min_group_clusters: i64,
    /// Unix seconds of the rebuild.
    pub built_at: i64,
    revisions: BTreeMap<Week, i64>,
    cells: BTreeMap<Week, Arc<BTreeMap<String, Vec<Cell>>>>,
    summaries: BTreeMap<Week, WeekSummary>,
    dimensions: Vec<DimensionInfo>,
    export_json: OnceLock<Bytes>,
    export_csv: OnceLock<Bytes>,
}

impl Published {
    /// Revisions of the weeks it holds, for the next read of changes.
    pub fn revisions(&self) -> &BTreeMap<Week, i64> {
        &self.revisions
    }

    /// A new snapshot: this one with `changes` applied, cells thresholded at `k`, as of `now`.
    pub fn apply(&self, changes: WeeklyChanges, k: i64, now: i64) -> Published {
        let mut cells = self.cells.clone();
        cells.retain(|week, _| changes.revisions.contains_key(week));
        for (week, raw) in changes.cells {
            cells.insert(week, Arc::new(publish_week(raw, k)));
        }
        let dimensions = dimensions_of(&cells);
        Published {
            ready: true,
            generation: self.generation + 1,
            min_group_clusters: k,
            built_at: now,
            revisions: changes.revisions,
            cells,
            summaries: changes.summaries,
            dimensions,
            export_json: OnceLock::new(),
            export_csv: OnceLock::new(),
        }
    }

    /// Every dimension a request may name: the registry, then one per extension key that some
    /// kept week publishes.
    pub fn dimensions(&self) -> &[DimensionInfo] {
        &self.dimensions
    }

    /// The week that was running when the snapshot was built: the first one it does not publish.
    pub fn current_week(&self) -> Week {
        Week::of(self.built_at)
    }

    /// The last `count` complete weeks, oldest first. Only whole weeks are published: numbers of
    /// a running week, changing with each rollup, could be subtracted from each other to single
    /// out the few clusters that reported in between.
    pub fn last_weeks(&self, count: usize) -> Vec<Week> {
        let current = self.current_week();
        (1..=count as i64)
            .rev()
            .map(|back| current.plus(-back))
            .collect()
    }

    /// Every kept complete week, oldest first.
    pub fn kept_weeks(&self) -> Vec<Week> {
        let Some(first) = self.revisions.keys().next().copied() else {
            return Vec::new();
        };
        let mut weeks = Vec::new();
        let mut week = first;
        while week < self.current_week() {
            weeks.push(week);
            week = week.plus(1);
        }
        weeks
    }

    /// The weekly view of `dimension` (or of the totals alone) over `weeks`; `None` for a
    /// dimension it does not publish.
    pub fn weekly(&self, dimension: Option<&str>, weeks: &[Week]) -> Option<WeeklyView> {
        let dimension = match dimension {
            Some(name) => Some(self.series(name, weeks)?),
            None => None,
        };
        Some(WeeklyView {
            min_group_clusters: self.min_group_clusters,
            weeks: self.week_views(weeks),
            headline: self.headline(),
            dimension,
        })
    }

    /// Every published dimension over every kept week: the open data set, as JSON.
    pub fn export_json(&self) -> Bytes {
        self.export_json
            .get_or_init(|| {
                Bytes::from(serde_json::to_vec(&self.export()).expect("views serialize"))
            })
            .clone()
    }

    /// The open data set as CSV (see [`super::views::export_csv`]).
    pub fn export_csv(&self) -> Bytes {
        self.export_csv
            .get_or_init(|| Bytes::from(super::views::export_csv(&self.export())))
            .clone()
    }

    fn export(&self) -> ExportView {
        let weeks = self.kept_weeks();
        ExportView {
            min_group_clusters: self.min_group_clusters,
            generated_at: common::time::rfc3339(self.built_at),
            weeks: self.week_views(&weeks),
            headline: self.headline(),
            dimensions: self
                .dimensions()
                .iter()
                .filter_map(|d| self.series(&d.name, &weeks))
                .collect(),
        }
    }

    fn week_views(&self, weeks: &[Week]) -> Vec<WeekView> {
        weeks.iter().map(|week| self.week_view(*week)).collect()
    }

    /// A week's totals; its churn only when the week four weeks before is kept (before that,
    /// nobody can say who left).
    fn week_view(&self, week: Week) -> WeekView {
        let summary = self.summaries.get(&week).copied().unwrap_or_default();
        let churn_known = self
            .revisions
            .keys()
            .next()
            .is_some_and(|first| week.plus(-CHURN_WEEKS) >= *first);
        WeekView::new(week, summary, churn_known)
    }

    /// The last complete week, the one headline figures use, once there is one.
    fn headline(&self) -> Option<WeekView> {
        let week = self.current_week().plus(-1);
        let first = self.revisions.keys().next()?;
        (week >= *first).then(|| self.week_view(week))
    }

    fn series(&self, name: &str, weeks: &[Week]) -> Option<DimensionSeries> {
        let info = self.dimensions.iter().find(|d| d.name == name)?.clone();
        let mut values: BTreeMap<&str, ValueSeries> = BTreeMap::new();
        for (index, week) in weeks.iter().enumerate() {
            let Some(cells) = self.cells.get(week).and_then(|cells| cells.get(name)) else {
                continue;
            };
            for cell in cells {
                let series = values
                    .entry(cell.value.as_str())
                    .or_insert_with(|| ValueSeries::empty(&cell.value, weeks.len()));
                series.clusters[index] = cell.clusters;
                series.nodes[index] = cell.nodes;
            }
        }
        let mut values: Vec<ValueSeries> = values.into_values().collect();
        let order = dimensions::registered(name).and_then(|d| d.order.as_ref());
        let rank = |series: &ValueSeries| {
            let listed = order
                .and_then(|order| order.iter().position(|v| *v == series.value))
                .unwrap_or(usize::MAX);
            let last = [OTHER, NOT_REPORTED]
                .iter()
                .position(|v| *v == series.value)
                .map_or(0, |i| i + 1);
            let total: i64 = series.clusters.iter().sum();
            (last, listed, -total)
        };
        values.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.value.cmp(&b.value)));
        Some(DimensionSeries {
            name: info.name,
            description: info.description,
            scope: info.scope,
            values,
        })
    }
}

/// The registry's dimensions, then one per extension key that some week of `cells` publishes.
fn dimensions_of(cells: &BTreeMap<Week, Arc<BTreeMap<String, Vec<Cell>>>>) -> Vec<DimensionInfo> {
    let mut list: Vec<DimensionInfo> = REGISTRY
        .iter()
        .map(|d| DimensionInfo {
            name: d.name.clone(),
            description: d.description.clone(),
            scope: d.scope,
        })
        .collect();
    let mut keys: Vec<&str> = cells
        .values()
        .filter_map(|week| week.get(EXTENSION_KEYS))
        .flatten()
        .map(|cell| cell.value.as_str())
        .filter(|key| *key != OTHER)
        .collect();
    keys.sort_unstable();
    keys.dedup();
    list.extend(keys.into_iter().map(|key| DimensionInfo {
        name: format!("{EXTENSION_PREFIX}{key}"),
        description: format!("Clusters by the value of the extension {key}"),
        scope: Scope::Cluster,
    }));
    list
}
