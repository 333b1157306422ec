//! The chat page as people use it (issue 12), in headless Chromium on the real binary:
//! history on a million-row database, names, times, presence, typing, attention, own
//! messages through failure and retry, the offline shell, 320 px and the dark theme
//! (tests/js/browser_page.mjs). And the database upgrade from the tutorial's schema.

use std::path::{Path, PathBuf};

use crate::common::{Gateway, TutorialServer, js_script, node, repo, scratch_dir};
use crate::delivery::parse_pairs;

/// Rows in the seeded database: the measure of a chat used for years.
const SEEDED_ROWS: i64 = 1_000_000;

/// A database as the tutorial's server leaves it: its schema, short messages, no names or
/// times (so opening it also upgrades a million rows in place).
fn seed_tutorial_database(db: &Path, rows: i64) {
    let connection = rusqlite::Connection::open(db).unwrap();
    connection
        .execute_batch(&format!(
            "CREATE TABLE messages (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                client_offset TEXT UNIQUE,
                content TEXT
            );
            WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
            INSERT INTO messages (content, client_offset) SELECT 'message ' || i, 'seed-' || i FROM n;"
        ))
        .unwrap();
}

fn columns(db: &Path) -> (Vec<String>, i64) {
    let connection = rusqlite::Connection::open(db).unwrap();
    let names = connection
        .prepare("SELECT name FROM pragma_table_info('messages') ORDER BY cid")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let version = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    (names, version)
}

#[test]
#[ignore = "needs Chromium and tests/js node_modules: run `make test`"]
fn history_opens_at_once_on_a_million_rows_and_pages_both_ways() {
    let dir = scratch_dir("page-history");
    let db = dir.join("chat.db");
    seed_tutorial_database(&db, SEEDED_ROWS);
    let gateway = Gateway::start_at(dir, &db, &["--max-message-rate", "0"]);
    gateway.run_client(
        &node(),
        &[
            &js_script("browser_page.mjs"),
            &gateway.url,
            "history",
            &SEEDED_ROWS.to_string(),
        ],
    );
    assert!(gateway.stop().success());
    let (names, version) = columns(&db);
    assert_eq!(
        names,
        ["id", "client_offset", "content", "name", "created_at"]
    );
    assert_eq!(version, 1);
}

#[test]
#[ignore = "needs Chromium and tests/js node_modules: run `make test`"]
fn names_times_presence_typing_attention_and_retries() {
    // The test stops the gateway (SIGSTOP) for about 15 s: pings far apart keep that from
    // being a heartbeat timeout on a busy machine.
    let gateway = Gateway::start("page-people", &["--ping-interval", "60000"]);
    let db = gateway.dir.join("chat.db");
    let output = gateway.run_client(
        &node(),
        &[
            &js_script("browser_page.mjs"),
            &gateway.url,
            "people",
            &gateway.pid().to_string(),
        ],
    );
    assert!(gateway.stop().success());
    // Stored with the name and the server's time; the retried message once.
    let connection = rusqlite::Connection::open(&db).unwrap();
    let (name, time): (Option<String>, Option<i64>) = connection
        .query_row(
            "SELECT name, created_at FROM messages WHERE content LIKE 'hello %'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(name.as_deref(), Some("Ana"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let time = time.expect("a time");
    assert!((now - 600_000..=now).contains(&time), "{time} vs {now}");
    let stuck = output
        .split("(stuck ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the retried message's token in the output");
    let copies: i64 = connection
        .query_row(
            "SELECT count(*) FROM messages WHERE content = ?1",
            [format!("stuck {stuck}")],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(copies, 1);
}

#[test]
#[ignore = "needs Chromium and tests/js node_modules: run `make test`"]
fn offline_shell_phone_width_and_dark_theme() {
    let gateway = Gateway::start("page-shell", &[]);
    let shots = std::env::var_os("EMBERCHAT_SCREENSHOTS")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                repo().join(dir)
            }
        })
        .unwrap_or_else(|| scratch_dir("page-shots"));
    gateway.run_client(
        &node(),
        &[
            &js_script("browser_page.mjs"),
            &gateway.url,
            "shell",
            &shots.display().to_string(),
        ],
    );
    for shot in ["phone.png", "desktop.png", "dark.png", "offline.png"] {
        assert!(shots.join(shot).exists(), "no {shot}");
    }
    assert!(gateway.stop().success());
}

/// A `chat.db` the tutorial's Node server wrote opens in emberchat, is upgraded in place
/// (the rows untouched, served with their ids), and stays usable by the tutorial's server.
#[test]
#[ignore = "needs the tutorial's Node server (bench/node) and tests/js: run `make test`"]
fn a_database_written_by_the_tutorial_server_is_upgraded_in_place() {
    let dir = scratch_dir("tutorial-upgrade");
    let db = dir.join("chat.db");
    let send = js_script("send.mjs");
    TutorialServer::start(&db).send(20, "tutorial");
    assert_eq!(
        columns(&db),
        (
            vec!["id".into(), "client_offset".into(), "content".into()],
            0
        )
    );

    let gateway = Gateway::start_at(dir.clone(), &db, &[]);
    assert!(gateway.wait_log("upgrading the database to schema version 1"));
    let history = gateway.run_client(&node(), &[&js_script("collect.mjs"), &gateway.url]);
    let expected: Vec<(i64, String)> = (0..20).map(|i| (i + 1, format!("tutorial {i}"))).collect();
    let history = parse_pairs(history.lines().last().unwrap_or("[]"));
    assert_eq!(history, expected);
    gateway.run_client(&node(), &[&send, &gateway.url, "5", "ember"]);
    assert!(gateway.stop().success());

    assert_eq!(
        columns(&db),
        (
            vec![
                "id".into(),
                "client_offset".into(),
                "content".into(),
                "name".into(),
                "created_at".into()
            ],
            1
        )
    );
    let connection = rusqlite::Connection::open(&db).unwrap();
    let stamped: Vec<(i64, bool)> = connection
        .prepare("SELECT id, created_at IS NOT NULL FROM messages ORDER BY id")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<(i64, bool)> = (1..=25).map(|id| (id, id > 20)).collect();
    assert_eq!(stamped, expected, "old rows untouched, new ones stamped");
    drop(connection);

    // The tutorial's server still runs on the upgraded file.
    TutorialServer::start(&db).send(1, "after");
    let connection = rusqlite::Connection::open(&db).unwrap();
    let last: (i64, String) = connection
        .query_row(
            "SELECT id, content FROM messages ORDER BY id DESC LIMIT 1",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(last, (26, "after 0".into()));
}
