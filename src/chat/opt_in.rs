//! What a client's CONNECT opts into beyond the tutorial's protocol. Everything here is
//! under `auth.emberchat: 1`, so a tutorial client that happens to send a `name` gets
//! exactly the tutorial's protocol.

use crate::json::{self, Kind};

use super::browse::MAX_PAGE_ROWS;
use super::names::{self, BadName};

/// The protocol version of the page's additions.
pub const EXTENDED_VERSION: &str = "1";

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OptIn {
    /// `auth.emberchat: 1`: messages with name and time, history pages, presence, typing.
    pub extended: bool,
    /// `auth.name`, checked.
    pub name: Option<String>,
    /// `auth.newest`: when the client missed more than this many messages, replay only the
    /// newest this many and tell it how many it skipped (`('missed', …)`). At most
    /// [`MAX_PAGE_ROWS`].
    pub newest: Option<u8>,
}

/// Reads the opt-ins from a CONNECT's `auth`; a bad name refuses the connection.
pub fn read(auth: &str) -> Result<OptIn, BadName> {
    let extended = json::object_get(auth, "emberchat")
        .is_some_and(|raw| json::kind(raw) == Kind::Number && raw == EXTENDED_VERSION);
    if !extended {
        return Ok(OptIn::default());
    }
    let name = match json::object_get(auth, "name") {
        None => None,
        Some(raw) if json::kind(raw) == Kind::Null => None,
        Some(raw) => Some(names::parse(raw)?),
    };
    // Anything but a positive integer means no cap; a larger one is capped at a page.
    let newest = json::object_get(auth, "newest")
        .filter(|raw| json::kind(raw) == Kind::Number)
        .and_then(|raw| raw.parse::<u64>().ok())
        .filter(|&n| n > 0)
        .map(|n| n.min(MAX_PAGE_ROWS as u64) as u8);
    Ok(OptIn {
        extended,
        name,
        newest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_page_opt_ins() {
        assert_eq!(read("{}"), Ok(OptIn::default()));
        // Without the version, a name or cap is the tutorial's business: ignored.
        assert_eq!(read(r#"{"name":"Ana","newest":5}"#), Ok(OptIn::default()));
        assert_eq!(
            read(r#"{"emberchat":2,"name":"Ana"}"#),
            Ok(OptIn::default())
        );
        assert_eq!(
            read(r#"{"emberchat":1,"name":" Ana ","newest":5}"#),
            Ok(OptIn {
                extended: true,
                name: Some("Ana".into()),
                newest: Some(5),
            })
        );
        let capped = read(r#"{"emberchat":1,"newest":100000}"#).unwrap();
        assert_eq!(capped.newest, Some(MAX_PAGE_ROWS as u8));
        for newest in ["0", "-3", "1.5", "\"7\"", "null"] {
            let auth = format!(r#"{{"emberchat":1,"newest":{newest}}}"#);
            assert_eq!(read(&auth).unwrap().newest, None, "{auth}");
        }
        assert_eq!(read(r#"{"emberchat":1,"name":null}"#).unwrap().name, None);
        assert_eq!(
            read(r#"{"emberchat":1,"name":"a\u202eb"}"#),
            Err(BadName::Invisible)
        );
        assert_eq!(read(r#"{"emberchat":1,"name":""}"#), Err(BadName::Empty));
    }
}
