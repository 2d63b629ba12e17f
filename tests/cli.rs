//! The command line: `check`, `keygen`, `--help`, `serve` overrides, `SESSION_PROXY_CONFIG`.
mod support;

use std::process::Command;

use support::*;

fn config(secret: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\nupstream:\n  url: http://127.0.0.1:3999\n  timeout: 30s\nsessions:\n  secret: \"{secret}\"\n"
    )
}

#[test]
fn check_prints_effective_config_with_secrets_redacted() {
    let previous = "previous-secret-abcdefghijklmnopqrstuvwxyz0123";
    let yaml = format!(
        "{}  previous_secrets: [\"{previous}\"]\nredis:\n  url: redis://app:hunter2hunter2@127.0.0.1:6380/0\n",
        config(SECRET)
    );
    let (code, out, err) = run_cli(&yaml, &["check"], &[]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.contains("http://127.0.0.1:3999"), "{out}");
    assert!(out.contains("timeout: 30s"), "{out}");
    // Defaults are part of the effective config.
    assert!(out.contains("header_read_timeout"), "{out}");
    assert!(out.contains("<redacted>"), "{out}");
    for secret in [SECRET, previous, "hunter2hunter2"] {
        assert!(!out.contains(secret), "{secret} on stdout:\n{out}");
        assert!(!err.contains(secret), "{secret} on stderr:\n{err}");
    }
    assert!(err.contains("is valid"), "{err}");
}

#[test]
fn unknown_key_is_refused_naming_the_field() {
    let yaml = config(SECRET).replace("  timeout: 30s", "  tmeout: 30s");
    let (code, out, err) = run_cli(&yaml, &["check"], &[]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("upstream.tmeout"), "{err}");
    // serve refuses it the same way.
    let (code, _, err) = run_cli(&yaml, &["serve"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("upstream.tmeout"), "{err}");
}

#[test]
fn bad_duration_is_refused_naming_the_field() {
    let yaml = config(SECRET).replace("timeout: 30s", "timeout: soon");
    let (code, out, err) = run_cli(&yaml, &["check"], &[]);
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("upstream.timeout"), "{err}");
    assert!(err.contains("soon"), "{err}");
}

#[test]
fn missing_or_short_secret_points_at_keygen() {
    let missing =
        config(SECRET).replace(&format!("  secret: \"{SECRET}\"\n"), "  driver: cookie\n");
    let short = config("too-short-a-secret");
    for (what, yaml, why) in [
        ("missing", missing, "is required"),
        ("short", short, "at least 32"),
    ] {
        let (code, out, err) = run_cli(&yaml, &["check"], &[]);
        assert!(err.contains(why), "{what}: {err}");
        assert_ne!(code, 0, "{what}: {out}");
        assert!(err.contains("sessions.secret"), "{what}: {err}");
        assert!(err.contains("session-proxy keygen"), "{what}: {err}");
        assert!(
            !err.contains("too-short-a-secret"),
            "{what}: secret echoed: {err}"
        );
    }
}

#[test]
fn keygen_output_is_accepted_as_the_secret() {
    let (code, key, err) = run_cli("", &["keygen"], &[]);
    assert_eq!(code, 0, "{err}");
    let key = key.trim();
    assert!(key.len() >= 32, "{key}");
    let (code2, key2, _) = run_cli("", &["keygen"], &[]);
    assert_eq!(code2, 0);
    assert_ne!(key, key2.trim(), "keygen repeats itself");
    let (code, out, err) = run_cli(&config(key), &["check"], &[]);
    assert_eq!(code, 0, "keygen output refused:\n{err}");
    assert!(!out.contains(key));
}

#[test]
fn every_subcommand_has_help() {
    for sub in ["serve", "check", "keygen", "cleanup"] {
        let out = Command::new(binary())
            .args([sub, "--help"])
            .env_remove("SESSION_PROXY_CONFIG")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub} --help failed");
        assert!(stdout.contains("Usage:"), "{sub}: {stdout}");
        assert!(stdout.contains(sub), "{sub}: {stdout}");
    }
    let out = Command::new(binary()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    for sub in ["serve", "check", "keygen", "cleanup"] {
        assert!(stdout.contains(sub), "{stdout}");
    }
    // serve's help documents its overrides.
    let out = Command::new(binary())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("--listen") && stdout.contains("--upstream"),
        "{stdout}"
    );
}

#[tokio::test]
async fn serve_listen_and_upstream_flags_override_the_file() {
    let up = TestUpstream::start().await;
    // The file names a port that is taken and an upstream that is dead; the flags win.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap();
    let dead = dead_addr();
    let proxy = ProxyBuilder::new(&format!("http://{dead}"))
        .set("listen", &taken_addr.to_string())
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--upstream")
        .arg(&up.url())
        .start();
    assert_ne!(proxy.addr, taken_addr);
    let res = get(proxy.addr, "/", &[]).await;
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.text(), "hello from upstream");
    assert_eq!(up.seen().len(), 1);
}

#[test]
fn session_proxy_config_env_selects_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("elsewhere.yaml");
    std::fs::write(&path, config(SECRET).replace("3999", "4242")).unwrap();
    let out = Command::new(binary())
        .arg("check")
        .current_dir(dir.path())
        .env("SESSION_PROXY_CONFIG", &path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("http://127.0.0.1:4242"), "{stdout}");

    let missing = dir.path().join("nope.yaml");
    let out = Command::new(binary())
        .arg("check")
        .current_dir(dir.path())
        .env("SESSION_PROXY_CONFIG", &missing)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("nope.yaml"), "{stderr}");
}
