//! What `limits.idle_timeout` measures (open streams and when the last one ended), and the
//! response body wrapper that holds a stream open and writes the access line.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;

use crate::telemetry::AccessLog;

/// One connection's streams in progress (HTTP/2) or request in progress (HTTP/1.1), and when the
/// last one ended: what `limits.idle_timeout` measures. A stream lasts until its response body
/// has been sent (or the stream reset), not just until the response head: a long download is
/// not idleness.
pub(super) struct Activity {
    start: tokio::time::Instant,
    open: AtomicUsize,
    /// Milliseconds from `start` to the end of the last stream.
    last_end_ms: AtomicU64,
}

impl Activity {
    pub(super) fn new() -> Activity {
        Activity {
            start: tokio::time::Instant::now(),
            open: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn begin(self: &Arc<Self>) -> StreamGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        StreamGuard(Arc::clone(self))
    }

    /// How long the connection has had no open stream; `None` while one is open.
    pub(super) fn idle_for(&self) -> Option<Duration> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since_start = self.start.elapsed();
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Acquire));
        Some(since_start.saturating_sub(last))
    }
}

/// What the idle timer found when it fired.
pub(super) enum Idle {
    /// A stream is open, or one ended less than `limits.idle_timeout` ago: re-armed.
    Busy,
    /// No stream for the whole timeout: time to close (HTTP/2: GOAWAY first).
    Expired,
    /// Told to finish (GOAWAY sent) a whole idle period ago and still open: a client that never
    /// acknowledges the GOAWAY's ping. Hang up.
    StillOpenAfterGoaway,
}

/// `limits.idle_timeout` for one connection: checked when it could first have run out, then
/// re-armed for when it next could (the last stream's end + the timeout), so an idle connection
/// costs one timer.
pub(super) struct IdleTimer {
    timeout: Duration,
    expired: bool,
}

impl IdleTimer {
    pub(super) fn new(timeout: Duration) -> IdleTimer {
        IdleTimer {
            timeout,
            expired: false,
        }
    }

    /// The timer `sleep` fired: re-arms it and says what the connection's `activity` means.
    pub(super) fn fired(
        &mut self,
        activity: &Activity,
        sleep: Pin<&mut tokio::time::Sleep>,
    ) -> Idle {
        let now = tokio::time::Instant::now();
        match activity.idle_for() {
            Some(idle_for) if idle_for >= self.timeout => {
                if self.expired {
                    return Idle::StillOpenAfterGoaway;
                }
                self.expired = true;
                sleep.reset(now + self.timeout);
                Idle::Expired
            }
            Some(idle_for) => {
                sleep.reset(now + (self.timeout - idle_for));
                Idle::Busy
            }
            None => {
                sleep.reset(now + self.timeout);
                Idle::Busy
            }
        }
    }
}

/// Ends its stream when dropped: with the response body, or with the service future if the
/// stream was reset before the response.
pub(super) struct StreamGuard(Arc<Activity>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let a = &self.0;
        let ms = u64::try_from(a.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        a.last_end_ms.store(ms, Ordering::Release);
        a.open.fetch_sub(1, Ordering::AcqRel);
    }
}

pin_project_lite::pin_project! {
    /// A response body that holds its stream open (see [`Activity`]) until hyper drops it, and
    /// writes the request's access line then, with the body bytes it passed on. Dropping is the
    /// one event every response has exactly once: bodies hyper never polls (HEAD, 204, 304, a
    /// 101 before its tunnel) are dropped too, and a body cut short by the client is dropped
    /// with what it had sent.
    pub(super) struct Tracked<B> {
        #[pin]
        inner: B,
        stream: StreamGuard,
        access: Option<Box<AccessLog>>,
    }

    impl<B> PinnedDrop for Tracked<B> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(access) = this.project().access.take() {
                access.write();
            }
        }
    }
}

impl<B> Tracked<B> {
    pub(super) fn new(inner: B, stream: StreamGuard, access: Option<Box<AccessLog>>) -> Self {
        Tracked {
            inner,
            stream,
            access,
        }
    }
}

impl<B: hyper::body::Body> hyper::body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        if let (Some(access), std::task::Poll::Ready(Some(Ok(frame)))) = (this.access, &polled) {
            if let Some(data) = frame.data_ref() {
                access.sent(data.remaining());
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
