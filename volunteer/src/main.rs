//! Entry point of the volunteer binary: flags, logging, the Kubernetes client, signals.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use common::cli::{init_logging, shutdown_signal};
use volunteer::metrics::Metrics;
use volunteer::{Config, Finished, Volunteer, rbac};

fn main() -> ExitCode {
    let config = Config::parse();
    init_logging(config.log_format);
    if let Err(error) = config.check() {
        tracing::error!(%error, "invalid flags");
        return ExitCode::from(2);
    }
    if config.print_rbac {
        let document = rbac::document(&config);
        println!("{}", serde_json::to_string_pretty(&document).expect("JSON"));
        return ExitCode::SUCCESS;
    }
    // kube and reqwest both use rustls with ring; make it the process default explicitly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // One thread: the volunteer waits on the network almost all the time.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("volunteer: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(Finished::Ok) => ExitCode::SUCCESS,
        Ok(Finished::Undelivered) => ExitCode::FAILURE,
        Err(error) => {
            let error = common::error_chain(error.as_ref());
            tracing::error!(%error, "volunteer stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<Finished> {
    let kube_config = kube::Config::infer().await?;
    let client = kube::Client::try_from(kube_config)?;
    let metrics = Arc::new(Metrics::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let server = match config.metrics_listen {
        Some(address) => {
            Some(volunteer::metrics::serve(address, metrics.clone(), stopped.clone()).await?)
        }
        None => None,
    };
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping");
        let _ = stop.send(true);
    });
    let volunteer = Volunteer::new(config, client, metrics)?;
    let finished = volunteer.run(stopped).await?;
    if let Some(server) = server {
        server.abort();
    }
    Ok(finished)
}
