//! Sessions by owner: the bookkeeping a response does (`X-Session-Clear: others | everywhere`,
//! keeping the owner index in step with the session's writes: see `SessionStore::index_owner`),
//! and what the admin API asks of the layer. Going through the layer rather than the store keeps
//! one clock (a test's manual clock moves listings too) and one set of store metrics (`list` and
//! `revoke` beside every other operation).

use super::protocol::{Controls, Revoke};
use super::store::{
    Data, Handle, Millis, Owner, Revoked, Session, SessionId, SessionInfo, SessionStore, Store,
};
use super::{Outcome, SessionError, SessionLayer};
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

    /// The owner bookkeeping before a session is written: ends what Clear asked for and adds
    /// the session to its owner's index when this write makes it that owner's (before the
    /// write, never after: see `index_owner`). Returns the owner the session is written with.
    pub(super) async fn settle_owner(
        &self,
        controls: &Controls,
        arrived: Option<&(Owner, SessionId)>,
        cleared: Option<Session>,
        session: &Session,
        now: Millis,
        outcome: &mut Outcome,
    ) -> Result<Option<Owner>, SessionError> {
        let revoke = controls.revoke;
        if !self.tracks(controls) {
            self.end(cleared, revoke, None, None, now, outcome).await?;
            return Ok(None);
        }
        let owner = self.owner_of(&session.data);
        // `others` of the owner the session arrived with, or (a login that also signs out the
        // other devices) the one this response gives it. The session keeps its arriving ID until
        // the write, so that is the one to spare.
        let revoker = arrived.map(|(o, _)| o).or(owner.as_ref());
        let spared = arrived.map(|(_, id)| id).filter(|_| cleared.is_none());
        self.end(cleared, revoke, revoker, spared, now, outcome)
            .await?;
        let new_here = arrived.is_none_or(|(a, id)| Some(a) != owner.as_ref() || *id != session.id);
        if let Some(owner) = owner.as_ref().filter(|_| new_here) {
            self.timed(StoreOp::Index, self.store.index_owner(owner, session, now))
                .await
                .map_err(SessionError::Store)?;
        }
        Ok(owner)
    }

    /// The owner bookkeeping after a write landed: the arriving ID leaves its owner's index if
    /// the session moved (regenerate) or changed owner, and a session stored under another ID
    /// than the one indexed (a collision retried) is indexed under the one it got.
    pub(super) async fn after_write(
        &self,
        arrived: Option<&(Owner, SessionId)>,
        owner: Option<&Owner>,
        indexed: &SessionId,
        session: &Session,
        now: Millis,
    ) -> Result<(), SessionError> {
        if let (Some(owner), true) = (owner, *indexed != session.id) {
            self.timed(StoreOp::Index, self.store.index_owner(owner, session, now))
                .await
                .map_err(SessionError::Store)?;
        }
        if let Some((was, id)) = arrived {
            if owner != Some(was) || *id != session.id {
                self.unindex(was, id).await;
            }
        }
        Ok(())
    }

    /// Whether this response's controls can change whose session it is (and so the index).
    pub(super) fn tracks(&self, controls: &Controls) -> bool {
        self.owner_key.is_some() && !controls.is_empty()
    }

    /// The owner named by `sessions.owner_key` in `data`, when that is configured.
    pub(super) fn owner_of(&self, data: &Data) -> Option<Owner> {
        Owner::of(data, self.owner_key.as_deref()?)
    }

    /// Ends what Clear asked for: the session it took, if any, and with `others` or `everywhere`
    /// the owner's other sessions (all but `spared`).
    pub(super) async fn end(
        &self,
        cleared: Option<Session>,
        revoke: Option<Revoke>,
        owner: Option<&Owner>,
        spared: Option<&SessionId>,
        now: Millis,
        outcome: &mut Outcome,
    ) -> Result<(), SessionError> {
        if let Some(scope) = revoke {
            self.revoke(scope, owner, spared, now, outcome).await?;
        }
        if let Some(old) = cleared {
            self.timed(StoreOp::Destroy, self.store.destroy(&old.id))
                .await
                .map_err(SessionError::Store)?;
            outcome.destroyed = true;
            if let Some(owner) = owner.filter(|_| self.owner_key.is_some()) {
                self.unindex(owner, &old.id).await;
            }
        }
        Ok(())
    }

    /// `X-Session-Clear: others | everywhere`. Without `owner_key`, or for a session that has no
    /// owner, there is nothing to end beyond this session: said once per response at warn.
    pub(super) async fn revoke(
        &self,
        scope: Revoke,
        owner: Option<&Owner>,
        spared: Option<&SessionId>,
        now: Millis,
        outcome: &mut Outcome,
    ) -> Result<(), SessionError> {
        let Some(owner) = owner else {
            if self.owner_key.is_none() {
                tracing::warn!(
                    ?scope,
                    "X-Session-Clear: others/everywhere needs sessions.owner_key; only this session is affected"
                );
            }
            return Ok(());
        };
        let spared = spared.filter(|_| scope == Revoke::Others);
        let ended = self
            .timed(StoreOp::Revoke, self.store.revoke_owner(owner, spared, now))
            .await
            .map_err(SessionError::Store)?;
        outcome.revoked += ended.len() as u64;
        tracing::info!(
            ?scope,
            ended = ended.len(),
            "ended the owner's sessions on X-Session-Clear"
        );
        Ok(())
    }

    /// Removes `id` from `owner`'s index after the write that moved it. A failure leaves an
    /// entry every reader skips (the session it names is gone or no longer this owner's), so it
    /// is logged, not answered with an error for a response whose write already landed.
    pub(super) async fn unindex(&self, owner: &Owner, id: &SessionId) {
        if let Err(e) = self
            .timed(StoreOp::Unindex, self.store.unindex_owner(owner, id))
            .await
        {
            tracing::warn!(error = %e, session = %id.fingerprint(), "could not remove a session from its owner's index");
        }
    }
}
