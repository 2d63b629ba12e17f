//! Acting on a [`Class`]: the response the client gets, the log line, the metric.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};

use super::{Class, Counted, Level, ProxyError};
use crate::metrics::Metrics;
use crate::session::SessionError;

/// The body of every response the proxy writes: the upstream's, streamed, or a short one of ours.
pub type ResponseBody = Either<crate::proxy::DownstreamBody, Full<Bytes>>;

/// A `tracing` event at a level chosen at run time (the macros want it fixed at the call site).
macro_rules! event_at {
    ($level:expr, $($event:tt)+) => {
        match $level {
            Level::Debug => tracing::debug!($($event)+),
            Level::Info => tracing::info!($($event)+),
            Level::Warn => tracing::warn!($($event)+),
            Level::Error => tracing::error!($($event)+),
        }
    };
}

impl ProxyError {
    /// What a listener does with a failure: logs it at its level, counts it (`metrics` is `None`
    /// on a listener that keeps no series, the HTTP→HTTPS redirect) and answers it.
    pub fn respond(self, metrics: Option<&Metrics>) -> Response<ResponseBody> {
        let class = self.class();
        self.log(class.level);
        match (class.counted, metrics) {
            (Some(Counted::Upstream(kind)), Some(m)) => m.upstream_error(kind),
            (Some(Counted::Rejection(reason)), Some(m)) => m.cookie_rejected(reason),
            _ => {}
        }
        self.answer(&class)
    }

    /// The response alone, neither logged nor counted.
    pub fn into_response(self) -> Response<ResponseBody> {
        let class = self.class();
        self.answer(&class)
    }

    fn answer(&self, class: &Class) -> Response<ResponseBody> {
        let body = match self {
            ProxyError::NotReady(reason) => Bytes::from(format!("not ready: {}\n", chain(reason))),
            _ => Bytes::from_static(class.message.as_bytes()),
        };
        let mut res = text(class.status, body);
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if class.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if class.close {
            h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(allow) = class.allow {
            h.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if class.challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="session-proxy admin""#),
            );
        }
        res
    }

    /// The log line: the level comes from the class; the words and fields are the error's own.
    fn log(&self, level: Level) {
        match self {
            ProxyError::Upstream { .. } => event_at!(level, error = %self, "upstream request failed"),
            ProxyError::Session(SessionError::Store(_)) => {
                event_at!(level, error = %chain(self), "session store unavailable")
            }
            ProxyError::StoreFailedAfterUpstream { retry_safe, .. } => event_at!(
                level,
                error = %chain(self),
                retry_after = retry_safe,
                "session store unavailable after the upstream already answered: the request was processed, its session changes were not saved"
            ),
            ProxyError::Session(SessionError::CookieTooLarge { size }) => event_at!(
                level,
                set_cookie_bytes = size,
                "session too large for the cookie store; response replaced by 500 and the client's cookie left as it was"
            ),
            ProxyError::Session(SessionError::TooLarge { size, limit }) => event_at!(
                level,
                session_bytes = size,
                limit,
                "session data would exceed sessions.max_bytes; response replaced by 500 and the session left as it was"
            ),
            ProxyError::Internal(_) | ProxyError::Session(_) => {
                event_at!(level, error = %self, "internal error; answered 500")
            }
            ProxyError::NotReady(reason) => {
                event_at!(level, reason = %chain(reason), "/readyz: not ready")
            }
            ProxyError::BodyTooLarge { .. }
            | ProxyError::BadRequest(_)
            | ProxyError::BadTarget(_)
            | ProxyError::MethodNotAllowed { .. }
            | ProxyError::NotFound(_)
            | ProxyError::Unauthorized
            | ProxyError::BadAdminRequest(_) => {
                event_at!(level, error = %chain(self), "request refused")
            }
        }
    }
}

fn text(status: StatusCode, body: Bytes) -> Response<ResponseBody> {
    let mut res = Response::new(Either::Right(Full::new(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// A short plain-text answer with the given status. Kept public only until the redirect listener
/// calls [`permanent_redirect`]; new callers want [`ok`] or a [`ProxyError`].
fn plain(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    text(status, Bytes::from_static(body.as_bytes()))
}

/// `200` with a short text (the liveness and readiness probes).
pub fn ok(body: &'static str) -> Response<ResponseBody> {
    plain(StatusCode::OK, body)
}

/// `200` with a JSON document (the admin session API). `no-store`: it lists live sessions.
pub fn ok_json(body: Bytes) -> Response<ResponseBody> {
    let mut res = Response::new(Either::Right(Full::new(body)));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The HTTP→HTTPS redirect: `308`, so that the method and body are kept.
pub fn permanent_redirect(location: HeaderValue) -> Response<ResponseBody> {
    let mut res = plain(StatusCode::PERMANENT_REDIRECT, "Moved to HTTPS\n");
    res.headers_mut().insert(header::LOCATION, location);
    res
}

/// An error and all its sources, `outer: inner: innermost`, for log lines. Messages never repeat
/// their source, so each cause appears once.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(err) = cur {
        out.push_str(": ");
        out.push_str(&err.to_string());
        cur = err.source();
    }
    out
}
