//! The app's `X-Session-*` control lines → `take_controls` → the resulting data back into request
//! headers with `inject`. No line may survive `take_controls`, and nothing `inject` writes may
//! split a header (CR, LF, NUL).
//!
//! Issue 11: every value `take_controls` accepts must come back exactly from every store (nesting
//! at most `MAX_DEPTH`, numbers exact through JSON, also inside the cookie store's two wrapping
//! levels), and keys that map to one `X-Session-<Key>` header get none, while every other simple
//! key gets exactly its own value.
#![no_main]

use arbitrary::Arbitrary;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
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

/// Keys that collide (`user_id`, `user-id`, `USER_ID`, ...) or not, for `key=value` lines: the
/// fuzzer would take long to find them byte by byte.
const KEYS: &[&str] = &[
    "user_id",
    "user-id",
    "USER_ID",
    "User-Id",
    "role",
    "Role",
    "id",
    "ID",
    "data",
    "a.b",
    "A.B",
    "created",
    "last_seen",
    "LAST-SEEN",
];

#[derive(Arbitrary, Debug)]
struct Line<'a> {
    name: u8,
    /// Picks a `KEYS` entry to prefix the value with as `key=`, or none.
    key: u8,
    /// Wraps the value in this many `[`…`]` (mod 40): depths around `MAX_DEPTH`.
    nest: u8,
    value: &'a [u8],
}

/// The number rule, against Rust's own integer parsing: a `key=<integer literal>` line (with a
/// valid key from `KEYS`) is either stored as exactly that integer or refused, never turned into
/// another number.
fn check_integer_literal(line: &str) {
    let Some((_, raw)) = line.split_once('=') else {
        return;
    };
    let raw = raw.trim();
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && raw != "-0";
    if !canonical {
        return;
    }
    let mut out = Vec::new();
    let mut bad = protocol::Ignored::default();
    protocol::parse_set_line(line, &mut out, &mut bad);
    let fits = raw.parse::<i64>().is_ok() || raw.parse::<u64>().is_ok();
    match out.as_slice() {
        [(_, v)] => {
            assert!(fits, "{raw} accepted as {v}");
            assert_eq!(v.to_string(), raw);
        }
        [] => assert!(!fits, "{raw} refused ({bad:?})"),
        more => panic!("{raw}: {more:?}"),
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
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
        let nest = usize::from(line.nest % 40);
        let mut bytes = Vec::with_capacity(line.value.len() + 2 * nest + 16);
        if let Some(key) = KEYS.get(usize::from(line.key)) {
            bytes.extend_from_slice(key.as_bytes());
            bytes.push(b'=');
        }
        bytes.extend(std::iter::repeat_n(b'[', nest));
        bytes.extend_from_slice(line.value);
        bytes.extend(std::iter::repeat_n(b']', nest));
        let Ok(value) = HeaderValue::from_bytes(&bytes) else {
            continue;
        };
        if KEYS.get(usize::from(line.key)).is_some() {
            if let Ok(text) = std::str::from_utf8(&bytes) {
                check_integer_literal(text);
            }
        }
        headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
    }

    let (controls, _malformed) = protocol::take_controls(&mut headers);
    for name in headers.keys() {
        assert!(!is_session_name(name.as_str()), "{name} survived");
    }

    for (key, value) in &controls.set {
        assert!(depth(value) <= protocol::MAX_DEPTH, "{key}: too deep");
        // Redis stores each value as its JSON text; the cookie store seals it two levels down.
        let text = value.to_string();
        assert_eq!(
            &serde_json::from_str::<Value>(&text).unwrap(),
            value,
            "{text}"
        );
        let sealed = json!({ "d": { key.as_str(): value } }).to_string();
        let back: Value = serde_json::from_str(&sealed).unwrap();
        assert_eq!(&back["d"][key.as_str()], value, "{sealed}");
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
    // Times from the input too: `rfc3339` must never panic, whatever the stored millisecond.
    let ms = |i: usize| {
        lines.get(i).map_or(0, |l| {
            u64::from_le_bytes(std::array::from_fn(|b| {
                l.value.get(b).copied().unwrap_or(0)
            }))
        })
    };
    let times = protocol::Times {
        created: ms(0),
        last_seen: ms(1),
    };
    protocol::inject(&mut request, ID, times, &data);
    assert!(request.contains_key(protocol::DATA_HEADER));
    for (name, value) in &request {
        let bytes = value.as_bytes();
        assert!(
            !bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "{name}: {value:?} can split a header"
        );
        assert!(is_session_name(name.as_str()), "inject wrote {name}");
    }
    for (key, value) in &data {
        let Some(name) = protocol::header_name_for_key(key) else {
            continue;
        };
        let shared = data
            .keys()
            .any(|k| k != key && protocol::header_name_for_key(k).as_ref() == Some(&name));
        let sent: Vec<_> = request.get_all(&name).iter().collect();
        if shared {
            assert!(sent.is_empty(), "{name} sent for a shared header");
        } else {
            assert_eq!(sent, [protocol::header_value_for(value).unwrap()], "{name}");
        }
    }
});
