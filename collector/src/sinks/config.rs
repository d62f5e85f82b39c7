//! The sink configuration file: one `[[sink]]` table per sink, checked strictly (unknown keys and
//! missing secrets are startup errors naming the key), secrets only by env-var name or file path;
//! and the factory that builds each sink from its table.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use url::Url;

use super::bigquery::{BigQuery, BigQueryConfig};
use super::file::{JsonLines, JsonlConfig, StdoutConfig};
use super::http_forward::{HttpConfig, HttpForward};
use super::kind::SinkKind;
use super::segment::{Segment, SegmentConfig};
use super::sink::Sink;
use super::woopra::{Woopra, WoopraConfig};
use crate::error::{Error, Result};

/// A configured sink: its name, type and the sink itself.
#[derive(Clone)]
pub struct Configured {
    /// Unique name (metrics label, read API).
    pub name: String,
    /// Its type.
    pub kind: SinkKind,
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
    Segment(SegmentConfig),
    /// Woopra's custom-event tracking API.
    Woopra(WoopraConfig),
    /// A BigQuery table (streaming inserts).
    BigQuery(BigQueryConfig),
    /// One JSON line per report on standard output.
    Stdout(StdoutConfig),
    /// One JSON line per report appended to a file.
    Jsonl(JsonlConfig),
    /// Another collector's `/api/v1`.
    Http(HttpConfig),
}

impl SinkConfig {
    /// The sink's type.
    pub fn kind(&self) -> SinkKind {
        match self {
            SinkConfig::Segment(_) => SinkKind::Segment,
            SinkConfig::Woopra(_) => SinkKind::Woopra,
            SinkConfig::BigQuery(_) => SinkKind::BigQuery,
            SinkConfig::Stdout(_) => SinkKind::Stdout,
            SinkConfig::Jsonl(_) => SinkKind::Jsonl,
            SinkConfig::Http(_) => SinkKind::Http,
        }
    }

    /// Builds the sink this table describes. `bigquery_endpoint` (the `--bigquery-endpoint`
    /// flag) overrides a BigQuery sink's endpoint.
    pub async fn build(self, bigquery_endpoint: Option<&Url>) -> Result<Arc<dyn Sink>> {
        Ok(match self {
            SinkConfig::Segment(c) => Arc::new(Segment::new(c)?),
            SinkConfig::Woopra(c) => Arc::new(Woopra::new(c)?),
            SinkConfig::BigQuery(mut c) => {
                if let Some(endpoint) = bigquery_endpoint {
                    c.endpoint = Some(endpoint.clone());
                }
                Arc::new(BigQuery::new(c).await?)
            }
            SinkConfig::Stdout(c) => Arc::new(JsonLines::stdout(c)),
            SinkConfig::Jsonl(c) => Arc::new(JsonLines::file(c)?),
            SinkConfig::Http(c) => Arc::new(HttpForward::new(c)?),
        })
    }
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
    let mut sinks = Vec::new();
    for (name, config) in parse_file(path)? {
        let kind = config.kind();
        let sink = config
            .build(bigquery_endpoint)
            .await
            .map_err(|error| Error::in_file(path, error))?;
        sinks.push(Configured { name, kind, sink });
    }
    Ok(sinks)
}

/// Parses and checks the file without building sinks: names are unique, types known, keys
/// known, secrets present.
pub fn parse_file(path: &Path) -> Result<Vec<(String, SinkConfig)>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigRead {
        path: path.to_owned(),
        source,
    })?;
    parse(&text).map_err(|error| Error::in_file(path, error))
}

/// Parses configuration text (see [`parse_file`]).
pub fn parse(text: &str) -> Result<Vec<(String, SinkConfig)>> {
    let file: ConfigFile = toml::from_str(text).map_err(Error::ConfigSyntax)?;
    let mut names = HashSet::new();
    let mut configs = Vec::new();
    for (index, mut table) in file.sink.into_iter().enumerate() {
        let position = format!("[[sink]] #{}", index + 1);
        let name = match table.get("name") {
            Some(toml::Value::String(name)) if valid_name(name) => name.clone(),
            Some(_) => {
                return Err(Error::Config(format!(
                    "{position}: `name` must be 1-63 characters of [a-z0-9_-]"
                )));
            }
            None => return Err(Error::Config(format!("{position}: `name` is required"))),
        };
        if !names.insert(name.clone()) {
            return Err(Error::Config(format!(
                "{position}: the name {name:?} is used twice"
            )));
        }
        let kind = match table.remove("type") {
            Some(toml::Value::String(kind)) => kind,
            _ => {
                return Err(Error::sink(
                    &name,
                    "`type` is required (segment, woopra, bigquery, stdout, jsonl or http)",
                ));
            }
        };
        let value = toml::Value::Table(table);
        let config = match kind.parse::<SinkKind>() {
            Ok(SinkKind::Segment) => SinkConfig::Segment(typed(&name, value)?),
            Ok(SinkKind::Woopra) => SinkConfig::Woopra(typed(&name, value)?),
            Ok(SinkKind::BigQuery) => SinkConfig::BigQuery(typed(&name, value)?),
            Ok(SinkKind::Stdout) => SinkConfig::Stdout(typed(&name, value)?),
            Ok(SinkKind::Jsonl) => SinkConfig::Jsonl(typed(&name, value)?),
            Ok(SinkKind::Http) => SinkConfig::Http(typed(&name, value)?),
            Err(_) => {
                return Err(Error::sink(
                    &name,
                    format!(
                        "unknown type {kind:?}; use segment, woopra, bigquery, stdout, jsonl or http"
                    ),
                ));
            }
        };
        configs.push((name, config));
    }
    Ok(configs)
}

/// A `[[sink]]` table that does not fit its type's keys, said as briefly as TOML says it.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.message())]
struct TableError(#[source] toml::de::Error);

fn typed<T: serde::de::DeserializeOwned>(name: &str, value: toml::Value) -> Result<T> {
    value
        .try_into()
        .map_err(|source| Error::sink(name, TableError(source)))
}

fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
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
            (
                "[[sink]]\nname = \"s\"\ntype = \"segment\"\nwrite_key_file = \"k\"\nflush_interval = \"soon\"",
                "soon",
            ),
        ];
        for (text, expected) in cases {
            let error = match parse(text) {
                Ok(configs) => {
                    // Some mistakes only show when the sink is built.
                    let (_, config) = configs.into_iter().next().unwrap();
                    match config {
                        SinkConfig::BigQuery(c) => {
                            super::super::bigquery::parse_table(&c.name, &c.table)
                                .unwrap_err()
                                .to_string()
                        }
                        other => panic!("{text} parsed: {other:?}"),
                    }
                }
                Err(error) => error.to_string(),
            };
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
