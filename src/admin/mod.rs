//! The admin listener: `/metrics`, the probes `/livez` and `/readyz`, `/healthz` (an alias of
//! `/livez`), `/jwks.json`, and the session API `/sessions` (`sessions.rs`). It is a separate
//! socket (`admin_listen`), so nothing here is reachable through the public listener. With
//! `admin_token` set, every path but the probes needs it (`auth.rs`).
//!
//! The two probes answer different questions, and mixing them up is expensive:
//!
//! - **liveness** (`/livez`): "is this process wedged, should it be restarted?" It only proves
//!   the admin listener's runtime answers. It must not depend on the store or the app: a
//!   Kubernetes liveness probe that followed the upstream would restart every proxy during an app
//!   outage, which fixes nothing and drops every connection.
//! - **readiness** (`/readyz`): "should traffic be sent here now?" The store answers a ping, the
//!   upstream accepts a TCP connection, and shutdown has not begun. Failing it only takes the
//!   instance out of the load balancer until it passes again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

mod auth;
mod sessions;

use crate::error::{ok, ProxyError, ResponseBody};
use crate::handler::App;
use crate::session::SessionError;

/// How long a readiness probe may wait on the store or the upstream. Both are asked at once, so
/// `/readyz` answers within this (plus a little): probe timeouts must be longer (the Kubernetes
/// manifests in `deploy/` use 3s; `session-proxy health` waits 5s by default).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Set when shutdown begins, so `/readyz` turns 503 and load balancers drain us first.
#[derive(Default)]
pub struct Readiness(AtomicBool);

impl Readiness {
    pub fn stopping(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn is_stopping(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What an admin path serves. Routing is this one table so that the access check (`admin_token`)
/// is a single decision on the route, before any handler runs: the probes stay open to the
/// orchestrator, which holds no credentials, and everything else is guarded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// Prometheus / OpenMetrics text.
    Metrics,
    /// Liveness: `/livez`, and `/healthz` for the probes and scripts written before the split.
    Live,
    /// Readiness: `/readyz`.
    Ready,
    /// The assertion's public keys (RFC 7517), `/jwks.json`.
    Jwks,
    /// An owner's sessions, `/sessions?owner=`: listed (`GET`) or ended (`DELETE`).
    Sessions,
    /// One session by its handle, `/sessions/HANDLE`: ended (`DELETE`).
    Session(&'a str),
    /// Anything else: 404 naming the known paths.
    NotFound,
}

impl<'a> Route<'a> {
    pub fn of(path: &'a str) -> Route<'a> {
        match path {
            "/metrics" => Route::Metrics,
            "/livez" | "/healthz" => Route::Live,
            "/readyz" => Route::Ready,
            "/jwks.json" => Route::Jwks,
            "/sessions" => Route::Sessions,
            _ => match path.strip_prefix("/sessions/") {
                Some(handle) => Route::Session(handle),
                None => Route::NotFound,
            },
        }
    }

    /// A probe is called by kubelet, Docker or a load balancer and must never need a credential.
    pub fn is_probe(self) -> bool {
        matches!(self, Route::Live | Route::Ready)
    }

    /// The methods the route serves, as the `Allow` header of its 405 says them. Only the
    /// session API changes anything, so only it takes `DELETE`.
    pub fn allow(self) -> &'static str {
        match self {
            Route::Sessions => "GET, HEAD, DELETE",
            Route::Session(_) => "DELETE",
            _ => "GET, HEAD",
        }
    }

    fn allows(self, method: &Method) -> bool {
        match self {
            Route::Session(_) => method == Method::DELETE,
            Route::Sessions if method == Method::DELETE => true,
            _ => method == Method::GET || method == Method::HEAD,
        }
    }
}

/// Why `/readyz` says 503. The body is this error's whole chain, so an operator reading the probe
/// output (or `session-proxy health`) sees the cause without opening the logs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotReady {
    /// SIGTERM/SIGINT arrived: in-flight requests are draining, new ones belong elsewhere.
    #[error("shutting down")]
    ShuttingDown,
    /// The store answered the ping with an error.
    #[error(transparent)]
    Store(SessionError),
    /// The store did not answer the ping within [`PROBE_TIMEOUT`].
    #[error("session store: no answer within {0:?}")]
    StoreSilent(Duration),
    /// The upstream refused the connection or did not accept it within [`PROBE_TIMEOUT`].
    #[error("upstream: {0}")]
    Upstream(String),
}

pub async fn handle(
    app: Arc<App>,
    ready: Arc<Readiness>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    match route(&app, &ready, &req).await {
        Ok(res) => res,
        Err(e) => e.respond(Some(&app.metrics)),
    }
}

async fn route(
    app: &App,
    ready: &Readiness,
    req: &Request<Incoming>,
) -> Result<Response<ResponseBody>, ProxyError> {
    let route = Route::of(req.uri().path());
    if !auth::allowed(app.admin_token.as_ref(), route, req.headers()) {
        return Err(ProxyError::Unauthorized);
    }
    if !route.allows(req.method()) {
        return Err(ProxyError::MethodNotAllowed {
            allow: route.allow(),
        });
    }
    Ok(match route {
        Route::Metrics => {
            let mut res =
                Response::new(Either::Right(Full::new(Bytes::from(app.metrics.render()))));
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            res
        }
        Route::Live => ok("ok\n"),
        Route::Ready => {
            readiness(app, ready).await.map_err(ProxyError::NotReady)?;
            ok("ready\n")
        }
        Route::Jwks => match app.session.assertion() {
            Some(assertion) => assertion.jwks_response(req.method()),
            None => {
                return Err(ProxyError::NotFound(
                    "not found: the assertion is off (no `assertion` block in the config)\n",
                ))
            }
        },
        Route::Sessions if req.method() == Method::DELETE => {
            sessions::revoke_owner(app, req.uri().query()).await?
        }
        Route::Sessions => sessions::list(app, req.uri().query()).await?,
        Route::Session(handle) => sessions::revoke_handle(app, handle).await?,
        Route::NotFound => return Err(ProxyError::NotFound(
            "not found: try /metrics, /livez, /readyz, /healthz, /jwks.json, /sessions?owner=\n",
        )),
    })
}

/// Not shutting down, the store answers a ping and the upstream accepts a TCP connection. The
/// store and the upstream are asked at the same time, so a slow one does not double the wait.
async fn readiness(app: &App, ready: &Readiness) -> Result<(), NotReady> {
    if ready.is_stopping() {
        return Err(NotReady::ShuttingDown);
    }
    let store = async {
        match tokio::time::timeout(PROBE_TIMEOUT, app.session.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(NotReady::Store(e)),
            Err(_) => Err(NotReady::StoreSilent(PROBE_TIMEOUT)),
        }
    };
    let upstream = async {
        app.upstream
            .probe(PROBE_TIMEOUT)
            .await
            .map_err(NotReady::Upstream)
    };
    let (store, upstream) = tokio::join!(store, upstream);
    store.and(upstream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        for (path, route) in [
            ("/metrics", Route::Metrics),
            ("/livez", Route::Live),
            ("/healthz", Route::Live),
            ("/readyz", Route::Ready),
            ("/sessions", Route::Sessions),
            ("/sessions/abc", Route::Session("abc")),
            ("/sessions/", Route::Session("")),
            ("/", Route::NotFound),
            ("/sessionsx", Route::NotFound),
            ("/readyz/", Route::NotFound),
            ("/LIVEZ", Route::NotFound),
        ] {
            assert_eq!(Route::of(path), route, "{path}");
        }
        assert!(Route::Live.is_probe() && Route::Ready.is_probe());
        assert!(!Route::Metrics.is_probe() && !Route::NotFound.is_probe());
        assert!(!Route::Sessions.is_probe() && !Route::Session("x").is_probe());
    }

    #[test]
    fn only_the_session_api_takes_delete() {
        let (get, head, delete, post) = (Method::GET, Method::HEAD, Method::DELETE, Method::POST);
        for (route, allowed) in [
            (Route::Metrics, [true, true, false, false]),
            (Route::Live, [true, true, false, false]),
            (Route::Sessions, [true, true, true, false]),
            (Route::Session("x"), [false, false, true, false]),
        ] {
            let got = [&get, &head, &delete, &post].map(|m| route.allows(m));
            assert_eq!(got, allowed, "{route:?}");
        }
        assert_eq!(Route::Sessions.allow(), "GET, HEAD, DELETE");
        assert_eq!(Route::Session("x").allow(), "DELETE");
    }
}
