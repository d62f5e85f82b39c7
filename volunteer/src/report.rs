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
