//! Sessions by owner from outside a request: what the admin API asks of the layer. Going through
//! the layer rather than the store keeps one clock (a test's manual clock moves listings too) and
//! one set of store metrics (`list` and `revoke` beside every other operation).

use super::store::{Handle, Owner, Revoked, SessionInfo, SessionStore, Store};
use super::{SessionError, SessionLayer};
use crate::metrics::StoreOp;

/// Why the layer cannot answer a question about owners, before the store is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnersOff {
    /// The cookie store keeps nothing server-side to list or revoke.
    CookieStore,
    /// `sessions.owner_key` is not set: no session is indexed by owner.
    NoOwnerKey,
}

impl SessionLayer {
    /// `sessions.owner_key`, when sessions are indexed by owner.
    pub fn owner_key(&self) -> Option<&str> {
        self.owner_key.as_deref()
    }

    /// Whether sessions can be named by handle (every store but cookies) and, with `by_owner`,
    /// by owner too (that also needs `sessions.owner_key`).
    pub fn owners_available(&self, by_owner: bool) -> Result<(), OwnersOff> {
        if matches!(*self.store, Store::Cookie(_)) {
            return Err(OwnersOff::CookieStore);
        }
        if by_owner && self.owner_key.is_none() {
            return Err(OwnersOff::NoOwnerKey);
        }
        Ok(())
    }

    /// The owner's live sessions, oldest first.
    pub async fn owner_sessions(&self, owner: &Owner) -> Result<Vec<SessionInfo>, SessionError> {
        let now = self.clock.now();
        self.timed(StoreOp::List, self.store.owner_sessions(owner, now))
            .await
            .map_err(SessionError::Store)
    }

    /// Ends every session of `owner`; the handles of those it ended.
    pub async fn revoke_owner(&self, owner: &Owner) -> Result<Revoked, SessionError> {
        let now = self.clock.now();
        self.timed(StoreOp::Revoke, self.store.revoke_owner(owner, None, now))
            .await
            .map_err(SessionError::Store)
    }

    /// Ends the session named by `handle`; `false` if there was none.
    pub async fn revoke_handle(&self, handle: &Handle) -> Result<bool, SessionError> {
        self.timed(StoreOp::Revoke, self.store.revoke_handle(handle))
            .await
            .map_err(SessionError::Store)
    }
}
