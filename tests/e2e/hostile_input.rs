//! Malformed and hostile input, including the inputs of socket.io's security history: each
//! class is refused with an error ack, an Engine.IO error or a close of that one connection,
//! never a crash, and a bystander client keeps chatting through all of it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tungstenite::Message;

use crate::common::{
    self, Gateway, POLLING, Ws, connect_polling, get, http, poll_until, post, read_text,
    socketio_ws,
};

#[test]
fn bad_messages_get_error_acks_and_bad_packets_close_only_that_client() {
    let gateway = Gateway::start("http-bad-input", &["--max-message-bytes", "10"]);
    let sid = connect_polling(&gateway);
    let path = format!("{POLLING}&sid={sid}");
    post(
        &gateway,
        &path,
        "421[\"chat message\",5]\u{1e}422[\"chat message\",\"far too long for the limit\"]\u{1e}423[\"what\"]",
    );
    let received = poll_until(&gateway, &path, "433");
    assert!(
        received.contains("431[{\"error\":\"message must be a string\"}]"),
        "{received}"
    );
    assert!(
        received.contains("432[{\"error\":\"message longer than 10 bytes\"}]"),
        "{received}"
    );
    assert!(
        received.contains("433[{\"error\":\"unknown event\"}]"),
        "{received}"
    );

    let other = connect_polling(&gateway);
    for packet in [
        "42[]",
        "4x",
        "42[\"disconnect\"]",
        "43[]",
        "451-[\"a\"]\u{1e}42[\"b\"]",
        "9",
        "42[\"a\"",
        "42[\"\\ud800\"]",
    ] {
        let victim = connect_polling(&gateway);
        let victim_path = format!("{POLLING}&sid={victim}");
        let response = post(&gateway, &victim_path, packet);
        assert!(
            response.status == 200 || response.status == 400,
            "{packet}: {}",
            response.status
        );
        let mut closed = false;
        for _ in 0..3 {
            let reply = get(&gateway, &victim_path);
            if reply.status == 400 || reply.text().ends_with('1') {
                closed = true;
                break;
            }
        }
        assert!(closed, "{packet} did not close the session");
    }
    // Deep nesting and a huge number of attachments are refused too, without a crash.
    let deep = format!(
        "42[\"chat message\",{}{}]",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let victim = connect_polling(&gateway);
    post(&gateway, &format!("{POLLING}&sid={victim}"), &deep);
    let victim = connect_polling(&gateway);
    post(
        &gateway,
        &format!("{POLLING}&sid={victim}"),
        "4599999999-[\"a\"]",
    );
    // The well-behaved client is unaffected and the server still answers.
    let path = format!("{POLLING}&sid={other}");
    post(&gateway, &path, "427[\"chat message\",\"still here\"]");
    let received = poll_until(&gateway, &path, "437[]");
    assert!(received.contains("\"still here\""), "{received}");
    assert_eq!(get(&gateway, "/").status, 200);
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

/// A client connected before the hostile input, which must keep chatting through it.
struct Bystander(Ws);

impl Bystander {
    fn join(gateway: &Gateway) -> Bystander {
        Bystander(socketio_ws(gateway, "{}").0)
    }

    /// Through all of it the gateway served, and the bystander still chats.
    fn still_chats(mut self, gateway: &Gateway) {
        self.0
            .send(Message::text(
                "429[\"chat message\",\"still here\",\"b-9\"]",
            ))
            .unwrap();
        loop {
            if read_text(&mut self.0) == "439[]" {
                break;
            }
        }
        assert_eq!(http(&gateway.addr, "GET", "/healthz", &[], b"").status, 200);
    }
}

/// A gateway without a rate limit (the tests send in bursts) and its bystander.
fn start(name: &str) -> (Gateway, Bystander) {
    let gateway = Gateway::start(name, &["--max-message-rate", "0"]);
    let bystander = Bystander::join(&gateway);
    (gateway, bystander)
}

/// A new polling session (not joined to a namespace): its path with `&sid=`.
fn polling_session(gateway: &Gateway) -> String {
    let open = get(gateway, POLLING).text();
    format!("{POLLING}&sid={}", &open[9..29])
}

/// Crafted query strings: arrays, duplicates, encodings, huge values, odd names. Each is
/// refused with Engine.IO's error, or (an unknown key is just ignored) is a handshake.
#[test]
fn crafted_query_strings_are_refused_or_ignored() {
    let (gateway, bystander) = start("cve-queries");
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
    bystander.still_chats(&gateway);
}

/// Invalid UTF-8 in a polling body, and a packet type that is not ASCII.
#[test]
fn polling_bodies_that_are_not_utf8_or_start_with_non_ascii_are_refused() {
    let (gateway, bystander) = start("cve-polling-bodies");
    let path = polling_session(&gateway);
    let reply = http(
        &gateway.addr,
        "POST",
        &path,
        &[],
        b"40\x1e42[\"chat message\",\"\xff\xfe\"]",
    );
    assert_eq!(reply.status, 400);
    let path = polling_session(&gateway);
    let reply = http(&gateway.addr, "POST", &path, &[], "ä40".as_bytes());
    assert_eq!(reply.status, 400);
    bystander.still_chats(&gateway);
}

/// Over WebSocket: invalid UTF-8 in a text frame, a multi-byte packet type, huge numbers
/// (ack ids beyond 2^53, attachment counts), unbounded attachments, deep nesting and lone
/// surrogates. Each closes its own connection, and only that one.
#[test]
fn hostile_websocket_packets_close_only_their_connection() {
    let (gateway, bystander) = start("cve-websocket");
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
    bystander.still_chats(&gateway);
}

/// A well-formed client with hostile values (an offset beyond f64, extra and nested
/// arguments, a number for the message) gets error acks and stays connected.
#[test]
fn hostile_values_from_a_joined_client_get_acks_and_it_stays_connected() {
    let (gateway, bystander) = start("cve-values");
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
    bystander.still_chats(&gateway);
}

/// A request head of 100,000 header lines, and a body claiming a huge length (for a live
/// session, and for one whose last body was refused).
#[test]
fn huge_request_heads_and_body_lengths_are_refused() {
    let (gateway, bystander) = start("cve-http");
    let mut flood = b"GET / HTTP/1.1\r\nHost: localhost\r\n".to_vec();
    for n in 0..100_000 {
        flood.extend_from_slice(format!("X-{n}: y\r\n").as_bytes());
    }
    flood.extend_from_slice(b"\r\n");
    let reply = raw_exchange(&gateway.addr, &flood);
    assert!(
        reply.is_empty() || reply.starts_with(b"HTTP/1.1 431"),
        "{reply:?}"
    );
    let live = polling_session(&gateway);
    let closed = polling_session(&gateway);
    let reply = http(&gateway.addr, "POST", &closed, &[], "ä40".as_bytes());
    assert_eq!(reply.status, 400);
    for path in [live, closed] {
        let huge = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 99999999999999\r\n\r\n40"
        );
        let reply = raw_exchange(&gateway.addr, huge.as_bytes());
        assert!(
            reply.starts_with(b"HTTP/1.1 413") || reply.starts_with(b"HTTP/1.1 400"),
            "{path}: {}",
            String::from_utf8_lossy(&reply)
        );
    }
    bystander.still_chats(&gateway);
}

#[test]
fn client_text_cannot_forge_log_lines() {
    let gateway = Gateway::start("log-forging", &[]);
    let (mut ws, _) = socketio_ws(&gateway, "{}");
    // An event name with a newline and a journald priority prefix, then a long one.
    ws.send(Message::text(
        "421[\"x\\n<3>FORGED emberchat: database lost\",1]",
    ))
    .unwrap();
    let long = "n".repeat(100_000);
    ws.send(Message::text(format!("422[\"{long}\",1]")))
        .unwrap();
    let mut acks = 0;
    while acks < 2 {
        if read_text(&mut ws).starts_with("43") {
            acks += 1;
        }
    }
    assert!(gateway.wait_log("FORGED"));
    assert!(gateway.wait_log("(100000 bytes)"));
    let log = gateway.log();
    assert!(
        !log.lines()
            .any(|l| l.starts_with("<3>") || l.starts_with("FORGED")),
        "{log}"
    );
    assert!(log.contains(r#"refused "x\n<3>FORGED"#), "{log}");
    // The long name is cut: no line carries it whole.
    assert!(log.lines().all(|l| l.len() < 1000), "{log}");
    assert!(log.contains("... (100000 bytes)"), "{log}");
}

#[test]
fn refusals_a_client_can_repeat_are_rationed_in_the_log() {
    let gateway = Gateway::start("log-flood", &[]);
    let (mut ws, _) = socketio_ws(&gateway, "{}");
    for n in 0..500 {
        ws.send(Message::text(format!("42{n}[\"nope\"]"))).unwrap();
    }
    let mut acks = 0;
    while acks < 500 {
        if read_text(&mut ws).starts_with("43") {
            acks += 1;
        }
    }
    let count = |log: &str| {
        log.lines()
            .filter(|l| l.contains("refused \"nope\""))
            .count()
    };
    // The log is read as the gateway writes it: wait for the lines, then a little more.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while count(&gateway.log()) < 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = gateway.log();
    assert_eq!(count(&log), 20, "{log}");
}
