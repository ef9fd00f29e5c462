//! The metrics endpoint is reachable by anyone on the management network:
//! it serves the metrics and nothing else, reads no request body, refuses
//! an oversized request head, closes a client that never finishes its
//! head (slowloris), holds a bounded number of connections, a few per peer,
//! closes idle ones early, and lets no set of clients lock out a scrape.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use metal_switchd::report::metrics::{Metrics, MetricsServer, limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Only catches a server that never answers or never closes.
const HANG: Duration = Duration::from_secs(60);

async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(HANG, s.read_to_end(&mut raw))
        .await
        .expect("the metrics server kept the connection open")
        .unwrap_or_default();
    String::from_utf8_lossy(&raw).into_owned()
}

/// A metrics endpoint on a free loopback port.
async fn start() -> (MetricsServer, std::net::SocketAddr) {
    let metrics = Arc::new(Metrics::new(std::time::SystemTime::now()));
    let server = metrics.serve(([127, 0, 0, 1], 0).into()).await.unwrap();
    let addr = server.local_addr();
    (server, addr)
}

fn status(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or("")
}

#[tokio::test]
async fn only_metrics_and_no_body_is_read() {
    let (server, addr) = start().await;
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n");
    let ok = exchange(addr, get("/metrics").as_bytes()).await;
    assert_eq!(status(&ok), "200", "{ok}");
    assert!(ok.contains("metal_switchd_build_info"), "{ok}");
    for path in [
        "/",
        "/metrics/",
        "//metrics",
        "/debug/pprof",
        "/metrics/../status",
        "/api",
    ] {
        let a = exchange(addr, get(path).as_bytes()).await;
        assert_eq!(status(&a), "404", "{path}: {a}");
        assert!(!a.contains("metal_switchd_"), "{path} served metrics: {a}");
    }
    // A write method with a body announced as 1 GiB: answered at once
    // without reading it (the body is never sent here).
    let a = exchange(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: s\r\nContent-Length: 1073741824\r\n\r\n",
    )
    .await;
    assert_eq!(status(&a), "405", "{a}");
    assert!(
        a.contains("allow: GET, HEAD") || a.contains("Allow: GET, HEAD"),
        "{a}"
    );
    // A request head larger than the limit: 431, never a scrape.
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: s\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(4 * limits::MAX_HEAD_BYTES)
    );
    let a = exchange(addr, big.as_bytes()).await;
    assert!(
        !a.contains("metal_switchd_"),
        "an oversized head was served: {a}"
    );
    assert!(a.is_empty() || status(&a) == "431", "{a}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_head_is_closed() {
    let (server, addr) = start().await;
    // A client that starts a request and never finishes its head is closed
    // (an event: EOF) after the idle timeout, within the header read timeout.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: s\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(HANG, slow.read_to_end(&mut buf))
        .await
        .expect("a client that never finished its request head was kept")
        .unwrap_or_default();
    assert!(!String::from_utf8_lossy(&buf).contains("metal_switchd_"));

    server.shutdown().await;
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> TcpStream {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    s.bind((from, 0).into()).unwrap();
    s.connect(addr).await.unwrap()
}

/// One keep-alive scrape on `s`; the answer's status line, and the
/// connection stays open.
async fn keep_alive_scrape(s: &mut TcpStream) -> String {
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: s\r\n\r\n")
        .await
        .unwrap();
    // Read the head and the body of the answer (Content-Length).
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(HANG, s.read(&mut chunk))
            .await
            .expect("no answer")
            .unwrap_or(0);
        if n == 0 {
            return String::from_utf8_lossy(&buf).into_owned();
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return text[..end].lines().next().unwrap_or("").to_owned();
            }
        }
    }
}

/// Whether the server closed `s` (EOF), waiting at most `within`.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> bool {
    let mut b = [0u8; 64];
    matches!(
        tokio::time::timeout(within, s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

async fn scrape_from(from: [u8; 4], addr: std::net::SocketAddr) -> String {
    let mut s = connect_from(from, addr).await;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(HANG, s.read_to_end(&mut raw))
        .await
        .expect("the scrape was not answered")
        .unwrap_or_default();
    String::from_utf8_lossy(&raw).into_owned()
}

/// Issue 22, item 8: 40 keep-alive clients of one peer do not lock out
/// the scrapes of another (they locked out every scrape: 32 slots, held
/// for 2 minutes). A peer holds at most `MAX_CONNECTIONS_PER_PEER`
/// connections: its new ones replace its own idle ones.
#[tokio::test]
async fn forty_keep_alive_clients_of_one_peer_cannot_lock_out_a_scrape() {
    let (server, addr) = start().await;
    let mut clients = Vec::new();
    for i in 0..40 {
        let mut c = connect_from([127, 0, 0, 1], addr).await;
        let status = keep_alive_scrape(&mut c).await;
        assert!(status.contains(" 200 "), "client {i}: {status:?}");
        clients.push(c);
    }
    let a = scrape_from([127, 0, 0, 2], addr).await;
    assert_eq!(status(&a), "200", "the scrape was locked out: {a:?}");
    assert!(a.contains("metal_switchd_build_info"));
    // The peer's older connections were closed for its newer ones.
    let keep = limits::MAX_CONNECTIONS_PER_PEER;
    for (i, c) in clients.iter_mut().enumerate().take(40 - keep) {
        assert!(
            closed_by_server(c, HANG).await,
            "connection {i} of one peer is still open"
        );
    }
    server.shutdown().await;
}

/// Issue 22, item 8: 40 keep-alive clients of 40 peers fill every slot; a
/// scrape still gets one (an idle connection gives up its slot).
#[tokio::test]
async fn forty_keep_alive_peers_cannot_lock_out_a_scrape() {
    let (server, addr) = start().await;
    let mut clients = Vec::new();
    for i in 0..40u8 {
        let mut c = connect_from([127, 0, 1, 1 + i], addr).await;
        let status = keep_alive_scrape(&mut c).await;
        clients.push((status, c));
    }
    let a = scrape_from([127, 0, 0, 2], addr).await;
    assert_eq!(status(&a), "200", "the scrape was locked out: {a:?}");
    let mut open = 0;
    for (_, c) in clients.iter_mut() {
        if !closed_by_server(c, Duration::from_millis(50)).await {
            open += 1;
        }
    }
    assert!(
        open < limits::MAX_CONNECTIONS,
        "{open} idle connections kept beside the scrape"
    );
    server.shutdown().await;
}

/// Issue 22, item 8: an idle kept-alive connection is closed after
/// `IDLE_TIMEOUT`, not held for `MAX_CONNECTION_TIME`.
#[tokio::test]
async fn idle_connections_are_closed_early() {
    assert!(limits::IDLE_TIMEOUT * 4 < limits::MAX_CONNECTION_TIME);
    let (server, addr) = start().await;
    let mut c = connect_from([127, 0, 0, 1], addr).await;
    let first = keep_alive_scrape(&mut c).await;
    assert!(first.contains(" 200 "), "{first}");
    let started = std::time::Instant::now();
    // Kept alive for a second request within the idle time.
    let second = keep_alive_scrape(&mut c).await;
    assert!(second.contains(" 200 "), "{second}");
    // Then idle: closed long before the connection's time is up.
    assert!(
        closed_by_server(&mut c, limits::MAX_CONNECTION_TIME / 2).await,
        "an idle connection was kept for half of MAX_CONNECTION_TIME"
    );
    assert!(started.elapsed() >= limits::IDLE_TIMEOUT);
    server.shutdown().await;
}
