//! A minimal blocking WebSocket + Engine.IO/Socket.IO client over `std::net::TcpStream`.
//!
//! Kept this bare so the load generator costs the machine far less than the servers it drives:
//! server frames are parsed in place from one read buffer, and client frames are masked with a
//! zero key (legal, and it leaves the payload unchanged, so nothing is copied to mask it).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

/// One WebSocket connection carrying an Engine.IO session.
pub struct Conn {
    stream: TcpStream,
    /// Taken for every write: a pong from the reading thread must not land inside a batch
    /// the writing thread is in the middle of.
    write_lock: Arc<Mutex<()>>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl Conn {
    /// Opens the WebSocket, reads the Engine.IO open packet and joins the `/` namespace with
    /// `auth` (a JSON object, or empty for none). Returns once the CONNECT reply is in.
    pub fn connect(addr: &str, auth: &str) -> io::Result<Conn> {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        // A fixed key is fine: the load generator is not a browser and trusts its server.
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\n\
             Upgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes())?;
        let mut conn = Conn {
            stream,
            write_lock: Arc::new(Mutex::new(())),
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
        };
        conn.read_http_response()?;
        let open = conn.next_text()?;
        if !open.starts_with(b"0{") {
            return Err(invalid(format!("unexpected open packet {}", lossy(open))));
        }
        conn.send_text(format!("40{auth}").as_bytes())?;
        let reply = conn.next_text()?;
        if !reply.starts_with(b"40") {
            return Err(invalid(format!(
                "unexpected CONNECT reply {}",
                lossy(reply)
            )));
        }
        Ok(conn)
    }

    /// A handle that can shut the connection down from another thread (ending a read that
    /// would otherwise wait for ever on a server that only sends pings).
    pub fn shutdown_handle(&self) -> io::Result<TcpStream> {
        self.stream.try_clone()
    }

    /// A second handle on the same socket, so one thread can write while another reads.
    pub fn writer(&self) -> io::Result<Writer> {
        Ok(Writer {
            stream: self.stream.try_clone()?,
            write_lock: self.write_lock.clone(),
            out: Vec::new(),
        })
    }

    fn read_http_response(&mut self) -> io::Result<()> {
        loop {
            if let Some(pos) = self.buf[..self.end]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                if !self.buf.starts_with(b"HTTP/1.1 101") {
                    let head = lossy(&self.buf[..pos]);
                    return Err(invalid(format!("upgrade refused: {head}")));
                }
                self.start = pos + 4;
                return Ok(());
            }
            self.fill()?;
        }
    }

    /// Reads more bytes, compacting the buffer first and growing it for an oversized frame.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let n = self.stream.read(&mut self.buf[self.end..])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// The next text message's payload, answering Engine.IO pings on the way.
    pub fn next_text(&mut self) -> io::Result<&[u8]> {
        loop {
            let (opcode, range) = self.next_frame()?;
            match opcode {
                OP_TEXT if &self.buf[range.clone()] == b"2" => self.send_text(b"3")?,
                OP_TEXT => return Ok(&self.buf[range]),
                OP_BINARY | OP_PING => {}
                OP_CLOSE => return Err(invalid("closed by the server".into())),
                OP_CONTINUATION => return Err(invalid("fragmented message".into())),
                other => return Err(invalid(format!("unknown opcode {other}"))),
            }
        }
    }

    /// The next whole frame in the buffer: its opcode and payload range.
    fn next_frame(&mut self) -> io::Result<(u8, std::ops::Range<usize>)> {
        loop {
            if let Some((opcode, header, len)) = parse_header(&self.buf[self.start..self.end])
                && self.end - self.start >= header + len
            {
                let payload = self.start + header..self.start + header + len;
                self.start += header + len;
                return Ok((opcode, payload));
            }
            self.fill()?;
        }
    }

    pub fn send_text(&mut self, payload: &[u8]) -> io::Result<()> {
        let mut out = Vec::with_capacity(payload.len() + 14);
        encode_text(&mut out, payload);
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.stream.write_all(&out)
    }
}

/// The writing half of a connection, batching frames into one buffer.
pub struct Writer {
    stream: TcpStream,
    write_lock: Arc<Mutex<()>>,
    out: Vec<u8>,
}

impl Writer {
    pub fn queue_text(&mut self, payload: &[u8]) {
        encode_text(&mut self.out, payload);
    }

    pub fn flush(&mut self) -> io::Result<()> {
        let _guard = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.stream.write_all(&self.out)?;
        self.out.clear();
        Ok(())
    }
}

/// Appends a final, masked (zero key) text frame.
fn encode_text(out: &mut Vec<u8>, payload: &[u8]) {
    out.push(0x80 | OP_TEXT);
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= u16::MAX as usize {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(payload);
}

/// Parses an unmasked server frame header: `(opcode, header length, payload length)`, or
/// `None` until enough bytes are in.
fn parse_header(bytes: &[u8]) -> Option<(u8, usize, usize)> {
    let [first, second, ..] = *bytes else {
        return None;
    };
    let opcode = first & 0x0f;
    match second & 0x7f {
        126 => {
            let len = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
            Some((opcode, 4, len as usize))
        }
        127 => {
            let len = u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?);
            Some((opcode, 10, len as usize))
        }
        len => Some((opcode, 2, len as usize)),
    }
}

pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
}

/// The id (third element) of a `42["chat message",content,id,...]` packet.
pub fn message_id(packet: &[u8]) -> Option<i64> {
    let rest = packet.strip_prefix(b"42[\"chat message\",\"")?;
    // Skip the content, a JSON string, honouring escapes.
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'\\' => i += 2,
            b'"' => break,
            _ => i += 1,
        }
    }
    let after = rest.get(i + 2..)?;
    let end = after.iter().position(|&b| b == b',' || b == b']')?;
    std::str::from_utf8(&after[..end]).ok()?.parse().ok()
}

/// The stream id `"<ms>-<seq>"` a cluster's `chat message` ends with (its last argument).
pub fn stream_id(packet: &[u8]) -> Option<(u64, u64)> {
    let rest = packet.strip_suffix(b"\"]")?;
    let start = rest.iter().rposition(|&b| b == b'"')? + 1;
    let (ms, seq) = std::str::from_utf8(&rest[start..]).ok()?.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// The ack id of a `43N[...]` packet.
pub fn ack_id(packet: &[u8]) -> Option<u64> {
    let rest = packet.strip_prefix(b"43")?;
    let end = rest.iter().position(|&b| b == b'[')?;
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_ids() {
        assert_eq!(message_id(b"42[\"chat message\",\"hi\",7,\"7\"]"), Some(7));
        assert_eq!(
            message_id(b"42[\"chat message\",\"a\\\"b,]\",12]"),
            Some(12)
        );
        assert_eq!(message_id(b"431[]"), None);
    }

    #[test]
    fn reads_stream_ids() {
        assert_eq!(
            stream_id(b"42[\"chat message\",\"hi\",\"1796406962173-12\"]"),
            Some((1796406962173, 12))
        );
        assert_eq!(stream_id(b"42[\"chat message\",\"hi\",7]"), None);
    }

    #[test]
    fn reads_ack_ids() {
        assert_eq!(ack_id(b"4317[]"), Some(17));
        assert_eq!(ack_id(b"43[]"), None);
        assert_eq!(ack_id(b"42[\"x\"]"), None);
    }

    #[test]
    fn frames_round_trip_through_the_header_parser() {
        for len in [0, 125, 126, 65535, 65536] {
            let mut out = Vec::new();
            encode_text(&mut out, &vec![b'a'; len]);
            // Clear the mask bit and drop the key to read it as a server frame.
            out[1] &= 0x7f;
            let (opcode, header, parsed) = parse_header(&out).unwrap();
            assert_eq!((opcode, parsed), (OP_TEXT, len));
            assert_eq!(out.len(), header + 4 + len);
        }
        assert_eq!(parse_header(&[0x81]), None);
        assert_eq!(parse_header(&[0x81, 126, 0]), None);
    }
}
