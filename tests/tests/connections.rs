//! Connection hygiene of the collector binary over real TCP: silent sockets, header trickles and
//! idle keep-alive connections are closed by the head deadline; connections over the cap wait
//! in the backlog and are answered once a slot frees, never reset.

use std::time::{Duration, Instant};

use e2e::{Collector, binary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn collector(dir: &std::path::Path, flags: &[&str]) -> Collector {
    let mut args = vec!["--header-read-timeout", "1s"];
    args.extend_from_slice(flags);
    Collector::start(&binary("collector"), &dir.join("data"), &args).await
}

/// Reads until the server closes the connection; how long that took, and what it sent.
async fn until_closed(tcp: &mut TcpStream, within: Duration) -> (Duration, Vec<u8>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(started + within),
            tcp.read(&mut buffer),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return (started.elapsed(), received),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!(
                "still open after {within:?}; received {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

#[tokio::test]
async fn silent_trickling_and_idle_connections_are_closed_by_the_head_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let collector = collector(dir.path(), &[]).await;

    // Silent: nothing sent at all.
    let mut silent = TcpStream::connect(collector.public).await.unwrap();
    let (after, _) = until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );

    // A header trickle: a byte every 200 ms never completes a head in time.
    let mut trickle = TcpStream::connect(collector.public).await.unwrap();
    let started = Instant::now();
    let head =
        b"POST /api/v1 HTTP/1.1\r\nHost: collector\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    for byte in head {
        if trickle.write_all(&[*byte]).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !closed {
        until_closed(&mut trickle, Duration::from_secs(5)).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the trickle was served for {:?}",
        started.elapsed()
    );

    // Kept alive after an answer, then idle.
    let mut idle = TcpStream::connect(collector.public).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
        .await
        .unwrap();
    let (after, received) = until_closed(&mut idle, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&received);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        after >= Duration::from_millis(900),
        "closed after {after:?}"
    );

    // The HTTP/2 preface, then silence: closed too (an HTTP/2 peer that never answers is
    // dropped after one more head deadline).
    let mut preface = TcpStream::connect(collector.public).await.unwrap();
    preface
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let (after, _) = until_closed(&mut preface, Duration::from_secs(5)).await;
    assert!(after < Duration::from_secs(4), "closed after {after:?}");

    // And it still serves.
    let health = reqwest::get(collector.public_url("/healthz"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn connections_over_the_cap_wait_and_are_answered() {
    let dir = tempfile::tempdir().unwrap();
    let collector = collector(dir.path(), &["--max-connections", "2"]).await;
    let _held: Vec<TcpStream> =
        futures::future::join_all((0..2).map(|_| TcpStream::connect(collector.public)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The third waits for a slot (the two silent ones are closed by the head deadline), and is
    // answered: not reset, not refused.
    let started = Instant::now();
    let mut third = TcpStream::connect(collector.public).await.unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (_, received) = until_closed(&mut third, Duration::from_secs(5)).await;
    let answer = String::from_utf8_lossy(&received);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "answered after {:?}, before a slot was free",
        started.elapsed()
    );
}

/// What hyper answers by itself, before the collector sees a request: a status line and an empty
/// body (hyper has no hook for a body there), then the connection is closed.
#[tokio::test]
async fn malformed_requests_get_hypers_status_and_leave_the_collector_healthy() {
    let dir = tempfile::tempdir().unwrap();
    let collector = collector(dir.path(), &[]).await;
    let many_headers: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    // Longer than the 64 KiB a connection reads into while it waits for a head.
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: c\r\n\r\n", "a".repeat(70_000));
    let long_header = format!(
        "GET /healthz HTTP/1.1\r\nHost: c\r\nX-Long: {}\r\n\r\n",
        "a".repeat(70_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "a Content-Length that is not a number",
            b"POST /api/v1 HTTP/1.1\r\nHost: c\r\nContent-Length: abc\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "two different Content-Lengths",
            b"POST /api/v1 HTTP/1.1\r\nHost: c\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"
                .to_vec(),
            "400",
        ),
        ("an HTTP/0.9 request line", b"GET /\r\n\r\n".to_vec(), "400"),
        (
            "a control character in a header",
            b"GET /healthz HTTP/1.1\r\nHost: c\r\nX-Bad: a\x01b\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "more than 100 headers",
            format!("GET /healthz HTTP/1.1\r\nHost: c\r\n{many_headers}\r\n").into_bytes(),
            "431",
        ),
        ("a URI over 64 KiB", long_uri.into_bytes(), "431"),
        ("a head over 64 KiB", long_header.into_bytes(), "431"),
    ];
    for (what, request, status) in cases {
        let mut tcp = TcpStream::connect(collector.public).await.unwrap();
        tcp.write_all(&request).await.unwrap();
        let (_, received) = until_closed(&mut tcp, Duration::from_secs(5)).await;
        let answer = String::from_utf8_lossy(&received);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{what}: {answer}"
        );
        let health = reqwest::get(collector.public_url("/healthz"))
            .await
            .unwrap();
        assert_eq!(health.status(), 200, "after {what}");
    }
    let report = reqwest::Client::new()
        .post(collector.public_url("/api/v1"))
        .header("content-type", "application/json")
        .body(e2e::fixture("spartakus-readme.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 204, "reports are still taken");
}
