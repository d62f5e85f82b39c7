//! The listeners' accept loop, in place of `axum::serve`, which has none of these: a listen
//! backlog as deep as the kernel allows, a cap on open connections kept under the process's file
//! descriptor limit (connections over it wait in the backlog instead of being reset), a deadline
//! for each request's head (which also closes idle HTTP/1 keep-alive connections and header
//! trickles), an idle timeout for HTTP/2, TLS when the public listener has a certificate, and a
//! graceful close on shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Connections the admin listener holds open at once (operators, Prometheus, dashboards).
pub const ADMIN_CONNECTIONS: usize = 128;
/// File descriptors kept free of connections for the store, the sinks and the admin listener.
pub const DESCRIPTOR_HEADROOM: u64 = 256;
/// How often an HTTP/2 connection is pinged, and how long the answer may take.
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(20);
/// The most an HTTP/1 connection buffers while it reads (a request head larger than this gets
/// 431): what one connection may hold before its request is charged to the memory budget.
pub const HTTP1_READ_BUFFER: usize = 64 * 1024;
/// What an HTTP/2 peer may send before the collector reads it, on one connection...
pub const HTTP2_CONNECTION_WINDOW: u32 = 128 * 1024;
/// ...and on one of its streams.
const HTTP2_STREAM_WINDOW: u32 = 64 * 1024;
/// Requests one HTTP/2 connection may have open at once.
pub const HTTP2_STREAMS: u32 = 16;
/// The largest request head an HTTP/2 peer may send.
pub const HTTP2_HEADER_LIST: u32 = 16 * 1024;
/// Backlog used when the kernel's `somaxconn` cannot be read.
const FALLBACK_BACKLOG: u32 = 4096;

/// How one listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// Time allowed for a request's head: from the connection's start, and from the end of the
    /// previous answer on a kept-alive connection (so an idle HTTP/1 connection closes then).
    pub header_read_timeout: Duration,
    /// An HTTP/2 connection with no request in flight this long is closed (GOAWAY).
    pub idle_timeout: Duration,
    /// Connections open at once; the next waits in the listen backlog.
    pub max_connections: usize,
}

/// Binds `addr` with a listen backlog of `backlog` connections (`None`: the kernel's
/// `net.core.somaxconn`, the most it allows).
pub fn bind(addr: SocketAddr, backlog: Option<u32>) -> io::Result<TcpListener> {
    let backlog = backlog.unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(FALLBACK_BACKLOG)
    });
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Raises the soft limit of open files to the hard one; returns the limit now in force.
pub fn raise_descriptor_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Connections the process may hold open with `limit` file descriptors, leaving
/// [`DESCRIPTOR_HEADROOM`] for everything else (at least 64).
pub fn connections_within(limit: u64) -> usize {
    usize::try_from(limit.saturating_sub(DESCRIPTOR_HEADROOM).max(64)).unwrap_or(usize::MAX)
}

/// Serves `router` on `listener` until `stop` completes, then stops accepting and closes every
/// connection gracefully (in-flight requests finish; the caller bounds how long that may take).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ConnectionSettings,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout)
        .max_buf_size(HTTP1_READ_BUFFER);
    // Pings find HTTP/2 peers that went away without closing; the windows and limits bound what
    // a connection holds before its requests are charged to the memory budget.
    builder
        .http2()
        .timer(TokioTimer::new())
        .initial_connection_window_size(HTTP2_CONNECTION_WINDOW)
        .initial_stream_window_size(HTTP2_STREAM_WINDOW)
        .max_concurrent_streams(HTTP2_STREAMS)
        .max_header_list_size(HTTP2_HEADER_LIST)
        .keep_alive_interval(Some(HTTP2_PING_INTERVAL))
        .keep_alive_timeout(HTTP2_PING_INTERVAL);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut stop = std::pin::pin!(stop);
    let mut accept_errors = ErrorLog::default();
    loop {
        while connections.try_join_next().is_some() {}
        // A slot first: a connection over the cap stays in the backlog, unanswered but not reset.
        let (slot, accepted) = tokio::select! {
            () = &mut stop => break,
            pair = async {
                let slot = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                (slot, listener.accept().await)
            } => pair,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) if is_transient(&error) => continue,
            Err(error) => {
                // Out of descriptors or memory: the cap should prevent it; wait a little.
                accept_errors.log(&error);
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Small answers (a 204 is one short segment) go out at once, not held by Nagle.
        let _ = tcp.set_nodelay(true);
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            settings,
            closed: closed.clone(),
        };
        let tls = tls.clone();
        connections.spawn(async move {
            let _slot = slot;
            match tls {
                None => connection.run(TokioIo::new(tcp), peer).await,
                // The handshake has the head deadline to finish.
                Some(tls) => {
                    match tokio::time::timeout(settings.header_read_timeout, tls.accept(tcp)).await
                    {
                        Ok(Ok(stream)) => connection.run(TokioIo::new(stream), peer).await,
                        Ok(Err(error)) => tracing::debug!(%error, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake not finished in time"),
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    while connections.join_next().await.is_some() {}
    Ok(())
}

fn is_transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// Logs accept errors at most once a second, with how many there were.
#[derive(Default)]
struct ErrorLog {
    last: Option<Instant>,
    since: u64,
}

impl ErrorLog {
    fn log(&mut self, error: &io::Error) {
        self.since += 1;
        if self
            .last
            .is_none_or(|last| last.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(%error, errors = self.since, "cannot accept connections");
            self.last = Some(Instant::now());
            self.since = 0;
        }
    }
}

/// One accepted connection.
struct Connection {
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    settings: ConnectionSettings,
    closed: watch::Receiver<bool>,
}

impl Connection {
    async fn run<I>(mut self, io: I, peer: SocketAddr)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let counted = activity.clone();
        let router = self.router;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            // In flight until its answer's head is ready: a graceful close after that still
            // lets the body finish (HTTP/1 closes after the answer, HTTP/2 streams run on).
            let in_flight = InFlight::enter(counted.clone());
            let answer = router.clone().oneshot(request);
            async move {
                let response: Response = answer.await?;
                drop(in_flight);
                Ok::<_, Infallible>(response)
            }
        });
        let connection = self.builder.serve_connection_with_upgrades(io, service);
        let mut connection = std::pin::pin!(connection);
        let idle = activity.expired(
            self.settings.header_read_timeout,
            self.settings.idle_timeout,
        );
        let mut idle = std::pin::pin!(idle);
        // An idle connection asked to close gets one more head deadline to do so, then is
        // dropped: an HTTP/2 peer that never answers the GOAWAY's ping would hold it forever.
        let forced = tokio::time::sleep(Duration::from_secs(86_400 * 365));
        let mut forced = std::pin::pin!(forced);
        let mut closing = false;
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended");
                    }
                    break;
                }
                _ = self.closed.wait_for(|closed| *closed), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = &mut idle, if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                    forced.as_mut().reset(
                        tokio::time::Instant::now() + self.settings.header_read_timeout,
                    );
                }
                () = &mut forced => break,
            }
        }
    }
}

/// Requests of one connection, counted with atomics so that a request wakes nothing: in
/// flight now, started since it opened, and when one last started or ended.
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    started: AtomicU64,
    /// Milliseconds from `opened` to the last start or end of a request.
    last: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            started: AtomicU64::new(0),
            last: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let now = self.opened.elapsed().as_millis() as u64;
        self.last.fetch_max(now, Ordering::Relaxed);
    }

    /// Completes once the connection has had nothing in flight for too long: `first` before
    /// its first request (hyper's own head deadline starts only once it knows the protocol),
    /// `idle` after an answer. Wakes only at those deadlines.
    async fn expired(&self, first: Duration, idle: Duration) {
        loop {
            let limit = if self.started.load(Ordering::Relaxed) == 0 {
                first
            } else {
                idle
            }
            .max(Duration::from_millis(100));
            let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
            let deadline = self.opened + last + limit;
            let now = Instant::now();
            let wake = if now < deadline {
                deadline
            } else if self.in_flight.load(Ordering::Relaxed) == 0 {
                return;
            } else {
                // A request is still in flight: its end moves the deadline; look again then.
                now + limit
            };
            tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
        }
    }
}

/// A request in flight, counted until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.started.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_leave_headroom_for_the_rest() {
        assert_eq!(connections_within(1_048_576), 1_048_320);
        assert_eq!(connections_within(1024), 768);
        assert_eq!(connections_within(100), 64);
    }
}
