//! The upstream's response body, which gives its connection back to the pool.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use super::pool::Key;
use super::Sender;

/// An upstream response body that returns its connection to the worker's pool once read to the
/// end. Dropped before that (the client went away, a timeout, an error), the connection is
/// dropped with it: hyper then closes it, since a half-read response cannot be resumed.
pub struct Returning {
    inner: Incoming,
    lease: Option<(Key, Sender)>,
}

impl Returning {
    pub(super) fn new(inner: Incoming, key: Key, sender: Sender) -> Returning {
        let mut body = Returning {
            inner,
            lease: Some((key, sender)),
        };
        // An empty body (HEAD, 204, 304, `Content-Length: 0`) may never be polled: the server
        // sees `is_end_stream` and stops.
        if body.inner.is_end_stream() {
            body.release();
        }
        body
    }

    /// A body whose connection is not ours to pool (it was handed to a tunnel).
    pub(in crate::proxy) fn unpooled(inner: Incoming) -> Returning {
        Returning { inner, lease: None }
    }

    fn release(&mut self) {
        if let Some((key, sender)) = self.lease.take() {
            key.put(sender);
        }
    }
}

impl Body for Returning {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            // A body with a length ends with its last byte: the server may not poll again.
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => self.release(),
            Poll::Ready(None) => self.release(),
            Poll::Ready(Some(Err(_))) => self.lease = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
