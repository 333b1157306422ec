//! A database that fills up under a running gateway: sends get error acks, the gateway keeps
//! serving, and the same sends succeed once there is room again. Needs root (it mounts a
//! small tmpfs), as `make test` has on this project's machines.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Gateway, Ws, http, read_text, scratch_dir, socketio_ws};
use tungstenite::Message;

/// A tmpfs of a given size, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CAP_SYS_ADMIN)"
        );
        Tmpfs(dir.to_owned())
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Reads until the ack with id `ack`, keeping broadcasts in `seen`; returns the ack's args.
fn wait_ack(ws: &mut Ws, ack: u64, seen: &mut Vec<String>) -> String {
    let prefix = format!("43{ack}");
    loop {
        let text = read_text(ws);
        if let Some(args) = text.strip_prefix(&prefix) {
            if args.starts_with('[') {
                return args.to_owned();
            }
        }
        seen.push(text);
    }
}

fn send(ws: &mut Ws, ack: u64, text: &str, offset: &str) {
    ws.send(Message::text(format!(
        "42{ack}[\"chat message\",\"{text}\",\"{offset}\"]"
    )))
    .unwrap();
}

#[test]
fn full_disk_gives_error_acks_then_recovers() {
    let dir = scratch_dir("disk-full");
    let tmpfs = Tmpfs::mount(&dir.join("mnt"), "1m");
    let db = dir.join("mnt/chat.db");
    let gateway = Gateway::start_at(dir.clone(), &db, &["--max-message-rate", "0"]);
    let (mut writer, _) = socketio_ws(&gateway, "{}");
    let (mut watcher, _) = socketio_ws(&gateway, "{}");
    let filler = "x".repeat(8000);
    let mut seen = Vec::new();
    let mut failed_at = None;
    for n in 1..=400 {
        send(
            &mut writer,
            n,
            &format!("{n}-{filler}"),
            &format!("fill-{n}"),
        );
        let args = wait_ack(&mut writer, n, &mut seen);
        if args != "[]" {
            assert!(args.contains("full"), "{args}");
            failed_at = Some(n);
            break;
        }
    }
    let failed_at = failed_at.expect("a 1 MB disk never filled up");
    assert!(failed_at > 1, "nothing could be stored at all");
    assert!(gateway.wait_log("database or disk is full"));

    // The gateway keeps serving: pages, new connections and history replay still work.
    assert_eq!(http(&gateway.addr, "GET", "/", &[], b"").status, 200);
    let (mut late, _) = socketio_ws(&gateway, "{\"serverOffset\":0}");
    let first = read_text(&mut late);
    assert!(first.starts_with("42[\"chat message\",\"1-x"), "{first}");

    // Room again: the failed message, retried with its client offset, is stored once.
    tmpfs.resize("64m");
    let retry = failed_at + 1000;
    send(
        &mut writer,
        retry,
        &format!("{failed_at}-{filler}"),
        &format!("fill-{failed_at}"),
    );
    assert_eq!(wait_ack(&mut writer, retry, &mut seen), "[]");
    let expected = format!("42[\"chat message\",\"{failed_at}-x");
    let mut watched = Vec::new();
    loop {
        let text = read_text(&mut watcher);
        if text.starts_with(&expected) {
            break;
        }
        watched.push(text);
    }
    assert_eq!(
        watched.len() as u64,
        failed_at - 1,
        "the watcher saw every stored message once"
    );
    drop(gateway);
}
