//! Loading end to end: file, environment and flags in, a validated config or a named error out.

use std::path::PathBuf;
use std::time::Duration;

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
    let readme = include_str!("../../README.md");
    for (var, field) in ENV_OVERRIDES {
        assert!(readme.contains(var), "{var} ({field}) is not in README.md");
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

/// `check` prints the effective config: its durations must read as the file would write them.
#[test]
fn redacted_output_writes_durations_as_the_config_does() {
    let yaml = format!("{}  idle_timeout: 1h30m\n", base());
    let out = load(&yaml, &[]).unwrap().to_redacted_yaml();
    for line in [
        "max_age: 24h",
        "idle_timeout: 1h30m",
        "timeout: 500ms",
        "timeout: 1m",
        "tunnel_idle_timeout: 5m",
    ] {
        assert!(out.contains(line), "{line} not in\n{out}");
    }
    assert!(!out.contains("day"), "{out}");
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
