//! The README's demo command: the built `demo` binary starts a collector with a synthetic fleet,
//! prints the dashboard's address, serves a dashboard with the fleet on it, and on SIGTERM stops
//! and removes its temporary store.

use std::process::Stdio;
use std::time::Duration;

use e2e::{binary, readme, sigterm};
use tokio::io::{AsyncBufReadExt, BufReader};

const COMMAND: &str = "cargo run --release -p e2e --bin demo";

#[tokio::test]
async fn the_demo_serves_a_dashboard_with_a_fleet_and_cleans_up() {
    assert!(readme().contains(COMMAND), "the README shows {COMMAND:?}");
    let mut demo = tokio::process::Command::new(binary("demo"))
        .args(["--clusters", "60", "--weeks", "8"])
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(demo.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(demo.stderr.take().unwrap()).lines();
    let (dashboard, store) = tokio::time::timeout(Duration::from_secs(120), async {
        let mut store = None;
        while let Some(line) = stderr.next_line().await.unwrap() {
            if let Some(path) = line.strip_prefix("demo: a temporary store in ") {
                store = Some(std::path::PathBuf::from(path));
                break;
            }
        }
        let mut dashboard = None;
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("Dashboard:") {
                dashboard = Some(url.trim().to_string());
                break;
            }
        }
        (
            dashboard.expect("the dashboard's address"),
            store.expect("the store's path"),
        )
    })
    .await
    .expect("the demo is ready within two minutes");
    assert!(store.exists());

    let page = reqwest::get(&dashboard).await.unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Active clusters"), "{page}");
    assert!(page.contains("v1.31"), "the fleet's versions are drawn");
    let export = reqwest::get(dashboard.replace("/dashboard", "/api/v1/stats/export"))
        .await
        .unwrap();
    let export: serde_json::Value = export.json().await.unwrap();
    assert_eq!(export["weeks"].as_array().unwrap().len(), 8, "{export}");

    sigterm(&demo);
    let status = tokio::time::timeout(Duration::from_secs(30), demo.wait())
        .await
        .expect("the demo stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(!store.exists(), "{} is left behind", store.display());
}
