//! The weekly rollup on PostgreSQL, over the same tables and `meta` keys as the embedded store's
//! (`sqlite/rollup/`), with the arithmetic shared (`store/rollup/`): a step is prepared on a
//! snapshot, what is stored around the chunk's cluster-weeks loaded in a few statements, and
//! applied by the writer in one transaction that refuses it if an erasure or retention changed
//! the statistics meanwhile.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;

use common::Report;
use tokio_postgres::{GenericClient, Transaction};

use super::meta;
use crate::error::BoxError;
use crate::stats::{Cell, Week, dimensions};
use crate::store::listing::stored_body;
use crate::store::rollup::{
    CHURN_WEEKS, Changes, Chunk, Counted, GENERATION, Prepared, RollupProgress, WATERMARK, erasure,
    fold_cluster,
};
use crate::store::weekly::{WeekSummary, WeeklyChanges};

/// `meta` key: the fingerprint of the registry the stored statistics were made with.
const REGISTRY: &str = "stats_registry";
/// `meta` key: the last revision given to a week.
const REVISION: &str = "stats_revision";

/// A stored report's body, or `None` (with a warning) when it cannot be read: one damaged row
/// must not stop the statistics, nor an erasure.
fn readable(seq: i64, body: &str) -> Option<Report> {
    match stored_body(body, 0) {
        Ok(report) => Some(report),
        Err(error) => {
            tracing::warn!(seq, %error, "a stored report cannot be read; the weekly statistics leave it out");
            None
        }
    }
}

/// Prepares a step over up to `limit` reports after the watermark, on `client`'s snapshot;
/// reports received in a week that starts before `keep_from` are past retention.
pub(super) async fn prepare(
    client: &impl GenericClient,
    keep_from: i64,
    limit: usize,
) -> Result<Prepared, BoxError> {
    let watermark = meta::get_i64(client, WATERMARK).await?;
    let mut prepared = Prepared {
        watermark: (watermark, watermark),
        generation: meta::get_i64(client, GENERATION).await?,
        ..Prepared::default()
    };
    let mut chunk = Chunk::default();
    for row in client
        .query(
            "SELECT seq, cluster_no, received_at, body FROM reports WHERE seq > $1 \
             ORDER BY seq LIMIT $2",
            &[&watermark, &(limit as i64)],
        )
        .await?
    {
        let seq: i64 = row.get(0);
        let body: &str = row.get(3);
        chunk.add(
            &mut prepared,
            seq,
            Some(row.get(1)),
            row.get(2),
            keep_from,
            || Ok::<_, Infallible>(readable(seq, body)),
        )?;
    }
    prepared.full = prepared.reports >= limit;
    let last_week: Option<i64> = client
        .query_one("SELECT max(week) FROM stats_weeks", &[])
        .await?
        .get(0);
    let last_week = last_week.map(Week::of);
    let clusters: Vec<_> = chunk.into_clusters().collect();
    if clusters.is_empty() {
        return Ok(prepared);
    }
    // What is stored around each cluster's weeks of the chunk, loaded at once.
    let numbers: Vec<i64> = clusters.iter().map(|(no, _)| *no).collect();
    let (mut low, mut high) = (Vec::new(), Vec::new());
    for (_, weeks) in &clusters {
        // A kept cluster has a week (`Chunk::add`); none would load nothing.
        let first = weeks.weeks().next().unwrap_or(Week::of(i64::MAX / 2));
        let last = weeks.weeks().last().unwrap_or(first);
        low.push(first.plus(-CHURN_WEEKS).start());
        high.push(last.plus(CHURN_WEEKS).start());
    }
    let firsts: HashMap<i64, Week> = client
        .query(
            "SELECT cluster_no, first_week FROM stats_clusters WHERE cluster_no = ANY($1)",
            &[&numbers],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), Week::of(row.get(1))))
        .collect();
    let mut counted: HashMap<(i64, Week), Counted> = HashMap::new();
    for row in client
        .query(
            "SELECT w.cluster_no, w.week, w.report_seq, w.received_at, w.nodes \
             FROM stats_cluster_weeks w \
             JOIN unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS u(cluster_no, low, high) \
             ON w.cluster_no = u.cluster_no AND w.week BETWEEN u.low AND u.high",
            &[&numbers, &low, &high],
        )
        .await?
    {
        counted.insert(
            (row.get(0), Week::of(row.get(1))),
            Counted {
                seq: row.get(2),
                received_at: row.get(3),
                nodes: row.get(4),
                report: None,
            },
        );
    }
    let stored: HashSet<(i64, Week)> = counted.keys().copied().collect();
    // The counted reports of the chunk's own weeks are taken out of their cells: read them.
    let chunk_weeks: HashSet<(i64, Week)> = clusters
        .iter()
        .flat_map(|(no, weeks)| weeks.weeks().map(move |week| (*no, week)))
        .collect();
    let wanted: Vec<i64> = counted
        .iter()
        .filter(|(key, _)| chunk_weeks.contains(key))
        .map(|(_, counted)| counted.seq)
        .collect();
    let mut bodies: HashMap<i64, Option<Report>> = HashMap::new();
    for row in client
        .query(
            "SELECT seq, body FROM reports WHERE seq = ANY($1)",
            &[&wanted],
        )
        .await?
    {
        let seq: i64 = row.get(0);
        bodies.insert(seq, readable(seq, row.get(1)));
    }
    for (cluster_no, weeks) in clusters {
        fold_cluster(
            &mut prepared,
            cluster_no,
            weeks,
            last_week,
            firsts.get(&cluster_no).copied(),
            // As on the embedded store, a cluster-week whose report is gone counts as absent.
            |week| {
                Ok::<_, Infallible>(counted.remove(&(cluster_no, week)).and_then(|mut before| {
                    before.report = bodies.remove(&before.seq)?;
                    Some(before)
                }))
            },
            |week| Ok(stored.contains(&(cluster_no, week))),
        )?;
    }
    Ok(prepared)
}

/// Writes a prepared step, unless an erasure, pruning or another step changed the statistics
/// since it was prepared (then nothing is written and the progress says `stale`).
pub(super) async fn apply(
    tx: &Transaction<'_>,
    prepared: Prepared,
) -> Result<RollupProgress, tokio_postgres::Error> {
    let current = (
        meta::get_i64(tx, WATERMARK).await?,
        meta::get_i64(tx, GENERATION).await?,
    );
    if current != (prepared.watermark.0, prepared.generation) {
        return Ok(RollupProgress {
            stale: true,
            ..RollupProgress::default()
        });
    }
    let mut rows = prepared.rows;
    rows.sort_unstable_by_key(|(week, cluster_no, ..)| (*week, *cluster_no));
    let column = |get: fn(&(Week, i64, i64, i64, i64)) -> i64| -> Vec<i64> {
        rows.iter().map(get).collect()
    };
    tx.execute(
        "INSERT INTO stats_cluster_weeks (week, cluster_no, report_seq, received_at, nodes) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], \
           $5::bigint[]) \
         ON CONFLICT (week, cluster_no) DO UPDATE SET report_seq = excluded.report_seq, \
           received_at = excluded.received_at, nodes = excluded.nodes",
        &[
            &column(|row| row.0.start()),
            &column(|row| row.1),
            &column(|row| row.2),
            &column(|row| row.3),
            &column(|row| row.4),
        ],
    )
    .await?;
    let mut firsts = prepared.firsts;
    firsts.sort_unstable();
    let (clusters, weeks): (Vec<i64>, Vec<i64>) = firsts
        .iter()
        .map(|(cluster_no, week)| (*cluster_no, week.start()))
        .unzip();
    tx.execute(
        "INSERT INTO stats_clusters (cluster_no, first_week) \
         SELECT * FROM unnest($1::bigint[], $2::bigint[]) \
         ON CONFLICT (cluster_no) DO UPDATE SET first_week = excluded.first_week",
        &[&clusters, &weeks],
    )
    .await?;
    write_changes(tx, prepared.changes).await?;
    meta::set(tx, WATERMARK, &prepared.watermark.1.to_string()).await?;
    Ok(RollupProgress {
        reports: prepared.reports,
        caught_up: !prepared.full,
        stale: false,
    })
}

/// Takes the cluster numbered `cluster_no` out of every week it is counted in (before its
/// reports are deleted).
pub(super) async fn erase(
    tx: &Transaction<'_>,
    cluster_no: i64,
) -> Result<(), tokio_postgres::Error> {
    bump_generation(tx).await?;
    let counted: Vec<(Week, i64, Option<Report>)> = tx
        .query(
            "SELECT w.week, w.report_seq, w.nodes, r.body FROM stats_cluster_weeks w \
             JOIN stats_weeks s ON s.week = w.week JOIN reports r ON r.seq = w.report_seq \
             WHERE w.cluster_no = $1",
            &[&cluster_no],
        )
        .await?
        .iter()
        .map(|row| {
            (
                Week::of(row.get(0)),
                row.get(2),
                readable(row.get(1), row.get(3)),
            )
        })
        .collect();
    let first: Option<i64> = tx
        .query_opt(
            "SELECT first_week FROM stats_clusters WHERE cluster_no = $1",
            &[&cluster_no],
        )
        .await?
        .map(|row| row.get(0));
    let changes = erasure(&counted, first.map(Week::of));
    tx.execute(
        "DELETE FROM stats_cluster_weeks WHERE cluster_no = $1",
        &[&cluster_no],
    )
    .await?;
    tx.execute(
        "DELETE FROM stats_clusters WHERE cluster_no = $1",
        &[&cluster_no],
    )
    .await?;
    write_changes(tx, changes).await
}

/// Drops every week that starts before `cutoff` (retention prunes its reports from then on). A
/// cluster keeps its first week while any of its weeks is kept.
pub(super) async fn drop_weeks_before(
    tx: &Transaction<'_>,
    cutoff: i64,
) -> Result<(), tokio_postgres::Error> {
    bump_generation(tx).await?;
    let dropped = tx
        .execute(
            "DELETE FROM stats_cluster_weeks WHERE week < $1",
            &[&cutoff],
        )
        .await?;
    for table in ["stats_cells", "stats_weeks"] {
        tx.execute(&format!("DELETE FROM {table} WHERE week < $1"), &[&cutoff])
            .await?;
    }
    if dropped > 0 {
        tx.execute(
            "DELETE FROM stats_clusters s WHERE first_week < $1 AND NOT EXISTS \
             (SELECT 1 FROM stats_cluster_weeks w WHERE w.cluster_no = s.cluster_no)",
            &[&cutoff],
        )
        .await?;
    }
    Ok(())
}

/// Starts the statistics over when they were made with another registry of dimensions; returns
/// whether it did.
pub(super) async fn reset_if_registry_changed(
    tx: &Transaction<'_>,
) -> Result<bool, tokio_postgres::Error> {
    let fingerprint = dimensions::fingerprint();
    if meta::get(tx, REGISTRY).await?.as_deref() == Some(fingerprint.as_str()) {
        return Ok(false);
    }
    tx.batch_execute(
        "DELETE FROM stats_cells; DELETE FROM stats_cluster_weeks; DELETE FROM stats_weeks; \
         DELETE FROM stats_clusters;",
    )
    .await?;
    meta::set(tx, WATERMARK, "0").await?;
    bump_generation(tx).await?;
    meta::set(tx, REGISTRY, &fingerprint).await?;
    Ok(true)
}

/// Writes summed changes and gives every changed week a new revision (from one counter for all
/// weeks, so that a week dropped and made again never repeats a revision a reader holds).
async fn write_changes(
    tx: &Transaction<'_>,
    changes: Changes,
) -> Result<(), tokio_postgres::Error> {
    let mut weeks: std::collections::BTreeSet<Week> = changes.totals.keys().copied().collect();
    let mut cells: Vec<_> = changes.cells.into_changes().collect();
    cells.sort_unstable_by(|a, b| {
        (a.week, &a.dimension, &a.value).cmp(&(b.week, &b.dimension, &b.value))
    });
    weeks.extend(cells.iter().map(|change| change.week));
    if !cells.is_empty() {
        let week: Vec<i64> = cells.iter().map(|c| c.week.start()).collect();
        let dimension: Vec<&str> = cells.iter().map(|c| c.dimension.as_str()).collect();
        let value: Vec<&str> = cells.iter().map(|c| c.value.as_str()).collect();
        let clusters: Vec<i64> = cells.iter().map(|c| c.clusters).collect();
        let nodes: Vec<i64> = cells.iter().map(|c| c.nodes).collect();
        tx.execute(
            "INSERT INTO stats_cells AS s (week, dimension, value, clusters, nodes) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], \
               $5::bigint[]) \
             ON CONFLICT (week, dimension, value) DO UPDATE SET \
               clusters = s.clusters + excluded.clusters, nodes = s.nodes + excluded.nodes",
            &[&week, &dimension, &value, &clusters, &nodes],
        )
        .await?;
        tx.execute(
            "DELETE FROM stats_cells s USING unnest($1::bigint[], $2::text[], $3::text[], \
               $4::bigint[]) AS u(week, dimension, value, change) \
             WHERE u.change < 0 AND s.week = u.week AND s.dimension = u.dimension \
               AND s.value = u.value AND s.clusters <= 0",
            &[&week, &dimension, &value, &clusters],
        )
        .await?;
    }
    if weeks.is_empty() {
        return Ok(());
    }
    let revision = meta::get_i64(tx, REVISION).await? + 1;
    meta::set(tx, REVISION, &revision.to_string()).await?;
    let totals: Vec<_> = weeks
        .iter()
        .map(|week| changes.totals.get(week).copied().unwrap_or_default())
        .collect();
    let starts: Vec<i64> = weeks.iter().map(|week| week.start()).collect();
    let column = |get: fn(&crate::store::rollup::Totals) -> i64| -> Vec<i64> {
        totals.iter().map(get).collect()
    };
    tx.execute(
        "INSERT INTO stats_weeks AS s (week, revision, active, new, churned, nodes) \
         SELECT u.week, $6, u.active, u.new, u.churned, u.nodes \
         FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) \
           AS u(week, active, new, churned, nodes) \
         ON CONFLICT (week) DO UPDATE SET revision = excluded.revision, \
           active = s.active + excluded.active, new = s.new + excluded.new, \
           churned = s.churned + excluded.churned, nodes = s.nodes + excluded.nodes",
        &[
            &starts,
            &column(|t| t.active),
            &column(|t| t.new),
            &column(|t| t.churned),
            &column(|t| t.nodes),
            &revision,
        ],
    )
    .await?;
    Ok(())
}

async fn bump_generation(tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
    let next = meta::get_i64(tx, GENERATION).await? + 1;
    meta::set(tx, GENERATION, &next.to_string()).await
}

/// The totals of every week before `running`, and the cells of those whose revision differs
/// from `known`, on `client`'s snapshot.
pub(super) async fn changes(
    client: &impl GenericClient,
    known: &BTreeMap<Week, i64>,
    running: Week,
) -> Result<WeeklyChanges, tokio_postgres::Error> {
    let mut result = WeeklyChanges::default();
    for row in client
        .query(
            "SELECT week, revision, active, new, churned, nodes FROM stats_weeks \
             WHERE week < $1 ORDER BY week",
            &[&running.start()],
        )
        .await?
    {
        let week = Week::of(row.get(0));
        result.revisions.insert(week, row.get(1));
        result.summaries.insert(
            week,
            WeekSummary {
                active: row.get(2),
                new: row.get(3),
                churned: row.get(4),
                nodes: row.get(5),
            },
        );
    }
    let changed: Vec<i64> = result
        .revisions
        .iter()
        .filter(|(week, revision)| known.get(week) != Some(revision))
        .map(|(week, _)| week.start())
        .collect();
    for week in &changed {
        result.cells.insert(Week::of(*week), Vec::new());
    }
    for row in client
        .query(
            "SELECT week, dimension, value, clusters, nodes FROM stats_cells \
             WHERE week = ANY($1)",
            &[&changed],
        )
        .await?
    {
        result.cells.entry(Week::of(row.get(0))).or_default().push((
            row.get(1),
            Cell {
                value: row.get(2),
                clusters: row.get(3),
                nodes: row.get(4),
            },
        ));
    }
    Ok(result)
}
