//! Raw WebSocket bytes against the real binary: a WebSocket-only session, the upgrade of a
//! polling session, and the message size limit.

mod common;

use std::time::Duration;

use common::{Gateway, http, open_ws, read_text};
use tungstenite::Message;
use tungstenite::protocol::frame::coding::CloseCode;

#[test]
fn websocket_session_chats_and_enforces_max_payload() {
    let gateway = Gateway::start(
        "ws-raw",
        &["--max-payload", "2000", "--max-message-bytes", "1000"],
    );
    let mut ws = open_ws(&gateway, "");
    let open = read_text(&mut ws);
    assert!(open.starts_with("0{\"sid\":\""), "{open}");
    assert!(open.contains("\"upgrades\":[]"), "{open}");
    ws.send(Message::text("40")).unwrap();
    assert!(read_text(&mut ws).starts_with("40{\"sid\":\""));
    ws.send(Message::text("421[\"chat message\",\"over ws\",\"o-1\"]"))
        .unwrap();
    assert_eq!(
        read_text(&mut ws),
        "42[\"chat message\",\"over ws\",1,\"1\"]"
    );
    assert_eq!(read_text(&mut ws), "431[]");
    // The same client offset again: acked, not stored or broadcast again.
    ws.send(Message::text("422[\"chat message\",\"over ws\",\"o-1\"]"))
        .unwrap();
    assert_eq!(read_text(&mut ws), "432[]");

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
fn polling_session_upgrades_to_websocket() {
    let gateway = Gateway::start("ws-upgrade", &[]);
    let base = "/socket.io/?EIO=4&transport=polling";
    let open = http(&gateway.addr, "GET", base, &[], b"").text();
    let sid = open[9..].split('"').next().unwrap().to_owned();
    let path = format!("{base}&sid={sid}");
    assert_eq!(http(&gateway.addr, "POST", &path, &[], b"40").text(), "ok");
    assert!(
        http(&gateway.addr, "GET", &path, &[], b"")
            .text()
            .starts_with("40{")
    );

    // A GET is pending while the probe runs: it is released with a noop.
    let addr = gateway.addr.clone();
    let pending_path = path.clone();
    let pending = std::thread::spawn(move || http(&addr, "GET", &pending_path, &[], b"").text());
    std::thread::sleep(Duration::from_millis(200));
    let mut ws = open_ws(&gateway, &format!("&sid={sid}"));
    ws.send(Message::text("2probe")).unwrap();
    assert_eq!(read_text(&mut ws), "3probe");
    assert_eq!(pending.join().unwrap(), "6");
    ws.send(Message::text("5")).unwrap();

    ws.send(Message::text("421[\"chat message\",\"upgraded\"]"))
        .unwrap();
    assert_eq!(
        read_text(&mut ws),
        "42[\"chat message\",\"upgraded\",1,\"1\"]"
    );
    assert_eq!(read_text(&mut ws), "431[]");
    // Polling is over for this session, but the session itself goes on.
    let refused = http(&gateway.addr, "GET", &path, &[], b"");
    assert_eq!(refused.status, 400);
    assert_eq!(refused.text(), "{\"code\":3,\"message\":\"Bad request\"}");
    ws.send(Message::text("42[\"chat message\",\"still upgraded\"]"))
        .unwrap();
    assert_eq!(
        read_text(&mut ws),
        "42[\"chat message\",\"still upgraded\",2,\"2\"]"
    );
}

fn field(reply: &str, name: &str) -> String {
    let start = reply.find(&format!("\"{name}\":\"")).expect(name) + name.len() + 4;
    reply[start..].split('"').next().unwrap().to_owned()
}

#[test]
fn recovery_checks_the_offset_and_empty_client_offsets_are_no_offsets() {
    let gateway = Gateway::start("ws-recovery", &[]);
    let (mut first, reply) = common::socketio_ws(&gateway, "{}");
    let (sid, pid) = (field(&reply, "sid"), field(&reply, "pid"));
    // An empty client offset identifies nothing: both messages are stored.
    for ack in [1, 2] {
        first
            .send(Message::text(format!(
                "42{ack}[\"chat message\",\"m{ack}\",\"\"]"
            )))
            .unwrap();
    }
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(read_text(&mut first));
    }
    assert!(
        seen.contains(&"42[\"chat message\",\"m2\",2,\"2\"]".to_owned()),
        "{seen:?}"
    );
    drop(first);
    std::thread::sleep(Duration::from_millis(200));

    // An offset this gateway never gave out cannot be resumed from.
    let auth = format!("{{\"pid\":\"{pid}\",\"offset\":\"99999\"}}");
    let (bogus, reply) = common::socketio_ws(&gateway, &auth);
    assert_ne!(field(&reply, "sid"), sid);
    drop(bogus);
    // A real one can, once: same socket id, then what was missed after it.
    let auth = format!("{{\"pid\":\"{pid}\",\"offset\":\"1\"}}");
    let (mut resumed, reply) = common::socketio_ws(&gateway, &auth);
    assert_eq!(field(&reply, "sid"), sid);
    assert_eq!(
        read_text(&mut resumed),
        "42[\"chat message\",\"m2\",2,\"2\"]"
    );
}

#[test]
fn access_token_is_required_when_configured() {
    let gateway = Gateway::start("ws-token", &["--token", "s3cret"]);
    for auth in ["", "{}", "{\"token\":\"wrong\"}", "{\"token\":1}"] {
        let mut ws = common::open_ws(&gateway, "");
        read_text(&mut ws);
        ws.send(Message::text(format!("40{auth}"))).unwrap();
        assert_eq!(
            read_text(&mut ws),
            "44{\"message\":\"unauthorized\"}",
            "{auth}"
        );
    }
    let (_ws, reply) = common::socketio_ws(&gateway, "{\"token\":\"s3cret\"}");
    assert!(reply.starts_with("40{\"sid\":"));
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
