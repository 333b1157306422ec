//! The Engine.IO server: the session table, incoming packet dispatch and the heartbeat.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use super::config::EngineConfig;
use super::encoded::EncodedPacket;
use super::handler::{CloseReason, Message, SessionHandler};
use super::intake::Intake;
use super::packet::{self, Packet};
use super::session::{Budgets, QueueLimits, Session, TransportKind};
use super::sid::Sid;
use crate::budget::Budget;

/// Creates the application's side of each new session.
pub trait Handler {
    /// A session opened by a client at `peer` (the address of the connection whose
    /// handshake made it).
    fn on_open(&self, session: &Rc<Session>, peer: IpAddr) -> Rc<dyn SessionHandler>;
}

/// Owns every live session of one endpoint (such as `/socket.io/`).
pub struct Engine {
    config: EngineConfig,
    sessions: RefCell<HashMap<Sid, Rc<Session>>>,
    handler: Rc<dyn Handler>,
    /// Sessions closed because their client fell too far behind.
    overflows: Cell<u64>,
    /// Sessions closed because their client stopped answering pings.
    ping_timeouts: Cell<u64>,
    /// What the transports may hold of messages still arriving, for all clients together.
    inbound: Rc<Budget>,
    /// What may wait to go out, for all clients together.
    outbound: Rc<Budget>,
    /// Whether the application takes more input now (see [`Engine::set_intake`]).
    intake: Rc<Intake>,
}

impl Engine {
    pub fn new(config: EngineConfig, handler: Rc<dyn Handler>) -> Rc<Engine> {
        Rc::new(Engine {
            inbound: Budget::new(config.inbound_memory),
            outbound: Budget::new(config.outbound_memory),
            intake: Intake::new(),
            config,
            sessions: RefCell::new(HashMap::new()),
            handler,
            overflows: Cell::new(0),
            ping_timeouts: Cell::new(0),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The budget for messages still arriving (see [`EngineConfig::inbound_memory`]).
    pub(crate) fn inbound(&self) -> &Rc<Budget> {
        &self.inbound
    }

    /// The budget for packets waiting to go out (see [`EngineConfig::outbound_memory`]).
    pub(crate) fn outbound(&self) -> &Rc<Budget> {
        &self.outbound
    }

    /// Lets the application pause client input: while `accepting` says false, the transports
    /// read nothing more from clients (WebSocket frames stay in the socket, polling bodies
    /// wait before their next packet), so a burst waits in the network instead of being
    /// refused.
    pub fn set_intake(&self, accepting: impl Fn() -> bool + 'static) {
        self.intake.set(accepting);
    }

    /// Whether the transports may read and deliver more client input now.
    pub fn accepting(&self) -> bool {
        self.intake.is_open()
    }

    /// Waits until [`Engine::accepting`], or until `deadline` (a transport gives one input
    /// [`INTAKE_MAX_PAUSE`] in all). The bound keeps pongs flowing when the store is stuck (a
    /// locked database): clients then get the store's refusals instead of a ping timeout.
    pub async fn intake_open(&self, deadline: Instant) {
        self.intake.wait(deadline).await;
    }

    /// A transport found the intake closed: makes sure one task watches it (for every
    /// paused transport), to wake [`Engine::intake_changed`] waiters.
    pub fn watch_intake(&self) {
        self.intake.watch();
    }

    /// Completes when the intake opens, or every 100 ms while it stays closed; call
    /// [`Engine::watch_intake`] first.
    pub fn intake_changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.intake.changed()
    }

    /// Bytes of messages still arriving, held now.
    pub fn inbound_bytes(&self) -> usize {
        self.inbound.used()
    }

    /// Bytes waiting to go out (queued or being written), held now.
    pub fn outbound_bytes(&self) -> usize {
        self.outbound.used()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn session(&self, sid: &str) -> Option<Rc<Session>> {
        let sid = Sid::parse(sid)?;
        self.sessions.borrow().get(&sid).cloned()
    }

    /// Starts a session on `transport`: queues the open packet, starts the heartbeat and lets
    /// the application attach. Must run inside a `LocalSet`.
    pub fn open(self: &Rc<Self>, transport: TransportKind, peer: IpAddr) -> Rc<Session> {
        let mut sid = Sid::random();
        while self.sessions.borrow().contains_key(&sid) {
            sid = Sid::random();
        }
        let limits = QueueLimits {
            packets: self.config.max_queue_packets,
            bytes: self.config.max_queue_bytes,
        };
        let session = Rc::new(Session::new(
            sid.clone(),
            transport,
            limits,
            Budgets {
                inbound: self.inbound.clone(),
                outbound: self.outbound.clone(),
            },
        ));
        let upgrades = transport == TransportKind::Polling && self.config.allow_upgrades;
        session.send(EncodedPacket::text(packet::open_packet(
            sid.as_str(),
            upgrades,
            self.config.ping_interval.as_millis() as u64,
            self.config.ping_timeout.as_millis() as u64,
            self.config.max_payload,
        )));
        self.sessions.borrow_mut().insert(sid, session.clone());
        // The ping clock starts now, at the handshake, as engine.io's does, not when the
        // heartbeat task first runs: a client that waits pingInterval + pingTimeout from its
        // handshake must find the session gone.
        let first_ping = Instant::now() + self.config.ping_interval;
        tokio::task::spawn_local(heartbeat(self.clone(), session.clone(), first_ping));
        let handler = self.handler.on_open(&session, peer);
        session.set_handler(handler);
        session
    }

    /// Handles one packet received from the client on the session's current transport.
    pub fn receive(&self, session: &Rc<Session>, packet: Packet<'_>) {
        match packet {
            Packet::Message(text) => {
                if let Some(handler) = session.handler() {
                    handler.on_message(Message::Text(text));
                }
            }
            Packet::Binary(data) => {
                if let Some(handler) = session.handler() {
                    handler.on_message(Message::Binary(data));
                }
            }
            Packet::Pong(_) => session.pong_received(),
            Packet::Close => session.close(CloseReason::TransportClose),
            // Upgrade packets only matter on a probing WebSocket (the transport handles them);
            // clients do not ping in v4, and a noop carries nothing.
            Packet::Ping(_) | Packet::Upgrade | Packet::Noop => {}
            Packet::Open => {
                log::debug!("session {}: open packet from client", session.sid());
                session.close(CloseReason::ParseError);
            }
        }
    }

    /// Sessions closed since start because their outbound queue overflowed.
    pub fn queue_overflows(&self) -> u64 {
        self.overflows.get()
    }

    /// Sessions closed since start because their client stopped answering pings (it stopped
    /// reading, or went away without closing).
    pub fn ping_timeouts(&self) -> u64 {
        self.ping_timeouts.get()
    }

    /// Closes a session whose queue overflowed; true if it did.
    fn close_if_overflowed(&self, session: &Session) -> bool {
        if !session.overflowed() || session.is_closed() {
            return false;
        }
        log::info!(
            "session {}: acks and replies piled up unread (outbound queue full); disconnecting",
            session.sid()
        );
        self.overflows.set(self.overflows.get() + 1);
        session.close(CloseReason::Forced);
        true
    }

    /// Closes every session, as when the gateway stops.
    pub fn close_all(&self, reason: CloseReason) {
        let sessions: Vec<_> = self.sessions.borrow().values().cloned().collect();
        for session in sessions {
            session.close(reason);
        }
    }

    fn remove(&self, session: &Session) {
        self.sessions.borrow_mut().remove(session.sid());
    }
}

/// Longest a transport holds back a client's input for the application (see
/// [`Engine::intake_open`]); then it reads one turn anyway.
pub const INTAKE_MAX_PAUSE: Duration = Duration::from_secs(1);

/// How late a ping may leave before its pong deadline moves with it.
const LATE_PING: Duration = Duration::from_millis(50);

/// Pings every `ping_interval` and closes the session when a pong does not come within
/// `ping_timeout`. This also reaps polling sessions that the client abandoned, and closes
/// sessions whose outbound queue overflowed. When the session closes, for whatever reason,
/// this task removes it from the engine.
async fn heartbeat(engine: Rc<Engine>, session: Rc<Session>, first_ping: Instant) {
    let interval = engine.config.ping_interval;
    let timeout = engine.config.ping_timeout;
    let mut ping_at = first_ping;
    'outer: loop {
        loop {
            tokio::select! {
                _ = sleep_until(ping_at) => break,
                _ = session.heartbeat_woken() => {
                    if engine.close_if_overflowed(&session) || session.is_closed() {
                        break 'outer;
                    }
                }
            }
        }
        session.ping();
        // The client gets pingTimeout from the ping's due time, as engine.io's timers give it;
        // when the loop was held up past that time, from the moment the ping really left.
        let now = Instant::now();
        let deadline = if now.duration_since(ping_at) > LATE_PING {
            now + timeout
        } else {
            ping_at + timeout
        };
        loop {
            tokio::select! {
                _ = sleep_until(deadline) => {
                    if session.awaiting_pong() {
                        engine.ping_timeouts.set(engine.ping_timeouts.get() + 1);
                        session.close(CloseReason::PingTimeout);
                        break 'outer;
                    }
                    break;
                }
                _ = session.heartbeat_woken() => {
                    if engine.close_if_overflowed(&session) || session.is_closed() {
                        break 'outer;
                    }
                    if !session.awaiting_pong() {
                        break;
                    }
                }
            }
        }
        // The next ping comes pingInterval after the pong (or the deadline).
        ping_at = Instant::now() + interval;
    }
    // When the server closed a polling session, the client fetches its last packets (the close
    // packet among them) with one more GET: keep the session reachable for that, within
    // pingTimeout.
    let told = session
        .close_reason()
        .is_some_and(CloseReason::sends_close_packet);
    if told && session.transport() == TransportKind::Polling && session.queued() > 0 {
        let _ = tokio::time::timeout(timeout, session.drained()).await;
    }
    engine.remove(&session);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::SessionHandler;
    use crate::engineio::session::PollReply;
    use std::cell::Cell;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    struct Recorder {
        closed: Rc<Cell<Option<CloseReason>>>,
    }

    impl SessionHandler for Recorder {
        fn on_message(&self, _: Message<'_>) {}
        fn on_close(&self, reason: CloseReason) {
            self.closed.set(Some(reason));
        }
    }

    struct RecordingHandler {
        closed: Rc<Cell<Option<CloseReason>>>,
    }

    impl Handler for RecordingHandler {
        fn on_open(&self, _: &Rc<Session>, _: IpAddr) -> Rc<dyn SessionHandler> {
            Rc::new(Recorder {
                closed: self.closed.clone(),
            })
        }
    }

    fn engine() -> (Rc<Engine>, Rc<Cell<Option<CloseReason>>>) {
        let closed = Rc::new(Cell::new(None));
        let handler = Rc::new(RecordingHandler {
            closed: closed.clone(),
        });
        (Engine::new(EngineConfig::default(), handler), closed)
    }

    fn drain(session: &Session) -> Vec<EncodedPacket> {
        let mut packets = Vec::new();
        session.take_queued(&mut packets, usize::MAX);
        packets
    }

    #[tokio::test(start_paused = true)]
    async fn pings_and_closes_without_pong() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (engine, closed) = engine();
                let session = engine.open(TransportKind::Polling, LOCAL);
                let open = drain(&session);
                assert!(matches!(&open[0], EncodedPacket::Text(t) if t.starts_with("0{\"sid\":")));
                tokio::time::sleep(Duration::from_millis(24_999)).await;
                assert!(drain(&session).is_empty());
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert_eq!(drain(&session), vec![EncodedPacket::text("2")]);
                // Answer this ping: the session survives the next timeout.
                engine.receive(&session, Packet::Pong(""));
                // The next ping comes pingInterval after the pong (t = 50.001 s).
                tokio::time::sleep(Duration::from_millis(24_999)).await;
                assert!(drain(&session).is_empty());
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert_eq!(drain(&session), vec![EncodedPacket::text("2")]);
                assert_eq!(closed.get(), None);
                // Ignore the second ping: closed after pingTimeout, and removed.
                tokio::time::sleep(Duration::from_millis(19_998)).await;
                assert_eq!(closed.get(), None);
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert_eq!(closed.get(), Some(CloseReason::PingTimeout));
                tokio::task::yield_now().await;
                assert!(engine.is_empty());
            })
            .await;
    }

    #[tokio::test(start_paused = true)]
    async fn the_ping_clock_starts_at_the_handshake() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (engine, closed) = engine();
                let session = engine.open(TransportKind::Polling, LOCAL);
                drain(&session);
                // The heartbeat task first runs 10 ms after the handshake; its clock does not.
                tokio::time::advance(Duration::from_millis(10)).await;
                tokio::time::sleep(Duration::from_millis(24_991)).await;
                assert_eq!(drain(&session), vec![EncodedPacket::text("2")]);
                // Closed and gone exactly pingInterval + pingTimeout after the handshake.
                tokio::time::sleep(Duration::from_millis(19_998)).await;
                assert_eq!(closed.get(), None);
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert_eq!(closed.get(), Some(CloseReason::PingTimeout));
                tokio::task::yield_now().await;
                assert!(engine.is_empty());
            })
            .await;
    }

    #[tokio::test(start_paused = true)]
    async fn paused_intake_waits_for_the_application_but_not_for_ever() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (engine, _) = engine();
                let open = Rc::new(Cell::new(false));
                let flag = open.clone();
                engine.set_intake(move || flag.get());
                let start = Instant::now();
                engine.intake_open(start + INTAKE_MAX_PAUSE).await;
                assert!(start.elapsed() >= INTAKE_MAX_PAUSE);
                // Past its deadline, no wait.
                let later = Instant::now();
                engine.intake_open(start + INTAKE_MAX_PAUSE).await;
                assert_eq!(later.elapsed(), Duration::ZERO);
                // Reopened while two wait: both go on within the watcher's next look.
                let reopen = tokio::task::spawn_local(async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    open.set(true);
                });
                let waiting = Instant::now();
                let deadline = waiting + INTAKE_MAX_PAUSE;
                tokio::join!(engine.intake_open(deadline), engine.intake_open(deadline));
                assert!(waiting.elapsed() <= Duration::from_millis(102));
                reopen.await.unwrap();
                // Open: no wait.
                let now = Instant::now();
                engine.intake_open(now + INTAKE_MAX_PAUSE).await;
                assert_eq!(now.elapsed(), Duration::ZERO);
            })
            .await;
    }

    #[tokio::test(start_paused = true)]
    async fn abandoned_polling_session_is_reaped() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (engine, closed) = engine();
                for _ in 0..10 {
                    engine.open(TransportKind::Polling, LOCAL);
                }
                assert_eq!(engine.len(), 10);
                tokio::time::sleep(Duration::from_millis(45_001)).await;
                tokio::task::yield_now().await;
                assert_eq!(engine.len(), 0);
                assert_eq!(closed.get(), Some(CloseReason::PingTimeout));
            })
            .await;
    }

    #[tokio::test(start_paused = true)]
    async fn client_close_packet_ends_session() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (engine, closed) = engine();
                let session = engine.open(TransportKind::Polling, LOCAL);
                drain(&session);
                engine.receive(&session, Packet::Close);
                assert_eq!(closed.get(), Some(CloseReason::TransportClose));
                session.begin_get().unwrap_err();
                assert_eq!(session.poll(), PollReply::Noop);
                tokio::task::yield_now().await;
                assert!(engine.session(session.sid().as_str()).is_none());
            })
            .await;
    }
}
