//! One connection's life: hyper serving HTTP/1.1 or HTTP/2 behind the bare-LF guard, with the
//! first-request deadline, `limits.idle_timeout` and graceful shutdown around it.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{header, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};

use super::accept::ConnContext;
use super::activity::{Activity, Tracked};
use crate::bare_lf::{BareLfGuard, Upgraded, MAX_HEAD};
use crate::config::LimitsConfig;
use crate::error::ResponseBody;
use crate::metrics::Metrics;
use crate::telemetry::AccessLog;
use crate::tunnel::{self, TunnelContext};

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
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Response<ResponseBody>, Option<Box<AccessLog>>)> + Send + 'static,
{
    let first_request = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&first_request);
    let upgraded = Arc::new(Upgraded::default());
    let switched = Arc::clone(&upgraded);
    let activity = Arc::new(Activity::new());
    let streams = Arc::clone(&activity);
    let tunnel = TunnelContext {
        slot: ctx.slot.clone(),
        alive: Some(ctx._alive.clone()),
        stop: Some(ctx.stop.clone()),
        grace: ctx.shutdown_grace,
        idle_timeout: ctx.tunnel_idle_timeout,
        metrics: tunnels,
        websocket: false,
    };
    let service = service_fn(move |req: Request<Incoming>| {
        seen.store(true, Ordering::Release);
        let stream = streams.begin();
        // Only a request that may switch protocols carries what a tunnel needs from us.
        let upgrade = req
            .headers()
            .get(header::UPGRADE)
            .map(|proto| TunnelContext {
                websocket: proto.as_bytes().eq_ignore_ascii_case(b"websocket"),
                ..tunnel.clone()
            });
        let fut = handle(req);
        let switched = Arc::clone(&switched);
        async move {
            let (res, access) = match upgrade {
                Some(ctx) => tunnel::scope(ctx, fut).await,
                None => fut.await,
            };
            if res.status() == StatusCode::SWITCHING_PROTOCOLS {
                // Before hyper writes the 101, so before the client sends tunnel bytes.
                switched.set();
            }
            Ok::<_, Infallible>(res.map(|body| Tracked::new(body, stream, access)))
        }
    });
    let io = BareLfGuard::new(io, upgraded);
    let conn = ctx
        .builder
        .serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut stop = ctx.stop.clone();
    let mut stopping = *stop.borrow();
    if stopping {
        conn.as_mut().graceful_shutdown();
    }
    // hyper's header_read_timeout only starts once the auto builder has told HTTP/1 from HTTP/2,
    // and that detection waits without a deadline for the first bytes (up to the 24-byte h2
    // preface). So a client that connects and sends nothing, or a slow partial preface, would hold
    // its connection slot forever. Bound the time to the first complete request head.
    let first_head = tokio::time::sleep(ctx.header_read_timeout);
    tokio::pin!(first_head);
    let mut first_head_due = true;
    // `limits.idle_timeout`: checked when it could first have run out, then re-armed for when it
    // next could (the last stream's end + the timeout), so an idle connection costs one timer.
    let idle = tokio::time::sleep(ctx.idle_timeout);
    tokio::pin!(idle);
    let mut idle_goaway = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            _ = stop.changed(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = &mut idle => {
                let now = tokio::time::Instant::now();
                match activity.idle_for() {
                    Some(idle_for) if idle_for >= ctx.idle_timeout => {
                        if idle_goaway {
                            // Told to finish (GOAWAY sent) a whole idle period ago and still
                            // open: a client that never acknowledges the GOAWAY's ping. Hang up.
                            tracing::debug!(%peer, "idle connection still open after GOAWAY; closing");
                            return;
                        }
                        tracing::debug!(%peer, "no request for limits.idle_timeout; closing");
                        idle_goaway = true;
                        if !stopping {
                            stopping = true;
                            // HTTP/2: GOAWAY, then close (no stream is open). HTTP/1.1: close.
                            conn.as_mut().graceful_shutdown();
                        }
                        idle.as_mut().reset(now + ctx.idle_timeout);
                    }
                    Some(idle_for) => idle.as_mut().reset(now + (ctx.idle_timeout - idle_for)),
                    None => idle.as_mut().reset(now + ctx.idle_timeout),
                }
            }
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

pub(super) fn connection_builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_header_list_size(64 * 1024);
    builder
}
