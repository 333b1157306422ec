//! WebSocket messages from and to bytes: pure functions, no I/O.
//!
//! Frame headers are parsed and formatted by tungstenite's frame codec; this module adds what
//! a server needs around it: client frames must be masked, control frames short and final,
//! fragments reassembled within the message size limit, text checked as UTF-8. The connection
//! driver (`websocket.rs`) owns the buffers, so an idle connection holds none.

use std::io::Cursor;

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Longest header a server frame needs (no mask).
pub const MAX_SERVER_HEADER: usize = 10;

/// Why a connection must be closed, with the close code RFC 6455 gives for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WsError {
    /// The peer broke the protocol (unmasked frame, bad opcode, stray continuation...).
    Protocol(&'static str),
    /// A message longer than the limit (maxPayload).
    TooBig,
    /// A text message that is not UTF-8.
    InvalidUtf8,
}

impl WsError {
    pub fn close_code(self) -> u16 {
        match self {
            WsError::Protocol(_) => 1002,
            WsError::TooBig => 1009,
            WsError::InvalidUtf8 => 1007,
        }
    }
}

impl std::fmt::Display for WsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WsError::Protocol(why) => write!(f, "websocket protocol error: {why}"),
            WsError::TooBig => f.write_str("websocket message over the size limit"),
            WsError::InvalidUtf8 => f.write_str("websocket text message is not UTF-8"),
        }
    }
}

/// A complete message or control frame from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    Ping(&'a [u8]),
    Pong,
    /// The client closes, with this status code if it gave one (already checked: a code a
    /// peer may send, and a UTF-8 reason).
    Close(Option<u16>),
}

/// What one call to [`Decoder::decode`] found at the start of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// The frame is not all there yet; at least this many bytes are needed in total.
    Incomplete(usize),
    /// A frame of `consumed` bytes; `message` is `None` for a fragment of a longer message.
    Frame {
        consumed: usize,
        message: Option<Inbound<'a>>,
    },
}

/// Reassembles client messages from frames.
pub struct Decoder {
    max_message: usize,
    /// A fragmented message in progress. Boxed: few clients fragment, and every connection
    /// would otherwise carry the room.
    fragmented: Option<Box<Fragmented>>,
    /// `fragmented` was handed out as a whole message and is dropped on the next call.
    assembled: bool,
}

/// The start of a fragmented message.
struct Fragmented {
    kind: Data,
    data: Vec<u8>,
    /// How much of a text message's `data` is known to be valid UTF-8 (a character may be
    /// cut at the end of a fragment), so that bad text fails at the fragment that breaks it.
    checked: usize,
}

impl Fragmented {
    /// Adds a fragment; a text message whose bytes so far cannot begin valid UTF-8 fails now.
    fn extend(&mut self, payload: &[u8]) -> Result<(), WsError> {
        self.data.extend_from_slice(payload);
        if self.kind == Data::Text {
            match std::str::from_utf8(&self.data[self.checked..]) {
                Ok(_) => self.checked = self.data.len(),
                Err(error) if error.error_len().is_none() => self.checked += error.valid_up_to(),
                Err(_) => return Err(WsError::InvalidUtf8),
            }
        }
        Ok(())
    }
}

impl Decoder {
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            max_message,
            fragmented: None,
            assembled: false,
        }
    }

    /// Bytes of a fragmented message received so far.
    fn buffered_len(&self) -> usize {
        self.fragmented.as_ref().map_or(0, |f| f.data.len())
    }

    /// Bytes held for a fragmented message in progress.
    pub fn buffered(&self) -> usize {
        self.fragmented.as_ref().map_or(0, |f| f.data.capacity())
    }

    /// Decodes the frame at the start of `buf`, unmasking its payload in place.
    pub fn decode<'a>(&'a mut self, buf: &'a mut [u8]) -> Result<Decoded<'a>, WsError> {
        if self.assembled {
            self.fragmented = None;
            self.assembled = false;
        }
        let mut cursor = Cursor::new(&*buf);
        let parsed =
            FrameHeader::parse(&mut cursor).map_err(|_| WsError::Protocol("reserved opcode"))?;
        let Some((header, length)) = parsed else {
            return Ok(Decoded::Incomplete(buf.len() + 1));
        };
        let start = cursor.position() as usize;
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        let Some(mask) = header.mask else {
            return Err(WsError::Protocol("unmasked client frame"));
        };
        match header.opcode {
            OpCode::Control(_) if !header.is_final || length > 125 => {
                return Err(WsError::Protocol("fragmented or long control frame"));
            }
            OpCode::Data(_) if length > (self.max_message - self.buffered_len()) as u64 => {
                return Err(WsError::TooBig);
            }
            _ => {}
        }
        let end = start + length as usize;
        if buf.len() < end {
            return Ok(Decoded::Incomplete(end));
        }
        let payload = &mut buf[start..end];
        unmask(payload, mask);
        let message = match header.opcode {
            OpCode::Control(Control::Ping) => Some(Inbound::Ping(payload)),
            OpCode::Control(Control::Pong) => Some(Inbound::Pong),
            OpCode::Control(_) => Some(Inbound::Close(close_code(payload)?)),
            OpCode::Data(Data::Continue) => {
                let fragmented = self
                    .fragmented
                    .as_mut()
                    .ok_or(WsError::Protocol("continuation without a first frame"))?;
                fragmented.extend(payload)?;
                if header.is_final {
                    self.assembled = true;
                    Some(message(fragmented.kind, &fragmented.data)?)
                } else {
                    None
                }
            }
            OpCode::Data(kind) => {
                if self.fragmented.is_some() {
                    return Err(WsError::Protocol("new message inside a fragmented one"));
                }
                if header.is_final {
                    Some(message(kind, payload)?)
                } else {
                    let mut fragmented = Box::new(Fragmented {
                        kind,
                        data: Vec::with_capacity(payload.len()),
                        checked: 0,
                    });
                    fragmented.extend(payload)?;
                    self.fragmented = Some(fragmented);
                    None
                }
            }
        };
        Ok(Decoded::Frame {
            consumed: end,
            message,
        })
    }
}

/// The status code of a close frame's payload, checked as RFC 6455 5.5.1 and 7.4 ask: none,
/// or two bytes of a code an endpoint may send and a UTF-8 reason.
fn close_code(payload: &[u8]) -> Result<Option<u16>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::Protocol("close frame with a one-byte payload")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            // 1004-1006 and 1015 are reserved (never sent), 1016-2999 are for future
            // standards, below 1000 unused, 5000 and up invalid.
            let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !sendable {
                return Err(WsError::Protocol("close frame with an invalid status code"));
            }
            std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
            Ok(Some(code))
        }
    }
}

fn message(kind: Data, payload: &[u8]) -> Result<Inbound<'_>, WsError> {
    match kind {
        Data::Text => std::str::from_utf8(payload)
            .map(Inbound::Text)
            .map_err(|_| WsError::InvalidUtf8),
        _ => Ok(Inbound::Binary(payload)),
    }
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = payload.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let value = u32::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]) ^ word;
        chunk.copy_from_slice(&value.to_ne_bytes());
    }
    for (byte, key) in chunks.into_remainder().iter_mut().zip(mask) {
        *byte ^= key;
    }
}

/// Server frame opcodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Text,
    Binary,
    Pong,
    Close,
}

/// Length of a server frame header for a payload of `length` bytes.
pub fn header_len(length: usize) -> usize {
    match length {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

/// Writes the header of a final, unmasked server frame into `out`; returns its length.
pub fn encode_header(opcode: Opcode, length: usize, out: &mut [u8; MAX_SERVER_HEADER]) -> usize {
    let opcode = match opcode {
        Opcode::Text => OpCode::Data(Data::Text),
        Opcode::Binary => OpCode::Data(Data::Binary),
        Opcode::Pong => OpCode::Control(Control::Pong),
        Opcode::Close => OpCode::Control(Control::Close),
    };
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let mut cursor = &mut out[..];
    // Cannot fail: a server header is at most 10 bytes.
    let _ = header.format(length as u64, &mut cursor);
    MAX_SERVER_HEADER - cursor.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame, as a browser would send it.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn decode_all(decoder: &mut Decoder, mut bytes: Vec<u8>) -> Result<Vec<String>, WsError> {
        let mut seen = Vec::new();
        let mut offset = 0;
        while offset < bytes.len() {
            match decoder.decode(&mut bytes[offset..])? {
                Decoded::Incomplete(_) => panic!("incomplete"),
                Decoded::Frame { consumed, message } => {
                    if let Some(message) = message {
                        seen.push(format!("{message:?}"));
                    }
                    offset += consumed;
                }
            }
        }
        Ok(seen)
    }

    #[test]
    fn close_frames_carry_a_checked_code() {
        let close =
            |payload: &[u8]| decode_all(&mut Decoder::new(100), client_frame(0x88, payload));
        assert_eq!(close(b"").unwrap(), ["Close(None)"]);
        assert_eq!(close(&[0x03, 0xe8]).unwrap(), ["Close(Some(1000))"]);
        assert_eq!(close(b"\x0b\xb8bye").unwrap(), ["Close(Some(3000))"]);
        for bad in [
            &[0x03][..],
            &[0x03, 0xed],
            &[0x03, 0xf7],
            &[0x07, 0xd0],
            &[0x13, 0x88],
        ] {
            assert!(matches!(close(bad), Err(WsError::Protocol(_))), "{bad:?}");
        }
        assert_eq!(close(b"\x03\xe8\xff"), Err(WsError::InvalidUtf8));
    }

    #[test]
    fn fragmented_text_fails_at_the_fragment_that_breaks_it() {
        let mut decoder = Decoder::new(100);
        // "é" cut between two fragments is fine so far...
        let mut first = client_frame(0x01, b"ab\xc3");
        assert!(decoder.decode(&mut first).is_ok());
        let mut second = client_frame(0x00, b"\xa9cd");
        assert!(decoder.decode(&mut second).is_ok());
        // ...a byte that no UTF-8 can continue fails before the message ends.
        let mut third = client_frame(0x00, b"\xff");
        assert_eq!(decoder.decode(&mut third).err(), Some(WsError::InvalidUtf8));
        // A whole message assembled from valid fragments comes out as one text.
        let mut decoder = Decoder::new(100);
        let mut bytes = client_frame(0x01, b"ab\xc3");
        bytes.extend(client_frame(0x80, b"\xa9"));
        assert_eq!(decode_all(&mut decoder, bytes).unwrap(), ["Text(\"abé\")"]);
    }

    #[test]
    fn decodes_masked_text_of_every_length_format() {
        for len in [0, 5, 125, 126, 1000, 70_000] {
            let text = "x".repeat(len);
            let mut frame = client_frame(0x81, text.as_bytes());
            let mut decoder = Decoder::new(100_000);
            let total = frame.len();
            match decoder.decode(&mut frame).unwrap() {
                Decoded::Frame {
                    consumed,
                    message: Some(Inbound::Text(got)),
                } => {
                    assert_eq!(consumed, total);
                    assert_eq!(got, text);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn reports_how_much_an_incomplete_frame_needs() {
        let mut frame = client_frame(0x81, b"hello");
        let mut decoder = Decoder::new(100);
        assert_eq!(
            decoder.decode(&mut frame[..1]).unwrap(),
            Decoded::Incomplete(2)
        );
        assert_eq!(
            decoder.decode(&mut frame[..8]).unwrap(),
            Decoded::Incomplete(11)
        );
    }

    #[test]
    fn reassembles_fragments_around_control_frames() {
        let mut bytes = client_frame(0x01, b"hel");
        bytes.extend(client_frame(0x89, b"p"));
        bytes.extend(client_frame(0x00, b"lo "));
        bytes.extend(client_frame(0x80, "wörld".as_bytes()));
        bytes.extend(client_frame(0x82, &[1, 2]));
        let seen = decode_all(&mut Decoder::new(100), bytes).unwrap();
        assert_eq!(
            seen,
            ["Ping([112])", "Text(\"hello wörld\")", "Binary([1, 2])"]
        );
    }

    #[test]
    fn enforces_the_message_limit_across_fragments() {
        let mut decoder = Decoder::new(10);
        assert_eq!(
            decode_all(&mut decoder, client_frame(0x81, &[b'a'; 11])),
            Err(WsError::TooBig)
        );
        let mut bytes = client_frame(0x01, &[b'a'; 6]);
        bytes.extend(client_frame(0x80, &[b'a'; 5]));
        assert_eq!(
            decode_all(&mut Decoder::new(10), bytes),
            Err(WsError::TooBig)
        );
        // The limit is checked from the header, before the payload arrives.
        let mut header_only = client_frame(0x82, &[0; 70_000]);
        header_only.truncate(14);
        assert_eq!(
            Decoder::new(65_536).decode(&mut header_only),
            Err(WsError::TooBig)
        );
    }

    #[test]
    fn refuses_protocol_violations() {
        let cases: Vec<(Vec<u8>, WsError)> = vec![
            (
                vec![0x81, 0x01, b'a'],
                WsError::Protocol("unmasked client frame"),
            ),
            (
                client_frame(0xc1, b"a"),
                WsError::Protocol("reserved bits set"),
            ),
            (
                client_frame(0x83, b"a"),
                WsError::Protocol("reserved opcode"),
            ),
            (
                client_frame(0x80, b"a"),
                WsError::Protocol("continuation without a first frame"),
            ),
            (
                client_frame(0x09, b"a"),
                WsError::Protocol("fragmented or long control frame"),
            ),
            (
                client_frame(0x89, &[0; 126]),
                WsError::Protocol("fragmented or long control frame"),
            ),
            (client_frame(0x81, &[0xff, 0xfe]), WsError::InvalidUtf8),
            // A lone surrogate encoded as UTF-8 (CESU style) is not UTF-8.
            (
                client_frame(0x81, &[0xed, 0xa0, 0x80]),
                WsError::InvalidUtf8,
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(decode_all(&mut Decoder::new(1000), bytes), Err(expected));
        }
        let mut interleaved = client_frame(0x01, b"a");
        interleaved.extend(client_frame(0x81, b"b"));
        assert_eq!(
            decode_all(&mut Decoder::new(1000), interleaved),
            Err(WsError::Protocol("new message inside a fragmented one"))
        );
    }

    #[test]
    fn encodes_server_headers() {
        let mut out = [0; MAX_SERVER_HEADER];
        assert_eq!(encode_header(Opcode::Text, 5, &mut out), 2);
        assert_eq!(out[..2], [0x81, 5]);
        assert_eq!(encode_header(Opcode::Binary, 300, &mut out), 4);
        assert_eq!(out[..4], [0x82, 126, 1, 44]);
        assert_eq!(encode_header(Opcode::Text, 70_000, &mut out), 10);
        assert_eq!(out[..10], [0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        assert_eq!(encode_header(Opcode::Pong, 0, &mut out), 2);
        assert_eq!(out[..2], [0x8a, 0]);
        assert_eq!(encode_header(Opcode::Close, 2, &mut out), 2);
        assert_eq!(out[..2], [0x88, 2]);
        for len in [0, 125, 126, 65535, 65536] {
            assert_eq!(header_len(len), encode_header(Opcode::Text, len, &mut out));
        }
    }
}
