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

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::admin::{self, Readiness};
use crate::bare_lf::{BareLfGuard, Upgraded, MAX_HEAD};
use arc_swap::ArcSwap;

use crate::config::{Config, Driver, LimitsConfig, Overrides};
use crate::error::{plain, ProxyError, ResponseBody};
use crate::handler::{self, App};
use crate::metrics::Metrics;
use crate::proxy::{target, ClientInfo, Upstream, UpstreamSetupError};
use crate::reload::Reloader;
use crate::session::assertion::{Assertion, AssertionError};
use crate::session::clock::Clock;
use crate::session::store::SessionStore;
use crate::session::store::StoreError;
use crate::session::SessionLayer;
use crate::telemetry::AccessLog;
use crate::tls::{Tls, TlsError};
use crate::tunnel::{self, TunnelContext};

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
        let metrics = Arc::new(Metrics::new(config.sessions.driver.as_str()));
        let session = SessionLayer::from_config(&config.sessions, &config.redis)?
            .with_metrics(Arc::clone(&metrics))
            .with_assertion(Assertion::from_config(config)?)
            .with_clock(clock);
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
        let (listener, worker_listeners) = bind_public(config.listen, workers).await?;
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
                    let (store, now) = {
                        let app = app.load();
                        (app.session.shared_store(), app.session.clock().now())
                    };
                    match store.cleanup(now).await {
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

/// The public listener: one socket, or with several workers one SO_REUSEPORT socket each (the
/// first as a tokio listener for this thread, the rest for the worker threads).
async fn bind_public(
    listen: SocketAddr,
    workers: usize,
) -> Result<(TcpListener, Vec<std::net::TcpListener>), ServeError> {
    if workers <= 1 {
        Ok((bind("listen", listen).await?, Vec::new()))
    } else {
        ensure_unused(listen)?;
        let first = reuseport_listener(listen)?;
        let addr = first.local_addr().map_err(|source| ServeError::Bind {
            setting: "listen",
            addr: listen,
            source,
        })?;
        let extra = (1..workers)
            .map(|_| reuseport_listener(addr))
            .collect::<Result<Vec<_>, _>>()?;
        let first = TcpListener::from_std(first).map_err(|source| ServeError::Bind {
            setting: "listen",
            addr: listen,
            source,
        })?;
        Ok((first, extra))
    }
}

/// A listening socket that other sockets may share (SO_REUSEPORT): one per worker thread.
fn reuseport_listener(addr: SocketAddr) -> Result<std::net::TcpListener, ServeError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let err = |source| ServeError::Bind {
        setting: "listen",
        addr,
        source,
    };
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(err)?;
    socket.set_reuse_address(true).map_err(err)?;
    #[cfg(unix)]
    socket.set_reuse_port(true).map_err(err)?;
    socket.set_nonblocking(true).map_err(err)?;
    socket.bind(&addr.into()).map_err(err)?;
    socket.listen(4096).map_err(err)?;
    Ok(socket.into())
}

/// SO_REUSEPORT lets any process of the same user join a port: a second session-proxy started on
/// the same `listen` would bind silently and split the traffic. A plain socket (no
/// SO_REUSEPORT) cannot bind where anyone listens, so one trial bind tells, as nginx would,
/// "address already in use" before the worker sockets are made.
fn ensure_unused(addr: SocketAddr) -> Result<(), ServeError> {
    if addr.port() == 0 {
        return Ok(());
    }
    std::net::TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| ServeError::Bind {
            setting: "listen",
            addr,
            source,
        })
}

async fn bind(setting: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            setting,
            addr,
            source,
        })
}

/// One listener's accept loop state.
struct AcceptContext {
    conn: ConnContext,
    permits: Arc<Semaphore>,
}

/// What every connection carries: how to serve HTTP, when to stop, and a token whose drop says
/// "this connection is gone".
#[derive(Clone)]
struct ConnContext {
    builder: Arc<auto::Builder<TokioExecutor>>,
    stop: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
    handshake_timeout: Duration,
    header_read_timeout: Duration,
    idle_timeout: Duration,
    /// For tunnels: how long they get after SIGTERM, and how long they may be silent.
    shutdown_grace: Duration,
    tunnel_idle_timeout: Duration,
    /// This connection's `max_connections` slot (set per connection by the accept loop). Shared
    /// with the tunnel if the connection is upgraded, so the slot is held until the socket closes.
    slot: Option<Arc<OwnedSemaphorePermit>>,
}

/// How a listener turns an accepted TCP stream into served HTTP.
trait Listen: Send + 'static {
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
    async fn accept_loop<L: Listen>(self, listener: TcpListener, make: impl Fn() -> L) {
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

/// The public listener: the proxy itself.
struct Public {
    app: Arc<ArcSwap<App>>,
    tls: Option<Arc<Tls>>,
}

impl Listen for Public {
    async fn serve(self, ctx: ConnContext, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let app = self.app;
        let metrics = Arc::clone(&app.load().metrics);
        metrics.connection_opened();
        let tunnels = Some(Arc::clone(&metrics));
        let _open = scopeguard(move || metrics.connection_closed());
        match self.tls {
            None => {
                let info = ClientInfo::new(peer, false);
                serve_http(&ctx, stream, peer, tunnels, move |req| {
                    handler::handle(app.load_full(), req, info.clone())
                })
                .await
            }
            Some(tls) => {
                let acceptor = tls.acceptor();
                let stream = match tokio::time::timeout(
                    ctx.handshake_timeout,
                    acceptor.accept(stream),
                )
                .await
                {
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
                serve_http(&ctx, stream, peer, tunnels, move |req| {
                    handler::handle(app.load_full(), req, info.clone())
                })
                .await
            }
        }
    }
}

/// The admin listener.
struct Admin {
    app: Arc<ArcSwap<App>>,
    ready: Arc<Readiness>,
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

/// The plain listener that sends every request to the HTTPS one.
struct RedirectTo {
    https_port: u16,
    /// `tls.redirect_host`: every `Location` names this host instead of the request's.
    pinned_host: Option<Arc<str>>,
}

impl Listen for RedirectTo {
    async fn serve(self, ctx: ConnContext, stream: tokio::net::TcpStream, peer: SocketAddr) {
        let RedirectTo {
            https_port,
            pinned_host,
        } = self;
        serve_http(&ctx, stream, peer, None, move |req| {
            let res = redirect(&req, https_port, pinned_host.as_deref());
            async move { (res, None) }
        })
        .await
    }
}

/// 308 keeps the method and body, unlike 301/302. The request passes the public listener's
/// target checks first: an open redirect to a foreign authority (absolute-form, a doubled or
/// malformed `Host`, `CONNECT`) is a 400 here as it is there.
fn redirect(
    req: &Request<Incoming>,
    https_port: u16,
    pinned_host: Option<&str>,
) -> Response<ResponseBody> {
    if let Err(e) = target::check(req.method(), req.uri(), req.version(), req.headers()) {
        return ProxyError::BadTarget(e).into_response();
    }
    let authority = match pinned_host {
        Some(pinned) => pinned.to_owned(),
        None => {
            let host = target::host_of(req.uri(), req.headers())
                .and_then(|h| h.to_str().ok()?.parse::<http::uri::Authority>().ok());
            let Some(host) = host else {
                return ProxyError::BadTarget(target::TargetError::MissingHost).into_response();
            };
            if https_port == 443 {
                host.host().to_owned()
            } else {
                format!("{}:{https_port}", host.host())
            }
        }
    };
    let pq = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(location) = HeaderValue::try_from(format!("https://{authority}{pq}")) else {
        return ProxyError::BadRequest("the target cannot be redirected").into_response();
    };
    let mut res = plain(StatusCode::PERMANENT_REDIRECT, "Moved to HTTPS\n");
    res.headers_mut().insert(header::LOCATION, location);
    res
}

/// Serves one connection. `tunnels`: the metrics an upgraded connection reports to (`None` on
/// listeners that never upgrade). `handle` answers a request and may hand over its access line,
/// which [`Tracked`] writes when the response body is done.
async fn serve_http<IO, F, Fut>(
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

/// One connection's streams in progress (HTTP/2) or request in progress (HTTP/1.1), and when the
/// last one ended: what `limits.idle_timeout` measures. A stream lasts until its response body
/// has been sent (or the stream reset), not just until the response head: a long download is
/// not idleness.
struct Activity {
    start: tokio::time::Instant,
    open: AtomicUsize,
    /// Milliseconds from `start` to the end of the last stream.
    last_end_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            start: tokio::time::Instant::now(),
            open: AtomicUsize::new(0),
            last_end_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> StreamGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        StreamGuard(Arc::clone(self))
    }

    /// How long the connection has had no open stream; `None` while one is open.
    fn idle_for(&self) -> Option<Duration> {
        if self.open.load(Ordering::Acquire) > 0 {
            return None;
        }
        let since_start = self.start.elapsed();
        let last = Duration::from_millis(self.last_end_ms.load(Ordering::Acquire));
        Some(since_start.saturating_sub(last))
    }
}

/// Ends its stream when dropped: with the response body, or with the service future if the
/// stream was reset before the response.
struct StreamGuard(Arc<Activity>);

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
    struct Tracked<B> {
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
    fn new(inner: B, stream: StreamGuard, access: Option<Box<AccessLog>>) -> Self {
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

fn connection_builder(limits: &LimitsConfig) -> auto::Builder<TokioExecutor> {
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

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let term = async {
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    term.recv().await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch for SIGTERM; only SIGINT stops the proxy");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = term => tracing::info!("SIGTERM received"),
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
