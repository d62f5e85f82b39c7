//! Command-line flags (each with a `COLLECTOR_*` environment fallback) and secrets read from files.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
pub use common::cli::LogFormat;
use common::cost::Cost;
use common::wire::Encoding;
use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::ratelimit::SourceSettings;
use crate::secret::DatabaseUrl;
use crate::tls::TlsFiles;

/// Receives anonymous Kubernetes usage reports (Spartakus-compatible), validates them strictly
/// and stores them durably in an embedded SQLite store, or in PostgreSQL.
#[derive(Debug, Clone, Parser)]
#[command(name = "collector", version, about, long_about = None)]
pub struct Config {
    /// Address of the public listener: report ingest (`POST /api/v1`), health, version, OpenAPI.
    #[arg(long, env = "COLLECTOR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Address of the admin listener: read API, erasure and `/metrics`.
    #[arg(long, env = "COLLECTOR_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,

    /// Directory of the embedded store (created if missing).
    #[arg(long, env = "COLLECTOR_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// PostgreSQL to store reports in instead of the embedded store under `--data-dir`:
    /// `postgres://user@host:port/database?sslmode=disable|prefer|require` (libpq's `key=value`
    /// form too), the password in it or in `--database-password-file`. With TLS the server's
    /// certificate is always verified. One collector writes to a database at a time.
    #[arg(long, env = "COLLECTOR_DATABASE_URL", hide_env_values = true, value_parser = DatabaseUrl::parse)]
    pub database_url: Option<DatabaseUrl>,

    /// File holding the database password (it wins over one in `--database-url`).
    #[arg(long, env = "COLLECTOR_DATABASE_PASSWORD_FILE")]
    pub database_password_file: Option<PathBuf>,

    /// PEM file of the CA certificates that sign the database server's certificate. Default: the
    /// public web roots (Mozilla's), which managed databases' own CAs are usually not among.
    #[arg(long, env = "COLLECTOR_DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,

    /// Reports received longer ago than this are deleted (e.g. `400d`, `90d`).
    #[arg(long, env = "COLLECTOR_RETENTION", default_value = "400d", value_parser = humantime::parse_duration)]
    pub retention: Duration,

    /// Largest size of the store file (e.g. `20GiB`); when reached, ingest answers 503 and
    /// `/readyz` fails until retention or erasure frees space. Default: no limit but the disk.
    #[arg(long, env = "COLLECTOR_MAX_STORE_SIZE", value_parser = parse_bytes)]
    pub max_store_size: Option<u64>,

    /// Accept any cluster id of 1-128 characters of `[A-Za-z0-9._-]`, not only UUIDs (for
    /// fleets of Spartakus volunteers that used other ids).
    #[arg(long, env = "COLLECTOR_RELAXED_CLUSTER_IDS")]
    pub relaxed_cluster_ids: bool,

    /// Reports accepted per cluster id and hour; `0` turns rate limiting off.
    #[arg(long, env = "COLLECTOR_RATE_LIMIT_PER_HOUR", default_value_t = 60)]
    pub rate_limit_per_hour: u32,

    /// Reports a cluster id may send at once before the hourly rate applies.
    #[arg(long, env = "COLLECTOR_RATE_LIMIT_BURST", default_value = "10")]
    pub rate_limit_burst: NonZeroU32,

    /// Cluster ids whose rate-limit state is kept; the least recently seen are forgotten, so
    /// random ids cannot grow memory.
    #[arg(
        long,
        env = "COLLECTOR_RATE_LIMIT_TRACKED_CLUSTERS",
        default_value = "100000"
    )]
    pub rate_limit_tracked_clusters: NonZeroUsize,

    /// Reports accepted from one source address a minute (IPv6: one /64); `0` turns this
    /// limit off. Addresses are kept only as keyed hashes in memory.
    #[arg(
        long,
        env = "COLLECTOR_SOURCE_RATE_LIMIT_PER_MINUTE",
        default_value_t = 120
    )]
    pub source_rate_limit_per_minute: u32,

    /// Reports one source may send at once before the per-minute rate applies.
    #[arg(long, env = "COLLECTOR_SOURCE_RATE_LIMIT_BURST", default_value = "240")]
    pub source_rate_limit_burst: NonZeroU32,

    /// Cluster ids the collector has never seen that one source may bring an hour (and at
    /// once); `0` turns the cap off.
    #[arg(
        long,
        env = "COLLECTOR_SOURCE_NEW_CLUSTERS_PER_HOUR",
        default_value_t = 100
    )]
    pub source_new_clusters_per_hour: u32,

    /// Sources whose limit state is kept; the least recently seen are forgotten.
    #[arg(long, env = "COLLECTOR_SOURCE_TRACKED", default_value = "100000")]
    pub source_tracked: NonZeroUsize,

    /// Proxies (comma-separated CIDRs, e.g. `10.0.0.0/8,fd00::/8`) whose `X-Forwarded-For` is
    /// believed for the per-source limits: the source is the first address from the right
    /// that is not one of them.
    #[arg(long, env = "COLLECTOR_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpNet>,

    /// Largest request body on the wire (e.g. `8MiB`); larger requests get 413.
    #[arg(long, env = "COLLECTOR_MAX_BODY_SIZE", default_value = "8MiB", value_parser = parse_bytes)]
    pub max_body_size: u64,

    /// Largest body after gzip decompression (e.g. `32MiB`); larger requests get 413.
    #[arg(long, env = "COLLECTOR_MAX_DECOMPRESSED_SIZE", default_value = "32MiB", value_parser = parse_bytes)]
    pub max_decompressed_size: u64,

    /// Memory that ingest requests in flight may take together: bodies as received, inflated and
    /// decoded. Each request is charged its worst case before its body is read (see README,
    /// "Memory"); one that cannot be charged within 100 ms gets 503 with `Retry-After`.
    #[arg(long, env = "COLLECTOR_MAX_INFLIGHT_MEMORY", default_value = "256MiB", value_parser = parse_bytes)]
    pub max_inflight_memory: u64,

    /// Time allowed for one ingest request, body upload included; slower requests get 408.
    #[arg(long, env = "COLLECTOR_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Ingest requests handled at once; more are answered 503 with `Retry-After`, not queued.
    #[arg(
        long,
        env = "COLLECTOR_MAX_CONCURRENT_REQUESTS",
        default_value = "1024"
    )]
    pub max_concurrent_requests: NonZeroUsize,

    /// Time allowed for a request's head to arrive, from the connection's start and from the
    /// end of the previous answer: it closes idle HTTP/1 keep-alive connections and header
    /// trickles (slowloris).
    #[arg(long, env = "COLLECTOR_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,

    /// An HTTP/2 connection with no request in flight this long is closed.
    #[arg(long, env = "COLLECTOR_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Connections the public listener holds open at once; more wait in the listen backlog.
    /// Default: the open-file limit (raised to its hard limit at start) less 256 for the store,
    /// the sinks and the admin listener.
    #[arg(long, env = "COLLECTOR_MAX_CONNECTIONS")]
    pub max_connections: Option<NonZeroUsize>,

    /// Connections the kernel queues for each listener before they are accepted. Default: the
    /// most it allows (`net.core.somaxconn`).
    #[arg(long, env = "COLLECTOR_LISTEN_BACKLOG")]
    pub listen_backlog: Option<u32>,

    /// PEM certificate chain for TLS on the public listener (with `--tls-key-file`); read again
    /// when it changes, so a rotated certificate is served without a restart.
    #[arg(long, env = "COLLECTOR_TLS_CERT_FILE", requires = "tls_key_file")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of `--tls-cert-file`.
    #[arg(long, env = "COLLECTOR_TLS_KEY_FILE", requires = "tls_cert_file")]
    pub tls_key_file: Option<PathBuf>,

    /// File holding a bearer token that report senders must present (private fleets).
    #[arg(long, env = "COLLECTOR_INGEST_TOKEN_FILE")]
    pub ingest_token_file: Option<PathBuf>,

    /// File holding a bearer token for the admin API (everything on the admin listener except
    /// `/metrics`).
    #[arg(long, env = "COLLECTOR_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// TOML file of sinks to forward reports to (`[[sink]]` tables); without it, reports stay
    /// in the embedded store only.
    #[arg(long, env = "COLLECTOR_CONFIG")]
    pub config: Option<PathBuf>,

    /// Deliveries not confirmed by their sink within this long are dead-lettered (re-queue them
    /// with `POST /api/v1/deliveries/requeue`).
    #[arg(long, env = "COLLECTOR_MAX_DELIVERY_AGE", default_value = "7d", value_parser = humantime::parse_duration)]
    pub max_delivery_age: Duration,

    /// Longest wait between delivery attempts while a sink keeps failing (the wait doubles from
    /// 1 s, with jitter, up to this).
    #[arg(long, env = "COLLECTOR_DELIVERY_MAX_BACKOFF", default_value = "5m", value_parser = humantime::parse_duration)]
    pub delivery_max_backoff: Duration,

    /// BigQuery API base for every BigQuery sink, e.g. an emulator's
    /// `http://127.0.0.1:9050/bigquery/v2` (no credentials are then needed).
    #[arg(long, env = "COLLECTOR_BIGQUERY_ENDPOINT")]
    pub bigquery_endpoint: Option<url::Url>,

    /// Smallest number of distinct clusters a published statistic may count: weekly cells (and
    /// extension keys) counted from fewer are folded into `other`. `1` publishes every group.
    #[arg(long, env = "COLLECTOR_MIN_GROUP_CLUSTERS", default_value = "5")]
    pub min_group_clusters: NonZeroU32,

    /// Also serve the weekly statistics (`/api/v1/stats/dimensions`, `/weekly`, `/export`:
    /// thresholded aggregates only) and the dashboard drawn from them (`/dashboard`) on the
    /// public listener, without a token.
    #[arg(long, env = "COLLECTOR_PUBLIC_STATS")]
    pub public_stats: bool,

    /// How often reports received since the last run are folded into the weekly statistics
    /// (published answers change only then); `0` folds only at startup and after an import.
    #[arg(long, env = "COLLECTOR_STATS_ROLLUP_INTERVAL", default_value = "1m", value_parser = humantime::parse_duration)]
    pub stats_rollup_interval: Duration,

    /// How long a dashboard login lasts: the session cookie the login form sets on the admin
    /// listener expires after this (and with a restart, which forgets every session).
    #[arg(long, env = "COLLECTOR_DASHBOARD_SESSION_TTL", default_value = "8h", value_parser = humantime::parse_duration)]
    pub dashboard_session_ttl: Duration,

    /// Log line format.
    #[arg(long, env = "COLLECTOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// Checks what clap cannot: an admin listener reachable from other hosts must have a token,
    /// since it serves every stored report and the erasure endpoint.
    pub fn check(&self) -> Result<()> {
        if !self.admin_listen.ip().is_loopback() && self.admin_token_file.is_none() {
            return Err(Error::Config(format!(
                "--admin-listen {} is reachable from other hosts, but no --admin-token-file \
                 protects the read API and erasure; set one, or listen on 127.0.0.1",
                self.admin_listen
            )));
        }
        for (flag, value) in [
            ("--header-read-timeout", self.header_read_timeout),
            ("--idle-timeout", self.idle_timeout),
        ] {
            if value.is_zero() {
                return Err(Error::Config(format!(
                    "{flag} must be longer than 0: it is how long a connection may wait"
                )));
            }
        }
        if self.database_url.is_some() && self.max_store_size.is_some() {
            return Err(Error::Config(
                "--max-store-size limits the embedded store; with --database-url the database \
                 server's own limits apply"
                    .into(),
            ));
        }
        if self.database_url.is_none()
            && (self.database_password_file.is_some() || self.database_ca_file.is_some())
        {
            return Err(Error::Config(
                "--database-password-file and --database-ca-file need --database-url".into(),
            ));
        }
        let largest = self.largest_request_cost();
        if self.max_inflight_memory < largest as u64 {
            return Err(Error::Config(format!(
                "--max-inflight-memory {} cannot hold one request at the size limits \
                 (--max-body-size {} gzip, inflating to --max-decompressed-size {}), which may \
                 take {largest} bytes; raise it or lower those limits",
                self.max_inflight_memory, self.max_body_size, self.max_decompressed_size
            )));
        }
        Ok(())
    }

    /// The certificate and key files, when TLS is asked for.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert_file.clone()?,
            key: self.tls_key_file.clone()?,
        })
    }

    /// The per-source limits the flags ask for.
    pub fn source_settings(&self) -> SourceSettings {
        SourceSettings {
            reports_per_minute: NonZeroU32::new(self.source_rate_limit_per_minute),
            reports_burst: self.source_rate_limit_burst,
            new_clusters_per_hour: NonZeroU32::new(self.source_new_clusters_per_hour),
            tracked: self.source_tracked,
        }
    }

    /// What one ingest request at the size limits may take in memory at most.
    pub fn largest_request_cost(&self) -> usize {
        let size = |bytes: u64| usize::try_from(bytes).unwrap_or(usize::MAX);
        Cost::before_reading(
            size(self.max_body_size),
            Encoding::Gzip,
            size(self.max_decompressed_size),
        )
        .total()
    }
}

/// Parses a byte size: a number with an optional unit (`B`, `KB`, `MB`, `GB`, `TB`, `KiB`, `MiB`,
/// `GiB`, `TiB`, …), e.g. `8MiB`, `20GiB`, `1048576`.
pub fn parse_bytes(s: &str) -> std::result::Result<u64, String> {
    let size: bytesize::ByteSize = s
        .trim()
        .parse()
        .map_err(|e| format!("{s:?} is not a size such as 8MiB or 1048576: {e}"))?;
    // bytesize saturates instead of failing on an overflow.
    match size.as_u64() {
        u64::MAX => Err(format!("{s:?} is too large")),
        bytes => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_bytes("8MiB"), Ok(8 << 20));
        assert_eq!(parse_bytes("32MiB"), Ok(32 << 20));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("2 GB"), Ok(2_000_000_000));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("5 parsecs").is_err());
        assert!(parse_bytes("99999999999TiB").is_err());
    }

    #[test]
    fn defaults_match_the_documentation() {
        let config = Config::parse_from(["collector"]);
        assert_eq!(config.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(config.admin_listen, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(config.retention, Duration::from_secs(400 * 86_400));
        assert_eq!(config.rate_limit_per_hour, 60);
        assert_eq!(config.rate_limit_burst.get(), 10);
        assert_eq!(config.max_body_size, 8 << 20);
        assert_eq!(config.max_decompressed_size, 32 << 20);
        assert!(!config.relaxed_cluster_ids);
        config.check().unwrap();
    }

    #[test]
    fn an_admin_listener_open_to_other_hosts_needs_a_token() {
        let open = Config::parse_from(["collector", "--admin-listen", "0.0.0.0:9090"]);
        let error = open.check().unwrap_err().to_string();
        assert!(error.contains("--admin-token-file"), "{error}");
        Config::parse_from([
            "collector",
            "--admin-listen",
            "0.0.0.0:9090",
            "--admin-token-file",
            "/run/secrets/admin-token",
        ])
        .check()
        .unwrap();
        Config::parse_from(["collector", "--admin-listen", "[::1]:9090"])
            .check()
            .unwrap();
    }
}
