//! The cluster scenario: servers sharing one Redis stream (emberchat gateways with `--redis`,
//! or Node socket.io servers with socket.io's Redis Streams adapter), driven together.
//!
//! Fan-out: receivers spread evenly over the servers; one sender on each server pipelines its
//! share of the round's messages at once; every receiver must get every message once. The
//! figures are deliveries per second, the servers' CPU per delivery (Redis's apart), and how
//! many receivers saw the one order of the stream (ids increasing, the same sequence as every
//! other receiver). Ingest: one sender per server pipelines acked messages; acks per second.
//! Messages arrive as `('chat message', text, "<ms>-<seq>")` from both kinds of server.

use std::sync::{Arc, Barrier, mpsc};
use std::thread;
use std::time::Instant;

use crate::server::Server;
use crate::ws::{self, Conn};
use crate::{Result, io_err, median_by_time, send_pipelined};

/// What one receiver saw of a round: the stream ids of the round's messages, in order.
struct Seen {
    ids: Vec<(u64, u64)>,
    duplicates: usize,
    done_at: Instant,
}

pub struct Cluster {
    pub servers: Vec<Server>,
    pub addrs: Vec<String>,
    pub redis: Option<Server>,
}

impl Cluster {
    fn cpu_ns(&self) -> Result<(u64, u64)> {
        let mut servers = 0;
        for server in &self.servers {
            servers += server.cpu_ns().map_err(io_err("/proc"))?;
        }
        let redis = match &self.redis {
            Some(redis) => redis.cpu_ns().map_err(io_err("/proc"))?,
            None => 0,
        };
        Ok((servers, redis))
    }
}

/// Fan-out rounds (after a warm-up), then ingest: one JSON line.
pub fn run(
    cluster: &Cluster,
    receivers: usize,
    messages: usize,
    rounds: usize,
    ingest_messages: usize,
) -> Result<String> {
    let gateways = cluster.addrs.len();
    let start = Arc::new(Barrier::new(receivers + 1));
    let (report, reports) = mpsc::channel::<Result<Seen>>();
    let mut listeners = Vec::new();
    for i in 0..receivers {
        let addr = &cluster.addrs[i % gateways];
        let mut conn = Conn::connect(addr, "").map_err(|e| format!("receiver {i}: {e}"))?;
        let (start, report) = (start.clone(), report.clone());
        listeners.push(thread::spawn(move || {
            for round in 0..=rounds {
                let seen = receive(&mut conn, messages, &format!("c{round}g"));
                let failed = seen.is_err();
                let _ = report.send(seen);
                if failed {
                    return;
                }
                start.wait();
            }
        }));
    }
    drop(report);
    let mut senders = Vec::with_capacity(gateways);
    for (g, addr) in cluster.addrs.iter().enumerate() {
        senders.push(Conn::connect(addr, "").map_err(|e| format!("sender {g}: {e}"))?);
    }
    let mut results = Vec::with_capacity(rounds);
    let (mut same_order, mut in_order, mut duplicates) = (receivers, receivers, 0);
    for round in 0..=rounds {
        let before = cluster.cpu_ns()?;
        let started = Instant::now();
        send_from_each(&mut senders, messages, &format!("c{round}g"), started)?;
        let mut finished = started;
        let mut sequences = Vec::with_capacity(receivers);
        for _ in 0..receivers {
            let seen = reports.recv().map_err(|_| "a receiver stopped")??;
            finished = finished.max(seen.done_at);
            duplicates += seen.duplicates;
            sequences.push(seen.ids);
        }
        let after = cluster.cpu_ns()?;
        if round > 0 {
            let increasing = sequences
                .iter()
                .filter(|ids| ids.windows(2).all(|pair| pair[0] < pair[1]))
                .count();
            let like_first = sequences.iter().filter(|ids| **ids == sequences[0]).count();
            in_order = in_order.min(increasing);
            same_order = same_order.min(like_first);
            let cpu = (
                after.0.saturating_sub(before.0),
                after.1.saturating_sub(before.1),
            );
            results.push(((finished - started).as_secs_f64(), cpu));
        }
        start.wait();
    }
    for listener in listeners {
        listener.join().map_err(|_| "receiver panicked")?;
    }
    let (seconds, (cpu, redis_cpu)) = median_by_time(&mut results);
    let delivered = receivers * messages;
    let ingest = ingest(cluster, &mut senders, ingest_messages)?;
    Ok(format!(
        "{{\"scenario\":\"cluster\",\"gateways\":{gateways},\"receivers\":{receivers},\
         \"messages\":{messages},\"rounds\":{rounds},\"seconds\":{seconds:.4},\
         \"delivered_per_second\":{:.0},\"cpu_us_per_delivery\":{:.3},\
         \"redis_cpu_us_per_delivery\":{:.3},\"receivers_in_order\":{in_order},\
         \"receivers_same_order\":{same_order},\"duplicates\":{duplicates},{ingest}}}",
        delivered as f64 / seconds,
        cpu as f64 / 1000.0 / delivered as f64,
        redis_cpu as f64 / 1000.0 / delivered as f64,
    ))
}

/// One sender per server pipelines its share of `messages` acked sends, all at once, while
/// one receiver listens: acks per second until the last.
fn ingest(cluster: &Cluster, senders: &mut [Conn], messages: usize) -> Result<String> {
    let mut conn = Conn::connect(&cluster.addrs[0], "").map_err(|e| format!("receiver: {e}"))?;
    let listener = thread::spawn(move || receive(&mut conn, messages, "ingest"));
    let before = cluster.cpu_ns()?;
    let started = Instant::now();
    let acked_at = send_from_each(senders, messages, "ingest", started)?;
    let seen = listener.join().map_err(|_| "receiver panicked")??;
    let after = cluster.cpu_ns()?;
    let seconds = (acked_at - started).as_secs_f64();
    Ok(format!(
        "\"ingest_messages\":{messages},\"ingest_acked_per_second\":{:.0},\
         \"ingest_cpu_us_per_message\":{:.2},\"ingest_duplicates\":{}",
        messages as f64 / seconds,
        after.0.saturating_sub(before.0) as f64 / 1000.0 / messages as f64,
        seen.duplicates
    ))
}

/// Every sender pipelines its share of `messages` at once (tagged `{tag}{sender}`); returns
/// when the last ack arrived (or `started`, for nothing sent).
fn send_from_each(
    senders: &mut [Conn],
    messages: usize,
    tag: &str,
    started: Instant,
) -> Result<Instant> {
    let share = messages / senders.len();
    let first_share = messages - share * (senders.len() - 1);
    thread::scope(|scope| {
        let sends: Vec<_> = senders
            .iter_mut()
            .enumerate()
            .map(|(g, sender)| {
                let count = if g == 0 { first_share } else { share };
                scope.spawn(move || send_pipelined(sender, count, &format!("{tag}{g}")))
            })
            .collect();
        let mut last = started;
        for send in sends {
            last = last.max(send.join().map_err(|_| "sender panicked")??);
        }
        Ok(last)
    })
}

/// Reads until `expected` messages whose text starts with `prefix` came, recording their ids.
fn receive(conn: &mut Conn, expected: usize, prefix: &str) -> Result<Seen> {
    let prefix = format!("42[\"chat message\",\"{prefix}");
    let mut ids = Vec::with_capacity(expected);
    let mut seen = std::collections::HashSet::with_capacity(expected);
    let mut duplicates = 0;
    while ids.len() < expected {
        let packet = conn.next_text().map_err(io_err("receiver"))?;
        if !packet.starts_with(prefix.as_bytes()) {
            continue;
        }
        let id = ws::stream_id(packet).ok_or("a message without a stream id")?;
        if !seen.insert(id) {
            duplicates += 1;
            continue;
        }
        ids.push(id);
    }
    Ok(Seen {
        ids,
        duplicates,
        done_at: Instant::now(),
    })
}
