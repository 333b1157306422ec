//! The chat application: `chat message` → store → broadcast `('chat message', msg, id)` → ack.

use std::cell::{OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::engineio::Frame;
use crate::json::{self, Kind};
use crate::socketio::{Event, Namespace, NamespaceHandler, Socket};
use crate::store::{Committed, Insert, Outcome, Store};

/// The event clients send and receive.
pub const CHAT_EVENT: &str = "chat message";

/// Chat settings.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Longest message accepted, in bytes of UTF-8. Default 16 KiB.
    pub max_message_bytes: usize,
    /// Longest client offset accepted, in bytes. Default 128.
    pub max_client_offset_bytes: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_message_bytes: 16 * 1024,
            max_client_offset_bytes: 128,
        }
    }
}

/// Who is waiting for an insert's outcome. The store answers in request order, so a queue
/// pairs each outcome with its sender without ids or maps.
struct Waiting {
    socket: Weak<Socket>,
    ack: Option<u64>,
}

/// The chat on the main namespace.
pub struct Chat {
    config: ChatConfig,
    /// `None` once closed at shutdown.
    store: RefCell<Option<Store>>,
    waiting: RefCell<VecDeque<Waiting>>,
    namespace: OnceCell<Rc<Namespace>>,
}

impl Chat {
    pub fn new(config: ChatConfig, store: Store) -> Rc<Chat> {
        Rc::new(Chat {
            config,
            store: RefCell::new(Some(store)),
            waiting: RefCell::new(VecDeque::new()),
            namespace: OnceCell::new(),
        })
    }

    /// Gives the chat the namespace it broadcasts to.
    pub fn attach(&self, namespace: Rc<Namespace>) {
        let _ = self.namespace.set(namespace);
    }

    /// Stops the store after its queued commits, checkpointing the WAL. Messages sent after
    /// this are refused.
    pub fn close_store(&self) {
        let store = self.store.borrow_mut().take();
        if let Some(store) = store {
            store.close();
        }
    }

    /// Broadcasts and acks stored messages as their transactions commit, in id order.
    pub async fn run_commits(self: Rc<Self>, mut results: UnboundedReceiver<Vec<Committed>>) {
        while let Some(batch) = results.recv().await {
            for committed in batch {
                self.committed(committed);
            }
        }
    }

    fn committed(&self, committed: Committed) {
        let waiting = self.waiting.borrow_mut().pop_front();
        let reply = waiting.and_then(|w| Some((w.socket.upgrade()?, w.ack?)));
        match committed.outcome {
            Outcome::Stored(id) => {
                if let Some(namespace) = self.namespace.get() {
                    namespace
                        .hub()
                        .broadcast(&chat_frame(&committed.insert.content, id));
                }
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
                if let Some((socket, ack)) = reply {
                    ack_error(&socket, ack, &format!("message not stored: {error}"));
                }
            }
        }
    }

    fn on_chat_message(&self, socket: &Rc<Socket>, event: &Event<'_>) {
        let mut args = event.args();
        let content = match args.next() {
            Some(raw) if json::kind(raw) == Kind::String => match json::unescape(raw) {
                Ok(text) => text,
                Err(error) => {
                    return self.refuse(socket, event, &format!("invalid message: {error}"));
                }
            },
            _ => return self.refuse(socket, event, "message must be a string"),
        };
        if content.len() > self.config.max_message_bytes {
            let limit = self.config.max_message_bytes;
            return self.refuse(socket, event, &format!("message longer than {limit} bytes"));
        }
        let client_offset = match args.next() {
            None => None,
            Some(raw) => match json::kind(raw) {
                Kind::Null => None,
                Kind::String => match json::unescape(raw) {
                    Ok(offset) if offset.len() <= self.config.max_client_offset_bytes => {
                        Some(offset.into_owned())
                    }
                    Ok(_) => return self.refuse(socket, event, "client offset too long"),
                    Err(error) => {
                        return self.refuse(
                            socket,
                            event,
                            &format!("invalid client offset: {error}"),
                        );
                    }
                },
                Kind::Number => Some(raw.to_owned()),
                _ => return self.refuse(socket, event, "client offset must be a string"),
            },
        };
        let insert = Insert {
            content: content.into_owned(),
            client_offset,
        };
        let stored = match self.store.borrow().as_ref() {
            Some(store) => store.insert(insert),
            None => Err(crate::store::StoreError(
                "the gateway is shutting down".into(),
            )),
        };
        match stored {
            Ok(()) => self.waiting.borrow_mut().push_back(Waiting {
                socket: Rc::downgrade(socket),
                ack: event.ack,
            }),
            Err(error) => self.refuse(socket, event, &format!("message not stored: {error}")),
        }
    }

    fn refuse(&self, socket: &Socket, event: &Event<'_>, reason: &str) {
        log::info!("socket {}: refused `{}`: {reason}", socket.id(), event.name);
        if let Some(ack) = event.ack {
            ack_error(socket, ack, reason);
        }
    }
}

impl NamespaceHandler for Chat {
    fn on_connect(&self, socket: &Rc<Socket>, _auth: &str) {
        log::debug!("socket {} connected", socket.id());
    }

    fn on_event(&self, socket: &Rc<Socket>, event: Event<'_>) {
        if event.name == CHAT_EVENT {
            self.on_chat_message(socket, &event);
        } else {
            self.refuse(socket, &event, "unknown event");
        }
    }

    fn on_disconnect(&self, socket: &Rc<Socket>, reason: &str) {
        log::debug!("socket {} disconnected: {reason}", socket.id());
    }
}

/// Acks with `[{"error": reason}]`.
fn ack_error(socket: &Socket, ack: u64, reason: &str) {
    let mut args = String::from("[{\"error\":");
    json::write_string(&mut args, reason);
    args.push_str("}]");
    socket.ack(ack, &args, &[]);
}

/// `42["chat message",<content>,<id>]`, encoded once per broadcast.
pub fn chat_frame(content: &str, id: i64) -> Frame {
    let mut text = String::with_capacity(content.len() + 40);
    text.push_str("42[\"chat message\",");
    json::write_string(&mut text, content);
    text.push(',');
    text.push_str(itoa(id).as_str());
    text.push(']');
    Frame::text(text)
}

fn itoa(n: i64) -> heapless::String<20> {
    use std::fmt::Write;
    let mut out = heapless::String::new();
    let _ = write!(out, "{n}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_broadcast_frame() {
        assert_eq!(
            chat_frame("hi \"you\"\n", 42),
            Frame::text("42[\"chat message\",\"hi \\\"you\\\"\\n\",42]")
        );
    }
}
