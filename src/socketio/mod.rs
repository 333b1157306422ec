//! Socket.IO v5 on top of Engine.IO: namespaces, sockets, events, acks and broadcast.
//!
//! - `packet`: the pure codec.
//! - `server`: the namespaces of an endpoint; `client`: one Engine.IO session's sockets.
//! - `namespace`: what the application implements ([`NamespaceHandler`], with its per-socket
//!   data) and how a socket joins; `socket`: what the application holds.
//! - `hub`: a namespace's sockets and ordered broadcast; `backlog`: paced sending of long runs.
//! - `recovery`: connection state recovery's registry of private ids.

mod backlog;
mod client;
mod config;
mod hub;
mod namespace;
pub mod packet;
mod recovery;
mod server;
mod socket;

pub use backlog::{BacklogRoom, EventBatch};
pub use config::SocketIoConfig;
pub use hub::Hub;
pub use namespace::{DisconnectReason, Event, NamespaceHandler, Refusal};
pub use packet::EventArgs;
pub use server::Server;
pub use socket::Socket;
