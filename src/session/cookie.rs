//! Reading the session cookie out of a request and building our `Set-Cookie`.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use http::header::{HeaderMap, HeaderValue, COOKIE, SET_COOKIE};

use super::clock::system_time;
use super::store::Millis;
use crate::config::{SameSite, SessionConfig};

/// Browsers drop a `Set-Cookie` larger than this (RFC 6265 §6.1's minimum that all of them honour).
pub const MAX_SET_COOKIE: usize = 4096;

/// Removes the session cookie from the request's `Cookie` header(s) and returns its value (the
/// first one, if the client sent several). Other cookies pass untouched, byte for byte (quotes,
/// non-ASCII bytes and valueless parts included), joined into one header as HTTP/1.1 requires
/// (HTTP/2 clients send one header per cookie); the header is dropped if nothing is left. Nothing
/// is rewritten, and nothing allocated, when our cookie is absent.
pub fn take_session_cookie(headers: &mut HeaderMap, name: &str) -> Option<String> {
    let mut count = 0;
    let mut present = false;
    for value in headers.get_all(COOKIE) {
        count += 1;
        present |= parts(value.as_bytes()).any(|p| value_of(p, name).is_some());
    }
    if !present {
        if count > 1 {
            join_cookie_headers(headers);
        }
        return None;
    }

    let mut found = None;
    let mut rest = BytesMut::new();
    for value in headers.get_all(COOKIE) {
        for part in parts(value.as_bytes()) {
            if let Some(v) = value_of(part, name) {
                if found.is_none() {
                    // Our values are ASCII: `from_utf8` checks them a word at a time, where
                    // `from_utf8_lossy` walks them byte by byte.
                    found = Some(match std::str::from_utf8(v) {
                        Ok(v) => v.to_owned(),
                        Err(_) => String::from_utf8_lossy(v).into_owned(),
                    });
                }
                continue;
            }
            if !rest.is_empty() {
                rest.put_slice(b"; ");
            }
            rest.put_slice(part);
        }
    }
    headers.remove(COOKIE);
    if !rest.is_empty() {
        if let Ok(v) = HeaderValue::from_maybe_shared(rest.freeze()) {
            headers.insert(COOKIE, v);
        }
    }
    found
}

/// Drops every `Set-Cookie` the app sent that a browser could send back as our cookie: the session
/// cookie belongs to the proxy, and an app (or anyone who controls a response header) must not be
/// able to plant or overwrite it. Returns whether one was removed. No work when the response sets
/// no cookie, and no allocation unless one is dropped.
pub fn remove_set_cookie_named(headers: &mut HeaderMap, name: &str) -> bool {
    let is_ours = |v: &HeaderValue| reads_as(v.as_bytes(), name);
    if !headers.get_all(SET_COOKIE).iter().any(is_ours) {
        return false;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| !is_ours(v))
        .cloned()
        .collect();
    headers.remove(SET_COOKIE);
    for v in kept {
        headers.append(SET_COOKIE, v);
    }
    true
}

/// Whether a browser could send the cookie this `Set-Cookie` value creates back in a form that a
/// server reads as the cookie `name`. Deliberately wider than any one browser:
///
/// - the name is compared ignoring ASCII case, surrounding whitespace and quotes (`"Session_ID" =`
///   is somebody's parser's `session_id`, and `__Host-` prefixes are case-insensitive in RFC
///   6265bis);
/// - a nameless cookie (`=session_id=X`, or a value with no `=` at all) is sent back as its bare
///   value (RFC 6265bis §5.6, §5.7.3), so `Cookie: session_id=X` arrives: for those, the name is
///   read from the value, after any further empty names (`==session_id=X`).
pub fn reads_as(set_cookie: &[u8], name: &str) -> bool {
    let pair = set_cookie.split(|&b| b == b';').next().unwrap_or_default();
    let mut rest = trim_ws_quotes(pair);
    while let Some(after) = rest.strip_prefix(b"=") {
        rest = trim_ws_quotes(after);
    }
    let end = rest.iter().position(|&b| b == b'=').unwrap_or(rest.len());
    trim_ws_quotes(&rest[..end]).eq_ignore_ascii_case(name.as_bytes())
}

fn trim_ws_quotes(b: &[u8]) -> &[u8] {
    let skip = |c: &u8| matches!(c, b' ' | b'\t' | b'"');
    let start = b.iter().position(|c| !skip(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !skip(c)).map_or(start, |i| i + 1);
    &b[start..end]
}

fn join_cookie_headers(headers: &mut HeaderMap) {
    let mut joined = BytesMut::new();
    for value in headers.get_all(COOKIE) {
        if !joined.is_empty() {
            joined.put_slice(b"; ");
        }
        joined.put_slice(value.as_bytes());
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(joined.freeze()) {
        headers.insert(COOKIE, v);
    }
}

/// The `;`-separated parts of a Cookie header, trimmed, empty ones skipped. Bytes, not `str`:
/// browsers send non-ASCII (UTF-8) cookie values, and one such cookie must neither hide ours nor be
/// dropped itself.
///
/// Split with `memchr`: a session cookie is a few hundred bytes that every request carries, and
/// a byte-at-a-time split measured 3,500 instructions per request (docs/performance.md §6).
fn parts(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b';', header)
        .chain(std::iter::once(header.len()))
        .map(move |end| {
            let part = &header[start..end];
            start = end + 1;
            part.trim_ascii()
        })
        .filter(|p| !p.is_empty())
}

/// The value of `part` when it is the pair `name=value` (surrounding quotes removed), leniently:
/// spaces around the name and value are ignored.
fn value_of<'a>(part: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let eq = part.iter().position(|&b| b == b'=')?;
    if part[..eq].trim_ascii() != name.as_bytes() {
        return None;
    }
    let v = part[eq + 1..].trim_ascii();
    Some(
        v.strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(v),
    )
}

/// The fixed part of our `Set-Cookie` (everything except value, Max-Age and Expires), rendered
/// once at start-up.
#[derive(Debug, Clone)]
pub struct CookieSpec {
    name: String,
    /// `; Path=/; Domain=…; Secure; HttpOnly; SameSite=Lax`
    attributes: String,
}

impl CookieSpec {
    pub fn new(cfg: &SessionConfig) -> CookieSpec {
        let mut attributes = format!("; Path={}", cfg.path);
        if !cfg.domain.is_empty() {
            attributes.push_str("; Domain=");
            attributes.push_str(&cfg.domain);
        }
        if cfg.secure {
            attributes.push_str("; Secure");
        }
        if cfg.http_only {
            attributes.push_str("; HttpOnly");
        }
        attributes.push_str(match cfg.same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
        CookieSpec {
            name: cfg.cookie_name.clone(),
            attributes,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A cookie that lives for `remaining` from `now`. Max-Age is what browsers use; Expires is
    /// for the few old clients that ignore Max-Age.
    pub fn set(&self, value: &str, remaining: Duration, now: Millis) -> String {
        let secs = remaining.as_secs().max(1);
        let expires = httpdate::fmt_http_date(system_time(now) + Duration::from_secs(secs));
        format!(
            "{}={}; Max-Age={}; Expires={}{}",
            self.name, value, secs, expires, self.attributes
        )
    }

    /// A cookie that tells the browser to forget ours (same Path and Domain, or it would not match).
    pub fn expire(&self) -> String {
        format!(
            "{}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{}",
            self.name, self.attributes
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn takes_ours_and_keeps_the_rest() {
        let mut h = headers(&["a=1; sid=SECRET; b=2"]);
        assert_eq!(
            take_session_cookie(&mut h, "sid").as_deref(),
            Some("SECRET")
        );
        assert_eq!(h[COOKIE], "a=1; b=2");
    }

    #[test]
    fn drops_the_header_when_only_ours() {
        let mut h = headers(&["sid=x"]);
        assert_eq!(take_session_cookie(&mut h, "sid").as_deref(), Some("x"));
        assert!(!h.contains_key(COOKIE));
    }

    #[test]
    fn http2_split_cookies_are_joined() {
        let mut h = headers(&["a=1", "sid=x", "b=2"]);
        assert_eq!(take_session_cookie(&mut h, "sid").as_deref(), Some("x"));
        assert_eq!(h.get_all(COOKIE).iter().count(), 1);
        assert_eq!(h[COOKIE], "a=1; b=2");
        let mut h = headers(&["a=1", "b=2"]);
        assert_eq!(take_session_cookie(&mut h, "sid"), None);
        assert_eq!(h[COOKIE], "a=1; b=2");
    }

    #[test]
    fn every_copy_of_ours_is_removed_and_the_first_wins() {
        let mut h = headers(&["sid=first; sid=second; c=3"]);
        assert_eq!(take_session_cookie(&mut h, "sid").as_deref(), Some("first"));
        assert_eq!(h[COOKIE], "c=3");
    }

    #[test]
    fn prefix_names_do_not_match() {
        let mut h = headers(&["sid2=x; xsid=y"]);
        assert_eq!(take_session_cookie(&mut h, "sid"), None);
        assert_eq!(h[COOKIE], "sid2=x; xsid=y");
    }

    #[test]
    fn other_cookies_pass_byte_for_byte() {
        let mut h = headers(&["a=\"x y\"; flag; sid=\"S\"; b= 2"]);
        assert_eq!(take_session_cookie(&mut h, "sid").as_deref(), Some("S"));
        assert_eq!(h[COOKIE], "a=\"x y\"; flag; b= 2");
    }

    #[test]
    fn non_ascii_cookies_neither_hide_ours_nor_get_dropped() {
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::from_bytes("pref=caf\u{e9}; sid=S".as_bytes()).unwrap(),
        );
        assert_eq!(take_session_cookie(&mut h, "sid").as_deref(), Some("S"));
        assert_eq!(h[COOKIE].as_bytes(), "pref=caf\u{e9}".as_bytes());
    }

    #[test]
    fn the_apps_set_cookie_for_our_name_is_dropped() {
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("theme=dark; Path=/"));
        h.append(SET_COOKIE, HeaderValue::from_static("sid=planted; Path=/"));
        h.append(SET_COOKIE, HeaderValue::from_static("sid2=x"));
        assert!(remove_set_cookie_named(&mut h, "sid"));
        let left: Vec<_> = h.get_all(SET_COOKIE).iter().collect();
        assert_eq!(left, ["theme=dark; Path=/", "sid2=x"]);
        assert!(!remove_set_cookie_named(&mut h, "sid"));
    }

    /// Issue 11 item 5: a nameless cookie comes back as its bare value, so `=sid=X` plants `sid`.
    #[test]
    fn every_spelling_a_browser_could_return_as_ours_is_ours() {
        for ours in [
            "sid=planted",
            "sid",
            " sid =x",
            "=sid=X",
            " = sid = X",
            "==sid=X",
            "=\"sid=X\"",
            "\"sid\"=X",
            "SID=X; Path=/other",
            "\t=\tsid\t=X",
            "=sid",
        ] {
            assert!(reads_as(ours.as_bytes(), "sid"), "{ours:?}");
        }
        for theirs in [
            "theme=dark",
            "sid2=x",
            "xsid=x",
            "s id=x",
            "foo=sid=X",
            "foo=\"sid=X\"",
            "=",
            "",
            "; sid=x",
            "a=b; sid=x",
        ] {
            assert!(!reads_as(theirs.as_bytes(), "sid"), "{theirs:?}");
        }
    }

    #[test]
    fn set_cookie_carries_the_configured_attributes() {
        let cfg: SessionConfig = serde_norway::from_str(
            "cookie_name: sid\ndomain: example.com\npath: /app\nsame_site: Strict\nsecret: x",
        )
        .unwrap();
        let spec = CookieSpec::new(&cfg);
        let c = spec.set("v", Duration::from_secs(90), 1_700_000_000_000);
        assert!(
            c.starts_with("sid=v; Max-Age=90; Expires=Tue, 14 Nov 2023 22:14:50 GMT;"),
            "{c}"
        );
        assert!(c.ends_with("; Path=/app; Domain=example.com; Secure; HttpOnly; SameSite=Strict"));
        let e = spec.expire();
        assert!(e.starts_with("sid=; Max-Age=0;"));
        assert!(e.contains("Path=/app; Domain=example.com"));
    }
}
