//! Operations: the admin listener's /metrics and probes (/livez, /readyz, /healthz), the
//! `health` command; secrets never in the logs.
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
    for path in ["/livez", "/healthz", "/readyz"] {
        assert_eq!(get(admin, path, &[]).await.status, 200, "{path}");
    }
    assert_eq!(get(admin, "/nope", &[]).await.status, 404);
    // On the public port these paths are just the app's.
    for path in ["/metrics", "/livez", "/readyz"] {
        let res = get(proxy.addr, path, &[]).await;
        assert_eq!(res.text(), "hello from upstream");
        assert_eq!(up.last().uri.path(), path);
    }
}

/// Issue 13 item 5: a liveness probe must not follow the app. With the upstream down, /livez (and
/// its alias /healthz) stay 200, so Kubernetes does not restart the proxy; /readyz is 503 naming
/// the cause, so the proxy leaves the load balancer instead.
#[tokio::test]
async fn liveness_ignores_a_dead_upstream_readiness_names_it() {
    let proxy = ProxyBuilder::new(&format!("http://{}", dead_addr()))
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();
    for path in ["/livez", "/healthz"] {
        let res = get(admin, path, &[]).await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(res.text(), "ok\n", "{path}");
    }
    let res = get(admin, "/readyz", &[]).await;
    assert_eq!(res.status, 503);
    assert!(
        res.text().starts_with("not ready: upstream: "),
        "{}",
        res.text()
    );
}

#[tokio::test]
async fn readiness_follows_redis_liveness_does_not() {
    let mut redis = RedisServer::start();
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &format!("\"{}\"", redis.url()))
        .set("redis.timeout", "300ms")
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();
    assert_eq!(get(admin, "/readyz", &[]).await.status, 200);
    redis.stop();
    let res = get(admin, "/readyz", &[]).await;
    assert_eq!(res.status, 503);
    assert!(
        res.text().starts_with("not ready: session store"),
        "{}",
        res.text()
    );
    assert_eq!(get(admin, "/livez", &[]).await.status, 200);
    assert_eq!(get(admin, "/healthz", &[]).await.status, 200);
    redis.restart();
    let mut ready = false;
    for _ in 0..50 {
        if get(admin, "/readyz", &[]).await.status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "/readyz came back once Redis returned");
}

/// Runs `session-proxy --config <yaml> ARGS` off the async runtime (the test's upstream lives on
/// it and must keep answering while the command waits).
async fn cli(yaml: &str, args: &[&str]) -> (i32, String, String) {
    let (yaml, args) = (
        yaml.to_owned(),
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_cli(&yaml, &args, &[])
    })
    .await
    .unwrap()
}

/// `session-proxy health` with no --url asks the loaded config's admin_listen; a wildcard bind
/// (the container's 0.0.0.0) is reached over loopback.
#[tokio::test]
async fn health_command_asks_the_configured_admin_listener() {
    let up = TestUpstream::start().await;
    // Port 0 and read back: a port picked free and released can be taken before the proxy binds.
    let builder = ProxyBuilder::new(&up.url()).set("admin_listen", "0.0.0.0:0");
    let template = builder.yaml();
    let proxy = builder.start();
    let port = proxy.admin_addr().port();
    let yaml = template.replace(
        "admin_listen: 0.0.0.0:0",
        &format!("admin_listen: 0.0.0.0:{port}"),
    );
    assert_ne!(yaml, template);
    let (code, out, err) = cli(&yaml, &["health"]).await;
    assert_eq!((code, out.as_str()), (0, "200 ready\n"), "{err}");

    // The same through the environment override, as a container sets it.
    let no_admin = yaml.replace(&format!("admin_listen: 0.0.0.0:{port}\n"), "");
    assert_ne!(no_admin, yaml);
    let addr = format!("127.0.0.1:{port}");
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run_cli(
            &no_admin,
            &["health"],
            &[("SESSION_PROXY_ADMIN_LISTEN", addr.as_str())],
        )
    })
    .await
    .unwrap();
    assert_eq!((code, out.as_str()), (0, "200 ready\n"), "{err}");
}

/// Exit 1, with the reason, for every way of not being ready; exit 0 only on 200.
#[tokio::test]
async fn health_command_exits_1_unless_ready() {
    let proxy = ProxyBuilder::new(&format!("http://{}", dead_addr()))
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();
    let no_config = "{}\n"; // --url needs no config, not even a secret

    let (code, out, err) = cli(no_config, &["health", "--url", &format!("http://{admin}")]).await;
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("503 not ready: upstream: "), "{out}");

    // A URL with a path is asked as it is: liveness holds while the upstream is down.
    let (code, out, err) = cli(
        no_config,
        &["health", "--url", &format!("http://{admin}/livez")],
    )
    .await;
    assert_eq!((code, out.as_str()), (0, "200 ok\n"), "{err}");

    let nobody = dead_addr();
    let (code, _, err) = cli(no_config, &["health", "--url", &format!("http://{nobody}")]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("cannot connect to {nobody}")),
        "{err}"
    );

    let (code, _, err) = cli(no_config, &["health", "--url", "https://127.0.0.1:1"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("plain HTTP"), "{err}");

    // Without --url and without admin_listen there is nothing to ask: say so, exit 1.
    let yaml = format!("upstream:\n  url: http://127.0.0.1:9\nsessions:\n  secret: \"{SECRET}\"\n");
    let (code, _, err) = cli(&yaml, &["health"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("has no admin_listen"), "{err}");
}

/// An admin listener that accepts and never answers: `health` gives up after --timeout.
#[tokio::test]
async fn health_command_times_out() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let started = std::time::Instant::now();
    let (code, _, err) = cli("{}\n", &["health", "--url", &url, "--timeout", "300ms"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no answer within 300ms"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// SIGTERM: while in-flight requests drain, the instance is no longer ready (`health` exits 1),
/// and the in-flight request still completes.
#[tokio::test]
async fn readiness_is_withdrawn_while_draining() {
    let up = TestUpstream::with(|seen| match seen.uri.path() {
        "/slow" => Reply::ok().delay(Duration::from_secs(3)),
        _ => Reply::ok(),
    })
    .await;
    let mut proxy = ProxyBuilder::new(&up.url())
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = format!("http://{}", proxy.admin_addr());
    let (code, _, err) = cli("{}\n", &["health", "--url", &admin]).await;
    assert_eq!(code, 0, "{err}");

    let addr = proxy.addr;
    let slow = tokio::spawn(async move { get(addr, "/slow", &[]).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    proxy.signal("TERM");
    assert!(proxy.wait_for_log("shutting down", Duration::from_secs(5)));
    let (code, out, err) = cli("{}\n", &["health", "--url", &admin]).await;
    assert_eq!(code, 1, "ready while draining: {out}{err}");
    assert!(proxy.wait_exit(Duration::ZERO).is_none(), "still draining");
    assert_eq!(slow.await.unwrap().status, 200);
    assert_eq!(proxy.wait_exit(Duration::from_secs(10)), Some(0));
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
