//! A rollup step's and an erasure's arithmetic, whichever backend reads the rows: which report of
//! a chunk counts for each cluster-week, and what folding it (or erasing a cluster) changes in the
//! cells, the week totals, the clusters' first weeks and the churn. The backend hands in what is
//! stored through lookups, and writes what comes out.

use std::collections::{BTreeMap, BTreeSet};

use common::Report;

use super::changes::{CHURN_WEEKS, Changes, Prepared, churn_candidates};
use crate::stats::Week;

/// The latest report of one cluster-week in a chunk.
pub(in crate::store) struct Latest {
    seq: i64,
    received_at: i64,
    report: Report,
}

/// The latest report of each cluster-week of a chunk, by cluster number.
#[derive(Default)]
pub(in crate::store) struct Chunk(BTreeMap<i64, BTreeMap<Week, Latest>>);

impl Chunk {
    /// Takes the next report of the chunk (in seq order) into `prepared`'s count and watermark,
    /// and keeps it when it is the latest of its cluster-week so far. A report received in a week
    /// before `keep_from` (past retention) is not counted, nor one without a cluster (none
    /// should exist) or whose body `read_body` cannot read (it says why); the body is read only
    /// when the report is kept.
    pub(in crate::store) fn add<E>(
        &mut self,
        prepared: &mut Prepared,
        seq: i64,
        cluster_no: Option<i64>,
        received_at: i64,
        keep_from: i64,
        read_body: impl FnOnce() -> Result<Option<Report>, E>,
    ) -> Result<(), E> {
        prepared.reports += 1;
        prepared.watermark.1 = seq;
        let week = Week::of(received_at);
        if week.start() < keep_from {
            return Ok(());
        }
        let Some(cluster_no) = cluster_no else {
            tracing::warn!(
                seq,
                "a stored report has no cluster; the weekly statistics leave it out"
            );
            return Ok(());
        };
        if self
            .0
            .get(&cluster_no)
            .and_then(|weeks| weeks.get(&week))
            .is_some_and(|known| (known.received_at, known.seq) > (received_at, seq))
        {
            return Ok(());
        }
        // A cluster is kept only with a week: one whose every report is unreadable is not.
        if let Some(report) = read_body()? {
            self.0.entry(cluster_no).or_default().insert(
                week,
                Latest {
                    seq,
                    received_at,
                    report,
                },
            );
        }
        Ok(())
    }

    /// The chunk's clusters, each with its kept cluster-weeks.
    pub(in crate::store) fn into_clusters(self) -> impl Iterator<Item = (i64, ClusterWeeks)> {
        self.0
            .into_iter()
            .map(|(cluster_no, weeks)| (cluster_no, ClusterWeeks(weeks)))
    }
}

/// One cluster's kept cluster-weeks of a chunk.
pub(in crate::store) struct ClusterWeeks(BTreeMap<Week, Latest>);

impl ClusterWeeks {
    /// The weeks of the chunk.
    pub(in crate::store) fn weeks(&self) -> impl Iterator<Item = Week> + '_ {
        self.0.keys().copied()
    }
}

/// A cluster-week already counted in the statistics.
pub(in crate::store) struct Counted {
    /// Its report.
    pub seq: i64,
    /// When that report was received.
    pub received_at: i64,
    /// Its nodes, as counted.
    pub nodes: i64,
    /// The report, `None` when it cannot be read.
    pub report: Option<Report>,
}

/// The weeks whose stored presence the churn around a cluster's new weeks (`earliest` to
/// `latest`) depends on: none before its first week, none after the last week with statistics.
/// Empty (`from` after `through`) for a cluster never counted, or before any statistics.
fn churn_window(
    first: Option<Week>,
    earliest: Week,
    latest: Week,
    last_week: Option<Week>,
) -> (Week, Week) {
    let from = match first {
        Some(first) => earliest.plus(-CHURN_WEEKS).max(first),
        None => latest.plus(1),
    };
    let through = match last_week {
        Some(last) => latest.plus(CHURN_WEEKS).min(last),
        None => earliest.plus(-1),
    };
    (from, through)
}

/// Folds one cluster's latest reports of a chunk, week by week, against what is stored: its
/// first week (`first`), the report counted in a week (`counted`, asked only for weeks at or
/// after `first`) and whether a week is counted at all (`stored`, asked only in the
/// [`churn_window`]). `last_week` is the last week with statistics.
pub(in crate::store) fn fold_cluster<E>(
    prepared: &mut Prepared,
    cluster_no: i64,
    weeks: ClusterWeeks,
    last_week: Option<Week>,
    first: Option<Week>,
    mut counted: impl FnMut(Week) -> Result<Option<Counted>, E>,
    mut stored: impl FnMut(Week) -> Result<bool, E>,
) -> Result<(), E> {
    let changes = &mut prepared.changes;
    let mut arrived = BTreeSet::new();
    for (week, latest) in weeks.0 {
        let nodes = latest.report.nodes.len() as i64;
        let before = if first.is_some_and(|first| first <= week) {
            counted(week)?
        } else {
            None
        };
        match before {
            Some(before) if (before.received_at, before.seq) > (latest.received_at, latest.seq) => {
                continue;
            }
            Some(before) => {
                if let Some(report) = &before.report {
                    changes.cells.add(week, report, -1);
                }
                changes.totals(week).nodes += nodes - before.nodes;
            }
            None => {
                let totals = changes.totals(week);
                totals.active += 1;
                totals.nodes += nodes;
                arrived.insert(week);
            }
        }
        changes.cells.add(week, &latest.report, 1);
        prepared
            .rows
            .push((week, cluster_no, latest.seq, latest.received_at, nodes));
    }
    let (Some(earliest), Some(latest)) = (arrived.first().copied(), arrived.last().copied()) else {
        return Ok(());
    };
    // New: the cluster's first week, if one arrived before it.
    if first.is_none_or(|first| earliest < first) {
        if let Some(first) = first {
            changes.totals(first).new -= 1;
        }
        changes.totals(earliest).new += 1;
        prepared.firsts.push((cluster_no, earliest));
    }
    // Churn: from the cluster's stored weeks around the arrivals, before and after.
    let (from, through) = churn_window(first, earliest, latest, last_week);
    let mut present: BTreeSet<Week> = BTreeSet::new();
    let mut week = from;
    while week <= through {
        if !arrived.contains(&week) && stored(week)? {
            present.insert(week);
        }
        week = week.plus(1);
    }
    let candidates = churn_candidates(arrived.iter());
    changes.churn(&present, &candidates, -1);
    present.extend(arrived);
    changes.churn(&present, &candidates, 1);
    Ok(())
}

/// What erasing a cluster changes: `counted` holds each week it is counted in, with its nodes
/// and report there (`None` when unreadable); `first` is its first week.
pub(in crate::store) fn erasure(
    counted: &[(Week, i64, Option<Report>)],
    first: Option<Week>,
) -> Changes {
    let mut changes = Changes::default();
    let weeks: BTreeSet<Week> = counted.iter().map(|(week, ..)| *week).collect();
    for (week, nodes, report) in counted {
        if let Some(report) = report {
            changes.cells.add(*week, report, -1);
        }
        let totals = changes.totals(*week);
        totals.active -= 1;
        totals.nodes -= nodes;
    }
    if let Some(first) = first.filter(|first| weeks.contains(first)) {
        changes.totals(first).new -= 1;
    }
    changes.churn(&weeks, &churn_candidates(weeks.iter()), -1);
    changes
}
