//! Chatting with the official clients: socket.io-client from npm in its three transport modes,
//! python-socketio from PyPI, and the chat page in two headless Chromium pages. Each client
//! sends, and every client receives every message with the same id.

use crate::common::{Gateway, js_script, node, python, repo, scratch_dir};

fn js_roundtrip(mode: &str) {
    let gateway = Gateway::start(&format!("js-{mode}"), &[]);
    let script = js_script("chat_roundtrip.mjs");
    gateway.run_client(&node(), &[&script, &gateway.url, mode]);
}

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn js_default_transports_polling_then_websocket_upgrade() {
    js_roundtrip("default");
}

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn js_websocket_only() {
    js_roundtrip("websocket");
}

#[test]
#[ignore = "needs tests/js node_modules: run `make test`"]
fn js_polling_only() {
    js_roundtrip("polling");
}

#[test]
#[ignore = "needs the tests/py virtualenv: run `make test`"]
fn python_socketio_chats() {
    let gateway = Gateway::start("python", &[]);
    let script = repo().join("tests/py/chat_roundtrip.py");
    gateway.run_client(&python(), &[&script.display().to_string(), &gateway.url]);
}

/// A message typed in one page appears in the other.
#[test]
#[ignore = "needs Chromium and tests/js node_modules: run `make test`"]
fn two_pages_chat() {
    let gateway = Gateway::start("browser", &[]);
    let script = js_script("browser_chat.mjs");
    let shot = scratch_dir("browser-shot").join("page.png");
    gateway.run_client(
        &node(),
        &[&script, &gateway.url, &shot.display().to_string()],
    );
    assert!(shot.exists(), "no screenshot taken");
}
