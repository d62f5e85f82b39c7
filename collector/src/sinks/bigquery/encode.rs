//! Reports as table rows, in the column names and types of [`super::schema`].

use common::report::NodeFact;
use common::time::rfc3339;
use serde_json::{Map, Value, json};

use crate::store::OutboxItem;

/// One row: the report's fields as Spartakus wrote them (`timestamp` is the report's time in
/// unix seconds, as a string), plus the new sections, the report id and `received_at`.
pub fn row(item: &OutboxItem) -> Value {
    let report = &item.report;
    let nodes: Vec<Value> = report
        .nodes
        .iter()
        .map(|node| {
            let mut columns = Map::new();
            columns.insert("id".into(), json!(node.id));
            for fact in NodeFact::ALL {
                columns.insert(fact.wire_name().into(), json!(node.fact(*fact)));
            }
            let capacity: Vec<Value> = node
                .capacity
                .iter()
                .map(|c| json!({"resource": c.resource, "value": c.value}))
                .collect();
            columns.insert("capacity".into(), json!(capacity));
            Value::Object(columns)
        })
        .collect();
    let objects: Vec<Value> = report
        .objects
        .iter()
        .map(|(kind, stats)| {
            let age = stats.age_seconds;
            json!({
                "kind": kind.as_str(),
                "total": stats.total,
                "perNamespace": stats.per_namespace,
                "ageP50": age.map(|a| a.p50),
                "ageP90": age.map(|a| a.p90),
                "ageP99": age.map(|a| a.p99),
                "ageMax": age.map(|a| a.max),
            })
        })
        .collect();
    json!({
        "version": report.version,
        "timestamp": item.report_time.to_string(),
        "clusterID": item.cluster_id,
        "masterVersion": report.master_version,
        "nodes": nodes,
        "extensions": report.extensions.iter().map(|e| json!({"name": e.name, "value": e.value})).collect::<Vec<_>>(),
        "namespaces": report.namespaces,
        "objects": objects,
        "skipped": report.skipped.iter().map(|s| json!({"section": s.section, "reason": s.reason})).collect::<Vec<_>>(),
        "report_id": item.id.to_string(),
        "time_source": item.time_source.as_str(),
        "received_at": rfc3339(item.received_at),
    })
}
