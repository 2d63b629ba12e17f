//! A real HTTP/1.1 upstream on a free port that records what it receives and answers with whatever
//! the test's handler says.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// What the handler answers.
pub struct Reply {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// How long to wait (after recording the request) before answering.
    pub delay: std::time::Duration,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply {
            status: StatusCode::OK,
            headers: Vec::new(),
            body: Bytes::from_static(b"hello from upstream"),
            delay: std::time::Duration::ZERO,
        }
    }
    pub fn status(mut self, status: u16) -> Reply {
        self.status = StatusCode::from_u16(status).unwrap();
        self
    }
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
    pub fn body(mut self, body: impl Into<Bytes>) -> Reply {
        self.body = body.into();
        self
    }
    pub fn delay(mut self, delay: std::time::Duration) -> Reply {
        self.delay = delay;
        self
    }
}

pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

pub struct TestUpstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestUpstream {
    /// An upstream that answers 200 "hello from upstream" to everything.
    pub async fn start() -> TestUpstream {
        Self::with(|_| Reply::ok()).await
    }

    /// An upstream whose answer the test decides. Request bodies are read in full (tests that
    /// need streaming use [`super::StreamUpstream`]).
    pub async fn with(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestUpstream {
        let handler: Handler = Arc::new(handler);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (seen2, conns2) = (seen.clone(), connections.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                conns2.fetch_add(1, Ordering::SeqCst);
                let handler = handler.clone();
                let seen = seen2.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let handler = handler.clone();
                        let seen = seen.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map(|c| c.to_bytes())
                                .unwrap_or_default();
                            let s = Seen {
                                uri: parts.uri,
                                version: parts.version,
                                headers: parts.headers,
                                body,
                            };
                            let reply = handler(&s);
                            seen.lock().unwrap().push(s);
                            tokio::time::sleep(reply.delay).await;
                            let mut res = Response::new(Full::new(reply.body));
                            *res.status_mut() = reply.status;
                            for (n, v) in reply.headers {
                                res.headers_mut().append(
                                    http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                                    http::HeaderValue::from_str(&v).unwrap(),
                                );
                            }
                            Ok::<_, Infallible>(res)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
            }
        });
        TestUpstream {
            addr,
            seen,
            connections,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self) -> Seen {
        self.seen().pop().expect("the upstream saw no request")
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback address on which nothing listens, for as long as this lives: a socket is bound to
/// it and never listens, so a connection is refused and no other test can take the port (as one
/// could take a port bound and released).
pub struct DeadAddr {
    addr: SocketAddr,
    _held: tokio::net::TcpSocket,
}

impl std::fmt::Display for DeadAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

/// A [`DeadAddr`]: keep it in a variable for as long as the test relies on the port being dead.
pub fn dead_addr() -> DeadAddr {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    DeadAddr {
        addr: socket.local_addr().unwrap(),
        _held: socket,
    }
}

/// An app driven by the path: `/login` sets user=Ann, `/set/<k>/<v>`, `/del/<k>`, `/clear`,
/// `/regen`, `/inject` sets a value holding CR LF (as JSON escapes); anything else answers with the
/// session data it was handed (`-` when there is none).
pub async fn path_driven_app() -> TestUpstream {
    TestUpstream::with(|seen| {
        let path = seen.uri.path().to_owned();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["login"] => Reply::ok().header("X-Session-Set", "user=Ann"),
            ["set", k, v] => Reply::ok().header("X-Session-Set", &format!("{k}={v}")),
            ["del", k] => Reply::ok().header("X-Session-Delete", k),
            ["clear"] => Reply::ok().header("X-Session-Clear", "1"),
            ["regen"] => Reply::ok().header("X-Session-Regenerate", "1"),
            ["inject"] => Reply::ok().header("X-Session-Set", r#"name="a\r\nSet-Cookie: evil=1""#),
            _ => Reply::ok().body(seen.header("x-session-data").unwrap_or("-").to_owned()),
        }
    })
    .await
}
