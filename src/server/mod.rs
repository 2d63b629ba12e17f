//! The listeners: the public one (plain HTTP, or HTTPS when `tls` is configured), the optional
//! HTTP→HTTPS redirect listener, HTTP/1.1 and HTTP/2 on one port (ALPN over TLS, prior knowledge
//! in clear text), connection limits, timeouts and graceful shutdown.
//!
//! Connection limit: one semaphore of `limits.max_connections` slots shared by every worker; a
//! worker that has accepted a connection waits for a slot before accepting another, so beyond the
//! limit new clients wait in the kernel's backlog instead of being accepted and starved. Shutdown (the mini-redis pattern): a `watch` channel tells the accept loops to stop and
//! every live connection to finish its in-flight request and close; each connection holds a clone
//! of an `mpsc::Sender`, so when the receiver sees the channel close, every connection is gone. The
//! wait is bounded by `limits.shutdown_grace`.
//!
//! An upgraded connection (WebSocket) outlives hyper's connection task, so the slot and the
//! shutdown token travel with it into [`crate::tunnel`]: the slot is freed, and shutdown stops
//! waiting, only when the socket is closed.
//!
//! Idle connections: `limits.idle_timeout` closes a connection with no request in progress
//! (HTTP/1.1) or no open stream (HTTP/2, with a GOAWAY first); see `Activity`. Every client
//! byte passes through [`crate::bare_lf::BareLfGuard`] before hyper parses it.

mod accept;
mod activity;
mod bind;
mod conn;
mod listeners;
mod redirect;
mod shutdown;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

use crate::admin::Readiness;
use crate::config::{Config, Driver, LimitsConfig, Overrides};
use crate::handler::App;
use crate::metrics::Metrics;
use crate::proxy::{Upstream, UpstreamSetupError};
use crate::reload::Reloader;
use crate::session::assertion::{Assertion, AssertionError};
use crate::session::store::StoreError;
use crate::session::store::{now_millis, SessionStore};
use crate::session::SessionLayer;
use crate::tls::{Tls, TlsError};
use accept::{AcceptContext, ConnContext};
use bind::{bind, ensure_unused, reuseport_listener};
use conn::connection_builder;
use listeners::{Admin, Public};
use redirect::RedirectTo;
pub use shutdown::shutdown_signal;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listen address is taken (by another process, or another session-proxy) or not ours.
    #[error("cannot listen on {addr} ({setting})")]
    Bind {
        setting: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Upstream(#[from] UpstreamSetupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Assertion(#[from] AssertionError),
}

pub struct Server {
    listener: TcpListener,
    /// Where `listener` is bound (the real port when `listen` asked for port 0).
    addr: SocketAddr,
    /// One more listening socket on the same address per extra worker thread (SO_REUSEPORT).
    worker_listeners: Vec<std::net::TcpListener>,
    /// The redirect listener and `tls.redirect_host`.
    redirect: Option<(TcpListener, Option<Arc<str>>)>,
    admin: Option<TcpListener>,
    ready: Arc<Readiness>,
    app: Arc<ArcSwap<App>>,
    tls: Option<Arc<Tls>>,
    limits: LimitsConfig,
    sweep_every: Option<Duration>,
}

impl Server {
    /// Loads certificates, builds the request pipeline and binds the listeners. Nothing is
    /// accepted until [`Server::run`].
    pub async fn bind(config: &Config) -> Result<Server, ServeError> {
        Self::bind_workers(config, 1).await
    }

    /// Like [`Server::bind`], with `workers` accept threads (`0`: `limits.workers`, or one per
    /// core). Each extra worker gets its own socket on the same address (SO_REUSEPORT), so the
    /// kernel spreads connections and a connection's whole life stays on one thread.
    pub async fn bind_workers(config: &Config, workers: usize) -> Result<Server, ServeError> {
        let tls = match &config.tls {
            Some(cfg) => Some(Arc::new(Tls::load(cfg)?)),
            None => None,
        };
        let metrics = Arc::new(Metrics::new(config.sessions.driver.as_str()));
        let session = SessionLayer::from_config(&config.sessions, &config.redis)?
            .with_metrics(Arc::clone(&metrics))
            .with_assertion(Assertion::from_config(config)?);
        let app = Arc::new(ArcSwap::from_pointee(App {
            metrics,
            session,
            upstream: Arc::new(Upstream::new(&config.upstream, &config.trusted_proxies)?),
        }));
        let workers = match (workers, config.limits.workers) {
            (0, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            (0, n) => n,
            (n, _) => n,
        };
        let (listener, worker_listeners) = if workers <= 1 {
            (bind("listen", config.listen).await?, Vec::new())
        } else {
            ensure_unused(config.listen)?;
            let first = reuseport_listener(config.listen)?;
            let addr = first.local_addr().map_err(|source| ServeError::Bind {
                setting: "listen",
                addr: config.listen,
                source,
            })?;
            let extra = (1..workers)
                .map(|_| reuseport_listener(addr))
                .collect::<Result<Vec<_>, _>>()?;
            let first = TcpListener::from_std(first).map_err(|source| ServeError::Bind {
                setting: "listen",
                addr: config.listen,
                source,
            })?;
            (first, extra)
        };
        let redirect = match config.tls.as_ref().and_then(|t| t.redirect_http) {
            Some(addr) => Some((
                bind("tls.redirect_http", addr).await?,
                config
                    .tls
                    .as_ref()
                    .and_then(|t| t.redirect_host.as_deref())
                    .map(Arc::<str>::from),
            )),
            None => None,
        };
        let admin = match config.admin_listen {
            Some(addr) => Some(bind("admin_listen", addr).await?),
            None => None,
        };
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            setting: "listen",
            addr: config.listen,
            source,
        })?;
        Ok(Server {
            addr,
            listener,
            worker_listeners,
            redirect,
            admin,
            ready: Arc::new(Readiness::default()),
            sweep_every: match config.sessions.driver {
                Driver::Cookie => None,
                // The memory store has nothing else to evict expired sessions.
                Driver::Memory => Some(
                    config
                        .sessions
                        .cleanup_interval
                        .unwrap_or(Duration::from_secs(60)),
                ),
                // Redis TTLs do the work; the sweep only catches keys that lost their TTL.
                Driver::Redis => config.sessions.cleanup_interval,
            },
            app,
            tls,
            limits: config.limits.clone(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn redirect_addr(&self) -> Option<SocketAddr> {
        self.redirect
            .as_ref()
            .and_then(|(l, _)| l.local_addr().ok())
    }

    /// The handle that re-reads `path` and applies it live (SIGHUP).
    pub fn reloader(&self, path: PathBuf, overrides: Overrides, config: Config) -> Reloader {
        Reloader::new(
            path,
            overrides,
            config,
            Arc::clone(&self.app),
            self.tls.clone(),
        )
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests (bounded by
    /// `limits.shutdown_grace`).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let builder = Arc::new(connection_builder(&self.limits));
        let (stop_tx, stop_rx) = watch::channel(false);
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let context = |permits: usize| AcceptContext {
            conn: ConnContext {
                builder: Arc::clone(&builder),
                stop: stop_rx.clone(),
                _alive: alive_tx.clone(),
                handshake_timeout: self.limits.tls_handshake_timeout,
                header_read_timeout: self.limits.header_read_timeout,
                idle_timeout: self.limits.idle_timeout,
                shutdown_grace: self.limits.shutdown_grace,
                tunnel_idle_timeout: self.limits.tunnel_idle_timeout,
                slot: None,
            },
            permits: Arc::new(Semaphore::new(permits)),
        };

        let mut loops = tokio::task::JoinSet::new();
        if let Some(every) = self.sweep_every {
            let app = Arc::clone(&self.app);
            let mut stop = stop_rx.clone();
            loops.spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tick.tick() => {}
                    }
                    let store = app.load().session.shared_store();
                    match store.cleanup(now_millis()).await {
                        Ok(r) if r.removed > 0 => tracing::info!(
                            removed = r.removed,
                            scanned = r.scanned,
                            "swept expired sessions"
                        ),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "session sweep failed"),
                    }
                }
            });
        }
        if let Some((redirect, pinned_host)) = self.redirect {
            let https_port = self.listener.local_addr().map(|a| a.port()).unwrap_or(443);
            let ctx = context(self.limits.max_connections);
            loops.spawn(async move {
                ctx.accept_loop(redirect, move || RedirectTo {
                    https_port,
                    pinned_host: pinned_host.clone(),
                })
                .await
            });
        }
        if let Some(admin) = self.admin {
            let ctx = context(64);
            let (app, ready) = (Arc::clone(&self.app), Arc::clone(&self.ready));
            loops.spawn(async move {
                ctx.accept_loop(admin, move || Admin {
                    app: Arc::clone(&app),
                    ready: Arc::clone(&ready),
                })
                .await
            });
        }
        let public_permits = Arc::new(Semaphore::new(self.limits.max_connections));
        let public = {
            let (app, tls) = (Arc::clone(&self.app), self.tls.clone());
            move || Public {
                app: Arc::clone(&app),
                tls: tls.clone(),
            }
        };
        let mut threads = Vec::new();
        // Each worker reports when its accept loop has ended and its listening socket is closed,
        // so "shutting down" is logged (and new connections refused) only once all of them are.
        let (closed_tx, mut closed_rx) = mpsc::channel::<()>(1);
        for (i, std_listener) in self.worker_listeners.into_iter().enumerate() {
            let (public, permits) = (public.clone(), Arc::clone(&public_permits));
            let (builder, stop, grace) = (
                Arc::clone(&builder),
                stop_rx.clone(),
                self.limits.shutdown_grace,
            );
            let limits = self.limits.clone();
            let closed = closed_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("worker-{}", i + 1))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            tracing::error!(error = %e, "cannot start a worker runtime");
                            return;
                        }
                    };
                    rt.block_on(async move {
                        crate::worker::pin(i + 1);
                        let Ok(listener) = TcpListener::from_std(std_listener) else {
                            return;
                        };
                        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
                        let ctx = AcceptContext {
                            conn: ConnContext {
                                builder,
                                stop,
                                _alive: alive_tx,
                                handshake_timeout: limits.tls_handshake_timeout,
                                header_read_timeout: limits.header_read_timeout,
                                idle_timeout: limits.idle_timeout,
                                shutdown_grace: limits.shutdown_grace,
                                tunnel_idle_timeout: limits.tunnel_idle_timeout,
                                slot: None,
                            },
                            permits,
                        };
                        ctx.accept_loop(listener, public).await;
                        drop(closed);
                        let _ = tokio::time::timeout(grace, alive_rx.recv()).await;
                    });
                });
            match spawned {
                Ok(handle) => threads.push(handle),
                Err(e) => tracing::error!(error = %e, "cannot start a worker thread"),
            }
        }
        let mut ctx = context(0);
        ctx.permits = public_permits;
        let listener = self.listener;
        loops.spawn(async move { ctx.accept_loop(listener, public).await });
        drop(alive_tx);

        shutdown.await;
        self.ready.stopping();
        let _ = stop_tx.send(true);
        while loops.join_next().await.is_some() {}
        drop(closed_tx);
        let _ = closed_rx.recv().await;

        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        tokio::select! {
            _ = alive_rx.recv() => tracing::info!("all connections closed"),
            _ = tokio::time::sleep(self.limits.shutdown_grace) => {
                tracing::warn!(grace = ?self.limits.shutdown_grace, "shutdown grace period over; closing remaining connections")
            }
        }
        // Each worker drains its own connections within the same grace period.
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        Ok(())
    }
}
