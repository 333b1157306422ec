//! Engine.IO v4: the transport-level protocol under Socket.IO.
//!
//! `packet` and `payload` are pure codecs; `session` is one session's state; `engine` owns the
//! session table and the heartbeat. Transports (`crate::transport`) move bytes between sockets
//! and sessions; the application above implements [`Handler`] and [`Connection`].

pub mod base64;
pub mod engine;
pub mod packet;
pub mod payload;
pub mod session;

use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use tungstenite::Utf8Bytes;

pub use engine::Engine;
pub use session::{QueueLimits, Session, TransportKind};

/// An encoded outbound Engine.IO packet. Cloning is cheap (reference counted), so a broadcast
/// encodes once and every receiver's queue shares the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole text packet, type digit included, e.g. `42["chat message","hi",1]`.
    Text(Utf8Bytes),
    /// A binary message (a Socket.IO attachment).
    Binary(Bytes),
}

impl Frame {
    pub fn text(text: impl Into<Utf8Bytes>) -> Frame {
        Frame::Text(text.into())
    }

    pub fn len(&self) -> usize {
        match self {
            Frame::Text(text) => text.len(),
            Frame::Binary(data) => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Text frames cut from one shared buffer: one allocation for a run of frames (a page of
/// replayed messages) instead of one each.
#[derive(Default)]
pub struct TextBatch {
    text: String,
    ends: Vec<usize>,
}

impl TextBatch {
    pub fn with_capacity(frames: usize, bytes: usize) -> TextBatch {
        TextBatch {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(frames),
        }
    }

    /// Appends one frame, written by `write`.
    pub fn push(&mut self, write: impl FnOnce(&mut String)) {
        write(&mut self.text);
        self.ends.push(self.text.len());
    }

    /// Frames pushed so far.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The frames, in order, sharing the batch's buffer.
    pub fn into_frames(self) -> impl Iterator<Item = Frame> {
        // `push` hands out the whole String: a writer that rewrote earlier text could have
        // moved a cut inside a character. Checked here, so the unchecked conversion below
        // stays sound whatever the writers did.
        let mut start = 0;
        for &end in &self.ends {
            assert!(
                start <= end && self.text.is_char_boundary(end),
                "TextBatch: a frame boundary was overwritten"
            );
            start = end;
        }
        let bytes = Bytes::from(self.text.into_bytes());
        let mut start = 0;
        self.ends.into_iter().map(move |end| {
            let slice = bytes.slice(start..end);
            start = end;
            // SAFETY: every cut is where a `push` ended, so between two char boundaries of
            // what was a valid String.
            Frame::Text(unsafe { Utf8Bytes::from_bytes_unchecked(slice) })
        })
    }
}

/// A message delivered to the application.
#[derive(Debug)]
pub enum Message<'a> {
    Text(&'a str),
    Binary(Bytes),
}

/// Why a session ended; the strings are socket.io's disconnect reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed the connection or sent a close packet.
    TransportClose,
    /// The connection failed (I/O error, oversize message).
    TransportError,
    /// No pong within pingTimeout.
    PingTimeout,
    /// The server closed the session (bad packet, connect timeout, server-side disconnect).
    Forced,
    /// The gateway is stopping.
    ServerShutdown,
    /// The client sent something that is not Engine.IO.
    ParseError,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::Forced => "forced close",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::ParseError => "parse error",
        }
    }

    /// The server tells the client with a close packet only when it chose to close.
    pub fn sends_close_packet(self) -> bool {
        matches!(self, CloseReason::Forced | CloseReason::ServerShutdown)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The application's side of one session.
pub trait Connection {
    fn on_message(&self, message: Message<'_>);
    fn on_close(&self, reason: CloseReason);
}

/// Creates the application's side of each new session.
pub trait Handler {
    fn on_open(&self, session: &Rc<Session>) -> Rc<dyn Connection>;
}

/// Engine.IO settings; the defaults are socket.io's.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Server ping period. Default 25 s.
    pub ping_interval: Duration,
    /// How long to wait for the pong before closing. Default 20 s.
    pub ping_timeout: Duration,
    /// How long a probing WebSocket may take to send the upgrade packet. Default 10 s.
    pub upgrade_timeout: Duration,
    /// Largest polling body or WebSocket message accepted, in bytes. Default 1 MB.
    pub max_payload: usize,
    /// Offer the polling → WebSocket upgrade. Default true.
    pub allow_upgrades: bool,
    /// Most packets waiting for one client before it is disconnected. Default 4096.
    pub max_queue_packets: usize,
    /// Most bytes waiting for one client before it is disconnected. Default 1 MiB.
    pub max_queue_bytes: usize,
    /// Most sessions at once; further handshakes get HTTP 503. Default 4096.
    pub max_sessions: usize,
    /// Browser origins other than the gateway's own host that may connect (`*` for any).
    /// Default none.
    pub allowed_origins: Vec<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            allow_upgrades: true,
            max_queue_packets: 4096,
            max_queue_bytes: 1024 * 1024,
            max_sessions: 4096,
            allowed_origins: Vec::new(),
        }
    }
}

/// A session id: 20 URL-safe characters, unguessable.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sid(heapless::String<20>);

impl Sid {
    /// A fresh random id (120 bits).
    pub fn random() -> Sid {
        let mut bytes = [0u8; 15];
        crate::random::fill(&mut bytes);
        let mut text = heapless::String::new();
        for chunk in bytes.chunks(3) {
            let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
            for shift in [18, 12, 6, 0] {
                let c = URL_SAFE[((n >> shift) & 63) as usize];
                // Cannot fail: 5 chunks of 4 characters fill exactly 20.
                let _ = text.push(char::from(c));
            }
        }
        Sid(text)
    }

    /// Accepts an id from a request; `None` if it cannot be one of ours.
    pub fn parse(text: &str) -> Option<Sid> {
        heapless::String::try_from(text).ok().map(Sid)
    }
}

const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl std::ops::Deref for Sid {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_distinct_and_url_safe() {
        let a = Sid::random();
        let b = Sid::random();
        assert_ne!(a, b);
        assert_eq!(a.len(), 20);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(Sid::parse(&a), Some(a));
        assert_eq!(Sid::parse(&"x".repeat(21)), None);
    }

    #[test]
    fn text_batch_cuts_frames_at_push_boundaries() {
        let mut batch = TextBatch::default();
        batch.push(|out| out.push_str("42[\"é\"]"));
        batch.push(|_| {});
        batch.push(|out| out.push('3'));
        let frames: Vec<Frame> = batch.into_frames().collect();
        assert_eq!(
            frames,
            [Frame::text("42[\"é\"]"), Frame::text(""), Frame::text("3")]
        );
    }
}
