//! Which worker thread is running. The server runs one single-threaded runtime per core
//! (thread-per-core); the assertion cache keeps one per worker. The upstream connection pool is
//! one per worker too, but in a thread-local (`proxy::client::pool` says why), so a request never
//! waits on an upstream connection driven by another thread.
//!
//! The Redis store is not per worker: it holds one multiplexed connection (one per node in
//! Cluster) shared by all workers, whose socket is driven by a task on the runtime of the worker
//! that (re)connected it; requests from other workers hand their commands to that task. See
//! `session::store::redis::connection` for why a pool would not buy more.

use std::cell::Cell;

/// Upper bound on workers that get per-worker state of their own; beyond it workers share.
pub const MAX_WORKERS: usize = 64;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// Marks the current thread as worker `index` (0 is the main thread and any non-worker thread).
pub fn pin(index: usize) {
    WORKER.with(|w| w.set(index % MAX_WORKERS));
}

/// The current thread's worker index, in `0..MAX_WORKERS`.
pub fn index() -> usize {
    WORKER.with(|w| w.get())
}

/// One lazily built `T` per worker.
pub struct PerWorker<T> {
    slots: Box<[std::sync::OnceLock<T>]>,
}

impl<T> PerWorker<T> {
    pub fn new() -> PerWorker<T> {
        PerWorker {
            slots: (0..MAX_WORKERS)
                .map(|_| std::sync::OnceLock::new())
                .collect(),
        }
    }

    /// This worker's `T`, built by `init` on first use (on this worker's thread and runtime).
    pub fn get_or_init(&self, init: impl FnOnce() -> T) -> &T {
        self.slots[index()].get_or_init(init)
    }
}

impl<T> Default for PerWorker<T> {
    fn default() -> Self {
        Self::new()
    }
}
