//! Serves a synthetic Kubernetes cluster (see `e2e::kube_standin`) for benchmarks and manual
//! runs, and writes a kubeconfig that points at it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use e2e::kube_standin::{self, ClusterSize, Faults, StandIn};

/// How long `--background` waits for the server to be up.
const START_DEADLINE: Duration = Duration::from_secs(30);

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
    /// Write a kubeconfig pointing at the stand-in here (once it listens).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Serve from a background process, and return once it listens and the kubeconfig is
    /// written (needs `--kubeconfig`); prints the process id to stop it with.
    #[arg(long)]
    background: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.background {
        let Some(kubeconfig) = &args.kubeconfig else {
            bail!("--background needs --kubeconfig: it is how the background server says it is up");
        };
        return detach(kubeconfig);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(args))
}

/// Serves the cluster until killed.
async fn serve(args: Args) -> anyhow::Result<()> {
    let size = ClusterSize {
        nodes: args.nodes,
        namespaces: args.namespaces,
        pods: args.pods,
    };
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    if let Some(path) = &args.kubeconfig {
        // Written whole, then renamed: whoever waits for the file never reads half of it.
        let partial = with_suffix(path, ".partial");
        std::fs::write(&partial, kube_standin::kubeconfig(address))?;
        std::fs::rename(&partial, path)?;
    }
    println!("kube-standin listening on {address}");
    kube_standin::serve(listener, StandIn::new(size, Faults::default())).await;
    Ok(())
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Runs this program again without `--background`, detached (its errors go to
/// `<kubeconfig>.log`), and waits for its kubeconfig.
fn detach(kubeconfig: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(kubeconfig) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error).context(format!("removing {}", kubeconfig.display())),
    }
    let arguments = std::env::args_os()
        .skip(1)
        .filter(|argument| argument != "--background");
    let log_path = with_suffix(kubeconfig, ".log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut child = Command::new(std::env::current_exe()?)
        .args(arguments)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("starting the background server")?;
    let started = Instant::now();
    while !kubeconfig.exists() {
        if let Some(status) = child.try_wait()? {
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("the background server stopped before it listened ({status}): {said}");
        }
        if started.elapsed() > START_DEADLINE {
            let _ = child.kill();
            bail!("the background server did not listen within {START_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "kube-standin serving in the background (pid {}); kubeconfig {}; stop it with: kill {}",
        child.id(),
        kubeconfig.display(),
        child.id()
    );
    Ok(())
}
