//! What the application above Engine.IO implements, and what it hears.

use std::fmt;

use bytes::Bytes;

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
pub trait SessionHandler {
    fn on_message(&self, message: Message<'_>);
    fn on_close(&self, reason: CloseReason);
}
