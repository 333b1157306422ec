//! What an application does with a namespace ([`NamespaceHandler`]), and the namespace that
//! joins sockets to it.

use std::fmt;
use std::rc::Rc;

use bytes::Bytes;

use super::hub::Hub;
use super::socket::{Identity, Socket};
use crate::engineio::{CloseReason, Session, Sid};
use crate::json;

/// An event received on a socket.
pub struct Event<'a> {
    /// The event name, unescaped.
    pub name: &'a str,
    /// The whole JSON array `[name, args...]` as received (binary args are placeholders).
    pub data: &'a str,
    /// The array after the name: `]` or `,<args>]`, to re-emit the same arguments.
    pub args_tail: &'a str,
    /// The ack id when the client wants an answer.
    pub ack: Option<u64>,
    pub attachments: &'a [Bytes],
}

impl<'a> Event<'a> {
    /// The raw JSON arguments after the event name.
    pub fn args(&self) -> impl Iterator<Item = &'a str> + use<'a> {
        json::array_elements(self.data).skip(1)
    }
}

/// Why a CONNECT was refused; the client gets the message in CONNECT_ERROR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(&'static str);

impl Refusal {
    pub const fn new(message: &'static str) -> Refusal {
        Refusal(message)
    }

    pub fn message(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// Why a socket left its namespace; the strings are socket.io's disconnect reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The Engine.IO session under it ended.
    Session(CloseReason),
    /// The client left the namespace (`socket.disconnect()` in the client).
    ClientNamespaceDisconnect,
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::Session(reason) => reason.as_str(),
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
        }
    }

    /// Whether socket.io lets the client recover its socket after this. Leaving on purpose
    /// is not recoverable, nor is sending garbage.
    pub fn is_recoverable(self) -> bool {
        match self {
            DisconnectReason::Session(reason) => reason != CloseReason::ParseError,
            DisconnectReason::ClientNamespaceDisconnect => false,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an application does with one namespace. Each socket carries the application's
/// [`Data`](NamespaceHandler::Data), made when the socket is admitted; the layer owns it and
/// drops it with the socket.
pub trait NamespaceHandler: 'static {
    /// Per-socket state of the application.
    type Data: 'static;

    /// Decides whether a CONNECT with this `auth` object (`{}` when absent) may join, and
    /// makes the new socket's data.
    fn admit(&self, auth: &str) -> Result<Self::Data, Refusal>;

    /// Whether a recovery offset sent by a client is one this application could have given
    /// out; recovery fails (the client gets a new socket) when it is not.
    fn accepts_offset(&self, _offset: &str) -> bool {
        true
    }

    /// The socket joined (its CONNECT reply has been queued). When it resumed a disconnected
    /// socket, [`Socket::recovered_offset`] says where the client left off.
    fn on_connect(self: &Rc<Self>, socket: &Rc<Socket<Self::Data>>, auth: &str);

    fn on_event(self: &Rc<Self>, socket: &Rc<Socket<Self::Data>>, event: Event<'_>);

    /// The socket left.
    fn on_disconnect(self: &Rc<Self>, _socket: &Rc<Socket<Self::Data>>, _reason: DisconnectReason) {
    }
}

/// A namespace: its handler and the hub of its connected sockets.
pub(super) struct Namespace<H: NamespaceHandler> {
    name: Rc<str>,
    handler: Rc<H>,
    hub: Rc<Hub<H::Data>>,
}

impl<H: NamespaceHandler> Namespace<H> {
    /// The namespace `name`, its handler made by `make` from the namespace's hub.
    pub fn new(name: &str, make: impl FnOnce(Rc<Hub<H::Data>>) -> Rc<H>) -> Namespace<H> {
        let name: Rc<str> = Rc::from(name);
        let hub = Rc::new(Hub::new(name.clone()));
        let handler = make(hub.clone());
        Namespace { name, handler, hub }
    }

    pub fn handler(&self) -> &Rc<H> {
        &self.handler
    }
}

/// Picks a new socket's identity (recovered or fresh), given a check of recovery offsets.
pub(super) type Identify<'a> = &'a dyn Fn(&dyn Fn(&str) -> bool) -> Identity;

/// A namespace whatever its handler, as a client's session sees it.
pub(super) trait AnyNamespace {
    /// Admits a socket over `session`, or refuses it. `identify` picks the socket's identity
    /// (recovered or new), given a check of recovery offsets.
    fn admit(
        &self,
        session: &Rc<Session>,
        auth: &str,
        identify: Identify<'_>,
    ) -> Result<Rc<dyn Member>, Refusal>;
}

impl<H: NamespaceHandler> AnyNamespace for Namespace<H> {
    fn admit(
        &self,
        session: &Rc<Session>,
        auth: &str,
        identify: Identify<'_>,
    ) -> Result<Rc<dyn Member>, Refusal> {
        let data = self.handler.admit(auth)?;
        let identity = identify(&|offset| self.handler.accepts_offset(offset));
        let socket = Socket::new(self.name.clone(), session.clone(), identity, data);
        Ok(Rc::new(Membership {
            handler: self.handler.clone(),
            hub: self.hub.clone(),
            socket: Rc::new(socket),
        }))
    }
}

/// A socket admitted to a namespace, whatever its handler, as its client sees it.
pub(super) trait Member {
    fn namespace(&self) -> &str;
    fn id(&self) -> &Sid;
    fn pid(&self) -> Option<&Sid>;
    /// Joins the hub and tells the application.
    fn enter(&self, auth: &str);
    fn on_event(&self, event: Event<'_>);
    /// Leaves the hub and tells the application.
    fn leave(&self, reason: DisconnectReason);
}

struct Membership<H: NamespaceHandler> {
    handler: Rc<H>,
    hub: Rc<Hub<H::Data>>,
    socket: Rc<Socket<H::Data>>,
}

impl<H: NamespaceHandler> Member for Membership<H> {
    fn namespace(&self) -> &str {
        self.socket.namespace()
    }

    fn id(&self) -> &Sid {
        self.socket.id()
    }

    fn pid(&self) -> Option<&Sid> {
        self.socket.pid()
    }

    fn enter(&self, auth: &str) {
        self.socket.set_connected(true);
        self.hub.insert(self.socket.clone());
        self.handler.on_connect(&self.socket, auth);
    }

    fn on_event(&self, event: Event<'_>) {
        self.handler.on_event(&self.socket, event);
    }

    fn leave(&self, reason: DisconnectReason) {
        self.socket.set_connected(false);
        self.hub.remove(&self.socket);
        self.handler.on_disconnect(&self.socket, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recoverable_reasons_match_socket_io() {
        for reason in [
            CloseReason::TransportClose,
            CloseReason::TransportError,
            CloseReason::PingTimeout,
            CloseReason::Forced,
            CloseReason::ServerShutdown,
        ] {
            assert!(
                DisconnectReason::Session(reason).is_recoverable(),
                "{reason}"
            );
        }
        assert!(!DisconnectReason::Session(CloseReason::ParseError).is_recoverable());
        assert!(!DisconnectReason::ClientNamespaceDisconnect.is_recoverable());
        assert_eq!(
            DisconnectReason::ClientNamespaceDisconnect.to_string(),
            "client namespace disconnect"
        );
    }
}
