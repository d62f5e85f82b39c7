//! TLS on the public listener without an Ingress: the certificate and key are PEM files, read
//! again when either changes (cert-manager rotates them in place), HTTP/2 and HTTP/1.1 offered
//! by ALPN. A rotation that cannot be read keeps the certificate in use, and says why.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::{Mutex, RwLock};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::error::{Error, Result};

/// How often, at most, the files are looked at again (on a handshake).
const RECHECK_EVERY: Duration = Duration::from_secs(1);

/// The certificate chain and private key files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, the server's certificate first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// An acceptor for the public listener, loading the files now (an unreadable pair stops the
/// start) and again whenever they change.
pub fn acceptor(files: TlsFiles) -> Result<TlsAcceptor> {
    let provider = Arc::new(ring::default_provider());
    let loaded = Loaded::read(&files, &provider).map_err(Error::Config)?;
    let resolver = Reloading {
        files,
        provider: provider.clone(),
        current: RwLock::new(loaded),
        checked: Mutex::new(Instant::now()),
        failed: Mutex::new(None),
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Config(format!("TLS: {error}")))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The certificate in use, and the state of its files when it was read.
struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
}

/// What tells that a file changed: its inode, change and modification times and length, for
/// both files (a rotation by rename changes the inode even within one timestamp tick).
type Stamp = [Option<(u64, i64, Option<SystemTime>, u64)>; 2];

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.cert, &files.key].map(|path| {
        let meta = std::fs::metadata(path).ok()?;
        Some((
            meta.ino(),
            meta.ctime_nsec() + meta.ctime() * 1_000_000_000,
            meta.modified().ok(),
            meta.len(),
        ))
    })
}

impl Loaded {
    fn read(files: &TlsFiles, provider: &CryptoProvider) -> std::result::Result<Self, String> {
        let stamp = stamp(files);
        let named = |path: &Path, error: &dyn fmt::Display| {
            format!("TLS: cannot read {}: {error}", path.display())
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
            .and_then(Iterator::collect)
            .map_err(|error| named(&files.cert, &error))?;
        if chain.is_empty() {
            return Err(named(&files.cert, &"no CERTIFICATE block in it"));
        }
        let key =
            PrivateKeyDer::from_pem_file(&files.key).map_err(|error| named(&files.key, &error))?;
        let signing = provider
            .key_provider
            .load_private_key(key)
            .map_err(|error| named(&files.key, &error))?;
        let key = CertifiedKey::new(chain, signing);
        match key.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(error) => {
                return Err(format!(
                    "TLS: the key {} does not belong to the certificate {}: {error}",
                    files.key.display(),
                    files.cert.display()
                ));
            }
        }
        Ok(Loaded {
            key: Arc::new(key),
            stamp,
        })
    }
}

/// Serves the loaded certificate, reading the files again when they changed.
struct Reloading {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
    checked: Mutex<Instant>,
    /// The files' state when they last could not be used: said once, tried again each second.
    failed: Mutex<Option<Stamp>>,
}

impl fmt::Debug for Reloading {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Reloading")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Reloading {
    /// Reads the files again if they changed since the last look (at most once a
    /// [`RECHECK_EVERY`]; one handshake looks while the others go on).
    fn refresh(&self) {
        {
            let Some(mut checked) = self.checked.try_lock() else {
                return;
            };
            if checked.elapsed() < RECHECK_EVERY {
                return;
            }
            *checked = Instant::now();
        }
        let now = stamp(&self.files);
        if now == self.current.read().stamp {
            return;
        }
        match Loaded::read(&self.files, &self.provider) {
            Ok(loaded) => {
                *self.current.write() = loaded;
                *self.failed.lock() = None;
                tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded");
            }
            Err(error) => {
                // Keep serving the old one and try again in a second (the rest of a rotation may
                // be on its way, or the failure may pass); say so once for each state of the files.
                if self.failed.lock().replace(now) != Some(now) {
                    tracing::warn!(%error, "TLS certificate changed but cannot be used; keeping the previous one");
                }
            }
        }
    }
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.refresh();
        Some(self.current.read().key.clone())
    }
}
