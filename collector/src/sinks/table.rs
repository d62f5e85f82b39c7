//! What every `[[sink]]` table shares: secrets given by the name of an environment variable or
//! the path of a file, never inline. (Durations such as `2s` are `humantime_serde`'s.)

use std::path::Path;

use common::secret::Credential;

use crate::error::{Error, Result};

/// Resolves sink `sink`'s secret from `<key>_env` or `<key>_file`: exactly one must be given,
/// and it must hold a non-empty value. Errors name the sink and the key.
pub fn secret(sink: &str, key: &str, env: Option<&str>, file: Option<&Path>) -> Result<Credential> {
    let value = match (env, file) {
        (Some(_), Some(_)) => {
            return Err(Error::sink(
                sink,
                format!("give either `{key}_env` or `{key}_file`, not both"),
            ));
        }
        (Some(var), None) => std::env::var(var).map_err(|_| {
            Error::sink(
                sink,
                format!("`{key}_env`: the environment variable {var} is not set"),
            )
        })?,
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|source| {
            Error::sink_context(
                sink,
                format!("`{key}_file`: cannot read {}", path.display()),
                source,
            )
        })?,
        (None, None) => {
            return Err(Error::sink(
                sink,
                format!("`{key}_env` or `{key}_file` is required"),
            ));
        }
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(Error::sink(sink, format!("`{key}`: the secret is empty")));
    }
    Ok(Credential::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_env_or_file_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "wk_123\n").unwrap();
        assert_eq!(
            secret("s", "write_key", None, Some(&path))
                .unwrap()
                .expose(),
            "wk_123"
        );
        let missing = secret(
            "s",
            "write_key",
            Some("COLLECTOR_TEST_SURELY_UNSET_VARIABLE"),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            missing.contains("write_key_env")
                && missing.contains("COLLECTOR_TEST_SURELY_UNSET_VARIABLE"),
            "{missing}"
        );
        assert!(
            secret("s", "write_key", None, None)
                .unwrap_err()
                .to_string()
                .contains("write_key_env` or `write_key_file")
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(
            secret("s", "write_key", None, Some(&path))
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let unreadable = secret("s", "write_key", None, Some(&dir.path().join("nope")))
            .unwrap_err()
            .to_string();
        assert!(
            unreadable.contains("write_key_file") && unreadable.contains("nope"),
            "{unreadable}"
        );
    }
}
