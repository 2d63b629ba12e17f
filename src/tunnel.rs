//! Upgraded connections (WebSocket and other `Upgrade:` protocols): relaying bytes both ways once
//! client and upstream have both switched, and the tunnel's share of the connection lifecycle.
//!
//! A tunnel outlives the request that opened it (hyper hands the socket over and its connection
//! task ends), so what the connection held has to move into the tunnel:
//! - its `limits.max_connections` slot and its shutdown token (see `server`): a tunnel is an open
//!   client connection and counts as one, and graceful shutdown waits for it;
//! - the shutdown signal: on SIGTERM a tunnel gets `limits.shutdown_grace`, then is closed, with a
//!   WebSocket close frame 1001 ("going away") each way where one can be sent cleanly (the relay
//!   is between frames in that direction), else just a TCP close;
//! - `limits.tunnel_idle_timeout`: a tunnel with no byte either way for that long is closed the
//!   same way.
//!
//! The server hands these over in a task-local [`TunnelContext`] set around each upgrade
//! request, so the forwarding code (which decides whether to splice) needs no extra plumbing.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use crate::metrics::Metrics;
use crate::server::shutdown::{Signal, Token};

/// A WebSocket close frame, status 1001 "going away", as the server sends it (unmasked).
const CLOSE_GOING_AWAY: [u8; 4] = [0x88, 0x02, 0x03, 0xe9];
/// How long a close frame may take to write before the tunnel just closes.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Relay buffer per direction (what `tokio::io::copy_bidirectional` uses).
const BUF: usize = 8 * 1024;

/// What a tunnel takes over from the client connection it came from.
#[derive(Clone)]
pub struct TunnelContext {
    /// The connection's `limits.max_connections` slot: freed when the last holder drops it.
    pub slot: Option<Arc<OwnedSemaphorePermit>>,
    /// The connection's shutdown token: graceful shutdown waits until every clone is dropped.
    pub alive: Option<Token>,
    /// Fires on SIGTERM (or SIGINT).
    pub stop: Option<Signal>,
    pub grace: Duration,
    pub idle_timeout: Duration,
    pub metrics: Option<Arc<Metrics>>,
    /// The request asked for `Upgrade: websocket`: close with a close frame, not just TCP.
    pub websocket: bool,
}

tokio::task_local! {
    static CONTEXT: TunnelContext;
}

/// Runs `fut` (one upgrade request) with `ctx` available to [`splice`].
pub fn scope<F: Future>(ctx: TunnelContext, fut: F) -> impl Future<Output = F::Output> {
    CONTEXT.scope(ctx, fut)
}

/// Relays bytes both ways once client and upstream have both switched protocols. Called while
/// the upgrade request is being answered; the tunnel runs on its own task.
pub fn splice(client: OnUpgrade, upstream: OnUpgrade) {
    let ctx = CONTEXT.try_with(TunnelContext::clone).ok();
    tokio::spawn(async move {
        let (client, upstream) = match tokio::try_join!(client, upstream) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        let Some(ctx) = ctx else {
            // Not opened by the server (no connection to take over): a plain relay.
            let (mut c, mut u) = (TokioIo::new(client), TokioIo::new(upstream));
            let _ = tokio::io::copy_bidirectional(&mut c, &mut u).await;
            return;
        };
        relay(TokioIo::new(client), TokioIo::new(upstream), ctx).await;
    });
}

/// How a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Both sides closed (or one failed).
    Closed,
    /// `limits.tunnel_idle_timeout` with no byte either way.
    Idle,
    /// The shutdown grace period ran out.
    Shutdown,
}

async fn relay<C, U>(client: C, upstream: U, ctx: TunnelContext)
where
    C: AsyncRead + AsyncWrite + Send + Unpin,
    U: AsyncRead + AsyncWrite + Send + Unpin,
{
    let metrics = ctx.metrics.clone();
    if let Some(m) = &metrics {
        m.tunnel_opened();
    }
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut upstream_r, mut upstream_w) = tokio::io::split(upstream);
    let start = Instant::now();
    let last = AtomicU64::new(0);
    let (mut up_frames, mut down_frames) = (Frames::default(), Frames::default());
    let (up_bytes, down_bytes) = match &metrics {
        Some(m) => (Some(m.tunnel_bytes_up()), Some(m.tunnel_bytes_down())),
        None => (None, None),
    };
    let end = {
        let up = pump(
            &mut client_r,
            &mut upstream_w,
            (start, &last),
            up_bytes,
            &mut up_frames,
        );
        let down = pump(
            &mut upstream_r,
            &mut client_w,
            (start, &last),
            down_bytes,
            &mut down_frames,
        );
        tokio::select! {
            r = async { tokio::try_join!(up, down) } => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "upgraded connection ended with an error");
                }
                End::Closed
            }
            _ = idle(start, &last, ctx.idle_timeout) => End::Idle,
            _ = shutdown(ctx.stop.clone(), ctx.grace) => End::Shutdown,
        }
    };
    if end != End::Closed {
        tracing::debug!(?end, websocket = ctx.websocket, "closing tunnel");
        if ctx.websocket {
            if down_frames.between() {
                let _ = tokio::time::timeout(
                    CLOSE_WRITE_TIMEOUT,
                    client_w.write_all(&CLOSE_GOING_AWAY),
                )
                .await;
            }
            if up_frames.between() {
                // Towards the upstream the proxy is the client, whose frames are masked.
                let mask: [u8; 4] = rand::random();
                let frame = [
                    0x88,
                    0x82,
                    mask[0],
                    mask[1],
                    mask[2],
                    mask[3],
                    CLOSE_GOING_AWAY[2] ^ mask[0],
                    CLOSE_GOING_AWAY[3] ^ mask[1],
                ];
                let _ =
                    tokio::time::timeout(CLOSE_WRITE_TIMEOUT, upstream_w.write_all(&frame)).await;
            }
        }
        let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, client_w.shutdown()).await;
        let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, upstream_w.shutdown()).await;
    }
    if let Some(m) = &metrics {
        m.tunnel_closed();
    }
    // `ctx` (slot and shutdown token) is dropped here, after the sockets are closed.
    drop(ctx);
}

/// Copies one direction until end of input, then half-closes the other side. Each write is
/// recorded as it completes (bytes counter, last activity, WebSocket frame position), so when
/// the relay is cut off between two awaits, all three are exact.
async fn pump<R, W>(
    r: &mut R,
    w: &mut W,
    (start, last): (Instant, &AtomicU64),
    bytes: Option<&Counter>,
    frames: &mut Frames,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = r.read(&mut buf).await?;
        if n == 0 {
            w.shutdown().await?;
            return Ok(());
        }
        last.store(elapsed_ms(start), Ordering::Relaxed);
        let mut off = 0;
        while off < n {
            let k = w.write(&buf[off..n]).await?;
            if k == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            frames.advance(&buf[off..off + k]);
            if let Some(c) = bytes {
                c.inc_by(k as u64);
            }
            off += k;
        }
        w.flush().await?;
        last.store(elapsed_ms(start), Ordering::Relaxed);
    }
}

fn elapsed_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Resolves once no byte has moved either way for `timeout`.
async fn idle(start: Instant, last: &AtomicU64, timeout: Duration) {
    loop {
        let due = start + Duration::from_millis(last.load(Ordering::Relaxed)) + timeout;
        if Instant::now() >= due {
            return;
        }
        tokio::time::sleep_until(due).await;
    }
}

/// Resolves `grace` after the shutdown signal, a little early so the close frames go out
/// before the server's own wait (the same grace) ends and the process exits. Never without a
/// signal.
async fn shutdown(stop: Option<Signal>, grace: Duration) {
    let Some(mut stop) = stop else {
        return std::future::pending().await;
    };
    stop.recv().await;
    let margin = (grace / 10).min(Duration::from_millis(500));
    tokio::time::sleep(grace - margin).await;
}

/// Where one direction of a WebSocket stream is, frame-wise, counting only bytes already
/// written: a close frame may be added only between two frames (RFC 6455 §5.2).
#[derive(Debug, Default)]
struct Frames {
    /// The frame header collected so far (at most 14 bytes).
    header: [u8; 14],
    have: usize,
    /// Payload bytes still to come in the current frame.
    payload: u64,
}

impl Frames {
    fn between(&self) -> bool {
        self.have == 0 && self.payload == 0
    }

    fn advance(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.payload > 0 {
                let take = usize::try_from(self.payload)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                self.payload -= take as u64;
                data = &data[take..];
                continue;
            }
            self.header[self.have] = data[0];
            self.have += 1;
            data = &data[1..];
            if let Some(len) = self.complete_header() {
                self.have = 0;
                self.payload = len;
            }
        }
    }

    /// The payload length once the header collected so far is complete.
    fn complete_header(&self) -> Option<u64> {
        let h = &self.header[..self.have];
        if h.len() < 2 {
            return None;
        }
        let mask = if h[1] & 0x80 != 0 { 4 } else { 0 };
        let (ext, len) = match h[1] & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        if h.len() < 2 + ext + mask {
            return None;
        }
        Some(len.unwrap_or_else(|| {
            h[2..2 + ext]
                .iter()
                .fold(0u64, |n, b| (n << 8) | u64::from(*b))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_boundaries() {
        let mut f = Frames::default();
        assert!(f.between());
        // Unmasked text "hi", then a masked 300-byte binary frame, fed a byte at a time.
        let mut wire = vec![0x81, 0x02, b'h', b'i'];
        wire.extend_from_slice(&[0x82, 0xfe, 0x01, 0x2c, 1, 2, 3, 4]);
        wire.extend(std::iter::repeat_n(7, 300));
        for (i, b) in wire.iter().enumerate() {
            f.advance(std::slice::from_ref(b));
            let boundary = i == 3 || i == wire.len() - 1;
            assert_eq!(f.between(), boundary, "after byte {i}");
        }
        // 64-bit length, all at once.
        let mut f = Frames::default();
        let mut wire = vec![0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0x01, 0x00];
        wire.extend(std::iter::repeat_n(0, 255));
        f.advance(&wire);
        assert!(!f.between());
        f.advance(&[0]);
        assert!(f.between());
    }
}
