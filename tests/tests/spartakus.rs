//! Our reports, as admitted from the fixtures of Spartakus's documentation and ours, decode as
//! Spartakus v1 records (what a Spartakus database or query reads) and as our own format.

use common::report::Report;
use common::{ClusterIdRule, admit};
use e2e::fixture;

const NOW: i64 = 1_763_737_200;

#[test]
fn our_reports_decode_as_spartakus_records() {
    for name in [
        "full-report.json",
        "spartakus-readme.json",
        "spartakus-extensions.json",
    ] {
        let admitted = admit(&fixture(name), ClusterIdRule::Uuid, NOW).unwrap();
        let wire = serde_json::to_value(&admitted.report).unwrap();
        let record = e2e::spartakus::record(&wire);
        assert_eq!(record.cluster_id, admitted.report.cluster_id);
        assert_eq!(record.timestamp, admitted.time.seconds.to_string());
        // And our own decoder reads back exactly what was sent.
        let back: Report = serde_json::from_value(wire).unwrap();
        assert_eq!(back, admitted.report);
    }
}
