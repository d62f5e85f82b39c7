//! The store's schema, versioned in code and applied in order (`PRAGMA user_version`).

use std::path::Path;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// Migrations, oldest first; migration `i` brings the schema to version `i + 1`. Append only:
/// never edit one that has shipped.
///
/// Layout, shaped so that storing a report touches few pages: `reports` holds one row per
/// accepted report (the sanitized canonical JSON in `body`, its time and the receive time beside
/// it), appended in `seq` order; `seq` is what a per-sink delivery outbox
/// (`deliveries(report_seq, sink, state, ...)`) references and fills in the same transaction.
/// One unique index on `(cluster_id, id)` serves both idempotency and a cluster's listing: a report
/// id is derived from its (lowercase) cluster id, so the pair is unique exactly when the id is.
/// `report_nodes` counts each report's nodes by their reduced facts, so statistics need no JSON
/// parsing; `clusters` keeps first/last seen and the latest report per cluster.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE reports (
    seq            INTEGER PRIMARY KEY,
    cluster_id     TEXT    NOT NULL,
    id             BLOB    NOT NULL,
    report_time    INTEGER NOT NULL,
    time_source    TEXT    NOT NULL,
    received_at    INTEGER NOT NULL,
    content_sha256 BLOB    NOT NULL,
    master_version TEXT,
    node_count     INTEGER NOT NULL,
    body           TEXT    NOT NULL
) STRICT;
CREATE UNIQUE INDEX reports_by_cluster ON reports (cluster_id, id);
CREATE INDEX reports_by_received ON reports (received_at);

CREATE TABLE report_nodes (
    report_seq        INTEGER NOT NULL,
    operating_system  TEXT    NOT NULL,
    os_image          TEXT    NOT NULL,
    architecture      TEXT    NOT NULL,
    container_runtime TEXT    NOT NULL,
    kubelet_version   TEXT    NOT NULL,
    cloud_provider    TEXT    NOT NULL,
    nodes             INTEGER NOT NULL
) STRICT;
CREATE INDEX report_nodes_by_report ON report_nodes (report_seq);

CREATE TABLE clusters (
    cluster_id            TEXT PRIMARY KEY,
    first_seen            INTEGER NOT NULL,
    last_seen             INTEGER NOT NULL,
    reports               INTEGER NOT NULL,
    latest_seq            INTEGER NOT NULL,
    latest_report_time    INTEGER NOT NULL,
    latest_master_version TEXT,
    latest_node_count     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"#,
    // 2: the per-sink delivery outbox. A row per (sink, report) is written in the transaction that
    // stores the report; it is deleted once the sink confirmed, or set `dead` with the reason.
    // `sink_coverage` keeps the report ranges stored while each sink was configured (a range is
    // open, `last_seq` NULL, while it still is), so a backfill sends exactly the reports that
    // never had a delivery for the sink.
    r#"
CREATE TABLE sinks (
    name     TEXT PRIMARY KEY,
    type     TEXT    NOT NULL,
    added_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE sink_coverage (
    sink      TEXT    NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER,
    PRIMARY KEY (sink, first_seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE deliveries (
    sink            TEXT    NOT NULL,
    report_seq      INTEGER NOT NULL,
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_error      TEXT,
    PRIMARY KEY (sink, report_seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX deliveries_by_state ON deliveries (sink, state, report_seq);
CREATE INDEX deliveries_by_report ON deliveries (report_seq);
"#,
    // The outbox's secondary indexes were written twice per report and sink (queued, then
    // delivered) for scans that are rare (listing by state, erasure, retention) and read a
    // table that holds only what is pending or dead; the primary key serves the workers.
    r#"
DROP INDEX deliveries_by_state;
DROP INDEX deliveries_by_report;
"#,
    // 4: the weekly statistics (see `rollup.rs`). A cluster-week names the latest report
    // received from a cluster in an ISO week (`week`: its Monday 00:00 UTC, unix seconds); the
    // cells count those reports per dimension and value; a week's row holds its totals and a
    // revision that grows with every change, so readers reload only what changed; a cluster's
    // first week makes it new there.
    r#"
CREATE TABLE stats_cluster_weeks (
    week        INTEGER NOT NULL,
    cluster_id  TEXT    NOT NULL,
    report_seq  INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    nodes       INTEGER NOT NULL,
    PRIMARY KEY (week, cluster_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE stats_cells (
    week      INTEGER NOT NULL,
    dimension TEXT    NOT NULL,
    value     TEXT    NOT NULL,
    clusters  INTEGER NOT NULL,
    nodes     INTEGER NOT NULL,
    PRIMARY KEY (week, dimension, value)
) STRICT, WITHOUT ROWID;

CREATE TABLE stats_weeks (
    week     INTEGER PRIMARY KEY,
    revision INTEGER NOT NULL,
    active   INTEGER NOT NULL DEFAULT 0,
    new      INTEGER NOT NULL DEFAULT 0,
    churned  INTEGER NOT NULL DEFAULT 0,
    nodes    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE stats_clusters (
    cluster_id TEXT    PRIMARY KEY,
    first_week INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
"#,
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database at `path` to [`SCHEMA_VERSION`]; refuses a database written by a newer
/// collector.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let failed = |advice: String, source: Option<rusqlite::Error>| Error::StoreOpen {
        path: path.to_owned(),
        advice,
        source: source.map(|e| Box::new(e) as crate::error::BoxError),
    };
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| failed("cannot read the schema version".into(), Some(e)))?;
    if current > SCHEMA_VERSION {
        return Err(failed(
            format!(
                "the store has schema version {current}, written by a newer collector; this one \
                 knows up to {SCHEMA_VERSION}"
            ),
            None,
        ));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        let advice = || format!("migration to schema version {version} failed");
        let tx = conn.transaction().map_err(|e| failed(advice(), Some(e)))?;
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .and_then(|()| tx.commit())
            .map_err(|e| failed(advice(), Some(e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_newer_stores() {
        let mut conn = Connection::open_in_memory().unwrap();
        let path = Path::new("memory");
        migrate(&mut conn, path).unwrap();
        migrate(&mut conn, path).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn, path).unwrap_err().to_string();
        assert!(err.contains("newer collector"), "{err}");
    }
}
