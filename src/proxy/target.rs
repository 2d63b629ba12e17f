//! What a request may name: its target (RFC 9112 §3.2) and its authority (`Host` / `:authority`).
//!
//! Pure functions, no I/O. These checks run before anything is forwarded, on the public listener
//! and on the HTTP→HTTPS redirect listener alike, so both refuse the same requests.

use std::borrow::Cow;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Uri, Version};

/// Why a request target or authority was refused. Each becomes a 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// `CONNECT`: this is a reverse proxy, not a tunnel.
    #[error("CONNECT is not supported")]
    Connect,
    /// Two `Host` headers: how routing-confusion attacks start.
    #[error("more than one Host header")]
    DuplicateHost,
    /// HTTP/1.1 requires `Host`, whatever the target form.
    #[error("missing Host header")]
    MissingHost,
    /// `Host` or `:authority` is not `host[:port]` (userinfo, a path, spaces, an empty value).
    #[error("Host is not a valid authority")]
    InvalidHost,
    /// An authority-form target on a method other than CONNECT.
    #[error("authority-form target")]
    AuthorityForm,
    /// An absolute-form target whose authority differs from `Host` (RFC 9112 §3.2 requires the
    /// same value): the shape of host-override and cache-poisoning attacks.
    #[error("the target's authority differs from Host")]
    HostMismatch,
    /// An absolute-form target on HTTP/1.1 without `Host`.
    #[error("absolute-form target without Host")]
    AbsoluteWithoutHost,
    /// `*` on a method other than OPTIONS.
    #[error("asterisk-form target on a method other than OPTIONS")]
    Asterisk,
    /// Dot-segments that climb above `/`: an attempt to leave the upstream's path prefix.
    #[error("the path climbs above /")]
    PathEscape,
}

/// Checks the request line and `Host` together (RFC 9112 §3.2). An absolute-form target with the
/// same authority as `Host` is accepted (RFC 9112 §3.2.2) and later forwarded in origin-form.
pub fn check(
    method: &Method,
    uri: &Uri,
    version: Version,
    headers: &HeaderMap,
) -> Result<(), TargetError> {
    if method == Method::CONNECT {
        return Err(TargetError::Connect);
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    let (host, second) = (hosts.next(), hosts.next());
    if second.is_some() {
        return Err(TargetError::DuplicateHost);
    }
    if host.is_none() && version == Version::HTTP_11 {
        return Err(TargetError::MissingHost);
    }
    if host.is_some_and(|h| !is_valid(h.as_bytes())) {
        return Err(TargetError::InvalidHost);
    }
    if let Some(authority) = uri.authority() {
        if uri.scheme().is_none() {
            return Err(TargetError::AuthorityForm);
        }
        if !is_valid(authority.as_str().as_bytes()) {
            return Err(TargetError::InvalidHost);
        }
        match host {
            Some(h)
                if h.as_bytes()
                    .eq_ignore_ascii_case(authority.as_str().as_bytes()) => {}
            Some(_) => return Err(TargetError::HostMismatch),
            None if version == Version::HTTP_2 => {}
            None => return Err(TargetError::AbsoluteWithoutHost),
        }
    }
    if uri.path() == "*" && method != Method::OPTIONS {
        return Err(TargetError::Asterisk);
    }
    Ok(())
}

/// The host the client addressed: `:authority` (HTTP/2) or the absolute-form target, else `Host`.
/// Only meaningful after [`check`] accepted the request.
pub fn host_of(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    if let Some(auth) = uri.authority() {
        return HeaderValue::from_str(auth.as_str()).ok();
    }
    headers.get(header::HOST).cloned()
}

/// `host [":" port]` and nothing else: a DNS name or IPv4 address made of letters, digits, `-`,
/// `.`, `_`, `~`, or an IPv6 literal in brackets; a port of 1–5 digits up to 65535. No userinfo,
/// no path, no spaces, no percent-escapes, not empty.
pub fn is_valid(authority: &[u8]) -> bool {
    let (host, port) = if authority.first() == Some(&b'[') {
        let Some(close) = authority.iter().position(|&b| b == b']') else {
            return false;
        };
        let Ok(inner) = std::str::from_utf8(&authority[1..close]) else {
            return false;
        };
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match &authority[close + 1..] {
            [] => return true,
            [b':', port @ ..] => (&authority[..=close], Some(port)),
            _ => return false,
        }
    } else {
        match authority.iter().rposition(|&b| b == b':') {
            Some(colon) => (&authority[..colon], Some(&authority[colon + 1..])),
            None => (authority, None),
        }
    };
    let host_ok = !host.is_empty()
        && (host.first() == Some(&b'[')
            || host
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')));
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.iter().all(u8::is_ascii_digit)
            && std::str::from_utf8(p)
                .ok()
                .and_then(|p| p.parse::<u16>().ok())
                .is_some()
    });
    host_ok && port_ok
}

/// Removes dot-segments (RFC 3986 §5.2.4), reading `%2e` / `%2E` as `.`, so that `/../x` and
/// `/%2e%2e/x` cannot leave the upstream's path prefix once it is prepended. A path that would
/// climb above `/` is refused rather than clamped: no legitimate client sends one. `%2f` is never
/// decoded (it is data inside a segment, not a separator). Borrowed, with no allocation, when
/// there is no dot-segment (nearly every request).
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, TargetError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Ok(Cow::Borrowed(path));
    };
    if !rest.split('/').any(|seg| dots(seg) > 0) {
        return Ok(Cow::Borrowed(path));
    }
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    let mut segments = rest.split('/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match dots(seg) {
            0 => {
                kept.push(seg);
                trailing_slash = false;
            }
            1 => trailing_slash = last,
            _ => {
                if kept.pop().is_none() {
                    return Err(TargetError::PathEscape);
                }
                trailing_slash = last;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for seg in &kept {
        out.push('/');
        out.push_str(seg);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

/// 1 for a `.` segment, 2 for `..`, 0 otherwise; `%2e`/`%2E` count as a dot.
fn dots(seg: &str) -> usize {
    let b = seg.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        if b[i] == b'.' {
            i += 1;
        } else if b[i] == b'%'
            && b.get(i + 1) == Some(&b'2')
            && matches!(b.get(i + 2), Some(b'e' | b'E'))
        {
            i += 3;
        } else {
            return 0;
        }
        n += 1;
        if n > 2 {
            return 0;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities() {
        for ok in [
            "example.com",
            "example.com:8080",
            "127.0.0.1",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:443",
            "app.test",
            "under_score.test",
            "localhost:65535",
        ] {
            assert!(is_valid(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "good.example@evil.example",
            "user:pw@host",
            "host/path",
            "host?q",
            "host#f",
            "a b",
            "host:",
            "host:65536",
            "host:123456",
            "host:8x",
            ":80",
            "[::1",
            "[not-v6]",
            "[::1]x",
            "ho%73t",
            "host\t",
            "host,other",
        ] {
            assert!(!is_valid(bad.as_bytes()), "{bad:?}");
        }
    }

    #[test]
    fn dot_segments() {
        let cases = [
            ("/", Ok("/")),
            ("/a/b", Ok("/a/b")),
            ("/a/./b", Ok("/a/b")),
            ("/a/../b", Ok("/b")),
            ("/a/b/..", Ok("/a/")),
            ("/a/b/.", Ok("/a/b/")),
            ("/a/%2e%2E/b", Ok("/b")),
            ("/a/.%2e/b", Ok("/b")),
            ("/a/%2e/b", Ok("/a/b")),
            ("/.", Ok("/")),
            ("/a/..", Ok("/")),
            ("/a/...", Ok("/a/...")),
            ("/a/..%2f../b", Ok("/a/..%2f../b")),
            ("/a/.hidden", Ok("/a/.hidden")),
            ("/a//../b", Ok("/a/b")),
            ("/..", Err(TargetError::PathEscape)),
            ("/../admin/secret", Err(TargetError::PathEscape)),
            ("/%2e%2e/admin/secret", Err(TargetError::PathEscape)),
            ("/%2E%2E/admin", Err(TargetError::PathEscape)),
            ("/a/../../b", Err(TargetError::PathEscape)),
            ("*", Ok("*")),
        ];
        for (input, want) in cases {
            assert_eq!(
                normalize_path(input).as_deref().map_err(|e| *e),
                want,
                "{input}"
            );
        }
        assert!(matches!(normalize_path("/a/b"), Ok(Cow::Borrowed(_))));
    }

    fn headers(hosts: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in hosts {
            h.append(header::HOST, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn targets() {
        let get = Method::GET;
        let v11 = Version::HTTP_11;
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(check(&get, &uri("/"), v11, &headers(&["a.test"])), Ok(()));
        assert_eq!(
            check(
                &get,
                &uri("/"),
                v11,
                &headers(&["good.example@evil.example"])
            ),
            Err(TargetError::InvalidHost)
        );
        assert_eq!(
            check(&get, &uri("/"), v11, &headers(&[])),
            Err(TargetError::MissingHost)
        );
        assert_eq!(
            check(&get, &uri("/"), v11, &headers(&["a.test", "a.test"])),
            Err(TargetError::DuplicateHost)
        );
        assert_eq!(
            check(&get, &uri("http://b.test/"), v11, &headers(&["a.test"])),
            Err(TargetError::HostMismatch)
        );
        assert_eq!(
            check(&get, &uri("http://a.test/"), v11, &headers(&["a.test"])),
            Ok(())
        );
        assert_eq!(
            check(
                &get,
                &uri("http://u@a.test/"),
                Version::HTTP_2,
                &headers(&[])
            ),
            Err(TargetError::InvalidHost)
        );
        assert_eq!(
            check(
                &Method::CONNECT,
                &uri("a.test:443"),
                v11,
                &headers(&["a.test"])
            ),
            Err(TargetError::Connect)
        );
        assert_eq!(
            check(&get, &uri("*"), v11, &headers(&["a.test"])),
            Err(TargetError::Asterisk)
        );
        assert_eq!(
            check(&Method::OPTIONS, &uri("*"), v11, &headers(&["a.test"])),
            Ok(())
        );
    }
}
