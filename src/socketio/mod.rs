//! Socket.IO v5 on top of Engine.IO: namespaces, sockets, events, acks and broadcast.
//!
//! - `packet`: the pure codec.
//! - `server`: the namespaces of an endpoint; `client`: one Engine.IO session's sockets.
//! - `namespace`: what the application implements ([`NamespaceHandler`], with its per-socket
//!   data) and how a socket joins; `socket`: what the application holds, and what the client
//!   keeps per namespace; `event`: events, refusals and disconnect reasons.
//! - `hub`: a namespace's sockets and ordered broadcast; `backlog`: paced sending of long runs.
//! - `recovery`: connection state recovery's registry of private ids.

mod backlog;
mod client;
mod config;
mod event;
mod hub;
mod namespace;
pub mod packet;
mod recovery;
mod server;
mod shared_sessions;
mod socket;

pub use backlog::{BacklogRoom, EventBatch};
pub use config::SocketIoConfig;
pub use event::{DisconnectReason, Event, Refusal};
pub use hub::Hub;
pub use namespace::NamespaceHandler;
pub use packet::EventArgs;
pub use server::Server;
pub use shared_sessions::SharedSessions;
pub use socket::Socket;
