//! What reaches a socket and what ends it: events, refusals and disconnect reasons.

use std::fmt;

use bytes::Bytes;

use crate::engineio::CloseReason;
use crate::json;

/// An event received on a socket.
pub struct Event<'a> {
    /// The event name, unescaped.
    pub name: &'a str,
    /// The whole JSON array `[name, args...]` as received (binary args are placeholders).
    pub data: &'a str,
    /// The array after the name: `]` or `,<args>]`, to re-emit the same arguments.
    pub args_tail: &'a str,
    /// The ack id when the client wants an answer.
    pub ack: Option<u64>,
    pub attachments: &'a [Bytes],
}

impl<'a> Event<'a> {
    /// The raw JSON arguments after the event name.
    pub fn args(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        json::array_elements(self.data).skip(1)
    }
}

/// Why a CONNECT was refused; the client gets the message in CONNECT_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(&'static str);

impl Refusal {
    pub const fn new(message: &'static str) -> Refusal {
        Refusal(message)
    }

    pub fn message(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Why a socket left its namespace; the strings are socket.io's disconnect reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The Engine.IO session under it ended.
    Session(CloseReason),
    /// The client left the namespace (`socket.disconnect()` in the client).
    ClientNamespaceDisconnect,
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::Session(reason) => reason.as_str(),
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
        }
    }

    /// Whether socket.io lets the client recover its socket after this. Leaving on purpose
    /// is not recoverable, nor is sending garbage.
    pub fn is_recoverable(self) -> bool {
        match self {
            DisconnectReason::Session(reason) => reason != CloseReason::ParseError,
            DisconnectReason::ClientNamespaceDisconnect => false,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recoverable_reasons_match_socket_io() {
        for reason in [
            CloseReason::TransportClose,
            CloseReason::TransportError,
            CloseReason::PingTimeout,
            CloseReason::Forced,
            CloseReason::ServerShutdown,
        ] {
            assert!(
                DisconnectReason::Session(reason).is_recoverable(),
                "{reason}"
            );
        }
        assert!(!DisconnectReason::Session(CloseReason::ParseError).is_recoverable());
        assert!(!DisconnectReason::ClientNamespaceDisconnect.is_recoverable());
        assert_eq!(
            DisconnectReason::ClientNamespaceDisconnect.to_string(),
            "client namespace disconnect"
        );
    }
}
