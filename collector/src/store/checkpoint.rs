//! The checkpointer thread: folds the write-ahead log into the database in the background.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::OpenFlags;

use super::connection;

/// How often the checkpointer copies the write-ahead log into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// Starts the thread that copies the write-ahead log into the database (a passive checkpoint,
/// which never blocks the writer), so that neither the copy nor its fsync of the database file
/// sits on the writer's commit path.
pub(super) fn spawn(db_path: &Path) -> rusqlite::Result<Checkpointer> {
    let conn = connection::open(db_path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let thread = std::thread::Builder::new()
        .name("store-checkpointer".into())
        .spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                std::thread::park_timeout(CHECKPOINT_EVERY);
                if let Err(error) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                {
                    tracing::warn!(%error, "checkpoint of the write-ahead log failed");
                }
            }
        })
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok(Checkpointer { stop, thread })
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
