//! The store's settings and the values that go in and out of it.

use std::path::PathBuf;

use super::error::StoreError;

/// SQLite's `synchronous` setting for the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// fsync on every commit: an acked message survives a power cut. The default.
    Full,
    /// fsync at checkpoints only: fewer writes (SD-card wear), but a power cut can lose the
    /// last commits, whose ids may then be handed out again.
    Normal,
}

impl Synchronous {
    pub(super) fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// Store settings.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    pub synchronous: Synchronous,
    /// Most inserts written in one transaction. Default 1024.
    pub max_batch: usize,
    /// How long SQLite waits on a lock held by another process. Default 5 s.
    pub busy_timeout_ms: u64,
    /// Bytes of messages waiting for the store thread, at most; an insert beyond that is
    /// refused ([`StoreError::Busy`]) rather than queued. Default 4 MiB.
    pub max_queued_bytes: usize,
    /// What is kept: everything by default.
    pub retention: Retention,
    /// Free bytes the database's filesystem must keep; below them new messages are refused.
    /// 0 turns the guard off. Default 64 MiB.
    pub min_free_space: u64,
}

/// Which messages the store keeps; older ones are deleted in small batches as it goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the newest this many messages (`--keep-messages`).
    pub keep_messages: Option<u64>,
    /// Keep messages stored in the last this many days (`--keep-days`); messages without a
    /// time (written before the schema had one, or by another program) are left to
    /// `keep_messages`.
    pub keep_days: Option<u32>,
}

impl Retention {
    pub fn keeps_everything(&self) -> bool {
        self.keep_messages.is_none() && self.keep_days.is_none()
    }
}

impl StoreConfig {
    pub fn new(path: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            path: path.into(),
            synchronous: Synchronous::Full,
            max_batch: 1024,
            busy_timeout_ms: 5000,
            max_queued_bytes: 4 * 1024 * 1024,
            retention: Retention::default(),
            min_free_space: 64 * 1024 * 1024,
        }
    }
}

/// A chat message to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    pub content: String,
    pub client_offset: Option<String>,
    /// The sender's display name, if it gave one.
    pub name: Option<String>,
}

impl Insert {
    /// Memory the insert holds while queued, about (its strings and the command around them).
    pub(super) fn queued_size(&self) -> usize {
        self.content.len()
            + self.client_offset.as_ref().map_or(0, String::len)
            + self.name.as_ref().map_or(0, String::len)
            + 112
    }
}

/// What became of one insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored durably under this id.
    Stored(i64),
    /// Its client offset was already stored, under this id: nothing written.
    Duplicate(i64),
    /// The transaction failed; nothing of it was written.
    Failed(StoreError),
}

/// One insert and its outcome, returned in request order.
#[derive(Debug)]
pub struct Committed {
    pub insert: Insert,
    pub outcome: Outcome,
    /// When its transaction was written, in Unix milliseconds: the stored `created_at`.
    pub time: i64,
}

/// A stored message, as replay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: i64,
    pub content: String,
    /// NULL for rows stored without a name (and before the schema had one).
    pub name: Option<String>,
    /// Unix milliseconds; NULL for rows stored before the schema had it.
    pub time: Option<i64>,
}

impl Row {
    /// Memory a row holds beyond its content and name: the id and time, the `String`s, the
    /// allocators' headers.
    pub const OVERHEAD: usize = 96;

    /// Memory the row holds, about.
    pub fn size(&self) -> usize {
        self.content.len() + self.name.as_ref().map_or(0, String::len) + Row::OVERHEAD
    }
}

/// Which rows a page read returns, always in increasing id order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRange {
    /// The first rows with `after < id < before` (replay, and reading forward).
    Between { after: i64, before: i64 },
    /// The last rows with `id < before` (reading back through history).
    Before(i64),
}

impl PageRange {
    /// Every row after `after`.
    pub fn after(after: i64) -> PageRange {
        PageRange::Between {
            after,
            before: i64::MAX,
        }
    }
}

/// How much one page read may return: up to `rows` rows, and no more once their
/// [`Row::size`]s reach `bytes` (so a page is at most `bytes` plus one row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit {
    pub rows: usize,
    pub bytes: usize,
}

/// Where a replay capped at `newest` rows starts: the id to replay after, and how many rows
/// between the client's offset and there it skips (counted up to a cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_after: i64,
    pub skipped: u64,
    /// True when more than `skipped` rows were skipped (the count stopped at its cap).
    pub more: bool,
    /// Messages after `after` are gone (deleted by retention, trimmed from the stream): the
    /// client cannot have everything it missed.
    pub trimmed: bool,
}
