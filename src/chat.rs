//! The chat application: `chat message` → store → broadcast `('chat message', msg, id)` → ack.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use tokio::sync::mpsc::UnboundedReceiver;

use crate::engineio::{Frame, TextBatch};
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
    /// Append the row id as a string offset to every broadcast, for connection state
    /// recovery (socket.io's client keeps the last string argument). Default true.
    pub recovery_offsets: bool,
    /// Rows read from SQLite per replay step. Default 1024.
    pub replay_page: usize,
    /// Chat messages one client may send per second (on average; twice that in a burst);
    /// more get an error ack. 0 turns the limit off. Default 20.
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
            token: None,
            max_message_rate: 20,
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
    me: Weak<Chat>,
    config: ChatConfig,
    /// Highest id broadcast so far (history counts as broadcast): replay is complete once a
    /// socket has everything up to here, because later rows reach it as live broadcasts.
    last_broadcast: Cell<i64>,
    /// Replays running now.
    replays: Cell<usize>,
    /// Messages stored since start.
    stored: Cell<u64>,
    /// Messages whose transaction failed since start.
    store_errors: Cell<u64>,
    /// Messages refused for exceeding the rate limit since start.
    rate_limited: Cell<u64>,
    /// Each connected socket's send budget, by socket id.
    budgets: RefCell<std::collections::HashMap<String, Budget>>,
    /// `None` once closed at shutdown.
    store: RefCell<Option<Store>>,
    waiting: RefCell<VecDeque<Waiting>>,
    namespace: OnceCell<Rc<Namespace>>,
}

impl Chat {
    pub fn new(config: ChatConfig, store: Store) -> Rc<Chat> {
        Rc::new_cyclic(|me| Chat {
            me: me.clone(),
            last_broadcast: Cell::new(store.last_id_at_open()),
            replays: Cell::new(0),
            stored: Cell::new(0),
            store_errors: Cell::new(0),
            rate_limited: Cell::new(0),
            budgets: RefCell::new(std::collections::HashMap::new()),
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
            // Let the transports write this batch out before the next one queues more, so a
            // burst of commits does not pile up in the clients' queues (which are bounded).
            tokio::task::yield_now().await;
        }
    }

    fn committed(&self, committed: Committed) {
        let waiting = self.waiting.borrow_mut().pop_front();
        let reply = waiting.and_then(|w| Some((w.socket.upgrade()?, w.ack?)));
        match committed.outcome {
            Outcome::Stored(id) => {
                self.last_broadcast.set(id);
                self.stored.set(self.stored.get() + 1);
                if let Some(namespace) = self.namespace.get() {
                    let offset = self.config.recovery_offsets;
                    let frame = chat_frame(&committed.insert.content, id, offset);
                    namespace.hub().broadcast_ordered(&frame, id);
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
                self.store_errors.set(self.store_errors.get() + 1);
                // The details (file paths, SQLite's words) are for the operator's log, where
                // the store wrote them; the client learns only that it should retry.
                log::debug!("message not stored: {error}");
                if let Some((socket, ack)) = reply {
                    ack_error(&socket, ack, NOT_STORED);
                }
            }
        }
    }

    fn on_chat_message(&self, socket: &Rc<Socket>, event: &Event<'_>) {
        if !self.within_rate(socket) {
            self.rate_limited.set(self.rate_limited.get() + 1);
            log::debug!("socket {}: over the message rate limit", socket.id());
            if let Some(ack) = event.ack {
                ack_error(socket, ack, "too many messages: slow down");
            }
            return;
        }
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
                    // An empty offset identifies nothing: store the message without one.
                    Ok(offset) if offset.is_empty() => None,
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
            Err(error) => {
                log::warn!("message not stored: {error}");
                self.refuse(socket, event, NOT_STORED)
            }
        }
    }

    /// Replays running now.
    pub fn replays_in_progress(&self) -> usize {
        self.replays.get()
    }

    /// Messages stored since start.
    pub fn messages_stored(&self) -> u64 {
        self.stored.get()
    }

    /// Messages refused because their transaction failed, since start.
    pub fn store_errors(&self) -> u64 {
        self.store_errors.get()
    }

    /// Messages refused for exceeding the per-client rate, since start.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.get()
    }

    /// Takes one message from the socket's budget; false when it is spent.
    fn within_rate(&self, socket: &Socket) -> bool {
        let rate = self.config.max_message_rate;
        if rate == 0 {
            return true;
        }
        let now = tokio::time::Instant::now();
        let mut budgets = self.budgets.borrow_mut();
        let budget = budgets
            .entry(socket.id().to_owned())
            .or_insert_with(|| Budget::full(rate, now));
        budget.take(rate, now)
    }

    /// Highest message id broadcast (or stored before start).
    pub fn last_id(&self) -> i64 {
        self.last_broadcast.get()
    }

    /// Resolves to `Ok` when the database answers a read.
    pub fn check_store(
        &self,
    ) -> impl std::future::Future<Output = Result<(), crate::store::StoreError>> + use<> {
        let check = self.store.borrow().as_ref().map(Store::check);
        async move {
            match check {
                Some(check) => check.await,
                None => Err(crate::store::StoreError("the store is closed".into())),
            }
        }
    }

    /// Sends `socket` every stored message after `cursor`, page by page, as fast as the client
    /// reads them, then lets live broadcasts through. Live broadcasts are held back from the
    /// socket meanwhile; the seam is exact because broadcasts are numbered by row id: the
    /// replay ends only once it has read up to the last broadcast id, and a broadcast that the
    /// replay already sent (read just after its commit) is skipped by number.
    async fn replay(self: Rc<Self>, socket: Rc<Socket>, mut cursor: i64) {
        self.replays.set(self.replays.get() + 1);
        let page = self.config.replay_page;
        // The next page is read while this one is sent: at most two pages are in memory,
        // and the store and the socket work at the same time.
        let mut prefetched = None;
        loop {
            if !socket.is_connected() {
                break;
            }
            if cursor >= self.last_broadcast.get() {
                socket.go_live(cursor);
                break;
            }
            let request = match prefetched.take() {
                Some(request) => Ok(request),
                None => match self.store.borrow().as_ref() {
                    Some(store) => store.request_page(cursor, page),
                    None => break,
                },
            };
            let rows = match request {
                Ok(request) => request.rows().await,
                Err(_) => break,
            };
            let rows = match rows {
                Ok(rows) => rows,
                Err(error) => {
                    // A locked or failing database: try again shortly, the client waits.
                    log::warn!(
                        "socket {}: replay after {cursor} failed: {error}",
                        socket.id()
                    );
                    tokio::time::sleep(REPLAY_RETRY).await;
                    continue;
                }
            };
            if !socket.is_connected() {
                break;
            }
            let Some(last) = rows.last() else {
                // Rows up to the last broadcast were removed behind our back: nothing to send.
                socket.go_live(cursor);
                break;
            };
            cursor = last.id;
            if cursor < self.last_broadcast.get() {
                prefetched = self
                    .store
                    .borrow()
                    .as_ref()
                    .and_then(|store| store.request_page(cursor, page).ok());
            }
            // The page goes out in parts of at most an eighth of the client's queue limit in
            // bytes (messages may be long) and a quarter of a page, each once the queue is
            // down to that much: paced to what the client reads, never near the limit that
            // would drop it, and little in memory at a time.
            let session = socket.session();
            let limits = session.limits();
            let (packets, bytes) = ((page / 4).min(limits.packets / 4), limits.bytes / 8);
            let mut rows = rows.iter().peekable();
            while rows.peek().is_some() {
                if !session.wait_queue_below(packets, bytes).await {
                    break;
                }
                let mut batch = TextBatch::with_capacity(packets.min(256), bytes.min(64 * 1024));
                let mut size = 0;
                while let Some(row) = rows.next_if(|row| {
                    batch.is_empty() || (batch.len() < packets && size + row.content.len() < bytes)
                }) {
                    size += row.content.len() + 48;
                    batch.push(|out| {
                        write_chat_frame(out, &row.content, row.id, self.config.recovery_offsets)
                    });
                }
                socket.send_frames(batch.into_frames());
            }
        }
        self.replays.set(self.replays.get() - 1);
    }

    fn refuse(&self, socket: &Socket, event: &Event<'_>, reason: &str) {
        log::info!("socket {}: refused `{}`: {reason}", socket.id(), event.name);
        if let Some(ack) = event.ack {
            ack_error(socket, ack, reason);
        }
    }
}

impl NamespaceHandler for Chat {
    fn authorize(&self, auth: &str) -> Result<(), String> {
        let Some(expected) = &self.config.token else {
            return Ok(());
        };
        let given = json::object_get(auth, "token")
            .filter(|raw| json::kind(raw) == Kind::String)
            .and_then(|raw| json::unescape(raw).ok());
        match given {
            Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
            _ => {
                log::info!("refused a client without the access token");
                Err("unauthorized".into())
            }
        }
    }

    /// Offsets are row ids this gateway broadcast: one it never gave out cannot say what the
    /// client missed, so recovery fails and the offset replay takes over.
    fn accepts_offset(&self, offset: &str) -> bool {
        offset
            .parse::<i64>()
            .is_ok_and(|id| (0..=self.last_broadcast.get()).contains(&id))
    }

    fn on_connect(&self, socket: &Rc<Socket>, auth: &str) {
        // A recovered socket resumes after the client's last offset; any other starts after
        // `auth.serverOffset`. Clamped to what exists, so a client that remembers more than
        // this database holds (say, after a reset) still gets new messages.
        let after = match socket.recovered_offset() {
            Some(offset) => offset.parse().unwrap_or(0),
            None => server_offset(auth),
        };
        let after = after.min(self.last_broadcast.get());
        log::debug!(
            "socket {} connected{}, replaying after {after}",
            socket.id(),
            if socket.recovered() {
                " (recovered)"
            } else {
                ""
            }
        );
        if after >= self.last_broadcast.get() {
            socket.go_live(after);
            return;
        }
        socket.hold_broadcasts();
        if let Some(chat) = self.me.upgrade() {
            tokio::task::spawn_local(chat.replay(socket.clone(), after));
        }
    }

    fn on_event(&self, socket: &Rc<Socket>, event: Event<'_>) {
        if event.name == CHAT_EVENT {
            self.on_chat_message(socket, &event);
        } else {
            self.refuse(socket, &event, "unknown event");
        }
    }

    fn on_disconnect(&self, socket: &Rc<Socket>, reason: &str) {
        self.budgets.borrow_mut().remove(socket.id());
        log::debug!("socket {} disconnected: {reason}", socket.id());
    }
}

/// A token bucket: `rate` messages a second, bursts of up to twice that.
#[derive(Debug, Clone, Copy)]
struct Budget {
    tokens: f64,
    at: tokio::time::Instant,
}

impl Budget {
    fn full(rate: u32, now: tokio::time::Instant) -> Budget {
        Budget {
            tokens: f64::from(rate) * 2.0,
            at: now,
        }
    }

    fn take(&mut self, rate: u32, now: tokio::time::Instant) -> bool {
        let rate = f64::from(rate);
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate * 2.0);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Compares secrets in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The ack error for a message the database did not take; the client may retry it.
const NOT_STORED: &str = "message not stored, try again later";

/// Pause before retrying a replay read that failed.
const REPLAY_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// `auth.serverOffset` as a row id: a number or a numeric string; missing, negative or
/// anything else means 0 (everything).
pub fn server_offset(auth: &str) -> i64 {
    let Some(raw) = json::object_get(auth, "serverOffset") else {
        return 0;
    };
    let text = match json::kind(raw) {
        Kind::Number => std::borrow::Cow::Borrowed(raw),
        Kind::String => match json::unescape(raw) {
            Ok(text) => text,
            Err(_) => return 0,
        },
        _ => return 0,
    };
    text.trim().parse::<i64>().map_or(0, |n| n.max(0))
}

/// Acks with `[{"error": reason}]`.
fn ack_error(socket: &Socket, ack: u64, reason: &str) {
    let mut args = String::from("[{\"error\":");
    json::write_string(&mut args, reason);
    args.push_str("}]");
    socket.ack(ack, &args, &[]);
}

/// `42["chat message",<content>,<id>]`, with `,"<id>"` appended as the recovery offset when
/// `offset` is set; encoded once per broadcast.
pub fn chat_frame(content: &str, id: i64, offset: bool) -> Frame {
    let mut text = String::with_capacity(content.len() + 48);
    write_chat_frame(&mut text, content, id, offset);
    Frame::text(text)
}

/// Appends the broadcast packet of a stored message to `out`; see [`chat_frame`].
fn write_chat_frame(out: &mut String, content: &str, id: i64, offset: bool) {
    let id = itoa(id);
    out.push_str("42[\"chat message\",");
    json::write_string(out, content);
    out.push(',');
    out.push_str(&id);
    if offset {
        out.push_str(",\"");
        out.push_str(&id);
        out.push('"');
    }
    out.push(']');
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
            chat_frame("hi \"you\"\n", 42, false),
            Frame::text("42[\"chat message\",\"hi \\\"you\\\"\\n\",42]")
        );
        assert_eq!(
            chat_frame("x", 7, true),
            Frame::text("42[\"chat message\",\"x\",7,\"7\"]")
        );
    }

    #[test]
    fn budget_allows_bursts_then_the_rate() {
        let start = tokio::time::Instant::now();
        let mut budget = Budget::full(5, start);
        assert_eq!((0..12).filter(|_| budget.take(5, start)).count(), 10);
        let later = start + std::time::Duration::from_millis(400);
        assert_eq!((0..5).filter(|_| budget.take(5, later)).count(), 2);
    }

    #[test]
    fn compares_tokens() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }

    #[test]
    fn reads_server_offset() {
        for (auth, offset) in [
            ("{\"serverOffset\":12}", 12),
            ("{\"serverOffset\":\"34\"}", 34),
            ("{\"serverOffset\":-5}", 0),
            ("{\"serverOffset\":\"abc\"}", 0),
            ("{\"serverOffset\":1.5}", 0),
            ("{\"serverOffset\":null}", 0),
            ("{\"serverOffset\":99999999999999999999999}", 0),
            ("{}", 0),
        ] {
            assert_eq!(server_offset(auth), offset, "{auth}");
        }
    }
}
