//! Redis behind Sentinel: the sentinels are asked which server is the primary, and asked again
//! when the primary stops answering as one.
//!
//! The connection to the primary is kept until an operation on it fails in a way that says the
//! primary may have moved: the socket dropped or refused, a timeout, or `READONLY` (the old
//! primary came back as a replica). That connection is then forgotten, and the next request asks
//! the sentinels again. Only one lookup runs at a time: requests arriving meanwhile wait for it
//! (within `redis.timeout`) instead of each asking the sentinels; the connection itself sits in a
//! `std` lock that is never held across an `.await`. Requests that fail meanwhile get 503, as
//! during any store outage; nothing is retried blindly, since a write that reached a dying
//! primary may or may not have been applied.
//!
//! With `wait_replicas`, each session write is followed by `WAIT N 100` on the same connection,
//! so the client is answered only once N replicas have the write (or 100 ms have passed: then a
//! warning, and the answer anyway; refusing would turn a slow replica into an outage).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use ::redis::aio::MultiplexedConnection;
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{AsyncConnectionConfig, ConnectionAddr, ErrorKind, RedisError, RedisResult};

use super::config_error;
use crate::config::SentinelConfig;
use crate::session::store::StoreError;

/// The primary as the sentinels named it, and which lookup found it.
#[derive(Clone)]
struct Primary {
    generation: u64,
    conn: MultiplexedConnection,
}

pub(super) struct SentinelSlot {
    /// Held for a whole lookup: the gate that makes concurrent requests share one lookup.
    client: tokio::sync::Mutex<SentinelClient>,
    primary: RwLock<Option<Primary>>,
    generations: AtomicU64,
    connect: AsyncConnectionConfig,
    master: String,
}

impl SentinelSlot {
    pub(super) fn new(config: &SentinelConfig, timeout: Duration) -> Result<Self, StoreError> {
        let nodes = config
            .nodes
            .iter()
            .map(|node| address(node))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                config_error(format!("invalid redis.sentinel.nodes {:?}", config.nodes))
            })?;
        let mut builder =
            SentinelClientBuilder::new(nodes, &config.master, SentinelServerType::Master)
                .map_err(|e| config_error(format!("invalid redis.sentinel: {e}")))?;
        if let Some(user) = &config.username {
            builder = builder.set_client_to_redis_username(user);
        }
        if let Some(password) = &config.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(password) = &config.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        let client = builder
            .build()
            .map_err(|e| config_error(format!("invalid redis.sentinel: {e}")))?;
        Ok(SentinelSlot {
            client: tokio::sync::Mutex::new(client),
            primary: RwLock::new(None),
            generations: AtomicU64::new(0),
            connect: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
            master: config.master.clone(),
        })
    }

    fn cached(&self) -> Option<Primary> {
        self.primary
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The connection to the primary and the lookup it came from, asking the sentinels if there
    /// is none.
    pub(super) async fn get(&self) -> RedisResult<(MultiplexedConnection, u64)> {
        if let Some(p) = self.cached() {
            return Ok((p.conn, p.generation));
        }
        let mut client = self.client.lock().await;
        if let Some(p) = self.cached() {
            return Ok((p.conn, p.generation));
        }
        // Boxed: the crate's lookup future is deep enough to overflow the compiler's layout
        // recursion limit once nested in a request's future.
        let lookup = Box::pin(client.get_async_connection_with_config(&self.connect));
        let conn = lookup.await?;
        let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(master = %self.master, generation, "redis: connected to the primary the sentinels name");
        *self.primary.write().unwrap_or_else(|p| p.into_inner()) = Some(Primary {
            generation,
            conn: conn.clone(),
        });
        Ok((conn, generation))
    }

    /// Forgets the connection from lookup `generation` after `error`, if the error says the
    /// primary may have moved, so that the next request asks the sentinels again. A connection
    /// from a later lookup is kept: another request has already moved on.
    pub(super) fn failed(&self, generation: u64, error: Option<&RedisError>) {
        if error.is_some_and(|e| !moved(e)) {
            return;
        }
        let mut primary = self.primary.write().unwrap_or_else(|p| p.into_inner());
        if primary.as_ref().is_some_and(|p| p.generation == generation) {
            *primary = None;
            let why = error.map_or_else(|| "timed out".to_owned(), ToString::to_string);
            tracing::warn!(master = %self.master, generation, error = %why, "redis: the primary stopped answering; asking the sentinels again");
        }
    }
}

/// Whether `e` means the server may no longer be the primary (or no longer be there).
fn moved(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.kind() == ErrorKind::Server(::redis::ServerErrorKind::ReadOnly)
        // A write inside a script on a replica comes back as the script's error.
        || e.to_string().contains("READONLY")
}

/// A `redis.sentinel.nodes` entry (validated at load) → the crate's address.
fn address(node: &str) -> Option<ConnectionAddr> {
    let (host, port) = SentinelConfig::host_port(node).ok()?;
    Some(ConnectionAddr::Tcp(host.to_owned(), port))
}

/// `WAIT n 100` after a write on `conn`: the write is answered once `n` replicas have it, or
/// after 100 ms with a warning (see the module docs).
pub(super) async fn wait_for_replicas<C: ::redis::aio::ConnectionLike>(
    conn: &mut C,
    n: u32,
) -> RedisResult<()> {
    let wait = SentinelConfig::WAIT_TIMEOUT;
    let acked: i64 = ::redis::cmd("WAIT")
        .arg(n)
        .arg(wait.as_millis() as u64)
        .query_async(conn)
        .await?;
    if acked < i64::from(n) {
        if let Some(suppressed) = SHORT_WAITS.due() {
            tracing::warn!(
                wanted = n,
                acked,
                suppressed,
                "redis: a session write reached fewer replicas than redis.sentinel.wait_replicas within {}ms; answered anyway",
                wait.as_millis()
            );
        }
    }
    Ok(())
}

/// Short `WAIT`s are logged at most once per [`WARN_EVERY`]: right after a failover no replica is
/// left, and a line for every write would bury the log the operator is reading.
static SHORT_WAITS: RateLimit = RateLimit::new();
const WARN_EVERY: Duration = Duration::from_secs(10);

struct RateLimit {
    /// When the last line was written, in ms since the Unix epoch (0: never).
    last: AtomicU64,
    /// Occurrences not logged since then.
    suppressed: AtomicU64,
}

impl RateLimit {
    const fn new() -> RateLimit {
        RateLimit {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(occurrences suppressed since the last line)` when a line is due now.
    fn due(&self) -> Option<u64> {
        let now = crate::session::store::now_millis();
        let last = self.last.load(Ordering::Relaxed);
        let every = WARN_EVERY.as_millis() as u64;
        if (last == 0 || now.saturating_sub(last) >= every)
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_waits_are_logged_once_per_interval_with_the_count_skipped() {
        let limit = RateLimit::new();
        assert_eq!(limit.due(), Some(0));
        assert_eq!(limit.due(), None);
        assert_eq!(limit.due(), None);
        limit.last.store(1, Ordering::Relaxed); // long ago
        assert_eq!(limit.due(), Some(2));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            address("127.0.0.1:26379"),
            Some(ConnectionAddr::Tcp("127.0.0.1".into(), 26379))
        );
        assert_eq!(
            address("[::1]:5"),
            Some(ConnectionAddr::Tcp("::1".into(), 5))
        );
        assert_eq!(address("host"), None);
    }
}
