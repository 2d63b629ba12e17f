//! Operations: the admin listener's /metrics, /healthz and /readyz; secrets never in the logs.
mod support;

use std::time::Duration;
use support::*;

/// The value of one Prometheus sample line (`name{labels} value`).
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in:\n{metrics}"))
}

fn session_app() -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    |seen| match seen.uri.path() {
        "/login" => Reply::ok()
            .header("X-Session-Set", "user=Ann")
            .header("X-Session-Regenerate", "1"),
        "/logout" => Reply::ok().header("X-Session-Clear", "1"),
        "/missing" => Reply::ok().status(404),
        _ => Reply::ok(),
    }
}

#[tokio::test]
async fn metrics_count_known_traffic() {
    let up = TestUpstream::with(session_app()).await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("memory")
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();

    let login = get(proxy.addr, "/login", &[]).await;
    let cookie = login.cookie("session_id").unwrap();
    for _ in 0..3 {
        get_with_cookie(proxy.addr, "/", "session_id", &cookie).await;
    }
    get(proxy.addr, "/missing", &[]).await;
    get_with_cookie(proxy.addr, "/", "session_id", "forged-cookie").await;
    get_with_cookie(proxy.addr, "/logout", "session_id", &cookie).await;

    let dead = ProxyBuilder::new(&format!("http://{}", dead_addr()))
        .set("admin_listen", "127.0.0.1:0")
        .start();
    assert_eq!(get(dead.addr, "/", &[]).await.status, 502);

    let m = get(admin, "/metrics", &[]).await.text();
    assert_eq!(
        sample(
            &m,
            "session_proxy_requests_total{method=\"GET\",status=\"2xx\"}"
        ),
        6.0
    );
    assert_eq!(
        sample(
            &m,
            "session_proxy_requests_total{method=\"GET\",status=\"4xx\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&m, "session_proxy_request_duration_seconds_count"),
        7.0
    );
    assert_eq!(
        sample(&m, "session_proxy_upstream_duration_seconds_count"),
        7.0
    );
    // Created at /login (then regenerated in the same response counts as a creation only).
    assert_eq!(sample(&m, "session_proxy_sessions_created_total"), 1.0);
    assert_eq!(sample(&m, "session_proxy_sessions_destroyed_total"), 1.0);
    assert_eq!(
        sample(
            &m,
            "session_proxy_cookie_rejections_total{reason=\"tampered\"}"
        ),
        1.0
    );
    assert!(
        sample(
            &m,
            "session_proxy_store_operations_total{driver=\"memory\",op=\"load\"}"
        ) >= 5.0
    );
    assert!(m.contains("session_proxy_active_connections"));

    let dm = get(dead.admin_addr(), "/metrics", &[]).await.text();
    assert_eq!(
        sample(&dm, "session_proxy_upstream_errors_total{kind=\"connect\"}"),
        1.0
    );
    assert_eq!(
        sample(
            &dm,
            "session_proxy_requests_total{method=\"GET\",status=\"5xx\"}"
        ),
        1.0
    );
}

#[tokio::test]
async fn admin_endpoints_are_not_on_the_public_listener() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();
    assert_ne!(admin, proxy.addr);
    assert_eq!(get(admin, "/healthz", &[]).await.status, 200);
    assert_eq!(get(admin, "/readyz", &[]).await.status, 200);
    assert_eq!(get(admin, "/nope", &[]).await.status, 404);
    // On the public port these paths are just the app's.
    let res = get(proxy.addr, "/metrics", &[]).await;
    assert_eq!(res.text(), "hello from upstream");
    assert_eq!(up.last().uri.path(), "/metrics");
}

#[tokio::test]
async fn healthz_reports_an_unreachable_upstream() {
    let proxy = ProxyBuilder::new(&format!("http://{}", dead_addr()))
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let res = get(proxy.admin_addr(), "/healthz", &[]).await;
    assert_eq!(res.status, 503);
    assert!(res.text().contains("upstream"), "{}", res.text());
}

#[tokio::test]
async fn healthz_follows_redis() {
    let mut redis = RedisServer::start();
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &format!("\"{}\"", redis.url()))
        .set("redis.timeout", "300ms")
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();
    assert_eq!(get(admin, "/healthz", &[]).await.status, 200);
    redis.stop();
    let res = get(admin, "/healthz", &[]).await;
    assert_eq!(res.status, 503);
    assert!(res.text().contains("session store"), "{}", res.text());
    redis.restart();
    let mut healthy = false;
    for _ in 0..50 {
        if get(admin, "/healthz", &[]).await.status == 200 {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(healthy, "/healthz came back once Redis returned");
}

#[tokio::test]
async fn no_secret_or_cookie_value_is_ever_logged() {
    let redis_password = "hunter2-redis-password";
    let up = TestUpstream::with(session_app()).await;
    let proxy = ProxyBuilder::new(&up.url())
        .set(
            "sessions.previous_secrets",
            &format!("[\"{OTHER_SECRET}\"]"),
        )
        .set(
            "redis.url",
            &format!("\"redis://user:{redis_password}@127.0.0.1:1/0\""),
        )
        .start(); // logs at debug level (see the harness)
    let login = get(proxy.addr, "/login", &[]).await;
    let cookie = login.cookie("session_id").unwrap();
    let who = get_with_cookie(proxy.addr, "/", "session_id", &cookie).await;
    assert_eq!(who.status, 200);
    let session_id = up.last().header("x-session-id").unwrap().to_owned();
    get_with_cookie(proxy.addr, "/logout", "session_id", &cookie).await;
    get_with_cookie(proxy.addr, "/", "session_id", "tampered-value-xyz").await;
    std::thread::sleep(Duration::from_millis(200));
    let logs = proxy.logs_text();
    assert!(
        logs.contains("\"status\":200"),
        "access log present:\n{logs}"
    );
    for secret in [
        SECRET,
        OTHER_SECRET,
        redis_password,
        cookie.as_str(),
        session_id.as_str(),
        "tampered-value-xyz",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret} leaked into the logs:\n{logs}"
        );
    }

    let (code, out, err) = run_cli(&proxy_yaml_with_secret(), &["check"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains(SECRET) && !err.contains(SECRET));
    assert!(out.contains("<redacted>"));
}

fn proxy_yaml_with_secret() -> String {
    format!("upstream:\n  url: http://127.0.0.1:9\nsessions:\n  secret: \"{SECRET}\"\n")
}

#[tokio::test]
async fn sighup_reloads_live_settings_and_rejects_a_bad_file() {
    let up = TestUpstream::with(session_app()).await;
    let builder = ProxyBuilder::new(&up.url()).driver("memory");
    let proxy = builder.start();
    let login = get(proxy.addr, "/login", &[]).await;
    let old_cookie = login.cookie("session_id").expect("old cookie name");

    // A live setting: the cookie name.
    let yaml = std::fs::read_to_string(&proxy.config_path).unwrap();
    let renamed = yaml.replace("driver: memory", "driver: memory\n  cookie_name: sid2");
    assert_ne!(yaml, renamed);
    std::fs::write(&proxy.config_path, &renamed).unwrap();
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("configuration reloaded", Duration::from_secs(5)));
    let login = get(proxy.addr, "/login", &[]).await;
    assert!(login.cookie("sid2").is_some(), "{:?}", login.set_cookies());
    // The memory store survived the reload: the old session is still there under the new name.
    let who = get_with_cookie(proxy.addr, "/", "sid2", &old_cookie).await;
    assert_eq!(who.status, 200);
    assert!(up.last().header("x-session-user").is_some());

    // A restart-only setting is reported, not silently ignored.
    std::fs::write(
        &proxy.config_path,
        renamed.replace("listen: 127.0.0.1:0", "listen: 127.0.0.1:1"),
    )
    .unwrap();
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("needs a restart", Duration::from_secs(5)));
    assert_eq!(get(proxy.addr, "/", &[]).await.status, 200);

    // An invalid file is rejected whole; the old config stays.
    std::fs::write(&proxy.config_path, "upstream: [nonsense\n").unwrap();
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("reload failed", Duration::from_secs(5)));
    let login = get(proxy.addr, "/login", &[]).await;
    assert!(login.cookie("sid2").is_some());
}
