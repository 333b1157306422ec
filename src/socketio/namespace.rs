//! What an application does with a namespace ([`NamespaceHandler`]), and the namespace that
//! joins sockets to it.

use std::net::IpAddr;
use std::rc::Rc;

use super::event::{DisconnectReason, Event, Refusal};
use super::hub::Hub;
use super::socket::{Identity, Socket, SocketHost};
use crate::engineio::{Session, Sid};

/// What an application does with one namespace. Each socket carries the application's
/// [`Data`](NamespaceHandler::Data), made when the socket is admitted; the layer owns it and
/// drops it with the socket.
pub trait NamespaceHandler: 'static {
    /// Per-socket state of the application.
    type Data: 'static;

    /// Decides whether a CONNECT with this `auth` object (`{}` when absent), from a client at
    /// `peer`, may join, and makes the new socket's data.
    fn admit(&self, auth: &str, peer: IpAddr) -> Result<Self::Data, Refusal>;

    /// Whether a recovery offset sent by a client is one this application could have given
    /// out; recovery fails (the client gets a new socket) when it is not.
    fn accepts_offset(&self, _offset: &str) -> bool {
        true
    }

    /// The socket joined (its CONNECT reply has been queued). When it resumed a disconnected
    /// socket, [`Socket::recovered_offset`] says where the client left off.
    fn on_connect(self: &Rc<Self>, socket: &Rc<Socket<Self::Data>>, auth: &str);

    fn on_event(self: &Rc<Self>, socket: &Rc<Socket<Self::Data>>, event: Event<'_>);

    /// An ordered broadcast found no room in the socket's queue: the client reads slower than
    /// the namespace broadcasts. Broadcasts no longer reach the socket (see
    /// [`Socket::hold_broadcasts`]); the application sends it everything after `after` from
    /// where it keeps them, then calls [`Socket::go_live`]. By default the socket's session is
    /// closed instead, as a layer that keeps nothing cannot do better; the client reconnects.
    fn on_behind(self: &Rc<Self>, socket: &Rc<Socket<Self::Data>>, after: i64) {
        let _ = after;
        socket.close_session();
    }

    /// The socket left.
    fn on_disconnect(self: &Rc<Self>, _socket: &Rc<Socket<Self::Data>>, _reason: DisconnectReason) {
    }
}

/// A namespace: its handler and the hub of its connected sockets. Each socket holds its
/// namespace (as a [`SocketHost`]), so a socket is all a client keeps per namespace.
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

impl<H: NamespaceHandler> SocketHost<H::Data> for Namespace<H> {
    fn name(&self) -> &str {
        &self.name
    }

    fn enter(&self, socket: &Rc<Socket<H::Data>>, auth: &str) {
        socket.set_connected(true);
        self.hub.insert(socket.clone());
        self.handler.on_connect(socket, auth);
    }

    fn on_event(&self, socket: &Rc<Socket<H::Data>>, event: Event<'_>) {
        self.handler.on_event(socket, event);
    }

    fn fell_behind(&self, socket: &Rc<Socket<H::Data>>, after: i64) {
        self.handler.on_behind(socket, after);
    }

    fn leave(&self, socket: &Rc<Socket<H::Data>>, reason: DisconnectReason) {
        socket.set_connected(false);
        self.hub.remove(socket);
        self.handler.on_disconnect(socket, reason);
    }
}

/// Picks a new socket's identity (recovered or fresh), given a check of recovery offsets.
pub(super) type Identify<'a> = &'a dyn Fn(&dyn Fn(&str) -> bool) -> Identity;

/// A namespace whatever its handler, as a client's session sees it.
pub(super) trait AnyNamespace {
    /// Admits a socket over `session` for a client at `peer`, or refuses it. `identify`
    /// picks the socket's identity (recovered or new), given a check of recovery offsets.
    fn admit(
        self: Rc<Self>,
        session: &Rc<Session>,
        auth: &str,
        peer: IpAddr,
        identify: Identify<'_>,
    ) -> Result<Rc<dyn Member>, Refusal>;
}

impl<H: NamespaceHandler> AnyNamespace for Namespace<H> {
    fn admit(
        self: Rc<Self>,
        session: &Rc<Session>,
        auth: &str,
        peer: IpAddr,
        identify: Identify<'_>,
    ) -> Result<Rc<dyn Member>, Refusal> {
        let data = self.handler.admit(auth, peer)?;
        let identity = identify(&|offset| self.handler.accepts_offset(offset));
        Ok(Rc::new(Socket::new(self, session.clone(), identity, data)))
    }
}

/// A socket admitted to a namespace, whatever its handler's data, as its client sees it.
pub(super) trait Member {
    fn namespace(&self) -> &str;
    fn id(&self) -> &Sid;
    fn pid(&self) -> Option<&Sid>;
    /// Joins the hub and tells the application.
    fn enter(self: Rc<Self>, auth: &str);
    fn on_event(self: Rc<Self>, event: Event<'_>);
    /// Leaves the hub and tells the application.
    fn leave(self: Rc<Self>, reason: DisconnectReason);
}

impl<D: 'static> Member for Socket<D> {
    fn namespace(&self) -> &str {
        Socket::namespace(self)
    }

    fn id(&self) -> &Sid {
        Socket::id(self)
    }

    fn pid(&self) -> Option<&Sid> {
        Socket::pid(self)
    }

    fn enter(self: Rc<Self>, auth: &str) {
        self.host().enter(&self, auth);
    }

    fn on_event(self: Rc<Self>, event: Event<'_>) {
        self.host().on_event(&self, event);
    }

    fn leave(self: Rc<Self>, reason: DisconnectReason) {
        self.host().leave(&self, reason);
    }
}
