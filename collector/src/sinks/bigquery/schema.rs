//! The table's schema: Spartakus's `bigquery.schema.json` columns first, so that Spartakus
//! tables and queries keep working, then the new sections and the collector's own columns.

use common::report::NodeFact;
use gcp_bigquery_client::model::table_field_schema::TableFieldSchema;
use gcp_bigquery_client::model::table_schema::TableSchema;

/// The table's schema: Spartakus's `bigquery.schema.json` columns (so Spartakus tables and
/// queries keep working), then the new sections and the collector's own columns.
pub fn schema() -> TableSchema {
    let required = |mut field: TableFieldSchema| {
        field.mode = Some("REQUIRED".into());
        field
    };
    let repeated = |mut field: TableFieldSchema| {
        field.mode = Some("REPEATED".into());
        field
    };
    let capacity = repeated(TableFieldSchema::record(
        "capacity",
        vec![
            required(TableFieldSchema::string("resource")),
            required(TableFieldSchema::string("value")),
        ],
    ));
    let mut node_columns = vec![required(TableFieldSchema::string("id"))];
    node_columns.extend(
        NodeFact::ALL
            .iter()
            .map(|fact| TableFieldSchema::string(fact.wire_name())),
    );
    node_columns.push(capacity);
    let nodes = repeated(TableFieldSchema::record("nodes", node_columns));
    TableSchema::new(vec![
        required(TableFieldSchema::string("version")),
        required(TableFieldSchema::string("timestamp")),
        required(TableFieldSchema::string("clusterID")),
        TableFieldSchema::string("masterVersion"),
        nodes,
        repeated(TableFieldSchema::record(
            "extensions",
            vec![
                required(TableFieldSchema::string("name")),
                required(TableFieldSchema::string("value")),
            ],
        )),
        TableFieldSchema::integer("namespaces"),
        repeated(TableFieldSchema::record(
            "objects",
            vec![
                required(TableFieldSchema::string("kind")),
                required(TableFieldSchema::integer("total")),
                repeated(TableFieldSchema::integer("perNamespace")),
                TableFieldSchema::integer("ageP50"),
                TableFieldSchema::integer("ageP90"),
                TableFieldSchema::integer("ageP99"),
                TableFieldSchema::integer("ageMax"),
            ],
        )),
        repeated(TableFieldSchema::record(
            "skipped",
            vec![
                required(TableFieldSchema::string("section")),
                required(TableFieldSchema::string("reason")),
            ],
        )),
        required(TableFieldSchema::string("report_id")),
        required(TableFieldSchema::string("time_source")),
        required(TableFieldSchema::timestamp("received_at")),
    ])
}
