//! Connections to the database file: the writer's, opened with its durability pragmas and
//! checked for write-ahead logging, and read-only ones; and what an SQLite error at startup
//! means to an operator.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::error::{Error, Result};

/// How long a connection waits for a lock held by another.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Write-ahead log frames after which the checkpointer asks the writer to start the log over
/// (32 MiB at SQLite's default 4 KiB page; see `checkpoint`).
pub(super) const LOG_RESTART_FRAMES: i64 = 8_192;
/// Write-ahead log pages after which the writer checkpoints itself, should the checkpointer
/// fall behind or a long read keep the log from starting over (128 MiB at 4 KiB a page).
const WRITER_CHECKPOINT_PAGES: i64 = 4 * LOG_RESTART_FRAMES;

/// A connection to `path` with `flags` (and no SQLite-level mutex: each connection has one
/// user at a time), waiting up to [`BUSY_TIMEOUT`] for locks.
pub(super) fn open(path: &Path, flags: OpenFlags) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// A read-only connection whose queries run off the async threads, one at a time; cheap to
/// clone (the clones share the connection).
#[derive(Clone)]
pub(super) struct ReadConnection(Arc<Mutex<Connection>>);

impl ReadConnection {
    /// Opens a read-only connection to `path`.
    pub(super) fn open(path: &Path) -> rusqlite::Result<Self> {
        Ok(ReadConnection(Arc::new(Mutex::new(open(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?))))
    }

    /// Runs `query` on a blocking thread. A query that panics fails alone: the connection
    /// stays usable for the next one.
    pub(super) async fn run<T, F>(&self, query: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let conn = self.0.clone();
        tokio::task::spawn_blocking(move || query(&conn.lock()).map_err(Error::from))
            .await
            .map_err(|e| Error::Unavailable(Arc::new(e)))?
    }
}

/// A job for an [`IdleReader`]'s thread.
type Job = Box<dyn FnOnce(&Connection) + Send>;

/// A read-only connection on a thread of its own at the lowest scheduling priority, for reads
/// that are heavy and never urgent (the weekly rollup's): they run on what CPU ingest leaves.
/// Cheap to clone; the thread ends when the last clone is dropped.
#[derive(Clone)]
pub(super) struct IdleReader(std::sync::mpsc::Sender<Job>);

impl IdleReader {
    /// Opens a read-only connection to `path` and starts its thread.
    pub(super) fn open(path: &Path) -> rusqlite::Result<Self> {
        let conn = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("stats-rollup".into())
            .spawn(move || {
                if let Err(error) = thread_priority::set_current_thread_priority(
                    thread_priority::ThreadPriority::Min,
                ) {
                    tracing::debug!(?error, "cannot lower the statistics thread's priority");
                }
                for job in queue {
                    job(&conn);
                }
            })
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        Ok(IdleReader(jobs))
    }

    /// Runs `query` on the thread. A query that panics fails alone.
    pub(super) async fn run<T, F>(&self, query: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| query(conn)));
            let _ = reply.send(result);
        });
        self.0.send(job).map_err(|_| Error::ShuttingDown)?;
        match answer.await {
            Ok(Ok(result)) => result.map_err(Error::from),
            Ok(Err(_)) => Err(Error::Unavailable(Arc::new(std::io::Error::other(
                "a statistics query panicked",
            )))),
            Err(_) => Err(Error::ShuttingDown),
        }
    }
}

/// The writer's connection to `path` (created if missing), in WAL mode with its pragmas;
/// `max_size` caps the file's size.
pub(super) fn open_writer(path: &Path, max_size: Option<u64>) -> Result<Connection> {
    let conn = open(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
    .map_err(|e| open_error(path, e))?;
    let journal_mode = configure_writer(&conn, max_size).map_err(|e| open_error(path, e))?;
    if !journal_mode.eq_ignore_ascii_case("wal") {
        return Err(Error::StoreOpen {
            path: path.to_owned(),
            advice: format!(
                "the file system does not support write-ahead logging (journal_mode={journal_mode})"
            ),
            source: None,
        });
    }
    Ok(conn)
}

/// The startup error for `error` on the store at `path`.
pub(super) fn open_error(path: &Path, error: rusqlite::Error) -> Error {
    Error::StoreOpen {
        path: path.to_owned(),
        advice: advice(&error).into(),
        source: Some(Box::new(error)),
    }
}

/// Sets the writer's pragmas; returns the journal mode SQLite actually chose.
fn configure_writer(conn: &Connection, max_size: Option<u64>) -> rusqlite::Result<String> {
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "cache_size", -32_000)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if let Some(max_size) = max_size {
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |row| row.get(0))?;
        let pages = (max_size as i64 / page_size).max(16);
        conn.pragma_update(None, "max_page_count", pages)?;
    }
    Ok(mode)
}

/// What an SQLite error at startup means, in words an operator can act on.
pub(super) fn advice(error: &rusqlite::Error) -> &'static str {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            "the file is corrupt or not a collector store; move it away to start an empty store, \
             or restore it from a backup"
        }
        Some(ErrorCode::ReadOnly)
        | Some(ErrorCode::CannotOpen)
        | Some(ErrorCode::PermissionDenied) => {
            "the store is not writable; check the data directory's permissions and mount"
        }
        Some(ErrorCode::DiskFull) => "the disk is full",
        _ => "SQLite failed",
    }
}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        Error::Query(Box::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_query_that_panics_does_not_break_the_next_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);")
            .unwrap();
        let reader = ReadConnection::open(&path).unwrap();
        let failed = reader
            .run(|_| -> rusqlite::Result<()> { panic!("a bug in one query") })
            .await;
        assert!(matches!(failed, Err(Error::Unavailable(_))));
        let value: i64 = reader
            .run(|conn| conn.query_row("SELECT x FROM t", [], |row| row.get(0)))
            .await
            .unwrap();
        assert_eq!(value, 7);
    }
}
