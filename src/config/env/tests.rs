//! Environment overrides: every variable reaches its field, and an error names the variable.

use std::path::PathBuf;
use std::time::Duration;

use super::super::testing::*;
use super::super::{Config, Driver, Overrides, SameSite};
use super::*;

const DOCS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md");

/// docs/configuration.md is where operators look the variables up; its table is the rendered
/// [`SETTINGS`]. `SESSION_PROXY_BLESS=1 cargo test --lib config::env` rewrites it after a change.
#[test]
fn the_docs_table_is_rendered_from_the_settings() {
    let doc = std::fs::read_to_string(DOCS).unwrap();
    let (before, rest) = doc.split_once(TABLE_BEGIN).expect("begin marker");
    let (table, after) = rest.split_once(TABLE_END).expect("end marker");
    let rendered = markdown_table().unwrap();
    if table.trim() == rendered.trim() {
        return;
    }
    if std::env::var_os("SESSION_PROXY_BLESS").is_some() {
        let doc = format!("{before}{TABLE_BEGIN}\n{rendered}{TABLE_END}{after}");
        std::fs::write(DOCS, doc).unwrap();
        return;
    }
    panic!(
        "docs/configuration.md's table differs from config::env::SETTINGS; rewrite it with\n\
         SESSION_PROXY_BLESS=1 cargo test --lib config::env\nrendered:\n{rendered}"
    );
}

/// Every field the config has is a row of the table (with a variable, or a reason why not), and
/// every row is a field. A new optional field must be added to `every` below too.
#[test]
fn every_setting_is_in_the_table_and_every_row_is_a_setting() {
    let every = format!(
        "{}admin_listen: 127.0.0.1:9901\nadmin_token: {}\ntrusted_proxies: [10.0.0.0/8]\n\
         tls: {{cert: c.pem, key: k.pem, redirect_http: 127.0.0.1:8081, redirect_host: h}}\n\
         assertion: {{key: a.pem, audience: x, subject_key: user}}\n\
         redis: {{ca: ca.pem, client_cert: c.pem, client_key: k.pem, sentinel: {{master: m, \
         nodes: [a:1], username: u, password: p, sentinel_password: s, wait_replicas: 1}}}}\n",
        base().replace("  url:", "  ca: ca.pem\n  max_body: 10\n  url:")
            + "  idle_timeout: 1h\n  cleanup_interval: 1m\n  driver: memory\n  owner_key: user_id\n",
        "t".repeat(32)
    );
    let tree = serde_norway::to_value(load(&every, &[]).unwrap()).unwrap();
    let mut fields = Vec::new();
    leaves(&tree, String::new(), &mut fields);
    let rows: Vec<_> = SETTINGS.iter().map(|s| s.field).collect();
    for field in &fields {
        assert!(
            rows.contains(&field.as_str()),
            "{field} has no row in SETTINGS"
        );
    }
    for row in &rows {
        // Deprecated: read only to warn, never printed.
        if *row != "redis.pool_size" {
            assert!(fields.iter().any(|f| f == row), "{row} is not a setting");
        }
    }
    let mut vars: Vec<_> = SETTINGS.iter().filter_map(|s| s.env).collect();
    vars.sort_unstable();
    let before = vars.len();
    vars.dedup();
    assert_eq!(vars.len(), before, "a variable is in SETTINGS twice");
}

fn leaves(node: &serde_norway::Value, path: String, out: &mut Vec<String>) {
    match node.as_mapping() {
        Some(map) => {
            for (key, value) in map {
                let key = key.as_str().unwrap();
                let path = if path.is_empty() {
                    key.to_owned()
                } else {
                    format!("{path}.{key}")
                };
                leaves(value, path, out);
            }
        }
        None => out.push(path),
    }
}

/// The variables added so that every setting has one.
#[test]
fn every_section_is_reachable_from_the_environment() {
    let c = load(
        &base(),
        &[
            ("SESSION_PROXY_UPSTREAM_CONNECT_TIMEOUT", "2s"),
            ("SESSION_PROXY_UPSTREAM_TIMEOUT", "1m"),
            ("SESSION_PROXY_UPSTREAM_PRESERVE_HOST", "false"),
            ("SESSION_PROXY_UPSTREAM_CA", "/ca.pem"),
            ("SESSION_PROXY_UPSTREAM_MAX_BODY", "1048576"),
            ("SESSION_PROXY_UPSTREAM_MAX_RESPONSE_HEADERS", "100"),
            ("SESSION_CLEANUP_INTERVAL", "10m"),
            ("REDIS_KEY_PREFIX", "app:"),
            ("REDIS_TIMEOUT", "250ms"),
            ("REDIS_CA", "/redis-ca.pem"),
            ("REDIS_CLIENT_CERT", "/redis.pem"),
            ("REDIS_CLIENT_KEY", "/redis-key.pem"),
            ("SESSION_PROXY_TLS_CERT", "/cert.pem"),
            ("SESSION_PROXY_TLS_KEY", "/key.pem"),
            ("SESSION_PROXY_TLS_REDIRECT_HTTP", "127.0.0.1:8081"),
            ("SESSION_PROXY_TLS_REDIRECT_HOST", "www.example.com"),
            ("SESSION_PROXY_HEADER_READ_TIMEOUT", "10s"),
            ("SESSION_PROXY_MAX_CONNECTIONS", "100"),
            ("SESSION_PROXY_SHUTDOWN_GRACE", "5s"),
            ("SESSION_PROXY_TLS_HANDSHAKE_TIMEOUT", "3s"),
            ("SESSION_PROXY_WORKERS", "2"),
        ],
    )
    .unwrap();
    let up = &c.upstream;
    assert_eq!(up.connect_timeout, Duration::from_secs(2));
    assert_eq!(up.timeout, Duration::from_secs(60));
    assert!(!up.preserve_host);
    assert_eq!(up.ca, Some(PathBuf::from("/ca.pem")));
    assert_eq!(up.max_body, Some(1 << 20));
    assert_eq!(up.max_response_headers, 100);
    assert_eq!(c.sessions.cleanup_interval, Some(Duration::from_secs(600)));
    assert_eq!(c.redis.key_prefix, "app:");
    assert_eq!(c.redis.timeout, Duration::from_millis(250));
    assert_eq!(c.redis.ca, Some(PathBuf::from("/redis-ca.pem")));
    assert_eq!(c.redis.client_cert, Some(PathBuf::from("/redis.pem")));
    assert_eq!(c.redis.client_key, Some(PathBuf::from("/redis-key.pem")));
    let tls = c.tls.unwrap();
    assert_eq!(tls.cert, PathBuf::from("/cert.pem"));
    assert_eq!(tls.key, PathBuf::from("/key.pem"));
    assert_eq!(tls.redirect_http.map(|a| a.port()), Some(8081));
    assert_eq!(tls.redirect_host.as_deref(), Some("www.example.com"));
    let l = &c.limits;
    assert_eq!(l.header_read_timeout, Duration::from_secs(10));
    assert_eq!(l.max_connections, 100);
    assert_eq!(l.shutdown_grace, Duration::from_secs(5));
    assert_eq!(l.tls_handshake_timeout, Duration::from_secs(3));
    assert_eq!(l.workers, 2);
    // A number where text is wanted is still refused by the field's own rule, named.
    assert_eq!(
        err_text(&base(), &[("SESSION_PROXY_WORKERS", "many")]),
        "invalid config: SESSION_PROXY_WORKERS (limits.workers): invalid type: string \"many\", expected usize"
    );
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
