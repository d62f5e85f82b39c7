//! The closed vocabularies: operating systems, architectures, cloud providers and skipped
//! sections, each an allow-list that anything else is reduced to a fixed word from.

use std::borrow::Cow;

use crate::report::{Section, SkipReason, Skipped};

/// What a field becomes when its value is not in the vocabulary.
pub const OTHER: &str = "other";
/// What `cloudProvider` becomes when the provider is not in the allow-list.
pub const UNKNOWN_PROVIDER: &str = "unknown";

/// `linux`, `windows`, ... or [`OTHER`].
pub fn operating_system(raw: &str) -> Cow<'_, str> {
    const KNOWN: &[&str] = &[
        "linux",
        "windows",
        "darwin",
        "freebsd",
        "netbsd",
        "openbsd",
        "dragonfly",
        "illumos",
        "solaris",
        "aix",
        "plan9",
    ];
    from_list(raw, KNOWN, OTHER)
}

/// A Go architecture name (`amd64`, `arm64`, ...) or [`OTHER`].
pub fn architecture(raw: &str) -> Cow<'_, str> {
    const KNOWN: &[&str] = &[
        "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le",
        "mips64", "mipsle", "mips", "loong64", "wasm",
    ];
    from_list(raw, KNOWN, OTHER)
}

/// Public cloud providers whose name may appear as the scheme of a node's `spec.providerID`:
/// Spartakus's list plus current ones.
pub const CLOUD_PROVIDERS: &[&str] = &[
    // Spartakus v1's list.
    "aws",
    "azure",
    "cloudstack",
    "gce",
    "mesos",
    "openstack",
    "ovirt",
    "photon",
    "rackspace",
    "vsphere",
    // Current public providers and local distributions.
    "alicloud",
    "digitalocean",
    "equinixmetal",
    "exoscale",
    "hcloud",
    "huaweicloud",
    "ibm",
    "ibmcloud",
    "k3s",
    "kind",
    "kubevirt",
    "linode",
    "oci",
    "packet",
    "scaleway",
    "tencentcloud",
    "upcloud",
    "vultr",
];

/// A provider from [`CLOUD_PROVIDERS`], or [`UNKNOWN_PROVIDER`].
pub fn cloud_provider(raw: &str) -> Cow<'_, str> {
    from_list(raw, CLOUD_PROVIDERS, UNKNOWN_PROVIDER)
}

/// The provider named by the scheme of a node's `spec.providerID` (`aws:///eu-west-1a/i-0abc`):
/// the scheme when it is in the allow-list, else [`UNKNOWN_PROVIDER`]. Instance ids and zones
/// never leave.
pub fn cloud_provider_from_provider_id(provider_id: &str) -> Cow<'_, str> {
    match provider_id.split_once("://") {
        Some((scheme, _)) => cloud_provider(scheme),
        None => Cow::Borrowed(UNKNOWN_PROVIDER),
    }
}

/// The vocabulary word `raw` names (case-insensitively), else `fallback`.
pub(super) fn from_list<'a>(
    raw: &str,
    list: &[&'static str],
    fallback: &'static str,
) -> Cow<'a, str> {
    Cow::Borrowed(
        list.iter()
            .find(|known| known.eq_ignore_ascii_case(raw))
            .unwrap_or(&fallback),
    )
}

/// Keeps entries naming a known section (first one wins); an unknown reason becomes `error`.
pub fn skipped(entries: Vec<Skipped>) -> Vec<Skipped> {
    let mut kept: Vec<Skipped> = Vec::with_capacity(entries.len());
    for mut entry in entries {
        let known_section = Section::parse(&entry.section).is_some();
        if !known_section || kept.iter().any(|k| k.section == entry.section) {
            continue;
        }
        if entry.reason.parse::<SkipReason>().is_err() {
            entry.reason = SkipReason::Error.as_str().to_string();
        }
        kept.push(entry);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sanitize::check;

    #[test]
    fn operating_systems_and_architectures() {
        check(
            operating_system,
            &[("linux", "linux"), ("Windows", "windows"), ("haiku", OTHER)],
        );
        check(
            architecture,
            &[
                ("amd64", "amd64"),
                ("arm64", "arm64"),
                ("x86_64", OTHER),
                ("s390x", "s390x"),
            ],
        );
    }

    #[test]
    fn cloud_providers() {
        check(
            cloud_provider,
            &[
                ("aws", "aws"),
                ("gce", "gce"),
                ("unknown", "unknown"),
                ("acme", "unknown"),
            ],
        );
        let cases = [
            ("aws:///eu-west-1a/i-0123456789abcdef0", "aws"),
            ("gce://my-project/us-central1-a/node-1", "gce"),
            (
                "azure:///subscriptions/123/resourceGroups/rg/providers/x",
                "azure",
            ),
            ("hcloud://12345", "hcloud"),
            ("kind://docker/kind/kind-control-plane", "kind"),
            ("foo://bar", "unknown"),
            ("", "unknown"),
            ("aws", "unknown"),
        ];
        for (provider_id, want) in cases {
            assert_eq!(
                cloud_provider_from_provider_id(provider_id),
                want,
                "{provider_id}"
            );
        }
    }

    #[test]
    fn skipped_sections_are_a_closed_vocabulary() {
        let entry = |section: &str, reason: &str| Skipped {
            section: section.into(),
            reason: reason.into(),
        };
        let kept = skipped(vec![
            entry("nodes", "forbidden"),
            entry("objects.pods", "expired"),
            entry("objects.widgets", "forbidden"),
            entry("secret-db-names", "forbidden"),
            entry("namespaces", "cosmic rays"),
            entry("nodes", "notFound"),
        ]);
        assert_eq!(
            kept,
            vec![
                entry("nodes", "forbidden"),
                entry("objects.pods", "expired"),
                entry("namespaces", "error"),
            ]
        );
    }
}
