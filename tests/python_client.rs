//! python-socketio (from PyPI) chats through the real binary.

mod common;

use common::{Gateway, python, repo};

#[test]
fn python_socketio_chats() {
    let gateway = Gateway::start("python", &[]);
    let script = repo().join("tests/py/chat_roundtrip.py");
    gateway.run_client(&python(), &[&script.display().to_string(), &gateway.url]);
}
