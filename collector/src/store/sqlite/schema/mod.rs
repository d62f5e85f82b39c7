//! The store's schema, versioned in code and applied in order by refinery (which records them in
//! `refinery_schema_history`; `PRAGMA user_version` keeps the version for older collectors).

use std::path::Path;

use refinery::{Migration, Runner, Target};
use rusqlite::Connection;

use crate::error::{Error, Result};

/// Migrations, oldest first, each a name and its SQL; migration `i` brings the schema to version
/// `i + 1`. Append only: never edit one that has shipped (a store that applied it would refuse to
/// open, its recorded checksum no longer matching).
///
/// Layout, shaped so that storing a report touches few pages: `reports` holds one row per
/// accepted report (the sanitized canonical JSON in `body`, its time and the receive time beside
/// it), appended in `seq` order; `seq` is each sink's position in its queue (`sink_positions`)
/// and what the outbox's rows of deliveries tried or re-queued (`deliveries(report_seq, sink,
/// state, ...)`) reference.
/// `report_keys` (the cluster's number and the report id, to its seq) serves both idempotency and
/// a cluster's listing: a report id is derived from its (lowercase) cluster id, so the pair is
/// unique exactly when the id is. `report_nodes` counts each report's nodes by their reduced
/// facts, so statistics need no JSON parsing; `clusters` numbers the clusters in the order they
/// were first seen and keeps first/last seen and the latest report of each.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "reports",
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
    ),
    // 2: the per-sink delivery outbox. A row per (sink, report) is written in the transaction that
    // stores the report; it is deleted once the sink confirmed, or set `dead` with the reason.
    // `sink_coverage` keeps the report ranges stored while each sink was configured (a range is
    // open, `last_seq` NULL, while it still is), so a backfill sends exactly the reports that
    // never had a delivery for the sink.
    (
        "outbox",
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
    ),
    // The outbox's secondary indexes were written twice per report and sink (queued, then
    // delivered) for scans that are rare (listing by state, erasure, retention) and read a
    // table that holds only what is pending or dead; the primary key serves the workers.
    (
        "outbox_without_indexes",
        r#"
DROP INDEX deliveries_by_state;
DROP INDEX deliveries_by_report;
"#,
    ),
    // 4: the weekly statistics (see `rollup.rs`). A cluster-week names the latest report
    // received from a cluster in an ISO week (`week`: its Monday 00:00 UTC, unix seconds); the
    // cells count those reports per dimension and value; a week's row holds its totals and a
    // revision that grows with every change, so readers reload only what changed; a cluster's
    // first week makes it new there.
    (
        "weekly_statistics",
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
    ),
    // 5: cluster numbers. A cluster gets a number the first time it is seen, in arrival order,
    // and the tables written for every report or cluster-week are keyed by it: `report_keys`
    // (cluster number, report id → seq) instead of the `(cluster_id, id)` index on `reports`,
    // and the statistics' `stats_cluster_weeks` and `stats_clusters`. Cluster ids are random
    // (uuidgen), so keyed by the id each of those inserts dirtied a page at a random place; keyed
    // by the number, a new cluster's rows append, and the id is looked up once, in
    // `clusters_by_id`. `reports` is not rewritten: the migration reads only indexes and the
    // statistics, and numbers the existing clusters in id order, so that every copy appends.
    //
    // A report whose cluster has no `clusters` row (none should exist) gets one first, so that
    // no report loses its key; statistics rows that cannot be numbered start the statistics over
    // (the rollup rebuilds them from the reports, `stats_registry` in `rollup/write.rs`).
    (
        "cluster_numbers",
        r#"
INSERT INTO clusters (cluster_id, first_seen, last_seen, reports, latest_seq,
                      latest_report_time, latest_master_version, latest_node_count)
SELECT r.cluster_id, min(r.received_at), max(r.received_at), count(*), -1, 0, NULL, 0
FROM reports r INDEXED BY reports_by_cluster
WHERE NOT EXISTS (SELECT 1 FROM clusters c WHERE c.cluster_id = r.cluster_id)
GROUP BY r.cluster_id;
UPDATE clusters SET (latest_seq, latest_report_time, latest_master_version, latest_node_count) =
    (SELECT seq, report_time, master_version, node_count FROM reports r
     WHERE r.cluster_id = clusters.cluster_id ORDER BY report_time DESC, seq DESC LIMIT 1)
WHERE latest_seq = -1;

CREATE TABLE clusters_numbered (
    cluster_no            INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id            TEXT    NOT NULL,
    first_seen            INTEGER NOT NULL,
    last_seen             INTEGER NOT NULL,
    reports               INTEGER NOT NULL,
    latest_seq            INTEGER NOT NULL,
    latest_report_time    INTEGER NOT NULL,
    latest_master_version TEXT,
    latest_node_count     INTEGER NOT NULL
) STRICT;
INSERT INTO clusters_numbered (cluster_id, first_seen, last_seen, reports, latest_seq,
                               latest_report_time, latest_master_version, latest_node_count)
SELECT cluster_id, first_seen, last_seen, reports, latest_seq, latest_report_time,
       latest_master_version, latest_node_count
FROM clusters ORDER BY cluster_id;
DROP TABLE clusters;
ALTER TABLE clusters_numbered RENAME TO clusters;
CREATE UNIQUE INDEX clusters_by_id ON clusters (cluster_id);

CREATE TABLE report_keys (
    cluster_no INTEGER NOT NULL,
    id         BLOB    NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (cluster_no, id)
) STRICT, WITHOUT ROWID;
INSERT INTO report_keys (cluster_no, id, seq)
SELECT c.cluster_no, r.id, r.seq
FROM reports r INDEXED BY reports_by_cluster CROSS JOIN clusters c ON c.cluster_id = r.cluster_id;
DROP INDEX reports_by_cluster;

CREATE TABLE stats_cluster_weeks_numbered (
    week        INTEGER NOT NULL,
    cluster_no  INTEGER NOT NULL,
    report_seq  INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    nodes       INTEGER NOT NULL,
    PRIMARY KEY (week, cluster_no)
) STRICT, WITHOUT ROWID;
INSERT INTO stats_cluster_weeks_numbered (week, cluster_no, report_seq, received_at, nodes)
SELECT w.week, c.cluster_no, w.report_seq, w.received_at, w.nodes
FROM stats_cluster_weeks w CROSS JOIN clusters c ON c.cluster_id = w.cluster_id;

CREATE TABLE stats_clusters_numbered (
    cluster_no INTEGER PRIMARY KEY,
    first_week INTEGER NOT NULL
) STRICT;
INSERT INTO stats_clusters_numbered (cluster_no, first_week)
SELECT c.cluster_no, s.first_week
FROM stats_clusters s CROSS JOIN clusters c ON c.cluster_id = s.cluster_id;

DELETE FROM meta WHERE key = 'stats_registry'
AND ((SELECT count(*) FROM stats_cluster_weeks) <> (SELECT count(*) FROM stats_cluster_weeks_numbered)
  OR (SELECT count(*) FROM stats_clusters) <> (SELECT count(*) FROM stats_clusters_numbered));
DROP TABLE stats_cluster_weeks;
DROP TABLE stats_clusters;
ALTER TABLE stats_cluster_weeks_numbered RENAME TO stats_cluster_weeks;
ALTER TABLE stats_clusters_numbered RENAME TO stats_clusters;
"#,
    ),
    // 6: sink positions. A report is no longer queued for each sink with a row of its own: a
    // sink's queue is the reports it covers after its position, and a delivery gets a row only
    // once it was tried and failed, or re-queued (`outbox/`). Every report stored so far had its
    // row, delivered ones deleted, so each sink known starts at the last report stored and the
    // rows there stay as they are. `generation` grows with every backfill, which can add reports
    // after the position to the queue while a worker's batch is in flight: the batch then does
    // not move the position.
    (
        "sink_positions",
        r#"
CREATE TABLE sink_positions (
    sink       TEXT PRIMARY KEY,
    position   INTEGER NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
INSERT INTO sink_positions (sink, position)
SELECT name, (SELECT COALESCE(MAX(seq), 0) FROM reports) FROM sinks;
"#,
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The migrations as refinery applies them, `V{version}__{name}`. Each also sets `user_version`
/// in its transaction, which is how stores from before refinery recorded their version, and what
/// older collectors read to refuse a store written by a newer one.
fn migrations() -> Result<Vec<Migration>, refinery::Error> {
    MIGRATIONS
        .iter()
        .zip(1..)
        .map(|(&(name, sql), version)| {
            Migration::unapplied(
                &format!("V{version}__{name}"),
                &format!("{sql}\nPRAGMA user_version = {version};\n"),
            )
        })
        .collect()
}

/// Brings the database at `path` to [`SCHEMA_VERSION`]; refuses a database written by a newer
/// collector, or one whose applied migrations differ from this build's.
///
/// Refinery records what it applied in `refinery_schema_history`. A store from before it (schema
/// 1 to 6, its version in `user_version` only) gets that record first: its migrations are marked
/// applied without running them again (the baseline), and it carries on from there. The same
/// holds for a migration whose record a crash or a full disk cut off.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let failed = |advice: String, source: Option<crate::error::BoxError>| Error::StoreOpen {
        path: path.to_owned(),
        advice,
        source,
    };
    let current: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(|e| failed("cannot read the schema version".into(), Some(Box::new(e))))?;
    if current > SCHEMA_VERSION {
        return Err(failed(
            format!(
                "the store has schema version {current}, written by a newer collector; this one \
                 knows up to {SCHEMA_VERSION}"
            ),
            None,
        ));
    }
    let migrations =
        migrations().map_err(|e| failed("a migration is misnamed".into(), Some(Box::new(e))))?;
    let runner = || {
        Runner::new(&migrations)
            .set_abort_divergent(true)
            .set_abort_missing(true)
    };
    // A migration and the row recording it commit in two transactions (refinery's runner on
    // rusqlite), and a store from before refinery has no rows at all; `user_version`, set in
    // each migration's own transaction, is what was applied. Rows missing below it are recorded
    // without running their migrations again.
    if current
        > recorded_version(conn)
            .map_err(|e| failed("cannot read the schema version".into(), Some(Box::new(e))))?
    {
        runner()
            .set_target(Target::FakeVersion(current as i32))
            .run(conn)
            .map_err(|error| {
                failed(
                    format!(
                        "cannot record schema version {current} as applied: {}",
                        migration_advice(&error, current)
                    ),
                    Some(Box::new(error)),
                )
            })?;
    }
    // The pages a migration frees hold copies of rows that still exist (erased reports were
    // overwritten when they were erased): zeroing them would only grow the log.
    let secure_delete: i64 = conn
        .pragma_query_value(None, "secure_delete", |row| row.get(0))
        .and_then(|value| {
            conn.pragma_update(None, "secure_delete", "FAST")
                .map(|()| value)
        })
        .map_err(|e| failed("cannot prepare the migration".into(), Some(Box::new(e))))?;
    if let Err(error) = runner().run(conn) {
        let applied: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap_or(current);
        return Err(failed(
            migration_advice(&error, applied + 1),
            Some(Box::new(error)),
        ));
    }
    conn.pragma_update(None, "secure_delete", secure_delete)
        .map_err(|e| {
            failed(
                "cannot restore secure_delete after the migration".into(),
                Some(Box::new(e)),
            )
        })
}

/// The last migration refinery recorded as applied; 0 before any (or before refinery).
fn recorded_version(conn: &Connection) -> rusqlite::Result<i64> {
    let history: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE name = 'refinery_schema_history'",
        [],
        |row| row.get(0),
    )?;
    if history == 0 {
        return Ok(0);
    }
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM refinery_schema_history",
        [],
        |row| row.get(0),
    )
}

/// What to tell an operator when the migration to `version` failed with `error`.
fn migration_advice(error: &refinery::Error, version: i64) -> String {
    use refinery::error::Kind;
    match error.kind() {
        Kind::DivergentVersion(applied, ours) => format!(
            "the store applied migration {applied} differently from this collector's {ours}: it \
             was written by another build; run the collector that wrote it"
        ),
        Kind::MissingVersion(applied) => format!(
            "the store applied migration {applied}, which this collector does not know: it was \
             written by a newer collector"
        ),
        _ => {
            let mut source = std::error::Error::source(error);
            let mut full = false;
            while let Some(cause) = source {
                full |= cause
                    .downcast_ref::<rusqlite::Error>()
                    .and_then(|e| e.sqlite_error_code())
                    == Some(rusqlite::ErrorCode::DiskFull);
                source = cause.source();
            }
            format!(
                "migration to schema version {version} failed{}",
                if full {
                    ": the disk or --max-store-size is full; a migration needs free space of \
                     about a sixth of the store for its log, and the store is left as it was"
                } else {
                    ""
                }
            )
        }
    }
}

#[cfg(test)]
mod tests;
