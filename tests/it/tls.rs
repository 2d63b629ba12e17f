//! TLS termination: HTTPS over HTTP/1.1 and HTTP/2 (ALPN), sessions over both, the redirect
//! listener, certificate reload on SIGHUP, handshake bounds, HTTPS upstreams and start-up errors.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::tls::*;
use crate::support::*;
use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct HttpsProxy {
    proxy: TestProxy,
    ca: TestCa,
    dir: tempfile::TempDir,
    first_cert: Vec<u8>,
}

fn session_app() -> impl Fn(&Seen) -> Reply + Send + Sync + 'static {
    |seen| match seen.uri.path() {
        "/login" => Reply::ok().header("X-Session-Set", "user=Ann"),
        _ => Reply::ok().body(format!(
            "user={} proto={}",
            seen.header("x-session-user").unwrap_or("-"),
            seen.header("x-forwarded-proto").unwrap_or("-")
        )),
    }
}

fn https_proxy(up: &TestUpstream, extra: impl FnOnce(ProxyBuilder) -> ProxyBuilder) -> HttpsProxy {
    let ca = TestCa::new("session-proxy test CA");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = ca.write_leaf(dir.path(), "first");
    let builder = ProxyBuilder::new(&up.url())
        .set("sessions.secure", "true")
        .set("tls.cert", &format!("\"{}\"", cert.display()))
        .set("tls.key", &format!("\"{}\"", key.display()));
    let proxy = extra(builder).start();
    HttpsProxy {
        proxy,
        ca,
        dir,
        first_cert: der,
    }
}

fn req(path: &str, cookie: Option<&str>) -> Request<Full<Bytes>> {
    let mut b = Request::get(format!("https://localhost{path}"));
    if let Some(c) = cookie {
        b = b.header("cookie", format!("session_id={c}"));
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

async fn session_flow(h2: bool) {
    let up = TestUpstream::with(session_app()).await;
    let p = https_proxy(&up, |b| b);
    let ca = p.ca.pem();
    let login = https_request(p.proxy.addr, &ca, h2, req("/login", None)).await;
    let expected = if h2 {
        Version::HTTP_2
    } else {
        Version::HTTP_11
    };
    assert_eq!(login.version, expected);
    let cookie = login.answer.cookie("session_id").expect("session cookie");
    let set = login.answer.set_cookies().join("\n");
    assert!(set.contains("; Secure"), "{set}");
    let who = https_request(p.proxy.addr, &ca, h2, req("/who", Some(&cookie))).await;
    assert_eq!(who.version, expected);
    assert_eq!(who.answer.text(), "user=Ann proto=https");
    assert_eq!(
        up.last().version,
        Version::HTTP_11,
        "upstream always gets HTTP/1.1"
    );
}

#[tokio::test]
async fn https_http1_session_set_and_read() {
    session_flow(false).await;
}

#[tokio::test]
async fn https_http2_session_set_and_read() {
    session_flow(true).await;
}

#[tokio::test]
async fn curl_http2_speaks_to_the_proxy() {
    let up = TestUpstream::with(session_app()).await;
    let p = https_proxy(&up, |b| b);
    let ca_path = p.dir.path().join("ca.pem");
    std::fs::write(&ca_path, p.ca.pem()).unwrap();
    let port = p.proxy.addr.port();
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--http2",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
        ])
        .arg("--cacert")
        .arg(&ca_path)
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg(format!("https://localhost:{port}/who"))
        .output()
        .await
        .expect("curl is installed");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2 200",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn redirect_listener_sends_308_to_https() {
    let up = TestUpstream::start().await;
    let p = https_proxy(&up, |b| b.set("tls.redirect_http", "127.0.0.1:0"));
    let addr = p.proxy.logged_addr("redirecting plain HTTP to HTTPS");
    let res = get(addr, "/some/path?q=1", &[("host", "example.test:80")]).await;
    assert_eq!(res.status, 308);
    assert_eq!(
        res.header("location").unwrap(),
        format!("https://example.test:{}/some/path?q=1", p.proxy.addr.port())
    );
    assert!(up.seen().is_empty(), "the redirect never reaches the app");
}

#[tokio::test]
async fn sighup_reloads_the_certificate_and_a_bad_file_keeps_the_old_one() {
    let up = TestUpstream::start().await;
    let p = https_proxy(&up, |b| b);
    let ca = p.ca.pem();
    assert_eq!(
        presented_cert(p.proxy.addr, &ca).await.unwrap(),
        p.first_cert
    );

    // Keep a connection open across the reload: it must survive.
    let ca2 = ca.clone();
    let addr = p.proxy.addr;
    let (_, _, second) = p.ca.write_leaf(p.dir.path(), "second");
    p.proxy.signal("HUP");
    assert!(p
        .proxy
        .wait_for_log("TLS certificate reloaded", Duration::from_secs(5)));
    assert_eq!(presented_cert(addr, &ca2).await.unwrap(), second);

    std::fs::write(p.dir.path().join("cert.pem"), "garbage").unwrap();
    p.proxy.signal("HUP");
    assert!(p
        .proxy
        .wait_for_log("reload failed", Duration::from_secs(5)));
    // The log line names the setting, not only the path.
    assert!(p.proxy.wait_for_log("tls.cert: ", Duration::from_secs(5)));
    assert_eq!(presented_cert(addr, &ca2).await.unwrap(), second);
    let ok = https_request(addr, &ca2, false, req("/", None)).await;
    assert_eq!(ok.answer.status, 200);
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_closed_not_hung() {
    let up = TestUpstream::start().await;
    let p = https_proxy(&up, |b| b);
    let answer = raw(
        p.proxy.addr,
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(!answer.contains("200"), "{answer}");
    assert!(up.seen().is_empty());
}

/// Over TLS, ALPN alone decides (as in nginx): no ALPN is HTTP/1.1, and the HTTP/2 preface sent
/// without having negotiated `h2` is not served as HTTP/2.
#[tokio::test]
async fn without_alpn_a_tls_connection_is_http1() {
    let up = TestUpstream::start().await;
    let p = https_proxy(&up, |b| b);
    let exchange = |bytes: &'static [u8]| {
        let (addr, ca) = (p.proxy.addr, p.ca.pem());
        async move {
            let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config(&ca, &[])));
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let mut tls = connector.connect(name, tcp).await.expect("handshake");
            assert_eq!(tls.get_ref().1.alpn_protocol(), None);
            tls.write_all(bytes).await.unwrap();
            let mut out = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut out)).await;
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    let answer = exchange(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = exchange(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    assert!(!answer.contains("200"), "{answer:?}");
    assert_eq!(up.seen().len(), 1);
}

#[tokio::test]
async fn stalled_handshake_is_cut_off() {
    let up = TestUpstream::start().await;
    let p = https_proxy(&up, |b| b.set("limits.tls_handshake_timeout", "1s"));
    let mut stream = tokio::net::TcpStream::connect(p.proxy.addr).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("the proxy closed the stalled connection")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(started.elapsed() >= Duration::from_millis(900));
    // And the listener is still fine for real clients.
    let ok = https_request(p.proxy.addr, &p.ca.pem(), true, req("/", None)).await;
    assert_eq!(ok.answer.status, 200);
}

/// The key exchange groups an [`https_upstream`] agreed on, one per handshake.
type Groups = Arc<std::sync::Mutex<Vec<rustls::NamedGroup>>>;

/// An HTTPS upstream with a certificate from `ca`; counts the requests it served.
async fn https_upstream(ca: &TestCa) -> (SocketAddr, Arc<AtomicUsize>, Groups) {
    let (cert, key, _) = ca.leaf("upstream");
    let certs = rustls::pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let served2 = served.clone();
    let groups = Groups::default();
    let groups2 = groups.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let served = served2.clone();
            let groups = groups2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if let Some(group) = tls.get_ref().1.negotiated_key_exchange_group() {
                    groups.lock().unwrap().push(group.name());
                }
                let svc = service_fn(move |_req| {
                    served.fetch_add(1, Ordering::SeqCst);
                    async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("secure hello"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, served, groups)
}

#[tokio::test]
async fn https_upstream_verified_with_the_configured_ca() {
    let ca = TestCa::new("upstream CA");
    let (addr, served, groups) = https_upstream(&ca).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("upstream-ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    let proxy = ProxyBuilder::new(&format!("https://localhost:{}", addr.port()))
        .set("upstream.ca", &format!("\"{}\"", ca_path.display()))
        .start();
    let res = get(proxy.addr, "/", &[]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.text(), "secure hello");
    assert_eq!(served.load(Ordering::SeqCst), 1);
    // The upstream client offers the post-quantum hybrid too.
    assert_eq!(
        *groups.lock().unwrap(),
        vec![rustls::NamedGroup::X25519MLKEM768]
    );
}

#[tokio::test]
async fn unverifiable_https_upstream_gets_502_and_nothing_forwarded() {
    let ca = TestCa::new("unknown CA");
    let (addr, served, _) = https_upstream(&ca).await;
    let proxy = ProxyBuilder::new(&format!("https://localhost:{}", addr.port())).start();
    let res = get(proxy.addr, "/", &[]).await;
    assert_eq!(res.status, 502);
    assert_eq!(served.load(Ordering::SeqCst), 0);
}

/// The listener settles on the X25519MLKEM768 hybrid (post-quantum) key exchange with a client
/// that offers it first, as rustls' default and current browsers do; a client offering only
/// classical groups still gets in, with X25519.
#[tokio::test]
async fn key_exchange_is_the_post_quantum_hybrid_when_offered() {
    use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
    let up = TestUpstream::with(session_app()).await;
    let p = https_proxy(&up, |b| b);
    let ca = p.ca.pem();
    assert_eq!(
        default_provider().kx_groups[0].name(),
        rustls::NamedGroup::X25519MLKEM768,
        "the test client offers the hybrid first"
    );
    let group = negotiated_group(p.proxy.addr, &ca, default_provider()).await;
    assert_eq!(group, rustls::NamedGroup::X25519MLKEM768);

    let classical = rustls::crypto::CryptoProvider {
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1],
        ..default_provider()
    };
    let group = negotiated_group(p.proxy.addr, &ca, classical).await;
    assert_eq!(group, rustls::NamedGroup::X25519);
}

fn tls_yaml(cert: &str, key: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\nupstream:\n  url: http://127.0.0.1:9\nsessions:\n  secret: \"{SECRET}\"\ntls:\n  cert: \"{cert}\"\n  key: \"{key}\"\n"
    )
}

#[test]
fn startup_errors_name_the_file() {
    let ca = TestCa::new("ca");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = ca.write_leaf(dir.path(), "a");
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());

    let missing = dir.path().join("nope.pem").display().to_string();
    let (code, _, err) = run_cli(&tls_yaml(&missing, &key_s), &["serve"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("nope.pem"), "{err}");

    // A key from another pair.
    let other = tempfile::tempdir().unwrap();
    let (_, other_key, _) = ca.write_leaf(other.path(), "b");
    let other_key = other_key.display().to_string();
    let (code, _, err) = run_cli(&tls_yaml(&cert_s, &other_key), &["serve"], &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("does not match") && err.contains(&other_key),
        "{err}"
    );

    // A PEM file without a key in it (the certificate given twice).
    let (code, _, err) = run_cli(&tls_yaml(&cert_s, &cert_s), &["serve"], &[]);
    assert_ne!(code, 0);
    assert!(
        err.contains("no private key") && err.contains("cert.pem"),
        "{err}"
    );

    // `check` finds the same problems without serving.
    let (code, _, err) = run_cli(&tls_yaml(&missing, &key_s), &["check"], &[]);
    assert_ne!(code, 0);
    assert!(err.contains("nope.pem"), "{err}");
}

#[tokio::test]
async fn http2_client_header_names_are_case_insensitive_for_the_protocol() {
    // HTTP/2 lowercases every header name; the session controls must still apply.
    let up = TestUpstream::with(|_| Reply::ok().header("x-session-set", "k=v")).await;
    let p = https_proxy(&up, |b| b);
    let res = https_request(p.proxy.addr, &p.ca.pem(), true, req("/", None)).await;
    assert!(res.answer.cookie("session_id").is_some());
    assert!(res.answer.header("x-session-set").is_none());
    let mut s = tokio::net::TcpStream::connect(p.proxy.addr).await.unwrap();
    let _ = s.write_all(b"\x16\x03\x01").await; // a handshake cut short must not hurt the server
}
