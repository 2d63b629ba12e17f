//! The extra worker threads (thread-per-core): each runs its own single-threaded runtime with an
//! accept loop on its own SO_REUSEPORT socket, and drains its own connections at shutdown.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::accept::AcceptContext;
use super::conn::ConnSettings;
use super::listeners::Public;
use super::shutdown::{Drain, Signal, Token};

/// What every worker shares with the main thread's public listener.
#[derive(Clone)]
pub(super) struct Shared {
    pub(super) settings: Arc<ConnSettings>,
    pub(super) stop: Signal,
    /// The one `max_connections` budget of the public listener.
    pub(super) permits: Arc<Semaphore>,
    pub(super) public: Public,
}

/// The running worker threads.
pub(super) struct Workers {
    threads: Vec<JoinHandle<()>>,
    /// Each worker holds a token until its accept loop has ended and its listening socket is
    /// closed, so "shutting down" is logged (and new connections refused) only once all are.
    listening: Option<Drain>,
}

impl Workers {
    /// Waits until every worker has stopped accepting and closed its socket.
    pub(super) async fn stopped_accepting(&mut self) {
        if let Some(listening) = self.listening.take() {
            listening.wait().await;
        }
    }

    /// Waits for the threads to end; each drains its own connections within the same grace
    /// period as the main thread.
    pub(super) async fn join(self) {
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

/// Starts one worker thread per socket; worker `i` (from 1; the main thread is 0) serves
/// `sockets[i - 1]`.
pub(super) fn spawn_workers(sockets: Vec<std::net::TcpListener>, shared: &Shared) -> Workers {
    let listening = Drain::new();
    let mut threads = Vec::new();
    for (i, socket) in sockets.into_iter().enumerate() {
        let worker = Worker {
            index: i + 1,
            socket,
            shared: shared.clone(),
            listening: listening.token(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("worker-{}", i + 1))
            .spawn(move || worker.run());
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => tracing::error!(error = %e, "cannot start a worker thread"),
        }
    }
    Workers {
        threads,
        listening: Some(listening),
    }
}

struct Worker {
    index: usize,
    socket: std::net::TcpListener,
    shared: Shared,
    listening: Token,
}

impl Worker {
    fn run(self) {
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
        rt.block_on(self.serve());
    }

    async fn serve(self) {
        crate::worker::pin(self.index);
        let Ok(listener) = TcpListener::from_std(self.socket) else {
            return;
        };
        let Shared {
            settings,
            stop,
            permits,
            public,
        } = self.shared;
        let grace = settings.limits.shutdown_grace;
        let drain = Drain::new();
        AcceptContext::new(settings, stop, drain.token(), permits)
            .accept_loop(listener, public)
            .await;
        drop(self.listening);
        let _ = tokio::time::timeout(grace, drain.wait()).await;
    }
}
