//! Extension keys (Kubernetes qualified names) and values: which pairs may travel in a report.

use std::collections::HashSet;

use strum::{EnumString, IntoStaticStr, VariantArray};

use crate::report::Extension;
use crate::validate::string_problem;

/// Longest extension value, in bytes.
pub const MAX_EXTENSION_VALUE_BYTES: usize = 1024;
/// Longest name part of a qualified name.
const MAX_NAME: usize = 63;
/// Longest prefix (a DNS subdomain) of a qualified name.
const MAX_PREFIX: usize = 253;

/// Why an extension was left out of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, IntoStaticStr, EnumString, VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum DropReason {
    /// The key is not a Kubernetes qualified name.
    InvalidName,
    /// The value is longer than [`MAX_EXTENSION_VALUE_BYTES`].
    ValueTooLong,
    /// The value contains control characters.
    ValueNotPrintable,
    /// An earlier extension had the same key.
    Duplicate,
}

impl DropReason {
    /// Every reason, for metrics.
    pub const ALL: &[DropReason] = <DropReason as VariantArray>::VARIANTS;

    /// Label value for metrics and logs.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Why `key` is not a Kubernetes qualified name (`[prefix/]name`), if it is not.
///
/// The rules are apimachinery's `IsQualifiedName`: an optional DNS-subdomain prefix of at most 253
/// characters, then a name of at most 63 characters of `[A-Za-z0-9_.-]` that starts and ends with
/// an alphanumeric character.
pub fn qualified_name_problem(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Some("prefix before '/' must not be empty");
        }
        if prefix.len() > MAX_PREFIX {
            return Some("prefix must be at most 253 characters");
        }
        if !is_dns_subdomain(prefix) {
            return Some("prefix must be a lowercase DNS subdomain, e.g. example.com");
        }
    }
    if name.is_empty() {
        return Some("name must not be empty");
    }
    if name.len() > MAX_NAME {
        return Some("name must be at most 63 characters");
    }
    let bytes = name.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ends_ok =
        bytes[0].is_ascii_alphanumeric() && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if !inner_ok || !ends_ok {
        return Some(
            "name must consist of alphanumerics, '-', '_' or '.', and start and end with an alphanumeric",
        );
    }
    None
}

fn is_dns_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    })
}

/// Why this extension must be left out, if it must.
pub fn extension_problem(extension: &Extension) -> Option<DropReason> {
    if qualified_name_problem(&extension.name).is_some() {
        Some(DropReason::InvalidName)
    } else if extension.value.len() > MAX_EXTENSION_VALUE_BYTES {
        Some(DropReason::ValueTooLong)
    } else if string_problem(&extension.value, usize::MAX).is_some() {
        Some(DropReason::ValueNotPrintable)
    } else {
        None
    }
}

/// Keeps the extensions that may travel, in order; returns the dropped ones' keys and reasons.
///
/// A repeated key keeps its first value.
pub fn retain_valid(extensions: &mut Vec<Extension>) -> Vec<(String, DropReason)> {
    let mut seen = HashSet::new();
    let mut dropped = Vec::new();
    extensions.retain(|extension| {
        let problem = extension_problem(extension)
            .or_else(|| (!seen.insert(extension.name.clone())).then_some(DropReason::Duplicate));
        match problem {
            Some(reason) => {
                dropped.push((extension.name.clone(), reason));
                false
            }
            None => true,
        }
    });
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::Words;

    /// Metrics label values: dashboards and alerts name them.
    #[test]
    fn reasons_keep_their_label_values() {
        assert_eq!(
            DropReason::words(),
            [
                "invalid_name",
                "value_too_long",
                "value_not_printable",
                "duplicate"
            ]
        );
        assert!(DropReason::parse_back());
    }

    #[test]
    fn qualified_names() {
        let cases = [
            ("team", true),
            ("example.com/team", true),
            ("a.b-c.example.com/Team_Name.v2", true),
            ("x", true),
            (&"n".repeat(63), true),
            (&"n".repeat(64), false),
            ("", false),
            ("/team", false),
            ("example.com/", false),
            ("Example.com/team", false),
            ("-team", false),
            ("team-", false),
            ("a/b/c", false),
            ("has space", false),
            ("example..com/team", false),
            ("ex_ample.com/team", false),
            ("-example.com/team", false),
        ];
        for (key, ok) in cases {
            assert_eq!(qualified_name_problem(key).is_none(), ok, "{key}");
        }
        let long_prefix = format!("{}.com/x", "a".repeat(250));
        assert!(qualified_name_problem(&long_prefix).is_some());
    }

    #[test]
    fn offending_extensions_are_dropped_not_fatal() {
        let ext = |name: &str, value: &str| Extension {
            name: name.into(),
            value: value.into(),
        };
        let mut extensions = vec![
            ext("example.com/team", "platform"),
            ext("bad key", "v"),
            ext(
                "example.com/blob",
                &"x".repeat(MAX_EXTENSION_VALUE_BYTES + 1),
            ),
            ext("example.com/ok-max", &"x".repeat(MAX_EXTENSION_VALUE_BYTES)),
            ext("example.com/bell", "\u{7}"),
            ext("example.com/team", "second"),
        ];
        let dropped = retain_valid(&mut extensions);
        assert_eq!(
            extensions
                .iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>(),
            vec!["example.com/team", "example.com/ok-max"]
        );
        assert_eq!(extensions[0].value, "platform");
        assert_eq!(
            dropped
                .iter()
                .map(|(_, reason)| *reason)
                .collect::<Vec<_>>(),
            vec![
                DropReason::InvalidName,
                DropReason::ValueTooLong,
                DropReason::ValueNotPrintable,
                DropReason::Duplicate
            ]
        );
    }
}
