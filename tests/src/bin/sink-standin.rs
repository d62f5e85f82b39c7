//! Serves the Segment stand-in (see `e2e::sink_standins`) for benchmarks and manual runs, with
//! what it received as JSON at `GET /stats` on a second port.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use clap::Parser;
use e2e::sink_standins::Segment;
use serde_json::{Value, json};

/// Segment's HTTP API stand-in.
#[derive(Parser)]
struct Args {
    /// Write key it accepts.
    #[arg(long, default_value = "bench-write-key")]
    write_key: String,
    /// Address of the statistics listener.
    #[arg(long, default_value = "127.0.0.1:0")]
    stats_listen: std::net::SocketAddr,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (segment, url) = Segment::start(&args.write_key).await;
    let stats = tokio::net::TcpListener::bind(args.stats_listen).await?;
    println!("segment {url} stats http://{}", stats.local_addr()?);
    let router = Router::new()
        .route("/stats", get(statistics))
        .with_state(segment);
    axum::serve(stats, router).await?;
    Ok(())
}

async fn statistics(State(segment): State<Arc<Segment>>) -> axum::Json<Value> {
    let batches = segment.batches();
    let bytes: Vec<usize> = batches.iter().map(|b| b.bytes).collect();
    let mut lags = segment.lags();
    lags.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        lags.get(((lags.len() as f64 * q) as usize).min(lags.len().saturating_sub(1)))
            .copied()
    };
    axum::Json(json!({
        "batches": batches.len(),
        "events": segment.events().len(),
        "distinct": segment.message_ids().len(),
        "bytes": bytes.iter().sum::<usize>(),
        "max_batch_bytes": bytes.iter().max(),
        "refused": segment.refused().len(),
        "lag_mean_s": if lags.is_empty() { None } else { Some(lags.iter().sum::<f64>() / lags.len() as f64) },
        "lag_p50_s": quantile(0.5),
        "lag_max_s": lags.last(),
    }))
}
