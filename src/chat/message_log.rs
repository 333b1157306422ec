//! The chat's message log: the store while it is open, and the highest id broadcast.

use std::cell::{Cell, RefCell};
use std::future::Future;

use crate::store::{Insert, PageLimit, PageRange, PageRequest, Store, StoreError, WindowRequest};

/// The store as the chat uses it, closed once at shutdown.
pub struct MessageLog {
    /// `None` once closed.
    store: RefCell<Option<Store>>,
    /// Highest id broadcast so far (history counts as broadcast): a replay is complete once a
    /// socket has everything up to here, because later rows reach it as live broadcasts.
    last_broadcast: Cell<i64>,
}

impl MessageLog {
    pub fn new(store: Store) -> MessageLog {
        MessageLog {
            last_broadcast: Cell::new(store.last_id_at_open()),
            store: RefCell::new(Some(store)),
        }
    }

    /// Highest message id broadcast (or stored before start).
    pub fn last_broadcast(&self) -> i64 {
        self.last_broadcast.get()
    }

    pub fn set_last_broadcast(&self, id: i64) {
        self.last_broadcast.set(id);
    }

    /// Queues a message for the next group commit.
    pub fn append(&self, insert: Insert) -> Result<(), StoreError> {
        match self.store.borrow().as_ref() {
            Some(store) => store.insert(insert),
            None => Err(StoreError::Stopped),
        }
    }

    /// The oldest id kept and the messages retention deleted since start (both 0 once the
    /// store is closed).
    pub fn retention(&self) -> (i64, u64) {
        self.store.borrow().as_ref().map_or((0, 0), |store| {
            let stats = store.retention();
            (stats.oldest_id(), stats.pruned())
        })
    }

    /// Whether the store can take more messages now without refusing them.
    pub fn has_room(&self) -> bool {
        self.store.borrow().as_ref().is_none_or(Store::has_room)
    }

    /// Asks for the messages in `range`, within `limit`.
    pub fn request_page(
        &self,
        range: PageRange,
        limit: PageLimit,
    ) -> Result<PageRequest, StoreError> {
        match self.store.borrow().as_ref() {
            Some(store) => store.request_page(range, limit),
            None => Err(StoreError::Stopped),
        }
    }

    /// Asks where a replay of the newest `newest` messages broadcast after `after` starts.
    pub fn request_window(&self, after: i64, newest: usize) -> Result<WindowRequest, StoreError> {
        match self.store.borrow().as_ref() {
            Some(store) => store.request_window(after, self.last_broadcast(), newest),
            None => Err(StoreError::Stopped),
        }
    }

    /// Resolves to `Ok` when the database answers a read.
    pub fn check(&self) -> impl Future<Output = Result<(), StoreError>> + use<> {
        let check = self.store.borrow().as_ref().map(Store::check);
        async move {
            match check {
                Some(check) => check.await,
                None => Err(StoreError::Stopped),
            }
        }
    }

    /// Stops the store after its queued commits, checkpointing the WAL. Messages sent after
    /// this are refused.
    pub fn close(&self) {
        let store = self.store.borrow_mut().take();
        if let Some(store) = store {
            store.close();
        }
    }
}
