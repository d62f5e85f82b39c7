//! Command-line flags (each with a `VOLUNTEER_*` environment fallback).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use common::anonymize::NodeIdHash;
pub use common::cli::LogFormat;
use url::Url;
use uuid::Uuid;

use crate::{Error, Result};

/// Reads a Kubernetes cluster on a schedule and sends an anonymised usage report to a collector
/// (Spartakus-compatible).
#[derive(Debug, Clone, Parser)]
#[command(name = "volunteer", version, about, long_about = None)]
pub struct Config {
    /// Collector to send reports to; reports go to `<URL>/api/v1`. Required unless `--dry-run`
    /// or `--print-rbac`: there is no public default collector.
    #[arg(long, env = "VOLUNTEER_COLLECTOR")]
    pub collector: Option<Url>,

    /// Cluster id (a UUID). Default: a UUID derived from the `kube-system` namespace's UID, stable
    /// across restarts and upgrades (the UID itself never leaves the cluster).
    #[arg(long, env = "VOLUNTEER_CLUSTER_ID")]
    pub cluster_id: Option<String>,

    /// Time between reports (e.g. `24h`); `0` sends one report and exits. Each period is
    /// jittered by ±10%.
    #[arg(long, env = "VOLUNTEER_PERIOD", default_value = "24h", value_parser = humantime::parse_duration)]
    pub period: Duration,

    /// The first periodic report waits a random delay up to this long, so that a fleet restarted
    /// together does not reach the collector at once.
    #[arg(long, env = "VOLUNTEER_INITIAL_DELAY_MAX", default_value = "5m", value_parser = humantime::parse_duration)]
    pub initial_delay_max: Duration,

    /// In one-shot mode (`--period 0`), how long to keep retrying delivery before exiting
    /// non-zero.
    #[arg(long, env = "VOLUNTEER_RETRY_FOR", default_value = "10m", value_parser = humantime::parse_duration)]
    pub retry_for: Duration,

    /// Print the exact report that would be sent, and exit without sending.
    #[arg(long, env = "VOLUNTEER_DRY_RUN")]
    pub dry_run: bool,

    /// Print the RBAC rules (a ClusterRole, or Roles with `--namespace`) that exactly cover the
    /// calls the volunteer makes with the other flags given, and exit.
    #[arg(long)]
    pub print_rbac: bool,

    /// Count objects only in this namespace (repeatable), for clusters where the volunteer may only
    /// have a Role. Cluster-scoped sections (nodes, namespaces) are then reported as skipped
    /// unless the volunteer may read them anyway.
    #[arg(
        long = "namespace",
        env = "VOLUNTEER_NAMESPACES",
        value_delimiter = ','
    )]
    pub namespaces: Vec<String>,

    /// Also count Secrets (metadata only). Off by default: listing Secrets needs an RBAC grant
    /// that could read every Secret.
    #[arg(long, env = "VOLUNTEER_COUNT_SECRETS")]
    pub count_secrets: bool,

    /// How node ids are hashed: `hmac` (keyed; the default) or `spartakus-md5` (Spartakus's
    /// unkeyed ids, for keeping existing Spartakus data's node ids).
    #[arg(long, env = "VOLUNTEER_NODE_ID_HASH", value_enum, default_value_t = NodeIdHashFlag::Hmac)]
    pub node_id_hash: NodeIdHashFlag,

    /// File holding the secret that keys node-id hashing. Default: derived from the `kube-system`
    /// namespace's UID.
    #[arg(long, env = "VOLUNTEER_NODE_ID_KEY_FILE")]
    pub node_id_key_file: Option<PathBuf>,

    /// A JSON file of string pairs, or a directory of such files, sent as the report's
    /// extensions. Re-read every period.
    #[arg(long, env = "VOLUNTEER_EXTENSIONS")]
    pub extensions: Option<PathBuf>,

    /// Serve Prometheus metrics (`/metrics`) and `/healthz` on this address.
    #[arg(long, env = "VOLUNTEER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,

    /// Time allowed for one delivery attempt.
    #[arg(long, env = "VOLUNTEER_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Compress reports with gzip (turn off for a Spartakus collector, which does not accept it).
    #[arg(long, env = "VOLUNTEER_GZIP", default_value_t = true, action = clap::ArgAction::Set)]
    pub gzip: bool,

    /// File holding a bearer token the collector requires (its `--ingest-token-file`).
    #[arg(long, env = "VOLUNTEER_COLLECTOR_TOKEN_FILE")]
    pub collector_token_file: Option<PathBuf>,

    /// PEM file of a CA certificate to trust for the collector (besides the public roots).
    #[arg(long, env = "VOLUNTEER_COLLECTOR_CA_FILE")]
    pub collector_ca_file: Option<PathBuf>,

    /// Objects per page when listing from the API server.
    #[arg(long, env = "VOLUNTEER_PAGE_SIZE", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=5000))]
    pub page_size: u32,

    /// Log line format.
    #[arg(long, env = "VOLUNTEER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--node-id-hash` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NodeIdHashFlag {
    /// HMAC-SHA256 under a key that never leaves the cluster.
    Hmac,
    /// Spartakus's unkeyed md5.
    SpartakusMd5,
}

impl From<NodeIdHashFlag> for NodeIdHash {
    fn from(flag: NodeIdHashFlag) -> Self {
        match flag {
            NodeIdHashFlag::Hmac => NodeIdHash::Hmac,
            NodeIdHashFlag::SpartakusMd5 => NodeIdHash::SpartakusMd5,
        }
    }
}

impl Config {
    /// Checks what clap cannot: a UUID cluster id, and a collector unless nothing is sent.
    pub fn check(&self) -> Result<()> {
        if let Some(id) = &self.cluster_id {
            parse_cluster_id(id)?;
        }
        if self.collector.is_none() && !self.dry_run && !self.print_rbac {
            return Err(Error::Config(
                "--collector is required (there is no public default collector); use --dry-run \
                 to see the report without sending it"
                    .into(),
            ));
        }
        for namespace in &self.namespaces {
            if namespace.is_empty()
                || namespace.len() > 63
                || !namespace
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(Error::Config(format!(
                    "--namespace {namespace:?} is not a namespace name"
                )));
            }
        }
        Ok(())
    }

    /// The cluster id given with `--cluster-id`, if any.
    pub fn fixed_cluster_id(&self) -> Option<Uuid> {
        self.cluster_id
            .as_deref()
            .and_then(|id| parse_cluster_id(id).ok())
    }
}

fn parse_cluster_id(id: &str) -> Result<Uuid> {
    match Uuid::try_parse(id) {
        Ok(uuid) if !uuid.is_nil() => Ok(uuid),
        _ => Err(Error::Config(format!(
            "--cluster-id {id:?} is not a UUID; use e.g. the output of uuidgen, or leave it out to \
             derive one from the kube-system namespace"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        let mut argv = vec!["volunteer"];
        argv.extend_from_slice(args);
        Config::parse_from(argv)
    }

    #[test]
    fn defaults() {
        let config = parse(&["--collector", "https://c.example.com"]);
        assert_eq!(config.period, Duration::from_secs(86_400));
        assert_eq!(config.initial_delay_max, Duration::from_secs(300));
        assert_eq!(config.retry_for, Duration::from_secs(600));
        assert_eq!(config.node_id_hash, NodeIdHashFlag::Hmac);
        assert!(config.gzip);
        assert!(!config.count_secrets);
        config.check().unwrap();
    }

    #[test]
    fn a_collector_is_required_unless_nothing_is_sent() {
        assert!(
            parse(&[])
                .check()
                .unwrap_err()
                .to_string()
                .contains("--collector")
        );
        parse(&["--dry-run"]).check().unwrap();
        parse(&["--print-rbac"]).check().unwrap();
    }

    #[test]
    fn cluster_ids_must_be_uuids() {
        let config = parse(&["--dry-run", "--cluster-id", "my-cluster"]);
        let err = config.check().unwrap_err().to_string();
        assert!(err.contains("not a UUID"), "{err}");
        let config = parse(&[
            "--dry-run",
            "--cluster-id",
            "2F9C93D3-156C-47AA-8802-578FFCA9B50E",
        ]);
        config.check().unwrap();
        assert_eq!(
            config.fixed_cluster_id().unwrap().to_string(),
            "2f9c93d3-156c-47aa-8802-578ffca9b50e"
        );
    }

    #[test]
    fn namespaces_repeat_and_are_checked() {
        let config = parse(&[
            "--dry-run",
            "--namespace",
            "team-a",
            "--namespace",
            "team-b",
        ]);
        assert_eq!(config.namespaces, ["team-a", "team-b"]);
        assert!(
            parse(&["--dry-run", "--namespace", "Team_A"])
                .check()
                .is_err()
        );
    }
}
