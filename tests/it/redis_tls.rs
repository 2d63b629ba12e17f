//! The Redis store over TLS (`rediss://`) through the real proxy binary, against real
//! `redis-server --tls-port` processes whose certificates come from a CA made in the test:
//! `redis.ca` trusted or not, `--tls-auth-clients yes` with and without `redis.client_cert`, a
//! TLS-only Cluster, and `check` refusing bad files by field name.
//!
//! Each test first asks whether this `redis-server` was built with TLS, and says so and passes
//! vacuously when it was not (Debian's is built with it).

use std::time::Duration;

use crate::support::tls::TestCa;
use crate::support::*;

const COOKIE: &str = "session_id";

/// The CA, the files issued from it, and the directory holding them.
struct Pki {
    files: RedisTlsFiles,
    _dir: tempfile::TempDir,
}

/// `None` (after saying why) when `redis-server` cannot do TLS here.
fn pki() -> Option<Pki> {
    let dir = tempfile::tempdir().unwrap();
    let files = RedisTlsFiles::issue(&TestCa::new("redis test CA"), dir.path());
    if let Err(why) = redis_server_has_tls(&files) {
        eprintln!("skipped: this redis-server cannot serve TLS: {why}");
        return None;
    }
    Some(Pki { files, _dir: dir })
}

fn quoted(path: &std::path::Path) -> String {
    format!("\"{}\"", path.display())
}

fn proxy(up: &TestUpstream, redis: &RedisServer) -> ProxyBuilder {
    ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.url", &format!("\"{}\"", redis.url()))
        .set("redis.timeout", "2s")
}

async fn login(addr: std::net::SocketAddr) -> Answer {
    get(addr, "/login", &[]).await
}

/// A login stores a session in Redis and the next request reads it back.
async fn sessions_work(addr: std::net::SocketAddr) {
    let answer = login(addr).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let cookie = answer.cookie(COOKIE).expect("a session cookie");
    let who = get_with_cookie(addr, "/who", COOKIE, &cookie).await;
    assert_eq!(who.status, 200, "{}", who.text());
    assert!(who.text().contains("\"user\":\"Ann\""), "{}", who.text());
}

/// The request that needs the store gets 503 and the log says why, in the TLS layer's words.
async fn store_unreachable(proxy: &TestProxy, because: &[&str]) {
    let answer = login(proxy.addr).await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert!(
        proxy.wait_for_log("session store unavailable", Duration::from_secs(5)),
        "{}",
        proxy.logs_text()
    );
    let line = proxy
        .logs()
        .into_iter()
        .find(|l| l.contains("session store unavailable"))
        .unwrap_or_default();
    assert!(
        because.iter().any(|b| line.contains(b)),
        "expected one of {because:?} in: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rediss_with_the_private_ca_trusted_serves_sessions() {
    let Some(pki) = pki() else { return };
    let redis = RedisServer::start_tls(&pki.files, false, &[]);
    let up = path_driven_app().await;
    let proxy = proxy(&up, &redis)
        .set("redis.ca", &quoted(&pki.files.ca))
        .start();
    sessions_work(proxy.addr).await;
    // The session really is in the TLS server.
    let keys = redis.cli(&["--scan", "--pattern", "session:*"]);
    assert_eq!(keys.lines().count(), 1, "{keys}");
    proxy.assert_no_panic();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rediss_without_redis_ca_does_not_trust_the_private_ca() {
    let Some(pki) = pki() else { return };
    let redis = RedisServer::start_tls(&pki.files, false, &[]);
    let up = path_driven_app().await;
    let proxy = proxy(&up, &redis).start();
    store_unreachable(&proxy, &["invalid peer certificate: UnknownIssuer"]).await;
    // Requests that need no session still pass.
    assert_eq!(get(proxy.addr, "/plain", &[]).await.status, 200);
    assert!(redis
        .cli(&["--scan", "--pattern", "session:*"])
        .trim()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_auth_clients_accepts_the_configured_client_certificate() {
    let Some(pki) = pki() else { return };
    let redis = RedisServer::start_tls(&pki.files, true, &[]);
    let up = path_driven_app().await;
    let proxy = proxy(&up, &redis)
        .set("redis.ca", &quoted(&pki.files.ca))
        .set("redis.client_cert", &quoted(&pki.files.client_cert))
        .set("redis.client_key", &quoted(&pki.files.client_key))
        .start();
    sessions_work(proxy.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_auth_clients_refuses_a_proxy_without_client_certificate() {
    let Some(pki) = pki() else { return };
    let redis = RedisServer::start_tls(&pki.files, true, &[]);
    let up = path_driven_app().await;
    let proxy = proxy(&up, &redis)
        .set("redis.ca", &quoted(&pki.files.ca))
        .start();
    // TLS 1.3 finishes the client's side of the handshake before the server checks for a
    // certificate, so the refusal arrives as the server's alert (HandshakeFailure over TLS 1.2).
    store_unreachable(
        &proxy,
        &[
            "received fatal alert: CertificateRequired",
            "received fatal alert: HandshakeFailure",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rediss_cluster_with_the_private_ca_serves_sessions() {
    let Some(pki) = pki() else { return };
    let cluster = RedisCluster::start_tls(3, &pki.files);
    let up = path_driven_app().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("redis")
        .set("redis.cluster", &cluster.yaml_list())
        .set("redis.timeout", "2s")
        .set("redis.ca", &quoted(&pki.files.ca))
        .start();
    for _ in 0..5 {
        sessions_work(proxy.addr).await;
    }
    assert_eq!(cluster.scan("session:*").len(), 5);
}

/// `check` reads the files like `serve` does and names the field of a bad one.
#[test]
fn check_names_the_redis_tls_field_at_fault() {
    let Some(pki) = pki() else { return };
    let base = format!(
        "upstream:\n  url: http://127.0.0.1:9\nsessions:\n  driver: redis\n  secret: \"{SECRET}\"\nredis:\n  url: \"rediss://127.0.0.1:1/0\"\n"
    );
    let f = &pki.files;
    let cases = [
        (
            format!("  client_cert: {}\n", quoted(&f.client_cert)),
            "redis.client_key: is required with redis.client_cert",
        ),
        (
            format!(
                "  client_cert: {}\n  client_key: {}\n",
                quoted(&f.client_cert),
                quoted(&f.server_key)
            ),
            "redis.client_key:",
        ),
        (
            "  ca: \"/nonexistent/ca.pem\"\n".to_string(),
            "redis.ca: cannot read /nonexistent/ca.pem",
        ),
        (format!("  ca: {}\n", quoted(&f.client_key)), "redis.ca:"),
    ];
    for (extra, expected) in cases {
        let (code, _, stderr) = run_cli(&format!("{base}{extra}"), &["check"], &[]);
        assert_ne!(code, 0, "{extra}");
        assert!(stderr.contains(expected), "{extra}: {stderr}");
    }
    let plain = base.replace("rediss://", "redis://");
    let (code, _, stderr) = run_cli(
        &format!("{plain}  ca: {}\n", quoted(&f.ca)),
        &["check"],
        &[],
    );
    assert_ne!(code, 0);
    assert!(
        stderr.contains("redis.ca: is only used with rediss://"),
        "{stderr}"
    );
    let (code, _, stderr) = run_cli(
        &format!(
            "{base}  ca: {}\n  client_cert: {}\n  client_key: {}\n",
            quoted(&f.ca),
            quoted(&f.client_cert),
            quoted(&f.client_key)
        ),
        &["check"],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
}
