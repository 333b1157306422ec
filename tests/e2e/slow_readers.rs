//! Slow readers: a client that reads slower than the chat broadcasts is switched to catching
//! up from the database and gets everything, in order, exactly once, without being dropped;
//! one that stops reading is dropped by the heartbeat and recovers what it missed; memory
//! stays bounded meanwhile.

use std::io::ErrorKind;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::Message;

use crate::common::{
    Gateway, POLLING, Ws, connect_polling, get, message_id, metric, post, read_text, socketio_ws,
    status_kib,
};

/// Reads broadcasts until `count` have come, checking that their ids are 1, 2, 3 … in order,
/// none missing or repeated; `pause` is slept after each (a slow reader). Engine.IO pings are
/// answered. Returns the time it took.
fn read_all_in_order(ws: &mut Ws, count: u64, pause: Duration) -> Duration {
    let start = Instant::now();
    let mut next = 1;
    while next <= count {
        let text = read_text(ws);
        if let Some(id) = message_id(&text) {
            assert_eq!(id, next, "ids in order, none missing or repeated");
            next += 1;
            if !pause.is_zero() {
                thread::sleep(pause);
            }
        }
    }
    start.elapsed()
}

/// The next text message if one is there within the socket's (short) read timeout; pings are
/// answered.
fn try_read_text(ws: &mut Ws) -> Option<String> {
    loop {
        match ws.read() {
            Ok(Message::Text(text)) if text.as_str() == "2" => ws.send(Message::text("3")).unwrap(),
            Ok(Message::Text(text)) => return Some(text.as_str().to_owned()),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(error))
                if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                return None;
            }
            Err(error) => panic!("read: {error}"),
        }
    }
}

/// Answers pings, expecting nothing else, until told to stop; panics if the gateway drops
/// the connection meanwhile.
fn stay_connected(mut ws: Ws, stop: &mpsc::Receiver<()>) {
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    while stop.try_recv() == Err(mpsc::TryRecvError::Empty) {
        assert_eq!(try_read_text(&mut ws), None, "nothing more");
    }
}

/// The `pid` of a CONNECT reply.
fn pid_of(reply: &str) -> String {
    let start = reply.find("\"pid\":\"").expect("a pid") + 7;
    reply[start..start + reply[start..].find('"').unwrap()].to_owned()
}

#[test]
fn a_burst_reaches_fast_and_slow_readers_exactly_once_and_the_stalled_one_recovers() {
    const MESSAGES: u64 = 20_000;
    let gateway = Gateway::start(
        "burst-slow-readers",
        // A slow reader sees a ping only after what the kernel's socket buffers hold before
        // it (megabytes here, seconds at its pace): socket.io's 20 s to answer, and pings
        // every 5 s so that the stalled reader goes within half a minute.
        &[
            "--max-message-rate",
            "0",
            "--ping-interval",
            "5000",
            "--ping-timeout",
            "20000",
        ],
    );
    // Joins first and never reads again.
    let (stalled, stalled_reply) = socketio_ws(&gateway, "{}");
    let mut readers = Vec::new();
    let (report, results) = mpsc::channel();
    // Seven read at full speed, two about ten times slower (1 ms per message, where the
    // sender manages about 7 a millisecond here).
    for n in 0..9 {
        let pause = if n < 7 {
            Duration::ZERO
        } else {
            Duration::from_millis(1)
        };
        let (mut ws, _) = socketio_ws(&gateway, "{}");
        let report = report.clone();
        let (done, stop) = mpsc::channel::<()>();
        readers.push((
            done,
            thread::spawn(move || {
                let took = read_all_in_order(&mut ws, MESSAGES, pause);
                report.send((pause, took)).unwrap();
                stay_connected(ws, &stop);
            }),
        ));
    }
    let (mut sender, _) = socketio_ws(&gateway, "{}");
    sender
        .get_mut()
        .set_read_timeout(Some(Duration::from_millis(1)))
        .unwrap();
    let baseline = status_kib(&gateway, "VmRSS");
    std::fs::write(format!("/proc/{}/clear_refs", gateway.pid()), "5").unwrap();

    // 20,000 messages of 1 KB without acks; the sender reads its own echoes as it goes.
    let body = "x".repeat(1000);
    let start = Instant::now();
    let mut echoed = 0;
    let take = |echoed: &mut u64, text: String| {
        if let Some(id) = message_id(&text) {
            *echoed += 1;
            assert_eq!(id, *echoed, "the sender's echoes in order, once each");
        }
    };
    for n in 1..=MESSAGES {
        let packet = format!("42[\"chat message\",\"{n:05}{body}\"]");
        sender.send(Message::text(packet)).unwrap();
        if n % 100 == 0 {
            while let Some(text) = try_read_text(&mut sender) {
                take(&mut echoed, text);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while echoed < MESSAGES {
        assert!(Instant::now() < deadline, "echoes stopped at {echoed}");
        if let Some(text) = try_read_text(&mut sender) {
            take(&mut echoed, text);
        }
    }
    let sent_in = start.elapsed();
    let (stop_sender, stop) = mpsc::channel();
    let sender = thread::spawn(move || stay_connected(sender, &stop));
    let mut fastest = Duration::MAX;
    let mut slowest = Duration::ZERO;
    for _ in 0..readers.len() {
        let (pause, took) = results
            .recv_timeout(Duration::from_secs(60))
            .expect("every reader got every message");
        if pause.is_zero() {
            fastest = fastest.min(took);
        } else {
            slowest = slowest.max(took);
        }
    }
    let growth = status_kib(&gateway, "VmHWM").saturating_sub(baseline);
    eprintln!(
        "sent and echoed in {sent_in:?}; fastest reader {fastest:?}, slowest {slowest:?}; \
         RSS growth {growth} KiB; catch-ups {}",
        metric(&gateway, "emberchat_catch_ups_total")
    );
    // Shared broadcast bytes, the slow readers' catch-up pages and the stalled reader's half
    // queue: about 3 MB measured.
    assert!(growth < 8 * 1024, "RSS grew by {growth} KiB");
    assert!(metric(&gateway, "emberchat_catch_ups_total") >= 2);
    assert_eq!(metric(&gateway, "emberchat_queue_overflows_total"), 0);

    // The stalled reader answered no ping: it alone is dropped, and recovers everything.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(&gateway, "emberchat_ping_timeouts_total") == 0 {
        assert!(
            Instant::now() < deadline,
            "the stalled reader was not dropped"
        );
        thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(metric(&gateway, "emberchat_ping_timeouts_total"), 1);
    assert_eq!(metric(&gateway, "emberchat_connected_clients"), 10);
    drop(stalled);
    let auth = format!(
        "{{\"pid\":\"{}\",\"offset\":\"0\"}}",
        pid_of(&stalled_reply)
    );
    let (mut back, reply) = socketio_ws(&gateway, &auth);
    assert!(
        reply.contains(&pid_of(&stalled_reply)),
        "recovered: {reply}"
    );
    read_all_in_order(&mut back, MESSAGES, Duration::ZERO);
    for (stop, reader) in readers.into_iter().chain([(stop_sender, sender)]) {
        stop.send(()).unwrap();
        reader.join().expect("no reader was disconnected");
    }
}

#[test]
fn a_polling_client_that_stops_reading_catches_up_when_it_reads_again() {
    let args = ["--max-queue-packets", "50", "--max-message-rate", "0"];
    let gateway = Gateway::start("slow-polling", &args);
    let stalled = connect_polling(&gateway);
    let stalled_path = format!("{POLLING}&sid={stalled}");
    let (mut writer, _) = socketio_ws(&gateway, "{}");
    // The writer sends one message at a time and gets every broadcast and ack, unaffected by
    // the stalled reader.
    for n in 1..=100 {
        let packet = format!("42{n}[\"chat message\",\"m{n}\"]");
        writer.send(Message::text(packet)).unwrap();
        let broadcast = read_text(&mut writer);
        let expected = format!("42[\"chat message\",\"m{n}\",{n},");
        assert!(broadcast.starts_with(&expected), "{broadcast}");
        assert_eq!(read_text(&mut writer), format!("43{n}[]"));
    }
    // The stalled client's queue took broadcasts up to half its 50 packets, then it fell
    // behind; it was not dropped, and polling again it gets all 100 in order, once each.
    let mut next = 1;
    while next <= 100 {
        let reply = get(&gateway, &stalled_path);
        assert_eq!(reply.status, 200);
        for packet in reply.text().split('\u{1e}') {
            if packet == "2" {
                assert_eq!(post(&gateway, &stalled_path, "3").text(), "ok");
            } else if let Some(id) = message_id(packet) {
                assert_eq!(id, next, "{packet}");
                next += 1;
            } else {
                panic!("unexpected {packet}");
            }
        }
    }
    assert_eq!(metric(&gateway, "emberchat_catch_ups_total"), 1);
    assert_eq!(metric(&gateway, "emberchat_queue_overflows_total"), 0);
}

#[test]
fn a_stalled_reader_under_a_flood_is_dropped_by_the_heartbeat_and_memory_stays_bounded() {
    const MESSAGES: u64 = 20_000;
    const RECEIVERS: usize = 3;
    let gateway = Gateway::start(
        "stalled-flood",
        &[
            "--max-message-rate",
            "0",
            "--ping-interval",
            "1000",
            "--ping-timeout",
            "2000",
        ],
    );
    // Connected, then never read again; the second one keeps sending WebSocket pings, so its
    // connection stays busy (and owes pongs) while it reads nothing.
    let (stalled, _) = socketio_ws(&gateway, "{}");
    let (mut pinging, _) = socketio_ws(&gateway, "{}");
    pinging
        .get_mut()
        .set_write_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let pinger = thread::spawn(move || {
        while pinging.send(Message::Ping(vec![7; 100].into())).is_ok() {
            thread::sleep(Duration::from_millis(5));
        }
    });
    let mut receivers = Vec::new();
    for _ in 0..RECEIVERS {
        let (mut ws, _) = socketio_ws(&gateway, "{}");
        receivers.push(thread::spawn(move || {
            read_all_in_order(&mut ws, MESSAGES, Duration::ZERO)
        }));
    }
    let (mut sender, _) = socketio_ws(&gateway, "{}");
    let baseline = status_kib(&gateway, "VmRSS");
    std::fs::write(format!("/proc/{}/clear_refs", gateway.pid()), "5").unwrap();

    let body = "x".repeat(1000);
    for batch in 0..MESSAGES / 100 {
        for n in batch * 100..batch * 100 + 100 {
            let packet = format!("42{n}[\"chat message\",\"{n:05}{body}\",\"flood-{n}\"]");
            sender.send(Message::text(packet)).unwrap();
        }
        let mut acked = 0;
        while acked < 100 {
            let text = read_text(&mut sender);
            if text.starts_with("43") {
                assert!(text.ends_with("[]"), "{text}");
                acked += 1;
            }
        }
    }
    for receiver in receivers {
        receiver.join().expect("every receiver got every message");
    }
    let growth = status_kib(&gateway, "VmHWM").saturating_sub(baseline);
    assert!(growth < 16 * 1024, "RSS grew by {growth} KiB");
    // The two that read nothing are dropped by the heartbeat (the sender too, later, as it
    // stops reading now), never for their queues.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&gateway, "emberchat_ping_timeouts_total") < 2 {
        assert!(
            Instant::now() < deadline,
            "the stalled readers were not dropped"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(metric(&gateway, "emberchat_queue_overflows_total"), 0);
    pinger.join().unwrap();
    drop(stalled);
}
