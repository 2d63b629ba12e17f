//! The `X-Session-*` header grammar: pure functions, no I/O.
//!
//! Inbound (proxy → app): `X-Session-Id`, `X-Session-Data` (the whole map as ASCII-only compact
//! JSON), `X-Session-Created`, `X-Session-Last-Seen` and one `X-Session-<Key>` per simple key. Outbound (app → proxy): `X-Session-Set`,
//! `X-Session-Delete`, `X-Session-Clear`, `X-Session-Regenerate`. Anything else starting with
//! `X-Session-` is stripped in both directions so neither side can be spoofed.
//!
//! `inbound` writes the session into a request's headers (`ascii` is the JSON encoding of values
//! that are not plain text), `controls` reads the app's instructions off a response, and
//! `json_text` checks the JSON text of a value for what no store could hand back exactly.

mod ascii;
mod controls;
mod inbound;
mod json_text;

use http::header::{HeaderMap, HeaderName};

pub use ascii::{ascii_json, json_len};
pub use controls::{parse_set_line, take_controls, Controls, Ignored, Malformed, Revoke};
pub use inbound::{
    header_name_for_key, header_value_for, inject, rfc3339, rfc3339_text, share_a_header, Times,
};
pub use json_text::{scan_json, MAX_DEPTH};

/// Longest key the app may set. Longer keys are almost certainly a bug in the app.
pub const MAX_KEY_LEN: usize = 128;
/// Most keys one session may hold; a `Set` that would exceed it is ignored with a warning.
pub const MAX_KEYS: usize = 256;

pub const ID_HEADER: HeaderName = HeaderName::from_static("x-session-id");
pub const DATA_HEADER: HeaderName = HeaderName::from_static("x-session-data");
/// When the session was created and when it was last seen before this request (RFC 3339, UTC).
pub const CREATED_HEADER: HeaderName = HeaderName::from_static("x-session-created");
pub const LAST_SEEN_HEADER: HeaderName = HeaderName::from_static("x-session-last-seen");

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

#[cfg(test)]
mod tests;
