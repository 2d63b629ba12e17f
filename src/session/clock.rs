//! Where the session layer reads the time.
//!
//! Every expiry decision (absolute and idle expiry, the idle refresh throttle, the cookie's
//! `Expires`, the assertion's `iat` and its reuse window, the sweeper's cutoff) takes "now" from
//! one [`Clock`] held by the [`SessionLayer`](super::SessionLayer). In production that is the
//! wall clock; tests hand the layer (or the whole server, [`Server::bind_with_clock`]) a
//! [`ManualClock`] and move it forward, so expiry is tested exactly and without sleeping.
//!
//! The stores stay clock-agnostic: they take `now: Millis` from the layer.
//!
//! [`Server::bind_with_clock`]: crate::server::Server::bind_with_clock

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::store::{now_millis, Millis};

/// The session layer's source of "now". An enum rather than a trait object so the production
/// path is a direct `SystemTime` read: no allocation, no lock, no indirect call.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The wall clock.
    #[default]
    System,
    /// A clock that moves only when a test moves it.
    Manual(ManualClock),
}

impl Clock {
    #[inline]
    pub fn now(&self) -> Millis {
        match self {
            Clock::System => now_millis(),
            Clock::Manual(manual) => manual.now(),
        }
    }
}

impl From<ManualClock> for Clock {
    fn from(manual: ManualClock) -> Clock {
        Clock::Manual(manual)
    }
}

/// A settable clock for tests. Clones share one time, so the test keeps a clone and moves the
/// clock the server reads.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    pub fn new(start: Millis) -> ManualClock {
        ManualClock {
            now: Arc::new(AtomicU64::new(start)),
        }
    }

    /// Starts at the wall clock's time, so the dates it stamps (cookie `Expires`, assertion
    /// `iat`) look current to a client that checks them.
    pub fn starting_now() -> ManualClock {
        ManualClock::new(now_millis())
    }

    pub fn now(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }

    pub fn set(&self, now: Millis) {
        self.now.store(now, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    /// The [`Clock`] to hand to the layer or the server.
    pub fn clock(&self) -> Clock {
        Clock::Manual(self.clone())
    }
}

/// `now` as a `SystemTime`, for HTTP dates.
pub fn system_time(now: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let manual = ManualClock::new(1_000);
        let clock = manual.clock();
        assert_eq!(clock.now(), 1_000);
        manual.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now(), 2_500);
        manual.set(10);
        assert_eq!(clock.now(), 10);
    }

    #[test]
    fn the_system_clock_is_the_wall_clock() {
        let before = now_millis();
        let now = Clock::System.now();
        assert!(now >= before && now <= now_millis());
        assert_eq!(
            httpdate::fmt_http_date(system_time(1_700_000_000_999)),
            "Tue, 14 Nov 2023 22:13:20 GMT"
        );
    }
}
