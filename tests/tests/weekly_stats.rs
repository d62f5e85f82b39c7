//! End to end: a synthetic fleet of 1,000 clusters over 26 weeks, with known shares and a few
//! rare values, imported into the collector binary over TCP; the weekly answers, their CSV and
//! the export must give the numbers the fleet's model says, with groups of fewer than five
//! clusters never named.

use std::collections::BTreeMap;

use e2e::fleet::Fleet;
use e2e::{Collector, binary, get_json, get_text};
use serde_json::Value;

const K: i64 = 5;

fn fleet() -> Fleet {
    Fleet {
        clusters: 1000,
        weeks: 26,
        reports_per_week: 2,
        max_nodes: 6,
        now: e2e::now(),
    }
}

/// Per week (index `w`), clusters per value of `value_of` from the model, folded at `K`.
fn expected(
    fleet: &Fleet,
    values_of: impl Fn(u32, u32) -> Vec<String>,
) -> Vec<BTreeMap<String, i64>> {
    (0..fleet.weeks)
        .map(|w| {
            let mut counts: BTreeMap<String, i64> = BTreeMap::new();
            for i in (0..fleet.clusters).filter(|i| fleet.active(*i, w)) {
                let mut values = values_of(i, w);
                values.sort();
                values.dedup();
                for value in values {
                    *counts.entry(value).or_default() += 1;
                }
            }
            let mut folded = BTreeMap::new();
            for (value, clusters) in counts {
                let value = if clusters < K {
                    "other".to_string()
                } else {
                    value
                };
                *folded.entry(value).or_default() += clusters;
            }
            folded
        })
        .collect()
}

/// Per week, clusters per value in a weekly answer.
fn answered(view: &Value, weeks: u32) -> Vec<BTreeMap<String, i64>> {
    (0..weeks as usize)
        .map(|w| {
            view["dimension"]["values"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|v| v["clusters"][w].as_i64().unwrap() > 0)
                .map(|v| {
                    let clusters = v["clusters"][w].as_i64().unwrap();
                    (v["value"].as_str().unwrap().to_string(), clusters)
                })
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn a_synthetic_fleet_gives_the_numbers_its_model_says() {
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(
        &binary("collector"),
        &dir.path().join("data"),
        &["--stats-rollup-interval", "0"],
    )
    .await;
    let client = reqwest::Client::new();
    let fleet = fleet();
    let mut lines = Vec::new();
    let count = fleet.write(&mut lines).unwrap();
    let first_lines: Vec<u8> = lines
        .split_inclusive(|b| *b == b'\n')
        .take(500)
        .flatten()
        .copied()
        .collect();
    let summary = e2e::send_json(
        client
            .post(collector.admin_url("/api/v1/import"))
            .header("content-type", "application/x-ndjson")
            .body(lines),
    )
    .await;
    assert_eq!(summary["lines"], count, "{summary}");
    assert_eq!(summary["stored"], count, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    let again: Value = client
        .post(collector.admin_url("/api/v1/import"))
        .body(first_lines)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (again["stored"].as_i64(), again["duplicates"].as_i64()),
        (Some(0), Some(500)),
        "a repeated import changes nothing: {again}"
    );

    // The weeks asked for: the 26 of history, the last one the week before this (the running
    // week is never published).
    let weeks = fleet.weeks;
    let weekly = |dimension: &str| {
        let url = collector.admin_url(&format!(
            "/api/v1/stats/weekly?dimension={dimension}&weeks={weeks}"
        ));
        let client = client.clone();
        async move { get_json(&client, &url).await }
    };

    let view = weekly("architecture").await;
    let active = |w: u32| (0..fleet.clusters).filter(|i| fleet.active(*i, w)).count() as i64;
    for w in 0..fleet.weeks {
        let week = &view["weeks"][w as usize];
        assert_eq!(week["week"], fleet.week(w).to_string());
        assert_eq!(week["active"], active(w), "week {w}");
        let new = (0..fleet.clusters)
            .filter(|i| fleet.active(*i, w) && (0..w).all(|earlier| !fleet.active(*i, earlier)))
            .count() as i64;
        assert_eq!(week["new"], new, "week {w}");
        assert_eq!(week["returning"], active(w) - new, "week {w}");
        if w >= 4 {
            let churned = (0..fleet.clusters)
                .filter(|i| {
                    fleet.active(*i, w - 4) && (w - 3..=w).all(|later| !fleet.active(*i, later))
                })
                .count() as i64;
            assert_eq!(week["churned"], churned, "week {w}");
        } else {
            assert!(
                week["churned"].is_null(),
                "no history to tell churn in week {w}"
            );
        }
        let nodes: i64 = (0..fleet.clusters)
            .filter(|i| fleet.active(*i, w))
            .map(|i| fleet.facts(i, w).archs.len() as i64)
            .sum();
        assert_eq!(week["nodes"], nodes, "week {w}");
    }
    assert_eq!(view["headline"]["week"], fleet.week(25).to_string());
    let churn: Vec<i64> = (4..26)
        .map(|w| view["weeks"][w]["churned"].as_i64().unwrap())
        .collect();
    assert!(churn.iter().filter(|n| **n > 0).count() >= 5, "{churn:?}");

    let architectures = expected(&fleet, |i, w| {
        fleet
            .facts(i, w)
            .archs
            .iter()
            .map(|a| a.to_string())
            .collect()
    });
    assert_eq!(answered(&view, fleet.weeks), architectures);
    assert!(architectures[20].contains_key("other"), "s390x is folded");

    let minors = expected(&fleet, |i, w| {
        vec![format!("v1.{}", fleet.facts(i, w).minor)]
    });
    assert_eq!(
        answered(&weekly("server-version-minor").await, fleet.weeks),
        minors
    );
    assert!(minors[19].contains_key("v1.30") && !minors[21].contains_key("v1.30"));

    let clouds = expected(&fleet, |i, w| vec![fleet.facts(i, w).cloud.to_string()]);
    assert_eq!(
        answered(&weekly("cloud-provider").await, fleet.weeks),
        clouds
    );
    let teams = expected(&fleet, |i, w| {
        let facts = fleet.facts(i, w);
        vec![facts.extensions[0].1.clone()]
    });
    assert_eq!(
        answered(&weekly("extension:example.com/team").await, fleet.weeks),
        teams
    );
    let keys = expected(&fleet, |i, w| {
        fleet
            .facts(i, w)
            .extensions
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    });
    assert_eq!(answered(&weekly("extension-keys").await, fleet.weeks), keys);
    let skew = expected(&fleet, |i, w| {
        let facts = fleet.facts(i, w);
        vec![(facts.minor - facts.kubelet_minor).to_string()]
    });
    assert_eq!(answered(&weekly("version-skew").await, fleet.weeks), skew);

    // The CSV says the same as the JSON, row by row.
    let csv = get_text(
        &client,
        &collector.admin_url(&format!(
            "/api/v1/stats/weekly?dimension=architecture&weeks={weeks}&format=csv"
        )),
    )
    .await;
    let mut rows = 0;
    for (w, values) in architectures.iter().enumerate() {
        let week = fleet.week(w as u32);
        for (value, clusters) in values {
            let row = format!(
                "{week},{},architecture,{value},{clusters},",
                week.start_date()
            );
            assert!(csv.contains(&row), "{row} missing from\n{csv}");
            rows += 1;
        }
    }
    let fleet_rows = 4 * weeks as usize;
    assert_eq!(csv.lines().count(), 1 + fleet_rows + rows);

    // The open data set: every dimension, every kept week, nothing rare by name.
    let export = get_text(&client, &collector.admin_url("/api/v1/stats/export")).await;
    let export_csv = get_text(
        &client,
        &collector.admin_url("/api/v1/stats/export?format=csv"),
    )
    .await;
    let dimensions = get_text(&client, &collector.admin_url("/api/v1/stats/dimensions")).await;
    for text in [&export, &export_csv, &dimensions, &csv] {
        for rare in ["s390x", "acme.corp", "ppc64le"] {
            let at = text.find(rare);
            assert!(
                at.is_none(),
                "{rare} is published: {}",
                &text[at.unwrap_or(0).saturating_sub(300)..(at.unwrap_or(0) + 100).min(text.len())]
            );
        }
    }
    let export: Value = serde_json::from_str(&export).unwrap();
    assert_eq!(export["weeks"].as_array().unwrap().len(), weeks as usize);
    let names: Vec<&str> = export["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"extension:example.com/team") && names.contains(&"objects-pods"));
    for (w, values) in minors.iter().enumerate() {
        let week = fleet.week(w as u32);
        for (value, clusters) in values {
            let row = format!(
                "{week},{},server-version-minor,{value},{clusters},",
                week.start_date()
            );
            assert!(export_csv.contains(&row), "{row} missing from the export");
        }
    }
}
