//! The README's ten-minute path and its "What leaves your cluster" example, run command by command
//! from their `sh` blocks, in order and from the clone's directory. What differs from a reader's
//! paste, and why it is safe: the build is the test suite's own (this test checks that the
//! documented build makes every binary the path runs), the binaries are its debug ones, the
//! collector listens on free ports instead of its defaults (this test checks that the defaults are
//! the 8080 and 9090 the commands name) with its data in a scratch directory, and `/tmp/` is that
//! scratch directory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{Collector, binary, code_blocks, free_address, readme_section as section, workspace};
use serde_json::Value;

/// How long one command may take.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);

/// The commands of `sh` blocks: continued lines joined, comments and blank lines left out.
fn commands(text: &str) -> Vec<String> {
    let mut commands = Vec::new();
    for block in code_blocks(text, "sh") {
        let mut current = String::new();
        for line in block.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.strip_suffix('\\') {
                Some(start) => current.push_str(start),
                None => {
                    current.push_str(line);
                    commands.push(std::mem::take(&mut current));
                }
            }
        }
    }
    commands
}

/// A shell for the README's commands, on this machine's free ports and a scratch directory; the
/// background processes it started are stopped when it is dropped.
struct Shell {
    binaries: PathBuf,
    scratch: tempfile::TempDir,
    public: String,
    admin: String,
    background: Vec<u32>,
    collector: Option<Collector>,
}

impl Shell {
    fn new() -> Shell {
        Shell {
            binaries: binary("collector").parent().unwrap().to_owned(),
            scratch: tempfile::tempdir().unwrap(),
            public: free_address(),
            admin: free_address(),
            background: Vec::new(),
            collector: None,
        }
    }

    /// The command as it runs here (the scratch directory first: the binaries may well live
    /// under `/tmp/` themselves).
    fn rewrite(&self, command: &str) -> String {
        command
            .replace("/tmp/", &format!("{}/", self.scratch.path().display()))
            .replace("target/release/", &format!("{}/", self.binaries.display()))
            .replace("127.0.0.1:8080", &self.public)
            .replace("127.0.0.1:9090", &self.admin)
    }

    /// Runs one command; returns what it printed. `target/release/collector` starts the
    /// collector in the background (where the README's reader keeps it in the foreground).
    async fn run(&mut self, command: &str) -> String {
        if command == "target/release/collector" {
            let mut collector = tokio::process::Command::new(self.binaries.join("collector"));
            collector
                .current_dir(self.scratch.path())
                .args(["--listen", &self.public, "--admin-listen", &self.admin])
                .args(["--log-format", "json"]);
            let started = Collector::spawn(collector).await.unwrap_or_else(|log| {
                panic!(
                    "{command}: the collector did not start:\n{}",
                    log.join("\n")
                )
            });
            self.collector = Some(started);
            return String::new();
        }
        let line = self.rewrite(command);
        let mut shell = tokio::process::Command::new("sh");
        shell.arg("-c").arg(&line).current_dir(workspace());
        let (code, stdout, stderr) = e2e::run_captured(shell, COMMAND_DEADLINE).await;
        assert_eq!(code, Some(0), "{line}\n{stdout}\n{stderr}");
        if let Some(pid) = stdout.split("kill ").nth(1) {
            self.background
                .push(pid.trim().parse().expect("the printed pid"));
        }
        stdout
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        for pid in &self.background {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
    }
}

#[tokio::test]
async fn the_ten_minute_path_works_as_written() {
    let commands = commands(&section("## Ten minutes from a fresh clone"));
    assert_builds_what_runs(&commands);
    assert_collector_defaults();
    let mut shell = Shell::new();
    let mut printed = Vec::new();
    // The build is the test suite's own (`cargo build --workspace --bins`).
    for command in &commands[1..] {
        printed.push((command.clone(), shell.run(command).await));
    }
    let output = |wanted: &str| -> Vec<&String> {
        printed
            .iter()
            .filter(|(command, _)| command.contains(wanted))
            .map(|(_, output)| output)
            .collect()
    };
    let spartakus = output("spartakus-readme.json");
    assert!(spartakus[0].contains("204 No Content"), "{}", spartakus[0]);
    let clusters = output("/api/v1/clusters");
    let before: Value = serde_json::from_str(clusters[0]).unwrap();
    let after: Value = serde_json::from_str(clusters.last().unwrap()).unwrap();
    assert_eq!(before["clusters"].as_array().unwrap().len(), 1, "{before}");
    assert_eq!(
        after["clusters"].as_array().unwrap().len(),
        2,
        "the volunteer's cluster too: {after}"
    );
    let dry_run: common::Report = serde_json::from_str(output("--dry-run")[0]).unwrap();
    assert_eq!(dry_run.nodes.len(), 5, "the stand-in's five nodes");
    let stats: Value = serde_json::from_str(output("stats?window=30d")[0]).unwrap();
    assert_eq!(stats["clusters"], 1);
    assert!(shell.collector.is_some() && !shell.background.is_empty());
}

/// The path's first command is its one build, and it builds every binary the others run.
fn assert_builds_what_runs(commands: &[String]) {
    let build = &commands[0];
    assert!(
        build.starts_with("cargo build --release") && build.contains("--bins"),
        "the path starts with its one build: {commands:?}"
    );
    let words: Vec<&str> = build.split_whitespace().collect();
    let packages: Vec<&str> = words
        .windows(2)
        .filter(|pair| pair[0] == "-p")
        .map(|pair| pair[1])
        .collect();
    for (binary, package) in [
        ("collector", "collector"),
        ("volunteer", "volunteer"),
        ("kube-standin", "e2e"),
    ] {
        let used = commands[1..]
            .iter()
            .any(|command| command.contains(&format!("target/release/{binary}")));
        assert!(
            !used || packages.contains(&package),
            "{binary} runs, but the build ({build}) does not build {package}"
        );
    }
}

/// The ports and data directory the path's commands assume are the collector's defaults.
fn assert_collector_defaults() {
    use clap::Parser;
    let defaults = collector::Config::try_parse_from(["collector"]).unwrap();
    assert_eq!(defaults.listen.port(), 8080);
    assert_eq!(defaults.admin_listen.to_string(), "127.0.0.1:9090");
    assert_eq!(defaults.data_dir, Path::new("./data"));
}

#[tokio::test]
async fn the_example_report_is_what_its_command_prints() {
    let text = section("## What leaves your cluster");
    let commands = commands(&text);
    let example = &code_blocks(&text, "json")[0];
    let mut shell = Shell::new();
    let mut printed = String::new();
    for command in &commands {
        printed = shell.run(command).await;
    }
    let (documented, real) = (normalized(example), normalized(&printed));
    assert_eq!(
        documented.0, real.0,
        "the README's example is not what the command prints (but for time and ages)"
    );
    // Ages grow while the stand-in runs: by at most a bucket (about 9%) here.
    for (was, is) in documented.1.iter().zip(&real.1) {
        assert!(
            was <= is && *is <= was + (was / 10).max(10),
            "{documented:?}\n{real:?}"
        );
    }
}

/// The report's text with its timestamp and ages blanked, and its ages in order.
fn normalized(report: &str) -> (String, Vec<i64>) {
    let mut ages = Vec::new();
    let lines: Vec<String> = report
        .trim_end()
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("\"timestamp\"") {
                "  \"timestamp\": …,".to_string()
            } else if let Some((head, tail)) = line.split_once("\"ageSeconds\": ") {
                let value: Value = serde_json::from_str(tail).unwrap();
                ages.extend(["p50", "p90", "p99", "max"].map(|p| value[p].as_i64().unwrap()));
                format!("{head}\"ageSeconds\": …")
            } else {
                line.to_string()
            }
        })
        .collect();
    (lines.join("\n"), ages)
}
