//! Connection state recovery records, as socket.io's Redis Streams adapter keeps them, so
//! that a client disconnected from one server recovers on any other, Node or emberchat.
//!
//! The key is `sio:session:<pid>`; the value is base64 of msgpack of
//! `{sid, pid, rooms, data}` (the socket's id, its private id, its rooms, its `socket.data`),
//! set with an expiry of the recovery window and taken with GET and DEL in one transaction.
//! emberchat's sockets are in no room but their own and carry no data: it writes
//! `rooms: [sid]`, `data: {}`, and reads back `sid` and `pid` from any record, skipping the
//! rest. The msgpack here is the subset those records use (and a skipper for any value).

/// Where a pid's record is kept.
pub fn key(pid: &str) -> String {
    format!("sio:session:{pid}")
}

/// The record of a socket that may come back: base64 of msgpack
/// `{"sid": sid, "pid": pid, "rooms": [sid], "data": {}}`.
pub fn encode(sid: &str, pid: &str) -> String {
    let mut out = Vec::with_capacity(96);
    out.push(0x84); // a map of 4
    for (key, value) in [("sid", sid), ("pid", pid)] {
        write_str(&mut out, key);
        write_str(&mut out, value);
    }
    write_str(&mut out, "rooms");
    out.push(0x91); // an array of 1
    write_str(&mut out, sid);
    write_str(&mut out, "data");
    out.push(0x80); // an empty map
    data_encoding::BASE64.encode(&out)
}

/// A record's socket id and private id, when it is one.
pub fn decode(base64: &[u8]) -> Option<(String, String)> {
    let bytes = data_encoding::BASE64.decode(base64).ok()?;
    let mut reader = Reader {
        bytes: &bytes,
        at: 0,
    };
    let entries = reader.map_len()?;
    let (mut sid, mut pid) = (None, None);
    for _ in 0..entries {
        let key = reader.str()?;
        match key {
            "sid" => sid = Some(reader.str()?.to_owned()),
            "pid" => pid = Some(reader.str()?.to_owned()),
            _ => reader.skip(0)?,
        }
    }
    Some((sid?, pid?))
}

fn write_str(out: &mut Vec<u8>, text: &str) {
    let len = text.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend([0xd9, len as u8]);
    } else {
        let len = len.min(0xffff);
        out.push(0xda);
        out.extend((len as u16).to_be_bytes());
    }
    out.extend(&text.as_bytes()[..len.min(0xffff)]);
}

/// A cursor over msgpack bytes; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// Deepest nesting skipped in a record's `data`.
const MAX_DEPTH: usize = 32;

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(len)?;
        let taken = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(taken)
    }

    fn uint(&mut self, size: usize) -> Option<usize> {
        let bytes = self.take(size)?;
        Some(bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b)))
    }

    fn map_len(&mut self) -> Option<usize> {
        match self.byte()? {
            marker @ 0x80..=0x8f => Some(usize::from(marker & 0x0f)),
            0xde => self.uint(2),
            0xdf => self.uint(4),
            _ => None,
        }
    }

    fn str(&mut self) -> Option<&'a str> {
        let len = match self.byte()? {
            marker @ 0xa0..=0xbf => usize::from(marker & 0x1f),
            0xd9 => self.uint(1)?,
            0xda => self.uint(2)?,
            0xdb => self.uint(4)?,
            _ => return None,
        };
        std::str::from_utf8(self.take(len)?).ok()
    }

    /// Skips one value of any type.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        let marker = self.byte()?;
        let (fixed, items) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
            0x90..=0x9f => (0, usize::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            0xc4 | 0xd9 => (self.uint(1)?, 0),
            0xc5 | 0xda => (self.uint(2)?, 0),
            0xc6 | 0xdb => (self.uint(4)?, 0),
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xc7 => (self.uint(1)? + 1, 0),
            0xc8 => (self.uint(2)? + 1, 0),
            0xc9 => (self.uint(4)? + 1, 0),
            0xdc => (0, self.uint(2)?),
            0xdd => (0, self.uint(4)?),
            0xde => (0, 2 * self.uint(2)?),
            0xdf => (0, 2usize.checked_mul(self.uint(4)?)?),
            0xc1 => return None,
        };
        self.take(fixed)?;
        for _ in 0..items {
            self.skip(depth + 1)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by socket.io's adapter (@msgpack/msgpack 2.8) for a Node socket:
    /// `{sid: "J0FjZUTyMJSKep4BAAAA", pid: "pQ3xN0wZb1kR9sT2uV4y", rooms: [sid], data: {}}`.
    const NODE_RECORD: &str = "hKNzaWS0SjBGalpVVHlNSlNLZXA0QkFBQUGjcGlktHBRM3hOMHdaYjFrUjlzVDJ1VjR5pXJvb21zkbRKMEZqWlVUeU1KU0tlcDRCQUFBQaRkYXRhgA==";
    /// The same with rooms and nested data of every common type.
    const NODE_RECORD_WITH_DATA: &str = "hKNzaWSjYWJjo3BpZKNkZWalcm9vbXOSo2FiY6Zyb29tIDKkZGF0YYGkdXNlcoakbmFtZaNBbmGhbs0BLKFmyz/4AAAAAAAAom9rw6NuaWzApGxpc3STAf/OAAERcA==";

    #[test]
    fn writes_what_the_adapter_writes() {
        assert_eq!(
            encode("J0FjZUTyMJSKep4BAAAA", "pQ3xN0wZb1kR9sT2uV4y"),
            NODE_RECORD
        );
    }

    #[test]
    fn reads_records_of_node_servers() {
        assert_eq!(
            decode(NODE_RECORD.as_bytes()),
            Some((
                "J0FjZUTyMJSKep4BAAAA".to_owned(),
                "pQ3xN0wZb1kR9sT2uV4y".to_owned()
            ))
        );
        assert_eq!(
            decode(NODE_RECORD_WITH_DATA.as_bytes()),
            Some(("abc".to_owned(), "def".to_owned()))
        );
    }

    #[test]
    fn refuses_what_is_not_a_record() {
        let truncated = &NODE_RECORD.as_bytes()[..40];
        for bad in [
            &b""[..],
            b"not base64!",
            truncated,
            // A map without a pid.
            data_encoding::BASE64
                .encode(&[0x81, 0xa3, b's', b'i', b'd', 0xa1, b'x'])
                .as_bytes(),
            // A map of one claiming a string longer than the record.
            data_encoding::BASE64
                .encode(&[0x81, 0xdb, 0xff, 0xff, 0xff, 0xff])
                .as_bytes(),
            // Nesting beyond the cap.
            data_encoding::BASE64
                .encode(&[vec![0x81, 0xa1, b'x'], vec![0x91; 40]].concat())
                .as_bytes(),
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        assert_eq!(key("abc"), "sio:session:abc");
    }
}
