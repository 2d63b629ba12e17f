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
//! (PROTOCOL_ERROR) that RFC 9113 §3.4 asks for an invalid preface, not an HTTP/1 400.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

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

/// hyper's default limit on header fields (`DEFAULT_MAX_HEADERS`); more is a 431 from hyper.
const MAX_HEADERS: usize = 100;

/// Where in the request stream the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a head. `line` counts the bytes of the current line so far (its CR included),
    /// `lines` the non-empty lines of this head, `cr` whether the last byte was CR.
    Head { line: usize, lines: usize, cr: bool },
    /// Inside a Content-Length body with this many bytes to go.
    Body(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// Not (or no longer) HTTP/1 requests: pass everything.
    Opaque,
    /// The connection opened with `PRI * HTTP/2.0\r\n\r\n`; this many bytes of the rest of the
    /// HTTP/2 preface (`SM\r\n\r\n`) have matched so far.
    PrefaceTail(usize),
    /// The connection opened with neither an HTTP/1 request line nor the HTTP/2 preface.
    NotHttp,
}

/// hyper's chunked decoder states (`ChunkedState`), less the ones that only count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Start,
    Size(u64),
    SizeLws(u64),
    Extension(u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    Trailer,
    TrailerLf,
    EndCr,
    EndLf,
}

/// What [`Scanner::feed`] found in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every byte may go to hyper.
    Pass,
    /// A bare LF at this offset, in a request head: the bytes before it may go.
    BareLfInHead(usize),
    /// A bare LF (or other framing hyper would also reject) at this offset inside a chunked body.
    BadChunk(usize),
    /// The connection opened with neither an HTTP/1 request line nor the HTTP/2 preface: taken
    /// as an invalid HTTP/2 connection preface (RFC 9113 §3.4), answered with GOAWAY.
    NotHttp,
}

const EMPTY_HEAD: State = State::Head {
    line: 0,
    lines: 0,
    cr: false,
};

/// The framing follower. Pure: bytes in, verdict out, no I/O, so it is unit-tested exhaustively.
#[derive(Debug)]
pub struct Scanner {
    state: State,
    /// A head that spans reads, collected so it can be parsed once complete. Empty (and not
    /// allocated) in the common case of a head arriving in one read.
    spill: Vec<u8>,
    /// The current head has outgrown [`MAX_HEAD`]: hyper will refuse it.
    oversized: bool,
    /// No head has ended yet: the next one is the connection's first bytes.
    first: bool,
    /// The current head may have a `Content-Length` or `Transfer-Encoding` line. Most heads
    /// (GETs) have neither: then no body follows and the head need not be parsed at all.
    framed: bool,
    /// In the connection's first request line: spaces seen, and how much of `HTTP/` matched after
    /// the second. hyper's parser refuses a wrong version as soon as its first byte arrives, so
    /// the line is judged byte by byte, not once complete.
    first_spaces: u8,
    first_version: u8,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: EMPTY_HEAD,
            spill: Vec::new(),
            oversized: false,
            first: true,
            framed: false,
            first_spaces: 0,
            first_version: 0,
        }
    }
}

impl Scanner {
    /// Stops looking: the connection carries something other than HTTP/1 requests now.
    pub fn pass_all(&mut self) {
        self.state = State::Opaque;
        self.spill = Vec::new();
    }

    /// Follows `buf`, the next bytes from the client.
    pub fn feed(&mut self, buf: &[u8]) -> Verdict {
        let mut i = 0;
        // Where the head being read started in `buf` (0 when it started in an earlier read).
        let mut head_from = 0;
        while i < buf.len() {
            match self.state {
                State::Opaque => return Verdict::Pass,
                State::NotHttp => return Verdict::NotHttp,
                State::PrefaceTail(matched) => {
                    const TAIL: &[u8] = b"SM\r\n\r\n";
                    let take = (TAIL.len() - matched).min(buf.len() - i);
                    if buf[i..i + take] != TAIL[matched..matched + take] {
                        return Verdict::NotHttp;
                    }
                    i += take;
                    self.state = if matched + take == TAIL.len() {
                        State::Opaque
                    } else {
                        State::PrefaceTail(matched + take)
                    };
                }
                State::Body(left) => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(buf.len() - i);
                    i += take;
                    let left = left - take as u64;
                    if left == 0 {
                        self.state = EMPTY_HEAD;
                        head_from = i;
                    } else {
                        self.state = State::Body(left);
                    }
                }
                State::Chunked(Chunk::Data(left)) => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(buf.len() - i);
                    i += take;
                    let left = left - take as u64;
                    self.state = State::Chunked(if left == 0 {
                        Chunk::DataCr
                    } else {
                        Chunk::Data(left)
                    });
                }
                State::Chunked(chunk) => {
                    match step_chunk(chunk, buf[i]) {
                        Some(Some(next)) => self.state = State::Chunked(next),
                        Some(None) => {
                            self.state = EMPTY_HEAD;
                            head_from = i + 1;
                        }
                        None => return Verdict::BadChunk(i),
                    }
                    i += 1;
                }
                State::Head { line, lines, cr } => {
                    let found = memchr::memchr(b'\n', &buf[i..]);
                    if self.first && lines == 0 {
                        let end = found.map_or(buf.len(), |n| i + n);
                        if !self.request_line_so_far(&buf[i..end]) {
                            self.state = State::NotHttp;
                            return Verdict::NotHttp;
                        }
                    }
                    let Some(n) = found else {
                        let rest = &buf[i..];
                        self.state = State::Head {
                            line: line + rest.len(),
                            lines,
                            cr: rest.last() == Some(&b'\r'),
                        };
                        self.collect(&buf[head_from..]);
                        return Verdict::Pass;
                    };
                    let lf = i + n;
                    let cr = if n == 0 { cr } else { buf[lf - 1] == b'\r' };
                    if !cr {
                        return Verdict::BareLfInHead(lf);
                    }
                    let line = line + n;
                    i = lf + 1;
                    if line > 1 {
                        self.framed |= may_frame(&buf[i..]);
                        self.state = State::Head {
                            line: 0,
                            lines: lines + 1,
                            cr: false,
                        };
                    } else if lines == 0 {
                        // An empty line before the request line: httparse skips it, so do we.
                        self.state = EMPTY_HEAD;
                    } else {
                        self.end_head(&buf[head_from..i]);
                        head_from = i;
                    }
                }
            }
        }
        match self.state {
            State::Head { .. } => self.collect(&buf[head_from.min(buf.len())..]),
            State::NotHttp => return Verdict::NotHttp,
            _ => {}
        }
        Verdict::Pass
    }

    /// Can the connection's first line, continued by `part`, still be an HTTP/1 request line
    /// (`method SP target SP HTTP/...`; the HTTP/2 preface's first line is one)? A port that
    /// speaks both cannot tell a broken HTTP/2 preface from a broken HTTP/1 request in general;
    /// three words of which the last is not an HTTP version are taken for the former (h2spec's
    /// `INVALID CONNECTION PREFACE`), anything else for the latter.
    fn request_line_so_far(&mut self, part: &[u8]) -> bool {
        const VERSION: &[u8] = b"HTTP/";
        for &b in part {
            match (b, self.first_spaces) {
                (b'\r', _) => {}
                (b' ', s) if s < 2 => self.first_spaces += 1,
                (_, 2) if usize::from(self.first_version) < VERSION.len() => {
                    if b != VERSION[usize::from(self.first_version)] {
                        return false;
                    }
                    self.first_version += 1;
                }
                _ => {}
            }
        }
        true
    }

    /// Keeps the part of a head that arrived in this read, for when the rest comes.
    fn collect(&mut self, part: &[u8]) {
        if part.is_empty() || self.oversized {
            return;
        }
        if self.spill.len() + part.len() > MAX_HEAD {
            self.oversized = true;
            self.spill = Vec::new();
        } else {
            self.spill.extend_from_slice(part);
        }
    }

    /// A complete head (its final `tail` in this read): decide what follows it, as hyper would.
    fn end_head(&mut self, tail: &[u8]) {
        let oversized = std::mem::take(&mut self.oversized);
        let first = std::mem::take(&mut self.first);
        let framed = std::mem::take(&mut self.framed);
        let next = |head: &[u8]| match (first, framed) {
            (true, _) if head == b"PRI * HTTP/2.0\r\n\r\n" => State::PrefaceTail(0),
            (_, true) => framing(head),
            (_, false) => EMPTY_HEAD,
        };
        self.state = if oversized {
            State::Opaque
        } else if !framed && !first {
            self.spill.clear();
            EMPTY_HEAD
        } else if self.spill.is_empty() {
            next(tail)
        } else {
            let mut head = std::mem::take(&mut self.spill);
            head.extend_from_slice(tail);
            let next = next(&head);
            // Keep the allocation for the next head that spans reads.
            head.clear();
            self.spill = head;
            next
        };
    }
}

/// Could a header line starting with `rest` be `Content-Length` or `Transfer-Encoding`? A line
/// cut short by the end of the read counts when what there is could still become one.
fn may_frame(rest: &[u8]) -> bool {
    const NAMES: [&[u8]; 2] = [b"content-length:", b"transfer-encoding:"];
    // Most lines are ruled out by their first letter; this runs for every line of every head.
    if !matches!(rest.first(), None | Some(b'c' | b'C' | b't' | b'T')) {
        return false;
    }
    NAMES.iter().any(|name| {
        let n = name.len().min(rest.len());
        rest[..n].eq_ignore_ascii_case(&name[..n])
    })
}

/// What follows a complete, CRLF-only head, by hyper's rules (`Server::parse` in
/// hyper/src/proto/h1/role.rs). A head hyper refuses, or one that may switch protocols, ends the
/// checking: hyper closes after the refusal, and after an upgrade the bytes are not HTTP/1.
fn framing(head: &[u8]) -> State {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        // The h2 preface (`PRI * HTTP/2.0`) lands here, as does anything hyper answers with 400.
        _ => return State::Opaque,
    }
    // CONNECT is framed like any request (as hyper does); the proxy refuses it with 400, so it
    // never becomes a tunnel.
    let http11 = req.version == Some(1);
    let (mut te, mut chunked, mut length) = (false, false, None::<u64>);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http11 {
                return State::Opaque;
            }
            te = true;
            length = None;
            chunked = std::str::from_utf8(h.value).is_ok_and(|v| {
                v.rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
            });
        } else if h.name.eq_ignore_ascii_case("content-length") {
            if te {
                continue;
            }
            let Some(n) = digits(h.value) else {
                return State::Opaque;
            };
            if length.is_some_and(|prev| prev != n) {
                return State::Opaque;
            }
            length = Some(n);
        }
        // `Upgrade:` changes nothing here: whether the switch happens depends on the response,
        // which the guard learns from the server ([`Upgraded`]).
    }
    if te && !chunked {
        return State::Opaque;
    }
    if chunked {
        State::Chunked(Chunk::Start)
    } else {
        match length {
            Some(n) if n > 0 => State::Body(n),
            _ => EMPTY_HEAD,
        }
    }
}

/// hyper's `from_digits`: ASCII digits only, no sign, no overflow.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// One byte of chunked framing. `Some(Some(next))`: carry on; `Some(None)`: the body ended with
/// this byte; `None`: hyper would refuse it, or it is a bare LF in a trailer (which hyper would
/// take as a line end).
fn step_chunk(state: Chunk, b: u8) -> Option<Option<Chunk>> {
    let hex = |n: u64| {
        let d = (b as char).to_digit(16)?;
        n.checked_mul(16)?.checked_add(u64::from(d))
    };
    let next = match state {
        Chunk::Start => Chunk::Size(hex(0)?),
        Chunk::Size(n) => match b {
            b'\t' | b' ' => Chunk::SizeLws(n),
            b';' => Chunk::Extension(n),
            b'\r' => Chunk::SizeLf(n),
            _ => Chunk::Size(hex(n)?),
        },
        Chunk::SizeLws(n) => match b {
            b'\t' | b' ' => Chunk::SizeLws(n),
            b';' => Chunk::Extension(n),
            b'\r' => Chunk::SizeLf(n),
            _ => return None,
        },
        Chunk::Extension(n) => match b {
            b'\r' => Chunk::SizeLf(n),
            b'\n' => return None,
            _ => Chunk::Extension(n),
        },
        Chunk::SizeLf(0) if b == b'\n' => Chunk::EndCr,
        Chunk::SizeLf(n) if b == b'\n' => Chunk::Data(n),
        Chunk::SizeLf(_) => return None,
        // Zero-length data never occurs: `SizeLf(0)` goes to the end.
        Chunk::Data(_) => Chunk::DataCr,
        Chunk::DataCr if b == b'\r' => Chunk::DataLf,
        Chunk::DataLf if b == b'\n' => Chunk::Start,
        Chunk::DataCr | Chunk::DataLf => return None,
        Chunk::Trailer => match b {
            b'\r' => Chunk::TrailerLf,
            b'\n' => return None,
            _ => Chunk::Trailer,
        },
        Chunk::TrailerLf if b == b'\n' => Chunk::EndCr,
        Chunk::TrailerLf => return None,
        Chunk::EndCr => match b {
            b'\r' => Chunk::EndLf,
            b'\n' => return None,
            _ => Chunk::Trailer,
        },
        Chunk::EndLf if b == b'\n' => return Some(None),
        Chunk::EndLf => return None,
    };
    Some(Some(next))
}

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
mod tests {
    use super::*;

    /// Feeds `bytes` split at every position (two reads), and whole; all must agree.
    fn verdicts(bytes: &[u8]) -> Vec<(usize, Verdict)> {
        let mut out = Vec::new();
        let mut whole = Scanner::default();
        out.push((bytes.len(), whole.feed(bytes)));
        for split in 1..bytes.len() {
            let mut s = Scanner::default();
            let v = match s.feed(&bytes[..split]) {
                Verdict::Pass => match s.feed(&bytes[split..]) {
                    Verdict::Pass => Verdict::Pass,
                    Verdict::BareLfInHead(at) => Verdict::BareLfInHead(split + at),
                    Verdict::BadChunk(at) => Verdict::BadChunk(split + at),
                    Verdict::NotHttp => Verdict::NotHttp,
                },
                other => other,
            };
            out.push((split, v));
        }
        out
    }

    fn assert_all(bytes: &[u8], expected: Verdict) {
        for (split, v) in verdicts(bytes) {
            assert_eq!(
                v,
                expected,
                "split at {split}: {:?}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    /// The table of cases: bytes, and where (if anywhere) the first bare LF in a head is.
    #[test]
    fn cases() {
        let at = |bytes: &str, needle: &str| Verdict::BareLfInHead(bytes.find(needle).unwrap());
        let pipelined = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_all(pipelined.as_bytes(), Verdict::Pass);

        let s = "GET /a HTTP/1.1\nHost: x\r\n\r\n";
        assert_all(s.as_bytes(), at(s, "\nHost"));
        let s = "GET /a HTTP/1.1\r\nHost: x\r\n\n";
        assert_all(s.as_bytes(), at(s, "\n\n").tap(1));
        let s = "\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_all(s.as_bytes(), Verdict::BareLfInHead(0));
        let s = "\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_all(s.as_bytes(), Verdict::Pass);

        // An LF in a Content-Length body is data; the head after it is checked.
        let s = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\na\nb\n\nGET /b HTTP/1.1\nHost: x\r\n\r\n";
        assert_all(s.as_bytes(), at(s, "\nHost: x\r\n\r\n"));
        let s = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\na\nb\n\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_all(s.as_bytes(), Verdict::Pass);

        // Chunked: data may hold LFs; framing and trailers may not have bare ones.
        let s = "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\na\nb\r\n0\r\nT: v\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_all(s.as_bytes(), Verdict::Pass);
        let s = "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\nHost: x\r\n\r\n";
        assert_all(s.as_bytes(), at(s, "\nHost: x\r\n\r\n"));
        let s = "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\nU: b\r\n\r\n";
        assert_all(s.as_bytes(), Verdict::BadChunk(s.find("\nU").unwrap()));
        let s = "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\n\n";
        assert_all(s.as_bytes(), Verdict::BadChunk(s.find("\n\n").unwrap()));

        // Header names in any case; a framing header that is not the first one.
        let s = "POST /a HTTP/1.1\r\nHost: x\r\ncOnTeNt-LeNgTh: 3\r\n\r\na\nbGET /b HTTP/1.1\nHost: x\r\n\r\n";
        assert_all(s.as_bytes(), at(s, "\nHost: x\r\n\r\n"));
        let s = "POST /a HTTP/1.1\r\nHost: x\r\nX-Content-Length: 3\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_all(s.as_bytes(), Verdict::Pass);

        // Content-Length ignored beside chunked, as hyper does.
        let s = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /b HTTP/1.1\nHost: x\r\n\r\n";
        assert_all(s.as_bytes(), at(s, "\nHost: x\r\n\r\n"));

        // The HTTP/2 preface, then binary frames full of LFs.
        let s = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\n\x04\n\n";
        assert_all(s, Verdict::Pass);
        // Neither HTTP/1 nor the HTTP/2 preface (h2spec 3.5/2), or a preface that goes wrong.
        assert_all(b"INVALID CONNECTION PREFACE\r\n\r\n", Verdict::NotHttp);
        assert_all(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n", Verdict::NotHttp);
        // Malformed HTTP/1 (too few words) is left to hyper's 400.
        assert_all(b"GARBAGE\r\n\r\n", Verdict::Pass);
        assert_all(b"GET /\r\n\r\n", Verdict::Pass);
        // Only the first head is judged so: later ones are hyper's to refuse.
        assert_all(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nINVALID CONNECTION PREFACE\r\n\r\n",
            Verdict::Pass,
        );
    }

    trait Tap {
        fn tap(self, by: usize) -> Self;
    }
    impl Tap for Verdict {
        /// Moves the offset on by `by` (for needles that start one byte early).
        fn tap(self, by: usize) -> Self {
            match self {
                Verdict::BareLfInHead(at) => Verdict::BareLfInHead(at + by),
                other => other,
            }
        }
    }

    #[test]
    fn content_length_digits_like_hyper() {
        assert_eq!(digits(b"12"), Some(12));
        assert_eq!(digits(b""), None);
        assert_eq!(digits(b"+1"), None);
        assert_eq!(digits(b"1, 1"), None);
        assert_eq!(digits(b"99999999999999999999"), None);
    }
}
