//! Display names: labels a person picks on the page, not accounts. Checked here so that
//! what every reader sees is one short visible line.

use std::fmt;

use crate::json::{self, Kind};

/// Longest name, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 32;

/// Why a name was refused; the text is what the client's ack or CONNECT_ERROR says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadName {
    NotAString,
    Empty,
    TooLong,
    /// A control character, or one that changes or hides the text around it.
    Invisible,
}

impl BadName {
    pub fn message(self) -> &'static str {
        match self {
            BadName::NotAString => "name must be a string",
            BadName::Empty => "name is empty",
            BadName::TooLong => "name longer than 32 characters",
            BadName::Invisible => "name has control or invisible characters",
        }
    }
}

impl fmt::Display for BadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// Reads a name from its raw JSON value: trimmed, 1 to [`MAX_NAME_CHARS`] characters, with
/// no control or invisible formatting characters.
pub fn parse(raw: &str) -> Result<String, BadName> {
    if json::kind(raw) != Kind::String {
        return Err(BadName::NotAString);
    }
    let text = json::unescape(raw).map_err(|_| BadName::NotAString)?;
    check(&text).map(str::to_owned)
}

/// The trimmed name, if it is one.
pub fn check(text: &str) -> Result<&str, BadName> {
    let name = text.trim();
    if name.is_empty() {
        return Err(BadName::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(BadName::TooLong);
    }
    if name.chars().any(invisible) {
        return Err(BadName::Invisible);
    }
    Ok(name)
}

/// Control characters (Cc), format characters (Cf: bidi overrides, zero-width joiners and
/// spaces, tags), line and paragraph separators, and the blank letters that render as
/// nothing: each would let a name hide, reorder or impersonate what is next to it.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(
            c as u32,
            0x00AD
                | 0x034F
                | 0x061C
                | 0x0600..=0x0605
                | 0x06DD
                | 0x070F
                | 0x0890..=0x0891
                | 0x08E2
                | 0x115F..=0x1160
                | 0x17B4..=0x17B5
                | 0x180B..=0x180F
                | 0x200B..=0x200F
                | 0x2028..=0x202E
                | 0x2060..=0x206F
                | 0x2800
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFEFF
                | 0xFFA0
                | 0xFFF9..=0xFFFB
                | 0x110BD
                | 0x110CD
                | 0x13430..=0x1343F
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0000..=0xE0FFF
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_trimmed_visible_names() {
        assert_eq!(parse(r#""Ana""#), Ok("Ana".into()));
        assert_eq!(parse(r#""  Ana María  ""#), Ok("Ana María".into()));
        assert_eq!(parse(r#""李小龍""#), Ok("李小龍".into()));
        assert_eq!(parse(r#""🔥 ember""#), Ok("🔥 ember".into()));
        // 32 characters of several bytes each is still 32 characters.
        let long = "é".repeat(32);
        assert_eq!(check(&long), Ok(long.as_str()));
    }

    #[test]
    fn refuses_what_would_not_read_as_a_name() {
        assert_eq!(parse("17"), Err(BadName::NotAString));
        assert_eq!(parse("null"), Err(BadName::NotAString));
        assert_eq!(parse(r#""   ""#), Err(BadName::Empty));
        assert_eq!(parse(r#""""#), Err(BadName::Empty));
        assert_eq!(check(&"x".repeat(33)), Err(BadName::TooLong));
        for bad in [
            "a\u{0}b",
            "a\nb",
            "a\u{7f}",
            "admin\u{202e}nimda",
            "a\u{200b}b",
            "\u{2060}x",
            "x\u{feff}",
            "\u{3164}",
            "tag\u{e0041}",
            "a\u{2028}b",
        ] {
            assert_eq!(check(bad), Err(BadName::Invisible), "{bad:?}");
        }
        assert_eq!(parse(r#""a\u0000b""#), Err(BadName::Invisible));
    }
}
