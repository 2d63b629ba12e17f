//! The listeners: the public one (plain HTTP, or HTTPS when `tls` is configured), the optional
//! HTTP→HTTPS redirect listener and the admin listener; HTTP/1.1 and HTTP/2 on one port (ALPN
//! over TLS, prior knowledge in clear text), connection limits, timeouts and graceful shutdown.
//!
//! - [`Server`] binds the sockets and runs: the main thread's accept loops, the extra workers
//!   (`workers`, thread-per-core, one SO_REUSEPORT socket each: `bind`), the session sweeper,
//!   then the drain.
//! - `accept`: the accept loop every listener shares, and what each connection carries.
//! - `negotiate`: which HTTP a connection speaks, decided before hyper gets it; `conn`: one
//!   connection's life in hyper; `activity`: what `limits.idle_timeout` measures.
//! - `listeners` (public, admin) and `redirect`: what each listener serves.
//! - [`shutdown`]: the signal that stops everything and the drain that waits for it.
//!
//! Connection limit: one semaphore of `limits.max_connections` slots shared by every worker; a
//! worker that has accepted a connection waits for a slot before accepting another, so beyond the
//! limit new clients wait in the kernel's backlog instead of being accepted and starved.
//!
//! Shutdown (the mini-redis pattern): the signal tells the accept loops to stop and every live
//! connection to finish its in-flight request and close; each connection holds a drain token, so
//! when the drain completes, every connection is gone. The wait is bounded by
//! `limits.shutdown_grace`. An upgraded connection (WebSocket) outlives hyper's connection task,
//! so the slot and the token travel with it into [`crate::tunnel`]: the slot is freed, and
//! shutdown stops waiting, only when the socket is closed.
//!
//! Idle connections: `limits.idle_timeout` closes a connection with no request in progress
//! (HTTP/1.1) or no open stream (HTTP/2, with a GOAWAY first). Every client byte passes through
//! [`crate::bare_lf::BareLfGuard`] before hyper parses it.

mod accept;
mod activity;
mod bind;
mod conn;
mod listeners;
mod negotiate;
mod redirect;
pub mod shutdown;
mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::admin::Readiness;
use crate::config::{Config, LimitsConfig, Overrides};
use crate::handler::App;
use crate::proxy::UpstreamSetupError;
use crate::reload::Reloader;
use crate::session::assertion::AssertionError;
use crate::session::clock::Clock;
use crate::session::store::StoreError;
use crate::session::sweeper::Sweeper;
use crate::tls::{Tls, TlsError};
use accept::AcceptContext;
use bind::{bind, bind_public, PublicSockets};
use conn::ConnSettings;
use listeners::{Admin, Public};
use redirect::RedirectTo;
pub use shutdown::shutdown_signal;
use shutdown::{Drain, Trigger};
use workers::{spawn_workers, Shared};

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
    /// The main thread's public socket, where it is bound, and the extra workers' sockets.
    public: PublicSockets,
    /// The redirect listener and `tls.redirect_host`.
    redirect: Option<(TcpListener, Option<Arc<str>>)>,
    admin: Option<TcpListener>,
    ready: Arc<Readiness>,
    app: Arc<ArcSwap<App>>,
    tls: Option<Arc<Tls>>,
    limits: LimitsConfig,
    sweeper: Option<Sweeper>,
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
        Self::bind_inner(config, workers, Clock::System).await
    }

    /// Like [`Server::bind`], with every session expiry decision taken from `clock`: tests run
    /// the real server in-process with a [`ManualClock`](crate::session::clock::ManualClock) and
    /// move it instead of sleeping.
    pub async fn bind_with_clock(config: &Config, clock: Clock) -> Result<Server, ServeError> {
        Self::bind_inner(config, 1, clock).await
    }

    async fn bind_inner(
        config: &Config,
        workers: usize,
        clock: Clock,
    ) -> Result<Server, ServeError> {
        let tls = match &config.tls {
            Some(cfg) => Some(Arc::new(Tls::load(cfg)?)),
            None => None,
        };
        let app = App::build::<ServeError>(config, clock, None)?;
        let sweeper = Sweeper::new(&app.session, &config.sessions);
        let app = Arc::new(ArcSwap::from_pointee(app));
        let workers = match (workers, config.limits.workers) {
            (0, 0) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            (0, n) => n,
            (n, _) => n,
        };
        let public = bind_public(config.listen, workers).await?;
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
        Ok(Server {
            public,
            redirect,
            admin,
            ready: Arc::new(Readiness::default()),
            sweeper,
            app,
            tls,
            limits: config.limits.clone(),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.public.addr
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
        let settings = Arc::new(ConnSettings::new(&self.limits));
        let (trigger, stop) = Trigger::new();
        let drain = Drain::new();
        let mut loops = tokio::task::JoinSet::new();
        if let Some(sweeper) = self.sweeper {
            let mut stop = stop.clone();
            loops.spawn(sweeper.run(async move { stop.recv().await }));
        }
        let side = |permits: usize| {
            let permits = Arc::new(Semaphore::new(permits));
            AcceptContext::new(Arc::clone(&settings), stop.clone(), drain.token(), permits)
        };
        if let Some((listener, pinned_host)) = self.redirect {
            let https_port = self.public.addr.port();
            let ctx = side(self.limits.max_connections);
            let redirect = RedirectTo {
                https_port,
                pinned_host,
            };
            loops.spawn(ctx.accept_loop(listener, redirect));
        }
        if let Some(listener) = self.admin {
            let (app, ready) = (Arc::clone(&self.app), Arc::clone(&self.ready));
            loops.spawn(side(64).accept_loop(listener, Admin { app, ready }));
        }
        let shared = Shared {
            settings: Arc::clone(&settings),
            stop: stop.clone(),
            permits: Arc::new(Semaphore::new(self.limits.max_connections)),
            public: Public {
                app: Arc::clone(&self.app),
                tls: self.tls.clone(),
            },
        };
        let mut workers = spawn_workers(self.public.extra, &shared);
        let main = AcceptContext::new(settings, stop, drain.token(), shared.permits);
        loops.spawn(main.accept_loop(self.public.listener, shared.public));

        shutdown.await;
        self.ready.stopping();
        trigger.fire();
        while loops.join_next().await.is_some() {}
        workers.stopped_accepting().await;

        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let grace = self.limits.shutdown_grace;
        match tokio::time::timeout(grace, drain.wait()).await {
            Ok(()) => tracing::info!("all connections closed"),
            Err(_) => tracing::warn!(
                ?grace,
                "shutdown grace period over; closing remaining connections"
            ),
        }
        workers.join().await;
        Ok(())
    }
}
