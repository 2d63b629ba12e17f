//! `redis`, checked only when the driver is `redis`: the URLs and files the client will use.

use super::super::error::ConfigError;
use super::super::schema::RedisConfig;

pub(super) fn validate(r: &RedisConfig) -> Result<(), ConfigError> {
    if let Some(s) = &r.sentinel {
        // The sentinels name the primary: `redis.url` is not used, so not checked either.
        return super::sentinel::validate(r, s);
    }
    if r.cluster.is_empty() {
        check_url("redis.url", &r.url)?;
    }
    for (i, node) in r.cluster.iter().enumerate() {
        check_url(&format!("redis.cluster[{i}]"), node)?;
    }
    if r.timeout.is_zero() {
        return Err(ConfigError::field("redis.timeout", "must be > 0"));
    }
    // The files are part of the config: `check` and start-up refuse a bad one by name
    // instead of every request failing later with 503.
    crate::session::store::redis::tls::check(r).map_err(|e| ConfigError::field(e.field, e.message))
}

/// The same parse the Redis client does at start-up, so `check` refuses what `serve` would.
fn check_url(field: &str, url: &str) -> Result<(), ConfigError> {
    use ::redis::IntoConnectionInfo;
    let scheme_ok = matches!(
        url.split_once("://"),
        Some(("redis" | "rediss" | "redis+unix" | "unix", rest)) if !rest.is_empty()
    );
    if !scheme_ok {
        return Err(ConfigError::field(
            field,
            "must be a redis:// or rediss:// URL",
        ));
    }
    // The client's message never echoes the URL (it may carry a password).
    url.into_connection_info()
        .map(|_| ())
        .map_err(|e| ConfigError::field(field, format!("not a usable Redis URL: {e}")))
}
