//! The idle upstream connections, one LIFO stack per worker thread and upstream.
//!
//! Why a `thread_local!` and not [`crate::worker::PerWorker`]: an `Upstream` is shared by every
//! thread (it sits in an `Arc`), so whatever `PerWorker` holds must be `Sync`, which for a stack
//! means a lock; and `PerWorker`'s slot 0 is shared by the main thread and any non-worker thread
//! (and workers past `MAX_WORKERS` share slots), so the lock could not even be elided by
//! argument. A thread-local is one stack per thread by construction: a `RefCell`, no atomics, and
//! a connection is always taken by the thread whose runtime drives it (each worker runs a
//! single-threaded runtime), so a request never waits on another thread.
//!
//! The stacks are keyed by an id per `Upstream`: a reload that changes `upstream.*` builds a new
//! one, and the old one's stacks are dropped (closing their connections) by the next idle sweep
//! on each thread, or sooner when that thread first uses the new upstream.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::Sender;

/// Idle connections kept per worker and upstream, as the legacy client's
/// `pool_max_idle_per_host` did.
const MAX_IDLE: usize = 1024;
/// How long an idle connection is kept: unused after this, closed by the next sweep.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A connection idle this long is checked once more before use (see `Client::send`): long
/// enough that a busy connection, reused within microseconds, never pays for it.
pub(in crate::proxy) const RECHECK_AFTER: Duration = Duration::from_millis(50);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Idle {
    sender: Sender,
    since: Instant,
}

/// One thread's idle connections to one upstream: the most recently used on top (`back`), so
/// the busiest connections stay warm and the surplus ages out at the bottom (`front`).
struct Stack {
    id: u64,
    /// Dead once the `Upstream` is dropped (a reload replaced it).
    owner: Weak<()>,
    idle: VecDeque<Idle>,
}

thread_local! {
    static STACKS: RefCell<Vec<Stack>> = const { RefCell::new(Vec::new()) };
}

/// An `Upstream`'s handle on its stacks (one per thread that uses it).
pub(in crate::proxy) struct Pool {
    id: u64,
    alive: Arc<()>,
}

impl Pool {
    pub(in crate::proxy) fn new() -> Pool {
        Pool {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            alive: Arc::new(()),
        }
    }

    /// What a response body needs to give its connection back: the stack's id.
    pub(in crate::proxy) fn key(&self) -> Key {
        Key(self.id)
    }

    /// The most recently used idle connection that is still open and ready, if any, and whether
    /// it sat idle long enough that the upstream may have closed it meanwhile ([`RECHECK_AFTER`]).
    /// The first call on a thread creates the thread's stack (and its sweeper).
    pub(in crate::proxy) fn take(&self) -> Option<(Sender, bool)> {
        STACKS.with(|stacks| {
            let mut stacks = stacks.borrow_mut();
            let Some(stack) = stacks.iter_mut().find(|s| s.id == self.id) else {
                stacks.retain(|s| s.owner.strong_count() > 0);
                stacks.push(Stack {
                    id: self.id,
                    owner: Arc::downgrade(&self.alive),
                    idle: VecDeque::new(),
                });
                tokio::spawn(sweep(self.id));
                return None;
            };
            let now = Instant::now();
            while let Some(top) = stack.idle.pop_back() {
                if now.saturating_duration_since(top.since) >= IDLE_TIMEOUT {
                    // Everything below is older still.
                    stack.idle.clear();
                    return None;
                }
                if top.sender.is_ready() {
                    let stale = now.saturating_duration_since(top.since) >= RECHECK_AFTER;
                    return Some((top.sender, stale));
                }
                // Closed by the upstream while idle: dropped here.
            }
            None
        })
    }
}

/// Names one `Upstream`'s stacks without keeping the `Upstream` alive.
#[derive(Debug, Clone, Copy)]
pub(in crate::proxy) struct Key(u64);

impl Key {
    /// Gives back a connection whose exchange is over. A connection still finishing (the request
    /// body still uploading after the upstream answered, or hyper not yet back to idle) is
    /// watched by a small task and pooled once ready, as the legacy client did; a closed one is
    /// dropped.
    pub(in crate::proxy) fn put(self, mut sender: Sender) {
        if sender.is_ready() {
            self.push(sender);
        } else if !sender.is_closed() {
            tokio::spawn(async move {
                if sender.ready().await.is_ok() {
                    self.push(sender);
                }
            });
        }
    }

    fn push(self, sender: Sender) {
        let idle = Idle {
            sender,
            since: Instant::now(),
        };
        STACKS.with(|stacks| {
            let mut stacks = stacks.borrow_mut();
            // No stack (the upstream was replaced and its stack swept): `idle` is dropped,
            // closing the connection.
            if let Some(stack) = stacks.iter_mut().find(|s| s.id == self.0) {
                if stack.idle.len() >= MAX_IDLE {
                    stack.idle.pop_front();
                }
                stack.idle.push_back(idle);
            }
        });
    }
}

/// Closes this thread's connections to upstream `id` that have been idle for `IDLE_TIMEOUT`,
/// every `IDLE_TIMEOUT` (so an idle connection lives at most twice that, as with the legacy
/// client's pool timer), and drops the whole stack once the upstream is gone.
async fn sweep(id: u64) {
    loop {
        tokio::time::sleep(IDLE_TIMEOUT).await;
        let now = Instant::now();
        let keep = STACKS.with(|stacks| {
            let mut stacks = stacks.borrow_mut();
            let Some(at) = stacks.iter().position(|s| s.id == id) else {
                return false;
            };
            if stacks[at].owner.strong_count() == 0 {
                stacks.swap_remove(at);
                return false;
            }
            let idle = &mut stacks[at].idle;
            while idle
                .front()
                .is_some_and(|i| now.saturating_duration_since(i.since) >= IDLE_TIMEOUT)
            {
                idle.pop_front();
            }
            true
        });
        if !keep {
            return;
        }
    }
}
