//! Connection state recovery (Socket.IO 4.6+): a client that lost its connection comes back
//! within the window with its private id (`pid`) and gets its old socket id back.
//!
//! This registry only remembers which pids may be resumed, and until when. What the client
//! missed is the application's business: it numbers its broadcasts, so the offset the client
//! sends back says where to resume, and the messages come from the store. Nothing is buffered
//! here per socket, so a long disconnection costs no memory, and recovery does not fail just
//! because the last message is old (socket.io #5282): only the disconnection's length counts.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::{Rc, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::socket::Socket;
use crate::engineio::Sid;

/// Disconnect reasons after which socket.io lets a client recover. A client's own
/// `socket.disconnect()` ("client namespace disconnect") and a server-side disconnect of the
/// socket are deliberate and not recoverable.
pub fn is_recoverable(reason: &str) -> bool {
    matches!(
        reason,
        "transport close"
            | "transport error"
            | "ping timeout"
            | "forced close"
            | "server shutting down"
    )
}

enum State {
    Live(Weak<Socket>),
    Gone(Instant),
}

struct Entry {
    sid: Sid,
    namespace: String,
    state: State,
}

/// Pids of connected sockets, and of disconnected ones still within the window.
pub struct Recovery {
    window: Duration,
    entries: RefCell<HashMap<Sid, Entry>>,
    /// Disconnections in time order, to forget expired ones without scanning.
    expiries: RefCell<VecDeque<(Instant, Sid)>>,
}

impl Recovery {
    /// `window` is socket.io's `maxDisconnectionDuration`.
    pub fn new(window: Duration) -> Recovery {
        Recovery {
            window,
            entries: RefCell::new(HashMap::new()),
            expiries: RefCell::new(VecDeque::new()),
        }
    }

    /// Entries held (connected sockets plus recoverable disconnections).
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn connected(&self, socket: &Rc<Socket>, now: Instant) {
        self.sweep(now);
        if let Some(pid) = socket.pid() {
            let entry = Entry {
                sid: Sid::parse(socket.id()).expect("socket ids are sids"),
                namespace: socket.namespace().name().to_owned(),
                state: State::Live(Rc::downgrade(socket)),
            };
            self.entries.borrow_mut().insert(pid.clone(), entry);
        }
    }

    pub(crate) fn disconnected(&self, socket: &Socket, reason: &str, now: Instant) {
        let Some(pid) = socket.pid() else { return };
        let mut entries = self.entries.borrow_mut();
        if is_recoverable(reason) {
            if let Some(entry) = entries.get_mut(pid) {
                entry.state = State::Gone(now);
                self.expiries
                    .borrow_mut()
                    .push_back((now + self.window, pid.clone()));
            }
        } else {
            entries.remove(pid);
        }
        drop(entries);
        self.sweep(now);
    }

    /// The socket still connected under `pid` in `namespace`, if any: its transport may be
    /// stale while the client already reconnects (socket.io #4880).
    pub(crate) fn live_socket(&self, pid: &str, namespace: &str) -> Option<Rc<Socket>> {
        let pid = Sid::parse(pid)?;
        let entries = self.entries.borrow();
        match entries.get(&pid) {
            Some(Entry {
                namespace: nsp,
                state: State::Live(socket),
                ..
            }) if nsp == namespace => socket.upgrade(),
            _ => None,
        }
    }

    /// Claims a disconnected socket's id for a client coming back with `pid` within the
    /// window; a pid can be claimed once per disconnection.
    pub(crate) fn take(&self, pid: &str, namespace: &str, now: Instant) -> Option<Sid> {
        self.sweep(now);
        let pid = Sid::parse(pid)?;
        let mut entries = self.entries.borrow_mut();
        let entry = entries.get(&pid)?;
        let State::Gone(at) = entry.state else {
            return None;
        };
        if entry.namespace != namespace || now.duration_since(at) > self.window {
            return None;
        }
        entries.remove(&pid).map(|entry| entry.sid)
    }

    /// Forgets disconnections older than the window.
    fn sweep(&self, now: Instant) {
        let mut expiries = self.expiries.borrow_mut();
        let mut entries = self.entries.borrow_mut();
        while let Some((deadline, _)) = expiries.front() {
            if *deadline > now {
                break;
            }
            let (_, pid) = expiries.pop_front().expect("front exists");
            if let Some(Entry {
                state: State::Gone(at),
                ..
            }) = entries.get(&pid)
            {
                if now.duration_since(*at) >= self.window {
                    entries.remove(&pid);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recoverable_reasons_match_socket_io() {
        for reason in [
            "transport close",
            "transport error",
            "ping timeout",
            "forced close",
            "server shutting down",
        ] {
            assert!(is_recoverable(reason), "{reason}");
        }
        for reason in [
            "client namespace disconnect",
            "server namespace disconnect",
            "parse error",
        ] {
            assert!(!is_recoverable(reason), "{reason}");
        }
    }
}
