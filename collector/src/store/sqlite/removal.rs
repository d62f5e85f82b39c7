//! Removing reports, a cluster's erasure and retention's pruning, on the writer's connection;
//! and the seq the next report gets, which never repeats one given to a removed report.

use rusqlite::{Connection, Transaction, TransactionBehavior, params};

use super::{meta, read, rollup};

/// `meta` key: the highest seq ever given to a report, kept when the newest reports are deleted.
const SEQ_HIGH_WATER: &str = "reports_high_water";

/// The seq the next report gets: above every seq ever given, also those of deleted reports, so
/// that anything reading "reports after seq N" (the weekly rollup) never misses a new one.
pub(super) fn next_seq(conn: &Connection) -> rusqlite::Result<i64> {
    let stored: i64 = conn.query_row("SELECT coalesce(max(seq), 0) FROM reports", [], |row| {
        row.get(0)
    })?;
    Ok(stored.max(meta::get_i64(conn, SEQ_HIGH_WATER)?) + 1)
}

/// Records the highest seq given so far, before reports are deleted.
fn keep_high_water(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let given = next_seq(tx)? - 1;
    meta::set(tx, SEQ_HIGH_WATER, &given.to_string())
}

/// Erases a cluster: its reports, their node counts and deliveries, its weeks in the statistics
/// and its row; returns the reports deleted (0 for a cluster never seen).
pub(super) fn delete_cluster(conn: &mut Connection, cluster_id: &str) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let Some(cluster_no) = read::cluster_number(&tx, cluster_id)? else {
        return Ok(0);
    };
    keep_high_water(&tx)?;
    rollup::erase(&tx, cluster_no)?;
    let reports = "SELECT seq FROM report_keys WHERE cluster_no = ?1";
    for (table, column) in [
        ("report_nodes", "report_seq"),
        ("deliveries", "report_seq"),
        ("reports", "seq"),
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE {column} IN ({reports})"),
            [cluster_no],
        )?;
    }
    let deleted = tx.execute(
        "DELETE FROM report_keys WHERE cluster_no = ?1",
        [cluster_no],
    )?;
    tx.execute("DELETE FROM clusters WHERE cluster_no = ?1", [cluster_no])?;
    tx.commit()?;
    Ok(deleted as u64)
}

/// Deletes up to `limit` of the oldest reports received before `received_before` (and the weeks
/// of statistics retention has started to prune); returns the reports deleted.
pub(super) fn prune(
    conn: &mut Connection,
    received_before: i64,
    limit: usize,
) -> rusqlite::Result<u64> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    keep_high_water(&tx)?;
    rollup::drop_weeks_before(&tx, received_before)?;
    let limit = limit as i64;
    let victims = "SELECT seq FROM reports WHERE received_at < ?1 ORDER BY received_at LIMIT ?2";
    for table in ["report_nodes", "deliveries"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE report_seq IN ({victims})"),
            params![received_before, limit],
        )?;
    }
    {
        // Key by key: deleting `(cluster_no, id) IN (...)` reads every key of each cluster.
        let mut keys = tx.prepare(&format!(
            "SELECT c.cluster_no, r.id FROM reports r JOIN clusters c \
             ON c.cluster_id = r.cluster_id WHERE r.seq IN ({victims})"
        ))?;
        let mut delete_key =
            tx.prepare_cached("DELETE FROM report_keys WHERE cluster_no = ?1 AND id = ?2")?;
        let mut rows = keys.query(params![received_before, limit])?;
        while let Some(row) = rows.next()? {
            delete_key.execute(params![row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?])?;
        }
    }
    let deleted = tx.execute(
        &format!("DELETE FROM reports WHERE seq IN ({victims})"),
        params![received_before, limit],
    )?;
    if deleted > 0 {
        // Clusters whose oldest report may be gone: drop the empty ones, recompute the rest.
        tx.execute(
            "DELETE FROM clusters WHERE first_seen < ?1 AND NOT EXISTS \
             (SELECT 1 FROM report_keys k WHERE k.cluster_no = clusters.cluster_no)",
            [received_before],
        )?;
        let of_cluster = "FROM report_keys k JOIN reports r ON r.seq = k.seq \
                          WHERE k.cluster_no = clusters.cluster_no";
        tx.execute(
            &format!(
                "UPDATE clusters SET \
                   first_seen = (SELECT min(r.received_at) {of_cluster}), \
                   reports = (SELECT count(*) FROM report_keys k \
                     WHERE k.cluster_no = clusters.cluster_no), \
                   (latest_seq, latest_report_time, latest_master_version, latest_node_count) = \
                     (SELECT r.seq, r.report_time, r.master_version, r.node_count {of_cluster} \
                      ORDER BY r.report_time DESC, r.seq DESC LIMIT 1) \
                 WHERE first_seen < ?1"
            ),
            [received_before],
        )?;
    }
    tx.commit()?;
    Ok(deleted as u64)
}
