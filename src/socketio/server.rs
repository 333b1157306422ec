//! The Socket.IO server: the namespaces an Engine.IO endpoint serves.

use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;

use super::client::{Client, Shared};
use super::config::SocketIoConfig;
use super::hub::Hub;
use super::namespace::{Namespace, NamespaceHandler};
use super::recovery::Recovery;
use super::shared_sessions::SharedSessions;
use crate::engineio::{self, Session, SessionHandler};

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
                sessions: None,
                config,
            }),
        }
    }

    /// Serves namespace `name` (before the server is handed to the engine) with the handler
    /// that `make` builds from the namespace's hub, which it keeps to broadcast; returns the
    /// handler.
    pub fn add_namespace<H: NamespaceHandler>(
        &mut self,
        name: &str,
        make: impl FnOnce(Rc<Hub<H::Data>>) -> Rc<H>,
    ) -> Rc<H> {
        let namespace = Namespace::new(name, make);
        let handler = namespace.handler().clone();
        Rc::get_mut(&mut self.shared)
            .expect("namespaces are added before the server starts")
            .namespaces
            .insert(name.to_owned(), Rc::new(namespace));
        handler
    }
}

impl Server {
    /// Keeps recovery records in `sessions` too (before the server is handed to the engine),
    /// so that clients recover across servers.
    pub fn share_sessions(&mut self, sessions: Rc<dyn SharedSessions>) {
        Rc::get_mut(&mut self.shared)
            .expect("sessions are shared before the server starts")
            .sessions = Some(sessions);
    }
}

impl engineio::Handler for Server {
    fn on_open(&self, session: &Rc<Session>, peer: IpAddr) -> Rc<dyn SessionHandler> {
        Client::open(self.shared.clone(), session, peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engineio::{CloseReason, EncodedPacket, Engine, EngineConfig, TransportKind};
    use crate::json;
    use crate::socketio::event::{Event, Refusal};
    use crate::socketio::socket::Socket;
    use bytes::Bytes;
    use std::cell::RefCell;
    use std::net::IpAddr;
    use std::time::Duration;

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    /// Keeps its namespace's hub, does nothing else.
    struct Quiet(Rc<Hub<()>>);

    impl NamespaceHandler for Quiet {
        type Data = ();
        fn admit(&self, _: &str, _: IpAddr) -> Result<(), Refusal> {
            Ok(())
        }
        fn on_connect(self: &Rc<Self>, _: &Rc<Socket<()>>, _: &str) {}
        fn on_event(self: &Rc<Self>, _: &Rc<Socket<()>>, _: Event<'_>) {}
    }

    /// A binary event announcing two attachments.
    const TWO_ATTACHMENTS: &str =
        "52-[\"bin\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";

    fn packets(session: &Session) -> Vec<EncodedPacket> {
        let mut packets = Vec::new();
        session.take_queued(&mut packets, usize::MAX);
        packets
    }

    #[tokio::test(start_paused = true)]
    async fn closes_sessions_that_join_no_namespace() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut server = Server::new(SocketIoConfig::default());
                let quiet = server.add_namespace("/", |hub| Rc::new(Quiet(hub)));
                // Heartbeats far away, so only the connect timeout can close anything.
                let config = EngineConfig {
                    ping_interval: Duration::from_secs(3600),
                    ..EngineConfig::default()
                };
                let engine = Engine::new(config, Rc::new(server));
                let idle = engine.open(TransportKind::Polling, LOCAL);
                let joined = engine.open(TransportKind::Polling, LOCAL);
                engine.receive(&joined, engineio::packet::Packet::Message("0"));
                assert_eq!(quiet.0.len(), 1);
                packets(&idle);
                tokio::time::sleep(Duration::from_millis(44_999)).await;
                assert!(!idle.is_closed());
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert_eq!(idle.close_reason(), Some(CloseReason::Forced));
                assert_eq!(packets(&idle), vec![EncodedPacket::text("1")]);
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
                    type Data = ();
                    fn admit(&self, _: &str, _: IpAddr) -> Result<(), Refusal> {
                        Ok(())
                    }
                    fn on_connect(self: &Rc<Self>, _: &Rc<Socket<()>>, _: &str) {}
                    fn on_event(self: &Rc<Self>, socket: &Rc<Socket<()>>, event: Event<'_>) {
                        socket.emit(event.name, event.args_tail, event.attachments);
                    }
                }
                let mut server = Server::new(SocketIoConfig::default());
                server.add_namespace("/", |_| Rc::new(Echo));
                let engine = Engine::new(EngineConfig::default(), Rc::new(server));
                let session = engine.open(TransportKind::WebSocket, LOCAL);
                engine.receive(&session, engineio::packet::Packet::Message("0"));
                packets(&session);
                let header = "51-[\"bin\",{\"_placeholder\":true,\"num\":0}]";
                engine.receive(&session, engineio::packet::Packet::Message(header));
                assert!(packets(&session).is_empty());
                let data = Bytes::from_static(&[1, 2, 3]);
                engine.receive(&session, engineio::packet::Packet::Binary(data.clone()));
                assert_eq!(
                    packets(&session),
                    vec![
                        EncodedPacket::text(format!("4{header}")),
                        EncodedPacket::Binary(data)
                    ]
                );
                // A binary message nobody announced is a protocol error.
                engine.receive(&session, engineio::packet::Packet::Binary(Bytes::new()));
                assert_eq!(session.close_reason(), Some(CloseReason::Forced));
            })
            .await;
    }

    #[tokio::test(start_paused = true)]
    async fn pending_attachments_are_bounded_in_namespace_bytes_and_time() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut server = Server::new(SocketIoConfig {
                    max_attachment_bytes: 100,
                    ..SocketIoConfig::default()
                });
                server.add_namespace("/", |hub| Rc::new(Quiet(hub)));
                let config = EngineConfig {
                    ping_interval: Duration::from_secs(3600),
                    ..EngineConfig::default()
                };
                let engine = Engine::new(config, Rc::new(server));
                let header = TWO_ATTACHMENTS;
                let binary = |len| engineio::packet::Packet::Binary(Bytes::from(vec![7u8; len]));

                // Before CONNECT, a session may not make the server hold attachments.
                let early = engine.open(TransportKind::WebSocket, LOCAL);
                engine.receive(&early, engineio::packet::Packet::Message(header));
                assert_eq!(early.close_reason(), Some(CloseReason::Forced));

                // Joined: the text and the attachments together stay under the limit.
                let (large, _) = join(&engine, "");
                engine.receive(&large, engineio::packet::Packet::Message(header));
                engine.receive(&large, binary(10));
                assert!(!large.is_closed());
                engine.receive(&large, binary(100 - header.len()));
                assert_eq!(large.close_reason(), Some(CloseReason::Forced));

                // The last attachment must come within the attachment timeout.
                let (slow, _) = join(&engine, "");
                engine.receive(&slow, engineio::packet::Packet::Message(header));
                engine.receive(&slow, binary(1));
                tokio::time::sleep(Duration::from_millis(9_999)).await;
                assert!(!slow.is_closed());
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert_eq!(slow.close_reason(), Some(CloseReason::Forced));

                // A packet completed in time keeps its session open past the deadline.
                let (prompt, _) = join(&engine, "");
                engine.receive(&prompt, engineio::packet::Packet::Message(header));
                engine.receive(&prompt, binary(1));
                engine.receive(&prompt, binary(1));
                tokio::time::sleep(Duration::from_secs(20)).await;
                assert!(!prompt.is_closed());
            })
            .await;
    }

    #[tokio::test]
    async fn pending_attachments_draw_on_the_inbound_budget() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                let mut server = Server::new(SocketIoConfig::default());
                server.add_namespace("/", |hub| Rc::new(Quiet(hub)));
                let config = EngineConfig {
                    inbound_memory: 1000,
                    ..EngineConfig::default()
                };
                let engine = Engine::new(config, Rc::new(server));
                let header = TWO_ATTACHMENTS;
                let binary = |len| engineio::packet::Packet::Binary(Bytes::from(vec![7u8; len]));
                let (first, _) = join(&engine, "");
                engine.receive(&first, engineio::packet::Packet::Message(header));
                engine.receive(&first, binary(600));
                let (second, _) = join(&engine, "");
                engine.receive(&second, engineio::packet::Packet::Message(header));
                // 600 + 400 and both headers: over the 1000 bytes all sessions share.
                engine.receive(&second, binary(400));
                assert_eq!(second.close_reason(), Some(CloseReason::TransportError));
                assert!(!first.is_closed());
                // The first one's packet completes and gives its share back.
                engine.receive(&first, binary(10));
                assert_eq!(engine.inbound_bytes(), 0);
            })
            .await;
    }

    #[tokio::test]
    async fn a_session_is_closed_after_three_refused_connects() {
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async {
                struct Closed;
                impl NamespaceHandler for Closed {
                    type Data = ();
                    fn admit(&self, _: &str, _: IpAddr) -> Result<(), Refusal> {
                        Err(Refusal::new("no"))
                    }
                    fn on_connect(self: &Rc<Self>, _: &Rc<Socket<()>>, _: &str) {}
                    fn on_event(self: &Rc<Self>, _: &Rc<Socket<()>>, _: Event<'_>) {}
                }
                let mut server = Server::new(SocketIoConfig::default());
                server.add_namespace("/", |_| Rc::new(Closed));
                let engine = Engine::new(EngineConfig::default(), Rc::new(server));
                let session = engine.open(TransportKind::WebSocket, LOCAL);
                packets(&session);
                for attempt in 1..=3 {
                    assert!(!session.is_closed(), "closed before attempt {attempt}");
                    engine.receive(&session, engineio::packet::Packet::Message("0"));
                }
                assert_eq!(session.close_reason(), Some(CloseReason::Forced));
                let refusals = packets(&session)
                    .iter()
                    .filter(|p| matches!(p, EncodedPacket::Text(t) if t.starts_with("44{")))
                    .count();
                assert_eq!(refusals, 3, "every attempt is answered before the close");
            })
            .await;
    }

    /// A session joined to `/` with `auth`; returns it with the CONNECT reply's JSON.
    fn join(engine: &Rc<Engine>, auth: &str) -> (Rc<Session>, String) {
        let session = engine.open(TransportKind::WebSocket, LOCAL);
        packets(&session);
        let connect = format!("0{auth}");
        engine.receive(&session, engineio::packet::Packet::Message(&connect));
        let reply = packets(&session)
            .into_iter()
            .find_map(|f| match f {
                EncodedPacket::Text(t) if t.starts_with("40") => Some(t.as_str()[2..].to_owned()),
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
        type Data = ();
        fn admit(&self, _: &str, _: IpAddr) -> Result<(), Refusal> {
            Ok(())
        }
        fn on_connect(self: &Rc<Self>, socket: &Rc<Socket<()>>, _: &str) {
            self.0
                .borrow_mut()
                .push((socket.id().to_string(), socket.recovered()));
        }
        fn on_event(self: &Rc<Self>, _: &Rc<Socket<()>>, _: Event<'_>) {}
    }

    fn recovering_engine(window: Duration) -> (Rc<Engine>, Rc<Recorder>) {
        let recorder = Rc::new(Recorder(RefCell::new(Vec::new())));
        let mut server = Server::new(SocketIoConfig {
            recovery_window: Some(window),
            ..SocketIoConfig::default()
        });
        server.add_namespace("/", |_| recorder.clone());
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
                assert_eq!(packets(&stale), vec![EncodedPacket::text("41")]);
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
                let quiet = server.add_namespace("/", |hub| Rc::new(Quiet(hub)));
                let hub = &quiet.0;
                let engine = Engine::new(EngineConfig::default(), Rc::new(server));
                let (session, _) = join(&engine, "");
                let socket = hub.sockets().pop().unwrap();
                let packet = |n: i64| EncodedPacket::text(format!("42[\"n\",{n}]"));
                let broadcast = |n: i64| {
                    let form = hub.encode_event("n", 8, |args| {
                        args.int(n);
                    });
                    hub.broadcast_ordered(n, &[form], |_| 0)
                };
                // Caught up to 5 by a replay: 5 is not sent again, 6 is, once.
                socket.go_live(5);
                for n in [4, 5, 6, 6] {
                    broadcast(n);
                }
                assert_eq!(packets(&session), vec![packet(6)]);
                // Held while replaying: nothing live gets through.
                socket.hold_broadcasts();
                broadcast(7);
                assert!(packets(&session).is_empty());
                socket.go_live(7);
                broadcast(7);
                broadcast(8);
                assert_eq!(packets(&session), vec![packet(8)]);
                // A socket that left gets nothing, and the hub forgets it.
                engine.receive(&session, engineio::packet::Packet::Message("1"));
                assert_eq!(hub.len(), 0);
                broadcast(9);
                assert!(packets(&session).is_empty());
            })
            .await;
    }
}
