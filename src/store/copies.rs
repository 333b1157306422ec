//! Copies of a live database, taken while the gateway runs: `emberchat backup` (SQLite's
//! online backup API, a consistent snapshot) and `emberchat export` (JSON Lines). Both read
//! the file without changing it, and refuse one whose schema is not a chat's.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::types::ValueRef;
use rusqlite::{Connection as SqlConnection, OpenFlags, params};

use super::error::StoreError;
use super::schema::{Schema, recognize};

/// Why a backup or an export failed.
#[derive(Debug)]
pub enum CopyError {
    /// The database could not be opened or read, or is not a chat's.
    Source { path: PathBuf, error: StoreError },
    /// The backup's file exists already: never overwritten.
    Exists(PathBuf),
    /// The backup could not be written, or did not pass its check.
    Target { path: PathBuf, error: StoreError },
    /// The export could not be written (a closed pipe, a full disk).
    Output(std::io::Error),
}

impl fmt::Display for CopyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyError::Source { path, error } => write!(f, "{}: {error}", path.display()),
            CopyError::Exists(path) => {
                write!(
                    f,
                    "{} exists; a backup never overwrites a file",
                    path.display()
                )
            }
            CopyError::Target { path, error } => write!(f, "{}: {error}", path.display()),
            CopyError::Output(error) => write!(f, "writing the export failed: {error}"),
        }
    }
}

impl std::error::Error for CopyError {}

/// What a backup holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    pub messages: u64,
    pub last_id: i64,
    pub bytes: u64,
}

/// Opens the database to read, without creating it, and checks that it is a chat's.
fn open_source(db: &Path) -> Result<(SqlConnection, Schema), CopyError> {
    let at = |error: StoreError| CopyError::Source {
        path: db.to_owned(),
        error,
    };
    // Read-only and without creating: a mistyped path must not leave an empty database.
    let connection = SqlConnection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| at(e.into()))?;
    connection
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| at(e.into()))?;
    let schema = recognize(&connection).map_err(at)?;
    Ok((connection, schema))
}

/// Copies `db` to the new file `out` with SQLite's online backup API, in one step: one read
/// transaction, so the copy is the database as of one moment, and a gateway writing in WAL
/// mode meanwhile is not held up (a reader does not block the writer). The copy is then
/// checked with `PRAGMA integrity_check`.
pub fn backup(db: &Path, out: &Path) -> Result<BackupReport, CopyError> {
    let (source, _) = open_source(db)?;
    if out.exists() {
        return Err(CopyError::Exists(out.to_owned()));
    }
    let at = |error: StoreError| CopyError::Target {
        path: out.to_owned(),
        error,
    };
    let mut target = SqlConnection::open(out).map_err(|e| at(e.into()))?;
    {
        let copy = rusqlite::backup::Backup::new(&source, &mut target).map_err(|e| at(e.into()))?;
        // -1: every page in one step, inside one read transaction on the source.
        copy.step(-1).map_err(|e| at(e.into()))?;
    }
    let check: String = target
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(|e| at(e.into()))?;
    if check != "ok" {
        return Err(at(StoreError::Sqlite(format!(
            "the copy failed its integrity check: {check}"
        ))));
    }
    let (messages, last_id): (i64, i64) = target
        .query_row(
            "SELECT count(*), coalesce(max(id), 0) FROM messages",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .map_err(|e| at(e.into()))?;
    drop(target);
    let bytes = std::fs::metadata(out).map_or(0, |m| m.len());
    Ok(BackupReport {
        messages: messages as u64,
        last_id,
        bytes,
    })
}

/// Rows read per step of an export: its memory, whatever the table's length.
const EXPORT_PAGE: i64 = 1000;

/// Writes every message of `db` to `out` as JSON Lines, in id order:
/// `{"id":…,"client_offset":…,"content":…}` plus `"name"` and `"created_at"` when the
/// database has those columns (null where a row has no value). One read transaction, so the
/// export is the database as of one moment. Returns the number of messages written.
pub fn export(db: &Path, out: &mut dyn Write) -> Result<u64, CopyError> {
    let (connection, schema) = open_source(db)?;
    let at = |error: rusqlite::Error| CopyError::Source {
        path: db.to_owned(),
        error: error.into(),
    };
    connection.execute_batch("BEGIN").map_err(at)?;
    let columns = match schema {
        Schema::Seed => "id, client_offset, content",
        Schema::Current => "id, client_offset, content, name, created_at",
    };
    let mut statement = connection
        .prepare(&format!(
            "SELECT {columns} FROM messages WHERE id > ?1 ORDER BY id LIMIT ?2"
        ))
        .map_err(at)?;
    let mut after = 0;
    let mut written = 0;
    let mut line = String::new();
    loop {
        let mut rows = statement.query(params![after, EXPORT_PAGE]).map_err(at)?;
        let mut read = 0;
        while let Some(row) = rows.next().map_err(at)? {
            read += 1;
            after = row.get(0).map_err(at)?;
            line.clear();
            line.push_str("{\"id\":");
            line.push_str(itoa::Buffer::new().format(after));
            for (i, key) in ["client_offset", "content", "name", "created_at"]
                .iter()
                .enumerate()
                .take(if schema == Schema::Seed { 2 } else { 4 })
            {
                line.push_str(",\"");
                line.push_str(key);
                line.push_str("\":");
                write_value(&mut line, row.get_ref(i + 1).map_err(at)?);
            }
            line.push_str("}\n");
            out.write_all(line.as_bytes()).map_err(CopyError::Output)?;
            written += 1;
        }
        if read < EXPORT_PAGE {
            break;
        }
    }
    out.flush().map_err(CopyError::Output)?;
    Ok(written)
}

/// A column's value as JSON: text as a string (invalid UTF-8 replaced), numbers as they are,
/// NULL as null. A blob, which the chat never writes, as null too.
fn write_value(out: &mut String, value: ValueRef<'_>) {
    match value {
        ValueRef::Text(text) => crate::json::write_string(out, &String::from_utf8_lossy(text)),
        ValueRef::Integer(n) => out.push_str(itoa::Buffer::new().format(n)),
        ValueRef::Real(x) if x.is_finite() => out.push_str(&x.to_string()),
        ValueRef::Real(_) | ValueRef::Null | ValueRef::Blob(_) => out.push_str("null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::model::StoreConfig;
    use crate::store::schema::open_connection;
    use crate::store::testing::temp_db;

    #[test]
    fn exports_both_schemas_without_changing_them() {
        let seed = temp_db("export-seed");
        let connection = SqlConnection::open(&seed).unwrap();
        connection
            .execute_batch(
                "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, \
                 client_offset TEXT UNIQUE, content TEXT);
                 INSERT INTO messages (content, client_offset) VALUES ('a \"q\"', 'c-1'), ('b', NULL);",
            )
            .unwrap();
        drop(connection);
        let mut out = Vec::new();
        assert_eq!(export(&seed, &mut out).unwrap(), 2);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":1,\"client_offset\":\"c-1\",\"content\":\"a \\\"q\\\"\"}\n\
             {\"id\":2,\"client_offset\":null,\"content\":\"b\"}\n"
        );
        // Still the tutorial's schema: an export upgrades nothing.
        let after = SqlConnection::open(&seed).unwrap();
        assert_eq!(recognize(&after).unwrap(), Schema::Seed);

        let current = temp_db("export-current");
        let connection = open_connection(&StoreConfig::new(&current)).unwrap();
        connection
            .execute_batch(
                "INSERT INTO messages (content, name, created_at) VALUES ('hi', 'Ana', 1733000000000);",
            )
            .unwrap();
        drop(connection);
        let mut out = Vec::new();
        export(&current, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":1,\"client_offset\":null,\"content\":\"hi\",\"name\":\"Ana\",\
             \"created_at\":1733000000000}\n"
        );
    }

    #[test]
    fn refuses_what_is_not_a_chat_and_never_overwrites() {
        let foreign = temp_db("copy-foreign");
        SqlConnection::open(&foreign)
            .unwrap()
            .execute_batch("CREATE TABLE messages (id INTEGER PRIMARY KEY, body BLOB)")
            .unwrap();
        let error = export(&foreign, &mut Vec::new()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("expected id, client_offset, content"),
            "{error}"
        );
        let missing = foreign.with_file_name("missing.db");
        assert!(export(&missing, &mut Vec::new()).is_err());
        assert!(!missing.exists(), "an export must not create the database");

        let db = temp_db("copy-backup");
        drop(open_connection(&StoreConfig::new(&db)).unwrap());
        let out = db.with_file_name("copy.db");
        let report = backup(&db, &out).unwrap();
        assert_eq!(report.messages, 0);
        assert!(matches!(backup(&db, &out), Err(CopyError::Exists(_))));
        assert!(matches!(
            backup(&foreign, &foreign.with_file_name("x.db")),
            Err(CopyError::Source { .. })
        ));
    }
}
