//! Socket.IO settings.

use std::time::Duration;

/// Socket.IO settings; the defaults are socket.io's.
#[derive(Debug, Clone)]
pub struct SocketIoConfig {
    /// Close an Engine.IO session that joins no namespace within this time. Default 45 s.
    pub connect_timeout: Duration,
    /// Most binary attachments one packet may announce. Default 10.
    pub max_attachments: usize,
    /// Most bytes a packet and its attachments may hold together while they arrive (set to
    /// Engine.IO's `max_payload`, so a packet in parts costs no more than one in one piece).
    /// Default 1,000,000.
    pub max_attachment_bytes: usize,
    /// Refused CONNECTs after which the session is closed, so that guessing a token costs a
    /// new session (a handshake, and `--max-clients`) every few tries. Default 3.
    pub max_refusals: u32,
    /// How long a packet may wait for its attachments before the session is closed. Default
    /// 10 s.
    pub attachment_timeout: Duration,
    /// Connection state recovery: how long a disconnected client may come back and resume
    /// its socket (socket.io's `maxDisconnectionDuration`). `None` disables it, and the
    /// CONNECT reply then carries no `pid`. Default 120 s.
    pub recovery_window: Option<Duration>,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        SocketIoConfig {
            connect_timeout: Duration::from_millis(45_000),
            max_attachments: 10,
            max_attachment_bytes: 1_000_000,
            attachment_timeout: Duration::from_secs(10),
            max_refusals: 3,
            recovery_window: Some(Duration::from_secs(120)),
        }
    }
}
