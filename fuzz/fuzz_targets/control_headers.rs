//! The app's `X-Session-*` control lines → `take_controls` → the resulting data back into request
//! headers with `inject`. No line may survive `take_controls`, and nothing `inject` writes may
//! split a header (CR, LF, NUL).
#![no_main]

use arbitrary::Arbitrary;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use session_proxy::session::protocol;
use session_proxy::session::store::Data;

const ID: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The names an app (or an attacker-controlled upstream) can send, in several spellings.
const NAMES: &[&str] = &[
    "x-session-set",
    "x-session-delete",
    "x-session-clear",
    "x-session-regenerate",
    "X-Session-Set",
    "x_session_set",
    "x-session-id",
    "x-session-data",
    "x-session-user-id",
    "X_SESSION_OTHER",
    "x-session-",
    "content-type",
    "set-cookie",
];

#[derive(Arbitrary, Debug)]
struct Line<'a> {
    name: u8,
    value: &'a [u8],
}

fn is_session_name(name: &str) -> bool {
    name.to_ascii_lowercase()
        .replace('_', "-")
        .starts_with("x-session-")
}

fuzz_target!(|lines: Vec<Line<'_>>| {
    let mut headers = HeaderMap::new();
    for line in &lines {
        let name = NAMES[usize::from(line.name) % NAMES.len()];
        let Ok(value) = HeaderValue::from_bytes(line.value) else {
            continue;
        };
        headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
    }

    let (controls, _malformed) = protocol::take_controls(&mut headers);
    for name in headers.keys() {
        assert!(!is_session_name(name.as_str()), "{name} survived");
    }

    // Apply the controls the way the session layer does, then hand the data to the app.
    let mut data = Data::new();
    if !controls.clear {
        data.insert("user_id".into(), 42.into());
    }
    for key in &controls.delete {
        data.remove(key);
    }
    for (key, value) in controls.set {
        if data.contains_key(&key) || data.len() < protocol::MAX_KEYS {
            data.insert(key, value);
        }
    }
    let mut request = HeaderMap::new();
    protocol::inject(&mut request, ID, &data);
    assert!(request.contains_key(protocol::DATA_HEADER));
    for (name, value) in &request {
        let bytes = value.as_bytes();
        assert!(
            !bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "{name}: {value:?} can split a header"
        );
        assert!(is_session_name(name.as_str()), "inject wrote {name}");
    }
});
