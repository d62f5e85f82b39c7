//! `POST /api/v1/import`: history from Spartakus or from another collector, streamed line by
//! line, each report admitted and stored as if received when its line says, in batches that
//! share commits; idempotent by report id.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use common::time::unix_now;
use common::wire::Encoding;
use futures::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::ingest::content_encoding;
use super::state::AppState;
use crate::import::{Framed, LineSplitter, read_line};
use crate::store::{InsertOutcome, NewReport};

/// Lines admitted and stored together (their inserts share the writer's commits).
const BATCH: usize = 1_000;
/// Line errors listed in the answer (all are counted).
const LISTED_ERRORS: usize = 10;

/// One line that could not be imported.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineError {
    /// Its line number, from 1.
    pub line: u64,
    /// Why.
    pub error: String,
}

/// What an import did.
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportSummary {
    /// Lines read (blank lines aside).
    pub lines: u64,
    /// Reports stored.
    pub stored: u64,
    /// Reports already stored with the same id and content (a repeated import).
    pub duplicates: u64,
    /// Reports whose id is stored with other content; the stored copy is kept.
    pub conflicts: u64,
    /// Lines that could not be imported.
    pub failed: u64,
    /// The first failed lines and why.
    pub errors: Vec<LineError>,
}

impl ImportSummary {
    fn fail(&mut self, line: u64, error: String) {
        self.failed += 1;
        if self.errors.len() < LISTED_ERRORS {
            self.errors.push(LineError { line, error });
        }
    }
}

/// Import reports: newline-delimited JSON, each line a record of the JSON-lines sink
/// (`{"id", "receivedAt", "report"}`, `id` optional) or a bare Spartakus-shaped report whose
/// `timestamp` (unix seconds) is its receive time.
#[utoipa::path(post, path = "/api/v1/import", tag = "admin",
    request_body(content = String, content_type = "application/x-ndjson",
        description = "One record or report per line; `Content-Encoding: gzip` is accepted. Reports are queued for the configured sinks like any other."),
    responses(
        (status = 200, description = "Every line read; per-line failures are counted and the first listed", body = ImportSummary),
        (status = 400, description = "The body is empty, or could not be read or gunzipped", body = ErrorBody),
        (status = 401, description = "Missing or wrong admin token", body = ErrorBody),
        (status = 415, description = "An encoding other than gzip", body = ErrorBody),
        (status = 503, description = "The store became unavailable; what was stored stays, and importing again is safe", body = ErrorBody),
    ),
    security((), ("admin_token" = [])))]
pub async fn import(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ImportSummary>, ApiError> {
    let gzip = content_encoding(&headers)? == Encoding::Gzip;
    let settings = state.settings();
    let mut splitter = LineSplitter::new(gzip, settings.max_decompressed_size);
    let mut summary = ImportSummary::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut stream = body.into_data_stream();
    // A body that breaks off, or stops being gzip, ends the import after what came before it
    // was stored, and says how far it got.
    let mut broken = None;
    let mut empty = true;
    while let Some(chunk) = stream.next().await {
        let framed = match chunk {
            Ok(chunk) => {
                empty &= chunk.is_empty();
                splitter.push(&chunk)
            }
            .map_err(|e| format!("is not valid gzip: {e}")),
            Err(e) => Err(format!("could not be read: {e}")),
        };
        match framed {
            Ok(framed) => add_lines(&mut batch, &mut summary, framed),
            Err(error) => {
                broken = Some(error);
                break;
            }
        }
        if batch.len() >= BATCH {
            store_batch(&state, std::mem::take(&mut batch), &mut summary).await?;
        }
    }
    if empty && broken.is_none() {
        return Err(ApiError::bad_request(
            "the request body is empty: send one record or report per line",
        ));
    }
    if broken.is_none() {
        match splitter.finish() {
            Ok(framed) => add_lines(&mut batch, &mut summary, framed),
            Err(e) => broken = Some(format!("is not valid gzip: {e}")),
        }
    }
    store_batch(&state, batch, &mut summary).await?;
    if let Some(error) = broken {
        refresh_after(&state, &summary).await;
        return Err(ApiError::bad_request(format!(
            "the request body {error}, after line {}; the {} reports before it were stored \
             ({} already were) and importing again is safe",
            summary.lines, summary.stored, summary.duplicates
        )));
    }
    tracing::info!(
        lines = summary.lines,
        stored = summary.stored,
        duplicates = summary.duplicates,
        failed = summary.failed,
        "import finished"
    );
    refresh_after(&state, &summary).await;
    Ok(Json(summary))
}

fn add_lines(batch: &mut Vec<(u64, Framed)>, summary: &mut ImportSummary, framed: Vec<Framed>) {
    for line in framed {
        summary.lines += 1;
        batch.push((summary.lines, line));
    }
}

/// Rolls the imported reports up, so that the statistics show them when the answer comes.
async fn refresh_after(state: &AppState, summary: &ImportSummary) {
    if summary.stored > 0
        && let Err(error) = state.weekly().refresh().await
    {
        tracing::warn!(%error, "the weekly statistics' rollup after an import failed; the next one catches up");
    }
}

/// Admits a batch of lines off the async threads and stores them together.
async fn store_batch(
    state: &AppState,
    batch: Vec<(u64, Framed)>,
    summary: &mut ImportSummary,
) -> Result<(), ApiError> {
    if batch.is_empty() {
        return Ok(());
    }
    let settings = state.settings();
    let rule = settings.cluster_id_rule;
    let max_line = settings.max_decompressed_size;
    let earliest = unix_now().saturating_sub(settings.retention.as_secs() as i64);
    let admitted = tokio::task::spawn_blocking(move || {
        batch
            .into_iter()
            .map(|(number, line)| {
                let admitted = match line {
                    Framed::Line(bytes) => read_line(&bytes, rule, earliest),
                    Framed::TooLong => Err(format!("longer than {max_line} bytes")),
                };
                (number, admitted)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|error| {
        tracing::error!(%error, "decoding an import batch failed");
        ApiError::Internal
    })?;
    let mut inserts = Vec::with_capacity(admitted.len());
    let mut clusters = Vec::with_capacity(admitted.len());
    for (number, admitted) in admitted {
        match admitted {
            Ok(admitted) => {
                clusters.push(admitted.report.cluster_id.clone());
                inserts.push(state.store().insert(NewReport::from(admitted)));
            }
            Err(error) => summary.fail(number, error),
        }
    }
    let mut failure = None;
    let outcomes = futures::future::join_all(inserts).await;
    for (outcome, cluster_id) in outcomes.into_iter().zip(&clusters) {
        match outcome {
            Ok(InsertOutcome::Stored) => {
                summary.stored += 1;
                state.metrics().reports_imported.inc();
                state.sources().learn(cluster_id);
            }
            Ok(InsertOutcome::Duplicate) => summary.duplicates += 1,
            Ok(InsertOutcome::Conflict) => summary.conflicts += 1,
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    match failure.map(ApiError::from_internal) {
        None => Ok(()),
        Some(ApiError::Unavailable {
            message,
            retry_after_seconds,
        }) => Err(ApiError::Unavailable {
            message: format!(
                "{message}; {} reports of this import were stored, and importing again is safe",
                summary.stored
            ),
            retry_after_seconds,
        }),
        Some(other) => Err(other),
    }
}
