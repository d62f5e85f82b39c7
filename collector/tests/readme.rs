//! README.md stays true: its flag table matches the clap definitions and its metric table matches
//! what the collector exports.

use std::collections::BTreeSet;

use clap::CommandFactory;
use collector::Config;
use collector::metrics::{Metrics, RouteLabels};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap()
}

/// The cells of every README table row whose first cell starts with `prefix`.
fn rows(readme: &str, prefix: &str) -> Vec<Vec<String>> {
    readme
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

#[test]
fn readme_lists_every_flag() {
    let readme = readme();
    let documented: Vec<(String, String, String)> = rows(&readme, "--")
        .into_iter()
        .map(|cells| (cells[0].clone(), cells[1].clone(), cells[2].clone()))
        .collect();
    let command = Config::command();
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
        "the README's flag table and `collector --help` list different flags"
    );
    for ((flag, env, default), (_, defined_env, defined_default)) in documented.iter().zip(&defined)
    {
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

#[test]
fn readme_lists_every_metric() {
    let readme = readme();
    let documented: BTreeSet<String> = rows(&readme, "collector_")
        .into_iter()
        .map(|cells| cells[0].clone())
        .collect();
    let metrics = Metrics::new();
    metrics
        .request_duration
        .get_or_create(&RouteLabels {
            route: "/api/v1",
            status: 204,
        })
        .observe(0.001);
    let exported: BTreeSet<String> = metrics
        .encode()
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let name = line.split(['{', ' ']).next().unwrap();
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    name.strip_suffix(suffix)
                        .filter(|n| n.ends_with("_seconds") || n.ends_with("_size"))
                })
                .unwrap_or(name)
                .to_string()
        })
        .collect();
    assert_eq!(documented, exported, "README metric table vs /metrics");
}
