//! Opening the database: pragmas, the schema and its upgrade, and refusing files that are
//! not ours.
//!
//! Schema versions, kept in `PRAGMA user_version`:
//! - 0: the Socket.IO tutorial's `messages(id, client_offset, content)`, as its Node server
//!   and the first emberchat made it;
//! - 1: plus the nullable columns `name` (the sender's display name) and `created_at` (Unix
//!   milliseconds when stored). Rows from before the upgrade keep NULL in both.

use rusqlite::Connection as SqlConnection;

use super::error::{OpenError, StoreError};
use super::model::StoreConfig;

/// The tutorial's table, exactly as its server creates it.
const SEED_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    client_offset TEXT UNIQUE,
    content TEXT
)";

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

const SEED_COLUMNS: [&str; 3] = ["id", "client_offset", "content"];
const COLUMNS: [&str; 5] = ["id", "client_offset", "content", "name", "created_at"];

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
    // auto_vacuum takes effect only on a file not yet written (so before WAL mode): a new
    // database gives the pages of deleted messages back to the file system (retention); an
    // existing one reuses them but keeps its size.
    connection
        .execute_batch("PRAGMA auto_vacuum=INCREMENTAL;")
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
            "PRAGMA synchronous={};\nPRAGMA cache_size=-256;\n{SEED_SCHEMA};",
            config.synchronous.pragma()
        ))
        .map_err(|e| at(e.into()))?;
    upgrade_schema(&connection).map_err(at)?;
    give_back_freed_memory();
    Ok(connection)
}

/// Opening and upgrading a database allocates and frees about 100 KiB that glibc would keep
/// for the process's lifetime: returned, an idle gateway stays as small as before the upgrade
/// existed.
fn give_back_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator's own heaps.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Brings a tutorial-made or older database up to [`SCHEMA_VERSION`], in one transaction:
/// `ADD COLUMN` only changes the table's definition, so no row is rewritten and a
/// million-row file upgrades in milliseconds. Refuses a `messages` table that is not ours
/// (another application's file) and a version this build does not know.
fn upgrade_schema(connection: &SqlConnection) -> Result<(), StoreError> {
    // IMMEDIATE: another process upgrading the same file at once waits, then sees version 1.
    connection.execute_batch("BEGIN IMMEDIATE")?;
    let upgraded = try_upgrade(connection);
    let end = if upgraded.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = connection.execute_batch(end);
    upgraded?;
    ended.map_err(StoreError::from)
}

fn try_upgrade(connection: &SqlConnection) -> Result<(), StoreError> {
    match recognize(connection)? {
        Schema::Seed => {
            log::info!("upgrading the database to schema version {SCHEMA_VERSION}");
            connection.execute_batch(&format!(
                "ALTER TABLE messages ADD COLUMN name TEXT;
                 ALTER TABLE messages ADD COLUMN created_at INTEGER;
                 PRAGMA user_version = {SCHEMA_VERSION};"
            ))?;
            Ok(())
        }
        Schema::Current => Ok(()),
    }
}

/// A schema this build knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// The tutorial's three columns (version 0).
    Seed,
    /// With `name` and `created_at` (version 1).
    Current,
}

/// Which known schema the database has, without changing it; a `messages` table of another
/// shape, or a version this build does not know, is an error naming what was found.
pub fn recognize(connection: &SqlConnection) -> Result<Schema, StoreError> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let columns: Vec<String> = connection
        .prepare("SELECT name FROM pragma_table_info('messages') ORDER BY cid")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    match version {
        0 if columns == SEED_COLUMNS => Ok(Schema::Seed),
        SCHEMA_VERSION if columns == COLUMNS => Ok(Schema::Current),
        0 | SCHEMA_VERSION => Err(StoreError::ForeignSchema { columns }),
        found => Err(StoreError::UnknownVersion {
            found,
            known: SCHEMA_VERSION,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{column, temp_db};

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
                .contains("expected id, client_offset, content"),
            "{error}"
        );
        let garbage = temp_db("garbage");
        std::fs::write(&garbage, vec![b'x'; 4096]).unwrap();
        let error = open_connection(&StoreConfig::new(&garbage)).unwrap_err();
        assert_eq!(error.error, StoreError::NotADatabase);
    }

    fn columns(connection: &SqlConnection) -> Vec<String> {
        column(
            connection,
            "SELECT name FROM pragma_table_info('messages') ORDER BY cid",
        )
    }

    #[test]
    fn upgrades_a_tutorial_database_in_place() {
        let path = temp_db("upgrade");
        let seed = SqlConnection::open(&path).unwrap();
        seed.execute_batch(SEED_SCHEMA).unwrap();
        seed.execute_batch(
            "INSERT INTO messages (content, client_offset) VALUES ('old', 'c-1'), ('older', NULL)",
        )
        .unwrap();
        drop(seed);
        let connection = open_connection(&StoreConfig::new(&path)).unwrap();
        assert_eq!(columns(&connection), COLUMNS);
        let version: i64 = connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, SCHEMA_VERSION);
        let rows: Vec<(i64, String, Option<String>, Option<i64>)> = connection
            .prepare("SELECT id, content, name, created_at FROM messages ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "old".into(), None, None),
                (2, "older".into(), None, None)
            ]
        );
        drop(connection);
        // Opening again changes nothing.
        let again = open_connection(&StoreConfig::new(&path)).unwrap();
        assert_eq!(columns(&again), COLUMNS);
    }

    #[test]
    fn a_new_database_gives_deleted_pages_back() {
        let path = temp_db("auto-vacuum");
        let connection = open_connection(&StoreConfig::new(&path)).unwrap();
        let mode: i64 = connection
            .query_row("PRAGMA auto_vacuum", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, 2, "incremental");
    }

    #[test]
    fn refuses_an_unknown_version_and_leaves_it_alone() {
        let path = temp_db("newer");
        let newer = SqlConnection::open(&path).unwrap();
        newer
            .execute_batch(&format!("{SEED_SCHEMA}; PRAGMA user_version = 7;"))
            .unwrap();
        drop(newer);
        let error = open_connection(&StoreConfig::new(&path)).unwrap_err();
        assert_eq!(
            error.error,
            StoreError::UnknownVersion {
                found: 7,
                known: SCHEMA_VERSION
            }
        );
        let after = SqlConnection::open(&path).unwrap();
        assert_eq!(columns(&after), SEED_COLUMNS);
        // Version 1 with the seed's columns is not ours either.
        after.execute_batch("PRAGMA user_version = 1").unwrap();
        drop(after);
        let error = open_connection(&StoreConfig::new(&path)).unwrap_err();
        assert!(matches!(error.error, StoreError::ForeignSchema { .. }));
    }
}
