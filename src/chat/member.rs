//! What the chat keeps for each connected socket (the Socket.IO layer owns it, as the
//! socket's data, and drops it with the socket).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use tokio::time::Instant;

use super::peers::Peer;

/// The chat's per-socket state.
#[derive(Debug)]
pub struct ChatSocket {
    /// The client's address, with the send budget all its sockets share.
    pub peer: Rc<Peer>,
    /// The client opted into the page's additions (`auth.emberchat`): messages with their
    /// name and time, history pages, presence and typing. Others get the tutorial's protocol.
    pub extended: bool,
    /// `auth.newest`: at most this many missed messages are replayed on connecting.
    pub newest: Option<u8>,
    /// The display name the client gave, if any.
    pub name: RefCell<Option<Rc<str>>>,
    /// When the server last passed on this socket's typing notice (its rate limit).
    pub last_typing: Cell<Option<Instant>>,
    /// A history page is being read for this socket: one at a time.
    pub reading_history: Cell<bool>,
}

impl ChatSocket {
    pub fn new(
        peer: Rc<Peer>,
        extended: bool,
        newest: Option<u8>,
        name: Option<Rc<str>>,
    ) -> ChatSocket {
        ChatSocket {
            peer,
            extended,
            newest,
            name: RefCell::new(name),
            last_typing: Cell::new(None),
            reading_history: Cell::new(false),
        }
    }

    pub fn name(&self) -> Option<Rc<str>> {
        self.name.borrow().clone()
    }
}
