//! The two things the store thread does with SQLite: write a batch of messages in one
//! transaction, and read a page of them.

use std::path::Path;

use rusqlite::{Connection as SqlConnection, params};

use super::error::StoreError;
use super::file::FileIdentity;
use super::model::{Committed, Insert, Outcome, PageLimit, Row};

/// Writes `inserts` in one transaction. On any failure the transaction is rolled back and
/// every insert of it is reported failed, so nothing is acked that is not on disk.
pub fn write_batch(
    connection: &mut SqlConnection,
    file: Option<(FileIdentity, &Path)>,
    inserts: Vec<Insert>,
) -> Vec<Committed> {
    let written = match file {
        Some((identity, path)) => identity.check(path),
        None => Ok(()),
    }
    .and_then(|()| try_write_batch(connection, &inserts).map_err(StoreError::from));
    match written {
        Ok(ids) => inserts
            .into_iter()
            .zip(ids)
            .map(|(insert, id)| Committed {
                insert,
                outcome: id.map_or(Outcome::Duplicate, Outcome::Stored),
            })
            .collect(),
        Err(error) => {
            log::warn!("storing {} message(s) failed: {error}", inserts.len());
            inserts
                .into_iter()
                .map(|insert| Committed {
                    insert,
                    outcome: Outcome::Failed(error.clone()),
                })
                .collect()
        }
    }
}

fn try_write_batch(
    connection: &mut SqlConnection,
    inserts: &[Insert],
) -> Result<Vec<Option<i64>>, rusqlite::Error> {
    let transaction =
        connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut ids = Vec::with_capacity(inserts.len());
    {
        // Looking the offset up first, rather than `ON CONFLICT DO NOTHING`, keeps ids gapless:
        // an upsert that does nothing still advances the AUTOINCREMENT sequence.
        let mut known =
            transaction.prepare_cached("SELECT 1 FROM messages WHERE client_offset = ?1")?;
        // OR ROLLBACK: a failure undoes the whole batch anyway (nothing of it is acked), and
        // it spares SQLite a statement journal per row.
        let mut add = transaction.prepare_cached(
            "INSERT OR ROLLBACK INTO messages (content, client_offset) VALUES (?1, ?2)",
        )?;
        for insert in inserts {
            if let Some(offset) = &insert.client_offset {
                if known.exists(params![offset])? {
                    ids.push(None);
                    continue;
                }
            }
            ids.push(Some(
                add.insert(params![insert.content, insert.client_offset])?,
            ));
        }
    }
    transaction.commit()?;
    Ok(ids)
}

/// Messages with `id > after`, in id order, within `limit`.
pub fn read_page(
    connection: &SqlConnection,
    after: i64,
    limit: PageLimit,
) -> Result<Vec<Row>, rusqlite::Error> {
    let mut statement = connection
        .prepare_cached("SELECT id, content FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2")?;
    let rows = statement.query_map(params![after, limit.rows as i64], |row| {
        Ok(Row {
            id: row.get(0)?,
            content: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
        })
    })?;
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
            [Outcome::Stored(1), Outcome::Stored(2), Outcome::Duplicate]
        );
        let second = write_batch(
            &mut connection,
            None,
            vec![insert("c", Some("c-1")), insert("d", None)],
        );
        let outcomes: Vec<_> = second.iter().map(|c| c.outcome.clone()).collect();
        assert_eq!(outcomes, [Outcome::Duplicate, Outcome::Stored(3)]);
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
}
