//! The flat summary of a report that analytics services (Segment, Woopra) receive as event
//! properties, and the analytics identity of a report (the keying strategy).

use std::collections::BTreeSet;

use common::report::NodeFact;
use serde_json::{Value, json};

use crate::store::OutboxItem;

/// The analytics identity of a report: the value of extension `extension` when configured and
/// present (e.g. `example.com/account`), else the cluster id.
pub fn analytics_id(item: &OutboxItem, extension: Option<&str>) -> String {
    extension
        .and_then(|name| item.report.extensions.iter().find(|e| e.name == name))
        .map(|e| e.value.clone())
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| item.cluster_id.clone())
}

/// A flat summary: scalar values only, distinct node facts joined in sorted order, a total per
/// counted kind, extensions as `ext.<name>`.
pub fn summary(item: &OutboxItem) -> Vec<(String, Value)> {
    let report = &item.report;
    let distinct = |fact: NodeFact| -> Value {
        let values: BTreeSet<&str> = report
            .nodes
            .iter()
            .filter_map(|node| node.fact(fact))
            .collect();
        json!(values.into_iter().collect::<Vec<_>>().join(","))
    };
    let mut properties = vec![
        ("clusterID".to_string(), json!(item.cluster_id)),
        ("reportID".to_string(), json!(item.id.to_string())),
        ("schemaVersion".to_string(), json!(report.version)),
        ("timeSource".to_string(), json!(item.time_source.as_str())),
        (
            "masterVersion".to_string(),
            json!(report.master_version.clone().unwrap_or_default()),
        ),
        ("nodes".to_string(), json!(report.nodes.len())),
    ];
    for fact in NodeFact::COUNTED {
        properties.push((fact.plural().to_string(), distinct(fact)));
    }
    if let Some(namespaces) = report.namespaces {
        properties.push(("namespaces".to_string(), json!(namespaces)));
    }
    for (kind, stats) in report.objects.iter() {
        properties.push((kind.as_str().to_string(), json!(stats.total)));
    }
    if !report.skipped.is_empty() {
        let skipped: Vec<String> = report
            .skipped
            .iter()
            .map(|s| format!("{}:{}", s.section, s.reason))
            .collect();
        properties.push(("skipped".to_string(), json!(skipped.join(","))));
    }
    for extension in &report.extensions {
        properties.push((format!("ext.{}", extension.name), json!(extension.value)));
    }
    properties
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use common::report::{Extension, Node, Report};
    use common::time::TimeSource;

    pub(crate) fn item() -> OutboxItem {
        let node = |arch: &str| Node {
            id: "c8863d09ecc5be8d9791f72acd275fc2".into(),
            architecture: Some(arch.into()),
            cloud_provider: Some("aws".into()),
            ..Node::default()
        };
        OutboxItem {
            held: crate::store::Held::AfterPosition,
            seq: 7,
            id: uuid::Uuid::from_u128(1),
            cluster_id: "2f9c93d3-156c-47aa-8802-578ffca9b50e".into(),
            report_time: 1_763_737_200,
            time_source: TimeSource::Client,
            received_at: 1_763_737_201,
            queued_at: 1_763_737_201,
            attempts: 0,
            report: Report {
                version: "v1.1.0".into(),
                timestamp: "1763737200".into(),
                cluster_id: "2f9c93d3-156c-47aa-8802-578ffca9b50e".into(),
                master_version: Some("v1.31.2".into()),
                nodes: vec![node("arm64"), node("amd64"), node("amd64")],
                extensions: vec![Extension {
                    name: "example.com/account".into(),
                    value: "acct-42".into(),
                }],
                namespaces: Some(9),
                ..Report::default()
            },
        }
    }

    #[test]
    fn the_summary_is_flat_and_sorted() {
        let properties: std::collections::HashMap<String, Value> =
            summary(&item()).into_iter().collect();
        assert_eq!(properties["nodes"], 3);
        assert_eq!(properties["architectures"], "amd64,arm64");
        assert_eq!(properties["cloudProviders"], "aws");
        assert_eq!(properties["namespaces"], 9);
        assert_eq!(properties["ext.example.com/account"], "acct-42");
        assert!(properties.values().all(|v| !v.is_object() && !v.is_array()));
    }

    #[test]
    fn the_identity_follows_the_keying_strategy() {
        let item = item();
        assert_eq!(analytics_id(&item, None), item.cluster_id);
        assert_eq!(analytics_id(&item, Some("example.com/account")), "acct-42");
        assert_eq!(
            analytics_id(&item, Some("example.com/missing")),
            item.cluster_id
        );
    }
}
