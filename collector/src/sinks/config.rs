//! The sink configuration file: one `[[sink]]` table per sink, checked strictly (unknown keys and
//! missing secrets are startup errors naming the key), secrets only by env-var name or file path.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::{Credential, Sink, bigquery, file, http_forward, segment, woopra};
use crate::{Error, Result};

/// A configured sink: its name, type and the sink itself.
#[derive(Clone)]
pub struct Configured {
    /// Unique name (metrics label, read API).
    pub name: String,
    /// Type (`segment`, `woopra`, `bigquery`, `stdout`, `jsonl`, `http`).
    pub kind: &'static str,
    /// The sink.
    pub sink: Arc<dyn Sink>,
}

impl std::fmt::Debug for Configured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Configured")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// One `[[sink]]` table, parsed and checked.
#[derive(Debug, Clone)]
pub enum SinkConfig {
    /// Segment's batch API.
    Segment(segment::SegmentConfig),
    /// Woopra's custom-event tracking API.
    Woopra(woopra::WoopraConfig),
    /// A BigQuery table (streaming inserts).
    BigQuery(bigquery::BigQueryConfig),
    /// One JSON line per report on standard output.
    Stdout(file::StdoutConfig),
    /// One JSON line per report appended to a file.
    Jsonl(file::JsonlConfig),
    /// Another collector's `/api/v1`.
    Http(http_forward::HttpConfig),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    sink: Vec<toml::Table>,
}

/// Reads the configuration file and builds its sinks. `bigquery_endpoint` (the
/// `--bigquery-endpoint` flag) overrides every BigQuery sink's endpoint.
pub async fn load(path: &Path, bigquery_endpoint: Option<&Url>) -> Result<Vec<Configured>> {
    let configs = parse_file(path)?;
    let mut sinks = Vec::new();
    for (name, config) in configs {
        let at = |e: String| Error::Config(format!("{}: sink {name:?}: {e}", path.display()));
        let (kind, sink): (&'static str, Arc<dyn Sink>) = match config {
            SinkConfig::Segment(c) => ("segment", Arc::new(segment::Segment::new(c).map_err(at)?)),
            SinkConfig::Woopra(c) => ("woopra", Arc::new(woopra::Woopra::new(c).map_err(at)?)),
            SinkConfig::BigQuery(mut c) => {
                if let Some(endpoint) = bigquery_endpoint {
                    c.endpoint = Some(endpoint.clone());
                }
                (
                    "bigquery",
                    Arc::new(bigquery::BigQuery::new(c).await.map_err(at)?),
                )
            }
            SinkConfig::Stdout(c) => ("stdout", Arc::new(file::JsonLines::stdout(c))),
            SinkConfig::Jsonl(c) => ("jsonl", Arc::new(file::JsonLines::file(c).map_err(at)?)),
            SinkConfig::Http(c) => (
                "http",
                Arc::new(http_forward::HttpForward::new(c).map_err(at)?),
            ),
        };
        sinks.push(Configured { name, kind, sink });
    }
    Ok(sinks)
}

/// Parses and checks the file without building sinks: names are unique, types known, keys
/// known, secrets present.
pub fn parse_file(path: &Path) -> Result<Vec<(String, SinkConfig)>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

/// Parses configuration text (see [`parse_file`]).
pub fn parse(text: &str) -> std::result::Result<Vec<(String, SinkConfig)>, String> {
    let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut names = HashSet::new();
    let mut configs = Vec::new();
    for (index, mut table) in file.sink.into_iter().enumerate() {
        let position = format!("[[sink]] #{}", index + 1);
        let name = match table.get("name") {
            Some(toml::Value::String(name)) if valid_name(name) => name.clone(),
            Some(_) => {
                return Err(format!(
                    "{position}: `name` must be 1-63 characters of [a-z0-9_-]"
                ));
            }
            None => return Err(format!("{position}: `name` is required")),
        };
        if !names.insert(name.clone()) {
            return Err(format!("{position}: the name {name:?} is used twice"));
        }
        let kind = match table.remove("type") {
            Some(toml::Value::String(kind)) => kind,
            _ => {
                return Err(format!(
                    "sink {name:?}: `type` is required (segment, woopra, bigquery, stdout, jsonl or http)"
                ));
            }
        };
        let value = toml::Value::Table(table);
        let config = match kind.as_str() {
            "segment" => SinkConfig::Segment(typed(&name, value)?),
            "woopra" => SinkConfig::Woopra(typed(&name, value)?),
            "bigquery" => SinkConfig::BigQuery(typed(&name, value)?),
            "stdout" => SinkConfig::Stdout(typed(&name, value)?),
            "jsonl" => SinkConfig::Jsonl(typed(&name, value)?),
            "http" => SinkConfig::Http(typed(&name, value)?),
            other => {
                return Err(format!(
                    "sink {name:?}: unknown type {other:?}; use segment, woopra, bigquery, stdout, jsonl or http"
                ));
            }
        };
        configs.push((name, config));
    }
    Ok(configs)
}

fn typed<T: serde::de::DeserializeOwned>(
    name: &str,
    value: toml::Value,
) -> std::result::Result<T, String> {
    value
        .try_into()
        .map_err(|e: toml::de::Error| format!("sink {name:?}: {}", e.message()))
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Resolves a secret from `<key>_env` or `<key>_file`: exactly one must be given, and it must
/// hold a non-empty value. Errors name the key.
pub fn secret(
    key: &str,
    env: Option<&str>,
    file: Option<&Path>,
) -> std::result::Result<Credential, String> {
    let value = match (env, file) {
        (Some(_), Some(_)) => {
            return Err(format!("give either `{key}_env` or `{key}_file`, not both"));
        }
        (Some(var), None) => std::env::var(var)
            .map_err(|_| format!("`{key}_env`: the environment variable {var} is not set"))?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("`{key}_file`: cannot read {}: {e}", path.display()))?,
        (None, None) => return Err(format!("`{key}_env` or `{key}_file` is required")),
    };
    let value = value.trim().to_string();
    if value.is_empty() {
        return Err(format!("`{key}`: the secret is empty"));
    }
    Ok(Credential(value))
}

/// Parses a duration such as `2s` or `500ms` from the configuration.
pub fn duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> std::result::Result<Option<Duration>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    text.map(|t| humantime::parse_duration(&t).map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let text = r#"
            [[sink]]
            name = "segment"
            type = "segment"
            endpoint = "https://api.segment.io"
            write_key_file = "/dev/null"
            [[sink]]
            name = "woopra"
            type = "woopra"
            endpoint = "https://www.woopra.com"
            project = "example.com"
            [[sink]]
            name = "warehouse"
            type = "bigquery"
            table = "my-project.telemetry.reports"
            credentials_file = "/secrets/sa.json"
            [[sink]]
            name = "audit"
            type = "jsonl"
            path = "/var/lib/collector/reports.jsonl"
            [[sink]]
            name = "console"
            type = "stdout"
            [[sink]]
            name = "upstream"
            type = "http"
            endpoint = "https://collector.example.com"
        "#;
        let configs = parse(text).unwrap();
        let names: Vec<&str> = configs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "segment",
                "woopra",
                "warehouse",
                "audit",
                "console",
                "upstream"
            ]
        );
        assert!(matches!(configs[2].1, SinkConfig::BigQuery(_)));
    }

    #[test]
    fn mistakes_are_errors_naming_the_key() {
        let cases = [
            (
                "[[sink]]\nname = \"w\"\ntype = \"woopra\"\nprojet = \"x\"",
                "projet",
            ),
            ("[[sink]]\nname = \"w\"\ntype = \"woopra\"", "project"),
            ("[[sink]]\ntype = \"stdout\"", "`name` is required"),
            (
                "[[sink]]\nname = \"Bad Name\"\ntype = \"stdout\"",
                "`name` must be",
            ),
            (
                "[[sink]]\nname = \"a\"\ntype = \"stdout\"\n[[sink]]\nname = \"a\"\ntype = \"stdout\"",
                "used twice",
            ),
            ("[[sink]]\nname = \"a\"\ntype = \"kafka\"", "unknown type"),
            ("[[sink]]\nname = \"a\"", "`type` is required"),
            ("[[sinks]]\nname = \"a\"", "sinks"),
            (
                "[[sink]]\nname = \"s\"\ntype = \"segment\"\nwrite_key = \"inline!\"",
                "write_key",
            ),
            (
                "[[sink]]\nname = \"b\"\ntype = \"bigquery\"\ntable = \"t\"",
                "table",
            ),
        ];
        for (text, expected) in cases {
            let error = match parse(text) {
                Ok(configs) => {
                    // Some mistakes only show when the sink is built.
                    let (_, config) = configs.into_iter().next().unwrap();
                    match config {
                        SinkConfig::BigQuery(c) => bigquery::parse_table(&c.table).unwrap_err(),
                        other => panic!("{text} parsed: {other:?}"),
                    }
                }
                Err(error) => error,
            };
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn secrets_come_from_env_or_file_and_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "wk_123\n").unwrap();
        assert_eq!(
            secret("write_key", None, Some(&path)).unwrap().expose(),
            "wk_123"
        );
        let missing = secret(
            "write_key",
            Some("COLLECTOR_TEST_SURELY_UNSET_VARIABLE"),
            None,
        )
        .unwrap_err();
        assert!(
            missing.contains("write_key_env")
                && missing.contains("COLLECTOR_TEST_SURELY_UNSET_VARIABLE"),
            "{missing}"
        );
        assert!(
            secret("write_key", None, None)
                .unwrap_err()
                .contains("write_key_env` or `write_key_file")
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(
            secret("write_key", None, Some(&path))
                .unwrap_err()
                .contains("empty")
        );
    }
}
