//! A client's request headers → `strip_session_headers` and `take_session_cookie`. No header that
//! reads as `X-Session-*` (any case, `_` for `-`) may reach the app, and no `Cookie` header may
//! still carry a `session_id` cookie.
#![no_main]

use arbitrary::Arbitrary;
use http::header::{HeaderMap, HeaderName, HeaderValue, COOKIE};
use libfuzzer_sys::fuzz_target;
use session_proxy::session::{cookie, protocol};

const COOKIE_NAME: &str = "session_id";

/// Names worth hitting often; anything else comes from the fuzzer's bytes.
const NAMES: &[&str] = &[
    "cookie",
    "Cookie",
    "x-session-id",
    "X-Session-Data",
    "X_SESSION_ID",
    "x_session-user-id",
    "x-session-",
    "x-sessions-id",
    "accept",
];

#[derive(Arbitrary, Debug)]
enum Name<'a> {
    Known(u8),
    Raw(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
struct Header<'a> {
    name: Name<'a>,
    value: &'a [u8],
}

fn is_session_name(name: &str) -> bool {
    name.to_ascii_lowercase()
        .replace('_', "-")
        .starts_with("x-session-")
}

/// Does this Cookie header value still hold our cookie? Read the way an app's cookie parser
/// would: `;`-separated pairs, the name trimmed of spaces and tabs, bytes not text.
fn carries_our_cookie(value: &[u8]) -> bool {
    value.split(|&b| b == b';').any(|pair| {
        let name = match pair.iter().position(|&b| b == b'=') {
            Some(i) => &pair[..i],
            None => return false,
        };
        name.trim_ascii() == COOKIE_NAME.as_bytes()
    })
}

fuzz_target!(|input: Vec<Header<'_>>| {
    let mut headers = HeaderMap::new();
    for h in &input {
        let name = match h.name {
            Name::Known(i) => {
                HeaderName::from_bytes(NAMES[usize::from(i) % NAMES.len()].as_bytes()).ok()
            }
            Name::Raw(raw) => HeaderName::from_bytes(raw).ok(),
        };
        let (Some(name), Ok(value)) = (name, HeaderValue::from_bytes(h.value)) else {
            continue;
        };
        headers.append(name, value);
    }

    protocol::strip_session_headers(&mut headers);
    let _ = cookie::take_session_cookie(&mut headers, COOKIE_NAME);

    for name in headers.keys() {
        assert!(!is_session_name(name.as_str()), "{name} reached the app");
    }
    for value in headers.get_all(COOKIE) {
        assert!(
            !carries_our_cookie(value.as_bytes()),
            "our cookie reached the app: {value:?}"
        );
    }
});
