//! Protocol edges (issue 17), black-box over raw TCP: idle HTTP/2 and HTTP/1.1 connections are
//! closed after `limits.idle_timeout` (HTTP/2 with a GOAWAY), and upgraded connections (WebSocket
//! tunnels) hold a connection slot, are bounded by `limits.tunnel_idle_timeout` and are closed with
//! a 1001 close frame when the shutdown grace period ends. `docs/protocol-edges.md` describes
//! each edge.
mod support;

use std::time::{Duration, Instant};

use support::*;
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
