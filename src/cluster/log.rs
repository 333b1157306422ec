//! The shared log's handle on the event loop: what the chat asks of the stream in cluster
//! mode, as it asks the SQLite store the same in single-board mode.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::append;
use super::model::{StreamSettings, TailEvent};
use super::reads::Reads;
use super::tail;
use crate::random;
use crate::store::{
    Committed, Insert, PageLimit, PageRange, PageRequest, StoreError, WindowRequest,
};

/// Messages waiting for Redis at most; beyond, new ones are refused as busy.
const MAX_QUEUED: usize = 4096;

/// The handle; [`StreamLog::close`] stops its tasks.
pub struct StreamLog {
    inserts: RefCell<Option<UnboundedSender<Insert>>>,
    queued: Rc<Cell<usize>>,
    reads: Rc<Reads>,
    tail: JoinHandle<()>,
}

impl StreamLog {
    /// Starts appending and tailing (each reaching Redis on its own, and again after it goes
    /// away). Outcomes of inserts arrive on the first receiver, in request order; the
    /// stream's messages on the second. Must run inside a `tokio::task::LocalSet`.
    pub fn start(
        settings: StreamSettings,
    ) -> (
        StreamLog,
        UnboundedReceiver<Vec<Committed>>,
        UnboundedReceiver<TailEvent>,
    ) {
        let settings = Rc::new(settings);
        let (inserts, insert_rx) = mpsc::unbounded_channel();
        let (results_tx, results) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let queued = Rc::new(Cell::new(0));
        tokio::task::spawn_local(append::run(
            settings.clone(),
            server_uid(),
            insert_rx,
            results_tx,
            queued.clone(),
        ));
        let tail = tokio::task::spawn_local(tail::run(settings.clone(), events_tx));
        let log = StreamLog {
            inserts: RefCell::new(Some(inserts)),
            queued,
            reads: Rc::new(Reads::new(settings)),
            tail,
        };
        (log, results, events)
    }

    /// Queues a message for Redis.
    pub fn insert(&self, insert: Insert) -> Result<(), StoreError> {
        if self.queued.get() >= MAX_QUEUED {
            return Err(StoreError::Busy);
        }
        let inserts = self.inserts.borrow();
        let sender = inserts.as_ref().ok_or(StoreError::Stopped)?;
        sender.send(insert).map_err(|_| StoreError::Stopped)?;
        self.queued.set(self.queued.get() + 1);
        Ok(())
    }

    /// Whether more messages can be queued now without refusing them.
    pub fn has_room(&self) -> bool {
        self.queued.get() < MAX_QUEUED / 4 * 3
    }

    /// Asks for the chat's messages in `range`, within `limit`.
    pub fn request_page(&self, range: PageRange, limit: PageLimit) -> PageRequest {
        let (reply, answer) = oneshot::channel();
        let reads = self.reads.clone();
        tokio::task::spawn_local(async move {
            let _ = reply.send(reads.page(range, limit).await);
        });
        PageRequest::new(answer)
    }

    /// Asks where a replay of the newest `newest` messages in `after < key <= upto` starts.
    pub fn request_window(&self, after: i64, upto: i64, newest: usize) -> WindowRequest {
        let (reply, answer) = oneshot::channel();
        let reads = self.reads.clone();
        tokio::task::spawn_local(async move {
            let _ = reply.send(reads.window(after, upto, newest).await);
        });
        WindowRequest::new(answer)
    }

    /// Resolves to `Ok` when Redis answers.
    pub fn check(&self) -> impl Future<Output = Result<(), StoreError>> + use<> {
        let reads = self.reads.clone();
        async move { reads.check().await }
    }

    /// The recovery records in this Redis, for connection state recovery across servers.
    pub fn session_records(&self) -> SessionRecords {
        SessionRecords {
            reads: self.reads.clone(),
        }
    }

    /// Stops tailing and taking messages; those already queued are still appended.
    pub fn close(&self) {
        self.inserts.borrow_mut().take();
        self.tail.abort();
    }
}

/// Connection state recovery records in the adapter's format (see `session`), written and
/// read on the reads' connection. Writes are sent without waiting: a lost one costs a
/// client its recovery, not its messages (it replays from its offset).
#[derive(Clone)]
pub struct SessionRecords {
    reads: Rc<Reads>,
}

impl SessionRecords {
    pub fn save(&self, pid: &str, sid: &str, window: Duration) {
        let (reads, pid, sid) = (self.reads.clone(), pid.to_owned(), sid.to_owned());
        tokio::task::spawn_local(async move {
            if let Err(error) = reads.save_session(&pid, &sid, window).await {
                log::debug!("recovery record of socket {sid} not kept: {error}");
            }
        });
    }

    pub fn forget(&self, pid: &str) {
        let (reads, pid) = (self.reads.clone(), pid.to_owned());
        tokio::task::spawn_local(async move {
            let _ = reads.forget_session(&pid).await;
        });
    }

    /// The socket id `pid`'s record names, taken once; `None` without a record (or Redis).
    pub async fn take(&self, pid: &str) -> Option<String> {
        match self.reads.take_session(pid).await {
            Ok(sid) => sid,
            Err(error) => {
                log::debug!("no recovery record read: {error}");
                None
            }
        }
    }
}

/// This gateway's id in the adapter's `uid` field: 16 hex digits, as socket.io's servers.
fn server_uid() -> Rc<str> {
    let mut bytes = [0u8; 8];
    random::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .into()
}
