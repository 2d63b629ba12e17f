//! Resource limits under hostile load: slowloris connections (50 here, 1,000 in
//! `scripts/hardening`), and the connection cap.
//!
//! Related: `errors.rs` (`body_over_max_body_is_413`: `upstream.max_body` answers 413 for declared
//! and streamed bodies), `lifecycle.rs` (one trickling client, silent connections).

use std::time::{Duration, Instant};

use crate::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Raises this process's soft RLIMIT_NOFILE to its hard limit (no unsafe: via `prlimit`).
fn raise_nofile(want: u64) {
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={want}:")])
        .status();
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Reads one whole response over a kept-alive connection; returns its status line.
async fn request_on(stream: &mut TcpStream, path: &str, within: Duration) -> Option<String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: app.test\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf);
        if let Some(i) = text.find("\r\n\r\n") {
            let head = &text[..i];
            let len: usize = head_headers(head, "content-length")
                .first()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            if buf.len() >= i + 4 + len {
                return head.lines().next().map(str::to_owned);
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// The suite's size: 50 tricklers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_stop_a_normal_client() {
    slowloris(50).await;
}

/// The hardening size, run by `scripts/hardening`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1,000 connections: run by scripts/hardening"]
async fn thousand_slowloris_connections_do_not_stop_a_normal_client() {
    slowloris(1_000).await;
}

/// `count` connections trickle a request head one byte every 500 ms. A normal client is still
/// answered promptly while they are open, and every trickler is cut off by
/// `limits.header_read_timeout` (2 s).
async fn slowloris(count: usize) {
    raise_nofile(4096);
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.header_read_timeout", "2s")
        .env("RUST_LOG", "info,access=off")
        .start();
    let fds_before = open_fds();

    let opened = Instant::now();
    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..count {
        let addr = proxy.addr;
        connecting.spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /slow HTTP/1.1\r\nHost: app.test\r\n")
                .await
                .unwrap();
            s
        });
    }
    let mut slow = Vec::with_capacity(count);
    while let Some(s) = connecting.join_next().await {
        slow.push(s.unwrap());
    }
    eprintln!(
        "{count} tricklers open in {:?} (test fds {} -> {})",
        opened.elapsed(),
        fds_before,
        open_fds()
    );
    // One trickle round (a byte to each) while a normal client asks.
    for s in slow.iter_mut() {
        let _ = s.write_all(b"X").await;
    }
    let asked = Instant::now();
    let res = get(proxy.addr, "/normal", &[]).await;
    let latency = asked.elapsed();
    assert_eq!(res.status, 200);
    // How many tricklers the proxy still held while it answered (closed ones read EOF).
    let mut buf = [0u8; 64];
    let still_open = slow
        .iter()
        .filter(|s| matches!(s.try_read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock))
        .count();
    eprintln!("normal client answered in {latency:?} with {still_open} of {count} tricklers open");
    assert!(latency < Duration::from_secs(1), "took {latency:?}");
    assert_eq!(still_open, count, "tricklers were cut before the check ran");

    // Keep trickling; within the header timeout plus a margin every trickler must be closed.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut open: Vec<TcpStream> = slow;
    while !open.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut still = Vec::with_capacity(open.len());
        for mut s in open {
            if s.write_all(b"-").await.is_err() {
                continue;
            }
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {}
                _ => still.push(s),
            }
        }
        open = still;
    }
    let cut_after = opened.elapsed();
    eprintln!(
        "{} of {count} tricklers still open {cut_after:?} after opening",
        open.len()
    );
    assert!(open.is_empty(), "{} tricklers never cut off", open.len());
    assert!(
        up.seen().iter().all(|s| s.uri.path() != "/slow"),
        "a trickled request was forwarded"
    );
    // And still serving.
    assert_eq!(get(proxy.addr, "/after", &[]).await.status, 200);
    proxy.assert_no_panic();
}

/// `limits.max_connections: 50`: 50 kept-alive connections hold every slot. Further connections
/// wait (the kernel accepts them into the backlog; the proxy reads nothing from them) without
/// an error or a crash, and are served as soon as slots free up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_makes_new_ones_wait_then_serves_them() {
    const MAX: usize = 50;
    const EXTRA: usize = 10;
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.max_connections", &MAX.to_string())
        .set("limits.header_read_timeout", "30s")
        .env("RUST_LOG", "info,access=off")
        .start();

    let mut held = Vec::new();
    for i in 0..MAX {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        let status = request_on(&mut s, &format!("/held/{i}"), Duration::from_secs(5)).await;
        assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"), "connection {i}");
        held.push(s);
    }

    // Beyond the cap: the connect succeeds (backlog), the request is not answered yet.
    let mut waiting = Vec::new();
    for i in 0..EXTRA {
        let mut s = TcpStream::connect(proxy.addr).await.unwrap();
        s.write_all(format!("GET /extra/{i} HTTP/1.1\r\nHost: app.test\r\n\r\n").as_bytes())
            .await
            .unwrap();
        waiting.push(s);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for s in waiting.iter_mut() {
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(Duration::from_millis(50), s.read(&mut buf)).await;
        assert!(
            r.is_err(),
            "a connection beyond max_connections was answered or closed: {r:?}"
        );
    }
    assert!(
        up.seen()
            .iter()
            .all(|s| !s.uri.path().starts_with("/extra")),
        "served beyond the cap"
    );
    // The held connections still work.
    let status = request_on(&mut held[0], "/held/again", Duration::from_secs(5)).await;
    assert_eq!(status.as_deref(), Some("HTTP/1.1 200 OK"));

    // Free EXTRA slots: every waiting connection is served promptly.
    let freed = Instant::now();
    held.truncate(MAX - EXTRA);
    for (i, s) in waiting.iter_mut().enumerate() {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !String::from_utf8_lossy(&buf).contains("\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
                .await
                .unwrap_or_else(|_| panic!("waiting connection {i} not served after slots freed"))
                .unwrap();
            assert!(n > 0, "waiting connection {i} was closed");
            buf.extend_from_slice(&chunk[..n]);
        }
        assert!(
            buf.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf)
        );
    }
    eprintln!(
        "{EXTRA} waiting connections served {:?} after {EXTRA} slots were freed",
        freed.elapsed()
    );
    proxy.assert_no_panic();
}
