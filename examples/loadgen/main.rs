//! Load generator for `make bench` (bench/run.sh): drives a Socket.IO chat server over raw
//! WebSockets, checks what comes back (nothing missing or duplicated, ids in order) and reads
//! the server's memory and CPU from /proc. Prints one JSON line per scenario.
//!
//! ```text
//! loadgen idle    --pid PID
//! loadgen conns   --pid PID --addr HOST:PORT [--clients 1000]
//! loadgen polling --pid PID --addr HOST:PORT [--clients 1000]
//! loadgen fanout  --pid PID --addr HOST:PORT [--receivers 100] [--messages 2000] [--rounds 1]
//! loadgen ingest  --pid PID --addr HOST:PORT [--messages 20000]
//! loadgen replay  --pid PID --addr HOST:PORT --rows N [--rounds 1]
//! loadgen burst   --pid PID --addr HOST:PORT [--messages 20000]
//! loadgen cluster --pids P1,P2,P3 --addrs A1,A2,A3 [--redis-pid PID] [--receivers 100]
//!                 [--messages 3000] [--rounds 1] [--ingest 15000]
//! ```
//!
//! With `--rounds N`, fanout and replay run N times and report the median round: one round
//! of a fast server lasts tens of milliseconds, where a scheduler hiccup moves it by half.
//!
//! Any server that behaves like the Socket.IO tutorial's chat works: `chat message` with
//! `(msg, clientOffset, ack)` in, `('chat message', msg, id)` out to everyone, and a replay of
//! rows after `auth.serverOffset` on connect.

mod cluster;
mod server;
mod ws;

use std::process::ExitCode;
use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use server::Server;
use ws::Conn;

type Result<T> = std::result::Result<T, String>;

struct Options {
    scenario: String,
    pid: u32,
    addr: String,
    clients: usize,
    receivers: usize,
    messages: usize,
    rows: i64,
    rounds: usize,
    pids: Vec<u32>,
    addrs: Vec<String>,
    redis_pid: u32,
    ingest: usize,
}

fn parse_options() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let scenario = args.next().ok_or("missing scenario")?;
    let mut options = Options {
        scenario,
        pid: 0,
        addr: String::new(),
        clients: 1000,
        receivers: 100,
        messages: 0,
        rows: 0,
        rounds: 1,
        pids: Vec::new(),
        addrs: Vec::new(),
        redis_pid: 0,
        ingest: 0,
    };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("bad {flag} {value}"))
        };
        match flag.as_str() {
            "--pid" => options.pid = number()? as u32,
            "--addr" => options.addr = value.clone(),
            "--clients" => options.clients = number()?,
            "--receivers" => options.receivers = number()?,
            "--messages" => options.messages = number()?,
            "--rows" => options.rows = number()? as i64,
            "--rounds" => options.rounds = number()?.max(1),
            "--pids" => {
                options.pids = value
                    .split(',')
                    .map(|pid| pid.parse().map_err(|_| format!("bad pid {pid}")))
                    .collect::<Result<_>>()?;
            }
            "--addrs" => options.addrs = value.split(',').map(str::to_owned).collect(),
            "--redis-pid" => options.redis_pid = number()? as u32,
            "--ingest" => options.ingest = number()?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if options.scenario == "cluster" {
        if options.pids.is_empty() || options.pids.len() != options.addrs.len() {
            return Err("cluster needs --pids and --addrs, one of each per server".into());
        }
    } else if options.pid == 0 {
        return Err("--pid is required".into());
    }
    Ok(options)
}

fn main() -> ExitCode {
    let result = parse_options().and_then(|options| {
        let server = Server::new(options.pid);
        match options.scenario.as_str() {
            "idle" => idle(&server),
            "conns" => conns(&server, &options.addr, options.clients),
            "polling" => polling(&server, &options.addr, options.clients),
            "fanout" => fanout(
                &server,
                &options.addr,
                options.receivers,
                nonzero(options.messages, 2000),
                options.rounds,
            ),
            "ingest" => ingest(&server, &options.addr, nonzero(options.messages, 20000)),
            "replay" => replay(&server, &options.addr, options.rows, options.rounds),
            "burst" => burst(&server, &options.addr, nonzero(options.messages, 20000)),
            "cluster" => cluster::run(
                &cluster::Cluster {
                    servers: options.pids.iter().map(|&pid| Server::new(pid)).collect(),
                    addrs: options.addrs.clone(),
                    redis: (options.redis_pid > 0).then(|| Server::new(options.redis_pid)),
                },
                options.receivers,
                nonzero(options.messages, 3000),
                options.rounds,
                nonzero(options.ingest, 15000),
            ),
            other => Err(format!("unknown scenario {other}")),
        }
    });
    match result {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

fn nonzero(value: usize, default: usize) -> usize {
    if value == 0 { default } else { value }
}

fn io_err(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |error| format!("{what}: {error}")
}

/// Memory and threads of a server with no clients.
fn idle(server: &Server) -> Result<String> {
    let status = |field| server.status(field).map_err(io_err("/proc"));
    Ok(format!(
        "{{\"scenario\":\"idle\",\"rss_kib\":{},\"rss_anon_kib\":{},\"threads\":{}}}",
        status("VmRSS")?,
        status("RssAnon")?,
        status("Threads")?
    ))
}

/// RSS per idle WebSocket client, with `clients` connected (CONNECT done).
fn conns(server: &Server, addr: &str, clients: usize) -> Result<String> {
    let before = server.status("VmRSS").map_err(io_err("/proc"))?;
    let mut open = Vec::with_capacity(clients);
    for i in 0..clients {
        open.push(Conn::connect(addr, "").map_err(|e| format!("client {i}: {e}"))?);
    }
    growth_per_client(server, "conns", clients, before)
}

/// The server's RSS growth since `before` (KiB) divided among `clients`, once it has settled
/// (lazy allocations, deferred frees), as a scenario's JSON line.
fn growth_per_client(
    server: &Server,
    scenario: &str,
    clients: usize,
    before: u64,
) -> Result<String> {
    thread::sleep(Duration::from_secs(1));
    let after = server.status("VmRSS").map_err(io_err("/proc"))?;
    let per_client = (after.saturating_sub(before)) as f64 * 1024.0 / clients as f64;
    Ok(format!(
        "{{\"scenario\":\"{scenario}\",\"clients\":{clients},\"rss_before_kib\":{before},\
         \"rss_after_kib\":{after},\"bytes_per_client\":{per_client:.0}}}"
    ))
}

/// RSS per idle long-polling client, with `clients` joined: each as a browser holds it, a GET
/// pending on one connection and the POST connection kept alive beside it.
fn polling(server: &Server, addr: &str, clients: usize) -> Result<String> {
    let before = server.status("VmRSS").map_err(io_err("/proc"))?;
    let mut open = Vec::with_capacity(clients * 2);
    for i in 0..clients {
        let client = |e: std::io::Error| format!("polling client {i}: {e}");
        let mut gets = std::net::TcpStream::connect(addr).map_err(client)?;
        let mut posts = std::net::TcpStream::connect(addr).map_err(client)?;
        let handshake = http_exchange(&mut gets, "GET", "", "").map_err(client)?;
        let sid = handshake
            .split("\"sid\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or(format!("polling client {i}: no sid in {handshake}"))?
            .to_owned();
        http_exchange(&mut posts, "POST", &sid, "40").map_err(client)?;
        http_exchange(&mut gets, "GET", &sid, "").map_err(client)?;
        // This one stays pending until the next ping.
        http_send(&mut gets, "GET", &sid, "").map_err(client)?;
        open.push(gets);
        open.push(posts);
    }
    growth_per_client(server, "polling", clients, before)
}

/// Sends one Engine.IO polling request (`sid` empty for a handshake).
fn http_send(
    stream: &mut std::net::TcpStream,
    method: &str,
    sid: &str,
    body: &str,
) -> std::io::Result<()> {
    use std::io::Write;
    let sid = if sid.is_empty() {
        String::new()
    } else {
        format!("&sid={sid}")
    };
    let request = format!(
        "{method} /socket.io/?EIO=4&transport=polling{sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())
}

/// Sends a polling request and returns the response body.
fn http_exchange(
    stream: &mut std::net::TcpStream,
    method: &str,
    sid: &str,
    body: &str,
) -> std::io::Result<String> {
    use std::io::Read;
    http_send(stream, method, sid, body)?;
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        received.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&received);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return Ok(text[end + 4..end + 4 + length].to_owned());
            }
        }
    }
}

/// Readers of the burst scenario that read at full speed, and those that read slowly.
const BURST_FAST: usize = 7;
const BURST_SLOW: usize = 2;
/// What a slow reader spends on each message: about a tenth of the pace at which the
/// sender's messages come back.
const BURST_SLOW_PAUSE: Duration = Duration::from_millis(1);
/// How long the burst scenario waits for every reader to have everything.
const BURST_DEADLINE: Duration = Duration::from_secs(90);

/// One sender pipelines `messages` chat messages of 1 KB (with client offsets, without acks)
/// while reading its own echoes; 7 readers read at full speed, 2 spend 1 ms on each message, 1 joins and never
/// reads. Reports when the fast and the slow readers had everything, who was disconnected,
/// whether anything came twice or out of order, and the server's peak RSS growth.
fn burst(server: &Server, addr: &str, messages: usize) -> Result<String> {
    let tag = "burst";
    let _stalled = Conn::connect(addr, "").map_err(|e| format!("stalled reader: {e}"))?;
    let (report, reports) = mpsc::channel::<(bool, Result<Received>)>();
    let mut handles = Vec::new();
    for i in 0..BURST_FAST + BURST_SLOW {
        let slow = i >= BURST_FAST;
        let mut conn = Conn::connect(addr, "").map_err(|e| format!("reader {i}: {e}"))?;
        handles.push(conn.shutdown_handle().map_err(io_err("reader"))?);
        let report = report.clone();
        thread::spawn(move || {
            let pause = if slow {
                BURST_SLOW_PAUSE
            } else {
                Duration::ZERO
            };
            let received = receive_paced(&mut conn, messages, tag, pause);
            let _ = report.send((slow, received));
            drop(report);
            // Stay connected until the run is over, answering pings, so that leaving is
            // not mistaken for being dropped.
            while conn.next_text().is_ok() {}
        });
    }
    drop(report);
    let mut sender = Conn::connect(addr, "").map_err(|e| format!("sender: {e}"))?;
    handles.push(sender.shutdown_handle().map_err(io_err("sender"))?);
    // A server that drops messages leaves its readers waiting (its pings keep the reads
    // alive): past this, they are cut off and counted so.
    let watchdog = thread::spawn(move || {
        thread::sleep(BURST_DEADLINE);
        for handle in handles {
            let _ = handle.shutdown(std::net::Shutdown::Both);
        }
    });
    let baseline = server.status("VmRSS").map_err(io_err("/proc"))?;
    server.reset_peak().map_err(io_err("/proc"))?;
    let started = Instant::now();
    let mut writer = sender.writer().map_err(io_err("sender"))?;
    let sending = thread::spawn(move || -> std::io::Result<()> {
        let padding = "x".repeat(1000);
        for i in 0..messages {
            // With a client offset, as the tutorial's client sends it, but no ack.
            let packet =
                format!("42[\"chat message\",\"{tag} message {i:08} {padding}\",\"{tag}-{i}\"]");
            writer.queue_text(packet.as_bytes());
            if i % 16 == 15 {
                writer.flush()?;
            }
        }
        writer.flush()
    });
    let echoes = receive_paced(&mut sender, messages, tag, Duration::ZERO);
    let sent = sending.join().map_err(|_| "sender thread panicked")?;
    // A time is reported only when every reader of its kind had everything.
    let mut fast_done = Some(Duration::ZERO);
    let mut slow_done = Some(Duration::ZERO);
    let mut disconnected = 0;
    let mut in_order = true;
    let mut duplicates = 0;
    let mut problems = Vec::new();
    let results = reports.iter().chain([(false, echoes)]);
    for (slow, received) in results {
        match received {
            Ok(received) => {
                let took = received.done_at - started;
                let done = if slow { &mut slow_done } else { &mut fast_done };
                *done = done.map(|before| before.max(took));
                in_order &= received.in_order;
                duplicates += received.duplicates;
            }
            Err(error) => {
                disconnected += 1;
                problems.push(error);
                *(if slow { &mut slow_done } else { &mut fast_done }) = None;
            }
        }
    }
    if let Err(error) = sent {
        disconnected += 1;
        problems.push(format!("sender: {error}"));
        fast_done = None;
    }
    let seconds = |done: Option<Duration>| {
        done.map_or("null".to_owned(), |d| format!("{:.2}", d.as_secs_f64()))
    };
    let peak = server.status("VmHWM").map_err(io_err("/proc"))?;
    drop(watchdog);
    if !problems.is_empty() {
        eprintln!("loadgen burst: {}", problems.join("; "));
    }
    Ok(format!(
        "{{\"scenario\":\"burst\",\"messages\":{messages},\"fast_readers\":{BURST_FAST},\
         \"slow_readers\":{BURST_SLOW},\"fast_seconds\":{},\"slow_seconds\":{},\
         \"disconnected\":{disconnected},\"in_order\":{in_order},\"duplicates\":{duplicates},\
         \"peak_growth_kib\":{}}}",
        seconds(fast_done),
        seconds(slow_done),
        peak.saturating_sub(baseline)
    ))
}

/// What one receiver saw of a broadcast run.
struct Received {
    in_order: bool,
    /// Messages delivered again after their first delivery (not counted as received).
    duplicates: usize,
    done_at: Instant,
}

/// Reads `expected` chat messages sent with `tag` and checks that each id arrives once. Ids
/// of one run are consecutive, so a set is a bitmap over `first..first+expected`. Messages of
/// an earlier run that a server still delivers late are skipped by their tag.
fn receive(conn: &mut Conn, expected: usize, tag: &str) -> Result<Received> {
    receive_paced(conn, expected, tag, Duration::ZERO)
}

/// [`receive`], spending `pause` on each message (a slow reader).
fn receive_paced(conn: &mut Conn, expected: usize, tag: &str, pause: Duration) -> Result<Received> {
    let prefix = format!("42[\"chat message\",\"{tag} message ");
    let mut seen: Vec<bool> = Vec::new();
    let mut first = None;
    let mut last = 0;
    let mut in_order = true;
    let mut count = 0;
    let mut duplicates = 0;
    while count < expected {
        let packet = conn.next_text().map_err(io_err("receiver"))?;
        if !packet.starts_with(prefix.as_bytes()) {
            continue;
        }
        if !pause.is_zero() {
            thread::sleep(pause);
        }
        let Some(id) = ws::message_id(packet) else {
            continue;
        };
        // The first id seen may not be the smallest when the server reorders; leave room.
        let base = *first.get_or_insert(id - expected as i64);
        let slot = (id - base) as usize;
        if slot >= seen.len() {
            seen.resize((slot + 1).max(2 * expected + 1), false);
        }
        // A peer may deliver a message twice under load: counted and reported, not fatal.
        if std::mem::replace(&mut seen[slot], true) {
            duplicates += 1;
            continue;
        }
        in_order &= id > last;
        last = last.max(id);
        count += 1;
    }
    let ids = seen.iter().filter(|&&s| s).count();
    let span =
        seen.iter().rposition(|&s| s).unwrap_or(0) - seen.iter().position(|&s| s).unwrap_or(0) + 1;
    if ids != span {
        return Err(format!("{} ids delivered, but they span {span}", ids));
    }
    Ok(Received {
        in_order,
        duplicates,
        done_at: Instant::now(),
    })
}

/// Sends `messages` acked chat messages, pipelined, on `conn`, and waits for every ack while
/// also draining the broadcasts the server sends back to the sender. Returns when the last
/// ack arrived.
fn send_pipelined(conn: &mut Conn, messages: usize, tag: &str) -> Result<Instant> {
    let mut writer = conn.writer().map_err(io_err("sender"))?;
    let tag = tag.to_owned();
    let sending = thread::spawn(move || -> std::io::Result<()> {
        for i in 0..messages {
            let packet = format!("42{i}[\"chat message\",\"{tag} message {i:08}\",\"{tag}-{i}\"]");
            writer.queue_text(packet.as_bytes());
            if i % 64 == 63 {
                writer.flush()?;
            }
        }
        writer.flush()
    });
    let mut acked = vec![false; messages];
    let mut acks = 0;
    while acks < messages {
        let packet = conn.next_text().map_err(io_err("sender"))?;
        if let Some(id) = ws::ack_id(packet) {
            let slot = acked
                .get_mut(id as usize)
                .ok_or(format!("ack for unknown id {id}"))?;
            if std::mem::replace(slot, true) {
                return Err(format!("ack {id} twice"));
            }
            acks += 1;
        }
    }
    let done = Instant::now();
    sending
        .join()
        .map_err(|_| "sender thread panicked")?
        .map_err(io_err("sender"))?;
    Ok(done)
}

/// One sender pipelines `messages` to `receivers` listeners, `rounds` times after a warm-up:
/// deliveries per second and server CPU per delivery of the median round.
fn fanout(
    server: &Server,
    addr: &str,
    receivers: usize,
    messages: usize,
    rounds: usize,
) -> Result<String> {
    // Every receiver reads a round, reports it, then waits for the next round to start.
    let start = Arc::new(Barrier::new(receivers + 1));
    let (report, reports) = mpsc::channel::<Result<Received>>();
    let mut listeners = Vec::new();
    for i in 0..receivers {
        let mut conn = Conn::connect(addr, "").map_err(|e| format!("receiver {i}: {e}"))?;
        let (start, report) = (start.clone(), report.clone());
        listeners.push(thread::spawn(move || {
            for round in 0..=rounds {
                let received = receive(&mut conn, messages, &round_tag(round));
                let failed = received.is_err();
                let _ = report.send(received);
                if failed {
                    return;
                }
                start.wait();
            }
        }));
    }
    drop(report);
    let mut sender = Conn::connect(addr, "").map_err(|e| format!("sender: {e}"))?;
    // A warm-up round first, unmeasured: the figures are for a server that has been running
    // (allocator pools, a database past its first pages, a JIT past its first calls).
    let mut results = Vec::with_capacity(rounds);
    let mut in_order = receivers;
    let mut duplicates = 0;
    for round in 0..=rounds {
        let cpu_before = server.cpu_ns().map_err(io_err("/proc"))?;
        let started = Instant::now();
        send_pipelined(&mut sender, messages, &round_tag(round))?;
        let mut finished = started;
        let mut ordered = 0;
        for _ in 0..receivers {
            let received = reports.recv().map_err(|_| "a receiver stopped")??;
            finished = finished.max(received.done_at);
            ordered += usize::from(received.in_order);
            duplicates += received.duplicates;
        }
        let cpu = server
            .cpu_ns()
            .map_err(io_err("/proc"))?
            .saturating_sub(cpu_before);
        if round > 0 {
            in_order = in_order.min(ordered);
            results.push(((finished - started).as_secs_f64(), cpu));
        }
        start.wait();
    }
    for listener in listeners {
        listener.join().map_err(|_| "receiver panicked")?;
    }
    let (seconds, cpu) = median_by_time(&mut results);
    let delivered = receivers * messages;
    Ok(format!(
        "{{\"scenario\":\"fanout\",\"receivers\":{receivers},\"messages\":{messages},\
         \"rounds\":{rounds},\"delivered\":{delivered},\"seconds\":{seconds:.4},\
         \"delivered_per_second\":{:.0},\"cpu_us_per_delivery\":{:.3},\
         \"receivers_in_order\":{in_order},\"duplicates\":{duplicates}}}",
        delivered as f64 / seconds,
        cpu as f64 / 1000.0 / delivered as f64
    ))
}

/// Each round's messages and client offsets are its own, or the server would take a round's
/// messages for repeats of the last one's (stored and broadcast once, acked again).
fn round_tag(round: usize) -> String {
    if round == 0 {
        "warm-up".to_owned()
    } else {
        format!("fanout{round}")
    }
}

/// The round of median duration, with what was measured alongside it.
fn median_by_time<T: Copy>(rounds: &mut [(f64, T)]) -> (f64, T) {
    rounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    rounds[rounds.len() / 2]
}

/// One sender pipelines `messages` acked sends while one receiver listens: acked (stored)
/// messages per second.
fn ingest(server: &Server, addr: &str, messages: usize) -> Result<String> {
    let mut conn = Conn::connect(addr, "").map_err(|e| format!("receiver: {e}"))?;
    let listener = thread::spawn(move || receive(&mut conn, messages, "ingest"));
    let mut sender = Conn::connect(addr, "").map_err(|e| format!("sender: {e}"))?;
    let cpu_before = server.cpu_ns().map_err(io_err("/proc"))?;
    let started = Instant::now();
    let acked_at = send_pipelined(&mut sender, messages, "ingest")?;
    let received = listener.join().map_err(|_| "receiver panicked")??;
    let cpu = server
        .cpu_ns()
        .map_err(io_err("/proc"))?
        .saturating_sub(cpu_before);
    let seconds = (acked_at - started).as_secs_f64();
    Ok(format!(
        "{{\"scenario\":\"ingest\",\"messages\":{messages},\"seconds\":{seconds:.3},\
         \"acked_per_second\":{:.0},\"cpu_us_per_message\":{:.2},\"receiver_in_order\":{},\
         \"duplicates\":{}}}",
        messages as f64 / seconds,
        cpu as f64 / 1000.0 / messages as f64,
        received.in_order,
        received.duplicates
    ))
}

/// A client with `serverOffset: 0` reads a backlog of `rows`, `rounds` times one after the
/// other: messages per second of the median round, and the server's peak RSS growth over all.
fn replay(server: &Server, addr: &str, rows: i64, rounds: usize) -> Result<String> {
    if rows <= 0 {
        return Err("--rows is required".into());
    }
    server.reset_peak().map_err(io_err("clear_refs"))?;
    let before = server.status("VmRSS").map_err(io_err("/proc"))?;
    let mut results = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        results.push((replay_once(addr, rows)?, ()));
    }
    let peak = server.status("VmHWM").map_err(io_err("/proc"))?;
    let (seconds, ()) = median_by_time(&mut results);
    Ok(format!(
        "{{\"scenario\":\"replay\",\"rows\":{rows},\"rounds\":{rounds},\"seconds\":{seconds:.3},\
         \"messages_per_second\":{:.0},\"rss_before_kib\":{before},\"peak_growth_kib\":{}}}",
        rows as f64 / seconds,
        peak.saturating_sub(before)
    ))
}

/// Seconds for one client to read the whole backlog, checking that ids come 1, 2, 3...
fn replay_once(addr: &str, rows: i64) -> Result<f64> {
    let started = Instant::now();
    let mut conn = Conn::connect(addr, "{\"serverOffset\":0}").map_err(|e| e.to_string())?;
    let mut last = 0;
    while last < rows {
        let packet = conn.next_text().map_err(io_err("replay"))?;
        let Some(id) = ws::message_id(packet) else {
            continue;
        };
        if id != last + 1 {
            return Err(format!("expected id {} after {last}, got {id}", last + 1));
        }
        last = id;
    }
    Ok(started.elapsed().as_secs_f64())
}
