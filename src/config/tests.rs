//! Loading end to end: file, environment and flags in, a validated config or a named error out.

use std::time::Duration;

use super::testing::*;
use super::*;

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

/// `redis.pool_size` never did anything: a file that sets it (any value, any driver) still loads,
/// and is told so, but `check` no longer prints it.
#[test]
fn pool_size_is_accepted_and_reported_deprecated() {
    assert!(load(&base(), &[]).unwrap().deprecations().is_empty());
    for value in ["8", "0", "lots"] {
        let yaml = format!(
            "{}  driver: redis\nredis:\n  url: redis://127.0.0.1:1/0\n  pool_size: {value}\n",
            base()
        );
        let c = load(&yaml, &[]).unwrap();
        let names: Vec<_> = c.deprecations().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["redis.pool_size"], "{value}");
        assert!(!c.to_redacted_yaml().contains("pool_size"));
    }
}
