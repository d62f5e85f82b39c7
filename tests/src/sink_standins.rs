//! Stand-ins for Segment's HTTP API and Woopra's tracking API on loopback. Each enforces the
//! service's documented wire contract (paths, parameters, auth, size limits, status codes),
//! records what it received, deduplicates as the real service does (Segment by `messageId`;
//! Woopra not at all), and plays scripted answers: a status, a status with `Retry-After`, a
//! dropped connection, or being down (its port closed).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// Segment's batch request limit, as the official clients apply it.
pub const SEGMENT_MAX_BATCH_BYTES: usize = 500_000;
/// Segment's single-event limit.
pub const SEGMENT_MAX_EVENT_BYTES: usize = 32 * 1024;

/// One scripted answer, used for the next request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Answer with this status (and no effect).
    Status(u16),
    /// Answer with this status and `Retry-After: seconds`.
    RetryAfter(u16, u64),
    /// Close the connection without answering.
    Drop,
}

/// Scripted answers and the down switch, shared by the listener and the handlers.
#[derive(Debug, Default)]
pub struct Script {
    answers: Mutex<VecDeque<Answer>>,
    down: AtomicBool,
    latency_ms: AtomicU64,
}

impl Script {
    /// Queues answers for the next requests (then it behaves normally again).
    pub fn push(&self, answers: &[Answer]) {
        self.answers.lock().unwrap().extend(answers.iter().copied());
    }

    /// While down, the port is closed: connections are refused, as when the service is down.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    /// Accepted requests are answered this much later (after they took effect), so a client can
    /// be stopped between the effect and the answer.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.latency_ms
            .store(latency.as_millis() as u64, Ordering::SeqCst);
    }

    async fn answer_later(&self) {
        let ms = self.latency_ms.load(Ordering::SeqCst);
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }

    fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    fn take_drop(&self) -> bool {
        let mut answers = self.answers.lock().unwrap();
        if answers.front() == Some(&Answer::Drop) {
            answers.pop_front();
            true
        } else {
            false
        }
    }

    /// The next scripted status answer, if one is due: its code and `Retry-After` seconds.
    pub(crate) fn take_status(&self) -> Option<(u16, Option<u64>)> {
        let mut answers = self.answers.lock().unwrap();
        let answer = match answers.front().copied() {
            Some(Answer::Status(code)) => (code, None),
            Some(Answer::RetryAfter(code, seconds)) => (code, Some(seconds)),
            _ => return None,
        };
        answers.pop_front();
        Some(answer)
    }

    fn take_response(&self) -> Option<Response> {
        self.take_status()
            .map(|(code, retry_after)| scripted(code, retry_after))
    }
}

fn scripted(code: u16, retry_after: Option<u64>) -> Response {
    let mut response = (
        StatusCode::from_u16(code).unwrap(),
        axum::Json(json!({"success": false, "message": "scripted answer"})),
    )
        .into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// A listener that closes connections the script says to drop. Every answer closes its
/// connection (`Connection: close`), so each request arrives on a connection of its own.
struct ScriptedListener {
    inner: tokio::net::TcpListener,
    script: Arc<Script>,
}

impl axum::serve::Listener for ScriptedListener {
    type Io = tokio::net::TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (stream, address) = axum::serve::Listener::accept(&mut self.inner).await;
            if !self.script.take_drop() {
                return (stream, address);
            }
            drop(stream);
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Serves `router` on an ephemeral loopback port; while the script says down, the port is
/// closed, and it is bound again when the script says up.
pub(crate) async fn serve(router: Router, script: Arc<Script>) -> SocketAddr {
    let first = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = first.local_addr().unwrap();
    let router = router.layer(axum::middleware::map_response(
        |mut response: Response| async move {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        },
    ));
    let poll = std::time::Duration::from_millis(20);
    tokio::spawn(async move {
        let mut listener = Some(first);
        loop {
            let inner = match listener.take() {
                Some(listener) => listener,
                None => {
                    while script.is_down() {
                        tokio::time::sleep(poll).await;
                    }
                    match tokio::net::TcpListener::bind(address).await {
                        Ok(listener) => listener,
                        Err(_) => {
                            tokio::time::sleep(poll).await;
                            continue;
                        }
                    }
                }
            };
            let watched = script.clone();
            let went_down = async move {
                while !watched.is_down() {
                    tokio::time::sleep(poll).await;
                }
            };
            let listener = ScriptedListener {
                inner,
                script: script.clone(),
            };
            axum::serve(listener, router.clone())
                .with_graceful_shutdown(went_down)
                .await
                .unwrap();
        }
    });
    address
}

/// One batch request Segment's stand-in accepted.
#[derive(Debug, Clone, Copy)]
pub struct BatchRecord {
    /// Body bytes.
    pub bytes: usize,
    /// Events in it.
    pub events: usize,
}

/// Segment's HTTP API stand-in.
#[derive(Debug, Default)]
pub struct Segment {
    write_key: String,
    /// Scripted answers and the down switch.
    pub script: Arc<Script>,
    events: Mutex<Vec<Value>>,
    message_ids: Mutex<HashSet<String>>,
    batches: Mutex<Vec<BatchRecord>>,
    refused: Mutex<Vec<(u16, String)>>,
    lags: Mutex<Vec<f64>>,
}

impl Segment {
    /// Starts a stand-in accepting `write_key`; returns it and its base URL.
    pub async fn start(write_key: &str) -> (Arc<Segment>, String) {
        let standin = Arc::new(Segment {
            write_key: write_key.into(),
            ..Segment::default()
        });
        let router = Router::new()
            .route("/v1/batch", post(segment_batch))
            .with_state(standin.clone());
        let address = serve(router, standin.script.clone()).await;
        (standin, format!("http://{address}"))
    }

    /// Every event accepted, duplicates included.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// Distinct `messageId`s accepted (what Segment keeps after deduplication).
    pub fn message_ids(&self) -> HashSet<String> {
        self.message_ids.lock().unwrap().clone()
    }

    /// Every batch request accepted.
    pub fn batches(&self) -> Vec<BatchRecord> {
        self.batches.lock().unwrap().clone()
    }

    /// For each accepted event, seconds from its `timestamp` to its arrival (the delivery delay
    /// when the timestamp is the time the collector received the report).
    pub fn lags(&self) -> Vec<f64> {
        self.lags.lock().unwrap().clone()
    }

    /// Requests refused by the contract, with status and reason.
    pub fn refused(&self) -> Vec<(u16, String)> {
        self.refused.lock().unwrap().clone()
    }

    fn refuse(&self, code: u16, reason: String) -> Response {
        self.refused.lock().unwrap().push((code, reason.clone()));
        (
            StatusCode::from_u16(code).unwrap(),
            axum::Json(json!({"success": false, "message": reason})),
        )
            .into_response()
    }
}

async fn segment_batch(
    State(standin): State<Arc<Segment>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Basic auth: the write key as user name, an empty password.
    use base64::Engine;
    let credentials = format!("{}:", standin.write_key);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    );
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(expected.as_str())
    {
        return standin.refuse(401, "missing or wrong write key".into());
    }
    if let Some(response) = standin.script.take_response() {
        return response;
    }
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return standin.refuse(400, "Content-Type must be application/json".into());
    }
    if body.len() > SEGMENT_MAX_BATCH_BYTES {
        return standin.refuse(400, format!("batch of {} bytes is over 500 KB", body.len()));
    }
    let Ok(document) = serde_json::from_slice::<Value>(&body) else {
        return standin.refuse(400, "invalid JSON".into());
    };
    let Some(batch) = document.get("batch").and_then(Value::as_array) else {
        return standin.refuse(400, "`batch` must be an array".into());
    };
    for event in batch {
        let size = event.to_string().len();
        if size > SEGMENT_MAX_EVENT_BYTES {
            return standin.refuse(400, format!("an event of {size} bytes is over 32 KB"));
        }
        let has = |key: &str| {
            event
                .get(key)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        };
        if event.get("type").and_then(Value::as_str) != Some("track")
            || !has("event")
            || !has("messageId")
            || !(has("userId") || has("anonymousId"))
            || !has("timestamp")
        {
            return standin.refuse(400, format!("invalid track event: {event}"));
        }
    }
    {
        let mut ids = standin.message_ids.lock().unwrap();
        for event in batch {
            ids.insert(event["messageId"].as_str().unwrap().to_string());
        }
        standin.events.lock().unwrap().extend(batch.iter().cloned());
        let now = std::time::SystemTime::now();
        standin
            .lags
            .lock()
            .unwrap()
            .extend(batch.iter().filter_map(|event| {
                let sent = humantime::parse_rfc3339(event["timestamp"].as_str()?).ok()?;
                Some(now.duration_since(sent).unwrap_or_default().as_secs_f64())
            }));
        standin.batches.lock().unwrap().push(BatchRecord {
            bytes: body.len(),
            events: batch.len(),
        });
    }
    standin.script.answer_later().await;
    axum::Json(json!({"success": true})).into_response()
}

/// Woopra's tracking API stand-in.
#[derive(Debug, Default)]
pub struct Woopra {
    project: String,
    /// Scripted answers and the down switch.
    pub script: Arc<Script>,
    events: Mutex<Vec<HashMap<String, String>>>,
    refused: Mutex<Vec<String>>,
}

impl Woopra {
    /// Starts a stand-in for `project`; returns it and its base URL.
    pub async fn start(project: &str) -> (Arc<Woopra>, String) {
        let standin = Arc::new(Woopra {
            project: project.into(),
            ..Woopra::default()
        });
        let router = Router::new()
            .route("/track/ce", get(woopra_track))
            .with_state(standin.clone());
        let address = serve(router, standin.script.clone()).await;
        (standin, format!("http://{address}"))
    }

    /// Every event received (Woopra does not deduplicate).
    pub fn events(&self) -> Vec<HashMap<String, String>> {
        self.events.lock().unwrap().clone()
    }

    /// Requests refused by the contract.
    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }
}

async fn woopra_track(
    State(standin): State<Arc<Woopra>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(response) = standin.script.take_response() {
        return response;
    }
    let missing: Vec<&str> = ["project", "event", "timestamp"]
        .into_iter()
        .filter(|key| query.get(*key).is_none_or(|v| v.is_empty()))
        .collect();
    let identified = ["cv_id", "cookie"]
        .iter()
        .any(|k| query.get(*k).is_some_and(|v| !v.is_empty()));
    let timestamp_ms = query.get("timestamp").and_then(|t| t.parse::<i64>().ok());
    let problem = if !missing.is_empty() {
        Some(format!("missing {missing:?}"))
    } else if !identified {
        Some("no visitor (cv_id or cookie)".to_string())
    } else if query["project"] != standin.project {
        Some(format!("unknown project {:?}", query["project"]))
    } else if timestamp_ms.is_none_or(|ms| ms < 1_000_000_000_000) {
        Some("timestamp must be milliseconds".to_string())
    } else {
        None
    };
    if let Some(problem) = problem {
        standin.refused.lock().unwrap().push(problem.clone());
        return (StatusCode::BAD_REQUEST, problem).into_response();
    }
    standin.events.lock().unwrap().push(query);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "image/gif")],
        "GIF89a",
    )
        .into_response()
}
