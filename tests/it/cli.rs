//! The command line: `check`, `keygen`, `--help`, `--version`, `completions`, `man`, `serve`
//! overrides, `SESSION_PROXY_CONFIG`, and the errors a config can get (field, variable, file).

use std::path::Path;
use std::process::Command;

use crate::support::*;

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
    // Durations read as the file writes them (`24h`, not humantime's `1day`).
    assert!(out.contains("max_age: 24h"), "{out}");
    // Defaults are part of the effective config.
    assert!(out.contains("header_read_timeout"), "{out}");
    assert!(out.contains("<redacted>"), "{out}");
    for secret in [SECRET, previous, "hunter2hunter2"] {
        assert!(!out.contains(secret), "{secret} on stdout:\n{out}");
        assert!(!err.contains(secret), "{secret} on stderr:\n{err}");
    }
    assert!(err.contains("is valid"), "{err}");
}

/// `redis.pool_size` is deprecated: an existing file that sets it still passes, with a warning.
#[test]
fn check_warns_about_the_deprecated_pool_size() {
    let yaml = format!("{}redis:\n  pool_size: 8\n", config(SECRET));
    let (code, out, err) = run_cli(&yaml, &["check"], &[]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("redis.pool_size"), "{err}");
    assert!(!out.contains("pool_size"), "{out}");
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
    for sub in [
        "serve",
        "check",
        "keygen",
        "cleanup",
        "sessions",
        "health",
        "completions",
        "man",
    ] {
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
    for sub in [
        "serve",
        "check",
        "keygen",
        "cleanup",
        "sessions",
        "completions",
        "man",
    ] {
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

/// The commit `git` reports for this checkout, or "unknown" where build.rs cannot ask it (no git,
/// or the crate is not the top of its own checkout).
fn expected_commit() -> String {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let top =
        git(&["rev-parse", "--show-toplevel"]).and_then(|t| Path::new(&t).canonicalize().ok());
    if top != Path::new(dir).canonicalize().ok() {
        return "unknown".into();
    }
    git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into())
}

/// What a bug report quotes: the version, the commit it was built from and the target.
#[test]
fn version_names_the_commit_and_the_target() {
    let commit = expected_commit();
    for (args, name) in [
        (&["--version"][..], "session-proxy"),
        (&["-V"][..], "session-proxy"),
        (&["check", "--version"][..], "session-proxy-check"),
    ] {
        let (code, out, err) = run_cli("", args, &[]);
        assert_eq!(code, 0, "{args:?}: {err}");
        let line = out.trim();
        let prefix = format!("{name} {} (commit {commit}, ", env!("CARGO_PKG_VERSION"));
        let target = line
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{args:?}: {line:?} does not start with {prefix:?}"));
        assert!(
            target.starts_with(std::env::consts::ARCH) && target.contains(std::env::consts::OS),
            "{args:?}: target {target:?}"
        );
    }
    assert!(
        commit == "unknown" || commit.len() == 12,
        "git gave {commit:?}"
    );
}

const SUBCOMMANDS: [&str; 8] = [
    "serve",
    "check",
    "keygen",
    "cleanup",
    "sessions",
    "health",
    "completions",
    "man",
];

/// What bash completes for the words typed so far (the last one being completed), through the
/// function the script registers for `session-proxy`, called the way bash's completion calls it.
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let cword = words.len() - 1;
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let probe = format!(
        "source '{}' || exit 3\n\
         spec=$(complete -p session-proxy) || exit 4\n\
         fn=${{spec#*-F }}; fn=${{fn%% *}}\n\
         COMP_WORDS=({}); COMP_CWORD={cword}\n\
         \"$fn\" session-proxy '{}' '{}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[cword],
        words[cword - 1],
    );
    let out = Command::new("bash").arg("-c").arg(&probe).output().unwrap();
    assert!(
        out.status.success(),
        "{probe}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completions_parse_and_complete_commands_and_their_options() {
    let (code, script, err) = run_cli("", &["completions", "bash"], &[]);
    assert_eq!(code, 0, "{err}");
    for sub in SUBCOMMANDS {
        assert!(script.contains(sub), "{sub} missing:\n{script}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("session-proxy.bash");
    std::fs::write(&path, &script).unwrap();
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        syntax.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );

    assert_eq!(bash_complete(&path, &["session-proxy", "ch"]), ["check"]);
    let shells = bash_complete(&path, &["session-proxy", "completions", ""]);
    for shell in ["bash", "zsh", "fish"] {
        assert!(shells.iter().any(|s| s == shell), "{shells:?}");
    }
    // Past a subcommand, its own options: what clap_complete's hyphenated-name bug lost.
    let serve = bash_complete(&path, &["session-proxy", "serve", "--l"]);
    assert_eq!(serve, ["--listen", "--log-format"]);
    let health = bash_complete(&path, &["session-proxy", "health", "--"]);
    assert!(health.iter().any(|o| o == "--url"), "{health:?}");
    // Two levels down: `sessions revoke` and its options.
    let sessions = bash_complete(&path, &["session-proxy", "sessions", ""]);
    assert!(sessions.iter().any(|s| s == "revoke"), "{sessions:?}");
    let revoke = bash_complete(&path, &["session-proxy", "sessions", "revoke", "--"]);
    assert!(revoke.iter().any(|o| o == "--handle"), "{revoke:?}");
}

#[test]
fn zsh_and_fish_completions_name_every_command() {
    for (shell, marker) in [
        ("zsh", "#compdef session-proxy"),
        ("fish", "complete -c session-proxy"),
    ] {
        let (code, script, err) = run_cli("", &["completions", shell], &[]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(
            script.starts_with(marker) || script.contains(marker),
            "{shell}:\n{script}"
        );
        for sub in SUBCOMMANDS {
            assert!(script.contains(sub), "{shell}: {sub} missing");
        }
        // Where the shell is installed (Debian's zsh and fish packages), it parses the script.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("session-proxy.{shell}"));
        std::fs::write(&path, &script).unwrap();
        match Command::new(shell).arg("-n").arg(&path).output() {
            Ok(out) => assert!(
                out.status.success(),
                "{shell} -n: {}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("{shell} not run ({e}); its script was checked by content only"),
        }
        if shell == "fish" {
            if let Ok(out) = Command::new("fish")
                .arg("-c")
                .arg(format!(
                    "source '{}'; complete -C 'session-proxy serve --l'",
                    path.display()
                ))
                .output()
            {
                let got = String::from_utf8_lossy(&out.stdout);
                assert!(
                    got.contains("--listen") && got.contains("--log-format"),
                    "{got}"
                );
            }
        }
    }
    let (code, _, err) = run_cli("", &["completions", "tcsh"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("bash") && err.contains("zsh") && err.contains("fish"),
        "{err}"
    );
}

/// The first macro of a page proper. roff's apostrophe preamble (`.ie \n(.g .ds Aq \(aq` /
/// `.el .ds Aq '`, which pod2man writes too) comes before it.
fn title_line(page: &str) -> &str {
    page.lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or("")
}

#[test]
fn man_prints_a_roff_page_for_the_proxy_and_each_command() {
    let (code, page, err) = run_cli("", &["man"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        title_line(&page).starts_with(".TH session-proxy 1 "),
        "{page}"
    );
    assert!(page.lines().take(3).all(|l| l.starts_with('.')), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "{section} missing:\n{page}");
    }
    for sub in SUBCOMMANDS {
        assert!(
            page.contains(&format!("session\\-proxy\\-{sub}(1)")),
            "{sub}"
        );
    }
    assert!(
        page.contains(&format!("commit {}", expected_commit())),
        "{page}"
    );

    // The pages SUBCOMMANDS points at.
    let (code, check, err) = run_cli("", &["man", "check"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        title_line(&check).starts_with(".TH session-proxy-check 1 "),
        "{check}"
    );
    let (code, _, err) = run_cli("", &["man", "chekc"], &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("\"chekc\"") && err.contains("serve, check"),
        "{err}"
    );

    // groff (man's formatter) reads it without a warning.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("session-proxy.1");
    std::fs::write(&file, &page).unwrap();
    match Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&file)
        .output()
    {
        Ok(out) => {
            assert!(out.status.success());
            let warnings = String::from_utf8_lossy(&out.stderr);
            assert!(warnings.trim().is_empty(), "groff: {warnings}");
        }
        Err(e) => eprintln!("groff not run ({e}); the page was checked by structure only"),
    }
}

#[test]
fn admin_listen_on_the_listen_address_is_refused_naming_both() {
    let yaml = config(SECRET).replace("127.0.0.1:0", "127.0.0.1:18080")
        + "admin_listen: 127.0.0.1:18080\n";
    for cmd in ["check", "serve"] {
        let (code, out, err) = run_cli(&yaml, &[cmd], &[]);
        assert_ne!(code, 0, "{cmd}: {out}");
        assert!(
            err.contains(
                "invalid config: admin_listen: 127.0.0.1:18080 is the address of listen too"
            ),
            "{cmd}: {err}"
        );
    }
    // From the environment, the variable is named as well.
    let (code, _, err) = run_cli(
        &config(SECRET).replace("127.0.0.1:0", "0.0.0.0:18080"),
        &["check"],
        &[("SESSION_PROXY_ADMIN_LISTEN", "127.0.0.1:18080")],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("SESSION_PROXY_ADMIN_LISTEN (admin_listen): 127.0.0.1:18080 overlaps listen 0.0.0.0:18080"),
        "{err}"
    );
}

fn tls_config(cert: &Path, key: &Path) -> String {
    format!(
        "{}tls:\n  cert: \"{}\"\n  key: \"{}\"\n",
        config(SECRET),
        cert.display(),
        key.display()
    )
}

#[test]
fn certificate_file_errors_name_tls_cert_or_tls_key() {
    let ca = crate::support::tls::TestCa::new("ca");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = ca.write_leaf(dir.path(), "a");
    let missing = dir.path().join("missing.pem");
    let other = tempfile::tempdir().unwrap();
    let (_, other_key, _) = ca.write_leaf(other.path(), "b");
    let cases = [
        (
            tls_config(&missing, &key),
            format!("tls.cert: cannot read {}: No such file", missing.display()),
        ),
        (
            tls_config(&cert, &missing),
            format!("tls.key: cannot read {}: No such file", missing.display()),
        ),
        (
            tls_config(&cert, &cert),
            format!("tls.key: {}: no private key found", cert.display()),
        ),
        (
            tls_config(&key, &key),
            format!("tls.cert: {}: no certificate found", key.display()),
        ),
        (
            tls_config(&cert, &other_key),
            format!("tls.key: {} does not match", other_key.display()),
        ),
    ];
    for (yaml, says) in &cases {
        for cmd in ["check", "serve"] {
            let (code, out, err) = run_cli(yaml, &[cmd], &[]);
            assert_ne!(code, 0, "{cmd}: {out}");
            assert!(
                err.contains(says.as_str()),
                "{cmd}: want {says:?}, got {err}"
            );
        }
    }
    let (code, _, err) = run_cli(&tls_config(&cert, &key), &["check"], &[]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn listen_takes_a_host_name_resolved_at_load_or_asks_for_ip_and_port() {
    let yaml = config(SECRET).replace("127.0.0.1:0", "localhost:0");
    let (code, out, err) = run_cli(&yaml, &["check"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("listen: 127.0.0.1:0")
            || out.contains("listen: '[::1]:0'")
            || out.contains("listen: \"[::1]:0\""),
        "check prints the resolved address:\n{out}"
    );
    for (listen, says) in [
        (
            "no-such-host.invalid:8080",
            "listen: cannot resolve \"no-such-host.invalid\"",
        ),
        (
            "localhost",
            "listen: \"localhost\" has no port; use IP:port",
        ),
        (
            "8080",
            "listen: a port alone is not an address; use IP:port, e.g. 0.0.0.0:8080",
        ),
    ] {
        let (code, _, err) = run_cli(
            &config(SECRET).replace("127.0.0.1:0", listen),
            &["check"],
            &[],
        );
        assert_ne!(code, 0, "{listen}");
        assert!(err.contains(says), "{listen}: {err}");
        assert!(err.contains("use IP:port"), "{listen}: {err}");
    }
    // The flag too; clap refuses a bad one before anything is loaded.
    let (code, _, err) = run_cli(
        &config(SECRET),
        &["serve", "--listen", "no-such-host.invalid:1"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--listen") && err.contains("use IP:port"),
        "{err}"
    );
}

#[tokio::test]
async fn a_proxy_listening_on_localhost_serves() {
    let up = TestUpstream::start().await;
    for listen in [None, Some("localhost:0")] {
        let mut builder = ProxyBuilder::new(&up.url());
        builder = match listen {
            // The file's name...
            None => builder.set("listen", "localhost:0"),
            // ...and the flag's.
            Some(flag) => builder.arg("--listen").arg(flag),
        };
        let proxy = builder.start();
        assert!(proxy.addr.ip().is_loopback(), "{}", proxy.addr);
        let res = get(proxy.addr, "/", &[]).await;
        assert_eq!(res.status, 200, "{}", res.text());
    }
}

#[test]
fn env_errors_name_the_variable_and_the_field() {
    for cmd in ["check", "serve"] {
        let (code, _, err) = run_cli(&config(SECRET), &[cmd], &[("SESSION_MAX_AGE", "3600")]);
        assert_ne!(code, 0);
        assert!(
            err.contains(r#"invalid config: SESSION_MAX_AGE (sessions.max_age): a duration needs a unit, e.g. "3600s" or "1h""#),
            "{cmd}: {err}"
        );
    }
    let (code, _, err) = run_cli(
        &config(SECRET),
        &["check"],
        &[("SESSION_SECRET", "too-short-a-secret")],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("SESSION_SECRET (sessions.secret): must be at least 32"),
        "{err}"
    );
    assert!(!err.contains("too-short-a-secret"), "{err}");
}

#[test]
fn an_unquoted_number_for_a_duration_asks_for_a_unit() {
    let yaml = format!("{}  max_age: 3600\n", config(SECRET));
    let (code, _, err) = run_cli(&yaml, &["check"], &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains(
            r#"invalid config: sessions.max_age: a duration needs a unit, e.g. "3600s" or "1h""#
        ),
        "{err}"
    );
    let yaml = config(SECRET).replace("timeout: 30s", "timeout: 90");
    let (_, _, err) = run_cli(&yaml, &["check"], &[]);
    assert!(
        err.contains(r#"upstream.timeout: a duration needs a unit, e.g. "90s" or "1m30s""#),
        "{err}"
    );
}

/// With `redis.sentinel`, `redis.url` is not used: `check` says so, and shows no password.
#[test]
fn check_says_redis_url_is_ignored_with_sentinel() {
    let yaml = format!(
        "{}redis:\n  url: redis://10.0.0.9:6379/0\n  sentinel:\n    master: mymaster\n    nodes: [\"127.0.0.1:26379\"]\n    password: primary-secret\n    sentinel_password: sentinel-secret\n",
        config(SECRET).replace("sessions:\n", "sessions:\n  driver: redis\n")
    );
    let (code, out, err) = run_cli(&yaml, &["check"], &[]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("redis.url") && err.contains("ignored"),
        "{err}"
    );
    assert!(out.contains("master: mymaster"), "{out}");
    assert!(!format!("{out}{err}").contains("-secret"), "{out}{err}");
}
