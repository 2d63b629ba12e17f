//! Listen addresses: `IP:port`, or `host:port` resolved once, and the rule that two listeners
//! never share an address.
//!
//! Parsing only checks the form ([`ListenAddr`]); the one DNS lookup happens in
//! [`Listeners::resolve`], after every other rule has passed, so reading a file stays pure and a
//! name is looked up only for a config that is otherwise good.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

use serde::{Deserialize, Deserializer};

use super::error::ConfigError;

const EXAMPLE: &str = "e.g. 127.0.0.1:8080, 0.0.0.0:8080 or [::]:8080";

/// A listen address as written, its form checked but not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ListenAddr {
    Ip(SocketAddr),
    Name { host: String, port: u16 },
}

impl ListenAddr {
    /// `IP:port` or `host:port`, without looking anything up.
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if let Ok(addr) = t.parse::<SocketAddr>() {
            return Ok(ListenAddr::Ip(addr));
        }
        let Some((host, port)) = t.rsplit_once(':').filter(|_| !t.ends_with(']')) else {
            return Err(format!("{t:?} has no port; use IP:port, {EXAMPLE}"));
        };
        if host.is_empty() {
            return Err(format!(
                "{t:?} has no host; use IP:port, {EXAMPLE} (0.0.0.0 for every IPv4 address)"
            ));
        }
        let Ok(port) = port.parse::<u16>() else {
            return Err(format!(
                "{t:?}: the port must be a number from 0 to 65535; use IP:port, {EXAMPLE}"
            ));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(ListenAddr::Name {
            host: host.to_owned(),
            port,
        })
    }

    /// The address to bind. A name is looked up once (the first address the system resolver
    /// returns, as `TcpListener::bind` would take), so `check` prints the address that `serve`
    /// binds and a typo fails at load, naming the field.
    pub(super) fn resolve(&self) -> Result<SocketAddr, String> {
        let (host, port) = match self {
            ListenAddr::Ip(addr) => return Ok(*addr),
            ListenAddr::Name { host, port } => (host.as_str(), *port),
        };
        match (host, port).to_socket_addrs() {
            Ok(mut addrs) => addrs
                .next()
                .ok_or_else(|| format!("{host:?} resolves to no address; use IP:port, {EXAMPLE}")),
            Err(e) => Err(format!(
                "cannot resolve {host:?} ({e}); use IP:port, {EXAMPLE}"
            )),
        }
    }
}

/// Parses and resolves at once: for `serve --listen`, which has no file to name.
pub fn resolve_socket_addr(text: &str) -> Result<SocketAddr, String> {
    ListenAddr::parse(text)?.resolve()
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = ListenAddr;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address such as 127.0.0.1:8080")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ListenAddr, E> {
                ListenAddr::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ListenAddr, E> {
                Err(E::custom(format!(
                    "a port alone is not an address; use IP:port, e.g. 0.0.0.0:{v} (every IPv4 address) or 127.0.0.1:{v}"
                )))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// Every listener's address, resolved.
#[derive(Debug)]
pub(super) struct Listeners {
    pub(super) listen: SocketAddr,
    pub(super) admin_listen: Option<SocketAddr>,
    pub(super) redirect_http: Option<SocketAddr>,
}

impl Listeners {
    /// The one place listen addresses are resolved; each error names its field.
    pub(super) fn resolve(
        listen: &ListenAddr,
        admin_listen: Option<&ListenAddr>,
        redirect_http: Option<&ListenAddr>,
    ) -> Result<Listeners, ConfigError> {
        let one = |field: &str, addr: &ListenAddr| {
            addr.resolve().map_err(|e| ConfigError::field(field, e))
        };
        let listeners = Listeners {
            listen: one("listen", listen)?,
            admin_listen: admin_listen.map(|a| one("admin_listen", a)).transpose()?,
            redirect_http: redirect_http
                .map(|a| one("tls.redirect_http", a))
                .transpose()?,
        };
        listeners.check_apart()?;
        Ok(listeners)
    }

    /// Two listeners on one address would fail at bind time with a bare "address in use" (or,
    /// worse, with SO_REUSEPORT on `listen`, share it): refuse it at load, where both fields can
    /// be named and `check` sees it.
    fn check_apart(&self) -> Result<(), ConfigError> {
        let listeners = [
            ("listen", Some(self.listen)),
            ("admin_listen", self.admin_listen),
            ("tls.redirect_http", self.redirect_http),
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

#[cfg(test)]
mod tests;
