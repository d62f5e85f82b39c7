//! The volunteer: reads a Kubernetes cluster through paged, metadata-only lists, reduces what it
//! finds to the report format's vocabulary, and delivers the report to a collector on a schedule.

pub mod config;
pub mod extensions;
pub mod identity;
pub mod metrics;
#[cfg(test)]
mod mock_api;
pub mod paging;
pub mod publish;
pub mod rbac;
pub mod reduce;
pub mod report;
pub mod run;
pub mod sections;
pub mod snapshot;
pub mod tally;

pub use common::report::SCHEMA_VERSION;
pub use config::Config;
pub use run::{Finished, Volunteer};

/// Everything that can go wrong in the volunteer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag's value cannot be used.
    #[error("{0}")]
    Config(String),
    /// No cluster id: none given, and the kube-system namespace could not be read.
    #[error(
        "no cluster id: --cluster-id is not set and the kube-system namespace UID cannot be \
         read ({0}); grant get on namespaces/kube-system or pass --cluster-id"
    )]
    ClusterId(String),
    /// The report breaks the format's rules (a bug, or a cluster beyond the format's limits).
    #[error("the report is invalid: {}", .0.0.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; "))]
    Invalid(common::Problems),
    /// The Kubernetes client cannot be configured.
    #[error("cannot reach the Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The metrics listener cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Result with the volunteer's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
