//! The collector: receives anonymous Kubernetes usage reports (Spartakus v1 compatible),
//! validates and sanitizes them, and stores them durably in an embedded SQLite store.

pub mod api;
pub mod budget;
pub mod config;
pub mod dashboard;
pub mod delivery;
pub mod error;
pub mod import;
pub mod listener;
mod maintenance;
pub mod metrics;
pub mod published;
pub mod ratelimit;
pub mod secret;
pub mod sinks;
pub mod stats;
pub mod store;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

pub use api::{AppState, admin_openapi, admin_router, public_openapi, public_router};
pub use config::Config;
pub use error::{BoxError, Error, Result, SharedError};

pub use listener::ADMIN_CONNECTIONS;

/// How long in-flight requests may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(8);

/// Builds the sinks of the `--config` file (none without one).
pub async fn load_sinks(config: &Config) -> Result<Vec<sinks::Configured>> {
    match &config.config {
        Some(path) => sinks::load(path, config.bigquery_endpoint.as_ref()).await,
        None => Ok(Vec::new()),
    }
}

/// Opens the store the flags name, queuing every stored report for `sinks`, and builds the
/// handlers' state around it.
pub async fn open(config: &Config, sinks: &[sinks::Configured]) -> Result<AppState> {
    let metrics = Arc::new(metrics::Metrics::new());
    let registrations = sinks
        .iter()
        .map(|sink| store::SinkRegistration {
            name: sink.name.clone(),
            kind: sink.kind,
        })
        .collect();
    let options = store::StoreOptions {
        max_size: config.max_store_size,
        sinks: registrations,
    };
    let store = match &config.database_url {
        Some(url) => {
            let settings = store::postgres::DatabaseSettings::from_url(
                url.expose(),
                config.database_password_file.as_deref(),
                config.database_ca_file.as_deref(),
            )?;
            store::Store::connect(&settings, options, metrics.clone()).await?
        }
        None => store::Store::open(&config.data_dir, options, metrics.clone())?,
    };
    AppState::new(config, store, metrics, sinks.to_vec())
}

/// Opens the store, starts the sinks' delivery, binds both listeners and serves until
/// `shutdown` completes.
pub async fn run(config: Config, shutdown: impl Future<Output = ()> + Send) -> Result<()> {
    config.check()?;
    let sinks = load_sinks(&config).await?;
    let state = open(&config, &sinks).await?;
    let tls = config.tls_files().map(tls::acceptor).transpose()?;
    let descriptors = match listener::raise_descriptor_limit() {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "cannot read or raise the open-file limit");
            None
        }
    };
    let bind = |addr: SocketAddr| {
        listener::bind(addr, config.listen_backlog).map_err(|source| Error::Bind { addr, source })
    };
    let public = bind(config.listen)?;
    let admin = bind(config.admin_listen)?;
    let max_connections = config.max_connections.map_or_else(
        || listener::connections_within(descriptors.unwrap_or(1024)),
        NonZeroUsize::get,
    );
    let local = |listener: &TcpListener, fallback: SocketAddr| {
        listener.local_addr().unwrap_or(fallback).to_string()
    };
    tracing::info!(
        public = %local(&public, config.listen),
        admin = %local(&admin, config.admin_listen),
        store = %state.store().describe(),
        retention_days = config.retention.as_secs() / 86_400,
        sinks = sinks.len(),
        max_connections,
        open_file_limit = descriptors,
        tls = config.tls_cert_file.is_some(),
        "collector listening"
    );
    let options = ServeOptions {
        connections: listener::ConnectionSettings {
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            max_connections,
        },
        retention: config.retention,
        stats_rollup_interval: config.stats_rollup_interval,
        delivery: delivery::DeliverySettings {
            max_age: config.max_delivery_age,
            max_backoff: config.delivery_max_backoff,
        },
        tls,
    };
    serve(public, admin, state, options, shutdown).await
}

/// What [`serve`] runs besides the listeners.
#[derive(Clone)]
pub struct ServeOptions {
    /// How the public listener treats connections (the admin listener: the same, with at most
    /// [`ADMIN_CONNECTIONS`]).
    pub connections: listener::ConnectionSettings,
    /// Retention period of the store.
    pub retention: Duration,
    /// How often the weekly statistics are rolled up (zero: at startup and after imports).
    pub stats_rollup_interval: Duration,
    /// Settings of the sinks' delivery workers.
    pub delivery: delivery::DeliverySettings,
    /// TLS on the public listener, when it has a certificate.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Serves the public and admin routers on the given listeners until `shutdown` completes, then
/// stops accepting, lets in-flight requests finish (at most [`SHUTDOWN_GRACE`]) and closes the
/// store after its last commit.
pub async fn serve(
    public: TcpListener,
    admin: TcpListener,
    state: AppState,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<()> {
    maintenance::load_known_clusters(state.store(), state.sources()).await?;
    let (stop, stopped) = watch::channel(false);
    let wait_for_stop = |mut stopped: watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let mut tasks = maintenance::spawn(
        maintenance::Background {
            store: state.store().clone(),
            weekly: state.weekly().clone(),
            metrics: state.metrics_handle(),
            limiter: state.limiter_handle(),
            sources: state.sources_handle(),
            retention: options.retention,
            rollup_every: options.stats_rollup_interval,
        },
        stopped.clone(),
    );
    tasks.extend(delivery::start(
        state.sinks(),
        state.store(),
        state.metrics_handle(),
        options.delivery,
        stopped.clone(),
    )?);
    let admin_connections = listener::ConnectionSettings {
        max_connections: options.connections.max_connections.min(ADMIN_CONNECTIONS),
        ..options.connections
    };
    let public_server = listener::serve(
        public,
        public_router(state.clone()),
        options.connections,
        options.tls,
        wait_for_stop(stopped.clone()),
    );
    let admin_server = listener::serve(
        admin,
        admin_router(state.clone()),
        admin_connections,
        None,
        wait_for_stop(stopped.clone()),
    );
    let mut servers = tokio::spawn(async move { tokio::try_join!(public_server, admin_server) });

    let served = tokio::select! {
        () = shutdown => None,
        result = &mut servers => Some(result),
    };
    state.begin_shutdown();
    let _ = stop.send(true);
    let result = match served {
        Some(result) => result,
        None => {
            tracing::info!("shutting down: no new connections, finishing in-flight reports");
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut servers).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!("requests still open after the grace period; closing them");
                    servers.abort();
                    let _ = (&mut servers).await;
                    Ok(Ok(((), ())))
                }
            }
        }
    };
    for task in tasks {
        task.abort();
    }
    state.store().close().await;
    maintenance::log_summary(state.metrics().ingest_summary.take());
    tracing::info!("store closed");
    match result {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(Error::Serve(error)),
        Err(join) => Err(Error::Serve(std::io::Error::other(join))),
    }
}
