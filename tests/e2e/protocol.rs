//! The protocol on the wire, sent and checked as raw bytes: the page and its assets, Engine.IO
//! handshakes and errors as socket.io answers them, polling, WebSocket-only sessions, the
//! upgrade from polling to WebSocket, namespaces, and heartbeats that reap abandoned sessions.

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use tungstenite::Message;

use crate::common::{
    Gateway, POLLING, connect_polling, get, http, open_ws, poll_until, post, read_text,
};

#[test]
fn serves_the_page_and_its_assets() {
    let gateway = Gateway::start("http-assets", &[]);
    let page = get(&gateway, "/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("script-src 'self'")
    );
    let text = page.text();
    for needle in [
        "id=\"form\"",
        "id=\"input\"",
        "id=\"messages\"",
        "id=\"toggle-btn\"",
        "/socket.io/socket.io.js",
    ] {
        assert!(text.contains(needle), "page lacks {needle}");
    }
    let etag = page.header("etag").unwrap().to_owned();
    let cached = http(&gateway.addr, "GET", "/", &[("If-None-Match", &etag)], b"");
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());
    assert_eq!(
        get(&gateway, "/app.js").header("content-type"),
        Some("text/javascript; charset=utf-8")
    );

    assert_eq!(get(&gateway, "/no/such/page").status, 404);
    assert_eq!(http(&gateway.addr, "POST", "/", &[], b"x").status, 405);
}

/// The official client bundle, built into the binary when `make bundle` has fetched it
/// (a plain `cargo build` on a fresh clone builds without it and answers 404).
#[test]
#[ignore = "needs the client bundle built in (`make bundle`): run `make test`"]
fn serves_the_embedded_client_bundle() {
    let gateway = Gateway::start("http-bundle", &[]);
    let bundle = get(&gateway, "/socket.io/socket.io.js");
    assert_eq!(
        bundle.status, 200,
        "the client bundle is embedded by `make build`/`make test`"
    );
    assert_eq!(
        bundle.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(bundle.text().contains("Socket.IO v4.8"), "bundle banner");
    let gzipped = http(
        &gateway.addr,
        "GET",
        "/socket.io/socket.io.min.js",
        &[("Accept-Encoding", "gzip, br")],
        b"",
    );
    assert_eq!(gzipped.status, 200);
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(&gzipped.body[..2], &[0x1f, 0x8b]);
}

#[test]
fn engine_io_errors_match_socket_io() {
    let gateway = Gateway::start("http-errors", &[]);
    let cases = [
        (
            "GET",
            "/socket.io/?EIO=4&transport=carrier-pigeon",
            0,
            "Transport unknown",
        ),
        ("GET", "/socket.io/?EIO=4", 0, "Transport unknown"),
        (
            "GET",
            "/socket.io/?EIO=4&transport=polling&sid=nope",
            1,
            "Session ID unknown",
        ),
        (
            "POST",
            "/socket.io/?EIO=4&transport=polling",
            2,
            "Bad handshake method",
        ),
        (
            "GET",
            "/socket.io/?EIO=4&transport=websocket",
            3,
            "Bad request",
        ),
        (
            "GET",
            "/socket.io/?EIO=3&transport=polling",
            5,
            "Unsupported protocol version",
        ),
        (
            "GET",
            "/socket.io/?transport=polling",
            5,
            "Unsupported protocol version",
        ),
    ];
    for (method, path, code, message) in cases {
        let response = http(&gateway.addr, method, path, &[], b"");
        assert_eq!(response.status, 400, "{method} {path}");
        assert_eq!(response.header("content-type"), Some("application/json"));
        assert_eq!(
            response.text(),
            format!("{{\"code\":{code},\"message\":\"{message}\"}}"),
            "{method} {path}"
        );
    }
}

#[test]
fn polling_handshake_and_chat_bytes() {
    let gateway = Gateway::start("http-polling", &[]);
    let open = get(&gateway, POLLING);
    assert_eq!(
        open.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    let body = open.text();
    assert!(
        body.ends_with("\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"),
        "{body}"
    );
    let sid = connect_polling(&gateway);
    let path = format!("{POLLING}&sid={sid}");
    // Two packets in one body; the second asks for an ack.
    let sent = post(
        &gateway,
        &path,
        "42[\"chat message\",\"raw \\\"hi\\\"\"]\u{1e}421[\"chat message\",\"two\",\"offset-1\"]",
    );
    assert_eq!(sent.text(), "ok");
    let received = poll_until(&gateway, &path, "431[]");
    let packets: Vec<&str> = received.split('\u{1e}').filter(|p| !p.is_empty()).collect();
    assert_eq!(
        packets,
        [
            "42[\"chat message\",\"raw \\\"hi\\\"\",1,\"1\"]",
            "42[\"chat message\",\"two\",2,\"2\"]",
            "431[]"
        ]
    );
    let health = get(&gateway, "/healthz");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let metrics = get(&gateway, "/metrics").text();
    for line in [
        "emberchat_connected_clients 1",
        "emberchat_messages_stored_total 2",
        "emberchat_last_message_id 2",
        "emberchat_replays_in_progress 0",
        "emberchat_store_errors_total 0",
        "emberchat_queue_overflows_total 0",
        "# TYPE emberchat_messages_stored_total counter",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} missing in\n{metrics}"
        );
    }
}

#[test]
fn websocket_only_session_chats() {
    let gateway = Gateway::start("ws-raw", &[]);
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

#[test]
fn unknown_namespace_gets_connect_error() {
    let gateway = Gateway::start("http-namespace", &[]);
    let sid = connect_polling(&gateway);
    let path = format!("{POLLING}&sid={sid}");
    post(&gateway, &path, "40/admin,");
    assert_eq!(
        get(&gateway, &path).text(),
        "44/admin,{\"message\":\"Invalid namespace\"}"
    );
}

#[test]
fn abandoned_polling_sessions_are_reaped() {
    let gateway = Gateway::start(
        "http-reap",
        &["--ping-interval", "100", "--ping-timeout", "100"],
    );
    let sid = connect_polling(&gateway);
    let path = format!("{POLLING}&sid={sid}");
    // Nobody answers the ping: after pingInterval + pingTimeout the session is gone.
    assert_eq!(get(&gateway, &path).text(), "2");
    std::thread::sleep(Duration::from_millis(600));
    let gone = get(&gateway, &path);
    assert_eq!(gone.status, 400);
    assert_eq!(
        gone.text(),
        "{\"code\":1,\"message\":\"Session ID unknown\"}"
    );
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
