//! Benchmark tools for the collector: `loadgen` (closed- and open-loop HTTP load) and
//! `noop-server` (the HTTP ceiling of the machine), and what the latency tools share. See
//! `bench/run.sh`, `bench/weekly.sh` and BENCHMARKS.md.

use std::time::Instant;

use hdrhistogram::Histogram;

/// Requests before the counted ones, to warm caches and the connection.
pub const WARMUP_REQUESTS: u32 = 5;

/// `GET url` `requests` times one after another on `client`'s keep-alive connection, after
/// [`WARMUP_REQUESTS`] uncounted ones: each answer's latency in microseconds (an answer other
/// than 2xx is an error), and the size of the last body.
pub async fn warm_latency(
    client: &reqwest::Client,
    url: reqwest::Url,
    requests: u32,
) -> anyhow::Result<(Histogram<u64>, usize)> {
    let mut histogram = Histogram::<u64>::new(3)?;
    let mut bytes = 0;
    for round in 0..requests + WARMUP_REQUESTS {
        let started = Instant::now();
        let body = client
            .get(url.clone())
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        let micros = started.elapsed().as_micros() as u64;
        bytes = body.len();
        if round >= WARMUP_REQUESTS {
            histogram.record(micros)?;
        }
    }
    Ok((histogram, bytes))
}

/// The dimensions a collector's admin listener at `base` (`http://host:port`) lists.
pub async fn dimension_names(client: &reqwest::Client, base: &str) -> anyhow::Result<Vec<String>> {
    let listed: serde_json::Value = client
        .get(format!("{base}/api/v1/stats/dimensions"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let names = listed["dimensions"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("no dimensions listed"))?
        .iter()
        .filter_map(|d| d["name"].as_str().map(str::to_string))
        .collect();
    Ok(names)
}
