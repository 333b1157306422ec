//! The chat's counters, read by `/metrics`.

use std::cell::Cell;

/// Counts since start, and replays running now.
#[derive(Debug, Default)]
pub struct ChatMetrics {
    stored: Cell<u64>,
    store_errors: Cell<u64>,
    rate_limited: Cell<u64>,
    catch_ups: Cell<u64>,
    replays: Cell<usize>,
}

impl ChatMetrics {
    /// Messages stored since start.
    pub fn messages_stored(&self) -> u64 {
        self.stored.get()
    }

    /// Messages refused because their transaction failed, since start.
    pub fn store_errors(&self) -> u64 {
        self.store_errors.get()
    }

    /// Messages refused for exceeding the per-client rate, since start.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.get()
    }

    /// Times a socket fell behind the broadcasts and caught up from the store, since start.
    pub fn catch_ups(&self) -> u64 {
        self.catch_ups.get()
    }

    /// Replays running now.
    pub fn replays_in_progress(&self) -> usize {
        self.replays.get()
    }

    pub(super) fn count_stored(&self) {
        self.stored.set(self.stored.get() + 1);
    }

    pub(super) fn count_store_error(&self) {
        self.store_errors.set(self.store_errors.get() + 1);
    }

    pub(super) fn count_catch_up(&self) {
        self.catch_ups.set(self.catch_ups.get() + 1);
    }

    pub(super) fn count_rate_limited(&self) {
        self.rate_limited.set(self.rate_limited.get() + 1);
    }

    /// Counts a replay as running until the guard is dropped.
    pub(super) fn replay_started(&self) -> ReplayGuard<'_> {
        self.replays.set(self.replays.get() + 1);
        ReplayGuard(self)
    }
}

/// Counts one replay for as long as it lives.
pub(super) struct ReplayGuard<'a>(&'a ChatMetrics);

impl Drop for ReplayGuard<'_> {
    fn drop(&mut self) {
        self.0.replays.set(self.0.replays.get() - 1);
    }
}
