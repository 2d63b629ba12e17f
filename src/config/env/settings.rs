//! THE table of settings: every field of `proxy.yaml`, the environment variable that overrides it
//! and one line on what it means. The loader applies overrides from it and the docs' table is
//! rendered from it (`docs/configuration.md`, kept equal by a test), so a new setting is one row
//! here. Naming: `SESSION_*` for `sessions.*`, `SESSION_ASSERTION_*` for `assertion.*`, `REDIS_*`
//! for `redis.*`, `SESSION_PROXY_*` for the rest.

use super::{Kind, Setting};
use Kind::{List, Scalar, Text};

const fn var(env: &'static str, field: &'static str, kind: Kind, doc: &'static str) -> Setting {
    Setting {
        field,
        env: Some(env),
        kind,
        doc,
    }
}

/// A setting without a variable; `doc` says why.
const fn file_only(field: &'static str, doc: &'static str) -> Setting {
    Setting {
        field,
        env: None,
        kind: Text,
        doc,
    }
}

// One row a setting reads better than rustfmt's five.
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    var("SESSION_PROXY_LISTEN", "listen", Text,
        "address to accept on: `IP:port`, or `host:port` resolved once at load"),
    var("SESSION_PROXY_ADMIN_LISTEN", "admin_listen", Text,
        "the admin listener (`/metrics`, `/livez`, `/readyz`, `/healthz`, `/jwks.json`); off when unset"),
    var("SESSION_PROXY_UPSTREAM", "upstream.url", Text,
        "the app: an `http://` or `https://` URL; a path is prepended to every request's"),
    var("SESSION_PROXY_UPSTREAM_CONNECT_TIMEOUT", "upstream.connect_timeout", Text,
        "connecting to the upstream may take this long"),
    var("SESSION_PROXY_UPSTREAM_TIMEOUT", "upstream.timeout", Text,
        "until the upstream's response head arrives (then 504)"),
    var("SESSION_PROXY_UPSTREAM_PRESERVE_HOST", "upstream.preserve_host", Scalar,
        "forward the client's `Host` (`false`: the upstream's authority)"),
    var("SESSION_PROXY_UPSTREAM_CA", "upstream.ca", Text,
        "extra root certificate (PEM) for an `https` upstream"),
    var("SESSION_PROXY_UPSTREAM_MAX_BODY", "upstream.max_body", Scalar,
        "largest request body forwarded, in bytes (larger: 413); no limit when unset"),
    var("SESSION_PROXY_UPSTREAM_UPGRADES", "upstream.upgrades", List,
        "`Upgrade` protocols tunnelled; any other (`h2c` above all) is stripped"),
    var("SESSION_PROXY_UPSTREAM_MAX_RESPONSE_HEADERS", "upstream.max_response_headers", Scalar,
        "most header lines in an upstream response head (more: 502)"),
    var("SESSION_PROXY_TRUSTED_PROXIES", "trusted_proxies", List,
        "peers whose `X-Forwarded-*` / `Forwarded` headers are believed: CIDRs or addresses"),
    var("SESSION_DRIVER", "sessions.driver", Text,
        "where sessions live: `cookie`, `memory` or `redis`"),
    var("SESSION_COOKIE_NAME", "sessions.cookie_name", Text,
        "the session cookie's name"),
    var("SESSION_MAX_AGE", "sessions.max_age", Text,
        "a session's absolute lifetime from creation"),
    var("SESSION_IDLE_TIMEOUT", "sessions.idle_timeout", Text,
        "expire a session after this long without a request (`off` or unset: never)"),
    var("SESSION_SECURE", "sessions.secure", Scalar,
        "the cookie's `Secure` attribute"),
    var("SESSION_HTTP_ONLY", "sessions.http_only", Scalar,
        "the cookie's `HttpOnly` attribute"),
    var("SESSION_SAME_SITE", "sessions.same_site", Text,
        "`Strict`, `Lax` or `None` (`None` requires `secure`)"),
    var("SESSION_DOMAIN", "sessions.domain", Text,
        "the cookie's `Domain` (empty: host-only)"),
    var("SESSION_PATH", "sessions.path", Text,
        "the cookie's `Path`"),
    var("SESSION_SECRET", "sessions.secret", Text,
        "at least 32 bytes; `session-proxy keygen` makes one"),
    var("SESSION_PREVIOUS_SECRETS", "sessions.previous_secrets", List,
        "older secrets still accepted while rotating"),
    var("SESSION_MAX_BYTES", "sessions.max_bytes", Scalar,
        "largest session data (as `X-Session-Data`), in bytes; a response growing it past this gets 500"),
    var("SESSION_CLEANUP_INTERVAL", "sessions.cleanup_interval", Text,
        "how often `serve` sweeps expired sessions (unset: never; the memory store every 60s)"),
    var("REDIS_URL", "redis.url", Text,
        "`redis://` or `rediss://` URL; better here, from a secret store, than a password in the file"),
    var("REDIS_CLUSTER", "redis.cluster", List,
        "Redis Cluster seed URLs; when set, Cluster mode and `redis.url` is ignored"),
    var("REDIS_KEY_PREFIX", "redis.key_prefix", Text,
        "prefix of every session key"),
    var("REDIS_TIMEOUT", "redis.timeout", Text,
        "bound on each store operation (past it: 503)"),
    var("REDIS_CA", "redis.ca", Text,
        "extra root certificate (PEM) for `rediss://`"),
    var("REDIS_CLIENT_CERT", "redis.client_cert", Text,
        "client certificate chain (PEM) for `tls-auth-clients yes`, with `redis.client_key`"),
    var("REDIS_CLIENT_KEY", "redis.client_key", Text,
        "the private key (PEM) of `redis.client_cert`"),
    var("REDIS_ENCRYPT", "redis.encrypt", Scalar,
        "seal session data and key names in Redis under keys derived from the session ID (`false`: readable layout)"),
    file_only("redis.pool_size",
        "deprecated and ignored: one multiplexed connection per node serves every request; a file that sets it loads with a warning"),
    var("SESSION_PROXY_TLS_CERT", "tls.cert", Text,
        "certificate chain (PEM); with `tls`, `listen` serves HTTPS only"),
    var("SESSION_PROXY_TLS_KEY", "tls.key", Text,
        "the private key (PEM) of `tls.cert`"),
    var("SESSION_PROXY_TLS_REDIRECT_HTTP", "tls.redirect_http", Text,
        "a plain listener that 308-redirects to https"),
    var("SESSION_PROXY_TLS_REDIRECT_HOST", "tls.redirect_host", Text,
        "the host every redirect names (unset: the request's validated `Host`)"),
    var("SESSION_PROXY_HEADER_READ_TIMEOUT", "limits.header_read_timeout", Text,
        "a client must send its request head within this (slowloris); also the keep-alive idle limit"),
    var("SESSION_PROXY_MAX_CONNECTIONS", "limits.max_connections", Scalar,
        "beyond it, new connections wait in the kernel's backlog"),
    var("SESSION_PROXY_SHUTDOWN_GRACE", "limits.shutdown_grace", Text,
        "after SIGTERM, in-flight requests get this long to finish"),
    var("SESSION_PROXY_TLS_HANDSHAKE_TIMEOUT", "limits.tls_handshake_timeout", Text,
        "a TLS handshake taking longer is cut off"),
    var("SESSION_PROXY_WORKERS", "limits.workers", Scalar,
        "worker threads (0: one per CPU core)"),
    var("SESSION_PROXY_IDLE_TIMEOUT", "limits.idle_timeout", Text,
        "an idle keep-alive (HTTP/1.1) or stream-less HTTP/2 connection is closed after this"),
    var("SESSION_PROXY_TUNNEL_IDLE_TIMEOUT", "limits.tunnel_idle_timeout", Text,
        "an upgraded connection (WebSocket) silent this long is closed"),
    var("SESSION_ASSERTION_KEY", "assertion.key", Text,
        "Ed25519 or P-256 private key (PEM PKCS#8) that signs `X-Session-Assertion`"),
    var("SESSION_ASSERTION_PREVIOUS_KEYS", "assertion.previous_keys", List,
        "public keys (PEM) still published in the JWKS after a rotation"),
    var("SESSION_ASSERTION_ISSUER", "assertion.issuer", Text,
        "the token's `iss`"),
    var("SESSION_ASSERTION_AUDIENCE", "assertion.audience", Text,
        "the token's `aud` (unset: the upstream URL's origin)"),
    var("SESSION_ASSERTION_TTL", "assertion.ttl", Text,
        "each token's lifetime, at least 2s"),
    var("SESSION_ASSERTION_SUBJECT_KEY", "assertion.subject_key", Text,
        "the session key whose value becomes `sub`"),
    var("SESSION_ASSERTION_HEADER", "assertion.header", Text,
        "the header carrying the token, an `X-Session-*` name"),
];

/// Variables the process reads that override no setting, listed in the same table.
#[rustfmt::skip]
pub const PROCESS_VARIABLES: &[(&str, &str, &str)] = &[
    ("SESSION_PROXY_CONFIG", "`proxy.yaml`",
        "the config file's path (also `--config`)"),
    ("RUST_LOG", "`info`",
        "log levels; the access log's target is `access`"),
];
