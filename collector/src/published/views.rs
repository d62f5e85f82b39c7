//! What the statistics endpoints answer: the JSON views (in the OpenAPI document) and their CSV
//! form, one row per week and value.

use serde::Serialize;
use utoipa::ToSchema;

use crate::stats::{Scope, Week};
use crate::store::WeekSummary;

/// One complete week's totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeekView {
    /// ISO 8601 week, e.g. `2026-W49` (weeks are counted in UTC).
    pub week: String,
    /// Its Monday, `YYYY-MM-DD`.
    pub start: String,
    /// Clusters with a report received in the week.
    pub active: i64,
    /// Active clusters seen in no earlier kept week.
    pub new: i64,
    /// Active clusters seen in an earlier week too.
    pub returning: i64,
    /// Clusters active four weeks before and in none of the weeks since, this one included;
    /// `null` for the first four kept weeks, which lack that history.
    pub churned: Option<i64>,
    /// Nodes of the active clusters.
    pub nodes: i64,
}

impl WeekView {
    pub(super) fn new(week: Week, summary: WeekSummary, churn_known: bool) -> Self {
        WeekView {
            week: week.to_string(),
            start: week.start_date(),
            active: summary.active,
            new: summary.new,
            returning: summary.returning(),
            churned: churn_known.then_some(summary.churned),
            nodes: summary.nodes,
        }
    }
}

/// One value of a dimension, week by week (aligned with `weeks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ValueSeries {
    /// The value; `other` holds every group of fewer clusters than the minimum group size.
    pub value: String,
    /// Clusters with the value, per week.
    pub clusters: Vec<i64>,
    /// Nodes with the value (for a cluster dimension: the nodes of those clusters), per week.
    pub nodes: Vec<i64>,
}

impl ValueSeries {
    pub(super) fn empty(value: &str, weeks: usize) -> Self {
        ValueSeries {
            value: value.to_string(),
            clusters: vec![0; weeks],
            nodes: vec![0; weeks],
        }
    }
}

/// One dimension over the weeks asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DimensionSeries {
    /// Dimension name.
    pub name: String,
    /// What it counts.
    pub description: String,
    /// `cluster`: one value per cluster; `node`: a cluster counts under each value its nodes
    /// have.
    pub scope: Scope,
    /// Its values, in their natural order for buckets, else most clusters first; `other` and
    /// `(not reported)` last.
    pub values: Vec<ValueSeries>,
}

/// `GET /api/v1/stats/weekly`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WeeklyView {
    /// Cells counted from fewer clusters than this are folded into `other`.
    pub min_group_clusters: i64,
    /// The complete weeks asked for, oldest first (the running week is never published).
    pub weeks: Vec<WeekView>,
    /// The last complete week, which headline figures use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headline: Option<WeekView>,
    /// The dimension asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimension: Option<DimensionSeries>,
}

/// `GET /api/v1/stats/export`: the open data set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExportView {
    /// Cells counted from fewer clusters than this are folded into `other`.
    pub min_group_clusters: i64,
    /// When the statistics were last rolled up (RFC 3339).
    pub generated_at: String,
    /// Every kept complete week, oldest first.
    pub weeks: Vec<WeekView>,
    /// The last complete week.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headline: Option<WeekView>,
    /// Every published dimension.
    pub dimensions: Vec<DimensionSeries>,
}

/// Columns of the CSV forms.
pub const CSV_HEADER: [&str; 6] = [
    "week",
    "week_start",
    "dimension",
    "value",
    "clusters",
    "nodes",
];

/// Rows of the weekly totals in the CSV forms: dimension `fleet`, values `active`, `new`,
/// `returning` and `churned` (nodes only for `active`; `churned` empty while unknown).
pub const FLEET: &str = "fleet";

/// The weekly view as CSV: the totals as `fleet` rows, then the dimension's values.
pub fn weekly_csv(view: &WeeklyView) -> Vec<u8> {
    csv_rows(&view.weeks, view.dimension.iter())
}

/// The export as CSV, the same columns as [`weekly_csv`].
pub fn export_csv(view: &ExportView) -> Vec<u8> {
    csv_rows(&view.weeks, view.dimensions.iter())
}

fn csv_rows<'a>(
    weeks: &[WeekView],
    dimensions: impl Iterator<Item = &'a DimensionSeries>,
) -> Vec<u8> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(CSV_HEADER).expect("writing to memory");
    let mut row = |week: &WeekView,
                   dimension: &str,
                   value: &str,
                   clusters: Option<i64>,
                   nodes: Option<i64>| {
        let clusters = clusters.map(|n| n.to_string()).unwrap_or_default();
        let nodes = nodes.map(|n| n.to_string()).unwrap_or_default();
        out.write_record([&week.week, &week.start, dimension, value, &clusters, &nodes])
            .expect("writing to memory");
    };
    for week in weeks {
        row(week, FLEET, "active", Some(week.active), Some(week.nodes));
        row(week, FLEET, "new", Some(week.new), None);
        row(week, FLEET, "returning", Some(week.returning), None);
        row(week, FLEET, "churned", week.churned, None);
    }
    for dimension in dimensions {
        for (index, week) in weeks.iter().enumerate() {
            for series in &dimension.values {
                if series.clusters[index] > 0 || series.nodes[index] > 0 {
                    row(
                        week,
                        &dimension.name,
                        &series.value,
                        Some(series.clusters[index]),
                        Some(series.nodes[index]),
                    );
                }
            }
        }
    }
    out.into_inner().expect("writing to memory")
}
