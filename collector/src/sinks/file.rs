//! Spartakus's `stdout` database and its file variant: one JSON line per report (the report as
//! stored, with `id` and `receivedAt` beside it), on standard output or appended to a file.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::time::rfc3339;
use parking_lot::Mutex;
use serde::Deserialize;
use serde_json::json;

use super::sink::{ItemOutcome, RequestStats, Sent, Sink};
use crate::error::{Error, Result};
use crate::store::OutboxItem;

/// `[[sink]] type = "stdout"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// Sink name.
    pub name: String,
}

/// `[[sink]] type = "jsonl"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// Sink name.
    pub name: String,
    /// File to append to (created if missing).
    pub path: PathBuf,
}

enum Target {
    Stdout,
    File(PathBuf),
}

/// Where lines go, shared with the blocking thread that writes them.
struct Output {
    target: Target,
    /// Serialises writers so that lines never interleave.
    lock: Mutex<()>,
}

/// Writes one JSON line per report.
pub struct JsonLines {
    name: String,
    output: Arc<Output>,
}

impl JsonLines {
    /// Lines on standard output.
    pub fn stdout(config: StdoutConfig) -> Self {
        JsonLines::new(config.name, Target::Stdout)
    }

    /// Lines appended to a file.
    pub fn file(config: JsonlConfig) -> Result<Self> {
        if config.path.as_os_str().is_empty() {
            return Err(Error::sink(&config.name, "`path` must not be empty"));
        }
        Ok(JsonLines::new(config.name, Target::File(config.path)))
    }

    fn new(name: String, target: Target) -> Self {
        JsonLines {
            name,
            output: Arc::new(Output {
                target,
                lock: Mutex::new(()),
            }),
        }
    }
}

impl Output {
    fn write(&self, lines: &[u8]) -> std::io::Result<()> {
        let _guard = self.lock.lock();
        match &self.target {
            Target::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(lines)?;
                out.flush()
            }
            Target::File(path) => {
                let mut file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?;
                file.write_all(lines)?;
                file.sync_data()
            }
        }
    }
}

/// One line: the report with its id and receive time.
pub fn line(item: &OutboxItem) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({
        "id": item.id.to_string(),
        "receivedAt": rfc3339(item.received_at),
        "report": item.report,
    }))
    .expect("a report serializes");
    line.push(b'\n');
    line
}

#[async_trait::async_trait]
impl Sink for JsonLines {
    fn max_batch(&self) -> usize {
        1000
    }

    fn flush_interval(&self) -> Duration {
        Duration::ZERO
    }

    async fn healthcheck(&self) -> Result<()> {
        match &self.output.target {
            Target::Stdout => Ok(()),
            Target::File(path) => tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .map(|_| ())
                .map_err(|source| {
                    Error::sink_context(
                        &self.name,
                        format!("cannot append to {}", path.display()),
                        source,
                    )
                }),
        }
    }

    async fn send(&self, items: &[OutboxItem], _more_waiting: bool) -> Sent {
        let lines: Vec<u8> = items.iter().flat_map(line).collect();
        let started = Instant::now();
        let bytes = lines.len();
        // The write and its fsync block: off the async threads (which may be just one).
        let output = self.output.clone();
        let result = tokio::task::spawn_blocking(move || output.write(&lines)).await;
        let mut sent = match result {
            Ok(Ok(())) => Sent::all(items.len(), ItemOutcome::Delivered),
            Ok(Err(error)) => Sent::all(
                items.len(),
                ItemOutcome::Retry(format!("cannot write: {error}")),
            ),
            Err(error) => Sent::all(
                items.len(),
                ItemOutcome::Retry(format!("the write failed: {error}")),
            ),
        };
        sent.requests.push(RequestStats {
            bytes,
            items: items.len(),
            duration: started.elapsed(),
        });
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The volunteer-sized runtime (one thread) is where `block_in_place` would have panicked.
    #[tokio::test(flavor = "current_thread")]
    async fn lines_are_appended_off_a_single_threaded_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reports.jsonl");
        let sink = JsonLines::file(JsonlConfig {
            name: "audit".into(),
            path: path.clone(),
        })
        .unwrap();
        sink.healthcheck().await.unwrap();
        let item = crate::sinks::summary::tests::item();
        let sent = sink.send(&[item.clone(), item], false).await;
        assert_eq!(
            sent.outcomes,
            [ItemOutcome::Delivered, ItemOutcome::Delivered]
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.lines().all(|line| line.contains("\"receivedAt\"")));
    }
}
