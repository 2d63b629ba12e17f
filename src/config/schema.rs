//! The shape of `proxy.yaml`: one struct per section, strict (`deny_unknown_fields`, so a typo is
//! an error), with the defaults and serde adapters each field needs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::Uri;
use serde::{Deserialize, Serialize};

use super::defaults;
use super::duration::{duration_serde, opt_duration_serde};
use super::listen::ListenAddr;
use super::parse::{cidr_list, uri_serde};
use super::redact::{redact, redact_all, redact_opt, redact_url, redact_urls};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    #[serde(with = "uri_serde")]
    pub url: Uri,
    #[serde(with = "duration_serde", default = "defaults::connect_timeout")]
    pub connect_timeout: Duration,
    #[serde(with = "duration_serde", default = "defaults::upstream_timeout")]
    pub timeout: Duration,
    #[serde(default = "defaults::yes")]
    pub preserve_host: bool,
    /// Extra root certificate (PEM) trusted for an `https` upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Largest request body forwarded, in bytes; larger ones get 413. Absent: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body: Option<u64>,
    /// The `Upgrade` protocols the proxy tunnels (lower-cased on load). Any other upgrade, `h2c`
    /// above all, would turn the connection into a raw pipe to the app past the session layer, so
    /// it is stripped and the request forwarded as an ordinary one.
    #[serde(default = "defaults::upgrades")]
    pub upgrades: Vec<String>,
    /// Most header lines accepted in an upstream response head; more is a 502.
    #[serde(default = "defaults::max_response_headers")]
    pub max_response_headers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Cookie,
    Memory,
    Redis,
}

impl Driver {
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Cookie => "cookie",
            Driver::Memory => "memory",
            Driver::Redis => "redis",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SameSite {
    #[serde(alias = "strict", alias = "STRICT")]
    Strict,
    #[serde(alias = "lax", alias = "LAX")]
    Lax,
    #[serde(alias = "none", alias = "NONE")]
    None,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    #[serde(default = "defaults::driver")]
    pub driver: Driver,
    #[serde(default = "defaults::cookie_name")]
    pub cookie_name: String,
    #[serde(with = "duration_serde", default = "defaults::max_age")]
    pub max_age: Duration,
    #[serde(
        with = "opt_duration_serde",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub idle_timeout: Option<Duration>,
    #[serde(default = "defaults::yes")]
    pub secure: bool,
    #[serde(default = "defaults::yes")]
    pub http_only: bool,
    #[serde(default = "defaults::same_site")]
    pub same_site: SameSite,
    #[serde(default)]
    pub domain: String,
    #[serde(default = "defaults::path")]
    pub path: String,
    #[serde(default, serialize_with = "redact")]
    pub secret: String,
    #[serde(default, serialize_with = "redact_all")]
    pub previous_secrets: Vec<String>,
    /// How often `serve` sweeps expired sessions from the store. Absent: never (memory store: 60s).
    #[serde(
        with = "opt_duration_serde",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cleanup_interval: Option<Duration>,
    /// Largest session, in bytes of its data as the app receives it (`X-Session-Data`), for
    /// every store. Whatever is stored travels to the app on every request, so a response that
    /// would grow a session past this is refused (500) and the old session kept.
    #[serde(default = "defaults::max_bytes")]
    pub max_bytes: usize,
    /// The data key that names a session's owner (`user_id`): sessions are indexed by its value
    /// for `X-Session-Clear: others | everywhere`, the admin API and `session-proxy sessions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_key: Option<String>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    #[serde(default = "defaults::redis_url", serialize_with = "redact_url")]
    pub url: String,
    #[serde(default, serialize_with = "redact_urls")]
    pub cluster: Vec<String>,
    /// Redis behind Sentinel: the sentinels name the primary, so `url` is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<SentinelConfig>,
    #[serde(default = "defaults::key_prefix")]
    pub key_prefix: String,
    #[serde(with = "duration_serde", default = "defaults::redis_timeout")]
    pub timeout: Duration,
    /// Extra root certificate(s) (PEM) trusted for `rediss://`, on top of the system roots: a
    /// Redis with a private CA, as `upstream.ca` is for the upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Client certificate chain (PEM) for a Redis with `tls-auth-clients yes`; with `client_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of `client_cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// Seal every session's data in Redis under keys derived from its ID (see
    /// `session::store::redis::seal`), so a dump of Redis reveals no data and no key names.
    /// `false` writes the readable layout for operators who inspect sessions in Redis.
    #[serde(default = "defaults::redis_encrypt")]
    pub encrypt: bool,
    /// Whether the file still sets the deprecated `pool_size`. It never did anything (one
    /// multiplexed connection per node is the design, see `session::store::redis`); a file that
    /// sets it keeps loading, with a warning, whatever the value.
    #[serde(
        default,
        rename = "pool_size",
        skip_serializing,
        deserialize_with = "present"
    )]
    pub(crate) pool_size_set: bool,
}

/// `redis.sentinel`: where to ask which server is the primary, and how to log in to both.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SentinelConfig {
    /// The name the sentinels monitor the primary under (`sentinel monitor NAME ...`).
    #[serde(default)]
    pub master: String,
    /// Sentinel addresses, `host:port`; asked in order until one names a reachable primary.
    #[serde(default)]
    pub nodes: Vec<String>,
    /// For the primary (`requirepass`, or an ACL user's with `username`).
    #[serde(
        default,
        serialize_with = "redact_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// For the sentinels themselves, when they require one (`requirepass` in sentinel.conf).
    #[serde(
        default,
        serialize_with = "redact_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub sentinel_password: Option<String>,
    /// After each session write, `WAIT` this many replicas (up to 100 ms) before answering, so an
    /// acknowledged write survives a failover. Absent: no `WAIT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_replicas: Option<u32>,
}

impl SentinelConfig {
    /// How long `WAIT` waits for replicas after a session write (`WAIT N 100`).
    pub const WAIT_TIMEOUT: Duration = Duration::from_millis(100);
}

/// `true` for any value at all: the field is read only to be ignored.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: defaults::redis_url(),
            cluster: Vec::new(),
            sentinel: None,
            key_prefix: defaults::key_prefix(),
            pool_size_set: false,
            timeout: defaults::redis_timeout(),
            ca: None,
            client_cert: None,
            client_key: None,
            encrypt: defaults::redis_encrypt(),
        }
    }
}

/// HTTPS on `listen`, and optionally a plain listener that redirects to it.
#[derive(Debug, Clone, Serialize)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Resolved when loaded, as `listen` is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_http: Option<SocketAddr>,
    /// The host (and optional port) every redirect points at. Absent: the request's validated
    /// `Host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_host: Option<String>,
}

/// `tls` as written: `redirect_http` not yet resolved.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    pub(super) cert: PathBuf,
    pub(super) key: PathBuf,
    #[serde(default)]
    pub(super) redirect_http: Option<ListenAddr>,
    #[serde(default)]
    pub(super) redirect_host: Option<String>,
}

/// Connection-level limits. Defaults are what a public-facing proxy should run with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// A client must send a complete request head within this (slowloris defence). The clock also
    /// runs while a keep-alive connection waits for its next request, so it doubles as the idle
    /// keep-alive timeout.
    #[serde(with = "duration_serde", default = "defaults::header_read_timeout")]
    pub header_read_timeout: Duration,
    /// Connections beyond this wait in the kernel's accept queue until one closes.
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(with = "duration_serde", default = "defaults::shutdown_grace")]
    pub shutdown_grace: Duration,
    /// A TLS handshake that takes longer is cut off.
    #[serde(with = "duration_serde", default = "defaults::tls_handshake_timeout")]
    pub tls_handshake_timeout: Duration,
    /// Worker threads, each with its own listener socket (SO_REUSEPORT), runtime and upstream
    /// pool, like nginx's worker processes. 0: one per CPU core.
    #[serde(default)]
    pub workers: usize,
    /// A connection with no request in progress (HTTP/1.1) or no open stream (HTTP/2) for this
    /// long is closed, HTTP/2 with a GOAWAY first. hyper keeps an HTTP/2 connection whose client
    /// answers pings open for ever otherwise. (HTTP/1.1 also closes at `header_read_timeout`.)
    #[serde(with = "duration_serde", default = "defaults::idle_timeout")]
    pub idle_timeout: Duration,
    /// An upgraded connection (WebSocket) with no byte either way for this long is closed.
    #[serde(with = "duration_serde", default = "defaults::tunnel_idle_timeout")]
    pub tunnel_idle_timeout: Duration,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            header_read_timeout: defaults::header_read_timeout(),
            max_connections: defaults::max_connections(),
            shutdown_grace: defaults::shutdown_grace(),
            tls_handshake_timeout: defaults::tls_handshake_timeout(),
            workers: 0,
            idle_timeout: defaults::idle_timeout(),
            tunnel_idle_timeout: defaults::tunnel_idle_timeout(),
        }
    }
}

/// The signed session assertion (`X-Session-Assertion`, a JWS the app can verify with the JWKS).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssertionConfig {
    /// PEM PKCS#8 private key: Ed25519 (`session-proxy keygen --assertion`) or ECDSA P-256.
    pub key: PathBuf,
    /// PEM SPKI public keys still published in the JWKS, so tokens signed before a rotation
    /// verify until they expire.
    #[serde(default)]
    pub previous_keys: Vec<PathBuf>,
    #[serde(default = "defaults::assertion_issuer")]
    pub issuer: String,
    /// Absent: the upstream URL's origin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(with = "duration_serde", default = "defaults::assertion_ttl")]
    pub ttl: Duration,
    /// A session key whose value becomes `sub`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_key: Option<String>,
    /// Must be an `X-Session-*` name, so a client's copy is stripped like every other.
    #[serde(default = "defaults::assertion_header")]
    pub header: String,
}

impl AssertionConfig {
    /// The default audience: the upstream URL's origin (`scheme://host[:port]`).
    pub fn default_audience(upstream: &Uri) -> String {
        let scheme = upstream.scheme_str().unwrap_or("http");
        let host = upstream.host().unwrap_or("");
        match upstream.port_u16() {
            Some(port) => format!("{scheme}://{host}:{port}"),
            None => format!("{scheme}://{host}"),
        }
    }

    /// `audience`, or the upstream's origin.
    pub fn audience_for(&self, upstream: &Uri) -> String {
        self.audience
            .clone()
            .unwrap_or_else(|| Self::default_audience(upstream))
    }
}

/// The file as written: everything optional except what has no sensible default. Listen
/// addresses are still as written; [`super::listen::Listeners`] resolves them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    #[serde(default = "defaults::listen")]
    pub(super) listen: ListenAddr,
    #[serde(default)]
    pub(super) admin_listen: Option<ListenAddr>,
    pub(super) upstream: UpstreamConfig,
    pub(super) sessions: SessionConfig,
    #[serde(default)]
    pub(super) redis: RedisConfig,
    #[serde(default)]
    pub(super) tls: Option<TlsFile>,
    #[serde(default)]
    pub(super) limits: LimitsConfig,
    #[serde(default, deserialize_with = "cidr_list::deserialize")]
    pub(super) trusted_proxies: Vec<ipnet::IpNet>,
    #[serde(default)]
    pub(super) assertion: Option<AssertionConfig>,
    #[serde(default)]
    pub(super) admin_token: Option<AdminToken>,
}

/// `admin_token`: the bearer token of the admin listener's session API. Never printed (`Debug`
/// and the effective config say `<redacted>`) and compared in constant time.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct AdminToken(String);

impl AdminToken {
    /// Shortest token accepted: 128 bits as hex.
    pub const MIN_LEN: usize = 32;

    /// Whether `presented` is the token. Both sides are hashed first, so the comparison takes
    /// the same time whatever the length or the first differing byte.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use sha2::{Digest, Sha256};
        use subtle::ConstantTimeEq;
        let want = Sha256::digest(self.0.as_bytes());
        let got = Sha256::digest(presented);
        want.ct_eq(&got).into()
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// For a client of the admin API in this process (tests, the demo).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl Serialize for AdminToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        redact(&self.0, s)
    }
}
