//! Connection lifecycle: slow clients are cut off, shutdown drains in-flight requests.

use std::time::Duration;

use crate::support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A client that sends its request head one header line every 300 ms never finishes within the
/// 1 s `limits.header_read_timeout`: it is disconnected, while a normal client is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_header_is_disconnected_while_others_are_served() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.header_read_timeout", "1s")
        .start();
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let trickle = tokio::spawn(async move {
        if write
            .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
            .await
            .is_err()
        {
            return;
        }
        for i in 0..40 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let line = format!("X-Slow-{i}: y\r\n");
            if write.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    // Meanwhile a normal client is served.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = get(proxy.addr, "/normal", &[]).await;
    assert_eq!(res.status, 200);

    let started = std::time::Instant::now();
    assert!(
        closed_within(&mut read, Duration::from_secs(6)).await,
        "the trickling client was still connected after 6s"
    );
    eprintln!(
        "trickler cut off {:?} after the check started",
        started.elapsed()
    );
    trickle.abort();
    assert!(
        up.seen().iter().all(|s| s.uri.path() != "/slow"),
        "the trickled request was forwarded"
    );
    proxy.assert_no_panic();
}

/// A client that connects and sends nothing (or only the start of the HTTP/2 preface) holds a
/// connection slot just the same: it is disconnected within the header read timeout too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connection_is_disconnected() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.header_read_timeout", "1s")
        .start();
    let cases: [&[u8]; 3] = [b"", b"P", b"PRI * HTTP/2.0\r\n"];
    for prefix in cases {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(prefix).await.unwrap();
        assert!(
            closed_within(&mut stream, Duration::from_secs(6)).await,
            "a connection that sent {:?} was still open after 6s",
            String::from_utf8_lossy(prefix)
        );
    }
    // The proxy still serves.
    let res = get(proxy.addr, "/", &[]).await;
    assert_eq!(res.status, 200);
    proxy.assert_no_panic();
}

async fn drains_on(signal: &str) {
    let up = TestUpstream::with(|seen| {
        if seen.uri.path() == "/slow" {
            Reply::ok()
                .body("slow but complete")
                .delay(Duration::from_secs(2))
        } else {
            Reply::ok()
        }
    })
    .await;
    let mut proxy = ProxyBuilder::new(&up.url())
        .set("limits.shutdown_grace", "10s")
        .start();
    let addr = proxy.addr;
    let in_flight = tokio::spawn(async move { get(addr, "/slow", &[]).await });

    // Wait until the upstream holds the request, then signal.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while up.seen().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.signal(signal);
    assert!(
        proxy.wait_for_log("shutting down", Duration::from_secs(5)),
        "{}",
        proxy.logs_text()
    );

    // New connections are refused once the listener is closed.
    let refused = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await;
    assert!(
        matches!(refused, Ok(Err(_))),
        "a new connection was accepted during shutdown: {refused:?}"
    );

    let res = tokio::time::timeout(Duration::from_secs(15), in_flight)
        .await
        .expect("in-flight request finished")
        .unwrap();
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "slow but complete");

    let code = tokio::task::spawn_blocking(move || {
        let code = proxy.wait_exit(Duration::from_secs(15));
        (code, proxy.logs_text())
    })
    .await
    .unwrap();
    assert_eq!(code.0, Some(0), "exit code; logs:\n{}", code.1);
    assert!(!code.1.contains("panicked"), "{}", code.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_then_exits_zero() {
    drains_on("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_drains_in_flight_then_exits_zero() {
    drains_on("INT").await;
}

/// A session sweep that is still running at SIGTERM does not hold shutdown past
/// `limits.shutdown_grace`. The "Redis" accepts the connection and never answers, standing in for
/// a SCAN over many keys; `redis.timeout` is far longer than the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_does_not_wait_for_a_running_session_sweep() {
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redis_url = format!("redis://{}/0", hole.local_addr().unwrap());
    let up = TestUpstream::start().await;
    let mut proxy = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &redis_url)
        .set("redis.timeout", "60s")
        .set("sessions.cleanup_interval", "200ms")
        .set("limits.shutdown_grace", "1s")
        .start();
    // The sweep is under way once the store's connection is accepted.
    let held = tokio::task::spawn_blocking(move || hole.accept().map(|(socket, _)| socket));
    let _socket = tokio::time::timeout(Duration::from_secs(10), held)
        .await
        .expect("the sweep reached the store")
        .unwrap()
        .unwrap();
    proxy.signal("TERM");
    let started = std::time::Instant::now();
    let (code, logs) = tokio::task::spawn_blocking(move || {
        let code = proxy.wait_exit(Duration::from_secs(30));
        (code, proxy.logs_text())
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "exit code; logs:\n{logs}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exit took {:?} with a 1s grace period; logs:\n{logs}",
        started.elapsed()
    );
}
