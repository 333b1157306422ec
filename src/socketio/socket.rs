//! A client's membership of one namespace, as the application sees it.

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;

use super::backlog::{BacklogRoom, EventBatch};
use super::event::{DisconnectReason, Event};
use super::packet::{self, PacketType};
use crate::engineio::{EncodedPacket, Session, Sid};

/// Who a new socket is: a fresh id, or the id of a socket it resumes (recovery).
pub(super) struct Identity {
    pub sid: Sid,
    /// Private id for connection state recovery; `None` when recovery is off.
    pub pid: Option<Sid>,
    /// The offset the client sent when it resumed a socket.
    pub recovered_offset: Option<String>,
}

/// A socket's namespace, as the socket sees it: where its joining, events and leaving go.
pub(super) trait SocketHost<D> {
    fn name(&self) -> &str;
    /// Joins the namespace's hub and tells the application.
    fn enter(&self, socket: &Rc<Socket<D>>, auth: &str);
    fn on_event(&self, socket: &Rc<Socket<D>>, event: Event<'_>);
    /// Broadcasts after `after` found no room in the socket's queue.
    fn fell_behind(&self, socket: &Rc<Socket<D>>, after: i64);
    /// Leaves the hub and tells the application.
    fn leave(&self, socket: &Rc<Socket<D>>, reason: DisconnectReason);
}

/// One connected Socket.IO socket, with the application's data for it (`D`, the handler's
/// [`NamespaceHandler::Data`](super::NamespaceHandler::Data)).
pub struct Socket<D> {
    identity: Identity,
    namespace: Rc<dyn SocketHost<D>>,
    session: Rc<Session>,
    /// Position in the namespace's hub while connected.
    slot: Cell<usize>,
    connected: Cell<bool>,
    /// Whether ordered broadcasts reach this socket now (false while it catches up).
    live: Cell<bool>,
    /// Sequence number of the last ordered broadcast queued to it.
    delivered: Cell<i64>,
    data: D,
}

impl<D> Socket<D> {
    pub(super) fn new(
        namespace: Rc<dyn SocketHost<D>>,
        session: Rc<Session>,
        identity: Identity,
        data: D,
    ) -> Self {
        Socket {
            identity,
            namespace,
            session,
            slot: Cell::new(usize::MAX),
            connected: Cell::new(false),
            live: Cell::new(true),
            delivered: Cell::new(i64::MIN),
            data,
        }
    }

    /// The socket id sent in the CONNECT reply (distinct from the Engine.IO session id).
    pub fn id(&self) -> &Sid {
        &self.identity.sid
    }

    pub(super) fn pid(&self) -> Option<&Sid> {
        self.identity.pid.as_ref()
    }

    /// The application's data for this socket.
    pub fn data(&self) -> &D {
        &self.data
    }

    pub fn namespace(&self) -> &str {
        self.namespace.name()
    }

    pub(super) fn host(&self) -> &Rc<dyn SocketHost<D>> {
        &self.namespace
    }

    /// True when this socket resumed a disconnected one (socket.io's `socket.recovered`).
    pub fn recovered(&self) -> bool {
        self.identity.recovered_offset.is_some()
    }

    /// The offset the client sent with its recovered session: the last broadcast it got.
    pub fn recovered_offset(&self) -> Option<&str> {
        self.identity.recovered_offset.as_deref()
    }

    pub fn is_connected(&self) -> bool {
        self.connected.get() && !self.session.is_closed()
    }

    pub(super) fn set_connected(&self, connected: bool) {
        self.connected.set(connected);
    }

    pub(super) fn slot(&self) -> usize {
        self.slot.get()
    }

    pub(super) fn set_slot(&self, slot: usize) {
        self.slot.set(slot);
    }

    /// Stops ordered broadcasts to this socket until [`Socket::go_live`]: the application
    /// then sends it what it missed itself (a backlog).
    pub fn hold_broadcasts(&self) {
        self.live.set(false);
    }

    /// Resumes ordered broadcasts after `delivered`: later ones reach the socket, earlier
    /// ones (which the backlog already sent) do not.
    pub fn go_live(&self, delivered: i64) {
        self.delivered.set(delivered);
        self.live.set(true);
    }

    /// Queues an ordered broadcast numbered `seq` unless the socket is catching up or already
    /// has it. Sequence numbers increase, so a socket never gets one twice or out of order.
    /// Returns false when the socket just fell behind: the broadcast found no room, and
    /// broadcasts are held from it from now on (see [`SocketHost::fell_behind`]).
    pub(super) fn offer(&self, packet: &EncodedPacket, seq: i64) -> bool {
        if !self.live.get() || seq <= self.delivered.get() {
            return true;
        }
        if self.session.offer_ordered(packet) {
            self.delivered.set(seq);
            return true;
        }
        if self.session.is_closed() {
            return true;
        }
        self.live.set(false);
        false
    }

    /// Queues a shared packet if the socket's queue has room for it (within the bound ordered
    /// broadcasts have); drops it otherwise. For events that are stale by the time a slow
    /// client would read them.
    pub fn offer_volatile(&self, packet: &EncodedPacket) -> bool {
        self.session.offer_ordered(packet)
    }

    /// Sequence number of the last ordered broadcast queued to the socket.
    pub(super) fn delivered(&self) -> i64 {
        self.delivered.get()
    }

    /// Closes the socket's whole session (its client reconnects), as for a client that let
    /// its queue overflow.
    pub fn close_session(&self) {
        self.session.close(crate::engineio::CloseReason::Forced);
    }

    /// Waits until the client has read enough for the next part of a backlog of at most
    /// `max_packets` events, and says how large it may be; `None` once the socket is gone.
    pub async fn backlog_room(&self, max_packets: usize) -> Option<BacklogRoom> {
        let limits = self.session.limits();
        let room = BacklogRoom::within(max_packets, limits.packets, limits.bytes);
        let ready = self.is_connected()
            && self
                .session
                .wait_ordered_room(room.packets, room.bytes)
                .await;
        ready.then_some(room)
    }

    /// An empty batch of `event`s sized to `room`.
    pub fn event_batch(&self, event: &str, room: BacklogRoom) -> EventBatch {
        EventBatch::new(self.namespace.name(), event, room)
    }

    /// Queues a batch with one wake-up of the transport.
    pub fn send_batch(&self, batch: EventBatch) {
        self.session.send_backlog(batch.into_packets());
    }

    /// Emits `event`; `args_tail` is the rest of the argument array after the name: `]` for no
    /// arguments or `,<json>,<json>]`. Attachments follow as binary messages.
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
        self.session.send(EncodedPacket::text(text));
        for attachment in attachments {
            self.session.send(EncodedPacket::Binary(attachment.clone()));
        }
    }
}
