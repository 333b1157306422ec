//! Opening the database: pragmas, the schema, and refusing files that are not ours.

use rusqlite::Connection as SqlConnection;

use super::error::{OpenError, StoreError};
use super::model::StoreConfig;

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_offset TEXT UNIQUE,
    content TEXT
)";

/// Opens (creating if needed) the database for writing, with the chat's pragmas and schema.
pub fn open_connection(config: &StoreConfig) -> Result<SqlConnection, OpenError> {
    let at = |error: StoreError| OpenError {
        path: config.path.clone(),
        error,
    };
    let connection = SqlConnection::open(&config.path).map_err(|e| at(e.into()))?;
    // SQLite opens a file it may not write read-only without a word; every message would
    // then fail. Better to refuse to start, where the operator sees it.
    if connection
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|e| at(e.into()))?
    {
        return Err(at(StoreError::ReadOnly));
    }
    connection
        .busy_timeout(std::time::Duration::from_millis(config.busy_timeout_ms))
        .map_err(|e| at(e.into()))?;
    let mode: String = connection
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(|e| at(e.into()))?;
    if !mode.eq_ignore_ascii_case("wal") {
        log::warn!("{}: journal mode is {mode}, not WAL", config.path.display());
    }
    connection
        .execute_batch(&format!(
            // A 256 KiB page cache (SQLite's default is 2 MB): a replay streams the table
            // through it, and the gateway's memory should not grow with the backlog.
            "PRAGMA synchronous={};\nPRAGMA cache_size=-256;\n{SCHEMA};",
            config.synchronous.pragma()
        ))
        .map_err(|e| at(e.into()))?;
    check_schema(&connection).map_err(at)?;
    Ok(connection)
}

/// Refuses a database whose `messages` table is not ours (another application's file).
fn check_schema(connection: &SqlConnection) -> Result<(), StoreError> {
    let columns: Vec<String> = connection
        .prepare("SELECT name FROM pragma_table_info('messages') ORDER BY cid")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if columns != ["id", "client_offset", "content"] {
        return Err(StoreError::ForeignSchema { columns });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::temp_db;

    #[test]
    fn refuses_a_foreign_database() {
        let path = temp_db("foreign");
        let other = SqlConnection::open(&path).unwrap();
        other
            .execute_batch("CREATE TABLE messages (id INTEGER PRIMARY KEY, body BLOB)")
            .unwrap();
        drop(other);
        let error = open_connection(&StoreConfig::new(&path)).unwrap_err();
        assert_eq!(
            error.error,
            StoreError::ForeignSchema {
                columns: vec!["id".into(), "body".into()]
            }
        );
        assert!(
            error
                .to_string()
                .ends_with("expected id, client_offset, content"),
            "{error}"
        );
        let garbage = temp_db("garbage");
        std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
        let error = open_connection(&StoreConfig::new(&garbage)).unwrap_err();
        assert_eq!(error.error, StoreError::NotADatabase);
    }
}
