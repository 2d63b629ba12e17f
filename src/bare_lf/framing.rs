//! hyper's HTTP/1 request framing (Content-Length, chunked with trailers), as the scanner needs it
//! to know where the next head starts.

use super::scanner::{State, EMPTY_HEAD};

/// hyper's default limit on header fields (`DEFAULT_MAX_HEADERS`); more is a 431 from hyper.
const MAX_HEADERS: usize = 100;

/// hyper's chunked decoder states (`ChunkedState`), less the ones that only count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
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

/// Could a header line starting with `rest` be `Content-Length` or `Transfer-Encoding`? A line
/// cut short by the end of the read counts when what there is could still become one.
pub(super) fn may_frame(rest: &[u8]) -> bool {
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
pub(super) fn framing(head: &[u8]) -> State {
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
pub(super) fn digits(value: &[u8]) -> Option<u64> {
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
pub(super) fn step_chunk(state: Chunk, b: u8) -> Option<Option<Chunk>> {
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
