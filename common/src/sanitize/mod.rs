//! The privacy contract: every field is reduced to a closed vocabulary, a version, a bounded
//! number or a hash before it is sent (volunteer) and again before it is stored (collector).
//!
//! Every function here is idempotent: sanitizing sanitized output changes nothing, so the
//! collector's second pass over a report from our volunteer is a no-op, while raw data from old
//! Spartakus volunteers is reduced.

mod capacity;
mod os;
mod runtime;
mod version;
mod vocabulary;

use std::borrow::Cow;

use crate::extensions::{self, DropReason};
use crate::report::{NodeFact, Report};

pub use capacity::{RESOURCE_VENDOR_DOMAINS, is_allowed_resource, is_quantity, node_id};
pub use os::{kernel_version, os_image};
pub use runtime::container_runtime;
pub use version::{MAX_VERSION_LEN, version};
pub use vocabulary::{
    CLOUD_PROVIDERS, OTHER, UNKNOWN_PROVIDER, architecture, cloud_provider,
    cloud_provider_from_provider_id, operating_system, skipped,
};

/// Fields the sanitizer may rewrite, for counting what it changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `version`
    Version,
    /// `masterVersion`
    MasterVersion,
    /// `nodes[].id`
    NodeId,
    /// One of `nodes[]`'s facts.
    Node(NodeFact),
    /// `nodes[].capacity` (entries dropped)
    Capacity,
    /// `skipped` (entries dropped or reasons rewritten)
    Skipped,
}

impl Field {
    /// How many fields there are.
    const COUNT: usize = NodeFact::ALL.len() + 5;

    /// Every field, for metrics.
    pub fn all() -> impl Iterator<Item = Field> {
        [Field::Version, Field::MasterVersion, Field::NodeId]
            .into_iter()
            .chain(NodeFact::ALL.iter().map(|fact| Field::Node(*fact)))
            .chain([Field::Capacity, Field::Skipped])
    }

    /// The field's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Version => "version",
            Field::MasterVersion => "masterVersion",
            Field::NodeId => "id",
            Field::Node(fact) => fact.wire_name(),
            Field::Capacity => "capacity",
            Field::Skipped => "skipped",
        }
    }

    /// The field's place in [`Field::all`].
    fn index(self) -> usize {
        match self {
            Field::Version => 0,
            Field::MasterVersion => 1,
            Field::NodeId => 2,
            Field::Node(fact) => 3 + fact as usize,
            Field::Capacity => Self::COUNT - 2,
            Field::Skipped => Self::COUNT - 1,
        }
    }
}

/// What sanitizing one report changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    rewritten: [u32; Field::COUNT],
    /// Extensions left out, with their keys (never their values) and why.
    pub dropped_extensions: Vec<(String, DropReason)>,
}

impl Changes {
    fn count(&mut self, field: Field) {
        self.rewritten[field.index()] += 1;
    }

    /// How many values of `field` were rewritten or dropped.
    pub fn rewritten(&self, field: Field) -> u32 {
        self.rewritten[field.index()]
    }

    /// True when the report went through unchanged.
    pub fn is_empty(&self) -> bool {
        self.rewritten.iter().all(|n| *n == 0) && self.dropped_extensions.is_empty()
    }
}

/// Reduces every field of a (validated) report to the privacy contract, in place.
pub fn report(report: &mut Report) -> Changes {
    let mut changes = Changes::default();
    let c = &mut changes;
    replace(c, Field::Version, &mut report.version, version);
    if let Some(master) = &mut report.master_version {
        replace(c, Field::MasterVersion, master, version);
    }
    for node in &mut report.nodes {
        replace(c, Field::NodeId, &mut node.id, node_id);
        for fact in NodeFact::ALL {
            if let Some(value) = node.fact_mut(*fact) {
                replace(c, Field::Node(*fact), value, fact_rule(*fact));
            }
        }
        // Keep allowed entries with a quantity value, the first of each resource name.
        let capacity = &node.capacity;
        let keep: Vec<bool> = (0..capacity.len())
            .map(|i| {
                let entry = &capacity[i];
                is_allowed_resource(&entry.resource)
                    && is_quantity(&entry.value)
                    && !capacity[..i].iter().any(|e| e.resource == entry.resource)
            })
            .collect();
        let mut verdicts = keep.iter();
        node.capacity
            .retain(|_| *verdicts.next().expect("one verdict per entry"));
        for _ in keep.iter().filter(|kept| !**kept) {
            c.count(Field::Capacity);
        }
    }
    c.dropped_extensions = extensions::retain_valid(&mut report.extensions);
    let before = report.skipped.clone();
    report.skipped = skipped(std::mem::take(&mut report.skipped));
    if report.skipped != before {
        c.count(Field::Skipped);
    }
    changes
}

/// A sanitizing rule for one string field; it borrows its input when it keeps it.
pub type Rule = for<'a> fn(&'a str) -> Cow<'a, str>;

/// The rule that reduces one node fact.
pub fn fact_rule(fact: NodeFact) -> Rule {
    match fact {
        NodeFact::OperatingSystem => operating_system,
        NodeFact::OsImage => os_image,
        NodeFact::KernelVersion => kernel_version,
        NodeFact::Architecture => architecture,
        NodeFact::ContainerRuntimeVersion => container_runtime,
        NodeFact::KubeletVersion => version,
        NodeFact::CloudProvider => cloud_provider,
    }
}

fn replace(changes: &mut Changes, field: Field, value: &mut String, rule: Rule) {
    let clean = match rule(value) {
        Cow::Borrowed(kept) if kept == value.as_str() => return,
        clean => clean.into_owned(),
    };
    *value = clean;
    changes.count(field);
}

/// Asserts each `(raw, reduced)` pair, and that the rule keeps what it reduced.
#[cfg(test)]
fn check(rule: Rule, cases: &[(&str, &str)]) {
    for (raw, want) in cases {
        let got = rule(raw);
        assert_eq!(&got, want, "input {raw:?}");
        assert_eq!(rule(&got), got, "not idempotent on {raw:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Extension, Node, Resource};

    #[test]
    fn a_raw_spartakus_report_is_reduced_and_counted() {
        let mut report = Report {
            version: "v1.0.0".into(),
            cluster_id: "2f9c93d3-156c-47aa-8802-578ffca9b50e".into(),
            master_version: Some("v1.3.5".into()),
            nodes: vec![Node {
                id: "node-1.acme.internal".into(),
                operating_system: Some("linux".into()),
                os_image: Some("Debian GNU/Linux 7 (wheezy)".into()),
                kernel_version: Some("3.16.0-4-amd64".into()),
                architecture: Some("amd64".into()),
                container_runtime_version: Some("docker://1.11.2".into()),
                kubelet_version: Some("v1.3.2".into()),
                cloud_provider: Some("aws".into()),
                capacity: vec![
                    Resource {
                        resource: "cpu".into(),
                        value: "4".into(),
                    },
                    Resource {
                        resource: "acme.com/license-server".into(),
                        value: "1".into(),
                    },
                    Resource {
                        resource: "cpu".into(),
                        value: "8".into(),
                    },
                ],
            }],
            extensions: vec![Extension {
                name: "not a key".into(),
                value: "x".into(),
            }],
            ..Report::default()
        };
        let changes = super::report(&mut report);
        let node = &report.nodes[0];
        assert_eq!(node.os_image.as_deref(), Some("debian 7"));
        assert_eq!(node.kernel_version.as_deref(), Some("3.16.0"));
        assert_eq!(node.capacity.len(), 1);
        assert_eq!(node.id.len(), 32);
        assert_eq!(changes.rewritten(Field::Node(NodeFact::OsImage)), 1);
        assert_eq!(changes.rewritten(Field::Node(NodeFact::KernelVersion)), 1);
        assert_eq!(changes.rewritten(Field::NodeId), 1);
        assert_eq!(changes.rewritten(Field::Capacity), 2);
        assert_eq!(changes.rewritten(Field::Node(NodeFact::KubeletVersion)), 0);
        assert_eq!(changes.dropped_extensions.len(), 1);
        assert!(report.extensions.is_empty());

        let again = super::report(&mut report.clone());
        assert!(again.is_empty(), "second pass changed {again:?}");
    }
}
