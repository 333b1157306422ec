//! Socket.IO: any text decodes or is refused without panicking; a decoded packet re-encodes
//! to text that decodes to the same packet, and its event parts can be read.
#![no_main]

use emberchat::socketio::packet;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(decoded) = packet::decode(text, 10) else {
        return;
    };
    assert!(decoded.attachments <= 10);
    let _ = decoded.event_parts();
    let encoded = packet::encode(
        decoded.kind,
        decoded.nsp,
        decoded.ack,
        decoded.data,
        decoded.attachments,
    );
    // `encode` writes the Engine.IO message prefix `4`.
    let again = packet::decode(&encoded[1..], 10).expect("re-encoded packet decodes");
    assert_eq!(again, decoded);
});
