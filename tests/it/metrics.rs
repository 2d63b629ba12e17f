//! Every documented series, scraped from a real proxy's `/metrics` after traffic that should move
//! it: the list below is checked against `docs/operations.md` one way and against the scrape the
//! other, so a series added, dropped or left unrecorded fails here.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The documented series, as scraped: counters with `_total`, histograms by their `_count`.
const MOVED: &[&str] = &[
    "session_proxy_requests_total",
    "session_proxy_request_duration_seconds_count",
    "session_proxy_upstream_duration_seconds_count",
    "session_proxy_upstream_errors_total",
    "session_proxy_sessions_created_total",
    "session_proxy_sessions_destroyed_total",
    "session_proxy_sessions_regenerated_total",
    "session_proxy_store_operations_total",
    "session_proxy_store_errors_total",
    "session_proxy_store_duration_seconds_count",
    "session_proxy_cookie_rejections_total",
    "session_proxy_active_connections",
    "session_proxy_tunnels_open",
    "session_proxy_tunnel_bytes_total",
    "session_proxy_build_info",
    "session_proxy_config_reloads_total",
    "session_proxy_config_last_reload_success_timestamp_seconds",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
];

/// Documented series that only a TLS listener moves, which the plain-HTTP traffic of the main
/// check has not: `tls_handshakes_are_counted` moves them.
const TLS_ONLY: &[&str] = &[
    "session_proxy_tls_handshakes_total",
    "session_proxy_tls_handshake_failures_total",
];

/// Documented series that only `X-Session-Clear: others | everywhere` or the admin API move:
/// `owners::revocations_are_counted` moves it.
const OWNERS_ONLY: &[&str] = &["session_proxy_sessions_revoked_total"];

/// Label values the docs promise, each of which must be exposed (resolved at start-up).
const LABELS: &[(&str, &str, &[&str])] = &[
    (
        "session_proxy_requests_total",
        "status",
        &["1xx", "2xx", "3xx", "4xx", "5xx"],
    ),
    (
        "session_proxy_upstream_errors_total",
        "kind",
        &["connect", "connect_timeout", "timeout", "reset", "protocol"],
    ),
    (
        "session_proxy_cookie_rejections_total",
        "reason",
        &["tampered", "expired", "unknown", "too_large"],
    ),
    (
        "session_proxy_store_operations_total",
        "op",
        &[
            "load",
            "create",
            "update",
            "regenerate",
            "destroy",
            "cleanup",
            "ping",
        ],
    ),
    (
        "session_proxy_tunnel_bytes_total",
        "direction",
        &["client_to_upstream", "upstream_to_client"],
    ),
    (
        "session_proxy_config_reloads_total",
        "result",
        &["success", "failure"],
    ),
];

/// One scrape, as (series name, labels text, value) per sample line.
struct Scrape(Vec<(String, String, f64)>);

impl Scrape {
    async fn of(admin: SocketAddr) -> Scrape {
        let text = get(admin, "/metrics", &[]).await.text();
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                let (name, labels) = series.split_once('{').unwrap_or((series, ""));
                (name.to_owned(), labels.to_owned(), value.parse().unwrap())
            })
            .collect();
        Scrape(samples)
    }

    /// The sum over every label set of `name`; `None` when the series is not exposed at all.
    fn total(&self, name: &str) -> Option<f64> {
        let mut values = self.0.iter().filter(|(n, ..)| n == name).peekable();
        values.peek()?;
        Some(values.map(|(.., v)| v).sum())
    }

    /// The value of `name` with exactly these labels (`op="ping"`, a substring of the label text).
    fn with(&self, name: &str, label: &str) -> f64 {
        self.0
            .iter()
            .filter(|(n, l, _)| n == name && l.contains(label))
            .map(|(.., v)| v)
            .sum()
    }

    fn names(&self) -> BTreeSet<&str> {
        self.0.iter().map(|(n, ..)| n.as_str()).collect()
    }
}

fn app() -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    |seen| match seen.uri.path() {
        "/login" => Reply::ok().header("X-Session-Set", "user=Ann"),
        "/regen" => Reply::ok().header("X-Session-Regenerate", "1"),
        "/logout" => Reply::ok().header("X-Session-Clear", "1"),
        "/slow" => Reply::ok().delay(Duration::from_secs(2)),
        _ => Reply::ok(),
    }
}

/// Sessions, upstream failures, the ping, reloads, and an open connection, on the memory store.
async fn memory_proxy_traffic() -> Scrape {
    let up = TestUpstream::with(app()).await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("memory")
        .set("upstream.timeout", "300ms")
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();
    let cookie = get(proxy.addr, "/login", &[])
        .await
        .cookie("session_id")
        .unwrap();
    let regen = get_with_cookie(proxy.addr, "/regen", "session_id", &cookie).await;
    let cookie = regen.cookie("session_id").unwrap();
    get_with_cookie(proxy.addr, "/", "session_id", "forged-cookie").await;
    get_with_cookie(proxy.addr, "/logout", "session_id", &cookie).await;
    assert_eq!(get(proxy.addr, "/slow", &[]).await.status, 504);
    assert_eq!(get(admin, "/readyz", &[]).await.status, 200);

    let before = Scrape::of(admin).await;
    let stamp = "session_proxy_config_last_reload_success_timestamp_seconds";
    tokio::time::sleep(Duration::from_millis(50)).await;
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("configuration reloaded", Duration::from_secs(5)));
    std::fs::write(&proxy.config_path, "upstream: [nonsense\n").unwrap();
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("reload failed", Duration::from_secs(5)));

    // A connection that has been served and stays open while we scrape.
    let mut open = TcpStream::connect(proxy.addr).await.unwrap();
    open.write_all(b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_response_head(&mut open, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let m = Scrape::of(admin).await;
    assert!(
        m.total(stamp) > before.total(stamp),
        "a reload moves {stamp}"
    );
    assert!(m.with("session_proxy_store_operations_total", "op=\"ping\"") >= 1.0);
    assert!(m.with("session_proxy_upstream_errors_total", "kind=\"timeout\"") >= 1.0);
    proxy.assert_no_panic();
    m
}

/// An unreachable Redis and a dead upstream: 503 on a session, 502 without one, failed pings.
async fn broken_proxy_traffic() -> Scrape {
    let proxy = ProxyBuilder::new(&format!("http://{}", dead_addr()))
        .driver("redis")
        .set("redis.url", &format!("\"redis://{}\"", dead_addr()))
        .set("redis.timeout", "300ms")
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();
    let well_formed = "A".repeat(43);
    let res = get_with_cookie(proxy.addr, "/", "session_id", &well_formed).await;
    assert_eq!(res.status, 503, "{}", res.text());
    assert_eq!(get(proxy.addr, "/", &[]).await.status, 502);
    assert_eq!(get(admin, "/readyz", &[]).await.status, 503);
    let m = Scrape::of(admin).await;
    let errors = "session_proxy_store_errors_total";
    assert!(m.with(errors, "op=\"load\"") >= 1.0);
    assert!(
        m.with(errors, "op=\"ping\"") >= 1.0,
        "the readiness ping is counted"
    );
    assert!(m.with("session_proxy_upstream_errors_total", "kind=\"connect\"") >= 1.0);
    proxy.assert_no_panic();
    m
}

/// A WebSocket tunnel: open while scraped, then its bytes once it has relayed some.
async fn tunnel_traffic() -> (Scrape, Scrape) {
    let up = RawUpstream::start(Mode::UpgradeEcho(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
            .to_vec(),
    ))
    .await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();
    let mut s = open_ws(proxy.addr).await;
    s.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    let open = Scrape::of(admin).await;
    drop(s);
    // Relayed bytes may be added as they pass or when the tunnel ends: wait for both directions.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = Scrape::of(admin).await;
        let bytes = "session_proxy_tunnel_bytes_total";
        let moved = |d: &str| m.with(bytes, &format!("direction=\"{d}\"")) >= 4.0;
        if moved("client_to_upstream") && moved("upstream_to_client") {
            return (open, m);
        }
        assert!(Instant::now() < deadline, "tunnel bytes never counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_documented_series_moves() {
    let memory = memory_proxy_traffic().await;
    let broken = broken_proxy_traffic().await;
    let (tunnel_open, tunnel_done) = tunnel_traffic().await;
    let scrapes = [&memory, &broken, &tunnel_open, &tunnel_done];

    for name in MOVED.iter().chain(TLS_ONLY) {
        for (i, m) in scrapes.iter().enumerate() {
            assert!(m.total(name).is_some(), "{name} missing from scrape {i}");
        }
    }
    for name in MOVED {
        if *name == "process_cpu_seconds_total" {
            // Counted in 10 ms clock ticks: a quick proxy may honestly read 0 (`tests/ops.rs`
            // checks it against /proc).
            continue;
        }
        let moved = scrapes.iter().any(|m| m.total(name).unwrap_or(0.0) > 0.0);
        assert!(moved, "{name} never moved");
    }
    for (name, label, values) in LABELS {
        for value in *values {
            let exposed = memory
                .0
                .iter()
                .any(|(n, l, _)| n == name && l.contains(&format!("{label}=\"{value}\"")));
            assert!(exposed, "{name}{{{label}=\"{value}\"}} not exposed");
        }
    }
    // Nothing exposed that the list (and so the docs) does not know.
    for m in scrapes {
        for name in m.names() {
            let known = |n: &str| {
                name == n
                    || n.strip_suffix("_count").is_some_and(|family| {
                        name == format!("{family}_sum") || name == format!("{family}_bucket")
                    })
            };
            assert!(
                MOVED
                    .iter()
                    .chain(TLS_ONLY)
                    .chain(OWNERS_ONLY)
                    .any(|n| known(n)),
                "{name} is exposed but not in the documented list"
            );
        }
    }
}

/// The documentation lists exactly the series this file checks.
#[test]
fn the_list_is_the_documented_one() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    for name in MOVED.iter().chain(TLS_ONLY) {
        let bare = name.strip_prefix("session_proxy_").unwrap_or(name);
        let bare = bare.strip_suffix("_count").unwrap_or(bare);
        assert!(
            docs.contains(&format!("`{bare}")) || docs.contains(&format!("`session_proxy_{bare}")),
            "{name} is not in docs/operations.md"
        );
    }
    // The label values the docs spell out.
    for (name, _, values) in LABELS {
        if name.contains("upstream_errors") || name.contains("cookie_rejections") {
            for value in *values {
                assert!(
                    docs.contains(value),
                    "{name}: {value} is not in docs/operations.md"
                );
            }
        }
    }
}

/// A completed handshake and a failed one (plain HTTP on the TLS port) are both counted.
#[tokio::test]
async fn tls_handshakes_are_counted() {
    let ca = crate::support::tls::TestCa::new("metrics test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = ca.write_leaf(dir.path(), "localhost");
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .set("tls.cert", &format!("\"{}\"", cert.display()))
        .set("tls.key", &format!("\"{}\"", key.display()))
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let req = http::Request::get("https://localhost/")
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let ok = crate::support::tls::https_request(proxy.addr, &ca.pem(), false, req).await;
    assert_eq!(ok.answer.status, 200);
    // Plain HTTP on the TLS port: a failed handshake.
    raw(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        Duration::from_millis(300),
    )
    .await;
    let m = Scrape::of(proxy.admin_addr()).await;
    for name in TLS_ONLY {
        assert!(m.total(name).unwrap_or(0.0) >= 1.0, "{name} did not move");
    }
}

/// The serve-side sweep goes through the session layer's timed path: its runs are store
/// operations with `op="cleanup"`.
#[tokio::test]
async fn sweeper_cleanup_is_counted() {
    let up = TestUpstream::start().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("memory")
        .set("sessions.cleanup_interval", "100ms")
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let admin = proxy.admin_addr();
    let deadline = Instant::now() + Duration::from_secs(5);
    let op = "op=\"cleanup\"";
    while Scrape::of(admin)
        .await
        .with("session_proxy_store_operations_total", op)
        < 1.0
    {
        assert!(Instant::now() < deadline, "no cleanup counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
