//! What the session layer can fail with. The request path sees only this type, never the store's
//! own error: how a failure is answered is decided from it in [`crate::error`].

use super::store::StoreError;

/// A session phase (or the readiness ping) that could not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The store could not be reached in time, or answered with an error.
    #[error("session store unavailable")]
    Store(#[source] StoreError),
    /// The sealed session no longer fits in one cookie.
    #[error("session too large for a cookie: Set-Cookie would be {size} bytes (limit 4096)")]
    CookieTooLarge { size: usize },
    /// The app's changes would grow the session's data past `sessions.max_bytes`.
    #[error("session data would be {size} bytes (sessions.max_bytes: {limit})")]
    TooLarge { size: usize, limit: usize },
    /// An invariant of the session layer did not hold (a bug, never the client's doing).
    #[error("internal error: {0}")]
    Internal(&'static str),
}
