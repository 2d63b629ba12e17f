//! The value of every setting the file leaves out. Defaults are what a public-facing proxy should
//! run with: secure cookies, bounded timeouts, no limit an attacker can stretch.

use std::net::SocketAddr;
use std::time::Duration;

use super::listen::ListenAddr;
use super::schema::{Driver, SameSite};

pub(super) fn listen() -> ListenAddr {
    ListenAddr::Ip(SocketAddr::from(([127, 0, 0, 1], 8080)))
}
pub fn connect_timeout() -> Duration {
    Duration::from_secs(5)
}
pub fn upstream_timeout() -> Duration {
    Duration::from_secs(60)
}
pub fn yes() -> bool {
    true
}
pub fn driver() -> Driver {
    Driver::Cookie
}
pub fn cookie_name() -> String {
    "session_id".into()
}
pub fn max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}
pub fn same_site() -> SameSite {
    SameSite::Lax
}
pub fn path() -> String {
    "/".into()
}
/// 16 KiB: far above any sane session, far below what breaks header limits upstream.
pub fn max_bytes() -> usize {
    16 * 1024
}
pub fn redis_url() -> String {
    "redis://127.0.0.1:6379/0".into()
}
pub fn key_prefix() -> String {
    "session:".into()
}
pub fn upgrades() -> Vec<String> {
    vec!["websocket".into()]
}
pub fn max_response_headers() -> usize {
    256
}
/// Sealed at rest unless the operator opts out: a Redis copy is the common leak.
pub fn redis_encrypt() -> bool {
    true
}
pub fn redis_timeout() -> Duration {
    Duration::from_millis(500)
}
pub fn header_read_timeout() -> Duration {
    Duration::from_secs(30)
}
pub fn max_connections() -> usize {
    25_000
}
pub fn shutdown_grace() -> Duration {
    Duration::from_secs(30)
}
pub fn tls_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}
pub fn assertion_issuer() -> String {
    "session-proxy".into()
}
pub fn assertion_ttl() -> Duration {
    Duration::from_secs(60)
}
pub fn assertion_header() -> String {
    "X-Session-Assertion".into()
}
/// nginx's `keepalive_timeout`.
pub fn idle_timeout() -> Duration {
    Duration::from_secs(75)
}
/// Long enough for an app that pings its WebSockets every minute or so.
pub fn tunnel_idle_timeout() -> Duration {
    Duration::from_secs(300)
}
