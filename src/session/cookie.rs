//! Reading the session cookie out of a request and building our `Set-Cookie`.

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use http::header::{HeaderMap, HeaderValue, COOKIE};

use crate::config::{SameSite, SessionConfig};

/// Browsers drop a `Set-Cookie` larger than this (RFC 6265 §6.1's minimum that all of them honour).
pub const MAX_SET_COOKIE: usize = 4096;

/// Removes the session cookie from the request's `Cookie` header(s) and returns its value (the
/// first one, if the client sent several). Other cookies pass untouched, joined into one header as
/// HTTP/1.1 requires (HTTP/2 clients send one header per cookie); the header is dropped if nothing
/// is left. Nothing is rewritten, and nothing allocated, when our cookie is absent.
pub fn take_session_cookie(headers: &mut HeaderMap, name: &str) -> Option<String> {
    let mut count = 0;
    let mut present = false;
    for value in headers.get_all(COOKIE) {
        count += 1;
        present |= value
            .to_str()
            .map(|s| pairs(s).any(|(n, _)| n == name))
            .unwrap_or(false);
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
        let Ok(text) = value.to_str() else { continue };
        for (n, v) in pairs(text) {
            if n == name {
                if found.is_none() {
                    found = Some(v.to_owned());
                }
                continue;
            }
            if !rest.is_empty() {
                rest.put_slice(b"; ");
            }
            rest.put_slice(n.as_bytes());
            rest.put_u8(b'=');
            rest.put_slice(v.as_bytes());
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

/// `name=value` pairs of a Cookie header, leniently: surrounding spaces trimmed, pairs without `=`
/// skipped (browsers send such things and dropping them is safer than failing the request).
fn pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        let v = v.trim();
        let v = v
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(v);
        Some((n.trim(), v))
    })
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

    /// A cookie that lives for `remaining`. Max-Age is what browsers use; Expires is for the few
    /// old clients that ignore Max-Age.
    pub fn set(&self, value: &str, remaining: Duration) -> String {
        let secs = remaining.as_secs().max(1);
        let expires =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(secs));
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
    fn set_cookie_carries_the_configured_attributes() {
        let cfg: SessionConfig = serde_yaml::from_str(
            "cookie_name: sid\ndomain: example.com\npath: /app\nsame_site: Strict\nsecret: x",
        )
        .unwrap();
        let spec = CookieSpec::new(&cfg);
        let c = spec.set("v", Duration::from_secs(90));
        assert!(c.starts_with("sid=v; Max-Age=90; Expires="), "{c}");
        assert!(c.ends_with("; Path=/app; Domain=example.com; Secure; HttpOnly; SameSite=Strict"));
        let e = spec.expire();
        assert!(e.starts_with("sid=; Max-Age=0;"));
        assert!(e.contains("Path=/app; Domain=example.com"));
    }
}
