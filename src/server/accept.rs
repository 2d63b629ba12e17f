//! The accept loop shared by every listener, and what each accepted connection carries.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

/// One listener's accept loop state.
pub(super) struct AcceptContext {
    pub(super) conn: ConnContext,
    pub(super) permits: Arc<Semaphore>,
}

/// What every connection carries: how to serve HTTP, when to stop, and a token whose drop says
/// "this connection is gone".
#[derive(Clone)]
pub(super) struct ConnContext {
    pub(super) builder: Arc<auto::Builder<TokioExecutor>>,
    pub(super) stop: watch::Receiver<bool>,
    pub(super) _alive: mpsc::Sender<()>,
    pub(super) handshake_timeout: Duration,
    pub(super) header_read_timeout: Duration,
    pub(super) idle_timeout: Duration,
    /// For tunnels: how long they get after SIGTERM, and how long they may be silent.
    pub(super) shutdown_grace: Duration,
    pub(super) tunnel_idle_timeout: Duration,
    /// This connection's `max_connections` slot (set per connection by the accept loop). Shared
    /// with the tunnel if the connection is upgraded, so the slot is held until the socket closes.
    pub(super) slot: Option<Arc<OwnedSemaphorePermit>>,
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
    /// Accept first, then wait for a connection slot. With several workers sharing one
    /// `max_connections` budget, taking the slot first would let a worker whose socket has nothing
    /// pending sit in `accept` holding a slot that another worker's waiting client needs. This
    /// way a worker holds at most one accepted-but-waiting connection beyond the cap, and stops
    /// accepting until a slot frees: everyone else waits in the kernel backlog.
    pub(super) async fn accept_loop<L: Listen>(self, listener: TcpListener, make: impl Fn() -> L) {
        let mut stop = self.conn.stop.clone();
        loop {
            let (stream, peer) = tokio::select! {
                _ = stop.changed() => return,
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
                _ = stop.changed() => return,
                permit = Arc::clone(&self.permits).acquire_owned() => match permit {
                    Ok(permit) => permit,
                    // Only a closed semaphore fails, and nothing closes it: stop accepting.
                    Err(_) => return,
                },
            };
            let _ = stream.set_nodelay(true);
            let listen = make();
            let mut ctx = self.conn.clone();
            // Freed when the connection and any tunnel it became are both gone.
            ctx.slot = Some(Arc::new(permit));
            tokio::spawn(async move {
                listen.serve(ctx, stream, peer).await;
            });
        }
    }
}
