//! Chat settings.

/// Chat settings.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Longest message accepted, in bytes of UTF-8. Default 16 KiB.
    pub max_message_bytes: usize,
    /// Longest client offset accepted, in bytes. Default 128.
    pub max_client_offset_bytes: usize,
    /// Append the row id as a string offset to every broadcast, for connection state
    /// recovery (socket.io's client keeps the last string argument). Default true.
    pub recovery_offsets: bool,
    /// Rows read from SQLite per replay step. Default 1024.
    pub replay_page: usize,
    /// Bytes of messages read per replay step, at most (plus one message). Default 128 KiB.
    pub replay_page_bytes: usize,
    /// Bytes all replays together may hold in pages read from SQLite; a replay waits for its
    /// turn beyond that. Default 8 MiB.
    pub replay_memory: usize,
    /// Chat messages the clients of one address may send per second (on average; twice
    /// that in a burst); more get an error ack. 0 turns the limit off. Default 20.
    pub max_message_rate: u32,
    /// Shared access token: when set, a CONNECT whose `auth.token` differs is refused with
    /// CONNECT_ERROR `unauthorized`. Default none.
    pub token: Option<String>,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_message_bytes: 16 * 1024,
            max_client_offset_bytes: 128,
            recovery_offsets: true,
            replay_page: 1024,
            replay_page_bytes: 128 * 1024,
            replay_memory: 8 * 1024 * 1024,
            token: None,
            max_message_rate: 20,
        }
    }
}
