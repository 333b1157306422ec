//! Storage: the database the gateway keeps every message in. It refuses to start on a bad
//! database or a read-only one; when the disk fills up, the file is removed, or the filesystem
//! turns read-only under load, sends get error acks, the gateway keeps serving, nothing acked
//! is lost, and the same sends succeed once there is room again. The tests that mount
//! filesystems need root, as `make test` has on this project's machines.

use std::path::{Path, PathBuf};
use std::process::Command;

use tungstenite::Message;

use crate::common::{Gateway, Ws, http, read_text, scratch_dir, socketio_ws};

const BIN: &str = env!("CARGO_BIN_EXE_emberchat");

/// The ack of a message the database did not take: the details are in the gateway's log.
const NOT_STORED: &str = "[{\"error\":\"message not stored, try again later\"}]";

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
        self.remount(&format!("size={size}"));
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
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
        if let Some(args) = text.strip_prefix(&prefix)
            && args.starts_with('[')
        {
            return args.to_owned();
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
fn refuses_to_start_on_a_bad_database() {
    let dir = scratch_dir("bad-db");
    let garbage = dir.join("garbage.db");
    std::fs::write(&garbage, vec![b'x'; 8192]).unwrap();
    let foreign = dir.join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE messages (id INTEGER PRIMARY KEY, body BLOB)")
        .unwrap();
    let newer = dir.join("newer.db");
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute_batch(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, \
             client_offset TEXT UNIQUE, content TEXT); PRAGMA user_version = 9;",
        )
        .unwrap();
    let directory = dir.join("a-directory");
    std::fs::create_dir_all(&directory).unwrap();
    for (db, reason) in [
        (&garbage, "file is not a database"),
        (&foreign, "expected id, client_offset, content"),
        (&newer, "schema version 9 is not one this emberchat knows"),
        (&directory, "unable to open database file"),
    ] {
        let output = Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .env_remove("JOURNAL_STREAM")
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "started on {}", db.display());
        let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("ERROR")).collect();
        assert_eq!(errors.len(), 1, "{log}");
        assert!(errors[0].contains(reason), "{log}");
    }
    // The good case still starts (and the harness sees it listening).
    drop(Gateway::start("good-db", &[]));
}

#[test]
#[ignore = "needs root (it mounts a tmpfs): run `make test` as root"]
fn full_disk_gives_error_acks_then_recovers() {
    let dir = scratch_dir("disk-full");
    let tmpfs = Tmpfs::mount(&dir.join("mnt"), "1m");
    let db = dir.join("mnt/chat.db");
    // No free-space floor: this is what happens when SQLite itself meets a full disk.
    let gateway = Gateway::start_at(
        dir.clone(),
        &db,
        &["--max-message-rate", "0", "--min-free-space", "0"],
    );
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
            assert_eq!(args, NOT_STORED);
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

/// Below `--min-free-space` new messages get error acks and `/healthz` says why with 503,
/// before SQLite meets a full disk; the log says so once; with room again it all comes back
/// by itself, and nothing acked is lost.
#[test]
#[ignore = "needs root (it mounts a tmpfs): run `make test` as root"]
fn the_free_space_floor_refuses_messages_and_recovers_by_itself() {
    let dir = scratch_dir("free-space");
    let _tmpfs = Tmpfs::mount(&dir.join("mnt"), "16m");
    let db = dir.join("mnt/chat.db");
    let floor = 8 * 1024 * 1024;
    let gateway = Gateway::start_at(
        dir.clone(),
        &db,
        &[
            "--max-message-rate",
            "0",
            "--min-free-space",
            &floor.to_string(),
        ],
    );
    let (mut writer, _) = socketio_ws(&gateway, "{}");
    let mut seen = Vec::new();
    send(&mut writer, 1, "before", "o-1");
    assert_eq!(wait_ack(&mut writer, 1, &mut seen), "[]");
    assert_eq!(http(&gateway.addr, "GET", "/healthz", &[], b"").status, 200);

    // Something else fills the card to under the floor (with room left for SQLite).
    let filler = dir.join("mnt/filler");
    std::fs::write(&filler, vec![0u8; 10 * 1024 * 1024]).unwrap();
    for n in 2..=4 {
        send(&mut writer, n, "refused", &format!("o-{n}"));
        assert_eq!(wait_ack(&mut writer, n, &mut seen), NOT_STORED);
    }
    let health = http(&gateway.addr, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 503);
    assert!(
        health.text().contains("--min-free-space"),
        "{}",
        health.text()
    );
    assert_eq!(
        gateway
            .log()
            .matches("refusing new messages until there is room")
            .count(),
        1,
        "one line per episode:\n{}",
        gateway.log()
    );

    // Room again: taken again without a restart, the refused message stored once on retry.
    std::fs::remove_file(&filler).unwrap();
    send(&mut writer, 5, "refused", "o-2");
    assert_eq!(wait_ack(&mut writer, 5, &mut seen), "[]");
    assert_eq!(http(&gateway.addr, "GET", "/healthz", &[], b"").status, 200);
    assert!(gateway.wait_log("free space is back above --min-free-space"));
    assert!(gateway.stop().success());
    let connection = rusqlite::Connection::open(&db).unwrap();
    let stored: Vec<String> = connection
        .prepare("SELECT content FROM messages ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(stored, ["before", "refused"]);
}

/// Sends `count` messages numbered from `first` and returns each one's ack arguments.
fn send_all(ws: &mut Ws, first: u64, count: u64, seen: &mut Vec<String>) -> Vec<String> {
    for n in first..first + count {
        send(ws, n, &format!("message {n}"), &format!("offset-{n}"));
    }
    (first..first + count)
        .map(|n| wait_ack(ws, n, seen))
        .collect()
}

#[test]
#[ignore = "needs root (it bind-mounts a directory read-only): run `make test` as root"]
fn read_only_database_is_refused_at_start() {
    let dir = scratch_dir("read-only-start");
    let db = dir.join("data/chat.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    // A database the gateway wrote to, then seen through a read-only bind mount (root is
    // not stopped by file modes).
    let gateway = Gateway::start_at(dir.clone(), &db, &[]);
    assert_eq!(gateway.stop().code(), Some(0));
    let read_only = dir.join("ro");
    std::fs::create_dir_all(&read_only).unwrap();
    let bind = |args: &[&str]| {
        let status = Command::new("mount").args(args).status().unwrap();
        assert!(status.success(), "mount {args:?}");
    };
    bind(&[
        "--bind",
        dir.join("data").to_str().unwrap(),
        read_only.to_str().unwrap(),
    ]);
    let _unmount = Tmpfs(read_only.clone());
    bind(&["-o", "remount,ro,bind", read_only.to_str().unwrap()]);

    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(read_only.join("chat.db"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("read-only"), "{stderr}");
}

#[test]
fn removed_database_file_is_not_written_to() {
    let dir = scratch_dir("db-removed");
    let db = dir.join("chat.db");
    let gateway = Gateway::start_at(dir.clone(), &db, &["--max-message-rate", "0"]);
    let (mut writer, _) = socketio_ws(&gateway, "{}");
    let mut seen = Vec::new();
    let acks = send_all(&mut writer, 1, 20, &mut seen);
    assert!(acks.iter().all(|a| a == "[]"), "{acks:?}");

    // SQLite would go on writing to the open, deleted file, and whatever was acked from
    // then on would be gone at the next start: the gateway refuses instead.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let acks = send_all(&mut writer, 21, 20, &mut seen);
    assert!(acks.iter().all(|a| a == NOT_STORED), "{acks:?}");
    assert!(gateway.wait_log("is gone"));
    let health = http(&gateway.addr, "GET", "/healthz", &[], b"");
    assert_eq!(health.status, 503);
    // Anyone on the LAN may ask: the path and the OS error go to the log only.
    let answer = health.text();
    assert!(
        !answer.contains("chat.db") && !answer.contains(&*dir.to_string_lossy()),
        "{answer}"
    );
    assert!(gateway.wait_log("health check failed"));
    assert_eq!(http(&gateway.addr, "GET", "/", &[], b"").status, 200);
    let (_other, _) = socketio_ws(&gateway, "{}");
    drop(gateway);
}

/// An ext4 filesystem in a file on a loop device, mounted with `errors=remount-ro`; undone on
/// drop.
struct Ext4Loop {
    device: String,
    mount: PathBuf,
}

fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

impl Ext4Loop {
    /// Makes a 32 MB ext4 image in `dir` and mounts it.
    fn create(dir: &Path) -> Ext4Loop {
        let image = dir.join("fs.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(32 << 20)
            .unwrap();
        run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]);
        Ext4Loop::attach(dir)
    }

    /// Mounts the image in `dir` (again).
    fn attach(dir: &Path) -> Ext4Loop {
        let image = dir.join("fs.img");
        let device = run("losetup", &["-f", "--show", image.to_str().unwrap()]);
        // A loop device can keep the read-only flag of an earlier user.
        run("blockdev", &["--setrw", &device]);
        let mount = dir.join("mnt");
        std::fs::create_dir_all(&mount).unwrap();
        let loop_mount = Ext4Loop { device, mount };
        run(
            "mount",
            &[
                "-o",
                "errors=remount-ro",
                &loop_mount.device,
                loop_mount.mount.to_str().unwrap(),
            ],
        );
        loop_mount
    }

    /// What ext4 does when it meets an I/O or consistency error: it turns read-only at once.
    fn fail(&self) {
        let name = self.device.trim_start_matches("/dev/");
        std::fs::write(
            format!("/sys/fs/ext4/{name}/trigger_fs_error"),
            "emberchat test\n",
        )
        .unwrap();
    }
}

impl Drop for Ext4Loop {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

#[test]
#[ignore = "needs root, a loop device and mkfs.ext4: run `make test` as root"]
fn filesystem_turning_read_only_under_load_gives_error_acks_and_keeps_what_was_acked() {
    let dir = scratch_dir("fs-read-only");
    {
        let fs = Ext4Loop::create(&dir);
        let db = fs.mount.join("chat.db");
        // A 32 MB filesystem: under the default free-space floor, which is not what this tests.
        let gateway = Gateway::start_at(
            dir.clone(),
            &db,
            &["--max-message-rate", "0", "--min-free-space", "0"],
        );
        let (mut writer, _) = socketio_ws(&gateway, "{}");
        let mut seen = Vec::new();
        let acks = send_all(&mut writer, 1, 50, &mut seen);
        assert!(acks.iter().all(|a| a == "[]"), "{acks:?}");

        // Under load: messages in flight while the filesystem fails. Theirs may go either
        // way; every later one is refused.
        for n in 51..=100 {
            send(
                &mut writer,
                n,
                &format!("message {n}"),
                &format!("offset-{n}"),
            );
        }
        fs.fail();
        for n in 101..=150 {
            send(
                &mut writer,
                n,
                &format!("message {n}"),
                &format!("offset-{n}"),
            );
        }
        let late: Vec<String> = (101..=150)
            .map(|n| wait_ack(&mut writer, n, &mut seen))
            .collect();
        assert!(late.iter().all(|a| a == NOT_STORED), "{late:?}");
        assert!(gateway.wait_log("storing"));
        // Still serving: the page, and a new client.
        assert_eq!(http(&gateway.addr, "GET", "/", &[], b"").status, 200);
        let (_other, _) = socketio_ws(&gateway, "{}");
        gateway.stop();
    }
    // Everything acked before the failure is on disk.
    let fs = Ext4Loop::attach(&dir);
    let gateway = Gateway::start_at(dir.clone(), &fs.mount.join("chat.db"), &[]);
    let (mut late, _) = socketio_ws(&gateway, "{\"serverOffset\":0}");
    for id in 1..=50 {
        let text = read_text(&mut late);
        assert!(text.contains(&format!(",{id},\"{id}\"]")), "{id}: {text}");
    }
    drop(gateway);
}
