//! The framing follower: which bytes of the client's stream are request heads.

use super::framing::{framing, may_frame, step_chunk, Chunk};
use super::MAX_HEAD;

/// Where in the request stream the scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
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

/// Where [`Scanner::feed`] is in the buffer it was given.
struct Cursor {
    /// The next byte to look at.
    i: usize,
    /// Where the head being read started (0 when it started in an earlier read).
    head_from: usize,
}

pub(super) const EMPTY_HEAD: State = State::Head {
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
        let mut at = Cursor { i: 0, head_from: 0 };
        while at.i < buf.len() {
            let stop = match self.state {
                State::Opaque => Some(Verdict::Pass),
                State::NotHttp => Some(Verdict::NotHttp),
                State::PrefaceTail(matched) => self.preface_tail(matched, buf, &mut at),
                State::Body(left) => {
                    self.body(left, buf, &mut at);
                    None
                }
                State::Chunked(Chunk::Data(left)) => {
                    self.chunk_data(left, buf, &mut at);
                    None
                }
                State::Chunked(chunk) => self.chunk_framing(chunk, buf, &mut at),
                State::Head { line, lines, cr } => self.head(line, lines, cr, buf, &mut at),
            };
            if let Some(verdict) = stop {
                return verdict;
            }
        }
        match self.state {
            State::Head { .. } => self.collect(&buf[at.head_from.min(buf.len())..]),
            State::NotHttp => return Verdict::NotHttp,
            _ => {}
        }
        Verdict::Pass
    }

    /// The rest of the HTTP/2 preface after its first line. `None` while it matches.
    fn preface_tail(&mut self, matched: usize, buf: &[u8], at: &mut Cursor) -> Option<Verdict> {
        const TAIL: &[u8] = b"SM\r\n\r\n";
        let i = at.i;
        let take = (TAIL.len() - matched).min(buf.len() - i);
        if buf[i..i + take] != TAIL[matched..matched + take] {
            return Some(Verdict::NotHttp);
        }
        at.i += take;
        self.state = if matched + take == TAIL.len() {
            State::Opaque
        } else {
            State::PrefaceTail(matched + take)
        };
        None
    }

    /// Content-Length body bytes: skipped; the next head starts where the body ends.
    fn body(&mut self, left: u64, buf: &[u8], at: &mut Cursor) {
        let take = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(buf.len() - at.i);
        at.i += take;
        let left = left - take as u64;
        if left == 0 {
            self.state = EMPTY_HEAD;
            at.head_from = at.i;
        } else {
            self.state = State::Body(left);
        }
    }

    /// Chunk data bytes: skipped, up to the CRLF that must follow them.
    fn chunk_data(&mut self, left: u64, buf: &[u8], at: &mut Cursor) {
        let take = usize::try_from(left)
            .unwrap_or(usize::MAX)
            .min(buf.len() - at.i);
        at.i += take;
        let left = left - take as u64;
        self.state = State::Chunked(if left == 0 {
            Chunk::DataCr
        } else {
            Chunk::Data(left)
        });
    }

    /// One byte of chunk framing (sizes, extensions, trailers).
    fn chunk_framing(&mut self, chunk: Chunk, buf: &[u8], at: &mut Cursor) -> Option<Verdict> {
        match step_chunk(chunk, buf[at.i]) {
            Some(Some(next)) => self.state = State::Chunked(next),
            Some(None) => {
                self.state = EMPTY_HEAD;
                at.head_from = at.i + 1;
            }
            None => return Some(Verdict::BadChunk(at.i)),
        }
        at.i += 1;
        None
    }

    /// Head bytes up to the end of the current line, or of `buf` (then the verdict is `Pass`: the
    /// line goes on in the next read). `line`, `lines` and `cr` are [`State::Head`]'s.
    fn head(
        &mut self,
        line: usize,
        lines: usize,
        cr: bool,
        buf: &[u8],
        at: &mut Cursor,
    ) -> Option<Verdict> {
        let i = at.i;
        let found = memchr::memchr(b'\n', &buf[i..]);
        if self.first && lines == 0 {
            let end = found.map_or(buf.len(), |n| i + n);
            if !self.request_line_so_far(&buf[i..end]) {
                self.state = State::NotHttp;
                return Some(Verdict::NotHttp);
            }
        }
        let Some(n) = found else {
            let rest = &buf[i..];
            self.state = State::Head {
                line: line + rest.len(),
                lines,
                cr: rest.last() == Some(&b'\r'),
            };
            self.collect(&buf[at.head_from..]);
            return Some(Verdict::Pass);
        };
        let lf = i + n;
        let cr = if n == 0 { cr } else { buf[lf - 1] == b'\r' };
        if !cr {
            return Some(Verdict::BareLfInHead(lf));
        }
        let line = line + n;
        at.i = lf + 1;
        if line > 1 {
            self.framed |= may_frame(&buf[at.i..]);
            self.state = State::Head {
                line: 0,
                lines: lines + 1,
                cr: false,
            };
        } else if lines == 0 {
            // An empty line before the request line: httparse skips it, so do we.
            self.state = EMPTY_HEAD;
        } else {
            self.end_head(&buf[at.head_from..at.i]);
            at.head_from = at.i;
        }
        None
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
