//! The accept loop shared by every listener, and what each accepted connection carries.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::conn::ConnSettings;
use super::shutdown::{Signal, Token};
use crate::metrics::Metrics;
use crate::tunnel::TunnelContext;

/// One listener's accept loop state.
pub(super) struct AcceptContext {
    conn: ConnContext,
    /// The `max_connections` slots this listener draws from (the public listener's are shared by
    /// every worker).
    permits: Arc<Semaphore>,
}

/// What every connection carries: how to serve HTTP, when to stop, and a token whose drop says
/// "this connection is gone".
#[derive(Clone)]
pub(super) struct ConnContext {
    pub(super) settings: Arc<ConnSettings>,
    pub(super) stop: Signal,
    alive: Token,
    /// This connection's `max_connections` slot (set per connection by the accept loop). Shared
    /// with the tunnel if the connection is upgraded, so the slot is held until the socket closes.
    slot: Option<Arc<OwnedSemaphorePermit>>,
}

impl ConnContext {
    /// What an upgraded connection takes over: the slot, the shutdown token and signal, the
    /// tunnel limits and `metrics` to report to.
    pub(super) fn tunnel(&self, metrics: Option<Arc<Metrics>>) -> TunnelContext {
        TunnelContext {
            slot: self.slot.clone(),
            alive: Some(self.alive.clone()),
            stop: Some(self.stop.clone()),
            grace: self.settings.limits.shutdown_grace,
            idle_timeout: self.settings.limits.tunnel_idle_timeout,
            metrics,
            websocket: false,
        }
    }
}

/// How a listener turns an accepted TCP stream into served HTTP.
pub(super) trait Listen: Send + 'static {
    fn serve(
        self,
        ctx: ConnContext,
        stream: tokio::net::TcpStream,
        peer: SocketAddr,
    ) -> impl Future<Output = ()> + Send;
}

impl AcceptContext {
    pub(super) fn new(
        settings: Arc<ConnSettings>,
        stop: Signal,
        alive: Token,
        permits: Arc<Semaphore>,
    ) -> AcceptContext {
        AcceptContext {
            conn: ConnContext {
                settings,
                stop,
                alive,
                slot: None,
            },
            permits,
        }
    }

    /// Accept first, then wait for a connection slot. With several workers sharing one
    /// `max_connections` budget, taking the slot first would let a worker whose socket has nothing
    /// pending sit in `accept` holding a slot that another worker's waiting client needs. This
    /// way a worker holds at most one accepted-but-waiting connection beyond the cap, and stops
    /// accepting until a slot frees: everyone else waits in the kernel backlog.
    pub(super) async fn accept_loop<L: Listen + Clone>(self, listener: TcpListener, listen: L) {
        let mut stop = self.conn.stop.clone();
        loop {
            let (stream, peer) = tokio::select! {
                _ = stop.recv() => return,
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let permit = tokio::select! {
                _ = stop.recv() => return,
                permit = Arc::clone(&self.permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    // Only a closed semaphore fails, and nothing closes it: stop accepting.
                    Err(_) => return,
                },
            };
            let _ = stream.set_nodelay(true);
            let listen = listen.clone();
            let mut ctx = self.conn.clone();
            // Freed when the connection and any tunnel it became are both gone.
            ctx.slot = Some(Arc::new(permit));
            tokio::spawn(async move {
                listen.serve(ctx, stream, peer).await;
            });
        }
    }
}
