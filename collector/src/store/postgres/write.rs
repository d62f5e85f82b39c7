//! The PostgreSQL writer: one task drains the queued inserts and commits each group in one
//! transaction of multi-row statements, so that a group costs the same few round trips whatever
//! its size, and a report's seq is its commit order (what a sink's position counts on).
//!
//! A request is answered only after the commit that holds its report returned. A group that
//! fails, the commit included (the connection lost after `COMMIT` was sent leaves its outcome
//! unknown), answers every report in it as unavailable, never as stored on a guess; the next
//! group reads the next seq from the database again.

use std::sync::Arc;
use std::time::Instant;

use common::time::unix_now;
use deadpool_postgres::{ClientWrapper, Object, Pool};
use tokio::sync::{mpsc, oneshot};

use tokio_postgres::Transaction;

use super::explain::explain;
use super::{insert, meta, outbox, removal, rollup};
use crate::error::{BoxError, Error, Result};
use crate::store::outbox::OutboxUpdate;
use crate::store::records::{InsertOutcome, NewReport};
use crate::store::rollup::{Prepared, RollupProgress};
use crate::store::writes::WriterState;

/// Most inserts one transaction takes.
const MAX_GROUP: usize = 2048;
/// Most bytes of report bodies one transaction takes (a statement's parameters must stay well
/// under PostgreSQL's 1 GiB).
const MAX_GROUP_BYTES: usize = 64 << 20;
/// Longest wait for a group's transaction; past it the outcome is unknown, and every report of
/// the group is answered unavailable.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// How long the writer waits for its lock before it says another collector holds it.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// The session lock the writer's connection holds (any number, the same in every collector).
const WRITER_LOCK: i64 = 0x636f_6c6c_6563_7772;
/// Inserts waiting for the writer at most; a sender waits beyond that.
pub(super) const QUEUE_DEPTH: usize = 8192;

pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// What the writer is asked to do.
pub(super) enum Command {
    /// Store a report.
    Insert(Box<NewReport>, Reply<InsertOutcome>),
    /// Record what a sink's worker learned (in the next group's transaction).
    Outbox(Box<OutboxUpdate>, Reply<()>),
    /// Re-queue a sink's deliveries (after the group queued before it).
    Requeue {
        sink: String,
        dead_only: bool,
        since: i64,
        reply: Reply<u64>,
    },
    /// Erase a cluster.
    DeleteCluster(String, Reply<u64>),
    /// Delete reports past retention.
    Prune {
        received_before: i64,
        limit: usize,
        reply: Reply<u64>,
    },
    /// Write a prepared rollup step.
    Rollup(Box<Prepared>, Reply<RollupProgress>),
    /// A small write, to learn whether the database takes writes again.
    Probe(Reply<()>),
    /// Finish what is queued before this, then stop.
    Shutdown(oneshot::Sender<()>),
}

type PendingInsert = (Box<NewReport>, Reply<InsertOutcome>);
type PendingUpdate = (Box<OutboxUpdate>, Reply<()>);

/// What the writer commits in one transaction: the inserts and the delivery workers' outbox
/// updates that queued up while the previous transaction committed.
#[derive(Default)]
struct Group {
    inserts: Vec<PendingInsert>,
    updates: Vec<PendingUpdate>,
}

impl Group {
    fn len(&self) -> usize {
        self.inserts.len() + self.updates.len()
    }
}

/// Runs until a `Shutdown` command or until every handle is gone.
pub(super) async fn run(
    pool: Pool,
    locked: LockedConnection,
    mut commands: mpsc::Receiver<Command>,
    shared: Arc<WriterState>,
) {
    let mut writer = Writer {
        pool,
        client: Some(locked),
        lost_session: None,
        next_seq: None,
    };
    while let Some(first) = commands.recv().await {
        let mut group = Group::default();
        let mut bytes = 0;
        let mut next = Some(first);
        // Everything that arrived while the previous group was committing goes in this one.
        while let Some(command) = next.take() {
            match command {
                Command::Insert(report, reply) => {
                    bytes += report.body.len();
                    group.inserts.push((report, reply));
                }
                Command::Outbox(update, reply) => group.updates.push((update, reply)),
                Command::Shutdown(reply) => {
                    writer.commit(&shared, group).await;
                    let _ = reply.send(());
                    return;
                }
                other => {
                    writer.commit(&shared, std::mem::take(&mut group)).await;
                    bytes = 0;
                    writer.maintain(&shared, other).await;
                }
            }
            if group.len() < MAX_GROUP && bytes < MAX_GROUP_BYTES {
                next = commands.try_recv().ok();
            }
        }
        writer.commit(&shared, group).await;
    }
}

struct Writer {
    pool: Pool,
    /// The writer's connection and session.
    client: Option<LockedConnection>,
    /// The session of a connection given up after a failure, which may still hold the lock.
    lost_session: Option<i32>,
    /// The seq the next stored report gets; read from the database when unknown.
    next_seq: Option<i64>,
}

impl Writer {
    /// Commits `group` in one transaction and answers each sender after the commit.
    async fn commit(&mut self, shared: &WriterState, group: Group) {
        if group.len() == 0 {
            return;
        }
        let started = Instant::now();
        let reports: Vec<&NewReport> = group.inserts.iter().map(|(r, _)| r.as_ref()).collect();
        let updates: Vec<&OutboxUpdate> = group.updates.iter().map(|(u, _)| u.as_ref()).collect();
        let written = tokio::time::timeout(WRITE_TIMEOUT, self.write(&reports, &updates))
            .await
            .unwrap_or_else(|_| Err(unanswered()));
        match written {
            Ok(outcomes) => {
                if !reports.is_empty() {
                    shared
                        .metrics
                        .commit_duration
                        .observe(started.elapsed().as_secs_f64());
                    shared
                        .metrics
                        .commit_group_size
                        .observe(reports.len() as f64);
                }
                shared.mark_available();
                shared.stored(
                    outcomes
                        .iter()
                        .filter(|outcome| **outcome == InsertOutcome::Stored)
                        .count(),
                );
                for ((_, reply), outcome) in group.inserts.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
                for (_, reply) in group.updates {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(error) => {
                // The connection may be gone, and the commit's outcome unknown: start over.
                self.lose_connection();
                let error = shared.failed(explain(error));
                for (_, reply) in group.inserts {
                    let _ = reply.send(Err(Error::Unavailable(error.clone())));
                }
                for (_, reply) in group.updates {
                    let _ = reply.send(Err(Error::Unavailable(error.clone())));
                }
            }
        }
    }

    /// The writer's connection, taken from the pool when it has none, holding the writer's lock.
    async fn client(&mut self) -> Result<&mut ClientWrapper, BoxError> {
        if self.client.is_none() {
            self.client = Some(locked_connection(&self.pool, self.lost_session.take()).await?);
        }
        Ok(&mut self.client.as_mut().expect("set above").client)
    }

    /// Gives the connection up after a failure: it may be gone, or in a state not worth
    /// trusting.
    fn lose_connection(&mut self) {
        if let Some(lost) = self.client.take() {
            self.lost_session = Some(lost.session);
        }
        self.next_seq = None;
    }

    async fn write(
        &mut self,
        reports: &[&NewReport],
        updates: &[&OutboxUpdate],
    ) -> Result<Vec<InsertOutcome>, BoxError> {
        let known_seq = self.next_seq;
        let client = self.client().await?;
        let tx = client.transaction().await?;
        let mut outcomes = Vec::new();
        let mut next_seq = known_seq;
        if !reports.is_empty() {
            let mut seq = match next_seq {
                Some(seq) => seq,
                None => insert::next_seq(&*tx).await?,
            };
            outcomes = insert::insert_all(&tx, reports, &mut seq).await?;
            next_seq = Some(seq);
        }
        for update in updates {
            outbox::apply(&tx, update).await?;
        }
        tx.commit().await?;
        self.next_seq = next_seq;
        Ok(outcomes)
    }

    /// Runs a command other than an insert or an outbox update, in a transaction of its own.
    async fn maintain(&mut self, shared: &WriterState, command: Command) {
        match command {
            Command::Requeue {
                sink,
                dead_only,
                since,
                reply,
            } => {
                let result = self
                    .in_transaction(async |tx| {
                        outbox::requeue(tx, &sink, dead_only, since, unix_now()).await
                    })
                    .await;
                if let Ok(requeued) = &result
                    && *requeued > 0
                {
                    shared.requeued(*requeued);
                }
                let _ = reply.send(shared.track(result.map_err(explain)));
            }
            Command::DeleteCluster(cluster_id, reply) => {
                let result = self
                    .in_transaction(async |tx| removal::delete_cluster(tx, &cluster_id).await)
                    .await;
                if let Ok(deleted) = &result {
                    shared.metrics.store_reports.dec_by(*deleted as i64);
                }
                let _ = reply.send(shared.track(result.map_err(explain)));
            }
            Command::Prune {
                received_before,
                limit,
                reply,
            } => {
                let result = self
                    .in_transaction(async |tx| removal::prune(tx, received_before, limit).await)
                    .await;
                if let Ok(deleted) = &result {
                    shared.metrics.store_reports.dec_by(*deleted as i64);
                }
                let _ = reply.send(shared.track(result.map_err(explain)));
            }
            Command::Rollup(prepared, reply) => {
                let result = self
                    .in_transaction(async |tx| rollup::apply(tx, *prepared).await)
                    .await;
                let _ = reply.send(shared.track(result.map_err(explain)));
            }
            Command::Probe(reply) => {
                let result = self
                    .in_transaction(async |tx| {
                        meta::set(tx, "last_write_check", &unix_now().to_string()).await
                    })
                    .await;
                let _ = reply.send(shared.track(result.map_err(explain)));
            }
            Command::Insert(..) | Command::Outbox(..) | Command::Shutdown(_) => {
                unreachable!("grouped by the writer's loop")
            }
        }
    }

    /// Runs `work` in a transaction of the writer's connection and commits it; a failure drops
    /// the connection (it may be gone) and the next seq (it may have changed).
    async fn in_transaction<T>(
        &mut self,
        work: impl AsyncFnOnce(&Transaction<'_>) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, BoxError> {
        let result: Result<T, BoxError> = tokio::time::timeout(WRITE_TIMEOUT, async {
            let client = self.client().await?;
            let tx = client.transaction().await?;
            let value = work(&tx).await?;
            tx.commit().await?;
            Ok(value)
        })
        .await
        .unwrap_or_else(|_| Err(unanswered()));
        if result.is_err() {
            self.lose_connection();
        }
        result
    }
}

/// The failure of a write the database did not answer in time.
fn unanswered() -> BoxError {
    format!(
        "the database did not answer a write within {} s; its outcome is unknown",
        WRITE_TIMEOUT.as_secs()
    )
    .into()
}

/// The writer's connection, taken out of the pool for good (dropping it closes the session and
/// with it the lock, so that no pooled connection keeps holding the writer's lock), and its
/// server session.
pub(super) struct LockedConnection {
    pub(super) client: ClientWrapper,
    session: i32,
}

/// A connection holding the writer's lock. A pooled connection the server has closed meanwhile
/// (a restart, a terminated session) fails its first query: nothing was written on it, so
/// another is tried. A collector restarting may find its predecessor's session still holding the
/// lock for a moment; `lost_session`, a session of this collector given up after a failure, is
/// ended if it still holds it (after a network partition the server may not notice for long).
pub(super) async fn locked_connection(
    pool: &Pool,
    lost_session: Option<i32>,
) -> Result<LockedConnection, BoxError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        let client = pool.get().await?;
        match client
            .query_one(
                "SELECT pg_try_advisory_lock($1), pg_backend_pid()",
                &[&WRITER_LOCK],
            )
            .await
        {
            Ok(row) if row.get::<_, bool>(0) => {
                return Ok(LockedConnection {
                    session: row.get(1),
                    client: Object::take(client),
                });
            }
            Ok(_) if Instant::now() < deadline => {
                if let Some(session) = lost_session {
                    client
                        .execute(
                            "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                             WHERE l.pid = $1 AND l.locktype = 'advisory' AND l.granted",
                            &[&session],
                        )
                        .await?;
                }
            }
            Ok(_) => {
                return Err(
                    "another collector is writing to this database; one database takes \
                            one collector's writes"
                        .into(),
                );
            }
            Err(error) if client.is_closed() && Instant::now() < deadline => {
                tracing::debug!(%error, "a pooled connection was closed; taking another");
                continue;
            }
            Err(error) => return Err(error.into()),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
