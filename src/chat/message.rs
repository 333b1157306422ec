//! The chat message on the wire: what a client may send (checked here) and the arguments
//! every client receives: `('chat message', msg, id)` plus the recovery offset, and for the
//! page (clients that opted in) the name and time as well.

use std::fmt;

use crate::cluster::StreamId;
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
        name: None,
    })
}

/// Which arguments a socket's `chat message`s carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The tutorial's `(msg, id)`: what every client gets unless it opts in.
    Tutorial,
    /// `(msg, id, {name, time, offset})`, for clients that sent `auth.emberchat`.
    Extended,
}

impl Form {
    pub fn of(extended: bool) -> Form {
        if extended {
            Form::Extended
        } else {
            Form::Tutorial
        }
    }
}

/// A stored message as clients receive it.
#[derive(Debug, Clone, Copy)]
pub struct Stored<'a> {
    pub id: i64,
    pub content: &'a str,
    pub name: Option<&'a str>,
    /// Unix milliseconds when stored; `None` for rows from before the schema had it.
    pub time: Option<i64>,
    /// The sender's client offset, in live broadcasts (so a page can tell its own message).
    pub client_offset: Option<&'a str>,
}

impl Stored<'_> {
    /// Bytes of the extended form beyond the tutorial's, about.
    pub fn extra_len(&self) -> usize {
        40 + self.name.map_or(0, str::len) + self.client_offset.map_or(0, str::len)
    }
}

/// What numbers the chat's messages: SQLite's row ids (one board) or the shared stream's
/// entry ids (cluster mode), which the hub and the page know as keys (see
/// `cluster::StreamId`) and tutorial clients as the ids themselves, `"<ms>-<seq>"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ids {
    Rows,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Stream,
}

impl Ids {
    /// A client's offset (`auth.serverOffset`, or the recovery offset it kept) as a key:
    /// a whole number, a numeric string, or in cluster mode a stream id.
    pub fn key_of(self, offset: &str) -> Option<i64> {
        let offset = offset.trim();
        if let Ok(key) = offset.parse::<i64>() {
            return Some(key);
        }
        match self {
            Ids::Rows => None,
            Ids::Stream => StreamId::parse(offset)?.key(),
        }
    }
}

/// The arguments of a stored message: content and id, then (extended form) an object with
/// its name, time and client offset, then the id as a string when `recovery_offset` is set
/// (socket.io's client keeps the last string argument, so the offset must come last).
///
/// In cluster mode the tutorial form is `(content, "<ms>-<seq>")`, what a Node server with
/// socket.io's Redis Streams adapter sends for the same entry (its id is the recovery offset
/// too); the extended form keeps the numeric key for the page, and the id last.
pub fn write_args(
    args: &mut EventArgs<'_>,
    message: &Stored<'_>,
    form: Form,
    ids: Ids,
    recovery_offset: bool,
) {
    args.string(message.content);
    if ids == Ids::Stream && form == Form::Tutorial {
        args.string(&StreamId::from_key(message.id).to_string());
        return;
    }
    args.int(message.id);
    if form == Form::Extended {
        args.json(|out| write_meta(out, message));
    }
    if recovery_offset {
        match ids {
            Ids::Rows => args.int_as_string(message.id),
            Ids::Stream => args.string(&StreamId::from_key(message.id).to_string()),
        };
    }
}

/// `{"name":…,"time":…,"offset":…}`, each present only when known.
fn write_meta(out: &mut String, message: &Stored<'_>) {
    out.push('{');
    let mut first = true;
    let mut key = |out: &mut String, key: &str| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
    };
    if let Some(name) = message.name {
        key(out, "name");
        json::write_string(out, name);
    }
    if let Some(time) = message.time {
        key(out, "time");
        out.push_str(itoa::Buffer::new().format(time));
    }
    if let Some(offset) = message.client_offset {
        key(out, "offset");
        json::write_string(out, offset);
    }
    out.push('}');
}

/// A stored message as one object of a history page: `{"id":…,"text":…,"name":…,"time":…}`.
pub fn write_history_item(out: &mut String, message: &Stored<'_>) {
    out.push_str("{\"id\":");
    out.push_str(itoa::Buffer::new().format(message.id));
    out.push_str(",\"text\":");
    json::write_string(out, message.content);
    if let Some(name) = message.name {
        out.push_str(",\"name\":");
        json::write_string(out, name);
    }
    if let Some(time) = message.time {
        out.push_str(",\"time\":");
        out.push_str(itoa::Buffer::new().format(time));
    }
    out.push('}');
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
            name: None,
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

    fn stored(id: i64, content: &str) -> Stored<'_> {
        Stored {
            id,
            content,
            name: None,
            time: None,
            client_offset: None,
        }
    }

    #[test]
    fn reads_offsets_as_keys() {
        let key = StreamId::parse("1733312345678-2").unwrap().key().unwrap();
        assert_eq!(Ids::Stream.key_of("1733312345678-2"), Some(key));
        assert_eq!(Ids::Stream.key_of(&key.to_string()), Some(key));
        assert_eq!(Ids::Rows.key_of("17"), Some(17));
        assert_eq!(Ids::Rows.key_of("1733312345678-2"), None);
        assert_eq!(Ids::Stream.key_of("x-1"), None);
    }

    #[test]
    fn encodes_the_broadcast() {
        let mut out = String::new();
        let encode = |out: &mut String, message: &Stored<'_>, form, recovery| {
            out.clear();
            packet::write_event(out, "/", CHAT_EVENT, |args| {
                write_args(args, message, form, Ids::Rows, recovery)
            });
        };
        let quoted = stored(42, "hi \"you\"\n");
        encode(&mut out, &quoted, Form::Tutorial, false);
        assert_eq!(out, "42[\"chat message\",\"hi \\\"you\\\"\\n\",42]");
        encode(&mut out, &stored(7, "x"), Form::Tutorial, true);
        assert_eq!(out, "42[\"chat message\",\"x\",7,\"7\"]");
        // The tutorial's form never carries the name, time or offset.
        let full = Stored {
            name: Some("Ana \"A\""),
            time: Some(1_733_000_000_123),
            client_offset: Some("c-1"),
            ..stored(7, "x")
        };
        encode(&mut out, &full, Form::Tutorial, true);
        assert_eq!(out, "42[\"chat message\",\"x\",7,\"7\"]");
        encode(&mut out, &full, Form::Extended, true);
        assert_eq!(
            out,
            "42[\"chat message\",\"x\",7,{\"name\":\"Ana \\\"A\\\"\",\"time\":1733000000123,\
             \"offset\":\"c-1\"},\"7\"]"
        );
        encode(&mut out, &stored(8, "y"), Form::Extended, false);
        assert_eq!(out, "42[\"chat message\",\"y\",8,{}]");
        for (form, recovery, expected) in [
            // What a Node server with socket.io's Redis Streams adapter sends for the entry.
            (
                Form::Tutorial,
                true,
                "42[\"chat message\",\"z\",\"1733312345678-2\"]",
            ),
            (
                Form::Tutorial,
                false,
                "42[\"chat message\",\"z\",\"1733312345678-2\"]",
            ),
            (
                Form::Extended,
                true,
                "42[\"chat message\",\"z\",119788116697091,{},\"1733312345678-2\"]",
            ),
        ] {
            let key = StreamId::parse("1733312345678-2").unwrap().key().unwrap();
            out.clear();
            packet::write_event(&mut out, "/", CHAT_EVENT, |args| {
                write_args(args, &stored(key, "z"), form, Ids::Stream, recovery)
            });
            assert_eq!(out, expected);
        }
        let mut item = String::new();
        write_history_item(&mut item, &full);
        assert_eq!(
            item,
            "{\"id\":7,\"text\":\"x\",\"name\":\"Ana \\\"A\\\"\",\"time\":1733000000123}"
        );
    }
}
