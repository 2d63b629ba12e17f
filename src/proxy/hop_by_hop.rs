//! Hop-by-hop headers (RFC 9110 §7.6.1): what must not cross the proxy, and the one upgrade that
//! may be re-added after they are gone.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Version;

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The protocol an HTTP/1.1 request asks to upgrade to, if it really asks (both `Upgrade` and the
/// `upgrade` token in `Connection`). HTTP/2 has no such mechanism.
pub fn upgrade_protocol(version: Version, headers: &HeaderMap) -> Option<HeaderValue> {
    if version != Version::HTTP_11 {
        return None;
    }
    let proto = headers.get(header::UPGRADE)?;
    connection_tokens(headers)
        .any(|t| t.eq_ignore_ascii_case("upgrade"))
        .then(|| proto.clone())
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes the hop-by-hop headers of RFC 9110 §7.6.1, including every header `Connection` names.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // Most heads carry none of them, and the rest one or two (`Connection: keep-alive` in nearly
    // every upstream response): one pass over the names present (a standard name compares as a
    // tag) finds which, and only those are removed, each removal being a hashed lookup.
    let mut present = [false; FIXED];
    for name in headers.keys() {
        if let Some(i) = HOP_BY_HOP.iter().position(|h| h == name) {
            present[i] = true;
        }
    }
    if !present.contains(&true) {
        return;
    }
    if present[CONNECTION_AT] {
        // The names `Connection` lists, other than the fixed ones (almost always just
        // `keep-alive` or `close`).
        let named: Vec<HeaderName> = connection_tokens(headers)
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .filter(|n| !HOP_BY_HOP.contains(n))
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    for (name, _) in HOP_BY_HOP.iter().zip(present).filter(|(_, p)| *p) {
        headers.remove(name);
    }
}

const FIXED: usize = 10;
/// Where `Connection` stands in [`HOP_BY_HOP`].
const CONNECTION_AT: usize = 0;

/// The fixed hop-by-hop fields (RFC 9110 §7.6.1 and the legacy ones), removed from every head
/// and every trailer section ([`super::trailers::filter`]) that crosses the proxy. A `static`, not
/// a `const`: a `const` array is built (and dropped) again at every use.
pub static HOP_BY_HOP: [HeaderName; FIXED] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    header::PROXY_AUTHENTICATE,
    // Only meaningful with `Upgrade: h2c`, which is never forwarded.
    HTTP2_SETTINGS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_and_named_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("close, X-Secret"),
        );
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert(KEEP_ALIVE, HeaderValue::from_static("timeout=5"));
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert(header::TRAILER, HeaderValue::from_static("x"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(PROXY_CONNECTION, HeaderValue::from_static("keep-alive"));
        h.insert(
            header::PROXY_AUTHORIZATION,
            HeaderValue::from_static("Basic x"),
        );
        h.insert(
            header::PROXY_AUTHENTICATE,
            HeaderValue::from_static("Basic"),
        );
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
    }

    /// The pass that skips the removals when nothing listed is present must still see each listed
    /// name on its own, without a `Connection` header to draw attention (custom names included).
    #[test]
    fn connection_is_where_the_removal_looks_for_it() {
        assert_eq!(HOP_BY_HOP[CONNECTION_AT], header::CONNECTION);
    }

    #[test]
    fn each_hop_by_hop_name_alone_goes() {
        for name in &HOP_BY_HOP {
            let mut h = HeaderMap::new();
            h.insert(name.clone(), HeaderValue::from_static("x"));
            h.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
            remove_hop_by_hop(&mut h);
            assert!(!h.contains_key(name), "{name} kept");
            assert_eq!(h.len(), 1, "{h:?}");
        }
    }

    #[test]
    fn upgrade_needs_both_headers_and_http11() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(upgrade_protocol(Version::HTTP_11, &h).is_none());
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(upgrade_protocol(Version::HTTP_11, &h).is_some());
        assert!(upgrade_protocol(Version::HTTP_2, &h).is_none());
    }
}
