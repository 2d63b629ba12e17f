//! Operations: the admin listener's /metrics and probes (/livez, /readyz, /healthz), the
//! `health` command; the access line; secrets never in the logs.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::*;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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

    let nothing = dead_addr();
    let dead = ProxyBuilder::new(&format!("http://{nothing}"))
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
    let dead = dead_addr();
    let proxy = ProxyBuilder::new(&format!("http://{dead}"))
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
    // Off loopback the admin listener needs a token; the probes answer without it.
    let builder = ProxyBuilder::new(&up.url())
        .set("admin_listen", "0.0.0.0:0")
        .set("admin_token", &"t".repeat(32));
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
    let dead = dead_addr();
    let proxy = ProxyBuilder::new(&format!("http://{dead}"))
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
    // Signal once the upstream holds the request: it is in flight then.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !up.seen().iter().any(|s| s.uri.path() == "/slow") {
        assert!(
            Instant::now() < deadline,
            "the request never reached the upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    // All four requests have written their access lines, and with them everything else.
    assert!(proxy.wait_for_access_lines(4, Duration::from_secs(5)));
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

/// The access lines (parsed) whose `field` is `value`.
fn access_lines(proxy: &TestProxy, field: &str, value: &str) -> Vec<serde_json::Value> {
    proxy
        .logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "access" && v[field] == value)
        .collect()
}

/// The one access line whose `field` is `value`: waits for it, then a little longer, so a second
/// line for the same request (written by a late drop) would be seen.
fn the_access_line(proxy: &TestProxy, field: &str, value: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    while access_lines(proxy, field, value).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let lines = access_lines(proxy, field, value);
    assert_eq!(
        lines.len(),
        1,
        "exactly one access line with {field}={value}:\n{}",
        proxy.logs_text()
    );
    lines.into_iter().next().unwrap()
}

/// The raw text of a number field in a JSON log line, as the subscriber printed it.
fn raw_number<'a>(line: &'a str, field: &str) -> &'a str {
    let key = format!("\"{field}\":");
    let at = line
        .find(&key)
        .unwrap_or_else(|| panic!("no {field} in {line}"))
        + key.len();
    let rest = &line[at..];
    &rest[..rest.find([',', '}']).unwrap()]
}

/// Issue 13 item 9: the access line names the client, host and user agent, counts the body
/// bytes sent, and gives times in milliseconds rounded to the microsecond. It is written when
/// the body has ended, exactly once, also for bodies that are never sent (HEAD, 204, 304) and
/// over HTTP/2 (where the host is the `:authority`).
#[tokio::test]
async fn access_line_fields_and_exactly_once() {
    let up = TestUpstream::with(|seen| match seen.uri.path() {
        "/empty" => Reply::ok().status(204).body(""),
        "/same" => Reply::ok().status(304).body(""),
        _ => Reply::ok(),
    })
    .await;
    let proxy = ProxyBuilder::new(&up.url()).driver("memory").start();
    // The harness learns the address from this line before it stores it.
    assert!(proxy.wait_for_log("\"listening\"", Duration::from_secs(5)));
    let started = proxy
        .logs()
        .into_iter()
        .find(|l| l.contains("\"listening\""))
        .unwrap();
    let started: serde_json::Value = serde_json::from_str(&started).unwrap();
    assert_eq!(started["driver"], "memory", "lower case, as configured");

    let res = get(
        proxy.addr,
        "/page?token=not-logged",
        &[
            ("host", "app.test"),
            ("user-agent", "ops-test/1.0 (+quotes \"ok\")"),
            ("x-request-id", "plain-1"),
        ],
    )
    .await;
    assert_eq!(res.text(), "hello from upstream");
    let line = the_access_line(&proxy, "request_id", "plain-1");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/page");
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], 19);
    assert_eq!(line["host"], "app.test");
    assert_eq!(line["user_agent"], "ops-test/1.0 (+quotes \"ok\")");
    let client = line["client"].as_str().unwrap();
    assert!(
        client.starts_with("127.0.0.1:") && client[10..].parse::<u16>().is_ok(),
        "{client}"
    );
    let text = proxy
        .logs()
        .into_iter()
        .find(|l| l.contains("\"request_id\":\"plain-1\""))
        .unwrap();
    assert!(!text.contains("not-logged"), "{text}");
    for field in ["total_ms", "upstream_ms"] {
        let ms = raw_number(&text, field);
        let decimals = ms.split_once('.').map_or(0, |(_, d)| d.len());
        assert!(decimals <= 3, "{field}={ms}: rounded to the microsecond");
        assert!(ms.parse::<f64>().unwrap() >= 0.0);
    }
    assert!(line["total_ms"].as_f64().unwrap() >= line["upstream_ms"].as_f64().unwrap());

    // HEAD, 204 and 304: no body goes out, the line is still written once, with 0 bytes.
    let head = send(
        proxy.addr,
        Request::head("/page")
            .header("host", "app.test")
            .header("x-request-id", "head-1")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(head.status, 200);
    for (path, id, status) in [
        ("/empty", "no-content-1", 204),
        ("/same", "not-modified-1", 304),
    ] {
        let res = get(proxy.addr, path, &[("x-request-id", id)]).await;
        assert_eq!(res.status, status);
    }
    for (id, method, status) in [
        ("head-1", "HEAD", 200),
        ("no-content-1", "GET", 204),
        ("not-modified-1", "GET", 304),
    ] {
        let line = the_access_line(&proxy, "request_id", id);
        assert_eq!(line["method"], method, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["bytes"], 0, "{line}");
    }

    // HTTP/2: the host comes from :authority.
    let res = send_h2(
        proxy.addr,
        Request::get("http://h2.test/over-h2")
            .header("x-request-id", "h2-1")
            .header("user-agent", "h2-client")
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200);
    let line = the_access_line(&proxy, "request_id", "h2-1");
    assert_eq!(line["host"], "h2.test");
    assert_eq!(line["user_agent"], "h2-client");
    assert_eq!(line["bytes"], 19);
    proxy.assert_no_panic();
}

/// A body of many frames is counted whole, and the line is written when it has been sent:
/// `total_ms` covers the download, not just the response head.
#[tokio::test]
async fn access_line_counts_a_streamed_body() {
    let up = StreamUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let len = 3 * 1024 * 1024 + 17;
    let (status, got) = download(
        proxy.addr,
        &format!("/download/{len}"),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!((status.as_u16(), got), (200, len));
    let line = the_access_line(&proxy, "path", &format!("/download/{len}"));
    assert_eq!(line["bytes"], len);
    assert!(line["total_ms"].as_f64().unwrap() >= line["upstream_ms"].as_f64().unwrap());
}

/// A 101 is logged once, when it is answered: not again when the tunnel closes.
#[tokio::test]
async fn an_upgrade_is_logged_once() {
    let up = RawUpstream::start(Mode::UpgradeEcho(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            .to_vec(),
    ))
    .await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut s = TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nX-Request-Id: ws-1\r\n\r\n",
    )
    .await
    .unwrap();
    let (head, _) = read_response_head(&mut s, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Bytes through the tunnel are the tunnel's (session_proxy_tunnel_bytes_total), not the 101's.
    s.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&back, b"ping");
    let line = the_access_line(&proxy, "request_id", "ws-1");
    assert_eq!(line["status"], 101);
    assert_eq!(line["bytes"], 0);
    drop(s);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(access_lines(&proxy, "request_id", "ws-1").len(), 1);
    proxy.assert_no_panic();
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// build_info, the standard process series (read from the proxy's own /proc), and the reload
/// counters: the timestamp starts at start-up, moves on a good SIGHUP and stays on a bad one.
#[tokio::test]
async fn metrics_build_process_and_reloads() {
    let up = TestUpstream::start().await;
    let before = unix_now();
    let proxy = ProxyBuilder::new(&up.url())
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let after = unix_now();
    let admin = proxy.admin_addr();
    let m = get(admin, "/metrics", &[]).await.text();

    let build = m
        .lines()
        .find(|l| l.starts_with("session_proxy_build_info{"))
        .unwrap_or_else(|| panic!("no build_info in:\n{m}"));
    let prefix = format!(
        "session_proxy_build_info{{version=\"{}\",commit=\"",
        env!("CARGO_PKG_VERSION")
    );
    assert!(build.starts_with(&prefix), "{build}");
    assert!(
        build.ends_with("\"} 1") && build.len() > prefix.len() + 4,
        "{build}"
    );

    // The process series are the proxy's, not this test's.
    let started = sample(&m, "process_start_time_seconds");
    assert!(
        started >= before - 1.0 && started <= after + 1.0,
        "{before} <= {started} <= {after}"
    );
    assert!(sample(&m, "process_cpu_seconds_total") >= 0.0);
    assert!(sample(&m, "process_resident_memory_bytes") > 1024.0 * 1024.0);
    assert!(sample(&m, "process_open_fds") >= 4.0);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", proxy.pid())).unwrap();
    let soft: f64 = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sample(&m, "process_max_fds"), soft);

    let success = "session_proxy_config_reloads_total{result=\"success\"}";
    let failure = "session_proxy_config_reloads_total{result=\"failure\"}";
    let stamp = "session_proxy_config_last_reload_success_timestamp_seconds";
    assert_eq!((sample(&m, success), sample(&m, failure)), (0.0, 0.0));
    let at_start = sample(&m, stamp);
    assert!(
        at_start >= before - 1.0 && at_start <= after + 1.0,
        "{before} <= {at_start} <= {after}"
    );

    tokio::time::sleep(Duration::from_millis(100)).await;
    let yaml = std::fs::read_to_string(&proxy.config_path).unwrap();
    let renamed = yaml.replace("driver: cookie", "driver: cookie\n  cookie_name: sid2");
    assert_ne!(yaml, renamed);
    std::fs::write(&proxy.config_path, &renamed).unwrap();
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("configuration reloaded", Duration::from_secs(5)));
    let m = get(admin, "/metrics", &[]).await.text();
    assert_eq!((sample(&m, success), sample(&m, failure)), (1.0, 0.0));
    let reloaded = sample(&m, stamp);
    assert!(reloaded > at_start && reloaded <= unix_now(), "{reloaded}");

    std::fs::write(&proxy.config_path, "upstream: [nonsense\n").unwrap();
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("reload failed", Duration::from_secs(5)));
    let m = get(admin, "/metrics", &[]).await.text();
    assert_eq!((sample(&m, success), sample(&m, failure)), (1.0, 1.0));
    assert_eq!(
        sample(&m, stamp),
        reloaded,
        "a failed reload leaves the timestamp"
    );
}
