//! Cluster mode (`--redis`, the `redis` feature): gateways sharing one Redis stream, with a
//! real `redis-server` (Debian's, started here on a free loopback port with its own folder
//! and AOF) and the official client. Run by `make test`, which builds with the feature.

#![cfg(feature = "redis")]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, Gateway, js_script, node, scratch_dir};

/// A `redis-server` of its own, stopped on drop.
struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    fn start(name: &str) -> Redis {
        let port = free_port();
        Redis::start_on(scratch_dir(name), port)
    }

    /// Starts (or restarts) on `port` with the data in `dir`: AOF on, fsync per write, so
    /// that what it acked survives a restart.
    fn start_on(dir: PathBuf, port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .arg("--dir")
            .arg(&dir)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                // A replica (the WAIT test) syncs at once rather than after 5 s.
                "--repl-diskless-sync-delay",
                "0",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; make test installs it)");
        let redis = Redis {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Runs redis-cli against it; its output.
    fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn gateway(name: &str, redis_url: &str) -> Gateway {
    Gateway::start(name, &["--redis", redis_url])
}

#[test]
#[ignore = "needs redis-server and tests/js/node_modules: run `make test`"]
fn three_gateways_share_one_order_store_a_retry_once_and_replay_by_stream_id() {
    let redis = Redis::start("redis-three");
    let gateways: Vec<Gateway> = (1..=3)
        .map(|n| gateway(&format!("cluster-{n}"), &redis.url()))
        .collect();
    for gateway in &gateways {
        assert!(
            gateway.wait_log("the shared log socket.io ends at"),
            "{}",
            gateway.log()
        );
    }
    let mut args = vec![js_script("cluster.mjs")];
    args.extend(gateways.iter().map(|g| g.url.clone()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    gateways[0].run_client(&node(), &args);
    // 3 × 20 messages, 2 × 3 one at a time and the one sent twice, in the adapter's format.
    assert_eq!(redis.cli(&["XLEN", "socket.io"]).trim(), "67");
    let first = redis.cli(&["XRANGE", "socket.io", "-", "+", "COUNT", "1"]);
    for field in ["uid", "nsp", "type", "data", "time"] {
        assert!(first.contains(field), "{first}");
    }
    assert!(
        first.contains("{\"packet\":{\"type\":2,\"data\":[\"chat message\","),
        "{first}"
    );
    for gateway in gateways {
        assert!(gateway.stop().success());
    }
}

/// A Node socket.io 4.8 server with socket.io's Redis Streams adapter on the same stream
/// (tests/js/node_cluster_server.mjs); killed on drop.
struct NodeServer {
    child: Child,
    url: String,
}

impl NodeServer {
    fn start(redis_url: &str) -> NodeServer {
        let mut child = Command::new(node())
            .arg(js_script("node_cluster_server.mjs"))
            .arg(redis_url)
            .current_dir(common::repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node_cluster_server.mjs");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("node_cluster_server.mjs said {line:?}"))
            .to_owned();
        NodeServer { child, url }
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs redis-server and tests/js/node_modules: run `make test`"]
fn a_node_socket_io_server_with_the_streams_adapter_chats_with_the_gateways() {
    let redis = Redis::start("redis-node");
    let first = gateway("cluster-node-1", &redis.url());
    let second = gateway("cluster-node-2", &redis.url());
    let node_server = NodeServer::start(&redis.url());
    let third = gateway("cluster-node-3", &redis.url());
    for gateway in [&first, &second, &third] {
        assert!(
            gateway.wait_log("the shared log socket.io ends at"),
            "{}",
            gateway.log()
        );
    }
    let node_url = format!("node={}", node_server.url);
    first.run_client(
        &node(),
        &[
            &js_script("cluster.mjs"),
            &first.url,
            &second.url,
            &node_url,
            &third.url,
        ],
    );
    // The Node server's entries are the adapter's own: the gateways read them as theirs.
    let entries = redis.cli(&["XRANGE", "socket.io", "-", "+"]);
    assert!(
        entries.contains(" N3 #") || entries.contains("g3 #"),
        "{entries}"
    );
    for gateway in [first, second, third] {
        assert!(gateway.stop().success());
    }
}

#[test]
#[ignore = "needs redis-server and tests/js/node_modules: run `make test`"]
fn without_redis_the_page_is_served_messages_get_error_acks_and_it_recovers() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/0");
    let gateway = gateway("cluster-down", &url);
    assert_eq!(common::get(&gateway, "/").status, 200);
    let health = common::get(&gateway, "/healthz");
    assert_eq!(health.status, 503);
    assert!(health.text().contains("Redis"), "{}", health.text());
    // An acked message gets the error, as with a full disk.
    let refused = Command::new(node())
        .args([&js_script("send.mjs"), &gateway.url, "1", "while-down"])
        .current_dir(common::repo())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stderr).into_owned()
        + &String::from_utf8_lossy(&refused.stdout);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("message not stored, try again later"),
        "{said}"
    );
    assert!(
        gateway.wait_log("cannot take messages"),
        "{}",
        gateway.log()
    );

    let redis = Redis::start_on(scratch_dir("redis-late"), port);
    let deadline = Instant::now() + Duration::from_secs(15);
    while common::get(&gateway, "/healthz").status != 200 {
        assert!(
            Instant::now() < deadline,
            "still unhealthy:\n{}",
            gateway.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Back: stored and broadcast (the client waits for its own broadcast too).
    send_until_acked(&gateway, "3", "after");
    assert_eq!(redis.cli(&["XLEN", "socket.io"]).trim(), "3");
    let output = gateway.run_client(&node(), &[&js_script("collect.mjs"), &gateway.url, "500"]);
    assert!(output.contains("\"after 2\""), "{output}");
    assert!(gateway.stop().success());
}

#[test]
#[ignore = "needs redis-server and tests/js/node_modules: run `make test`"]
fn garbage_on_the_stream_is_skipped_with_a_log_line() {
    let redis = Redis::start("redis-garbage");
    let gateway = gateway("cluster-garbage", &redis.url());
    assert!(gateway.wait_log("the shared log socket.io ends at"));
    let valid = r#"{"packet":{"type":2,"data":["chat message","from node",7]},"opts":{"rooms":[],"except":[],"flags":{}}}"#;
    let entries: &[&[&str]] = &[
        &["uid", "x", "nsp", "/", "type", "3", "data", "{not json"],
        &[
            "uid",
            "x",
            "nsp",
            "/",
            "type",
            "3",
            "data",
            r#"{"packet":{"type":2,"data":["chat message",{"html":"<b>"}]}}"#,
        ],
        &["uid", "x", "nsp", "/", "type", "3"],
        &["uid", "x", "nsp", "/", "type", "3", "data", "gqZwYWNrZXSA"],
        &["uid", "x", "nsp", "/", "type", "4", "data", "{}"],
        &["uid", "x", "nsp", "/other", "type", "3", "data", valid],
        &["garbage", "\u{1}\u{2}"],
        &["uid", "node", "nsp", "/", "type", "3", "data", valid],
    ];
    for fields in entries {
        let mut args = vec!["XADD", "socket.io", "*"];
        args.extend_from_slice(fields);
        assert!(!redis.cli(&args).trim().is_empty());
    }
    let output = gateway.run_client(&node(), &[&js_script("collect.mjs"), &gateway.url, "500"]);
    let line = output.lines().rev().find(|l| l.starts_with('[')).unwrap();
    let ids: Vec<&str> = line.split("\"from node\"").collect();
    assert_eq!(ids.len(), 2, "only the valid entry, once: {line}");
    assert!(
        gateway.wait_log("skipped: malformed entry: data is not JSON"),
        "{}",
        gateway.log()
    );
    assert!(
        gateway
            .log()
            .contains("skipped: malformed entry: a broadcast without data")
    );
    assert!(gateway.stop().success());
}

#[test]
#[ignore = "needs redis-server and tests/js/node_modules: run `make test`"]
fn a_redis_restart_under_load_loses_nothing_acked_and_the_tails_resume() {
    let dir = scratch_dir("redis-restart");
    let port = free_port();
    let mut redis = Redis::start_on(dir.clone(), port);
    let url = redis.url();
    let unlimited = ["--redis", url.as_str(), "--max-message-rate", "0"];
    let sender_side = Gateway::start("cluster-restart-a", &unlimited);
    let watcher_side = Gateway::start("cluster-restart-b", &unlimited);
    for gateway in [&sender_side, &watcher_side] {
        assert!(gateway.wait_log("the shared log socket.io ends at"));
    }
    // A client on the other gateway hears everything live, through the restart.
    let watcher = Command::new(node())
        .args([&js_script("collect.mjs"), &watcher_side.url, "4000"])
        .current_dir(common::repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let acked_file = dir.join("acked.txt");
    let mut sender = steady_sender(&sender_side.url, &acked_file);
    // Kill Redis once a good part is acked, with more in flight; start it again on its AOF.
    wait_acked(&acked_file, 150);
    redis.stop();
    std::thread::sleep(Duration::from_millis(700));
    let redis = Redis::start_on(dir.clone(), port);
    assert!(
        sender.wait().unwrap().success(),
        "not every message was acked in the end"
    );
    let acked: Vec<String> = std::fs::read_to_string(&acked_file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(acked.len(), 600);
    // Stored once each, retries of messages whose ack was lost included.
    assert_eq!(redis.cli(&["XLEN", "socket.io"]).trim(), "600");
    assert!(sender_side.log().contains("cannot take messages"));
    assert!(watcher_side.wait_log("is back: reading the shared log again"));

    let output = watcher.wait_with_output().unwrap();
    let line = String::from_utf8_lossy(&output.stdout);
    let received = stream_pairs(line.trim());
    assert!(
        received.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "not in stream order"
    );
    let mut seen = std::collections::HashSet::new();
    for (_, text) in &received {
        assert!(seen.insert(text.as_str()), "{text} delivered twice");
    }
    for text in &acked {
        assert!(
            seen.contains(text.as_str()),
            "{text} acked but never delivered live"
        );
    }
    assert_eq!(received.len(), 600);
    for gateway in [sender_side, watcher_side] {
        assert!(gateway.stop().success());
    }
}

/// collect.mjs's line in cluster mode, `[["<ms>-<seq>","text"],…]`, as (id, text) in order.
fn stream_pairs(line: &str) -> Vec<((u64, u64), String)> {
    let inner = line.trim().trim_start_matches("[[").trim_end_matches("]]");
    inner
        .split("],[")
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (id, text) = pair.split_once("\",\"").expect("\"id\",\"text\"");
            let (ms, seq) = id.trim_matches('"').split_once('-').expect("ms-seq");
            (
                (ms.parse().unwrap(), seq.parse().unwrap()),
                text.trim_matches('"').to_owned(),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs redis-server and tests/js/node_modules: run `make test`"]
fn a_client_of_a_gateway_killed_under_load_goes_on_from_another_missing_nothing() {
    let redis = Redis::start("redis-kill");
    let url = redis.url();
    let unlimited = ["--redis", url.as_str(), "--max-message-rate", "0"];
    let doomed = Gateway::start("cluster-kill-a", &unlimited);
    let survivor = Gateway::start("cluster-kill-b", &unlimited);
    for gateway in [&doomed, &survivor] {
        assert!(gateway.wait_log("the shared log socket.io ends at"));
    }
    let listener = Command::new(node())
        .args([
            &js_script("failover.mjs"),
            &doomed.url,
            &survivor.url,
            "600",
        ])
        .current_dir(common::repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let dir = scratch_dir("cluster-kill-sender");
    let acked_file = dir.join("acked.txt");
    let mut sender = steady_sender(&survivor.url, &acked_file);
    wait_acked(&acked_file, 200);
    doomed.kill();
    assert!(sender.wait().unwrap().success());
    let output = listener.wait_with_output().unwrap();
    assert!(output.status.success(), "failover.mjs failed");
    let received = stream_pairs(String::from_utf8_lossy(&output.stdout).trim());
    assert_eq!(
        received.len(),
        600,
        "every message once, across both gateways"
    );
    assert!(
        received.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "in stream order, the seam included"
    );
    assert_eq!(redis.cli(&["XLEN", "socket.io"]).trim(), "600");
    assert!(survivor.stop().success());
}

#[test]
#[ignore = "needs redis-server and tests/js/node_modules: run `make test`"]
fn a_client_recovers_across_gateways_a_node_server_and_a_kill() {
    let redis = Redis::start("redis-recovery");
    let first = gateway("cluster-recovery-1", &redis.url());
    let mut second = Some(gateway("cluster-recovery-2", &redis.url()));
    let senders = gateway("cluster-recovery-3", &redis.url());
    let node_server = NodeServer::start(&redis.url());
    let second_url = second.as_ref().unwrap().url.clone();
    for gateway in [&first, second.as_ref().unwrap(), &senders] {
        assert!(gateway.wait_log("the shared log socket.io ends at"));
    }
    // emberchat → emberchat → Node → emberchat, each by a dropped transport, then the
    // gateway killed with -9 under the client (its record was written at connect).
    let mut roamer = Command::new(node())
        .args([
            &js_script("cluster_recovery.mjs"),
            &senders.url,
            &first.url,
            &second_url,
            &node_server.url,
            &second_url,
            &format!("kill={}", first.url),
        ])
        .current_dir(common::repo())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = roamer.stdout.take().unwrap();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)) {
        let line = line.unwrap();
        println!("{line}");
        if line.trim() == "KILL" {
            second.take().expect("one kill").kill();
        }
    }
    let status = roamer.wait().unwrap();
    assert!(
        status.success(),
        "cluster_recovery.mjs failed:\n{}",
        first.log()
    );
    assert!(second.is_none(), "the gateway was not killed");
    for gateway in [first, senders] {
        assert!(gateway.stop().success());
    }
}

#[test]
#[ignore = "needs redis-server and tests/js/node_modules: run `make test`"]
fn with_wait_replicas_a_message_is_acked_only_once_a_replica_has_it() {
    let primary = Redis::start("redis-primary");
    let replica_port = free_port();
    let replica_dir = scratch_dir("redis-replica");
    let start_replica = || {
        let replica = Redis::start_on(replica_dir.clone(), replica_port);
        replica.cli(&["REPLICAOF", "127.0.0.1", &primary.port.to_string()]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !replica
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
        {
            assert!(Instant::now() < deadline, "the replica did not catch up");
            std::thread::sleep(Duration::from_millis(50));
        }
        replica
    };
    let mut replica = start_replica();
    let url = primary.url();
    let gateway = Gateway::start(
        "cluster-wait",
        &[
            "--redis",
            &url,
            "--redis-wait-replicas",
            "1",
            "--redis-wait-timeout",
            "1000",
        ],
    );
    assert!(gateway.wait_log("the shared log socket.io ends at"));
    gateway.run_client(
        &node(),
        &[&js_script("send.mjs"), &gateway.url, "3", "replicated"],
    );
    assert_eq!(replica.cli(&["XLEN", "socket.io"]).trim(), "3");

    // Without its replica, the primary still takes the message, but it is not acked.
    replica.stop();
    let refused = Command::new(node())
        .args([&js_script("send.mjs"), &gateway.url, "1", "unreplicated"])
        .current_dir(common::repo())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&refused.stdout).into_owned()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("message not stored, try again later"),
        "{said}"
    );
    assert!(
        gateway.wait_log("only 0 of 1 replicas have it after 1000 ms"),
        "{}",
        gateway.log()
    );

    // Back: the retry (same client offset) finds the first entry and is acked once the
    // replica has it; stored once.
    let replica = start_replica();
    // A replica just back may answer WAIT late once: a client retries, as this one does.
    send_until_acked(&gateway, "1", "unreplicated");
    assert_eq!(primary.cli(&["XLEN", "socket.io"]).trim(), "4");
    assert_eq!(replica.cli(&["XLEN", "socket.io"]).trim(), "4");
    assert!(gateway.stop().success());
}

#[test]
#[ignore = "needs redis-server, Chromium and tests/js/node_modules: run `make test`"]
fn the_page_chats_across_gateways() {
    let redis = Redis::start("redis-page");
    let first = gateway("cluster-page-1", &redis.url());
    let second = gateway("cluster-page-2", &redis.url());
    for gateway in [&first, &second] {
        assert!(gateway.wait_log("the shared log socket.io ends at"));
    }
    // One page on each gateway: typed in one, shown in the other with the same id; a
    // disconnect and reconnect of the second page; markup shown as text.
    let output = Command::new(node())
        .arg(js_script("browser_chat.mjs"))
        .arg(&first.url)
        .env("E2E_SECOND_URL", &second.url)
        .current_dir(common::repo())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(redis.cli(&["XLEN", "socket.io"]).trim(), "3");
    for gateway in [first, second] {
        assert!(gateway.stop().success());
    }
}

#[test]
#[ignore = "needs redis-server and tests/js/node_modules: run `make test`"]
fn a_client_whose_offset_was_trimmed_away_gets_what_remains_and_hears_of_the_gap() {
    let redis = Redis::start("redis-trimmed");
    let url = redis.url();
    let gateway = Gateway::start(
        "cluster-trimmed",
        &[
            "--redis",
            &url,
            "--redis-max-len",
            "50",
            "--max-message-rate",
            "0",
        ],
    );
    assert!(gateway.wait_log("the shared log socket.io ends at"));
    gateway.run_client(
        &node(),
        &[&js_script("send.mjs"), &gateway.url, "1", "first"],
    );
    let first = redis.cli(&["XRANGE", "socket.io", "-", "+", "COUNT", "1"]);
    let first_id = first.lines().next().unwrap().trim().to_owned();
    gateway.run_client(
        &node(),
        &[&js_script("send.mjs"), &gateway.url, "400", "later"],
    );
    let kept: usize = redis.cli(&["XLEN", "socket.io"]).trim().parse().unwrap();
    assert!(kept < 401, "MAXLEN ~ 50 trimmed nothing");
    let oldest = redis.cli(&["XRANGE", "socket.io", "-", "+", "COUNT", "1"]);
    assert!(
        !oldest.contains(&first_id),
        "the first entry is still there"
    );

    let output = gateway.run_client(
        &node(),
        &[&js_script("trimmed.mjs"), &gateway.url, &first_id],
    );
    let line = output.lines().rev().find(|l| l.starts_with('{')).unwrap();
    // Everything that remains, in order, for the tutorial client.
    let tutorial = line
        .split("\"tutorial\":[")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap();
    let ids: Vec<(u64, u64)> = tutorial
        .split(',')
        .map(|id| {
            let (ms, seq) = id.trim_matches('"').split_once('-').unwrap();
            (ms.parse().unwrap(), seq.parse().unwrap())
        })
        .collect();
    assert_eq!(ids.len(), kept, "{line}");
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{line}");
    // The page hears that some is gone, and gets its newest 10.
    assert!(line.contains("\"trimmed\":true"), "{line}");
    assert!(line.contains("\"page\":10"), "{line}");
    assert!(gateway.stop().success());
}

/// tests/js/steady.mjs sending 600 messages through `url` (one every 5 ms, retrying what is
/// refused), the texts acked listed in `acked_file`.
fn steady_sender(url: &str, acked_file: &std::path::Path) -> Child {
    Command::new(node())
        .args([&js_script("steady.mjs"), url])
        .arg(acked_file)
        .args(["600", "5"])
        .current_dir(common::repo())
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits (up to 30 s) until `acked_file` lists `count` acked messages.
fn wait_acked(acked_file: &std::path::Path, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(acked_file)
        .unwrap_or_default()
        .lines()
        .count()
        < count
    {
        assert!(Instant::now() < deadline, "the sender did not get going");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// send.mjs (`count` messages "PREFIX i" with client offsets "PREFIX-i"), run again every
/// 200 ms until every message is acked without an error, as a client retries; up to 15 s.
fn send_until_acked(gateway: &Gateway, count: &str, prefix: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sent = Command::new(node())
            .args([&js_script("send.mjs"), &gateway.url, count, prefix])
            .current_dir(common::repo())
            .output()
            .unwrap();
        if sent.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{}{}",
            String::from_utf8_lossy(&sent.stdout),
            String::from_utf8_lossy(&sent.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
