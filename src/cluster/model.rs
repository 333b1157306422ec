//! What cluster mode's parts share: its settings, and what the tail hands the chat.

use std::time::Duration;

use super::address::RedisAddress;
use super::entry::ChatEntry;

/// Cluster mode's settings (`--redis`, `--redis-stream`, `--redis-max-len`).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub address: RedisAddress,
    /// The stream's key; socket.io's adapter uses `socket.io`.
    pub stream: String,
    /// Entries the stream keeps (trimmed with `MAXLEN ~`): the chat's history.
    pub max_len: u64,
    /// How long a client offset is remembered, so that a retry is stored once.
    pub offset_lifetime: Duration,
    /// Longest message taken from the stream, as from clients.
    pub max_message_bytes: usize,
    /// Replicas that must have a message before it is acked (WAIT), and how long to wait
    /// for them; 0 acks once the primary has it.
    pub wait_replicas: u32,
    pub wait_timeout: Duration,
}

/// What the tail tells the chat.
pub enum TailEvent {
    /// The stream ended at this key when the tail started: the chat's last broadcast.
    Positioned(i64),
    /// Messages appended since, in stream order.
    Entries(Vec<Delivered>),
}

/// A chat message from the stream, numbered for the hub.
#[derive(Debug)]
pub struct Delivered {
    pub key: i64,
    pub message: ChatEntry,
}
