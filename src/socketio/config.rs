//! Socket.IO settings.

use std::time::Duration;

/// Socket.IO settings; the defaults are socket.io's.
#[derive(Debug, Clone)]
pub struct SocketIoConfig {
    /// Close an Engine.IO session that joins no namespace within this time. Default 45 s.
    pub connect_timeout: Duration,
    /// Most binary attachments one packet may announce. Default 10.
    pub max_attachments: usize,
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
            recovery_window: Some(Duration::from_secs(120)),
        }
    }
}
