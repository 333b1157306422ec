//! What the chat keeps for each connected socket (the Socket.IO layer owns it, as the
//! socket's data, and drops it with the socket).

use super::rate::SendBudget;

/// The chat's per-socket state.
#[derive(Debug)]
pub struct ChatSocket {
    /// What the client may still send under the rate limit.
    pub budget: SendBudget,
}
