//! Serves a synthetic Kubernetes cluster (see `e2e::kube_standin`) for benchmarks and manual
//! runs, and writes a kubeconfig that points at it.

use std::path::PathBuf;

use clap::Parser;
use e2e::kube_standin::{self, ClusterSize, Faults, StandIn};

/// A Kubernetes API server stand-in with a synthetic cluster.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
    /// Nodes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// Namespaces.
    #[arg(long, default_value_t = 10)]
    namespaces: usize,
    /// Pods (the other kinds scale from pods and namespaces).
    #[arg(long, default_value_t = 100)]
    pods: usize,
    /// Write a kubeconfig pointing at the stand-in here.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let size = ClusterSize {
        nodes: args.nodes,
        namespaces: args.namespaces,
        pods: args.pods,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    if let Some(path) = &args.kubeconfig {
        std::fs::write(path, kube_standin::kubeconfig(address))?;
    }
    println!("kube-standin listening on {address}");
    kube_standin::serve(listener, StandIn::new(size, Faults::default())).await;
    Ok(())
}
