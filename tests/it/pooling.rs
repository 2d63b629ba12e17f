//! The upstream connection pool: what goes back into it, and what an upstream closing pooled
//! connections costs the client (nothing). `limits.workers: 1` throughout, so there is one pool
//! and connection counts are exact.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

/// An upstream that closes every connection right after its answer, without a
/// `Connection: close` to warn the proxy: each pooled connection is dead by the next request.
/// None of those requests may fail.
#[tokio::test]
async fn upstream_closing_pooled_connections_costs_no_request() {
    const N: usize = 20;
    let up = RawUpstream::start(Mode::AnswerOnce(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
    ))
    .await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.workers", "1")
        .start();
    for i in 0..N {
        let res = get(proxy.addr, &format!("/n/{i}"), &[]).await;
        assert_eq!(res.status, 200, "request {i}: {}", res.text());
        assert_eq!(res.text(), "ok");
    }
    assert_eq!(up.requests().len(), N);
}

/// A response the client hangs up on halfway is never pooled: the rest of its body would be read
/// as the next response. The next requests get a connection of their own, and share it.
#[tokio::test]
async fn a_response_abandoned_midway_is_not_pooled() {
    let up = StreamUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.workers", "1")
        .start();
    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    client
        .write_all(b"GET /download/268435456 HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response_head(&mut client, Duration::from_secs(10)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    drop(client);
    for _ in 0..5 {
        let res = get(proxy.addr, "/download/10", &[]).await;
        assert_eq!(res.status, 200);
        assert_eq!(res.text(), "xxxxxxxxxx");
    }
    assert_eq!(up.connections(), 2);
}

/// Answers without a body (HEAD, 204, 304, `Content-Length: 0`) give their connection back too,
/// though nothing ever reads such a body to its end.
#[tokio::test]
async fn bodiless_answers_return_their_connection() {
    let up = TestUpstream::with(|seen| match seen.uri.path() {
        "/204" => Reply::ok().status(204).body(""),
        "/304" => Reply::ok().status(304).body(""),
        "/empty" => Reply::ok().body(""),
        _ => Reply::ok(),
    })
    .await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.workers", "1")
        .start();
    for _ in 0..3 {
        for (path, status) in [("/204", 204), ("/304", 304), ("/empty", 200)] {
            assert_eq!(get(proxy.addr, path, &[]).await.status, status, "{path}");
        }
        let head = Request::builder()
            .method(Method::HEAD)
            .uri("/")
            .header("host", proxy.addr.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap();
        assert_eq!(send(proxy.addr, head).await.status, 200);
    }
    assert_eq!(up.seen().len(), 12);
    assert_eq!(up.connections(), 1);
}
