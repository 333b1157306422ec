//! The chat application: `chat message` → store → broadcast `('chat message', msg, id)` →
//! ack, and the replay of what a joining client missed (or a slow reader fell behind on).
//!
//! - `app`: the namespace handler that ties the rest together.
//! - `message`: what a client may send, and what every client receives.
//! - `auth`, `rate`: who may join, and how fast each may send; `peers`: what is kept per
//!   client address (the send budget, refused tokens); `member`: per-socket state.
//! - `message_log`: the store as the chat uses it; `commits`: broadcast and ack as commits land.
//! - `history`: where a joining client's history starts, and its paced replay (also a slow
//!   reader's catch-up), within the `replay_memory` all replays share.
//! - `opt_in`: what a client's CONNECT asks for beyond the tutorial (the page's protocol);
//!   `names`: display names; `browse`: history pages on request; `presence`: who is online.
//! - `metrics`, `config`.

mod app;
mod auth;
mod browse;
mod commits;
mod config;
mod history;
mod member;
mod message;
mod message_log;
mod metrics;
mod names;
mod opt_in;
mod peers;
mod presence;
mod rate;
mod replay_memory;

pub use app::Chat;
pub use config::ChatConfig;
pub use message_log::MessageLog;
