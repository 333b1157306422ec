//! The chat's message log: the SQLite store (one board) or the shared stream in Redis
//! (cluster mode) while it is open, and the highest id broadcast.

use std::cell::{Cell, RefCell};
use std::future::Future;

use super::message::Ids;
#[cfg(feature = "redis")]
use crate::cluster::StreamLog;
use crate::store::{Insert, PageLimit, PageRange, PageRequest, Store, StoreError, WindowRequest};

/// Where the messages are kept.
enum Backend {
    Store(Store),
    #[cfg(feature = "redis")]
    Stream(StreamLog),
}

/// The log as the chat uses it, closed once at shutdown.
pub struct MessageLog {
    /// `None` once closed.
    backend: RefCell<Option<Backend>>,
    /// Highest id broadcast so far (history counts as broadcast): a replay is complete once a
    /// socket has everything up to here, because later rows reach it as live broadcasts.
    /// In cluster mode `i64::MAX` until the stream's end is known: replays then read on
    /// until they find no more.
    last_broadcast: Cell<i64>,
    ids: Ids,
}

/// The last broadcast while the shared stream's end is not known yet.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
const UNKNOWN_END: i64 = i64::MAX;

impl MessageLog {
    pub fn new(store: Store) -> MessageLog {
        MessageLog {
            last_broadcast: Cell::new(store.last_id_at_open()),
            backend: RefCell::new(Some(Backend::Store(store))),
            ids: Ids::Rows,
        }
    }

    /// The log over the shared stream; its end is known once the tail has reached Redis
    /// ([`MessageLog::positioned`]).
    #[cfg(feature = "redis")]
    pub fn shared(stream: StreamLog) -> MessageLog {
        MessageLog {
            last_broadcast: Cell::new(UNKNOWN_END),
            backend: RefCell::new(Some(Backend::Stream(stream))),
            ids: Ids::Stream,
        }
    }

    /// What numbers the messages.
    pub fn ids(&self) -> Ids {
        self.ids
    }

    /// Highest message id broadcast (or stored before start).
    pub fn last_broadcast(&self) -> i64 {
        self.last_broadcast.get()
    }

    /// The highest id broadcast, 0 while the stream's end is not known (for metrics).
    pub fn last_known(&self) -> i64 {
        match self.last_broadcast.get() {
            UNKNOWN_END => 0,
            id => id,
        }
    }

    pub fn set_last_broadcast(&self, id: i64) {
        self.last_broadcast.set(id);
    }

    /// The shared stream ended at `key` when the tail started.
    #[cfg(feature = "redis")]
    pub fn positioned(&self, key: i64) {
        if self.last_broadcast.get() == UNKNOWN_END {
            self.last_broadcast.set(key);
        }
    }

    /// Queues a message for the next group commit, or for Redis.
    pub fn append(&self, insert: Insert) -> Result<(), StoreError> {
        match self.backend.borrow().as_ref() {
            Some(Backend::Store(store)) => store.insert(insert),
            #[cfg(feature = "redis")]
            Some(Backend::Stream(stream)) => stream.insert(insert),
            None => Err(StoreError::Stopped),
        }
    }

    /// The oldest id kept and the messages retention deleted since start (both 0 once the
    /// store is closed, and in cluster mode, where the stream's length bounds history).
    pub fn retention(&self) -> (i64, u64) {
        match self.backend.borrow().as_ref() {
            Some(Backend::Store(store)) => {
                let stats = store.retention();
                (stats.oldest_id(), stats.pruned())
            }
            _ => (0, 0),
        }
    }

    /// Whether the log can take more messages now without refusing them.
    pub fn has_room(&self) -> bool {
        match self.backend.borrow().as_ref() {
            Some(Backend::Store(store)) => store.has_room(),
            #[cfg(feature = "redis")]
            Some(Backend::Stream(stream)) => stream.has_room(),
            None => true,
        }
    }

    /// Asks for the messages in `range`, within `limit`.
    pub fn request_page(
        &self,
        range: PageRange,
        limit: PageLimit,
    ) -> Result<PageRequest, StoreError> {
        match self.backend.borrow().as_ref() {
            Some(Backend::Store(store)) => store.request_page(range, limit),
            #[cfg(feature = "redis")]
            Some(Backend::Stream(stream)) => Ok(stream.request_page(range, limit)),
            None => Err(StoreError::Stopped),
        }
    }

    /// Asks where a replay of the newest `newest` messages broadcast after `after` starts.
    pub fn request_window(&self, after: i64, newest: usize) -> Result<WindowRequest, StoreError> {
        let upto = self.last_broadcast();
        match self.backend.borrow().as_ref() {
            Some(Backend::Store(store)) => store.request_window(after, upto, newest),
            #[cfg(feature = "redis")]
            Some(Backend::Stream(stream)) => Ok(stream.request_window(after, upto, newest)),
            None => Err(StoreError::Stopped),
        }
    }

    /// Resolves to `Ok` when the database (or Redis) answers a read.
    pub fn check(&self) -> impl Future<Output = Result<(), StoreError>> + use<> {
        let check: Option<std::pin::Pin<Box<dyn Future<Output = _>>>> =
            match self.backend.borrow().as_ref() {
                Some(Backend::Store(store)) => Some(Box::pin(store.check())),
                #[cfg(feature = "redis")]
                Some(Backend::Stream(stream)) => Some(Box::pin(stream.check())),
                None => None,
            };
        async move {
            match check {
                Some(check) => check.await,
                None => Err(StoreError::Stopped),
            }
        }
    }

    /// Stops the store after its queued commits, checkpointing the WAL (or stops reading the
    /// stream). Messages sent after this are refused.
    pub fn close(&self) {
        let backend = self.backend.borrow_mut().take();
        match backend {
            Some(Backend::Store(store)) => store.close(),
            #[cfg(feature = "redis")]
            Some(Backend::Stream(stream)) => stream.close(),
            None => {}
        }
    }
}
