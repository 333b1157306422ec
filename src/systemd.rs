//! systemd integration without libsystemd: readiness and watchdog notifications
//! (`NOTIFY_SOCKET`) and socket activation (`LISTEN_FDS`).
//!
//! Both protocols are a few lines over a Unix datagram socket and environment variables, so a
//! dependency would add more than it saves. Outside systemd every function here does nothing.

use std::io;
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// First file descriptor passed by socket activation.
const LISTEN_FDS_START: i32 = 3;

/// Sends `state` (such as `READY=1`) to the service manager, if there is one.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    if let Err(error) = send(&path, state) {
        log::warn!("cannot notify systemd ({state}): {error}");
    }
}

fn send(path: &std::ffi::OsStr, state: &str) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        // An abstract socket address (Linux).
        use std::os::linux::net::SocketAddrExt;
        let address = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        socket.send_to_addr(state.as_bytes(), &address)?;
    } else {
        socket.send_to(state.as_bytes(), path)?;
    }
    Ok(())
}

/// How often to send `WATCHDOG=1`: half of `WatchdogSec`, when systemd asked for it.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok()? != std::process::id()
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// The listening socket passed by socket activation, if this process was given one. Takes
/// the `LISTEN_*` variables out of the environment, so children do not think it is theirs.
///
/// # Safety
/// Edits the environment: no other thread may exist yet (call it at the start of `main`,
/// before the runtime or any thread starts). Takes ownership of file descriptor 3 when
/// `LISTEN_PID` names this process, trusting systemd's contract that the descriptors from 3 on
/// are then the inherited sockets: call it at most once, and let nothing else use fd 3.
/// On an error the descriptor is closed; the caller is expected to exit then.
pub unsafe fn take_listener() -> io::Result<Option<TcpListener>> {
    let Ok(pid) = std::env::var("LISTEN_PID") else {
        return Ok(None);
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(None);
    }
    let count: i32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    // SAFETY: the caller promises the process is still single-threaded (see `# Safety`).
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    if count < 1 {
        return Ok(None);
    }
    if count > 1 {
        log::warn!("systemd passed {count} sockets; serving the first only");
    }
    use std::os::fd::FromRawFd;
    // SAFETY: systemd passes open sockets from fd 3 on (LISTEN_PID is this process), and the
    // caller takes them once (see `# Safety`), so nothing else owns fd 3.
    let listener = unsafe { TcpListener::from_raw_fd(LISTEN_FDS_START) };
    listener.set_nonblocking(true)?;
    // Fails unless fd 3 really is a TCP socket (a misconfigured unit).
    listener.local_addr()?;
    Ok(Some(listener))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifies_a_datagram_socket() {
        let dir = std::env::temp_dir().join(format!("emberchat-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
