//! Graceful shutdown, in the pattern of tokio's mini-redis: one [`Signal`] tells every accept
//! loop, connection, tunnel and background task to stop, and a [`Drain`] waits until everything
//! holding one of its [`Token`]s is gone (each holds a clone of one `mpsc::Sender`; the receiver
//! sees the channel close when the last clone is dropped). [`shutdown_signal`] is the OS side.

use tokio::sync::{mpsc, watch};

/// Fires the [`Signal`]; held by `Server::run`.
pub struct Trigger(watch::Sender<bool>);

impl Trigger {
    pub fn new() -> (Trigger, Signal) {
        let (tx, rx) = watch::channel(false);
        (Trigger(tx), Signal(rx))
    }

    /// Starts shutdown: every [`Signal`] resolves from now on.
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

/// Where a listener, connection, tunnel or background task learns that shutdown has begun.
#[derive(Clone, Debug)]
pub struct Signal(watch::Receiver<bool>);

impl Signal {
    /// Shutdown has begun.
    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once shutdown has begun, or once the [`Trigger`] is gone (the server that would
    /// fire it no longer runs, so nothing is left to wait for).
    pub async fn recv(&mut self) {
        let _ = self.0.wait_for(|stopping| *stopping).await;
    }
}

/// Held by whatever shutdown must wait for (a connection, a tunnel, a worker's accept loop);
/// dropping the last one completes its [`Drain`].
#[derive(Clone, Debug)]
pub struct Token {
    _held: mpsc::Sender<()>,
}

/// Waits until every [`Token`] it handed out is dropped.
pub struct Drain {
    own: mpsc::Sender<()>,
    done: mpsc::Receiver<()>,
}

impl Default for Drain {
    fn default() -> Self {
        Self::new()
    }
}

impl Drain {
    pub fn new() -> Drain {
        let (own, done) = mpsc::channel(1);
        Drain { own, done }
    }

    /// A token for something to wait for.
    pub fn token(&self) -> Token {
        Token {
            _held: self.own.clone(),
        }
    }

    /// Resolves when every token has been dropped (callers bound it with their grace period).
    pub async fn wait(self) {
        let Drain { own, mut done } = self;
        drop(own);
        // Nothing is ever sent: `recv` returns `None` once the last sender is dropped.
        let _ = done.recv().await;
    }
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
