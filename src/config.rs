//! `proxy.yaml` + environment → one validated [`Config`].
//!
//! Loading happens in three steps so that every error can name the field it is about:
//! 1. the YAML file is read into a generic tree;
//! 2. environment overrides (from an injectable map, so tests never touch the real environment) are
//!    written into that tree at the field they override;
//! 3. the tree is deserialized into strict structs (`deny_unknown_fields`, so a typo is an error) and
//!    then checked for the cross-field rules serde cannot express.
//!
//! serde_path_to_error gives the dotted path of the offending field for type and syntax errors; the
//! semantic checks name their field by hand.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::Uri;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_norway::Value;

/// Minimum length of a session secret. AES-256-GCM keys are derived from it, and anything shorter is
/// guessable enough that refusing to start is kinder than running.
pub const MIN_SECRET_LEN: usize = 32;

/// Why a configuration was refused. Every variant names the field so the operator can fix it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not YAML, or a field has the wrong type, or an unknown key is present.
    #[error("invalid config: {}: {message}", located(.origin.as_deref(), .field))]
    Field {
        field: String,
        message: String,
        /// The environment variable (or command-line flag) the value came from, when not the
        /// file: the operator looking for `sessions.max_age` in proxy.yaml would not find it.
        origin: Option<&'static str>,
    },
}

impl ConfigError {
    fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Field {
            field: field.into(),
            message: message.into(),
            origin: None,
        }
    }

    /// Names the variable or flag that set the offending field, if one did (the last one
    /// applied, as that is the value that was refused).
    fn attributed(self, origins: &[(&'static str, &'static str)]) -> Self {
        match self {
            ConfigError::Field {
                field,
                message,
                origin: None,
            } => {
                let origin = origins
                    .iter()
                    .rev()
                    .find(|(set, _)| covers(set, &field))
                    .map(|(_, origin)| *origin);
                ConfigError::Field {
                    field,
                    message,
                    origin,
                }
            }
            other => other,
        }
    }
}

/// `SESSION_MAX_AGE (sessions.max_age)`, or the field alone when the file set it.
fn located(origin: Option<&str>, field: &str) -> String {
    match origin {
        Some(origin) => format!("{origin} ({field})"),
        None => field.to_owned(),
    }
}

/// Whether setting `set` wrote the value at `field` (itself, or an element or key below it:
/// `trusted_proxies` covers `trusted_proxies[2]`).
fn covers(set: &str, field: &str) -> bool {
    field
        .strip_prefix(set)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Resolved when loaded (`localhost:8080` becomes an IP), so `check` shows what will be bound.
    pub listen: SocketAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    pub upstream: UpstreamConfig,
    pub sessions: SessionConfig,
    pub redis: RedisConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    pub limits: LimitsConfig,
    /// Peers whose `X-Forwarded-*` / `Forwarded` headers are believed (load balancers in front of
    /// the proxy). Everyone else's are replaced.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The signed session assertion; off when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assertion: Option<AssertionConfig>,
}

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
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("driver", &self.driver)
            .field("cookie_name", &self.cookie_name)
            .field("max_age", &self.max_age)
            .field("idle_timeout", &self.idle_timeout)
            .field("secret", &"<redacted>")
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    #[serde(default = "defaults::redis_url", serialize_with = "redact_url")]
    pub url: String,
    #[serde(default, serialize_with = "redact_urls")]
    pub cluster: Vec<String>,
    #[serde(default = "defaults::key_prefix")]
    pub key_prefix: String,
    #[serde(default = "defaults::pool_size")]
    pub pool_size: usize,
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
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact_url_str(&self.url))
            .field("cluster_nodes", &self.cluster.len())
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: defaults::redis_url(),
            cluster: Vec::new(),
            key_prefix: defaults::key_prefix(),
            pool_size: defaults::pool_size(),
            timeout: defaults::redis_timeout(),
            ca: None,
            client_cert: None,
            client_key: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "socket_addr::deserialize_opt"
    )]
    pub redirect_http: Option<SocketAddr>,
    /// The host (and optional port) every redirect points at. Absent: the request's validated
    /// `Host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_host: Option<String>,
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
    fn validate(&self) -> Result<(), ConfigError> {
        if self.ttl < Duration::from_secs(2) {
            return Err(ConfigError::field(
                "assertion.ttl",
                "must be at least 2s (whole seconds: iat and exp are in seconds)",
            ));
        }
        if self.issuer.is_empty() {
            return Err(ConfigError::field("assertion.issuer", "must not be empty"));
        }
        if self.audience.as_deref() == Some("") {
            return Err(ConfigError::field(
                "assertion.audience",
                "must not be empty",
            ));
        }
        let lower = self.header.to_ascii_lowercase().replace('_', "-");
        let fixed = [
            "x-session-id",
            "x-session-data",
            "x-session-set",
            "x-session-delete",
            "x-session-clear",
            "x-session-regenerate",
        ];
        if !lower.starts_with("x-session-")
            || lower.len() == "x-session-".len()
            || fixed.contains(&lower.as_str())
            || http::HeaderName::from_bytes(self.header.as_bytes()).is_err()
        {
            return Err(ConfigError::field(
                "assertion.header",
                "must be a header name starting with X-Session- (so a client's copy is always stripped) other than X-Session-Id, -Data, -Set, -Delete, -Clear, -Regenerate",
            ));
        }
        Ok(())
    }

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

/// The file as written: everything optional except what has no sensible default.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(
        default = "defaults::listen",
        deserialize_with = "socket_addr::deserialize"
    )]
    listen: SocketAddr,
    #[serde(default, deserialize_with = "socket_addr::deserialize_opt")]
    admin_listen: Option<SocketAddr>,
    upstream: UpstreamConfig,
    sessions: SessionConfig,
    #[serde(default)]
    redis: RedisConfig,
    #[serde(default)]
    tls: Option<TlsConfig>,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default, deserialize_with = "cidr_list::deserialize")]
    trusted_proxies: Vec<ipnet::IpNet>,
    #[serde(default)]
    assertion: Option<AssertionConfig>,
}

/// How an environment variable's text becomes a YAML value.
#[derive(Clone, Copy)]
enum EnvKind {
    Text,
    /// Parsed as YAML so `true`/`false` become booleans and numbers numbers.
    Scalar,
    /// Comma-separated list.
    List,
}

/// Every environment variable that overrides the file, and the field it sets. The README's table is
/// generated from the same names; keep them in step.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("SESSION_PROXY_LISTEN", "listen"),
    ("SESSION_PROXY_ADMIN_LISTEN", "admin_listen"),
    ("SESSION_PROXY_UPSTREAM", "upstream.url"),
    ("SESSION_DRIVER", "sessions.driver"),
    ("SESSION_COOKIE_NAME", "sessions.cookie_name"),
    ("SESSION_MAX_AGE", "sessions.max_age"),
    ("SESSION_IDLE_TIMEOUT", "sessions.idle_timeout"),
    ("SESSION_SECURE", "sessions.secure"),
    ("SESSION_HTTP_ONLY", "sessions.http_only"),
    ("SESSION_SAME_SITE", "sessions.same_site"),
    ("SESSION_DOMAIN", "sessions.domain"),
    ("SESSION_PATH", "sessions.path"),
    ("SESSION_SECRET", "sessions.secret"),
    ("SESSION_PREVIOUS_SECRETS", "sessions.previous_secrets"),
    ("SESSION_MAX_BYTES", "sessions.max_bytes"),
    ("REDIS_URL", "redis.url"),
    ("REDIS_CLUSTER", "redis.cluster"),
    ("SESSION_PROXY_UPSTREAM_UPGRADES", "upstream.upgrades"),
    ("SESSION_PROXY_TRUSTED_PROXIES", "trusted_proxies"),
    ("SESSION_ASSERTION_KEY", "assertion.key"),
    ("SESSION_ASSERTION_PREVIOUS_KEYS", "assertion.previous_keys"),
    ("SESSION_ASSERTION_ISSUER", "assertion.issuer"),
    ("SESSION_ASSERTION_AUDIENCE", "assertion.audience"),
    ("SESSION_ASSERTION_TTL", "assertion.ttl"),
    ("SESSION_ASSERTION_SUBJECT_KEY", "assertion.subject_key"),
    ("SESSION_ASSERTION_HEADER", "assertion.header"),
    ("SESSION_PROXY_IDLE_TIMEOUT", "limits.idle_timeout"),
    (
        "SESSION_PROXY_TUNNEL_IDLE_TIMEOUT",
        "limits.tunnel_idle_timeout",
    ),
];

fn env_kind(field: &str) -> EnvKind {
    match field {
        "sessions.secure" | "sessions.http_only" | "sessions.max_bytes" => EnvKind::Scalar,
        "sessions.previous_secrets"
        | "redis.cluster"
        | "upstream.upgrades"
        | "trusted_proxies"
        | "assertion.previous_keys" => EnvKind::List,
        _ => EnvKind::Text,
    }
}

/// Command-line overrides, applied after the environment (the most specific source wins).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub upstream: Option<String>,
}

impl Config {
    /// Loads `path` with overrides from the process environment.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = std::env::vars().collect();
        Self::load_with_env(path, &env, overrides)
    }

    pub fn load_with_env(
        path: &Path,
        env: &HashMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text, env, overrides)
    }

    /// Parses YAML text, applies `env` and `overrides`, validates.
    pub fn from_yaml(
        text: &str,
        env: &HashMap<String, String>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let mut tree: Value = if text.trim().is_empty() {
            Value::Mapping(Default::default())
        } else {
            serde_norway::from_str(text).map_err(|e| ConfigError::field("(file)", e.to_string()))?
        };
        if !tree.is_mapping() {
            return Err(ConfigError::field("(file)", "expected a mapping of keys"));
        }
        // Which variable or flag set which field, for the error messages.
        let mut origins: Vec<(&'static str, &'static str)> = Vec::new();
        for (var, field) in ENV_OVERRIDES {
            if let Some(raw) = env.get(*var) {
                origins.push((field, var));
                let value = match env_kind(field) {
                    EnvKind::Text => Value::String(raw.clone()),
                    EnvKind::Scalar => {
                        serde_norway::from_str(raw).unwrap_or_else(|_| Value::String(raw.clone()))
                    }
                    EnvKind::List => Value::Sequence(
                        raw.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(|s| Value::String(s.to_owned()))
                            .collect(),
                    ),
                };
                set_path(&mut tree, field, value);
            }
        }
        if let Some(listen) = overrides.listen {
            origins.push(("listen", "--listen"));
            set_path(&mut tree, "listen", Value::String(listen.to_string()));
        }
        if let Some(url) = &overrides.upstream {
            origins.push(("upstream.url", "--upstream"));
            set_path(&mut tree, "upstream.url", Value::String(url.clone()));
        }
        Self::from_tree(tree).map_err(|e| e.attributed(&origins))
    }

    /// The merged tree → the validated config.
    fn from_tree(tree: Value) -> Result<Config, ConfigError> {
        let file: FileConfig = serde_path_to_error::deserialize(tree).map_err(|e| {
            let field = e.path().to_string();
            let field = if field == "." { "(file)".into() } else { field };
            ConfigError::field(field, strip_location(&e.into_inner().to_string()))
        })?;
        let config = Config {
            listen: file.listen,
            admin_listen: file.admin_listen,
            upstream: file.upstream,
            sessions: file.sessions,
            redis: file.redis,
            tls: file.tls,
            limits: file.limits,
            trusted_proxies: file.trusted_proxies,
            assertion: file.assertion,
        };
        let mut config = config;
        for proto in &mut config.upstream.upgrades {
            *proto = proto.trim().to_ascii_lowercase();
        }
        config.validate()?;
        Ok(config)
    }

    /// The rules that span fields or need more than a type.
    fn validate(&self) -> Result<(), ConfigError> {
        self.check_listeners_apart()?;
        let up = &self.upstream;
        match up.url.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(ConfigError::field(
                    "upstream.url",
                    "must be an absolute http:// or https:// URL",
                ))
            }
        }
        if up.url.host().is_none() {
            return Err(ConfigError::field("upstream.url", "has no host"));
        }
        if up.url.query().is_some() {
            return Err(ConfigError::field(
                "upstream.url",
                "must not carry a query string",
            ));
        }
        if up.connect_timeout.is_zero() {
            return Err(ConfigError::field(
                "upstream.connect_timeout",
                "must be > 0",
            ));
        }
        if up.timeout.is_zero() {
            return Err(ConfigError::field("upstream.timeout", "must be > 0"));
        }
        for (i, proto) in up.upgrades.iter().enumerate() {
            let field = || format!("upstream.upgrades[{i}]");
            if proto.is_empty() || !proto.bytes().all(is_token_byte) {
                return Err(ConfigError::field(
                    field(),
                    "must be a protocol token (e.g. websocket)",
                ));
            }
            if proto == "h2c" {
                return Err(ConfigError::field(
                    field(),
                    "h2c cannot be tunnelled: every later request on the connection would reach the app raw, past the session layer; clients get HTTP/2 from the proxy itself",
                ));
            }
        }
        if !(1..=10_000).contains(&up.max_response_headers) {
            return Err(ConfigError::field(
                "upstream.max_response_headers",
                "must be between 1 and 10000",
            ));
        }

        let s = &self.sessions;
        let keygen_hint = "generate one with `session-proxy keygen`";
        if s.secret.is_empty() {
            return Err(ConfigError::field(
                "sessions.secret",
                format!("is required (env SESSION_SECRET); {keygen_hint}"),
            ));
        }
        if s.secret.len() < MIN_SECRET_LEN {
            return Err(ConfigError::field(
                "sessions.secret",
                format!(
                    "must be at least {MIN_SECRET_LEN} bytes (got {}); {keygen_hint}",
                    s.secret.len()
                ),
            ));
        }
        for (i, old) in s.previous_secrets.iter().enumerate() {
            if old.len() < MIN_SECRET_LEN {
                return Err(ConfigError::field(
                    format!("sessions.previous_secrets[{i}]"),
                    format!("must be at least {MIN_SECRET_LEN} bytes"),
                ));
            }
        }
        if !is_cookie_name(&s.cookie_name) {
            return Err(ConfigError::field(
                "sessions.cookie_name",
                "must be a non-empty cookie token (letters, digits, !#$%&'*+-.^_`|~)",
            ));
        }
        if s.max_age < Duration::from_secs(1) {
            return Err(ConfigError::field(
                "sessions.max_age",
                "must be at least 1s",
            ));
        }
        if let Some(idle) = s.idle_timeout {
            if idle < Duration::from_secs(1) {
                return Err(ConfigError::field(
                    "sessions.idle_timeout",
                    "must be at least 1s",
                ));
            }
        }
        if s.max_bytes == 0 {
            return Err(ConfigError::field("sessions.max_bytes", "must be > 0"));
        }
        if s.same_site == SameSite::None && !s.secure {
            return Err(ConfigError::field(
                "sessions.same_site",
                "None requires sessions.secure: true (browsers reject it otherwise)",
            ));
        }
        if !s.path.starts_with('/')
            || !s
                .path
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b',')
        {
            return Err(ConfigError::field(
                "sessions.path",
                "must start with / and be printable ASCII without spaces, ';' or ','",
            ));
        }
        if !s.domain.is_empty()
            && !s
                .domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return Err(ConfigError::field(
                "sessions.domain",
                "must be a host name (letters, digits, '.', '-')",
            ));
        }
        if s.cookie_name.starts_with("__Host-") {
            if !s.domain.is_empty() {
                return Err(ConfigError::field(
                    "sessions.domain",
                    "must be empty for a __Host- cookie name",
                ));
            }
            if s.path != "/" {
                return Err(ConfigError::field(
                    "sessions.path",
                    "must be / for a __Host- cookie name",
                ));
            }
            if !s.secure {
                return Err(ConfigError::field(
                    "sessions.secure",
                    "must be true for a __Host- cookie name",
                ));
            }
        }
        if s.cookie_name.starts_with("__Secure-") && !s.secure {
            return Err(ConfigError::field(
                "sessions.secure",
                "must be true for a __Secure- cookie name",
            ));
        }

        if s.cleanup_interval.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError::field(
                "sessions.cleanup_interval",
                "must be > 0 (leave it out, or write off, for no sweep)",
            ));
        }
        if s.driver == Driver::Redis {
            let r = &self.redis;
            if r.cluster.is_empty() {
                check_redis_url("redis.url", &r.url)?;
            }
            for (i, node) in r.cluster.iter().enumerate() {
                check_redis_url(&format!("redis.cluster[{i}]"), node)?;
            }
            if r.pool_size == 0 {
                return Err(ConfigError::field("redis.pool_size", "must be >= 1"));
            }
            if r.timeout.is_zero() {
                return Err(ConfigError::field("redis.timeout", "must be > 0"));
            }
            // The files are part of the config: `check` and start-up refuse a bad one by name
            // instead of every request failing later with 503.
            crate::session::store::redis::tls::check(r)
                .map_err(|e| ConfigError::field(e.field, e.message))?;
        }
        let l = &self.limits;
        if l.max_connections == 0 {
            return Err(ConfigError::field("limits.max_connections", "must be >= 1"));
        }
        for (field, d) in [
            ("limits.header_read_timeout", l.header_read_timeout),
            ("limits.tls_handshake_timeout", l.tls_handshake_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::field(field, "must be > 0"));
            }
        }
        if let Some(host) = self.tls.as_ref().and_then(|t| t.redirect_host.as_deref()) {
            if !crate::proxy::target::is_valid(host.as_bytes()) {
                return Err(ConfigError::field(
                    "tls.redirect_host",
                    "must be a host name or IP literal with an optional :port",
                ));
            }
        }
        if let Some(assertion) = &self.assertion {
            assertion.validate()?;
        }
        if self.limits.idle_timeout.is_zero() {
            return Err(ConfigError::field("limits.idle_timeout", "must be > 0"));
        }
        if self.limits.tunnel_idle_timeout.is_zero() {
            return Err(ConfigError::field(
                "limits.tunnel_idle_timeout",
                "must be > 0",
            ));
        }
        Ok(())
    }

    /// Two listeners on one address would fail at bind time with a bare "address in use" (or,
    /// worse, with SO_REUSEPORT on `listen`, share it): refuse it at load, where both fields can
    /// be named and `check` sees it.
    fn check_listeners_apart(&self) -> Result<(), ConfigError> {
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

    /// The effective configuration as YAML, every secret and password replaced by `<redacted>`.
    pub fn to_redacted_yaml(&self) -> String {
        serde_norway::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
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

/// The same parse the Redis client does at start-up, so `check` refuses what `serve` would.
fn check_redis_url(field: &str, url: &str) -> Result<(), ConfigError> {
    use ::redis::IntoConnectionInfo;
    let scheme_ok = matches!(
        url.split_once("://"),
        Some(("redis" | "rediss" | "redis+unix" | "unix", rest)) if !rest.is_empty()
    );
    if !scheme_ok {
        return Err(ConfigError::field(
            field,
            "must be a redis:// or rediss:// URL",
        ));
    }
    // The client's message never echoes the URL (it may carry a password).
    url.into_connection_info()
        .map(|_| ())
        .map_err(|e| ConfigError::field(field, format!("not a usable Redis URL: {e}")))
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 6265 cookie-name token.
fn is_cookie_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// serde_norway appends "at line X column Y" of the re-serialized tree, which is meaningless to the
/// user after the env merge; the field path already says where.
fn strip_location(msg: &str) -> String {
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

fn set_path(tree: &mut Value, dotted: &str, value: Value) {
    let mut node = tree;
    let mut parts = dotted.split('.').peekable();
    while let Some(part) = parts.next() {
        if !node.is_mapping() {
            *node = Value::Mapping(Default::default());
        }
        let Some(map) = node.as_mapping_mut() else {
            return;
        };
        let key = Value::String(part.to_owned());
        if parts.peek().is_none() {
            map.insert(key, value);
            return;
        }
        node = map
            .entry(key)
            .or_insert_with(|| Value::Mapping(Default::default()));
    }
}

fn redact<S: Serializer>(secret: &str, s: S) -> Result<S::Ok, S::Error> {
    if secret.is_empty() {
        s.serialize_str("")
    } else {
        s.serialize_str("<redacted>")
    }
}

fn redact_all<S: Serializer>(secrets: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(secrets.iter().map(|_| "<redacted>"))
}

/// Hides the password (and ACL user's password) of a Redis URL.
pub fn redact_url_str(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.rsplit_once('@') {
            let user = creds.split_once(':').map(|(u, _)| u).unwrap_or("");
            return format!("{scheme}://{user}:<redacted>@{host}");
        }
    }
    url.to_owned()
}

fn redact_url<S: Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url_str(url))
}

fn redact_urls<S: Serializer>(urls: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(urls.iter().map(|u| redact_url_str(u)))
}

/// Go-style durations: `90s`, `5m`, `1h30m`, `500ms`, `24h`. A bare number is refused: `30` could be
/// seconds or minutes, and guessing wrong silently is worse than asking.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(match t.parse::<u64>() {
            Ok(n) => needs_unit(n),
            Err(_) => format!("invalid duration {text:?}: a duration needs a unit"),
        });
    }
    // humantime accepts Go's concatenated form (`1h30m`) as well as spaced (`1h 30m`).
    humantime::parse_duration(t).map_err(|e| {
        format!("invalid duration {text:?} ({e}); write it like 90s, 5m, 1h30m or 500ms")
    })
}

/// What a bare number of seconds should have been written as: `3600` → `"3600s" or "1h"`.
fn needs_unit(n: u64) -> String {
    let secs = format!("{n}s");
    let human = format_duration(Duration::from_secs(n));
    let other = if human == secs {
        format!("{n}m")
    } else {
        human
    };
    format!("a duration needs a unit, e.g. \"{secs}\" or \"{other}\"")
}

pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

/// A duration as written in YAML: text, or an unquoted number, which gets its own message (the
/// type error serde would give, "expected a string", does not say what is wrong with `3600`).
enum DurationInput {
    Text(String),
    Whole(u64),
    Negative,
    Fraction(f64),
}

impl DurationInput {
    fn into_duration(self) -> Result<Duration, String> {
        match self {
            DurationInput::Text(text) => parse_duration(&text),
            DurationInput::Whole(0) => Ok(Duration::ZERO),
            DurationInput::Whole(n) => Err(needs_unit(n)),
            DurationInput::Negative => Err("a duration cannot be negative".into()),
            DurationInput::Fraction(f) => Err(format!(
                "a duration needs a unit and whole numbers, e.g. \"{}ms\"",
                (f * 1000.0).round()
            )),
        }
    }
}

impl<'de> Deserialize<'de> for DurationInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DurationInput;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 90s, 5m, 1h30m or 500ms")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationInput, E> {
                Ok(DurationInput::Text(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DurationInput, E> {
                Ok(DurationInput::Whole(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DurationInput, E> {
                Ok(u64::try_from(v).map_or(DurationInput::Negative, DurationInput::Whole))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DurationInput, E> {
                Ok(if v < 0.0 {
                    DurationInput::Negative
                } else {
                    DurationInput::Fraction(v)
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

mod duration_serde {
    use super::*;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        DurationInput::deserialize(d)?
            .into_duration()
            .map_err(serde::de::Error::custom)
    }
}

mod opt_duration_serde {
    use super::*;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<DurationInput>::deserialize(d)? {
            None => Ok(None),
            Some(DurationInput::Text(t)) if matches!(t.trim(), "" | "off") => Ok(None),
            Some(input) => input
                .into_duration()
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

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
mod socket_addr {
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

/// CIDRs, where a bare address means just that address (`10.0.0.7` = `10.0.0.7/32`), as in
/// nginx's `set_real_ip_from`.
mod cidr_list {
    use super::*;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                let t = text.trim();
                t.parse::<ipnet::IpNet>()
                    .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        serde::de::Error::custom(format!(
                            "invalid address or CIDR {text:?} (write e.g. 10.0.0.0/8 or 192.0.2.7)"
                        ))
                    })
            })
            .collect()
    }
}

mod uri_serde {
    use super::*;
    pub fn serialize<S: Serializer>(u: &Uri, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&u.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uri, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Uri>()
            .map_err(|e| serde::de::Error::custom(format!("invalid URL {text:?}: {e}")))
    }
}

mod defaults {
    use super::*;
    pub fn listen() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 8080))
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
    pub fn pool_size() -> usize {
        8
    }
    pub fn upgrades() -> Vec<String> {
        vec!["websocket".into()]
    }
    pub fn max_response_headers() -> usize {
        256
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn base() -> String {
        format!(
            "listen: 127.0.0.1:8080\nupstream:\n  url: http://127.0.0.1:3000\nsessions:\n  secret: \"{SECRET}\"\n"
        )
    }

    fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_yaml(yaml, &env, &Overrides::default())
    }

    fn err_field(yaml: &str, env: &[(&str, &str)]) -> String {
        match load(yaml, env) {
            Err(ConfigError::Field { field, .. }) => field,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    /// The README is where operators look the variables up: every override must be listed there.
    #[test]
    fn every_env_override_is_in_the_readme() {
        let readme = include_str!("../docs/configuration.md");
        for (var, field) in ENV_OVERRIDES {
            assert!(readme.contains(var), "{var} ({field}) is not in docs/configuration.md");
        }
    }

    #[test]
    fn minimal_config_gets_secure_defaults() {
        let c = load(&base(), &[]).unwrap();
        assert_eq!(c.sessions.driver, Driver::Cookie);
        assert!(c.sessions.secure && c.sessions.http_only);
        assert_eq!(c.sessions.same_site, SameSite::Lax);
        assert_eq!(c.upstream.timeout, Duration::from_secs(60));
        assert!(c.upstream.preserve_host);
    }

    #[test]
    fn go_style_durations() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("5 parsecs").is_err());
    }

    #[test]
    fn unknown_key_names_its_path() {
        let yaml = base().replace("  url:", "  tmeout: 5s\n  url:");
        assert_eq!(err_field(&yaml, &[]), "upstream.tmeout");
        match load(&yaml, &[]) {
            Err(e) => assert!(e.to_string().contains("tmeout"), "{e}"),
            Ok(_) => panic!(),
        }
    }

    /// YAML 1.1 read `yes`/`no`/`on`/`off` as booleans; YAML 1.2 (and we) do not: a typo for a
    /// security switch must be an error, never a silent string.
    #[test]
    fn yaml11_booleans_are_refused() {
        for word in ["yes", "no", "on", "off", "Y"] {
            let yaml = format!("{}  secure: {word}\n", base());
            assert_eq!(err_field(&yaml, &[]), "sessions.secure", "{word}");
        }
    }

    #[test]
    fn bad_duration_names_the_field() {
        let yaml = base().replace("  url:", "  timeout: soon\n  url:");
        assert_eq!(err_field(&yaml, &[]), "upstream.timeout");
    }

    #[test]
    fn secret_rules() {
        let yaml = base().replace(SECRET, "short");
        assert_eq!(err_field(&yaml, &[]), "sessions.secret");
        let e = load(&yaml, &[]).unwrap_err().to_string();
        assert!(e.contains("keygen"), "{e}");
        assert!(!e.contains("short"), "secret leaked into error: {e}");
    }

    #[test]
    fn same_site_none_needs_secure() {
        let yaml = format!("{}  same_site: None\n  secure: false\n", base());
        assert_eq!(err_field(&yaml, &[]), "sessions.same_site");
    }

    #[test]
    fn host_prefix_rules() {
        let yaml = format!("{}  cookie_name: __Host-s\n  path: /app\n", base());
        assert_eq!(err_field(&yaml, &[]), "sessions.path");
        let yaml = format!("{}  cookie_name: __Host-s\n  domain: example.com\n", base());
        assert_eq!(err_field(&yaml, &[]), "sessions.domain");
    }

    #[test]
    fn env_overrides_every_session_variable() {
        let c = load(
            &base(),
            &[
                ("SESSION_DRIVER", "memory"),
                ("SESSION_COOKIE_NAME", "sid"),
                ("SESSION_MAX_AGE", "2h"),
                ("SESSION_SECURE", "false"),
                ("SESSION_HTTP_ONLY", "false"),
                ("SESSION_SAME_SITE", "Strict"),
                ("SESSION_DOMAIN", "example.com"),
                ("SESSION_PATH", "/app"),
                ("SESSION_SECRET", "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210"),
                ("REDIS_URL", "redis://10.0.0.1:6380/1"),
                ("SESSION_PROXY_LISTEN", "0.0.0.0:9000"),
            ],
        )
        .unwrap();
        assert_eq!(c.sessions.driver, Driver::Memory);
        assert_eq!(c.sessions.cookie_name, "sid");
        assert_eq!(c.sessions.max_age, Duration::from_secs(7200));
        assert!(!c.sessions.secure && !c.sessions.http_only);
        assert_eq!(c.sessions.same_site, SameSite::Strict);
        assert_eq!(c.sessions.domain, "example.com");
        assert_eq!(c.sessions.path, "/app");
        assert_eq!(c.sessions.secret, "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210");
        assert_eq!(c.redis.url, "redis://10.0.0.1:6380/1");
        assert_eq!(c.listen.port(), 9000);
    }

    #[test]
    fn max_bytes_defaults_overrides_and_must_be_positive() {
        assert_eq!(load(&base(), &[]).unwrap().sessions.max_bytes, 16 * 1024);
        let c = load(&base(), &[("SESSION_MAX_BYTES", "4096")]).unwrap();
        assert_eq!(c.sessions.max_bytes, 4096);
        assert_eq!(
            err_field(&format!("{}  max_bytes: 0\n", base()), &[]),
            "sessions.max_bytes"
        );
        assert_eq!(
            err_field(&base(), &[("SESSION_MAX_BYTES", "lots")]),
            "sessions.max_bytes"
        );
    }

    #[test]
    fn redacted_output_hides_secrets() {
        let yaml = format!(
            "{}  previous_secrets: [\"{}\"]\nredis:\n  url: redis://u:hunter2hunter2@h:1/0\n",
            base(),
            "p".repeat(40)
        );
        let c = load(&yaml, &[]).unwrap();
        let out = c.to_redacted_yaml();
        assert!(!out.contains(SECRET) && !out.contains("pppp") && !out.contains("hunter2"));
        assert!(out.contains("<redacted>"));
    }

    #[test]
    fn assertion_is_off_by_default_and_every_field_has_an_env_override() {
        assert!(load(&base(), &[]).unwrap().assertion.is_none());
        let c = load(
            &base(),
            &[
                ("SESSION_ASSERTION_KEY", "/k.pem"),
                ("SESSION_ASSERTION_PREVIOUS_KEYS", "/a.pub, /b.pub"),
                ("SESSION_ASSERTION_ISSUER", "me"),
                ("SESSION_ASSERTION_AUDIENCE", "https://app.example"),
                ("SESSION_ASSERTION_TTL", "2m"),
                ("SESSION_ASSERTION_SUBJECT_KEY", "user_id"),
                ("SESSION_ASSERTION_HEADER", "X-Session-Jwt"),
            ],
        )
        .unwrap();
        let a = c.assertion.unwrap();
        assert_eq!(a.key, PathBuf::from("/k.pem"));
        assert_eq!(
            a.previous_keys,
            vec![PathBuf::from("/a.pub"), PathBuf::from("/b.pub")]
        );
        assert_eq!(a.issuer, "me");
        assert_eq!(a.audience.as_deref(), Some("https://app.example"));
        assert_eq!(a.ttl, Duration::from_secs(120));
        assert_eq!(a.subject_key.as_deref(), Some("user_id"));
        assert_eq!(a.header, "X-Session-Jwt");
    }

    #[test]
    fn assertion_defaults_and_rules() {
        let yaml = format!("{}assertion:\n  key: /k.pem\n", base());
        let a = load(&yaml, &[]).unwrap().assertion.unwrap();
        assert_eq!(a.issuer, "session-proxy");
        assert_eq!(a.ttl, Duration::from_secs(60));
        assert_eq!(a.header, "X-Session-Assertion");
        assert_eq!(
            a.audience_for(&"http://127.0.0.1:3000/app".parse().unwrap()),
            "http://127.0.0.1:3000"
        );
        assert_eq!(
            a.audience_for(&"https://app.internal".parse().unwrap()),
            "https://app.internal"
        );
        for header in [
            "X-Assertion",
            "X-Session-Data",
            "x_session_set",
            "X-Session-",
            "X-Session-a b",
        ] {
            assert_eq!(
                err_field(&yaml, &[("SESSION_ASSERTION_HEADER", header)]),
                "assertion.header",
                "{header}"
            );
        }
        assert_eq!(
            err_field(&yaml, &[("SESSION_ASSERTION_TTL", "1s")]),
            "assertion.ttl"
        );
        assert_eq!(
            err_field(&format!("{}assertion:\n  issuer: x\n", base()), &[]),
            "assertion"
        );
    }

    #[test]
    fn bad_env_value_names_the_field() {
        assert_eq!(
            err_field(&base(), &[("SESSION_SAME_SITE", "Sometimes")]),
            "sessions.same_site"
        );
        assert_eq!(
            load(&base(), &[("SESSION_SAME_SITE", "strict")])
                .unwrap()
                .sessions
                .same_site,
            SameSite::Strict
        );
        assert_eq!(
            err_field(&base(), &[("SESSION_SAME_SITE", "Sometimes")]),
            "sessions.same_site"
        );
        assert_eq!(
            err_field(&base(), &[("SESSION_MAX_AGE", "forever")]),
            "sessions.max_age"
        );
    }

    fn err_text(yaml: &str, env: &[(&str, &str)]) -> String {
        match load(yaml, env) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error"),
        }
    }

    /// The operator reads the message and fixes a variable that is nowhere in proxy.yaml.
    #[test]
    fn env_errors_name_the_variable_and_the_field() {
        assert_eq!(
            err_text(&base(), &[("SESSION_MAX_AGE", "3600")]),
            "invalid config: SESSION_MAX_AGE (sessions.max_age): a duration needs a unit, e.g. \"3600s\" or \"1h\""
        );
        let e = err_text(&base(), &[("SESSION_SECRET", "short")]);
        assert!(
            e.starts_with("invalid config: SESSION_SECRET (sessions.secret): must be at least"),
            "{e}"
        );
        assert!(!e.contains("short"), "{e}");
        let e = err_text(
            &base(),
            &[("SESSION_PROXY_TRUSTED_PROXIES", "10.0.0.0/8, nonsense")],
        );
        assert!(
            e.contains("SESSION_PROXY_TRUSTED_PROXIES (trusted_proxies"),
            "{e}"
        );
        // A file error stays the file's, whatever else the environment sets.
        let yaml = base().replace("  url:", "  timeout: soon\n  url:");
        let e = err_text(
            &yaml,
            &[
                ("SESSION_MAX_AGE", "2h"),
                ("SESSION_PROXY_UPSTREAM_UPGRADES", "websocket"),
            ],
        );
        assert!(e.starts_with("invalid config: upstream.timeout: "), "{e}");
        // A command-line flag outranks the environment, and is named as the source.
        let env = [("SESSION_PROXY_UPSTREAM", "http://127.0.0.1:1")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let flags = Overrides {
            upstream: Some("ftp://x".into()),
            ..Overrides::default()
        };
        let e = Config::from_yaml(&base(), &env, &flags)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("invalid config: --upstream (upstream.url): "),
            "{e}"
        );
    }

    #[test]
    fn an_unquoted_number_for_a_duration_asks_for_a_unit() {
        let e = err_text(&format!("{}  max_age: 3600\n", base()), &[]);
        assert_eq!(
            e,
            "invalid config: sessions.max_age: a duration needs a unit, e.g. \"3600s\" or \"1h\""
        );
        let e = err_text(&format!("{}  idle_timeout: 90\n", base()), &[]);
        assert!(
            e.contains("sessions.idle_timeout: a duration needs a unit, e.g. \"90s\" or \"1m30s\""),
            "{e}"
        );
        let e = err_text(&format!("{}  idle_timeout: 30\n", base()), &[]);
        assert!(e.contains("e.g. \"30s\" or \"30m\""), "{e}");
        let e = err_text(&format!("{}  max_age: 1.5\n", base()), &[]);
        assert!(e.contains("\"1500ms\""), "{e}");
        let e = err_text(&format!("{}  max_age: -5\n", base()), &[]);
        assert!(e.contains("cannot be negative"), "{e}");
        let e = err_text(&format!("{}  max_age: [1]\n", base()), &[]);
        assert!(e.contains("expected a duration such as 90s"), "{e}");
        // 0 needs no unit; the field's own rule then speaks.
        let yaml = base().replace("  url:", "  timeout: 0\n  url:");
        assert_eq!(
            err_text(&yaml, &[]),
            "invalid config: upstream.timeout: must be > 0"
        );
        // Quoted and unquoted text, and an absent optional one, still work.
        let c = load(
            &format!("{}  max_age: \"2h\"\n  idle_timeout: 15m\n", base()),
            &[],
        )
        .unwrap();
        assert_eq!(c.sessions.max_age, Duration::from_secs(7200));
        assert_eq!(c.sessions.idle_timeout, Some(Duration::from_secs(900)));
        let c = load(&format!("{}  idle_timeout: off\n", base()), &[]).unwrap();
        assert_eq!(c.sessions.idle_timeout, None);
        let c = load(&format!("{}  idle_timeout: ~\n", base()), &[]).unwrap();
        assert_eq!(c.sessions.idle_timeout, None);
    }

    #[test]
    fn listeners_must_not_share_an_address() {
        let with = |extra: &str| format!("{}{extra}", base());
        let e = err_text(&with("admin_listen: 127.0.0.1:8080\n"), &[]);
        assert_eq!(
            e,
            "invalid config: admin_listen: 127.0.0.1:8080 is the address of listen too; each listener needs a port of its own"
        );
        let e = err_text(&with("admin_listen: 0.0.0.0:8080\n"), &[]);
        assert!(
            e.contains("admin_listen: 0.0.0.0:8080 overlaps listen 127.0.0.1:8080"),
            "{e}"
        );
        assert_eq!(
            err_field(&with("admin_listen: \"[::]:8080\"\n"), &[]),
            "admin_listen"
        );
        let e = err_text(
            &with("tls:\n  cert: /c.pem\n  key: /k.pem\n  redirect_http: 127.0.0.1:8080\n"),
            &[],
        );
        assert!(
            e.contains("tls.redirect_http: 127.0.0.1:8080 is the address of listen too"),
            "{e}"
        );
        let e = err_text(&base(), &[("SESSION_PROXY_ADMIN_LISTEN", "127.0.0.1:8080")]);
        assert!(
            e.contains("SESSION_PROXY_ADMIN_LISTEN (admin_listen): "),
            "{e}"
        );
        // Apart: another port, another specific address, another family, or port 0 (each its own).
        for admin in ["127.0.0.1:9901", "127.0.0.2:8080", "\"[::1]:8080\""] {
            assert!(
                load(&with(&format!("admin_listen: {admin}\n")), &[]).is_ok(),
                "{admin}"
            );
        }
        let zero = base().replace("127.0.0.1:8080", "127.0.0.1:0");
        assert!(load(&format!("{zero}admin_listen: 127.0.0.1:0\n"), &[]).is_ok());
    }

    #[test]
    fn listen_resolves_a_host_name_or_asks_for_ip_and_port() {
        let c = load(&base().replace("127.0.0.1:8080", "localhost:8080"), &[]).unwrap();
        assert!(c.listen.ip().is_loopback(), "{}", c.listen);
        assert_eq!(c.listen.port(), 8080);
        let c = load(&base(), &[("SESSION_PROXY_ADMIN_LISTEN", "localhost:9901")]).unwrap();
        assert!(c
            .admin_listen
            .is_some_and(|a| a.ip().is_loopback() && a.port() == 9901));
        for (listen, says) in [
            (
                "no-such-host.invalid:8080",
                "cannot resolve \"no-such-host.invalid\"",
            ),
            ("localhost", "has no port"),
            ("\"[::1]\"", "has no port"),
            ("\":8080\"", "has no host"),
            ("localhost:http", "the port must be a number"),
            (
                "8080",
                "a port alone is not an address; use IP:port, e.g. 0.0.0.0:8080",
            ),
        ] {
            let e = err_text(&base().replace("127.0.0.1:8080", listen), &[]);
            assert!(e.starts_with("invalid config: listen: "), "{listen}: {e}");
            assert!(e.contains(says), "{listen}: {e}");
            if listen != "8080" {
                assert!(e.contains("use IP:port"), "{listen}: {e}");
            }
        }
        assert_eq!(
            resolve_socket_addr("[::1]:80"),
            Ok(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 80)))
        );
    }
}
