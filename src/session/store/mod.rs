//! Where sessions live. One trait, [`SessionStore`], and one file per back end.
//!
//! The trait speaks in *changes*, not whole records: `update` receives the keys the app set and
//! deleted on this response, so that a server-side store can apply them as a delta and two
//! concurrent requests that touch different keys both land. The cookie store, whose record travels
//! with the client, simply re-seals the merged session.
//!
//! [`Store`] is the enum the server holds. Dispatching through an enum instead of `dyn` keeps the
//! per-request futures unboxed.

pub mod cookie;
pub mod expiry;
mod id;
pub mod memory;
pub mod owner;
pub mod redis;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

pub use id::{Handle, SessionId};
pub use owner::{Owner, OwnerKeys, Revoked, SessionInfo};

/// The app's data for one session: a JSON object.
pub type Data = Map<String, Value>;

/// Milliseconds since the Unix epoch. Plain integers keep expiry arithmetic exact and cheap.
pub type Millis = u64;

/// The wall clock as [`Millis`]. The session layer reads it through its
/// [`Clock`](super::clock::Clock) so tests can substitute a manual one; call this directly only
/// outside the layer (benches, tests, tools).
pub fn now_millis() -> Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One session as the request path sees it.
#[derive(Clone, Debug)]
pub struct Session {
    pub id: SessionId,
    /// Shared so that a memory-store hit costs a refcount, not a deep copy.
    pub data: Arc<Data>,
    pub created: Millis,
    pub last_seen: Millis,
    /// Absolute end of life: `created + max_age`, fixed at creation ([`expiry`]).
    pub expires: Millis,
}

impl Session {
    /// A fresh session under `id` (the store chooses it: see `generate_id`).
    pub fn new(id: SessionId, now: Millis, max_age: Duration) -> Session {
        Session {
            id,
            data: Arc::new(Data::new()),
            created: now,
            last_seen: now,
            expires: expiry::expires_at(now, max_age),
        }
    }

    /// When this session dies if nothing happens ([`expiry::deadline`]).
    pub fn deadline(&self, idle: Option<Duration>) -> Millis {
        expiry::deadline(self.expires, self.last_seen, idle)
    }

    pub fn is_live(&self, now: Millis, idle: Option<Duration>) -> bool {
        expiry::is_live(now, self.expires, self.last_seen, idle)
    }
}

/// Why a presented cookie did not yield a session. Used for metrics and debug logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Not decryptable or not well-formed: forged, cut, padded, or sealed under an unknown key.
    Tampered,
    /// Well-formed and authentic, but past its deadline.
    Expired,
    /// A server-side store has no record for this ID (destroyed, evicted, or never existed).
    Unknown,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Tampered => "tampered",
            Reject::Expired => "expired",
            Reject::Unknown => "unknown",
        }
    }
}

#[derive(Debug)]
pub enum Lookup {
    Found {
        session: Session,
        /// The cookie was sealed under a previous secret: write it again under the current one.
        reseal: bool,
    },
    Rejected(Reject),
}

/// The app's changes on one response, for stores that apply them as a delta.
#[derive(Debug, Default, Clone, Copy)]
pub struct Delta<'a> {
    pub set: &'a [(String, Value)],
    pub delete: &'a [String],
}

/// Result of a write that must not clobber someone else's session.
#[derive(Debug)]
pub enum Write {
    /// Stored; send this cookie value.
    Stored(String),
    /// `create`/`regenerate`: the new ID is taken (astronomically rare); retry with another.
    Collision,
    /// `update`/`regenerate`: the session was destroyed concurrently; it stays destroyed.
    Gone,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanupReport {
    pub scanned: u64,
    pub removed: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The store did not answer within its timeout.
    #[error("{driver} store timed out after {after:?}")]
    Timeout {
        driver: &'static str,
        after: Duration,
    },
    /// The store answered with an error or the connection failed.
    #[error("{driver} store error: {message}")]
    Backend {
        driver: &'static str,
        message: String,
    },
    /// The operation needs something this store does not keep (the cookie store keeps nothing
    /// server-side to list or revoke).
    #[error("the {driver} store cannot {what}")]
    Unsupported {
        driver: &'static str,
        what: &'static str,
    },
}

/// The store boundary. Every method is one logical operation, atomic in the store.
pub trait SessionStore: Send + Sync {
    /// The driver name for logs and metrics.
    fn driver(&self) -> &'static str;

    /// A fresh ID for a new session, or for `regenerate` of `sibling`. A store may constrain the
    /// choice (Redis Cluster keeps a regenerated session in its old hash slot so the move is one
    /// atomic script); the default is 256 fresh random bits.
    fn generate_id(&self, sibling: Option<&SessionId>) -> SessionId {
        let _ = sibling;
        SessionId::generate()
    }

    /// Turns a cookie value into a live session, or says why not.
    fn load(
        &self,
        cookie: &str,
        now: Millis,
    ) -> impl Future<Output = Result<Lookup, StoreError>> + Send;

    /// Stores a brand-new session; never overwrites an existing one. `now` is the layer's clock
    /// (a store with TTLs counts them from it).
    fn create(
        &self,
        session: &Session,
        now: Millis,
    ) -> impl Future<Output = Result<Write, StoreError>> + Send;

    /// Applies `delta` and the new `last_seen` to an existing session. `session` is the merged
    /// result (what a whole-record store writes); a delta store must not resurrect a destroyed one.
    fn update(
        &self,
        session: &Session,
        delta: Delta<'_>,
        now: Millis,
    ) -> impl Future<Output = Result<Write, StoreError>> + Send;

    /// Moves the session from `old` to `session.id` and applies `delta`, atomically: at no moment
    /// do both IDs, or neither, hold it.
    fn regenerate(
        &self,
        old: &SessionId,
        session: &Session,
        delta: Delta<'_>,
        now: Millis,
    ) -> impl Future<Output = Result<Write, StoreError>> + Send;

    /// Removes the session. Destroying a missing session is not an error.
    fn destroy(&self, id: &SessionId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes every expired record.
    fn cleanup(
        &self,
        now: Millis,
    ) -> impl Future<Output = Result<CleanupReport, StoreError>> + Send;

    /// Cheap reachability probe for health checks.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send {
        async { Ok(()) }
    }

    /// Records that `id` belongs to `owner`, *before* the write that gives it that owner: the
    /// index may name a session that does not exist (yet, or any more), never the reverse, so a
    /// revocation cannot miss a session that is being created. The session's absolute end of
    /// life bounds how long the entry is kept. A store that maintains its index inside its own
    /// writes (memory) ignores this.
    fn index_owner(
        &self,
        owner: &Owner,
        session: &Session,
        now: Millis,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (owner, session, now);
        async { Ok(()) }
    }

    /// Forgets that `id` belongs to `owner`, *after* the write that changed its owner (or the
    /// destroy that ended it).
    fn unindex_owner(
        &self,
        owner: &Owner,
        id: &SessionId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (owner, id);
        async { Ok(()) }
    }

    /// The owner's live sessions, oldest first.
    fn owner_sessions(
        &self,
        owner: &Owner,
        now: Millis,
    ) -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send {
        let _ = (owner, now);
        async {
            Err(StoreError::Unsupported {
                driver: self.driver(),
                what: "list sessions by owner",
            })
        }
    }

    /// Ends every session of `owner` but `except`; returns the handles of those it ended.
    fn revoke_owner(
        &self,
        owner: &Owner,
        except: Option<&SessionId>,
        now: Millis,
    ) -> impl Future<Output = Result<Revoked, StoreError>> + Send {
        let _ = (owner, except, now);
        async {
            Err(StoreError::Unsupported {
                driver: self.driver(),
                what: "revoke sessions by owner",
            })
        }
    }

    /// Ends the session named by `handle`; `false` if there was none.
    fn revoke_handle(
        &self,
        handle: &Handle,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let _ = handle;
        async {
            Err(StoreError::Unsupported {
                driver: self.driver(),
                what: "revoke a session by handle",
            })
        }
    }
}

/// The configured store.
pub enum Store {
    Cookie(cookie::CookieStore),
    Memory(memory::MemoryStore),
    Redis(redis::RedisStore),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Cookie($s) => $e,
            Store::Memory($s) => $e,
            Store::Redis($s) => $e,
        }
    };
}

impl SessionStore for Store {
    fn driver(&self) -> &'static str {
        dispatch!(self, s => s.driver())
    }
    fn generate_id(&self, sibling: Option<&SessionId>) -> SessionId {
        dispatch!(self, s => s.generate_id(sibling))
    }
    async fn load(&self, cookie: &str, now: Millis) -> Result<Lookup, StoreError> {
        dispatch!(self, s => s.load(cookie, now).await)
    }
    async fn create(&self, session: &Session, now: Millis) -> Result<Write, StoreError> {
        dispatch!(self, s => s.create(session, now).await)
    }
    async fn update(
        &self,
        session: &Session,
        delta: Delta<'_>,
        now: Millis,
    ) -> Result<Write, StoreError> {
        dispatch!(self, s => s.update(session, delta, now).await)
    }
    async fn regenerate(
        &self,
        old: &SessionId,
        session: &Session,
        delta: Delta<'_>,
        now: Millis,
    ) -> Result<Write, StoreError> {
        dispatch!(self, s => s.regenerate(old, session, delta, now).await)
    }
    async fn destroy(&self, id: &SessionId) -> Result<(), StoreError> {
        dispatch!(self, s => s.destroy(id).await)
    }
    async fn cleanup(&self, now: Millis) -> Result<CleanupReport, StoreError> {
        dispatch!(self, s => s.cleanup(now).await)
    }
    async fn ping(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.ping().await)
    }
    async fn index_owner(
        &self,
        owner: &Owner,
        session: &Session,
        now: Millis,
    ) -> Result<(), StoreError> {
        dispatch!(self, s => s.index_owner(owner, session, now).await)
    }
    async fn unindex_owner(&self, owner: &Owner, id: &SessionId) -> Result<(), StoreError> {
        dispatch!(self, s => s.unindex_owner(owner, id).await)
    }
    async fn owner_sessions(
        &self,
        owner: &Owner,
        now: Millis,
    ) -> Result<Vec<SessionInfo>, StoreError> {
        dispatch!(self, s => s.owner_sessions(owner, now).await)
    }
    async fn revoke_owner(
        &self,
        owner: &Owner,
        except: Option<&SessionId>,
        now: Millis,
    ) -> Result<Revoked, StoreError> {
        dispatch!(self, s => s.revoke_owner(owner, except, now).await)
    }
    async fn revoke_handle(&self, handle: &Handle) -> Result<bool, StoreError> {
        dispatch!(self, s => s.revoke_handle(handle).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_256_bit_base64url() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), SessionId::ENCODED_LEN);
        assert!(SessionId::parse(a.as_str()).is_some());
        assert!(SessionId::parse("short").is_none());
        assert!(SessionId::parse(&"=".repeat(43)).is_none());
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn the_fingerprint_is_the_digests_first_32_bits() {
        use sha2::{Digest, Sha256};
        for _ in 0..20 {
            let id = SessionId::generate();
            let d = Sha256::digest(id.as_str().as_bytes());
            let want = format!("{:08x}", u32::from_be_bytes([d[0], d[1], d[2], d[3]]));
            assert_eq!(id.fingerprint(), want);
        }
    }

    #[test]
    fn handle_is_sha256_base64url_and_never_the_id() {
        let id = SessionId::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let h = id.handle();
        assert_eq!(h.as_str().len(), 43);
        assert_ne!(h.as_str(), id.as_str());
        assert_eq!(h, id.handle());
        assert_ne!(h, SessionId::generate().handle());
        // SHA-256 of 43 'A's, base64url without padding (computed independently with openssl).
        assert_eq!(h.as_str(), "DwBzhbb51LfusnSGBa_hqYSgo7-j8BTQnip4TOnlzRo");
        assert_eq!(Handle::parse(h.as_str()), Some(h));
        assert_eq!(Handle::from_digest(&h.digest()), h);
    }

    #[test]
    fn only_canonical_handles_parse() {
        let h = SessionId::generate().handle();
        let mut stray = h.as_str().to_owned();
        // The last character carries 4 payload bits and 2 padding bits: flip a padding bit.
        let last = stray.pop().unwrap();
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let i = alphabet.iter().position(|&c| c == last as u8).unwrap();
        stray.push(alphabet[i ^ 1] as char);
        assert_eq!(Handle::parse(&stray), None);
        assert_eq!(Handle::parse("short"), None);
        assert_eq!(Handle::parse(&"!".repeat(43)), None);
    }
}
