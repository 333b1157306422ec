//! Entries of the shared stream, in the format of socket.io's Redis Streams adapter
//! (@socket.io/redis-streams-adapter 0.3.x), so that Node socket.io servers with that adapter
//! and emberchat gateways read each other's broadcasts.
//!
//! An entry is a list of fields. The adapter's are `uid` (the writing server), `nsp`, `type`
//! (3 is a broadcast) and `data`, the broadcast as JSON:
//! `{"packet":{"type":2,"data":["chat message","hi"]},"opts":{"rooms":[],"except":[],"flags":{}}}`.
//! Receivers append the entry's id to the event's arguments (connection state recovery), so
//! every client, on any server, gets `('chat message', text, offset)`. emberchat adds `name`
//! and `time` for its page; the adapter ignores fields it does not know.
//!
//! Entries are untrusted input (anything with access to Redis can write them): [`decode`]
//! takes only a `chat message` broadcast to the whole main namespace, within the size limit,
//! and says why it skips anything else.

use std::fmt;

use crate::json::{self, Kind};

/// The chat's event, the only one carried between servers.
const CHAT_EVENT: &str = "chat message";
/// The adapter's message type of a broadcast.
const BROADCAST: &str = "3";
/// socket.io's packet type of an event.
const EVENT_PACKET: &str = "2";
/// Longest name taken from an entry, in bytes (names are at most 32 characters).
const MAX_NAME_BYTES: usize = 32 * 4;

/// A chat message read from the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatEntry {
    pub content: String,
    /// The sender's name, from an emberchat gateway's page.
    pub name: Option<String>,
    /// Unix milliseconds when a gateway appended it.
    pub time: Option<i64>,
}

/// Why an entry is not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Another namespace, or a message of the adapter's that is not a broadcast (sockets
    /// joining or leaving rooms, disconnections): not for the chat, and not an error.
    NotChat,
    /// A broadcast the chat does not carry: another event, to rooms, with an ack, or binary.
    Unsupported(&'static str),
    /// Not what the adapter writes.
    Malformed(&'static str),
    /// Longer than the gateway takes from its own clients.
    TooLong(usize),
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::NotChat => f.write_str("not a chat broadcast"),
            Skip::Unsupported(what) => write!(f, "unsupported broadcast: {what}"),
            Skip::Malformed(what) => write!(f, "malformed entry: {what}"),
            Skip::TooLong(bytes) => write!(f, "message of {bytes} bytes, over the limit"),
        }
    }
}

/// The `data` field of a chat message broadcast.
pub fn broadcast_data(content: &str) -> String {
    let mut data = String::with_capacity(content.len() + 96);
    data.push_str("{\"packet\":{\"type\":2,\"data\":[\"chat message\",");
    json::write_string(&mut data, content);
    data.push_str("]},\"opts\":{\"rooms\":[],\"except\":[],\"flags\":{}}}");
    data
}

/// Reads an entry's fields (as Redis returns them: pairs of byte strings, in order) into a
/// chat message, or says why it is skipped.
pub fn decode<'a>(
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    max_message_bytes: usize,
) -> Result<ChatEntry, Skip> {
    let mut nsp = None;
    let mut kind = None;
    let mut data = None;
    let mut name = None;
    let mut time = None;
    for (key, value) in fields {
        let slot = match key {
            b"nsp" => &mut nsp,
            b"type" => &mut kind,
            b"data" => &mut data,
            b"name" => &mut name,
            b"time" => &mut time,
            _ => continue,
        };
        *slot = Some(std::str::from_utf8(value).map_err(|_| Skip::Malformed("not UTF-8"))?);
    }
    if nsp != Some("/") {
        return Err(Skip::NotChat);
    }
    match kind {
        Some(BROADCAST) => {}
        Some(_) => return Err(Skip::NotChat),
        None => return Err(Skip::Malformed("no type")),
    }
    let data = data.ok_or(Skip::Malformed("a broadcast without data"))?;
    if !data.starts_with('{') {
        // The adapter's base64 msgpack: only packets with binary attachments.
        return Err(Skip::Unsupported("binary data"));
    }
    if data.len() > max_message_bytes.saturating_mul(6).saturating_add(1024) {
        return Err(Skip::TooLong(data.len()));
    }
    let data = json::validate(data).map_err(|_| Skip::Malformed("data is not JSON"))?;
    if json::kind(data) != Kind::Object {
        return Err(Skip::Malformed("data is not an object"));
    }
    let content = chat_content(data)?;
    if content.len() > max_message_bytes {
        return Err(Skip::TooLong(content.len()));
    }
    Ok(ChatEntry {
        content,
        name: name
            .filter(|name| !name.is_empty() && name.len() <= MAX_NAME_BYTES)
            .map(str::to_owned),
        time: time
            .and_then(|time| time.parse().ok())
            .filter(|&t: &i64| t > 0),
    })
}

/// The text of a broadcast of `('chat message', text, ...)` to everyone.
fn chat_content(data: &str) -> Result<String, Skip> {
    let packet = json::object_get(data, "packet").ok_or(Skip::Malformed("no packet"))?;
    if json::kind(packet) != Kind::Object {
        return Err(Skip::Malformed("packet is not an object"));
    }
    if json::object_get(packet, "type") != Some(EVENT_PACKET) {
        return Err(Skip::Unsupported("not an event"));
    }
    if json::object_get(packet, "id").is_some() {
        return Err(Skip::Unsupported("an event with an ack"));
    }
    if let Some(opts) = json::object_get(data, "opts") {
        if json::kind(opts) != Kind::Object {
            return Err(Skip::Malformed("opts is not an object"));
        }
        if let Some(rooms) = json::object_get(opts, "rooms") {
            if json::kind(rooms) != Kind::Array {
                return Err(Skip::Malformed("rooms is not an array"));
            }
            if json::array_elements(rooms).next().is_some() {
                return Err(Skip::Unsupported("to rooms"));
            }
        }
    }
    let args = json::object_get(packet, "data").ok_or(Skip::Malformed("no event data"))?;
    if json::kind(args) != Kind::Array {
        return Err(Skip::Malformed("event data is not an array"));
    }
    let mut args = json::array_elements(args);
    let event = args.next().ok_or(Skip::Malformed("no event name"))?;
    if json::kind(event) != Kind::String
        || json::unescape(event).ok().as_deref() != Some(CHAT_EVENT)
    {
        return Err(Skip::Unsupported("another event"));
    }
    let text = args.next().ok_or(Skip::Malformed("no message text"))?;
    if json::kind(text) != Kind::String {
        return Err(Skip::Unsupported("a message that is not text"));
    }
    let text = json::unescape(text).map_err(|_| Skip::Malformed("a bad string"))?;
    Ok(text.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1000;

    fn fields<'a>(pairs: &'a [(&'a str, &'a str)]) -> Vec<(&'a [u8], &'a [u8])> {
        pairs
            .iter()
            .map(|(k, v)| (k.as_bytes(), v.as_bytes()))
            .collect()
    }

    #[test]
    fn writes_what_the_adapter_writes() {
        // As a Node server with the adapter writes `io.emit('chat message', 'hi "you"')`.
        assert_eq!(
            broadcast_data("hi \"you\""),
            r#"{"packet":{"type":2,"data":["chat message","hi \"you\""]},"opts":{"rooms":[],"except":[],"flags":{}}}"#
        );
    }

    #[test]
    fn reads_a_node_servers_broadcast_and_its_own() {
        let node = r#"{"packet":{"type":2,"data":["chat message","héllo ✓",5]},"opts":{"rooms":[],"except":[],"flags":{}}}"#;
        let entry = decode(
            fields(&[
                ("uid", "0a1b2c3d4e5f6a7b"),
                ("nsp", "/"),
                ("type", "3"),
                ("data", node),
            ]),
            LIMIT,
        )
        .unwrap();
        assert_eq!(
            entry,
            ChatEntry {
                content: "héllo ✓".into(),
                name: None,
                time: None
            }
        );
        let ours = broadcast_data("line\nbreak");
        let entry = decode(
            fields(&[
                ("uid", "x"),
                ("nsp", "/"),
                ("type", "3"),
                ("data", &ours),
                ("name", "Ana"),
                ("time", "1733312345678"),
            ]),
            LIMIT,
        )
        .unwrap();
        assert_eq!(entry.content, "line\nbreak");
        assert_eq!(entry.name.as_deref(), Some("Ana"));
        assert_eq!(entry.time, Some(1733312345678));
    }

    #[test]
    fn skips_what_is_not_the_chat() {
        let chat = broadcast_data("hi");
        let cases: &[(&[(&str, &str)], Skip)] = &[
            (
                &[("nsp", "/admin"), ("type", "3"), ("data", &chat)],
                Skip::NotChat,
            ),
            (&[("type", "3"), ("data", &chat)], Skip::NotChat),
            (
                &[("nsp", "/"), ("type", "4"), ("data", "{}")],
                Skip::NotChat,
            ),
            (&[("nsp", "/"), ("data", &chat)], Skip::Malformed("no type")),
            (
                &[("nsp", "/"), ("type", "3")],
                Skip::Malformed("a broadcast without data"),
            ),
            (
                &[("nsp", "/"), ("type", "3"), ("data", "gqZwYWNrZXQ=")],
                Skip::Unsupported("binary data"),
            ),
            (
                &[("nsp", "/"), ("type", "3"), ("data", "{\"packet\":")],
                Skip::Malformed("data is not JSON"),
            ),
            (
                &[
                    ("nsp", "/"),
                    ("type", "3"),
                    ("data", r#"{"packet":{"type":2,"data":["typing"]}}"#),
                ],
                Skip::Unsupported("another event"),
            ),
            (
                &[
                    ("nsp", "/"),
                    ("type", "3"),
                    (
                        "data",
                        r#"{"packet":{"type":2,"data":["chat message",{"a":1}]}}"#,
                    ),
                ],
                Skip::Unsupported("a message that is not text"),
            ),
            (
                &[
                    ("nsp", "/"),
                    ("type", "3"),
                    (
                        "data",
                        r#"{"packet":{"type":2,"data":["chat message","x"],"id":4}}"#,
                    ),
                ],
                Skip::Unsupported("an event with an ack"),
            ),
            (
                &[
                    ("nsp", "/"),
                    ("type", "3"),
                    (
                        "data",
                        r#"{"packet":{"type":2,"data":["chat message","x"]},"opts":{"rooms":["r"]}}"#,
                    ),
                ],
                Skip::Unsupported("to rooms"),
            ),
            (
                &[
                    ("nsp", "/"),
                    ("type", "3"),
                    ("data", r#"{"packet":{"type":1}}"#),
                ],
                Skip::Unsupported("not an event"),
            ),
            (
                &[("nsp", "/"), ("type", "3"), ("data", r#"{"packet":[]}"#)],
                Skip::Malformed("packet is not an object"),
            ),
        ];
        for (pairs, skip) in cases {
            assert_eq!(decode(fields(pairs), LIMIT), Err(skip.clone()), "{pairs:?}");
        }
        let invalid_utf8: Vec<(&[u8], &[u8])> = vec![(b"nsp", b"/"), (b"data", b"\xff")];
        assert_eq!(
            decode(invalid_utf8, LIMIT),
            Err(Skip::Malformed("not UTF-8"))
        );
    }

    #[test]
    fn holds_entries_to_the_message_limit() {
        let long = broadcast_data(&"x".repeat(LIMIT + 1));
        assert_eq!(
            decode(
                fields(&[("nsp", "/"), ("type", "3"), ("data", &long)]),
                LIMIT
            ),
            Err(Skip::TooLong(LIMIT + 1))
        );
        let huge = format!("{{\"pad\":\"{}\"}}", "y".repeat(LIMIT * 8));
        assert!(matches!(
            decode(
                fields(&[("nsp", "/"), ("type", "3"), ("data", &huge)]),
                LIMIT
            ),
            Err(Skip::TooLong(_))
        ));
    }

    #[test]
    fn ignores_bad_names_and_times() {
        let chat = broadcast_data("hi");
        let long_name = "n".repeat(MAX_NAME_BYTES + 1);
        let entry = decode(
            fields(&[
                ("nsp", "/"),
                ("type", "3"),
                ("data", &chat),
                ("name", &long_name),
                ("time", "-5"),
            ]),
            LIMIT,
        )
        .unwrap();
        assert_eq!((entry.name, entry.time), (None, None));
    }
}
