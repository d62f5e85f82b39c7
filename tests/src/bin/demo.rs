//! The dashboard with data in one command: starts a collector on a temporary store, imports a
//! synthetic fleet's history through `POST /api/v1/import`, prints the dashboard's address and
//! serves until Ctrl-C or SIGTERM (the store is removed then).
//!
//! `cargo run --release -p e2e --bin demo`

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use collector::Config;
use e2e::fleet::Fleet;
use tokio::net::TcpListener;

/// Starts a collector with a synthetic fleet's history, for a look at the dashboard.
#[derive(Parser)]
struct Args {
    /// Clusters in the synthetic fleet.
    #[arg(long, default_value_t = 600)]
    clusters: u32,
    /// Weeks of history, ending with the last complete week.
    #[arg(long, default_value_t = 26)]
    weeks: u32,
    /// The admin listener (the dashboard, no token: keep it on loopback).
    #[arg(long, default_value = "127.0.0.1:9090")]
    admin_listen: SocketAddr,
    /// The public listener (ingest, and the public dashboard: `--public-stats`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Exit once the fleet is imported and the dashboard answers, instead of serving until
    /// Ctrl-C (for tests).
    #[arg(long)]
    exit_when_ready: bool,
}

/// Binds `addr`, or any free port on its host when it is taken.
async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(listener) => Ok(listener),
        Err(_) => TcpListener::bind(SocketAddr::new(addr.ip(), 0))
            .await
            .with_context(|| format!("cannot listen on {}", addr.ip())),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.admin_listen.ip().is_loopback() {
        bail!("the demo's admin listener has no token: give it a loopback address");
    }
    let store = tempfile::Builder::new()
        .prefix("collector-demo-")
        .tempdir()?;
    let data_dir = store
        .path()
        .to_str()
        .context("a temporary directory that is UTF-8")?;
    let config = Config::parse_from([
        "collector",
        "--data-dir",
        data_dir,
        "--public-stats",
        "--stats-rollup-interval",
        "0",
    ]);
    let state = collector::open(&config, &[]).await?;
    eprintln!("demo: a temporary store in {data_dir}");
    let public = bind(args.listen).await?;
    let admin = bind(args.admin_listen).await?;
    let (public_addr, admin_addr) = (public.local_addr()?, admin.local_addr()?);
    let options = collector::ServeOptions {
        connections: collector::listener::ConnectionSettings {
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
            max_connections: collector::ADMIN_CONNECTIONS,
        },
        retention: config.retention,
        stats_rollup_interval: config.stats_rollup_interval,
        delivery: collector::delivery::DeliverySettings {
            max_age: config.max_delivery_age,
            max_backoff: config.delivery_max_backoff,
        },
        tls: None,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(collector::serve(public, admin, state, options, async {
        let _ = stopped.await;
    }));

    let started = Instant::now();
    let fleet = Fleet {
        clusters: args.clusters,
        weeks: args.weeks,
        reports_per_week: 1,
        max_nodes: 15,
        now: common::time::unix_now(),
    };
    let mut lines = Vec::new();
    fleet.write(&mut lines)?;
    eprintln!(
        "demo: importing {} clusters over {} weeks ({:.1} MB of reports)…",
        args.clusters,
        args.weeks,
        lines.len() as f64 / 1e6
    );
    let client = reqwest::Client::new();
    let answer = client
        .post(format!("http://{admin_addr}/api/v1/import"))
        .header("content-type", "application/x-ndjson")
        .body(lines)
        .send()
        .await?;
    let status = answer.status();
    let summary: serde_json::Value = answer.json().await?;
    if !status.is_success() {
        bail!("the import failed ({status}): {summary}");
    }
    let dashboard = format!("http://{admin_addr}/dashboard");
    let page = client.get(&dashboard).send().await?;
    if !page.status().is_success() {
        bail!("the dashboard answered {}", page.status());
    }
    eprintln!(
        "demo: {} reports stored in {:.1} s",
        summary["stored"],
        started.elapsed().as_secs_f64()
    );
    println!("Dashboard:        {dashboard}");
    println!("Public dashboard: http://{public_addr}/dashboard");
    println!("Open data:        http://{public_addr}/api/v1/stats/export?format=csv");
    if !args.exit_when_ready {
        eprintln!("demo: serving until Ctrl-C (the temporary store is removed then)");
        common::cli::shutdown_signal().await;
    }
    let _ = stop.send(());
    server.await??;
    drop(store);
    Ok(())
}
