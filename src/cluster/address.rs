//! Where the shared Redis is: `redis://[[user]:password@]host[:port][/db]`, as `--redis`
//! takes it.
//!
//! Read here rather than by the Redis client, whose URL parser links the `url` crate and its
//! Unicode tables (about 180 KB of the ARM binary) for host names this form never needs.

use std::fmt;

/// Redis's port when the address gives none.
const DEFAULT_PORT: u16 = 6379;

#[derive(Clone, PartialEq, Eq)]
pub struct RedisAddress {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The password stays out of logs and error messages.
impl fmt::Debug for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let credentials = match (&self.username, &self.password) {
            (Some(user), Some(_)) => format!("{user}:…@"),
            (Some(user), None) => format!("{user}@"),
            (None, Some(_)) => "…@".to_owned(),
            (None, None) => String::new(),
        };
        if self.host.contains(':') {
            write!(
                f,
                "redis://{credentials}[{}]:{}/{}",
                self.host, self.port, self.db
            )
        } else {
            write!(
                f,
                "redis://{credentials}{}:{}/{}",
                self.host, self.port, self.db
            )
        }
    }
}

impl RedisAddress {
    /// Reads `redis://[[user]:password@]host[:port][/db]`; an IPv6 host goes in brackets.
    /// Percent-escapes are not decoded: a password with `@` or `/` in it goes in
    /// `EMBERCHAT_REDIS` as it is, after the last `@`'s part is the host.
    pub fn parse(text: &str) -> Result<RedisAddress, String> {
        let rest = text
            .strip_prefix("redis://")
            .ok_or_else(|| "it must start with redis:// (TLS is not supported)".to_owned())?;
        let (credentials, rest) = match rest.rsplit_once('@') {
            Some((credentials, rest)) => (Some(credentials), rest),
            None => (None, rest),
        };
        let (authority, db) = match rest.split_once('/') {
            Some((authority, "")) => (authority, 0),
            Some((authority, db)) => (
                authority,
                db.parse::<i64>()
                    .ok()
                    .filter(|db| (0..=1_000_000).contains(db))
                    .ok_or_else(|| format!("database {db:?} is not a number"))?,
            ),
            None => (rest, 0),
        };
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| "an IPv6 address needs its closing ]".to_owned())?;
            let port = match after {
                "" => None,
                after => Some(
                    after
                        .strip_prefix(':')
                        .ok_or_else(|| format!("unexpected {after:?} after the address"))?,
                ),
            };
            (host, port)
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let valid_host = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'_'));
        if !valid_host {
            return Err(format!("{host:?} is not a host name or address"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|&port| port > 0)
                .ok_or_else(|| format!("port {port:?} is not a port number"))?,
        };
        let (username, password) = match credentials {
            None => (None, None),
            Some(credentials) => match credentials.split_once(':') {
                Some((user, password)) => (
                    Some(user.to_owned()).filter(|user| !user.is_empty()),
                    Some(password.to_owned()),
                ),
                None => (Some(credentials.to_owned()), None),
            },
        };
        Ok(RedisAddress {
            host: host.to_owned(),
            port,
            db,
            username,
            password,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_people_write() {
        let plain = RedisAddress::parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.db),
            ("127.0.0.1", 6380, 2)
        );
        let named = RedisAddress::parse("redis://pi-redis.local").unwrap();
        assert_eq!(
            (named.host.as_str(), named.port, named.db),
            ("pi-redis.local", 6379, 0)
        );
        let secret = RedisAddress::parse("redis://:s3cr@t@board:7000/").unwrap();
        assert_eq!(secret.password.as_deref(), Some("s3cr@t"));
        assert_eq!(secret.username, None);
        assert_eq!(secret.host, "board");
        assert!(!format!("{secret:?} {secret}").contains("s3cr"));
        let user = RedisAddress::parse("redis://chat:pw@10.0.0.5").unwrap();
        assert_eq!(user.username.as_deref(), Some("chat"));
        let v6 = RedisAddress::parse("redis://[::1]:6390").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 6390));
        assert_eq!(v6.to_string(), "redis://[::1]:6390/0");
    }

    #[test]
    fn says_what_is_wrong() {
        for bad in [
            "127.0.0.1:6379",
            "rediss://host",
            "redis://",
            "redis://host:0",
            "redis://host:99999",
            "redis://host:port",
            "redis://host/db",
            "redis://host/-1",
            "redis://[::1",
            "redis://[::1]x",
            "redis://ho st",
        ] {
            assert!(RedisAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
