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
