//! Heavy faults against the real binary: a reader that stalls under a flood, abandoned
//! handshakes, a thousand clients at once, and the inputs of socket.io's security history.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::{Gateway, http, read_text, socketio_ws};
use tungstenite::Message;

const POLLING: &str = "/socket.io/?EIO=4&transport=polling";

/// A field of the gateway's /proc/PID/status, in KiB.
fn status_kib(gateway: &Gateway, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gateway.pid())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc status"))
}

fn metric(gateway: &Gateway, name: &str) -> u64 {
    let metrics = http(&gateway.addr, "GET", "/metrics", &[], b"").text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// Waits up to 10 s for a metric to reach `value`.
fn wait_metric(gateway: &Gateway, name: &str, value: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(gateway, name) != value {
        assert!(Instant::now() < deadline, "{name} never reached {value}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The chat id in a `42["chat message",content,id,"id"]` broadcast.
fn message_id(packet: &str) -> Option<u64> {
    let rest = packet.strip_prefix("42[\"chat message\",")?;
    let tail = &rest[rest.rfind("\",")? + 2..];
    tail.split([',', ']']).next()?.parse().ok()
}

#[test]
fn a_stalled_reader_under_a_flood_is_dropped_and_memory_stays_bounded() {
    const MESSAGES: u64 = 20_000;
    const RECEIVERS: usize = 3;
    let gateway = Gateway::start("stalled-flood", &["--max-message-rate", "0"]);
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
            let mut next = 1;
            while next <= MESSAGES {
                if let Some(id) = message_id(&read_text(&mut ws)) {
                    assert_eq!(id, next, "ids in order, none missing");
                    next += 1;
                }
            }
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
    wait_metric(&gateway, "emberchat_queue_overflows_total", 2);
    assert!(gateway.wait_log("outbound queue full"));
    pinger.join().unwrap();
    drop(stalled);
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

/// Raises this process's open-file limit (and so the gateway's, which inherits it) to what
/// a thousand clients on each side need.
fn raise_file_limit(wanted: u64) {
    #[repr(C)]
    struct Rlimit {
        current: u64,
        maximum: u64,
    }
    unsafe extern "C" {
        fn getrlimit(resource: i32, limit: *mut Rlimit) -> i32;
        fn setrlimit(resource: i32, limit: *const Rlimit) -> i32;
    }
    const RLIMIT_NOFILE: i32 = 7;
    let mut limit = Rlimit {
        current: 0,
        maximum: 0,
    };
    // SAFETY: plain libc calls with a properly laid out struct.
    unsafe {
        assert_eq!(getrlimit(RLIMIT_NOFILE, &mut limit), 0);
        if limit.current < wanted {
            limit.current = wanted.min(limit.maximum);
            assert_eq!(setrlimit(RLIMIT_NOFILE, &limit), 0);
        }
    }
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

/// Sends raw bytes on a fresh connection and returns whatever comes back until the gateway
/// closes the connection (or 5 s pass).
fn raw_exchange(addr: &str, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    reply
}

/// A raw Engine.IO WebSocket (after its open packet) on which `frame` is sent as is.
fn websocket_with_frame(gateway: &Gateway, frame: Message) -> common::Ws {
    let mut ws = common::open_ws(gateway, "");
    assert!(read_text(&mut ws).starts_with("0{"));
    ws.send(frame).unwrap();
    ws
}

/// True once the server closes the WebSocket (close frame or EOF) within 5 s.
fn closed_by_server(ws: &mut common::Ws) -> bool {
    loop {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => return true,
            Ok(Message::Text(text)) if text.as_str() == "1" => return true,
            Ok(_) => {}
        }
    }
}

#[test]
fn inputs_from_socket_io_security_history_are_refused_cleanly() {
    let gateway = Gateway::start("cve-inputs", &["--max-message-rate", "0"]);
    let (mut bystander, _) = socketio_ws(&gateway, "{}");

    // Crafted query strings: arrays, duplicates, encodings, huge values, odd names. Each is
    // refused with Engine.IO's error, or (an unknown key is just ignored) is a handshake.
    for (query, expected) in [
        ("/socket.io/?EIO=4&transport=polling&sid[]=x", 200),
        ("/socket.io/?EIO=4&EIO=3&transport=polling", 200),
        ("/socket.io/?EIO=3&EIO=4&transport=polling", 400),
        ("/socket.io/?EIO=4&transport=polling%00", 400),
        (
            "/socket.io/?EIO=99999999999999999999&transport=polling",
            400,
        ),
        ("/socket.io/?EIO=4&transport=polling&sid=%2e%2e%2f", 400),
        ("/socket.io/?EIO=4&transport=polling&sid=", 400),
        ("/socket.io/?transport=constructor&EIO=4", 400),
        ("/socket.io/?EIO=4&transport=__proto__", 400),
    ] {
        let reply = http(&gateway.addr, "GET", query, &[], b"");
        assert_eq!(reply.status, expected, "{query}: {}", reply.text());
        if expected == 200 {
            assert!(reply.text().starts_with("0{\"sid\":"), "{query}");
        }
    }

    // Invalid UTF-8 in a polling body, and a packet type that is not ASCII.
    let open = http(&gateway.addr, "GET", POLLING, &[], b"").text();
    let sid = &open[9..29];
    let path = format!("{POLLING}&sid={sid}");
    let reply = http(
        &gateway.addr,
        "POST",
        &path,
        &[],
        b"40\x1e42[\"chat message\",\"\xff\xfe\"]",
    );
    assert_eq!(reply.status, 400);
    let open = http(&gateway.addr, "GET", POLLING, &[], b"").text();
    let path = format!("{POLLING}&sid={}", &open[9..29]);
    let reply = http(&gateway.addr, "POST", &path, &[], "ä40".as_bytes());
    assert_eq!(reply.status, 400);

    // Over WebSocket: invalid UTF-8 in a text frame, a multi-byte packet type, huge numbers
    // (ack ids beyond 2^53, attachment counts, offsets), unbounded attachments, deep nesting
    // and lone surrogates. Each closes only its own connection or gets an error ack.
    let mut utf8 = common::open_ws(&gateway, "");
    assert!(read_text(&mut utf8).starts_with("0{"));
    let stream = utf8.get_mut();
    // A masked text frame of two bytes that are not UTF-8.
    stream
        .write_all(&[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe])
        .unwrap();
    assert!(closed_by_server(&mut utf8));
    for packet in [
        "ä0".to_owned(),
        "4218446744073709551616[\"chat message\",\"x\",\"y\"]".to_owned(),
        "4599999999999999999999-[\"a\"]".to_owned(),
        "451000000-[\"chat message\",{\"_placeholder\":true,\"num\":999999}]".to_owned(),
        format!(
            "42[\"chat message\",{}1{}]",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
        "42[\"chat message\",\"\\ud800\"]".to_owned(),
        "42[\"chat message\",\"\\udc00\\ud800\"]".to_owned(),
    ] {
        let mut ws = websocket_with_frame(&gateway, Message::text(packet.clone()));
        let _ = ws.send(Message::text("40"));
        let closed = closed_by_server(&mut ws);
        assert!(closed, "{}", &packet[..packet.len().min(60)]);
    }
    // A well-formed client with hostile values gets error acks and stays connected.
    let (mut client, _) = socketio_ws(&gateway, "{\"serverOffset\":1e400}");
    for (ack, args) in [
        (1, "\"x\",\"y\",{\"nested\":[[[[[[]]]]]]}"),
        (2, "123456789012345678901234567890"),
    ] {
        client
            .send(Message::text(format!("42{ack}[\"chat message\",{args}]")))
            .unwrap();
        loop {
            let text = read_text(&mut client);
            if text.starts_with(&format!("43{ack}")) {
                break;
            }
        }
    }

    // A request head of 100,000 header lines and a body claiming a huge length.
    let mut flood = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for n in 0..100_000 {
        flood.extend_from_slice(format!("X-{n}: y\r\n").as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let reply = raw_exchange(&gateway.addr, &flood);
    assert!(
        reply.is_empty() || reply.starts_with(b"HTTP/1.1 431"),
        "{reply:?}"
    );
    let huge =
        format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n40");
    let reply = raw_exchange(&gateway.addr, huge.as_bytes());
    assert!(
        reply.starts_with(b"HTTP/1.1 413") || reply.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    // Through all of it the gateway served, and the bystander still chats.
    bystander
        .send(Message::text(
            "429[\"chat message\",\"still here\",\"b-9\"]",
        ))
        .unwrap();
    loop {
        if read_text(&mut bystander) == "439[]" {
            break;
        }
    }
    assert_eq!(http(&gateway.addr, "GET", "/healthz", &[], b"").status, 200);
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
fn a_second_pending_poll_closes_the_session() {
    let gateway = Arc::new(Gateway::start("overlapping-polls", &[]));
    let open = http(&gateway.addr, "GET", POLLING, &[], b"").text();
    let path = format!("{POLLING}&sid={}", &open[9..29]);
    http(&gateway.addr, "POST", &path, &[], b"40");
    // The CONNECT reply comes first; then a GET waits for the next packet.
    assert!(
        http(&gateway.addr, "GET", &path, &[], b"")
            .text()
            .starts_with("40{")
    );
    let pending = {
        let (gateway, path) = (gateway.clone(), path.clone());
        thread::spawn(move || http(&gateway.addr, "GET", &path, &[], b"").text())
    };
    thread::sleep(Duration::from_millis(200));
    let second = http(&gateway.addr, "GET", &path, &[], b"");
    assert_eq!(second.status, 400);
    // The pending GET is released with a close packet, and the session is gone.
    assert_eq!(pending.join().unwrap(), "1");
    assert_eq!(http(&gateway.addr, "GET", &path, &[], b"").status, 400);
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
