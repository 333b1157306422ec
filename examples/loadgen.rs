//! Load generator for `make bench`: speaks Engine.IO/Socket.IO over a raw WebSocket, so the
//! client side costs little, and checks what it receives (nothing missing or duplicated, ids
//! in order). Prints one JSON line per run.
//!
//! `cargo run --release --example loadgen -- replay ADDR EXPECTED` connects with
//! `serverOffset: 0` and reads until it has EXPECTED messages.

use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

type Ws = WebSocket<TcpStream>;

fn connect(addr: &str, auth: &str) -> Result<Ws, String> {
    let stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok();
    stream.set_nodelay(true).ok();
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
    let (mut ws, _) = tungstenite::client::client(url, stream).map_err(|e| e.to_string())?;
    let open = next_text(&mut ws)?;
    if !open.starts_with("0{") {
        return Err(format!("unexpected open packet {open}"));
    }
    ws.send(Message::text(format!("40{auth}")))
        .map_err(|e| e.to_string())?;
    let reply = next_text(&mut ws)?;
    if !reply.starts_with("40{") {
        return Err(format!("unexpected CONNECT reply {reply}"));
    }
    Ok(ws)
}

/// The next text frame, answering Engine.IO pings on the way.
fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.read().map_err(|e| e.to_string())? {
            Message::Text(text) if text.as_str() == "2" => {
                ws.send(Message::text("3")).map_err(|e| e.to_string())?;
            }
            Message::Text(text) => return Ok(text.as_str().to_owned()),
            _ => {}
        }
    }
}

/// The id (third element) of a `42["chat message",content,id,...]` packet.
fn message_id(packet: &str) -> Option<i64> {
    let rest = packet.strip_prefix("42[\"chat message\",")?;
    // The content is a JSON string: skip it, honouring escapes.
    let bytes = rest.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => break,
            _ => i += 1,
        }
    }
    let after = rest.get(i + 2..)?;
    let end = after.find([',', ']'])?;
    after[..end].parse().ok()
}

fn replay(addr: &str, expected: i64) -> Result<(), String> {
    let started = Instant::now();
    let mut ws = connect(addr, "{\"serverOffset\":0}")?;
    let mut last = 0;
    while last < expected {
        let packet = next_text(&mut ws)?;
        let Some(id) = message_id(&packet) else {
            continue;
        };
        if id != last + 1 {
            return Err(format!("expected id {} after {last}, got {id}", last + 1));
        }
        last = id;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"scenario\":\"replay\",\"messages\":{expected},\"seconds\":{seconds:.3},\"messages_per_second\":{:.0}}}",
        expected as f64 / seconds
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["replay", addr, expected] => expected
            .parse()
            .map_err(|_| format!("bad count {expected}"))
            .and_then(|n| replay(addr, n)),
        _ => Err("usage: loadgen replay ADDR EXPECTED".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::message_id;

    #[test]
    fn reads_message_ids() {
        assert_eq!(message_id("42[\"chat message\",\"hi\",7,\"7\"]"), Some(7));
        assert_eq!(message_id("42[\"chat message\",\"a\\\"b,]\",12]"), Some(12));
        assert_eq!(message_id("431[]"), None);
    }
}
