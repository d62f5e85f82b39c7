//! The OpenAPI contract, tested from outside: schemathesis (PyPI, pinned, installed by
//! `tests/schemathesis/setup.sh`) runs every check against both listeners of a running collector,
//! each listener through the document it serves. Failures are dropped only for the rules
//! `tests/schemathesis/exclusions.txt` lists (by `tests/schemathesis/hooks.py`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use e2e::{Collector, binary, installed_program, now, post_reports, wait_for, without_rate_limits};
use tokio::process::Command;

const ADMIN_TOKEN: &str = "contract-admin-token-4f1c9e";
/// Test cases per operation and phase; `SCHEMATHESIS_MAX_EXAMPLES` overrides it.
const MAX_EXAMPLES: &str = "100";
/// The seed of the run, so a failure found in CI reproduces; `SCHEMATHESIS_SEED` overrides it.
const SEED: &str = "20261202";
/// Longest a run against one listener may take.
const RUN_DEADLINE: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_listeners_keep_the_contract_of_their_documents() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("admin-token");
    std::fs::write(&token, ADMIN_TOKEN).unwrap();
    // A sink that never answers keeps deliveries pending, so the delivery listing has pages.
    let config = dir.path().join("sinks.toml");
    std::fs::write(
        &config,
        "[[sink]]\nname = \"unreachable\"\ntype = \"http\"\nendpoint = \"http://127.0.0.1:9\"\n",
    )
    .unwrap();
    let (token, config) = (token.display().to_string(), config.display().to_string());
    let args = without_rate_limits(&[
        "--admin-token-file",
        &token,
        "--config",
        &config,
        "--public-stats",
    ]);
    let collector = Collector::start(&binary("collector"), &dir.path().join("data"), &args).await;

    let client = reqwest::Client::new();
    let clusters = (0..20)
        .map(|_| (uuid::Uuid::new_v4().to_string(), now()))
        .collect();
    let url = collector.public_url("/api/v1");
    let acked = post_reports(&client, &url, clusters, 4, Arc::new(AtomicUsize::new(0))).await;
    assert_eq!(acked.len(), 20);
    // The statistics answer 503 until the first rollup after startup has published.
    wait_for("the weekly statistics", Duration::from_secs(30), || async {
        let response = client
            .get(collector.public_url("/api/v1/stats/dimensions"))
            .send()
            .await
            .ok()?;
        (response.status() == 200).then_some(())
    })
    .await;

    let program = installed_program("SCHEMATHESIS", "schemathesis/setup.sh");
    let public = run(
        &program,
        dir.path(),
        &collector.public_url("/openapi.json"),
        &[],
    )
    .await;
    let authorization = format!("Authorization: Bearer {ADMIN_TOKEN}");
    let admin = run(
        &program,
        dir.path(),
        &collector.admin_url("/openapi.json"),
        &["-H", &authorization],
    )
    .await;
    // Every operation was reached, with the cases it generated for each (not a vacuous pass).
    for (listener, output, operations) in [("public", &public, 7), ("admin", &admin, 11)] {
        assert!(
            output.contains(&format!("Tested: {operations}")),
            "{listener}: not every operation was tested:\n{output}"
        );
        let generated = output
            .lines()
            .find_map(|line| line.trim().split_once(" generated"))
            .and_then(|(count, _)| count.parse::<u32>().ok())
            .unwrap_or_else(|| panic!("{listener}: no count of test cases:\n{output}"));
        assert!(
            generated >= 20 * operations,
            "{listener}: {generated} test cases:\n{output}"
        );
    }
}

/// Runs schemathesis with every check against the document at `url`, and returns its output; a
/// failure fails the test with that output.
async fn run(program: &Path, dir: &Path, url: &str, extra: &[&str]) -> String {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemathesis");
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &hooks)
        .env("NO_COLOR", "1")
        .args(["run", url, "--checks", "all", "--no-color"])
        .args([
            "--max-examples",
            &env("SCHEMATHESIS_MAX_EXAMPLES", MAX_EXAMPLES),
        ])
        .args(["--seed", &env("SCHEMATHESIS_SEED", SEED)])
        .args(["--generation-database", "none", "--request-timeout", "30"])
        .args(extra)
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_DEADLINE, command.output())
        .await
        .unwrap_or_else(|_| panic!("schemathesis against {url} took over {RUN_DEADLINE:?}"))
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found failures against {url}:\n{text}"
    );
    text
}
