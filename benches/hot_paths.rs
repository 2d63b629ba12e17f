//! Micro-benchmarks of the per-request hot paths: cookie open/seal, the header protocol, the
//! signed assertion (sign vs cache hit), and one whole request through the in-process proxy to an in-process upstream.
//!
//! `cargo bench --bench hot_paths`. The load benchmark against nginx is `benches/load.sh`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use session_proxy::config::{Config, Overrides};
use session_proxy::server::Server;
use session_proxy::session::protocol;
use session_proxy::session::store::cookie::CookieStore;
use session_proxy::session::store::{now_millis, Session, SessionId, SessionStore};

const SECRET: &str = "bench-secret-0123456789abcdefghijklmnopqrstuvwxyz";

fn sample_session() -> Session {
    let mut s = Session::new(
        SessionId::generate(),
        now_millis(),
        Duration::from_secs(3600),
    );
    let data = Arc::make_mut(&mut s.data);
    data.insert("user_id".into(), json!(42));
    data.insert("name".into(), json!("Jos\u{e9}"));
    data.insert("role".into(), json!("admin"));
    data.insert("cart".into(), json!([1, 2, 3]));
    s
}

fn browser_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("app.example.com"));
    h.insert(
        "user-agent",
        HeaderValue::from_static("Mozilla/5.0 (X11; Linux x86_64) Chrome/130"),
    );
    h.insert(
        "accept",
        HeaderValue::from_static("text/html,application/xhtml+xml"),
    );
    h.insert(
        "accept-language",
        HeaderValue::from_static("en-US,en;q=0.9"),
    );
    h.insert(
        "accept-encoding",
        HeaderValue::from_static("gzip, deflate, br"),
    );
    h.insert("x-session-id", HeaderValue::from_static("spoofed"));
    h
}

fn cookie_store(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = CookieStore::new("session_id", SECRET, &[], None);
    let session = sample_session();
    let sealed = store.seal(&session).unwrap();
    let now = now_millis();
    c.bench_function("cookie/open", |b| {
        b.iter(|| rt.block_on(store.load(&sealed, now)).unwrap())
    });
    c.bench_function("cookie/seal", |b| b.iter(|| store.seal(&session)));
}

fn header_protocol(c: &mut Criterion) {
    let session = sample_session();
    c.bench_function("protocol/strip_spoofed", |b| {
        b.iter_batched(
            browser_headers,
            |mut h| protocol::strip_session_headers(&mut h),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("protocol/inject", |b| {
        b.iter_batched(
            browser_headers,
            |mut h| {
                protocol::inject(
                    &mut h,
                    session.id.handle().as_str(),
                    protocol::Times {
                        created: session.created,
                        last_seen: session.last_seen,
                    },
                    &session.data,
                )
            },
            BatchSize::SmallInput,
        )
    });
    let response_headers = || {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("text/html"));
        h.append("x-session-set", HeaderValue::from_static("user_id=42"));
        h.append(
            "x-session-set",
            HeaderValue::from_static("name=\"Jos\\u00e9\""),
        );
        h.append("x-session-delete", HeaderValue::from_static("cart"));
        h
    };
    c.bench_function("protocol/take_controls", |b| {
        b.iter_batched(
            response_headers,
            |mut h| protocol::take_controls(&mut h),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("protocol/no_controls", |b| {
        b.iter_batched(
            || {
                let mut h = HeaderMap::new();
                h.insert("content-type", HeaderValue::from_static("text/html"));
                h
            },
            |mut h| protocol::take_controls(&mut h),
            BatchSize::SmallInput,
        )
    });
}

/// The signed assertion: signing (a cache miss) against reusing the worker's cached token, for
/// the same data shared (memory store) and for equal data decoded afresh (cookie store).
fn assertion(c: &mut Criterion) {
    use session_proxy::config::AssertionConfig;
    use session_proxy::session::assertion::{generate_ed25519_pem, Assertion};
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pem");
    std::fs::write(&key, generate_ed25519_pem().unwrap()).unwrap();
    let cfg = AssertionConfig {
        key,
        previous_keys: Vec::new(),
        issuer: "session-proxy".into(),
        audience: None,
        ttl: Duration::from_secs(60),
        subject_key: Some("user_id".into()),
        header: "X-Session-Assertion".into(),
    };
    let signer = Assertion::load(&cfg, "http://127.0.0.1:3000").unwrap();
    let session = sample_session();
    let handle = session.id.handle();
    let now = now_millis();
    c.bench_function("assertion/sign_ed25519", |b| {
        b.iter(|| signer.sign(&session.data, handle.as_str(), now).unwrap())
    });
    signer.inject(&mut HeaderMap::new(), &session, &handle, now);
    c.bench_function("assertion/cache_hit_same_data", |b| {
        b.iter_batched(
            browser_headers,
            |mut h| signer.inject(&mut h, &session, &handle, now),
            BatchSize::SmallInput,
        )
    });
    let mut decoded = session.clone();
    decoded.data = Arc::new((*session.data).clone());
    c.bench_function("assertion/cache_hit_equal_data", |b| {
        b.iter_batched(
            browser_headers,
            |mut h| signer.inject(&mut h, &decoded, &decoded.id.handle(), now),
            BatchSize::SmallInput,
        )
    });
}

fn whole_request(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (proxy_addr, cookie) = rt.block_on(async {
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = upstream.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (s, _) = upstream.accept().await.unwrap();
                tokio::spawn(async move {
                    let svc = service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let mut res = Response::new(Full::new(Bytes::from_static(b"hello")));
                        if req.uri().path() == "/login" {
                            res.headers_mut()
                                .insert("x-session-set", HeaderValue::from_static("user=bench"));
                        }
                        Ok::<_, Infallible>(res)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        let yaml = format!(
            "listen: 127.0.0.1:0\nupstream:\n  url: http://{up_addr}\nsessions:\n  secret: \"{SECRET}\"\n  secure: false\n"
        );
        let config = Config::from_yaml(&yaml, &HashMap::new(), &Overrides::default()).unwrap();
        let server = Server::bind(&config).await.unwrap();
        let addr = server.local_addr();
        tokio::spawn(server.run(std::future::pending()));
        let (mut send, conn) = client(addr).await;
        tokio::spawn(conn);
        let res = send
            .send_request(Request::get("/login").header("host", "bench").body(Empty::new()).unwrap())
            .await
            .unwrap();
        let cookie = res.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        (addr, cookie)
    });
    let mut sender = rt.block_on(async {
        let (send, conn) = client(proxy_addr).await;
        tokio::spawn(conn);
        send
    });
    c.bench_function("proxy/request_with_cookie_session", |b| {
        b.iter(|| {
            rt.block_on(async {
                let req = Request::get("/")
                    .header("host", "bench")
                    .header("cookie", cookie.as_str())
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                sender.ready().await.unwrap();
                let res = sender.send_request(req).await.unwrap();
                res.into_body().collect().await.unwrap();
            })
        })
    });
}

async fn client(
    addr: std::net::SocketAddr,
) -> (
    hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    hyper::client::conn::http1::Connection<TokioIo<tokio::net::TcpStream>, Empty<Bytes>>,
) {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    hyper::client::conn::http1::handshake(TokioIo::new(s))
        .await
        .unwrap()
}

criterion_group!(
    benches,
    cookie_store,
    header_protocol,
    assertion,
    whole_request
);
criterion_main!(benches);
