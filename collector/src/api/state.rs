//! What every handler shares: the store, the weekly statistics, metrics, sinks, rate limiter,
//! settings, tokens and the dashboard's logins and cached pages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::ClusterIdRule;

use crate::budget::MemoryBudget;
use crate::config::Config;
use crate::dashboard::{PageCache, Sessions};
use crate::error::Result;
use crate::metrics::Metrics;
use crate::published::WeeklyStats;
use crate::ratelimit::{ClusterRateLimiter, SourceLimits};
use crate::secret::Secret;
use crate::sinks::Configured;
use crate::store::Store;

/// Settings the handlers need, taken from the flags.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Which cluster ids are valid.
    pub cluster_id_rule: ClusterIdRule,
    /// Largest body on the wire.
    pub max_body_size: usize,
    /// Largest body after decompression.
    pub max_decompressed_size: usize,
    /// Time allowed for one ingest request.
    pub request_timeout: Duration,
    /// Ingest requests handled at once.
    pub max_concurrent_requests: usize,
    /// Retention period (the largest useful statistics window).
    pub retention: Duration,
    /// Whether the public listener serves the weekly statistics too.
    pub public_stats: bool,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

struct Inner {
    store: Store,
    weekly: WeeklyStats,
    metrics: Arc<Metrics>,
    sinks: Vec<Configured>,
    limiter: Option<Arc<ClusterRateLimiter>>,
    sources: Arc<SourceLimits>,
    budget: MemoryBudget,
    settings: ApiSettings,
    ingest_token: Option<Secret>,
    admin_token: Option<Secret>,
    sessions: Sessions,
    pages: PageCache,
    shutting_down: AtomicBool,
}

/// State shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Builds the state from the flags (reading token files) around an open store and the
    /// configured sinks.
    pub fn new(
        config: &Config,
        store: Store,
        metrics: Arc<Metrics>,
        sinks: Vec<Configured>,
    ) -> Result<Self> {
        let read_secret =
            |path: &Option<std::path::PathBuf>| path.as_deref().map(Secret::from_file).transpose();
        let limiter = std::num::NonZeroU32::new(config.rate_limit_per_hour).map(|per_hour| {
            Arc::new(ClusterRateLimiter::new(
                per_hour,
                config.rate_limit_burst,
                config.rate_limit_tracked_clusters,
            ))
        });
        let settings = ApiSettings {
            cluster_id_rule: if config.relaxed_cluster_ids {
                ClusterIdRule::Relaxed
            } else {
                ClusterIdRule::Uuid
            },
            max_body_size: usize::try_from(config.max_body_size).unwrap_or(usize::MAX),
            max_decompressed_size: usize::try_from(config.max_decompressed_size)
                .unwrap_or(usize::MAX),
            request_timeout: config.request_timeout,
            max_concurrent_requests: config.max_concurrent_requests.get(),
            retention: config.retention,
            public_stats: config.public_stats,
            trusted_proxies: config.trusted_proxies.clone(),
        };
        let weekly = WeeklyStats::new(
            store.clone(),
            metrics.clone(),
            config.min_group_clusters.get(),
            config.retention,
        )?;
        Ok(AppState(Arc::new(Inner {
            store,
            weekly,
            metrics,
            sinks,
            limiter,
            sources: Arc::new(SourceLimits::new(&config.source_settings())),
            budget: MemoryBudget::new(config.max_inflight_memory),
            settings,
            ingest_token: read_secret(&config.ingest_token_file)?,
            admin_token: read_secret(&config.admin_token_file)?,
            sessions: Sessions::new(config.dashboard_session_ttl),
            pages: PageCache::default(),
            shutting_down: AtomicBool::new(false),
        })))
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.0.store
    }

    /// The weekly statistics.
    pub fn weekly(&self) -> &WeeklyStats {
        &self.0.weekly
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The metrics, shared.
    pub fn metrics_handle(&self) -> Arc<Metrics> {
        self.0.metrics.clone()
    }

    /// The configured sinks.
    pub fn sinks(&self) -> &[Configured] {
        &self.0.sinks
    }

    /// The per-cluster rate limiter, unless rate limiting is off.
    pub fn limiter(&self) -> Option<&ClusterRateLimiter> {
        self.0.limiter.as_deref()
    }

    /// The rate limiter, shared (for its housekeeping).
    pub fn limiter_handle(&self) -> Option<Arc<ClusterRateLimiter>> {
        self.0.limiter.clone()
    }

    /// The per-source limits.
    pub fn sources(&self) -> &SourceLimits {
        &self.0.sources
    }

    /// The per-source limits, shared (for their housekeeping).
    pub fn sources_handle(&self) -> Arc<SourceLimits> {
        self.0.sources.clone()
    }

    /// The memory budget of ingest requests.
    pub(super) fn budget(&self) -> &MemoryBudget {
        &self.0.budget
    }

    pub(super) fn settings(&self) -> &ApiSettings {
        &self.0.settings
    }

    /// The token senders must present, when one is configured.
    pub(super) fn ingest_token(&self) -> Option<&Secret> {
        self.0.ingest_token.as_ref()
    }

    /// The token of the admin API, when one is configured.
    pub(super) fn admin_token(&self) -> Option<&Secret> {
        self.0.admin_token.as_ref()
    }

    /// The dashboard's logins.
    pub(super) fn sessions(&self) -> &Sessions {
        &self.0.sessions
    }

    /// The public dashboard's rendered pages.
    pub(super) fn pages(&self) -> &PageCache {
        &self.0.pages
    }

    /// Makes `/readyz` fail from now on.
    pub fn begin_shutdown(&self) {
        self.0.shutting_down.store(true, Ordering::SeqCst);
    }

    pub(super) fn is_shutting_down(&self) -> bool {
        self.0.shutting_down.load(Ordering::SeqCst)
    }
}
