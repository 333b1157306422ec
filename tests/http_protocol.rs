//! Raw HTTP and Engine.IO/Socket.IO bytes against the real binary: exact answers, errors, and
//! that bad input never takes the server down.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{Gateway, http};

const BASE: &str = "/socket.io/?EIO=4&transport=polling";

fn get(gateway: &Gateway, path: &str) -> common::HttpResponse {
    http(&gateway.addr, "GET", path, &[], b"")
}

fn post(gateway: &Gateway, path: &str, body: &str) -> common::HttpResponse {
    http(
        &gateway.addr,
        "POST",
        path,
        &[("Content-Type", "text/plain;charset=UTF-8")],
        body.as_bytes(),
    )
}

/// Polls until the received packets contain `needle` (bounded: a few long-polls at most).
fn poll_until(gateway: &Gateway, path: &str, needle: &str) -> String {
    let mut received = String::new();
    for _ in 0..10 {
        let reply = get(gateway, path);
        assert_eq!(
            reply.status,
            200,
            "polling for {needle}: {}; got so far: {received}",
            reply.text()
        );
        received.push_str(&reply.text());
        received.push('\u{1e}');
        if received.contains(needle) {
            return received;
        }
    }
    panic!("{needle} never came; got {received}");
}

/// Opens a polling session and joins the main namespace; returns the Engine.IO sid.
fn connect(gateway: &Gateway) -> String {
    let open = get(gateway, BASE);
    assert_eq!(open.status, 200);
    let body = open.text();
    let sid = body
        .strip_prefix("0{\"sid\":\"")
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("open packet: {body}"))
        .to_owned();
    assert_eq!(
        post(gateway, &format!("{BASE}&sid={sid}"), "40").text(),
        "ok"
    );
    let reply = get(gateway, &format!("{BASE}&sid={sid}")).text();
    assert!(reply.starts_with("40{\"sid\":\""), "{reply}");
    sid
}

#[test]
fn serves_the_page_and_the_client_bundle() {
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
    assert_eq!(
        get(&gateway, "/app.js").header("content-type"),
        Some("text/javascript; charset=utf-8")
    );

    assert_eq!(get(&gateway, "/no/such/page").status, 404);
    assert_eq!(http(&gateway.addr, "POST", "/", &[], b"x").status, 405);
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
    let open = get(&gateway, BASE);
    assert_eq!(
        open.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    let body = open.text();
    assert!(
        body.ends_with("\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"),
        "{body}"
    );
    let sid = connect(&gateway);
    let path = format!("{BASE}&sid={sid}");
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
fn bad_messages_get_error_acks_and_bad_packets_close_only_that_client() {
    let gateway = Gateway::start("http-bad-input", &["--max-message-bytes", "10"]);
    let sid = connect(&gateway);
    let path = format!("{BASE}&sid={sid}");
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

    let other = connect(&gateway);
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
        let victim = connect(&gateway);
        let victim_path = format!("{BASE}&sid={victim}");
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
    let victim = connect(&gateway);
    post(&gateway, &format!("{BASE}&sid={victim}"), &deep);
    let victim = connect(&gateway);
    post(
        &gateway,
        &format!("{BASE}&sid={victim}"),
        "4599999999-[\"a\"]",
    );
    // The well-behaved client is unaffected and the server still answers.
    let path = format!("{BASE}&sid={other}");
    post(&gateway, &path, "427[\"chat message\",\"still here\"]");
    let received = poll_until(&gateway, &path, "437[]");
    assert!(received.contains("\"still here\""), "{received}");
    assert_eq!(get(&gateway, "/").status, 200);
}

#[test]
fn oversize_polling_body_is_refused_with_413() {
    let gateway = Gateway::start(
        "http-413",
        &["--max-payload", "1000", "--max-message-bytes", "500"],
    );
    let sid = connect(&gateway);
    let response = post(
        &gateway,
        &format!("{BASE}&sid={sid}"),
        &format!("4{}", "x".repeat(2000)),
    );
    assert_eq!(response.status, 413);
    assert!(gateway.wait_log("over 1000 bytes"));
}

#[test]
fn unknown_namespace_gets_connect_error() {
    let gateway = Gateway::start("http-namespace", &[]);
    let sid = connect(&gateway);
    let path = format!("{BASE}&sid={sid}");
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
    let sid = connect(&gateway);
    let path = format!("{BASE}&sid={sid}");
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
fn sigterm_stops_cleanly() {
    let gateway = Gateway::start("http-sigterm", &[]);
    let sid = connect(&gateway);
    let path = format!("{BASE}&sid={sid}");
    post(&gateway, &path, "421[\"chat message\",\"kept\"]");
    poll_until(&gateway, &path, "431[]");
    let wal = gateway.dir.join("chat.db-wal");
    assert!(wal.exists(), "WAL mode");
    let status = gateway.stop();
    assert!(status.success(), "{status}");
    // A clean stop checkpoints the WAL into the database file.
    assert!(
        std::fs::metadata(&wal).map_or(true, |m| m.len() == 0),
        "WAL not checkpointed"
    );
}

#[test]
fn a_client_that_stops_reading_is_disconnected_and_others_are_not() {
    let args = ["--max-queue-packets", "50", "--max-message-rate", "0"];
    let gateway = Gateway::start("slow-client", &args);
    let stalled = connect(&gateway);
    let stalled_path = format!("{BASE}&sid={stalled}");
    let (mut writer, _) = common::socketio_ws(&gateway, "{}");
    // The writer sends one message at a time and gets every broadcast and ack, unaffected by
    // the stalled reader.
    for n in 1..=100 {
        let packet = format!("42{n}[\"chat message\",\"m{n}\"]");
        writer.send(tungstenite::Message::text(packet)).unwrap();
        let broadcast = common::read_text(&mut writer);
        let expected = format!("42[\"chat message\",\"m{n}\",{n},");
        assert!(broadcast.starts_with(&expected), "{broadcast}");
        assert_eq!(common::read_text(&mut writer), format!("43{n}[]"));
    }
    // The stalled client was dropped at its 50-packet limit; it gets what was queued, then
    // the close packet, and would catch up from the store when it comes back.
    let reply = get(&gateway, &stalled_path).text();
    let packets: Vec<&str> = reply.split('\u{1e}').collect();
    assert_eq!(packets.len(), 51, "{reply}");
    assert_eq!(packets.last(), Some(&"1"));
    assert_eq!(get(&gateway, &stalled_path).status, 400);
    let metrics = get(&gateway, "/metrics").text();
    assert!(
        metrics.contains("emberchat_queue_overflows_total 1"),
        "{metrics}"
    );
    assert!(gateway.wait_log("outbound queue full"));
}

#[test]
fn foreign_origins_are_refused_unless_listed() {
    let gateway = Gateway::start("origin", &["--allow-origin", "http://laptop.local:8080"]);
    let own = format!("http://{}", gateway.addr);
    let handshake = |origin: Option<&str>| {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        http(&gateway.addr, "GET", BASE, &headers, b"")
    };
    // Non-browser clients and the gateway's own page.
    assert_eq!(handshake(None).status, 200);
    let same = handshake(Some(&own));
    assert_eq!(same.status, 200);
    assert_eq!(same.header("access-control-allow-origin"), None);
    // Another page: 403 with socket.io's Forbidden error, for polling and WebSocket alike.
    let foreign = handshake(Some("http://evil.example"));
    assert_eq!(foreign.status, 403);
    assert_eq!(foreign.text(), "{\"code\":4,\"message\":\"Forbidden\"}");
    let upgrade = http(
        &gateway.addr,
        "GET",
        "/socket.io/?EIO=4&transport=websocket",
        &[
            ("Origin", "http://evil.example"),
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        b"",
    );
    assert_eq!(upgrade.status, 403);
    // A listed origin gets in, with CORS headers (and a preflight answer).
    let listed = handshake(Some("http://laptop.local:8080"));
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.header("access-control-allow-origin"),
        Some("http://laptop.local:8080")
    );
    assert_eq!(
        listed.header("access-control-allow-credentials"),
        Some("true")
    );
    let preflight = http(
        &gateway.addr,
        "OPTIONS",
        BASE,
        &[
            ("Origin", "http://laptop.local:8080"),
            ("Access-Control-Request-Method", "POST"),
        ],
        b"",
    );
    assert_eq!(preflight.status, 204);
    assert!(
        preflight
            .header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert!(gateway.wait_log("refused a request from origin http://evil.example"));
}

#[test]
fn handshakes_beyond_max_clients_get_503() {
    let gateway = Gateway::start("max-clients", &["--max-clients", "2"]);
    let _first = connect(&gateway);
    let _second = connect(&gateway);
    let third = get(&gateway, BASE);
    assert_eq!(third.status, 503);
    assert!(
        third.text().contains("full (2 clients)"),
        "{}",
        third.text()
    );
    assert!(gateway.wait_log("--max-clients"));
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
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
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
