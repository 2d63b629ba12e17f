//! The forwarding contract, end to end: the real binary between a real client and a real upstream.

use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use http::{Request, Version};
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
];

const OK_2: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[tokio::test]
async fn hop_by_hop_request_headers_are_removed() {
    let up = RawUpstream::start(Mode::Answer(OK_2.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let res = get(
        proxy.addr,
        "/hop",
        &[
            ("connection", "keep-alive, X-Named-Hop"),
            ("x-named-hop", "must go"),
            ("keep-alive", "timeout=5"),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-trailer"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic dXNlcjpwYXNz"),
            ("proxy-authenticate", "Basic"),
            ("x-end-to-end", "stays"),
        ],
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.text());
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    let names = seen[0].header_names();
    for hop in HOP_BY_HOP.iter().chain(&["x-named-hop"]) {
        assert!(
            !names.iter().any(|n| n == hop),
            "{hop} reached the upstream:\n{}",
            seen[0].head
        );
    }
    assert_eq!(seen[0].header("x-end-to-end").as_deref(), Some("stays"));
    proxy.assert_no_panic();
}

#[tokio::test]
async fn hop_by_hop_response_headers_are_removed() {
    let answer = b"HTTP/1.1 200 OK\r\n\
Content-Length: 2\r\n\
Connection: keep-alive, X-Up-Named\r\n\
X-Up-Named: must go\r\n\
Keep-Alive: timeout=5\r\n\
Proxy-Connection: keep-alive\r\n\
TE: trailers\r\n\
Trailer: x-trailer\r\n\
Upgrade: h2c\r\n\
Proxy-Authenticate: Basic realm=\"up\"\r\n\
Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\
X-Up-End-To-End: stays\r\n\
\r\nok";
    let up = RawUpstream::start(Mode::Answer(answer.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /hop HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_response_head(&mut stream, Duration::from_secs(10)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let names = head_header_names(&head);
    for hop in HOP_BY_HOP.iter().chain(&["x-up-named"]) {
        assert!(
            !names.iter().any(|n| n == hop),
            "{hop} reached the client:\n{head}"
        );
    }
    assert_eq!(head_headers(&head, "x-up-end-to-end"), ["stays"]);
    assert_eq!(head_headers(&head, "content-length"), ["2"]);
    assert_eq!(body, b"ok");
    proxy.assert_no_panic();
}

/// The upstream's own chunking is hop-by-hop too: the client gets the proxy's framing (one
/// `Transfer-Encoding: chunked`, never doubled) and the body intact.
#[tokio::test]
async fn chunked_response_is_reframed_once() {
    let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let up = RawUpstream::start(Mode::Answer(answer.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let (out, _) = raw_until_close(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    let (head, body) = out.split_once("\r\n\r\n").expect("a response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(
        head_headers(head, "transfer-encoding"),
        ["chunked"],
        "{head}"
    );
    assert!(head_headers(head, "content-length").is_empty(), "{head}");
    assert_eq!(body, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
}

#[tokio::test]
async fn forwarded_headers_and_via() {
    let up = TestUpstream::with(|_| Reply::ok().header("via", "1.1 app-server")).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let res = get(
        proxy.addr,
        "/fwd",
        &[
            ("x-forwarded-for", "203.0.113.7, 198.51.100.2"),
            ("via", "1.0 corporate-proxy"),
        ],
    )
    .await;
    assert_eq!(res.status, 200);
    let seen = up.last();
    // The client is not a trusted proxy: its chain is replaced, not extended.
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(
        seen.header("forwarded"),
        Some(format!("for=127.0.0.1;proto=http;host=\"{}\"", proxy.addr).as_str())
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    // `get` sends `Host: <proxy addr>`: that is the host the client addressed.
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(proxy.addr.to_string().as_str())
    );
    let via: Vec<&str> = seen
        .headers
        .get_all("via")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(via, ["1.0 corporate-proxy", "1.1 session-proxy"]);
    let via_back: Vec<&str> = res
        .headers
        .get_all("via")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(via_back, ["1.1 app-server", "1.1 session-proxy"]);
}

#[tokio::test]
async fn forwarded_for_starts_a_list_when_absent() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    get(proxy.addr, "/", &[]).await;
    assert_eq!(up.last().header("x-forwarded-for"), Some("127.0.0.1"));
}

#[tokio::test]
async fn request_id_generated_when_absent_kept_when_present() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    get(proxy.addr, "/a", &[]).await;
    get(proxy.addr, "/b", &[]).await;
    get(proxy.addr, "/c", &[("x-request-id", "client-chosen-42")]).await;
    let seen = up.seen();
    let a = seen[0]
        .header("x-request-id")
        .expect("generated")
        .to_owned();
    let b = seen[1]
        .header("x-request-id")
        .expect("generated")
        .to_owned();
    assert!(a.len() >= 16, "{a}");
    assert_ne!(a, b, "every request gets its own id");
    assert_eq!(seen[2].header("x-request-id"), Some("client-chosen-42"));
    assert_eq!(seen[2].headers.get_all("x-request-id").iter().count(), 1);
}

/// `upstream.preserve_host`: true forwards the client's Host, false the upstream's authority;
/// either way `X-Forwarded-Host` is what the client addressed.
#[tokio::test]
async fn preserve_host_decides_the_forwarded_host() {
    let up = TestUpstream::start().await;
    let upstream_authority = up.addr.to_string();
    for (preserve, host) in [
        ("true", "app.example.com"),
        ("false", upstream_authority.as_str()),
    ] {
        let proxy = ProxyBuilder::new(&up.url())
            .set("upstream.preserve_host", preserve)
            .start();
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        stream
            .write_all(b"GET /h HTTP/1.1\r\nHost: app.example.com\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = read_response_head(&mut stream, Duration::from_secs(10)).await;
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "preserve_host {preserve}: {head}"
        );
        let seen = up.last();
        assert_eq!(seen.header("host"), Some(host), "preserve_host {preserve}");
        assert_eq!(
            seen.header("x-forwarded-host"),
            Some("app.example.com"),
            "preserve_host {preserve}"
        );
    }
}

/// The proxy's peak resident memory must stay under this while a stream of any size passes.
const MEMORY_CEILING: u64 = 100 << 20;

/// Which way a big body goes through the proxy.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Up,
    Down,
}

/// Streams `len` bytes through the proxy (an upload or a download) and checks every byte arrived
/// while the proxy's peak RSS stayed under [`MEMORY_CEILING`].
async fn streams_with_flat_memory(direction: Direction, len: u64) {
    let up = StreamUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("upstream.timeout", "10m")
        .env("RUST_LOG", "info")
        .start();
    let before = peak_rss(proxy.pid());
    let within = Duration::from_secs(600);
    let arrived = match direction {
        Direction::Up => {
            let (status, body) = upload(proxy.addr, "/upload", len, within).await;
            assert_eq!(status, 200, "{body}");
            body
        }
        Direction::Down => {
            let path = format!("/download/{len}");
            let (status, count) = download(proxy.addr, &path, within).await;
            assert_eq!(status, 200);
            count.to_string()
        }
    };
    assert_eq!(
        arrived,
        len.to_string(),
        "{direction:?}: every byte arrived"
    );
    let peak = peak_rss(proxy.pid());
    eprintln!(
        "proxy VmHWM: {} KiB before, {} KiB after {len} bytes {direction:?}",
        before >> 10,
        peak >> 10
    );
    assert!(
        peak < MEMORY_CEILING,
        "proxy peak RSS {} MiB: the {direction:?} stream was buffered",
        peak >> 20
    );
}

/// The suite's size: big enough to span many frames and fill every buffer on the way.
const MIB_8: u64 = 8 << 20;
/// The hardening size (`scripts/hardening` runs the ignored tests): ten times the ceiling, so a
/// buffering proxy cannot pass.
const GIB: u64 = 1 << 30;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_streams_with_flat_memory_8_mib() {
    streams_with_flat_memory(Direction::Up, MIB_8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_streams_with_flat_memory_8_mib() {
    streams_with_flat_memory(Direction::Down, MIB_8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1 GiB: run by scripts/hardening"]
async fn one_gib_upload_streams_with_flat_memory() {
    streams_with_flat_memory(Direction::Up, GIB).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1 GiB: run by scripts/hardening"]
async fn one_gib_download_streams_with_flat_memory() {
    streams_with_flat_memory(Direction::Down, GIB).await;
}

#[tokio::test]
async fn upgrade_relays_101_then_bytes_both_ways() {
    let answer = b"HTTP/1.1 101 Switching Protocols\r\n\
Connection: Upgrade, X-Up-Named\r\n\
Upgrade: echo-protocol\r\n\
X-Up-Named: must go\r\n\
Keep-Alive: timeout=5\r\n\
\r\n";
    let up = RawUpstream::start(Mode::UpgradeEcho(answer.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("upstream.upgrades", "[websocket, Echo-Protocol]")
        .start();
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade, X-Client-Named\r\n\
Upgrade: echo-protocol\r\nX-Client-Named: must go\r\nKeep-Alive: timeout=5\r\n\r\n",
        )
        .await
        .unwrap();
    let (head, early) = read_response_head(&mut stream, Duration::from_secs(10)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let connection = head_headers(&head, "connection");
    assert_eq!(connection.len(), 1, "{head}");
    assert!(connection[0].eq_ignore_ascii_case("upgrade"), "{head}");
    assert_eq!(head_headers(&head, "upgrade"), ["echo-protocol"]);
    assert!(head_headers(&head, "x-up-named").is_empty(), "{head}");
    assert!(head_headers(&head, "keep-alive").is_empty(), "{head}");
    assert!(early.is_empty());

    // What the upstream was asked: a real upgrade, minus the other hop-by-hop headers.
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert!(req
        .header("connection")
        .is_some_and(|c| c.eq_ignore_ascii_case("upgrade")));
    assert_eq!(req.header("upgrade").as_deref(), Some("echo-protocol"));
    assert!(req.header("x-client-named").is_none(), "{}", req.head);
    assert!(req.header("keep-alive").is_none(), "{}", req.head);

    // Now it is a byte pipe: small message, then a big one, both echoed.
    let io = async {
        stream.write_all(b"ping").await.unwrap();
        let mut four = [0u8; 4];
        stream.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"ping");
        let big: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
        let (mut r, mut w) = stream.split();
        let write = async {
            w.write_all(&big).await.unwrap();
        };
        let read = async {
            let mut back = vec![0u8; big.len()];
            r.read_exact(&mut back).await.unwrap();
            back
        };
        let ((), back) = tokio::join!(write, read);
        assert!(back == big, "echoed bytes differ");
    };
    tokio::time::timeout(Duration::from_secs(20), io)
        .await
        .expect("upgraded bytes relayed in time");
    proxy.assert_no_panic();
}

/// The `Content-Length` + `Transfer-Encoding` smuggling shape, in both header orders: the proxy
/// either refuses it (400) or forwards one chunked request without a length and closes the client
/// connection. The bytes after the first request are never read as a second request.
#[tokio::test]
async fn conflicting_framing_is_never_smuggled() {
    let orders: [&[u8]; 2] = [
        b"POST /first HTTP/1.1\r\nHost: app.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n\
5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n",
        b"POST /first HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n\
5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n",
    ];
    for payload in orders {
        let up = RawUpstream::start(Mode::Answer(OK_2.to_vec())).await;
        let proxy = ProxyBuilder::new(&up.url()).start();
        let (out, closed) = raw_until_close(proxy.addr, payload, Duration::from_secs(5)).await;
        assert!(
            closed,
            "the proxy kept the connection open after conflicting framing: {out}"
        );
        eprintln!("conflicting framing answered: {:?}", out.lines().next());
        let statuses = out.matches("HTTP/1.1 ").count();
        assert_eq!(statuses, 1, "exactly one response: {out}");
        // Let any stray request reach the upstream before looking.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let wire = String::from_utf8_lossy(&up.bytes()).into_owned();
        assert!(
            !wire.contains("smuggled"),
            "second request reached the upstream:\n{wire}"
        );
        let seen = up.requests();
        if out.starts_with("HTTP/1.1 400") {
            assert!(seen.is_empty(), "refused yet forwarded: {wire}");
        } else {
            assert!(out.starts_with("HTTP/1.1 200"), "{out}");
            assert_eq!(seen.len(), 1, "{wire}");
            let req = &seen[0];
            assert_eq!(req.request_line(), "POST /first HTTP/1.1");
            assert!(
                req.headers("content-length").is_empty(),
                "Content-Length forwarded beside chunking:\n{}",
                req.head
            );
            assert_eq!(
                req.headers("transfer-encoding"),
                ["chunked"],
                "{}",
                req.head
            );
            assert!(
                String::from_utf8_lossy(&req.body).contains("hello"),
                "body: {:?}",
                String::from_utf8_lossy(&req.body)
            );
        }
        proxy.assert_no_panic();
    }
}

#[tokio::test]
async fn differing_duplicate_content_length_is_400() {
    let up = RawUpstream::start(Mode::Answer(OK_2.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let (out, _) = raw_until_close(
        proxy.addr,
        b"POST /x HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        Duration::from_secs(5),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(up.requests().is_empty());
    proxy.assert_no_panic();
}

#[tokio::test]
async fn chunked_request_body_arrives_intact_without_length() {
    let up = RawUpstream::start(Mode::Answer(OK_2.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let (out, _) = raw_until_close(
        proxy.addr,
        b"POST /c HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let req = &up.requests()[0];
    assert_eq!(
        req.headers("transfer-encoding"),
        ["chunked"],
        "{}",
        req.head
    );
    assert!(req.headers("content-length").is_empty(), "{}", req.head);
    let body = String::from_utf8_lossy(&req.body);
    let mut decoded = String::new();
    let mut rest: &str = &body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size, 16).unwrap();
        if n == 0 {
            break;
        }
        decoded.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    assert_eq!(decoded, "hello world");
}

#[tokio::test]
async fn http2_request_is_forwarded_as_http11() {
    let up = TestUpstream::with(|seen| Reply::ok().body(seen.body.clone())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let req = Request::post("http://app.example:8443/h2/path?q=1")
        .header("content-length", "11")
        .header("x-custom", "kept")
        .body(Full::new(Bytes::from_static(b"hello world")))
        .unwrap();
    let res = send_h2(proxy.addr, req).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), "hello world");
    let seen = up.last();
    assert_eq!(seen.version, Version::HTTP_11);
    assert_eq!(seen.uri.path_and_query().unwrap().as_str(), "/h2/path?q=1");
    assert_eq!(seen.header("host"), Some("app.example:8443"));
    assert_eq!(seen.header("x-forwarded-host"), Some("app.example:8443"));
    assert_eq!(seen.header("content-length"), Some("11"));
    assert_eq!(seen.header("x-custom"), Some("kept"));
    assert_eq!(seen.header("via"), Some("2 session-proxy"));
    assert_eq!(&seen.body[..], b"hello world");
    proxy.assert_no_panic();
}

#[tokio::test]
async fn upstream_connections_are_pooled() {
    const N: usize = 20;
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    for i in 0..N {
        let res = get(proxy.addr, &format!("/n/{i}"), &[]).await;
        assert_eq!(res.status, 200);
    }
    assert_eq!(up.seen().len(), N);
    let conns = up.connections();
    assert!(
        conns <= N / 4,
        "{N} sequential requests opened {conns} upstream connections"
    );
}

/// `X-Forwarded-Proto` and `X-Forwarded-Host` are the proxy's to set: a client's own values never
/// reach the upstream, even on a request without a Host header (HTTP/1.0).
#[tokio::test]
async fn client_cannot_spoof_forwarded_proto_or_host() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let res = get(
        proxy.addr,
        "/spoof",
        &[
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example"),
        ],
    )
    .await;
    assert_eq!(res.status, 200);
    let seen = up.last();
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.headers.get_all("x-forwarded-proto").iter().count(), 1);
    assert_eq!(
        seen.header("x-forwarded-host"),
        Some(proxy.addr.to_string().as_str())
    );

    let (out, _) = raw_until_close(
        proxy.addr,
        b"GET /no-host HTTP/1.0\r\nX-Forwarded-Host: evil.example\r\nX-Forwarded-Proto: https\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        out.starts_with("HTTP/1.0 200") || out.starts_with("HTTP/1.1 200"),
        "{out}"
    );
    let seen = up.last();
    assert_eq!(seen.uri.path(), "/no-host");
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert!(
        seen.headers
            .get_all("x-forwarded-host")
            .iter()
            .all(|v| v != "evil.example"),
        "client's X-Forwarded-Host forwarded: {:?}",
        seen.headers
    );
}

/// An upgrade the upstream declines is an ordinary response, and the client connection stays
/// usable for the next request.
#[tokio::test]
async fn declined_upgrade_is_an_ordinary_response() {
    let up = TestUpstream::with(|seen| {
        if seen.header("upgrade").is_some() {
            Reply::ok().status(426).body("no thanks")
        } else {
            Reply::ok()
        }
    })
    .await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("upstream.upgrades", "[echo-protocol]")
        .start();
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: echo-protocol\r\n\r\n")
        .await
        .unwrap();
    let (head, body) = read_response_head(&mut stream, Duration::from_secs(10)).await;
    assert!(head.starts_with("HTTP/1.1 426"), "{head}");
    assert!(head_headers(&head, "upgrade").is_empty(), "{head}");
    let len: usize = head_headers(&head, "content-length")[0].parse().unwrap();
    let mut body = body;
    while body.len() < len {
        let mut more = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut more))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        body.extend_from_slice(&more[..n]);
    }
    assert_eq!(body, b"no thanks");
    stream
        .write_all(b"GET /next HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response_head(&mut stream, Duration::from_secs(10)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    proxy.assert_no_panic();
}

/// An HTTP/1.0 upstream answers; the HTTP/1.1 client still gets `HTTP/1.1` and keeps its
/// connection (found by running curl against a Python HTTP/1.0 app).
#[tokio::test]
async fn an_http10_upstream_does_not_downgrade_the_client() {
    let up = RawUpstream::start(Mode::Answer(
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
    ))
    .await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    for _ in 0..2 {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = read_response_head(&mut stream, Duration::from_secs(10)).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head_headers(&head, "connection").is_empty(), "{head}");
    }
}
