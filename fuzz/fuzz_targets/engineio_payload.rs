//! Engine.IO: a polling body (and each of its packets) decodes without panicking, and what
//! decodes re-encodes to a body that decodes to the same packets.
#![no_main]

use emberchat::engineio::packet::Packet;
use emberchat::engineio::{EncodedPacket, payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(packets) = payload::decode(body, 100_000) else {
        return;
    };
    // Messages and binary packets are what the server also sends: re-encode those.
    let frames: Vec<EncodedPacket> = packets
        .iter()
        .filter_map(|packet| match packet {
            Packet::Message(text) => Some(EncodedPacket::text(format!("4{text}"))),
            Packet::Binary(data) => Some(EncodedPacket::Binary(data.clone())),
            _ => None,
        })
        .collect();
    if frames.is_empty() {
        return;
    }
    let encoded = payload::encode(&frames);
    let again = payload::decode(encoded.as_bytes(), usize::MAX).expect("re-encoded body decodes");
    let expected: Vec<&Packet> = packets
        .iter()
        .filter(|p| matches!(p, Packet::Message(_) | Packet::Binary(_)))
        .collect();
    assert_eq!(again.iter().collect::<Vec<_>>(), expected);
});
