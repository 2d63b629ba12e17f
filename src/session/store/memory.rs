//! Sessions in this process: for a single instance and for tests. The cookie holds only the ID.
//!
//! One `std::sync::Mutex` around a map. It is never held across an `.await` (every method takes it,
//! does map work, and drops it before returning), so contention is bounded by a hash lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

struct Entry {
    data: Arc<Data>,
    created: Millis,
    last_seen: Millis,
    expires: Millis,
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
}

pub struct MemoryStore {
    sessions: Mutex<HashMap<SessionId, Entry>>,
    idle_timeout: Option<Duration>,
}

impl MemoryStore {
    pub fn new(idle_timeout: Option<Duration>) -> MemoryStore {
        MemoryStore {
            sessions: Mutex::new(HashMap::new()),
            idle_timeout,
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated in a way that matters
        // more than refusing every request forever would.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut map = self.lock();
        let Some(entry) = map.get(&id) else {
            return Ok(Lookup::Rejected(Reject::Unknown));
        };
        if !entry.live(now, self.idle_timeout) {
            map.remove(&id);
            return Ok(Lookup::Rejected(Reject::Expired));
        }
        Ok(Lookup::Found {
            session: entry.session(id),
            reseal: false,
        })
    }

    async fn create(&self, session: &Session, _now: Millis) -> Result<Write, StoreError> {
        let mut map = self.lock();
        if map.contains_key(&session.id) {
            return Ok(Write::Collision);
        }
        map.insert(
            session.id.clone(),
            Entry {
                data: Arc::clone(&session.data),
                created: session.created,
                last_seen: session.last_seen,
                expires: session.expires,
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
        let mut map = self.lock();
        let Some(entry) = map.get_mut(&session.id) else {
            return Ok(Write::Gone);
        };
        apply(&mut entry.data, delta);
        entry.last_seen = entry.last_seen.max(session.last_seen);
        Ok(Write::Stored(session.id.as_str().to_owned()))
    }

    async fn regenerate(
        &self,
        old: &SessionId,
        session: &Session,
        delta: Delta<'_>,
        _now: Millis,
    ) -> Result<Write, StoreError> {
        let mut map = self.lock();
        if map.contains_key(&session.id) {
            return Ok(Write::Collision);
        }
        let Some(mut entry) = map.remove(old) else {
            return Ok(Write::Gone);
        };
        apply(&mut entry.data, delta);
        entry.last_seen = entry.last_seen.max(session.last_seen);
        map.insert(session.id.clone(), entry);
        Ok(Write::Stored(session.id.as_str().to_owned()))
    }

    async fn destroy(&self, id: &SessionId) -> Result<(), StoreError> {
        self.lock().remove(id);
        Ok(())
    }

    async fn cleanup(&self, now: Millis) -> Result<CleanupReport, StoreError> {
        let mut map = self.lock();
        let scanned = map.len() as u64;
        map.retain(|_, e| e.live(now, self.idle_timeout));
        Ok(CleanupReport {
            scanned,
            removed: scanned - map.len() as u64,
        })
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
}
