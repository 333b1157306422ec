//! emberchat: a small Socket.IO chat gateway for single-board computers.
//!
//! # Layout
//! - [`json`]: a bounded JSON scanner; Socket.IO payloads stay raw text.
//! - [`engineio`]: Engine.IO v4 codecs, session state and heartbeat (no sockets).
//! - [`socketio`]: Socket.IO v5 codec, namespaces, sockets and acks (no sockets).
//! - [`transport`]: long-polling and WebSocket, moving bytes between sockets and sessions.
//! - [`http`]: accept loop, routing, embedded files ([`assets`]).
//! - [`hub`]: a namespace's sockets and broadcast.
//! - [`store`]: SQLite on its own thread, group commit.
//! - [`chat`]: the application: store, broadcast in id order, ack.
//! - [`config`], [`logger`]: start-up settings and log output.

pub mod assets;
pub mod chat;
pub mod config;
pub mod engineio;
pub mod http;
pub mod hub;
pub mod json;
pub mod logger;
pub mod random;
pub mod socketio;
pub mod store;
pub mod transport;

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::chat::Chat;
use crate::config::Config;
use crate::engineio::{CloseReason, Engine};
use crate::http::Router;
use crate::socketio::Server;
use crate::store::{Store, StoreConfig, StoreError};

/// How long transports get to flush their close packets when the gateway stops.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Runs the chat gateway on `listener` until `shutdown` completes, then closes every session
/// (a reason clients may recover from), finishes pending commits and checkpoints the WAL.
/// Must run inside a `tokio::task::LocalSet` on a current-thread runtime.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StoreError> {
    let mut store_config = StoreConfig::new(&config.db);
    store_config.synchronous = config.synchronous;
    let (store, results) = Store::open(store_config)?;
    let chat = Chat::new(config.chat.clone(), store);
    let mut server = Server::new(config.socketio.clone());
    let namespace = server.add_namespace("/", chat.clone());
    chat.attach(namespace);
    let engine = Engine::new(config.engine.clone(), Rc::new(server));
    let router = Rc::new(Router::new().endpoint("/socket.io/", engine.clone()));
    let commits = tokio::task::spawn_local(chat.clone().run_commits(results));

    if !assets::has_client_bundle() {
        log::warn!(
            "this build has no Socket.IO client bundle: the page cannot connect (see README)"
        );
    }
    log::info!(
        "emberchat {} listening on http://{}, database {}",
        env!("CARGO_PKG_VERSION"),
        listener
            .local_addr()
            .map_or_else(|_| "?".into(), |a| a.to_string()),
        config.db.display()
    );
    http::serve(listener, router, shutdown).await;

    log::info!("shutting down");
    engine.close_all(CloseReason::ServerShutdown);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while !engine.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    commits.abort();
    let _ = commits.await;
    chat.close_store();
    Ok(())
}
