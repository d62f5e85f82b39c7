//! Decoding a report from JSON bytes: type errors name their field, unknown fields are counted.

use crate::report::Report;
use crate::validate::Problem;

/// A decoded report and what decoding left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The report, without the fields this format does not know.
    pub report: Report,
    /// How many unknown fields were dropped (they are never stored or forwarded).
    pub unknown_fields: usize,
}

/// Decodes one report from a JSON document.
///
/// A syntax or type error becomes one [`Problem`] whose field is the path where decoding stopped
/// (e.g. `nodes[3].capacity`). Unknown fields are not an error: they are dropped and counted.
pub fn decode(bytes: &[u8]) -> Result<Decoded, Problem> {
    // serde would also take a struct written as an array; the format is an object.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Problem::new("", "the body must be a JSON object"));
    }
    let mut unknown_fields = 0usize;
    let mut count_unknown = |_path: serde_ignored::Path<'_>| unknown_fields += 1;
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let decoded = serde_ignored::deserialize(&mut json, &mut count_unknown)
        .and_then(|report: Report| json.end().map(|()| report));
    match decoded {
        Ok(report) => Ok(Decoded {
            report,
            unknown_fields,
        }),
        // Errors are rare: only then decode again, tracking the path to name the field.
        Err(_) => Err(locate_error(bytes)),
    }
}

/// The first decode error of `bytes`, with the path where decoding stopped.
fn locate_error(bytes: &[u8]) -> Problem {
    let mut json = serde_json::Deserializer::from_slice(bytes);
    let result: Result<Report, _> = serde_path_to_error::deserialize(&mut json);
    match result.map(|_| json.end()) {
        Err(error) => Problem::new(field_path(error.path()), error.into_inner().to_string()),
        Ok(Err(error)) => Problem::new(String::new(), error.to_string()),
        Ok(Ok(())) => Problem::new(String::new(), "the body is not a valid report"),
    }
}

/// Renders a decode path the way validation names fields: `nodes[3].capacity[0].value`.
fn field_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_name_their_field() {
        let cases: &[(&str, &str)] = &[
            (r#"{"clusterID": 5}"#, "clusterID"),
            (r#"{"nodes": [{"id": "a"}, {"id": 3}]}"#, "nodes[1].id"),
            (
                r#"{"nodes": [{"id": "a", "capacity": [{"resource": "cpu", "value": 4}]}]}"#,
                "nodes[0].capacity[0].value",
            ),
            (r#"{"namespaces": "many"}"#, "namespaces"),
            (r#"{"objects": {"pods": {"total": 1}}}"#, "objects.pods"),
            (
                r#"{"objects": {"pods": {"total": 1.5, "perNamespace": []}}}"#,
                "objects.pods.total",
            ),
            (r#"{"timestamp": 1700000000}"#, "timestamp"),
            // serde's derived decoders take a struct written as an array; this format does not.
            (r#"{"objects": [null, null]}"#, "objects"),
            (r#"{"objects": {"pods": [1, []]}}"#, "objects.pods"),
            (
                r#"{"objects": {"pods": {"total": 1, "perNamespace": [], "ageSeconds": [1, 2, 3, 4]}}}"#,
                "objects.pods.ageSeconds",
            ),
            (r#"{"nodes": [["a"]]}"#, "nodes[0]"),
            (
                r#"{"nodes": [{"id": "a", "capacity": [["cpu", "4"]]}]}"#,
                "nodes[0].capacity[0]",
            ),
            (r#"{"extensions": [["a", "b"]]}"#, "extensions[0]"),
            (r#"{"skipped": [["nodes", "forbidden"]]}"#, "skipped[0]"),
            (r#"[1, 2]"#, ""),
            (r#" "report" "#, ""),
        ];
        for (body, field) in cases {
            let problem = decode(body.as_bytes()).unwrap_err();
            assert_eq!(problem.field, *field, "{body}: {problem:?}");
            assert!(!problem.message.is_empty());
        }
    }

    #[test]
    fn syntax_errors_and_trailing_garbage_are_rejected() {
        for body in [r#"{"clusterID": "#, r#"{} {}"#, "", "nul\0"] {
            assert!(decode(body.as_bytes()).is_err(), "{body:?}");
        }
    }

    #[test]
    fn unknown_fields_are_dropped_and_counted() {
        let body = r#"{
            "version": "v1.0.0", "clusterID": "x", "secretSauce": {"a": 1},
            "nodes": [{"id": "a", "hostname": "db-1", "capacity": [{"resource": "cpu", "value": "4", "ip": "10.0.0.1"}]}],
            "objects": {"widgets": {"total": 3}}
        }"#;
        let decoded = decode(body.as_bytes()).unwrap();
        assert_eq!(decoded.unknown_fields, 4);
        let stored = serde_json::to_string(&decoded.report).unwrap();
        for leaked in ["secretSauce", "hostname", "db-1", "10.0.0.1", "widgets"] {
            assert!(!stored.contains(leaked), "{leaked} survived: {stored}");
        }
    }

    #[test]
    fn whole_numbers_written_as_floats_are_integers() {
        let body = r#"{"version": "v1.0.0", "clusterID": "x", "namespaces": 3.0,
            "objects": {"pods": {"total": 9680142972.0, "perNamespace": [1e1],
                "ageSeconds": {"p50": 1.0, "p90": 2, "p99": 3e0, "max": 4}}}}"#;
        let report = decode(body.as_bytes()).unwrap().report;
        assert_eq!(report.namespaces, Some(3));
        let pods = report.objects.pods.unwrap();
        assert_eq!((pods.total, pods.per_namespace), (9_680_142_972, vec![10]));
        assert_eq!(pods.age_seconds.unwrap().p99, 3);
    }

    #[test]
    fn go_nulls_are_empty_lists() {
        let body = r#"{"version": "v1.0.0", "clusterID": "x", "nodes": null, "extensions": null}"#;
        let decoded = decode(body.as_bytes()).unwrap();
        assert!(decoded.report.nodes.is_empty());
        assert!(decoded.report.extensions.is_empty());
    }
}
