//! Helpers for the store's unit tests.

use std::path::PathBuf;

use super::model::Insert;

/// A fresh database path in a directory of its own.
pub fn temp_db(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("emberchat-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("chat.db")
}

pub fn insert(content: &str, offset: Option<&str>) -> Insert {
    Insert {
        content: content.into(),
        client_offset: offset.map(Into::into),
        name: None,
    }
}

/// The first column of every row `sql` returns.
pub fn column<T: rusqlite::types::FromSql>(connection: &rusqlite::Connection, sql: &str) -> Vec<T> {
    connection
        .prepare(sql)
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}
