//! When a session dies: the one statement of the expiry rule.
//!
//! A session has two ends of life: an absolute one fixed at creation (`created + max_age`, stored
//! as `expires` so that a later change of `max_age` does not move existing sessions) and, with an
//! idle timeout, `last_seen + idle`. It dies at the earlier of the two, its *deadline*, and at the
//! deadline it is already dead.
//!
//! Every store decides with these functions. The Redis scripts, which must decide inside Redis
//! against fields they read there, are handed numbers computed here ([`remaining`], [`Cutoffs`])
//! instead of a copy of the rule in Lua.

use std::time::Duration;

use super::Millis;

/// A duration in milliseconds, saturating rather than wrapping for absurd values.
pub fn millis(d: Duration) -> Millis {
    d.as_millis().min(u128::from(Millis::MAX)) as Millis
}

/// The absolute end of life of a session created at `created`.
pub fn expires_at(created: Millis, max_age: Duration) -> Millis {
    created.saturating_add(millis(max_age))
}

/// When a session dies if nothing happens: the earlier of its absolute and its idle expiry.
pub fn deadline(expires: Millis, last_seen: Millis, idle: Option<Duration>) -> Millis {
    match idle {
        Some(idle) => expires.min(last_seen.saturating_add(millis(idle))),
        None => expires,
    }
}

pub fn is_live(now: Millis, expires: Millis, last_seen: Millis, idle: Option<Duration>) -> bool {
    now < deadline(expires, last_seen, idle)
}

/// What a session has left at `now`, 0 once it is dead: a store's TTL.
pub fn remaining(
    now: Millis,
    expires: Millis,
    last_seen: Millis,
    idle: Option<Duration>,
) -> Millis {
    deadline(expires, last_seen, idle).saturating_sub(now)
}

/// The rule at one instant, solved for the stored fields, for a check that runs where the fields
/// are (the Redis sweep script): at `now` a record is dead exactly when `expires <= self.expires`
/// or `last_seen <= self.last_seen`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cutoffs {
    /// The latest `expires` that is dead: `now` itself.
    pub expires: Millis,
    /// The latest `last_seen` that is idle-dead, `now - idle`; `None` when no `last_seen` is (no
    /// idle timeout, or `now` is earlier than `idle` after the epoch).
    pub last_seen: Option<Millis>,
}

impl Cutoffs {
    pub fn at(now: Millis, idle: Option<Duration>) -> Cutoffs {
        Cutoffs {
            expires: now,
            last_seen: idle.and_then(|idle| now.checked_sub(millis(idle))),
        }
    }

    pub fn is_dead(&self, expires: Millis, last_seen: Millis) -> bool {
        expires <= self.expires || self.last_seen.is_some_and(|cutoff| last_seen <= cutoff)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_deadline_is_the_earlier_expiry() {
        let expires = expires_at(1_000, 10 * SECOND);
        assert_eq!(expires, 11_000);
        assert_eq!(deadline(expires, 1_000, None), 11_000);
        assert_eq!(deadline(expires, 1_000, Some(2 * SECOND)), 3_000);
        assert_eq!(deadline(expires, 10_000, Some(2 * SECOND)), 11_000);
        assert!(is_live(10_999, expires, 1_000, None));
        assert!(!is_live(11_000, expires, 1_000, None));
        assert_eq!(remaining(2_500, expires, 1_000, Some(2 * SECOND)), 500);
        assert_eq!(remaining(3_000, expires, 1_000, Some(2 * SECOND)), 0);
        assert_eq!(
            deadline(Millis::MAX, Millis::MAX - 1, Some(SECOND)),
            Millis::MAX
        );
    }

    /// The cut-offs the sweep script gets are the same rule: dead by them exactly when not live.
    #[test]
    fn the_cutoffs_agree_with_the_deadline() {
        for idle in [None, Some(Duration::ZERO), Some(SECOND), Some(5 * SECOND)] {
            for now in (0..12_000).step_by(250) {
                let cut = Cutoffs::at(now, idle);
                for expires in (0..12_000).step_by(500) {
                    for last_seen in (0..12_000).step_by(500) {
                        assert_eq!(
                            cut.is_dead(expires, last_seen),
                            !is_live(now, expires, last_seen, idle),
                            "now {now} expires {expires} last_seen {last_seen} idle {idle:?}"
                        );
                    }
                }
            }
        }
    }
}
