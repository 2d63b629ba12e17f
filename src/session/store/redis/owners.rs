//! Sessions by owner in Redis: one sorted set per owner, named by a keyed hash of the owner value
//! ([`keys::owner_key`]), member = the session's handle, score = its absolute expiry.
//!
//! A session and its owner's set are in different Cluster slots, so no script can change both.
//! The order of the two writes is what keeps the index sound instead: an entry is added *before*
//! the write that gives a session its owner and removed only *after* the write that takes it away
//! (or by a revocation that deleted the session itself). The index may therefore name a session
//! that does not exist (yet, or any more), never miss one that does: a login racing a revocation
//! leaves a session that the listing shows. Such stale entries are skipped by every read, and go
//! when their score (the session's absolute expiry) passes: the sweep trims them, and the set's
//! TTL is never shorter than its longest-lived member.
//!
//! A revocation deletes only the members it read, and removes from the set only those it deleted:
//! a member whose session did not exist may be a login in progress, and stays.

use super::keys;
use super::scripts::SCRIPTS;
use super::RedisStore;
use crate::session::store::{
    expiry, Handle, Millis, Owner, Revoked, Session, SessionId, SessionInfo, StoreError,
};

impl RedisStore {
    /// Where a new entry for `owner` goes: the index under the current secret.
    fn owner_index(&self, owner: &Owner) -> Option<String> {
        let tags = self.owner_keys.as_ref()?;
        Some(keys::owner_key(&self.prefix, &tags.tag(owner)))
    }

    /// Every index `owner` may have entries in: the current secret's, then the previous ones'.
    fn owner_indexes(&self, owner: &Owner) -> Vec<String> {
        self.owner_keys
            .iter()
            .flat_map(|k| k.tags(owner))
            .map(|tag| keys::owner_key(&self.prefix, &tag))
            .collect()
    }

    fn handle_key(&self, handle: &Handle) -> String {
        keys::key_of_digest(&self.prefix, &handle.digest())
    }

    pub(super) async fn add_owner(
        &self,
        owner: &Owner,
        session: &Session,
        now: Millis,
    ) -> Result<(), StoreError> {
        let Some(index) = self.owner_index(owner) else {
            return Ok(());
        };
        let ttl = session.expires.saturating_sub(now).max(1);
        let handle = session.id.handle();
        let (index, handle) = (&index, handle.as_str());
        let score = session.expires;
        self.conn
            .run_write(|mut c| async move {
                SCRIPTS
                    .owner_add
                    .key(index)
                    .arg(score)
                    .arg(handle)
                    .arg(ttl)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        Ok(())
    }

    pub(super) async fn remove_owner(
        &self,
        owner: &Owner,
        id: &SessionId,
    ) -> Result<(), StoreError> {
        let handle = id.handle();
        for index in self.owner_indexes(owner) {
            self.zrem(&index, &[handle]).await?;
        }
        Ok(())
    }

    async fn zrem(&self, index: &str, handles: &[Handle]) -> Result<(), StoreError> {
        if handles.is_empty() {
            return Ok(());
        }
        self.conn
            .run_write(|mut c| async move {
                let mut cmd = ::redis::cmd("ZREM");
                cmd.arg(index);
                for h in handles {
                    cmd.arg(h.as_str());
                }
                cmd.query_async::<i64>(&mut c).await
            })
            .await?;
        Ok(())
    }

    /// The handles in every index of `owner` whose score says they may still live.
    async fn members(
        &self,
        owner: &Owner,
        now: Millis,
    ) -> Result<Vec<(String, Handle)>, StoreError> {
        let mut out: Vec<(String, Handle)> = Vec::new();
        for index in self.owner_indexes(owner) {
            let index = &index;
            let names: Vec<String> = self
                .conn
                .run(|mut c| async move {
                    ::redis::cmd("ZRANGE")
                        .arg(index)
                        .arg(format!("({now}"))
                        .arg("+inf")
                        .arg("BYSCORE")
                        .query_async(&mut c)
                        .await
                })
                .await?;
            for handle in names.iter().filter_map(|n| Handle::parse(n)) {
                if !out.iter().any(|(_, h)| *h == handle) {
                    out.push((index.clone(), handle));
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn list_owner(
        &self,
        owner: &Owner,
        now: Millis,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let mut list = Vec::new();
        for (_, handle) in self.members(owner, now).await? {
            let key = self.handle_key(&handle);
            let key = &key;
            let meta: Vec<Option<u64>> = self
                .conn
                .run(|mut c| async move {
                    ::redis::cmd("HMGET")
                        .arg(key)
                        .arg("m:c")
                        .arg("m:s")
                        .arg("m:e")
                        .query_async(&mut c)
                        .await
                })
                .await?;
            let [Some(created), Some(last_seen), Some(expires)] = meta[..] else {
                continue;
            };
            if expiry::is_live(now, expires, last_seen, self.idle_timeout) {
                list.push(SessionInfo {
                    handle,
                    created,
                    last_seen,
                    expires: expiry::deadline(expires, last_seen, self.idle_timeout),
                });
            }
        }
        list.sort_by(|a, b| (a.created, a.handle.as_str()).cmp(&(b.created, b.handle.as_str())));
        Ok(list)
    }

    pub(super) async fn revoke_by_owner(
        &self,
        owner: &Owner,
        except: Option<&SessionId>,
        now: Millis,
    ) -> Result<Revoked, StoreError> {
        let keep = except.map(SessionId::handle);
        let mut revoked = Vec::new();
        for (index, handle) in self.members(owner, now).await? {
            if Some(handle) == keep {
                continue;
            }
            if self.delete(&self.handle_key(&handle)).await? {
                self.zrem(&index, &[handle]).await?;
                revoked.push(handle);
            }
        }
        Ok(revoked)
    }

    pub(super) async fn revoke_by_handle(&self, handle: &Handle) -> Result<bool, StoreError> {
        self.delete(&self.handle_key(handle)).await
    }

    /// `DEL key`: whether there was one.
    pub(super) async fn delete(&self, key: &str) -> Result<bool, StoreError> {
        let removed: i64 = self
            .conn
            .run_write(|mut c| async move {
                ::redis::cmd("DEL")
                    .arg(key)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await?;
        Ok(removed > 0)
    }
}
