//! Redis store, standalone and Cluster, behind one code path.
//!
//! # Key layout
//!
//! The cookie carries only the session ID. Redis never sees it: a session lives under
//! `key_prefix + "{" + hex(d[0]) + "}" + hex(d[1..])`, where `d = SHA-256(id)`, so a dump of Redis
//! (a backup, `MONITOR`, a replica) yields no usable cookie. The hash holds `d:<key>` fields with
//! the JSON value of each session key and three meta fields (`m:c` created, `m:s` last seen,
//! `m:e` absolute expiry, all Unix milliseconds); none of them contains the ID.
//!
//! The `{xx}` hash tag is the first digest byte. Redis Cluster hashes only the tag, so a session
//! and its regenerated successor can be put in the same slot by drawing new IDs until the first
//! digest byte matches ([`RedisStore::generate_id`], ~256 SHA-256s on average). That makes
//! regenerate one atomic script (`RENAME` inside `EVALSHA`) in Cluster as in standalone, and the
//! 256 tags still spread sessions over every master. Standalone uses the same layout so there is
//! one code path to test.
//!
//! # Writes
//!
//! Every write is one `EVALSHA` ([`::redis::Script`] falls back to loading the script on `NOSCRIPT`).
//! `update` applies the response's delta (`HDEL`/`HSET` of the touched fields only), so two
//! concurrent requests that change different keys both land; the script checks `EXISTS` first,
//! so a session destroyed concurrently is not resurrected. Every write resets the key's TTL to
//! the session's remaining lifetime (the earlier of absolute and idle expiry), computed inside
//! the script from the stored timestamps, so a concurrent writer with an older `last_seen` cannot
//! shorten it. Loads are one `HGETALL` and check the stored timestamps too, so a key that
//! outlived its deadline (lost TTL, clock step) is never served.
//!
//! # Connections and failure
//!
//! One multiplexed connection, not a pool: the driver pipelines concurrent requests over one
//! socket (per Cluster node), which is what a pool of `pool_size` connections would buy against a
//! single-threaded Redis, without the checkout contention. `redis.pool_size` is therefore not
//! used by this driver. Nothing connects in [`RedisStore::new`]: the proxy starts with Redis down
//! and answers 503 for requests that need a session until Redis is back. Standalone uses
//! [`ConnectionManager`], which reconnects on I/O errors; Cluster keeps its connection in a slot
//! that is filled on first successful use and retried on every request until it is. Every
//! operation is bounded by `redis.timeout` as a whole.
//!
//! # TLS
//!
//! `rediss://` URLs (standalone and every Cluster seed) are verified against the system roots
//! plus `redis.ca`, and present `redis.client_cert` when set; [`tls`] turns the files into the
//! crate's [`::redis::TlsCertificates`]. The crate builds its rustls config from the process-wide
//! crypto provider, which [`crate::tls::crypto_provider`] installs before any client exists.

pub mod tls;

use std::future::Future;
use std::sync::RwLock;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use ::redis::{Cmd, RedisError, RedisFuture, RedisResult, Script, Value};
use sha2::{Digest, Sha256};

use super::*;
use crate::config::RedisConfig;

const DRIVER: &str = "redis";

const F_CREATED: &str = "m:c";
const F_SEEN: &str = "m:s";
const F_EXPIRES: &str = "m:e";
const DATA_PREFIX: &str = "d:";

/// Keys per `SCAN` step in `cleanup`: large enough to make few round trips, small enough that one
/// step never blocks Redis noticeably.
const SCAN_COUNT: usize = 500;

/// Shared by every write script: runs `cmd key ARGV[from..=to]` in slices. Lua's `unpack` refuses
/// more than ~8,000 values (LUAI_MAXCSTACK), and a Delete may name any number of keys. The slice is
/// even, so HSET's field/value pairs never straddle two calls.
macro_rules! lua_batched {
    () => {
        r#"
local function batched(cmd, key, from, to)
  while from <= to do
    local last = math.min(from + 999, to)
    redis.call(cmd, key, unpack(ARGV, from, last))
    from = last + 1
  end
end
"#
    };
}

/// Shared by the update and regenerate scripts: apply the delta, advance `last_seen` (never
/// backwards), and reset the TTL from the stored timestamps. Returns 1, or 0 after deleting a
/// session whose deadline has passed.
///
/// ARGV layout from `first`: now, last_seen, idle_ms (0 = none), n_delete, n_delete field
/// names, then field/value pairs to set.
macro_rules! lua_apply {
    () => {
        r#"
local function apply(key, first)
  local now = tonumber(ARGV[first])
  local seen_arg = ARGV[first + 1]
  local idle = tonumber(ARGV[first + 2])
  local ndel = tonumber(ARGV[first + 3])
  local i = first + 4
  batched('HDEL', key, i, i + ndel - 1)
  batched('HSET', key, i + ndel, #ARGV)
  local meta = redis.call('HMGET', key, 'm:s', 'm:e')
  local seen = tonumber(meta[1]) or 0
  local expires = tonumber(meta[2]) or 0
  if tonumber(seen_arg) > seen then
    redis.call('HSET', key, 'm:s', seen_arg)
    seen = tonumber(seen_arg)
  end
  local deadline = expires
  if idle > 0 and seen + idle < deadline then
    deadline = seen + idle
  end
  local ttl = deadline - now
  if ttl <= 0 then
    redis.call('DEL', key)
    return 0
  end
  redis.call('PEXPIRE', key, string.format('%d', ttl))
  return 1
end
"#
    };
}

/// KEYS[1] = key. ARGV: ttl_ms, created, last_seen, expires, then field/value pairs.
/// Returns 1 stored, 2 collision (NX semantics: an existing key is never overwritten).
const CREATE: &str = concat!(
    lua_batched!(),
    r#"
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 2
end
redis.call('HSET', KEYS[1], 'm:c', ARGV[2], 'm:s', ARGV[3], 'm:e', ARGV[4])
batched('HSET', KEYS[1], 5, #ARGV)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"#
);

/// KEYS[1] = key. ARGV as for `apply` from 1. Returns 1 stored, 0 gone.
const UPDATE: &str = concat!(
    lua_batched!(),
    lua_apply!(),
    r#"
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
return apply(KEYS[1], 1)
"#
);

/// KEYS[1] = old key, KEYS[2] = new key (same hash slot). ARGV as for `apply` from 1.
/// Returns 1 stored, 0 gone, 2 collision. `RENAME` keeps the fields and is atomic with the delta.
const REGENERATE: &str = concat!(
    lua_batched!(),
    lua_apply!(),
    r#"
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 2
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
redis.call('RENAME', KEYS[1], KEYS[2])
return apply(KEYS[2], 1)
"#
);

/// KEYS[1] = key. ARGV: now, idle_ms (0 = none). Deletes the key if it has no TTL (every write of
/// ours sets one, so it is debris) or if its stored timestamps say it is dead. Returns 1 if
/// removed. Check and delete are one script so a session refreshed meanwhile is not removed.
const SWEEP: &str = r#"
local key = KEYS[1]
local t = redis.call('TYPE', key)['ok']
if t == 'none' then
  return 0
end
if redis.call('PTTL', key) == -1 then
  redis.call('DEL', key)
  return 1
end
if t ~= 'hash' then
  return 0
end
local meta = redis.call('HMGET', key, 'm:s', 'm:e')
local seen = tonumber(meta[1])
local expires = tonumber(meta[2])
if not seen or not expires then
  redis.call('DEL', key)
  return 1
end
local deadline = expires
local idle = tonumber(ARGV[2])
if idle > 0 and seen + idle < deadline then
  deadline = seen + idle
end
if tonumber(ARGV[1]) >= deadline then
  redis.call('DEL', key)
  return 1
end
return 0
"#;

/// The connection an operation runs on. Both variants multiplex and are cheap to clone.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ::redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
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
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
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
}

struct ClusterSlot {
    client: ClusterClient,
    conn: RwLock<Option<ClusterConnection>>,
    connecting: tokio::sync::Mutex<()>,
}

pub struct RedisStore {
    backend: Backend,
    prefix: String,
    timeout: Duration,
    idle_timeout: Option<Duration>,
}

/// Compiled once per process: `Script::new` hashes the source for `EVALSHA`.
static SCRIPTS: std::sync::LazyLock<Scripts> = std::sync::LazyLock::new(|| Scripts {
    create: Script::new(CREATE),
    update: Script::new(UPDATE),
    regenerate: Script::new(REGENERATE),
    sweep: Script::new(SWEEP),
});

struct Scripts {
    create: Script,
    update: Script,
    regenerate: Script,
    sweep: Script,
}

fn backend_error(e: RedisError) -> StoreError {
    StoreError::Backend {
        driver: DRIVER,
        message: e.to_string(),
    }
}

fn config_error(message: String) -> StoreError {
    StoreError::Backend {
        driver: DRIVER,
        message,
    }
}

fn digest(id: &SessionId) -> [u8; 32] {
    Sha256::digest(id.as_str().as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// `SCAN MATCH` takes a glob: escape the prefix so `*`, `?`, `[` in it match only themselves.
fn glob_escape(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

impl RedisStore {
    /// Builds the client without requiring Redis to be up: the proxy must start (and answer 503)
    /// while Redis is down, and recover by itself when it returns. Fails only on a malformed URL.
    pub fn new(
        config: &RedisConfig,
        idle_timeout: Option<Duration>,
    ) -> Result<RedisStore, StoreError> {
        let timeout = config.timeout;
        // Installs the process default that the crate's `ClientConfig::builder()` takes.
        crate::tls::crypto_provider();
        let certs = tls::certificates(config).map_err(|e| config_error(e.to_string()))?;
        let backend = if config.cluster.is_empty() {
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
            // One quick retry per reconnect: the request that triggered it is bounded by
            // `timeout` anyway, and the next request starts a fresh attempt.
            let cm = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(20))
                .set_max_delay(Duration::from_millis(100));
            let manager = ConnectionManager::new_lazy_with_config(client, cm)
                .map_err(|e| config_error(format!("cannot set up the redis client: {e}")))?;
            Backend::Single(manager)
        } else {
            let mut builder = ClusterClient::builder(config.cluster.iter().map(String::as_str))
                .connection_timeout(timeout)
                .response_timeout(timeout)
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
            Backend::Cluster(Box::new(ClusterSlot {
                client,
                conn: RwLock::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }))
        };
        Ok(RedisStore {
            backend,
            prefix: config.key_prefix.clone(),
            timeout,
            idle_timeout,
        })
    }

    /// The Redis key of a session: see the module docs.
    pub fn key(&self, id: &SessionId) -> String {
        let d = hex(&digest(id));
        format!("{}{{{}}}{}", self.prefix, &d[..2], &d[2..])
    }

    fn idle_ms(&self) -> u64 {
        self.idle_timeout.map(millis).unwrap_or(0)
    }

    async fn conn(&self) -> RedisResult<Conn> {
        match &self.backend {
            Backend::Single(m) => Ok(Conn::Single(m.clone())),
            Backend::Cluster(slot) => {
                let ClusterSlot {
                    client,
                    conn,
                    connecting,
                } = &**slot;
                let cached = || conn.read().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(c) = cached() {
                    return Ok(Conn::Cluster(c));
                }
                let _gate = connecting.lock().await;
                if let Some(c) = cached() {
                    return Ok(Conn::Cluster(c));
                }
                let c = client.get_async_connection().await?;
                *conn.write().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
                Ok(Conn::Cluster(c))
            }
        }
    }

    /// Runs `op` within `redis.timeout`. A refused connection means nothing was sent, so it is
    /// tried once more: the first request after Redis returns meets the stale failed connection,
    /// which triggers the reconnect, and the retry then finds Redis up instead of answering 503.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, StoreError>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempt = async {
            let mut tries = 0;
            loop {
                tries += 1;
                let result = match self.conn().await {
                    Ok(conn) => op(conn).await,
                    Err(e) => Err(e),
                };
                match result {
                    Err(e) if tries < 2 && e.is_connection_refusal() => continue,
                    other => return other,
                }
            }
        };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_timeout() => Err(StoreError::Timeout {
                driver: DRIVER,
                after: self.timeout,
            }),
            Ok(Err(e)) => Err(backend_error(e)),
            Err(_) => Err(StoreError::Timeout {
                driver: DRIVER,
                after: self.timeout,
            }),
        }
    }

    /// Runs a script built on the shared `apply` function against `keys`, with the delta's ARGV.
    async fn run_apply(
        &self,
        script: &Script,
        keys: &[String],
        session: &Session,
        delta: Delta<'_>,
        now: Millis,
    ) -> Result<i64, StoreError> {
        let mut inv = script.prepare_invoke();
        for key in keys {
            inv.key(key);
        }
        for a in self.apply_args(session, delta, now) {
            inv.arg(a);
        }
        let inv = &inv;
        self.run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await
    }

    /// ARGV for the shared `apply` Lua function.
    fn apply_args(&self, session: &Session, delta: Delta<'_>, now: Millis) -> Vec<String> {
        let mut args = Vec::with_capacity(4 + delta.delete.len() + 2 * delta.set.len());
        args.push(now.to_string());
        args.push(session.last_seen.to_string());
        args.push(self.idle_ms().to_string());
        args.push(delta.delete.len().to_string());
        args.extend(delta.delete.iter().map(|k| format!("{DATA_PREFIX}{k}")));
        for (k, v) in delta.set {
            args.push(format!("{DATA_PREFIX}{k}"));
            args.push(v.to_string());
        }
        args
    }

    /// Master addresses of the cluster, from `CLUSTER SLOTS` (the same view the client routes by).
    async fn masters(conn: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
        let slots: Value = ::redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(conn)
            .await?;
        let mut out: Vec<(String, u16)> = Vec::new();
        if let Value::Array(ranges) = slots {
            for range in ranges {
                let Value::Array(parts) = range else { continue };
                let Some(Value::Array(master)) = parts.get(2) else {
                    continue;
                };
                let host: Option<String> = master
                    .first()
                    .and_then(|v| ::redis::from_redis_value_ref(v).ok());
                let port: Option<u16> = master
                    .get(1)
                    .and_then(|v| ::redis::from_redis_value_ref(v).ok());
                if let (Some(host), Some(port)) = (host, port) {
                    if !out.iter().any(|(h, p)| *h == host && *p == port) {
                        out.push((host, port));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Sweeps the keys one `SCAN` step on one node returned. The scripts run concurrently on the
    /// multiplexed connection, which pipelines them; in Cluster each is routed by its own key.
    async fn sweep_batch(&self, keys: Vec<String>, now: Millis) -> Result<u64, StoreError> {
        let idle = self.idle_ms();
        let mut tasks = tokio::task::JoinSet::new();
        for key in keys {
            let script = &SCRIPTS.sweep;
            let conn = match self.conn().await {
                Ok(c) => c,
                Err(e) => return Err(backend_error(e)),
            };
            tasks.spawn(async move {
                let mut conn = conn;
                script
                    .key(key)
                    .arg(now)
                    .arg(idle)
                    .invoke_async::<i64>(&mut conn)
                    .await
            });
        }
        let mut removed = 0;
        let work = async {
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(Ok(n)) => removed += n.max(0) as u64,
                    Ok(Err(e)) => return Err(backend_error(e)),
                    Err(e) => return Err(config_error(format!("cleanup task failed: {e}"))),
                }
            }
            Ok(())
        };
        match tokio::time::timeout(self.timeout.max(Duration::from_secs(5)), work).await {
            Ok(r) => r.map(|()| removed),
            Err(_) => Err(StoreError::Timeout {
                driver: DRIVER,
                after: self.timeout.max(Duration::from_secs(5)),
            }),
        }
    }
}

/// One `SCAN` step's answer: next cursor and the keys.
type ScanStep = (u64, Vec<String>);

impl SessionStore for RedisStore {
    fn driver(&self) -> &'static str {
        DRIVER
    }

    /// Draws IDs until the new one's hash tag (first digest byte) equals the old one's, so that
    /// regenerate stays in one Cluster slot. ~256 draws on average; the cap only guards against a
    /// broken RNG, and a mismatched ID is refused by `regenerate` as a collision anyway.
    fn generate_id(&self, sibling: Option<&SessionId>) -> SessionId {
        let Some(old) = sibling else {
            return SessionId::generate();
        };
        let tag = digest(old)[0];
        for _ in 0..100_000 {
            let candidate = SessionId::generate();
            if digest(&candidate)[0] == tag {
                return candidate;
            }
        }
        SessionId::generate()
    }

    async fn load(&self, cookie: &str, now: Millis) -> Result<Lookup, StoreError> {
        let Some(id) = SessionId::parse(cookie) else {
            return Ok(Lookup::Rejected(Reject::Tampered));
        };
        let key = self.key(&id);
        let fields: std::collections::HashMap<String, String> = self
            .run(|mut c| {
                let key = &key;
                async move { ::redis::cmd("HGETALL").arg(key).query_async(&mut c).await }
            })
            .await?;
        if fields.is_empty() {
            return Ok(Lookup::Rejected(Reject::Unknown));
        }
        let mut data = Data::new();
        let (mut created, mut last_seen, mut expires) = (None, None, None);
        for (field, value) in fields {
            if let Some(name) = field.strip_prefix(DATA_PREFIX) {
                match serde_json::from_str(&value) {
                    Ok(v) => {
                        data.insert(name.to_owned(), v);
                    }
                    Err(_) => tracing::warn!(
                        session = %id.fingerprint(),
                        "ignored a session field that is not JSON"
                    ),
                }
                continue;
            }
            let n = value.parse::<Millis>().ok();
            match field.as_str() {
                F_CREATED => created = n,
                F_SEEN => last_seen = n,
                F_EXPIRES => expires = n,
                _ => {}
            }
        }
        let (Some(created), Some(last_seen), Some(expires)) = (created, last_seen, expires) else {
            // Not a record we wrote whole; never serve it.
            return Ok(Lookup::Rejected(Reject::Unknown));
        };
        let session = Session {
            id,
            data: Arc::new(data),
            created,
            last_seen,
            expires,
        };
        if !session.is_live(now, self.idle_timeout) {
            return Ok(Lookup::Rejected(Reject::Expired));
        }
        Ok(Lookup::Found {
            session,
            reseal: false,
        })
    }

    async fn create(&self, session: &Session, now: Millis) -> Result<Write, StoreError> {
        let key = self.key(&session.id);
        let ttl = session
            .deadline(self.idle_timeout)
            .saturating_sub(now)
            .max(1);
        let mut inv = SCRIPTS.create.prepare_invoke();
        inv.key(&key)
            .arg(ttl)
            .arg(session.created)
            .arg(session.last_seen)
            .arg(session.expires);
        for (k, v) in session.data.iter() {
            inv.arg(format!("{DATA_PREFIX}{k}")).arg(v.to_string());
        }
        let inv = &inv;
        let code: i64 = self
            .run(|mut c| async move { inv.invoke_async(&mut c).await })
            .await?;
        Ok(match code {
            1 => Write::Stored(session.id.as_str().to_owned()),
            _ => Write::Collision,
        })
    }

    async fn update(
        &self,
        session: &Session,
        delta: Delta<'_>,
        now: Millis,
    ) -> Result<Write, StoreError> {
        let code = self
            .run_apply(
                &SCRIPTS.update,
                &[self.key(&session.id)],
                session,
                delta,
                now,
            )
            .await?;
        Ok(match code {
            1 => Write::Stored(session.id.as_str().to_owned()),
            _ => Write::Gone,
        })
    }

    async fn regenerate(
        &self,
        old: &SessionId,
        session: &Session,
        delta: Delta<'_>,
        now: Millis,
    ) -> Result<Write, StoreError> {
        if digest(old)[0] != digest(&session.id)[0] {
            // Would cross Cluster slots: ask the layer for an ID from `generate_id(Some(old))`.
            return Ok(Write::Collision);
        }
        let keys = [self.key(old), self.key(&session.id)];
        let code = self
            .run_apply(&SCRIPTS.regenerate, &keys, session, delta, now)
            .await?;
        Ok(match code {
            1 => Write::Stored(session.id.as_str().to_owned()),
            2 => Write::Collision,
            _ => Write::Gone,
        })
    }

    async fn destroy(&self, id: &SessionId) -> Result<(), StoreError> {
        let key = self.key(id);
        let key = &key;
        self.run(|mut c| async move {
            ::redis::cmd("DEL")
                .arg(key)
                .query_async::<i64>(&mut c)
                .await
        })
        .await?;
        Ok(())
    }

    async fn cleanup(&self, now: Millis) -> Result<CleanupReport, StoreError> {
        let pattern = glob_escape(&self.prefix);
        // `None` = the standalone server; `Some(addr)` = one Cluster master.
        let nodes: Vec<Option<(String, u16)>> = match self
            .run(|c| async move {
                match c {
                    Conn::Single(_) => Ok(vec![None]),
                    Conn::Cluster(mut cc) => Ok(Self::masters(&mut cc)
                        .await?
                        .into_iter()
                        .map(Some)
                        .collect()),
                }
            })
            .await?
        {
            nodes if nodes.is_empty() => {
                return Err(config_error(
                    "the cluster reported no masters (is it still forming?)".into(),
                ))
            }
            nodes => nodes,
        };
        let mut report = CleanupReport::default();
        for node in &nodes {
            let mut cursor = 0u64;
            loop {
                let pattern = &pattern;
                let (next, keys): ScanStep = self
                    .run(|c| async move {
                        let mut scan = ::redis::cmd("SCAN");
                        scan.arg(cursor)
                            .arg("MATCH")
                            .arg(pattern)
                            .arg("COUNT")
                            .arg(SCAN_COUNT);
                        match (c, node) {
                            (Conn::Cluster(mut cc), Some((host, port))) => {
                                let routing =
                                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                                        host: host.clone(),
                                        port: *port,
                                    });
                                let v = cc.route_command(scan, routing).await?;
                                Ok(::redis::from_redis_value(v)?)
                            }
                            (mut c, _) => scan.query_async(&mut c).await,
                        }
                    })
                    .await?;
                report.scanned += keys.len() as u64;
                if !keys.is_empty() {
                    report.removed += self.sweep_batch(keys, now).await?;
                }
                cursor = next;
                if cursor == 0 {
                    break;
                }
            }
        }
        Ok(report)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|mut c| async move {
            ::redis::cmd("PING")
                .query_async::<::redis::Value>(&mut c)
                .await
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> RedisStore {
        let cfg = RedisConfig {
            url: "redis://127.0.0.1:1/0".into(),
            ..RedisConfig::default()
        };
        RedisStore::new(&cfg, None).unwrap()
    }

    #[tokio::test]
    async fn key_is_prefix_tag_digest_and_hides_the_id() {
        let s = store();
        let id = SessionId::generate();
        let key = s.key(&id);
        assert!(key.starts_with("session:{"));
        assert_eq!(key.len(), "session:".len() + 2 + 64);
        assert!(!key.contains(id.as_str()));
        assert_eq!(key, s.key(&id));
    }

    #[tokio::test]
    async fn regenerated_ids_keep_the_hash_tag() {
        let s = store();
        let old = SessionId::generate();
        for _ in 0..5 {
            let new = s.generate_id(Some(&old));
            assert_ne!(new, old);
            assert_eq!(s.key(&new)[..12], s.key(&old)[..12]);
        }
    }

    #[test]
    fn scan_pattern_escapes_globs() {
        assert_eq!(glob_escape("session:"), "session:*");
        assert_eq!(glob_escape("a*b?[c]"), "a\\*b\\?\\[c\\]*");
    }
}
