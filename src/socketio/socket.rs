//! A client's membership of one namespace, as the application sees it.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use bytes::Bytes;

use super::packet::{self, PacketType};
use super::server::{Client, Namespace};
use crate::engineio::{Frame, Session, Sid};

/// One connected Socket.IO socket.
pub struct Socket {
    id: Sid,
    /// Private id for connection state recovery (sent in the CONNECT reply only).
    pid: Option<Sid>,
    /// The offset the client gave when its session was recovered.
    recovered_offset: RefCell<Option<String>>,
    namespace: Rc<Namespace>,
    session: Rc<Session>,
    client: Weak<Client>,
    /// Position in the namespace's hub while connected.
    pub(crate) slot: Cell<usize>,
    connected: Cell<bool>,
    /// Whether ordered broadcasts reach this socket now (false while it catches up).
    live: Cell<bool>,
    /// Sequence number of the last ordered broadcast queued to it.
    delivered: Cell<i64>,
}

impl Socket {
    pub(crate) fn new(
        namespace: Rc<Namespace>,
        session: Rc<Session>,
        client: Weak<Client>,
        id: Sid,
        pid: Option<Sid>,
    ) -> Self {
        Socket {
            id,
            pid,
            recovered_offset: RefCell::new(None),
            namespace,
            session,
            client,
            slot: Cell::new(usize::MAX),
            connected: Cell::new(false),
            live: Cell::new(true),
            delivered: Cell::new(i64::MIN),
        }
    }

    pub(crate) fn pid(&self) -> Option<&Sid> {
        self.pid.as_ref()
    }

    pub(crate) fn set_recovered_offset(&self, offset: String) {
        *self.recovered_offset.borrow_mut() = Some(offset);
    }

    /// True when this socket resumed a disconnected one (socket.io's `socket.recovered`).
    pub fn recovered(&self) -> bool {
        self.recovered_offset.borrow().is_some()
    }

    /// The offset the client sent with its recovered session: the last broadcast it got.
    pub fn recovered_offset(&self) -> Option<String> {
        self.recovered_offset.borrow().clone()
    }

    /// Stops ordered broadcasts to this socket until [`Socket::go_live`]: the application
    /// then sends it what it missed itself (a replay).
    pub fn hold_broadcasts(&self) {
        self.live.set(false);
    }

    /// Resumes ordered broadcasts after `delivered`: later ones reach the socket, earlier
    /// ones (which the replay already sent) do not.
    pub fn go_live(&self, delivered: i64) {
        self.delivered.set(delivered);
        self.live.set(true);
    }

    pub fn is_live(&self) -> bool {
        self.live.get()
    }

    /// Queues an ordered broadcast numbered `seq` unless the socket is catching up or already
    /// has it. Sequence numbers increase, so a socket never gets one twice or out of order.
    pub(crate) fn offer(&self, frame: &Frame, seq: i64) {
        if self.live.get() && seq > self.delivered.get() {
            self.delivered.set(seq);
            self.session.send(frame.clone());
        }
    }

    /// The socket id sent in the CONNECT reply (distinct from the Engine.IO session id).
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn namespace(&self) -> &Rc<Namespace> {
        &self.namespace
    }

    pub fn session(&self) -> &Rc<Session> {
        &self.session
    }

    pub fn is_connected(&self) -> bool {
        self.connected.get() && !self.session.is_closed()
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.set(connected);
    }

    /// Queues an already encoded frame (as a broadcast shares it).
    pub fn send_frame(&self, frame: Frame) {
        self.session.send(frame);
    }

    /// Queues several encoded packets at once; see [`Session::send_all`].
    pub fn send_frames(&self, frames: impl IntoIterator<Item = Frame>) {
        self.session.send_all(frames);
    }

    /// Emits `event`; `args_tail` is the rest of the argument array after the name: `]` for no
    /// arguments or `,<json>,<json>]`. Attachments follow as binary frames.
    pub fn emit(&self, event: &str, args_tail: &str, attachments: &[Bytes]) {
        let kind = if attachments.is_empty() {
            PacketType::Event
        } else {
            PacketType::BinaryEvent
        };
        let mut text = String::with_capacity(event.len() + args_tail.len() + 16);
        packet::write_header(
            &mut text,
            kind,
            self.namespace.name(),
            None,
            attachments.len(),
        );
        text.push('[');
        crate::json::write_string(&mut text, event);
        text.push_str(args_tail);
        self.send_with_attachments(text, attachments);
    }

    /// Answers the client's ack `id` with the JSON array `args`.
    pub fn ack(&self, id: u64, args: &str, attachments: &[Bytes]) {
        let kind = if attachments.is_empty() {
            PacketType::Ack
        } else {
            PacketType::BinaryAck
        };
        let text = packet::encode(
            kind,
            self.namespace.name(),
            Some(id),
            Some(args),
            attachments.len(),
        );
        self.send_with_attachments(text, attachments);
    }

    fn send_with_attachments(&self, text: String, attachments: &[Bytes]) {
        self.session.send(Frame::text(text));
        for attachment in attachments {
            self.session.send(Frame::Binary(attachment.clone()));
        }
    }

    /// Disconnects this socket from its namespace (socket.io's `socket.disconnect()`).
    pub fn disconnect(self: &Rc<Self>) {
        if !self.connected.get() {
            return;
        }
        let text = packet::encode(PacketType::Disconnect, self.namespace.name(), None, None, 0);
        self.session.send(Frame::text(text));
        if let Some(client) = self.client.upgrade() {
            client.remove_socket(self, "server namespace disconnect");
        }
    }
}
