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

use crate::engineio::{Session, Sid};

enum State {
    /// Connected over this session (which may be stale while the client reconnects).
    Live(Weak<Session>),
    /// Disconnected at this time, recoverably.
    Gone(Instant),
}

struct Registration {
    sid: Sid,
    namespace: String,
    state: State,
}

/// Pids of connected sockets, and of disconnected ones still within the window.
pub(super) struct Recovery {
    window: Duration,
    registrations: RefCell<HashMap<Sid, Registration>>,
    /// Disconnections in time order, to forget expired ones without scanning.
    expiries: RefCell<VecDeque<(Instant, Sid)>>,
}

impl Recovery {
    /// `window` is socket.io's `maxDisconnectionDuration`.
    pub fn new(window: Duration) -> Recovery {
        Recovery {
            window,
            registrations: RefCell::new(HashMap::new()),
            expiries: RefCell::new(VecDeque::new()),
        }
    }

    /// How long a disconnected socket may come back.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Whether `pid` is one of this process's sockets, connected or recently gone.
    pub fn knows(&self, pid: &Sid) -> bool {
        self.registrations.borrow().contains_key(pid)
    }

    /// Socket `sid` joined `namespace` over `session` with private id `pid`.
    pub fn connected(
        &self,
        pid: &Sid,
        sid: &Sid,
        namespace: &str,
        session: &Rc<Session>,
        now: Instant,
    ) {
        self.sweep(now);
        let registration = Registration {
            sid: sid.clone(),
            namespace: namespace.to_owned(),
            state: State::Live(Rc::downgrade(session)),
        };
        self.registrations
            .borrow_mut()
            .insert(pid.clone(), registration);
    }

    /// The socket with private id `pid` left; it may come back within the window when the
    /// reason was `recoverable`.
    pub fn disconnected(&self, pid: &Sid, recoverable: bool, now: Instant) {
        let mut registrations = self.registrations.borrow_mut();
        if recoverable {
            if let Some(registration) = registrations.get_mut(pid) {
                registration.state = State::Gone(now);
                self.expiries
                    .borrow_mut()
                    .push_back((now + self.window, pid.clone()));
            }
        } else {
            registrations.remove(pid);
        }
        drop(registrations);
        self.sweep(now);
    }

    /// The session still carrying `pid`'s socket in `namespace`, if any: its transport may be
    /// stale while the client already reconnects (socket.io #4880).
    pub fn live_session(&self, pid: &Sid, namespace: &str) -> Option<Rc<Session>> {
        match self.registrations.borrow().get(pid) {
            Some(Registration {
                namespace: nsp,
                state: State::Live(session),
                ..
            }) if nsp == namespace => session.upgrade(),
            _ => None,
        }
    }

    /// Claims a disconnected socket's id for a client coming back with `pid` within the
    /// window; a pid can be claimed once per disconnection.
    pub fn take(&self, pid: &Sid, namespace: &str, now: Instant) -> Option<Sid> {
        self.sweep(now);
        let mut registrations = self.registrations.borrow_mut();
        let registration = registrations.get(pid)?;
        let State::Gone(at) = registration.state else {
            return None;
        };
        if registration.namespace != namespace || now.duration_since(at) > self.window {
            return None;
        }
        registrations
            .remove(pid)
            .map(|registration| registration.sid)
    }

    /// Forgets disconnections older than the window.
    fn sweep(&self, now: Instant) {
        let mut expiries = self.expiries.borrow_mut();
        let mut registrations = self.registrations.borrow_mut();
        while let Some((deadline, _)) = expiries.front() {
            if *deadline > now {
                break;
            }
            let (_, pid) = expiries.pop_front().expect("front exists");
            if let Some(Registration {
                state: State::Gone(at),
                ..
            }) = registrations.get(&pid)
                && now.duration_since(*at) >= self.window
            {
                registrations.remove(&pid);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.registrations.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_disconnections_past_the_window() {
        let recovery = Recovery::new(Duration::from_secs(10));
        let start = Instant::now();
        let (pid, sid) = (Sid::random(), Sid::random());
        let other = Sid::random();
        let limits = crate::engineio::QueueLimits {
            packets: 8,
            bytes: 64,
        };
        let transport = crate::engineio::TransportKind::WebSocket;
        let budgets = crate::engineio::session::Budgets {
            inbound: crate::budget::Budget::new(1 << 20),
            outbound: crate::budget::Budget::new(1 << 20),
        };
        let session = Rc::new(Session::new(Sid::random(), transport, limits, budgets));
        recovery.connected(&pid, &sid, "/", &session, start);
        recovery.connected(&other, &Sid::random(), "/", &session, start);
        assert!(recovery.live_session(&pid, "/").is_some());
        assert!(recovery.live_session(&pid, "/other").is_none());
        assert_eq!(recovery.take(&pid, "/", start), None, "still connected");
        recovery.disconnected(&pid, true, start);
        recovery.disconnected(&other, false, start);
        assert_eq!(
            recovery.len(),
            1,
            "a deliberate disconnection is forgotten at once"
        );
        assert_eq!(recovery.take(&pid, "/other", start), None);
        let later = start + Duration::from_secs(11);
        assert_eq!(recovery.take(&pid, "/", later), None);
        assert_eq!(recovery.len(), 0);
        recovery.connected(&pid, &sid, "/", &session, later);
        recovery.disconnected(&pid, true, later);
        assert_eq!(
            recovery.take(&pid, "/", later + Duration::from_secs(9)),
            Some(sid)
        );
        assert_eq!(
            recovery.take(&pid, "/", later + Duration::from_secs(9)),
            None,
            "claimed once"
        );
    }
}
