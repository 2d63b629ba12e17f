//! The rules of each section, each refusing by field name.

use std::time::Duration;

use super::super::testing::*;

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

/// A redis-driver file with a `redis.sentinel` block of `fields` (YAML flow-mapping entries).
fn sentinel(fields: &str, redis: &str) -> String {
    format!(
        "{}  driver: redis\nredis:\n{redis}  sentinel: {{{fields}}}\n",
        base()
    )
}

const GOOD: &str = "master: mymaster, nodes: [\"127.0.0.1:26379\", \"[::1]:26380\", \"s3:26381\"]";

#[test]
fn sentinel_rules_name_the_field() {
    let c = load(&sentinel(GOOD, "  url: \"not a url\"\n"), &[]).unwrap();
    let s = c.redis.sentinel.unwrap();
    assert_eq!(s.master, "mymaster");
    assert_eq!(s.nodes.len(), 3);
    assert_eq!(s.wait_replicas, None);
    let cases = [
        ("nodes: [\"a:1\"]", "", "redis.sentinel.master"),
        ("master: m", "", "redis.sentinel.nodes"),
        (
            "master: m, nodes: [\"a:1\", \"b\"]",
            "",
            "redis.sentinel.nodes[1]",
        ),
        (
            "master: m, nodes: [\"redis://a:1\"]",
            "",
            "redis.sentinel.nodes[0]",
        ),
        ("master: m, nodes: [\"a:0\"]", "", "redis.sentinel.nodes[0]"),
        (
            "master: m, nodes: [\"::1:5\"]",
            "",
            "redis.sentinel.nodes[0]",
        ),
        (
            "master: m, nodes: [\"a:1\"], wait_replicas: 0",
            "",
            "redis.sentinel.wait_replicas",
        ),
        (
            "master: m, nodes: [\"a:1\"], port: 1",
            "",
            "redis.sentinel.port",
        ),
        (GOOD, "  cluster: [\"redis://a:1\"]\n", "redis.sentinel"),
        (GOOD, "  ca: ca.pem\n", "redis.ca"),
        (GOOD, "  client_cert: c.pem\n", "redis.client_cert"),
        (GOOD, "  timeout: 0s\n", "redis.timeout"),
    ];
    for (fields, redis, field) in cases {
        assert_eq!(
            err_field(&sentinel(fields, redis), &[]),
            field,
            "{fields} {redis}"
        );
    }
    // WAIT alone may take 100 ms, so the bound on each operation must leave room for it.
    let yaml = sentinel(&format!("{GOOD}, wait_replicas: 1"), "  timeout: 100ms\n");
    assert_eq!(err_field(&yaml, &[]), "redis.sentinel.wait_replicas");
    let yaml = sentinel(&format!("{GOOD}, wait_replicas: 1"), "  timeout: 101ms\n");
    assert_eq!(
        load(&yaml, &[])
            .unwrap()
            .redis
            .sentinel
            .unwrap()
            .wait_replicas,
        Some(1)
    );
}

#[test]
fn sentinel_from_the_environment_and_secrets_redacted() {
    let yaml = format!("{}  driver: redis\n", base());
    let env = [
        ("REDIS_SENTINEL_MASTER", "mymaster"),
        ("REDIS_SENTINEL_NODES", "10.0.0.1:26379, 10.0.0.2:26379"),
        ("REDIS_SENTINEL_USERNAME", "proxy"),
        ("REDIS_SENTINEL_PASSWORD", "primary-pw"),
        ("REDIS_SENTINEL_SENTINEL_PASSWORD", "sentinel-pw"),
        ("REDIS_SENTINEL_WAIT_REPLICAS", "2"),
    ];
    let c = load(&yaml, &env).unwrap();
    let s = c.redis.sentinel.as_ref().unwrap();
    assert_eq!(s.nodes, ["10.0.0.1:26379", "10.0.0.2:26379"]);
    assert_eq!(s.username.as_deref(), Some("proxy"));
    assert_eq!(s.password.as_deref(), Some("primary-pw"));
    assert_eq!(s.sentinel_password.as_deref(), Some("sentinel-pw"));
    assert_eq!(s.wait_replicas, Some(2));
    let shown = format!("{}{:?}", c.to_redacted_yaml(), c.redis);
    assert!(!shown.contains("-pw"), "a password leaked: {shown}");
    assert!(shown.contains("password: <redacted>"), "{shown}");
    // Only the master from the environment: the missing nodes are named, with the variable.
    let e = err_text(&yaml, &[("REDIS_SENTINEL_MASTER", "m")]);
    assert!(e.contains("redis.sentinel.nodes"), "{e}");
}
