//! The connection every operation runs on, and the bounds around each operation.
//!
//! One multiplexed connection, not a pool: the driver pipelines concurrent requests over one
//! socket (per Cluster node), which is what a pool of `pool_size` connections would buy against a
//! single-threaded Redis, without the checkout contention. It is shared by every worker: its socket
//! is driven by a task on the runtime of the worker whose request (re)connected it. Nothing
//! connects in [`Connection::new`]: the proxy starts with Redis down and answers 503 for requests
//! that need a session until Redis is back. Standalone uses [`ConnectionManager`], which
//! reconnects on I/O errors; Cluster keeps its connection in a slot that is filled on first
//! successful use and retried on every request until it is; Sentinel asks the sentinels for the
//! primary the same way, and asks again when an operation says the primary moved (`sentinel.rs`).

use std::future::Future;
use std::sync::RwLock;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, RedisError, RedisFuture, RedisResult, TlsCertificates, Value};

use super::sentinel::{wait_for_replicas, SentinelSlot};
use super::{backend_error, config_error, DRIVER};
use crate::config::RedisConfig;
use crate::session::store::StoreError;

/// The connection an operation runs on. Every variant multiplexes and is cheap to clone.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    /// The primary the sentinels named.
    Primary(MultiplexedConnection),
}

impl ::redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Primary(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a ::redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Primary(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Primary(c) => c.get_db(),
        }
    }
}

enum Backend {
    /// Connects lazily on first use and reconnects on I/O errors by itself.
    Single(ConnectionManager),
    /// `ClusterClient::get_async_connection` connects eagerly and fails when no seed answers, so
    /// the connection is made on first use and kept once it exists (it then follows topology
    /// changes and reconnects to nodes itself). `connecting` makes concurrent first requests wait
    /// for one attempt instead of each opening their own.
    Cluster(Box<ClusterSlot>),
    /// Asks the sentinels on first use and whenever the primary seems to have moved.
    Sentinel(Box<SentinelSlot>),
}

struct ClusterSlot {
    client: ClusterClient,
    conn: RwLock<Option<ClusterConnection>>,
    connecting: tokio::sync::Mutex<()>,
}

/// The client for the configured Redis, and `redis.timeout`, which bounds every operation.
pub(super) struct Connection {
    backend: Backend,
    timeout: Duration,
    /// `redis.sentinel.wait_replicas`: `WAIT` for this many replicas after each write.
    wait_replicas: Option<u32>,
}

impl Connection {
    /// Builds the client without connecting. Fails only on a malformed URL.
    pub(super) fn new(
        config: &RedisConfig,
        certs: Option<TlsCertificates>,
    ) -> Result<Connection, StoreError> {
        let backend = match &config.sentinel {
            Some(s) => Backend::Sentinel(Box::new(SentinelSlot::new(s, config.timeout)?)),
            None if config.cluster.is_empty() => single(config, certs)?,
            None => cluster(config, certs)?,
        };
        Ok(Connection {
            backend,
            timeout: config.timeout,
            wait_replicas: config.sentinel.as_ref().and_then(|s| s.wait_replicas),
        })
    }

    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(super) async fn get(&self) -> RedisResult<Conn> {
        self.lease().await.map(|(conn, _)| conn)
    }

    /// The connection, and for Sentinel which lookup of the primary it came from.
    async fn lease(&self) -> RedisResult<(Conn, Option<u64>)> {
        let slot = match &self.backend {
            Backend::Single(m) => return Ok((Conn::Single(m.clone()), None)),
            Backend::Cluster(slot) => slot,
            Backend::Sentinel(slot) => {
                let (conn, generation) = slot.get().await?;
                return Ok((Conn::Primary(conn), Some(generation)));
            }
        };
        let cached = || slot.conn.read().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(c) = cached() {
            return Ok((Conn::Cluster(c), None));
        }
        let _gate = slot.connecting.lock().await;
        if let Some(c) = cached() {
            return Ok((Conn::Cluster(c), None));
        }
        let c = slot.client.get_async_connection().await?;
        *slot.conn.write().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok((Conn::Cluster(c), None))
    }

    /// Tells the Sentinel slot that an operation on lookup `generation` failed (`None`: timed
    /// out), so that it can ask the sentinels again.
    fn failed(&self, generation: Option<u64>, error: Option<&RedisError>) {
        if let (Backend::Sentinel(slot), Some(generation)) = (&self.backend, generation) {
            slot.failed(generation, error);
        }
    }

    /// [`Connection::run`] for an operation that writes a session: with
    /// `redis.sentinel.wait_replicas`, followed by `WAIT` on the same connection, so that the
    /// write is on the replicas before the client hears it was stored.
    pub(super) async fn run_write<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let Some(n) = self.wait_replicas else {
            return self.run(op).await;
        };
        let op = &op;
        self.run(move |mut conn| async move {
            let written = op(conn.clone()).await?;
            wait_for_replicas(&mut conn, n).await?;
            Ok(written)
        })
        .await
    }

    /// Runs `op` within `redis.timeout`. A refused connection means nothing was sent, so it is
    /// tried once more: the first request after Redis returns meets the stale failed connection,
    /// which triggers the reconnect, and the retry then finds Redis up instead of answering 503.
    pub(super) async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        // Which Sentinel lookup the last try ran on, for a timeout that cuts the try off.
        let mut leased = None;
        let attempt = async {
            let mut tries = 0;
            loop {
                tries += 1;
                let result = match self.lease().await {
                    Ok((conn, generation)) => {
                        leased = generation;
                        op(conn).await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = &result {
                    self.failed(leased, Some(e));
                }
                match result {
                    Err(e) if tries < 2 && e.is_connection_refusal() => continue,
                    other => return other,
                }
            }
        };
        let outcome = tokio::time::timeout(self.timeout, attempt).await;
        match outcome {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_timeout() => Err(self.timed_out(self.timeout)),
            Ok(Err(e)) => Err(backend_error(e)),
            Err(_) => {
                self.failed(leased, None);
                Err(self.timed_out(self.timeout))
            }
        }
    }

    pub(super) fn timed_out(&self, after: Duration) -> StoreError {
        StoreError::Timeout {
            driver: DRIVER,
            after,
        }
    }
}

fn single(config: &RedisConfig, certs: Option<TlsCertificates>) -> Result<Backend, StoreError> {
    let client = match certs {
        Some(certs) => ::redis::Client::build_with_tls(config.url.as_str(), certs),
        None => ::redis::Client::open(config.url.as_str()),
    }
    .map_err(|e| {
        config_error(format!(
            "invalid redis.url {}: {e}",
            crate::config::redact_url_str(&config.url)
        ))
    })?;
    // One quick retry per reconnect: the request that triggered it is bounded by `timeout`
    // anyway, and the next request starts a fresh attempt.
    let cm = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout))
        .set_response_timeout(Some(config.timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(Duration::from_millis(100));
    let manager = ConnectionManager::new_lazy_with_config(client, cm)
        .map_err(|e| config_error(format!("cannot set up the redis client: {e}")))?;
    Ok(Backend::Single(manager))
}

fn cluster(config: &RedisConfig, certs: Option<TlsCertificates>) -> Result<Backend, StoreError> {
    let mut builder = ClusterClient::builder(config.cluster.iter().map(String::as_str))
        .connection_timeout(config.timeout)
        .response_timeout(config.timeout)
        .retries(2)
        .min_retry_wait(10)
        .max_retry_wait(100);
    if let Some(certs) = certs {
        builder = builder.certs(certs);
    }
    let client = builder.build().map_err(|e| {
        let nodes: Vec<String> = config
            .cluster
            .iter()
            .map(|u| crate::config::redact_url_str(u))
            .collect();
        config_error(format!("invalid redis.cluster {nodes:?}: {e}"))
    })?;
    Ok(Backend::Cluster(Box::new(ClusterSlot {
        client,
        conn: RwLock::new(None),
        connecting: tokio::sync::Mutex::new(()),
    })))
}
