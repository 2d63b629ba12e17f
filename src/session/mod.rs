//! The session layer: two phases around forwarding.
//!
//! [`SessionLayer::on_request`] (client → app): strip every spoofable `X-Session-*` header, take
//! the session cookie out of `Cookie`, load the session and describe it to the app in headers.
//!
//! [`SessionLayer::on_response`] (app → client): take the app's `X-Session-*` control headers off
//! the response, apply them in the order Clear, Regenerate, Delete, Set, persist what changed, and
//! write `Set-Cookie`.
//!
//! Between the two phases the request's [`SessionState`] is the only thing carried.

pub mod assertion;
pub mod clock;
pub mod cookie;
mod error;
mod owners;
pub mod protocol;
pub mod store;
pub mod sweeper;

use std::sync::Arc;
use std::time::Duration;

use http::header::{HeaderMap, HeaderValue, CACHE_CONTROL, SET_COOKIE};

use crate::config::{Driver, SessionConfig};
use crate::metrics::{Metrics, StoreOp};
use clock::Clock;
use cookie::{CookieSpec, MAX_SET_COOKIE};
pub use error::SessionError;
pub use owners::OwnersOff;
use protocol::{Controls, MAX_KEYS};
use store::{
    Data, Delta, Lookup, Millis, Reject, Session, SessionId, SessionStore, Store, StoreError, Write,
};

/// What the request phase learned, handed to the response phase.
#[derive(Debug, Default)]
pub struct SessionState {
    /// The live session the request carried.
    loaded: Option<Session>,
    /// The client sent a cookie that yielded no session: expire it.
    stale_cookie: bool,
    /// The cookie was sealed under a previous secret: re-seal it.
    reseal: bool,
    /// Why the cookie was refused (for logs and metrics).
    pub rejected: Option<Reject>,
    /// The loaded session's handle, computed once for the app's headers and reused by the log.
    handle: Option<store::Handle>,
}

impl SessionState {
    /// A short fingerprint of the session for logs; never the ID itself.
    pub fn fingerprint(&self) -> Option<String> {
        self.handle.as_ref().map(store::Handle::fingerprint)
    }
}

/// Counts of what happened to sessions, for metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub created: bool,
    pub destroyed: bool,
    pub regenerated: bool,
    /// Sessions ended by `X-Session-Clear: others | everywhere` (this one included).
    pub revoked: u64,
}

/// Clone: the sweeper keeps a copy, which shares the store and the metrics.
#[derive(Clone)]
pub struct SessionLayer {
    /// Shared so a config reload can keep the same store (memory sessions, Redis connections).
    store: Arc<Store>,
    spec: CookieSpec,
    max_age: Duration,
    idle_timeout: Option<Duration>,
    /// `sessions.max_bytes`: the largest data a response may grow a session to.
    max_bytes: usize,
    /// `sessions.owner_key`: sessions are indexed by this data key's value.
    owner_key: Option<Arc<str>>,
    metrics: Option<Arc<Metrics>>,
    /// Signs `X-Session-Assertion` when the `assertion` block is configured.
    assertion: Option<Arc<assertion::Assertion>>,
    /// Every expiry decision reads this; tests substitute a manual clock.
    clock: Clock,
}

impl SessionLayer {
    pub fn new(store: Arc<Store>, cfg: &SessionConfig) -> SessionLayer {
        SessionLayer {
            store,
            spec: CookieSpec::new(cfg),
            max_age: cfg.max_age,
            idle_timeout: cfg.idle_timeout,
            max_bytes: cfg.max_bytes,
            owner_key: cfg.owner_key.as_deref().map(Arc::from),
            metrics: None,
            assertion: None,
            clock: Clock::System,
        }
    }

    /// Adds the signed assertion to every forwarded request that has a session.
    pub fn with_assertion(mut self, assertion: Option<Arc<assertion::Assertion>>) -> SessionLayer {
        self.assertion = assertion;
        self
    }

    /// The assertion signer, when configured (for the JWKS endpoints).
    pub fn assertion(&self) -> Option<&assertion::Assertion> {
        self.assertion.as_deref()
    }

    /// Takes time from `clock` instead of the wall clock (tests; a reload passes the old one on).
    pub fn with_clock(mut self, clock: Clock) -> SessionLayer {
        self.clock = clock;
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Records every store operation's count, errors and latency.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> SessionLayer {
        self.metrics = Some(metrics);
        self
    }

    /// Runs one store operation and records it.
    async fn timed<T>(
        &self,
        op: StoreOp,
        fut: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Some(metrics) = &self.metrics else {
            return fut.await;
        };
        let start = std::time::Instant::now();
        let result = fut.await;
        metrics.store_op(op, start.elapsed(), result.is_ok());
        result
    }

    /// Builds the configured store. Redis is connected lazily, so this succeeds with Redis down.
    pub fn from_config(
        cfg: &SessionConfig,
        redis: &crate::config::RedisConfig,
    ) -> Result<SessionLayer, StoreError> {
        let store = match cfg.driver {
            Driver::Cookie => Store::Cookie(store::cookie::CookieStore::new(
                &cfg.cookie_name,
                &cfg.secret,
                &cfg.previous_secrets,
                cfg.idle_timeout,
            )),
            Driver::Memory => Store::Memory(
                store::memory::MemoryStore::new(cfg.idle_timeout)
                    .with_owner_key(cfg.owner_key.clone()),
            ),
            Driver::Redis => Store::Redis(
                store::redis::RedisStore::new(redis, cfg.idle_timeout)?.with_owner_keys(
                    cfg.owner_key
                        .as_ref()
                        .map(|_| store::OwnerKeys::new(&cfg.secret, &cfg.previous_secrets)),
                ),
            ),
        };
        Ok(SessionLayer::new(Arc::new(store), cfg))
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn shared_store(&self) -> Arc<Store> {
        Arc::clone(&self.store)
    }

    /// Whether the store answers (for `/readyz`), timed and counted like every other operation.
    pub async fn ping(&self) -> Result<(), SessionError> {
        self.timed(StoreOp::Ping, self.store.ping())
            .await
            .map_err(SessionError::Store)
    }

    /// Phase one. Errors only when a cookie was presented and the store cannot be asked about it.
    pub async fn on_request(&self, headers: &mut HeaderMap) -> Result<SessionState, SessionError> {
        protocol::strip_session_headers(headers);
        let mut state = SessionState::default();
        let Some(value) = cookie::take_session_cookie(headers, self.spec.name()) else {
            return Ok(state);
        };
        let now = self.clock.now();
        let lookup = self
            .timed(StoreOp::Load, self.store.load(&value, now))
            .await
            .map_err(SessionError::Store)?;
        match lookup {
            Lookup::Found { session, reseal } => {
                let handle = session.id.handle();
                let times = protocol::Times {
                    created: session.created,
                    last_seen: session.last_seen,
                };
                protocol::inject(headers, handle.as_str(), times, &session.data);
                if let Some(assertion) = &self.assertion {
                    assertion.inject(headers, &session, &handle, now);
                }
                state.reseal = reseal;
                state.handle = Some(handle);
                state.loaded = Some(session);
            }
            Lookup::Rejected(reason) => {
                tracing::debug!(reason = reason.as_str(), "session cookie refused");
                state.stale_cookie = true;
                state.rejected = Some(reason);
            }
        }
        Ok(state)
    }

    /// Phase two: applies the app's controls and writes the cookie into `headers`.
    pub async fn on_response(
        &self,
        state: SessionState,
        headers: &mut HeaderMap,
    ) -> Result<Outcome, SessionError> {
        let (controls, ignored) = protocol::take_controls(headers);
        // One line per kind of problem, however many lines had it: an app (or whoever controls
        // its responses) must not be able to flood the log.
        for (problem, count) in ignored.iter() {
            tracing::warn!(%problem, count, "ignored X-Session-* lines from the app");
        }
        if cookie::remove_set_cookie_named(headers, self.spec.name()) {
            tracing::warn!("removed a Set-Cookie for the session cookie sent by the app: the proxy owns that cookie");
        }
        let now = self.clock.now();
        let mut outcome = Outcome::default();
        let set_cookie = self.apply(state, controls, now, &mut outcome).await?;
        if let Some(value) = set_cookie {
            if value.len() > MAX_SET_COOKIE {
                return Err(SessionError::CookieTooLarge { size: value.len() });
            }
            // Built from header-safe parts only (validated cookie attributes, base64 values).
            let value = HeaderValue::try_from(value).map_err(|_| {
                SessionError::Internal("the Set-Cookie value is not a valid header")
            })?;
            headers.append(SET_COOKIE, value);
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Ok(outcome)
    }

    /// The state machine. Returns the `Set-Cookie` value to send, if any.
    ///
    /// Every check that can refuse the response (the size limit) runs before the first store
    /// write, so a refused response leaves the old session exactly as it was, even with Clear.
    async fn apply(
        &self,
        state: SessionState,
        controls: Controls,
        now: Millis,
        outcome: &mut Outcome,
    ) -> Result<Option<String>, SessionError> {
        let mut session = state.loaded;
        let had_cookie = session.is_some() || state.stale_cookie;
        // Only a response with controls can change a session's owner or ID: the index is left
        // alone otherwise, so plain requests (and idle refreshes) pay nothing for it.
        let tracked = self.tracks(&controls);
        // Whose session arrived, under which ID: the owner index follows both.
        let arrived = session
            .as_ref()
            .filter(|_| tracked)
            .and_then(|s| Some((self.owner_of(&s.data)?, s.id.clone())));

        // Destroyed below, once nothing can refuse the response any more.
        let cleared = if controls.clear { session.take() } else { None };

        let (old_id, created) = self.rename_or_create(&mut session, &controls, now);

        let Some(mut session) = session else {
            let owner = arrived.as_ref().map(|(o, _)| o);
            self.end(cleared, controls.revoke, owner, None, now, outcome)
                .await?;
            // No session now. Tell the browser to forget any cookie it sent.
            return Ok(had_cookie.then(|| self.spec.expire()));
        };

        let before = Arc::clone(&session.data);
        let (set, delete, changed) = self.merge(&mut session, &controls);
        if changed && !set.is_empty() {
            self.check_size(&before, &session.data)?;
        }
        let owner = self
            .settle_owner(&controls, arrived.as_ref(), cleared, &session, now, outcome)
            .await?;
        // A cleared session left its owner's index with it (`end`).
        let arrived = arrived.filter(|_| !controls.clear);
        let indexed = session.id.clone();
        let wrote = !set.is_empty() || !delete.is_empty();
        let refresh = self.idle_timeout.is_some_and(|idle| {
            now.saturating_sub(session.last_seen) >= idle.as_millis() as u64 / 4
        });
        if refresh || created || old_id.is_some() {
            session.last_seen = now;
        }
        let delta = Delta {
            set: &set,
            delete: &delete,
        };

        let write = if created {
            self.create(&mut session, now).await
        } else if let Some(old) = &old_id {
            self.regenerate(old, &mut session, delta, now).await
        } else if wrote || refresh || state.reseal {
            self.timed(StoreOp::Update, self.store.update(&session, delta, now))
                .await
        } else {
            return Ok(None);
        }
        .map_err(SessionError::Store)?;

        if let (Write::Stored(_), true) = (&write, tracked) {
            self.after_write(arrived.as_ref(), owner.as_ref(), &indexed, &session, now)
                .await?;
        }
        match write {
            // The app wrote what the session already held (deleted a missing key, set a value
            // to itself): the delta is stored, but the session is unchanged, so no cookie.
            Write::Stored(_)
                if !(changed || refresh || state.reseal || created || old_id.is_some()) =>
            {
                Ok(None)
            }
            Write::Stored(value) => {
                outcome.created |= created;
                outcome.regenerated |= old_id.is_some();
                let remaining = session.deadline(self.idle_timeout).saturating_sub(now);
                Ok(Some(self.spec.set(
                    &value,
                    Duration::from_millis(remaining),
                    now,
                )))
            }
            // Destroyed by a concurrent request (logout in another tab): it stays destroyed.
            Write::Gone | Write::Collision => Ok(Some(self.spec.expire())),
        }
    }

    /// Regenerate gives the session a new ID (returning the old one); a Set with no session
    /// creates one (returning `true`).
    fn rename_or_create(
        &self,
        session: &mut Option<Session>,
        controls: &Controls,
        now: Millis,
    ) -> (Option<SessionId>, bool) {
        match session {
            Some(s) if controls.regenerate => {
                let new_id = self.store.generate_id(Some(&s.id));
                (Some(std::mem::replace(&mut s.id, new_id)), false)
            }
            Some(_) => (None, false),
            None if controls.set.is_empty() => (None, false),
            None => {
                let id = self.store.generate_id(None);
                *session = Some(Session::new(id, now, self.max_age));
                (None, true)
            }
        }
    }

    /// Refuses data that grew past `sessions.max_bytes`: it would travel to the app on every
    /// request (twice: `X-Session-Data` and the per-key headers) until the session expires. A
    /// session already over the limit (the limit was lowered) may still shrink.
    fn check_size(&self, before: &Data, after: &Data) -> Result<(), SessionError> {
        let size = protocol::json_len(after);
        if size > self.max_bytes && size > protocol::json_len(before) {
            return Err(SessionError::TooLarge {
                size,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Applies Delete then Set to the in-memory session, returning the effective delta and whether
    /// the data actually changed. A Set that would take the session past [`MAX_KEYS`] keys is
    /// dropped with a warning.
    fn merge(
        &self,
        session: &mut Session,
        controls: &Controls,
    ) -> (Vec<(String, serde_json::Value)>, Vec<String>, bool) {
        if controls.delete.is_empty() && controls.set.is_empty() {
            return (Vec::new(), Vec::new(), false);
        }
        let before = Arc::clone(&session.data);
        let data = Arc::make_mut(&mut session.data);
        for key in &controls.delete {
            data.remove(key);
        }
        let mut set = Vec::with_capacity(controls.set.len());
        let mut over_max_keys = 0u32;
        let mut shared_header: Option<&str> = None;
        for (key, value) in &controls.set {
            let new = !data.contains_key(key);
            if new && data.len() >= MAX_KEYS {
                over_max_keys += 1;
                continue;
            }
            // Only a new key can create a pair; checked here, where the pair is made, rather
            // than in `inject`, which runs on every request and must stay cheap.
            if new
                && shared_header.is_none()
                && data.keys().any(|k| protocol::share_a_header(k, key))
            {
                shared_header = Some(key);
            }
            data.insert(key.clone(), value.clone());
            set.push((key.clone(), value.clone()));
        }
        if let Some(key) = shared_header {
            tracing::warn!(
                header = protocol::header_name_for_key(key).as_ref().map(|h| h.as_str()),
                "two session keys map to one X-Session-* header; neither gets it (both stay in X-Session-Data)"
            );
        }
        if over_max_keys > 0 {
            tracing::warn!(
                max = MAX_KEYS,
                count = over_max_keys,
                "ignored X-Session-Set keys: the session has too many keys"
            );
        }
        let changed = *data != *before;
        (set, controls.delete.clone(), changed)
    }

    /// Stores a new session, drawing a fresh ID on the (theoretical) collision.
    async fn create(&self, session: &mut Session, now: Millis) -> Result<Write, StoreError> {
        for _ in 0..3 {
            match self
                .timed(StoreOp::Create, self.store.create(session, now))
                .await?
            {
                Write::Collision => session.id = self.store.generate_id(None),
                other => return Ok(other),
            }
        }
        Ok(Write::Collision)
    }

    async fn regenerate(
        &self,
        old: &SessionId,
        session: &mut Session,
        delta: Delta<'_>,
        now: Millis,
    ) -> Result<Write, StoreError> {
        for _ in 0..3 {
            match self
                .timed(
                    StoreOp::Regenerate,
                    self.store.regenerate(old, session, delta, now),
                )
                .await?
            {
                Write::Collision => session.id = self.store.generate_id(Some(old)),
                other => return Ok(other),
            }
        }
        Ok(Write::Collision)
    }
}

#[cfg(test)]
mod tests;
