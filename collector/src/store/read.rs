//! Read queries behind the admin read API: clusters, a cluster's reports, fleet statistics.

use std::collections::BTreeMap;

use common::report::Report;
use common::time::TimeSource;
use rusqlite::{Connection, OptionalExtension, params};

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
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Clusters seen.
    pub clusters: i64,
    /// Nodes in their latest reports.
    pub nodes: i64,
    /// Clusters by `masterVersion`.
    pub master_versions: BTreeMap<String, i64>,
    /// Nodes by `operatingSystem`.
    pub operating_systems: BTreeMap<String, i64>,
    /// Nodes by `osImage`.
    pub os_images: BTreeMap<String, i64>,
    /// Nodes by `architecture`.
    pub architectures: BTreeMap<String, i64>,
    /// Nodes by `containerRuntimeVersion`.
    pub container_runtimes: BTreeMap<String, i64>,
    /// Nodes by `kubeletVersion`.
    pub kubelet_versions: BTreeMap<String, i64>,
    /// Nodes by `cloudProvider`.
    pub cloud_providers: BTreeMap<String, i64>,
}

/// What a missing value is counted as in statistics.
pub const NOT_REPORTED: &str = "(not reported)";

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

/// A cluster's reports, newest first, older than the `before` cursor; `None` for an unknown
/// cluster.
pub fn cluster_reports(
    conn: &Connection,
    cluster_id: &str,
    before: Option<i64>,
    limit: usize,
) -> rusqlite::Result<Option<Vec<StoredReport>>> {
    let known = conn
        .query_row(
            "SELECT 1 FROM clusters WHERE cluster_id = ?1",
            [cluster_id],
            |_| Ok(()),
        )
        .optional()?;
    if known.is_none() {
        return Ok(None);
    }
    let mut statement = conn.prepare_cached(
        "SELECT seq, id, report_time, time_source, received_at, body FROM reports \
         WHERE cluster_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3",
    )?;
    let rows = statement.query_map(
        params![cluster_id, before.unwrap_or(i64::MAX), limit as i64],
        |row| {
            let body: String = row.get(5)?;
            let report_time: i64 = row.get(2)?;
            let source: String = row.get(3)?;
            let mut report: Report = serde_json::from_str(&body).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    5,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?;
            report.timestamp = report_time.to_string();
            Ok(StoredReport {
                seq: row.get(0)?,
                id: uuid::Uuid::from_slice(&row.get::<_, Vec<u8>>(1)?)
                    .map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            1,
                            rusqlite::types::Type::Blob,
                            Box::new(e),
                        )
                    })?
                    .to_string(),
                report_time,
                time_source: TimeSource::parse(&source).unwrap_or(TimeSource::Received),
                received_at: row.get(4)?,
                report,
            })
        },
    )?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map(Some)
}

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
    let mut nodes = conn.prepare_cached(
        "SELECT n.operating_system, n.os_image, n.architecture, n.container_runtime, \
                n.kubelet_version, n.cloud_provider, sum(n.nodes) \
         FROM clusters c JOIN report_nodes n ON n.report_seq = c.latest_seq \
         WHERE c.last_seen >= ?1 GROUP BY 1, 2, 3, 4, 5, 6",
    )?;
    let rows = nodes.query_map([since], |row| {
        Ok((
            [
                row.get::<_, Option<String>>(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ],
            row.get::<_, i64>(6)?,
        ))
    })?;
    for row in rows {
        let ([os, image, arch, runtime, kubelet, cloud], count) = row?;
        stats.nodes += count;
        for (map, value) in [
            (&mut stats.operating_systems, os),
            (&mut stats.os_images, image),
            (&mut stats.architectures, arch),
            (&mut stats.container_runtimes, runtime),
            (&mut stats.kubelet_versions, kubelet),
            (&mut stats.cloud_providers, cloud),
        ] {
            *map.entry(label(value)).or_default() += count;
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
