//! `redis.sentinel`: the sentinels' addresses and the rules that tie the block to the rest of
//! `redis`.

use super::super::error::ConfigError;
use super::super::schema::{RedisConfig, SentinelConfig};

pub(super) fn validate(r: &RedisConfig, s: &SentinelConfig) -> Result<(), ConfigError> {
    if r.timeout.is_zero() {
        return Err(ConfigError::field("redis.timeout", "must be > 0"));
    }
    if !r.cluster.is_empty() {
        return Err(ConfigError::field(
            "redis.sentinel",
            "cannot be combined with redis.cluster: set one of them",
        ));
    }
    if s.master.trim().is_empty() {
        return Err(ConfigError::field(
            "redis.sentinel.master",
            "is required: the name the sentinels monitor the primary under",
        ));
    }
    if s.nodes.is_empty() {
        return Err(ConfigError::field(
            "redis.sentinel.nodes",
            "is required: at least one sentinel, host:port",
        ));
    }
    for (i, node) in s.nodes.iter().enumerate() {
        SentinelConfig::host_port(node)
            .map_err(|why| ConfigError::field(format!("redis.sentinel.nodes[{i}]"), why))?;
    }
    wait_replicas(r, s)?;
    // The sentinels hand out plain host:port addresses; TLS to them and to the primary is not
    // wired up (yet), so a TLS file would silently do nothing.
    let tls = [
        ("redis.ca", r.ca.is_some()),
        ("redis.client_cert", r.client_cert.is_some()),
        ("redis.client_key", r.client_key.is_some()),
    ];
    match tls.iter().find(|(_, set)| *set) {
        Some((field, _)) => Err(ConfigError::field(
            *field,
            "TLS to Redis is not supported with redis.sentinel; remove it or use redis.url / redis.cluster",
        )),
        None => Ok(()),
    }
}

fn wait_replicas(r: &RedisConfig, s: &SentinelConfig) -> Result<(), ConfigError> {
    let field = "redis.sentinel.wait_replicas";
    match s.wait_replicas {
        None => Ok(()),
        Some(0) => Err(ConfigError::field(
            field,
            "must be at least 1 (leave it unset for no WAIT)",
        )),
        Some(_) if r.timeout <= SentinelConfig::WAIT_TIMEOUT => Err(ConfigError::field(
            field,
            "needs redis.timeout above 100ms: WAIT alone may take 100ms",
        )),
        Some(_) => Ok(()),
    }
}

impl SentinelConfig {
    /// A sentinel's address, `host:port` (`[v6]:port` for IPv6), the form the sentinels' own
    /// config uses; the error says what is wrong with it.
    pub fn host_port(node: &str) -> Result<(&str, u16), String> {
        let bad = || format!("{node:?} is not host:port");
        if node.contains("://") {
            return Err(format!("{node:?}: give host:port, not a URL"));
        }
        let (host, port) = node.rsplit_once(':').ok_or_else(bad)?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.contains(':') && !node.starts_with('[') {
            return Err(bad());
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok((host, p)),
            _ => Err(format!("{node:?}: the port must be 1-65535")),
        }
    }
}
