//! Latency of the weekly statistics: `GET /api/v1/stats/weekly` for every dimension the
//! collector lists, one keep-alive connection, requests one after another (warm: a few first
//! requests per dimension are not counted); then the export. Prints JSON lines.

use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::json;

/// Measures the weekly statistics endpoints of a running collector.
#[derive(Parser)]
struct Args {
    /// The admin listener (host:port).
    #[arg(long)]
    target: String,
    /// Counted requests per dimension.
    #[arg(long, default_value_t = 100)]
    requests: u32,
    /// `weeks=` of each request.
    #[arg(long, default_value_t = 26)]
    weeks: u32,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let base = format!("http://{}", args.target);
    let names = bench::dimension_names(&client, &base).await?;
    let mut all = Histogram::<u64>::new(3)?;
    let mut worst = (0.0, String::new());
    for name in &names {
        let url = reqwest::Url::parse_with_params(
            &format!("{base}/api/v1/stats/weekly"),
            [
                ("dimension", name.as_str()),
                ("weeks", &args.weeks.to_string()),
            ],
        )?;
        let (histogram, bytes) = bench::warm_latency(&client, url, args.requests).await?;
        all.add(&histogram)?;
        let p95 = histogram.value_at_quantile(0.95) as f64 / 1000.0;
        if p95 > worst.0 {
            worst = (p95, name.clone());
        }
        println!(
            "{}",
            json!({
                "dimension": name,
                "p50_ms": histogram.value_at_quantile(0.5) as f64 / 1000.0,
                "p95_ms": p95,
                "max_ms": histogram.max() as f64 / 1000.0,
                "bytes": bytes,
            })
        );
    }
    let export = |format: &'static str| {
        let client = client.clone();
        let url = format!("{base}/api/v1/stats/export?format={format}");
        async move {
            let started = Instant::now();
            let body = client
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            Ok::<(Duration, usize), anyhow::Error>((started.elapsed(), body.len()))
        }
    };
    let (first_json, json_bytes) = export("json").await?;
    let (second_json, _) = export("json").await?;
    let (first_csv, csv_bytes) = export("csv").await?;
    println!(
        "{}",
        json!({
            "dimensions": names.len(),
            "requests": all.len(),
            "p50_ms": all.value_at_quantile(0.5) as f64 / 1000.0,
            "p95_ms": all.value_at_quantile(0.95) as f64 / 1000.0,
            "max_ms": all.max() as f64 / 1000.0,
            "worst_dimension_p95": {"dimension": worst.1, "p95_ms": worst.0},
            "export_json_first_ms": first_json.as_secs_f64() * 1000.0,
            "export_json_again_ms": second_json.as_secs_f64() * 1000.0,
            "export_json_bytes": json_bytes,
            "export_csv_first_ms": first_csv.as_secs_f64() * 1000.0,
            "export_csv_bytes": csv_bytes,
        })
    );
    Ok(())
}
