//! Recovery records kept outside this process (cluster mode), so that a client whose server
//! went away recovers its socket on another one. The local registry (`recovery`) still
//! decides for the clients this process knows; these records answer for the others.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::engineio::Sid;

/// Where the records are kept (Redis, in socket.io's adapter's format).
pub trait SharedSessions {
    /// Keeps the record of socket `sid` with private id `pid` for `window`: at connect (so a
    /// server killed outright leaves it behind) and again at a recoverable disconnection.
    fn save(&self, pid: &Sid, sid: &Sid, window: Duration);

    /// Forgets `pid`'s record: its socket left for good.
    fn forget(&self, pid: &Sid);

    /// Takes `pid`'s record, once: the socket id to resume, if there was one.
    fn take(&self, pid: &Sid) -> Pin<Box<dyn Future<Output = Option<Sid>>>>;
}
