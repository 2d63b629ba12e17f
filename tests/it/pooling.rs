//! The upstream connection pool: what goes back into it, and what an upstream closing pooled
//! connections costs the client (nothing). `limits.workers: 1` throughout, so there is one pool
//! and connection counts are exact.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

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

/// The race the retry exists for: the upstream closes an idle pooled connection just as a
/// request picks it. The proxy is stopped (SIGSTOP) while the client's next request and then the
/// upstream's FIN arrive, so on SIGCONT it reads the request first and sends it on the pooled
/// connection, which hyper then finds closed and gives the request back unsent: it must go out
/// once more on a new connection, not end as a 502.
#[tokio::test]
async fn a_request_on_a_connection_the_upstream_just_closed_is_sent_again() {
    let up = CloseOnCue::start().await;
    let proxy = ProxyBuilder::new(&format!("http://{}", up.addr))
        .set("limits.workers", "1")
        .start();
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut client, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = |path: &str| {
        Request::get(path)
            .header("host", proxy.addr.to_string())
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let first = client.send_request(request("/first")).await.unwrap();
    assert_eq!(Answer::read(first).await.status, 200);

    proxy.signal("STOP");
    let second = tokio::spawn(client.send_request(request("/second")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    up.close.notify_one();
    tokio::time::sleep(Duration::from_millis(200)).await;
    proxy.signal("CONT");

    let second = tokio::time::timeout(Duration::from_secs(10), second)
        .await
        .expect("an answer in time")
        .unwrap()
        .unwrap();
    let second = Answer::read(second).await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(up.requests.load(Ordering::SeqCst), 2);
    assert_eq!(up.connections.load(Ordering::SeqCst), 2);
}

/// An upstream that answers `200 ok` on every connection, except that it closes its first
/// connection after the first answer when the test says so.
struct CloseOnCue {
    addr: std::net::SocketAddr,
    close: Arc<Notify>,
    requests: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CloseOnCue {
    async fn start() -> CloseOnCue {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let close = Arc::new(Notify::new());
        let requests = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (cue, seen, accepted) = (close.clone(), requests.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let first = accepted.fetch_add(1, Ordering::SeqCst) == 0;
                let cue = first.then(|| cue.clone());
                tokio::spawn(answer_ok(stream, cue, seen.clone()));
            }
        });
        CloseOnCue {
            addr,
            close,
            requests,
            connections,
            task,
        }
    }
}

impl Drop for CloseOnCue {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Answers each bodiless request with `200 ok`; with a `cue`, closes after the first answer
/// once the cue comes.
async fn answer_ok(mut stream: TcpStream, cue: Option<Arc<Notify>>, requests: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.clear();
        requests.fetch_add(1, Ordering::SeqCst);
        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        if stream.write_all(answer).await.is_err() {
            return;
        }
        if let Some(cue) = &cue {
            cue.notified().await;
            return;
        }
    }
}
