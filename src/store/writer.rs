//! The store thread: takes commands off its queue and answers them, writing every insert
//! queued meanwhile in one transaction (group commit).

use std::path::Path;
use std::sync::mpsc;

use rusqlite::Connection as SqlConnection;
use tokio::sync::mpsc as async_mpsc;
use tokio::sync::oneshot;

use super::batch::{read_page, write_batch};
use super::error::StoreError;
use super::file::FileIdentity;
use super::model::{Committed, Insert, Row, StoreConfig};

pub type PageReply = oneshot::Sender<Result<Vec<Row>, StoreError>>;

/// What the event loop asks of the store thread.
pub enum Command {
    Insert(Insert),
    /// Answers once the database can be read.
    Check(oneshot::Sender<Result<(), StoreError>>),
    /// Up to `limit` rows with `id > after`, in id order.
    Page {
        after: i64,
        limit: usize,
        reply: PageReply,
    },
}

/// The store thread: group commit until every handle is dropped.
pub fn writer(
    mut connection: SqlConnection,
    config: StoreConfig,
    commands: mpsc::Receiver<Command>,
    results: async_mpsc::UnboundedSender<Vec<Committed>>,
) {
    // An in-memory database has no file to watch.
    let identity = match FileIdentity::of(&config.path) {
        Ok(identity) => Some(identity),
        Err(error) => {
            if config.path != Path::new(":memory:") {
                log::warn!(
                    "{}: cannot watch the database file ({error}); its removal would go unnoticed",
                    config.path.display()
                );
            }
            None
        }
    };
    let mut batch = Vec::new();
    while let Ok(first) = commands.recv() {
        batch.push(first);
        while batch.len() < config.max_batch {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let mut inserts = Vec::new();
        let mut pages = Vec::new();
        let mut checks = Vec::new();
        for command in batch.drain(..) {
            match command {
                Command::Insert(insert) => inserts.push(insert),
                Command::Check(reply) => checks.push(reply),
                Command::Page {
                    after,
                    limit,
                    reply,
                } => pages.push((after, limit, reply)),
            }
        }
        if !inserts.is_empty() {
            log::trace!("committing {} messages", inserts.len());
            let file = identity.map(|identity| (identity, config.path.as_path()));
            let committed = write_batch(&mut connection, file, inserts);
            if results.send(committed).is_err() {
                break;
            }
        }
        for reply in checks {
            let answer = identity
                .map_or(Ok(()), |identity| identity.check(&config.path))
                .and_then(|()| {
                    connection
                        .query_row(
                            "SELECT count(*) FROM (SELECT 1 FROM messages LIMIT 1)",
                            [],
                            |_| Ok(()),
                        )
                        .map_err(StoreError::from)
                });
            let _ = reply.send(answer);
        }
        for (after, limit, reply) in pages {
            let rows = read_page(&connection, after, limit).map_err(StoreError::from);
            if let Err(error) = &rows {
                log::warn!("reading messages after {after} failed: {error}");
            }
            // The reader may have gone (its client disconnected): nothing to do then.
            let _ = reply.send(rows);
        }
    }
    if let Err(error) = connection.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);") {
        log::warn!(
            "WAL checkpoint on close failed: {}",
            StoreError::from(error)
        );
    }
    if let Err((_, error)) = connection.close() {
        log::warn!("closing the database failed: {}", StoreError::from(error));
    }
}
