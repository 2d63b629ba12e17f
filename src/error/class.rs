//! The classification: for each error, one row deciding status, client text, log level and metric.

use http::StatusCode;

use super::{ProxyError, UpstreamFailure};
use crate::metrics::Rejection;
use crate::session::SessionError;

/// How loud a failure is in the log. Client mistakes are `Info` (they are not ours to fix),
/// a failing upstream `Warn` (the app's operators own it), anything that loses the client's work
/// or shows a bug in the proxy `Error`, and the admin listener's routine refusals `Debug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// The series a failure moves, besides `requests_total` (which counts every answer by status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Counted {
    /// `upstream_errors_total{kind}`.
    Upstream(UpstreamFailure),
    /// `cookie_rejections_total{reason}`.
    Rejection(Rejection),
}

/// Everything the outside sees of one failure, decided in [`ProxyError::class`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Class {
    pub status: StatusCode,
    pub level: Level,
    pub counted: Option<Counted>,
    /// What the client reads: short and free of internal detail (addresses, keys).
    pub message: &'static str,
    /// `Retry-After: 1`: asking again soon is harmless and likely to work.
    pub retry_after: bool,
    /// `Connection: close`: the request's framing was refused, so the stream is in an unknown
    /// state.
    pub close: bool,
    /// `Allow: ...` (a 405 must say what is allowed).
    pub allow: Option<&'static str>,
    /// `WWW-Authenticate: Bearer realm="session-proxy admin"` (a 401 must say how to
    /// authenticate).
    pub challenge: bool,
}

impl Class {
    const fn new(status: StatusCode, level: Level, message: &'static str) -> Class {
        Class {
            status,
            level,
            counted: None,
            message,
            retry_after: false,
            close: false,
            allow: None,
            challenge: false,
        }
    }

    const fn counted(mut self, counted: Counted) -> Class {
        self.counted = Some(counted);
        self
    }

    const fn retry_after(mut self, retry: bool) -> Class {
        self.retry_after = retry;
        self
    }

    const fn close(mut self) -> Class {
        self.close = true;
        self
    }
}

impl ProxyError {
    /// The one decision per error: status, client text, log level, metric.
    pub fn class(&self) -> Class {
        use Level::{Debug, Error, Info};
        use StatusCode as S;
        match self {
            ProxyError::BadRequest(_) | ProxyError::BadTarget(_) => {
                Class::new(S::BAD_REQUEST, Info, "Bad Request\n").close()
            }
            ProxyError::BodyTooLarge { .. } => {
                Class::new(S::PAYLOAD_TOO_LARGE, Info, "Payload Too Large\n")
            }
            ProxyError::Upstream { kind, .. } => upstream(*kind),
            ProxyError::Session(e) => session(e),
            ProxyError::StoreFailedAfterUpstream { retry_safe, .. } => Class::new(
                S::SERVICE_UNAVAILABLE,
                Error,
                "Service Unavailable: the request was processed but the session could not be saved\n",
            )
            .retry_after(*retry_safe),
            ProxyError::Internal(_) => {
                Class::new(S::INTERNAL_SERVER_ERROR, Error, "Internal Server Error\n")
            }
            ProxyError::MethodNotAllowed { allow } => Class {
                allow: Some(*allow),
                ..Class::new(S::METHOD_NOT_ALLOWED, Debug, method_not_allowed(allow))
            },
            ProxyError::NotFound(message) => Class::new(S::NOT_FOUND, Debug, message),
            // Info, not Debug: a wrong token on the admin port is worth seeing in the log.
            ProxyError::Unauthorized => Class {
                challenge: true,
                ..Class::new(
                    S::UNAUTHORIZED,
                    Info,
                    "unauthorized: this admin path needs Authorization: Bearer <admin_token>\n",
                )
            },
            ProxyError::BadAdminRequest(message) => Class::new(S::BAD_REQUEST, Debug, message),
            // The body is the cause's chain (see `respond`); this text is the fallback.
            ProxyError::NotReady(_) => Class::new(S::SERVICE_UNAVAILABLE, Debug, "not ready\n"),
        }
    }
}

/// The 405 body: "GET only" for the endpoints that have always said so, else the list.
fn method_not_allowed(allow: &str) -> &'static str {
    match allow {
        "GET, HEAD" => "GET only\n",
        "DELETE" => "DELETE only\n",
        _ => "Method Not Allowed: see the Allow header\n",
    }
}

fn upstream(kind: UpstreamFailure) -> Class {
    use StatusCode as S;
    let (status, message) = match kind {
        UpstreamFailure::ConnectTimeout | UpstreamFailure::Timeout => (
            S::GATEWAY_TIMEOUT,
            "Gateway Timeout: the upstream did not answer in time\n",
        ),
        UpstreamFailure::Connect => (
            S::BAD_GATEWAY,
            "Bad Gateway: the upstream could not be reached\n",
        ),
        UpstreamFailure::Reset => (
            S::BAD_GATEWAY,
            "Bad Gateway: the upstream connection failed\n",
        ),
        UpstreamFailure::Protocol => (
            S::BAD_GATEWAY,
            "Bad Gateway: the upstream broke the protocol\n",
        ),
    };
    Class::new(status, Level::Warn, message).counted(Counted::Upstream(kind))
}

fn session(e: &SessionError) -> Class {
    use Level::Error;
    use StatusCode as S;
    match e {
        SessionError::Store(_) => Class::new(
            S::SERVICE_UNAVAILABLE,
            Error,
            "Service Unavailable: the session store cannot be reached; try again shortly\n",
        )
        .retry_after(true),
        SessionError::CookieTooLarge { .. } => Class::new(
            S::INTERNAL_SERVER_ERROR,
            Error,
            "Internal Server Error: the session is too large to store in a cookie\n",
        )
        .counted(Counted::Rejection(Rejection::TooLarge)),
        SessionError::TooLarge { .. } => Class::new(
            S::INTERNAL_SERVER_ERROR,
            Error,
            "Internal Server Error: the session would exceed its size limit\n",
        ),
        SessionError::Internal(_) => {
            Class::new(S::INTERNAL_SERVER_ERROR, Error, "Internal Server Error\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::store::StoreError;

    fn store_down() -> SessionError {
        SessionError::Store(StoreError::Timeout {
            driver: "redis",
            after: std::time::Duration::from_millis(300),
        })
    }

    #[test]
    fn one_row_per_error() {
        use Level::*;
        let upstream = |kind| ProxyError::Upstream {
            kind,
            detail: String::new(),
        };
        for (e, status, level, counted) in [
            (ProxyError::BadRequest("x"), 400, Info, None),
            (ProxyError::BodyTooLarge { limit: 1 }, 413, Info, None),
            (
                upstream(UpstreamFailure::Connect),
                502,
                Warn,
                Some(Counted::Upstream(UpstreamFailure::Connect)),
            ),
            (
                upstream(UpstreamFailure::Timeout),
                504,
                Warn,
                Some(Counted::Upstream(UpstreamFailure::Timeout)),
            ),
            (ProxyError::Session(store_down()), 503, Error, None),
            (
                ProxyError::after_upstream(store_down(), false),
                503,
                Error,
                None,
            ),
            (
                ProxyError::Session(SessionError::CookieTooLarge { size: 5000 }),
                500,
                Error,
                Some(Counted::Rejection(Rejection::TooLarge)),
            ),
            (ProxyError::Internal("x"), 500, Error, None),
            (
                ProxyError::MethodNotAllowed { allow: "GET, HEAD" },
                405,
                Debug,
                None,
            ),
            (ProxyError::NotFound("not found\n"), 404, Debug, None),
            (ProxyError::Unauthorized, 401, Info, None),
            (ProxyError::BadAdminRequest("no owner\n"), 400, Debug, None),
        ] {
            let class = e.class();
            assert_eq!(class.status.as_u16(), status, "{e:?}");
            assert_eq!(class.level, level, "{e:?}");
            assert_eq!(class.counted, counted, "{e:?}");
        }
    }

    #[test]
    fn headers_follow_the_class() {
        let res = ProxyError::Session(store_down()).into_response();
        assert_eq!(res.headers()[http::header::RETRY_AFTER], "1");
        assert_eq!(res.headers()[http::header::CACHE_CONTROL], "no-store");
        // After the upstream acted, only a safe method is invited to retry.
        for (retry_safe, invited) in [(true, true), (false, false)] {
            let res = ProxyError::after_upstream(store_down(), retry_safe).into_response();
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(
                res.headers().contains_key(http::header::RETRY_AFTER),
                invited
            );
        }
        // A session refusal is the same in either phase.
        let late = ProxyError::after_upstream(SessionError::TooLarge { size: 2, limit: 1 }, true);
        assert!(matches!(
            late,
            ProxyError::Session(SessionError::TooLarge { .. })
        ));
        let res = ProxyError::BadRequest("x").into_response();
        assert_eq!(res.headers()[http::header::CONNECTION], "close");
        let res = ProxyError::MethodNotAllowed { allow: "GET, HEAD" }.into_response();
        assert_eq!(res.headers()[http::header::ALLOW], "GET, HEAD");
        let res = ProxyError::MethodNotAllowed { allow: "DELETE" }.into_response();
        assert_eq!(res.headers()[http::header::ALLOW], "DELETE");
        let res = ProxyError::Unauthorized.into_response();
        assert_eq!(
            res.headers()[http::header::WWW_AUTHENTICATE],
            r#"Bearer realm="session-proxy admin""#
        );
        let res = ProxyError::BadAdminRequest("no owner\n").into_response();
        assert!(!res.headers().contains_key(http::header::CONNECTION));
    }
}
