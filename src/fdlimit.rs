//! The open-file limit: every client holds a socket, so `--max-clients` means nothing if the
//! process may open only 1024 files (the usual soft limit).

use std::io;

/// Files open besides the clients' sockets: the listener, the database and its WAL and shared
/// memory, stdio, the runtime's epoll and wake-up descriptors, with room to spare.
const OTHER_FILES: u64 = 64;

/// Open files `max_clients` may need: a client over long-polling may hold two connections at
/// once (a GET waiting while it POSTs, or while it upgrades to WebSocket).
pub fn needed(max_clients: usize) -> u64 {
    (max_clients as u64).saturating_mul(2) + OTHER_FILES
}

/// Raises the soft open-file limit towards `wanted`, as far as the hard limit allows; returns
/// the soft limit now in force.
// `rlim_t` is u64 here but u32 on 32-bit ARM: the casts are needed there.
#[allow(clippy::unnecessary_cast)]
pub fn raise_to(wanted: u64) -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit`, whose layout libc defines for this platform.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let target = libc::rlim_t::try_from(wanted)
        .unwrap_or(libc::rlim_t::MAX)
        .min(limit.rlim_max);
    if limit.rlim_cur >= target {
        return Ok(limit.rlim_cur as u64);
    }
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one `rlimit`; a soft limit up to the hard one needs no privilege.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(target as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_clients_need_twice_their_number_and_some() {
        assert_eq!(needed(4096), 8256);
    }

    #[test]
    fn raising_to_what_is_already_allowed_changes_nothing() {
        let now = raise_to(0).unwrap();
        assert_eq!(raise_to(now).unwrap(), now);
    }
}
