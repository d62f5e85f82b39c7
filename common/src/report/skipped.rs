//! What a [`Skipped`] entry may say: which section was not read, and why, each a closed
//! vocabulary.

use strum::{EnumString, IntoStaticStr, VariantArray};

use super::{ObjectKind, Skipped};

impl Skipped {
    /// An entry saying `section` was not read, and why.
    pub fn new(section: Section, reason: SkipReason) -> Self {
        Skipped {
            section: section.to_string(),
            reason: reason.as_str().to_string(),
        }
    }
}

/// A section a [`Skipped`] entry may name: the closed vocabulary of [`Skipped::section`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `masterVersion`
    MasterVersion,
    /// `nodes`
    Nodes,
    /// `nodeIdKey`: the secret keying node ids (a random one was used instead).
    NodeIdKey,
    /// `namespaces`
    Namespaces,
    /// `objects.<kind>`
    Objects(ObjectKind),
}

impl Section {
    /// The section a [`Skipped::section`] names, if it is one.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "masterVersion" => Section::MasterVersion,
            "nodes" => Section::Nodes,
            "nodeIdKey" => Section::NodeIdKey,
            "namespaces" => Section::Namespaces,
            other => Section::Objects(other.strip_prefix("objects.")?.parse().ok()?),
        })
    }
}

impl std::fmt::Display for Section {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Section::MasterVersion => f.write_str("masterVersion"),
            Section::Nodes => f.write_str("nodes"),
            Section::NodeIdKey => f.write_str("nodeIdKey"),
            Section::Namespaces => f.write_str("namespaces"),
            Section::Objects(kind) => write!(f, "objects.{}", kind.as_str()),
        }
    }
}

/// Why a section could not be read: the closed vocabulary of [`Skipped::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, EnumString, VariantArray)]
#[strum(serialize_all = "camelCase")]
pub enum SkipReason {
    /// The volunteer may not read it (HTTP 403).
    Forbidden,
    /// The volunteer's credentials were refused (HTTP 401).
    Unauthorized,
    /// The API server does not serve it (HTTP 404).
    NotFound,
    /// A list's continue token kept expiring (HTTP 410).
    Expired,
    /// The API server did not answer in time.
    Timeout,
    /// The API server was overloaded or failing.
    Unavailable,
    /// Turned off by the volunteer's flags.
    Disabled,
    /// Any other failure.
    Error,
}

impl SkipReason {
    /// The reason's name on the wire.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::words::Words;

    /// The wire names are part of the format: stored reports and dashboards hold them.
    #[test]
    fn reasons_keep_their_wire_names() {
        assert_eq!(
            SkipReason::words(),
            [
                "forbidden",
                "unauthorized",
                "notFound",
                "expired",
                "timeout",
                "unavailable",
                "disabled",
                "error"
            ]
        );
        assert!(SkipReason::parse_back());
    }

    #[test]
    fn sections_round_trip_and_unknown_ones_are_none() {
        let mut sections = vec![
            Section::MasterVersion,
            Section::Nodes,
            Section::NodeIdKey,
            Section::Namespaces,
        ];
        sections.extend(ObjectKind::ALL.iter().map(|kind| Section::Objects(*kind)));
        for section in sections {
            assert_eq!(Section::parse(&section.to_string()), Some(section));
        }
        assert_eq!(
            Section::Objects(ObjectKind::PersistentVolumeClaims).to_string(),
            "objects.persistentvolumeclaims"
        );
        for unknown in [
            "objects.widgets",
            "objects.",
            "secret-db-names",
            "Nodes",
            "",
        ] {
            assert_eq!(Section::parse(unknown), None, "{unknown}");
        }
    }
}
