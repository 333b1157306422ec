//! The chat message on the wire: what a client may send (checked here) and the arguments
//! every client receives, `('chat message', msg, id)` plus the recovery offset.

use std::fmt;

use crate::json::{self, JsonError, Kind};
use crate::socketio::{Event, EventArgs};
use crate::store::Insert;

/// The event clients send and receive.
pub const CHAT_EVENT: &str = "chat message";

/// Why a `chat message` was not taken; the text is what the client's ack says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    NotAString,
    BadText(JsonError),
    TooLong { limit: usize },
    ClientOffsetNotAString,
    BadClientOffset(JsonError),
    ClientOffsetTooLong,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Invalid::NotAString => f.write_str("message must be a string"),
            Invalid::BadText(error) => write!(f, "invalid message: {error}"),
            Invalid::TooLong { limit } => write!(f, "message longer than {limit} bytes"),
            Invalid::ClientOffsetNotAString => f.write_str("client offset must be a string"),
            Invalid::BadClientOffset(error) => write!(f, "invalid client offset: {error}"),
            Invalid::ClientOffsetTooLong => f.write_str("client offset too long"),
        }
    }
}

/// Size limits of a chat message.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_bytes: usize,
    pub max_client_offset_bytes: usize,
}

/// Reads `chat message`'s arguments, `(content, clientOffset?)`, into a row to store.
pub fn parse(event: &Event<'_>, limits: Limits) -> Result<Insert, Invalid> {
    let mut args = event.args();
    let content = match args.next() {
        Some(raw) if json::kind(raw) == Kind::String => {
            json::unescape(raw).map_err(Invalid::BadText)?
        }
        _ => return Err(Invalid::NotAString),
    };
    if content.len() > limits.max_message_bytes {
        return Err(Invalid::TooLong {
            limit: limits.max_message_bytes,
        });
    }
    let client_offset = match args.next() {
        None => None,
        Some(raw) => match json::kind(raw) {
            Kind::Null => None,
            Kind::String => {
                let offset = json::unescape(raw).map_err(Invalid::BadClientOffset)?;
                if offset.len() > limits.max_client_offset_bytes {
                    return Err(Invalid::ClientOffsetTooLong);
                }
                // An empty offset identifies nothing: store the message without one.
                (!offset.is_empty()).then(|| offset.into_owned())
            }
            // A number is its own text, under the same limit.
            Kind::Number if raw.len() > limits.max_client_offset_bytes => {
                return Err(Invalid::ClientOffsetTooLong);
            }
            Kind::Number => Some(raw.to_owned()),
            _ => return Err(Invalid::ClientOffsetNotAString),
        },
    };
    Ok(Insert {
        content: content.into_owned(),
        client_offset,
    })
}

/// The arguments of a stored message's broadcast: content and id, then the id as a string
/// when `recovery_offset` is set (socket.io's client keeps the last string argument).
pub fn write_args(args: &mut EventArgs<'_>, content: &str, id: i64, recovery_offset: bool) {
    args.string(content).int(id);
    if recovery_offset {
        args.int_as_string(id);
    }
}

/// Bytes of a broadcast beyond its content, for sizing buffers.
pub const OVERHEAD: usize = 48;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::packet;

    const LIMITS: Limits = Limits {
        max_message_bytes: 8,
        max_client_offset_bytes: 4,
    };

    fn parse_data(data: &str) -> Result<Insert, Invalid> {
        let event = Event {
            name: CHAT_EVENT,
            data,
            args_tail: "",
            ack: None,
            attachments: &[],
        };
        parse(&event, LIMITS)
    }

    fn insert(content: &str, offset: Option<&str>) -> Insert {
        Insert {
            content: content.into(),
            client_offset: offset.map(Into::into),
        }
    }

    #[test]
    fn takes_content_and_client_offset() {
        let ok = |data| parse_data(data).unwrap();
        assert_eq!(ok(r#"["m","hi"]"#), insert("hi", None));
        assert_eq!(ok(r#"["m","a\nb","c-1"]"#), insert("a\nb", Some("c-1")));
        assert_eq!(ok(r#"["m","x",null]"#), insert("x", None));
        assert_eq!(ok(r#"["m","x",""]"#), insert("x", None));
        assert_eq!(ok(r#"["m","x",17]"#), insert("x", Some("17")));
    }

    #[test]
    fn refuses_what_it_cannot_store() {
        let err = |data| parse_data(data).unwrap_err();
        assert_eq!(err(r#"["m"]"#), Invalid::NotAString);
        assert_eq!(err(r#"["m",5]"#), Invalid::NotAString);
        assert_eq!(err(r#"["m","123456789"]"#), Invalid::TooLong { limit: 8 });
        assert_eq!(err(r#"["m","x","12345"]"#), Invalid::ClientOffsetTooLong);
        assert_eq!(err(r#"["m","x",12345]"#), Invalid::ClientOffsetTooLong);
        assert_eq!(err(r#"["m","x",1e999]"#), Invalid::ClientOffsetTooLong);
        assert_eq!(err(r#"["m","x",{}]"#), Invalid::ClientOffsetNotAString);
        assert!(matches!(err(r#"["m","\ud800"]"#), Invalid::BadText(_)));
        assert!(matches!(
            err(r#"["m","x","\ud800"]"#),
            Invalid::BadClientOffset(_)
        ));
        assert_eq!(
            Invalid::TooLong { limit: 8 }.to_string(),
            "message longer than 8 bytes"
        );
    }

    #[test]
    fn encodes_the_broadcast() {
        let mut out = String::new();
        packet::write_event(&mut out, "/", CHAT_EVENT, |args| {
            write_args(args, "hi \"you\"\n", 42, false)
        });
        assert_eq!(out, "42[\"chat message\",\"hi \\\"you\\\"\\n\",42]");
        out.clear();
        packet::write_event(&mut out, "/", CHAT_EVENT, |args| {
            write_args(args, "x", 7, true)
        });
        assert_eq!(out, "42[\"chat message\",\"x\",7,\"7\"]");
    }
}
