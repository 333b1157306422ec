//! What the chat keeps for each connected socket (the Socket.IO layer owns it, as the
//! socket's data, and drops it with the socket).

use std::rc::Rc;

use super::peers::Peer;

/// The chat's per-socket state.
#[derive(Debug)]
pub struct ChatSocket {
    /// The client's address, with the send budget all its sockets share.
    pub peer: Rc<Peer>,
}
