//! README.md stays true: its flag tables match both binaries' clap definitions and its metric
//! tables match what each exports.

use std::collections::BTreeSet;

use clap::{Command, CommandFactory};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap()
}

/// The cells of the table rows under `heading` (up to the next heading) whose first cell starts
/// with `prefix`.
fn rows(heading: &str, prefix: &str) -> Vec<Vec<String>> {
    let readme = readme();
    let section = readme
        .split_once(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README has no {heading:?}"))
        .1;
    let section = section.split("\n#").next().unwrap();
    section
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
