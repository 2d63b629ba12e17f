//! Sessions in this process: for a single instance and for tests. The cookie holds only the ID.
//!
//! One `std::sync::Mutex` around the sessions and their owner index. It is never held across an
//! `.await` (every method takes it, does map work, and drops it before returning), so contention
//! is bounded by a hash lookup.
//!
//! With `sessions.owner_key`, every write re-reads the session's owner and moves it in the index
//! under the same lock, so the index is always exact here; the layer's `index_owner` and
//! `unindex_owner` calls (which a store outside the process needs) are no-ops.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

struct Entry {
    data: Arc<Data>,
    created: Millis,
    last_seen: Millis,
    expires: Millis,
    /// Kept so that revoking by handle is a scan of stored values, not a hash per session.
    handle: Handle,
    owner: Option<Owner>,
}

impl Entry {
    fn session(&self, id: SessionId) -> Session {
        Session {
            id,
            data: Arc::clone(&self.data),
            created: self.created,
            last_seen: self.last_seen,
            expires: self.expires,
        }
    }

    fn live(&self, now: Millis, idle: Option<Duration>) -> bool {
        expiry::is_live(now, self.expires, self.last_seen, idle)
    }

    fn info(&self, idle: Option<Duration>) -> SessionInfo {
        SessionInfo {
            handle: self.handle,
            created: self.created,
            last_seen: self.last_seen,
            expires: expiry::deadline(self.expires, self.last_seen, idle),
        }
    }
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<SessionId, Entry>,
    owners: HashMap<Owner, HashSet<SessionId>>,
}

impl Inner {
    fn insert(&mut self, id: SessionId, entry: Entry) {
        if let Some(owner) = &entry.owner {
            self.owners
                .entry(owner.clone())
                .or_default()
                .insert(id.clone());
        }
        self.sessions.insert(id, entry);
    }

    fn remove(&mut self, id: &SessionId) -> Option<Entry> {
        let entry = self.sessions.remove(id)?;
        if let Some(owner) = &entry.owner {
            self.unindex(owner, id);
        }
        Some(entry)
    }

    fn unindex(&mut self, owner: &Owner, id: &SessionId) {
        if let Some(ids) = self.owners.get_mut(owner) {
            ids.remove(id);
            if ids.is_empty() {
                self.owners.remove(owner);
            }
        }
    }

    /// Moves `id` in the index after its data changed.
    fn reindex(&mut self, id: &SessionId, owner_key: Option<&str>) {
        let Some(key) = owner_key else { return };
        let Some(entry) = self.sessions.get_mut(id) else {
            return;
        };
        let owner = Owner::of(&entry.data, key);
        if owner == entry.owner {
            return;
        }
        let old = std::mem::replace(&mut entry.owner, owner.clone());
        if let Some(old) = old {
            self.unindex(&old, id);
        }
        if let Some(owner) = owner {
            self.owners.entry(owner).or_default().insert(id.clone());
        }
    }
}

pub struct MemoryStore {
    inner: Mutex<Inner>,
    idle_timeout: Option<Duration>,
    /// `sessions.owner_key`: sessions are indexed by this key's value.
    owner_key: Option<String>,
}

impl MemoryStore {
    pub fn new(idle_timeout: Option<Duration>) -> MemoryStore {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            idle_timeout,
            owner_key: None,
        }
    }

    /// Indexes sessions by the value of `key` in their data (`sessions.owner_key`).
    pub fn with_owner_key(mut self, key: Option<String>) -> MemoryStore {
        self.owner_key = key;
        self
    }

    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-updated in a way that matters
        // more than refusing every request forever would.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn owner_of(&self, data: &Data) -> Option<Owner> {
        self.owner_key.as_deref().and_then(|k| Owner::of(data, k))
    }
}

fn apply(data: &mut Arc<Data>, delta: Delta<'_>) {
    if delta.set.is_empty() && delta.delete.is_empty() {
        return;
    }
    let data = Arc::make_mut(data);
    for key in delta.delete {
        data.remove(key);
    }
    for (key, value) in delta.set {
        data.insert(key.clone(), value.clone());
    }
}

impl SessionStore for MemoryStore {
    fn driver(&self) -> &'static str {
        "memory"
    }

    async fn load(&self, cookie: &str, now: Millis) -> Result<Lookup, StoreError> {
        let Some(id) = SessionId::parse(cookie) else {
            return Ok(Lookup::Rejected(Reject::Tampered));
        };
        let mut inner = self.lock();
        let Some(entry) = inner.sessions.get(&id) else {
            return Ok(Lookup::Rejected(Reject::Unknown));
        };
        if !entry.live(now, self.idle_timeout) {
            inner.remove(&id);
            return Ok(Lookup::Rejected(Reject::Expired));
        }
        Ok(Lookup::Found {
            session: entry.session(id),
            reseal: false,
        })
    }

    async fn create(&self, session: &Session, _now: Millis) -> Result<Write, StoreError> {
        let owner = self.owner_of(&session.data);
        let mut inner = self.lock();
        if inner.sessions.contains_key(&session.id) {
            return Ok(Write::Collision);
        }
        inner.insert(
            session.id.clone(),
            Entry {
                data: Arc::clone(&session.data),
                created: session.created,
                last_seen: session.last_seen,
                expires: session.expires,
                handle: session.id.handle(),
                owner,
            },
        );
        Ok(Write::Stored(session.id.as_str().to_owned()))
    }

    async fn update(
        &self,
        session: &Session,
        delta: Delta<'_>,
        _now: Millis,
    ) -> Result<Write, StoreError> {
        let mut inner = self.lock();
        let Some(entry) = inner.sessions.get_mut(&session.id) else {
            return Ok(Write::Gone);
        };
        apply(&mut entry.data, delta);
        entry.last_seen = entry.last_seen.max(session.last_seen);
        if !delta.set.is_empty() || !delta.delete.is_empty() {
            inner.reindex(&session.id, self.owner_key.as_deref());
        }
        Ok(Write::Stored(session.id.as_str().to_owned()))
    }

    async fn regenerate(
        &self,
        old: &SessionId,
        session: &Session,
        delta: Delta<'_>,
        _now: Millis,
    ) -> Result<Write, StoreError> {
        let mut inner = self.lock();
        if inner.sessions.contains_key(&session.id) {
            return Ok(Write::Collision);
        }
        let Some(mut entry) = inner.remove(old) else {
            return Ok(Write::Gone);
        };
        apply(&mut entry.data, delta);
        entry.last_seen = entry.last_seen.max(session.last_seen);
        entry.handle = session.id.handle();
        entry.owner = self.owner_of(&entry.data);
        inner.insert(session.id.clone(), entry);
        Ok(Write::Stored(session.id.as_str().to_owned()))
    }

    async fn destroy(&self, id: &SessionId) -> Result<(), StoreError> {
        self.lock().remove(id);
        Ok(())
    }

    async fn cleanup(&self, now: Millis) -> Result<CleanupReport, StoreError> {
        let mut inner = self.lock();
        let scanned = inner.sessions.len() as u64;
        let dead: Vec<SessionId> = inner
            .sessions
            .iter()
            .filter(|(_, e)| !e.live(now, self.idle_timeout))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &dead {
            inner.remove(id);
        }
        Ok(CleanupReport {
            scanned,
            removed: dead.len() as u64,
        })
    }

    async fn owner_sessions(
        &self,
        owner: &Owner,
        now: Millis,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        let inner = self.lock();
        let mut list: Vec<SessionInfo> = inner
            .owners
            .get(owner)
            .into_iter()
            .flatten()
            .filter_map(|id| inner.sessions.get(id))
            .filter(|e| e.live(now, self.idle_timeout))
            .map(|e| e.info(self.idle_timeout))
            .collect();
        list.sort_by(|a, b| (a.created, a.handle.as_str()).cmp(&(b.created, b.handle.as_str())));
        Ok(list)
    }

    async fn revoke_owner(
        &self,
        owner: &Owner,
        except: Option<&SessionId>,
        _now: Millis,
    ) -> Result<Revoked, StoreError> {
        let mut inner = self.lock();
        let ids: Vec<SessionId> = inner
            .owners
            .get(owner)
            .into_iter()
            .flatten()
            .filter(|id| Some(*id) != except)
            .cloned()
            .collect();
        Ok(ids
            .iter()
            .filter_map(|id| inner.remove(id))
            .map(|e| e.handle)
            .collect())
    }

    async fn revoke_handle(&self, handle: &Handle) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let id = inner
            .sessions
            .iter()
            .find(|(_, e)| e.handle == *handle)
            .map(|(id, _)| id.clone());
        Ok(id.and_then(|id| inner.remove(&id)).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn concurrent_deltas_both_land() {
        let store = MemoryStore::new(None);
        let s = Session::new(SessionId::generate(), 0, Duration::from_secs(60));
        store.create(&s, 0).await.unwrap();
        let a = [("a".to_string(), json!(1))];
        let b = [("b".to_string(), json!(2))];
        // Both updates start from the same (empty) snapshot, as two concurrent requests would.
        store
            .update(
                &s,
                Delta {
                    set: &a,
                    delete: &[],
                },
                1,
            )
            .await
            .unwrap();
        store
            .update(
                &s,
                Delta {
                    set: &b,
                    delete: &[],
                },
                1,
            )
            .await
            .unwrap();
        match store.load(s.id.as_str(), 1).await.unwrap() {
            Lookup::Found { session, .. } => {
                assert_eq!(session.data.get("a"), Some(&json!(1)));
                assert_eq!(session.data.get("b"), Some(&json!(2)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn destroyed_session_is_not_resurrected_by_update() {
        let store = MemoryStore::new(None);
        let s = Session::new(SessionId::generate(), 0, Duration::from_secs(60));
        store.create(&s, 0).await.unwrap();
        store.destroy(&s.id).await.unwrap();
        let set = [("x".to_string(), json!(true))];
        assert!(matches!(
            store
                .update(
                    &s,
                    Delta {
                        set: &set,
                        delete: &[]
                    },
                    1,
                )
                .await
                .unwrap(),
            Write::Gone
        ));
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn regenerate_moves_and_cleanup_sweeps() {
        let store = MemoryStore::new(Some(Duration::from_secs(1)));
        let s = Session::new(SessionId::generate(), 0, Duration::from_secs(60));
        store.create(&s, 0).await.unwrap();
        let mut moved = s.clone();
        moved.id = SessionId::generate();
        store
            .regenerate(&s.id, &moved, Delta::default(), 1)
            .await
            .unwrap();
        assert!(matches!(
            store.load(s.id.as_str(), 1).await.unwrap(),
            Lookup::Rejected(Reject::Unknown)
        ));
        assert!(matches!(
            store.load(moved.id.as_str(), 1).await.unwrap(),
            Lookup::Found { .. }
        ));
        let report = store.cleanup(5_000).await.unwrap();
        assert_eq!(
            report,
            CleanupReport {
                scanned: 1,
                removed: 1
            }
        );
    }

    fn owned(user: &str) -> Session {
        let mut s = Session::new(SessionId::generate(), 0, Duration::from_secs(60));
        Arc::make_mut(&mut s.data).insert("user_id".into(), json!(user));
        s
    }

    fn handles(list: &[SessionInfo]) -> Vec<Handle> {
        list.iter().map(|i| i.handle).collect()
    }

    #[tokio::test]
    async fn the_owner_index_follows_every_write() {
        let store = MemoryStore::new(None).with_owner_key(Some("user_id".into()));
        let alice = Owner::new("alice").unwrap();
        let (a, b, c) = (owned("alice"), owned("alice"), owned("bob"));
        for s in [&a, &b, &c] {
            store.create(s, 0).await.unwrap();
        }
        assert_eq!(store.owner_sessions(&alice, 1).await.unwrap().len(), 2);

        // Regenerate moves the entry; an owner change moves it to the new owner.
        let mut moved = a.clone();
        moved.id = SessionId::generate();
        store
            .regenerate(&a.id, &moved, Delta::default(), 1)
            .await
            .unwrap();
        let set = [("user_id".to_string(), json!("carol"))];
        let delta = Delta {
            set: &set,
            delete: &[],
        };
        store.update(&b, delta, 1).await.unwrap();
        let listed = store.owner_sessions(&alice, 1).await.unwrap();
        assert_eq!(handles(&listed), vec![moved.id.handle()]);
        let carol = Owner::new("carol").unwrap();
        assert_eq!(store.owner_sessions(&carol, 1).await.unwrap().len(), 1);

        // `others` spares the given session; by handle ends exactly one.
        store.create(&owned("alice"), 0).await.unwrap();
        let ended = store
            .revoke_owner(&alice, Some(&moved.id), 1)
            .await
            .unwrap();
        assert_eq!(ended.len(), 1);
        assert_eq!(store.owner_sessions(&alice, 1).await.unwrap().len(), 1);
        assert!(store.revoke_handle(&moved.id.handle()).await.unwrap());
        assert!(!store.revoke_handle(&moved.id.handle()).await.unwrap());
        assert!(store.owner_sessions(&alice, 1).await.unwrap().is_empty());
        assert_eq!(store.len(), 2, "carol's and bob's remain");
        assert!(
            !store.lock().owners.contains_key(&alice),
            "no empty set is kept"
        );
    }

    #[tokio::test]
    async fn expired_sessions_are_not_listed_and_leave_the_index() {
        let store =
            MemoryStore::new(Some(Duration::from_secs(1))).with_owner_key(Some("user_id".into()));
        let alice = Owner::new("alice").unwrap();
        store.create(&owned("alice"), 0).await.unwrap();
        assert_eq!(store.owner_sessions(&alice, 500).await.unwrap().len(), 1);
        assert!(store
            .owner_sessions(&alice, 5_000)
            .await
            .unwrap()
            .is_empty());
        store.cleanup(5_000).await.unwrap();
        assert!(store.lock().owners.is_empty());
    }
}
