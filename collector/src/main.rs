//! Entry point of the collector binary: flags, logging, signals; everything else is in the library.

use std::process::ExitCode;

use clap::Parser;
use collector::Config;
use common::cli::{init_logging, shutdown_signal};

/// mimalloc: the ingest path allocates many small strings per report, and glibc's allocator
/// spent about a sixth of the handler's CPU time on them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let config = Config::parse();
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("collector: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(collector::run(config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "collector stopped");
            ExitCode::FAILURE
        }
    }
}
