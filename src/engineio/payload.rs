//! HTTP long-polling bodies: packets joined by the record separator `\x1e`.

use std::fmt;

use super::base64;
use super::encoded::EncodedPacket;
use super::packet::{self, Packet, PacketError};

/// Separates packets in a polling body.
pub const SEPARATOR: char = '\x1e';

/// Why a polling body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadError {
    TooLarge,
    NotUtf8,
    Packet(PacketError),
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::TooLarge => f.write_str("payload larger than maxPayload"),
            PayloadError::NotUtf8 => f.write_str("payload is not UTF-8"),
            PayloadError::Packet(e) => write!(f, "bad packet in payload: {e}"),
        }
    }
}

impl std::error::Error for PayloadError {}

/// Decodes a polling body into its packets. `max_payload` bounds the body size.
pub fn decode(body: &[u8], max_payload: usize) -> Result<Vec<Packet<'_>>, PayloadError> {
    if body.len() > max_payload {
        return Err(PayloadError::TooLarge);
    }
    let text = std::str::from_utf8(body).map_err(|_| PayloadError::NotUtf8)?;
    text.split(SEPARATOR)
        .map(|segment| packet::decode(segment).map_err(PayloadError::Packet))
        .collect()
}

/// Encodes queued packets as one polling body.
pub fn encode(packets: &[EncodedPacket]) -> String {
    let size = packets.iter().map(|f| f.len() + 1).sum::<usize>();
    let mut out = String::with_capacity(size);
    for (i, packet) in packets.iter().enumerate() {
        if i > 0 {
            out.push(SEPARATOR);
        }
        match packet {
            EncodedPacket::Text(text) => out.push_str(text),
            EncodedPacket::Binary(data) => {
                out.push('b');
                base64::encode_into(data, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn decodes_mixed_payload() {
        let body = b"4hello\x1e2\x1ebAQI=\x1e40";
        assert_eq!(
            decode(body, 100).unwrap(),
            vec![
                Packet::Message("hello"),
                Packet::Ping(""),
                Packet::Binary(Bytes::from_static(&[1, 2])),
                Packet::Message("0"),
            ]
        );
    }

    #[test]
    fn rejects_bad_payloads() {
        assert_eq!(decode(b"4abc", 3), Err(PayloadError::TooLarge));
        assert_eq!(decode(b"4\xff", 10), Err(PayloadError::NotUtf8));
        assert_eq!(
            decode(b"", 10),
            Err(PayloadError::Packet(PacketError::Empty))
        );
        assert_eq!(
            decode(b"4a\x1e\x1e4b", 10),
            Err(PayloadError::Packet(PacketError::Empty))
        );
        assert_eq!(
            decode(b"9", 10),
            Err(PayloadError::Packet(PacketError::UnknownType(b'9')))
        );
    }

    #[test]
    fn encodes_packets() {
        let packets = [
            EncodedPacket::text("4hi"),
            EncodedPacket::Binary(Bytes::from_static(&[1, 2, 3])),
            EncodedPacket::text("2"),
        ];
        assert_eq!(encode(&packets), "4hi\x1ebAQID\x1e2");
        assert_eq!(encode(&[]), "");
    }
}
