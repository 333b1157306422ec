//! Connection state recovery: a client whose transport dropped comes back within the window
//! with its `pid` and `offset`, keeps its socket id and gets exactly what it missed; a manual
//! disconnect, an expired window, an offset the gateway never gave out, or a second holder of
//! the same session get no recovery (the missed messages then come through the replay).

use std::time::Duration;

use tungstenite::Message;

use crate::common::{self, Gateway, js_script, node, read_text};

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn recovery_after_a_dropped_transport() {
    let gateway = Gateway::start("recovery-dropped", &[]);
    gateway.run_client(
        &node(),
        &[&js_script("recovery.mjs"), &gateway.url, "dropped"],
    );
}

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn no_recovery_after_a_manual_disconnect() {
    let gateway = Gateway::start("recovery-manual", &[]);
    gateway.run_client(
        &node(),
        &[&js_script("recovery.mjs"), &gateway.url, "manual"],
    );
}

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn no_recovery_after_the_window() {
    let gateway = Gateway::start("recovery-window", &["--recovery-window", "1000"]);
    gateway.run_client(
        &node(),
        &[&js_script("recovery.mjs"), &gateway.url, "window"],
    );
}

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn recovery_closes_a_stale_session() {
    let gateway = Gateway::start("recovery-stale", &[]);
    gateway.run_client(
        &node(),
        &[&js_script("recovery.mjs"), &gateway.url, "stale"],
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
