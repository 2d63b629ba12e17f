//! Compact JSON in ASCII only, so that any session value can travel in a header.

use http::header::HeaderValue;
use serde_json::Value;

use crate::session::store::Data;

/// Compact JSON with every non-ASCII character written as `\uXXXX` (surrogate pairs beyond the
/// BMP), and control characters escaped as JSON requires, so the result is always a legal header
/// value whatever the data holds.
pub fn ascii_json(value: &Value) -> String {
    // The formatter writes ASCII only, so the lossy path never replaces anything.
    String::from_utf8_lossy(&ascii_json_bytes(value)).into_owned()
}

pub(super) fn ascii_json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    // Writing to a Vec cannot fail, and a JSON map with string keys always serializes.
    let _ = value.serialize(&mut ser);
    out
}

/// The length of [`ascii_json`] of `data` (what `X-Session-Data` carries), counted without
/// building it.
pub fn json_len(data: &Data) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let mut ser = serde_json::Serializer::with_formatter(&mut count, AsciiFormatter);
    match serde::Serialize::serialize(data, &mut ser) {
        Ok(()) => count.0,
        // Counting cannot fail; if it somehow did, treat the data as too large rather than free.
        Err(_) => usize::MAX,
    }
}

/// A header value made from bytes we own, without copying them again.
pub(super) fn owned_header_value(bytes: Vec<u8>) -> Option<HeaderValue> {
    HeaderValue::from_maybe_shared(bytes::Bytes::from(bytes)).ok()
}

struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            // DEL (0x7f) is ASCII but not a legal header-value byte, and serde_json does not
            // escape it: write it as \u007f like everything else outside printable ASCII.
            if ch.is_ascii() && ch != '\x7f' {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}
