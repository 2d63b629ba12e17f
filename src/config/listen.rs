//! Listen addresses: `IP:port`, or `host:port` resolved once, and the rule that two listeners
//! never share an address.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Deserializer};

use super::error::ConfigError;
use super::Config;

/// Resolves `IP:port` or `host:port` to the address to bind. A name is looked up once, here (the
/// first address the system resolver returns, as `TcpListener::bind` would take), so `check`
/// prints the address that `serve` binds and a typo fails at load, naming the field.
pub fn resolve_socket_addr(text: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    let t = text.trim();
    if let Ok(addr) = t.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let example = "e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::]:8080";
    let Some((host, port)) = t.rsplit_once(':').filter(|_| !t.ends_with(']')) else {
        return Err(format!("{t:?} has no port; use IP:port, {example}"));
    };
    if host.is_empty() {
        return Err(format!(
            "{t:?} has no host; use IP:port, {example} (0.0.0.0 for every IPv4 address)"
        ));
    }
    let Ok(port) = port.parse::<u16>() else {
        return Err(format!(
            "{t:?}: the port must be a number from 0 to 65535; use IP:port, {example}"
        ));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match (host, port).to_socket_addrs() {
        Ok(mut addrs) => addrs
            .next()
            .ok_or_else(|| format!("{host:?} resolves to no address; use IP:port, {example}")),
        Err(e) => Err(format!(
            "cannot resolve {host:?} ({e}); use IP:port, {example}"
        )),
    }
}

/// Socket addresses for the listeners, through [`resolve_socket_addr`].
pub(super) mod socket_addr {
    use super::*;

    struct Visitor;
    impl serde::de::Visitor<'_> for Visitor {
        type Value = SocketAddr;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an address such as 127.0.0.1:8080")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<SocketAddr, E> {
            resolve_socket_addr(v).map_err(E::custom)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<SocketAddr, E> {
            Err(E::custom(format!(
                "a port alone is not an address; use IP:port, e.g. 0.0.0.0:{v} (every IPv4 address) or 127.0.0.1:{v}"
            )))
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
        d.deserialize_any(Visitor)
    }

    pub fn deserialize_opt<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        struct Opt(SocketAddr);
        impl<'de> Deserialize<'de> for Opt {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(Visitor).map(Opt)
            }
        }
        Ok(Option::<Opt>::deserialize(d)?.map(|Opt(addr)| addr))
    }
}

impl Config {
    /// worse, with SO_REUSEPORT on `listen`, share it): refuse it at load, where both fields can
    /// be named and `check` sees it.
    pub(super) fn check_listeners_apart(&self) -> Result<(), ConfigError> {
        let listeners = [
            ("listen", Some(self.listen)),
            ("admin_listen", self.admin_listen),
            (
                "tls.redirect_http",
                self.tls.as_ref().and_then(|t| t.redirect_http),
            ),
        ];
        for (i, (first, a)) in listeners.iter().enumerate() {
            for (second, b) in &listeners[i + 1..] {
                let (Some(a), Some(b)) = (a, b) else {
                    continue;
                };
                if a == b && a.port() != 0 {
                    return Err(ConfigError::field(
                        *second,
                        format!("{b} is the address of {first} too; each listener needs a port of its own"),
                    ));
                }
                if overlap(*a, *b) {
                    return Err(ConfigError::field(
                        *second,
                        format!("{b} overlaps {first} {a} (same port, and a wildcard address covers the other); each listener needs a port of its own"),
                    ));
                }
            }
        }
        Ok(())
    }
}
/// Whether two different bind addresses would take the same port: `0.0.0.0:8080` covers every
/// IPv4 address, `[::]:8080` (dual-stack) every address. Port 0 picks a free port each time.
fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    let wildcard_v6 = |s: SocketAddr| s.is_ipv6() && s.ip().is_unspecified();
    a.port() == b.port()
        && a.port() != 0
        && a != b
        && ((a.is_ipv4() == b.is_ipv4() && (a.ip().is_unspecified() || b.ip().is_unspecified()))
            || wildcard_v6(a)
            || wildcard_v6(b))
}
