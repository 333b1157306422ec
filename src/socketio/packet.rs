//! Socket.IO v5 packets: `<type>[<attachments>-][<nsp>,][<ack id>][JSON]`.
//!
//! Decoding validates as strictly as socket.io-parser does (its gaps were CVEs): the payload
//! must suit the packet type, ack ids are integers, and binary attachments are capped.

use std::fmt;

use crate::json::{self, JsonError, Kind};

/// Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl PacketType {
    fn from_digit(digit: u8) -> Option<PacketType> {
        Some(match digit {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }

    fn digit(self) -> char {
        char::from(b'0' + self as u8)
    }
}

/// Event names that applications may not use, as socket.io reserves them.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Largest ack id accepted: JavaScript's safe integer range.
pub const MAX_ACK_ID: u64 = (1 << 53) - 1;

/// A decoded packet; `data` is the raw, validated JSON payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<'a> {
    pub kind: PacketType,
    pub nsp: &'a str,
    pub ack: Option<u64>,
    pub data: Option<&'a str>,
    /// Number of binary attachments that follow (binary types only).
    pub attachments: usize,
}

impl<'a> Packet<'a> {
    /// For events: the event name (unescaped) and the rest of the array after it, which is
    /// either `]` or `,<args>]`, ready to re-emit under another name.
    pub fn event_parts(&self) -> Option<(std::borrow::Cow<'a, str>, &'a str)> {
        let data = self.data?;
        let name = json::array_elements(data).next()?;
        // `name` is a sub-slice of `data`: its end offset splits the array.
        let name_end = name.as_ptr() as usize - data.as_ptr() as usize + name.len();
        let tail = &data[name_end..];
        Some((json::unescape(name).ok()?, tail))
    }
}

/// Why a packet was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    UnknownType,
    BadAttachmentCount,
    TooManyAttachments,
    BadNamespace,
    BadAckId,
    Json(JsonError),
    /// The payload's shape does not suit the packet type.
    InvalidPayload,
    ReservedEventName,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("empty packet"),
            DecodeError::UnknownType => f.write_str("unknown packet type"),
            DecodeError::BadAttachmentCount => f.write_str("illegal attachments"),
            DecodeError::TooManyAttachments => f.write_str("too many attachments"),
            DecodeError::BadNamespace => f.write_str("invalid namespace"),
            DecodeError::BadAckId => f.write_str("invalid ack id"),
            DecodeError::Json(e) => write!(f, "invalid payload: {e}"),
            DecodeError::InvalidPayload => f.write_str("invalid payload for packet type"),
            DecodeError::ReservedEventName => f.write_str("reserved event name"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a Socket.IO packet from the text of an Engine.IO message.
pub fn decode(text: &str, max_attachments: usize) -> Result<Packet<'_>, DecodeError> {
    let bytes = text.as_bytes();
    let kind = PacketType::from_digit(*bytes.first().ok_or(DecodeError::Empty)?)
        .ok_or(DecodeError::UnknownType)?;
    let mut pos = 1;

    let mut attachments = 0;
    if kind.is_binary() {
        let digits = count_digits(&bytes[pos..]);
        if digits == 0 || digits > 6 || bytes.get(pos + digits) != Some(&b'-') {
            return Err(DecodeError::BadAttachmentCount);
        }
        attachments = text[pos..pos + digits]
            .parse()
            .map_err(|_| DecodeError::BadAttachmentCount)?;
        if attachments > max_attachments {
            return Err(DecodeError::TooManyAttachments);
        }
        pos += digits + 1;
    }

    let mut nsp = "/";
    if bytes.get(pos) == Some(&b'/') {
        let end = text[pos..].find(',').map_or(text.len(), |i| pos + i);
        nsp = &text[pos..end];
        pos = (end + 1).min(text.len());
    }

    let mut ack = None;
    let digits = count_digits(&bytes[pos..]);
    if digits > 0 {
        if digits > 16 {
            return Err(DecodeError::BadAckId);
        }
        let id: u64 = text[pos..pos + digits]
            .parse()
            .map_err(|_| DecodeError::BadAckId)?;
        if id > MAX_ACK_ID {
            return Err(DecodeError::BadAckId);
        }
        ack = Some(id);
        pos += digits;
    }

    let data = if pos < text.len() {
        Some(json::validate(&text[pos..]).map_err(DecodeError::Json)?)
    } else {
        None
    };

    let packet = Packet {
        kind,
        nsp,
        ack,
        data,
        attachments,
    };
    check_payload(&packet)?;
    Ok(packet)
}

fn count_digits(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| b.is_ascii_digit()).count()
}

fn check_payload(packet: &Packet<'_>) -> Result<(), DecodeError> {
    let kind_of = packet.data.map(json::kind);
    let valid = match packet.kind {
        PacketType::Connect => matches!(kind_of, None | Some(Kind::Object)),
        PacketType::Disconnect => kind_of.is_none() && packet.ack.is_none(),
        PacketType::ConnectError => matches!(kind_of, Some(Kind::Object | Kind::String)),
        PacketType::Event | PacketType::BinaryEvent => {
            let Some(data) = packet.data.filter(|_| kind_of == Some(Kind::Array)) else {
                return Err(DecodeError::InvalidPayload);
            };
            match json::array_elements(data).next() {
                Some(name) if json::kind(name) == Kind::String => {
                    let name = json::unescape(name).map_err(DecodeError::Json)?;
                    if RESERVED_EVENTS.contains(&name.as_ref()) {
                        return Err(DecodeError::ReservedEventName);
                    }
                    true
                }
                _ => false,
            }
        }
        PacketType::Ack | PacketType::BinaryAck => {
            kind_of == Some(Kind::Array) && packet.ack.is_some()
        }
    };
    if !packet.nsp.starts_with('/') {
        return Err(DecodeError::BadNamespace);
    }
    if packet.kind.is_binary() {
        check_placeholders(packet)?;
    }
    if valid {
        Ok(())
    } else {
        Err(DecodeError::InvalidPayload)
    }
}

/// Every `{"_placeholder":true,"num":N}` in a binary packet must point at one of its
/// attachments, as socket.io-parser requires ("illegal attachments" otherwise).
fn check_placeholders(packet: &Packet<'_>) -> Result<(), DecodeError> {
    let Some(data) = packet.data else {
        return Ok(());
    };
    let mut valid = true;
    json::visit_objects(data, &mut |object| {
        if json::object_get(object, "_placeholder") != Some("true") {
            return;
        }
        let num = json::object_get(object, "num").and_then(|n| n.parse::<usize>().ok());
        if num.is_none_or(|n| n >= packet.attachments) {
            valid = false;
        }
    });
    if valid {
        Ok(())
    } else {
        Err(DecodeError::BadAttachmentCount)
    }
}

/// Encodes a packet as an Engine.IO message text (`4` + Socket.IO packet), ready to send.
/// `data` must be valid JSON (or `None`).
pub fn encode(
    kind: PacketType,
    nsp: &str,
    ack: Option<u64>,
    data: Option<&str>,
    attachments: usize,
) -> String {
    let mut out = String::with_capacity(16 + nsp.len() + data.map_or(0, str::len));
    write_header(&mut out, kind, nsp, ack, attachments);
    if let Some(data) = data {
        out.push_str(data);
    }
    out
}

/// Writes `4<type>[<n>-][<nsp>,][<ack>]` to `out`; the JSON payload follows.
pub fn write_header(
    out: &mut String,
    kind: PacketType,
    nsp: &str,
    ack: Option<u64>,
    attachments: usize,
) {
    use std::fmt::Write;
    out.push('4');
    out.push(kind.digit());
    if kind.is_binary() {
        let _ = write!(out, "{attachments}-");
    }
    if nsp != "/" {
        out.push_str(nsp);
        out.push(',');
    }
    if let Some(id) = ack {
        let _ = write!(out, "{id}");
    }
}

/// The arguments of an event being encoded, written in place after the event name, so a
/// packet is built in one buffer without intermediate JSON values.
pub struct EventArgs<'a> {
    out: &'a mut String,
}

impl EventArgs<'_> {
    /// Appends a string argument.
    #[inline]
    pub fn string(&mut self, text: &str) -> &mut Self {
        self.out.push(',');
        json::write_string(self.out, text);
        self
    }

    /// Appends a number argument.
    #[inline]
    pub fn int(&mut self, n: i64) -> &mut Self {
        self.out.push(',');
        self.out.push_str(itoa::Buffer::new().format(n));
        self
    }

    /// Appends a JSON value that `write` writes; it must write exactly one valid value.
    #[inline]
    pub fn json(&mut self, write: impl FnOnce(&mut String)) -> &mut Self {
        self.out.push(',');
        write(self.out);
        self
    }

    /// Appends a number as a JSON string (socket.io's recovery offsets are strings).
    #[inline]
    pub fn int_as_string(&mut self, n: i64) -> &mut Self {
        self.out.push_str(",\"");
        self.out.push_str(itoa::Buffer::new().format(n));
        self.out.push('"');
        self
    }
}

/// Writes an EVENT packet without attachments, as an Engine.IO message text:
/// `42[<nsp>,]["<event>",<args>]`. `args` appends the arguments.
pub fn write_event(
    out: &mut String,
    nsp: &str,
    event: &str,
    args: impl FnOnce(&mut EventArgs<'_>),
) {
    write_event_head(out, nsp, event);
    write_event_tail(out, args);
}

/// The part of an EVENT packet before its arguments, `42[<nsp>,]["<event>"`: the same for
/// every event of one name, so a run of them can copy it instead of encoding it again.
pub fn write_event_head(out: &mut String, nsp: &str, event: &str) {
    write_header(out, PacketType::Event, nsp, None, 0);
    out.push('[');
    json::write_string(out, event);
}

/// The arguments and the closing bracket, after [`write_event_head`].
#[inline]
pub fn write_event_tail(out: &mut String, args: impl FnOnce(&mut EventArgs<'_>)) {
    args(&mut EventArgs { out: &mut *out });
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Packet<'_> {
        decode(text, 10).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn decodes_connect() {
        let p = ok("0");
        assert_eq!((p.kind, p.nsp, p.data), (PacketType::Connect, "/", None));
        let p = ok("0/admin,{\"token\":\"x\"}");
        assert_eq!(p.nsp, "/admin");
        assert_eq!(p.data, Some("{\"token\":\"x\"}"));
        let p = ok("0/admin,");
        assert_eq!((p.nsp, p.data), ("/admin", None));
    }

    #[test]
    fn decodes_events_and_acks() {
        let p = ok("2[\"chat message\",\"hi\"]");
        assert_eq!((p.kind, p.ack), (PacketType::Event, None));
        let p = ok("2/custom,12[\"x\",1]");
        assert_eq!(
            (p.nsp, p.ack, p.data),
            ("/custom", Some(12), Some("[\"x\",1]"))
        );
        let p = ok("312[]");
        assert_eq!((p.kind, p.ack), (PacketType::Ack, Some(12)));
        let p =
            ok("52-[\"m\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]");
        assert_eq!((p.kind, p.attachments), (PacketType::BinaryEvent, 2));
        let p = ok("61-/c,3[{\"_placeholder\":true,\"num\":0}]");
        assert_eq!(
            (p.kind, p.nsp, p.ack, p.attachments),
            (PacketType::BinaryAck, "/c", Some(3), 1)
        );
        assert_eq!(ok("1").kind, PacketType::Disconnect);
        assert_eq!(ok("1/custom,").nsp, "/custom");
    }

    #[test]
    fn event_parts_split_name_and_args() {
        let p = ok("2[\"message\",1,{\"a\":2}]");
        let (name, tail) = p.event_parts().unwrap();
        assert_eq!((name.as_ref(), tail), ("message", ",1,{\"a\":2}]"));
        let p = ok("2[ \"n\\u0061me\" ]");
        let (name, tail) = p.event_parts().unwrap();
        assert_eq!((name.as_ref(), tail), ("name", " ]"));
    }

    #[test]
    fn rejects_invalid_packets() {
        for (text, error) in [
            ("", DecodeError::Empty),
            ("9", DecodeError::UnknownType),
            ("a", DecodeError::UnknownType),
            ("0[]", DecodeError::InvalidPayload),
            ("0\"str\"", DecodeError::InvalidPayload),
            ("1{}", DecodeError::InvalidPayload),
            ("2", DecodeError::InvalidPayload),
            ("2{}", DecodeError::InvalidPayload),
            ("2[]", DecodeError::InvalidPayload),
            ("2[1]", DecodeError::InvalidPayload),
            ("2[null]", DecodeError::InvalidPayload),
            ("2[\"disconnect\"]", DecodeError::ReservedEventName),
            ("2[\"connect\",1]", DecodeError::ReservedEventName),
            ("3[]", DecodeError::InvalidPayload),
            ("31{}", DecodeError::InvalidPayload),
            ("2[\"a\"", DecodeError::Json(JsonError::Truncated)),
            ("2[\"a\"]x", DecodeError::Json(JsonError::TrailingData)),
            ("299999999999999999[\"a\"]", DecodeError::BadAckId),
            ("29007199254740992[\"a\"]", DecodeError::BadAckId),
            ("5[\"a\"]", DecodeError::BadAttachmentCount),
            ("5-[\"a\"]", DecodeError::BadAttachmentCount),
            ("511-[\"a\"]", DecodeError::TooManyAttachments),
            ("51000000000-[\"a\"]", DecodeError::BadAttachmentCount),
            ("4", DecodeError::InvalidPayload),
            ("2x,[\"a\"]", DecodeError::Json(JsonError::Unexpected(0))),
            (
                "51-[\"a\",{\"_placeholder\":true,\"num\":1}]",
                DecodeError::BadAttachmentCount,
            ),
            (
                "51-[\"a\",{\"_placeholder\":true,\"num\":-1}]",
                DecodeError::BadAttachmentCount,
            ),
            (
                "51-[\"a\",{\"_placeholder\":true}]",
                DecodeError::BadAttachmentCount,
            ),
            (
                "61-1[[{\"_placeholder\":true,\"num\":\"0\"}]]",
                DecodeError::BadAttachmentCount,
            ),
        ] {
            assert_eq!(decode(text, 10), Err(error), "{text:?}");
        }
    }

    #[test]
    fn encodes_packets() {
        assert_eq!(
            encode(PacketType::Connect, "/", None, Some("{\"sid\":\"a\"}"), 0),
            "40{\"sid\":\"a\"}"
        );
        assert_eq!(
            encode(
                PacketType::ConnectError,
                "/x",
                None,
                Some("{\"message\":\"m\"}"),
                0
            ),
            "44/x,{\"message\":\"m\"}"
        );
        assert_eq!(
            encode(PacketType::Ack, "/", Some(7), Some("[]"), 0),
            "437[]"
        );
        assert_eq!(
            encode(PacketType::BinaryAck, "/c", Some(1), Some("[1]"), 2),
            "462-/c,1[1]"
        );
        assert_eq!(encode(PacketType::Disconnect, "/c", None, None, 0), "41/c,");
    }

    #[test]
    fn encode_decode_round_trip() {
        let text = encode(PacketType::BinaryEvent, "/c", Some(5), Some("[\"e\",1]"), 1);
        let p = decode(&text[1..], 10).unwrap();
        assert_eq!(
            p,
            Packet {
                kind: PacketType::BinaryEvent,
                nsp: "/c",
                ack: Some(5),
                data: Some("[\"e\",1]"),
                attachments: 1
            }
        );
    }

    #[test]
    fn writes_events_in_place() {
        let mut out = String::new();
        write_event(&mut out, "/", "chat message", |args| {
            args.string("hi \"you\"\n").int(42).int_as_string(42);
        });
        assert_eq!(out, "42[\"chat message\",\"hi \\\"you\\\"\\n\",42,\"42\"]");
        out.clear();
        write_event(&mut out, "/admin", "ping", |_| {});
        assert_eq!(out, "42/admin,[\"ping\"]");
        assert_eq!(ok(&out[1..]).event_parts().unwrap().0, "ping");
    }
}
