//! Protocol edges (issue 17), black-box over raw TCP: idle HTTP/2 and HTTP/1.1 connections are
//! closed after `limits.idle_timeout` (HTTP/2 with a GOAWAY), and upgraded connections (WebSocket
//! tunnels) hold a connection slot, are bounded by `limits.tunnel_idle_timeout` and are closed with
//! a 1001 close frame when the shutdown grace period ends. `docs/protocol-edges.md` describes
//! each edge.

use std::time::{Duration, Instant};

use crate::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// What a raw HTTP/2 client saw, each with the time since the connection opened.
#[derive(Debug, Default)]
struct H2Log {
    stream_end: Option<Duration>,
    goaway: Option<(Duration, u32)>,
    closed: Option<Duration>,
}

/// Opens an h2c (prior knowledge) connection, sends `GET path` on stream 1 when `path` is given,
/// acknowledges SETTINGS and PINGs like a live client, and records when the response ended, when
/// the GOAWAY came (and its error code) and when the proxy closed the connection. Gives up after
/// `within`.
async fn h2_watch(addr: std::net::SocketAddr, path: Option<&str>, within: Duration) -> H2Log {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let start = Instant::now();
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, &[]));
    if let Some(path) = path {
        // HPACK: :method GET (static 2), :scheme http (6), :path literal (name 4), :authority
        // literal (name 1); no Huffman, no indexing.
        let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
        block.extend_from_slice(path.as_bytes());
        block.extend_from_slice(&[0x01, 8]);
        block.extend_from_slice(b"app.test");
        hello.extend(frame(HEADERS, END_STREAM | 0x4, 1, &block));
    }
    s.write_all(&hello).await.unwrap();

    let mut log = H2Log::default();
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        while buf.len() >= 9 {
            let len = (buf[0] as usize) << 16 | (buf[1] as usize) << 8 | buf[2] as usize;
            if buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (buf[3], buf[4]);
            let stream = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff;
            let payload = buf[9..9 + len].to_vec();
            buf.drain(..9 + len);
            match kind {
                SETTINGS if flags & ACK == 0 => {
                    let _ = s.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
                }
                PING if flags & ACK == 0 => {
                    let _ = s.write_all(&frame(PING, ACK, 0, &payload)).await;
                }
                GOAWAY if log.goaway.is_none() => {
                    let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                    log.goaway = Some((start.elapsed(), code));
                }
                DATA | HEADERS if stream == 1 && flags & END_STREAM != 0 => {
                    log.stream_end = Some(start.elapsed());
                }
                _ => {}
            }
        }
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                log.closed = Some(start.elapsed());
                return log;
            }
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return log,
        }
    }
}

/// An HTTP/2 connection whose client answers every ping used to stay open for ever. With
/// `limits.idle_timeout: 1s`, a response that takes 2 s is not cut (the stream is open), and once
/// it has ended the connection gets a GOAWAY (NO_ERROR) about 1 s later and is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_h2_connection_gets_goaway_then_close() {
    let up = TestUpstream::with(|seen| {
        let reply = Reply::ok().body("slow but complete");
        if seen.uri.path() == "/slow" {
            reply.delay(Duration::from_secs(2))
        } else {
            reply
        }
    })
    .await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.idle_timeout", "1s")
        .start();

    let log = h2_watch(proxy.addr, Some("/slow"), Duration::from_secs(10)).await;
    eprintln!("{log:?}");
    let end = log.stream_end.expect("the slow response completed");
    assert!(end >= Duration::from_millis(1900), "{log:?}");
    let (goaway, code) = log.goaway.expect("a GOAWAY");
    assert_eq!(code, 0, "GOAWAY error code NO_ERROR");
    let quiet = goaway - end;
    assert!(
        quiet >= Duration::from_millis(900) && quiet < Duration::from_millis(2500),
        "GOAWAY {quiet:?} after the stream ended; {log:?}"
    );
    let closed = log.closed.expect("the proxy closed the connection");
    assert!(closed - goaway < Duration::from_secs(2), "{log:?}");

    // A connection that never opens a stream goes the same way.
    let log = h2_watch(proxy.addr, None, Duration::from_secs(10)).await;
    let (goaway, code) = log.goaway.expect("a GOAWAY");
    assert_eq!(code, 0);
    assert!(
        goaway >= Duration::from_millis(900) && goaway < Duration::from_millis(2500),
        "{log:?}"
    );
    assert!(log.closed.is_some(), "{log:?}");
    proxy.assert_no_panic();
}

/// HTTP/1.1 keep-alive: an idle connection is closed after `limits.idle_timeout` even when
/// `limits.header_read_timeout` is longer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http1_keepalive_is_closed_after_idle_timeout() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.idle_timeout", "1s")
        .set("limits.header_read_timeout", "20s")
        .start();
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response_head(&mut s, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let answered = Instant::now();
    assert!(closed_within(&mut s, Duration::from_secs(5)).await);
    let idle = answered.elapsed();
    assert!(
        idle >= Duration::from_millis(800) && idle < Duration::from_millis(2500),
        "closed after {idle:?}"
    );
    proxy.assert_no_panic();
}

const WS_101: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
/// A close frame, status 1001 "going away", as a server sends it.
const CLOSE_1001: [u8; 4] = [0x88, 0x02, 0x03, 0xe9];

/// A masked text frame (as a client sends it); the echo upstream sends the same bytes back.
fn ws_frame(text: &str) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut f = vec![0x81, 0x80 | text.len() as u8];
    f.extend_from_slice(&mask);
    f.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

async fn echo(s: &mut TcpStream, text: &str) {
    let frame = ws_frame(text);
    s.write_all(&frame).await.unwrap();
    let mut back = vec![0u8; frame.len()];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
        .await
        .expect("echo in time")
        .unwrap();
    assert_eq!(back, frame);
}

/// Reads until the proxy closes; returns what came and when (from `since`).
async fn read_to_close(s: &mut TcpStream, since: Instant, within: Duration) -> (Vec<u8>, Duration) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(within, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, since.elapsed()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => panic!("still open after {within:?}; got {out:?}"),
        }
    }
}

/// Tunnels count toward `limits.max_connections`: with one slot held by a WebSocket, a second
/// client waits (in the backlog) until the tunnel closes. Before, the slot was given back at the
/// upgrade and the second client was served at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_holds_its_connection_slot() {
    let up = RawUpstream::start(Mode::UpgradeEcho(WS_101.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.max_connections", "1")
        .start();
    let mut ws = open_ws(proxy.addr).await;
    echo(&mut ws, "hello").await;

    let addr = proxy.addr;
    let second = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /second HTTP/1.1\r\nHost: app.test\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !second.is_finished(),
        "a second client was served while the tunnel held the only slot"
    );
    echo(&mut ws, "still here").await;
    drop(ws);
    let answer = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the second client was served once the tunnel closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 "), "{answer:?}");
    proxy.assert_no_panic();
}

/// SIGTERM: a tunnel keeps working through `limits.shutdown_grace`, is then closed with a 1001
/// close frame, and shutdown waits for it (it ends "all connections closed", exit 0). Before,
/// the process exited at once and the tunnel was cut without a close frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_gives_tunnels_the_grace_period_then_a_close_frame() {
    let up = RawUpstream::start(Mode::UpgradeEcho(WS_101.to_vec())).await;
    let mut proxy = ProxyBuilder::new(&up.url())
        .set("limits.shutdown_grace", "2s")
        .start();
    let mut ws = open_ws(proxy.addr).await;
    echo(&mut ws, "before").await;

    proxy.signal("TERM");
    let signalled = Instant::now();
    assert!(proxy.wait_for_log("shutting down", Duration::from_secs(5)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    echo(&mut ws, "during the grace period").await;

    let (tail, closed_after) = read_to_close(&mut ws, signalled, Duration::from_secs(6)).await;
    assert_eq!(tail, CLOSE_1001, "a 1001 close frame, then the close");
    assert!(
        closed_after >= Duration::from_millis(1500) && closed_after < Duration::from_millis(3000),
        "closed {closed_after:?} after SIGTERM"
    );
    let (code, logs) = tokio::task::spawn_blocking(move || {
        let code = proxy.wait_exit(Duration::from_secs(10));
        (code, proxy.logs_text())
    })
    .await
    .unwrap();
    assert_eq!(code, Some(0), "{logs}");
    assert!(logs.contains("all connections closed"), "{logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// `limits.tunnel_idle_timeout` closes a silent tunnel (close frame 1001, then TCP close); the
/// open-tunnels gauge and the byte counters follow it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_tunnel_is_closed_and_metered() {
    let up = RawUpstream::start(Mode::UpgradeEcho(WS_101.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("limits.tunnel_idle_timeout", "1s")
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();
    let mut ws = open_ws(proxy.addr).await;
    echo(&mut ws, "hello").await;
    let last_byte = Instant::now();
    let text = get(admin, "/metrics", &[]).await.text();
    assert_eq!(
        metric(&text, "session_proxy_tunnels_open"),
        Some(1.0),
        "{text}"
    );
    let frame_len = ws_frame("hello").len() as f64;
    for dir in ["client_to_upstream", "upstream_to_client"] {
        let series = format!("session_proxy_tunnel_bytes_total{{direction=\"{dir}\"}}");
        assert_eq!(metric(&text, &series), Some(frame_len), "{series}\n{text}");
    }

    let (tail, idle) = read_to_close(&mut ws, last_byte, Duration::from_secs(6)).await;
    assert_eq!(tail, CLOSE_1001);
    assert!(
        idle >= Duration::from_millis(900) && idle < Duration::from_millis(2500),
        "closed after {idle:?} of silence"
    );
    // The gauge drops once the tunnel's task has ended, just after the close reached us.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = get(admin, "/metrics", &[]).await.text();
        if metric(&text, "session_proxy_tunnels_open") == Some(0.0) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        metric(&text, "session_proxy_tunnels_open"),
        Some(0.0),
        "{text}"
    );
    proxy.assert_no_panic();
}

/// RFC 9113 §3.4 (h2spec 3.5/2): a connection that opens with neither an HTTP/1 request line
/// nor the HTTP/2 preface is answered with SETTINGS and GOAWAY(PROTOCOL_ERROR), then closed;
/// before, hyper took it for HTTP/1 and wrote a 400 that an HTTP/2 client cannot read. A broken
/// HTTP/1 request line still gets its 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_connection_preface_gets_goaway_protocol_error() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let settings_then_goaway = [
        0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 8, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    ];
    for opening in [
        &b"INVALID CONNECTION PREFACE\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
    ] {
        let (answer, closed) = raw_bytes_until_close(proxy.addr, opening).await;
        assert_eq!(
            answer,
            settings_then_goaway,
            "{:?}",
            String::from_utf8_lossy(opening)
        );
        assert!(closed);
    }
    let (answer, closed) = raw_bytes_until_close(proxy.addr, b"GET / HTTP/1.7\r\n\r\n").await;
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");
    assert!(closed);
    proxy.assert_no_panic();
}

async fn raw_bytes_until_close(addr: std::net::SocketAddr, bytes: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(4), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (out, false),
        }
    }
}
