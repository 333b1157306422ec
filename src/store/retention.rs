//! Retention: deleting messages past `--keep-messages` or `--keep-days`, on the store
//! thread, a small batch per step between commits, so neither the write lock nor group
//! commit waits long. Ids are never reused (AUTOINCREMENT remembers the highest ever given).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rusqlite::types::ValueRef;
use rusqlite::{Connection as SqlConnection, params};

use super::model::Retention;

/// Rows deleted in one step, at most: a few milliseconds of the write lock.
pub const PRUNE_BATCH: usize = 500;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What retention did, for the metrics: read by the event loop, written by the store thread.
#[derive(Debug, Default)]
pub struct RetentionStats {
    oldest_id: AtomicI64,
    pruned: AtomicU64,
}

impl RetentionStats {
    /// The lowest id still stored (0 when the table is empty).
    pub fn oldest_id(&self) -> i64 {
        self.oldest_id.load(Ordering::Relaxed)
    }

    /// Messages deleted by retention since start.
    pub fn pruned(&self) -> u64 {
        self.pruned.load(Ordering::Relaxed)
    }
}

/// Retention's state on the store thread.
pub struct Pruner {
    retention: Retention,
    /// Rows up to here are deleted or have no time: the age walk starts after it.
    age_cursor: i64,
    stats: Arc<RetentionStats>,
}

impl Pruner {
    pub fn new(retention: Retention, stats: Arc<RetentionStats>) -> Pruner {
        Pruner {
            retention,
            age_cursor: 0,
            stats,
        }
    }

    /// Deletes at most [`PRUNE_BATCH`] messages past the retention, in one transaction, and
    /// gives their pages back to the file when it uses incremental auto-vacuum. Returns the
    /// number deleted: a full batch means more are waiting.
    pub fn step(&mut self, connection: &mut SqlConnection, now_ms: i64) -> rusqlite::Result<usize> {
        let mut deleted = 0;
        if !self.retention.keeps_everything() {
            let transaction =
                connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            if let Some(keep) = self.retention.keep_messages {
                deleted += prune_beyond_count(&transaction, keep, PRUNE_BATCH)?;
            }
            if let Some(days) = self.retention.keep_days {
                let cutoff = now_ms - i64::from(days) * DAY_MS;
                deleted += self.prune_older_than(&transaction, cutoff, PRUNE_BATCH - deleted)?;
            }
            transaction.commit()?;
        }
        if deleted > 0 {
            self.stats
                .pruned
                .fetch_add(deleted as u64, Ordering::Relaxed);
            // Frees what the batch left empty, when the file can shrink (a new database).
            connection.execute_batch("PRAGMA incremental_vacuum(256);")?;
        }
        let oldest: i64 =
            connection.query_row("SELECT coalesce(min(id), 0) FROM messages", [], |row| {
                row.get(0)
            })?;
        self.stats.oldest_id.store(oldest, Ordering::Relaxed);
        Ok(deleted)
    }

    /// Deletes, oldest first, messages stored before `cutoff` (Unix ms), walking up from the
    /// cursor until the first one stored since: a step reads at most `limit` rows past the
    /// ones it deletes, whatever the table's length. Rows without a time are stepped over.
    fn prune_older_than(
        &mut self,
        connection: &SqlConnection,
        cutoff: i64,
        limit: usize,
    ) -> rusqlite::Result<usize> {
        let mut expired = Vec::new();
        {
            let mut walk = connection.prepare_cached(
                "SELECT id, created_at FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let mut rows = walk.query(params![self.age_cursor, limit as i64])?;
            while let Some(row) = rows.next()? {
                let id: i64 = row.get(0)?;
                match row.get_ref(1)? {
                    ValueRef::Integer(time) if time >= cutoff => break,
                    ValueRef::Integer(_) => expired.push(id),
                    // No time: its age is unknown; --keep-messages alone removes it.
                    _ => {}
                }
                self.age_cursor = id;
            }
        }
        let mut delete = connection.prepare_cached("DELETE FROM messages WHERE id = ?1")?;
        for id in &expired {
            delete.execute(params![id])?;
        }
        Ok(expired.len())
    }
}

/// Deletes the oldest messages beyond the newest `keep`, `limit` at most. Ids have no gaps
/// but the ones retention makes at the bottom, so "beyond the newest `keep`" is "id at most
/// the highest minus `keep`": found through the key, without counting rows.
fn prune_beyond_count(
    connection: &SqlConnection,
    keep: u64,
    limit: usize,
) -> rusqlite::Result<usize> {
    let keep = i64::try_from(keep).unwrap_or(i64::MAX);
    connection
        .prepare_cached(
            "DELETE FROM messages WHERE id IN (SELECT id FROM messages \
             WHERE id <= (SELECT coalesce(max(id), 0) FROM messages) - ?1 ORDER BY id LIMIT ?2)",
        )?
        .execute(params![keep, limit as i64])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::StoreConfig;
    use crate::store::schema::open_connection;
    use crate::store::testing::{column, temp_db};

    fn ids(connection: &SqlConnection) -> Vec<i64> {
        column(connection, "SELECT id FROM messages ORDER BY id")
    }

    #[test]
    fn keeps_the_newest_by_count_in_batches_and_never_reuses_ids() {
        let path = temp_db("retention-count");
        let mut connection = open_connection(&StoreConfig::new(&path)).unwrap();
        connection
            .execute_batch(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1200)
                 INSERT INTO messages (content) SELECT 'm' || i FROM n;",
            )
            .unwrap();
        let stats = Arc::new(RetentionStats::default());
        let retention = Retention {
            keep_messages: Some(100),
            keep_days: None,
        };
        let mut pruner = Pruner::new(retention, stats.clone());
        assert_eq!(pruner.step(&mut connection, 0).unwrap(), PRUNE_BATCH);
        assert_eq!(pruner.step(&mut connection, 0).unwrap(), PRUNE_BATCH);
        assert_eq!(pruner.step(&mut connection, 0).unwrap(), 100);
        assert_eq!(pruner.step(&mut connection, 0).unwrap(), 0);
        assert_eq!(ids(&connection), (1101..=1200).collect::<Vec<_>>());
        assert_eq!((stats.oldest_id(), stats.pruned()), (1101, 1100));
        // Everything deleted: the next id is still the next, never one given before.
        connection.execute_batch("DELETE FROM messages").unwrap();
        connection
            .execute_batch("INSERT INTO messages (content) VALUES ('after')")
            .unwrap();
        assert_eq!(ids(&connection), [1201]);
    }

    #[test]
    fn keeps_recent_and_undated_messages_by_age() {
        let path = temp_db("retention-age");
        let mut connection = open_connection(&StoreConfig::new(&path)).unwrap();
        let now = 100 * DAY_MS;
        let mut insert = connection
            .prepare("INSERT INTO messages (content, created_at) VALUES ('m', ?1)")
            .unwrap();
        // 1-3 undated (before the upgrade), 4-8 ten days old, 9-10 a day old.
        for time in [None, None, None]
            .into_iter()
            .chain([Some(now - 10 * DAY_MS); 5])
            .chain([Some(now - DAY_MS); 2])
        {
            insert.execute(params![time]).unwrap();
        }
        drop(insert);
        let stats = Arc::new(RetentionStats::default());
        let retention = Retention {
            keep_messages: None,
            keep_days: Some(7),
        };
        let mut pruner = Pruner::new(retention, stats.clone());
        assert_eq!(pruner.step(&mut connection, now).unwrap(), 5);
        assert_eq!(ids(&connection), [1, 2, 3, 9, 10]);
        // A week later the rest of the dated ones go; the undated stay.
        assert_eq!(pruner.step(&mut connection, now + 7 * DAY_MS).unwrap(), 2);
        assert_eq!(ids(&connection), [1, 2, 3]);
        assert_eq!(stats.pruned(), 7);
    }
}
