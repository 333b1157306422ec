//! Delivery: every acknowledged message reaches every client once, in order, including the ones
//! a client missed while away (replay from its `serverOffset`). Duplicate client offsets are
//! stored once, a page reload shows the history once, a backlog of 100,000 rows is replayed
//! with live traffic mixed in, long messages are replayed in paced parts, nothing acked
//! is lost to a SIGKILL, and the official client gets every message exactly once across a
//! shutdown that catches broadcasts still queued (polling and WebSocket).

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tungstenite::Message;

use crate::common::{
    Gateway, js_script, message_id, metric, node, python, read_text, repo, scratch_dir, socketio_ws,
};

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn replay_after_a_full_disconnect() {
    let gateway = Gateway::start("replay", &[]);
    gateway.run_client(&node(), &[&js_script("replay.mjs"), &gateway.url]);
}

#[test]
#[ignore = "needs the tests/py virtualenv: run `make test`"]
fn python_replay_and_duplicate_offsets() {
    let gateway = Gateway::start("replay-py", &[]);
    let script = repo().join("tests/py/replay.py");
    gateway.run_client(&python(), &[&script.display().to_string(), &gateway.url]);
}

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn duplicate_client_offsets_are_acked_but_stored_once() {
    let gateway = Gateway::start("duplicates", &[]);
    gateway.run_client(&node(), &[&js_script("duplicates.mjs"), &gateway.url]);
    // Eight sends under four client offsets (see the script): four rows.
    let db = rusqlite::Connection::open(gateway.dir.join("chat.db")).unwrap();
    let rows: i64 = db
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 4, "rows stored for four distinct client offsets");
}

#[test]
#[ignore = "needs Chromium and tests/js node_modules: run `make test`"]
fn page_reload_shows_the_history() {
    let gateway = Gateway::start("browser-reload", &[]);
    gateway.run_client(&node(), &[&js_script("browser_reload.mjs"), &gateway.url]);
}

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn backlog_of_100k_rows_with_live_messages_during_replay() {
    const TOTAL: i64 = 100_000;
    let dir = scratch_dir("backlog");
    let db_path = dir.join("chat.db");
    let mut db = rusqlite::Connection::open(&db_path).unwrap();
    db.execute_batch(
        "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, \
         client_offset TEXT UNIQUE, content TEXT)",
    )
    .unwrap();
    let transaction = db.transaction().unwrap();
    {
        let mut insert = transaction
            .prepare("INSERT INTO messages (content) VALUES (?1)")
            .unwrap();
        for id in 1..=TOTAL {
            insert.execute([format!("backlog-{id}")]).unwrap();
        }
    }
    transaction.commit().unwrap();
    drop(db);
    let gateway = Gateway::start_at(dir, &db_path, &[]);
    gateway.run_client(
        &node(),
        &[&js_script("backlog.mjs"), &gateway.url, &TOTAL.to_string()],
    );
}

#[test]
fn replay_of_long_messages_stays_within_the_queue_limit() {
    let gateway = Gateway::start("long-replay", &["--max-message-rate", "0"]);
    let (mut writer, _) = socketio_ws(&gateway, "{}");
    let body = "y".repeat(8000);
    for n in 0..600u64 {
        writer
            .send(Message::text(format!(
                "42{n}[\"chat message\",\"{n:04}{body}\",\"long-{n}\"]"
            )))
            .unwrap();
        loop {
            if read_text(&mut writer).starts_with(&format!("43{n}[")) {
                break;
            }
        }
    }
    // 4.8 MB of history, far past the 1 MiB a client may have queued: the replay is paced
    // in parts, and the client gets all of it without being dropped.
    let (mut late, _) = socketio_ws(&gateway, "{\"serverOffset\":0}");
    for id in 1..=600 {
        let text = read_text(&mut late);
        assert_eq!(
            message_id(&text),
            Some(id),
            "{}",
            &text[..text.len().min(80)]
        );
    }
    assert_eq!(metric(&gateway, "emberchat_queue_overflows_total"), 0);
}

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn sigkill_mid_burst_loses_no_acked_message() {
    let dir = scratch_dir("sigkill");
    let db = dir.join("chat.db");
    let acked_file = dir.join("acked.txt");
    // The burst pipelines thousands of sends from one client: no rate limit here.
    let gateway = Gateway::start_at(dir.clone(), &db, &["--max-message-rate", "0"]);
    let mut burst = Command::new(node())
        .args([&js_script("burst.mjs"), &gateway.url])
        .arg(&acked_file)
        .stdout(Stdio::null())
        .spawn()
        .expect("start burst.mjs");
    // Kill the gateway once a good part of the burst is acked, while more is in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let acked = std::fs::read_to_string(&acked_file).unwrap_or_default();
        if acked.lines().count() >= 500 {
            break;
        }
        assert!(Instant::now() < deadline, "the burst did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
    gateway.kill();
    assert!(burst.wait().unwrap().success(), "burst.mjs failed");
    let acked: Vec<String> = std::fs::read_to_string(&acked_file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();

    let restarted = Gateway::start_at(dir, &db, &[]);
    let output = restarted.run_client(&node(), &[&js_script("collect.mjs"), &restarted.url]);
    let last_line = output
        .lines()
        .rev()
        .find(|l| l.starts_with('['))
        .expect("JSON line");
    let received = parse_pairs(last_line);
    let mut count: HashMap<&str, usize> = HashMap::new();
    for (_, text) in &received {
        *count.entry(text.as_str()).or_default() += 1;
    }
    for text in &acked {
        assert_eq!(
            count.get(text.as_str()),
            Some(&1),
            "acked {text} replayed {:?} times",
            count.get(text.as_str())
        );
    }
    assert!(
        count.values().all(|&n| n == 1),
        "a message was replayed twice"
    );
    assert!(
        received.windows(2).all(|w| w[0].0 < w[1].0),
        "ids not increasing"
    );
    println!(
        "{} acked before SIGKILL, {} stored",
        acked.len(),
        received.len()
    );
}

/// Parses `[[id,"text"],...]` as printed by collect.mjs (texts are plain ASCII here).
pub(crate) fn parse_pairs(line: &str) -> Vec<(i64, String)> {
    let inner = line.trim().trim_start_matches('[').trim_end_matches(']');
    inner
        .split("],[")
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let pair = pair.trim_matches(|c| c == '[' || c == ']');
            let (id, text) = pair.split_once(',').expect("id,text");
            (id.parse().expect("id"), text.trim_matches('"').to_owned())
        })
        .collect()
}

/// An official client whose output lines arrive on a channel.
struct Watched {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Watched {
    fn spawn(mut command: Command) -> Watched {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the client");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Watched { child, lines }
    }

    fn wait_line(&self, line: &str) {
        loop {
            let got = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no {line:?} from the client"));
            if got == line {
                return;
            }
        }
    }
}

/// Sends `chat message`s numbered `range`, 100 at a time, each batch acked before the next.
fn send_acked(ws: &mut crate::common::Ws, range: std::ops::RangeInclusive<u64>) {
    let numbers: Vec<u64> = range.collect();
    for batch in numbers.chunks(100) {
        for n in batch {
            let packet = format!("42{n}[\"chat message\",\"close-{n}\",\"close-{n}\"]");
            ws.send(Message::text(packet)).unwrap();
        }
        let mut acked = 0;
        while acked < batch.len() {
            if read_text(ws).starts_with("43") {
                acked += 1;
            }
        }
    }
}

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn exactly_once_across_a_shutdown_with_broadcasts_still_queued() {
    let dir = scratch_dir("across-close");
    let db = dir.join("chat.db");
    let first = Gateway::start_at(dir.clone(), &db, &["--max-message-rate", "0"]);
    let addr = first.addr.clone();
    let clients: Vec<Watched> = ["polling", "websocket"]
        .into_iter()
        .map(|transport| {
            let mut command = Command::new(node());
            command.args([&js_script("across_close.mjs"), &first.url, transport]);
            Watched::spawn(command)
        })
        .collect();
    for client in &clients {
        client.wait_line("connected");
    }
    // Three times: messages, then a burst the clients cannot have read yet when the gateway
    // stops, so that the close reaches them with broadcasts still queued; then the gateway
    // starts again on the same address and database, and the clients come back.
    let mut gateway = first;
    for round in 0..3u64 {
        let (mut writer, _) = socketio_ws(&gateway, "{}");
        let first = round * 1000 + 1;
        send_acked(&mut writer, first..=first + 499);
        for n in first + 500..first + 1000 {
            let packet = format!("42[\"chat message\",\"close-{n}\",\"close-{n}\"]");
            writer.send(Message::text(packet)).unwrap();
        }
        assert!(gateway.stop().success());
        gateway = Gateway::start_at(
            dir.clone(),
            &db,
            &["--max-message-rate", "0", "--listen", addr.as_str()],
        );
        for client in &clients {
            client.wait_line("connected");
        }
    }
    let (mut writer, _) = socketio_ws(&gateway, "{}");
    send_acked(&mut writer, 3001..=3500);
    let stored: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT max(id) FROM messages", [], |r| r.get(0))
        .unwrap();
    for mut client in clients {
        let mut stdin = client.child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, format!("{stored}\n").as_bytes()).unwrap();
        let status = client.child.wait().unwrap();
        assert!(
            status.success(),
            "a client got a message twice, or missed one"
        );
    }
}
