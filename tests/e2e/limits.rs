//! Limits: every configured bound holds, and what goes past one is refused cleanly while other
//! clients are unaffected. Message and payload sizes (WebSocket, polling, fragmented
//! messages), the number of clients and of HTTP connections, memory under attack and after
//! abandoned handshakes, the message rate, and request heads. Slow readers are in
//! `slow_readers`.

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

use crate::common::{
    self, Gateway, POLLING, connect_polling, get, http, message_id, metric, open_ws, post,
    read_text, socketio_ws, status_kib, wait_metric,
};

#[test]
fn websocket_message_over_max_payload_is_closed_with_1009() {
    let gateway = Gateway::start(
        "ws-max-payload",
        &["--max-payload", "2000", "--max-message-bytes", "1000"],
    );
    let mut ws = open_ws(&gateway, "");
    assert!(read_text(&mut ws).starts_with("0{\"sid\":\""));
    ws.send(Message::text("40")).unwrap();
    assert!(read_text(&mut ws).starts_with("40{\"sid\":\""));
    ws.send(Message::text(format!(
        "42[\"chat message\",\"{}\"]",
        "x".repeat(3000)
    )))
    .unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(frame.code, CloseCode::Size);
                break;
            }
            Ok(Message::Close(None)) => panic!("closed without the 1009 code"),
            Ok(_) => continue,
            Err(error) => panic!("no close frame: {error}"),
        }
    }
    assert_eq!(http(&gateway.addr, "GET", "/", &[], b"").status, 200);
}

#[test]
fn oversize_polling_body_is_refused_with_413() {
    let gateway = Gateway::start(
        "http-413",
        &["--max-payload", "1000", "--max-message-bytes", "500"],
    );
    let sid = connect_polling(&gateway);
    let response = post(
        &gateway,
        &format!("{POLLING}&sid={sid}"),
        &format!("4{}", "x".repeat(2000)),
    );
    assert_eq!(response.status, 413);
    assert!(gateway.wait_log("over 1000 bytes"));
}

#[test]
fn fragment_floods_are_bounded_by_max_payload() {
    let gateway = Gateway::start("fragment-flood", &["--max-payload", "100000"]);
    let mut ws = common::open_ws(&gateway, "");
    assert!(read_text(&mut ws).starts_with("0{"));
    // One text message in 1000-byte fragments, masked with a zero key, far past maxPayload.
    let fragment = |first: bool| {
        let mut frame = vec![if first { 0x01 } else { 0x00 }, 0x80 | 126, 0x03, 0xe8];
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(&[b'a'; 1000]);
        frame
    };
    let stream = ws.get_mut();
    for n in 0..300 {
        // The gateway may hang up before all of them are written.
        if stream.write_all(&fragment(n == 0)).is_err() {
            break;
        }
    }
    let close = loop {
        match ws.read() {
            Ok(Message::Close(frame)) => break frame,
            Ok(_) => {}
            Err(error) => panic!("no close frame: {error}"),
        }
    };
    let code = close.map(|frame| u16::from(frame.code));
    assert_eq!(code, Some(1009), "message too big");
    assert!(gateway.wait_log("over the size limit"));
    assert_eq!(http(&gateway.addr, "GET", "/", &[], b"").status, 200);
}

#[test]
fn handshakes_beyond_max_clients_get_503() {
    let gateway = Gateway::start("max-clients", &["--max-clients", "2"]);
    let _first = connect_polling(&gateway);
    let _second = connect_polling(&gateway);
    let third = get(&gateway, POLLING);
    assert_eq!(third.status, 503);
    assert!(
        third.text().contains("full (2 clients)"),
        "{}",
        third.text()
    );
    assert!(gateway.wait_log("--max-clients"));
}

/// Raises this process's open-file limit (and so the gateway's, which inherits it) to what
/// a thousand clients on each side need.
fn raise_file_limit(wanted: u64) {
    emberchat::fdlimit::raise_to(wanted).unwrap();
}

#[test]
fn a_thousand_clients_connect_at_once() {
    const THREADS: usize = 50;
    const PER_THREAD: usize = 20;
    raise_file_limit(8192);
    let gateway = Arc::new(Gateway::start("thousand-clients", &[]));
    let start = Arc::new(Barrier::new(THREADS));
    let connected = Arc::new(Barrier::new(THREADS + 1));
    let sent = Arc::new(Barrier::new(THREADS + 1));
    let mut threads = Vec::new();
    for _ in 0..THREADS {
        let (gateway, start, connected, sent) = (
            gateway.clone(),
            start.clone(),
            connected.clone(),
            sent.clone(),
        );
        threads.push(thread::spawn(move || {
            start.wait();
            let mut clients: Vec<_> = (0..PER_THREAD)
                .map(|_| socketio_ws(&gateway, "{}").0)
                .collect();
            connected.wait();
            sent.wait();
            for ws in &mut clients {
                let text = read_text(ws);
                assert!(
                    text.starts_with("42[\"chat message\",\"hello all\""),
                    "{text}"
                );
            }
        }));
    }
    connected.wait();
    assert_eq!(
        metric(&gateway, "emberchat_connected_clients"),
        (THREADS * PER_THREAD) as u64
    );
    let (mut sender, _) = socketio_ws(&gateway, "{}");
    sender
        .send(Message::text("421[\"chat message\",\"hello all\",\"h-1\"]"))
        .unwrap();
    sent.wait();
    for thread in threads {
        thread.join().expect("every client got the message");
    }
}

#[test]
fn abandoned_polling_handshakes_are_reaped_and_memory_returns() {
    let gateway = Gateway::start(
        "abandoned-handshakes",
        &["--ping-interval", "300", "--ping-timeout", "200"],
    );
    let handshake_500 = || {
        for _ in 0..500 {
            let open = http(&gateway.addr, "GET", POLLING, &[], b"");
            assert_eq!(open.status, 200);
            assert!(open.text().starts_with("0{\"sid\":"));
        }
    };
    // A first round warms the allocator; the second must leave nothing behind.
    handshake_500();
    wait_metric(&gateway, "emberchat_sessions", 0);
    let baseline = status_kib(&gateway, "VmRSS");
    handshake_500();
    assert!(metric(&gateway, "emberchat_sessions") > 0);
    // Nobody polls or answers a ping: pingInterval + pingTimeout later they are gone.
    wait_metric(&gateway, "emberchat_sessions", 0);
    let after = status_kib(&gateway, "VmRSS");
    assert!(
        after <= baseline + 512,
        "RSS {after} KiB after the handshakes were reaped, {baseline} KiB before"
    );
}

#[test]
fn messages_beyond_the_rate_limit_get_error_acks() {
    let gateway = Gateway::start("ws-rate", &["--max-message-rate", "2"]);
    let (mut ws, _) = common::socketio_ws(&gateway, "{}");
    // A burst of 10: the budget holds 4 (twice the rate), the rest are refused.
    for n in 1..=10 {
        ws.send(Message::text(format!("42{n}[\"chat message\",\"r{n}\"]")))
            .unwrap();
    }
    let (mut stored, mut refused) = (0, 0);
    while stored + refused < 10 {
        let text = read_text(&mut ws);
        if text.starts_with("43") {
            if text.ends_with("[]") {
                stored += 1;
            } else {
                assert!(text.contains("too many messages"), "{text}");
                refused += 1;
            }
        }
    }
    assert!((4..=5).contains(&stored), "{stored} stored");
    // The budget refills at the rate.
    std::thread::sleep(Duration::from_millis(1100));
    ws.send(Message::text("4299[\"chat message\",\"later\"]"))
        .unwrap();
    loop {
        let text = read_text(&mut ws);
        if text.starts_with("4399") {
            assert_eq!(text, "4399[]");
            break;
        }
    }
    let metrics = http(&gateway.addr, "GET", "/metrics", &[], b"").text();
    assert!(
        metrics.contains(&format!("emberchat_rate_limited_total {refused}")),
        "{metrics}"
    );
}

#[test]
fn request_heads_are_bounded_in_size_and_time() {
    let gateway = Gateway::start(
        "http-head-limits",
        &["--max-header-bytes", "8192", "--header-timeout", "300"],
    );
    let filler = "a".repeat(6000);
    assert_eq!(
        http(&gateway.addr, "GET", "/", &[("X-Filler", &filler)], b"").status,
        200
    );
    let filler = "a".repeat(10_000);
    let too_long = http(&gateway.addr, "GET", "/", &[("X-Filler", &filler)], b"");
    assert_eq!(too_long.status, 431);

    // Slowloris: a head that never ends is cut off after --header-timeout.
    let mut stream = std::net::TcpStream::connect(&gateway.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    let mut rest = Vec::new();
    // The gateway closes the connection (with or without a 408 first).
    let _ = stream.read_to_end(&mut rest);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "connection closed after {waited:?}"
    );
    assert!(rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"));
}

#[test]
fn a_numeric_client_offset_is_held_to_the_offset_limit() {
    let gateway = Gateway::start("numeric-offset", &[]);
    let (mut ws, _) = socketio_ws(&gateway, "{}");
    // 990,000 digits were once stored as a client offset, in a UNIQUE index.
    let digits = "9".repeat(990_000);
    ws.send(Message::text(format!(
        "421[\"chat message\",\"x\",{digits}]"
    )))
    .unwrap();
    ws.send(Message::text("422[\"chat message\",\"y\",12345]"))
        .unwrap();
    let mut acks = Vec::new();
    while acks.len() < 2 {
        let text = read_text(&mut ws);
        if text.starts_with("43") {
            acks.push(text);
        }
    }
    assert_eq!(
        acks,
        ["431[{\"error\":\"client offset too long\"}]", "432[]"]
    );
    assert_eq!(metric(&gateway, "emberchat_messages_stored_total"), 1);
}

/// A binary event's header announcing `count` attachments.
fn binary_header(count: usize) -> String {
    let placeholders: Vec<String> = (0..count)
        .map(|n| format!("{{\"_placeholder\":true,\"num\":{n}}}"))
        .collect();
    format!("45{count}-[\"upload\",{}]", placeholders.join(","))
}

/// A joined client that announces 10 attachments and sends up to 9 `chunk`s of them (the
/// server may close it on the way); returns its socket.
fn oversized_upload(gateway: &Gateway, chunk: &[u8]) -> common::Ws {
    let (mut ws, _) = socketio_ws(gateway, "{}");
    ws.send(Message::text(binary_header(10))).unwrap();
    for _ in 0..9 {
        if ws.send(Message::binary(chunk.to_vec())).is_err() {
            break;
        }
    }
    ws
}

/// Whether the server closes `ws` (a close frame or the end of the stream) within 10 s.
fn closed_soon(ws: &mut common::Ws) -> bool {
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => return true,
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn unfinished_attachments_cannot_pin_memory() {
    let gateway = Gateway::start("attachments", &[]);
    let rss_before = status_kib(&gateway, "VmRSS");
    let chunk = vec![7u8; 999_000];

    // Before CONNECT: the announcement alone closes the session, even without --token.
    let mut early = open_ws(&gateway, "");
    read_text(&mut early);
    early.send(Message::text(binary_header(10))).unwrap();
    let _ = early.send(Message::binary(chunk.clone()));
    assert!(
        closed_soon(&mut early),
        "attachments before CONNECT were taken"
    );

    // Joined: 10 announced, 999 KB each; past --max-payload (1 MB) in all, the session ends.
    let mut attackers = Vec::new();
    for _ in 0..10 {
        attackers.push(oversized_upload(&gateway, &chunk));
    }
    for ws in &mut attackers {
        assert!(closed_soon(ws), "a packet over the payload limit was held");
    }
    // Was +87 MB for these ten (all nine chunks held each until the connect timeout).
    let growth_kib = status_kib(&gateway, "VmHWM").saturating_sub(rss_before);
    // About 3.5 MB now: one chunk per session at a time, and the frames being read.
    assert!(growth_kib < 8 * 1024, "peak RSS grew by {growth_kib} KiB");
}

#[test]
fn a_packet_whose_attachments_stop_coming_is_dropped() {
    let gateway = Gateway::start("attachment-deadline", &[]);
    let (mut ws, _) = socketio_ws(&gateway, "{}");
    ws.send(Message::text(binary_header(2))).unwrap();
    ws.send(Message::binary(vec![1u8; 1000])).unwrap();
    // The second never comes: the session is closed at the 10 s deadline, not held on.
    ws.get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        match ws.read() {
            Ok(Message::Text(text)) if text.as_str() == "2" => {
                ws.send(Message::text("3")).unwrap();
            }
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(8) && waited < Duration::from_secs(19),
        "closed after {waited:?}"
    );
    assert!(gateway.wait_log("attachments still missing"));
}

/// A stopped gateway's database, filled with `rows` messages of `size` bytes.
fn database_of(name: &str, rows: usize, size: usize) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = common::scratch_dir(name);
    let db = dir.join("chat.db");
    // The gateway makes the schema; the rows go in directly, which is much faster.
    assert_eq!(
        Gateway::start_at(dir.clone(), &db, &[]).stop().code(),
        Some(0)
    );
    let mut connection = rusqlite::Connection::open(&db).unwrap();
    let transaction = connection.transaction().unwrap();
    let content = "m".repeat(size);
    for _ in 0..rows {
        transaction
            .execute("INSERT INTO messages (content) VALUES (?1)", [&content])
            .unwrap();
    }
    transaction.commit().unwrap();
    (dir, db)
}

#[test]
fn clients_that_do_not_read_their_replay_cannot_pin_memory() {
    // 2,000 messages of 16 KB: 32 MB of history. Ten clients that asked for all of it and
    // read nothing once held 310 MB (1,024-row pages, and the next one read ahead).
    let (dir, db) = database_of("replay-unread", 2000, 16 * 1024);
    let gateway = Gateway::start_at(dir, &db, &[]);
    let rss_before = status_kib(&gateway, "VmRSS");
    let mut idle = Vec::new();
    for _ in 0..10 {
        let (ws, _) = socketio_ws(&gateway, "{\"serverOffset\":0}");
        idle.push(ws);
    }
    // Past the stall time, every replay has let go of its pages.
    thread::sleep(Duration::from_secs(3));
    wait_metric(&gateway, "emberchat_replay_memory_reserved_bytes", 0);
    assert_eq!(metric(&gateway, "emberchat_replays_in_progress"), 10);
    let growth_kib = status_kib(&gateway, "VmHWM").saturating_sub(rss_before);
    // About 4.8 MB now: each client's queued part and the page it held until it stalled.
    assert!(growth_kib < 12 * 1024, "peak RSS grew by {growth_kib} KiB");

    // When a client reads at last, it gets everything, in order, once.
    let ws = &mut idle[0];
    let mut next = 1;
    while next <= 2000 {
        let text = read_text(ws);
        if let Some(id) = message_id(&text) {
            assert_eq!(id, next, "replay out of order or repeated");
            next += 1;
        }
    }
}

/// Starts a polling POST announcing `length` bytes and sends `sent` of them; returns the
/// connection, left waiting for the rest.
fn unfinished_post(
    gateway: &Gateway,
    sid: &str,
    length: usize,
    sent: usize,
) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(&gateway.addr).unwrap();
    let head = format!(
        "POST {POLLING}&sid={sid} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\n\
         Content-Length: {length}\r\n\r\n",
        gateway.addr
    );
    stream.write_all(head.as_bytes()).unwrap();
    let mut body = b"4".to_vec();
    body.resize(sent, b'x');
    stream.write_all(&body).unwrap();
    stream
}

/// The status code of the response on `stream`, waiting up to `wait`.
fn status_within(stream: &mut std::net::TcpStream, wait: Duration) -> Option<u16> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[test]
fn a_slow_polling_post_ends_with_its_session() {
    // Pings every 300 ms: a client that never GETs misses the pong and its session ends.
    // The inbound budget is raised past the 50 bodies, so that only their sessions end them.
    let gateway = Gateway::start(
        "slow-post",
        &[
            "--ping-interval",
            "300",
            "--ping-timeout",
            "200",
            "--inbound-memory",
            "134217728",
        ],
    );
    let rss_before = status_kib(&gateway, "VmRSS");
    let mut posts: Vec<_> = (0..50)
        .map(|_| {
            let sid = connect_polling(&gateway);
            unfinished_post(&gateway, &sid, 1_000_000, 500_000)
        })
        .collect();
    // Each POST is answered (its session is gone) instead of holding 500 KB on.
    for stream in &mut posts {
        assert_eq!(status_within(stream, Duration::from_secs(10)), Some(400));
    }
    wait_metric(&gateway, "emberchat_sessions", 0);
    // Was 54 MB still held with no session left.
    let held_kib = status_kib(&gateway, "VmRSS").saturating_sub(rss_before);
    assert!(held_kib < 8 * 1024, "{held_kib} KiB still held");
}

#[test]
fn a_polling_body_must_arrive_within_ten_seconds() {
    let gateway = Gateway::start("post-deadline", &[]);
    let sid = connect_polling(&gateway);
    let mut stream = unfinished_post(&gateway, &sid, 1000, 10);
    let started = std::time::Instant::now();
    assert_eq!(
        status_within(&mut stream, Duration::from_secs(20)),
        Some(408)
    );
    let waited = started.elapsed();
    assert!(
        waited > Duration::from_secs(8) && waited < Duration::from_secs(15),
        "answered after {waited:?}"
    );
    // The session is closed too.
    assert_eq!(get(&gateway, &format!("{POLLING}&sid={sid}")).status, 400);
}

#[test]
fn leaving_and_rejoining_does_not_refill_the_rate_budget() {
    let gateway = Gateway::start("rate-rejoin", &[]);
    let (mut ws, _) = socketio_ws(&gateway, "{}");
    let started = std::time::Instant::now();
    let mut stored = 0;
    // Ten bursts of 40 with a leave and a rejoin between them: all 400 were once taken.
    for burst in 0..10 {
        for n in 0..40 {
            let id = burst * 40 + n + 1;
            ws.send(Message::text(format!("42{id}[\"chat message\",\"b{id}\"]")))
                .unwrap();
        }
        let mut acks = 0;
        while acks < 40 {
            let text = read_text(&mut ws);
            if text.starts_with("43") {
                acks += 1;
                stored += usize::from(text.ends_with("[]"));
            }
        }
        ws.send(Message::text("41")).unwrap();
        ws.send(Message::text("40")).unwrap();
        while !read_text(&mut ws).starts_with("40{") {}
    }
    // A second session from the same address shares the budget too.
    let (mut other, _) = socketio_ws(&gateway, "{}");
    other
        .send(Message::text("42999[\"chat message\",\"other\"]"))
        .unwrap();
    loop {
        let text = read_text(&mut other);
        if text.starts_with("43999") {
            stored += usize::from(text.ends_with("[]"));
            break;
        }
    }
    // The default budget: bursts of 40, then 20 a second, for the address as a whole.
    let allowed = 40 + (started.elapsed().as_secs_f64() * 20.0).ceil() as usize;
    assert!(stored <= allowed, "{stored} stored, {allowed} allowed");
}

#[test]
fn the_three_memory_attacks_at_once_stay_bounded() {
    // Ten attackers, each with a replay it never reads, a packet whose attachments pass the
    // payload limit, and a polling POST that stops halfway: 450 MB once (310 + 87 + 54).
    let (dir, db) = database_of("combined-attack", 2000, 16 * 1024);
    let gateway = Gateway::start_at(dir, &db, &[]);
    let rss_before = status_kib(&gateway, "VmRSS");
    let chunk = vec![7u8; 999_000];
    let mut held = Vec::new();
    let mut posts = Vec::new();
    for _ in 0..10 {
        let (unread, _) = socketio_ws(&gateway, "{\"serverOffset\":0}");
        held.push(unread);
        held.push(oversized_upload(&gateway, &chunk));
        let sid = connect_polling(&gateway);
        posts.push(unfinished_post(&gateway, &sid, 1_000_000, 500_000));
    }
    thread::sleep(Duration::from_secs(3));
    let growth_kib = status_kib(&gateway, "VmHWM").saturating_sub(rss_before);
    // About 17 MB now: the POST buffers until their deadline, the rest as in the tests above.
    assert!(growth_kib < 32 * 1024, "peak RSS grew by {growth_kib} KiB");
    // The slow POSTs end at their deadline; the gateway still serves everyone else.
    for stream in &mut posts {
        assert_eq!(status_within(stream, Duration::from_secs(15)), Some(408));
    }
    let (mut fresh, _) = socketio_ws(&gateway, "{}");
    fresh
        .send(Message::text("421[\"chat message\",\"still here\"]"))
        .unwrap();
    while !read_text(&mut fresh).starts_with("431[]") {}
}

#[test]
fn half_sent_messages_share_one_inbound_budget() {
    let gateway = Gateway::start("inbound-budget", &["--inbound-memory", "3000000"]);
    // Clients that each start a 900 KB binary frame and send 800 KB of it: once the budget
    // (3 MB) is spent, the next is disconnected with 1013, "try again later".
    let mut clients = Vec::new();
    let mut refused = 0;
    for _ in 0..6 {
        let (mut ws, _) = socketio_ws(&gateway, "{}");
        let mut frame = vec![0x82, 0x80 | 127];
        frame.extend_from_slice(&900_000u64.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0]); // a zero mask leaves the payload as it is
        frame.resize(frame.len() + 800_000, b'x');
        ws.get_mut().write_all(&frame).unwrap();
        thread::sleep(Duration::from_millis(200));
        ws.get_ref()
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        match ws.read() {
            Ok(Message::Close(Some(close))) => {
                assert_eq!(close.code, CloseCode::Again);
                refused += 1;
            }
            Err(tungstenite::Error::Io(_)) => clients.push(ws),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!((2..=5).contains(&refused), "{refused} of 6 refused");
    let held = metric(&gateway, "emberchat_inbound_memory_bytes");
    assert!(held <= 3_000_000, "{held} bytes held");
    // Everyone else is served as usual.
    let (mut chatter, _) = socketio_ws(&gateway, "{}");
    chatter
        .send(Message::text("421[\"chat message\",\"hello\"]"))
        .unwrap();
    while !read_text(&mut chatter).starts_with("431[]") {}
    // Gone clients give their share back.
    drop(clients);
    wait_metric(&gateway, "emberchat_inbound_memory_bytes", 0);

    // Polling bodies draw on the same budget: POSTs stopped at 700 KB, until one gets 503.
    let mut posts = Vec::new();
    let busy = (0..8).find(|_| {
        let sid = connect_polling(&gateway);
        let mut post = unfinished_post(&gateway, &sid, 1_000_000, 700_000);
        let status = status_within(&mut post, Duration::from_millis(500));
        posts.push(post);
        status == Some(503)
    });
    assert!(matches!(busy, Some(2..=5)), "503 at POST {busy:?}");
}

#[test]
fn http_connections_are_capped_and_upgraded_websockets_do_not_count() {
    let gateway = Gateway::start("http-connections", &["--max-http-connections", "3"]);
    // Three WebSockets: once upgraded, they hold no HTTP connection.
    let websockets: Vec<_> = (0..3).map(|_| socketio_ws(&gateway, "{}")).collect();
    assert_eq!(get(&gateway, "/healthz").status, 200);
    // Three connections that have sent nothing fill the cap; a fourth waits unanswered.
    let idle: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(&gateway.addr).unwrap())
        .collect();
    thread::sleep(Duration::from_millis(200));
    let mut waiting = std::net::TcpStream::connect(&gateway.addr).unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    assert_eq!(
        status_within(&mut waiting, Duration::from_millis(500)),
        None
    );
    // One idle connection goes: the waiting one is served.
    drop(idle);
    assert_eq!(
        status_within(&mut waiting, Duration::from_secs(5)),
        Some(200)
    );
    assert!(gateway.wait_log("HTTP connections open (--max-http-connections)"));
    drop(websockets);
}
