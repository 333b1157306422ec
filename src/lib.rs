//! emberchat: a small Socket.IO chat gateway for single-board computers.
//!
//! # Layout
//! Each layer uses only the ones listed after it (`tests/architecture.rs` checks that no
//! module imports from one that imports from it):
//! - `gateway`: puts the layers together and runs them until shutdown.
//! - [`config`]: every layer's settings, from flags and `EMBERCHAT_*` variables.
//! - [`http`]: accept loop, routing, embedded files (`assets`), health and metrics.
//! - [`transport`]: long-polling and WebSocket, moving bytes between sockets and sessions.
//! - `chat`: the application: validate, store, broadcast in id order, ack; replay.
//! - [`socketio`]: Socket.IO v5: codec, namespaces, sockets with the application's data,
//!   acks, ordered broadcast, paced backlogs, connection state recovery (no sockets).
//! - [`engineio`]: Engine.IO v4: codecs, session state, heartbeat (no sockets).
//! - `cluster`: the shared log in Redis for several gateways (`--redis`): socket.io's
//!   Redis Streams adapter's entries, appends, the tail, paged reads.
//! - `store`: SQLite on its own thread, group commit.
//! - [`json`]: a bounded JSON scanner; Socket.IO payloads stay raw text; `budget`: a byte
//!   budget shared by many holders.
//! - [`logger`], [`systemd`], [`fdlimit`], [`host`]: log output, service manager, open-file
//!   limit, the `Host` names served (leaves, as `json` and `random`).

#![deny(clippy::undocumented_unsafe_blocks)]

pub(crate) mod assets;
pub(crate) mod budget;
pub(crate) mod chat;
pub(crate) mod cluster;
pub mod config;
pub mod engineio;
pub mod fdlimit;
mod gateway;
pub mod host;
pub mod http;
pub mod json;
pub mod logger;
pub(crate) mod random;
pub mod socketio;
pub(crate) mod store;
pub mod systemd;
pub mod transport;

pub use gateway::{Lifecycle, run};
pub use store::{BackupReport, CopyError, backup, export};
