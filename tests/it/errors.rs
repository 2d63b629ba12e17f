//! Failures become the right status with a short plain-text body and one warn line; malformed
//! client input gets 400, never a 5xx; nothing panics.

use std::time::Duration;

use crate::support::*;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The answer is `status` with a short plain-text body that reveals nothing internal, and the
/// proxy logged exactly one warn line for it, naming the failure `kind`.
fn assert_upstream_failure(
    proxy: &TestProxy,
    res: &Answer,
    status: u16,
    kind: &str,
    upstream: &str,
) {
    assert_eq!(
        res.status,
        StatusCode::from_u16(status).unwrap(),
        "{}",
        res.text()
    );
    assert!(
        res.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        res.headers
    );
    let text = res.text();
    assert!(!text.is_empty() && text.len() < 200, "{text:?}");
    assert!(
        !text.contains(upstream),
        "the body leaks the upstream address: {text}"
    );
    assert!(
        proxy.wait_for_log("upstream request failed", Duration::from_secs(5)),
        "{}",
        proxy.logs_text()
    );
    // The request's access line comes after anything else it logged: a second warn line would
    // be in by then.
    assert!(
        proxy.wait_for_access_lines(1, Duration::from_secs(5)),
        "{}",
        proxy.logs_text()
    );
    let warns = proxy.logs_at("WARN");
    assert_eq!(
        warns.len(),
        1,
        "exactly one warn line:\n{}",
        proxy.logs_text()
    );
    let line = warns[0].to_string();
    assert!(line.contains("upstream request failed"), "{line}");
    assert!(line.contains(&format!("upstream {kind}")), "{line}");
    proxy.assert_no_panic();
}

#[tokio::test]
async fn refused_connection_is_502() {
    let dead = dead_addr();
    let proxy = ProxyBuilder::new(&format!("http://{dead}")).start();
    let res = get(proxy.addr, "/", &[]).await;
    assert_upstream_failure(&proxy, &res, 502, "connect", &dead.to_string());
}

#[tokio::test]
async fn upstream_closing_without_answer_is_502() {
    let up = RawUpstream::start(Mode::Close).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let res = get(proxy.addr, "/", &[]).await;
    assert_upstream_failure(&proxy, &res, 502, "reset", &up.addr.to_string());
}

#[tokio::test]
async fn upstream_reset_is_502() {
    let up = RawUpstream::start(Mode::Reset).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let res = get(proxy.addr, "/", &[]).await;
    assert_upstream_failure(&proxy, &res, 502, "reset", &up.addr.to_string());
}

#[tokio::test]
async fn stalled_upstream_is_504_after_timeout() {
    let up = RawUpstream::start(Mode::Stall).await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("upstream.timeout", "1s")
        .start();
    let res = get(proxy.addr, "/", &[]).await;
    assert_eq!(up.requests().len(), 1, "the upstream got the request");
    assert_upstream_failure(&proxy, &res, 504, "timeout", &up.addr.to_string());
}

/// A loopback listener whose accept queue is full: the kernel drops further SYNs, so a connect
/// hangs until the connector's timeout. Returns the listener and the connections filling it.
async fn saturated_listener() -> Option<(tokio::net::TcpListener, Vec<TcpStream>)> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => fillers.push(s),
            Ok(Err(_)) => return None,
            // This connect hung: the queue is full.
            Err(_) => return Some((listener, fillers)),
        }
    }
    None
}

#[tokio::test]
async fn connect_timeout_is_504() {
    let Some((listener, _fillers)) = saturated_listener().await else {
        panic!("could not fill a loopback accept queue on this kernel");
    };
    let addr = listener.local_addr().unwrap();
    let proxy = ProxyBuilder::new(&format!("http://{addr}"))
        .set("upstream.connect_timeout", "1s")
        .set("upstream.timeout", "10s")
        .start();
    let res = get(proxy.addr, "/", &[]).await;
    assert_upstream_failure(&proxy, &res, 504, "connect_timeout", &addr.to_string());
}

/// Malformed requests, each on its own connection: a 400 (hyper's or ours), never a 5xx.
#[tokio::test]
async fn malformed_requests_get_400() {
    let up = RawUpstream::start(Mode::Answer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
    ))
    .await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let cases: &[(&str, &[u8])] = &[
        ("garbage request line", b"GARBAGE\r\n\r\n"),
        ("space in header name", b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n"),
        ("control byte in target", b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("non-numeric length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
        ("negative length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
        (
            "differing lengths",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        ),
        (
            "transfer coding not ending in chunked",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        ),
        (
            "chunked in HTTP/1.0",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "bad chunk size",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
    ];
    let mut failures = Vec::new();
    for (name, bytes) in cases {
        let out = raw(proxy.addr, bytes, Duration::from_secs(5)).await;
        if !out.starts_with("HTTP/1.1 400") {
            failures.push(format!("{name}: {:?}", out.lines().next()));
        }
    }
    assert!(failures.is_empty(), "not 400:\n{}", failures.join("\n"));
    proxy.assert_no_panic();
}

/// A client whose body breaks mid-stream is a client problem: not reported as an upstream failure.
#[tokio::test]
async fn broken_client_body_is_not_an_upstream_failure() {
    let up = RawUpstream::start(Mode::Answer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
    ))
    .await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        .await
        .unwrap();
    // Wait until the proxy has forwarded the head, then vanish mid-body.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while up.bytes().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(stream);
    // The cut request still ends with its access line (a 400 nobody reads), after its other lines.
    assert!(
        proxy.wait_for_access_lines(1, Duration::from_secs(5)),
        "{}",
        proxy.logs_text()
    );
    assert!(
        proxy.logs_at("WARN").is_empty(),
        "a client hanging up is not an upstream failure:\n{}",
        proxy.logs_text()
    );
    proxy.assert_no_panic();
    // And the proxy still serves.
    let mut again = TcpStream::connect(proxy.addr).await.unwrap();
    again
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), again.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"HTTP/1.1 200");
}

/// `upstream.max_body`: a declared length over the limit is refused up front, and a chunked body
/// that grows past it mid-stream is cut off; both 413, neither a warn line.
#[tokio::test]
async fn body_over_max_body_is_413() {
    let up = RawUpstream::start(Mode::Answer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
    ))
    .await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("upstream.max_body", "1000")
        .start();
    let declared = raw(
        proxy.addr,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");

    let mut chunked = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..10 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[b'a'; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let streamed = raw(proxy.addr, &chunked, Duration::from_secs(5)).await;
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    assert!(proxy.logs_at("WARN").is_empty(), "{}", proxy.logs_text());
    proxy.assert_no_panic();
}
