//! One connection's life: hyper serving HTTP/1.1 or HTTP/2 behind the bare-LF guard, with the
//! first-request deadline, `limits.idle_timeout` and graceful shutdown around it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::{header, Request, Response, StatusCode};
use hyper::body::{Body, Incoming};
use hyper::server::conn::{http1, http2};
use hyper::service::{service_fn, HttpService};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::accept::ConnContext;
use super::activity::{Activity, Idle, IdleTimer, StreamGuard, Tracked};
use super::negotiate::{Negotiated, Protocol};
use crate::bare_lf::{BareLfGuard, Upgraded, MAX_HEAD};
use crate::config::LimitsConfig;
use crate::error::ResponseBody;
use crate::metrics::Metrics;
use crate::telemetry::AccessLog;
use crate::tunnel::{self, TunnelContext};

/// How every connection is served, built once from `limits` and shared by every worker.
pub(super) struct ConnSettings {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    pub(super) limits: LimitsConfig,
}

impl ConnSettings {
    pub(super) fn new(limits: &LimitsConfig) -> ConnSettings {
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true)
            .max_buf_size(MAX_HEAD);
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(256)
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .max_header_list_size(64 * 1024);
        ConnSettings {
            http1: h1,
            http2: h2,
            limits: limits.clone(),
        }
    }
}

/// Serves one connection. `tunnels`: the metrics an upgraded connection reports to (`None` on
/// listeners that never upgrade). `handle` answers a request and may hand over its access line,
/// which [`Tracked`] writes when the response body is done.
pub(super) async fn serve_http<IO, F, Fut>(
    ctx: &ConnContext,
    io: IO,
    peer: SocketAddr,
    tunnels: Option<Arc<Metrics>>,
    handle: F,
) where
    IO: Negotiated + AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Response<ResponseBody>, Option<Box<AccessLog>>)> + Send + 'static,
{
    let limits = &ctx.settings.limits;
    let first_request = Arc::new(AtomicBool::new(false));
    let upgraded = Arc::new(Upgraded::default());
    let activity = Arc::new(Activity::new());
    let requests = Requests {
        handle,
        tunnel: ctx.tunnel(tunnels),
        first_request: Arc::clone(&first_request),
        activity: Arc::clone(&activity),
        switched: Arc::clone(&upgraded),
    };
    let service = service_fn(move |req| requests.call(req));
    let mut stop = ctx.stop.clone();
    // Shutting down already: close before reading anything, as a connection whose first request
    // has not been read is closed when shutdown starts (below).
    if stop.is_set() {
        return;
    }
    let mut stopping = false;
    // hyper's header_read_timeout only starts once it has the connection, which is after the
    // first bytes told HTTP/1 from HTTP/2; that wait has no deadline of its own. So a client that
    // connects and sends nothing, or a slow partial preface, would hold its connection slot
    // forever. Bound the time to the first complete request head.
    let first_head = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(first_head);
    let protocol = tokio::select! {
        negotiated = io.protocol() => match negotiated {
            Ok(Some(protocol)) => protocol,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, %peer, "connection failed before its first request");
                return;
            }
        },
        _ = &mut first_head => {
            tracing::debug!(%peer, "no request head within limits.header_read_timeout; closing");
            return;
        }
        // No request has been read yet, so none is cut off by closing now.
        _ = stop.recv() => return,
    };
    let io = TokioIo::new(BareLfGuard::new(io, upgraded));
    let conn = Conn::new(&ctx.settings, protocol, io, service);
    tokio::pin!(conn);
    let mut first_head_due = true;
    let mut idle = IdleTimer::new(limits.idle_timeout);
    let sleep = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            _ = stop.recv(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = &mut sleep => match idle.fired(&activity, sleep.as_mut()) {
                Idle::Busy => {}
                Idle::Expired => {
                    tracing::debug!(%peer, "no request for limits.idle_timeout; closing");
                    if !stopping {
                        stopping = true;
                        // HTTP/2: GOAWAY, then close (no stream is open). HTTP/1.1: close.
                        conn.as_mut().graceful_shutdown();
                    }
                }
                Idle::StillOpenAfterGoaway => {
                    tracing::debug!(%peer, "idle connection still open after GOAWAY; closing");
                    return;
                }
            },
            _ = &mut first_head, if first_head_due => {
                first_head_due = false;
                if !first_request.load(Ordering::Acquire) {
                    tracing::debug!(%peer, "no request head within limits.header_read_timeout; closing");
                    return;
                }
            }
        }
    }
}

/// The per-request service: marks the connection's first request and its open streams, hands
/// upgrade requests what a tunnel needs, and flags a 101 for the bare-LF guard.
struct Requests<F> {
    handle: F,
    tunnel: TunnelContext,
    first_request: Arc<AtomicBool>,
    activity: Arc<Activity>,
    switched: Arc<Upgraded>,
}

impl<F, Fut> Requests<F>
where
    F: Fn(Request<Incoming>) -> Fut,
    Fut: Future<Output = Answered> + Send + 'static,
{
    fn call(&self, req: Request<Incoming>) -> Call {
        self.first_request.store(true, Ordering::Release);
        let stream = self.activity.begin();
        // Only a request that may switch protocols carries what a tunnel needs from us.
        let upgrade = req
            .headers()
            .get(header::UPGRADE)
            .map(|proto| TunnelContext {
                websocket: proto.as_bytes().eq_ignore_ascii_case(b"websocket"),
                ..self.tunnel.clone()
            });
        let fut = (self.handle)(req);
        let fut: Pin<Box<dyn Future<Output = Answered> + Send>> = match upgrade {
            Some(ctx) => Box::pin(tunnel::scope(ctx, fut)),
            None => Box::pin(fut),
        };
        Call {
            fut,
            stream: Some(stream),
            switched: Arc::clone(&self.switched),
        }
    }
}

/// What the handler answers: the response, and its access line when it has one.
type Answered = (Response<ResponseBody>, Option<Box<AccessLog>>);

/// One request's service future. hyper keeps the service future in a box allocated once per
/// connection and kept for the connection's life, sized for the future: so the handler's future
/// (≈ 5 KB) is boxed here, per request, and freed when the response is ready. An idle connection
/// then holds a box of a few words instead of one the handler's size, and the handler's memory
/// goes back to the worker's allocator for the next request on any connection
/// (docs/performance.md §6).
struct Call {
    fut: Pin<Box<dyn Future<Output = Answered> + Send>>,
    stream: Option<StreamGuard>,
    switched: Arc<Upgraded>,
}

impl Future for Call {
    type Output = Result<Response<Tracked<ResponseBody>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (res, access) = ready!(this.fut.as_mut().poll(cx));
        if res.status() == StatusCode::SWITCHING_PROTOCOLS {
            // Before hyper writes the 101, so before the client sends tunnel bytes.
            this.switched.set();
        }
        // Taken once: a future is not polled again after it is ready.
        let Some(stream) = this.stream.take() else {
            return Poll::Pending;
        };
        Poll::Ready(Ok(res.map(|body| Tracked::new(body, stream, access))))
    }
}

pin_project_lite::pin_project! {
    /// hyper's connection for the protocol the client speaks. HTTP/2 is boxed: an idle HTTP/1.1
    /// connection, the common case, then holds only HTTP/1's state, not room for HTTP/2's.
    #[project = ConnProj]
    enum Conn<IO, S>
    where
        S: HttpService<Incoming>,
    {
        Http1 { #[pin] conn: http1::UpgradeableConnection<IO, S> },
        Http2 { conn: Pin<Box<http2::Connection<IO, S, TokioExecutor>>> },
    }
}

impl<IO, S, B> Conn<IO, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn new(settings: &ConnSettings, protocol: Protocol, io: IO, service: S) -> Self {
        match protocol {
            Protocol::Http1 => Conn::Http1 {
                conn: settings.http1.serve_connection(io, service).with_upgrades(),
            },
            Protocol::Http2 => Conn::Http2 {
                conn: Box::pin(settings.http2.serve_connection(io, service)),
            },
        }
    }

    /// HTTP/2: GOAWAY, then close once the open streams are done. HTTP/1.1: finish the request
    /// in progress, then close.
    fn graceful_shutdown(self: Pin<&mut Self>) {
        match self.project() {
            ConnProj::Http1 { conn } => conn.graceful_shutdown(),
            ConnProj::Http2 { conn } => conn.as_mut().graceful_shutdown(),
        }
    }
}

impl<IO, S, B> Future for Conn<IO, S>
where
    S: HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: Send + 'static,
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Output = hyper::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ConnProj::Http1 { conn } => conn.poll(cx),
            ConnProj::Http2 { conn } => conn.as_mut().poll(cx),
        }
    }
}
