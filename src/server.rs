//! The listener: accept loop, HTTP/1.1 and HTTP/2 (h2c prior knowledge) on one port, connection
//! limits, timeouts and graceful shutdown.
//!
//! Connection limit: a semaphore permit is taken *before* `accept`, so beyond
//! `limits.max_connections` new clients wait in the kernel's backlog instead of being accepted and
//! starved. Shutdown: the accept loop stops, every live connection is told to finish its in-flight
//! request and close (hyper-util's `GracefulShutdown`), and the process waits for them up to
//! `limits.shutdown_grace`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::{Config, LimitsConfig};
use crate::handler::{self, App};
use crate::proxy::{ClientInfo, Upstream, UpstreamSetupError};
use crate::session::store::StoreError;
use crate::session::SessionLayer;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listen address is taken or not ours.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Upstream(#[from] UpstreamSetupError),
    #[error("session store: {0}")]
    Store(#[from] StoreError),
}

pub struct Server {
    listener: TcpListener,
    app: Arc<App>,
    limits: LimitsConfig,
}

impl Server {
    /// Binds the listener and builds the request pipeline. Nothing is accepted until [`run`].
    ///
    /// [`run`]: Server::run
    pub async fn bind(config: &Config) -> Result<Server, ServeError> {
        let app = Arc::new(App {
            session: SessionLayer::from_config(&config.sessions, &config.redis)?,
            upstream: Upstream::new(&config.upstream)?,
        });
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Ok(Server {
            listener,
            app,
            limits: config.limits.clone(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn app(&self) -> Arc<App> {
        Arc::clone(&self.app)
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests (bounded by
    /// `limits.shutdown_grace`).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let builder = Arc::new(connection_builder(&self.limits));
        let graceful = GracefulShutdown::new();
        let permits = Arc::new(Semaphore::new(self.limits.max_connections));
        tokio::pin!(shutdown);

        loop {
            let permit = tokio::select! {
                _ = &mut shutdown => break,
                permit = Arc::clone(&permits).acquire_owned() => permit.expect("never closed"),
            };
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            let info = ClientInfo { peer, tls: false };
            let conn = serve_connection(
                &builder,
                &graceful,
                Arc::clone(&self.app),
                stream,
                info,
                self.limits.header_read_timeout,
            );
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                drop(permit);
            });
        }

        drop(self.listener);
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        tokio::select! {
            _ = graceful.shutdown() => tracing::info!("all connections closed"),
            _ = tokio::time::sleep(self.limits.shutdown_grace) => {
                tracing::warn!(grace = ?self.limits.shutdown_grace, "shutdown grace period over; closing remaining connections")
            }
        }
        Ok(())
    }
}

fn connection_builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(256)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .max_header_list_size(64 * 1024);
    builder
}

fn serve_connection<IO>(
    builder: &auto::Builder<TokioExecutor>,
    graceful: &GracefulShutdown,
    app: Arc<App>,
    io: IO,
    info: ClientInfo,
    header_read_timeout: Duration,
) -> impl Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let first_request = Arc::new(AtomicBool::new(false));
    let seen = Arc::clone(&first_request);
    let service = service_fn(move |req| {
        seen.store(true, Ordering::Release);
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(handler::handle(app, req, info).await) }
    });
    let conn = builder
        .serve_connection_with_upgrades(TokioIo::new(io), service)
        .into_owned();
    let conn = graceful.watch(conn);
    // hyper's header_read_timeout only starts once the auto builder has told HTTP/1 from HTTP/2,
    // and that detection waits without a deadline for the first bytes (up to the 24-byte h2
    // preface). So a client that connects and sends nothing, or a slow partial preface, would
    // hold its connection slot forever. Bound the time to the first complete request head.
    async move {
        tokio::pin!(conn);
        tokio::select! {
            res = &mut conn => return res,
            _ = tokio::time::sleep(header_read_timeout) => {}
        }
        if !first_request.load(Ordering::Acquire) {
            return Err("no request head within limits.header_read_timeout".into());
        }
        conn.await
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
