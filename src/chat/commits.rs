//! From commit to clients: each stored message is broadcast in id order and acked to its
//! sender, as the store's results arrive.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use super::member::ChatSocket;
use super::message::{self, CHAT_EVENT};
use super::message_log::MessageLog;
use super::metrics::ChatMetrics;
use crate::socketio::{Hub, Socket};
use crate::store::{Committed, Outcome};

/// The ack error for a message the database did not take; the client may retry it.
pub const NOT_STORED: &str = "message not stored, try again later";

/// Who is waiting for an insert's outcome.
struct Waiting {
    socket: Weak<Socket<ChatSocket>>,
    ack: Option<u64>,
}

/// Senders waiting for their messages' commits. The store answers in request order, so a
/// queue pairs each outcome with its sender without ids or maps.
#[derive(Default)]
pub struct Commits {
    waiting: RefCell<VecDeque<Waiting>>,
}

impl Commits {
    /// Remembers who sent the message just queued for commit.
    pub fn expect(&self, socket: &Rc<Socket<ChatSocket>>, ack: Option<u64>) {
        self.waiting.borrow_mut().push_back(Waiting {
            socket: Rc::downgrade(socket),
            ack,
        });
    }

    /// Broadcasts a committed message to the namespace (numbered by its id) and answers its
    /// sender.
    pub fn committed(
        &self,
        committed: Committed,
        messages: &MessageLog,
        hub: &Hub<ChatSocket>,
        metrics: &ChatMetrics,
        recovery_offsets: bool,
    ) {
        let waiting = self.waiting.borrow_mut().pop_front();
        let reply = waiting.and_then(|w| Some((w.socket.upgrade()?, w.ack?)));
        match committed.outcome {
            Outcome::Stored(id) => {
                messages.set_last_broadcast(id);
                metrics.count_stored();
                let content = &committed.insert.content;
                hub.broadcast_ordered(CHAT_EVENT, id, content.len() + message::OVERHEAD, |args| {
                    message::write_args(args, content, id, recovery_offsets)
                });
                if let Some((socket, ack)) = reply {
                    socket.ack(ack, "[]", &[]);
                }
            }
            Outcome::Duplicate => {
                if let Some((socket, ack)) = reply {
                    socket.ack(ack, "[]", &[]);
                }
            }
            Outcome::Failed(error) => {
                metrics.count_store_error();
                // The details (file paths, SQLite's words) are for the operator's log, where
                // the store wrote them; the client learns only that it should retry.
                log::debug!("message not stored: {error}");
                if let Some((socket, ack)) = reply {
                    ack_error(&socket, ack, NOT_STORED);
                }
            }
        }
    }
}

/// Acks with `[{"error": reason}]`.
pub fn ack_error(socket: &Socket<ChatSocket>, ack: u64, reason: &str) {
    let mut args = String::from("[{\"error\":");
    crate::json::write_string(&mut args, reason);
    args.push_str("}]");
    socket.ack(ack, &args, &[]);
}
