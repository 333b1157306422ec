//! The store's handle on the event loop.

use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use tokio::sync::mpsc as async_mpsc;
use tokio::sync::oneshot;

use super::error::{OpenError, StoreError};
use super::model::{Committed, Insert, PageLimit, PageRange, Row, StoreConfig, Window};
use super::retention::RetentionStats;
use super::schema::open_connection;
use super::writer::{Command, QueuedBytes, writer};

/// A page read on its way; see [`Store::request_page`].
pub struct PageRequest(oneshot::Receiver<Result<Vec<Row>, StoreError>>);

impl PageRequest {
    /// A read answered on `answer` (by the store thread, or by the shared log's reads).
    #[cfg(feature = "redis")]
    pub fn new(answer: oneshot::Receiver<Result<Vec<Row>, StoreError>>) -> PageRequest {
        PageRequest(answer)
    }

    pub async fn rows(self) -> Result<Vec<Row>, StoreError> {
        self.0.await.map_err(|_| StoreError::Stopped)?
    }
}

/// A window read on its way; see [`Store::request_window`].
pub struct WindowRequest(oneshot::Receiver<Result<Window, StoreError>>);

impl WindowRequest {
    /// A window read answered on `answer`.
    #[cfg(feature = "redis")]
    pub fn new(answer: oneshot::Receiver<Result<Window, StoreError>>) -> WindowRequest {
        WindowRequest(answer)
    }

    pub async fn window(self) -> Result<Window, StoreError> {
        self.0.await.map_err(|_| StoreError::Stopped)?
    }
}

/// The handle the event loop holds; dropping it (or [`Store::close`]) stops the thread.
pub struct Store {
    commands: Option<mpsc::Sender<Command>>,
    /// Bytes of inserts queued to the store thread, shared with it.
    queued: Arc<QueuedBytes>,
    thread: Option<JoinHandle<()>>,
    last_id_at_open: i64,
    retention: Arc<RetentionStats>,
}

impl Store {
    /// Opens (creating if needed) the database and starts the store thread. Results of inserts
    /// arrive on the returned receiver, one `Vec` per transaction.
    pub fn open(
        config: StoreConfig,
    ) -> Result<(Store, async_mpsc::UnboundedReceiver<Vec<Committed>>), OpenError> {
        let connection = open_connection(&config)?;
        let at = |error: StoreError| OpenError {
            path: config.path.clone(),
            error,
        };
        let last_id_at_open = connection
            .query_row("SELECT coalesce(max(id), 0) FROM messages", [], |row| {
                row.get(0)
            })
            .map_err(|e| at(e.into()))?;
        let path = config.path.clone();
        let (commands, command_rx) = mpsc::channel();
        let (results, result_rx) = async_mpsc::unbounded_channel();
        let queued = Arc::new(QueuedBytes::new(config.max_queued_bytes));
        let written = queued.clone();
        let retention = Arc::new(RetentionStats::default());
        let pruned = retention.clone();
        let thread = std::thread::Builder::new()
            .name("store".into())
            .spawn(move || writer(connection, config, command_rx, results, written, pruned))
            .map_err(|e| OpenError {
                path: path.clone(),
                error: StoreError::NoThread(e.to_string()),
            })?;
        Ok((
            Store {
                commands: Some(commands),
                queued,
                thread: Some(thread),
                last_id_at_open,
                retention,
            },
            result_rx,
        ))
    }

    /// Queues an insert; its outcome arrives on the results channel. Refused with
    /// [`StoreError::Busy`] when the messages already waiting fill `max_queued_bytes`.
    pub fn insert(&self, insert: Insert) -> Result<(), StoreError> {
        let size = insert.queued_size();
        if !self.queued.take(size) {
            return Err(StoreError::Busy);
        }
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|c| c.send(Command::Insert(insert)).is_ok());
        if !sent {
            self.queued.give_back(size);
            return Err(StoreError::Stopped);
        }
        Ok(())
    }

    /// Whether the queue of messages waiting to be written has room to spare (under three
    /// quarters of `max_queued_bytes`); while it has not, readers of client input pause, so
    /// that a burst waits in the network instead of being refused.
    pub fn has_room(&self) -> bool {
        self.queued.has_room()
    }

    /// The oldest id kept and the messages retention deleted, as of the store's last step.
    pub fn retention(&self) -> &RetentionStats {
        &self.retention
    }

    /// The highest id stored when the database was opened (0 when empty).
    pub fn last_id_at_open(&self) -> i64 {
        self.last_id_at_open
    }

    /// Asks for the rows in `range`, in id order, within `limit`. The read runs on the store
    /// thread after the inserts queued before it; await [`PageRequest::rows`] for the answer
    /// (the request does not borrow the store).
    pub fn request_page(
        &self,
        range: PageRange,
        limit: PageLimit,
    ) -> Result<PageRequest, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Page {
            range,
            limit,
            reply,
        })?;
        Ok(PageRequest(answer))
    }

    /// Asks where a replay of at most the `newest` rows in `after < id <= upto` starts, and
    /// how many rows it skips; see [`WindowRequest::window`].
    pub fn request_window(
        &self,
        after: i64,
        upto: i64,
        newest: usize,
    ) -> Result<WindowRequest, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Command::Window {
            after,
            upto,
            newest,
            reply,
        })?;
        Ok(WindowRequest(answer))
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        self.commands
            .as_ref()
            .and_then(|c| c.send(command).ok())
            .ok_or(StoreError::Stopped)
    }

    /// Asks the store thread to read the database; resolves to `Ok` when it answers (for a
    /// health check). Does not borrow the store.
    pub fn check(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + use<> {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .commands
            .as_ref()
            .is_some_and(|c| c.send(Command::Check(reply)).is_ok());
        async move {
            if !sent {
                return Err(StoreError::Stopped);
            }
            answer.await.map_err(|_| StoreError::Stopped)?
        }
    }

    /// Finishes queued commits, checkpoints the WAL and closes the database.
    pub fn close(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.commands.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::Outcome;
    use crate::store::testing::{insert, temp_db};

    #[tokio::test]
    async fn thread_commits_and_reports_in_order() {
        let path = temp_db("thread");
        let (store, mut results) = Store::open(StoreConfig::new(&path)).unwrap();
        for i in 0..100 {
            store
                .insert(insert(&format!("m{i}"), Some(&format!("o{i}"))))
                .unwrap();
        }
        let mut seen = Vec::new();
        while seen.len() < 100 {
            for committed in results.recv().await.unwrap() {
                seen.push(committed);
            }
        }
        for (i, committed) in seen.iter().enumerate() {
            assert_eq!(committed.insert.content, format!("m{i}"));
            assert_eq!(committed.outcome, Outcome::Stored(i as i64 + 1));
        }
        store.close();
        // A clean close leaves no WAL content behind.
        let wal = path.with_extension("db-wal");
        assert!(std::fs::metadata(&wal).map_or(true, |m| m.len() == 0));
    }

    #[tokio::test]
    async fn inserts_beyond_the_queued_bytes_are_refused_until_written() {
        let path = temp_db("busy");
        let mut config = StoreConfig::new(&path);
        config.max_queued_bytes = 2 * insert(&"x".repeat(100), None).queued_size();
        let (store, mut results) = Store::open(config).unwrap();
        // Another process holds the write lock: nothing queued can be written meanwhile.
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
        let message = || insert(&"x".repeat(100), None);
        store.insert(message()).unwrap();
        store.insert(message()).unwrap();
        assert_eq!(store.insert(message()), Err(StoreError::Busy));
        blocker.execute_batch("COMMIT").unwrap();
        let mut written = 0;
        while written < 2 {
            written += results.recv().await.unwrap().len();
        }
        // Written, so given back: there is room again.
        store.insert(message()).unwrap();
        drop(blocker);
        store.close();
    }
}
