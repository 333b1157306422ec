//! From commit to clients: each stored message is broadcast in id order and acked to its
//! sender, as the store's results arrive.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use super::member::ChatSocket;
use super::message::{self, CHAT_EVENT, Form, Stored};
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

/// How a commit goes out.
pub struct Delivery<'a> {
    pub messages: &'a MessageLog,
    pub hub: &'a Hub<ChatSocket>,
    pub metrics: &'a ChatMetrics,
    pub recovery_offsets: bool,
    /// Some socket takes the extended form: encode it too.
    pub any_extended: bool,
    /// A commit is broadcast as it is acked (the store); in cluster mode the stream's tail
    /// broadcasts instead, for every gateway in the stream's order.
    pub broadcast_on_commit: bool,
}

impl Commits {
    /// Remembers who sent the message just queued for commit.
    pub fn expect(&self, socket: &Rc<Socket<ChatSocket>>, ack: Option<u64>) {
        self.waiting.borrow_mut().push_back(Waiting {
            socket: Rc::downgrade(socket),
            ack,
        });
    }

    /// Broadcasts a committed message to the namespace (numbered by its id, encoded once per
    /// form) and answers its sender.
    pub fn committed(&self, committed: Committed, delivery: &Delivery<'_>) {
        let waiting = self.waiting.borrow_mut().pop_front();
        let sender = waiting.as_ref().and_then(|w| w.socket.upgrade());
        let reply = sender.clone().zip(waiting.and_then(|w| w.ack));
        match committed.outcome {
            Outcome::Stored(id) => {
                delivery.metrics.count_stored();
                if delivery.broadcast_on_commit {
                    delivery.messages.set_last_broadcast(id);
                    let insert = &committed.insert;
                    let stored = Stored {
                        id,
                        content: &insert.content,
                        name: insert.name.as_deref(),
                        time: Some(committed.time),
                        client_offset: None,
                    };
                    broadcast(
                        &stored,
                        sender.as_deref(),
                        insert.client_offset.as_deref(),
                        delivery,
                    );
                }
                if let Some((socket, ack)) = reply {
                    ack_stored(&socket, ack, id);
                }
            }
            Outcome::Duplicate(id) => {
                if let Some((socket, ack)) = reply {
                    ack_stored(&socket, ack, id);
                }
            }
            Outcome::Failed(error) => {
                delivery.metrics.count_store_error();
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

/// Broadcasts a message the shared stream delivered (cluster mode), numbered by its key.
/// Its sender learns it was stored from its ack: the entry carries no client offset.
#[cfg(feature = "redis")]
pub fn delivered(stored: &Stored<'_>, delivery: &Delivery<'_>) {
    delivery.messages.set_last_broadcast(stored.id);
    broadcast(stored, None, None, delivery);
}

/// Which of the forms below a socket gets.
const TUTORIAL: usize = 0;
const EXTENDED: usize = 1;
const SENDERS: usize = 2;

/// Broadcasts a stored message, encoded once per form: the tutorial's, the extended one,
/// and for an extended sender its own copy with its client offset, so that its page can
/// tell which pending message was stored. Nobody else learns a client offset: knowing
/// another client's next offset would let one send it first and have that client's
/// message taken for a duplicate.
fn broadcast(
    stored: &Stored<'_>,
    sender: Option<&Socket<ChatSocket>>,
    client_offset: Option<&str>,
    delivery: &Delivery<'_>,
) {
    let encode = |message: &Stored<'_>, form| {
        let capacity = match form {
            Form::Tutorial => message.content.len() + message::OVERHEAD,
            Form::Extended => message.content.len() + message::OVERHEAD + message.extra_len(),
        };
        delivery.hub.encode_event(CHAT_EVENT, capacity, |args| {
            message::write_args(
                args,
                message,
                form,
                delivery.messages.ids(),
                delivery.recovery_offsets,
            )
        })
    };
    let tutorial = encode(stored, Form::Tutorial);
    if !delivery.any_extended {
        delivery
            .hub
            .broadcast_ordered(stored.id, &[tutorial], |_| TUTORIAL);
        return;
    }
    let extended = encode(stored, Form::Extended);
    let sender = sender.filter(|socket| socket.data().extended && client_offset.is_some());
    let Some(sender) = sender else {
        let forms = [tutorial, extended];
        delivery.hub.broadcast_ordered(stored.id, &forms, |socket| {
            if socket.data().extended {
                EXTENDED
            } else {
                TUTORIAL
            }
        });
        return;
    };
    let own = encode(
        &Stored {
            client_offset,
            ..*stored
        },
        Form::Extended,
    );
    let forms = [tutorial, extended, own];
    delivery.hub.broadcast_ordered(stored.id, &forms, |socket| {
        if std::ptr::eq(socket, sender) {
            SENDERS
        } else if socket.data().extended {
            EXTENDED
        } else {
            TUTORIAL
        }
    });
}

/// Acks a stored message: with no arguments, as the tutorial's server does, or with
/// `{"id": N}` for a client that opted into the extended protocol.
fn ack_stored(socket: &Socket<ChatSocket>, ack: u64, id: i64) {
    if socket.data().extended {
        socket.ack(ack, &format!("[{{\"id\":{id}}}]"), &[]);
    } else {
        socket.ack(ack, "[]", &[]);
    }
}

/// Acks with `[{"error": reason}]`.
pub fn ack_error(socket: &Socket<ChatSocket>, ack: u64, reason: &str) {
    let mut args = String::from("[{\"error\":");
    crate::json::write_string(&mut args, reason);
    args.push_str("}]");
    socket.ack(ack, &args, &[]);
}
