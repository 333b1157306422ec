//! The Socket.IO side of one Engine.IO session: decodes packets, gathers binary attachments,
//! joins namespaces (with connection state recovery) and dispatches events to their sockets.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::config::SocketIoConfig;
use super::event::{DisconnectReason, Event};
use super::namespace::{AnyNamespace, Member};
use super::packet::{self, Packet, PacketType};
use super::recovery::Recovery;
use super::shared_sessions::SharedSessions;
use super::socket::Identity;
use crate::budget::Lease;
use crate::engineio::{CloseReason, EncodedPacket, Message, Session, SessionHandler, Sid};
use crate::json;
use crate::logger::{Throttle, untrusted};

/// What every client of one server shares.
pub(super) struct Shared {
    pub namespaces: HashMap<String, Rc<dyn AnyNamespace>>,
    pub config: SocketIoConfig,
    pub recovery: Option<Recovery>,
    /// Recovery records shared with other servers (cluster mode).
    pub sessions: Option<Rc<dyn SharedSessions>>,
}

/// The `pid` and `offset` a client coming back merges into its CONNECT auth.
fn recovery_claim(auth: &str) -> Option<(Sid, String)> {
    let string = |name| {
        json::object_get(auth, name)
            .filter(|v| json::kind(v) == json::Kind::String)
            .and_then(|v| json::unescape(v).ok())
    };
    let pid = Sid::parse(&string("pid")?)?;
    let offset = string("offset")?.into_owned();
    Some((pid, offset))
}

/// Sessions closed for breaking the protocol: one line each, rationed.
static PROTOCOL_ERRORS: Throttle = Throttle::new(20, Duration::from_secs(60));

/// A binary packet waiting for its attachments.
struct Partial {
    text: String,
    attachments: Vec<Bytes>,
    expected: usize,
    /// The text and the attachments so far, bounded by `max_attachment_bytes`.
    bytes: usize,
    /// `bytes`, held from the engine's inbound budget.
    held: Lease,
    /// Closes the session if the attachments do not all come in time.
    deadline: tokio::task::AbortHandle,
}

/// The Socket.IO side of one Engine.IO session.
pub(super) struct Client {
    /// This client, for the timers it starts.
    me: Weak<Client>,
    shared: Rc<Shared>,
    session: Rc<Session>,
    members: RefCell<Vec<Rc<dyn Member>>>,
    /// The client's address, for the namespaces' admission.
    peer: IpAddr,
    /// The connect-timeout task, stopped once a namespace is joined: otherwise every client
    /// would keep a task and a timer alive for connectTimeout (45 s) for nothing.
    connect_timer: RefCell<Option<tokio::task::AbortHandle>>,
    /// Boxed: most clients never send binary, and every client would carry the room.
    partial: RefCell<Option<Box<Partial>>>,
    /// CONNECTs refused so far.
    refusals: Cell<u32>,
    /// A CONNECT waits for its recovery record from the shared store.
    connecting: Cell<bool>,
}

impl Client {
    /// The client of a new session, closed unless it joins a namespace in time.
    pub fn open(shared: Rc<Shared>, session: &Rc<Session>, peer: IpAddr) -> Rc<Client> {
        let timeout = shared.config.connect_timeout;
        let client = Rc::new_cyclic(|me| Client {
            me: me.clone(),
            shared,
            session: session.clone(),
            members: RefCell::new(Vec::new()),
            peer,
            partial: RefCell::new(None),
            refusals: Cell::new(0),
            connect_timer: RefCell::new(None),
            connecting: Cell::new(false),
        });
        let timer = tokio::task::spawn_local(connect_timeout(Rc::downgrade(&client), timeout));
        *client.connect_timer.borrow_mut() = Some(timer.abort_handle());
        client
    }

    fn member(&self, nsp: &str) -> Option<Rc<dyn Member>> {
        self.members
            .borrow()
            .iter()
            .find(|m| m.namespace() == nsp)
            .cloned()
    }

    /// The inbound budget cannot hold what this client is sending: it is closed, as a
    /// WebSocket would be with 1013, and may come back (and recover) later.
    fn busy(&self) {
        PROTOCOL_ERRORS.log(
            log::Level::Warn,
            format_args!(
                "session {}: closed, its attachments would pass --inbound-memory",
                self.session.sid()
            ),
        );
        self.session.close(CloseReason::TransportError);
    }

    fn protocol_error(&self, what: &dyn std::fmt::Display) {
        PROTOCOL_ERRORS.log(
            log::Level::Info,
            format_args!("session {}: closing, {what}", self.session.sid()),
        );
        self.session.close(CloseReason::Forced);
    }

    fn handle(&self, packet: Packet<'_>, attachments: &[Bytes]) {
        match packet.kind {
            PacketType::Connect => self.connect(packet.nsp, packet.data.unwrap_or("{}")),
            PacketType::Disconnect => {
                let member = self.member(packet.nsp);
                if let Some(member) = member {
                    self.members
                        .borrow_mut()
                        .retain(|m| !Rc::ptr_eq(m, &member));
                    self.leave(member, DisconnectReason::ClientNamespaceDisconnect);
                }
            }
            PacketType::Event | PacketType::BinaryEvent => {
                let Some(member) = self.member(packet.nsp) else {
                    return self.protocol_error(&"event for a namespace it has not joined");
                };
                let (Some(data), Some((name, args_tail))) = (packet.data, packet.event_parts())
                else {
                    return self.protocol_error(&"malformed event");
                };
                member.on_event(Event {
                    name: &name,
                    data,
                    args_tail,
                    ack: packet.ack,
                    attachments,
                });
            }
            // The server sends no events that expect an ack, so there is nothing to resolve.
            PacketType::Ack | PacketType::BinaryAck => {
                if self.member(packet.nsp).is_none() {
                    self.protocol_error(&"ack for a namespace it has not joined");
                }
            }
            PacketType::ConnectError => self.protocol_error(&"CONNECT_ERROR sent by a client"),
        }
    }

    fn connect(&self, nsp: &str, auth: &str) {
        let Some(namespace) = self.shared.namespaces.get(nsp).cloned() else {
            log::debug!(
                "session {}: unknown namespace {}",
                self.session.sid(),
                untrusted(nsp)
            );
            return self.connect_error(nsp, "Invalid namespace");
        };
        if self.member(nsp).is_some() || self.connecting.get() {
            return self.protocol_error(&format_args!("second CONNECT to {}", untrusted(nsp)));
        }
        // A client this process does not know, coming back with a pid: its record may be in
        // the shared store, written by the server it was on.
        if let (Some(sessions), Some(recovery), Some((pid, _))) = (
            &self.shared.sessions,
            &self.shared.recovery,
            recovery_claim(auth),
        ) && !recovery.knows(&pid)
        {
            self.connecting.set(true);
            let sessions = sessions.clone();
            let me = self.me.clone();
            let (nsp, auth) = (nsp.to_owned(), auth.to_owned());
            tokio::task::spawn_local(async move {
                let sid = sessions.take(&pid).await;
                let Some(client) = me.upgrade() else {
                    return;
                };
                client.connecting.set(false);
                if !client.session.is_closed() {
                    client.join(&namespace, &nsp, &auth, sid.map(|sid| (sid, pid)));
                }
            });
            return;
        }
        self.join(&namespace, nsp, auth, None);
    }

    /// Joins `namespace` with an identity: the local registry's for a client it knows,
    /// `restored` (socket id and pid from the shared store) for one it does not.
    fn join(
        &self,
        namespace: &Rc<dyn AnyNamespace>,
        nsp: &str,
        auth: &str,
        restored: Option<(Sid, Sid)>,
    ) {
        let now = Instant::now();
        let identify = |accepts: &dyn Fn(&str) -> bool| {
            self.identify(nsp, auth, accepts, now, restored.clone())
        };
        let member = match namespace
            .clone()
            .admit(&self.session, auth, self.peer, &identify)
        {
            Ok(member) => member,
            Err(refusal) => return self.refused(nsp, refusal.message()),
        };
        let mut reply = String::with_capacity(64);
        reply.push_str("{\"sid\":");
        json::write_string(&mut reply, member.id().as_str());
        if let Some(pid) = member.pid() {
            reply.push_str(",\"pid\":");
            json::write_string(&mut reply, pid.as_str());
        }
        reply.push('}');
        let text = packet::encode(PacketType::Connect, nsp, None, Some(&reply), 0);
        self.session.send(EncodedPacket::text(text));
        self.members.borrow_mut().push(member.clone());
        if let Some(timer) = self.connect_timer.borrow_mut().take() {
            timer.abort();
        }
        if let (Some(recovery), Some(pid)) = (&self.shared.recovery, member.pid()) {
            recovery.connected(pid, member.id(), nsp, &self.session, now);
            if let Some(sessions) = &self.shared.sessions {
                sessions.save(pid, member.id(), recovery.window());
            }
        }
        member.enter(auth);
    }

    /// The new socket's identity: the one it resumes when the client sent a `pid` and an
    /// `offset` (merged into its CONNECT auth) that recovery accepts, a fresh one otherwise.
    fn identify(
        &self,
        nsp: &str,
        auth: &str,
        accepts: &dyn Fn(&str) -> bool,
        now: Instant,
        restored: Option<(Sid, Sid)>,
    ) -> Identity {
        if let Some((sid, pid, offset)) = self.recover(nsp, auth, accepts, now) {
            return Identity {
                sid,
                pid: Some(pid),
                recovered_offset: Some(offset),
            };
        }
        if let (Some((sid, pid)), Some((_, offset))) = (restored, recovery_claim(auth))
            && accepts(&offset)
        {
            log::debug!(
                "socket {sid}: recovered from offset {} with a shared record",
                untrusted(&offset)
            );
            return Identity {
                sid,
                pid: Some(pid),
                recovered_offset: Some(offset),
            };
        }
        Identity {
            sid: Sid::random(),
            pid: self.shared.recovery.as_ref().map(|_| Sid::random()),
            recovered_offset: None,
        }
    }

    /// Tries to resume a disconnected socket; returns its id, the pid and the offset.
    fn recover(
        &self,
        nsp: &str,
        auth: &str,
        accepts: &dyn Fn(&str) -> bool,
        now: Instant,
    ) -> Option<(Sid, Sid, String)> {
        let recovery = self.shared.recovery.as_ref()?;
        let (pid, offset) = recovery_claim(auth)?;
        if !accepts(&offset) {
            log::debug!(
                "session {}: recovery offset {offset:?} refused",
                self.session.sid()
            );
            return None;
        }
        // The old transport may not have noticed yet that the client is gone: close it, which
        // turns its socket into a recoverable disconnection. It is told it was disconnected by
        // the server, so a client still using it does not reconnect and take the pid back.
        if let Some(stale) = recovery.live_session(&pid, nsp) {
            log::debug!("session {}: closed for recovery by another", stale.sid());
            let text = packet::encode(PacketType::Disconnect, nsp, None, None, 0);
            stale.send(EncodedPacket::text(text));
            stale.close(CloseReason::Forced);
        }
        let sid = recovery.take(&pid, nsp, now)?;
        log::debug!("socket {sid}: recovered from offset {}", untrusted(&offset));
        Some((sid, pid, offset))
    }

    /// Answers a refused CONNECT, and closes the session after `max_refusals` of them.
    fn refused(&self, nsp: &str, message: &str) {
        self.connect_error(nsp, message);
        let refusals = self.refusals.get() + 1;
        self.refusals.set(refusals);
        if refusals >= self.shared.config.max_refusals {
            log::debug!(
                "session {}: closing after {refusals} refused CONNECTs",
                self.session.sid()
            );
            self.session.close(CloseReason::Forced);
        }
    }

    fn connect_error(&self, nsp: &str, message: &str) {
        let mut data = String::from("{\"message\":");
        json::write_string(&mut data, message);
        data.push('}');
        let text = packet::encode(PacketType::ConnectError, nsp, None, Some(&data), 0);
        self.session.send(EncodedPacket::text(text));
    }

    /// Takes a socket that left out of recovery's live set, then out of its namespace.
    fn leave(&self, member: Rc<dyn Member>, reason: DisconnectReason) {
        if let (Some(recovery), Some(pid)) = (&self.shared.recovery, member.pid()) {
            recovery.disconnected(pid, reason.is_recoverable(), Instant::now());
            if let Some(sessions) = &self.shared.sessions {
                if reason.is_recoverable() {
                    sessions.save(pid, member.id(), recovery.window());
                } else {
                    sessions.forget(pid);
                }
            }
        }
        member.leave(reason);
    }

    fn on_text(&self, text: &str) {
        if self.partial.borrow().is_some() {
            return self.protocol_error(&"text packet while attachments were pending");
        }
        let config = &self.shared.config;
        match packet::decode(text, config.max_attachments) {
            Ok(packet) if packet.attachments > 0 => {
                // Held bytes are only for sockets that joined (and passed the handler's
                // admission): a session before CONNECT may not make the server hold anything.
                if self.member(packet.nsp).is_none() {
                    return self.protocol_error(&"attachments for a namespace it has not joined");
                }
                let mut held = Lease::new(self.session.inbound());
                if !held.hold(text.len()) {
                    return self.busy();
                }
                let deadline = tokio::task::spawn_local(attachment_deadline(
                    self.me.clone(),
                    config.attachment_timeout,
                ));
                *self.partial.borrow_mut() = Some(Box::new(Partial {
                    text: text.to_owned(),
                    attachments: Vec::with_capacity(packet.attachments),
                    expected: packet.attachments,
                    bytes: text.len(),
                    held,
                    deadline: deadline.abort_handle(),
                }));
            }
            Ok(packet) => self.handle(packet, &[]),
            Err(error) => self.protocol_error(&format_args!("invalid packet: {error}")),
        }
    }

    fn on_binary(&self, data: Bytes) {
        let complete = {
            let mut partial = self.partial.borrow_mut();
            let Some(pending) = partial.as_mut() else {
                drop(partial);
                return self.protocol_error(&"unexpected binary message");
            };
            pending.bytes += data.len();
            if pending.bytes > self.shared.config.max_attachment_bytes {
                drop(partial.take());
                drop(partial);
                return self.protocol_error(&"attachments larger than the payload limit");
            }
            if !pending.held.hold(pending.bytes) {
                drop(partial.take());
                drop(partial);
                return self.busy();
            }
            pending.attachments.push(data);
            if pending.attachments.len() == pending.expected {
                partial.take()
            } else {
                None
            }
        };
        if let Some(partial) = complete {
            match packet::decode(&partial.text, self.shared.config.max_attachments) {
                Ok(packet) => self.handle(packet, &partial.attachments),
                Err(error) => self.protocol_error(&format_args!("invalid packet: {error}")),
            }
        }
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        self.deadline.abort();
    }
}

impl SessionHandler for Client {
    fn on_message(&self, message: Message<'_>) {
        match message {
            Message::Text(text) => self.on_text(text),
            Message::Binary(data) => self.on_binary(data),
        }
    }

    fn on_close(&self, reason: CloseReason) {
        if let Some(timer) = self.connect_timer.borrow_mut().take() {
            timer.abort();
        }
        drop(self.partial.borrow_mut().take());
        let members = std::mem::take(&mut *self.members.borrow_mut());
        for member in members {
            self.leave(member, DisconnectReason::Session(reason));
        }
    }
}

/// Closes a session whose packet still waits for attachments after `timeout` (the task is
/// aborted when the packet completes).
async fn attachment_deadline(client: Weak<Client>, timeout: Duration) {
    tokio::time::sleep(timeout).await;
    if let Some(client) = client.upgrade()
        && client.partial.borrow().is_some()
    {
        client.protocol_error(&format_args!("attachments still missing after {timeout:?}"));
    }
}

/// Closes a session that has not joined any namespace in time.
async fn connect_timeout(client: Weak<Client>, timeout: Duration) {
    tokio::time::sleep(timeout).await;
    if let Some(client) = client.upgrade()
        && client.members.borrow().is_empty()
        && !client.session.is_closed()
    {
        log::debug!(
            "session {}: no CONNECT within {timeout:?}",
            client.session.sid()
        );
        client.session.close(CloseReason::Forced);
    }
}
