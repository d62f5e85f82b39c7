//! Secrets the collector reads from files and flags: bearer tokens, the database password and
//! URL. `Debug` and `Display` never show them.

use std::fmt;
use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// `--database-url`: kept whole for the connection, never shown (it may hold the password).
#[derive(Clone)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub(crate) fn parse(url: &str) -> std::result::Result<Self, String> {
        Ok(DatabaseUrl(url.to_owned()))
    }

    /// The URL as given.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DatabaseUrl([redacted])")
    }
}

/// The secret in the file at `path`, without surrounding whitespace (a trailing newline); an
/// empty file is an error.
pub fn read_secret_file(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::SecretFile {
        path: path.to_owned(),
        source,
    })?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(Error::EmptySecretFile {
            path: path.to_owned(),
        });
    }
    Ok(secret.to_owned())
}

/// A secret (bearer token) read from a file. `Debug` and `Display` never show it, and
/// comparison goes through SHA-256 digests so its timing does not reveal a prefix.
#[derive(Clone)]
pub struct Secret {
    digest: [u8; 32],
}

impl Secret {
    /// Reads a secret from `path`; surrounding whitespace (a trailing newline) is ignored.
    pub fn from_file(path: &Path) -> Result<Self> {
        Ok(Self::new(&read_secret_file(path)?))
    }

    /// A secret with the given value.
    pub fn new(token: &str) -> Self {
        Secret {
            digest: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// True when `candidate` is this secret (compared in constant time).
    pub fn matches(&self, candidate: &str) -> bool {
        let candidate: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        candidate.ct_eq(&self.digest).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_files_are_trimmed_and_must_not_be_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "abc\n").unwrap();
        assert!(Secret::from_file(&path).unwrap().matches("abc"));
        std::fs::write(&path, "\n").unwrap();
        let err = Secret::from_file(&path).unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        let err = Secret::from_file(&dir.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
    }

    #[test]
    fn secrets_never_print_and_compare_exactly() {
        let secret = Secret::new("s3cr3t-token");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert!(secret.matches("s3cr3t-token"));
        assert!(!secret.matches("s3cr3t-token "));
        assert!(!secret.matches(""));
    }

    #[test]
    fn a_database_url_never_prints() {
        let url = DatabaseUrl::parse("postgres://collector:hunter2@db/telemetry").unwrap();
        assert_eq!(format!("{url:?}"), "DatabaseUrl([redacted])");
        assert_eq!(url.expose(), "postgres://collector:hunter2@db/telemetry");
    }
}
