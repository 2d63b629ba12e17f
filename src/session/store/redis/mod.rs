//! Redis store, standalone and Cluster, behind one code path.
//!
//! # Key layout
//!
//! The cookie carries only the session ID. Redis never sees it: a session lives under
//! `key_prefix + "{" + hex(d[0]) + "}" + hex(d[1..])`, where `d = SHA-256(id)`, so a dump of Redis
//! (a backup, `MONITOR`, a replica) yields no usable cookie. The hash holds three meta fields
//! (`m:c` created, `m:s` last seen, `m:e` absolute expiry, all Unix milliseconds, readable so that
//! `cleanup` can judge a session) and one field per session key: with `redis.encrypt` (the
//! default) sealed under keys derived from the ID (`seal.rs`, marker `m:v` = `2`), so the dump
//! yields no data and no key names either; without it `d:<key>` = the JSON value. See `record.rs`.
//!
//! The `{xx}` hash tag is the first digest byte. Redis Cluster hashes only the tag, so a session
//! and its regenerated successor can be put in the same slot by drawing new IDs until the first
//! digest byte matches ([`RedisStore::generate_id`], ~256 SHA-256s on average). That makes
//! regenerate one atomic script (`RENAME`, or when sealed a rebuild under the new ID's keys, inside
//! `EVALSHA`) in Cluster as in standalone, and the 256 tags still spread sessions over every
//! master. Standalone uses the same layout so there is one code path to test.
//!
//! # Writes
//!
//! Every write is one `EVALSHA` of a script in `scripts/` (the crate loads it on `NOSCRIPT`).
//! `update` applies the response's delta (`HDEL`/`HSET` of the touched fields only), so two
//! concurrent requests that change different keys both land; the script checks `EXISTS` first, so
//! a session destroyed concurrently is not resurrected. A hash in the other layout than the
//! configured one (plaintext from before `redis.encrypt`, or sealed after it was turned off) makes
//! `update` answer so, and the write becomes `rewrite`: the whole session, in the configured
//! layout, in one script. With `encrypt` on, loading a readable hash asks the layer to write it
//! back (`reseal`), so sessions that are only read are sealed too.
//!
//! Every write sets the key's TTL to the session's remaining lifetime, computed in Rust by the one
//! expiry rule ([`super::expiry`]) and passed to the script; the script keeps the TTL instead when
//! the stored `last_seen` is later than the write's, so a concurrent writer with an older
//! `last_seen` cannot shorten it. Loads are one `HGETALL` and check the stored timestamps too, so
//! a key that outlived its deadline (lost TTL, clock step) is never served; the sweep script gets
//! the rule's cut-offs the same way.
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
mod owners;
mod record;
mod scripts;
mod seal;
mod sentinel;
#[cfg(test)]
mod tests;
pub mod tls;

use std::time::Duration;

use ::redis::{RedisError, Script};

use self::connection::Connection;
use self::record::{Decoded, Layout};
use self::scripts::{Args, Change, OTHER_LAYOUT, SCRIPTS};
use self::seal::Keys;
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
    /// `redis.encrypt`: writes produce the sealed layout.
    encrypt: bool,
    /// `sessions.owner_key` is set: sessions are indexed by owner ([`owners`]).
    owner_keys: Option<OwnerKeys>,
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
            encrypt: config.encrypt,
            owner_keys: None,
        })
    }

    /// Indexes sessions by owner, naming each owner's index by a keyed hash under `keys`.
    pub fn with_owner_keys(mut self, keys: Option<OwnerKeys>) -> RedisStore {
        self.owner_keys = keys;
        self
    }

    /// The Redis key of a session: see the module docs.
    pub fn key(&self, id: &SessionId) -> String {
        keys::key(&self.prefix, id)
    }

    /// The keys a write under `id` seals with, when it seals: derived once per store call.
    fn write_keys(&self, id: &SessionId) -> Option<Keys> {
        self.encrypt.then(|| Keys::derive(id))
    }

    fn change<'a>(
        &self,
        session: &'a Session,
        delta: Delta<'a>,
        now: Millis,
        keys: Option<&'a Keys>,
    ) -> Change<'a> {
        Change {
            session,
            delta,
            now,
            idle: self.idle_timeout,
            layout: layout(keys),
        }
    }

    /// Runs the write `script` against `keys` with `args`: one `EVALSHA` (then `WAIT` when
    /// `redis.sentinel.wait_replicas` asks for it).
    async fn run(&self, script: &Script, keys: &[String], args: Args) -> Result<i64, StoreError> {
        let mut inv = script.prepare_invoke();
        for key in keys {
            inv.key(key);
        }
        for a in args {
            inv.arg(a);
        }
        let inv = &inv;
        self.conn
            .run_write(|mut c| async move { inv.invoke_async(&mut c).await })
            .await
    }
}

fn layout(keys: Option<&Keys>) -> Layout<'_> {
    keys.map_or(Layout::Readable, Layout::Sealed)
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
        // Bytes, not strings: a sealed hash's names and values are binary.
        let fields: Vec<(Vec<u8>, Vec<u8>)> = self
            .conn
            .run(|mut c| {
                let key = &key;
                async move { ::redis::cmd("HGETALL").arg(key).query_async(&mut c).await }
            })
            .await?;
        if fields.is_empty() {
            return Ok(Lookup::Rejected(Reject::Unknown));
        }
        let (session, sealed) = match record::decode(id, fields) {
            Decoded::Found { session, sealed } => (session, sealed),
            Decoded::Incomplete => return Ok(Lookup::Rejected(Reject::Unknown)),
            Decoded::Tampered(e) => {
                // The key, not the ID: the log must not hand out the credential it protects.
                tracing::warn!(key = %key, error = %e, "refused a session whose sealed data does not open");
                return Ok(Lookup::Rejected(Reject::Tampered));
            }
        };
        if !session.is_live(now, self.idle_timeout) {
            return Ok(Lookup::Rejected(Reject::Expired));
        }
        Ok(Lookup::Found {
            session,
            // A readable hash while sealing: write it back sealed even if this request changes
            // nothing, so that sessions that are only read leave the plaintext too.
            reseal: self.encrypt && !sealed,
        })
    }

    async fn create(&self, session: &Session, now: Millis) -> Result<Write, StoreError> {
        let keys = self.write_keys(&session.id);
        let args = scripts::create_args(session, now, self.idle_timeout, layout(keys.as_ref()));
        let code = self
            .run(&SCRIPTS.create, &[self.key(&session.id)], args)
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
        let keys = self.write_keys(&session.id);
        let change = self.change(session, delta, now, keys.as_ref());
        let key = [self.key(&session.id)];
        let mut code = self
            .run(&SCRIPTS.update, &key, change.update_args())
            .await?;
        if code == OTHER_LAYOUT {
            code = self
                .run(&SCRIPTS.rewrite, &key, change.whole_args())
                .await?;
        }
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
        // The whole session goes along: a sealed one is rebuilt under the new ID's keys.
        let seal = self.write_keys(&session.id);
        let args = self.change(session, delta, now, seal.as_ref()).whole_args();
        let code = self.run(&SCRIPTS.regenerate, &keys, args).await?;
        Ok(match code {
            1 => Write::Stored(session.id.as_str().to_owned()),
            2 => Write::Collision,
            _ => Write::Gone,
        })
    }

    async fn destroy(&self, id: &SessionId) -> Result<(), StoreError> {
        self.delete(&self.key(id)).await.map(|_| ())
    }

    async fn cleanup(&self, now: Millis) -> Result<CleanupReport, StoreError> {
        self.sweep_all(now).await
    }

    async fn index_owner(
        &self,
        owner: &Owner,
        session: &Session,
        now: Millis,
    ) -> Result<(), StoreError> {
        self.add_owner(owner, session, now).await
    }

    async fn unindex_owner(&self, owner: &Owner, id: &SessionId) -> Result<(), StoreError> {
        self.remove_owner(owner, id).await
    }

    async fn owner_sessions(
        &self,
        owner: &Owner,
        now: Millis,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        self.list_owner(owner, now).await
    }

    async fn revoke_owner(
        &self,
        owner: &Owner,
        except: Option<&SessionId>,
        now: Millis,
    ) -> Result<Revoked, StoreError> {
        self.revoke_by_owner(owner, except, now).await
    }

    async fn revoke_handle(&self, handle: &Handle) -> Result<bool, StoreError> {
        self.revoke_by_handle(handle).await
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
