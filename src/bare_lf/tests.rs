//! Unit tests of the scanner and of hyper's framing rules as it follows them.

use super::framing::digits;
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
    let s =
        "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\nU: b\r\n\r\n";
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
