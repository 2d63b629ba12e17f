//! The real server, in this process, on its own thread and runtime, with a manual session clock:
//! expiry tests move the clock instead of sleeping. Everything else is as with the binary: the
//! same config (from [`ProxyBuilder`]; its `env` and `arg` are for the binary and not applied
//! here), real TCP, the same request pipeline.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use session_proxy::config::{Config, Overrides};
use session_proxy::server::Server;
use session_proxy::session::clock::ManualClock;

use super::ProxyBuilder;

pub struct ClockedProxy {
    pub addr: SocketAddr,
    /// The server's session clock; it starts at the wall clock's time.
    pub clock: ManualClock,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl ClockedProxy {
    /// Moves the proxy's session clock forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

impl ProxyBuilder {
    /// Starts the proxy in-process with a [`ManualClock`] instead of spawning the binary.
    pub fn start_clocked(self) -> ClockedProxy {
        let config = Config::from_yaml(&self.yaml(), &HashMap::new(), &Overrides::default())
            .expect("a valid config");
        let clock = ManualClock::starting_now();
        let server_clock = clock.clock();
        let (addr_tx, addr_rx) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = Server::bind_with_clock(&config, server_clock).await;
                let server = match server {
                    Ok(server) => server,
                    Err(e) => return addr_tx.send(Err(e.to_string())).unwrap(),
                };
                addr_tx.send(Ok(server.local_addr())).unwrap();
                server.run(async { _ = stopped.await }).await.unwrap();
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(20))
            .expect("the in-process proxy started")
            .expect("the in-process proxy bound its listeners");
        ClockedProxy {
            addr,
            clock,
            stop: Some(stop),
        }
    }
}

impl Drop for ClockedProxy {
    /// Starts the graceful shutdown and lets it finish in the background.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
