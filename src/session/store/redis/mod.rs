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
//! Every write is one `EVALSHA` of a script in `scripts/` (the crate loads it on `NOSCRIPT`).
//! `update` applies the response's delta (`HDEL`/`HSET` of the touched fields only), so two
//! concurrent requests that change different keys both land; the script checks `EXISTS` first, so
//! a session destroyed concurrently is not resurrected. Every write sets the key's TTL to the
//! session's remaining lifetime, computed in Rust by the one expiry rule ([`super::expiry`]) and
//! passed to the script; the script keeps the TTL instead when the stored `last_seen` is later
//! than the write's, so a concurrent writer with an older `last_seen` cannot shorten it. Loads are
//! one `HGETALL` and check the stored timestamps too, so a key that outlived its deadline (lost
//! TTL, clock step) is never served; the sweep script gets the rule's cut-offs the same way.
//!
//! # Connections and failure
//!
//! One multiplexed connection shared by every worker, connected lazily, every operation bounded
//! by `redis.timeout`: see `connection.rs`. `redis.pool_size` is not used by this driver.
//!
//! # TLS
//!
//! `rediss://` URLs (standalone and every Cluster seed) are verified against the system roots
//! plus `redis.ca`, and present `redis.client_cert` when set; [`tls`] turns the files into the
//! crate's [`::redis::TlsCertificates`]. The crate builds its rustls config from the process-wide
//! crypto provider, which [`crate::tls::crypto_provider`] installs before any client exists.

mod cleanup;
mod connection;
mod keys;
mod record;
mod scripts;
mod sentinel;
#[cfg(test)]
mod tests;
pub mod tls;

use std::collections::HashMap;
use std::time::Duration;

use ::redis::{RedisError, Script};

use self::connection::Connection;
use self::scripts::SCRIPTS;
use super::*;
use crate::config::RedisConfig;

const DRIVER: &str = "redis";

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

fn timed_out(after: Duration) -> StoreError {
    StoreError::Timeout {
        driver: DRIVER,
        after,
    }
}

pub struct RedisStore {
    conn: Connection,
    prefix: String,
    idle_timeout: Option<Duration>,
}

impl RedisStore {
    /// Builds the client without requiring Redis to be up: the proxy must start (and answer 503)
    /// while Redis is down, and recover by itself when it returns. Fails only on a malformed URL.
    pub fn new(
        config: &RedisConfig,
        idle_timeout: Option<Duration>,
    ) -> Result<RedisStore, StoreError> {
        // Installs the process default that the crate's `ClientConfig::builder()` takes.
        crate::tls::crypto_provider();
        let certs = tls::certificates(config).map_err(|e| config_error(e.to_string()))?;
        Ok(RedisStore {
            conn: Connection::new(config, certs)?,
            prefix: config.key_prefix.clone(),
            idle_timeout,
        })
    }

    /// The Redis key of a session: see the module docs.
    pub fn key(&self, id: &SessionId) -> String {
        keys::key(&self.prefix, id)
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
        for a in scripts::apply_args(session, delta, now, self.idle_timeout) {
            inv.arg(a);
        }
        let inv = &inv;
        self.conn
            .run_write(|mut c| async move { inv.invoke_async(&mut c).await })
            .await
    }
}

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
        let tag = keys::tag(old);
        for _ in 0..100_000 {
            let candidate = SessionId::generate();
            if keys::tag(&candidate) == tag {
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
        let fields: HashMap<String, String> = self
            .conn
            .run(|mut c| {
                let key = &key;
                async move { ::redis::cmd("HGETALL").arg(key).query_async(&mut c).await }
            })
            .await?;
        if fields.is_empty() {
            return Ok(Lookup::Rejected(Reject::Unknown));
        }
        let Some(session) = record::decode(id, fields) else {
            return Ok(Lookup::Rejected(Reject::Unknown));
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
        let mut inv = SCRIPTS.create.prepare_invoke();
        inv.key(&key);
        for a in scripts::create_args(session, now, self.idle_timeout) {
            inv.arg(a);
        }
        let inv = &inv;
        let code: i64 = self
            .conn
            .run_write(|mut c| async move { inv.invoke_async(&mut c).await })
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
        if keys::tag(old) != keys::tag(&session.id) {
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
        self.conn
            .run_write(|mut c| async move {
                ::redis::cmd("DEL")
                    .arg(key)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }

    async fn cleanup(&self, now: Millis) -> Result<CleanupReport, StoreError> {
        self.sweep_all(now).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.conn
            .run(|mut c| async move {
                ::redis::cmd("PING")
                    .query_async::<::redis::Value>(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }
}
