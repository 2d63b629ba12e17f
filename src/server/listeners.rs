//! The public listener (the proxy itself, plain or TLS) and the admin listener.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::accept::{ConnContext, Listen};
use super::conn::serve_http;
use crate::admin::{self, Readiness};
use crate::handler::{self, App};
use crate::metrics::Metrics;
use crate::proxy::ClientInfo;
use crate::tls::Tls;

/// The public listener: the proxy itself.
#[derive(Clone)]
pub(super) struct Public {
    pub(super) app: Arc<ArcSwap<App>>,
    pub(super) tls: Option<Arc<Tls>>,
}

impl Listen for Public {
    async fn serve(self, ctx: ConnContext, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let app = self.app;
        let metrics = Arc::clone(&app.load().metrics);
        metrics.connection_opened();
        let serving = Arc::clone(&metrics);
        let _open = scopeguard(move || metrics.connection_closed());
        match self.tls {
            None => {
                let info = ClientInfo::new(peer, false);
                serve_http(&ctx, stream, peer, Some(serving), move |req| {
                    handler::handle(app.load_full(), req, info.clone())
                })
                .await
            }
            // Boxed: a TLS connection's future holds rustls' state and a TLS stream, and inline it
            // would size every plain connection's task for it too (docs/performance.md §6).
            Some(tls) => Box::pin(serve_tls(ctx, stream, peer, app, tls, serving)).await,
        }
    }
}

/// One HTTPS connection: the handshake, bounded by `limits.tls_handshake_timeout`, then HTTP.
async fn serve_tls(
    ctx: ConnContext,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Arc<ArcSwap<App>>,
    tls: Arc<Tls>,
    metrics: Arc<Metrics>,
) {
    let acceptor = tls.acceptor();
    let handshake = tokio::time::timeout(
        ctx.settings.limits.tls_handshake_timeout,
        acceptor.accept(stream),
    )
    .await;
    metrics.tls_handshake(matches!(handshake, Ok(Ok(_))));
    let stream = match handshake {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let info = ClientInfo::new(peer, true);
    serve_http(&ctx, stream, peer, Some(metrics), move |req| {
        handler::handle(app.load_full(), req, info.clone())
    })
    .await
}

/// The admin listener.
#[derive(Clone)]
pub(super) struct Admin {
    pub(super) app: Arc<ArcSwap<App>>,
    pub(super) ready: Arc<Readiness>,
}

impl Listen for Admin {
    async fn serve(self, ctx: ConnContext, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let (app, ready) = (self.app, self.ready);
        serve_http(&ctx, stream, peer, None, move |req| {
            let res = admin::handle(app.load_full(), Arc::clone(&ready), req);
            async move { (res.await, None) }
        })
        .await
    }
}

/// Runs `f` when dropped, however the scope ends.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
