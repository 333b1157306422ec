//! The store thread: takes commands off its queue and answers them, writing every insert
//! queued meanwhile in one transaction (group commit).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use rusqlite::Connection as SqlConnection;
use tokio::sync::mpsc as async_mpsc;
use tokio::sync::oneshot;

use super::batch::{read_page, unix_millis, window, write_batch};
use super::error::StoreError;
use super::file::FileIdentity;
use super::model::{Committed, Insert, Outcome, PageLimit, PageRange, Row, StoreConfig, Window};
use super::retention::{PRUNE_BATCH, Pruner, RetentionStats};
use super::space::SpaceGuard;

pub type PageReply = oneshot::Sender<Result<Vec<Row>, StoreError>>;
pub type WindowReply = oneshot::Sender<Result<Window, StoreError>>;

/// Most skipped rows a [`Command::Window`] counts: beyond it the count says "more".
pub const WINDOW_COUNT_CAP: u64 = 10_000;

/// Bytes of inserts on their way to the store thread: counted by the event loop as it queues
/// them, given back by the thread once written, and bounded, so that a burst faster than
/// the disk is refused instead of piling up in memory.
pub struct QueuedBytes {
    bytes: AtomicUsize,
    limit: usize,
}

impl QueuedBytes {
    pub fn new(limit: usize) -> QueuedBytes {
        QueuedBytes {
            bytes: AtomicUsize::new(0),
            limit,
        }
    }

    /// Counts `size` more bytes if they fit under the limit.
    pub fn take(&self, size: usize) -> bool {
        let before = self.bytes.fetch_add(size, Ordering::Relaxed);
        if before + size > self.limit {
            self.bytes.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub fn give_back(&self, size: usize) {
        self.bytes.fetch_sub(size, Ordering::Relaxed);
    }

    /// Whether less than three quarters of the limit is taken: room for what clients are
    /// sending already, so the event loop may read more from them.
    pub fn has_room(&self) -> bool {
        self.bytes.load(Ordering::Relaxed) < self.limit / 4 * 3
    }
}

/// What the event loop asks of the store thread.
pub enum Command {
    Insert(Insert),
    /// Answers once the database can be read.
    Check(oneshot::Sender<Result<(), StoreError>>),
    /// Rows in `range`, in id order, within `limit`.
    Page {
        range: PageRange,
        limit: PageLimit,
        reply: PageReply,
    },
    /// Where a replay of the newest `newest` rows in `after < id <= upto` starts.
    Window {
        after: i64,
        upto: i64,
        newest: usize,
        reply: WindowReply,
    },
}

/// Commands taken off the queue in one round, sorted by kind.
#[derive(Default)]
struct Round {
    inserts: Vec<Insert>,
    checks: Vec<oneshot::Sender<Result<(), StoreError>>>,
    pages: Vec<Read>,
}

/// A read queued in a round, answered after its inserts.
enum Read {
    Page(PageRange, PageLimit, PageReply),
    Window {
        after: i64,
        upto: i64,
        newest: usize,
        reply: WindowReply,
    },
}

/// How long the store thread waits for work before a retention step when idle: messages
/// age while nobody writes.
const RETENTION_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// The store thread's state: the one connection and the file it must keep pointing at.
struct Writer {
    connection: SqlConnection,
    config: StoreConfig,
    /// `None` for an in-memory database, which has no file to watch.
    identity: Option<FileIdentity>,
    pruner: Pruner,
    /// The last retention step deleted a full batch: more are waiting.
    prune_more: bool,
    /// The last retention step failed (its warning is logged once).
    prune_failing: bool,
    space: SpaceGuard,
}

/// The store thread: group commit until every handle is dropped.
pub fn writer(
    connection: SqlConnection,
    config: StoreConfig,
    commands: mpsc::Receiver<Command>,
    results: async_mpsc::UnboundedSender<Vec<Committed>>,
    queued: Arc<QueuedBytes>,
    retention: Arc<RetentionStats>,
) {
    let identity = watch_file(&config.path);
    let pruner = Pruner::new(config.retention, retention);
    let space = SpaceGuard::new(config.min_free_space);
    let mut writer = Writer {
        connection,
        config,
        identity,
        pruner,
        prune_more: false,
        prune_failing: false,
        space,
    };
    // What is past the retention already goes at once (a batch at a time, between rounds).
    writer.prune();
    while let Some(round) = writer.gather(&commands) {
        // Inserts first: a check or page in the same round then sees them.
        if !round.inserts.is_empty() {
            let size = round.inserts.iter().map(Insert::queued_size).sum();
            let committed = writer.commit(round.inserts);
            queued.give_back(size);
            if results.send(committed).is_err() {
                break;
            }
        }
        writer.answer_checks(round.checks);
        writer.answer_pages(round.pages);
        writer.prune();
    }
    writer.close();
}

fn watch_file(path: &Path) -> Option<FileIdentity> {
    match FileIdentity::of(path) {
        Ok(identity) => Some(identity),
        Err(error) => {
            if path != Path::new(":memory:") {
                log::warn!(
                    "{}: cannot watch the database file ({error}); its removal would go unnoticed",
                    path.display()
                );
            }
            None
        }
    }
}

impl Writer {
    /// Blocks for one command, then takes whatever else is already queued, up to a batch;
    /// `None` once every handle is gone.
    fn gather(&self, commands: &mpsc::Receiver<Command>) -> Option<Round> {
        let mut round = Round::default();
        let first = if self.config.retention.keeps_everything() {
            commands.recv().ok()
        } else {
            let wait = if self.prune_more {
                std::time::Duration::ZERO
            } else {
                RETENTION_IDLE
            };
            match commands.recv_timeout(wait) {
                Ok(command) => Some(command),
                // Nothing to do: an empty round, then a retention step.
                Err(mpsc::RecvTimeoutError::Timeout) => return Some(round),
                Err(mpsc::RecvTimeoutError::Disconnected) => None,
            }
        };
        let mut next = Some(first?);
        let mut taken = 0;
        while let Some(command) = next {
            match command {
                Command::Insert(insert) => round.inserts.push(insert),
                Command::Check(reply) => round.checks.push(reply),
                Command::Page {
                    range,
                    limit,
                    reply,
                } => round.pages.push(Read::Page(range, limit, reply)),
                Command::Window {
                    after,
                    upto,
                    newest,
                    reply,
                } => round.pages.push(Read::Window {
                    after,
                    upto,
                    newest,
                    reply,
                }),
            }
            taken += 1;
            next = if taken < self.config.max_batch {
                commands.try_recv().ok()
            } else {
                None
            };
        }
        Some(round)
    }

    /// One retention step (also when everything is kept: it keeps the oldest id known).
    fn prune(&mut self) {
        match self.pruner.step(&mut self.connection, unix_millis()) {
            Ok(deleted) => {
                if deleted > 0 {
                    log::debug!("retention: deleted {deleted} messages");
                }
                if self.prune_failing {
                    log::info!("retention works again");
                    self.prune_failing = false;
                }
                self.prune_more = deleted == PRUNE_BATCH;
            }
            Err(error) => {
                // Once per run of failures (a full or read-only disk fails every round).
                if !self.prune_failing {
                    log::warn!("retention step failed: {}", StoreError::from(error));
                    self.prune_failing = true;
                }
                self.prune_more = false;
            }
        }
    }

    /// Writes every insert of the round in one transaction.
    fn commit(&mut self, inserts: Vec<Insert>) -> Vec<Committed> {
        log::trace!("committing {} messages", inserts.len());
        // Below the free-space floor nothing is written (the guard logs once per episode).
        if let Err(error) = self.space.check(&self.config.path) {
            let time = unix_millis();
            return inserts
                .into_iter()
                .map(|insert| Committed {
                    insert,
                    outcome: Outcome::Failed(error.clone()),
                    time,
                })
                .collect();
        }
        let file = self
            .identity
            .map(|identity| (identity, self.config.path.as_path()));
        write_batch(&mut self.connection, file, inserts)
    }

    fn answer_checks(&mut self, checks: Vec<oneshot::Sender<Result<(), StoreError>>>) {
        for reply in checks {
            let _ = reply.send(self.check());
        }
    }

    /// The file is still ours and the table can be read.
    fn check(&mut self) -> Result<(), StoreError> {
        if let Some(identity) = self.identity {
            identity.check(&self.config.path)?;
        }
        self.space.check(&self.config.path)?;
        self.connection
            .query_row(
                "SELECT count(*) FROM (SELECT 1 FROM messages LIMIT 1)",
                [],
                |_| Ok(()),
            )
            .map_err(StoreError::from)
    }

    fn answer_pages(&self, reads: Vec<Read>) {
        // A reader may have gone (its client disconnected): nothing to do then.
        for read in reads {
            match read {
                Read::Page(range, limit, reply) => {
                    let rows = read_page(&self.connection, range, limit).map_err(StoreError::from);
                    if let Err(error) = &rows {
                        log::warn!("reading messages {range:?} failed: {error}");
                    }
                    let _ = reply.send(rows);
                }
                Read::Window {
                    after,
                    upto,
                    newest,
                    reply,
                } => {
                    let found = window(&self.connection, after, upto, newest, WINDOW_COUNT_CAP)
                        .map_err(StoreError::from);
                    if let Err(error) = &found {
                        log::warn!("reading the history window after {after} failed: {error}");
                    }
                    let _ = reply.send(found);
                }
            }
        }
    }

    /// Folds the WAL back into the database so the file is whole on its own, then closes.
    fn close(self) {
        if let Err(error) = self
            .connection
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        {
            log::warn!(
                "WAL checkpoint on close failed: {}",
                StoreError::from(error)
            );
        }
        if let Err((_, error)) = self.connection.close() {
            log::warn!("closing the database failed: {}", StoreError::from(error));
        }
    }
}
