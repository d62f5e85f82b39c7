//! BigQuery: streaming inserts (`tabledata.insertAll`) into a table that keeps Spartakus's
//! columns, with `insertId` = report id for BigQuery's best-effort dedup, and per-row errors
//! inspected (HTTP 200 can still refuse rows).

mod encode;
mod schema;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::wire::Verdict;
use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_data_insert_all_request::TableDataInsertAllRequest;
use serde::Deserialize;
use serde_json::Value;

use super::sink::{ItemOutcome, Replied, Reply, RequestLimits, RequestStats, Sent, Sink};
use crate::error::{Error, Result};
use crate::store::OutboxItem;

pub use encode::row;
pub use schema::schema;

/// Most rows in one insert request.
pub const MAX_ROWS: usize = 500;
/// Largest insert request body (BigQuery's limit is 10 MB).
pub const MAX_REQUEST_BYTES: usize = 9_000_000;
/// What one insert request may carry: each row with its `insertId` and envelope.
const LIMITS: RequestLimits = RequestLimits {
    max_bytes: MAX_REQUEST_BYTES,
    max_items: MAX_ROWS,
    envelope_bytes: 0,
    item_overhead: 64,
};

/// `[[sink]] type = "bigquery"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BigQueryConfig {
    /// Sink name.
    pub name: String,
    /// `project.dataset.table`.
    pub table: String,
    /// Service-account key file; without it, application default credentials
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, or the GKE metadata server).
    pub credentials_file: Option<PathBuf>,
    /// API base, e.g. `http://127.0.0.1:9050/bigquery/v2` for an emulator (no credentials are
    /// then needed).
    pub endpoint: Option<url::Url>,
    /// How long a partial batch waits for more reports (default `1s`).
    #[serde(default, with = "humantime_serde")]
    pub flush_interval: Option<Duration>,
}

/// Splits sink `sink`'s `project.dataset.table`.
pub fn parse_table(sink: &str, table: &str) -> Result<(String, String, String)> {
    let parts: Vec<&str> = table.split('.').collect();
    match parts.as_slice() {
        [project, dataset, table] if [project, dataset, table].iter().all(|p| !p.is_empty()) => {
            Ok((project.to_string(), dataset.to_string(), table.to_string()))
        }
        _ => Err(Error::sink(
            sink,
            format!("`table` {table:?} must be project.dataset.table"),
        )),
    }
}

/// The decision for a failed request: its HTTP status and the `errors[].reason` values. A
/// missing table (404) is retried once [`creates_table`] made it.
pub fn request_verdict(code: i64, reasons: &[&str]) -> Verdict {
    let quota = reasons.iter().any(|r| {
        matches!(
            *r,
            "rateLimitExceeded" | "quotaExceeded" | "backendError" | "internalError"
        )
    });
    match code {
        404 | 408 | 429 | 500..=599 => Verdict::Retry,
        403 if quota => Verdict::Retry,
        _ => Verdict::Dead,
    }
}

/// True when a failed request's status says the table is missing: create it, then try again.
pub fn creates_table(code: i64) -> bool {
    code == 404
}

/// The decision for one row refused in an HTTP 200 answer: `invalid` is final; `stopped` (BigQuery
/// refused a valid row because another in the request was invalid) and anything else is retried.
pub fn row_verdict(reasons: &[&str]) -> Verdict {
    if reasons.contains(&"invalid") {
        Verdict::Dead
    } else {
        Verdict::Retry
    }
}

/// A fixed token for an emulator, which checks none.
#[derive(Clone)]
struct EmulatorToken;

#[async_trait::async_trait]
impl Authenticator for EmulatorToken {
    async fn access_token(&self) -> Result<String, BQError> {
        Ok("emulator".into())
    }
}

/// The BigQuery sink.
pub struct BigQuery {
    config: BigQueryConfig,
    client: Client,
    project: String,
    dataset: String,
    table: String,
}

impl BigQuery {
    /// Builds the sink and its authenticated client.
    pub async fn new(config: BigQueryConfig) -> Result<Self> {
        let (project, dataset, table) = parse_table(&config.name, &config.table)?;
        let mut builder = ClientBuilder::new();
        if let Some(endpoint) = &config.endpoint {
            builder.with_v2_base_url(endpoint.as_str().trim_end_matches('/').to_string());
        }
        let failed = |context: String| {
            let sink = config.name.clone();
            move |source: BQError| Error::sink_context(&sink, context, source)
        };
        let client = match (&config.credentials_file, &config.endpoint) {
            (Some(path), _) => {
                let path = path.to_string_lossy();
                builder
                    .build_from_service_account_key_file(&path)
                    .await
                    .map_err(failed(format!("`credentials_file` {path}")))?
            }
            (None, Some(_)) => builder
                .build_from_authenticator(Arc::new(EmulatorToken))
                .await
                .map_err(failed("the emulator client".into()))?,
            (None, None) => builder
                .build_from_application_default_credentials()
                .await
                .map_err(failed(
                    "no `credentials_file`, and application default credentials failed".into(),
                ))?,
        };
        Ok(BigQuery {
            config,
            client,
            project,
            dataset,
            table,
        })
    }

    /// Creates the dataset and the table if they are missing.
    async fn ensure_table(&self) -> Result<()> {
        if self
            .client
            .dataset()
            .get(&self.project, &self.dataset)
            .await
            .is_err()
        {
            match self
                .client
                .dataset()
                .create(Dataset::new(&self.project, &self.dataset))
                .await
            {
                Ok(_) => tracing::info!(dataset = %self.dataset, "created the BigQuery dataset"),
                Err(error) => {
                    tracing::warn!(dataset = %self.dataset, %error, "cannot create the BigQuery dataset")
                }
            }
        }
        let exists = self
            .client
            .table()
            .get(&self.project, &self.dataset, &self.table, None)
            .await
            .is_ok();
        if !exists {
            self.client
                .table()
                .create(Table::new(
                    &self.project,
                    &self.dataset,
                    &self.table,
                    schema(),
                ))
                .await
                .map_err(|source| {
                    Error::sink_context(
                        &self.config.name,
                        format!("cannot create table {}", self.config.table),
                        source,
                    )
                })?;
            tracing::info!(table = %self.config.table, "created the BigQuery table");
        }
        Ok(())
    }

    /// One insertAll request of `rows` (`bytes`: their serialised size, for the metrics),
    /// creating the table when the answer says it is missing.
    async fn insert(&self, rows: &[(String, Value)], bytes: usize) -> (Reply, RequestStats) {
        let mut request = TableDataInsertAllRequest::new();
        for (id, row) in rows {
            request
                .add_row(Some(id.clone()), row)
                .expect("a JSON row serializes");
        }
        let started = Instant::now();
        let answer = self
            .client
            .tabledata()
            .insert_all(&self.project, &self.dataset, &self.table, request)
            .await;
        let stats = RequestStats {
            bytes,
            items: rows.len(),
            duration: started.elapsed(),
        };
        let outcomes = match answer {
            Ok(response) => {
                let mut outcomes = vec![ItemOutcome::Delivered; rows.len()];
                for error in response.insert_errors.unwrap_or_default() {
                    let Some(index) = error.index.and_then(|i| usize::try_from(i).ok()) else {
                        continue;
                    };
                    let errors = error.errors.unwrap_or_default();
                    let reasons: Vec<&str> =
                        errors.iter().filter_map(|e| e.reason.as_deref()).collect();
                    let message = errors
                        .iter()
                        .map(|e| {
                            format!(
                                "{}: {}",
                                e.reason.as_deref().unwrap_or("error"),
                                e.message.as_deref().unwrap_or("")
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    if let Some(outcome) = outcomes.get_mut(index) {
                        *outcome = match row_verdict(&reasons) {
                            Verdict::Dead => {
                                ItemOutcome::Dead(format!("BigQuery refused the row: {message}"))
                            }
                            _ => ItemOutcome::Retry(format!(
                                "BigQuery did not insert the row: {message}"
                            )),
                        };
                    }
                }
                Replied::Each(outcomes)
            }
            Err(BQError::ResponseError { error }) => {
                let reasons: Vec<&str> = error
                    .error
                    .errors
                    .iter()
                    .filter_map(|e| e.get("reason").map(String::as_str))
                    .collect();
                let code = error.error.code;
                let message = format!("BigQuery answered {code}: {}", error.error.message);
                if creates_table(code)
                    && let Err(create) = self.ensure_table().await
                {
                    tracing::warn!(error = %create, "cannot create the BigQuery table");
                }
                Replied::All(match request_verdict(code, &reasons) {
                    Verdict::Dead => ItemOutcome::Dead(message),
                    _ => ItemOutcome::Retry(message),
                })
            }
            Err(other) => {
                Replied::All(ItemOutcome::Retry(format!("BigQuery unreachable: {other}")))
            }
        };
        let reply = Reply {
            outcomes,
            retry_after: None,
        };
        (reply, stats)
    }
}

#[async_trait::async_trait]
impl Sink for BigQuery {
    fn max_batch(&self) -> usize {
        MAX_ROWS * 4
    }

    fn flush_interval(&self) -> Duration {
        self.config.flush_interval.unwrap_or(Duration::from_secs(1))
    }

    async fn healthcheck(&self) -> Result<()> {
        self.ensure_table().await
    }

    async fn send(&self, items: &[OutboxItem], _more_waiting: bool) -> Sent {
        let mut sent = Sent::all(items.len(), ItemOutcome::Deferred);
        let rows: Vec<(String, Value)> = items
            .iter()
            .map(|item| (item.id.to_string(), row(item)))
            .collect();
        let sizes: Vec<usize> = rows.iter().map(|(_, row)| row.to_string().len()).collect();
        sent.send_in_order(LIMITS.pack(&sizes), |group| {
            let bytes = sizes[group.clone()].iter().sum();
            self.insert(&rows[group], bytes)
        })
        .await;
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_decisions() {
        let table: [(i64, &[&str], Verdict); 9] = [
            (400, &["invalid"], Verdict::Dead),
            (401, &[], Verdict::Dead),
            (403, &["accessDenied"], Verdict::Dead),
            (403, &["rateLimitExceeded"], Verdict::Retry),
            (403, &["quotaExceeded"], Verdict::Retry),
            (404, &["notFound"], Verdict::Retry),
            (429, &[], Verdict::Retry),
            (500, &["backendError"], Verdict::Retry),
            (503, &[], Verdict::Retry),
        ];
        for (code, reasons, expected) in table {
            assert_eq!(
                request_verdict(code, reasons),
                expected,
                "{code} {reasons:?}"
            );
            assert_eq!(creates_table(code), code == 404, "{code}");
        }
    }

    #[test]
    fn row_decisions() {
        assert_eq!(row_verdict(&["invalid"]), Verdict::Dead);
        assert_eq!(row_verdict(&["stopped"]), Verdict::Retry);
        assert_eq!(row_verdict(&["backendError"]), Verdict::Retry);
        assert_eq!(row_verdict(&[]), Verdict::Retry);
    }

    #[test]
    fn tables_are_project_dataset_table() {
        assert_eq!(
            parse_table("b", "p.d.t").unwrap(),
            ("p".to_string(), "d".to_string(), "t".to_string())
        );
        for bad in ["t", "d.t", "a.b.c.d", "p..t"] {
            assert!(parse_table("b", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rows_keep_spartakus_columns() {
        let item = crate::sinks::summary::tests::item();
        let row = row(&item);
        assert_eq!(row["timestamp"], "1763737200");
        assert_eq!(row["clusterID"], item.cluster_id);
        assert_eq!(row["nodes"][0]["architecture"], "arm64");
        assert_eq!(row["report_id"], item.id.to_string());
        assert_eq!(row["received_at"], "2025-11-21T15:00:01Z");
        let columns: Vec<String> = schema()
            .fields
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        for column in row.as_object().unwrap().keys() {
            assert!(columns.contains(column), "{column} is not in the schema");
        }
    }
}
