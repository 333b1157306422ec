//! Who may connect: the access token (`--token`) over the wire and through the page's prompt,
//! and the Origin check that keeps other web pages out unless listed (`--allow-origin`).

use tungstenite::Message;

use crate::common::{self, Gateway, POLLING, http, js_script, node, read_text};

#[test]
fn access_token_is_required_when_configured() {
    let gateway = Gateway::start("ws-token", &["--token", "s3cret"]);
    let connect = |auth: &str| {
        let mut ws = common::open_ws(&gateway, "");
        read_text(&mut ws);
        ws.send(Message::text(format!("40{auth}"))).unwrap();
        read_text(&mut ws)
    };
    let right = "{\"token\":\"s3cret\"}";
    assert!(connect(right).starts_with("40{\"sid\":"));
    for auth in ["", "{}", "{\"token\":\"wrong\"}", "{\"token\":1}"] {
        assert_eq!(connect(auth), "44{\"message\":\"unauthorized\"}", "{auth}");
    }
    // Four wrong in a row: this address now waits (1 s after the third, 2 s after the
    // fourth, 4 s after a try during the wait) before any token is even looked at, the
    // right one included.
    assert_eq!(connect(right), "44{\"message\":\"unauthorized\"}");
    std::thread::sleep(std::time::Duration::from_millis(4100));
    assert!(connect(right).starts_with("40{\"sid\":"));
}

#[test]
#[ignore = "needs Chromium and tests/js node_modules: run `make test`"]
fn the_page_asks_for_the_access_token_once() {
    let gateway = Gateway::start("browser-token", &["--token", "s3cret-token"]);
    gateway.run_client(
        &node(),
        &[
            &js_script("browser_token.mjs"),
            &gateway.url,
            "s3cret-token",
        ],
    );
}

#[test]
fn foreign_origins_are_refused_unless_listed() {
    let gateway = Gateway::start("origin", &["--allow-origin", "http://laptop.local:8080"]);
    let own = format!("http://{}", gateway.addr);
    let handshake = |origin: Option<&str>| {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
        http(&gateway.addr, "GET", POLLING, &headers, b"")
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
        POLLING,
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
    assert!(gateway.wait_log("refused a request from origin \"http://evil.example\""));
}

#[test]
fn guessing_the_token_costs_a_new_session_every_three_tries() {
    let gateway = Gateway::start("token-guessing", &["--token", "s3cret"]);
    let mut ws = common::open_ws(&gateway, "");
    read_text(&mut ws);
    let mut answered = 0;
    for n in 0..200 {
        if ws
            .send(Message::text(format!("40{{\"token\":\"guess{n}\"}}")))
            .is_err()
        {
            break;
        }
    }
    // Three refusals, then the session is closed: 197 guesses were never tried.
    loop {
        match ws.read() {
            Ok(Message::Text(text)) if text.starts_with("44") => answered += 1,
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    assert_eq!(answered, 3);
    // One line at info for the first refusal; the rest at debug only.
    assert!(gateway.wait_log("closing after 3 refused CONNECTs"));
    assert!(gateway.wait_log("refused for a missing or wrong access token"));
    let log = gateway.log();
    let info = log
        .lines()
        .filter(|l| l.starts_with("INFO") && l.contains("access token"))
        .count();
    assert_eq!(info, 1, "{log}");
}

#[test]
fn a_null_origin_is_never_allowed() {
    let gateway = Gateway::start("null-origin", &["--allow-origin", "*"]);
    let handshake = |origin: &str| http(&gateway.addr, "GET", POLLING, &[("Origin", origin)], b"");
    let listed = handshake("http://laptop.local:8080");
    assert_eq!(listed.status, 200);
    assert_eq!(
        listed.header("access-control-allow-origin"),
        Some("http://laptop.local:8080")
    );
    // Sandboxed frames and file: pages send `null`: anything can, so `*` does not cover it.
    let null = handshake("null");
    assert_eq!(null.status, 403);
    assert_eq!(null.header("access-control-allow-origin"), None);
}

/// The status of a request sent with `host` as its `Host` header (and `extra` headers).
fn status_with_host(gateway: &Gateway, path: &str, host: &str, extra: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(&gateway.addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let request = if host.is_empty() {
        format!("GET {path} HTTP/1.0\r\n{extra}\r\n")
    } else {
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{extra}\r\n")
    };
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

#[test]
fn dns_rebinding_names_are_refused_on_every_route() {
    let gateway = Gateway::start("host-allow-list", &["--allow-host", "chat.example.org"]);
    let port = gateway.addr.rsplit(':').next().unwrap().to_owned();
    let upgrade = "Upgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
    let routes: [(&str, &str); 7] = [
        ("/", ""),
        ("/socket.io/socket.io.js", ""),
        ("/index.html", ""),
        (POLLING, ""),
        ("/socket.io/?EIO=4&transport=websocket", upgrade),
        ("/healthz", ""),
        ("/metrics", ""),
    ];
    // What a browser sends after the attacker's domain was rebound to the board: that name
    // in Host and in Origin alike.
    for host in [
        format!("rebind-probe.attacker.example:{port}"),
        "rebind-probe.attacker.example".to_owned(),
        format!("localhost.attacker.example:{port}"),
    ] {
        let origin = format!("Origin: http://{host}\r\n");
        for (path, extra) in routes {
            let status = status_with_host(&gateway, path, &host, &format!("{origin}{extra}"));
            assert_eq!(status, 421, "{host} {path}");
        }
    }
    // Addresses, localhost, .local names, this machine's hostname and --allow-host names.
    let own = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("localhost:{port}"),
        format!("raspberrypi.local:{port}"),
        own.trim().to_owned(),
        "chat.example.org".to_owned(),
        format!("CHAT.example.org:{port}"),
    ] {
        let origin = format!("Origin: http://{host}\r\n");
        assert_eq!(
            status_with_host(&gateway, "/", &host, &origin),
            200,
            "{host}"
        );
        assert_eq!(
            status_with_host(&gateway, POLLING, &host, &origin),
            200,
            "{host}"
        );
        let status = status_with_host(
            &gateway,
            "/socket.io/?EIO=4&transport=websocket",
            &host,
            &format!("{origin}{upgrade}"),
        );
        assert_eq!(status, 101, "{host}");
    }
    // A client that sends no Host is no browser, and is served.
    assert_eq!(status_with_host(&gateway, "/healthz", "", ""), 200);
    assert!(gateway.wait_log("refused a request for the host"));
}
