//! Proxy → app: the session as request headers (`X-Session-Id`, `X-Session-Data`, one
//! `X-Session-<Key>` per simple key).

use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::ascii::{ascii_json_bytes, owned_header_value};
use super::{CREATED_HEADER, DATA_HEADER, ID_HEADER, LAST_SEEN_HEADER, MAX_KEY_LEN, PREFIX};
use crate::session::store::{Data, Millis};

/// Names the proxy writes itself: no session key may be written under one of them.
const RESERVED: [&[u8]; 5] = [
    b"x-session-id",
    b"x-session-data",
    // The default name of the signed assertion's header.
    b"x-session-assertion",
    b"x-session-created",
    b"x-session-last-seen",
];

/// `user_id` → `x-session-user-id`. `None` for keys that get no header of their own: those that
/// would collide with the headers the proxy writes (`id`, `data`, `created`, `last_seen`,
/// `assertion`) and keys outside `[A-Za-z0-9_-]`.
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
    if RESERVED.contains(&name) {
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
        && !RESERVED.iter().any(|name| {
            let rest = &name[PREFIX.len()..];
            rest.len() == key.len()
                && rest.iter().zip(key.bytes()).all(|(&r, k)| {
                    r == if k == b'_' {
                        b'-'
                    } else {
                        k.to_ascii_lowercase()
                    }
                })
        })
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

/// When a session began and was last seen, for the app to show ("signed in since").
#[derive(Debug, Clone, Copy)]
pub struct Times {
    pub created: Millis,
    pub last_seen: Millis,
}

/// Adds the session's headers to a request bound for the app. `handle` is the session's public
/// name ([`crate::session::store::SessionId::handle`]), never the ID: apps log request headers, and the ID
/// is a working credential for the memory and Redis stores.
pub fn inject(headers: &mut HeaderMap, handle: &str, times: Times, data: &Data) {
    if let Ok(v) = HeaderValue::from_str(handle) {
        headers.insert(ID_HEADER, v);
    }
    if let Some(v) = rfc3339(times.created) {
        headers.insert(CREATED_HEADER, v);
    }
    if let Some(v) = rfc3339(times.last_seen) {
        headers.insert(LAST_SEEN_HEADER, v);
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

/// `2026-12-02T01:02:03Z`: RFC 3339 in UTC, whole seconds, formatted on the stack.
pub fn rfc3339(ms: Millis) -> Option<HeaderValue> {
    use std::io::Write as _;
    // humantime refuses years past 9999 with a `fmt::Error`, and `io::Write::write_fmt` panics
    // on a formatting error the stream did not cause: refuse them here first.
    const YEAR_10000: Millis = 253_402_300_800_000;
    if ms >= YEAR_10000 {
        return None;
    }
    let at = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_millis(ms))?;
    let mut buf = [0u8; 32];
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    write!(cursor, "{}", humantime::format_rfc3339_seconds(at)).ok()?;
    let len = usize::try_from(cursor.position()).ok()?;
    HeaderValue::from_bytes(&buf[..len]).ok()
}

/// [`rfc3339`] as text, for listings (the admin API, `session-proxy sessions list`). RFC 3339
/// cannot write a year past 9999; such a time (a session that practically never ends) reads as
/// that year's last second rather than failing the whole listing.
pub fn rfc3339_text(ms: Millis) -> String {
    rfc3339(ms)
        .and_then(|v| v.to_str().ok().map(str::to_owned))
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".to_owned())
}
