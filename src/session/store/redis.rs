//! Redis store (standalone and Cluster). Placeholder until the Redis driver lands.

use std::time::Duration;

use super::*;
use crate::config::RedisConfig;

pub struct RedisStore {
    _private: (),
}

impl RedisStore {
    /// Builds the client without requiring Redis to be up: the proxy must start (and answer 503)
    /// while Redis is down, and recover by itself when it returns.
    pub fn new(
        _config: &RedisConfig,
        _idle_timeout: Option<Duration>,
    ) -> Result<RedisStore, StoreError> {
        Err(StoreError::Backend {
            driver: "redis",
            message: "the redis driver is not built yet".into(),
        })
    }
}

impl SessionStore for RedisStore {
    fn driver(&self) -> &'static str {
        "redis"
    }
    async fn load(&self, _cookie: &str, _now: Millis) -> Result<Lookup, StoreError> {
        unreachable!()
    }
    async fn create(&self, _session: &Session) -> Result<Write, StoreError> {
        unreachable!()
    }
    async fn update(&self, _session: &Session, _delta: Delta<'_>) -> Result<Write, StoreError> {
        unreachable!()
    }
    async fn regenerate(
        &self,
        _old: &SessionId,
        _session: &Session,
        _delta: Delta<'_>,
    ) -> Result<Write, StoreError> {
        unreachable!()
    }
    async fn destroy(&self, _id: &SessionId) -> Result<(), StoreError> {
        unreachable!()
    }
    async fn cleanup(&self, _now: Millis) -> Result<CleanupReport, StoreError> {
        unreachable!()
    }
}
