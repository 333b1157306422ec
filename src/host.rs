//! Which `Host` names the gateway answers, against DNS rebinding.
//!
//! A web page on the internet can have its own domain re-resolved to the board's LAN address;
//! the visitor's browser then sends that page's requests to the gateway with the attacker's
//! name in both `Host` and `Origin`, so the Origin check (same host) lets them through. What
//! gives them away is the name: a browser on the LAN reaches the board by an address, by
//! `localhost`, by an mDNS `.local` name or by the machine's own hostname, never by a public
//! domain unless the operator set one up (a reverse proxy, a DNS entry), which `--allow-host`
//! names.

use std::net::IpAddr;

/// The host names the gateway answers besides addresses, `localhost` and `.local` names.
#[derive(Debug, Clone)]
pub struct HostAllowList {
    /// Lowercase, without a trailing dot: `--allow-host` names and this machine's hostname.
    names: Vec<String>,
}

impl HostAllowList {
    /// Allows `extra` (from `--allow-host`) and this machine's hostname.
    pub fn new(extra: &[String]) -> HostAllowList {
        let mut names: Vec<String> = extra.iter().map(|name| normalize(name)).collect();
        if let Some(own) = own_hostname() {
            names.push(normalize(&own));
        }
        HostAllowList { names }
    }

    /// Whether a request with this `Host` header may be served. A request without one is not
    /// from a browser (they always send it), so rebinding is not at stake.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return true;
        };
        let name = normalize(without_port(host));
        if name.parse::<IpAddr>().is_ok() {
            return true;
        }
        name == "localhost"
            || name.ends_with(".localhost")
            || name.ends_with(".local")
            || self.names.contains(&name)
    }
}

/// `host` without its `:port`, and an IPv6 literal without its brackets.
fn without_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => host,
    }
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// This machine's hostname (`gethostname(2)`), if it has one.
fn own_hostname() -> Option<String> {
    let mut buffer = [0u8; 256];
    // SAFETY: the pointer and length describe `buffer`, which the call writes at most
    // `buffer.len()` bytes into.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return None;
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    let name = std::str::from_utf8(&buffer[..end]).ok()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_localhost_and_local_names_are_allowed() {
        let list = HostAllowList::new(&[]);
        for host in [
            "192.168.1.20",
            "192.168.1.20:3000",
            "[::1]:3000",
            "[fe80::1]",
            "::1",
            "localhost",
            "LOCALHOST:3000",
            "localhost.",
            "chat.localhost:3000",
            "raspberrypi.local",
            "RaspberryPi.local.:8080",
        ] {
            assert!(list.allows(Some(host)), "{host}");
        }
        assert!(list.allows(None), "no Host: not a browser");
    }

    #[test]
    fn other_names_need_allow_host() {
        let list = HostAllowList::new(&[]);
        for host in [
            "rebind-probe.attacker.example",
            "rebind-probe.attacker.example:3000",
            "local",
            "evil.local.example",
            "localhost.attacker.example",
            "",
        ] {
            assert!(!list.allows(Some(host)), "{host}");
        }
        let list = HostAllowList::new(&["Chat.Example.org.".to_owned()]);
        assert!(list.allows(Some("chat.example.org")));
        assert!(list.allows(Some("CHAT.example.org:443")));
        assert!(!list.allows(Some("example.org")));
    }

    #[test]
    fn this_machines_hostname_is_allowed() {
        if let Some(own) = own_hostname() {
            assert!(HostAllowList::new(&[]).allows(Some(&own)), "{own}");
        }
    }
}
