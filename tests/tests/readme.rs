//! README.md stays true: its flag tables match both binaries' clap definitions and its metric
//! tables match what each exports.

use std::collections::BTreeSet;

use clap::{Command, CommandFactory};
use e2e::{code_blocks, readme_section as section};

/// The cells of the table rows under `heading` (up to the next heading) whose first cell starts
/// with `prefix`.
fn rows(heading: &str, prefix: &str) -> Vec<Vec<String>> {
    section(heading)
        .lines()
        .filter(|line| line.starts_with(&format!("| `{prefix}")))
        .map(|line| {
            line.trim_matches('|')
                .split(" | ")
                .map(|cell| cell.trim().trim_matches('`').to_string())
                .collect()
        })
        .collect()
}

fn check_flags(heading: &str, command: Command) {
    let documented: Vec<(String, String, String)> = rows(heading, "--")
        .into_iter()
        .map(|cells| (cells[0].clone(), cells[1].clone(), cells[2].clone()))
        .collect();
    let mut defined = Vec::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        if matches!(long, "help" | "version") {
            continue;
        }
        let env = arg
            .get_env()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default();
        let default = arg
            .get_default_values()
            .first()
            .map(|v| v.to_string_lossy().into_owned());
        defined.push((format!("--{long}"), env, default));
    }
    assert_eq!(
        documented.iter().map(|d| &d.0).collect::<Vec<_>>(),
        defined.iter().map(|d| &d.0).collect::<Vec<_>>(),
        "{heading}: the README's flag table and `--help` list different flags"
    );
    for ((flag, env, default), (_, defined_env, defined_default)) in documented.iter().zip(&defined)
    {
        let env = if env == "none" { "" } else { env.as_str() };
        assert_eq!(env, defined_env, "{flag}: environment variable");
        match defined_default {
            Some(value) if value != "false" => assert_eq!(default, value, "{flag}: default"),
            _ => assert!(
                matches!(default.as_str(), "none" | "off"),
                "{flag}: default {default}"
            ),
        }
    }
}

fn documented_metrics(heading: &str, prefix: &str) -> BTreeSet<String> {
    rows(heading, prefix)
        .into_iter()
        .map(|cells| cells[0].clone())
        .collect()
}

#[test]
fn readme_lists_every_collector_flag() {
    check_flags("### Collector flags", collector::Config::command());
}

#[test]
fn readme_lists_every_volunteer_flag() {
    check_flags("### Volunteer flags", volunteer::Config::command());
}

#[test]
fn readme_lists_every_collector_metric() {
    let metrics = collector::metrics::Metrics::new();
    metrics
        .request_duration
        .get_or_create(&collector::metrics::RouteLabels {
            route: "/api/v1",
            status: 204,
        })
        .observe(0.001);
    metrics.init_sink(&collector::metrics::SinkLabels {
        sink: "audit".into(),
        r#type: "jsonl",
    });
    assert_eq!(
        documented_metrics("### Collector metrics", "collector_"),
        e2e::metric_families(&metrics.encode())
    );
}

#[test]
fn readme_lists_every_volunteer_metric() {
    let metrics = volunteer::metrics::Metrics::new();
    assert_eq!(
        documented_metrics("### Volunteer metrics", "volunteer_"),
        e2e::metric_families(&metrics.encode())
    );
}

/// The first fenced block of `language` in the section under `heading`.
fn code_block(heading: &str, language: &str) -> String {
    code_blocks(&section(heading), language)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("{heading}: no {language} block"))
}

/// Every field path of a report (`nodes[].capacity[].value`, `objects.<kind>.total`).
fn field_paths(value: &serde_json::Value, path: &str, paths: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                let key = if path == "objects" { "<kind>" } else { key };
                let child_path = if path.is_empty() {
                    key.to_string()
                } else {
                    format!("{path}.{key}")
                };
                paths.insert(child_path.clone());
                field_paths(child, &child_path, paths);
            }
        }
        serde_json::Value::Array(items) => {
            let item_path = format!("{path}[]");
            for item in items {
                if item.is_object() {
                    paths.remove(path);
                    paths.insert(item_path.clone());
                    field_paths(item, &item_path, paths);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn the_example_report_is_a_volunteer_report_and_every_field_is_explained() {
    let example = code_block("## What leaves your cluster", "json");
    let value: serde_json::Value = serde_json::from_str(&example).unwrap();
    let time: i64 = value["timestamp"].as_str().unwrap().parse().unwrap();
    // What the volunteer printed passes the collector's admission untouched.
    let admitted = common::admit(example.as_bytes(), common::ClusterIdRule::Uuid, time).unwrap();
    assert!(admitted.changes.is_empty(), "{:?}", admitted.changes);
    assert_eq!(admitted.unknown_fields, 0);
    assert_eq!(admitted.report.version, volunteer::SCHEMA_VERSION);

    // Every field is in the table: itself, or inside a parent whose type lists its members.
    let table: std::collections::BTreeMap<String, String> = rows("## What leaves your cluster", "")
        .into_iter()
        .map(|cells| (cells[0].clone(), cells[1].clone()))
        .collect();
    let mut paths = BTreeSet::new();
    field_paths(&value, "", &mut paths);
    for path in &paths {
        let parent = path.rsplit_once('.').map(|(p, _)| p).unwrap_or_default();
        let explained =
            table.contains_key(path) || table.get(parent).is_some_and(|kind| kind.contains('{'));
        assert!(
            explained,
            "the README's field table does not explain {path}"
        );
    }
    for kind in [
        "nodes[]",
        "objects.<kind>.ageSeconds",
        "skipped[]",
        "extensions[]",
    ] {
        assert!(paths.contains(kind), "the example lacks {kind}");
    }
}
