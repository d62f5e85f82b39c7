//! Helpers for end-to-end tests: find the built binaries, start a collector process on
//! ephemeral ports and learn its addresses from its log, make reports; and the Kubernetes API
//! server stand-in the volunteer is tested and benchmarked against.

/// A fresh PostgreSQL database on the test server, the one the collector's own tests use.
#[path = "../../collector/tests/database/mod.rs"]
pub mod database;

pub mod bigquery;
pub mod fleet;
pub mod kube_standin;
pub mod sink_standins;
pub mod spartakus;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a collector may take to start listening.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Path of a binary of this workspace, built next to the test executable (`target/<profile>/`).
pub fn binary(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("the test executable has a path");
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace binaries first (cargo build --workspace --bins)",
        path.display()
    );
    path
}

/// A program the test suite installs itself: `$env_var` when set, or the path the installer
/// `script` (relative to `tests/`, idempotent, path on its standard output) prints.
pub fn installed_program(env_var: &str, script: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_var) {
        return PathBuf::from(path);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let output = std::process::Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed; see its output above",
        script.display()
    );
    PathBuf::from(String::from_utf8(output.stdout).unwrap().trim())
}

/// Flags that turn every rate limit off (the per-cluster and both per-source ones), for tests
/// that send many reports from one address.
pub const WITHOUT_RATE_LIMITS: [&str; 6] = [
    "--rate-limit-per-hour",
    "0",
    "--source-rate-limit-per-minute",
    "0",
    "--source-new-clusters-per-hour",
    "0",
];

/// [`WITHOUT_RATE_LIMITS`], then `more`.
pub fn without_rate_limits<'a>(more: &[&'a str]) -> Vec<&'a str> {
    let mut flags = WITHOUT_RATE_LIMITS.to_vec();
    flags.extend_from_slice(more);
    flags
}

/// A running collector process.
pub struct Collector {
    /// The process.
    pub child: Child,
    /// Public listener (ingest).
    pub public: SocketAddr,
    /// Admin listener (read API, metrics).
    pub admin: SocketAddr,
    /// Every log line it wrote so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Collector {
    /// Starts `binary` with `--data-dir data_dir`, ephemeral loopback ports, JSON logs and
    /// `args`, and waits until it listens.
    pub async fn start(binary: &Path, data_dir: &Path, args: &[&str]) -> Collector {
        let mut command = collector_command(binary, data_dir);
        command.args(["--log-format", "json"]).args(args);
        Self::spawn(command).await.unwrap_or_else(|log| {
            panic!("the collector did not start; its log:\n{}", log.join("\n"))
        })
    }

    /// Spawns a prepared command; `Err` holds the log when it exits or hangs before listening.
    pub async fn spawn(mut command: Command) -> Result<Collector, Vec<String>> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("the collector binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (addresses, listening) = tokio::sync::oneshot::channel();
        let lines = log.clone();
        tokio::spawn(async move {
            let mut addresses = Some(addresses);
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Some(found) = listening_addresses(&line)
                    && let Some(sender) = addresses.take()
                {
                    let _ = sender.send(found);
                }
                lines.lock().unwrap().push(line);
            }
        });
        match tokio::time::timeout(START_DEADLINE, listening).await {
            Ok(Ok((public, admin))) => Ok(Collector {
                child,
                public,
                admin,
                log,
            }),
            _ => {
                let _ = child.kill().await;
                Err(log.lock().unwrap().clone())
            }
        }
    }

    /// `http://<public>/...`
    pub fn public_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.public)
    }

    /// `http://<admin>/...`
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }
}

/// The addresses in a JSON "collector listening" log line.
fn listening_addresses(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let entry: Value = serde_json::from_str(line).ok()?;
    let fields = entry.get("fields")?;
    if fields.get("message")?.as_str()? != "collector listening" {
        return None;
    }
    let address = |name: &str| fields.get(name)?.as_str()?.parse().ok();
    Some((address("public")?, address("admin")?))
}

/// Posts `report(cluster, timestamp)` for every item, `concurrency` at a time; returns the items
/// answered 204, counting them in `acked` as they come (so a test can act mid-stream).
pub async fn post_reports(
    client: &reqwest::Client,
    url: &str,
    items: Vec<(String, i64)>,
    concurrency: usize,
    acked: Arc<AtomicUsize>,
) -> Vec<(String, i64)> {
    futures::stream::iter(items)
        .map(|(cluster, timestamp)| async move {
            let sent = client
                .post(url)
                .header("Content-Type", "application/json")
                .body(report(&cluster, timestamp).to_string())
                .send()
                .await;
            let ok = matches!(sent, Ok(ref response) if response.status() == 204);
            (cluster, timestamp, ok)
        })
        .buffer_unordered(concurrency)
        .filter_map(|(cluster, timestamp, ok)| {
            let acked = acked.clone();
            async move {
                ok.then(|| {
                    acked.fetch_add(1, Ordering::SeqCst);
                    (cluster, timestamp)
                })
            }
        })
        .collect()
        .await
}

/// A collector command on `data` with ephemeral loopback ports.
pub fn collector_command(program: &Path, data: &Path) -> Command {
    let mut command = Command::new(program);
    command.arg("--data-dir").arg(data).args([
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    command
}

/// Runs a collector that must refuse to start: exit code 1, no panic. Returns its standard error.
pub async fn expect_startup_error(command: Command) -> String {
    let (code, stderr) = run_to_end(command, Duration::from_secs(20)).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Runs a prepared command to its end (at most `deadline`): exit code and standard error.
pub async fn run_to_end(mut command: Command, deadline: Duration) -> (Option<i32>, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("the binary starts");
    let output = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .expect("the process ended before the deadline")
        .expect("the process output can be read");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// GETs `url` and decodes its JSON body, failing the test on a non-2xx answer.
pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    json_answer(client.get(url), url).await
}

/// [`get_json`] with `Authorization: Bearer <token>` (the collector's admin API).
pub async fn get_json_with_token(client: &reqwest::Client, url: &str, token: &str) -> Value {
    json_answer(client.get(url).bearer_auth(token), url).await
}

async fn json_answer(request: reqwest::RequestBuilder, url: &str) -> Value {
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// Sends `request` and decodes its JSON body, whatever the status.
pub async fn send_json(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// GETs `url` and returns its body as text, whatever the status.
pub async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// The volunteer binary reading the cluster of `kubeconfig` (never an in-cluster config), with
/// `args`.
pub fn volunteer_command(kubeconfig: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(binary("volunteer"));
    command
        .env("KUBECONFIG", kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("RUST_LOG", "info")
        .args(args);
    command
}

/// Runs `command` to its end: exit code, standard output, standard error.
pub async fn run_captured(
    mut command: Command,
    deadline: Duration,
) -> (Option<i32>, String, String) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let output = tokio::time::timeout(deadline, command.output())
        .await
        .expect("the process ended before the deadline")
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Sends SIGTERM to a child process.
pub fn sigterm(child: &tokio::process::Child) {
    let pid = child.id().expect("the process is running").to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Unix seconds now.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A small valid report of `cluster` at `timestamp` (unix seconds).
pub fn report(cluster: &str, timestamp: i64) -> Value {
    json!({
        "version": "v1.1.0",
        "timestamp": timestamp.to_string(),
        "clusterID": cluster,
        "masterVersion": "v1.31.2",
        "nodes": [{
            "id": "c8863d09ecc5be8d9791f72acd275fc2",
            "operatingSystem": "linux",
            "osImage": "ubuntu 22.04",
            "architecture": "amd64",
            "kubeletVersion": "v1.31.2",
            "capacity": [{"resource": "cpu", "value": "4"}, {"resource": "memory", "value": "16Gi"}]
        }]
    })
}

/// The workspace's root directory (the clone).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate lives in the workspace")
        .to_owned()
}

/// The text of README.md.
pub fn readme() -> String {
    std::fs::read_to_string(workspace().join("README.md")).unwrap()
}

/// The README's text under `heading`, up to the next heading of any level.
pub fn readme_section(heading: &str) -> String {
    let readme = readme();
    let section = readme
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    section.split("\n#").next().unwrap().to_string()
}

/// The fenced blocks of `language` in `text`, in order, without the indentation of their fence.
pub fn code_blocks(text: &str, language: &str) -> Vec<String> {
    let fence = format!("```{language}\n");
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("```").expect("a closed block");
        let indent = rest[..start].len() - rest[..start].trim_end_matches(' ').len();
        let lines: Vec<&str> = body[..end]
            .lines()
            .map(|line| line.get(indent..).unwrap_or(line.trim_start()))
            .collect();
        found.push(lines.join("\n"));
        rest = &body[end + 3..];
    }
    found
}

/// A loopback address nothing listens on (just bound and released).
pub fn free_address() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().to_string()
}

/// A fixture file of the `common` crate (Spartakus example reports and ours).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/../common/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An outbox item (what a sink's `send` receives) for `report(cluster, now())` with `extensions`.
pub fn outbox_item(
    seq: i64,
    cluster: &str,
    extensions: &[(&str, &str)],
) -> collector::store::OutboxItem {
    let time = now();
    let mut report: common::report::Report =
        serde_json::from_value(report(cluster, time)).expect("the sample report decodes");
    report.extensions = extensions
        .iter()
        .map(|(name, value)| common::report::Extension {
            name: name.to_string(),
            value: value.to_string(),
        })
        .collect();
    collector::store::OutboxItem {
        held: collector::store::Held::AfterPosition,
        seq,
        id: uuid::Uuid::new_v4(),
        cluster_id: cluster.to_string(),
        report_time: time,
        time_source: common::time::TimeSource::Client,
        received_at: time,
        queued_at: time,
        attempts: 0,
        report,
    }
}

/// Builds the sinks of a configuration file's text (written to `dir`), as the collector does.
pub async fn load_sinks(dir: &Path, config: &str) -> Vec<collector::sinks::Configured> {
    let path = dir.join("collector.toml");
    std::fs::write(&path, config).unwrap();
    collector::sinks::load(&path, None)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{config}"))
}

/// A collector configuration file with `body` (its `[[sink]]` tables) in `dir`, beside the
/// Segment write-key file that [`segment_sink_table`] names; returns the file's path.
pub fn write_sink_config(dir: &Path, write_key: &str, body: &str) -> String {
    std::fs::write(dir.join("segment-key"), write_key).unwrap();
    let path = dir.join("collector.toml");
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

/// A `[[sink]]` table named `segment` for the Segment stand-in at `url`, with the write key from
/// the file [`write_sink_config`] writes and a short flush interval.
pub fn segment_sink_table(dir: &Path, url: &str) -> String {
    format!(
        r#"
        [[sink]]
        name = "segment"
        type = "segment"
        endpoint = "{url}"
        write_key_file = "{}"
        flush_interval = "200ms"
        "#,
        dir.join("segment-key").display()
    )
}

/// The value of the sample `name{labels…}` in Prometheus text (labels in any order; the sample
/// may carry more labels than given).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| {
            let (series, _) = line.rsplit_once(' ').unwrap_or((line, ""));
            let (metric_name, rest) = series.split_once('{').unwrap_or((series, ""));
            metric_name == name
                && labels
                    .iter()
                    .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")))
        })
        .and_then(|line| line.rsplit_once(' ')?.1.parse().ok())
}

/// Polls `check` every 100 ms until it returns `Some`, failing the test with `what` after
/// `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Metric names in an OpenMetrics text (`/metrics`) as alerts and docs name them: histogram
/// series (`_bucket`, `_sum`, `_count`) folded into their family name.
pub fn metric_families(text: &str) -> BTreeSet<String> {
    let histograms: BTreeSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" histogram"))
        .collect();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let name = line.split(['{', ' ']).next().unwrap();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix).filter(|n| histograms.contains(n)))
                .unwrap_or(name)
                .to_string()
        })
        .collect()
}
