//! Where the database is and how to reach it: `--database-url`, the password in it or in
//! `--database-password-file`, TLS by rustls (`sslmode`, `--database-ca-file`), and the pool of
//! connections. The password shows in no log, error or `Debug` output.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres_rustls::MakeRustlsConnect;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

use crate::error::{Error, Result};
use crate::secret::read_secret_file;

/// Connections a collector keeps to the database at most.
const POOL_SIZE: usize = 16;
/// Longest wait for a connection, and for an unanswered write on one.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How to reach the database.
#[derive(Clone)]
pub struct DatabaseSettings {
    config: tokio_postgres::Config,
    ca_file: Option<PathBuf>,
}

impl DatabaseSettings {
    /// Settings from a `postgres://` URL (or libpq's `key=value` form), the password from
    /// `password_file` when given (it wins over one in the URL), and the CA certificates that
    /// sign the server's certificate from `ca_file` (PEM) instead of the public web roots.
    ///
    /// `sslmode` is `disable` (no TLS), `prefer` (the default: TLS when the server offers it) or
    /// `require` (TLS or no connection). rustls always verifies the server's certificate and
    /// name, so every TLS connection here is what libpq calls `verify-full`; libpq's
    /// `verify-ca` and `verify-full` are read as `require`, and its unverified `require` has no
    /// equivalent.
    pub fn from_url(
        url: &str,
        password_file: Option<&Path>,
        ca_file: Option<&Path>,
    ) -> Result<Self> {
        let verified = url
            .replace("sslmode=verify-full", "sslmode=require")
            .replace("sslmode=verify-ca", "sslmode=require");
        // The parser's message can quote a piece of the URL, the password included: not shown.
        let mut config: tokio_postgres::Config = verified.parse().map_err(|_| {
            Error::Config(
                "--database-url is not a PostgreSQL connection URL \
                 (postgres://user@host:port/database?sslmode=disable|prefer|require)"
                    .into(),
            )
        })?;
        if config.get_hosts().is_empty() {
            return Err(Error::Config(
                "--database-url names no host (postgres://user@host:port/database)".into(),
            ));
        }
        if config.get_user().is_none() {
            return Err(Error::Config(
                "--database-url names no user (postgres://user@host:port/database)".into(),
            ));
        }
        if let Some(path) = password_file {
            config.password(read_secret_file(path)?);
        }
        if config.get_application_name().is_none() {
            config.application_name("collector");
        }
        // A report is answered only once its commit is durable, whatever the server's or the
        // role's default.
        let options = config.get_options().unwrap_or_default();
        // The server probes an idle connection every few seconds, so that a session left by a
        // network partition ends (and with it the writer's lock) in under a minute.
        config.options(
            format!(
                "{options} -c synchronous_commit=on -c tcp_keepalives_idle=10 \
                 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
            )
            .trim_start(),
        );
        // A server that stops answering fails a connection or a write within bounded time,
        // instead of holding ingest up without end.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives(true);
        Ok(DatabaseSettings {
            config,
            ca_file: ca_file.map(Path::to_owned),
        })
    }

    /// The database as logs and errors name it: user, hosts, ports, database and TLS mode,
    /// never the password.
    pub fn describe(&self) -> String {
        let config = &self.config;
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let name = match host {
                    Host::Tcp(name) => name.clone(),
                    Host::Unix(path) => path.display().to_string(),
                };
                match config.get_ports().get(i).or(config.get_ports().first()) {
                    Some(port) => format!("{name}:{port}"),
                    None => name,
                }
            })
            .collect();
        let tls = match config.get_ssl_mode() {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            _ => "other",
        };
        format!(
            "postgres://{}@{}/{}?sslmode={tls}",
            config.get_user().unwrap_or_default(),
            hosts.join(","),
            config
                .get_dbname()
                .or(config.get_user())
                .unwrap_or_default(),
        )
    }

    /// An error opening this database.
    pub(in crate::store) fn open_error(
        &self,
        advice: impl Into<String>,
        source: impl Into<Option<crate::error::BoxError>>,
    ) -> Error {
        Error::DatabaseOpen {
            database: self.describe(),
            advice: advice.into(),
            source: source.into().map(super::explain::explain),
        }
    }

    /// The pool of connections (opened as they are first needed).
    pub(super) fn pool(&self) -> Result<Pool> {
        let tls = MakeRustlsConnect::new(self.tls()?);
        let manager = Manager::from_config(
            self.config.clone(),
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| {
                self.open_error("cannot build the connection pool", Some(Box::new(e) as _))
            })
    }

    /// rustls's client settings: the CA file's certificates, or the public web roots.
    fn tls(&self) -> Result<ClientConfig> {
        let mut roots = RootCertStore::empty();
        match &self.ca_file {
            Some(path) => {
                let unreadable = |e: &dyn fmt::Display| {
                    Error::Config(format!("--database-ca-file {}: {e}", path.display()))
                };
                let certificates = CertificateDer::pem_file_iter(path)
                    .map_err(|e| unreadable(&e))?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| unreadable(&e))?;
                if certificates.is_empty() {
                    return Err(unreadable(&"holds no PEM certificate"));
                }
                for certificate in certificates {
                    roots.add(certificate).map_err(|e| unreadable(&e))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS to the database: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(config)
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("database", &self.describe())
            .field(
                "password",
                &self.config.get_password().map(|_| "[redacted]"),
            )
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_shows_nowhere() {
        let settings = DatabaseSettings::from_url(
            "postgres://collector:hunter2@db.example:5433/telemetry",
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            settings.describe(),
            "postgres://collector@db.example:5433/telemetry?sslmode=prefer"
        );
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
        let error = settings.open_error("unreachable", None).to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn the_password_file_wins_and_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "from-file\n").unwrap();
        let settings = DatabaseSettings::from_url(
            "postgres://collector:in-url@db/telemetry",
            Some(&file),
            None,
        )
        .unwrap();
        assert_eq!(settings.config.get_password(), Some(&b"from-file"[..]));
        std::fs::write(&file, "\n").unwrap();
        let empty = DatabaseSettings::from_url("postgres://collector@db/t", Some(&file), None);
        assert!(matches!(empty, Err(Error::EmptySecretFile { .. })));
    }

    #[test]
    fn tls_modes_and_what_they_mean_here() {
        let mode = |url: &str| {
            DatabaseSettings::from_url(url, None, None)
                .unwrap()
                .config
                .get_ssl_mode()
        };
        assert_eq!(mode("postgres://u@db/t"), SslMode::Prefer);
        assert_eq!(mode("postgres://u@db/t?sslmode=disable"), SslMode::Disable);
        assert_eq!(mode("postgres://u@db/t?sslmode=require"), SslMode::Require);
        assert_eq!(
            mode("postgres://u@db/t?sslmode=verify-full"),
            SslMode::Require
        );
        assert_eq!(
            mode("postgres://u@db/t?sslmode=verify-ca"),
            SslMode::Require
        );
        let unknown = DatabaseSettings::from_url("postgres://u@db/t?sslmode=allow", None, None);
        assert!(matches!(unknown, Err(Error::Config(m)) if m.contains("--database-url")));
    }

    #[test]
    fn a_url_without_host_or_user_or_a_bad_ca_file_is_refused() {
        for url in ["postgres:///t", "postgres://db/t", "mysql://u@db/t"] {
            assert!(
                DatabaseSettings::from_url(url, None, None).is_err(),
                "{url}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "not a certificate").unwrap();
        let settings = DatabaseSettings::from_url("postgres://u@db/t", None, Some(&ca)).unwrap();
        let error = settings.pool().unwrap_err().to_string();
        assert!(error.contains("--database-ca-file"), "{error}");
    }
}
