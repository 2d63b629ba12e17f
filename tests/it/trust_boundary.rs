//! The trust boundary, forwarding side (issue 11): nothing reaches the app, or the client, around
//! the session layer. Each test is an attack that worked before the fix: an h2c upgrade that turns
//! the connection into a raw pipe, a path that climbs out of the upstream prefix, forwarding
//! headers the app believes, trailers, a Host with userinfo, an open redirect, a second instance on
//! the same port, a store failure after a POST invites a retry.

use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::*;

const H2C_101: &[u8] =
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";

/// curl --http2 and every h2c client send this: with an h2c-capable app the proxy used to splice
/// the connection, and every later request reached the app raw, spoofed session headers included.
#[tokio::test]
async fn h2c_upgrade_is_never_tunnelled() {
    let up = RawUpstream::start(Mode::UpgradeEcho(H2C_101.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade, HTTP2-Settings\r\n\
Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
        )
        .await
        .unwrap();
    let (head, _) = read_response_head(&mut stream, Duration::from_secs(10)).await;
    assert!(head.starts_with("HTTP/1.1 502"), "{head}");
    // The one request the upstream got was an ordinary one: no upgrade, no h2 settings.
    let req = &up.requests()[0];
    assert!(req.header("upgrade").is_none(), "{}", req.head);
    assert!(req.header("http2-settings").is_none(), "{}", req.head);
    assert!(
        !req.headers("connection")
            .iter()
            .any(|c| c.to_ascii_lowercase().contains("upgrade")),
        "{}",
        req.head
    );
    // Whatever the client sends next never reaches the app raw.
    let _ = stream
        .write_all(b"GET /next HTTP/1.1\r\nHost: app.test\r\nX-Session-User-Id: 1\r\n\r\n")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = String::from_utf8_lossy(&up.bytes()).to_ascii_lowercase();
    assert!(!seen.contains("x-session-user-id"), "{seen}");
    assert!(proxy.wait_for_log("101 Switching Protocols", Duration::from_secs(5)));
}

/// Upgrades outside `upstream.upgrades` are dropped from the request; listed ones pass (tokens
/// are case-insensitive), and a 101 to an HTTP/2 request is a 502, never `:status 101`.
#[tokio::test]
async fn only_listed_upgrades_are_forwarded() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    for (upgrade, forwarded) in [
        ("h2c", false),
        ("WebSocket", true),
        ("websocket, h2c", false),
        ("TLS/1.2", false),
    ] {
        let res = get(
            proxy.addr,
            "/",
            &[("connection", "upgrade"), ("upgrade", upgrade)],
        )
        .await;
        assert_eq!(res.status, 200, "{upgrade}");
        let seen = up.last();
        assert_eq!(seen.header("upgrade").is_some(), forwarded, "{upgrade}");
    }

    let raw = RawUpstream::start(Mode::UpgradeEcho(H2C_101.to_vec())).await;
    let proxy = ProxyBuilder::new(&raw.url()).start();
    let req = Request::get(format!("http://{}/", proxy.addr))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = send_h2(proxy.addr, req).await;
    assert_eq!(res.status, 502);
}

/// `upstream.url` with a path prefix: dot-segments, plain or percent-encoded, cannot climb out of
/// it; `%2f` is never decoded; `OPTIONS *` goes to the upstream as `*`.
#[tokio::test]
async fn paths_stay_inside_the_upstream_prefix() {
    let up = RawUpstream::start(Mode::Answer(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
    ))
    .await;
    let proxy = ProxyBuilder::new(&format!("{}/app1/", up.url())).start();
    let cases = [
        ("GET /../admin/secret", "400", None),
        ("GET /%2e%2e/admin/secret", "400", None),
        ("GET /%2E./admin", "400", None),
        ("GET /a/../../admin", "400", None),
        (
            "GET /a/../b?x=../y",
            "200",
            Some("GET /app1/b?x=../y HTTP/1.1"),
        ),
        ("GET /a/%2e/b", "200", Some("GET /app1/a/b HTTP/1.1")),
        (
            "GET /a%2f..%2fb",
            "200",
            Some("GET /app1/a%2f..%2fb HTTP/1.1"),
        ),
        ("OPTIONS *", "200", Some("OPTIONS * HTTP/1.1")),
        ("GET *", "400", None),
    ];
    for (line, status, upstream_line) in cases {
        let before = up.requests().len();
        let (out, _) = raw_until_close(
            proxy.addr,
            format!("{line} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n").as_bytes(),
            Duration::from_secs(10),
        )
        .await;
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status}")),
            "{line}: {out}"
        );
        let reqs = up.requests();
        match upstream_line {
            Some(want) => assert_eq!(reqs.last().unwrap().request_line(), want, "{line}"),
            None => assert_eq!(reqs.len(), before, "{line} reached the upstream"),
        }
    }
}

/// The whole forwarding family, in every spelling, is replaced when the client is not a trusted
/// proxy; a trusted one has its chain kept and extended.
#[tokio::test]
async fn forwarding_headers_come_from_the_proxy_unless_the_peer_is_trusted() {
    let family = [
        ("forwarded", "for=6.6.6.6;proto=https;host=evil.test"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.test"),
        ("x-real-ip", "6.6.6.6"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-ssl", "on"),
        ("x-forwarded-scheme", "https"),
        ("x-forwarded-prefix", "/admin"),
        ("x-forwarded-server", "evil"),
        ("x-original-url", "/admin"),
        ("x-rewrite-url", "/admin"),
        ("x-original-host", "evil.test"),
        ("front-end-https", "on"),
        ("x-url-scheme", "https"),
        ("x-client-ip", "6.6.6.6"),
        ("true-client-ip", "6.6.6.6"),
        ("x_forwarded_for", "6.6.6.6"),
        ("x_real_ip", "6.6.6.6"),
    ];
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let res = get(proxy.addr, "/", &family).await;
    assert_eq!(res.status, 200);
    let seen = up.last();
    for (name, spoofed) in family {
        assert!(
            seen.headers.get_all(name).iter().all(|v| v != spoofed),
            "{name}: {:?}",
            seen.headers
        );
    }
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    let host = proxy.addr.to_string();
    assert_eq!(seen.header("x-forwarded-host"), Some(host.as_str()));
    assert_eq!(
        seen.header("forwarded"),
        Some(format!("for=127.0.0.1;proto=http;host=\"{host}\"").as_str())
    );

    let trusting = ProxyBuilder::new(&up.url())
        .set("trusted_proxies", "[127.0.0.0/8, '::1']")
        .start();
    let res = get(
        trusting.addr,
        "/",
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "www.example"),
            ("forwarded", "for=203.0.113.9;proto=https"),
            ("x-original-url", "/admin"),
        ],
    )
    .await;
    assert_eq!(res.status, 200);
    let seen = up.last();
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1")
    );
    assert_eq!(seen.header("x-real-ip"), Some("203.0.113.9"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), Some("www.example"));
    assert!(seen
        .header("forwarded")
        .unwrap()
        .starts_with("for=203.0.113.9;proto=https, for=127.0.0.1;proto=http"));
    assert!(seen.header("x-original-url").is_none());
}

/// The app's trailers pass the same filter as its head: over HTTP/2 a trailer section could carry
/// `X-Session-*` and a `Set-Cookie` for our cookie to the client.
#[tokio::test]
async fn response_trailers_are_filtered() {
    let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Session-Id\r\n\r\n\
5\r\nhello\r\n0\r\nX-Session-Id: leaked\r\nX-Session-Set: role=admin\r\n\
Set-Cookie: session_id=planted\r\nGrpc-Status: 0\r\n\r\n";
    let up = RawUpstream::start(Mode::Answer(answer.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut sender = h2_sender(proxy.addr).await;
    let req = Request::get(format!("http://{}/", proxy.addr))
        .header("te", "trailers")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let collected = res.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().unwrap_or_default();
    assert_eq!(collected.to_bytes(), "hello");
    assert!(trailers.get("x-session-id").is_none(), "{trailers:?}");
    assert!(trailers.get("x-session-set").is_none(), "{trailers:?}");
    assert!(trailers.get("set-cookie").is_none(), "{trailers:?}");
    assert_eq!(
        trailers.get("grpc-status").map(|v| v.to_str().unwrap()),
        Some("0"),
        "harmless trailers still pass: {trailers:?}"
    );
}

/// A 200 response whose head has `Content-Length` and `n` more lines, `X-Many-0` to `X-Many-{n-1}`.
fn many_header_lines(n: usize) -> Vec<u8> {
    let mut h = String::from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
    for i in 0..n {
        h.push_str(&format!("X-Many-{i}: v\r\n"));
    }
    h.push_str("\r\nok");
    h.into_bytes()
}

/// A response head with more header lines than hyper's default (100) is relayed, up to the
/// documented `upstream.max_response_headers`; beyond it the 502's log line names the setting.
#[tokio::test]
async fn upstream_header_count_is_a_setting() {
    let up = RawUpstream::start(Mode::Answer(many_header_lines(150))).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    // Raw: hyper's own client stops at 100 header lines too.
    let (out, _) = raw_until_close(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    assert!(out.to_ascii_lowercase().contains("x-many-149: v"), "{out}");

    let up = RawUpstream::start(Mode::Answer(many_header_lines(300))).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let res = get(proxy.addr, "/", &[]).await;
    assert_eq!(res.status, 502);
    assert!(proxy.wait_for_log(
        "upstream.max_response_headers (256)",
        Duration::from_secs(5)
    ));
}

/// `upstream.max_response_headers: 100` is hyper's own limit, which the client then uses without
/// setting it (a cheaper parse): exactly 100 header lines pass, 101 are a 502.
#[tokio::test]
async fn a_limit_of_100_header_lines_is_exact() {
    for (lines, status) in [(100, 200), (101, 502)] {
        // `Content-Length` is one of the lines.
        let up = RawUpstream::start(Mode::Answer(many_header_lines(lines - 1))).await;
        let proxy = ProxyBuilder::new(&up.url())
            .set("upstream.max_response_headers", "100")
            .start();
        // Raw: the test's own hyper client stops at 100 header lines.
        let (out, _) = raw_until_close(
            proxy.addr,
            b"GET / HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
            Duration::from_secs(10),
        )
        .await;
        assert!(
            out.starts_with(&format!("HTTP/1.1 {status}")),
            "{lines} header lines: {out}"
        );
    }
}

/// `Host` must be `host[:port]`: userinfo, paths, spaces or an empty value are a 400, and nothing
/// reaches the app (which would otherwise see `good.example@evil.example` as its host).
#[tokio::test]
async fn host_must_be_a_plain_authority() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    for host in [
        "good.example@evil.example",
        "good.example/evil",
        "good.example:80:80",
        "good example",
        "",
        "good.example:99999",
    ] {
        let (out, _) = raw_until_close(
            proxy.addr,
            format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
            Duration::from_secs(10),
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 400"), "{host:?}: {out}");
    }
    let (out, _) = raw_until_close(
        proxy.addr,
        b"GET http://u@good.example/ HTTP/1.1\r\nHost: u@good.example\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert!(up.seen().is_empty());
}

/// Config errors that used to pass `check` and then fail (or panic) in `serve`: each names its
/// field and exits 1.
#[test]
fn check_refuses_what_serve_cannot_run() {
    let base = |extra: &str| {
        format!(
            "upstream:\n  url: http://127.0.0.1:3000\nsessions:\n  secret: \"{SECRET}\"\n{extra}"
        )
    };
    let cases = [
        ("  path: \"/a\\u0001b\"\n", "sessions.path"),
        ("  path: \"/a b\"\n", "sessions.path"),
        ("  domain: \"a;b\"\n", "sessions.domain"),
        ("  cookie_name: \"sid\\t\"\n", "sessions.cookie_name"),
        (
            "  driver: memory\n  cleanup_interval: 0s\n",
            "sessions.cleanup_interval",
        ),
        (
            "limits:\n  header_read_timeout: 0s\n",
            "limits.header_read_timeout",
        ),
        (
            "limits:\n  tls_handshake_timeout: 0s\n",
            "limits.tls_handshake_timeout",
        ),
        (
            "  driver: redis\nredis:\n  url: redis://127.0.0.1:notaport/0\n",
            "redis.url",
        ),
        (
            "  driver: redis\nredis:\n  url: \"redis://\"\n",
            "redis.url",
        ),
        ("trusted_proxies: [\"10.0.0.0/33\"]\n", "trusted_proxies"),
    ];
    for (extra, field) in cases {
        let (code, _, err) = run_cli(&base(extra), &["check"], &[]);
        assert_eq!(code, 1, "{extra}: {err}");
        assert!(err.contains(field), "{extra}: {err}");
    }
    let upstream_zero =
        "upstream:\n  url: http://127.0.0.1:3000\n  timeout: 0s\nsessions:\n  secret: \"s\"\n";
    let (code, _, err) = run_cli(
        &upstream_zero.replace("\"s\"", &format!("\"{SECRET}\"")),
        &["check"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("upstream.timeout"), "{err}");
    let h2c = format!("upstream:\n  url: http://127.0.0.1:3000\n  upgrades: [websocket, h2c]\nsessions:\n  secret: \"{SECRET}\"\n");
    let (code, _, err) = run_cli(&h2c, &["check"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("upstream.upgrades[1]"), "{err}");
}

/// A second instance on the same address used to start silently (SO_REUSEPORT on every worker
/// socket) and take half the traffic. Now it exits 1 naming the setting, as nginx does.
#[tokio::test]
async fn a_second_instance_on_the_same_port_is_refused() {
    let up = TestUpstream::start().await;
    let first = ProxyBuilder::new(&up.url())
        .set("limits.workers", "2")
        .start();
    let yaml = format!(
        "listen: {}\nupstream:\n  url: {}\nsessions:\n  secret: \"{SECRET}\"\nlimits:\n  workers: 2\n",
        first.addr,
        up.url()
    );
    // Before the fix the second instance ran (and served) forever: bound the wait.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("proxy.yaml");
    std::fs::write(&config, yaml).unwrap();
    let mut child = std::process::Command::new(binary())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .env_remove("SESSION_PROXY_CONFIG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    let code = status.and_then(|s| s.code()).unwrap_or(-1);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("(listen)") && err.to_ascii_lowercase().contains("address already in use"),
        "{err}"
    );
    let res = get(first.addr, "/", &[]).await;
    assert_eq!(res.status, 200);
}

/// When the store fails after the upstream has processed a POST, the 503 must not invite a retry
/// (no `Retry-After`), and the log says the upstream already answered. A GET keeps `Retry-After`.
#[tokio::test]
async fn store_failure_after_a_post_does_not_invite_a_retry() {
    let mut redis = RedisServer::start();
    let up = TestUpstream::with(|seen| {
        let r = Reply::ok().header("x-session-set", "n=1");
        if seen.uri.path() == "/slow" {
            r.delay(Duration::from_millis(1500))
        } else {
            r
        }
    })
    .await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &redis.url())
        .set("redis.timeout", "300ms")
        .start();
    let login = get(proxy.addr, "/login", &[]).await;
    let cookie = login.cookie("session_id").expect("a session");
    let addr = proxy.addr;
    let post = tokio::spawn(async move {
        let req = Request::post("/slow")
            .header("host", addr.to_string())
            .header("cookie", format!("session_id={cookie}"))
            .body(Full::new(Bytes::from_static(b"pay=100")))
            .unwrap();
        send(addr, req).await
    });
    // Redis goes once the upstream holds the POST (the session was loaded before it was sent).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !up.seen().iter().any(|s| s.uri.path() == "/slow") {
        assert!(
            std::time::Instant::now() < deadline,
            "the POST never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.stop();
    let res = post.await.unwrap();
    assert_eq!(res.status, 503, "{}", res.text());
    assert!(res.header("retry-after").is_none(), "{:?}", res.headers);
    assert!(proxy.wait_for_log("upstream already answered", Duration::from_secs(5)));
    assert_eq!(
        up.seen().iter().filter(|s| s.uri.path() == "/slow").count(),
        1
    );
}

/// The redirect listener applies the public listener's target checks (no open redirect to a
/// foreign authority, no doubled Host, no CONNECT) and `tls.redirect_host` pins `Location`.
#[tokio::test]
async fn redirect_listener_refuses_foreign_authorities() {
    let dir = tempfile::tempdir().unwrap();
    let ca = crate::support::tls::TestCa::new("trust-boundary CA");
    let (cert, key, _) = ca.write_leaf(dir.path(), "localhost");
    let up = TestUpstream::start().await;
    let start = |pinned: Option<&str>| {
        let mut b = ProxyBuilder::new(&up.url())
            .set("tls.cert", cert.to_str().unwrap())
            .set("tls.key", key.to_str().unwrap())
            .set("tls.redirect_http", "127.0.0.1:0");
        if let Some(host) = pinned {
            b = b.set("tls.redirect_host", host);
        }
        b.start()
    };
    let proxy = start(None);
    let redirect = proxy.logged_addr("redirecting plain HTTP to HTTPS");
    for request in [
        "GET http://evil.example/x HTTP/1.1\r\nHost: good.example\r\n",
        "GET / HTTP/1.1\r\nHost: good.example\r\nHost: evil.example\r\n",
        "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n",
        "GET / HTTP/1.1\r\nHost: good.example@evil.example\r\n",
    ] {
        let (out, _) = raw_until_close(
            redirect,
            format!("{request}Connection: close\r\n\r\n").as_bytes(),
            Duration::from_secs(10),
        )
        .await;
        assert!(out.starts_with("HTTP/1.1 400"), "{request}: {out}");
        assert!(!out.to_ascii_lowercase().contains("location:"), "{out}");
    }
    let (out, _) = raw_until_close(
        redirect,
        b"GET /p?q=1 HTTP/1.1\r\nHost: good.example:8080\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 308"), "{out}");
    let location = format!("location: https://good.example:{}/p?q=1", proxy.addr.port());
    assert!(out.to_ascii_lowercase().contains(&location), "{out}");

    let pinned = start(Some("www.example.com"));
    let redirect = pinned.logged_addr("redirecting plain HTTP to HTTPS");
    let (out, _) = raw_until_close(
        redirect,
        b"GET /p HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )
    .await;
    assert!(
        out.to_ascii_lowercase()
            .contains("location: https://www.example.com/p"),
        "{out}"
    );
}
