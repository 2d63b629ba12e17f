//! One request's life, as a short list of phases sharing one context:
//! prepare (proxy headers) → session in → forward → session out; the access line follows with
//! the response body.

use std::sync::Arc;
use std::time::Instant;

use http::{Request, Response, StatusCode};
use http_body_util::Either;
use hyper::body::Incoming;

use crate::config::{AdminToken, Config, Driver};
use crate::error::{ProxyError, ResponseBody};
use crate::metrics::Metrics;
use crate::proxy::{self, ClientInfo, Upstream, UpstreamSetupError, X_REQUEST_ID};
use crate::session::assertion::{Assertion, AssertionError};
use crate::session::clock::Clock;
use crate::session::store::StoreError;
use crate::session::SessionLayer;
use crate::telemetry::AccessLog;

/// Everything a request needs, shared by all connections.
pub struct App {
    pub session: SessionLayer,
    pub upstream: Arc<Upstream>,
    pub metrics: Arc<Metrics>,
    /// `admin_token`: held here rather than by the admin listener so that a reload that changes
    /// or sets it takes effect for the next admin request.
    pub admin_token: Option<AdminToken>,
}

/// The pipeline a reload replaces, and what of it the new one keeps.
pub struct Running<'a> {
    pub app: &'a App,
    /// `upstream.*` and `trusted_proxies` are unchanged: keep the upstream and its pooled
    /// connections.
    pub same_upstream: bool,
}

impl App {
    /// The one place the pipeline is built, at start-up (`running: None`) and on reload. A
    /// reload keeps the running metrics and, unless sessions are cookies (nothing stored), the
    /// running store: memory sessions and Redis connections survive it. Session expiry reads
    /// `clock` (the system clock but in tests; a reload passes the running one on).
    pub fn build<E>(config: &Config, clock: Clock, running: Option<Running<'_>>) -> Result<App, E>
    where
        E: From<StoreError> + From<AssertionError> + From<UpstreamSetupError>,
    {
        let metrics = match &running {
            Some(r) => Arc::clone(&r.app.metrics),
            None => Arc::new(Metrics::new(config.sessions.driver.as_str())),
        };
        let session = match &running {
            Some(r) if config.sessions.driver != Driver::Cookie => {
                SessionLayer::new(r.app.session.shared_store(), &config.sessions)
            }
            _ => SessionLayer::from_config(&config.sessions, &config.redis)?,
        }
        .with_metrics(Arc::clone(&metrics))
        .with_assertion(Assertion::from_config(config)?)
        .with_clock(clock);
        let upstream = match &running {
            Some(r) if r.same_upstream => Arc::clone(&r.app.upstream),
            _ => Arc::new(Upstream::new(&config.upstream, &config.trusted_proxies)?),
        };
        Ok(App {
            session,
            upstream,
            metrics,
            admin_token: config.admin_token.clone(),
        })
    }
}

/// Answers one request. The access line is not written here: it goes with the response body
/// (see [`AccessLog`]), which is when the bytes sent and the whole duration are known.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
    client: ClientInfo,
) -> (Response<ResponseBody>, Option<Box<AccessLog>>) {
    let start = Instant::now();
    let method = req.method().clone();
    let mut access = AccessLog::begin(start, &req, client.peer);
    let response = match forward(&app, req, client, &mut access).await {
        Ok(res) => res,
        Err(e) => e.respond(Some(&app.metrics)),
    };
    app.metrics
        .request(&method, response.status(), start.elapsed());
    if let Some(access) = &mut access {
        access.status = response.status();
    }
    (response, access)
}

async fn forward(
    app: &App,
    mut req: Request<Incoming>,
    client: ClientInfo,
    access: &mut Option<Box<AccessLog>>,
) -> Result<Response<ResponseBody>, ProxyError> {
    let upgrade = app.upstream.allowed_upgrade(req.version(), req.headers());
    let client_upgrade = upgrade.is_some().then(|| hyper::upgrade::on(&mut req));
    let (mut parts, body) = req.into_parts();
    // Decided on the client's path, dot-segments removed, before `prepare` prepends the upstream
    // URL's prefix: with `upstream.url: http://app/app1/` the rewritten path no longer matches, and
    // the request (and whatever document the app serves there) would pass for the proxy's JWKS.
    let wants_jwks = app.session.assertion().is_some()
        && proxy::target::normalize_path(parts.uri.path())
            .is_ok_and(|p| p == crate::session::assertion::JWKS_PATH);
    app.upstream.prepare(&mut parts, client, upgrade)?;
    if let Some(access) = access {
        access.request_id = parts.headers.get(X_REQUEST_ID).cloned();
    }
    // The assertion's JWKS is the proxy's own document: answered here (after the request passed
    // the same checks as any other), never forwarded.
    if let Some(assertion) = app.session.assertion().filter(|_| wants_jwks) {
        return Ok(assertion.jwks_response(&parts.method));
    }

    let state = app.session.on_request(&mut parts.headers).await?;
    if let Some(access) = access {
        // The fingerprint costs a String: only when the line will be written.
        access.session = state.fingerprint();
    }
    if let Some(reason) = state.rejected {
        app.metrics.cookie_rejected(reason.into());
    }

    // Whether asking again is harmless if the store fails after the upstream has acted.
    let retry_safe = parts.method.is_safe();
    let sent = Instant::now();
    let mut response = app
        .upstream
        .send(parts, body, client_upgrade.is_some())
        .await?;
    let upstream_time = sent.elapsed();
    if let Some(access) = access {
        access.upstream = Some(upstream_time);
    }
    app.metrics.upstream(upstream_time);

    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_side) = client_upgrade {
            proxy::splice_upgrade(client_side, hyper::upgrade::on(&mut response));
        }
    }
    let (mut parts, body) = response.into_parts();
    let outcome = app
        .session
        .on_response(state, &mut parts.headers)
        .await
        .map_err(|e| ProxyError::after_upstream(e, retry_safe))?;
    if outcome.created {
        app.metrics.session_created();
    }
    if outcome.destroyed {
        app.metrics.session_destroyed();
    }
    if outcome.regenerated {
        app.metrics.session_regenerated();
    }
    if outcome.revoked > 0 {
        app.metrics.sessions_revoked(outcome.revoked);
    }
    Ok(Response::from_parts(
        parts,
        Either::Left(proxy::trailers::Filtered::new(body)),
    ))
}
