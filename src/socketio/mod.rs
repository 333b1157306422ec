//! Socket.IO v5 on top of Engine.IO: namespaces, sockets, events and acks.
//!
//! `packet` is the pure codec; `server` turns Engine.IO sessions into sockets in namespaces and
//! calls the application's [`NamespaceHandler`]s; `socket` is what the application holds.

pub mod packet;
pub mod recovery;
pub mod server;
pub mod socket;

pub use server::{Event, Namespace, NamespaceHandler, Server, SocketIoConfig};
pub use socket::Socket;
