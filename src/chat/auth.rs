//! Who may join the chat: the shared access token, when one is set.

use crate::json::{self, Kind};
use crate::socketio::Refusal;

/// The CONNECT_ERROR for a missing or wrong token.
pub const UNAUTHORIZED: Refusal = Refusal::new("unauthorized");

/// Lets a CONNECT `auth` object in when no token is `expected` or its `token` matches.
pub fn check_token(expected: Option<&str>, auth: &str) -> Result<(), Refusal> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let given = json::object_get(auth, "token")
        .filter(|raw| json::kind(raw) == Kind::String)
        .and_then(|raw| json::unescape(raw).ok());
    match given {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(UNAUTHORIZED),
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compares_tokens() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn checks_the_auth_token() {
        assert_eq!(check_token(None, "{}"), Ok(()));
        assert_eq!(check_token(Some("s3"), r#"{"token":"s3"}"#), Ok(()));
        assert_eq!(
            check_token(Some("s3"), r#"{"token":"\u0073\u0033"}"#),
            Ok(())
        );
        for auth in [r#"{}"#, r#"{"token":"s4"}"#, r#"{"token":3}"#, "garbage"] {
            assert_eq!(check_token(Some("s3"), auth), Err(UNAUTHORIZED), "{auth}");
        }
    }
}
