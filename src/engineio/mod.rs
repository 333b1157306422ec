//! Engine.IO v4: the transport-level protocol under Socket.IO.
//!
//! `packet` and `payload` are pure codecs; `session` is one session's state; `engine` owns the
//! session table and the heartbeat; `intake` is the application's gate on client input. Transports (`crate::transport`) move bytes between sockets
//! and sessions; the application above implements [`Handler`] and [`SessionHandler`].

pub mod base64;
mod config;
mod encoded;
mod engine;
mod handler;
mod intake;
pub mod packet;
pub mod payload;
pub(crate) mod session;
mod sid;

pub use config::EngineConfig;
pub(crate) use encoded::TextBatch;
pub use encoded::{EncodedPacket, SharedText};
pub use engine::{Engine, Handler, INTAKE_MAX_PAUSE};
pub use handler::{CloseReason, Message, SessionHandler};
pub use session::{QueueLimits, Session, TransportKind};
pub use sid::Sid;
