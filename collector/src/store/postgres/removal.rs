//! Removing reports on PostgreSQL, as the embedded store removes them (`sqlite/removal.rs`): a
//! cluster's erasure and retention's pruning, in the writer's transactions, keeping the highest
//! seq ever given so that a seq is never given twice.

use tokio_postgres::Transaction;

use super::{insert, meta, rollup};

/// Records the highest seq given so far, before reports are deleted.
async fn keep_high_water(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    let given = insert::next_seq(tx).await? - 1;
    meta::set(tx, insert::SEQ_HIGH_WATER, &given.to_string()).await
}

/// Erases a cluster: its reports, their node counts and deliveries, its weeks in the statistics
/// and its row; returns the reports deleted (0 for a cluster never seen).
pub(super) async fn delete_cluster(
    tx: &Transaction<'_>,
    cluster_id: &str,
) -> Result<u64, tokio_postgres::Error> {
    let Some(row) = tx
        .query_opt(
            "SELECT cluster_no FROM clusters WHERE cluster_id = $1 FOR UPDATE",
            &[&cluster_id],
        )
        .await?
    else {
        return Ok(0);
    };
    let cluster_no: i64 = row.get(0);
    keep_high_water(tx).await?;
    rollup::erase(tx, cluster_no).await?;
    let reports = "SELECT seq FROM reports WHERE cluster_no = $1";
    for (table, column) in [("report_nodes", "report_seq"), ("deliveries", "report_seq")] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE {column} IN ({reports})"),
            &[&cluster_no],
        )
        .await?;
    }
    let deleted = tx
        .execute("DELETE FROM reports WHERE cluster_no = $1", &[&cluster_no])
        .await?;
    tx.execute("DELETE FROM clusters WHERE cluster_no = $1", &[&cluster_no])
        .await?;
    Ok(deleted)
}

/// Deletes up to `limit` of the oldest reports received before `received_before` (and the weeks
/// of statistics retention has started to prune); returns the reports deleted.
pub(super) async fn prune(
    tx: &Transaction<'_>,
    received_before: i64,
    limit: usize,
) -> Result<u64, tokio_postgres::Error> {
    keep_high_water(tx).await?;
    rollup::drop_weeks_before(tx, received_before).await?;
    let victims: Vec<i64> = tx
        .query(
            "SELECT seq FROM reports WHERE received_at < $1 ORDER BY received_at, seq LIMIT $2",
            &[&received_before, &(limit as i64)],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if victims.is_empty() {
        return Ok(0);
    }
    for table in ["report_nodes", "deliveries"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE report_seq = ANY($1)"),
            &[&victims],
        )
        .await?;
    }
    let clusters: Vec<i64> = tx
        .query(
            "DELETE FROM reports WHERE seq = ANY($1) RETURNING cluster_no",
            &[&victims],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    // The clusters whose reports went: drop the empty ones, recompute the rest.
    tx.execute(
        "DELETE FROM clusters c WHERE c.cluster_no = ANY($1) AND NOT EXISTS \
         (SELECT 1 FROM reports r WHERE r.cluster_no = c.cluster_no)",
        &[&clusters],
    )
    .await?;
    tx.execute(
        "UPDATE clusters c SET \
           first_seen = (SELECT min(r.received_at) FROM reports r \
             WHERE r.cluster_no = c.cluster_no), \
           reports = (SELECT count(*) FROM reports r WHERE r.cluster_no = c.cluster_no), \
           (latest_seq, latest_report_time, latest_master_version, latest_node_count) = \
             (SELECT r.seq, r.report_time, r.master_version, r.node_count FROM reports r \
              WHERE r.cluster_no = c.cluster_no ORDER BY r.report_time DESC, r.seq DESC LIMIT 1) \
         WHERE c.cluster_no = ANY($1)",
        &[&clusters],
    )
    .await?;
    Ok(clusters.len() as u64)
}
