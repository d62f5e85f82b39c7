//! The PostgreSQL schema, versioned in code and applied in order by refinery
//! (`refinery_schema_history`), under an advisory lock so that collectors starting together
//! migrate once.
//!
//! The tables are the embedded store's (`sqlite/schema/`) as it stands at its version 6, in
//! PostgreSQL's types: the same rows mean the same things, so both backends answer alike.
//! Cluster ids and sink names sort bytewise (`COLLATE "C"`), as SQLite sorts them, whatever the
//! database's collation: the listings' pages are the same on both.

use refinery::{Migration, Runner};
use tokio_postgres::Client;

use super::connect::DatabaseSettings;
use crate::error::Result;

/// Migrations, oldest first, each a name and its SQL; migration `i` brings the schema to version
/// `i + 1`. Append only: never edit one that has shipped (a database that applied it would
/// refuse to open, its recorded checksum no longer matching).
///
/// Needs PostgreSQL 12 or later (`GENERATED ... AS IDENTITY` and nothing newer); the suite
/// runs on 15.
const MIGRATIONS: &[(&str, &str)] = &[(
    "reports",
    r#"
CREATE TABLE meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE clusters (
    cluster_no            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    cluster_id            text   COLLATE "C" NOT NULL UNIQUE,
    first_seen            bigint NOT NULL,
    last_seen             bigint NOT NULL,
    reports               bigint NOT NULL,
    latest_seq            bigint NOT NULL,
    latest_report_time    bigint NOT NULL,
    latest_master_version text,
    latest_node_count     bigint NOT NULL
);

CREATE TABLE reports (
    seq            bigint PRIMARY KEY,
    cluster_no     bigint NOT NULL,
    id             uuid   NOT NULL,
    report_time    bigint NOT NULL,
    time_source    text   NOT NULL,
    received_at    bigint NOT NULL,
    content_sha256 bytea  NOT NULL,
    master_version text,
    node_count     bigint NOT NULL,
    body           text   NOT NULL,
    UNIQUE (cluster_no, id)
);
CREATE INDEX reports_by_cluster ON reports (cluster_no, seq);
CREATE INDEX reports_by_received ON reports (received_at);

CREATE TABLE report_nodes (
    report_seq        bigint NOT NULL,
    operating_system  text   NOT NULL,
    os_image          text   NOT NULL,
    architecture      text   NOT NULL,
    container_runtime text   NOT NULL,
    kubelet_version   text   NOT NULL,
    cloud_provider    text   NOT NULL,
    nodes             bigint NOT NULL
);
CREATE INDEX report_nodes_by_report ON report_nodes (report_seq);

CREATE TABLE sinks (
    name     text   COLLATE "C" PRIMARY KEY,
    type     text   NOT NULL,
    added_at bigint NOT NULL
);

CREATE TABLE sink_coverage (
    sink      text   COLLATE "C" NOT NULL,
    first_seq bigint NOT NULL,
    last_seq  bigint,
    PRIMARY KEY (sink, first_seq)
);

CREATE TABLE sink_positions (
    sink       text   COLLATE "C" PRIMARY KEY,
    position   bigint NOT NULL,
    generation bigint NOT NULL DEFAULT 0
);

CREATE TABLE deliveries (
    sink            text   COLLATE "C" NOT NULL,
    report_seq      bigint NOT NULL,
    state           text   NOT NULL,
    attempts        bigint NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL DEFAULT 0,
    created_at      bigint NOT NULL,
    last_error      text,
    PRIMARY KEY (sink, report_seq)
);

CREATE TABLE stats_cluster_weeks (
    week        bigint NOT NULL,
    cluster_no  bigint NOT NULL,
    report_seq  bigint NOT NULL,
    received_at bigint NOT NULL,
    nodes       bigint NOT NULL,
    PRIMARY KEY (week, cluster_no)
);
CREATE INDEX stats_cluster_weeks_by_cluster ON stats_cluster_weeks (cluster_no, week);

CREATE TABLE stats_cells (
    week      bigint NOT NULL,
    dimension text   NOT NULL,
    value     text   NOT NULL,
    clusters  bigint NOT NULL,
    nodes     bigint NOT NULL,
    PRIMARY KEY (week, dimension, value)
);

CREATE TABLE stats_weeks (
    week     bigint PRIMARY KEY,
    revision bigint NOT NULL,
    active   bigint NOT NULL DEFAULT 0,
    new      bigint NOT NULL DEFAULT 0,
    churned  bigint NOT NULL DEFAULT 0,
    nodes    bigint NOT NULL DEFAULT 0
);

CREATE TABLE stats_clusters (
    cluster_no bigint PRIMARY KEY,
    first_week bigint NOT NULL
);
"#,
)];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The advisory lock held while migrating (any number, the same in every collector).
const MIGRATION_LOCK: i64 = 0x636f_6c6c_6563_746f;

/// Brings the database to [`SCHEMA_VERSION`]; refuses one migrated by a newer collector, or
/// differently.
pub async fn migrate(client: &mut Client, settings: &DatabaseSettings) -> Result<()> {
    let failed = |advice: &str, e: Box<dyn std::error::Error + Send + Sync>| {
        settings.open_error(advice, Some(e))
    };
    let migrations = MIGRATIONS
        .iter()
        .zip(1..)
        .map(|(&(name, sql), version)| Migration::unapplied(&format!("V{version}__{name}"), sql))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| failed("a migration is misnamed", Box::new(e)))?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| failed("cannot take the migration lock", Box::new(e)))?;
    let result = Runner::new(&migrations)
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(client)
        .await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result.map_err(|error| {
        use refinery::error::Kind;
        let advice = match error.kind() {
            Kind::DivergentVersion(applied, ours) => format!(
                "the database applied migration {applied} differently from this collector's \
                 {ours}: it was written by another build"
            ),
            Kind::MissingVersion(applied) => format!(
                "the database applied migration {applied}, which this collector does not know: \
                 it was written by a newer collector"
            ),
            _ => "the migration failed; the database is left at the last migration that \
                  completed"
                .into(),
        };
        failed(&advice, Box::new(error))
    })?;
    unlocked.map_err(|e| failed("cannot release the migration lock", Box::new(e)))?;
    Ok(())
}
