//! A raw-TCP upstream that records the exact bytes it receives and misbehaves on demand: answers
//! with fixed bytes, closes or resets without answering, stalls, or switches protocols and echoes.
//!
//! hyper would hide framing details (it drops `Content-Length` beside chunking, it decodes chunks),
//! so tests about what goes over the wire use this instead of [`super::TestUpstream`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the raw upstream behaves on every connection.
#[derive(Clone)]
pub enum Mode {
    /// Reads each request (no body, `Content-Length` or chunked) and answers with these bytes;
    /// keeps the connection open for the next request.
    Answer(Vec<u8>),
    /// Like `Answer`, but closes (FIN) right after the first answer, without saying so
    /// (`Connection: close`): an upstream whose keep-alive timeout is zero.
    AnswerOnce(Vec<u8>),
    /// Reads the request head, then closes (FIN) without answering.
    Close,
    /// Reads the request head, then resets the connection (RST).
    Reset,
    /// Reads the request head and never answers (the connection stays open until the test ends).
    Stall,
    /// Reads the request head, writes these bytes (a 101 response), then echoes every byte back.
    UpgradeEcho(Vec<u8>),
}

/// One request as it arrived on the wire.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// Request line and header lines, without the final empty line.
    pub head: String,
    /// The body bytes exactly as framed on the wire (chunk sizes included when chunked).
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn request_line(&self) -> &str {
        self.head.lines().next().unwrap_or("")
    }
    /// Every value of header `name` (case-insensitive), in order.
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers(name).into_iter().next()
    }
    /// Every header name, lower-cased.
    pub fn header_names(&self) -> Vec<String> {
        self.head
            .split("\r\n")
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, _)| n.trim().to_ascii_lowercase())
            .collect()
    }
}

pub struct RawUpstream {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    bytes: Arc<Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RawUpstream {
    pub async fn start(mode: Mode) -> RawUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let (r2, b2) = (requests.clone(), bytes.clone());
        let task = tokio::spawn(async move {
            // Stalled connections are parked here so they stay open until the upstream is dropped.
            let parked = Arc::new(Mutex::new(Vec::<TcpStream>::new()));
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (mode, requests, bytes, parked) =
                    (mode.clone(), r2.clone(), b2.clone(), parked.clone());
                tokio::spawn(async move {
                    serve(stream, mode, requests, bytes, parked).await;
                });
            }
        });
        RawUpstream {
            addr,
            requests,
            bytes,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Every byte received, over all connections, in arrival order per connection.
    pub fn bytes(&self) -> Vec<u8> {
        self.bytes.lock().unwrap().clone()
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads from `stream` into `buf` until `buf` holds `\r\n\r\n`; returns the head's length
/// (including the blank line), or None on EOF.
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    all: &Mutex<Vec<u8>>,
) -> Option<usize> {
    loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            return Some(i + 4);
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        all.lock().unwrap().extend_from_slice(&chunk[..n]);
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn fill(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    want: usize,
    all: &Mutex<Vec<u8>>,
) -> bool {
    while buf.len() < want {
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => {
                all.lock().unwrap().extend_from_slice(&chunk[..n]);
                buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
    true
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads a chunked body from the front of `buf` (reading more as needed); returns its wire length.
async fn read_chunked(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    all: &Mutex<Vec<u8>>,
) -> Option<usize> {
    let mut pos = 0;
    loop {
        let line_end = loop {
            if let Some(i) = find(&buf[pos..], b"\r\n") {
                break pos + i;
            }
            if !fill(stream, buf, buf.len() + 1, all).await {
                return None;
            }
        };
        let line = String::from_utf8_lossy(&buf[pos..line_end]).into_owned();
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        pos = line_end + 2;
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let end = loop {
                    if let Some(i) = find(&buf[pos..], b"\r\n") {
                        break pos + i;
                    }
                    if !fill(stream, buf, buf.len() + 1, all).await {
                        return None;
                    }
                };
                let empty = end == pos;
                pos = end + 2;
                if empty {
                    return Some(pos);
                }
            }
        }
        if !fill(stream, buf, pos + size + 2, all).await {
            return None;
        }
        pos += size + 2;
    }
}

async fn serve(
    mut stream: TcpStream,
    mode: Mode,
    requests: Arc<Mutex<Vec<RawRequest>>>,
    all: Arc<Mutex<Vec<u8>>>,
    parked: Arc<Mutex<Vec<TcpStream>>>,
) {
    let mut buf = Vec::new();
    loop {
        let Some(head_len) = read_head(&mut stream, &mut buf, &all).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_len - 4]).into_owned();
        buf.drain(..head_len);
        let mut req = RawRequest {
            head,
            body: Vec::new(),
        };
        match &mode {
            Mode::Answer(answer) | Mode::AnswerOnce(answer) => {
                let chunked = req
                    .headers("transfer-encoding")
                    .iter()
                    .any(|v| v.to_ascii_lowercase().contains("chunked"));
                let body_len = if chunked {
                    match read_chunked(&mut stream, &mut buf, &all).await {
                        Some(n) => n,
                        None => return,
                    }
                } else {
                    let len = req
                        .header("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0usize);
                    if !fill(&mut stream, &mut buf, len, &all).await {
                        return;
                    }
                    len
                };
                req.body = buf.drain(..body_len).collect();
                requests.lock().unwrap().push(req);
                if stream.write_all(answer).await.is_err() {
                    return;
                }
                if matches!(mode, Mode::AnswerOnce(_)) {
                    let _ = stream.shutdown().await;
                    return;
                }
            }
            Mode::Close => {
                requests.lock().unwrap().push(req);
                let _ = stream.shutdown().await;
                return;
            }
            Mode::Reset => {
                requests.lock().unwrap().push(req);
                let _ = stream.set_zero_linger();
                return;
            }
            Mode::Stall => {
                requests.lock().unwrap().push(req);
                parked.lock().unwrap().push(stream);
                return;
            }
            Mode::UpgradeEcho(answer) => {
                requests.lock().unwrap().push(req);
                if stream.write_all(answer).await.is_err() {
                    return;
                }
                if !buf.is_empty() && stream.write_all(&buf).await.is_err() {
                    return;
                }
                let (mut r, mut w) = stream.split();
                let _ =
                    tokio::time::timeout(Duration::from_secs(60), tokio::io::copy(&mut r, &mut w))
                        .await;
                return;
            }
        }
    }
}
