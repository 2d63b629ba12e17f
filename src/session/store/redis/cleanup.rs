//! `cleanup`: every key under the prefix, on every master, through the sweep script.
//!
//! Redis expires keys by their TTL on its own; the sweep is for what the TTL misses: keys with no
//! TTL (debris, or a `PERSIST` by hand) and sessions whose TTL outlived their stored deadline.
//! `SCAN` walks one server's keyspace, so in Cluster each master is scanned in turn, routed by
//! address.

use std::time::Duration;

use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use ::redis::{RedisResult, Value};

use super::connection::Conn;
use super::keys::glob_escape;
use super::scripts::{self, SCRIPTS};
use super::{backend_error, config_error, timed_out, RedisStore};
use crate::session::store::{CleanupReport, Millis, StoreError};

/// Keys per `SCAN` step: large enough to make few round trips, small enough that one step never
/// blocks Redis noticeably.
const SCAN_COUNT: usize = 500;

/// A batch of sweeps may take longer than one request's `redis.timeout`, but not forever.
const MIN_BATCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The server a `SCAN` goes to: `None` = the standalone server, `Some` = one Cluster master.
type Node = Option<(String, u16)>;

/// One `SCAN` step's answer: next cursor and the keys.
type ScanStep = (u64, Vec<String>);

impl RedisStore {
    pub(super) async fn sweep_all(&self, now: Millis) -> Result<CleanupReport, StoreError> {
        let pattern = glob_escape(&self.prefix);
        let mut report = CleanupReport::default();
        for node in self.nodes().await? {
            self.sweep_node(&node, &pattern, now, &mut report).await?;
        }
        Ok(report)
    }

    async fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        let nodes: Vec<Node> = self
            .conn
            .run(|c| async move {
                match c {
                    Conn::Single(_) | Conn::Primary(_) => Ok(vec![None]),
                    Conn::Cluster(mut cc) => {
                        Ok(masters(&mut cc).await?.into_iter().map(Some).collect())
                    }
                }
            })
            .await?;
        if nodes.is_empty() {
            return Err(config_error(
                "the cluster reported no masters (is it still forming?)".into(),
            ));
        }
        Ok(nodes)
    }

    async fn sweep_node(
        &self,
        node: &Node,
        pattern: &str,
        now: Millis,
        report: &mut CleanupReport,
    ) -> Result<(), StoreError> {
        let mut cursor = 0u64;
        loop {
            let (next, keys) = self.conn.run(|c| scan(c, node, cursor, pattern)).await?;
            report.scanned += keys.len() as u64;
            if !keys.is_empty() {
                report.removed += self.sweep_batch(keys, now).await?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Sweeps the keys one `SCAN` step on one node returned. The scripts run concurrently on the
    /// multiplexed connection, which pipelines them; in Cluster each is routed by its own key.
    async fn sweep_batch(&self, keys: Vec<String>, now: Millis) -> Result<u64, StoreError> {
        let [expires_cutoff, seen_cutoff] = scripts::sweep_args(now, self.idle_timeout);
        let mut tasks = tokio::task::JoinSet::new();
        for key in keys {
            let mut conn = self.conn.get().await.map_err(backend_error)?;
            tasks.spawn(async move {
                SCRIPTS
                    .sweep
                    .key(key)
                    .arg(expires_cutoff)
                    .arg(seen_cutoff)
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
        let limit = self.conn.timeout().max(MIN_BATCH_TIMEOUT);
        match tokio::time::timeout(limit, work).await {
            Ok(r) => r.map(|()| removed),
            Err(_) => Err(timed_out(limit)),
        }
    }
}

/// One `SCAN` step on `node`, from `cursor`.
async fn scan(conn: Conn, node: &Node, cursor: u64, pattern: &str) -> RedisResult<ScanStep> {
    let mut scan = ::redis::cmd("SCAN");
    scan.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(SCAN_COUNT);
    match (conn, node) {
        (Conn::Cluster(mut cc), Some((host, port))) => {
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                host: host.clone(),
                port: *port,
            });
            let v = cc.route_command(scan, routing).await?;
            Ok(::redis::from_redis_value(v)?)
        }
        (mut c, _) => scan.query_async(&mut c).await,
    }
}

/// Master addresses of the cluster, from `CLUSTER SLOTS` (the same view the client routes by).
async fn masters(conn: &mut ClusterConnection) -> RedisResult<Vec<(String, u16)>> {
    let slots: Value = ::redis::cmd("CLUSTER")
        .arg("SLOTS")
        .query_async(conn)
        .await?;
    let Value::Array(ranges) = slots else {
        return Ok(Vec::new());
    };
    let mut out: Vec<(String, u16)> = Vec::new();
    for addr in ranges.iter().filter_map(master_of) {
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    Ok(out)
}

/// The master of one `CLUSTER SLOTS` range, `[start, end, [host, port, ..], replicas..]`; `None`
/// for an entry of another shape, which is skipped.
fn master_of(range: &Value) -> Option<(String, u16)> {
    let Value::Array(parts) = range else {
        return None;
    };
    let Some(Value::Array(master)) = parts.get(2) else {
        return None;
    };
    let host = ::redis::from_redis_value_ref(master.first()?).ok()?;
    let port = ::redis::from_redis_value_ref(master.get(1)?).ok()?;
    Some((host, port))
}
