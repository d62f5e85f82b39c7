//! The ceiling of this machine's HTTP path: an axum server whose `POST /api/v1` only reads the
//! body and answers 204, with the collector's runtime settings.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use clap::Parser;

/// Serves `POST /api/v1` -> 204 after reading the body.
#[derive(Parser)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:18081")]
    listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let app = Router::new().route(
        "/api/v1",
        post(|body: Bytes| async move {
            std::hint::black_box(body);
            StatusCode::NO_CONTENT
        }),
    );
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("noop-server listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
