//! One Engine.IO session: its transport, outbound queue and heartbeat state.
//!
//! The state here changes only through the methods below; transports and the heartbeat task
//! read the decisions they return and do the I/O. Everything runs on one thread, so a
//! `RefCell` is enough, and no borrow is ever held across an `.await`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use tokio::sync::Notify;

use super::encoded::{EncodedPacket, SharedText};
use super::handler::{CloseReason, SessionHandler};
use super::sid::Sid;
use crate::budget::Budget;

/// The transport currently carrying a session's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Polling,
    WebSocket,
}

/// What a long-polling GET should answer with now.
#[derive(Debug, PartialEq, Eq)]
pub enum PollReply {
    /// Send these packets.
    Packets(Vec<EncodedPacket>),
    /// The session ended: send a close packet.
    Closed,
    /// An upgrade is under way: answer with a noop so the client pauses polling.
    Noop,
    /// Nothing yet: wait for a wake-up.
    Wait,
}

/// Why a polling request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollRefusal {
    /// The session moved to WebSocket.
    Upgraded,
    /// A second GET while one is pending: socket.io closes the session.
    DuplicateGet,
    /// A second POST while one is being read.
    DuplicatePost,
    /// The session is gone.
    Closed,
}

/// A packet waiting to go out. Broadcasts and replayed messages are `Ordered`: the client
/// counts those by offset, and the store can send them again, so they may be dropped (when
/// the server closes the session) or never queued (a reader that is behind catches up from
/// the store instead). An enum rather than a flag keeps the entry at 40 bytes.
#[derive(Debug)]
enum Queued {
    /// A packet the client cannot get again: an ack, a reply, a ping.
    Own(EncodedPacket),
    /// A broadcast or replayed message.
    Ordered(SharedText),
}

impl Queued {
    /// `packet`, ordered if `ordered` and text (binary packets never are).
    fn new(packet: EncodedPacket, ordered: bool) -> Queued {
        match packet {
            EncodedPacket::Text(text) if ordered => Queued::Ordered(text),
            packet => Queued::Own(packet),
        }
    }

    fn len(&self) -> usize {
        match self {
            Queued::Own(packet) => packet.len(),
            Queued::Ordered(text) => text.len(),
        }
    }

    fn is_ordered(&self) -> bool {
        matches!(self, Queued::Ordered(_))
    }

    /// What the packet costs the outbound budget: its bytes and its place in the queue.
    fn cost(&self) -> usize {
        self.len() + ENTRY_COST
    }

    fn into_packet(self) -> EncodedPacket {
        match self {
            Queued::Own(packet) => packet,
            Queued::Ordered(text) => EncodedPacket::Text(text),
        }
    }
}

/// Memory a queued packet takes beyond its bytes, as the outbound budget counts it.
pub const ENTRY_COST: usize = std::mem::size_of::<Queued>();

#[derive(Debug)]
struct State {
    transport: TransportKind,
    probing: bool,
    queue: VecDeque<Queued>,
    closed: Option<CloseReason>,
    get_pending: bool,
    post_pending: bool,
    noop_pending: bool,
    awaiting_pong: bool,
    /// Bytes of the packets in `queue`.
    queued_bytes: usize,
    /// What `queue` holds of the outbound budget.
    charged: usize,
    /// The queue hit its limit: the session is closed on the heartbeat task's next turn.
    overflowed: bool,
}

/// Bounds on a session's outbound queue. Ordered packets (broadcasts) fill at most half of
/// it: a reader that is further behind catches up from the store. Other packets (acks,
/// replies) fill the rest; a client that lets those pile up past the limits is disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    pub packets: usize,
    pub bytes: usize,
}

impl QueueLimits {
    /// Whether a queue of `packets` packets and `bytes` bytes has room for ordered packets
    /// of `more` bytes.
    fn ordered_room(&self, packets: usize, bytes: usize, more: usize) -> bool {
        packets < self.packets / 2 && bytes + more <= self.bytes / 2
    }
}

/// The share of the outbound budget that ordered packets may fill; the rest is kept for acks
/// and replies, which cannot be sent again later.
fn ordered_ceiling(outbound: &Budget) -> usize {
    outbound.limit() / 4 * 3
}

/// The engine-wide budgets a session draws on.
#[derive(Clone)]
pub(crate) struct Budgets {
    /// Messages still arriving (`EngineConfig::inbound_memory`).
    pub inbound: Rc<Budget>,
    /// Packets waiting to go out (`EngineConfig::outbound_memory`).
    pub outbound: Rc<Budget>,
}

/// Most bytes of packets in one long-poll response (or one packet, if longer). The client
/// polls again for the rest; a response it does not read stays in hyper's buffer, past the
/// outbound budget, so this is what one such connection can hold.
pub const POLL_RESPONSE_BYTES: usize = 16 * 1024;

/// How often a producer waiting for other clients to free the outbound budget looks again.
const BUDGET_RECHECK: std::time::Duration = std::time::Duration::from_millis(20);

/// An Engine.IO session shared by its transport(s), its heartbeat task and the application.
pub struct Session {
    sid: Sid,
    /// The engine's budget for messages still arriving, which the layer above draws on too
    /// (a packet waiting for its attachments).
    inbound: Rc<Budget>,
    /// The engine's budget for packets waiting to go out, which the queue draws on.
    outbound: Rc<Budget>,
    state: RefCell<State>,
    /// Wakes whichever transport drains the queue (a pending GET or the WebSocket task).
    transport_wake: Notify,
    /// Wakes the heartbeat task on a pong or on close.
    heartbeat_wake: Notify,
    /// Wakes producers waiting for the queue to drain (replay's flow control), and on close.
    drain_wake: Notify,
    /// The application's per-session state, dropped on close to break the reference cycle.
    handler: RefCell<Option<Rc<dyn SessionHandler>>>,
    limits: QueueLimits,
}

impl Session {
    pub(crate) fn new(
        sid: Sid,
        transport: TransportKind,
        limits: QueueLimits,
        budgets: Budgets,
    ) -> Self {
        Session {
            sid,
            inbound: budgets.inbound,
            outbound: budgets.outbound,
            state: RefCell::new(State {
                transport,
                probing: false,
                queue: VecDeque::new(),
                closed: None,
                get_pending: false,
                post_pending: false,
                noop_pending: false,
                awaiting_pong: false,
                queued_bytes: 0,
                charged: 0,
                overflowed: false,
            }),
            transport_wake: Notify::new(),
            heartbeat_wake: Notify::new(),
            drain_wake: Notify::new(),
            handler: RefCell::new(None),
            limits,
        }
    }

    pub fn sid(&self) -> &Sid {
        &self.sid
    }

    /// The budget for messages still arriving (`EngineConfig::inbound_memory`), shared by
    /// every session.
    pub(crate) fn inbound(&self) -> &Rc<Budget> {
        &self.inbound
    }

    /// The budget for packets waiting to go out (`EngineConfig::outbound_memory`), shared by
    /// every session; a transport holds its share of it for what it took from the queue.
    pub(crate) fn outbound(&self) -> &Rc<Budget> {
        &self.outbound
    }

    pub fn transport(&self) -> TransportKind {
        self.state.borrow().transport
    }

    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed.is_some()
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.state.borrow().closed
    }

    /// Queues a packet for the client. Packets sent after close, or once the queue has
    /// overflowed its limits, are dropped.
    pub fn send(&self, packet: EncodedPacket) {
        self.send_all(std::iter::once(packet));
    }

    /// Queues several packets with one wake-up of the transport.
    pub fn send_all(&self, packets: impl IntoIterator<Item = EncodedPacket>) {
        self.queue_all(packets, false);
    }

    /// Queues a part of a backlog (replayed messages) as ordered packets, with one wake-up of
    /// the transport. The producer waits for room first ([`Session::wait_ordered_room`]).
    pub fn send_backlog(&self, packets: impl IntoIterator<Item = EncodedPacket>) {
        self.queue_all(packets, true);
    }

    fn queue_all(&self, packets: impl IntoIterator<Item = EncodedPacket>, ordered: bool) {
        let mut state = self.state.borrow_mut();
        if state.closed.is_some() || state.overflowed {
            return;
        }
        let mut queued = false;
        for packet in packets {
            let entry = Queued::new(packet, ordered);
            let bytes = state.queued_bytes + entry.len();
            let cost = entry.cost();
            if state.queue.len() >= self.limits.packets
                || bytes > self.limits.bytes
                || !self.outbound.take_within(cost, usize::MAX)
            {
                state.overflowed = true;
                drop(state);
                // Closing here would re-enter whoever is sending (a broadcast walking its
                // sockets), so the heartbeat task closes the session on its next turn.
                self.heartbeat_wake.notify_one();
                return;
            }
            state.charged += cost;
            state.queued_bytes = bytes;
            state.queue.push_back(entry);
            queued = true;
        }
        drop(state);
        if queued {
            self.transport_wake.notify_one();
        }
    }

    /// Queues an ordered packet (a live broadcast) if there is room for it: in this queue's
    /// half for ordered packets, and in the ordered share of the outbound budget. False when
    /// there is not (or the session is closed): the caller then sends the client this and
    /// later broadcasts from the store, as fast as it reads.
    pub fn offer_ordered(&self, packet: &EncodedPacket) -> bool {
        let mut state = self.state.borrow_mut();
        if state.closed.is_some() || state.overflowed {
            return false;
        }
        let entry = Queued::new(packet.clone(), true);
        let cost = entry.cost();
        if !self
            .limits
            .ordered_room(state.queue.len(), state.queued_bytes, entry.len())
            || !self
                .outbound
                .take_within(cost, ordered_ceiling(&self.outbound))
        {
            return false;
        }
        state.charged += cost;
        state.queued_bytes += entry.len();
        state.queue.push_back(entry);
        drop(state);
        self.transport_wake.notify_one();
        true
    }

    /// True once the outbound queue hit its limits.
    pub fn overflowed(&self) -> bool {
        self.state.borrow().overflowed
    }

    /// Completes once nothing is queued (also after close: the last packets of a closed
    /// polling session still wait for their GET).
    pub async fn drained(&self) {
        while self.queued() > 0 {
            self.drain_wake.notified().await;
        }
    }

    /// Completes once the session is closed. Other wake-ups of the transport are absorbed, so
    /// the transport re-checks its queue after whatever this was raced against.
    pub async fn closed(&self) {
        while !self.is_closed() {
            self.transport_wake.notified().await;
        }
    }

    /// Completes once the session is closed, leaving the transport's wake-ups alone: for a
    /// task beside the transport, such as a POST still reading its body.
    pub async fn wait_closed(&self) {
        while !self.is_closed() {
            // Close wakes every waiter here (single-threaded: nothing closes the session
            // between the check and the wait).
            self.drain_wake.notified().await;
        }
    }

    /// The queue's limits.
    pub fn limits(&self) -> QueueLimits {
        self.limits
    }

    /// Number of packets waiting to be written.
    pub fn queued(&self) -> usize {
        self.state.borrow().queue.len()
    }

    /// Takes queued packets for the transport to write: all of them, or as many as fit in
    /// `max_bytes` (at least one). Their share of the outbound budget goes back; a transport
    /// that holds them a while takes it again (see [`Session::outbound`]).
    pub fn take_queued(&self, into: &mut impl Extend<EncodedPacket>, max_bytes: usize) {
        let mut state = self.state.borrow_mut();
        if state.queue.is_empty() {
            return;
        }
        let mut bytes = 0;
        let mut cost = 0;
        let count = state
            .queue
            .iter()
            .take_while(|entry| {
                let fits = bytes == 0 || bytes + entry.len() <= max_bytes;
                if fits {
                    bytes += entry.len();
                    cost += entry.cost();
                }
                fits
            })
            .count();
        state.queued_bytes -= bytes;
        state.charged -= cost;
        into.extend(state.queue.drain(..count).map(Queued::into_packet));
        // A burst leaves a large empty buffer behind; an idle client should not keep it.
        if state.queue.is_empty() && state.queue.capacity() > 256 {
            state.queue = VecDeque::new();
        }
        drop(state);
        self.outbound.give_back(cost);
        self.drain_wake.notify_waiters();
    }

    /// Waits until ordered packets of `bytes` in all, after at most `packets` already queued,
    /// have room (see [`Session::offer_ordered`]). Returns false once the session is closed.
    /// Lets a producer (replay) pace itself to what the client reads.
    pub async fn wait_ordered_room(&self, packets: usize, bytes: usize) -> bool {
        loop {
            if self.is_closed() {
                return false;
            }
            let (queued, queued_bytes) = {
                let state = self.state.borrow();
                (state.queue.len(), state.queued_bytes)
            };
            if queued > packets || !self.limits.ordered_room(0, queued_bytes, bytes) {
                // Single-threaded: nothing can drain the queue between the check and this wait.
                self.drain_wake.notified().await;
            } else if self.outbound.used() + bytes > ordered_ceiling(&self.outbound) {
                // Other clients hold the budget: look again shortly.
                tokio::time::sleep(BUDGET_RECHECK).await;
            } else {
                return true;
            }
        }
    }

    pub(crate) fn handler(&self) -> Option<Rc<dyn SessionHandler>> {
        self.handler.borrow().clone()
    }

    pub(crate) fn set_handler(&self, handler: Rc<dyn SessionHandler>) {
        *self.handler.borrow_mut() = Some(handler);
    }

    /// Closes the session: the transport sends what is queued (and a close packet when the
    /// server chose to close), the heartbeat task removes it from the engine, and the
    /// application hears `on_close` once. Closing twice does nothing.
    pub fn close(&self, reason: CloseReason) {
        if !self.mark_closed(reason) {
            return;
        }
        let handler = self.handler.borrow_mut().take();
        if let Some(handler) = handler {
            handler.on_close(reason);
        }
    }

    fn mark_closed(&self, reason: CloseReason) -> bool {
        {
            let mut state = self.state.borrow_mut();
            if state.closed.is_some() {
                return false;
            }
            state.closed = Some(reason);
            if reason.sends_close_packet() {
                // Broadcasts handed over with the close could reach a client that already
                // counts itself disconnected: socket.io-client buffers them without moving its
                // offset, then recovers from that offset and gets them twice. They are in the
                // store, so they go out again on recovery or replay instead.
                let state = &mut *state;
                let mut freed = 0;
                let mut freed_bytes = 0;
                state.queue.retain(|entry| {
                    if entry.is_ordered() {
                        freed += entry.cost();
                        freed_bytes += entry.len();
                    }
                    !entry.is_ordered()
                });
                state.charged -= freed;
                state.queued_bytes -= freed_bytes;
                self.outbound.give_back(freed);
                if state.transport == TransportKind::Polling {
                    // A pending or next GET carries the queued packets, then the close packet.
                    let close = Queued::Own(EncodedPacket::text("1"));
                    self.outbound.take(close.cost());
                    state.charged += close.cost();
                    state.queued_bytes += close.len();
                    state.queue.push_back(close);
                }
            }
        }
        self.transport_wake.notify_one();
        self.heartbeat_wake.notify_one();
        self.drain_wake.notify_waiters();
        true
    }

    // ---- long-polling ----

    /// Registers a GET; refuses it when it cannot be served.
    pub fn begin_get(&self) -> Result<(), PollRefusal> {
        let mut state = self.state.borrow_mut();
        if state.transport == TransportKind::WebSocket {
            return Err(PollRefusal::Upgraded);
        }
        if state.get_pending {
            return Err(PollRefusal::DuplicateGet);
        }
        if state.closed.is_some() && state.queue.is_empty() {
            return Err(PollRefusal::Closed);
        }
        state.get_pending = true;
        Ok(())
    }

    /// What the pending GET should answer now.
    pub fn poll(&self) -> PollReply {
        let mut state = self.state.borrow_mut();
        if state.transport == TransportKind::WebSocket {
            // A GET left over from before the upgrade: release it, and pass the wake-up it
            // took on to the WebSocket, whose queue this is now.
            drop(state);
            self.transport_wake.notify_one();
            return PollReply::Noop;
        }
        if !state.queue.is_empty() {
            drop(state);
            let mut packets = Vec::new();
            self.take_queued(&mut packets, POLL_RESPONSE_BYTES);
            return PollReply::Packets(packets);
        }
        match state.closed {
            // The client closed (a close packet in a POST): release its GET with a noop, as
            // engine.io does; the session is gone all the same.
            Some(CloseReason::TransportClose) => return PollReply::Noop,
            Some(_) => return PollReply::Closed,
            None => {}
        }
        if std::mem::take(&mut state.noop_pending) {
            return PollReply::Noop;
        }
        PollReply::Wait
    }

    pub fn end_get(&self) {
        self.state.borrow_mut().get_pending = false;
    }

    pub fn begin_post(&self) -> Result<(), PollRefusal> {
        let mut state = self.state.borrow_mut();
        if state.transport == TransportKind::WebSocket {
            return Err(PollRefusal::Upgraded);
        }
        if state.closed.is_some() {
            return Err(PollRefusal::Closed);
        }
        if state.post_pending {
            return Err(PollRefusal::DuplicatePost);
        }
        state.post_pending = true;
        Ok(())
    }

    pub fn end_post(&self) {
        self.state.borrow_mut().post_pending = false;
    }

    /// Waits until there may be something for the transport to do.
    pub async fn transport_woken(&self) {
        self.transport_wake.notified().await;
    }

    // ---- upgrade ----

    /// A WebSocket sent `2probe` for this polling session. Returns false if no upgrade is
    /// possible (already upgraded, already probing, or closed).
    pub fn begin_probe(&self) -> bool {
        let mut state = self.state.borrow_mut();
        if state.transport != TransportKind::Polling || state.probing || state.closed.is_some() {
            return false;
        }
        state.probing = true;
        state.noop_pending = true;
        drop(state);
        self.transport_wake.notify_one();
        true
    }

    /// The client sent `5` on the probing WebSocket: it now carries the session.
    pub fn finish_upgrade(&self) -> bool {
        let mut state = self.state.borrow_mut();
        if !state.probing || state.closed.is_some() {
            return false;
        }
        state.probing = false;
        state.noop_pending = false;
        state.transport = TransportKind::WebSocket;
        drop(state);
        // Releases a GET that might still be pending.
        self.transport_wake.notify_one();
        true
    }

    /// The probing WebSocket went away or timed out; polling goes on.
    pub fn abort_probe(&self) {
        let mut state = self.state.borrow_mut();
        state.probing = false;
        state.noop_pending = false;
    }

    // ---- heartbeat ----

    /// Queues a ping and starts waiting for its pong.
    pub fn ping(&self) {
        self.state.borrow_mut().awaiting_pong = true;
        self.send(EncodedPacket::text("2"));
    }

    pub fn pong_received(&self) {
        self.state.borrow_mut().awaiting_pong = false;
        self.heartbeat_wake.notify_one();
    }

    pub fn awaiting_pong(&self) -> bool {
        self.state.borrow().awaiting_pong
    }

    pub async fn heartbeat_woken(&self) {
        self.heartbeat_wake.notified().await;
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // What was still queued when the last reference went (a closed session's packets).
        self.outbound.give_back(self.state.get_mut().charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        let limits = QueueLimits {
            packets: 8,
            bytes: 64,
        };
        Session::new(
            Sid::random(),
            TransportKind::Polling,
            limits,
            Budgets {
                inbound: Budget::new(1 << 20),
                outbound: Budget::new(1 << 20),
            },
        )
    }

    #[test]
    fn poll_drains_queue_then_waits() {
        let s = session();
        s.begin_get().unwrap();
        assert_eq!(s.poll(), PollReply::Wait);
        s.send(EncodedPacket::text("4a"));
        s.send(EncodedPacket::text("4b"));
        assert_eq!(
            s.poll(),
            PollReply::Packets(vec![EncodedPacket::text("4a"), EncodedPacket::text("4b")])
        );
        assert_eq!(s.poll(), PollReply::Wait);
    }

    #[test]
    fn a_poll_response_carries_a_bounded_part() {
        let limits = QueueLimits {
            packets: 100,
            bytes: 1 << 20,
        };
        let budgets = Budgets {
            inbound: Budget::new(1 << 20),
            outbound: Budget::new(1 << 20),
        };
        let s = Session::new(Sid::random(), TransportKind::Polling, limits, budgets);
        let part = POLL_RESPONSE_BYTES / 2 + 1;
        for _ in 0..3 {
            s.send(EncodedPacket::text("4".repeat(part)));
        }
        s.send(EncodedPacket::text("4".repeat(POLL_RESPONSE_BYTES * 2)));
        s.begin_get().unwrap();
        for expected in [1, 1, 1, 1] {
            match s.poll() {
                PollReply::Packets(packets) => assert_eq!(packets.len(), expected),
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(s.poll(), PollReply::Wait);
        s.send(EncodedPacket::text("4a"));
        s.send(EncodedPacket::text("4b"));
        assert!(matches!(s.poll(), PollReply::Packets(p) if p.len() == 2));
    }

    #[test]
    fn second_get_is_refused() {
        let s = session();
        s.begin_get().unwrap();
        assert_eq!(s.begin_get(), Err(PollRefusal::DuplicateGet));
        s.end_get();
        assert_eq!(s.begin_get(), Ok(()));
    }

    #[test]
    fn upgrade_sends_noop_then_refuses_polling() {
        let s = session();
        s.begin_get().unwrap();
        assert!(s.begin_probe());
        assert!(!s.begin_probe());
        assert_eq!(s.poll(), PollReply::Noop);
        s.end_get();
        assert!(s.finish_upgrade());
        assert_eq!(s.transport(), TransportKind::WebSocket);
        assert_eq!(s.begin_get(), Err(PollRefusal::Upgraded));
        assert_eq!(s.begin_post(), Err(PollRefusal::Upgraded));
    }

    #[test]
    fn a_get_left_over_from_before_the_upgrade_takes_nothing() {
        let s = session();
        s.begin_get().unwrap();
        assert!(s.begin_probe());
        assert_eq!(s.poll(), PollReply::Noop);
        assert!(s.finish_upgrade());
        // The same GET, woken again: the packets are the WebSocket's now.
        s.send(EncodedPacket::text("42[\"x\"]"));
        assert_eq!(s.poll(), PollReply::Noop);
        assert_eq!(s.queued(), 1);
    }

    #[test]
    fn aborted_probe_keeps_polling() {
        let s = session();
        assert!(s.begin_probe());
        s.abort_probe();
        assert!(!s.finish_upgrade());
        assert_eq!(s.transport(), TransportKind::Polling);
        assert!(s.begin_probe());
    }

    #[test]
    fn server_close_queues_close_packet_for_polling() {
        let s = session();
        s.send(EncodedPacket::text("4x"));
        assert!(s.mark_closed(CloseReason::Forced));
        assert!(!s.mark_closed(CloseReason::Forced));
        s.send(EncodedPacket::text("4dropped"));
        s.begin_get().unwrap();
        assert_eq!(
            s.poll(),
            PollReply::Packets(vec![EncodedPacket::text("4x"), EncodedPacket::text("1")])
        );
        assert_eq!(s.poll(), PollReply::Closed);
        s.end_get();
        assert_eq!(s.begin_get(), Err(PollRefusal::Closed));
    }

    #[test]
    fn pong_clears_the_wait() {
        let s = session();
        s.ping();
        assert!(s.awaiting_pong());
        assert_eq!(s.queued(), 1);
        s.pong_received();
        assert!(!s.awaiting_pong());
    }

    #[test]
    fn overflowing_the_queue_stops_queueing() {
        let s = session();
        for _ in 0..8 {
            s.send(EncodedPacket::text("4x"));
        }
        assert!(!s.overflowed());
        s.send(EncodedPacket::text("4y"));
        assert!(s.overflowed());
        assert_eq!(s.queued(), 8);
        let big = session();
        big.send(EncodedPacket::text("4".repeat(60)));
        big.send(EncodedPacket::text("4".repeat(10)));
        assert!(big.overflowed());
        // Draining resets the byte count of a healthy session.
        let healthy = session();
        healthy.send(EncodedPacket::text("4".repeat(60)));
        let mut out = Vec::new();
        healthy.take_queued(&mut out, usize::MAX);
        healthy.send(EncodedPacket::text("4".repeat(60)));
        assert!(!healthy.overflowed());
    }

    #[test]
    fn ordered_packets_fill_half_the_queue_and_are_refused_not_overflowed() {
        let s = session();
        let broadcast = EncodedPacket::text("42[\"m\"]");
        for _ in 0..4 {
            assert!(s.offer_ordered(&broadcast));
        }
        assert!(!s.offer_ordered(&broadcast), "8 packets: half is 4");
        assert!(!s.overflowed());
        // Acks still have the other half.
        for _ in 0..4 {
            s.send(EncodedPacket::text("43"));
        }
        assert!(!s.overflowed());
        s.send(EncodedPacket::text("43"));
        assert!(s.overflowed());
        // Half the bytes too: 64 / 2.
        let s = session();
        assert!(s.offer_ordered(&EncodedPacket::text("4".repeat(30))));
        assert!(!s.offer_ordered(&EncodedPacket::text("4".repeat(3))));
        assert!(s.offer_ordered(&EncodedPacket::text("42")));
    }

    #[test]
    fn the_outbound_budget_counts_every_queue_until_written() {
        let outbound = Budget::new(4 * (4 + ENTRY_COST));
        let budgets = Budgets {
            inbound: Budget::new(1 << 20),
            outbound: outbound.clone(),
        };
        let limits = QueueLimits {
            packets: 100,
            bytes: 1000,
        };
        let a = Session::new(
            Sid::random(),
            TransportKind::Polling,
            limits,
            budgets.clone(),
        );
        let b = Session::new(Sid::random(), TransportKind::Polling, limits, budgets);
        let packet = EncodedPacket::text("42xx");
        // Broadcasts take three quarters at most: 3 of 4.
        assert!(a.offer_ordered(&packet));
        assert!(b.offer_ordered(&packet));
        assert!(a.offer_ordered(&packet));
        assert!(!b.offer_ordered(&packet));
        assert_eq!(outbound.used(), 3 * (4 + ENTRY_COST));
        // Acks may use the rest, and past it their session overflows.
        b.send(packet.clone());
        assert!(!b.overflowed());
        b.send(packet.clone());
        assert!(b.overflowed());
        // Taking packets gives back their share; a part at a time when asked.
        let mut out = Vec::new();
        a.take_queued(&mut out, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(outbound.used(), 3 * (4 + ENTRY_COST));
        a.take_queued(&mut out, usize::MAX);
        assert_eq!(out.len(), 2);
        assert_eq!(outbound.used(), 2 * (4 + ENTRY_COST));
        // A dropped session gives back what it still held.
        drop(b);
        assert_eq!(outbound.used(), 0);
    }

    #[test]
    fn a_server_close_drops_queued_broadcasts_but_not_replies() {
        let s = session();
        s.send(EncodedPacket::text("40{\"sid\":\"x\"}"));
        assert!(s.offer_ordered(&EncodedPacket::text("42[\"m\",1]")));
        s.send_backlog([EncodedPacket::text("42[\"m\",2]")]);
        s.send(EncodedPacket::text("431[]"));
        s.close(CloseReason::Forced);
        s.begin_get().unwrap();
        assert_eq!(
            s.poll(),
            PollReply::Packets(vec![
                EncodedPacket::text("40{\"sid\":\"x\"}"),
                EncodedPacket::text("431[]"),
                EncodedPacket::text("1"),
            ])
        );
        assert_eq!(s.outbound().used(), 0);
        // A client that closed keeps nothing of what was queued for it anyway.
        let s = session();
        assert!(s.offer_ordered(&EncodedPacket::text("42[\"m\",1]")));
        s.close(CloseReason::TransportClose);
        assert_eq!(s.queued(), 1);
    }
}
