//! The ARM build: the aarch64 binary (`make cross-aarch64`) runs under qemu-user on this
//! machine and chats with the official client. Run by `make test` through `make test-cross`,
//! which builds it first; ignored by a plain `cargo test`.

use std::path::PathBuf;
use std::process::Command;

use crate::common::{self, Gateway, js_script, node, repo, scratch_dir};

#[test]
#[ignore = "needs the aarch64 build and qemu-user: run `make test-cross`"]
fn aarch64_binary_chats_under_qemu() {
    let binary = std::env::var_os("EMBERCHAT_TEST_ARM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/aarch64-unknown-linux-gnu/release/emberchat"));
    let binary = if binary.is_absolute() {
        binary
    } else {
        repo().join(binary)
    };
    assert!(
        binary.exists(),
        "{} is missing: run `make cross-aarch64`",
        binary.display()
    );
    let mut qemu = Command::new("qemu-aarch64");
    qemu.args(["-L", "/usr/aarch64-linux-gnu"]).arg(&binary);
    let dir = scratch_dir("qemu-aarch64");
    let db = dir.join("chat.db");
    let gateway = Gateway::start_command(qemu, dir, &db, &[]);
    gateway.run_client(
        &node(),
        &[&js_script("chat_roundtrip.mjs"), &gateway.url, "default"],
    );
    // The page and the embedded client bundle are in the ARM binary too.
    let bundle = common::http(&gateway.addr, "GET", "/socket.io/socket.io.js", &[], b"");
    assert_eq!(bundle.status, 200);
    let status = gateway.stop();
    assert!(status.success(), "{status}");
}
