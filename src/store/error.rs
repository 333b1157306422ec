//! What can go wrong with the database.

use std::fmt;
use std::path::PathBuf;

use rusqlite::ErrorCode;

/// A failure of the store. Clients only ever learn that a message was not stored; these go to
/// the operator's log and to `/healthz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// SQLite may not write the database (its file or filesystem is read-only).
    ReadOnly,
    /// The disk is full.
    DiskFull,
    /// Another process holds the database's lock beyond the busy timeout.
    Locked,
    /// The file is not an SQLite database.
    NotADatabase,
    /// The database has a `messages` table of another shape: another application's file.
    ForeignSchema { columns: Vec<String> },
    /// The database has a schema version this build does not know (a newer emberchat's).
    UnknownVersion { found: i64, known: i64 },
    /// The database file was removed from under the gateway.
    FileGone { path: PathBuf, reason: String },
    /// The database file was replaced by another file.
    FileReplaced { path: PathBuf },
    /// The store thread has stopped (the gateway is shutting down).
    Stopped,
    /// Too many messages are waiting to be written (`StoreConfig::max_queued_bytes`).
    Busy,
    /// The database's filesystem has less free space than `--min-free-space`.
    LowSpace { free: u64, floor: u64 },
    /// The store thread could not be started.
    NoThread(String),
    /// Any other SQLite error, in SQLite's words.
    Sqlite(String),
    /// The shared log (cluster mode) cannot be reached or refused a command, in the Redis
    /// client's words.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Redis(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::ReadOnly => f.write_str("database is read-only"),
            StoreError::DiskFull => f.write_str("database or disk is full"),
            StoreError::Locked => f.write_str("database is locked"),
            StoreError::NotADatabase => f.write_str("file is not a database"),
            StoreError::ForeignSchema { columns } => write!(
                f,
                "table messages has columns {columns:?}, expected id, client_offset, content \
                 (and name, created_at once upgraded)"
            ),
            StoreError::UnknownVersion { found, known } => write!(
                f,
                "schema version {found} is not one this emberchat knows (it writes version \
                 {known}); a newer emberchat wrote it"
            ),
            StoreError::FileGone { path, reason } => write!(
                f,
                "{} is gone ({reason}); restore it or restart the gateway",
                path.display()
            ),
            StoreError::FileReplaced { path } => write!(
                f,
                "{} was replaced by another file; restore it or restart the gateway",
                path.display()
            ),
            StoreError::Stopped => f.write_str("the store has stopped"),
            StoreError::Busy => f.write_str("too many messages waiting to be written"),
            StoreError::LowSpace { free, floor } => write!(
                f,
                "only {free} bytes free on the database's filesystem, below --min-free-space \
                 {floor}: new messages are refused until there is room"
            ),
            StoreError::NoThread(error) => write!(f, "cannot start the store thread: {error}"),
            StoreError::Sqlite(text) => f.write_str(text),
            StoreError::Redis(text) => write!(f, "Redis: {text}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        match error.sqlite_error_code() {
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly,
            Some(ErrorCode::DiskFull) => StoreError::DiskFull,
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Locked,
            Some(ErrorCode::NotADatabase) => StoreError::NotADatabase,
            _ => StoreError::Sqlite(error.to_string()),
        }
    }
}

/// The store could not open the database at `path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenError {
    pub path: PathBuf,
    pub error: StoreError,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            StoreError::ReadOnly => write!(
                f,
                "{}: the database is read-only; the gateway needs to write to it",
                self.path.display()
            ),
            error => write!(f, "{}: {error}", self.path.display()),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
