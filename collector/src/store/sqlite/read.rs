//! Read queries behind the admin read API: clusters, a cluster's reports, fleet statistics.

use std::sync::LazyLock;

use common::report::NodeFact;
use rusqlite::{Connection, OptionalExtension, params};

use super::sql::{parsed, report_body, report_id};
use crate::store::listing::{ClusterSummary, NOT_REPORTED, Stats, StoredReport};
use crate::store::records::NODE_FACT_COLUMNS;

/// Clusters in id order, starting after `after`.
pub fn clusters(
    conn: &Connection,
    after: Option<&str>,
    limit: usize,
) -> rusqlite::Result<Vec<ClusterSummary>> {
    let mut statement = conn.prepare_cached(
        "SELECT cluster_id, first_seen, last_seen, reports, latest_master_version, latest_node_count \
         FROM clusters WHERE cluster_id > ?1 ORDER BY cluster_id LIMIT ?2",
    )?;
    let rows = statement.query_map(params![after.unwrap_or(""), limit as i64], |row| {
        Ok(ClusterSummary {
            cluster_id: row.get(0)?,
            first_seen: row.get(1)?,
            last_seen: row.get(2)?,
            reports: row.get(3)?,
            latest_master_version: row.get(4)?,
            latest_node_count: row.get(5)?,
        })
    })?;
    rows.collect()
}

/// Folds every cluster id into `into` with `add`.
pub fn fold_cluster_ids<T, F: FnMut(&mut T, &str)>(
    conn: &Connection,
    mut into: T,
    mut add: F,
) -> rusqlite::Result<T> {
    let mut statement = conn.prepare("SELECT cluster_id FROM clusters")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        add(&mut into, row.get_ref(0)?.as_str()?);
    }
    Ok(into)
}

/// The number `clusters` gave the cluster `cluster_id` when it was first seen, if it is known.
pub(super) fn cluster_number(conn: &Connection, cluster_id: &str) -> rusqlite::Result<Option<i64>> {
    conn.prepare_cached("SELECT cluster_no FROM clusters WHERE cluster_id = ?1")?
        .query_row([cluster_id], |row| row.get(0))
        .optional()
}

/// A cluster's reports, newest first, older than the `before` cursor; `None` for an unknown
/// cluster.
pub fn cluster_reports(
    conn: &Connection,
    cluster_id: &str,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Option<Vec<StoredReport>>> {
    let Some(cluster_no) = cluster_number(conn, cluster_id)? else {
        return Ok(None);
    };
    let mut statement = conn.prepare_cached(
        "SELECT r.seq, r.id, r.report_time, r.time_source, r.received_at, r.body \
         FROM (SELECT seq FROM report_keys WHERE cluster_no = ?1 AND seq < ?2 \
               ORDER BY seq DESC LIMIT ?3) k \
         CROSS JOIN reports r ON r.seq = k.seq ORDER BY r.seq DESC",
    )?;
    let rows = statement.query_map(
        params![cluster_no, before.unwrap_or(i64::MAX), limit as i64],
        |row| {
            let seq: i64 = row.get(0)?;
            let report_time: i64 = row.get(2)?;
            Ok(StoredReport {
                seq,
                id: report_id(row, 1, seq)?.to_string(),
                report_time,
                time_source: parsed(row, 3, "time_source", seq)?,
                received_at: row.get(4)?,
                report: report_body(row, 5, seq, report_time)?,
            })
        },
    )?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map(Some)
}

/// Nodes of the latest reports of clusters seen since `?1`, by every counted fact.
static NODE_STATS: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<String> = NODE_FACT_COLUMNS.iter().map(|c| format!("n.{c}")).collect();
    let groups: Vec<String> = (1..=columns.len()).map(|i| i.to_string()).collect();
    format!(
        "SELECT {}, sum(n.nodes) FROM clusters c JOIN report_nodes n ON n.report_seq = c.latest_seq \
         WHERE c.last_seen >= ?1 GROUP BY {}",
        columns.join(", "),
        groups.join(", ")
    )
});

/// Statistics over the clusters last seen at or after `since` (unix seconds).
pub fn stats(conn: &Connection, since: i64) -> rusqlite::Result<Stats> {
    let mut stats = Stats::default();
    let label = |value: Option<String>| match value {
        Some(v) if !v.is_empty() => v,
        _ => NOT_REPORTED.to_string(),
    };
    let mut versions = conn.prepare_cached(
        "SELECT latest_master_version, count(*) FROM clusters WHERE last_seen >= ?1 GROUP BY 1",
    )?;
    for row in versions.query_map([since], |row| Ok((row.get(0)?, row.get::<_, i64>(1)?)))? {
        let (version, clusters) = row?;
        stats.clusters += clusters;
        *stats.master_versions.entry(label(version)).or_default() += clusters;
    }
    let mut nodes = conn.prepare_cached(&NODE_STATS)?;
    let rows = nodes.query_map([since], |row| {
        let mut values: [Option<String>; NodeFact::COUNTED.len()] = Default::default();
        for (i, value) in values.iter_mut().enumerate() {
            *value = row.get(i)?;
        }
        Ok((values, row.get::<_, i64>(NodeFact::COUNTED.len())?))
    })?;
    for row in rows {
        let (values, count) = row?;
        stats.nodes += count;
        for (fact, value) in NodeFact::COUNTED.into_iter().zip(values) {
            *stats
                .node_facts
                .entry(fact)
                .or_default()
                .entry(label(value))
                .or_default() += count;
        }
    }
    Ok(stats)
}

/// Reports in the store (from the per-cluster counts, without a table scan).
pub fn report_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT coalesce(sum(reports), 0) FROM clusters",
        [],
        |row| row.get(0),
    )
}
