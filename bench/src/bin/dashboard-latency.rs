//! Latency of the dashboard: on the admin listener (drawn for each request) the overview over
//! each window and every dimension's page; on the public listener (`--public-stats`: drawn once
//! per rollup, then served from memory) the overview. One keep-alive connection, requests one
//! after another, warm. Prints JSON lines, the last one the summary.

use clap::Parser;
use hdrhistogram::Histogram;
use serde_json::json;

/// Measures the dashboard of a running collector.
#[derive(Parser)]
struct Args {
    /// The admin listener (host:port), without an admin token.
    #[arg(long)]
    admin: String,
    /// The public listener (host:port) of a collector started with `--public-stats`.
    #[arg(long)]
    public: String,
    /// Counted requests per page.
    #[arg(long, default_value_t = 50)]
    requests: u32,
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()?;
    let admin = format!("http://{}", args.admin);
    let names = bench::dimension_names(&client, &admin).await?;
    let windows = [12, 26, 52];
    let mut pages: Vec<(String, reqwest::Url)> = windows
        .iter()
        .map(|weeks| {
            let url = reqwest::Url::parse(&format!("{admin}/dashboard?weeks={weeks}"))?;
            Ok((format!("overview, {weeks} weeks"), url))
        })
        .collect::<anyhow::Result<_>>()?;
    for name in &names {
        let url = reqwest::Url::parse_with_params(
            &format!("{admin}/dashboard/dimension"),
            [("name", name.as_str())],
        )?;
        pages.push((name.clone(), url));
    }
    let mut overview = Histogram::<u64>::new(3)?;
    let mut dimensions = Histogram::<u64>::new(3)?;
    let mut worst = (0.0, String::new());
    for (index, (page, url)) in pages.iter().enumerate() {
        let (histogram, bytes) = bench::warm_latency(&client, url.clone(), args.requests).await?;
        if index < windows.len() {
            overview.add(&histogram)?;
        } else {
            dimensions.add(&histogram)?;
        }
        let p95 = ms(&histogram, 0.95);
        if p95 > worst.0 {
            worst = (p95, page.clone());
        }
        println!(
            "{}",
            json!({"page": page, "p50_ms": ms(&histogram, 0.5), "p95_ms": p95,
                   "max_ms": histogram.max() as f64 / 1000.0, "bytes": bytes})
        );
    }
    let public = reqwest::Url::parse(&format!("http://{}/dashboard", args.public))?;
    let (cached, cached_bytes) = bench::warm_latency(&client, public, args.requests * 4).await?;
    println!(
        "{}",
        json!({
            "pages": pages.len(),
            "overview": {"p50_ms": ms(&overview, 0.5), "p95_ms": ms(&overview, 0.95), "max_ms": overview.max() as f64 / 1000.0},
            "dimension_pages": {"p50_ms": ms(&dimensions, 0.5), "p95_ms": ms(&dimensions, 0.95), "max_ms": dimensions.max() as f64 / 1000.0},
            "worst_page_p95": {"page": worst.1, "p95_ms": worst.0},
            "public_cached": {"p50_ms": ms(&cached, 0.5), "p95_ms": ms(&cached, 0.95), "max_ms": cached.max() as f64 / 1000.0, "bytes": cached_bytes},
        })
    );
    Ok(())
}
