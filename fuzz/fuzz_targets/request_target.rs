//! A request line and `Host` → `target::check`, `target::normalize_path`, `target::is_valid`.
//! Nothing panics; an accepted path has no dot-segment left (so nothing can climb out of the
//! upstream prefix once it is prepended), and an accepted authority is a bare `host[:port]`.
#![no_main]

use arbitrary::Arbitrary;
use http::header::{HeaderMap, HeaderValue, HOST};
use http::{Method, Uri, Version};
use libfuzzer_sys::fuzz_target;
use session_proxy::proxy::target;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    method: u8,
    target: &'a [u8],
    hosts: Vec<&'a [u8]>,
    http2: bool,
}

const METHODS: &[&str] = &["GET", "POST", "OPTIONS", "CONNECT", "PUT"];

/// A segment that an RFC 3986 resolver (or an app) would read as `.` or `..`.
fn is_dot_segment(seg: &str) -> bool {
    let decoded = seg.replace("%2e", ".").replace("%2E", ".");
    decoded == "." || decoded == ".."
}

fuzz_target!(|input: Input<'_>| {
    // The proxy hands normalize_path the URI's path: no query, no fragment.
    if let Some(s) = std::str::from_utf8(input.target)
        .ok()
        .and_then(|s| s.split(['?', '#']).next())
    {
        if let Ok(path) = target::normalize_path(s) {
            if s.starts_with('/') {
                assert!(path.starts_with('/'), "{s:?} -> {path:?}");
                assert!(!path.split('/').any(is_dot_segment), "{s:?} -> {path:?}");
                assert!(
                    !path.contains("%2f") || s.contains("%2f"),
                    "{s:?} -> {path:?}"
                );
            }
        }
    }
    for host in &input.hosts {
        if target::is_valid(host) {
            let text = std::str::from_utf8(host).expect("a valid authority is ASCII");
            assert!(
                !text.contains('@') && !text.contains('/') && !text.contains(' '),
                "{text:?}"
            );
            let parsed: http::uri::Authority = text.parse().expect("a valid authority parses");
            assert!(!parsed.host().is_empty(), "{text:?}");
        }
    }
    let Ok(uri) = Uri::try_from(input.target) else {
        return;
    };
    let method = Method::from_bytes(METHODS[usize::from(input.method) % METHODS.len()].as_bytes())
        .expect("known method");
    let mut headers = HeaderMap::new();
    for host in &input.hosts {
        if let Ok(v) = HeaderValue::from_bytes(host) {
            headers.append(HOST, v);
        }
    }
    let version = if input.http2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    if target::check(&method, &uri, version, &headers).is_ok() {
        assert!(headers.get_all(HOST).iter().count() <= 1);
        if let Some(h) = target::host_of(&uri, &headers) {
            assert!(target::is_valid(h.as_bytes()), "{h:?}");
        }
    }
});
