//! Running as a service: a clean stop on SIGTERM, systemd's readiness, watchdog and stopping
//! notifications, socket activation, unit files that `systemd-analyze verify` accepts, and
//! journald priorities on log lines.

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    self, Gateway, POLLING, connect_polling, http, js_script, node, poll_until, post, repo,
    scratch_dir,
};

const BIN: &str = env!("CARGO_BIN_EXE_emberchat");

/// A child process that is killed, if still running, when the test ends, failed or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn datagram(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn sigterm_stops_cleanly() {
    let gateway = Gateway::start("http-sigterm", &[]);
    let sid = connect_polling(&gateway);
    let path = format!("{POLLING}&sid={sid}");
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
fn notifies_ready_watchdog_and_stopping() {
    let dir = scratch_dir("notify");
    let notify_path = dir.join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(dir.join("chat.db"))
            .env("NOTIFY_SOCKET", &notify_path)
            .env("WATCHDOG_USEC", "200000")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());

    let mut states = Vec::new();
    while !states.iter().any(|s: &String| s.contains("READY=1")) {
        states.push(datagram(&notify));
    }
    // Ready means serving: the page answers at once. The address is on the "listening" line,
    // after any warning (a build without the client bundle warns first).
    let mut log = String::new();
    let addr = loop {
        let mut line = String::new();
        let read = stderr.read_line(&mut line).unwrap();
        log.push_str(&line);
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest.split(',').next().unwrap().trim().to_owned();
        }
        assert!(read > 0, "no address in {log:?}");
    };
    assert_eq!(http(&addr, "GET", "/", &[], b"").status, 200);
    // The watchdog is fed from the event loop (every WATCHDOG_USEC / 2).
    let mut watchdog = 0;
    while watchdog < 2 {
        if datagram(&notify) == "WATCHDOG=1" {
            watchdog += 1;
        }
    }

    let stop_requested = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    loop {
        if datagram(&notify).contains("STOPPING=1") {
            break;
        }
    }
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            stop_requested.elapsed() < Duration::from_secs(5),
            "not stopped within 5 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs systemd-socket-activate and tests/js node_modules: run `make test`"]
fn serves_a_socket_passed_by_systemd() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = scratch_dir("socket-activation");
    let listen = format!("127.0.0.1:{port}");
    // systemd-socket-activate listens, then starts the gateway with LISTEN_FDS on the first
    // connection, as systemd does with emberchat.socket.
    let mut activator = KillOnDrop(
        Command::new("systemd-socket-activate")
            .args(["-l", &listen, BIN, "--listen", "127.0.0.1:1", "--db"])
            .arg(dir.join("chat.db"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("systemd-socket-activate (Debian package systemd)"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            Instant::now() < deadline,
            "systemd-socket-activate did not listen"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("http://{listen}");
    let output = Command::new(node())
        .args([&js_script("chat_roundtrip.mjs"), &url, "websocket"])
        .current_dir(repo())
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &activator.0.id().to_string()])
        .status();
    let status = activator.0.wait().unwrap();
    let mut log = String::new();
    let _ = std::io::Read::read_to_string(&mut activator.0.stderr.take().unwrap(), &mut log);
    assert!(
        output.status.success(),
        "{}{}\n--- gateway:\n{log}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // It served the passed socket, not its own --listen address.
    assert!(
        log.contains(&format!("listening on http://{listen}")),
        "{log}"
    );
    assert!(status.success(), "{status}\n{log}");
}

#[test]
#[ignore = "needs systemd-analyze (Debian package systemd): run `make test`"]
fn unit_files_verify() {
    let dir = scratch_dir("units");
    let service = std::fs::read_to_string(repo().join("cross/systemd/emberchat.service")).unwrap();
    assert!(service.contains("ExecStart=/usr/local/bin/emberchat\n"));
    std::fs::write(
        dir.join("emberchat.service"),
        service.replace(
            "ExecStart=/usr/local/bin/emberchat",
            &format!("ExecStart={BIN}"),
        ),
    )
    .unwrap();
    std::fs::copy(
        repo().join("cross/systemd/emberchat.socket"),
        dir.join("emberchat.socket"),
    )
    .unwrap();
    let backup =
        std::fs::read_to_string(repo().join("cross/systemd/emberchat-backup.service")).unwrap();
    assert!(backup.contains("exec /usr/local/bin/emberchat backup"));
    std::fs::write(
        dir.join("emberchat-backup.service"),
        backup.replace("/usr/local/bin/emberchat", BIN),
    )
    .unwrap();
    std::fs::copy(
        repo().join("cross/systemd/emberchat-backup.timer"),
        dir.join("emberchat-backup.timer"),
    )
    .unwrap();
    common::assert_units_verify(&dir, &[]);
}

#[test]
fn logs_with_journald_priorities_under_systemd() {
    let dir = scratch_dir("journald");
    let bad = dir.join("garbage.db");
    std::fs::write(&bad, vec![b'x'; 4096]).unwrap();
    // Under systemd (JOURNAL_STREAM set) lines carry syslog priorities: <6> info, <3> error.
    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&bad)
        .env("JOURNAL_STREAM", "8:12345")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.lines()
            .any(|l| l.starts_with("<3>") && l.contains("not a database")),
        "{log}"
    );
    assert!(log.lines().all(|l| l.starts_with('<')), "{log}");
    // Plain lines otherwise.
    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(&bad)
        .env_remove("JOURNAL_STREAM")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.lines()
            .any(|l| l.starts_with("ERROR") && l.contains("not a database")),
        "{log}"
    );
}

/// `emberchat` with its open-file limit set to `soft`/`hard` before it starts.
fn with_file_limit(soft: u64, hard: Option<u64>) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(BIN);
    // SAFETY: between fork and exec only getrlimit and setrlimit run, both async-signal-safe,
    // on stack values; no allocation or lock is touched.
    unsafe {
        command.pre_exec(move || {
            let mut limit = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = soft as libc::rlim_t;
            if let Some(hard) = hard {
                limit.rlim_max = hard as libc::rlim_t;
            }
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

/// The soft and hard "Max open files" of a process (`self` or a pid).
fn open_file_limits(process: &str) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{process}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let mut numbers = line
        .split_whitespace()
        .skip(3)
        .map(|n| n.parse().unwrap_or(u64::MAX));
    (numbers.next().unwrap(), numbers.next().unwrap())
}

#[test]
fn the_open_file_limit_is_fitted_to_max_clients_or_warned_about() {
    // A soft limit of 256 under a generous hard one: raised as far as --max-clients needs.
    let dir = scratch_dir("fd-limit-raised");
    let gateway = Gateway::start_command(
        with_file_limit(256, None),
        dir.clone(),
        &dir.join("chat.db"),
        &["--max-clients", "1000"],
    );
    let (_, hard) = open_file_limits("self");
    let (soft, _) = open_file_limits(&gateway.pid().to_string());
    assert_eq!(soft, hard.min(2064));
    assert!(!gateway.log().contains("open files allowed"));
    drop(gateway);

    // A hard limit of 256: a warning that says what to do.
    let dir = scratch_dir("fd-limit-low");
    let gateway = Gateway::start_command(
        with_file_limit(256, Some(256)),
        dir.clone(),
        &dir.join("chat.db"),
        &[],
    );
    assert!(gateway.wait_log("only 256 open files allowed"));
    assert!(gateway.log().contains("LimitNOFILE"));
}
