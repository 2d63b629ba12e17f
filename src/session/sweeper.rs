//! The periodic sweep of expired sessions. The memory store has nothing else to evict them; with
//! Redis, TTLs do the work and the sweep only catches keys that lost their TTL.
//!
//! Each sweep goes through the layer's metered store path, so `cleanup` is counted (and its
//! errors and latency) like every other store operation. The sweep stops at shutdown, mid-scan if
//! need be: a Redis SCAN over many keys would otherwise hold shutdown past
//! `limits.shutdown_grace`. Dropping a sweep between batches is safe: each batch is one atomic
//! script, and the next start sweeps from the beginning.

use std::future::Future;
use std::time::Duration;

use super::store::SessionStore;
use super::SessionLayer;
use crate::config::{Driver, SessionConfig};
use crate::metrics::StoreOp;

/// How often the memory store is swept when `sessions.cleanup_interval` is not set.
const MEMORY_DEFAULT: Duration = Duration::from_secs(60);

pub struct Sweeper {
    /// Shares the store and metrics of the layer it was made from (a reload keeps both).
    layer: SessionLayer,
    every: Duration,
}

impl Sweeper {
    /// The sweeper `cfg` asks for, if any: never for cookie sessions (nothing is stored), always
    /// for the memory store, for Redis only when `sessions.cleanup_interval` is set.
    pub fn new(layer: &SessionLayer, cfg: &SessionConfig) -> Option<Sweeper> {
        let every = match cfg.driver {
            Driver::Cookie => None,
            Driver::Memory => Some(cfg.cleanup_interval.unwrap_or(MEMORY_DEFAULT)),
            Driver::Redis => cfg.cleanup_interval,
        }?;
        Some(Sweeper {
            layer: layer.clone(),
            every,
        })
    }

    /// Sweeps every interval (the first one interval from now) until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let sweeping = async {
            let mut tick = tokio::time::interval(self.every);
            tick.tick().await;
            loop {
                tick.tick().await;
                self.sweep().await;
            }
        };
        tokio::select! {
            _ = stop => {}
            _ = sweeping => {}
        }
    }

    async fn sweep(&self) {
        let layer = &self.layer;
        let swept = layer
            .timed(StoreOp::Cleanup, layer.store.cleanup(layer.clock.now()))
            .await;
        match swept {
            Ok(r) if r.removed > 0 => tracing::info!(
                removed = r.removed,
                scanned = r.scanned,
                "swept expired sessions"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "session sweep failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::oneshot;

    use super::*;
    use crate::config::RedisConfig;
    use crate::metrics::Metrics;

    fn sessions(driver: &str) -> SessionConfig {
        let yaml = format!(
            "driver: {driver}\ncleanup_interval: 10ms\nsecret: {}",
            "k".repeat(32)
        );
        serde_norway::from_str(&yaml).unwrap()
    }

    #[tokio::test]
    async fn sweeps_are_counted_as_cleanup_store_operations() {
        let cfg = sessions("memory");
        let metrics = Arc::new(Metrics::new("memory"));
        let layer = SessionLayer::from_config(&cfg, &RedisConfig::default())
            .unwrap()
            .with_metrics(Arc::clone(&metrics));
        let (stop, stopped) = oneshot::channel::<()>();
        let sweeper = Sweeper::new(&layer, &cfg).expect("the memory store is swept");
        let task = tokio::spawn(sweeper.run(async move {
            let _ = stopped.await;
        }));
        let series = "session_proxy_store_operations_total{driver=\"memory\",op=\"cleanup\"}";
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !metrics
            .render()
            .lines()
            .any(|l| l.starts_with(series) && !l.ends_with(" 0"))
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}",
                metrics.render()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(()).unwrap();
        task.await.unwrap();
    }

    /// A Redis that accepts the connection and never answers: the sweep hangs for the whole
    /// (long) `redis.timeout`, as a SCAN over many keys would. Shutdown must not wait for it.
    #[tokio::test]
    async fn shutdown_stops_a_sweep_in_progress() {
        let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let redis = RedisConfig {
            url: format!("redis://{}/0", hole.local_addr().unwrap()),
            timeout: Duration::from_secs(60),
            ..RedisConfig::default()
        };
        let (connected, sweeping) = oneshot::channel::<()>();
        let _hole = tokio::spawn(async move {
            let (_socket, _) = hole.accept().await.unwrap();
            let _ = connected.send(());
            std::future::pending::<()>().await;
        });
        let cfg = sessions("redis");
        let layer = SessionLayer::from_config(&cfg, &redis).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let sweeper = Sweeper::new(&layer, &cfg).expect("cleanup_interval asks for a sweep");
        let task = tokio::spawn(sweeper.run(async move {
            let _ = stopped.await;
        }));
        tokio::time::timeout(Duration::from_secs(5), sweeping)
            .await
            .expect("the sweep reached the store")
            .unwrap();
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .expect("the sweeper stopped at shutdown, mid-sweep")
            .unwrap();
    }

    #[test]
    fn cookie_sessions_are_never_swept() {
        let cfg = sessions("cookie");
        let layer = SessionLayer::from_config(&cfg, &RedisConfig::default()).unwrap();
        assert!(Sweeper::new(&layer, &cfg).is_none());
    }
}
