//! Property tests: every codec's encoder and decoder agree on whatever they are given.

use bytes::Bytes;
use emberchat::engineio::packet::Packet as EnginePacket;
use emberchat::engineio::{EncodedPacket, base64, payload};
use emberchat::json;
use emberchat::socketio::packet::{self, MAX_ACK_ID, PacketType};
use emberchat::transport::ws_codec::{Decoded, Decoder, Inbound};
use proptest::prelude::*;

/// Text that may appear inside an Engine.IO packet: anything but the polling separator.
fn packet_text() -> impl Strategy<Value = String> {
    any::<String>().prop_map(|s| s.replace('\x1e', ""))
}

#[derive(Debug, Clone)]
enum Outbound {
    Text(String),
    Binary(Vec<u8>),
}

fn outbound() -> impl Strategy<Value = Outbound> {
    prop_oneof![
        packet_text().prop_map(Outbound::Text),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Outbound::Binary),
    ]
}

/// A JSON array of strings and integers, as the chat's events carry.
fn json_array() -> impl Strategy<Value = String> {
    let element = prop_oneof![
        any::<String>().prop_map(|s| {
            let mut out = String::new();
            json::write_string(&mut out, &s);
            out
        }),
        any::<i64>().prop_map(|n| n.to_string()),
    ];
    proptest::collection::vec(element, 0..5).prop_map(|items| format!("[{}]", items.join(",")))
}

proptest! {
    #[test]
    fn json_strings_round_trip(text in any::<String>()) {
        let mut literal = String::new();
        json::write_string(&mut literal, &text);
        prop_assert_eq!(json::validate(&literal), Ok(literal.as_str()));
        prop_assert_eq!(json::unescape(&literal).unwrap(), text);
    }

    #[test]
    fn base64_round_trips(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut text = String::new();
        base64::encode_into(&data, &mut text);
        prop_assert_eq!(base64::decode(&text), Some(data));
    }

    #[test]
    fn polling_payloads_round_trip(frames in proptest::collection::vec(outbound(), 1..8)) {
        let encoded: Vec<EncodedPacket> = frames
            .iter()
            .map(|f| match f {
                Outbound::Text(text) => EncodedPacket::text(format!("4{text}")),
                Outbound::Binary(data) => EncodedPacket::Binary(Bytes::from(data.clone())),
            })
            .collect();
        let body = payload::encode(&encoded);
        let decoded = payload::decode(body.as_bytes(), usize::MAX).unwrap();
        prop_assert_eq!(decoded.len(), frames.len());
        for (packet, frame) in decoded.iter().zip(&frames) {
            match frame {
                Outbound::Text(text) => prop_assert_eq!(packet, &EnginePacket::Message(text)),
                Outbound::Binary(data) => {
                    prop_assert_eq!(packet, &EnginePacket::Binary(Bytes::from(data.clone())))
                }
            }
        }
    }

    #[test]
    fn socketio_packets_round_trip(
        kind in prop_oneof![
            Just(PacketType::Event),
            Just(PacketType::Ack),
            Just(PacketType::BinaryEvent),
            Just(PacketType::BinaryAck),
        ],
        nsp in prop_oneof![Just("/".to_owned()), "/[a-z0-9_-]{1,12}"],
        ack in proptest::option::of(0..=MAX_ACK_ID),
        data in json_array(),
        attachments in 0usize..4,
    ) {
        let binary = matches!(kind, PacketType::BinaryEvent | PacketType::BinaryAck);
        // An ack without an id means nothing: the decoder refuses it.
        let ack = match kind {
            PacketType::Ack | PacketType::BinaryAck => Some(ack.unwrap_or(0)),
            _ => ack,
        };
        let attachments = if binary { attachments } else { 0 };
        // Attachments must be referenced by placeholders in the data.
        let data = if binary {
            let placeholders: Vec<String> = (0..attachments)
                .map(|n| format!("{{\"_placeholder\":true,\"num\":{n}}}"))
                .collect();
            let inner = data.trim_start_matches('[').trim_end_matches(']');
            let mut items: Vec<&str> = vec!["\"upload\""];
            if !inner.is_empty() {
                items.push(inner);
            }
            items.extend(placeholders.iter().map(String::as_str));
            format!("[{}]", items.join(","))
        } else if matches!(kind, PacketType::Event) {
            // An event needs a name first.
            let inner = data.trim_start_matches('[').trim_end_matches(']');
            if inner.is_empty() { "[\"chat message\"]".to_owned() } else { format!("[\"chat message\",{inner}]") }
        } else {
            data
        };
        let text = packet::encode(kind, &nsp, ack, Some(&data), attachments);
        let decoded = packet::decode(&text[1..], 10).unwrap();
        prop_assert_eq!(decoded.kind, kind);
        prop_assert_eq!(decoded.nsp, nsp.as_str());
        prop_assert_eq!(decoded.ack, ack);
        prop_assert_eq!(decoded.data, Some(data.as_str()));
        prop_assert_eq!(decoded.attachments, attachments);
    }

    #[test]
    fn websocket_messages_round_trip(
        text in any::<String>(),
        mask in any::<[u8; 4]>(),
        split in 1usize..4,
    ) {
        // The client's side: a masked text message, fragmented into `split` frames.
        let bytes = text.as_bytes();
        let chunk = bytes.len().div_ceil(split).max(1);
        let pieces: Vec<&[u8]> = if bytes.is_empty() { vec![&[][..]] } else { bytes.chunks(chunk).collect() };
        let mut wire = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let opcode = if i == 0 { 0x1 } else { 0x0 };
            let fin = if i + 1 == pieces.len() { 0x80 } else { 0 };
            wire.push(fin | opcode);
            match piece.len() {
                n if n < 126 => wire.push(0x80 | n as u8),
                n => {
                    wire.push(0x80 | 126);
                    wire.extend_from_slice(&(n as u16).to_be_bytes());
                }
            }
            wire.extend_from_slice(&mask);
            wire.extend(piece.iter().enumerate().map(|(j, b)| b ^ mask[j % 4]));
        }
        let mut decoder = Decoder::new(1 << 20);
        let mut offset = 0;
        let mut messages = Vec::new();
        while offset < wire.len() {
            match decoder.decode(&mut wire[offset..]).unwrap() {
                Decoded::Incomplete(_) => panic!("whole frames were given"),
                Decoded::Frame { consumed, message } => {
                    if let Some(Inbound::Text(t)) = message {
                        messages.push(t.to_owned());
                    }
                    offset += consumed;
                }
            }
        }
        prop_assert_eq!(messages, vec![text]);
    }
}
