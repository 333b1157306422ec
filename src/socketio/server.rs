//! The Socket.IO server: one [`Client`] per Engine.IO session, sockets per namespace.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use bytes::Bytes;

use super::packet::{self, Packet, PacketType};
use super::recovery::Recovery;
use super::socket::Socket;
use crate::engineio::{self, CloseReason, Frame, Message, Session, Sid};
use crate::hub::Hub;
use crate::json;

/// Socket.IO settings; the defaults are socket.io's.
#[derive(Debug, Clone)]
pub struct SocketIoConfig {
    /// Close an Engine.IO session that joins no namespace within this time. Default 45 s.
    pub connect_timeout: Duration,
    /// Most binary attachments one packet may announce. Default 10.
    pub max_attachments: usize,
    /// Connection state recovery: how long a disconnected client may come back and resume
    /// its socket (socket.io's `maxDisconnectionDuration`). `None` disables it, and the
    /// CONNECT reply then carries no `pid`. Default 120 s.
    pub recovery_window: Option<Duration>,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        SocketIoConfig {
            connect_timeout: Duration::from_millis(45_000),
            max_attachments: 10,
            recovery_window: Some(Duration::from_secs(120)),
        }
    }
}

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

/// What an application does with one namespace.
pub trait NamespaceHandler {
    /// Decides whether a CONNECT with this `auth` object (`{}` when absent) may join; the
    /// error becomes the CONNECT_ERROR message.
    fn authorize(&self, _auth: &str) -> Result<(), String> {
        Ok(())
    }

    /// Whether a recovery offset sent by a client is one this application could have given
    /// out; recovery fails (the client gets a new session) when it is not.
    fn accepts_offset(&self, _offset: &str) -> bool {
        true
    }

    /// The socket joined (its CONNECT reply has been queued). When it resumed a disconnected
    /// socket, [`Socket::recovered_offset`] says where the client left off.
    fn on_connect(&self, socket: &Rc<Socket>, auth: &str);

    fn on_event(&self, socket: &Rc<Socket>, event: Event<'_>);

    /// The socket left; `reason` is socket.io's disconnect reason.
    fn on_disconnect(&self, _socket: &Rc<Socket>, _reason: &str) {}
}

/// A namespace: its handler and the hub of its connected sockets.
pub struct Namespace {
    name: String,
    handler: Rc<dyn NamespaceHandler>,
    hub: Hub,
}

impl Namespace {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }
}

struct Shared {
    namespaces: HashMap<String, Rc<Namespace>>,
    config: SocketIoConfig,
    recovery: Option<Recovery>,
}

/// The Socket.IO layer; give it to an [`engineio::Engine`] as its handler.
pub struct Server {
    shared: Rc<Shared>,
}

impl Server {
    pub fn new(config: SocketIoConfig) -> Server {
        Server {
            shared: Rc::new(Shared {
                namespaces: HashMap::new(),
                recovery: config.recovery_window.map(Recovery::new),
                config,
            }),
        }
    }

    /// Adds a namespace (before the server is handed to the engine).
    pub fn add_namespace(
        &mut self,
        name: &str,
        handler: Rc<dyn NamespaceHandler>,
    ) -> Rc<Namespace> {
        let namespace = Rc::new(Namespace {
            name: name.to_owned(),
            handler,
            hub: Hub::default(),
        });
        Rc::get_mut(&mut self.shared)
            .expect("namespaces are added before the server starts")
            .namespaces
            .insert(name.to_owned(), namespace.clone());
        namespace
    }
}

impl engineio::Handler for Server {
    fn on_open(&self, session: &Rc<Session>) -> Rc<dyn engineio::Connection> {
        let client = Rc::new_cyclic(|me| Client {
            shared: self.shared.clone(),
            session: session.clone(),
            me: me.clone(),
            sockets: RefCell::new(Vec::new()),
            partial: RefCell::new(None),
            connect_timer: RefCell::new(None),
        });
        let timer = tokio::task::spawn_local(connect_timeout(
            Rc::downgrade(&client),
            self.shared.config.connect_timeout,
        ));
        *client.connect_timer.borrow_mut() = Some(timer.abort_handle());
        client
    }
}

/// Closes a session that has not joined any namespace in time.
async fn connect_timeout(client: Weak<Client>, timeout: Duration) {
    tokio::time::sleep(timeout).await;
    if let Some(client) = client.upgrade() {
        if client.sockets.borrow().is_empty() && !client.session.is_closed() {
            log::debug!(
                "session {}: no CONNECT within {timeout:?}",
                client.session.sid()
            );
            client.session.close(CloseReason::Forced);
        }
    }
}

/// A binary packet waiting for its attachments.
struct Partial {
    text: String,
    attachments: Vec<Bytes>,
    expected: usize,
}

/// The Socket.IO side of one Engine.IO session.
pub struct Client {
    shared: Rc<Shared>,
    session: Rc<Session>,
    me: Weak<Client>,
    sockets: RefCell<Vec<Rc<Socket>>>,
    /// The connect-timeout task, stopped once a namespace is joined: otherwise every client
    /// would keep a task and a timer alive for connectTimeout (45 s) for nothing.
    connect_timer: RefCell<Option<tokio::task::AbortHandle>>,
    partial: RefCell<Option<Partial>>,
}

impl Client {
    fn socket(&self, nsp: &str) -> Option<Rc<Socket>> {
        self.sockets
            .borrow()
            .iter()
            .find(|s| s.namespace().name() == nsp)
            .cloned()
    }

    fn protocol_error(&self, what: &dyn std::fmt::Display) {
        log::info!("session {}: closing, {what}", self.session.sid());
        self.session.close(CloseReason::Forced);
    }

    fn handle(&self, packet: Packet<'_>, attachments: &[Bytes]) {
        match packet.kind {
            PacketType::Connect => self.connect(packet.nsp, packet.data.unwrap_or("{}")),
            PacketType::Disconnect => {
                if let Some(socket) = self.socket(packet.nsp) {
                    self.remove_socket(&socket, "client namespace disconnect");
                }
            }
            PacketType::Event | PacketType::BinaryEvent => {
                let Some(socket) = self.socket(packet.nsp) else {
                    return self.protocol_error(&"event for a namespace it has not joined");
                };
                let (Some(data), Some((name, args_tail))) = (packet.data, packet.event_parts())
                else {
                    return self.protocol_error(&"malformed event");
                };
                let event = Event {
                    name: &name,
                    data,
                    args_tail,
                    ack: packet.ack,
                    attachments,
                };
                let handler = socket.namespace().handler.clone();
                handler.on_event(&socket, event);
            }
            // The server sends no events that expect an ack, so there is nothing to resolve.
            PacketType::Ack | PacketType::BinaryAck => {
                if self.socket(packet.nsp).is_none() {
                    self.protocol_error(&"ack for a namespace it has not joined");
                }
            }
            PacketType::ConnectError => self.protocol_error(&"CONNECT_ERROR sent by a client"),
        }
    }

    fn connect(&self, nsp: &str, auth: &str) {
        let Some(namespace) = self.shared.namespaces.get(nsp).cloned() else {
            log::debug!("session {}: unknown namespace {nsp}", self.session.sid());
            return self.connect_error(nsp, "Invalid namespace");
        };
        if self.socket(nsp).is_some() {
            return self.protocol_error(&format_args!("second CONNECT to {nsp}"));
        }
        if let Err(message) = namespace.handler.authorize(auth) {
            return self.connect_error(nsp, &message);
        }
        let now = tokio::time::Instant::now();
        let recovered = self.recover(&namespace, auth, now);
        let recovery = self.shared.recovery.as_ref();
        let (sid, pid) = match &recovered {
            Some((sid, pid, _)) => (sid.clone(), Some(pid.clone())),
            None => (Sid::random(), recovery.map(|_| Sid::random())),
        };
        let socket = Rc::new(Socket::new(
            namespace.clone(),
            self.session.clone(),
            self.me.clone(),
            sid,
            pid,
        ));
        if let Some((_, _, offset)) = recovered {
            socket.set_recovered_offset(offset);
        }
        let mut reply = String::with_capacity(64);
        reply.push_str("{\"sid\":");
        json::write_string(&mut reply, socket.id());
        if let Some(pid) = socket.pid() {
            reply.push_str(",\"pid\":");
            json::write_string(&mut reply, pid);
        }
        reply.push('}');
        let text = packet::encode(PacketType::Connect, nsp, None, Some(&reply), 0);
        self.session.send(Frame::text(text));
        socket.set_connected(true);
        socket.slot.set(namespace.hub.insert(socket.clone()));
        self.sockets.borrow_mut().push(socket.clone());
        if let Some(timer) = self.connect_timer.borrow_mut().take() {
            timer.abort();
        }
        if let Some(recovery) = recovery {
            recovery.connected(&socket, now);
        }
        namespace.handler.on_connect(&socket, auth);
    }

    /// Tries to resume a disconnected socket from the `pid` and `offset` the client merged
    /// into its CONNECT auth. Returns the old socket id, the pid and the offset on success.
    fn recover(
        &self,
        namespace: &Namespace,
        auth: &str,
        now: tokio::time::Instant,
    ) -> Option<(Sid, Sid, String)> {
        let recovery = self.shared.recovery.as_ref()?;
        let pid = json::object_get(auth, "pid").filter(|v| json::kind(v) == json::Kind::String)?;
        let pid = json::unescape(pid).ok()?;
        let offset =
            json::object_get(auth, "offset").filter(|v| json::kind(v) == json::Kind::String)?;
        let offset = json::unescape(offset).ok()?.into_owned();
        if !namespace.handler.accepts_offset(&offset) {
            log::debug!(
                "session {}: recovery offset {offset:?} refused",
                self.session.sid()
            );
            return None;
        }
        // The old transport may not have noticed yet that the client is gone: close it, which
        // turns its socket into a recoverable disconnection. It is told it was disconnected by
        // the server, so a client still using it does not reconnect and take the pid back.
        if let Some(stale) = recovery.live_socket(&pid, namespace.name()) {
            log::debug!(
                "socket {}: closing its stale session for recovery",
                stale.id()
            );
            let text = packet::encode(PacketType::Disconnect, namespace.name(), None, None, 0);
            stale.session().send(Frame::text(text));
            stale.session().close(CloseReason::Forced);
        }
        let sid = recovery.take(&pid, namespace.name(), now)?;
        log::debug!("socket {sid}: recovered from offset {offset}");
        Some((sid, Sid::parse(&pid)?, offset))
    }

    fn connect_error(&self, nsp: &str, message: &str) {
        let mut data = String::from("{\"message\":");
        json::write_string(&mut data, message);
        data.push('}');
        let text = packet::encode(PacketType::ConnectError, nsp, None, Some(&data), 0);
        self.session.send(Frame::text(text));
    }

    /// Takes a socket out of its namespace and tells the application.
    pub(crate) fn remove_socket(&self, socket: &Rc<Socket>, reason: &str) {
        self.sockets.borrow_mut().retain(|s| !Rc::ptr_eq(s, socket));
        socket.set_connected(false);
        let namespace = socket.namespace().clone();
        namespace.hub.remove(socket.slot.get());
        if let Some(recovery) = &self.shared.recovery {
            recovery.disconnected(socket, reason, tokio::time::Instant::now());
        }
        namespace.handler.on_disconnect(socket, reason);
    }

    fn on_text(&self, text: &str) {
        if self.partial.borrow().is_some() {
            return self.protocol_error(&"text packet while attachments were pending");
        }
        let max_attachments = self.shared.config.max_attachments;
        match packet::decode(text, max_attachments) {
            Ok(packet) if packet.attachments > 0 => {
                *self.partial.borrow_mut() = Some(Partial {
                    text: text.to_owned(),
                    attachments: Vec::with_capacity(packet.attachments),
                    expected: packet.attachments,
                });
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

impl engineio::Connection for Client {
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
        let sockets = std::mem::take(&mut *self.sockets.borrow_mut());
        for socket in sockets {
            self.remove_socket(&socket, reason.as_str());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::{Engine, EngineConfig, TransportKind};

    struct Quiet;

    impl NamespaceHandler for Quiet {
        fn on_connect(&self, _: &Rc<Socket>, _: &str) {}
        fn on_event(&self, _: &Rc<Socket>, _: Event<'_>) {}
    }

    fn frames(session: &Session) -> Vec<Frame> {
        let mut frames = Vec::new();
        session.take_queued(&mut frames);
        frames
    }

    #[tokio::test(start_paused = true)]
    async fn closes_sessions_that_join_no_namespace() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut server = Server::new(SocketIoConfig::default());
                let namespace = server.add_namespace("/", Rc::new(Quiet));
                // Heartbeats far away, so only the connect timeout can close anything.
                let config = EngineConfig {
                    ping_interval: Duration::from_secs(3600),
                    ..EngineConfig::default()
                };
                let engine = Engine::new(config, Rc::new(server));
                let idle = engine.open(TransportKind::Polling);
                let joined = engine.open(TransportKind::Polling);
                engine.receive(&joined, engineio::packet::Packet::Message("0"));
                assert_eq!(namespace.hub().len(), 1);
                frames(&idle);
                tokio::time::sleep(Duration::from_millis(44_999)).await;
                assert!(!idle.is_closed());
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert_eq!(idle.close_reason(), Some(CloseReason::Forced));
                assert_eq!(frames(&idle), vec![Frame::text("1")]);
                assert!(!joined.is_closed());
            })
            .await;
    }

    #[tokio::test]
    async fn binary_event_waits_for_its_attachments() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                struct Echo;
                impl NamespaceHandler for Echo {
                    fn on_connect(&self, _: &Rc<Socket>, _: &str) {}
                    fn on_event(&self, socket: &Rc<Socket>, event: Event<'_>) {
                        socket.emit(event.name, event.args_tail, event.attachments);
                    }
                }
                let mut server = Server::new(SocketIoConfig::default());
                server.add_namespace("/", Rc::new(Echo));
                let engine = Engine::new(EngineConfig::default(), Rc::new(server));
                let session = engine.open(TransportKind::WebSocket);
                engine.receive(&session, engineio::packet::Packet::Message("0"));
                frames(&session);
                let header = "51-[\"bin\",{\"_placeholder\":true,\"num\":0}]";
                engine.receive(&session, engineio::packet::Packet::Message(header));
                assert!(frames(&session).is_empty());
                let data = Bytes::from_static(&[1, 2, 3]);
                engine.receive(&session, engineio::packet::Packet::Binary(data.clone()));
                assert_eq!(
                    frames(&session),
                    vec![Frame::text(format!("4{header}")), Frame::Binary(data)]
                );
                // A binary message nobody announced is a protocol error.
                engine.receive(&session, engineio::packet::Packet::Binary(Bytes::new()));
                assert_eq!(session.close_reason(), Some(CloseReason::Forced));
            })
            .await;
    }

    /// A session joined to `/` with `auth`; returns it with the CONNECT reply's JSON.
    fn join(engine: &Rc<Engine>, auth: &str) -> (Rc<Session>, String) {
        let session = engine.open(TransportKind::WebSocket);
        frames(&session);
        let connect = format!("0{auth}");
        engine.receive(&session, engineio::packet::Packet::Message(&connect));
        let reply = frames(&session)
            .into_iter()
            .find_map(|f| match f {
                Frame::Text(t) if t.starts_with("40") => Some(t.as_str()[2..].to_owned()),
                _ => None,
            })
            .expect("CONNECT reply");
        (session, reply)
    }

    fn field<'a>(reply: &'a str, name: &str) -> &'a str {
        let raw = json::object_get(reply, name).expect(name);
        raw.trim_matches('"')
    }

    struct Recorder(RefCell<Vec<(String, bool)>>);

    impl NamespaceHandler for Recorder {
        fn on_connect(&self, socket: &Rc<Socket>, _: &str) {
            self.0
                .borrow_mut()
                .push((socket.id().to_owned(), socket.recovered()));
        }
        fn on_event(&self, _: &Rc<Socket>, _: Event<'_>) {}
    }

    fn recovering_engine(window: Duration) -> (Rc<Engine>, Rc<Recorder>) {
        let recorder = Rc::new(Recorder(RefCell::new(Vec::new())));
        let mut server = Server::new(SocketIoConfig {
            recovery_window: Some(window),
            ..SocketIoConfig::default()
        });
        server.add_namespace("/", recorder.clone());
        let config = EngineConfig {
            ping_interval: Duration::from_secs(3600),
            ..EngineConfig::default()
        };
        (Engine::new(config, Rc::new(server)), recorder)
    }

    #[tokio::test(start_paused = true)]
    async fn recovers_within_the_window_only() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (engine, recorder) = recovering_engine(Duration::from_secs(120));
                let (first, reply) = join(&engine, "");
                let (sid, pid) = (
                    field(&reply, "sid").to_owned(),
                    field(&reply, "pid").to_owned(),
                );
                first.close(CloseReason::TransportClose);
                tokio::time::sleep(Duration::from_secs(119)).await;
                let auth = format!("{{\"pid\":\"{pid}\",\"offset\":\"5\"}}");
                let (_second, reply) = join(&engine, &auth);
                assert_eq!(field(&reply, "sid"), sid);
                assert_eq!(field(&reply, "pid"), pid);
                assert_eq!(recorder.0.borrow().last(), Some(&(sid.clone(), true)));

                // Past the window: a new socket.
                let (fourth, reply) = join(&engine, "");
                let pid = field(&reply, "pid").to_owned();
                fourth.close(CloseReason::PingTimeout);
                tokio::time::sleep(Duration::from_millis(120_001)).await;
                let auth = format!("{{\"pid\":\"{pid}\",\"offset\":\"5\"}}");
                let (_fifth, reply) = join(&engine, &auth);
                assert_ne!(field(&reply, "pid"), pid);
                assert!(!recorder.0.borrow().last().unwrap().1);
            })
            .await;
    }

    #[tokio::test(start_paused = true)]
    async fn manual_disconnect_is_not_recoverable() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (engine, _) = recovering_engine(Duration::from_secs(120));
                let (session, reply) = join(&engine, "");
                let (sid, pid) = (
                    field(&reply, "sid").to_owned(),
                    field(&reply, "pid").to_owned(),
                );
                engine.receive(&session, engineio::packet::Packet::Message("1"));
                session.close(CloseReason::TransportClose);
                let auth = format!("{{\"pid\":\"{pid}\",\"offset\":\"1\"}}");
                let (_again, reply) = join(&engine, &auth);
                assert_ne!(field(&reply, "sid"), sid);
            })
            .await;
    }

    #[tokio::test(start_paused = true)]
    async fn recovery_closes_the_stale_session_of_the_same_pid() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let (engine, _) = recovering_engine(Duration::from_secs(120));
                let (stale, reply) = join(&engine, "");
                let (sid, pid) = (
                    field(&reply, "sid").to_owned(),
                    field(&reply, "pid").to_owned(),
                );
                let auth = format!("{{\"pid\":\"{pid}\",\"offset\":\"3\"}}");
                let (_fresh, reply) = join(&engine, &auth);
                assert_eq!(field(&reply, "sid"), sid);
                assert_eq!(stale.close_reason(), Some(CloseReason::Forced));
                // Told it was disconnected, so it does not reconnect and take the pid back.
                assert_eq!(frames(&stale), vec![Frame::text("41")]);
                // Garbage in the handshake never recovers anything.
                for auth in [
                    "{\"pid\":1,\"offset\":\"3\"}",
                    "{\"pid\":\"x\"}",
                    "{\"offset\":\"3\"}",
                ] {
                    let (_s, reply) = join(&engine, auth);
                    assert_ne!(field(&reply, "sid"), sid);
                }
            })
            .await;
    }

    #[tokio::test]
    async fn ordered_broadcasts_skip_held_and_already_delivered_sockets() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut server = Server::new(SocketIoConfig::default());
                let namespace = server.add_namespace("/", Rc::new(Quiet));
                let engine = Engine::new(EngineConfig::default(), Rc::new(server));
                let (session, _) = join(&engine, "");
                let socket = namespace.hub().sockets().pop().unwrap();
                let frame = |n: i64| Frame::text(format!("42[\"n\",{n}]"));
                // Caught up to 5 by a replay: 5 is not sent again, 6 is, once.
                socket.go_live(5);
                for n in [4, 5, 6, 6] {
                    namespace.hub().broadcast_ordered(&frame(n), n);
                }
                assert_eq!(frames(&session), vec![frame(6)]);
                // Held while replaying: nothing live gets through.
                socket.hold_broadcasts();
                namespace.hub().broadcast_ordered(&frame(7), 7);
                assert!(frames(&session).is_empty());
                socket.go_live(7);
                namespace.hub().broadcast_ordered(&frame(7), 7);
                namespace.hub().broadcast_ordered(&frame(8), 8);
                assert_eq!(frames(&session), vec![frame(8)]);
            })
            .await;
    }
}
