//! The checkpointer thread: folds the write-ahead log into the database in the background,
//! and has the writer start the log over once it is long.
//!
//! SQLite starts the log over only when a write transaction begins with every frame already
//! copied into the database, and syncs the database file only in a checkpoint that copies the
//! whole log. Under steady ingest a background checkpoint always ends a few milliseconds
//! behind the writer, so the log would grow to the writer's automatic checkpoint, which then
//! syncs every page copied since the log last started over on the writer's commit path (tens
//! of milliseconds: the open loop's tail, see BENCHMARKS.md). So the checkpointer syncs the
//! database file after each of its own copies, and once the log is long it copies twice in a
//! row (the second pass takes only what arrived during the first) and asks the writer to copy
//! the last frames itself between two groups; the writer's next transaction starts the log
//! over.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::command::Shared;
use super::connection::{self, LOG_RESTART_FRAMES};
use crate::error::BoxError;

/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// Starts the thread that copies the write-ahead log into the database (a passive checkpoint,
/// which never blocks the writer) and syncs the database file after each copy, so that
/// neither the copy nor its fsync sits on the writer's commit path.
pub(super) fn spawn(db_path: &Path, shared: Arc<Shared>) -> rusqlite::Result<Checkpointer> {
    let mut background = Background {
        conn: connection::open(db_path, OpenFlags::SQLITE_OPEN_READ_WRITE)?,
        db_file: File::open(db_path)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
        last: LogState::default(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("store-checkpointer".into())
        .spawn(move || {
            // Twenty rounds a second: a failure is logged when it starts, not every round.
            let mut failing = false;
            while !stopped.load(Ordering::SeqCst) {
                std::thread::park_timeout(CHECKPOINT_EVERY);
                match background.round(&shared.log_restart_due) {
                    Err(error) if !failing => {
                        failing = true;
                        tracing::warn!(%error, "checkpoint of the write-ahead log failed");
                    }
                    Err(_) => {}
                    Ok(()) if failing => {
                        failing = false;
                        tracing::info!("checkpoints of the write-ahead log work again");
                    }
                    Ok(()) => {}
                }
            }
        })
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok(Checkpointer { stop, thread })
}

/// The checkpointer's connection, the database file it syncs, and what the log looked like
/// after its last pass.
struct Background {
    conn: Connection,
    db_file: File,
    last: LogState,
}

impl Background {
    /// One round: copy and sync; once the log is long, copy and sync again and ask the writer
    /// to finish.
    ///
    /// SQLite syncs the database file only when a checkpoint copies the whole log, and then
    /// syncs every page copied since the log last started over. Syncing after each background
    /// copy keeps that final sync down to the last pages.
    fn round(&mut self, log_restart_due: &AtomicBool) -> Result<(), BoxError> {
        let log = self.copy_and_sync()?;
        if log.frames >= LOG_RESTART_FRAMES {
            // The second pass copies only what arrived during the first, leaving the writer
            // as little as possible.
            self.copy_and_sync()?;
            log_restart_due.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// One passive checkpoint, and a sync of the database file when it copied anything (a sync
    /// SQLite does not need for durability: it only does the work before the writer would).
    fn copy_and_sync(&mut self) -> Result<LogState, BoxError> {
        let log = passive_checkpoint(&self.conn)?;
        if log != self.last && log.copied > 0 {
            self.db_file.sync_data()?;
        }
        self.last = log;
        Ok(log)
    }
}

/// The write-ahead log's length and how much of it is in the database, in frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct LogState {
    pub(super) frames: i64,
    pub(super) copied: i64,
}

/// Copies what it can of the write-ahead log into the database without waiting for anyone.
pub(super) fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<LogState> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(LogState {
            frames: row.get(1)?,
            copied: row.get(2)?,
        })
    })
}

/// The checkpointer thread and its stop flag.
pub(super) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Checkpointer {
    /// Stops the thread and waits for it.
    pub(super) async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.thread().unpark();
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer's connection as the store opens it, on a fresh file in `dir`.
    fn writer(dir: &Path) -> Connection {
        let conn = Connection::open(dir.join("db.sqlite3")).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (body BLOB)").unwrap();
        conn
    }

    /// Commits `pages` pages' worth of rows, 256 to a transaction.
    fn write(conn: &mut Connection, pages: usize) {
        for chunk in (0..pages).collect::<Vec<_>>().chunks(256) {
            let tx = conn.transaction().unwrap();
            for _ in chunk {
                tx.execute("INSERT INTO t VALUES (zeroblob(4000))", [])
                    .unwrap();
            }
            tx.commit().unwrap();
        }
    }

    #[test]
    fn a_long_log_is_copied_and_started_over_by_the_writers_next_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let mut conn = writer(dir.path());
        let mut background = Background {
            conn: connection::open(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap(),
            db_file: File::open(&path).unwrap(),
            last: LogState::default(),
        };
        let due = AtomicBool::new(false);

        write(&mut conn, 100);
        background.round(&due).unwrap();
        assert!(!due.load(Ordering::Acquire), "a short log is left alone");
        assert_eq!(background.last.copied, background.last.frames);

        write(&mut conn, LOG_RESTART_FRAMES as usize);
        background.round(&due).unwrap();
        assert!(
            due.load(Ordering::Acquire),
            "a long log asks the writer to finish"
        );
        let before = background.last.frames;
        assert!(before >= LOG_RESTART_FRAMES);

        // The writer's part: copy the last frames between two groups; its next transaction
        // starts the log from its first frame.
        passive_checkpoint(&conn).unwrap();
        write(&mut conn, 1);
        let after = passive_checkpoint(&background.conn).unwrap();
        assert!(
            after.frames < 10,
            "the log started over ({before} frames before, {} after)",
            after.frames
        );
    }
}
