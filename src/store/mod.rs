//! The message store: SQLite on its own thread, with group commit.
//!
//! SQLite calls block (an fsync can take milliseconds on an SD card), so one thread owns the
//! connection and the event loop never waits on it. Inserts queue up while a commit is in
//! flight; the thread then writes everything queued in one transaction, so durable ingest is
//! not capped at one fsync per message. Results come back in request order, batch by batch,
//! which is also id order: the caller can broadcast in order without sorting.
//!
//! - `handle`: the [`Store`] the event loop holds; `writer`: the thread's loop;
//! - `batch`: one transaction of inserts, one page read; `schema`: opening the database;
//! - `file`: noticing the file being removed; `model`, `error`: the values and failures;
//! - `copies`: `emberchat backup` and `emberchat export`, read from a live database;
//!   `retention`: deleting what `--keep-messages`/`--keep-days` no longer keep; `space`: the
//!   free-space floor.

mod batch;
mod copies;
mod error;
mod file;
mod handle;
mod model;
mod retention;
mod schema;
mod space;
#[cfg(test)]
mod testing;
mod writer;

pub use copies::{BackupReport, CopyError, backup, export};
pub use error::{OpenError, StoreError};
pub use handle::{PageRequest, Store, WindowRequest};
#[cfg(feature = "redis")]
pub use model::Window;
pub use model::{
    Committed, Insert, Outcome, PageLimit, PageRange, Retention, Row, StoreConfig, Synchronous,
};
