//! Keeping a running chat's data (issue 15): `emberchat backup` of a live database under a
//! write load, `emberchat export` of a database the tutorial's own server wrote, and
//! retention by count and by age under a running chat.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tungstenite::Message;

use crate::common::{
    Gateway, TutorialServer, message_id, metric, read_text, scratch_dir, socketio_ws, wait_metric,
};

const BIN: &str = env!("CARGO_BIN_EXE_emberchat");

/// Runs `emberchat ARGS`; returns (success, stdout, stderr).
fn emberchat(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .env_remove("EMBERCHAT_DB")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_backup_under_a_write_load_holds_every_message_acked_before_it() {
    let gateway = Gateway::start("backup-load", &["--max-message-rate", "0"]);
    let db = gateway.dir.join("chat.db");
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // One writer, each message acked before the next: message n is stored with id n.
    let writer = {
        let (mut ws, _) = socketio_ws(&gateway, "{}");
        let (acked, stop) = (acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                ws.send(Message::text(format!(
                    r#"42{n}["chat message","message {n}","o-{n}"]"#
                )))
                .unwrap();
                let ack = format!("43{n}[]");
                while read_text(&mut ws) != ack {}
                acked.store(n, Ordering::Relaxed);
            }
        })
    };
    while acked.load(Ordering::Relaxed) < 300 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let before = acked.load(Ordering::Relaxed);
    let copy = gateway.dir.join("backup.db");
    let (ok, _, stderr) = emberchat(&[
        "backup",
        "--db",
        db.to_str().unwrap(),
        copy.to_str().unwrap(),
    ]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("integrity check ok"), "{stderr}");
    // The gateway went on storing meanwhile.
    let at_backup = acked.load(Ordering::Relaxed);
    while acked.load(Ordering::Relaxed) < at_backup + 50 {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();

    let connection = rusqlite::Connection::open(&copy).unwrap();
    let check: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let contents: Vec<String> = connection
        .prepare("SELECT content FROM messages WHERE id <= ?1 ORDER BY id")
        .unwrap()
        .query_map([before as i64], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected: Vec<String> = (1..=before).map(|n| format!("message {n}")).collect();
    assert_eq!(
        contents, expected,
        "every message acked before the backup began"
    );
    // A backup never overwrites.
    let (ok, _, stderr) = emberchat(&[
        "backup",
        "--db",
        db.to_str().unwrap(),
        copy.to_str().unwrap(),
    ]);
    assert!(!ok && stderr.contains("never overwrites"), "{stderr}");
    assert!(gateway.stop().success());
}

#[test]
#[ignore = "needs the tutorial's Node server (bench/node) and tests/js: run `make test`"]
fn export_of_a_database_the_tutorial_server_wrote() {
    let dir = scratch_dir("export-tutorial");
    let db = dir.join("chat.db");
    TutorialServer::start(&db).send(12, "tutorial");
    let (ok, stdout, stderr) = emberchat(&["export", "--db", db.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("12 messages"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 12);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            format!(
                r#"{{"id":{},"client_offset":"tutorial-{i}","content":"tutorial {i}"}}"#,
                i + 1
            )
        );
    }
    // Read only: the tutorial's schema is still the tutorial's.
    let connection = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    let columns: i64 = connection
        .query_row(
            "SELECT count(*) FROM pragma_table_info('messages')",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!((version, columns), (0, 3));
}

#[test]
fn backup_and_export_refuse_what_is_not_a_chat() {
    let dir = scratch_dir("copies-foreign");
    let foreign = dir.join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE messages (id INTEGER PRIMARY KEY, body BLOB)")
        .unwrap();
    let copy = dir.join("copy.db");
    for args in [
        vec!["export", "--db", foreign.to_str().unwrap()],
        vec![
            "backup",
            "--db",
            foreign.to_str().unwrap(),
            copy.to_str().unwrap(),
        ],
    ] {
        let (ok, stdout, stderr) = emberchat(&args);
        assert!(!ok, "{args:?}");
        assert!(stdout.is_empty());
        assert!(
            stderr.contains("expected id, client_offset, content"),
            "{args:?}: {stderr}"
        );
    }
    assert!(!copy.exists());
    let missing = dir.join("missing.db");
    let (ok, _, stderr) = emberchat(&["export", "--db", missing.to_str().unwrap()]);
    assert!(!ok && stderr.contains("unable to open"), "{stderr}");
    assert!(!missing.exists());
}

/// The ids a new client with `serverOffset: 0` is replayed, once `count` have come.
fn replayed_ids(gateway: &Gateway, count: usize) -> Vec<u64> {
    let (mut ws, _) = socketio_ws(gateway, r#"{"serverOffset":0}"#);
    (0..count)
        .map(|_| message_id(&read_text(&mut ws)).expect("a chat message"))
        .collect()
}

#[test]
fn retention_by_count_under_a_running_chat() {
    let gateway = Gateway::start(
        "retention-count",
        &["--keep-messages", "100", "--max-message-rate", "0"],
    );
    let (mut ws, _) = socketio_ws(&gateway, "{}");
    for n in 1..=250 {
        ws.send(Message::text(format!(r#"42{n}["chat message","m{n}"]"#)))
            .unwrap();
        let ack = format!("43{n}[]");
        while read_text(&mut ws) != ack {}
    }
    wait_metric(&gateway, "emberchat_messages_pruned_total", 150);
    assert_eq!(metric(&gateway, "emberchat_oldest_message_id"), 151);
    // What remains, in order, once: a replay from the start gets 151..250.
    assert_eq!(replayed_ids(&gateway, 100), (151..=250).collect::<Vec<_>>());
    // And the chat goes on: the next id is 251, never one given before.
    ws.send(Message::text(r#"42251["chat message","m251"]"#))
        .unwrap();
    let broadcast = read_text(&mut ws);
    assert_eq!(message_id(&broadcast), Some(251), "{broadcast}");
    wait_metric(&gateway, "emberchat_messages_pruned_total", 151);
    assert!(gateway.stop().success());
}

#[test]
fn retention_by_age_keeps_recent_and_undated_messages() {
    let dir = scratch_dir("retention-age");
    let db = dir.join("chat.db");
    let connection = rusqlite::Connection::open(&db).unwrap();
    connection
        .execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             client_offset TEXT UNIQUE, content TEXT, name TEXT, created_at INTEGER);
             PRAGMA user_version = 1;",
        )
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let day = 24 * 60 * 60 * 1000;
    // 1-5 without a time (from before the upgrade), 6-15 ten days old, 16-20 an hour old.
    let times = std::iter::repeat_n(None, 5)
        .chain(std::iter::repeat_n(Some(now - 10 * day), 10))
        .chain(std::iter::repeat_n(Some(now - day / 24), 5));
    for time in times {
        connection
            .execute(
                "INSERT INTO messages (content, created_at) VALUES ('m', ?1)",
                [time],
            )
            .unwrap();
    }
    drop(connection);
    let gateway = Gateway::start_at(dir, &db, &["--keep-days", "7"]);
    wait_metric(&gateway, "emberchat_messages_pruned_total", 10);
    let expected: Vec<u64> = (1..=5).chain(16..=20).collect();
    assert_eq!(replayed_ids(&gateway, 10), expected);
    assert!(gateway.stop().success());
}
