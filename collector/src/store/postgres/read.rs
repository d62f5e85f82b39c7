//! Read queries behind the admin read API, as the embedded store answers them: clusters, a
//! cluster's reports, fleet statistics, every cluster id.

use common::report::NodeFact;
use common::time::TimeSource;
use futures::{TryStreamExt, pin_mut};
use tokio_postgres::{Client, Row};
use uuid::Uuid;

use crate::error::{BoxError, Result};
use crate::store::listing::{
    BadValue, ClusterSummary, NOT_REPORTED, Stats, StoredReport, stored_body,
};
use crate::store::records::NODE_FACT_COLUMNS;

/// Clusters in id order, starting after `after`.
pub async fn clusters(
    client: &Client,
    after: Option<&str>,
    limit: usize,
) -> Result<Vec<ClusterSummary>, BoxError> {
    let rows = client
        .query(
            "SELECT cluster_id, first_seen, last_seen, reports, latest_master_version, \
             latest_node_count FROM clusters WHERE cluster_id > $1 \
             ORDER BY cluster_id LIMIT $2",
            &[&after.unwrap_or(""), &(limit as i64)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ClusterSummary {
            cluster_id: row.get(0),
            first_seen: row.get(1),
            last_seen: row.get(2),
            reports: row.get(3),
            latest_master_version: row.get(4),
            latest_node_count: row.get(5),
        })
        .collect())
}

/// Folds every cluster id into `into` with `add`, streaming the rows.
pub async fn fold_cluster_ids<T, F: FnMut(&mut T, &str)>(
    client: &Client,
    mut into: T,
    mut add: F,
) -> Result<T, BoxError> {
    let rows = client
        .query_raw("SELECT cluster_id FROM clusters", std::iter::empty::<i64>())
        .await?;
    pin_mut!(rows);
    while let Some(row) = rows.try_next().await? {
        add(&mut into, row.get(0));
    }
    Ok(into)
}

/// A cluster's reports, newest first, before seq `before`; `None` for an unknown cluster.
pub async fn cluster_reports(
    client: &Client,
    cluster_id: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<Option<Vec<StoredReport>>, BoxError> {
    let Some(number) = client
        .query_opt(
            "SELECT cluster_no FROM clusters WHERE cluster_id = $1",
            &[&cluster_id],
        )
        .await?
    else {
        return Ok(None);
    };
    let cluster_no: i64 = number.get(0);
    let rows = client
        .query(
            "SELECT seq, id, report_time, time_source, received_at, body FROM reports \
             WHERE cluster_no = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
            &[&cluster_no, &before.unwrap_or(i64::MAX), &(limit as i64)],
        )
        .await?;
    rows.iter()
        .map(stored_report)
        .collect::<Result<_, _>>()
        .map(Some)
}

fn stored_report(row: &Row) -> Result<StoredReport, BoxError> {
    let seq: i64 = row.get(0);
    let id: Uuid = row.get(1);
    let report_time: i64 = row.get(2);
    let time_source: String = row.get(3);
    let body: String = row.get(5);
    let bad = |column, value: String, expected| BadValue {
        seq,
        column,
        value,
        expected,
    };
    Ok(StoredReport {
        seq,
        id: id.to_string(),
        report_time,
        time_source: time_source
            .parse::<TimeSource>()
            .map_err(|_| bad("time_source", time_source.clone(), "a time source"))?,
        received_at: row.get(4),
        report: stored_body(&body, report_time)
            .map_err(|error| bad("body", error.to_string(), "a report"))?,
    })
}

/// Statistics over the clusters last seen at or after `since` (unix seconds).
pub async fn stats(client: &Client, since: i64) -> Result<Stats, BoxError> {
    let mut stats = Stats::default();
    let label = |value: Option<String>| match value {
        Some(v) if !v.is_empty() => v,
        _ => NOT_REPORTED.to_string(),
    };
    for row in client
        .query(
            "SELECT latest_master_version, count(*) FROM clusters WHERE last_seen >= $1 \
             GROUP BY 1",
            &[&since],
        )
        .await?
    {
        let clusters: i64 = row.get(1);
        stats.clusters += clusters;
        *stats.master_versions.entry(label(row.get(0))).or_default() += clusters;
    }
    let columns: Vec<String> = NODE_FACT_COLUMNS.iter().map(|c| format!("n.{c}")).collect();
    let groups: Vec<String> = (1..=columns.len()).map(|i| i.to_string()).collect();
    let query = format!(
        "SELECT {}, sum(n.nodes)::bigint FROM clusters c \
         JOIN report_nodes n ON n.report_seq = c.latest_seq \
         WHERE c.last_seen >= $1 GROUP BY {}",
        columns.join(", "),
        groups.join(", ")
    );
    for row in client.query(&query, &[&since]).await? {
        let count: i64 = row.get(NodeFact::COUNTED.len());
        stats.nodes += count;
        for (i, fact) in NodeFact::COUNTED.into_iter().enumerate() {
            let value: Option<String> = row.get(i);
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

/// Reports stored (as the clusters count them: no scan of the reports).
pub async fn report_count(client: &Client) -> Result<i64, BoxError> {
    Ok(client
        .query_one(
            "SELECT COALESCE(sum(reports), 0)::bigint FROM clusters",
            &[],
        )
        .await?
        .get(0))
}
