//! The chat gateway put together: the store, the chat on Socket.IO's main namespace, the
//! Engine.IO endpoint and the HTTP front, run until shutdown.

use std::fmt::Write as _;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::assets;
use crate::chat::{Chat, MessageLog};
#[cfg(feature = "redis")]
use crate::cluster::{StreamLog, StreamSettings};
use crate::config::Config;
#[cfg(feature = "redis")]
use crate::engineio::Sid;
use crate::engineio::{CloseReason, Engine};
use crate::host::HostAllowList;
use crate::http::{self, HealthCheck, Router, Status, Unhealthy};
use crate::socketio::Server;
#[cfg(feature = "redis")]
use crate::socketio::SharedSessions;
use crate::store::{OpenError, Store, StoreConfig, StoreError};

/// Recovery records in Redis, for the Socket.IO layer (cluster mode).
#[cfg(feature = "redis")]
struct SharedRecords(crate::cluster::SessionRecords);

#[cfg(feature = "redis")]
impl SharedSessions for SharedRecords {
    fn save(&self, pid: &Sid, sid: &Sid, window: Duration) {
        self.0.save(pid.as_str(), sid.as_str(), window);
    }

    fn forget(&self, pid: &Sid) {
        self.0.forget(pid.as_str());
    }

    fn take(&self, pid: &Sid) -> std::pin::Pin<Box<dyn Future<Output = Option<Sid>>>> {
        let records = self.0.clone();
        let pid = pid.as_str().to_owned();
        Box::pin(async move { Sid::parse(&records.take(&pid).await?) })
    }
}

/// What the shared stream's tail sends the chat (cluster mode; nothing in a build without it).
#[cfg(feature = "redis")]
type TailEvents = tokio::sync::mpsc::UnboundedReceiver<crate::cluster::TailEvent>;
#[cfg(not(feature = "redis"))]
type TailEvents = std::convert::Infallible;

#[cfg(feature = "redis")]
/// How long a client offset is remembered in cluster mode, so that a retry within it is
/// stored once (clients retry within seconds or minutes; a day covers a laptop's sleep).
const OFFSET_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// How long transports get to flush their close packets when the gateway stops.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// Moments of the gateway's life that a service manager wants to hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// The database is open and the listener accepts connections.
    Ready,
    /// Shutting down: no new connections, sessions being closed.
    Stopping,
}

/// Runs the chat gateway on `listener` until `shutdown` completes, then closes every session
/// (a reason clients may recover from), finishes pending commits and checkpoints the WAL.
/// `lifecycle` hears when it is ready and when it stops. Must run inside a
/// `tokio::task::LocalSet` on a current-thread runtime.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
    lifecycle: impl Fn(Lifecycle),
) -> Result<(), OpenError> {
    #[cfg(feature = "redis")]
    let mut sessions: Option<Rc<dyn SharedSessions>> = None;
    let (messages, results, tail) = match &config.redis {
        None => {
            let mut store_config = StoreConfig::new(&config.db);
            store_config.synchronous = config.synchronous;
            store_config.retention = config.retention;
            store_config.min_free_space = config.min_free_space;
            let (store, results) = Store::open(store_config)?;
            (MessageLog::new(store), results, None::<TailEvents>)
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => unreachable!("config::validate refuses --redis without the redis feature"),
        #[cfg(feature = "redis")]
        Some(address) => {
            let (stream, results, events) = StreamLog::start(StreamSettings {
                address: address.clone(),
                stream: config.redis_stream.clone(),
                max_len: config.redis_max_len,
                offset_lifetime: OFFSET_LIFETIME,
                max_message_bytes: config.chat.max_message_bytes,
                wait_replicas: config.redis_wait_replicas,
                wait_timeout: config.redis_wait_timeout,
            });
            if config.socketio.recovery_window.is_some() {
                sessions = Some(Rc::new(SharedRecords(stream.session_records())));
            }
            (MessageLog::shared(stream), results, Some(events))
        }
    };
    let mut server = Server::new(config.socketio.clone());
    #[cfg(feature = "redis")]
    if let Some(sessions) = sessions {
        server.share_sessions(sessions);
    }
    let chat = server.add_namespace("/", |hub| Chat::new(config.chat.clone(), messages, hub));
    let engine = Engine::new(config.engine.clone(), Rc::new(server));
    let intake = chat.clone();
    engine.set_intake(move || intake.accepting());
    let status = Rc::new(GatewayStatus {
        engine: engine.clone(),
        chat: chat.clone(),
    });
    let router = Rc::new(
        Router::new()
            .endpoint("/socket.io/", engine.clone())
            .status(status)
            .hosts(HostAllowList::new(&config.allowed_hosts)),
    );
    let commits = tokio::task::spawn_local(chat.clone().run_commits(results));
    #[cfg(feature = "redis")]
    let tail = tail.map(|events| tokio::task::spawn_local(chat.clone().run_tail(events)));
    #[cfg(not(feature = "redis"))]
    let tail: Option<tokio::task::JoinHandle<()>> = tail.map(|never| match never {});

    match assets::client_bundle_version() {
        Some(version) => log::debug!("serving the Socket.IO client {version}"),
        None => log::warn!(
            "this build has no Socket.IO client bundle: the page cannot connect (see README)"
        ),
    }
    let kept_in = match &config.redis {
        None => format!("database {}", config.db.display()),
        Some(address) => format!("shared log {address}, stream {}", config.redis_stream),
    };
    log::info!(
        "emberchat {} listening on http://{}, {kept_in}",
        env!("CARGO_PKG_VERSION"),
        listener
            .local_addr()
            .map_or_else(|_| "?".into(), |a| a.to_string()),
    );
    // The listener is bound and accepting (the kernel queues connections from now on).
    lifecycle(Lifecycle::Ready);
    http::serve(listener, router, config.http, shutdown).await;

    log::info!("shutting down");
    lifecycle(Lifecycle::Stopping);
    engine.close_all(CloseReason::ServerShutdown);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while !engine.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    commits.abort();
    let _ = commits.await;
    if let Some(tail) = tail {
        tail.abort();
        let _ = tail.await;
    }
    chat.close_store();
    Ok(())
}

/// What `/healthz` and `/metrics` report for the chat gateway.
struct GatewayStatus {
    engine: Rc<Engine>,
    chat: Rc<Chat>,
}

impl Status for GatewayStatus {
    fn health(&self) -> HealthCheck {
        let check = self.chat.check_store();
        Box::pin(async move {
            check.await.map_err(|error| Unhealthy {
                reason: match error {
                    StoreError::LowSpace { .. } => {
                        "the database's disk has less free space than --min-free-space"
                    }
                    StoreError::Redis(_) => "the shared log (Redis) cannot be reached",
                    _ => "the database cannot be read",
                },
                detail: error.into(),
            })
        })
    }

    fn metrics(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "emberchat_sessions",
            "gauge",
            "Engine.IO sessions open.",
            self.engine.len().to_string(),
        );
        metric(
            "emberchat_connected_clients",
            "gauge",
            "Sockets connected to the chat namespace.",
            self.chat.connected().to_string(),
        );
        metric(
            "emberchat_messages_stored_total",
            "counter",
            "Chat messages stored since start.",
            self.chat.metrics().messages_stored().to_string(),
        );
        metric(
            "emberchat_last_message_id",
            "gauge",
            "Highest message id in the database.",
            self.chat.last_id().to_string(),
        );
        let (oldest, pruned) = self.chat.retention();
        metric(
            "emberchat_oldest_message_id",
            "gauge",
            "Lowest message id still in the database (0 when empty).",
            oldest.to_string(),
        );
        metric(
            "emberchat_messages_pruned_total",
            "counter",
            "Messages deleted by --keep-messages or --keep-days since start.",
            pruned.to_string(),
        );
        metric(
            "emberchat_replays_in_progress",
            "gauge",
            "Clients being sent stored messages they missed.",
            self.chat.metrics().replays_in_progress().to_string(),
        );
        metric(
            "emberchat_inbound_memory_bytes",
            "gauge",
            "Bytes of messages still arriving, held now (--inbound-memory).",
            self.engine.inbound_bytes().to_string(),
        );
        metric(
            "emberchat_outbound_memory_bytes",
            "gauge",
            "Bytes waiting to go out to clients, held now (--outbound-memory).",
            self.engine.outbound_bytes().to_string(),
        );
        metric(
            "emberchat_replay_memory_reserved_bytes",
            "gauge",
            "Bytes of the replay memory (--replay-memory) reserved for pages now.",
            self.chat.replay_memory_reserved().to_string(),
        );
        metric(
            "emberchat_queue_overflows_total",
            "counter",
            "Clients disconnected because acks and replies to them piled up unread, since start.",
            self.engine.queue_overflows().to_string(),
        );
        metric(
            "emberchat_catch_ups_total",
            "counter",
            "Times a client read slower than the chat and was switched to catching up from the \
             database, since start.",
            self.chat.metrics().catch_ups().to_string(),
        );
        metric(
            "emberchat_ping_timeouts_total",
            "counter",
            "Clients disconnected because they stopped answering pings (stalled readers \
             among them), since start.",
            self.engine.ping_timeouts().to_string(),
        );
        metric(
            "emberchat_rate_limited_total",
            "counter",
            "Chat messages refused for exceeding the per-client rate, since start.",
            self.chat.metrics().rate_limited().to_string(),
        );
        metric(
            "emberchat_store_errors_total",
            "counter",
            "Chat messages refused because the database failed, since start.",
            self.chat.metrics().store_errors().to_string(),
        );
        out
    }
}
