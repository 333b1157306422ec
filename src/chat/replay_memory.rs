//! The memory all replays may hold at once: every page read for a replay is reserved here
//! first, so however many clients join with a long backlog, pages in memory stay under one
//! total.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::store::{PageLimit, Row};

/// A share of the replay memory, held as long as its page is.
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

/// The replay memory: `total` bytes, handed out a page at a time.
pub struct ReplayMemory {
    bytes: Arc<Semaphore>,
    total: usize,
    /// The most one page can hold: its byte limit plus the one row that may cross it.
    per_page: u32,
}

impl ReplayMemory {
    /// `total` bytes for pages read within `page`, of rows of at most `max_content` bytes.
    pub fn new(total: usize, page: PageLimit, max_content: usize) -> ReplayMemory {
        // The row that crosses the limit may carry a name too (32 characters of 4 bytes).
        let per_page = page.bytes + max_content + 4 * super::names::MAX_NAME_CHARS + Row::OVERHEAD;
        // A budget below one page would let no replay start: it holds one page at least.
        let total = total.max(per_page).min(Semaphore::MAX_PERMITS);
        ReplayMemory {
            bytes: Arc::new(Semaphore::new(total)),
            total,
            per_page: u32::try_from(per_page).unwrap_or(u32::MAX),
        }
    }

    /// Waits for room for one page (replays are served in turn).
    pub async fn reserve(&self) -> Reservation {
        let permit = self
            .bytes
            .clone()
            .acquire_many_owned(self.per_page)
            .await
            .expect("the replay semaphore is never closed");
        Reservation { _permit: permit }
    }

    /// Room for one page if there is some now (for reading ahead, which can do without).
    pub fn try_reserve(&self) -> Option<Reservation> {
        let permit = self
            .bytes
            .clone()
            .try_acquire_many_owned(self.per_page)
            .ok()?;
        Some(Reservation { _permit: permit })
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> usize {
        self.total - self.bytes.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: PageLimit = PageLimit {
        rows: 1024,
        bytes: 1000,
    };

    #[tokio::test]
    async fn pages_are_reserved_within_the_total() {
        // Room for two pages of 1000 + 100 + 128 (a name) + 96 bytes.
        let memory = ReplayMemory::new(2700, PAGE, 100);
        let first = memory.reserve().await;
        let second = memory.try_reserve().expect("room for a second page");
        assert!(memory.try_reserve().is_none());
        assert_eq!(memory.reserved(), 2 * 1324);
        drop(first);
        let _third = memory
            .try_reserve()
            .expect("room again once a page is let go");
        drop(second);
    }

    #[tokio::test]
    async fn a_budget_below_one_page_still_serves_one() {
        let memory = ReplayMemory::new(10, PAGE, 100);
        let _only = memory.reserve().await;
        assert!(memory.try_reserve().is_none());
    }
}
