//! App → proxy: the control headers of a response (`X-Session-Set`, `-Delete`, `-Clear`,
//! `-Regenerate`) and what had to be ignored among them.

use http::header::HeaderMap;
use serde_json::Value;

use super::json_text::{is_json_number, json_value, scan_json, MAX_DEPTH};
use super::{is_session_header, strip_session_headers, MAX_KEY_LEN};

const SET_HEADER: &str = "x-session-set";
const DELETE_HEADER: &str = "x-session-delete";
const CLEAR_HEADER: &str = "x-session-clear";
const REGENERATE_HEADER: &str = "x-session-regenerate";

/// `X-Session-Clear: others | everywhere`: which of the owner's other sessions to end too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke {
    /// Every session of this session's owner but this one (a password change).
    Others,
    /// Every session of this owner, this one included (sign out everywhere).
    Everywhere,
}

/// The app's instructions on one response.
#[derive(Debug, Default, PartialEq)]
pub struct Controls {
    /// End this session (plain `X-Session-Clear`, or `everywhere`).
    pub clear: bool,
    /// End the owner's other sessions too (`X-Session-Clear: others | everywhere`).
    pub revoke: Option<Revoke>,
    pub regenerate: bool,
    pub delete: Vec<String>,
    pub set: Vec<(String, Value)>,
}

impl Controls {
    pub fn is_empty(&self) -> bool {
        !self.clear
            && self.revoke.is_none()
            && !self.regenerate
            && self.delete.is_empty()
            && self.set.is_empty()
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

/// Takes every `X-Session-*` header out of an upstream response and returns the controls among
/// them, plus what it had to ignore. Fast path: one scan, no allocation, when there is none.
pub fn take_controls(headers: &mut HeaderMap) -> (Controls, Ignored) {
    let mut controls = Controls::default();
    let mut bad = Ignored::default();
    if !headers.keys().any(|k| is_session_header(k.as_str())) {
        return (controls, bad);
    }
    if let http::header::Entry::Occupied(e) = headers.entry(CLEAR_HEADER) {
        for value in e.remove_entry_mult().1 {
            clear_line(value.as_bytes(), &mut controls);
        }
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

/// One `X-Session-Clear` line. `others` keeps this session; `everywhere` ends it with the rest;
/// any other value (`1`, `true`, empty) is the plain Clear it has always been. Over several lines
/// the widest wins.
fn clear_line(value: &[u8], controls: &mut Controls) {
    let value = value.trim_ascii();
    if value.eq_ignore_ascii_case(b"others") {
        if controls.revoke.is_none() {
            controls.revoke = Some(Revoke::Others);
        }
    } else if value.eq_ignore_ascii_case(b"everywhere") {
        controls.revoke = Some(Revoke::Everywhere);
        controls.clear = true;
    } else {
        controls.clear = true;
    }
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

fn check_key(key: &str) -> Result<(), Malformed> {
    if key.is_empty() {
        Err(Malformed::EmptyKey)
    } else if key.len() > MAX_KEY_LEN {
        Err(Malformed::KeyTooLong)
    } else {
        Ok(())
    }
}
