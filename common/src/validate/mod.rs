//! Strict validation of a decoded report: every problem, each with its field path.

mod problems;
mod rules;
#[cfg(test)]
mod tests;

use crate::report::{NodeFact, Report};

pub use crate::report::{MAX_CAPACITY_ENTRIES, MAX_EXTENSIONS, MAX_NODES, MAX_SKIPPED};

pub use problems::{Problem, Problems};
pub use rules::string_problem;
use rules::{cluster_id_problem, integer_problem, object_stats, optional, required};

/// Longest string accepted in any field but an extension value, in characters.
pub const MAX_STRING_CHARS: usize = 256;
/// Largest integer accepted anywhere: 2^53 - 1, exact in every JSON reader and in BigQuery.
pub const MAX_INTEGER: i64 = (1 << 53) - 1;
/// Longest relaxed (non-UUID) cluster id.
pub const MAX_RELAXED_CLUSTER_ID: usize = 128;
/// Most problems listed for one report; the rest are summarised in a last entry.
pub const MAX_PROBLEMS: usize = 100;

/// What a valid `clusterID` looks like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClusterIdRule {
    /// A UUID, as Spartakus recommended (the default).
    #[default]
    Uuid,
    /// 1-128 characters of `[A-Za-z0-9._-]`, for fleets that used other ids.
    Relaxed,
}

/// Checks a report against the format's limits; an `Err` lists every problem found.
///
/// Extensions are only counted here: a single bad extension is dropped by the sanitizer, not
/// rejected, so that one typo does not lose a whole report.
pub fn validate(report: &Report, rule: ClusterIdRule) -> Result<(), Problems> {
    let mut problems = Problems::default();
    let p = &mut problems;

    p.check(required(&report.version), || "version".into());
    p.check(optional(&report.timestamp), || "timestamp".into());
    p.check(cluster_id_problem(&report.cluster_id, rule), || {
        "clusterID".into()
    });
    if let Some(master) = &report.master_version {
        p.check(optional(master), || "masterVersion".into());
    }

    if report.nodes.len() > MAX_NODES {
        p.push(
            "nodes",
            format!(
                "{} nodes; at most {MAX_NODES} are accepted",
                report.nodes.len()
            ),
        );
    } else {
        for (i, node) in report.nodes.iter().enumerate() {
            p.check(required(&node.id), || format!("nodes[{i}].id"));
            for fact in NodeFact::ALL {
                if let Some(value) = node.fact(*fact) {
                    p.check(optional(value), || {
                        format!("nodes[{i}].{}", fact.wire_name())
                    });
                }
            }
            if node.capacity.len() > MAX_CAPACITY_ENTRIES {
                p.push(
                    format!("nodes[{i}].capacity"),
                    format!(
                        "{} entries; at most {MAX_CAPACITY_ENTRIES} are accepted",
                        node.capacity.len()
                    ),
                );
            } else {
                for (j, entry) in node.capacity.iter().enumerate() {
                    p.check(required(&entry.resource), || {
                        format!("nodes[{i}].capacity[{j}].resource")
                    });
                    p.check(required(&entry.value), || {
                        format!("nodes[{i}].capacity[{j}].value")
                    });
                }
            }
            if p.0.len() > MAX_PROBLEMS {
                break;
            }
        }
    }

    if report.extensions.len() > MAX_EXTENSIONS {
        p.push(
            "extensions",
            format!(
                "{} extensions; at most {MAX_EXTENSIONS} are accepted",
                report.extensions.len()
            ),
        );
    }

    if let Some(namespaces) = report.namespaces {
        p.check(integer_problem(namespaces), || "namespaces".into());
    }
    for (kind, stats) in report.objects.iter() {
        object_stats(p, kind.as_str(), stats);
    }

    if report.skipped.len() > MAX_SKIPPED {
        p.push(
            "skipped",
            format!(
                "{} entries; at most {MAX_SKIPPED} are accepted",
                report.skipped.len()
            ),
        );
    } else {
        for (i, skipped) in report.skipped.iter().enumerate() {
            p.check(required(&skipped.section), || {
                format!("skipped[{i}].section")
            });
            p.check(required(&skipped.reason), || format!("skipped[{i}].reason"));
        }
    }

    if problems.0.is_empty() {
        Ok(())
    } else {
        if problems.0.len() > MAX_PROBLEMS {
            let more = problems.0.len() - MAX_PROBLEMS;
            problems.0.truncate(MAX_PROBLEMS);
            problems.push("", format!("and {more} more problems not listed"));
        }
        Err(problems)
    }
}
