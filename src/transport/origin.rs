//! Who may open a session: the `Origin` policy applied to Engine.IO requests.
//!
//! Any web page a LAN user opens could otherwise script this gateway from the user's browser.
//! Requests without an `Origin` (non-browser clients) and requests whose origin is the host
//! they were sent to (the gateway's own page) pass; other origins only when listed.

/// The verdict on a request's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No `Origin` header: not a browser page.
    NoOrigin,
    /// The page came from this very host.
    SameHost,
    /// Another origin, listed with `--allow-origin`: answer with CORS headers.
    Allowed,
    Forbidden,
}

impl Verdict {
    pub fn is_allowed(self) -> bool {
        self != Verdict::Forbidden
    }
}

/// Judges `origin` against the request's `Host` and the allow-list (exact origins such as
/// `http://192.168.1.20:8080`, or `*` for any).
pub fn check(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> Verdict {
    let Some(origin) = origin else {
        return Verdict::NoOrigin;
    };
    if let (Some(authority), Some(host)) = (authority(origin), host)
        && normalize(authority, scheme(origin))
            .eq_ignore_ascii_case(&normalize(host, scheme(origin)))
    {
        return Verdict::SameHost;
    }
    // `null` is the origin of sandboxed frames, `file:` pages and redirects: anything may
    // claim it, so it is never allowed, not even by `*` or by name.
    if origin.eq_ignore_ascii_case("null") || !origin.contains("://") {
        return Verdict::Forbidden;
    }
    let listed = allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if listed {
        Verdict::Allowed
    } else {
        Verdict::Forbidden
    }
}

fn scheme(origin: &str) -> &str {
    origin.split_once("://").map_or("", |(scheme, _)| scheme)
}

/// `host[:port]` of an origin like `http://host:port`; `None` for `null` and the like.
fn authority(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    if !matches!(scheme, "http" | "https") || rest.is_empty() || rest.contains('/') {
        return None;
    }
    Some(rest)
}

/// Drops the scheme's default port, which browsers leave out of one header or the other.
fn normalize(authority: &str, scheme: &str) -> String {
    let default = match scheme {
        "https" => ":443",
        _ => ":80",
    };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_origins() {
        let none: &[String] = &[];
        let listed = ["http://laptop.local:8080".to_owned()];
        assert_eq!(check(None, Some("pi.local:3000"), none), Verdict::NoOrigin);
        assert_eq!(
            check(Some("http://pi.local:3000"), Some("pi.local:3000"), none),
            Verdict::SameHost
        );
        assert_eq!(
            check(Some("http://PI.local"), Some("pi.local:80"), none),
            Verdict::SameHost
        );
        assert_eq!(
            check(Some("https://pi.local"), Some("pi.local:443"), none),
            Verdict::SameHost
        );
        assert_eq!(
            check(Some("http://evil.example"), Some("pi.local:3000"), none),
            Verdict::Forbidden
        );
        assert_eq!(
            check(Some("http://pi.local:3001"), Some("pi.local:3000"), none),
            Verdict::Forbidden
        );
        assert_eq!(
            check(Some("null"), Some("pi.local:3000"), none),
            Verdict::Forbidden
        );
        assert_eq!(
            check(Some("http://pi.local:3000"), None, none),
            Verdict::Forbidden
        );
        assert_eq!(
            check(
                Some("http://laptop.local:8080"),
                Some("pi.local:3000"),
                &listed
            ),
            Verdict::Allowed
        );
        assert_eq!(
            check(Some("http://x"), Some("y"), &["*".to_owned()]),
            Verdict::Allowed
        );
        for anything in [&["*".to_owned()][..], &["null".to_owned()][..]] {
            assert_eq!(
                check(Some("null"), Some("pi.local:3000"), anything),
                Verdict::Forbidden
            );
        }
        assert_eq!(
            check(Some("http://x/path"), Some("x"), none),
            Verdict::Forbidden
        );
    }
}
