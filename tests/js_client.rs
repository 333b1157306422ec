//! The official JavaScript client (socket.io-client from npm) chats through the real binary.

mod common;

use common::{Gateway, js_script, node};

fn roundtrip(mode: &str) {
    let gateway = Gateway::start(&format!("js-{mode}"), &[]);
    let script = js_script("chat_roundtrip.mjs");
    gateway.run_client(&node(), &[&script, &gateway.url, mode]);
}

#[test]
fn default_transports_polling_then_websocket_upgrade() {
    roundtrip("default");
}

#[test]
fn websocket_only() {
    roundtrip("websocket");
}

#[test]
fn polling_only() {
    roundtrip("polling");
}
