//! Engine.IO settings.

use std::time::Duration;

/// Engine.IO settings; the defaults are socket.io's.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Server ping period. Default 25 s.
    pub ping_interval: Duration,
    /// How long to wait for the pong before closing. Default 20 s.
    pub ping_timeout: Duration,
    /// How long a probing WebSocket may take to send the upgrade packet. Default 10 s.
    pub upgrade_timeout: Duration,
    /// Largest polling body or WebSocket message accepted, in bytes. Default 1 MB.
    pub max_payload: usize,
    /// Bytes all clients together may have half-sent (WebSocket frames and fragmented
    /// messages in parts, polling bodies being read, packets waiting for their attachments);
    /// a client that needs more is refused (close 1013, HTTP 503). Default 16 MiB.
    pub inbound_memory: usize,
    /// Bytes that may wait to go out to all clients together: queued packets (counted in
    /// every queue that holds them, though a broadcast's bytes are shared) and frames being
    /// written. Broadcasts fill at most three quarters of it; a client they do not fit is
    /// sent them from the store later. A client whose acks and replies do not fit is
    /// disconnected. Default 16 MiB.
    pub outbound_memory: usize,
    /// How long a polling POST may take to send its body; a slower one is answered 408 and
    /// its session closed. Default 10 s.
    pub body_timeout: Duration,
    /// Offer the polling → WebSocket upgrade. Default true.
    pub allow_upgrades: bool,
    /// Most packets waiting for one client before it is disconnected; broadcasts fill at
    /// most half. Default 4096.
    pub max_queue_packets: usize,
    /// Most bytes waiting for one client before it is disconnected; broadcasts fill at most
    /// half. Default 1 MiB.
    pub max_queue_bytes: usize,
    /// Most sessions at once; further handshakes get HTTP 503. Default 4096.
    pub max_sessions: usize,
    /// Browser origins other than the gateway's own host that may connect (`*` for any).
    /// Default none.
    pub allowed_origins: Vec<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ping_interval: Duration::from_millis(25_000),
            ping_timeout: Duration::from_millis(20_000),
            upgrade_timeout: Duration::from_millis(10_000),
            max_payload: 1_000_000,
            body_timeout: Duration::from_secs(10),
            inbound_memory: 16 * 1024 * 1024,
            outbound_memory: 16 * 1024 * 1024,
            allow_upgrades: true,
            max_queue_packets: 4096,
            max_queue_bytes: 1024 * 1024,
            max_sessions: 4096,
            allowed_origins: Vec::new(),
        }
    }
}
