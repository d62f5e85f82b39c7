//! The report assembled from what one reading of the cluster found: identity, snapshot and
//! extensions, reduced by the sanitizer and checked as the collector will check it.

use common::anonymize::NodeIdKey;
use common::report::{Report, SCHEMA_VERSION};
use common::time::unix_now;
use common::{ClusterIdRule, sanitize, validate};
use kube::Client;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::paging::ApiCalls;
use crate::snapshot::{self, ReadSettings};
use crate::{Error, Result, extensions, identity};

/// Builds one report now: identity, snapshot, extensions, reduced by the sanitizer and checked
/// by the same validation the collector applies. `fallback_key` keys node ids when neither a key
/// file nor the `kube-system` UID is available.
pub async fn build(
    client: &Client,
    config: &Config,
    fallback_key: &NodeIdKey,
    metrics: &Metrics,
) -> Result<Report> {
    let started = std::time::Instant::now();
    let now = unix_now();
    let calls = ApiCalls::default();
    let identity = identity::resolve(client, config, fallback_key, &calls).await;
    let identity = match identity {
        Ok(identity) => identity,
        Err(error) => {
            metrics.api_requests.inc_by(calls.get());
            return Err(error);
        }
    };
    let settings = ReadSettings::from(config);
    let snapshot = snapshot::take(client, &settings, &identity.node_key, now, &calls).await;
    metrics.api_requests.inc_by(calls.get());
    metrics
        .snapshot_duration
        .observe(started.elapsed().as_secs_f64());

    let mut report = Report {
        version: SCHEMA_VERSION.into(),
        timestamp: now.to_string(),
        cluster_id: identity.cluster_id.hyphenated().to_string(),
        master_version: snapshot.master_version,
        nodes: snapshot.nodes,
        extensions: Vec::new(),
        namespaces: snapshot.namespaces,
        objects: snapshot.objects,
        skipped: snapshot.skipped,
    };
    report.skipped.extend(identity.key_skipped);
    if let Some(path) = config.extensions.clone() {
        // File reads block: off the volunteer's one async thread.
        let loaded = tokio::task::spawn_blocking(move || extensions::load(&path))
            .await
            .unwrap_or_else(|error| extensions::Loaded {
                warnings: vec![format!("extensions: the read failed: {error}")],
                ..extensions::Loaded::default()
            });
        for warning in &loaded.warnings {
            tracing::warn!("{warning}");
        }
        report.extensions = loaded.extensions;
    }
    sanitize::report(&mut report);
    validate::validate(&report, ClusterIdRule::Uuid).map_err(Error::Invalid)?;
    tracing::info!(
        cluster_id = %report.cluster_id,
        nodes = report.nodes.len(),
        skipped = report.skipped.len(),
        api_requests = calls.get(),
        seconds = started.elapsed().as_secs_f64(),
        "cluster read"
    );
    Ok(report)
}

/// The report as `--dry-run` prints it: indented JSON, with every container that holds only
/// numbers and strings on one line (a histogram, a capacity entry, an extension), so that a small
/// cluster's report fits a screen. Only white space differs from the bytes sent.
pub fn pretty(report: &Report) -> String {
    collapse_flat_containers(&serde_json::to_string_pretty(report).expect("a report serializes"))
}

/// Puts each array or object of indented JSON that holds no non-empty container on one line:
/// `[0, 1]`, `{ "a": 1, "b": [] }`.
fn collapse_flat_containers(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    // For each open container: where it starts in `out`, and whether it holds another.
    let mut open: Vec<(usize, bool)> = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '[' | '{' => {
                open.push((out.len(), false));
                out.push(c);
            }
            ']' | '}' => {
                let (start, nested) = open.pop().expect("balanced JSON");
                let items: Vec<&str> = out[start + 1..]
                    .lines()
                    .map(str::trim)
                    .filter(|line| !line.is_empty())
                    .collect();
                // An empty container is as flat as a number.
                if let (Some((_, parent_nested)), false) = (open.last_mut(), items.is_empty()) {
                    *parent_nested = true;
                }
                if nested {
                    out.push(c);
                    continue;
                }
                let flat = match (c, items.is_empty()) {
                    (_, true) => format!("{}{c}", &out[start..start + 1]),
                    (']', false) => format!("[{}]", items.join(" ")),
                    _ => format!("{{ {} }}", items.join(" ")),
                };
                out.truncate(start);
                out.push_str(&flat);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_containers_go_on_one_line_and_the_value_is_unchanged() {
        let json = r#"{"a":[1,2,3],"b":{"c":"x, [y]","d":[]},"e":[{"f":1},{"g":"\"}"}],"h":{}}"#;
        let value: serde_json::Value = serde_json::from_str(json).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap();
        let collapsed = collapse_flat_containers(&pretty);
        assert_eq!(
            collapsed,
            "{\n  \"a\": [1, 2, 3],\n  \"b\": { \"c\": \"x, [y]\", \"d\": [] },\n  \"e\": [\n    { \"f\": 1 },\n    { \"g\": \"\\\"}\" }\n  ],\n  \"h\": {}\n}"
        );
        let back: serde_json::Value = serde_json::from_str(&collapsed).unwrap();
        assert_eq!(back, value);
    }
}
