//! The failures a request can meet, and the one place they become HTTP statuses.
//!
//! Handlers return [`ProxyError`]; [`ProxyError::into_response`] decides the status, the short
//! plain-text body and any extra header. Nothing else in the crate picks an error status.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};

use crate::proxy::target::TargetError;

/// The body of every response the proxy writes: the upstream's, streamed, or a short one of ours.
pub type ResponseBody = Either<crate::proxy::DownstreamBody, Full<Bytes>>;

crate::metrics::labels::labels! {
    /// Why the upstream could not answer; also the `kind` label of `upstream_errors_total`.
    #[non_exhaustive]
    pub enum UpstreamFailure {
        /// TCP (or TLS) connection refused, unreachable, or the certificate did not verify.
        Connect => "connect",
        /// The connection could not be made within `upstream.connect_timeout`.
        ConnectTimeout => "connect_timeout",
        /// No response head within `upstream.timeout`.
        Timeout => "timeout",
        /// The connection broke or the upstream sent garbage.
        Reset => "reset",
        /// The upstream broke the protocol in a way that would bypass the proxy (a `101` nobody
        /// asked for).
        Protocol => "protocol",
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The client's request is malformed in a way hyper let through (e.g. conflicting framing).
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The request target or its authority is refused; see [`TargetError`].
    #[error("bad request target")]
    BadTarget(#[source] TargetError),
    /// The request body is larger than `upstream.max_body`.
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge { limit: u64 },
    /// The upstream failed; see [`UpstreamFailure`].
    #[error("upstream {}: {detail}", kind.as_str())]
    Upstream {
        kind: UpstreamFailure,
        detail: String,
    },
    /// The session store could not be reached in time.
    #[error("session store unavailable")]
    StoreUnavailable(#[source] crate::session::store::StoreError),
    /// The store failed while applying the app's answer: the upstream has already processed the
    /// request. `retry_safe` is false for methods whose repetition could act twice (POST, PUT,
    /// PATCH, DELETE, ...), so the 503 carries no `Retry-After` invitation.
    #[error("session store unavailable after the upstream answered")]
    StoreFailedAfterUpstream {
        #[source]
        source: crate::session::store::StoreError,
        retry_safe: bool,
    },
    /// An invariant the proxy relies on did not hold (a bug, never the client's doing): 500 and an
    /// error log, instead of a panic that would take the connection's other requests with it.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The sealed session no longer fits in one cookie.
    #[error("session too large for a cookie: Set-Cookie would be {size} bytes (limit 4096)")]
    CookieTooLarge { size: usize },
    /// The app's changes would grow the session's data past `sessions.max_bytes`.
    #[error("session data would be {size} bytes (sessions.max_bytes: {limit})")]
    SessionTooLarge { size: usize, limit: usize },
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) | ProxyError::BadTarget(_) => StatusCode::BAD_REQUEST,
            ProxyError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::Upstream { kind, .. } => match kind {
                UpstreamFailure::ConnectTimeout | UpstreamFailure::Timeout => {
                    StatusCode::GATEWAY_TIMEOUT
                }
                UpstreamFailure::Connect | UpstreamFailure::Reset | UpstreamFailure::Protocol => {
                    StatusCode::BAD_GATEWAY
                }
            },
            ProxyError::StoreUnavailable(_) | ProxyError::StoreFailedAfterUpstream { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ProxyError::CookieTooLarge { .. } | ProxyError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            ProxyError::SessionTooLarge { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the client reads. Deliberately short and free of internal detail (addresses, keys).
    fn public_message(&self) -> &'static str {
        match self {
            ProxyError::BadRequest(_) | ProxyError::BadTarget(_) => "Bad Request\n",
            ProxyError::BodyTooLarge { .. } => "Payload Too Large\n",
            ProxyError::Upstream { kind, .. } => match kind {
                UpstreamFailure::ConnectTimeout | UpstreamFailure::Timeout => {
                    "Gateway Timeout: the upstream did not answer in time\n"
                }
                UpstreamFailure::Connect => "Bad Gateway: the upstream could not be reached\n",
                UpstreamFailure::Reset => "Bad Gateway: the upstream connection failed\n",
                UpstreamFailure::Protocol => "Bad Gateway: the upstream broke the protocol\n",
            },
            ProxyError::StoreUnavailable(_) => {
                "Service Unavailable: the session store cannot be reached; try again shortly\n"
            }
            ProxyError::StoreFailedAfterUpstream { .. } => {
                "Service Unavailable: the request was processed but the session could not be saved\n"
            }
            ProxyError::Internal(_) => "Internal Server Error\n",
            ProxyError::CookieTooLarge { .. } => {
                "Internal Server Error: the session is too large to store in a cookie\n"
            }
            ProxyError::SessionTooLarge { .. } => {
                "Internal Server Error: the session would exceed its size limit\n"
            }
        }
    }

    pub fn into_response(self) -> Response<ResponseBody> {
        error_response(self.status(), self.public_message(), &self)
    }
}

fn error_response(
    status: StatusCode,
    message: &'static str,
    err: &ProxyError,
) -> Response<ResponseBody> {
    let mut res = Response::new(Either::Right(Full::new(Bytes::from_static(
        message.as_bytes(),
    ))));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if matches!(
        err,
        ProxyError::StoreUnavailable(_)
            | ProxyError::StoreFailedAfterUpstream {
                retry_safe: true,
                ..
            }
    ) {
        h.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    if matches!(err, ProxyError::BadRequest(_) | ProxyError::BadTarget(_)) {
        // A request whose framing we refused leaves the stream in an unknown state.
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// A short response of our own (redirects, admin answers).
pub fn plain(status: StatusCode, body: &'static str) -> Response<ResponseBody> {
    let mut res = Response::new(Either::Right(Full::new(Bytes::from_static(
        body.as_bytes(),
    ))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
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
