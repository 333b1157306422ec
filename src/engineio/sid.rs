//! Session and socket ids.

use std::fmt;

/// An id the server hands out (an Engine.IO session id, a Socket.IO socket id or private
/// recovery id): 20 URL-safe base64 characters of 120 random bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Sid(heapless::String<{ Sid::LEN }>);

impl Sid {
    /// Characters in every id.
    pub const LEN: usize = 20;

    /// A fresh random id.
    pub fn random() -> Sid {
        let mut bytes = [0u8; Sid::LEN / 4 * 3];
        crate::random::fill(&mut bytes);
        let mut text = heapless::String::new();
        let mut encoded = [0u8; Sid::LEN];
        data_encoding::BASE64URL_NOPAD.encode_mut(&bytes, &mut encoded);
        for c in encoded {
            // Cannot fail: exactly LEN ASCII characters.
            let _ = text.push(char::from(c));
        }
        Sid(text)
    }

    /// Reads an id a client sent back; `None` unless it has the form of one of ours.
    pub fn parse(text: &str) -> Option<Sid> {
        let well_formed = text.len() == Sid::LEN
            && text
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        well_formed
            .then(|| heapless::String::try_from(text).ok().map(Sid))
            .flatten()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_distinct_and_url_safe() {
        let a = Sid::random();
        let b = Sid::random();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), Sid::LEN);
        assert!(
            a.as_str()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_eq!(Sid::parse(a.as_str()), Some(a));
    }

    #[test]
    fn parse_refuses_what_cannot_be_ours() {
        for text in [
            "",
            "abc",
            &"x".repeat(19),
            &"x".repeat(21),
            "aaaaaaaaaaaaaaaaaaa+",
            "aaaaaaaaaaaaaaaaaaa/",
            "aaaaaaaaaaaaaaaaaaa=",
            "aaaaaaaaaaaaaaaaaa\né",
        ] {
            assert_eq!(Sid::parse(text), None, "{text:?}");
        }
        assert!(Sid::parse("AZaz09-_AZaz09-_AZaz").is_some());
    }
}
