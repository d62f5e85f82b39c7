//! BigQuery peers for the sink's tests: the real emulator (PyPI's `bqemulator`, installed by
//! `tests/bqemulator/setup.sh`) run as a process on loopback, and a stand-in that enforces the
//! parts of the `tabledata.insertAll` contract the emulator does not (insertId dedup, per-row
//! `insertErrors` with `invalid` and `stopped`, bearer auth, request limits).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::sink_standins::{Script, serve};

/// The project the emulator serves.
pub const EMULATOR_PROJECT: &str = "test-project";

/// How long the emulator may take to listen (its first start compiles SQL rules).
const EMULATOR_START: Duration = Duration::from_secs(120);

/// The `bqemulator` program: `$BQEMULATOR`, or what `tests/bqemulator/setup.sh` installs.
fn emulator_program() -> PathBuf {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM
        .get_or_init(|| crate::installed_program("BQEMULATOR", "bqemulator/setup.sh"))
        .clone()
}

/// A running BigQuery emulator with an in-memory store, killed when dropped.
pub struct BigQueryEmulator {
    _child: Child,
    port: u16,
    http: reqwest::Client,
}

impl BigQueryEmulator {
    /// Starts the emulator on an ephemeral loopback port and waits until it listens.
    pub async fn start() -> BigQueryEmulator {
        let mut child = Command::new(emulator_program())
            .args([
                "start",
                "--rest-host",
                "127.0.0.1",
                "--rest-port",
                "0",
                "--grpc-port",
                "0",
                "--project",
                EMULATOR_PROJECT,
                "--ephemeral",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("bqemulator starts");
        // It logs JSON lines on either stream; `rest.listen` carries the port.
        let (found, port) = tokio::sync::mpsc::unbounded_channel::<u16>();
        let log = Arc::new(Mutex::new(Vec::<String>::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let found = found.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Ok(entry) = serde_json::from_str::<Value>(&line)
                        && entry["event"] == "rest.listen"
                        && let Some(port) = entry["port"].as_u64()
                    {
                        let _ = found.send(port as u16);
                    }
                    let mut log = log.lock().unwrap();
                    if log.len() < 200 {
                        log.push(line);
                    }
                }
            });
        }
        drop(found);
        let mut port = port;
        let port = match tokio::time::timeout(EMULATOR_START, port.recv()).await {
            Ok(Some(port)) => port,
            _ => panic!(
                "the BigQuery emulator did not start; its log:\n{}",
                log.lock().unwrap().join("\n")
            ),
        };
        BigQueryEmulator {
            _child: child,
            port,
            http: reqwest::Client::new(),
        }
    }

    /// The REST base the sink is pointed at.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/bigquery/v2", self.port)
    }

    /// Runs a standard-SQL query; returns the rows as arrays of cell values (`f[].v`).
    pub async fn query(&self, sql: &str) -> Vec<Vec<Value>> {
        let url = format!("{}/projects/{EMULATOR_PROJECT}/queries", self.endpoint());
        let answer = crate::send_json(
            self.http
                .post(url)
                .json(&json!({"query": sql, "useLegacySql": false})),
        )
        .await;
        let Some(rows) = answer.get("rows").and_then(Value::as_array) else {
            assert!(answer.get("error").is_none(), "{sql}: {answer}");
            return Vec::new();
        };
        rows.iter()
            .map(|row| {
                row["f"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|cell| cell["v"].clone())
                    .collect()
            })
            .collect()
    }

    /// The table's column names, in order.
    pub async fn columns(&self, dataset: &str, table: &str) -> Vec<String> {
        let url = format!(
            "{}/projects/{EMULATOR_PROJECT}/datasets/{dataset}/tables/{table}",
            self.endpoint()
        );
        let table = crate::send_json(self.http.get(url)).await;
        table["schema"]["fields"]
            .as_array()
            .unwrap_or_else(|| panic!("no schema: {table}"))
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// BigQuery's limit on an insert request's body.
pub const MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;
/// BigQuery's limit on rows in one insert request.
pub const MAX_ROWS: usize = 50_000;

/// One `insertAll` request the stand-in answered 200.
#[derive(Debug, Clone, Copy)]
pub struct InsertRecord {
    /// Rows in it.
    pub rows: usize,
    /// Body bytes.
    pub bytes: usize,
}

#[derive(Debug, Default)]
struct Tables {
    datasets: HashSet<String>,
    /// `dataset.table` → schema fields.
    schemas: HashMap<String, Vec<Value>>,
}

/// A `tabledata.insertAll` stand-in: datasets and tables can be read and created; inserts are
/// checked against the table's top-level schema (unknown fields and missing REQUIRED fields are
/// `invalid`), rows of clusters in the poison set are `invalid` too, and as BigQuery does without
/// `skipInvalidRows`, one invalid row refuses the whole request with `stopped` for the others.
/// Rows are deduplicated by `insertId`, as BigQuery does on a best-effort basis.
#[derive(Debug, Default)]
pub struct BigQueryStandin {
    /// Scripted answers and the down switch.
    pub script: Arc<Script>,
    tables: Mutex<Tables>,
    rows: Mutex<Vec<(Option<String>, Value)>>,
    insert_ids: Mutex<HashSet<String>>,
    inserts: Mutex<Vec<InsertRecord>>,
    poison: Mutex<HashSet<String>>,
}

impl BigQueryStandin {
    /// Starts a stand-in; returns it and the REST base (`http://…/bigquery/v2`).
    pub async fn start() -> (Arc<BigQueryStandin>, String) {
        let standin = Arc::new(BigQueryStandin::default());
        let base = "/bigquery/v2/projects/{project}/datasets";
        let router = Router::new()
            .route(base, post(create_dataset))
            .route(&format!("{base}/{{dataset}}"), get(get_dataset))
            .route(&format!("{base}/{{dataset}}/tables"), post(create_table))
            .route(
                &format!("{base}/{{dataset}}/tables/{{table}}"),
                get(get_table),
            )
            .route(
                &format!("{base}/{{dataset}}/tables/{{table}}/insertAll"),
                post(insert_all),
            )
            .with_state(standin.clone());
        let address = serve(router, standin.script.clone()).await;
        (standin, format!("http://{address}/bigquery/v2"))
    }

    /// Rows of clusters in `clusters` are refused as `invalid` from now on.
    pub fn poison(&self, clusters: &[&str]) {
        self.poison
            .lock()
            .unwrap()
            .extend(clusters.iter().map(|c| c.to_string()));
    }

    /// Every row stored (after dedup), with its `insertId`.
    pub fn rows(&self) -> Vec<(Option<String>, Value)> {
        self.rows.lock().unwrap().clone()
    }

    /// Every insert request answered 200.
    pub fn inserts(&self) -> Vec<InsertRecord> {
        self.inserts.lock().unwrap().clone()
    }

    /// The schema fields of `dataset.table`, if it was created.
    pub fn schema(&self, dataset: &str, table: &str) -> Option<Vec<Value>> {
        self.tables
            .lock()
            .unwrap()
            .schemas
            .get(&format!("{dataset}.{table}"))
            .cloned()
    }
}

/// BigQuery's error document.
fn bigquery_error(code: u16, reason: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap();
    (
        status,
        axum::Json(json!({"error": {
            "code": code,
            "message": message,
            "errors": [{"reason": reason, "message": message, "domain": "global"}],
            "status": status.canonical_reason().unwrap_or("UNKNOWN").to_uppercase().replace(' ', "_"),
        }})),
    )
        .into_response()
}

/// Bearer auth and scripted answers, checked before every call.
fn precheck(standin: &BigQueryStandin, headers: &HeaderMap) -> Option<Response> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer ") && v.len() > "Bearer ".len());
    if !bearer {
        return Some(bigquery_error(
            401,
            "unauthorized",
            "Request is missing required authentication credential.",
        ));
    }
    let (code, retry_after) = standin.script.take_status()?;
    let reason = match code {
        400 => "invalid",
        403 => "accessDenied",
        404 => "notFound",
        429 => "rateLimitExceeded",
        500 => "backendError",
        _ => "internalError",
    };
    let mut response = bigquery_error(code, reason, "scripted answer");
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    Some(response)
}

async fn create_dataset(
    State(standin): State<Arc<BigQueryStandin>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(response) = precheck(&standin, &headers) {
        return response;
    }
    let Some(id) = body["datasetReference"]["datasetId"].as_str() else {
        return bigquery_error(400, "invalid", "datasetReference.datasetId is required");
    };
    if !standin.tables.lock().unwrap().datasets.insert(id.into()) {
        return bigquery_error(409, "duplicate", "Already Exists");
    }
    axum::Json(body).into_response()
}

async fn get_dataset(
    State(standin): State<Arc<BigQueryStandin>>,
    headers: HeaderMap,
    Path((project, dataset)): Path<(String, String)>,
) -> Response {
    if let Some(response) = precheck(&standin, &headers) {
        return response;
    }
    if standin.tables.lock().unwrap().datasets.contains(&dataset) {
        axum::Json(json!({"datasetReference": {"projectId": project, "datasetId": dataset}}))
            .into_response()
    } else {
        bigquery_error(404, "notFound", &format!("Not found: Dataset {dataset}"))
    }
}

async fn create_table(
    State(standin): State<Arc<BigQueryStandin>>,
    headers: HeaderMap,
    Path((_project, dataset)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Some(response) = precheck(&standin, &headers) {
        return response;
    }
    let mut tables = standin.tables.lock().unwrap();
    if !tables.datasets.contains(&dataset) {
        return bigquery_error(404, "notFound", &format!("Not found: Dataset {dataset}"));
    }
    let Some(table) = body["tableReference"]["tableId"].as_str() else {
        return bigquery_error(400, "invalid", "tableReference.tableId is required");
    };
    let Some(fields) = body["schema"]["fields"].as_array() else {
        return bigquery_error(400, "invalid", "schema.fields is required");
    };
    let key = format!("{dataset}.{table}");
    if tables.schemas.contains_key(&key) {
        return bigquery_error(409, "duplicate", "Already Exists");
    }
    tables.schemas.insert(key, fields.clone());
    axum::Json(body).into_response()
}

async fn get_table(
    State(standin): State<Arc<BigQueryStandin>>,
    headers: HeaderMap,
    Path((project, dataset, table)): Path<(String, String, String)>,
) -> Response {
    if let Some(response) = precheck(&standin, &headers) {
        return response;
    }
    match standin.schema(&dataset, &table) {
        Some(fields) => axum::Json(json!({
            "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
            "schema": {"fields": fields},
        }))
        .into_response(),
        None => bigquery_error(404, "notFound", &format!("Not found: Table {table}")),
    }
}

/// Why BigQuery would refuse `row` under `schema` (top-level fields only).
fn row_problem(schema: &[Value], row: &Value) -> Option<String> {
    let Some(object) = row.as_object() else {
        return Some("the row is not a JSON object".into());
    };
    let known: HashSet<&str> = schema.iter().filter_map(|f| f["name"].as_str()).collect();
    if let Some(unknown) = object.keys().find(|k| !known.contains(k.as_str())) {
        return Some(format!("no such field: {unknown}."));
    }
    schema
        .iter()
        .filter(|f| f["mode"] == "REQUIRED")
        .filter_map(|f| f["name"].as_str())
        .find(|name| object.get(*name).is_none_or(Value::is_null))
        .map(|name| format!("Missing required field: {name}."))
}

async fn insert_all(
    State(standin): State<Arc<BigQueryStandin>>,
    headers: HeaderMap,
    Path((_project, dataset, table)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    if let Some(response) = precheck(&standin, &headers) {
        return response;
    }
    if body.len() > MAX_REQUEST_BYTES {
        return bigquery_error(413, "invalid", "Request payload size exceeds the limit");
    }
    let Some(schema) = standin.schema(&dataset, &table) else {
        return bigquery_error(404, "notFound", &format!("Not found: Table {table}"));
    };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bigquery_error(400, "invalid", "the body is not JSON");
    };
    let Some(rows) = request["rows"].as_array().filter(|r| !r.is_empty()) else {
        return bigquery_error(400, "invalid", "No rows present in the request.");
    };
    if rows.len() > MAX_ROWS {
        return bigquery_error(400, "invalid", "too many rows present in the request");
    }
    let poison = standin.poison.lock().unwrap().clone();
    let problems: Vec<(usize, String)> = rows
        .iter()
        .enumerate()
        .filter_map(|(index, row)| {
            let json = &row["json"];
            let problem = row_problem(&schema, json).or_else(|| {
                json["clusterID"]
                    .as_str()
                    .filter(|c| poison.contains(*c))
                    .map(|c| format!("the stand-in refuses rows of cluster {c}"))
            });
            problem.map(|p| (index, p))
        })
        .collect();
    if !problems.is_empty() {
        let invalid: HashMap<usize, String> = problems.into_iter().collect();
        let errors: Vec<Value> = (0..rows.len())
            .map(|index| match invalid.get(&index) {
                Some(message) => json!({"index": index, "errors": [{"reason": "invalid", "location": "", "message": message}]}),
                None => json!({"index": index, "errors": [{"reason": "stopped", "location": "", "message": ""}]}),
            })
            .collect();
        return axum::Json(json!({
            "kind": "bigquery#tableDataInsertAllResponse",
            "insertErrors": errors,
        }))
        .into_response();
    }
    let mut ids = standin.insert_ids.lock().unwrap();
    let mut stored = standin.rows.lock().unwrap();
    for row in rows {
        let insert_id = row["insertId"].as_str().map(str::to_string);
        let fresh = insert_id.as_ref().is_none_or(|id| ids.insert(id.clone()));
        if fresh {
            stored.push((insert_id, row["json"].clone()));
        }
    }
    standin.inserts.lock().unwrap().push(InsertRecord {
        rows: rows.len(),
        bytes: body.len(),
    });
    axum::Json(json!({"kind": "bigquery#tableDataInsertAllResponse"})).into_response()
}
