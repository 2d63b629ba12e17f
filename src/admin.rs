//! The admin listener: `/metrics`, `/healthz`, `/readyz`. It is a separate socket
//! (`admin_listen`), so nothing here is reachable through the public listener.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;

use crate::error::{plain, ResponseBody};
use crate::handler::App;
use crate::session::store::SessionStore;

/// How long a health probe may wait on the store or the upstream.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

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

pub async fn handle(
    app: Arc<App>,
    ready: Arc<Readiness>,
    req: Request<Incoming>,
) -> Response<ResponseBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match req.uri().path() {
        "/metrics" => {
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
        "/healthz" => match health(&app).await {
            Ok(()) => plain(StatusCode::OK, "ok\n"),
            Err(reason) => {
                let mut res = plain(StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n");
                *res.body_mut() =
                    Either::Right(Full::new(Bytes::from(format!("unhealthy: {reason}\n"))));
                res
            }
        },
        "/readyz" => {
            if ready.is_stopping() {
                plain(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            } else {
                plain(StatusCode::OK, "ready\n")
            }
        }
        "/jwks.json" => match app.session.assertion() {
            Some(assertion) => assertion.jwks_response(req.method()),
            None => plain(
                StatusCode::NOT_FOUND,
                "not found: the assertion is off (no `assertion` block in the config)\n",
            ),
        },
        _ => plain(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /healthz, /readyz\n",
        ),
    }
}

/// The store answers a ping and the upstream accepts a TCP connection.
async fn health(app: &App) -> Result<(), String> {
    match tokio::time::timeout(PROBE_TIMEOUT, app.session.store().ping()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("session store: {e}")),
        Err(_) => return Err("session store: no answer within 2s".into()),
    }
    app.upstream
        .probe(PROBE_TIMEOUT)
        .await
        .map_err(|e| format!("upstream: {e}"))
}
