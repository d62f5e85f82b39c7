//! A synthetic fleet with known shares over past weeks, as import lines (NDJSON): for the
//! end-to-end test of the weekly statistics, the benchmark, and demos.
//!
//! Cluster `i` (from 0) joins in week `i % 13`; one in ten leaves four weeks later; one in seven
//! skips its second week. Its facts are fixed functions of `i` (and of the week, for an upgrade
//! in week 20), so a test computes the expected numbers from the same model. Each active week
//! holds `reports_per_week` reports; every one but the last has other facts (ppc64le nodes,
//! v1.28), which must never show: a week counts a cluster's latest report. Even clusters are
//! written as records of the JSON-lines sink, odd ones as bare Spartakus reports.

use std::io::{self, Write};

use collector::stats::Week;
use serde_json::{Value, json};

/// The fleet's shape.
#[derive(Debug, Clone, Copy)]
pub struct Fleet {
    /// Clusters.
    pub clusters: u32,
    /// Weeks of history, ending with the last complete week.
    pub weeks: u32,
    /// Reports per cluster and active week.
    pub reports_per_week: u32,
    /// Most nodes a cluster has (cluster `i` has `1 + i % max_nodes`).
    pub max_nodes: u32,
    /// The clock the weeks are counted back from (unix seconds).
    pub now: i64,
}

/// What a cluster's latest report of a week says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// API server minor version (`v1.<minor>.<patch>`).
    pub minor: u32,
    /// Architecture of each node.
    pub archs: Vec<&'static str>,
    /// Kubelet minor version (the same for every node).
    pub kubelet_minor: u32,
    /// OS image of every node.
    pub os_image: &'static str,
    /// Cloud provider of every node.
    pub cloud: &'static str,
    /// Namespaces (records only; Spartakus reports have none).
    pub namespaces: Option<i64>,
    /// Extensions.
    pub extensions: Vec<(String, String)>,
}

impl Fleet {
    /// The week `w` (0 is the oldest; `weeks - 1` the last complete one).
    pub fn week(&self, w: u32) -> Week {
        Week::of(self.now).plus(i64::from(w) - i64::from(self.weeks))
    }

    /// Cluster `i`'s id.
    pub fn cluster_id(i: u32) -> String {
        uuid::Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0000 + u128::from(i)).to_string()
    }

    /// Whether cluster `i` reports in week `w`.
    pub fn active(&self, i: u32, w: u32) -> bool {
        let first = i % 13;
        let last = if i % 10 == 9 { first + 4 } else { u32::MAX };
        let skipped = i % 7 == 3 && w == first + 1;
        (first..=last).contains(&w) && !skipped
    }

    /// What cluster `i`'s latest report of week `w` says.
    pub fn facts(&self, i: u32, w: u32) -> Facts {
        let minor = match i % 10 {
            0..=4 => 31,
            5..=7 if w >= 20 => 31,
            5..=7 => 30,
            _ => 29,
        };
        let nodes = 1 + i % self.max_nodes;
        let mut archs: Vec<&'static str> = (0..nodes)
            .map(|j| {
                if (i + j).is_multiple_of(5) {
                    "arm64"
                } else {
                    "amd64"
                }
            })
            .collect();
        if (1..=3).contains(&i) {
            archs[0] = "s390x"; // three clusters: fewer than the minimum group size
        }
        let mut extensions = vec![("example.com/team".to_string(), format!("team-{}", i % 4))];
        if i == 5 || i == 6 {
            extensions.push(("acme.corp/internal".to_string(), "yes".to_string()));
        }
        Facts {
            minor,
            archs,
            kubelet_minor: if i % 4 == 3 { minor - 1 } else { minor },
            os_image: ["ubuntu 22.04", "debian 12", "amazonlinux 2023"][(i % 3) as usize],
            cloud: ["aws", "gce", "azure", "unknown"][(i % 4) as usize],
            namespaces: i.is_multiple_of(2).then_some(5 + i64::from(i % 30)),
            extensions,
        }
    }

    /// Writes every report, week by week; returns how many lines.
    pub fn write(&self, out: &mut impl Write) -> io::Result<u64> {
        let mut lines = 0;
        for w in 0..self.weeks {
            for i in 0..self.clusters {
                if !self.active(i, w) {
                    continue;
                }
                for r in 0..self.reports_per_week {
                    let latest = r + 1 == self.reports_per_week;
                    let at =
                        self.week(w).start() + 3_600 * i64::from(1 + i % 150) + 60 * i64::from(r);
                    serde_json::to_writer(&mut *out, &self.line(i, w, at, latest))?;
                    out.write_all(b"\n")?;
                    lines += 1;
                }
            }
        }
        Ok(lines)
    }

    fn line(&self, i: u32, w: u32, at: i64, latest: bool) -> Value {
        let mut facts = self.facts(i, w);
        if !latest {
            facts.minor = 28;
            facts.kubelet_minor = 28;
            facts.archs.iter_mut().for_each(|arch| *arch = "ppc64le");
        }
        let nodes: Vec<Value> = facts
            .archs
            .iter()
            .enumerate()
            .map(|(j, arch)| {
                json!({
                    "id": format!("{:016x}{:016x}", i + 1, j + 1),
                    "operatingSystem": "linux",
                    "osImage": facts.os_image,
                    "architecture": arch,
                    "containerRuntimeVersion": "containerd://1.7.11",
                    "kubeletVersion": format!("v1.{}.3", facts.kubelet_minor),
                    "cloudProvider": facts.cloud,
                })
            })
            .collect();
        let extensions: Vec<Value> = facts
            .extensions
            .iter()
            .map(|(name, value)| json!({"name": name, "value": value}))
            .collect();
        let mut report = json!({
            "version": if i.is_multiple_of(2) { "v1.1.0" } else { "v1.0.0" },
            "timestamp": at.to_string(),
            "clusterID": Self::cluster_id(i),
            "masterVersion": format!("v1.{}.{}", facts.minor, i % 5),
            "nodes": nodes,
            "extensions": extensions,
        });
        if let Some(namespaces) = facts.namespaces {
            report["namespaces"] = json!(namespaces);
        }
        if i.is_multiple_of(2) {
            json!({"receivedAt": common::time::rfc3339(at), "report": report})
        } else {
            report
        }
    }
}
