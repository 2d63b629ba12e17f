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

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

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
            // Only the start of the preface so far. The bytes stay queued, so the socket still
            // reads as ready: clear that, and the next peek waits for more bytes to arrive (the
            // next readiness event) instead of spinning or polling on a timer, which a client
            // holding many such connections could turn into CPU. A real readiness error ends
            // the connection; the expected `WouldBlock` is the clearing itself.
            match self.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            }) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
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
        use std::time::Duration;
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

    /// A client that sends the start of the preface and stalls is waited for, not polled: the
    /// future is woken again only when bytes arrive.
    #[tokio::test]
    async fn a_stalled_partial_preface_is_not_polled_in_a_loop() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        use std::time::Duration;
        use tokio::io::AsyncWriteExt;

        struct Counted<F>(std::pin::Pin<Box<F>>, Arc<AtomicUsize>);
        impl<F: Future> Future for Counted<F> {
            type Output = F::Output;
            fn poll(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<F::Output> {
                self.1.fetch_add(1, Ordering::Relaxed);
                self.0.as_mut().poll(cx)
            }
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(&H2_PREFACE[..8]).await.unwrap();
        let polls = Arc::new(AtomicUsize::new(0));
        let negotiating = tokio::spawn(Counted(
            Box::pin(async move { server.protocol().await.map(|p| (p, server)) }),
            Arc::clone(&polls),
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let stalled = polls.load(Ordering::Relaxed);
        assert!(stalled <= 3, "polled {stalled} times while nothing arrived");
        client.write_all(&H2_PREFACE[8..]).await.unwrap();
        let (protocol, _server) = negotiating.await.unwrap().unwrap();
        assert_eq!(protocol, Some(Protocol::Http2));
    }
}
