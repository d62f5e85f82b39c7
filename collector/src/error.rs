//! The collector's one error enum: every failure keeps its source where it has one, and says in
//! its message what an operator can do about it.

use std::net::SocketAddr;
use std::path::PathBuf;

/// An error from a dependency the collector's interfaces do not name (a database driver, an
/// HTTP client, a cloud SDK), kept with its source chain.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A [`BoxError`] that can be handed to several waiters (every report of a failed commit).
pub type SharedError = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong in the collector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data directory cannot be created or used.
    #[error("cannot use data directory {}: {source}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store cannot be opened, migrated or written at startup.
    #[error("cannot open the store {}: {advice}{}", path.display(), in_parentheses(source.as_deref()))]
    StoreOpen {
        /// The database file.
        path: PathBuf,
        /// What is wrong, in words an operator can act on.
        advice: String,
        /// The underlying failure, when there is one.
        source: Option<BoxError>,
    },
    /// The PostgreSQL database cannot be reached, migrated or written at startup.
    #[error("cannot open the database {database}: {advice}{}", in_parentheses(source.as_deref()))]
    DatabaseOpen {
        /// The database, without its password.
        database: String,
        /// What is wrong, in words an operator can act on.
        advice: String,
        /// The underlying failure, when there is one.
        source: Option<BoxError>,
    },
    /// A write failed (disk full, read-only file system, ...); ingest answers 503.
    #[error("{0}")]
    Unavailable(#[source] SharedError),
    /// The store is shutting down.
    #[error("the store is shutting down")]
    ShuttingDown,
    /// A read query failed.
    #[error("store query failed: {0}")]
    Query(#[source] BoxError),
    /// A secret file cannot be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A secret file holds nothing but white space.
    #[error("cannot read secret file {}: the file is empty", path.display())]
    EmptySecretFile {
        /// The file.
        path: PathBuf,
    },
    /// A listener cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A listener failed while serving.
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The flags or the sink configuration cannot be used.
    #[error("configuration: {0}")]
    Config(String),
    /// The sink configuration file cannot be read.
    #[error("configuration: cannot read {}: {source}", path.display())]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The sink configuration is not valid TOML of `[[sink]]` tables.
    #[error("{0}")]
    ConfigSyntax(#[source] toml::de::Error),
    /// A problem found in the sink configuration file.
    #[error("configuration: {}: {source}", path.display())]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The problem.
        source: Box<Error>,
    },
    /// A sink cannot be built, or its startup check failed.
    #[error("sink {name:?}: {source}")]
    Sink {
        /// The sink.
        name: String,
        /// Why.
        source: BoxError,
    },
    /// A step of building or checking a sink failed.
    #[error("sink {name:?}: {context}: {source}")]
    SinkContext {
        /// The sink.
        name: String,
        /// What was being done.
        context: String,
        /// Why it failed.
        source: BoxError,
    },
}

impl Error {
    /// A problem of sink `name`: a message, or an error with its source chain.
    pub fn sink(name: &str, source: impl Into<BoxError>) -> Self {
        Error::Sink {
            name: name.to_string(),
            source: source.into(),
        }
    }

    /// A failed step (`context`) of building or checking sink `name`.
    pub fn sink_context(
        name: &str,
        context: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error::SinkContext {
            name: name.to_string(),
            context: context.into(),
            source: source.into(),
        }
    }

    /// `error`, found in the configuration file `path`.
    pub fn in_file(path: &std::path::Path, error: Error) -> Self {
        Error::ConfigFile {
            path: path.to_owned(),
            source: Box::new(error),
        }
    }
}

/// ` (source)`, or nothing.
fn in_parentheses(source: Option<&(dyn std::error::Error + Send + Sync)>) -> String {
    source.map(|s| format!(" ({s})")).unwrap_or_default()
}

/// Result with the collector's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
