//! Environment overrides: every variable reaches its field, and an error names the variable.

use std::path::PathBuf;
use std::time::Duration;

use super::super::testing::*;
use super::super::{Config, Driver, Overrides, SameSite};
use super::*;

/// The README is where operators look the variables up: every override must be listed there.
#[test]
fn every_env_override_is_in_the_readme() {
    let readme = include_str!("../../../README.md");
    for (var, field) in ENV_OVERRIDES {
        assert!(readme.contains(var), "{var} ({field}) is not in README.md");
    }
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
