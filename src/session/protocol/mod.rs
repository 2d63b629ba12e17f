//! The `X-Session-*` header grammar: pure functions, no I/O.
//!
//! Inbound (proxy → app): `X-Session-Id`, `X-Session-Data` (the whole map as ASCII-only compact
//! JSON) and one `X-Session-<Key>` per simple key. Outbound (app → proxy): `X-Session-Set`,
//! `X-Session-Delete`, `X-Session-Clear`, `X-Session-Regenerate`. Anything else starting with
//! `X-Session-` is stripped in both directions so neither side can be spoofed.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::store::Data;

/// Longest key the app may set. Longer keys are almost certainly a bug in the app.
pub const MAX_KEY_LEN: usize = 128;
/// Most keys one session may hold; a `Set` that would exceed it is ignored with a warning.
pub const MAX_KEYS: usize = 256;

pub const ID_HEADER: HeaderName = HeaderName::from_static("x-session-id");
pub const DATA_HEADER: HeaderName = HeaderName::from_static("x-session-data");
const SET_HEADER: &str = "x-session-set";
const DELETE_HEADER: &str = "x-session-delete";
const CLEAR_HEADER: &str = "x-session-clear";
const REGENERATE_HEADER: &str = "x-session-regenerate";

const PREFIX: &[u8] = b"x-session-";

/// True for any header name that, lowercased and with `_` read as `-`, starts with `x-session-`.
/// Servers that map headers to CGI-style variables (`HTTP_X_SESSION_ID`) would otherwise let
/// `X_Session_Id` through as a spoof.
pub fn is_session_header(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= PREFIX.len()
        && b.iter().zip(PREFIX).all(|(&c, &p)| {
            let c = c.to_ascii_lowercase();
            c == p || (p == b'-' && c == b'_')
        })
}

/// Removes every session header. Allocation-free when there is none (the common case).
pub fn strip_session_headers(headers: &mut HeaderMap) {
    loop {
        let found = headers
            .keys()
            .find(|k| is_session_header(k.as_str()))
            .cloned();
        match found {
            Some(name) => {
                headers.remove(&name);
            }
            None => return,
        }
    }
}

/// `user_id` → `x-session-user-id`. `None` for keys that get no header of their own: `id` and
/// `data` (they would collide with the fixed headers) and keys outside `[A-Za-z0-9_-]`.
pub fn header_name_for_key(key: &str) -> Option<HeaderName> {
    if key.is_empty()
        || key.len() > MAX_KEY_LEN
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    // Built on the stack: this runs for every key of every session on every request.
    let mut buf = [0u8; PREFIX.len() + MAX_KEY_LEN];
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    for (slot, b) in buf[PREFIX.len()..].iter_mut().zip(key.bytes()) {
        *slot = match b {
            b'_' => b'-',
            b => b.to_ascii_lowercase(),
        };
    }
    let name = &buf[..PREFIX.len() + key.len()];
    // `x-session-assertion` is the default name of the signed assertion's header.
    if name == b"x-session-id" || name == b"x-session-data" || name == b"x-session-assertion" {
        return None;
    }
    HeaderName::from_bytes(name).ok()
}

/// Whether two different keys would be written as the same `X-Session-<Key>` header (`user_id`,
/// `user-id`, `USER_ID`). Such keys get no header of their own (see [`inject`]): an app reading
/// one of them must never be handed another key's value. Allocation-free.
pub fn share_a_header(a: &str, b: &str) -> bool {
    fn fold(c: u8) -> u8 {
        match c {
            b'_' => b'-',
            c => c.to_ascii_lowercase(),
        }
    }
    a != b
        && a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
        && header_name_for_key_ok(a)
}

/// `header_name_for_key(key).is_some()`, without building the name.
fn header_name_for_key_ok(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !key.eq_ignore_ascii_case("id")
        && !key.eq_ignore_ascii_case("data")
}

/// The header value for one session value: the string itself when it is printable ASCII, otherwise
/// its compact ASCII JSON. Never contains CR, LF or NUL, so it cannot split a header. `None` only
/// if that guarantee ever broke: the header is then left out rather than the request failed.
pub fn header_value_for(value: &Value) -> Option<HeaderValue> {
    if let Value::String(s) = value {
        if is_printable_ascii(s) {
            if let Ok(v) = HeaderValue::from_str(s) {
                return Some(v);
            }
        }
    }
    owned_header_value(ascii_json_bytes(value))
}

fn is_printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Compact JSON with every non-ASCII character written as `\uXXXX` (surrogate pairs beyond the
/// BMP), and control characters escaped as JSON requires, so the result is always a legal header
/// value whatever the data holds.
pub fn ascii_json(value: &Value) -> String {
    // The formatter writes ASCII only, so the lossy path never replaces anything.
    String::from_utf8_lossy(&ascii_json_bytes(value)).into_owned()
}

fn ascii_json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Vec<u8> {
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
fn owned_header_value(bytes: Vec<u8>) -> Option<HeaderValue> {
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

/// The app's instructions on one response.
#[derive(Debug, Default, PartialEq)]
pub struct Controls {
    pub clear: bool,
    pub regenerate: bool,
    pub delete: Vec<String>,
    pub set: Vec<(String, Value)>,
}

impl Controls {
    pub fn is_empty(&self) -> bool {
        !self.clear && !self.regenerate && self.delete.is_empty() && self.set.is_empty()
    }
}

/// A line (or, in a JSON object line, one key) the app sent that could not be applied. Logged at
/// warn, counted per kind; the other lines still apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("X-Session-Set line has no '='")]
    NoEquals,
    #[error("X-Session-Set line has an empty key")]
    EmptyKey,
    #[error("session key longer than {MAX_KEY_LEN} bytes")]
    KeyTooLong,
    #[error("header value is not UTF-8")]
    NotUtf8,
    /// A value would come back different or not at all: the cookie store wraps the data in two
    /// more levels and serde_json stops at 128, so nesting is capped well below.
    #[error("value nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// An integer outside the 64-bit range (JSON would silently store it as a float, so it would
    /// come back as a different number), or a number no store can hold.
    #[error("number that cannot be stored exactly (integers must fit in 64 bits)")]
    InexactNumber,
    /// Well-formed JSON text that still has no JSON value: a number out of range (`1e400`) or a
    /// lone UTF-16 surrogate escape, inside a JSON object line.
    #[error("value that JSON cannot hold (a number out of range, a lone surrogate)")]
    Unrepresentable,
}

impl Malformed {
    const KINDS: usize = 7;

    fn index(self) -> usize {
        match self {
            Malformed::NoEquals => 0,
            Malformed::EmptyKey => 1,
            Malformed::KeyTooLong => 2,
            Malformed::NotUtf8 => 3,
            Malformed::TooDeep => 4,
            Malformed::InexactNumber => 5,
            Malformed::Unrepresentable => 6,
        }
    }

    const ALL: [Malformed; Malformed::KINDS] = [
        Malformed::NoEquals,
        Malformed::EmptyKey,
        Malformed::KeyTooLong,
        Malformed::NotUtf8,
        Malformed::TooDeep,
        Malformed::InexactNumber,
        Malformed::Unrepresentable,
    ];
}

/// What one response's control lines had to ignore, counted per kind, so that a response with
/// 20,000 bad keys costs one warning line per kind (and no allocation), not 20,000.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ignored([u32; Malformed::KINDS]);

impl Ignored {
    pub fn add(&mut self, problem: Malformed) {
        let n = &mut self.0[problem.index()];
        *n = n.saturating_add(1);
    }

    pub fn count(&self, problem: Malformed) -> u32 {
        self.0[problem.index()]
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&n| n == 0)
    }

    /// The kinds that occurred, with their counts, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (Malformed, u32)> + '_ {
        Malformed::ALL
            .into_iter()
            .map(|m| (m, self.count(m)))
            .filter(|&(_, n)| n > 0)
    }
}

/// Deepest nesting of arrays and objects a session value may have (`[1]` is 1, `{"a":[1]}` is 2).
/// Every store must hand back exactly what it accepted; the cookie store adds two levels of its
/// own and serde_json refuses input nested past 128, so 32 leaves a wide margin.
pub const MAX_DEPTH: usize = 32;

/// Takes every `X-Session-*` header out of an upstream response and returns the controls among
/// them, plus what it had to ignore. Fast path: one scan, no allocation, when there is none.
pub fn take_controls(headers: &mut HeaderMap) -> (Controls, Ignored) {
    let mut controls = Controls::default();
    let mut bad = Ignored::default();
    if !headers.keys().any(|k| is_session_header(k.as_str())) {
        return (controls, bad);
    }
    if headers.remove(CLEAR_HEADER).is_some() {
        controls.clear = true;
    }
    if headers.remove(REGENERATE_HEADER).is_some() {
        controls.regenerate = true;
    }
    if let http::header::Entry::Occupied(e) = headers.entry(DELETE_HEADER) {
        for value in e.remove_entry_mult().1 {
            match value.to_str() {
                Ok(list) => controls.delete.extend(
                    list.split(',')
                        .map(str::trim)
                        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
                        .map(str::to_owned),
                ),
                Err(_) => bad.add(Malformed::NotUtf8),
            }
        }
    }
    if let http::header::Entry::Occupied(e) = headers.entry(SET_HEADER) {
        for value in e.remove_entry_mult().1 {
            match std::str::from_utf8(value.as_bytes()) {
                Ok(line) => parse_set_line(line, &mut controls.set, &mut bad),
                Err(_) => bad.add(Malformed::NotUtf8),
            }
        }
    }
    strip_session_headers(headers);
    (controls, bad)
}

/// One `X-Session-Set` line: `key=value` or a JSON object to merge.
pub fn parse_set_line(line: &str, out: &mut Vec<(String, Value)>, bad: &mut Ignored) {
    let line = line.trim();
    if line.starts_with('{') {
        // Raw values first, so that each one's text can be checked (an integer past 64 bits is
        // indistinguishable from a float once parsed) and refused on its own.
        type RawObject<'a> = std::collections::BTreeMap<String, &'a serde_json::value::RawValue>;
        match serde_json::from_str::<RawObject<'_>>(line) {
            Ok(map) => {
                for (key, raw) in map {
                    match check_key(&key).and_then(|()| json_value(raw.get())) {
                        Ok(value) => out.push((key, value)),
                        Err(e) => bad.add(e),
                    }
                }
                return;
            }
            Err(_) if scan_json(line) == Err(Malformed::TooDeep) => {
                bad.add(Malformed::TooDeep);
                return;
            }
            Err(_) => {}
        }
    }
    let Some((key, raw)) = line.split_once('=') else {
        bad.add(Malformed::NoEquals);
        return;
    };
    let key = key.trim();
    if let Err(e) = check_key(key) {
        bad.add(e);
        return;
    }
    let raw = raw.trim();
    let value = match serde_json::from_str::<Value>(raw) {
        Ok(value) => scan_json(raw).map(|()| value),
        // Past serde_json's own limit it is not JSON to serde, but it was meant as JSON.
        Err(_) if raw.starts_with(['[', '{']) && scan_json(raw) == Err(Malformed::TooDeep) => {
            Err(Malformed::TooDeep)
        }
        // A number JSON cannot hold (`1e400`, 700 digits) was meant as a number: storing its text
        // as a string would hand the app back another type (found by fuzzing control_headers).
        Err(_) if is_json_number(raw) => Err(Malformed::InexactNumber),
        Err(_) => Ok(Value::String(raw.into())),
    };
    match value {
        Ok(value) => out.push((key.to_owned(), value)),
        Err(e) => bad.add(e),
    }
}

/// Whether `text` has the shape of a JSON number (RFC 8259 §6), whatever its size.
fn is_json_number(text: &str) -> bool {
    let b = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 || (int_len > 1 && b[0] == b'0') {
        return false;
    }
    let mut rest = &b[int_len..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if let Some(exp) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exp = exp
            .strip_prefix(b"+")
            .or_else(|| exp.strip_prefix(b"-"))
            .unwrap_or(exp);
        let n = exp.iter().take_while(|c| c.is_ascii_digit()).count();
        return n > 0 && n == exp.len();
    }
    rest.is_empty()
}

/// One value of a JSON object line, already known to be syntactically valid JSON.
fn json_value(raw: &str) -> Result<Value, Malformed> {
    scan_json(raw)?;
    // The syntax was checked; serde_json can still refuse a number it cannot hold (1e400) or a
    // lone surrogate (`"\ud800"`), which its raw-value scan lets through.
    serde_json::from_str(raw).map_err(|_| Malformed::Unrepresentable)
}

/// Checks the text of a JSON value for what would not survive a store round trip: nesting past
/// [`MAX_DEPTH`], and integer literals outside `i64`/`u64` (serde_json would read them as an `f64`
/// and hand back another number). Works on the text because a parsed value no longer tells an
/// integer literal from a float. Allocation-free, one pass; strings are skipped.
pub fn scan_json(text: &str) -> Result<(), Malformed> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Malformed::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i + 1 < b.len()
                    && matches!(b[i + 1], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let token = &text[start..=i];
                let integer = !token.contains(['.', 'e', 'E']);
                if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                    return Err(Malformed::InexactNumber);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), Malformed> {
    if key.is_empty() {
        Err(Malformed::EmptyKey)
    } else if key.len() > MAX_KEY_LEN {
        Err(Malformed::KeyTooLong)
    } else {
        Ok(())
    }
}

/// Adds the session's headers to a request bound for the app. `handle` is the session's public
/// name ([`super::store::SessionId::handle`]), never the ID: apps log request headers, and the ID
/// is a working credential for the memory and Redis stores.
pub fn inject(headers: &mut HeaderMap, handle: &str, data: &Data) {
    if let Ok(v) = HeaderValue::from_str(handle) {
        headers.insert(ID_HEADER, v);
    }
    if let Some(v) = owned_header_value(ascii_json_bytes(data)) {
        headers.insert(DATA_HEADER, v);
    }
    // `append` reports a name already present, so a collision costs nothing to detect; the
    // second pass runs only for the rare session that has one.
    let mut collided = false;
    for (key, value) in data {
        if let (Some(name), Some(v)) = (header_name_for_key(key), header_value_for(value)) {
            collided |= headers.append(name, v);
        }
    }
    if collided {
        // Keys that share a header (`user_id`, `USER-ID`) all lose it: whichever sorted last
        // would otherwise speak for the others. They stay in X-Session-Data.
        for key in data.keys() {
            if let Some(name) = header_name_for_key(key) {
                if headers.get_all(&name).iter().nth(1).is_some() {
                    headers.remove(&name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn controls_of(lines: &[(&str, &[u8])]) -> (Controls, Ignored, HeaderMap) {
        let mut h = HeaderMap::new();
        for (name, value) in lines {
            h.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
        }
        let (c, bad) = take_controls(&mut h);
        (c, bad, h)
    }

    #[test]
    fn session_header_spellings() {
        for yes in [
            "x-session-id",
            "X-Session-Id",
            "X_SESSION_ID",
            "x_session-user-id",
            "x-session_data",
            "x-session-",
        ] {
            assert!(is_session_header(yes), "{yes}");
        }
        for no in [
            "x-session",
            "x-sessions-id",
            "session-id",
            "x-sess",
            "xx-session-id",
        ] {
            assert!(!is_session_header(no), "{no}");
        }
    }

    #[test]
    fn strip_removes_all_values_of_all_spellings() {
        let mut h = HeaderMap::new();
        h.append("x-session-id", HeaderValue::from_static("a"));
        h.append("x-session-id", HeaderValue::from_static("b"));
        h.append("x_session_user_id", HeaderValue::from_static("c"));
        h.append("accept", HeaderValue::from_static("*/*"));
        strip_session_headers(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn header_names_for_keys() {
        assert_eq!(header_name_for_key("user_id").unwrap(), "x-session-user-id");
        assert_eq!(header_name_for_key("Role").unwrap(), "x-session-role");
        assert_eq!(header_name_for_key("a-b").unwrap(), "x-session-a-b");
        assert!(header_name_for_key("id").is_none());
        assert!(header_name_for_key("data").is_none());
        assert!(header_name_for_key("ID").is_none());
        assert!(header_name_for_key("has space").is_none());
        assert!(header_name_for_key("dot.ted").is_none());
        assert!(header_name_for_key("").is_none());
        assert!(header_name_for_key("caf\u{e9}").is_none());
    }

    #[test]
    fn header_values() {
        assert_eq!(header_value_for(&json!("Ann")).unwrap(), "Ann");
        assert_eq!(
            header_value_for(&json!("Jos\u{e9}")).unwrap(),
            "\"Jos\\u00e9\""
        );
        assert_eq!(header_value_for(&json!("a\r\nb")).unwrap(), "\"a\\r\\nb\"");
        assert_eq!(header_value_for(&json!(3)).unwrap(), "3");
        assert_eq!(header_value_for(&json!(true)).unwrap(), "true");
        assert_eq!(header_value_for(&json!(null)).unwrap(), "null");
        assert_eq!(
            header_value_for(&json!({"a": [1, "x"]})).unwrap(),
            "{\"a\":[1,\"x\"]}"
        );
        assert_eq!(
            header_value_for(&json!("\u{1F600}")).unwrap(),
            "\"\\ud83d\\ude00\""
        );
    }

    /// Found by reading the code after fuzzing: a DEL in a value or key made `inject` panic on
    /// every request of that session.
    #[test]
    fn del_is_escaped_in_values_and_keys() {
        assert_eq!(
            header_value_for(&json!("a\u{7f}b")).unwrap(),
            "\"a\\u007fb\""
        );
        let mut data = Data::new();
        data.insert("k\u{7f}".into(), json!("v\u{7f}"));
        let mut h = HeaderMap::new();
        inject(&mut h, "abc", &data);
        assert_eq!(h["x-session-data"], "{\"k\\u007f\":\"v\\u007f\"}");
        assert_eq!(
            serde_json::from_str::<Value>(h["x-session-data"].to_str().unwrap()).unwrap(),
            Value::Object(data)
        );
    }

    #[test]
    fn json_len_is_the_length_of_x_session_data() {
        let mut data = Data::new();
        assert_eq!(json_len(&data), 2);
        data.insert("name".into(), json!("Jos\u{e9} \u{1F600}"));
        data.insert("n".into(), json!([1, {"a": null}]));
        assert_eq!(json_len(&data), ascii_json_bytes(&data).len());
    }

    #[test]
    fn ascii_json_escapes_everything_non_ascii() {
        let v = json!({"n": "Jos\u{e9} \u{4e2d} \u{1F600}", "t": "tab\t"});
        let s = ascii_json(&v);
        assert!(s.is_ascii());
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
        assert_eq!(
            s,
            "{\"n\":\"Jos\\u00e9 \\u4e2d \\ud83d\\ude00\",\"t\":\"tab\\t\"}"
        );
    }

    #[test]
    fn set_lines_are_typed_as_json_when_they_parse() {
        let (c, bad, rest) = controls_of(&[
            ("x-session-set", b"count=3"),
            ("x-session-set", b"ok=true"),
            ("x-session-set", b"name=\"Jos\\u00e9\""),
            ("x-session-set", b"plain=Ann"),
            ("x-session-set", b"eq=a=b"),
            ("x-session-set", b"empty="),
            ("x-session-set", b"obj={\"k\":[1,2]}"),
            ("x-session-set", b" spaced = 1 "),
        ]);
        assert!(bad.is_empty());
        assert!(rest.is_empty());
        assert_eq!(
            c.set,
            vec![
                ("count".into(), json!(3)),
                ("ok".into(), json!(true)),
                ("name".into(), json!("Jos\u{e9}")),
                ("plain".into(), json!("Ann")),
                ("eq".into(), json!("a=b")),
                ("empty".into(), json!("")),
                ("obj".into(), json!({"k": [1, 2]})),
                ("spaced".into(), json!(1)),
            ]
        );
    }

    #[test]
    fn numbers_json_cannot_hold_are_refused_not_stored_as_text() {
        let huge = format!("n={}", "7".repeat(700));
        for line in [huge.as_str(), "n=1e400", "n=-1E+999"] {
            let mut out = Vec::new();
            let mut bad = Ignored::default();
            parse_set_line(line, &mut out, &mut bad);
            assert!(out.is_empty(), "{line}: {out:?}");
            assert_eq!(bad.count(Malformed::InexactNumber), 1, "{line}");
        }
        for text in ["0", "-1", "1.5", "2e10", "1E-3"] {
            assert!(is_json_number(text), "{text}");
        }
        for text in ["01", "1.", ".5", "1e", "-", "abc", "1x", "+1"] {
            assert!(!is_json_number(text), "{text}");
        }
    }

    #[test]
    fn json_object_line_merges_keys() {
        let (c, bad, _) = controls_of(&[("x-session-set", b"{\"a\":1,\"b\":\"x\"}")]);
        assert!(bad.is_empty());
        assert_eq!(
            c.set,
            vec![("a".into(), json!(1)), ("b".into(), json!("x"))]
        );
    }

    #[test]
    fn malformed_lines_are_reported_and_others_still_apply() {
        let long = format!("{}=1", "k".repeat(MAX_KEY_LEN + 1));
        let (c, bad, _) = controls_of(&[
            ("x-session-set", b"novalue"),
            ("x-session-set", b"=3"),
            ("x-session-set", long.as_bytes()),
            ("x-session-set", b"good=1"),
            ("x-session-set", b"bin=\xff"),
        ]);
        assert_eq!(c.set, vec![("good".into(), json!(1))]);
        assert_eq!(
            bad.iter().collect::<Vec<_>>(),
            vec![
                (Malformed::NoEquals, 1),
                (Malformed::EmptyKey, 1),
                (Malformed::KeyTooLong, 1),
                (Malformed::NotUtf8, 1)
            ]
        );
    }

    /// Issue 11 item 9: one response's problems are counts, not one entry (and log line) each.
    #[test]
    fn ignored_lines_are_counted_per_kind() {
        let mut line = String::from("{");
        for i in 0..20_000 {
            line.push_str(&format!("\"{}\":{i},", "k".repeat(MAX_KEY_LEN + 1 + i % 2)));
        }
        line.push_str("\"ok\":1}");
        let (c, bad, _) = controls_of(&[
            ("x-session-set", line.as_bytes()),
            ("x-session-set", b"x"),
            ("x-session-set", b"y"),
        ]);
        assert_eq!(c.set, vec![("ok".into(), json!(1))]);
        // Two distinct long keys (the object merges duplicates), two lines without '='.
        assert_eq!(
            bad.iter().collect::<Vec<_>>(),
            vec![(Malformed::NoEquals, 2), (Malformed::KeyTooLong, 2)]
        );
    }

    fn nested(depth: usize) -> String {
        format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
    }

    /// Issue 11 item 7: a value no store could hand back exactly is refused, the rest applies.
    #[test]
    fn values_that_cannot_come_back_are_refused() {
        let deep_ok = format!("a={}", nested(MAX_DEPTH));
        let deep = format!("b={}", nested(MAX_DEPTH + 1));
        let deeper_than_serde = format!("c={}", nested(127));
        let deeper_than_serde_limit = format!("d={}", nested(200));
        let in_object = format!("{{\"e\":{},\"f\":1}}", nested(MAX_DEPTH));
        let object_too_deep = format!("{{\"g\":{},\"h\":2}}", nested(200));
        let (c, bad, _) = controls_of(&[
            ("x-session-set", deep_ok.as_bytes()),
            ("x-session-set", deep.as_bytes()),
            ("x-session-set", deeper_than_serde.as_bytes()),
            ("x-session-set", deeper_than_serde_limit.as_bytes()),
            ("x-session-set", in_object.as_bytes()),
            ("x-session-set", object_too_deep.as_bytes()),
            ("x-session-set", b"big=18446744073709551616"),
            ("x-session-set", b"neg=-9223372036854775809"),
            ("x-session-set", b"max=18446744073709551615"),
            ("x-session-set", b"min=-9223372036854775808"),
            (
                "x-session-set",
                b"nested={\"n\":[1,123456789012345678901234567890]}",
            ),
            (
                "x-session-set",
                b"{\"i\":100000000000000000000,\"j\":2.5e3}",
            ),
            ("x-session-set", b"huge_float=1e400"),
            ("x-session-set", b"{\"k\":1e400,\"l\":3}"),
            ("x-session-set", b"{\"m\":\"\\ud800\",\"n\":4}"),
            ("x-session-set", b"text=[[[not json"),
            ("x-session-set", b"str=\"12345678901234567890123 [[[[\""),
        ]);
        let keys: Vec<&str> = c.set.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            ["a", "e", "f", "h", "max", "min", "j", "l", "n", "text", "str"]
        );
        assert_eq!(c.set[4].1, json!(u64::MAX));
        assert_eq!(c.set[5].1, json!(i64::MIN));
        // `huge_float=1e400` was meant as a number: refused, like `{"k":1e400}`, rather than
        // stored as a string (another type than the app sent).
        assert_eq!(bad.count(Malformed::TooDeep), 4);
        assert_eq!(bad.count(Malformed::InexactNumber), 5);
        assert_eq!(bad.count(Malformed::Unrepresentable), 2);
    }

    #[test]
    fn scan_skips_strings_and_escapes() {
        assert_eq!(scan_json(r#"{"a\"[[[":"99999999999999999999999"}"#), Ok(()));
        assert_eq!(scan_json("[1e30, -1.5, 0, -0]"), Ok(()));
        assert_eq!(
            scan_json("[99999999999999999999999]"),
            Err(Malformed::InexactNumber)
        );
    }

    #[test]
    fn delete_clear_regenerate_and_leftovers() {
        let (c, _, rest) = controls_of(&[
            ("x-session-delete", b"a, b"),
            ("x-session-delete", b"c,,"),
            ("x-session-clear", b"1"),
            ("x-session-regenerate", b"yes"),
            ("x-session-user-id", b"spoof"),
            ("x_session_other", b"spoof"),
            ("content-type", b"text/plain"),
        ]);
        assert!(c.clear && c.regenerate);
        assert_eq!(c.delete, vec!["a", "b", "c"]);
        assert_eq!(rest.len(), 1);
    }

    #[test]
    fn no_controls_is_empty() {
        let (c, bad, rest) = controls_of(&[("content-type", b"text/plain")]);
        assert!(c.is_empty() && bad.is_empty());
        assert_eq!(rest.len(), 1);
    }

    /// Issue 11 item 6: `user_id`, `user-id` and `USER_ID` all map to X-Session-User-Id.
    #[test]
    fn keys_sharing_a_header_get_none() {
        let mut data = Data::new();
        data.insert("user_id".into(), json!(1));
        data.insert("user-id".into(), json!(2));
        data.insert("USER_ID".into(), json!(3));
        data.insert("Role".into(), json!("a"));
        data.insert("role".into(), json!("b"));
        data.insert("name".into(), json!("Ann"));
        let mut h = HeaderMap::new();
        inject(&mut h, "abc", &data);
        assert!(!h.contains_key("x-session-user-id"));
        assert!(!h.contains_key("x-session-role"));
        assert_eq!(h["x-session-name"], "Ann");
        assert_eq!(
            h["x-session-data"],
            "{\"Role\":\"a\",\"USER_ID\":3,\"name\":\"Ann\",\"role\":\"b\",\"user-id\":2,\"user_id\":1}"
        );
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn which_keys_share_a_header() {
        for (a, b) in [
            ("user_id", "user-id"),
            ("user_id", "USER_ID"),
            ("a-b", "A_B"),
        ] {
            assert!(share_a_header(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("user_id", "user_id"),
            ("user_id", "user_ids"),
            ("id", "ID"),
            ("data", "Data"),
            ("a.b", "A.B"),
            ("a b", "A B"),
            ("", ""),
        ] {
            assert!(!share_a_header(a, b), "{a} {b}");
        }
    }

    #[test]
    fn inject_writes_id_data_and_simple_keys() {
        let mut data = Data::new();
        data.insert("user_id".into(), json!(42));
        data.insert("name".into(), json!("Jos\u{e9}"));
        data.insert("id".into(), json!("shadow"));
        data.insert("a b".into(), json!(1));
        let mut h = HeaderMap::new();
        inject(&mut h, "abc", &data);
        assert_eq!(h["x-session-id"], "abc");
        assert_eq!(h["x-session-user-id"], "42");
        assert_eq!(h["x-session-name"], "\"Jos\\u00e9\"");
        assert!(h["x-session-data"].to_str().unwrap().contains("\"a b\":1"));
        assert_eq!(h.len(), 4);
    }
}
