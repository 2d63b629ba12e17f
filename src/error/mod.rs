//! The failures the proxy can meet while answering, and the one place each is classified.
//!
//! Handlers return [`ProxyError`]. [`ProxyError::class`] decides, for each error, everything the
//! outside sees of it: the HTTP status and the client's short body, the log level, and the metric
//! it moves (`class.rs`). [`ProxyError::respond`] acts on that decision (`respond.rs`). Nothing else
//! in the crate picks an error status, a failure's log level or its metric; the few answers that
//! are not failures (`200 ok`, the HTTPS redirect) are built here too, so that no listener writes
//! a status of its own.

mod class;
mod respond;

pub use class::{Class, Counted, Level};
pub use respond::{chain, ok, ok_json, permanent_redirect, ResponseBody};

use crate::admin::NotReady;
use crate::proxy::target::TargetError;
use crate::session::SessionError;

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

/// A request the proxy answers itself because something failed or was refused.
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
    /// The session layer failed before the upstream was asked, or refused the app's answer (a
    /// session too large): see [`SessionError`].
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The store failed while applying the app's answer: the upstream has already processed the
    /// request. `retry_safe` is false for methods whose repetition could act twice (POST, PUT,
    /// PATCH, DELETE, ...), so the 503 carries no `Retry-After` invitation.
    #[error("the upstream answered, then the session could not be saved")]
    StoreFailedAfterUpstream {
        #[source]
        source: SessionError,
        retry_safe: bool,
    },
    /// An invariant the proxy relies on did not hold (a bug, never the client's doing): 500 and an
    /// error log, instead of a panic that would take the connection's other requests with it.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// A method a proxy-owned endpoint (admin listener, JWKS) does not serve; `allow` lists those
    /// it does (`GET, HEAD` for all but the admin session API).
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// An admin path that does not exist, or a resource it names that does not (a session
    /// handle, the owner API with `sessions.owner_key` unset); the text says why.
    #[error("not found")]
    NotFound(&'static str),
    /// An admin path other than the probes without `Authorization: Bearer <admin_token>`, or
    /// with another token.
    #[error("unauthorized")]
    Unauthorized,
    /// An admin API request whose arguments are wrong (a missing `?owner=`, a malformed handle);
    /// the text says which. Unlike [`ProxyError::BadRequest`] the framing was fine, so the
    /// connection stays open.
    #[error("bad admin request: {}", .0.trim_end())]
    BadAdminRequest(&'static str),
    /// `/readyz`: not ready for traffic; the body names the cause.
    #[error("not ready")]
    NotReady(#[source] NotReady),
}

impl ProxyError {
    /// The session layer failed in the response phase. A store failure there comes after the
    /// upstream has acted, which the client must be told; the other session errors are the same
    /// in either phase.
    pub fn after_upstream(e: SessionError, retry_safe: bool) -> ProxyError {
        match e {
            SessionError::Store(_) => ProxyError::StoreFailedAfterUpstream {
                source: e,
                retry_safe,
            },
            other => ProxyError::Session(other),
        }
    }
}
