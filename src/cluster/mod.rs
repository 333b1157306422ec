//! Cluster mode (`--redis`): several gateways, and Node socket.io servers with socket.io's
//! Redis Streams adapter, sharing one chat through a Redis stream, its log of record.
//!
//! A `chat message` is appended to the stream (its client offset deduplicated in Redis) and
//! acked once Redis has it; every gateway tails the stream and broadcasts its entries in
//! stream order; a client's offset is the entry's id, and replay reads the stream in pages.
//! `entry` and `stream_id` are the wire formats, without I/O; `log` is the handle the chat
//! holds, over `append`, `tail` and `reads`, each with its own Redis connection; `model`
//! what they share.

//!
//! The Redis client is behind the `redis` feature (README, "Several boards, one chat"); the
//! address and stream id formats are in every build, so that `--redis` is refused with the
//! reason by a build without it.

mod address;
#[cfg(feature = "redis")]
mod append;
#[cfg(feature = "redis")]
mod connect;
#[cfg(feature = "redis")]
mod entry;
#[cfg(feature = "redis")]
mod log;
#[cfg(feature = "redis")]
mod model;
#[cfg(feature = "redis")]
mod reads;
#[cfg(feature = "redis")]
mod session;
mod stream_id;
#[cfg(feature = "redis")]
mod tail;

pub use address::RedisAddress;
#[cfg(feature = "redis")]
pub use log::{SessionRecords, StreamLog};
#[cfg(feature = "redis")]
pub use model::{StreamSettings, TailEvent};
pub use stream_id::StreamId;
