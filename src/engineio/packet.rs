//! Engine.IO v4 packets: one type digit followed by the data.
//!
//! `0` open, `1` close, `2` ping, `3` pong, `4` message, `5` upgrade, `6` noop. Over WebSocket a
//! binary frame is a binary message with no prefix; over polling it travels as `b` + base64.

use std::fmt;

use bytes::Bytes;

use super::base64;

/// A decoded Engine.IO packet, borrowing its text from the input.
#[derive(Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Open,
    Close,
    /// Data is `probe` during an upgrade.
    Ping(&'a str),
    Pong(&'a str),
    Message(&'a str),
    Binary(Bytes),
    Upgrade,
    Noop,
}

/// Why a packet could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketError {
    Empty,
    UnknownType(u8),
    BadBase64,
}

impl fmt::Display for PacketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PacketError::Empty => f.write_str("empty packet"),
            PacketError::UnknownType(t) => write!(f, "unknown packet type {t:#04x}"),
            PacketError::BadBase64 => f.write_str("invalid base64 in binary packet"),
        }
    }
}

impl std::error::Error for PacketError {}

/// Decodes a text packet (a WebSocket text frame or one polling payload segment).
pub fn decode(text: &str) -> Result<Packet<'_>, PacketError> {
    let (&kind, _) = text.as_bytes().split_first().ok_or(PacketError::Empty)?;
    // Every packet type is one ASCII character; checked before slicing, since a multi-byte
    // first character has no boundary at 1 (found by fuzzing).
    if !kind.is_ascii() {
        return Err(PacketError::UnknownType(kind));
    }
    let data = &text[1..];
    Ok(match kind {
        b'0' => Packet::Open,
        b'1' => Packet::Close,
        b'2' => Packet::Ping(data),
        b'3' => Packet::Pong(data),
        b'4' => Packet::Message(data),
        b'5' => Packet::Upgrade,
        b'6' => Packet::Noop,
        b'b' => Packet::Binary(base64::decode(data).ok_or(PacketError::BadBase64)?.into()),
        other => return Err(PacketError::UnknownType(other)),
    })
}

/// The open packet's JSON, as sent by the server after a handshake.
pub fn open_packet(
    sid: &str,
    upgrades: bool,
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: usize,
) -> String {
    let upgrades = if upgrades { "[\"websocket\"]" } else { "[]" };
    format!(
        "0{{\"sid\":\"{sid}\",\"upgrades\":{upgrades},\"pingInterval\":{ping_interval_ms},\
         \"pingTimeout\":{ping_timeout_ms},\"maxPayload\":{max_payload}}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_type() {
        assert_eq!(decode("0"), Ok(Packet::Open));
        assert_eq!(decode("1"), Ok(Packet::Close));
        assert_eq!(decode("2probe"), Ok(Packet::Ping("probe")));
        assert_eq!(decode("3"), Ok(Packet::Pong("")));
        assert_eq!(decode("4hello é"), Ok(Packet::Message("hello é")));
        assert_eq!(decode("5"), Ok(Packet::Upgrade));
        assert_eq!(decode("6"), Ok(Packet::Noop));
        assert_eq!(
            decode("bAQID"),
            Ok(Packet::Binary(Bytes::from_static(&[1, 2, 3])))
        );
    }

    #[test]
    fn rejects_malformed_packets() {
        assert_eq!(decode(""), Err(PacketError::Empty));
        assert_eq!(decode("7"), Err(PacketError::UnknownType(b'7')));
        assert_eq!(decode("x4"), Err(PacketError::UnknownType(b'x')));
        // A multi-byte first character (U+00E4, then U+1F600) is no packet type.
        assert_eq!(decode("ä"), Err(PacketError::UnknownType(0xc3)));
        assert_eq!(decode("\u{1F600}4"), Err(PacketError::UnknownType(0xf0)));
        assert_eq!(decode("b!!!"), Err(PacketError::BadBase64));
        assert_eq!(decode("bA"), Err(PacketError::BadBase64));
    }

    #[test]
    fn encodes_open_packet() {
        assert_eq!(
            open_packet("abc", true, 25000, 20000, 1_000_000),
            "0{\"sid\":\"abc\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,\
             \"pingTimeout\":20000,\"maxPayload\":1000000}"
        );
        assert!(open_packet("abc", false, 1, 2, 3).contains("\"upgrades\":[]"));
    }
}
