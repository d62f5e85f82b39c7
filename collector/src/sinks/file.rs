//! Spartakus's `stdout` database and its file variant: one JSON line per report (the report as
//! stored, with `id` and `receivedAt` beside it), on standard output or appended to a file.

use std::io::Write;
use std::path::PathBuf;
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

/// Writes one JSON line per report.
pub struct JsonLines {
    name: String,
    target: Target,
    /// Serialises writers so that lines never interleave.
    lock: Mutex<()>,
}

impl JsonLines {
    /// Lines on standard output.
    pub fn stdout(config: StdoutConfig) -> Self {
        JsonLines {
            name: config.name,
            target: Target::Stdout,
            lock: Mutex::new(()),
        }
    }

    /// Lines appended to a file.
    pub fn file(config: JsonlConfig) -> Result<Self> {
        if config.path.as_os_str().is_empty() {
            return Err(Error::sink(&config.name, "`path` must not be empty"));
        }
        Ok(JsonLines {
            name: config.name,
            target: Target::File(config.path),
            lock: Mutex::new(()),
        })
    }

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
        match &self.target {
            Target::Stdout => Ok(()),
            Target::File(path) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
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
        let result = tokio::task::block_in_place(|| self.write(&lines));
        let mut sent = match result {
            Ok(()) => Sent::all(items.len(), ItemOutcome::Delivered),
            Err(error) => Sent::all(
                items.len(),
                ItemOutcome::Retry(format!("cannot write: {error}")),
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
