//! BigQuery: streaming inserts (`tabledata.insertAll`) into a table that keeps Spartakus's
//! columns, with `insertId` = report id for BigQuery's best-effort dedup, and per-row errors
//! inspected (HTTP 200 can still refuse rows).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_data_insert_all_request::TableDataInsertAllRequest;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use super::config::duration;
use super::{ItemOutcome, RequestStats, Sent, Sink, rfc3339};
use crate::store::OutboxItem;

/// Most rows in one insert request.
pub const MAX_ROWS: usize = 500;
/// Largest insert request body (BigQuery's limit is 10 MB).
pub const MAX_REQUEST_BYTES: usize = 9_000_000;

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
    pub endpoint: Option<Url>,
    /// How long a partial batch waits for more reports (default `1s`).
    #[serde(default, deserialize_with = "duration")]
    pub flush_interval: Option<Duration>,
}

/// Splits `project.dataset.table`.
pub fn parse_table(table: &str) -> Result<(String, String, String), String> {
    let parts: Vec<&str> = table.split('.').collect();
    match parts.as_slice() {
        [project, dataset, table] if [project, dataset, table].iter().all(|p| !p.is_empty()) => {
            Ok((project.to_string(), dataset.to_string(), table.to_string()))
        }
        _ => Err(format!("`table` {table:?} must be project.dataset.table")),
    }
}

/// What to do after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Worth another try.
    Retry,
    /// The table is missing: create it, then try again.
    CreateTable,
    /// Refused for good.
    Dead,
}

/// The decision for a failed request: its HTTP status and the `errors[].reason` values.
pub fn request_verdict(code: i64, reasons: &[&str]) -> Verdict {
    let quota = reasons.iter().any(|r| {
        matches!(
            *r,
            "rateLimitExceeded" | "quotaExceeded" | "backendError" | "internalError"
        )
    });
    match code {
        404 => Verdict::CreateTable,
        408 | 429 | 500..=599 => Verdict::Retry,
        403 if quota => Verdict::Retry,
        _ => Verdict::Dead,
    }
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
    pub async fn new(config: BigQueryConfig) -> Result<Self, String> {
        let (project, dataset, table) = parse_table(&config.table)?;
        let mut builder = ClientBuilder::new();
        if let Some(endpoint) = &config.endpoint {
            builder.with_v2_base_url(endpoint.as_str().trim_end_matches('/').to_string());
        }
        let client = match (&config.credentials_file, &config.endpoint) {
            (Some(path), _) => {
                let path = path.to_string_lossy();
                builder
                    .build_from_service_account_key_file(&path)
                    .await
                    .map_err(|e| format!("`credentials_file` {path}: {e}"))?
            }
            (None, Some(_)) => builder
                .build_from_authenticator(Arc::new(EmulatorToken))
                .await
                .map_err(|e| e.to_string())?,
            (None, None) => builder
                .build_from_application_default_credentials()
                .await
                .map_err(|e| {
                    format!(
                        "no `credentials_file`, and application default credentials failed: {e}"
                    )
                })?,
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
    async fn ensure_table(&self) -> Result<(), String> {
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
                .map_err(|e| format!("cannot create table {}: {e}", self.config.table))?;
            tracing::info!(table = %self.config.table, "created the BigQuery table");
        }
        Ok(())
    }

    /// One insertAll request of `rows` (`bytes`: their serialised size, for the metrics).
    async fn insert(
        &self,
        rows: &[(String, Value)],
        bytes: usize,
    ) -> (Result<Vec<ItemOutcome>, (Verdict, String)>, RequestStats) {
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
        let result = match answer {
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
                Ok(outcomes)
            }
            Err(BQError::ResponseError { error }) => {
                let reasons: Vec<&str> = error
                    .error
                    .errors
                    .iter()
                    .filter_map(|e| e.get("reason").map(String::as_str))
                    .collect();
                let verdict = request_verdict(error.error.code, &reasons);
                Err((
                    verdict,
                    format!(
                        "BigQuery answered {}: {}",
                        error.error.code, error.error.message
                    ),
                ))
            }
            Err(other) => Err((Verdict::Retry, format!("BigQuery unreachable: {other}"))),
        };
        (result, stats)
    }
}

/// The table's schema: Spartakus's `bigquery.schema.json` columns (so Spartakus tables and
/// queries keep working), then the new sections and the collector's own columns.
pub fn schema() -> TableSchema {
    let required = |mut field: TableFieldSchema| {
        field.mode = Some("REQUIRED".into());
        field
    };
    let repeated = |mut field: TableFieldSchema| {
        field.mode = Some("REPEATED".into());
        field
    };
    let capacity = repeated(TableFieldSchema::record(
        "capacity",
        vec![
            required(TableFieldSchema::string("resource")),
            required(TableFieldSchema::string("value")),
        ],
    ));
    let nodes = repeated(TableFieldSchema::record(
        "nodes",
        vec![
            required(TableFieldSchema::string("id")),
            TableFieldSchema::string("operatingSystem"),
            TableFieldSchema::string("osImage"),
            TableFieldSchema::string("kernelVersion"),
            TableFieldSchema::string("architecture"),
            TableFieldSchema::string("containerRuntimeVersion"),
            TableFieldSchema::string("kubeletVersion"),
            TableFieldSchema::string("cloudProvider"),
            capacity,
        ],
    ));
    TableSchema::new(vec![
        required(TableFieldSchema::string("version")),
        required(TableFieldSchema::string("timestamp")),
        required(TableFieldSchema::string("clusterID")),
        TableFieldSchema::string("masterVersion"),
        nodes,
        repeated(TableFieldSchema::record(
            "extensions",
            vec![
                required(TableFieldSchema::string("name")),
                required(TableFieldSchema::string("value")),
            ],
        )),
        TableFieldSchema::integer("namespaces"),
        repeated(TableFieldSchema::record(
            "objects",
            vec![
                required(TableFieldSchema::string("kind")),
                required(TableFieldSchema::integer("total")),
                repeated(TableFieldSchema::integer("perNamespace")),
                TableFieldSchema::integer("ageP50"),
                TableFieldSchema::integer("ageP90"),
                TableFieldSchema::integer("ageP99"),
                TableFieldSchema::integer("ageMax"),
            ],
        )),
        repeated(TableFieldSchema::record(
            "skipped",
            vec![
                required(TableFieldSchema::string("section")),
                required(TableFieldSchema::string("reason")),
            ],
        )),
        required(TableFieldSchema::string("report_id")),
        required(TableFieldSchema::string("time_source")),
        required(TableFieldSchema::timestamp("received_at")),
    ])
}

/// One row: the report's fields as Spartakus wrote them (`timestamp` is the report's time in
/// unix seconds, as a string), plus the new sections, the report id and `received_at`.
pub fn row(item: &OutboxItem) -> Value {
    let report = &item.report;
    let nodes: Vec<Value> = report
        .nodes
        .iter()
        .map(|node| {
            json!({
                "id": node.id,
                "operatingSystem": node.operating_system,
                "osImage": node.os_image,
                "kernelVersion": node.kernel_version,
                "architecture": node.architecture,
                "containerRuntimeVersion": node.container_runtime_version,
                "kubeletVersion": node.kubelet_version,
                "cloudProvider": node.cloud_provider,
                "capacity": node.capacity.iter().map(|c| json!({"resource": c.resource, "value": c.value})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let objects: Vec<Value> = report
        .objects
        .iter()
        .map(|(kind, stats)| {
            let age = stats.age_seconds;
            json!({
                "kind": kind.as_str(),
                "total": stats.total,
                "perNamespace": stats.per_namespace,
                "ageP50": age.map(|a| a.p50),
                "ageP90": age.map(|a| a.p90),
                "ageP99": age.map(|a| a.p99),
                "ageMax": age.map(|a| a.max),
            })
        })
        .collect();
    json!({
        "version": report.version,
        "timestamp": item.report_time.to_string(),
        "clusterID": item.cluster_id,
        "masterVersion": report.master_version,
        "nodes": nodes,
        "extensions": report.extensions.iter().map(|e| json!({"name": e.name, "value": e.value})).collect::<Vec<_>>(),
        "namespaces": report.namespaces,
        "objects": objects,
        "skipped": report.skipped.iter().map(|s| json!({"section": s.section, "reason": s.reason})).collect::<Vec<_>>(),
        "report_id": item.id.to_string(),
        "time_source": item.time_source.as_str(),
        "received_at": rfc3339(item.received_at),
    })
}

#[async_trait::async_trait]
impl Sink for BigQuery {
    fn max_batch(&self) -> usize {
        MAX_ROWS * 4
    }

    fn flush_interval(&self) -> Duration {
        self.config.flush_interval.unwrap_or(Duration::from_secs(1))
    }

    async fn healthcheck(&self) -> Result<(), String> {
        self.ensure_table().await
    }

    async fn send(&self, items: &[OutboxItem], _more_waiting: bool) -> Sent {
        let mut sent = Sent::all(items.len(), ItemOutcome::Deferred);
        let rows: Vec<(String, Value)> = items
            .iter()
            .map(|item| (item.id.to_string(), row(item)))
            .collect();
        let sizes: Vec<usize> = rows.iter().map(|(_, row)| row.to_string().len()).collect();
        let mut start = 0;
        while start < rows.len() {
            // Up to MAX_ROWS rows and MAX_REQUEST_BYTES a request.
            let mut end = start;
            let mut bytes = 0;
            while end < rows.len() && end - start < MAX_ROWS {
                // The row and its insertId and envelope.
                let size = sizes[end] + 64;
                if end > start && bytes + size > MAX_REQUEST_BYTES {
                    break;
                }
                bytes += size;
                end += 1;
            }
            let row_bytes = sizes[start..end].iter().sum();
            let (result, stats) = self.insert(&rows[start..end], row_bytes).await;
            sent.requests.push(stats);
            match result {
                Ok(outcomes) => {
                    for (slot, outcome) in sent.outcomes[start..end].iter_mut().zip(outcomes) {
                        *slot = outcome;
                    }
                }
                Err((Verdict::Dead, error)) => {
                    for slot in &mut sent.outcomes[start..end] {
                        *slot = ItemOutcome::Dead(error.clone());
                    }
                }
                Err((verdict, error)) => {
                    if verdict == Verdict::CreateTable
                        && let Err(create) = self.ensure_table().await
                    {
                        tracing::warn!(error = %create, "cannot create the BigQuery table");
                    }
                    for slot in &mut sent.outcomes[start..end] {
                        *slot = ItemOutcome::Retry(error.clone());
                    }
                    break;
                }
            }
            start = end;
        }
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
            (404, &["notFound"], Verdict::CreateTable),
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
            parse_table("p.d.t").unwrap(),
            ("p".to_string(), "d".to_string(), "t".to_string())
        );
        for bad in ["t", "d.t", "a.b.c.d", "p..t"] {
            assert!(parse_table(bad).is_err(), "{bad}");
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
