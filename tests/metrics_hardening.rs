//! The metrics endpoint is reachable by anyone on the management network:
//! it serves the metrics and nothing else, reads no request body, refuses
//! an oversized request head, closes a client that never finishes its
//! head (slowloris), and holds a bounded number of connections.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use metal_switchd::report::metrics::{Metrics, limits};
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

fn status(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or("")
}

#[tokio::test]
async fn only_metrics_and_no_body_is_read() {
    let metrics = Arc::new(Metrics::new(std::time::SystemTime::now()));
    let server = metrics
        .clone()
        .serve(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let addr = server.local_addr();
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
async fn slow_and_many_clients_are_bounded() {
    let metrics = Arc::new(Metrics::new(std::time::SystemTime::now()));
    let server = metrics
        .clone()
        .serve(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let addr = server.local_addr();
    // A client that starts a request and never finishes its head is closed
    // after the header read timeout (an event: EOF).
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

    // Fill every slot with idle clients: the next connection is closed at
    // once, unanswered.
    let mut idle = Vec::new();
    for _ in 0..limits::MAX_CONNECTIONS {
        let mut c = TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: s\r\n")
            .await
            .unwrap();
        idle.push(c);
    }
    // The last idle client's connection is being served (its task runs).
    let refused = tokio::time::timeout(HANG, async {
        loop {
            let a = exchange(
                addr,
                b"GET /metrics HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n",
            )
            .await;
            if a.is_empty() {
                return a;
            }
            // Served: the server had not accepted every idle client yet.
            assert_eq!(status(&a), "200", "{a}");
        }
    })
    .await
    .expect("a connection beyond the limit was still served");
    assert!(refused.is_empty());
    drop(idle);
    // Once they are gone, scrapes are answered again.
    let answered = tokio::time::timeout(HANG, async {
        loop {
            let a = exchange(
                addr,
                b"GET /metrics HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n",
            )
            .await;
            if status(&a) == "200" {
                return a;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("scrapes were not answered again after the idle clients left");
    assert!(answered.contains("metal_switchd_build_info"));
    server.shutdown().await;
}
