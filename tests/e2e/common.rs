//! What every feature's tests share: the real `emberchat` binary started on a free loopback
//! port ([`Gateway`]), client programs run against it, and raw HTTP, polling and WebSocket
//! exchanges with it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::{Message, WebSocket};

/// A running gateway on a free loopback port with a fresh database; killed on drop.
pub struct Gateway {
    child: Child,
    pub addr: String,
    pub url: String,
    pub dir: PathBuf,
    log: Arc<Mutex<String>>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh scratch directory under target/.
pub fn scratch_dir(name: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = repo()
        .join("target/e2e")
        .join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Gateway {
    pub fn start(name: &str, args: &[&str]) -> Gateway {
        let dir = scratch_dir(name);
        let db = dir.join("chat.db");
        Gateway::start_at(dir, &db, args)
    }

    /// Starts on an existing (or new) database file; `dir` is the gateway's scratch folder.
    pub fn start_at(dir: PathBuf, db: &Path, args: &[&str]) -> Gateway {
        Gateway::start_command(Command::new(env!("CARGO_BIN_EXE_emberchat")), dir, db, args)
    }

    /// Starts `command` (the binary, or an emulator running another build of it).
    pub fn start_command(mut command: Command, dir: PathBuf, db: &Path, args: &[&str]) -> Gateway {
        let mut child = command
            .args(["--listen", "127.0.0.1:0", "--db"])
            .arg(db)
            .args(["--log-level", "debug"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start emberchat");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split(',').next().unwrap_or("").to_owned();
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("emberchat did not start:\n{}", log.lock().unwrap());
            }
        };
        Gateway {
            child,
            url: format!("http://{addr}"),
            addr,
            dir,
            log,
        }
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the gateway logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until the gateway has logged a line containing `needle`.
    pub fn wait_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// Runs a client program with the gateway's URL appended to `args`, and asserts that it
    /// succeeds, printing its output either way.
    pub fn run_client(&self, program: &Path, args: &[&str]) -> String {
        assert!(
            program.components().count() == 1 || program.exists(),
            "{} is missing: run `make test-deps` (make test does it)",
            program.display()
        );
        let mut command = Command::new(program);
        command.args(args).current_dir(repo());
        let output = command.output().expect("run client");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("--- {} {:?}\n{stdout}{stderr}", program.display(), args);
        assert!(
            output.status.success(),
            "client failed ({}):\n{stdout}{stderr}\n--- gateway log:\n{}",
            output.status,
            self.log()
        );
        stdout.into_owned()
    }

    /// Kills the process with SIGKILL, as a power cut would (for the process, not the disk).
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        unsafe_kill(self.child.id(), 15);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "emberchat did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, signal: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

/// The units the gateway ships, by name.
pub const UNITS: [&str; 4] = [
    "emberchat.service",
    "emberchat.socket",
    "emberchat-backup.service",
    "emberchat-backup.timer",
];

/// `systemd-analyze verify` of [`UNITS`], run in `dir` with `options` (such as `--root=`):
/// it must accept them without a word.
pub fn assert_units_verify(dir: &Path, options: &[String]) {
    let output = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(options)
        .args(UNITS)
        .current_dir(dir)
        .output()
        .expect("systemd-analyze (Debian package systemd)");
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "{complaints}"
    );
}

pub fn node() -> PathBuf {
    PathBuf::from("node")
}

pub fn js_script(name: &str) -> String {
    let path = repo().join("tests/js").join(name);
    assert!(
        repo()
            .join("tests/js/node_modules/socket.io-client")
            .exists(),
        "tests/js/node_modules is missing: run `make test-deps` (make test does it)"
    );
    path.display().to_string()
}

pub fn python() -> PathBuf {
    repo().join("tests/py/.venv/bin/python")
}

/// A minimal HTTP/1.1 exchange on a fresh connection: returns status, headers and body.
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> HttpResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("complete HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 4 + size..];
    }
}

pub type Ws = WebSocket<TcpStream>;

/// Opens a raw Engine.IO WebSocket (`query` is appended, e.g. `&sid=...`).
pub fn open_ws(gateway: &Gateway, query: &str) -> Ws {
    let stream = TcpStream::connect(&gateway.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket{query}",
        gateway.addr
    );
    let (ws, response) = tungstenite::client::client(url, stream).expect("websocket handshake");
    assert_eq!(response.status(), 101);
    ws
}

/// The next text message, skipping WebSocket pings and Engine.IO pings (answered).
pub fn read_text(ws: &mut Ws) -> String {
    loop {
        match ws.read().expect("read") {
            Message::Text(text) if text.as_str() == "2" => ws.send(Message::text("3")).unwrap(),
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A raw Socket.IO client on the main namespace: returns the socket and the CONNECT reply.
pub fn socketio_ws(gateway: &Gateway, auth: &str) -> (Ws, String) {
    let mut ws = open_ws(gateway, "");
    let open = read_text(&mut ws);
    assert!(open.starts_with("0{"), "{open}");
    ws.send(Message::text(format!("40{auth}"))).unwrap();
    let reply = read_text(&mut ws);
    assert!(reply.starts_with("40{\"sid\":"), "{reply}");
    (ws, reply)
}

/// The Engine.IO polling endpoint; `&sid=...` is appended for a session.
pub const POLLING: &str = "/socket.io/?EIO=4&transport=polling";

pub fn get(gateway: &Gateway, path: &str) -> HttpResponse {
    http(&gateway.addr, "GET", path, &[], b"")
}

/// A POST with the body type the official client sends.
pub fn post(gateway: &Gateway, path: &str, body: &str) -> HttpResponse {
    http(
        &gateway.addr,
        "POST",
        path,
        &[("Content-Type", "text/plain;charset=UTF-8")],
        body.as_bytes(),
    )
}

/// Polls until the received packets contain `needle` (bounded: a few long-polls at most).
pub fn poll_until(gateway: &Gateway, path: &str, needle: &str) -> String {
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
pub fn connect_polling(gateway: &Gateway) -> String {
    let open = get(gateway, POLLING);
    assert_eq!(open.status, 200);
    let body = open.text();
    let sid = body
        .strip_prefix("0{\"sid\":\"")
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("open packet: {body}"))
        .to_owned();
    assert_eq!(
        post(gateway, &format!("{POLLING}&sid={sid}"), "40").text(),
        "ok"
    );
    let reply = get(gateway, &format!("{POLLING}&sid={sid}")).text();
    assert!(reply.starts_with("40{\"sid\":\""), "{reply}");
    sid
}

/// A field of the gateway's /proc/PID/status, in KiB.
pub fn status_kib(gateway: &Gateway, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", gateway.pid())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc status"))
}

/// A value of the gateway's /metrics.
pub fn metric(gateway: &Gateway, name: &str) -> u64 {
    let metrics = http(&gateway.addr, "GET", "/metrics", &[], b"").text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {metrics}"))
}

/// Waits up to 10 s for a metric to reach `value`.
pub fn wait_metric(gateway: &Gateway, name: &str, value: u64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(gateway, name) != value {
        assert!(Instant::now() < deadline, "{name} never reached {value}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The chat id in a `42["chat message",content,id,"id"]` broadcast.
pub fn message_id(packet: &str) -> Option<u64> {
    let rest = packet.strip_prefix("42[\"chat message\",")?;
    let tail = &rest[rest.rfind("\",")? + 2..];
    tail.split([',', ']']).next()?.parse().ok()
}

/// A free loopback port for a server that cannot be told to pick one itself.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Socket.IO tutorial's own server (bench/node) on `db`, until dropped.
pub struct TutorialServer {
    child: std::process::Child,
    pub url: String,
}

impl TutorialServer {
    pub fn start(db: &Path) -> TutorialServer {
        let server = repo().join("bench/node/index.js");
        assert!(
            repo().join("bench/node/node_modules").exists(),
            "bench/node/node_modules is missing: run `make test-deps` (make test does it)"
        );
        let port = free_port();
        let child = std::process::Command::new(node())
            .arg(&server)
            .env("PORT", port.to_string())
            .env("DB", db)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start the tutorial's server");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the tutorial's server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        TutorialServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl TutorialServer {
    /// Sends `count` acked messages `PREFIX i` with client offsets `PREFIX-i`, as the
    /// tutorial's client does (tests/js/send.mjs).
    pub fn send(&self, count: u32, prefix: &str) {
        let output = Command::new(node())
            .args([
                js_script("send.mjs").as_str(),
                &self.url,
                &count.to_string(),
                prefix,
            ])
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for TutorialServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
