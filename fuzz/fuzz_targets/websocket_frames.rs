//! WebSocket: client bytes decode into frames or a clean error, never a panic; a frame never
//! claims more bytes than it was given, and no message exceeds the limit.
#![no_main]

use emberchat::transport::ws_codec::{Decoded, Decoder, Inbound};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut buffer = data.to_vec();
    let mut decoder = Decoder::new(LIMIT);
    let mut offset = 0;
    while offset < buffer.len() {
        let available = buffer.len() - offset;
        match decoder.decode(&mut buffer[offset..]) {
            Err(_) => return,
            Ok(Decoded::Incomplete(needed)) => {
                assert!(needed > available);
                return;
            }
            Ok(Decoded::Frame { consumed, message }) => {
                assert!(consumed > 0 && consumed <= available);
                match message {
                    Some(Inbound::Text(text)) => assert!(text.len() <= LIMIT),
                    Some(Inbound::Binary(data)) => assert!(data.len() <= LIMIT),
                    Some(Inbound::Ping(data)) => assert!(data.len() <= 125),
                    _ => {}
                }
                offset += consumed;
            }
        }
    }
});
