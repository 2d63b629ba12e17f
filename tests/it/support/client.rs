//! Clients for tests: a plain HTTP/1.1 request helper and raw TCP for malformed input.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// Reads a whole response into an `Answer` (a body that breaks off reads as what arrived).
    pub async fn read(res: http::Response<hyper::body::Incoming>) -> Answer {
        let (parts, body) = res.into_parts();
        let body = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// Every Set-Cookie line.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
    /// The value our `name` cookie is set to (None when absent; Some("") when expired).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies().iter().find_map(|c| {
            let (pair, _) = c.split_once(';').unwrap_or((c, ""));
            let (n, v) = pair.split_once('=')?;
            (n == name).then(|| v.to_owned())
        })
    }
}

/// One request over a fresh HTTP/1.1 connection.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let res = tokio::time::timeout(Duration::from_secs(30), sender.send_request(req))
        .await
        .expect("proxy answered in time")
        .expect("proxy answered");
    Answer::read(res).await
}

/// GET `path` with extra headers.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut b = Request::get(path);
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
        b = b.header("host", format!("{addr}"));
    }
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    send(addr, b.body(Full::new(Bytes::new())).unwrap()).await
}

/// GET `path` carrying `cookie` as the session cookie `name`.
pub async fn get_with_cookie(addr: SocketAddr, path: &str, name: &str, cookie: &str) -> Answer {
    let header = format!("{name}={cookie}");
    get(addr, path, &[("cookie", header.as_str())]).await
}

/// Writes `bytes` on a fresh connection and reads until the proxy closes it or `wait` passes.
pub async fn raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One request over a fresh HTTP/2 connection (h2c, prior knowledge). The request URI should be
/// absolute (`http://host/path`): its authority becomes `:authority`.
pub async fn send_h2(addr: SocketAddr, req: Request<Full<Bytes>>) -> Answer {
    let mut sender = h2_sender(addr).await;
    let work = async {
        let res = sender.send_request(req).await.expect("proxy answered");
        Answer::read(res).await
    };
    tokio::time::timeout(Duration::from_secs(30), work)
        .await
        .expect("proxy answered in time")
}

/// A fresh HTTP/2 (h2c, prior knowledge) connection, for tests that need the raw response (its
/// trailers, say) rather than an [`Answer`].
pub async fn h2_sender(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    sender
}

/// Reads from `stream` until it holds a complete response head; returns the head (without the
/// final blank line) and whatever body bytes came with it. Panics after `within`.
pub async fn read_response_head(stream: &mut TcpStream, within: Duration) -> (String, Vec<u8>) {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).into_owned();
            return (head, buf[i + 4..].to_vec());
        }
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .expect("response head in time")
            .expect("read from proxy");
        assert!(
            n > 0,
            "proxy closed before a full response head: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Every header name of a raw head (request or response), lower-cased.
pub fn head_header_names(head: &str) -> Vec<String> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, _)| n.trim().to_ascii_lowercase())
        .collect()
}

/// Every value of header `name` in a raw head.
pub fn head_headers(head: &str, name: &str) -> Vec<String> {
    head.split("\r\n")
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// Reads until EOF (true) or until `within` passes (false).
pub async fn closed_within(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    within: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// Writes `bytes` on a fresh connection and reads until the proxy closes it; returns what was read
/// and whether the proxy closed the connection within `within`. The proxy may refuse and close
/// before it has read everything, so a failed write is an answer, not a test failure.
pub async fn raw_until_close(addr: SocketAddr, bytes: &[u8], within: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(bytes).await;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + within;
    let closed = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// Opens a WebSocket tunnel through the proxy (the upstream echoes every byte).
pub async fn open_ws(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, early) = read_response_head(&mut s, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(early.is_empty());
    s
}
