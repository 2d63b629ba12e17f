//! Live configuration reload (SIGHUP).
//!
//! The request pipeline ([`App`]) sits behind an `ArcSwap`: each request takes the current one, a
//! reload builds a new one and swaps it in, and requests already running finish on the old one.
//!
//! What reloads live: `upstream.*`, the cookie attributes and lifetimes, the secrets (cookie
//! store), the TLS certificate files, and the `assertion` block (key rotation). What needs a restart, because it is bound to sockets or
//! to state that must not be thrown away: `listen`, `admin_listen`, `tls.redirect_http`, turning TLS
//! on or off, `sessions.driver`, the `redis` section, `sessions.idle_timeout` of a server-side store
//! and `limits`. A reload that changes one of those logs a warning naming it and keeps the running
//! value; an invalid file is rejected whole with an error log, and the old config stays.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::config::{Config, ConfigError, Driver, Overrides};
use crate::handler::{App, Running};
use crate::proxy::UpstreamSetupError;
use crate::session::assertion::AssertionError;
use crate::session::store::StoreError;
use crate::tls::{Tls, TlsError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Upstream(#[from] UpstreamSetupError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A certificate that does not load, with the setting naming its file.
    #[error("{setting}")]
    Tls {
        setting: &'static str,
        #[source]
        source: TlsError,
    },
    #[error(transparent)]
    Assertion(#[from] AssertionError),
}

/// What a successful reload did.
#[derive(Debug, Default)]
pub struct Reloaded {
    /// Settings that changed in the file but need a restart to take effect.
    pub needs_restart: Vec<&'static str>,
    /// The certificate and key were read again.
    pub tls_reloaded: bool,
}

pub struct Reloader {
    path: PathBuf,
    overrides: Overrides,
    current: Mutex<Config>,
    app: Arc<ArcSwap<App>>,
    tls: Option<Arc<Tls>>,
}

impl Reloader {
    pub fn new(
        path: PathBuf,
        overrides: Overrides,
        config: Config,
        app: Arc<ArcSwap<App>>,
        tls: Option<Arc<Tls>>,
    ) -> Reloader {
        Reloader {
            path,
            overrides,
            current: Mutex::new(config),
            app,
            tls,
        }
    }

    /// Applies every SIGHUP until the process ends. A reload reads files and may load the
    /// platform's root certificates: blocking work, done on the blocking pool rather than on the
    /// runtime thread that called this, which also serves connections (worker 0).
    #[cfg(unix)]
    pub async fn on_sighup(self) {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        let reloader = Arc::new(self);
        while hup.recv().await.is_some() {
            let this = Arc::clone(&reloader);
            match tokio::task::spawn_blocking(move || this.reload()).await {
                Ok(Ok(done)) => {
                    tracing::info!("SIGHUP: configuration reloaded");
                    if done.tls_reloaded {
                        tracing::info!("SIGHUP: TLS certificate reloaded");
                    }
                    for setting in done.needs_restart {
                        tracing::warn!(setting, "SIGHUP: this setting changed but needs a restart; the running value stays");
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %crate::error::chain(&e), "SIGHUP: reload failed; keeping the previous configuration and certificate")
                }
                Err(e) => {
                    tracing::error!(error = %e, "SIGHUP: the reload did not finish; keeping the previous configuration and certificate")
                }
            }
        }
    }

    /// Re-reads the file (and the environment) and applies what can be applied live. Every
    /// attempt is counted in `session_proxy_config_reloads_total{result}`; a success also sets
    /// `session_proxy_config_last_reload_success_timestamp_seconds`.
    pub fn reload(&self) -> Result<Reloaded, ReloadError> {
        let result = self.apply();
        self.app.load().metrics.config_reload(result.is_ok());
        result
    }

    fn apply(&self) -> Result<Reloaded, ReloadError> {
        let new = Config::load(&self.path, &self.overrides)?;
        let old = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        // The admin listener stays bound where it was: a file that moves it to loopback must not
        // take the token off a listener that is still reachable from elsewhere.
        new.check_admin_token(old.admin_listen)?;
        let mut done = Reloaded {
            needs_restart: needs_restart(&old, &new),
            ..Reloaded::default()
        };
        let server_side = old.sessions.driver != Driver::Cookie;

        // Build everything before swapping anything, so a failure changes nothing.
        let current = self.app.load_full();
        let mut effective = new.clone();
        effective.sessions.driver = old.sessions.driver;
        if server_side {
            effective.sessions.idle_timeout = old.sessions.idle_timeout;
            effective.sessions.owner_key = old.sessions.owner_key.clone();
        }
        effective.redis = old.redis.clone();
        let same_upstream = serde_norway::to_string(&old.upstream).ok()
            == serde_norway::to_string(&new.upstream).ok()
            && old.trusted_proxies == new.trusted_proxies;
        let app = App::build::<ReloadError>(
            &effective,
            current.session.clock().clone(),
            Some(Running {
                app: &current,
                same_upstream,
            }),
        )?;
        if let (Some(tls), Some(cfg)) = (&self.tls, &new.tls) {
            tls.reload_from(cfg).map_err(|source| ReloadError::Tls {
                setting: source.setting(cfg),
                source,
            })?;
            done.tls_reloaded = true;
        }
        self.app.store(Arc::new(app));

        let mut applied = new;
        applied.listen = old.listen;
        applied.admin_listen = old.admin_listen;
        applied.sessions.driver = old.sessions.driver;
        if server_side {
            applied.sessions.owner_key = old.sessions.owner_key;
        }
        applied.redis = old.redis;
        applied.limits = old.limits;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = applied;
        Ok(done)
    }
}

/// The settings that changed but only take effect after a restart: they are bound to sockets, or
/// to the running store.
fn needs_restart(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut found = Vec::new();
    let mut note = |changed: bool, what: &'static str| {
        if changed {
            found.push(what);
        }
    };
    note(old.listen != new.listen, "listen");
    note(old.admin_listen != new.admin_listen, "admin_listen");
    note(old.tls.is_some() != new.tls.is_some(), "tls (on/off)");
    note(
        old.tls.as_ref().and_then(|t| t.redirect_http)
            != new.tls.as_ref().and_then(|t| t.redirect_http),
        "tls.redirect_http",
    );
    note(
        old.sessions.driver != new.sessions.driver,
        "sessions.driver",
    );
    let server_side = old.sessions.driver != Driver::Cookie;
    note(
        server_side && old.sessions.idle_timeout != new.sessions.idle_timeout,
        "sessions.idle_timeout",
    );
    // The store indexes sessions by owner under the names it was built with.
    note(
        server_side && old.sessions.owner_key != new.sessions.owner_key,
        "sessions.owner_key",
    );
    note(
        server_side
            && old.sessions.owner_key.is_some()
            && (old.sessions.secret != new.sessions.secret
                || old.sessions.previous_secrets != new.sessions.previous_secrets),
        "sessions.secret (it names the owner index)",
    );
    note(
        serde_norway::to_string(&old.redis).ok() != serde_norway::to_string(&new.redis).ok(),
        "redis",
    );
    note(
        serde_norway::to_string(&old.limits).ok() != serde_norway::to_string(&new.limits).ok(),
        "limits",
    );
    found
}
