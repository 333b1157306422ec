//! The server that the official protocol test suites expect, on the same engine as the chat.
//!
//! - `/engine.io/`: Engine.IO echo (every message comes back as it was sent).
//! - `/socket.io/`: namespaces `/` and `/custom`; on connect each emits `auth` with the
//!   handshake auth, answers `message` with `message-back` (same arguments, binary included)
//!   and acks `message-with-ack` with its arguments.
//! - `/autobahn`: a raw WebSocket echo on the same driver as the Engine.IO transport, for
//!   Autobahn|Testsuite (`make autobahn`); messages up to 16 MiB, as its section 9 sends.
//! - pingInterval 300 ms, pingTimeout 200 ms, connectTimeout 1000 ms, on localhost:3000
//!   (127.0.0.1 and ::1).
//!
//! Run: `cargo run --release --example conformance`, then the suites of
//! socketio/engine.io-protocol and socketio/socket.io-protocol (`test-suite/` in each).

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use emberchat::engineio::{
    self, CloseReason, EncodedPacket, Engine, EngineConfig, Message, Session, SessionHandler,
};
use emberchat::http::{self, Router};
use emberchat::socketio::{Event, NamespaceHandler, Refusal, Server, Socket, SocketIoConfig};
use emberchat::transport::websocket_echo;

/// Autobahn's section 9 sends messages of up to 16 MB.
const AUTOBAHN_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Engine.IO echo: each message goes back to its sender.
struct Echo;

struct EchoConnection {
    session: Rc<Session>,
}

impl engineio::Handler for Echo {
    fn on_open(&self, session: &Rc<Session>, _peer: std::net::IpAddr) -> Rc<dyn SessionHandler> {
        Rc::new(EchoConnection {
            session: session.clone(),
        })
    }
}

impl SessionHandler for EchoConnection {
    fn on_message(&self, message: Message<'_>) {
        match message {
            Message::Text(text) => self.session.send(EncodedPacket::text(format!("4{text}"))),
            Message::Binary(data) => self.session.send(EncodedPacket::Binary(data)),
        }
    }

    fn on_close(&self, _reason: CloseReason) {}
}

/// The Socket.IO behaviour the suite checks.
struct Conformance;

impl NamespaceHandler for Conformance {
    type Data = ();

    fn admit(&self, _auth: &str, _peer: std::net::IpAddr) -> Result<(), Refusal> {
        Ok(())
    }

    fn on_connect(self: &Rc<Self>, socket: &Rc<Socket<()>>, auth: &str) {
        // The suite reads the CONNECT reply and the `auth` event with two separate one-shot
        // listeners, so both must not arrive in one read: emit on a later turn of the loop,
        // after the transport has flushed the reply.
        let socket = socket.clone();
        let args = format!(",{auth}]");
        tokio::task::spawn_local(async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            socket.emit("auth", &args, &[]);
        });
    }

    fn on_event(self: &Rc<Self>, socket: &Rc<Socket<()>>, event: Event<'_>) {
        match event.name {
            "message" => socket.emit("message-back", event.args_tail, event.attachments),
            "message-with-ack" => {
                if let Some(ack) = event.ack {
                    let tail = event.args_tail.trim_start();
                    let args = match tail.strip_prefix(',') {
                        Some(rest) => format!("[{rest}"),
                        None => "[]".to_owned(),
                    };
                    socket.ack(ack, &args, event.attachments);
                }
            }
            _ => {}
        }
    }
}

fn main() {
    emberchat::logger::init(log::LevelFilter::Info);
    let engine_config = EngineConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    let socketio_config = SocketIoConfig {
        connect_timeout: Duration::from_millis(1000),
        // The suite expects a CONNECT reply with `sid` only.
        recovery_window: None,
        ..SocketIoConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let echo = Engine::new(engine_config.clone(), Rc::new(Echo));
        let mut server = Server::new(socketio_config);
        server.add_namespace("/", |_| Rc::new(Conformance));
        server.add_namespace("/custom", |_| Rc::new(Conformance));
        let socketio = Engine::new(engine_config, Rc::new(server));
        let router = Rc::new(
            Router::without_assets()
                .endpoint("/engine.io/", echo)
                .endpoint("/socket.io/", socketio)
                .raw(
                    "/autobahn",
                    Rc::new(|request| websocket_echo(request, AUTOBAHN_MAX_MESSAGE)),
                ),
        );
        let mut servers = Vec::new();
        for addr in ["127.0.0.1:3000", "[::1]:3000"] {
            let addr: SocketAddr = addr.parse().unwrap();
            match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => {
                    log::info!("conformance server on {addr}");
                    servers.push(tokio::task::spawn_local(http::serve(
                        listener,
                        router.clone(),
                        http::HttpLimits::default(),
                        std::future::pending::<()>(),
                    )));
                }
                Err(error) => log::warn!("cannot listen on {addr}: {error}"),
            }
        }
        assert!(!servers.is_empty(), "no address to listen on");
        let _ = tokio::signal::ctrl_c().await;
    });
}
