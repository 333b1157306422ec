//! The two things the store thread does with SQLite: write a batch of messages in one
//! transaction, and read a page of them.

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection as SqlConnection, OptionalExtension, params};

use super::error::StoreError;
use super::file::FileIdentity;
use super::model::{Committed, Insert, Outcome, PageLimit, PageRange, Row, Window};

/// Writes `inserts` in one transaction. On any failure the transaction is rolled back and
/// every insert of it is reported failed, so nothing is acked that is not on disk.
pub fn write_batch(
    connection: &mut SqlConnection,
    file: Option<(FileIdentity, &Path)>,
    inserts: Vec<Insert>,
) -> Vec<Committed> {
    let time = unix_millis();
    let written = match file {
        Some((identity, path)) => identity.check(path),
        None => Ok(()),
    }
    .and_then(|()| try_write_batch(connection, &inserts, time).map_err(StoreError::from));
    match written {
        Ok(outcomes) => inserts
            .into_iter()
            .zip(outcomes)
            .map(|(insert, outcome)| Committed {
                insert,
                outcome,
                time,
            })
            .collect(),
        Err(error) => {
            log::warn!("storing {} message(s) failed: {error}", inserts.len());
            inserts
                .into_iter()
                .map(|insert| Committed {
                    insert,
                    outcome: Outcome::Failed(error.clone()),
                    time,
                })
                .collect()
        }
    }
}

/// The wall clock in Unix milliseconds (0 for a clock set before 1970).
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

fn try_write_batch(
    connection: &mut SqlConnection,
    inserts: &[Insert],
    time: i64,
) -> Result<Vec<Outcome>, rusqlite::Error> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(inserts.len());
    {
        // Looking the offset up first, rather than `ON CONFLICT DO NOTHING`, keeps ids gapless:
        // an upsert that does nothing still advances the AUTOINCREMENT sequence.
        let mut known =
            transaction.prepare_cached("SELECT id FROM messages WHERE client_offset = ?1")?;
        // OR ROLLBACK: a failure undoes the whole batch anyway (nothing of it is acked), and
        // it spares SQLite a statement journal per row.
        let mut add = transaction.prepare_cached(
            "INSERT OR ROLLBACK INTO messages (content, client_offset, name, created_at) \
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for insert in inserts {
            if let Some(offset) = &insert.client_offset {
                let stored: Option<i64> = known
                    .query_row(params![offset], |row| row.get(0))
                    .optional()?;
                if let Some(id) = stored {
                    outcomes.push(Outcome::Duplicate(id));
                    continue;
                }
            }
            outcomes.push(Outcome::Stored(add.insert(params![
                insert.content,
                insert.client_offset,
                insert.name,
                time
            ])?));
        }
    }
    transaction.commit()?;
    Ok(outcomes)
}

/// The messages in `range`, in id order, within `limit`.
pub fn read_page(
    connection: &SqlConnection,
    range: PageRange,
    limit: PageLimit,
) -> Result<Vec<Row>, rusqlite::Error> {
    // Both walk the primary key from a known id: no OFFSET, so a page costs the same at
    // any depth of a million-row table.
    const COLUMNS: &str = "SELECT id, content, name, created_at FROM messages";
    let read = |row: &rusqlite::Row<'_>| {
        Ok(Row {
            id: row.get(0)?,
            content: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
            // Another program may have written anything into the new columns: what is not
            // a text name or an integer time is read as absent.
            name: match row.get_ref(2)? {
                ValueRef::Text(text) => Some(String::from_utf8_lossy(text).into_owned()),
                _ => None,
            },
            time: match row.get_ref(3)? {
                ValueRef::Integer(time) => Some(time),
                _ => None,
            },
        })
    };
    let rows_limit = limit.rows as i64;
    match range {
        PageRange::Between { after, before } => {
            let mut statement = connection.prepare_cached(&format!(
                "{COLUMNS} WHERE id > ?1 AND id < ?2 ORDER BY id LIMIT ?3"
            ))?;
            within(
                statement.query_map(params![after, before, rows_limit], read)?,
                limit,
            )
        }
        PageRange::Before(before) => {
            let mut statement = connection.prepare_cached(&format!(
                "{COLUMNS} WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
            ))?;
            let mut page = within(
                statement.query_map(params![before, rows_limit], read)?,
                limit,
            )?;
            page.reverse();
            Ok(page)
        }
    }
}

/// Takes rows until their sizes reach `limit.bytes` (SQLite stops at `limit.rows`).
fn within(
    rows: impl Iterator<Item = Result<Row, rusqlite::Error>>,
    limit: PageLimit,
) -> Result<Vec<Row>, rusqlite::Error> {
    let mut page = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let row = row?;
        bytes += row.size();
        page.push(row);
        if bytes >= limit.bytes {
            break;
        }
    }
    Ok(page)
}

/// Where a replay of at most the `newest` rows in `after < id <= upto` starts, and how many
/// rows it skips (counted up to `count_cap`, so that a first visit to a million-row chat
/// costs no more than a short absence). Rows after `upto` (stored, not yet broadcast) do not
/// count: they reach the client live.
pub fn window(
    connection: &SqlConnection,
    after: i64,
    upto: i64,
    newest: usize,
    count_cap: u64,
) -> Result<Window, rusqlite::Error> {
    // The oldest of the newest `newest` rows: a walk of `newest` entries down the key.
    let first_kept: Option<i64> = connection
        .prepare_cached(
            "SELECT min(id) FROM (SELECT id FROM messages WHERE id > ?1 AND id <= ?2 \
             ORDER BY id DESC LIMIT ?3)",
        )?
        .query_row(params![after, upto, newest as i64], |row| row.get(0))?;
    // Ids are handed out in order and never reused, so a first row kept past `after + 1`
    // means the ones between were deleted (retention) since the client saw `after`.
    let oldest: Option<i64> = connection
        .prepare_cached("SELECT min(id) FROM messages")?
        .query_row([], |row| row.get(0))?;
    let trimmed = after > 0 && oldest.is_none_or(|oldest| oldest > after + 1) && upto > after;
    let Some(first_kept) = first_kept else {
        return Ok(Window {
            start_after: after,
            skipped: 0,
            more: false,
            trimmed,
        });
    };
    let counted: i64 = connection
        .prepare_cached(
            "SELECT count(*) FROM (SELECT 1 FROM messages WHERE id > ?1 AND id < ?2 LIMIT ?3)",
        )?
        .query_row(
            params![after, first_kept, count_cap.saturating_add(1) as i64],
            |row| row.get(0),
        )?;
    let counted = counted as u64;
    Ok(Window {
        start_after: if counted == 0 { after } else { first_kept - 1 },
        skipped: counted.min(count_cap),
        more: counted > count_cap,
        trimmed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::StoreConfig;
    use crate::store::schema::open_connection;
    use crate::store::testing::{insert, temp_db};

    #[test]
    fn stores_in_order_and_skips_duplicate_offsets() {
        let path = temp_db("order");
        let mut connection = open_connection(&StoreConfig::new(&path)).unwrap();
        let first = write_batch(
            &mut connection,
            None,
            vec![
                insert("a", Some("c-1")),
                insert("b", None),
                insert("a again", Some("c-1")),
            ],
        );
        let outcomes: Vec<_> = first.iter().map(|c| c.outcome.clone()).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Stored(1),
                Outcome::Stored(2),
                Outcome::Duplicate(1)
            ]
        );
        let second = write_batch(
            &mut connection,
            None,
            vec![insert("c", Some("c-1")), insert("d", None)],
        );
        let outcomes: Vec<_> = second.iter().map(|c| c.outcome.clone()).collect();
        assert_eq!(outcomes, [Outcome::Duplicate(1), Outcome::Stored(3)]);
        let count: i64 = connection
            .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 3);
    }

    #[test]
    fn refuses_to_write_once_the_file_is_removed_or_replaced() {
        let path = temp_db("removed");
        let mut connection = open_connection(&StoreConfig::new(&path)).unwrap();
        let identity = FileIdentity::of(&path).unwrap();
        let file = Some((identity, path.as_path()));
        let stored = write_batch(&mut connection, file, vec![insert("kept", None)]);
        assert_eq!(stored[0].outcome, Outcome::Stored(1));
        std::fs::rename(&path, path.with_extension("moved")).unwrap();
        let refused = write_batch(&mut connection, file, vec![insert("lost?", None)]);
        assert!(
            matches!(
                &refused[0].outcome,
                Outcome::Failed(StoreError::FileGone { .. })
            ),
            "{:?}",
            refused[0].outcome
        );
        std::fs::write(&path, b"").unwrap();
        let refused = write_batch(&mut connection, file, vec![insert("lost?", None)]);
        assert!(
            matches!(
                &refused[0].outcome,
                Outcome::Failed(StoreError::FileReplaced { .. })
            ),
            "{:?}",
            refused[0].outcome
        );
    }

    #[test]
    fn pages_walk_ids_both_ways_and_windows_count_what_they_skip() {
        let path = temp_db("pages");
        let mut connection = open_connection(&StoreConfig::new(&path)).unwrap();
        let mut named = insert("m1", None);
        named.name = Some("Ana".into());
        let mut batch = vec![named];
        batch.extend((2..=10).map(|i| insert(&format!("m{i}"), None)));
        let written = write_batch(&mut connection, None, batch);
        let limit = PageLimit {
            rows: 3,
            bytes: 1 << 20,
        };
        let ids = |range| -> Vec<i64> {
            read_page(&connection, range, limit)
                .unwrap()
                .iter()
                .map(|row| row.id)
                .collect()
        };
        assert_eq!(ids(PageRange::after(0)), [1, 2, 3]);
        assert_eq!(ids(PageRange::Before(i64::MAX)), [8, 9, 10]);
        assert_eq!(ids(PageRange::Before(5)), [2, 3, 4]);
        assert_eq!(ids(PageRange::Before(2)), [1]);
        assert_eq!(
            ids(PageRange::Between {
                after: 6,
                before: 9
            }),
            [7, 8]
        );
        let first = &read_page(&connection, PageRange::after(0), limit).unwrap()[0];
        assert_eq!(first.name.as_deref(), Some("Ana"));
        assert_eq!(first.time, Some(written[0].time));
        assert!(first.time.unwrap() > 1_700_000_000_000);
        // The byte limit stops a page after the row that reaches it.
        let small = PageLimit {
            rows: 100,
            bytes: 1,
        };
        assert_eq!(
            read_page(&connection, PageRange::after(0), small)
                .unwrap()
                .len(),
            1
        );

        let window = |after, newest, cap| window(&connection, after, 10, newest, cap).unwrap();
        assert_eq!(
            window(0, 4, 100),
            Window {
                start_after: 6,
                skipped: 6,
                more: false,
                trimmed: false,
            }
        );
        assert_eq!(
            window(0, 4, 5),
            Window {
                start_after: 6,
                skipped: 5,
                more: true,
                trimmed: false,
            }
        );
        // Fewer missed than the window: nothing skipped.
        assert_eq!(
            window(7, 4, 100),
            Window {
                start_after: 7,
                skipped: 0,
                more: false,
                trimmed: false,
            }
        );
        assert_eq!(window(10, 4, 100).skipped, 0);
        // Rows past `upto` are not counted: the newest 4 up to 8 start after 4.
        assert_eq!(
            super::window(&connection, 0, 8, 4, 100).unwrap(),
            Window {
                start_after: 4,
                skipped: 4,
                more: false,
                trimmed: false,
            }
        );
        // Rows 1 to 3 deleted (retention): a client that saw 1 has lost 2 and 3.
        connection
            .execute("DELETE FROM messages WHERE id <= 3", [])
            .unwrap();
        assert!(window(1, 4, 100).trimmed);
        assert!(!window(3, 4, 100).trimmed);
        assert!(!window(0, 4, 100).trimmed);
    }
}
