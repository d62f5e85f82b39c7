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

use std::fs::{File, OpenOptions};
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
    let conn = connection::open(db_path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    // Stated, not left to the build's default: a checkpoint that copies the whole log must sync
    // the database file before the log starts over.
    conn.pragma_update(None, "synchronous", "FULL")?;
    let mut background = Background {
        conn,
        // Opened for writing only so that every platform lets it sync (Windows needs that).
        db_file: OpenOptions::new()
            .read(true)
            .write(true)
            .open(db_path)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
        last: LogState::default(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("store-checkpointer".into())
        .spawn(move || {
            // Twenty rounds a second: a failure is logged when it starts or changes, not every
            // round.
            let mut failing: Option<String> = None;
            loop {
                std::thread::park_timeout(CHECKPOINT_EVERY);
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                match background.round(&shared.log_restart_due) {
                    Err(error) => {
                        let message = error.to_string();
                        if failing.as_deref() != Some(message.as_str()) {
                            tracing::warn!(
                                error = message,
                                "checkpoint of the write-ahead log failed"
                            );
                            failing = Some(message);
                        }
                    }
                    Ok(()) => {
                        if failing.take().is_some() {
                            tracing::info!("checkpoints of the write-ahead log work again");
                        }
                    }
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
            let log = self.copy_and_sync()?;
            // Only once everything this pass saw is copied: while a long read holds the log
            // back, the writer's pass would copy nothing now and the whole backlog later.
            if log.copied == log.frames {
                log_restart_due.store(true, Ordering::Release);
            }
        }
        Ok(())
    }

    /// One passive checkpoint, and a sync of the database file when it copied frames the last
    /// one had not (a sync SQLite does not need for durability: it only does the work before
    /// the writer would).
    fn copy_and_sync(&mut self) -> Result<LogState, BoxError> {
        let log = passive_checkpoint(&self.conn)?;
        if log.copied < 0 {
            // Busy (another checkpoint runs) or not a write-ahead log: nothing was copied.
            return Ok(log);
        }
        let copied_more =
            log.copied > 0 && (log.copied != self.last.copied || log.frames < self.last.frames);
        self.last = log;
        if copied_more {
            self.db_file.sync_data()?;
        }
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

    /// A writer's connection with the store's durability (`synchronous=FULL`, WAL) and no
    /// automatic checkpoint, so that only the code under test copies the log.
    fn writer(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.execute_batch("CREATE TABLE t (body BLOB)").unwrap();
        conn
    }

    /// A fresh database in a temporary directory: its path, the writer's connection and the
    /// checkpointer's side.
    fn store() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Connection,
        Background,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let conn = writer(&path);
        let background = Background {
            conn: connection::open(&path, OpenFlags::SQLITE_OPEN_READ_WRITE).unwrap(),
            db_file: File::open(&path).unwrap(),
            last: LogState::default(),
        };
        (dir, path, conn, background)
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

    /// A connection in a read transaction: nothing committed after it began can be copied
    /// into the database while it lasts.
    fn hold_a_read(path: &Path) -> Connection {
        let reader = Connection::open(path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        reader
    }

    /// The log's length, from a passive checkpoint (which copies what it can).
    fn log_frames(conn: &Connection) -> i64 {
        passive_checkpoint(conn).unwrap().frames
    }

    #[test]
    fn the_writers_pass_between_groups_starts_a_log_over_that_would_not_by_itself() {
        let (_dir, path, mut conn, mut background) = store();
        let due = AtomicBool::new(false);

        write(&mut conn, 100);
        background.round(&due).unwrap();
        assert!(!due.load(Ordering::Acquire), "a short log is left alone");

        // The background copy ends behind the writer (here because a read holds it back, under
        // load because the writer keeps committing): the log does not start over by itself,
        // since no transaction begins with every frame copied.
        let reader = hold_a_read(&path);
        write(&mut conn, 100);
        background.round(&due).unwrap();
        let before = log_frames(&background.conn);
        write(&mut conn, 1);
        assert!(
            log_frames(&background.conn) > before,
            "the log kept growing"
        );
        reader.execute_batch("COMMIT").unwrap();

        // The writer's part: copy the last frames between two groups; its next transaction
        // starts the log from its first frame.
        passive_checkpoint(&conn).unwrap();
        write(&mut conn, 1);
        let after = log_frames(&background.conn);
        assert!(
            after < 10,
            "the log started over ({before} frames before, {after} after)"
        );
    }

    #[test]
    fn a_read_holding_the_log_back_does_not_hand_the_backlog_to_the_writer() {
        let (_dir, path, mut conn, mut background) = store();
        let due = AtomicBool::new(false);
        write(&mut conn, 1);

        // A read transaction that started before the long log: nothing after its snapshot
        // can be copied while it lasts.
        let reader = hold_a_read(&path);
        write(&mut conn, LOG_RESTART_FRAMES as usize);
        background.round(&due).unwrap();
        assert!(
            !due.load(Ordering::Acquire),
            "the writer is not asked while a read holds the log"
        );

        reader.execute_batch("COMMIT").unwrap();
        background.round(&due).unwrap();
        assert!(
            due.load(Ordering::Acquire),
            "the read ended: the writer is asked"
        );
    }
}
