//! The types of sink: the closed list `[[sink]] type = "..."` chooses from, as the store records
//! them and metrics label them.

use strum::{EnumString, IntoStaticStr, VariantArray};

/// The types of sink, as `[[sink]] type = "..."` names them (and metrics label them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumString, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum SinkKind {
    /// Segment's batch API.
    Segment,
    /// Woopra's custom-event tracking API.
    Woopra,
    /// A BigQuery table (streaming inserts).
    BigQuery,
    /// One JSON line per report on standard output.
    Stdout,
    /// One JSON line per report appended to a file.
    Jsonl,
    /// Another collector's `/api/v1`.
    Http,
}

impl SinkKind {
    /// The type's name in the configuration, the store and metrics labels.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::fmt::Display for SinkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::words::Words;

    #[test]
    fn kinds_keep_their_configured_names() {
        assert_eq!(
            SinkKind::words(),
            ["segment", "woopra", "bigquery", "stdout", "jsonl", "http"]
        );
        assert!(SinkKind::parse_back());
        assert!("kafka".parse::<SinkKind>().is_err());
    }
}
