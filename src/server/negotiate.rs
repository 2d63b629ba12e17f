//! Which HTTP a connection speaks, decided before hyper is given the connection.
//!
//! hyper-util's `auto` builder decides by reading the first bytes itself: every connection then
//! carries the detection state, a `Rewind` buffer and room for both protocols' connection types,
//! for its whole life (3.8 KiB per idle connection, docs/performance.md §2). Deciding here lets
//! HTTP/1.1 connections, nearly all of them, hold only hyper's HTTP/1 connection:
//!
//! - over TLS, ALPN has already decided: `h2` is HTTP/2, anything else (`http/1.1`, or no ALPN)
//!   is HTTP/1.1, as in nginx (RFC 9113 §3.2: h2 over TLS is negotiated with ALPN);
//! - in clear text, the first bytes are peeked, not read: the 24-byte HTTP/2 preface is h2c
//!   (prior knowledge), anything else is HTTP/1.1, the rule `auto` applies. The bytes stay in the
//!   socket for hyper (through the bare-LF guard), and nothing is allocated for a connection that
//!   has sent nothing yet.

use std::future::Future;
use std::io;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long to wait before peeking again when the bytes so far are only the start of the preface:
/// they stay queued, so the socket would report readable at once and a peek loop would spin.
const PREFACE_REPEEK: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    Http1,
    Http2,
}

/// A connection that can tell which HTTP its client speaks.
pub(super) trait Negotiated {
    /// `Ok(None)`: the client closed without sending anything.
    fn protocol(&self) -> impl Future<Output = io::Result<Option<Protocol>>> + Send;
}

impl Negotiated for TcpStream {
    async fn protocol(&self) -> io::Result<Option<Protocol>> {
        let mut first = [0u8; H2_PREFACE.len()];
        loop {
            // Waits until bytes (or the end) arrive; they stay in the socket.
            let n = self.peek(&mut first).await?;
            if let Some(decided) = classify(&first[..n]) {
                return Ok(decided);
            }
            tokio::time::sleep(PREFACE_REPEEK).await;
        }
    }
}

impl Negotiated for TlsStream<TcpStream> {
    fn protocol(&self) -> impl Future<Output = io::Result<Option<Protocol>>> + Send {
        let h2 = self.get_ref().1.alpn_protocol() == Some(b"h2");
        std::future::ready(Ok(Some(if h2 { Protocol::Http2 } else { Protocol::Http1 })))
    }
}

/// The decision the first bytes allow: `None` while they are a proper prefix of the preface.
fn classify(first: &[u8]) -> Option<Option<Protocol>> {
    if first.is_empty() {
        Some(None)
    } else if !H2_PREFACE.starts_with(first) {
        Some(Some(Protocol::Http1))
    } else if first.len() == H2_PREFACE.len() {
        Some(Some(Protocol::Http2))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preface_alone_is_http2() {
        assert_eq!(classify(H2_PREFACE), Some(Some(Protocol::Http2)));
    }

    #[test]
    fn anything_that_leaves_the_preface_is_http1() {
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Some(Protocol::Http1)));
        assert_eq!(classify(b"PRI * HTTP/1.1\r\n"), Some(Some(Protocol::Http1)));
        assert_eq!(classify(b"\x16\x03\x01"), Some(Some(Protocol::Http1)));
    }

    #[test]
    fn a_partial_preface_waits_and_nothing_is_a_close() {
        assert_eq!(classify(b"PRI * HT"), None);
        assert_eq!(classify(b""), Some(None));
    }

    #[tokio::test]
    async fn peeking_leaves_the_bytes_for_hyper() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(&H2_PREFACE[..10]).await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
            c.write_all(&H2_PREFACE[10..]).await.unwrap();
            c
        });
        let (mut server, _) = listener.accept().await.unwrap();
        assert_eq!(server.protocol().await.unwrap(), Some(Protocol::Http2));
        let mut got = [0u8; 24];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, H2_PREFACE);
        drop(client.await.unwrap());
        assert_eq!(server.protocol().await.unwrap(), None);
    }
}
