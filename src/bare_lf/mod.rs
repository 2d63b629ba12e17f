//! Refusing bare LF line endings in HTTP/1 request heads, before hyper sees them.
//!
//! hyper (httparse) accepts a lone LF as a line end, as RFC 9112 §2.2 allows a recipient to. The
//! proxy re-serializes with CRLF, so the app never disagrees with it, but a device in front of the
//! proxy that reads bare LF differently (as part of a header value, say) can: one byte stream, two
//! readings of where a request ends, which is how smuggling starts. A proxy that is a security
//! boundary should accept only CRLF, so [`BareLfGuard`] sits between the socket and hyper.
//!
//! Only head bytes are checked: an LF in a body is data. To know where heads are, [`Scanner`]
//! follows the request framing exactly as hyper does (Content-Length, chunked with trailers, no
//! body otherwise; see `hyper/src/proto/h1/role.rs` and `decode.rs`), head after head, so a
//! pipelined request is checked and an LF inside a Content-Length body is not. It stops looking
//! (passes everything) once the stream is no longer HTTP/1 requests: the HTTP/2 preface, a head
//! hyper will refuse anyway, or a connection that was upgraded.
//!
//! On a bare LF in a head, the guard hands hyper the bytes before it and then a byte hyper's
//! parser cannot take (NUL) and end of input, so hyper itself answers `400 Bad Request` and
//! closes, after finishing (in order) any response to requests pipelined before. On a bare LF in a
//! chunked body's framing or trailers, where a 400 can no longer be written cleanly, the read
//! fails and the connection is closed.
//!
//! One more edge lives here because it is decided by the same first bytes: a connection that
//! opens with neither an HTTP/1 request line nor the HTTP/2 preface gets the GOAWAY
//!
//! `scanner` follows the request stream byte by byte, `framing` holds hyper's rules for where a
//! body starts and ends; this file is the IO wrapper that acts on the scanner's verdicts.

mod framing;
mod scanner;

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use scanner::{Scanner, Verdict};

/// The largest request head hyper accepts (`http1().max_buf_size`); one that does not end within
/// this is refused by hyper with 431, so the scanner stops collecting it.
pub const MAX_HEAD: usize = 64 * 1024;

/// What hyper's parser gets in place of a head with a bare LF: NUL is invalid in every part of a
/// request head, so hyper answers 400 whatever came before it on the line.
const POISON: &[u8] = b"\0\r\n\r\n";

/// The server's half of a failed HTTP/2 start: an empty SETTINGS (the server preface, which must
/// come first), then GOAWAY(last stream 0, PROTOCOL_ERROR) as RFC 9113 §3.4 asks.
const GOAWAY_PROTOCOL_ERROR: &[u8] = &[
    0, 0, 0, 0x4, 0, 0, 0, 0, 0, // SETTINGS, empty
    0, 0, 8, 0x7, 0, 0, 0, 0, 0, // GOAWAY, 8 bytes, stream 0
    0, 0, 0, 0, 0, 0, 0, 0x1, // last stream 0, PROTOCOL_ERROR
];

/// Set by the server when it answers `101 Switching Protocols`: from then on the client's bytes
/// belong to the tunnel, not to HTTP/1.
#[derive(Debug, Default)]
pub struct Upgraded(AtomicBool);

impl Upgraded {
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
    fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// After a refusal: what is left to hand hyper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    None,
    /// This much of [`POISON`] has been handed over.
    Poison(usize),
    /// A read error, once.
    Fail,
    /// This much of [`GOAWAY_PROTOCOL_ERROR`] has been written to the client; end of input for
    /// hyper once it all has.
    GoAway(usize),
    /// End of input from now on.
    Done,
}

/// The client connection as hyper sees it: the socket (or TLS stream), with bare-LF heads turned
/// into a 400 from hyper. Writes pass straight through.
pub struct BareLfGuard<IO> {
    io: IO,
    scanner: Scanner,
    upgraded: Arc<Upgraded>,
    refusal: Refusal,
}

impl<IO> BareLfGuard<IO> {
    pub fn new(io: IO, upgraded: Arc<Upgraded>) -> Self {
        BareLfGuard {
            io,
            scanner: Scanner::default(),
            upgraded,
            refusal: Refusal::None,
        }
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for BareLfGuard<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.refusal {
            Refusal::None => {}
            Refusal::Poison(sent) => {
                let n = (POISON.len() - sent).min(buf.remaining());
                buf.put_slice(&POISON[sent..sent + n]);
                this.refusal = if sent + n == POISON.len() {
                    Refusal::Done
                } else {
                    Refusal::Poison(sent + n)
                };
                return Poll::Ready(Ok(()));
            }
            Refusal::Fail => {
                this.refusal = Refusal::Done;
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "bare LF in chunked framing",
                )));
            }
            Refusal::GoAway(mut sent) => {
                while sent < GOAWAY_PROTOCOL_ERROR.len() {
                    match Pin::new(&mut this.io).poll_write(cx, &GOAWAY_PROTOCOL_ERROR[sent..]) {
                        Poll::Ready(Ok(n)) if n > 0 => {
                            sent += n;
                            this.refusal = Refusal::GoAway(sent);
                        }
                        Poll::Ready(Ok(_)) | Poll::Ready(Err(_)) => break,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                if sent == GOAWAY_PROTOCOL_ERROR.len() {
                    std::task::ready!(Pin::new(&mut this.io).poll_flush(cx))?;
                }
                this.refusal = Refusal::Done;
                return Poll::Ready(Ok(()));
            }
            Refusal::Done => return Poll::Ready(Ok(())),
        }
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        if this.upgraded.get() {
            this.scanner.pass_all();
            return Poll::Ready(Ok(()));
        }
        match this.scanner.feed(&buf.filled()[before..]) {
            Verdict::Pass => {}
            Verdict::BareLfInHead(at) => {
                tracing::debug!("bare LF in a request head; refusing with 400");
                buf.set_filled(before + at);
                this.refusal = Refusal::Poison(0);
                if at == 0 {
                    // Nothing to hand over from this read: go straight on to the poison, since an
                    // empty read would mean end of input.
                    return Pin::new(this).poll_read(cx, buf);
                }
            }
            Verdict::NotHttp => {
                tracing::debug!("neither HTTP/1 nor the HTTP/2 preface; GOAWAY(PROTOCOL_ERROR)");
                // Nothing of this reaches hyper, so hyper writes nothing that could follow the
                // GOAWAY; it sees the end of input (after whatever it already read) and closes.
                buf.set_filled(before);
                this.refusal = Refusal::GoAway(0);
                return Pin::new(this).poll_read(cx, buf);
            }
            Verdict::BadChunk(at) => {
                tracing::debug!("bad chunked framing (bare LF?); closing");
                buf.set_filled(before + at);
                this.refusal = Refusal::Fail;
                if at == 0 {
                    return Pin::new(this).poll_read(cx, buf);
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for BareLfGuard<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
