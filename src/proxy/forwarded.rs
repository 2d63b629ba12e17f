//! Who the client is, as the app is told: `X-Forwarded-For`, `X-Forwarded-Proto`,
//! `X-Forwarded-Host`, `Forwarded` (RFC 7239) and `X-Real-IP`.
//!
//! Frameworks believe these headers for the client's address, scheme and host (Rack, Spring,
//! Django, Express all trust some of them), so a value the client wrote is a value the app may act
//! on. Every header of the family, in any spelling (`_` for `-` reaches WSGI and CGI apps as the
//! same variable), is removed from the client's request and the proxy writes its own. Only a peer
//! inside `trusted_proxies` (a load balancer in front of us) has its chain kept and extended, as
//! nginx's `set_real_ip_from` and Traefik's `forwardedHeaders.trustedIPs` do.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

static PROTO_HTTP: HeaderValue = HeaderValue::from_static("http");
static PROTO_HTTPS: HeaderValue = HeaderValue::from_static("https");

/// Names (lower case, `-` form) an app may read as the client's address, scheme, host or original
/// URL. Any `x-forwarded-*` is covered by its prefix.
const FAMILY: &[&str] = &[
    "forwarded",
    "x-real-ip",
    "x-original-url",
    "x-rewrite-url",
    "x-original-host",
    "x-original-uri",
    "front-end-https",
    "x-url-scheme",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
];

/// Whether `name` (lower case, as `HeaderName` stores it) belongs to the family, reading `_` as `-`.
pub fn is_forwarding_header(name: &str) -> bool {
    let b = name.as_bytes();
    let starts = |prefix: &str| {
        b.len() >= prefix.len() && b.iter().zip(prefix.bytes()).all(|(&c, p)| same(c, p))
    };
    // Cheap rejection first: every member starts with one of these letters.
    if !matches!(b.first(), Some(b'x' | b'f' | b't')) {
        return false;
    }
    starts("x-forwarded-") || FAMILY.iter().any(|f| b.len() == f.len() && starts(f))
}

fn same(c: u8, p: u8) -> bool {
    c == p || (c == b'_' && p == b'-')
}

/// The client's address, canonical (`::ffff:a.b.c.d` as `a.b.c.d`) and already written out. Built
/// once per connection: formatting an address costs more than the rest of the family together,
/// and every request on the connection writes it two or three times.
#[derive(Clone, Debug)]
pub struct PeerAddr {
    ip: IpAddr,
    text: HeaderValue,
}

impl PeerAddr {
    pub fn new(ip: IpAddr) -> PeerAddr {
        let ip = canonical(ip);
        PeerAddr {
            ip,
            // An address's text is digits, dots, colons and hex letters: always a valid value.
            text: HeaderValue::try_from(ip.to_string())
                .unwrap_or_else(|_| HeaderValue::from_static("unknown")),
        }
    }

    /// The address as text, for the headers that embed it (`Forwarded`, a kept chain); the
    /// `HeaderValue` itself is shared (a refcount) by `X-Forwarded-For` and `X-Real-IP`.
    fn as_str(&self) -> &str {
        self.text.to_str().unwrap_or("unknown")
    }
}

/// What the proxy knows about this hop.
pub struct Hop<'a> {
    pub peer: &'a PeerAddr,
    pub tls: bool,
    /// The authority the client addressed, already validated.
    pub host: Option<&'a HeaderValue>,
}

/// Replaces the family in `headers` with the proxy's own values (see the module docs).
pub fn apply(headers: &mut HeaderMap, hop: &Hop<'_>, trusted: &[IpNet]) {
    let peer = hop.peer.ip;
    let peer_trusted = trusted.iter().any(|net| net.contains(&peer));
    let kept = peer_trusted.then(|| Kept::take(headers));
    strip(headers);

    // The peer's address, already written out, is shared (a refcount) by X-Forwarded-For and
    // X-Real-IP in the usual case of a client that is not a trusted proxy.
    let peer_text = hop.peer.as_str();
    match kept.as_ref().and_then(|k| k.xff.as_deref()) {
        Some(prior) => {
            let chain = format!("{prior}, {peer_text}");
            match real_ip(&chain, trusted) {
                Some(ip) if ip != peer => insert(headers, X_REAL_IP, ip.to_string()),
                _ => {
                    headers.insert(X_REAL_IP, hop.peer.text.clone());
                }
            }
            insert(headers, X_FORWARDED_FOR, chain);
        }
        None => {
            headers.insert(X_FORWARDED_FOR, hop.peer.text.clone());
            headers.insert(X_REAL_IP, hop.peer.text.clone());
        }
    }

    let mut forwarded = String::with_capacity(64);
    if let Some(prior) = kept.as_ref().and_then(|k| k.forwarded.as_deref()) {
        forwarded.push_str(prior);
        forwarded.push_str(", ");
    }
    forwarded_element(&mut forwarded, hop);
    insert(headers, FORWARDED, forwarded);

    let proto = kept
        .as_ref()
        .and_then(|k| k.proto.clone())
        .unwrap_or_else(|| {
            if hop.tls {
                PROTO_HTTPS.clone()
            } else {
                PROTO_HTTP.clone()
            }
        });
    headers.insert(X_FORWARDED_PROTO, proto);
    if let Some(host) = kept.and_then(|k| k.host).or_else(|| hop.host.cloned()) {
        headers.insert(X_FORWARDED_HOST, host);
    }
}

/// The values a trusted peer sent, taken before the family is stripped.
struct Kept {
    xff: Option<String>,
    forwarded: Option<String>,
    proto: Option<HeaderValue>,
    host: Option<HeaderValue>,
}

impl Kept {
    fn take(headers: &HeaderMap) -> Kept {
        Kept {
            xff: joined(headers, &X_FORWARDED_FOR),
            forwarded: joined(headers, &FORWARDED),
            proto: headers.get(X_FORWARDED_PROTO).cloned(),
            host: headers.get(X_FORWARDED_HOST).cloned(),
        }
    }
}

fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut out = String::new();
    for v in headers.get_all(name) {
        let Ok(s) = v.to_str() else { continue };
        let s = s.trim();
        if s.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        out.push_str(s);
    }
    (!out.is_empty()).then_some(out)
}

/// Removes every member of the family. No allocation when there is none (most direct clients).
fn strip(headers: &mut HeaderMap) {
    if !headers.keys().any(|k| is_forwarding_header(k.as_str())) {
        return;
    }
    let doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|k| is_forwarding_header(k.as_str()))
        .cloned()
        .collect();
    for name in doomed {
        headers.remove(name);
    }
}

/// nginx's `real_ip_recursive on`: walking the chain from the right, the first address that is
/// not a trusted proxy is the client.
fn real_ip(chain: &str, trusted: &[IpNet]) -> Option<IpAddr> {
    let mut last = None;
    for entry in chain.rsplit(',') {
        let ip: IpAddr = entry.trim().parse().ok()?;
        let ip = canonical(ip);
        last = Some(ip);
        if !trusted.iter().any(|net| net.contains(&ip)) {
            return Some(ip);
        }
    }
    last
}

/// `for=…;proto=…;host=…` for this hop (RFC 7239 §4), quoting where the grammar needs it.
fn forwarded_element(out: &mut String, hop: &Hop<'_>) {
    let text = hop.peer.as_str();
    match hop.peer.ip {
        IpAddr::V4(_) => {
            out.push_str("for=");
            out.push_str(text);
        }
        IpAddr::V6(_) => {
            out.push_str("for=\"[");
            out.push_str(text);
            out.push_str("]\"");
        }
    }
    out.push_str(if hop.tls {
        ";proto=https"
    } else {
        ";proto=http"
    });
    if let Some(host) = hop.host.and_then(|h| h.to_str().ok()) {
        // A validated authority has only token characters but for ':' and '[' ']'.
        if host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
        {
            out.push_str(";host=");
            out.push_str(host);
        } else {
            out.push_str(";host=\"");
            out.push_str(host);
            out.push('"');
        }
    }
}

/// An IPv4 client on a dual-stack socket shows up as `::ffff:a.b.c.d`; the app expects `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(incoming: &[(&str, &str)], peer: &str, trusted: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in incoming {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let host = HeaderValue::from_static("app.test:8080");
        let trusted: Vec<IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        apply(
            &mut h,
            &Hop {
                peer: &PeerAddr::new(peer.parse().unwrap()),
                tls: false,
                host: Some(&host),
            },
            &trusted,
        );
        h
    }

    #[test]
    fn family_members_in_every_spelling() {
        for yes in [
            "x-forwarded-for",
            "x_forwarded_for",
            "x-forwarded-port",
            "x-forwarded-anything",
            "forwarded",
            "x-real-ip",
            "x_real_ip",
            "true-client-ip",
            "front-end-https",
            "x-original-url",
        ] {
            assert!(is_forwarding_header(yes), "{yes}");
        }
        for no in [
            "x-forwarded",
            "forwardedx",
            "x-request-id",
            "accept",
            "true-client",
        ] {
            assert!(!is_forwarding_header(no), "{no}");
        }
    }

    #[test]
    fn untrusted_peer_values_are_replaced() {
        let h = run(
            &[
                ("x-forwarded-for", "1.1.1.1"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "evil.test"),
                ("forwarded", "for=1.1.1.1"),
                ("x-real-ip", "1.1.1.1"),
                ("x_forwarded_for", "2.2.2.2"),
                ("true-client-ip", "3.3.3.3"),
                ("x-forwarded-port", "443"),
            ],
            "10.0.0.5",
            &[],
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.5");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "app.test:8080");
        assert_eq!(
            h["forwarded"],
            "for=10.0.0.5;proto=http;host=\"app.test:8080\""
        );
        assert_eq!(h["x-real-ip"], "10.0.0.5");
        assert!(!h.contains_key("x_forwarded_for") && !h.contains_key("true-client-ip"));
        assert!(!h.contains_key("x-forwarded-port"));
        assert_eq!(h.len(), 5, "{h:?}");
    }

    #[test]
    fn trusted_peer_chain_is_extended() {
        let h = run(
            &[
                ("x-forwarded-for", "203.0.113.9, 10.0.0.2"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "www.example"),
                ("forwarded", "for=203.0.113.9;proto=https"),
                ("x-real-ip", "6.6.6.6"),
            ],
            "10.0.0.5",
            &["10.0.0.0/8"],
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.0.0.2, 10.0.0.5");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "www.example");
        assert_eq!(
            h["forwarded"],
            "for=203.0.113.9;proto=https, for=10.0.0.5;proto=http;host=\"app.test:8080\""
        );
        assert_eq!(h["x-real-ip"], "203.0.113.9");
    }

    #[test]
    fn ipv6_and_mapped_peers() {
        let h = run(&[], "::ffff:10.0.0.1", &[]);
        assert_eq!(h["x-forwarded-for"], "10.0.0.1");
        let h = run(&[], "2001:db8::1", &[]);
        assert_eq!(h["x-forwarded-for"], "2001:db8::1");
        assert!(h["forwarded"]
            .to_str()
            .unwrap()
            .starts_with("for=\"[2001:db8::1]\";"));
    }
}
