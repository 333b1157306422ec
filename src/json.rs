//! A small JSON scanner that validates without building a tree.
//!
//! Socket.IO packets carry arbitrary JSON (handshake `auth`, event arguments) that the gateway
//! mostly forwards untouched, so instead of a DOM it keeps the raw text and only looks inside
//! where it must: the elements of an event array, a string argument, an object member. Every
//! function here is pure and bounded: nesting depth is capped (deep nesting is a classic way to
//! exhaust a parser's stack) and nothing allocates except [`unescape`] when a string has escapes.

use std::borrow::Cow;
use std::fmt;

/// Deepest nesting of arrays/objects accepted; real chat clients stay far below it.
pub const MAX_DEPTH: usize = 32;

/// Why a piece of text is not the JSON we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// Input ended inside a value.
    Truncated,
    /// A byte that cannot appear where it was found, at this offset.
    Unexpected(usize),
    /// Arrays/objects nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A `\u` escape that is a lone surrogate: JSON allows it, UTF-8 cannot carry it.
    LoneSurrogate,
    /// Something other than whitespace follows the value.
    TrailingData,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Truncated => f.write_str("truncated JSON"),
            JsonError::Unexpected(at) => write!(f, "unexpected byte at {at}"),
            JsonError::TooDeep => write!(f, "JSON nested deeper than {MAX_DEPTH}"),
            JsonError::LoneSurrogate => f.write_str("lone surrogate in JSON string"),
            JsonError::TrailingData => f.write_str("trailing data after JSON value"),
        }
    }
}

impl std::error::Error for JsonError {}

/// The kind of a JSON value, read from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// The kind of an already validated value.
pub fn kind(value: &str) -> Kind {
    match value.as_bytes().first() {
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b'"') => Kind::String,
        Some(b't') | Some(b'f') => Kind::Bool,
        Some(b'n') => Kind::Null,
        _ => Kind::Number,
    }
}

/// Checks that `text` is exactly one JSON value (surrounding whitespace allowed) and returns it
/// without the whitespace.
pub fn validate(text: &str) -> Result<&str, JsonError> {
    let bytes = text.as_bytes();
    let start = skip_ws(bytes, 0);
    let end = scan_value(bytes, start, 0)?;
    if skip_ws(bytes, end) != bytes.len() {
        return Err(JsonError::TrailingData);
    }
    Ok(&text[start..end])
}

/// Returns the length of the first JSON value at the start of `text` (no leading whitespace).
/// Used where a value is followed by more data, as in a Socket.IO packet.
pub fn value_len(text: &str) -> Result<usize, JsonError> {
    scan_value(text.as_bytes(), 0, 0)
}

/// Iterates over the elements of a validated JSON array, yielding each raw element.
pub fn array_elements(array: &str) -> Elements<'_> {
    debug_assert_eq!(kind(array), Kind::Array);
    Elements {
        text: array,
        pos: 1,
    }
}

/// Iterator returned by [`array_elements`].
pub struct Elements<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for Elements<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let bytes = self.text.as_bytes();
        let mut pos = skip_ws(bytes, self.pos);
        if bytes.get(pos) == Some(&b',') {
            pos = skip_ws(bytes, pos + 1);
        }
        if pos >= bytes.len() || bytes[pos] == b']' {
            self.pos = bytes.len();
            return None;
        }
        // The array was validated, so this cannot fail; stop rather than panic if it does.
        let end = scan_value(bytes, pos, 0).ok()?;
        self.pos = end;
        Some(&self.text[pos..end])
    }
}

/// Finds the raw value of `key` in a validated JSON object (the first one, if repeated).
pub fn object_get<'a>(object: &'a str, key: &str) -> Option<&'a str> {
    let bytes = object.as_bytes();
    if kind(object) != Kind::Object {
        return None;
    }
    let mut pos = skip_ws(bytes, 1);
    while pos < bytes.len() && bytes[pos] == b'"' {
        let key_end = scan_string(bytes, pos).ok()?;
        let raw_key = &object[pos..key_end];
        pos = skip_ws(bytes, key_end);
        pos = skip_ws(bytes, pos + 1); // the ':'
        let value_end = scan_value(bytes, pos, 0).ok()?;
        if unescape(raw_key).ok()? == key {
            return Some(&object[pos..value_end]);
        }
        pos = skip_ws(bytes, value_end);
        if bytes.get(pos) == Some(&b',') {
            pos = skip_ws(bytes, pos + 1);
        }
    }
    None
}

/// Iterates over the members of a validated JSON object, yielding each raw key (a string
/// literal, quotes included) and raw value.
pub fn object_members(object: &str) -> Members<'_> {
    Members {
        text: object,
        pos: if kind(object) == Kind::Object {
            1
        } else {
            object.len()
        },
    }
}

/// Iterator returned by [`object_members`].
pub struct Members<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        let bytes = self.text.as_bytes();
        let mut pos = skip_ws(bytes, self.pos);
        if bytes.get(pos) == Some(&b',') {
            pos = skip_ws(bytes, pos + 1);
        }
        if bytes.get(pos) != Some(&b'"') {
            self.pos = bytes.len();
            return None;
        }
        let key_end = scan_string(bytes, pos).ok()?;
        let value_start = skip_ws(bytes, skip_ws(bytes, key_end) + 1);
        let value_end = scan_value(bytes, value_start, 0).ok()?;
        self.pos = value_end;
        Some((&self.text[pos..key_end], &self.text[value_start..value_end]))
    }
}

/// Calls `visit` on every object inside a validated value (itself included), depth first.
pub fn visit_objects<'a>(value: &'a str, visit: &mut dyn FnMut(&'a str)) {
    match kind(value) {
        Kind::Object => {
            visit(value);
            for (_, member) in object_members(value) {
                visit_objects(member, visit);
            }
        }
        Kind::Array => {
            for element in array_elements(value) {
                visit_objects(element, visit);
            }
        }
        _ => {}
    }
}

/// Decodes a validated JSON string literal (with its quotes) into text.
pub fn unescape(literal: &str) -> Result<Cow<'_, str>, JsonError> {
    let inner = literal
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or(JsonError::Unexpected(0))?;
    if !inner.contains('\\') {
        return Ok(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.char_indices();
    while let Some((at, c)) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let (_, escape) = chars.next().ok_or(JsonError::Truncated)?;
        match escape {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'u' => {
                let high = hex4(inner, at + 2)?;
                for _ in 0..4 {
                    chars.next();
                }
                let code = if (0xD800..0xDC00).contains(&high) {
                    // A high surrogate must be followed by `\u` and a low surrogate.
                    if inner.get(at + 6..at + 8) != Some("\\u") {
                        return Err(JsonError::LoneSurrogate);
                    }
                    let low = hex4(inner, at + 8)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err(JsonError::LoneSurrogate);
                    }
                    for _ in 0..6 {
                        chars.next();
                    }
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..0xE000).contains(&high) {
                    return Err(JsonError::LoneSurrogate);
                } else {
                    high
                };
                out.push(char::from_u32(code).ok_or(JsonError::LoneSurrogate)?);
            }
            _ => return Err(JsonError::Unexpected(at + 1)),
        }
    }
    Ok(Cow::Owned(out))
}

fn hex4(text: &str, at: usize) -> Result<u32, JsonError> {
    let digits = text.get(at..at + 4).ok_or(JsonError::Truncated)?;
    u32::from_str_radix(digits, 16).map_err(|_| JsonError::Unexpected(at))
}

/// Appends `text` to `out` as a JSON string literal, quotes included.
pub fn write_string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    let mut plain_from = 0;
    for (at, byte) in text.bytes().enumerate() {
        let escaped = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[plain_from..at]);
        if escaped.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        } else {
            out.push_str(escaped);
        }
        plain_from = at + 1;
    }
    out.push_str(&text[plain_from..]);
    out.push('"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// Scans the value starting at `pos` and returns the offset just past it.
fn scan_value(bytes: &[u8], pos: usize, depth: usize) -> Result<usize, JsonError> {
    match bytes.get(pos) {
        None => Err(JsonError::Truncated),
        Some(b'{') => scan_container(bytes, pos, depth, b'}'),
        Some(b'[') => scan_container(bytes, pos, depth, b']'),
        Some(b'"') => scan_string(bytes, pos),
        Some(b't') => scan_literal(bytes, pos, b"true"),
        Some(b'f') => scan_literal(bytes, pos, b"false"),
        Some(b'n') => scan_literal(bytes, pos, b"null"),
        Some(b'-' | b'0'..=b'9') => scan_number(bytes, pos),
        Some(_) => Err(JsonError::Unexpected(pos)),
    }
}

fn scan_container(bytes: &[u8], open: usize, depth: usize, close: u8) -> Result<usize, JsonError> {
    if depth >= MAX_DEPTH {
        return Err(JsonError::TooDeep);
    }
    let is_object = close == b'}';
    let mut pos = skip_ws(bytes, open + 1);
    if bytes.get(pos) == Some(&close) {
        return Ok(pos + 1);
    }
    loop {
        if is_object {
            if bytes.get(pos) != Some(&b'"') {
                return Err(unexpected_or_truncated(bytes, pos));
            }
            pos = skip_ws(bytes, scan_string(bytes, pos)?);
            if bytes.get(pos) != Some(&b':') {
                return Err(unexpected_or_truncated(bytes, pos));
            }
            pos = skip_ws(bytes, pos + 1);
        }
        pos = skip_ws(bytes, scan_value(bytes, pos, depth + 1)?);
        match bytes.get(pos) {
            Some(b',') => pos = skip_ws(bytes, pos + 1),
            Some(&b) if b == close => return Ok(pos + 1),
            _ => return Err(unexpected_or_truncated(bytes, pos)),
        }
    }
}

fn unexpected_or_truncated(bytes: &[u8], pos: usize) -> JsonError {
    if pos >= bytes.len() {
        JsonError::Truncated
    } else {
        JsonError::Unexpected(pos)
    }
}

fn scan_string(bytes: &[u8], open: usize) -> Result<usize, JsonError> {
    let mut pos = open + 1;
    loop {
        match bytes.get(pos) {
            None => return Err(JsonError::Truncated),
            Some(b'"') => return Ok(pos + 1),
            Some(b'\\') => match bytes.get(pos + 1) {
                None => return Err(JsonError::Truncated),
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => pos += 2,
                Some(b'u') => {
                    let digits = bytes.get(pos + 2..pos + 6).ok_or(JsonError::Truncated)?;
                    if !digits.iter().all(u8::is_ascii_hexdigit) {
                        return Err(JsonError::Unexpected(pos + 2));
                    }
                    pos += 6;
                }
                Some(_) => return Err(JsonError::Unexpected(pos + 1)),
            },
            Some(0..=0x1f) => return Err(JsonError::Unexpected(pos)),
            Some(_) => pos += 1,
        }
    }
}

fn scan_literal(bytes: &[u8], pos: usize, literal: &[u8]) -> Result<usize, JsonError> {
    match bytes.get(pos..pos + literal.len()) {
        Some(found) if found == literal => Ok(pos + literal.len()),
        Some(_) => Err(JsonError::Unexpected(pos)),
        None => Err(JsonError::Truncated),
    }
}

fn scan_number(bytes: &[u8], start: usize) -> Result<usize, JsonError> {
    let mut pos = start;
    if bytes.get(pos) == Some(&b'-') {
        pos += 1;
    }
    pos = match bytes.get(pos) {
        Some(b'0') => pos + 1,
        Some(b'1'..=b'9') => digits(bytes, pos),
        _ => return Err(unexpected_or_truncated(bytes, pos)),
    };
    if bytes.get(pos) == Some(&b'.') {
        if !bytes.get(pos + 1).is_some_and(u8::is_ascii_digit) {
            return Err(unexpected_or_truncated(bytes, pos + 1));
        }
        pos = digits(bytes, pos + 1);
    }
    if let Some(b'e' | b'E') = bytes.get(pos) {
        pos += 1;
        if let Some(b'+' | b'-') = bytes.get(pos) {
            pos += 1;
        }
        if !bytes.get(pos).is_some_and(u8::is_ascii_digit) {
            return Err(unexpected_or_truncated(bytes, pos));
        }
        pos = digits(bytes, pos);
    }
    Ok(pos)
}

fn digits(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(u8::is_ascii_digit) {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_values() {
        for text in [
            "0",
            "-1.5e+3",
            "\"a\\u00e9\\n\"",
            "[]",
            "{}",
            " [1, \"two\", {\"three\": [true, false, null]}] ",
            "{\"a\":{\"b\":[]}}",
        ] {
            assert!(validate(text).is_ok(), "{text}");
        }
    }

    #[test]
    fn rejects_invalid_values() {
        for (text, error) in [
            ("", JsonError::Truncated),
            ("[1,", JsonError::Truncated),
            ("[1,]", JsonError::Unexpected(3)),
            ("{\"a\" 1}", JsonError::Unexpected(5)),
            ("01", JsonError::TrailingData),
            ("1.", JsonError::Truncated),
            ("\"\u{1}\"", JsonError::Unexpected(1)),
            ("\"\\x\"", JsonError::Unexpected(2)),
            ("tru", JsonError::Truncated),
            ("[1] x", JsonError::TrailingData),
            ("{1:2}", JsonError::Unexpected(1)),
        ] {
            assert_eq!(validate(text), Err(error), "{text:?}");
        }
    }

    #[test]
    fn caps_nesting_depth() {
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(validate(&deep), Err(JsonError::TooDeep));
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(validate(&ok).is_ok());
        let huge = "[".repeat(100_000);
        assert_eq!(validate(&huge), Err(JsonError::TooDeep));
    }

    #[test]
    fn iterates_array_elements() {
        let elements: Vec<_> = array_elements("[ \"a\" , {\"b\":[1,2]},3 ]").collect();
        assert_eq!(elements, ["\"a\"", "{\"b\":[1,2]}", "3"]);
        assert_eq!(array_elements("[]").count(), 0);
    }

    #[test]
    fn reads_object_members() {
        let object = "{\"x\":1, \"serverOffset\" : \"12\", \"n\\u0061me\":[1]}";
        assert_eq!(object_get(object, "serverOffset"), Some("\"12\""));
        assert_eq!(object_get(object, "name"), Some("[1]"));
        assert_eq!(object_get(object, "missing"), None);
        assert_eq!(object_get("[1]", "x"), None);
    }

    #[test]
    fn walks_objects() {
        let members: Vec<_> = object_members("{ \"a\" : 1 , \"b\":{\"c\":[]}}").collect();
        assert_eq!(members, [("\"a\"", "1"), ("\"b\"", "{\"c\":[]}")]);
        let mut seen = Vec::new();
        visit_objects("[1,{\"x\":{\"y\":2}},[{}]]", &mut |o| seen.push(o));
        assert_eq!(seen, ["{\"x\":{\"y\":2}}", "{\"y\":2}", "{}"]);
    }

    #[test]
    fn unescapes_strings() {
        assert_eq!(unescape("\"plain\"").unwrap(), "plain");
        assert_eq!(unescape("\"a\\\"b\\\\c\\/\\n\"").unwrap(), "a\"b\\c/\n");
        assert_eq!(unescape("\"\\u00e9\\ud83d\\ude00\"").unwrap(), "é😀");
        assert_eq!(unescape("\"\\ud83d\""), Err(JsonError::LoneSurrogate));
        assert_eq!(unescape("\"\\ude00x\""), Err(JsonError::LoneSurrogate));
        assert_eq!(unescape("\"\\ud83dabcdef\""), Err(JsonError::LoneSurrogate));
    }

    #[test]
    fn string_round_trip() {
        for text in ["", "hello", "quote\" back\\ nl\n tab\t ctl\u{1} é 😀 <b>"] {
            let mut out = String::new();
            write_string(&mut out, text);
            assert_eq!(validate(&out), Ok(out.as_str()));
            assert_eq!(unescape(&out).unwrap(), text);
        }
    }
}
