//! Writes a synthetic fleet's history as import lines (NDJSON) on standard output, for
//! `POST /api/v1/import`: `synthetic-fleet --clusters 1000 --weeks 26 | curl -X POST -T - ...`.

use std::io::{BufWriter, Write};

use clap::Parser;
use e2e::fleet::Fleet;

/// Writes a synthetic fleet (see `tests/src/fleet.rs`) as NDJSON on standard output.
#[derive(Parser)]
struct Args {
    /// Clusters.
    #[arg(long, default_value_t = 1000)]
    clusters: u32,
    /// Weeks of history, ending with the last complete week.
    #[arg(long, default_value_t = 26)]
    weeks: u32,
    /// Reports per cluster and active week (the last one counts).
    #[arg(long, default_value_t = 2)]
    reports_per_week: u32,
    /// Most nodes a cluster has.
    #[arg(long, default_value_t = 20)]
    max_nodes: u32,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let fleet = Fleet {
        clusters: args.clusters,
        weeks: args.weeks,
        reports_per_week: args.reports_per_week.max(1),
        max_nodes: args.max_nodes.max(1),
        now: common::time::unix_now(),
    };
    let stdout = std::io::stdout();
    let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
    let lines = fleet.write(&mut out)?;
    out.flush()?;
    eprintln!("{lines} lines");
    Ok(())
}
