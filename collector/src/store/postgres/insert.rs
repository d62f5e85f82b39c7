//! A group's inserts in one transaction: the clusters numbered, the keys already taken looked
//! up, and the new reports, their node counts and their clusters' rows written with one
//! multi-row statement each, rows in a fixed order. The statements are prepared once per
//! connection (the writer keeps its own), not parsed again for every group.

use std::collections::HashMap;

use deadpool_postgres::Transaction;
use uuid::Uuid;

use crate::store::records::{InsertOutcome, NODE_FACT_COLUMNS, NewReport};

/// `meta` key: the highest seq ever given to a report, kept when the newest reports are deleted
/// (as in the embedded store).
pub(super) const SEQ_HIGH_WATER: &str = "reports_high_water";

/// The seq the next report gets: above every seq ever given, also those of deleted reports, so
/// that anything reading "reports after seq N" never misses a new one.
pub(super) async fn next_seq(
    client: &impl tokio_postgres::GenericClient,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT GREATEST((SELECT COALESCE(MAX(seq), 0) FROM reports), \
             (SELECT COALESCE(MAX(value::bigint), 0) FROM meta WHERE key = $1)) + 1",
            &[&SEQ_HIGH_WATER],
        )
        .await?;
    Ok(row.get(0))
}

/// Stores what is new of `reports`, numbering from `next_seq`; returns each report's outcome.
pub(super) async fn insert_all(
    tx: &Transaction<'_>,
    reports: &[&NewReport],
    next_seq: &mut i64,
) -> Result<Vec<InsertOutcome>, tokio_postgres::Error> {
    let numbers = cluster_numbers(tx, reports).await?;
    let stored = stored_hashes(tx, reports, &numbers).await?;
    let (outcomes, rows) = sort_out(reports, &numbers, &stored, next_seq);
    if !rows.seq.is_empty() {
        rows.write(tx).await?;
    }
    Ok(outcomes)
}

/// The number of each cluster in `reports`, numbering the clusters seen for the first time (in
/// id order: rows of one statement are written in a fixed order).
async fn cluster_numbers(
    tx: &Transaction<'_>,
    reports: &[&NewReport],
) -> Result<HashMap<String, i64>, tokio_postgres::Error> {
    let mut ids: Vec<&str> = reports.iter().map(|r| r.cluster_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut numbers: HashMap<String, i64> = tx
        .query(
            &tx.prepare_cached(
                "SELECT cluster_id, cluster_no FROM clusters WHERE cluster_id = ANY($1)",
            )
            .await?,
            &[&ids],
        )
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let new: Vec<&str> = ids
        .into_iter()
        .filter(|id| !numbers.contains_key(*id))
        .collect();
    if !new.is_empty() {
        // Placeholders that the group's own figures replace (`Rows::write`).
        let rows = tx
            .query(&tx.prepare_cached("INSERT INTO clusters (cluster_id, first_seen, last_seen, reports, latest_seq, \
                 latest_report_time, latest_node_count) \
                 SELECT id, $2, $3, 0, -1, $3, 0 FROM unnest($1::text[]) WITH ORDINALITY AS n(id, i) \
                 ORDER BY i RETURNING cluster_id, cluster_no").await?,
                &[&new, &i64::MAX, &i64::MIN],
            )
            .await?;
        numbers.extend(rows.iter().map(|row| (row.get(0), row.get(1))));
    }
    Ok(numbers)
}

/// The content hash of every report already stored under a key of `reports`.
async fn stored_hashes(
    tx: &Transaction<'_>,
    reports: &[&NewReport],
    numbers: &HashMap<String, i64>,
) -> Result<HashMap<(i64, Uuid), Vec<u8>>, tokio_postgres::Error> {
    let clusters: Vec<i64> = reports.iter().map(|r| numbers[&r.cluster_id]).collect();
    let ids: Vec<Uuid> = reports.iter().map(|r| r.id).collect();
    let rows = tx
        .query(
            &tx.prepare_cached(
                "SELECT r.cluster_no, r.id, r.content_sha256 FROM reports r \
             JOIN unnest($1::bigint[], $2::uuid[]) AS k(cluster_no, id) \
             ON r.cluster_no = k.cluster_no AND r.id = k.id",
            )
            .await?,
            &[&clusters, &ids],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ((row.get(0), row.get(1)), row.get(2)))
        .collect())
}

/// Each report's outcome, in order, and the rows of those to store: a report whose key is taken
/// (stored before, or earlier in the group) is a duplicate when its content is the same, else a
/// conflict.
fn sort_out(
    reports: &[&NewReport],
    numbers: &HashMap<String, i64>,
    stored: &HashMap<(i64, Uuid), Vec<u8>>,
    next_seq: &mut i64,
) -> (Vec<InsertOutcome>, Rows) {
    let mut taken: HashMap<(i64, Uuid), &[u8]> = stored
        .iter()
        .map(|(key, hash)| (*key, hash.as_slice()))
        .collect();
    let mut rows = Rows::default();
    let mut clusters: HashMap<i64, ClusterChange> = HashMap::new();
    let mut outcomes = Vec::with_capacity(reports.len());
    for report in reports {
        let cluster_no = numbers[&report.cluster_id];
        if let Some(hash) = taken.get(&(cluster_no, report.id)) {
            outcomes.push(if *hash == report.content_sha256.as_slice() {
                InsertOutcome::Duplicate
            } else {
                InsertOutcome::Conflict
            });
            continue;
        }
        taken.insert((cluster_no, report.id), report.content_sha256.as_slice());
        let seq = *next_seq;
        *next_seq += 1;
        rows.add(seq, cluster_no, report);
        clusters
            .entry(cluster_no)
            .or_insert_with(ClusterChange::new)
            .add(seq, report);
        outcomes.push(InsertOutcome::Stored);
    }
    let mut changes: Vec<(i64, ClusterChange)> = clusters.into_iter().collect();
    changes.sort_unstable_by_key(|(cluster_no, _)| *cluster_no);
    rows.clusters = changes;
    (outcomes, rows)
}

/// What a group's stored reports change in their cluster's row.
struct ClusterChange {
    first_seen: i64,
    last_seen: i64,
    reports: i64,
    latest_seq: i64,
    latest_report_time: i64,
    latest_master_version: Option<String>,
    latest_node_count: i64,
}

impl ClusterChange {
    fn new() -> Self {
        ClusterChange {
            first_seen: i64::MAX,
            last_seen: i64::MIN,
            reports: 0,
            latest_seq: -1,
            latest_report_time: i64::MIN,
            latest_master_version: None,
            latest_node_count: 0,
        }
    }

    /// Counts `report` (seq `seq`); the latest is the one with the latest report time, the last
    /// stored of those on a tie, as when reports are stored one by one.
    fn add(&mut self, seq: i64, report: &NewReport) {
        self.first_seen = self.first_seen.min(report.received_at);
        self.last_seen = self.last_seen.max(report.received_at);
        self.reports += 1;
        if report.report_time >= self.latest_report_time {
            self.latest_seq = seq;
            self.latest_report_time = report.report_time;
            self.latest_master_version = report.master_version.clone();
            self.latest_node_count = report.node_count;
        }
    }
}

/// The rows a group writes, a column each, for multi-row statements over `unnest`.
#[derive(Default)]
struct Rows {
    seq: Vec<i64>,
    cluster_no: Vec<i64>,
    id: Vec<Uuid>,
    report_time: Vec<i64>,
    time_source: Vec<&'static str>,
    received_at: Vec<i64>,
    content_sha256: Vec<Vec<u8>>,
    master_version: Vec<Option<String>>,
    node_count: Vec<i64>,
    body: Vec<String>,
    /// `report_nodes`: the report's seq, each counted fact's column, the node count.
    node_seq: Vec<i64>,
    node_facts: [Vec<String>; NODE_FACT_COLUMNS.len()],
    node_count_of_group: Vec<i64>,
    /// Cluster rows to change, in cluster-number order.
    clusters: Vec<(i64, ClusterChange)>,
}

impl Rows {
    fn add(&mut self, seq: i64, cluster_no: i64, report: &NewReport) {
        self.seq.push(seq);
        self.cluster_no.push(cluster_no);
        self.id.push(report.id);
        self.report_time.push(report.report_time);
        self.time_source.push(report.time_source.as_str());
        self.received_at.push(report.received_at);
        self.content_sha256.push(report.content_sha256.to_vec());
        self.master_version.push(report.master_version.clone());
        self.node_count.push(report.node_count);
        self.body.push(report.body.clone());
        for group in &report.node_groups {
            self.node_seq.push(seq);
            for (column, fact) in self.node_facts.iter_mut().zip(&group.facts) {
                column.push(fact.clone());
            }
            self.node_count_of_group.push(group.nodes);
        }
    }

    async fn write(&self, tx: &Transaction<'_>) -> Result<(), tokio_postgres::Error> {
        tx.execute(
            &tx.prepare_cached(
                "INSERT INTO reports (seq, cluster_no, id, report_time, time_source, received_at, \
             content_sha256, master_version, node_count, body) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::uuid[], $4::bigint[], \
             $5::text[], $6::bigint[], $7::bytea[], $8::text[], $9::bigint[], $10::text[])",
            )
            .await?,
            &[
                &self.seq,
                &self.cluster_no,
                &self.id,
                &self.report_time,
                &self.time_source,
                &self.received_at,
                &self.content_sha256,
                &self.master_version,
                &self.node_count,
                &self.body,
            ],
        )
        .await?;
        if !self.node_seq.is_empty() {
            let [a, b, c, d, e, f] = &self.node_facts;
            tx.execute(
                &tx.prepare_cached(&format!(
                    "INSERT INTO report_nodes (report_seq, {}, nodes) SELECT * FROM \
                     unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
                     $6::text[], $7::text[], $8::bigint[])",
                    NODE_FACT_COLUMNS.join(", ")
                ))
                .await?,
                &[&self.node_seq, a, b, c, d, e, f, &self.node_count_of_group],
            )
            .await?;
        }
        let column = |get: fn(&ClusterChange) -> i64| -> Vec<i64> {
            self.clusters
                .iter()
                .map(|(_, change)| get(change))
                .collect()
        };
        let numbers: Vec<i64> = self.clusters.iter().map(|(no, _)| *no).collect();
        let versions: Vec<Option<String>> = self
            .clusters
            .iter()
            .map(|(_, change)| change.latest_master_version.clone())
            .collect();
        tx.execute(
            &tx.prepare_cached(
                "UPDATE clusters c SET \
               first_seen = LEAST(c.first_seen, u.first_seen), \
               last_seen = GREATEST(c.last_seen, u.last_seen), \
               reports = c.reports + u.reports, \
               latest_seq = CASE WHEN u.latest_report_time >= c.latest_report_time \
                 THEN u.latest_seq ELSE c.latest_seq END, \
               latest_master_version = CASE WHEN u.latest_report_time >= c.latest_report_time \
                 THEN u.latest_master_version ELSE c.latest_master_version END, \
               latest_node_count = CASE WHEN u.latest_report_time >= c.latest_report_time \
                 THEN u.latest_node_count ELSE c.latest_node_count END, \
               latest_report_time = GREATEST(c.latest_report_time, u.latest_report_time) \
             FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], \
               $6::bigint[], $7::text[], $8::bigint[]) \
               AS u(cluster_no, first_seen, last_seen, reports, latest_seq, latest_report_time, \
                    latest_master_version, latest_node_count) \
             WHERE c.cluster_no = u.cluster_no",
            )
            .await?,
            &[
                &numbers,
                &column(|c| c.first_seen),
                &column(|c| c.last_seen),
                &column(|c| c.reports),
                &column(|c| c.latest_seq),
                &column(|c| c.latest_report_time),
                &versions,
                &column(|c| c.latest_node_count),
            ],
        )
        .await?;
        Ok(())
    }
}
