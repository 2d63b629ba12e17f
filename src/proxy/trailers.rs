//! Trailers get the same filter as heads.
//!
//! A trailer section is a second header block that arrives after the body (HTTP/2 always allows
//! one; HTTP/1.1 chunked does too). Without a filter it would carry `X-Session-*` from a client to
//! the app, or the app's `X-Session-*` and a `Set-Cookie` for our cookie to the client, around the
//! session layer. The wrapper costs one branch per frame; trailers themselves are rare.

use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{self, HeaderMap, HeaderName};
use http_body::{Body, Frame, SizeHint};

use super::forwarded::is_forwarding_header;
use super::HOP_BY_HOP;
use crate::session::protocol::is_session_header;

pin_project_lite::pin_project! {
    /// A body whose trailers, if any, are filtered by [`filter`].
    pub struct Filtered<B> {
        #[pin]
        inner: B,
    }
}

impl<B> Filtered<B> {
    pub fn new(inner: B) -> Filtered<B> {
        Filtered { inner }
    }
}

impl<B: Body> Body for Filtered<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().inner.poll_frame(cx) {
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(trailers) = frame.trailers_mut() {
                    filter(trailers);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Removes from a trailer section everything that must only come from, or only go to, the
/// proxy: every `X-Session-*` spelling, cookies both ways, the forwarding family, and what
/// frames or routes a message (hop-by-hop fields, `Host`, lengths).
pub fn filter(trailers: &mut HeaderMap) {
    let doomed: Vec<HeaderName> = trailers
        .keys()
        .filter(|name| {
            let n = name.as_str();
            is_session_header(n)
                || is_forwarding_header(n)
                || HOP_BY_HOP.contains(name)
                || matches!(
                    *name,
                    &header::COOKIE | &header::SET_COOKIE | &header::HOST | &header::CONTENT_LENGTH
                )
        })
        .cloned()
        .collect();
    for name in doomed {
        trailers.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn trailer_filter_keeps_only_harmless_fields() {
        let mut t = HeaderMap::new();
        for (n, v) in [
            ("x-session-id", "spoof"),
            ("x_session_user_id", "1"),
            ("x-session-set", "role=admin"),
            ("set-cookie", "session_id=planted"),
            ("cookie", "session_id=x"),
            ("x-forwarded-for", "1.2.3.4"),
            ("host", "evil.test"),
            ("grpc-status", "0"),
            ("server-timing", "db;dur=53"),
        ] {
            t.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        filter(&mut t);
        let mut left: Vec<&str> = t.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["grpc-status", "server-timing"]);
    }
}
