//! The chat on the main namespace: admits clients, takes `chat message`s, and starts the
//! replay of each joining client and each slow reader that fell behind.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use super::auth;
use super::browse::{self, HISTORY_EVENT};
use super::commits::{self, Commits, Delivery, NOT_STORED};
use super::config::ChatConfig;
use super::history::{self, ReplaySettings};
use super::member::ChatSocket;
#[cfg(feature = "redis")]
use super::message::Stored;
use super::message::{self, CHAT_EVENT, Ids, Limits};
use super::message_log::MessageLog;
use super::metrics::ChatMetrics;
use super::names;
use super::opt_in;
use super::peers::Peers;
use super::presence::Presence;
use super::rate::SendBudget;
use super::replay_memory::ReplayMemory;
#[cfg(feature = "redis")]
use crate::cluster::TailEvent;
use crate::logger::{Tally, Throttle, untrusted};
use crate::socketio::{DisconnectReason, Event, Hub, NamespaceHandler, Refusal, Socket};
use crate::store::{Committed, PageLimit, StoreError};

/// The chat application.
pub struct Chat {
    config: ChatConfig,
    hub: Rc<Hub<ChatSocket>>,
    messages: Rc<MessageLog>,
    commits: Commits,
    metrics: Rc<ChatMetrics>,
    replay_memory: Rc<ReplayMemory>,
    peers: Peers,
    presence: Presence,
    /// Typing notices passed on per second, over all sockets: each one is sent to every
    /// page, so their total is what bounds the work.
    typing_budget: SendBudget,
}

/// The page's additions (see the README's "Protocol"): a name change, typing notices, and
/// what the server sends back.
const NAME_EVENT: &str = "name";
const TYPING_EVENT: &str = "typing";
const PRESENCE_EVENT: &str = "presence";
const MISSED_EVENT: &str = "missed";
/// One typing notice per socket in this long, at most (the page sends one every 3 s while
/// typing, and one at the first keystroke after sending).
const TYPING_INTERVAL: Duration = Duration::from_secs(1);
/// Typing notices passed on per second over all sockets (bursts of twice that).
const TYPING_RATE: u32 = 10;
/// Joins and leaves are gathered this long into one presence update.
const PRESENCE_DELAY: Duration = Duration::from_millis(250);

impl Chat {
    /// The chat over `messages` (the store, or the shared stream), broadcasting to the
    /// sockets of `hub`.
    pub fn new(config: ChatConfig, messages: MessageLog, hub: Rc<Hub<ChatSocket>>) -> Rc<Chat> {
        let replay_memory = Rc::new(ReplayMemory::new(
            config.replay_memory,
            replay_page(&config),
            config.max_message_bytes,
        ));
        Rc::new(Chat {
            replay_memory,
            peers: Peers::new(config.max_message_rate),
            presence: Presence::default(),
            typing_budget: SendBudget::new(TYPING_RATE, Instant::now()),
            config,
            hub,
            messages: Rc::new(messages),
            commits: Commits::default(),
            metrics: Rc::new(ChatMetrics::default()),
        })
    }

    /// How messages go out now.
    fn delivery(&self) -> Delivery<'_> {
        Delivery {
            messages: &self.messages,
            hub: &self.hub,
            metrics: &self.metrics,
            recovery_offsets: self.config.recovery_offsets,
            any_extended: self.presence.any_extended(),
            broadcast_on_commit: self.messages.ids() == Ids::Rows,
        }
    }

    /// Acks stored messages as their transactions commit (or Redis takes them), and
    /// broadcasts them in id order (one board).
    pub async fn run_commits(self: Rc<Self>, mut results: UnboundedReceiver<Vec<Committed>>) {
        while let Some(batch) = results.recv().await {
            let delivery = self.delivery();
            for committed in batch {
                self.commits.committed(committed, &delivery);
            }
            // Let the transports write this batch out before the next one queues more, so a
            // burst of commits does not pile up in the clients' queues (which are bounded).
            tokio::task::yield_now().await;
        }
    }

    /// Broadcasts what the shared stream delivers, in its order (cluster mode).
    #[cfg(feature = "redis")]
    pub async fn run_tail(self: Rc<Self>, mut events: UnboundedReceiver<TailEvent>) {
        while let Some(event) = events.recv().await {
            match event {
                TailEvent::Positioned(key) => self.messages.positioned(key),
                TailEvent::Entries(entries) => {
                    let delivery = self.delivery();
                    for entry in &entries {
                        let message = &entry.message;
                        // Names come from other servers: only what this one would take.
                        let name = message
                            .name
                            .as_deref()
                            .and_then(|name| names::check(name).ok());
                        let stored = Stored {
                            id: entry.key,
                            content: &message.content,
                            name,
                            time: message.time,
                            client_offset: None,
                        };
                        commits::delivered(&stored, &delivery);
                    }
                    tokio::task::yield_now().await;
                }
            }
        }
    }

    /// Stops the store after its queued commits, checkpointing the WAL.
    pub fn close_store(&self) {
        self.messages.close();
    }

    /// Resolves to `Ok` when the database answers a read.
    pub fn check_store(&self) -> impl std::future::Future<Output = Result<(), StoreError>> + use<> {
        self.messages.check()
    }

    pub fn metrics(&self) -> &ChatMetrics {
        &self.metrics
    }

    /// Whether the chat can take more messages now: while the store's queue is nearly full,
    /// the transports stop reading client input (see `Engine::set_intake`).
    pub fn accepting(&self) -> bool {
        self.messages.has_room()
    }

    /// Bytes reserved for replay pages now.
    pub fn replay_memory_reserved(&self) -> usize {
        self.replay_memory.reserved()
    }

    /// Sockets connected to the chat.
    pub fn connected(&self) -> usize {
        self.hub.len()
    }

    /// Highest message id broadcast (or stored before start).
    pub fn last_id(&self) -> i64 {
        self.messages.last_known()
    }

    /// The oldest message id kept, and the messages retention deleted since start.
    pub fn retention(&self) -> (i64, u64) {
        self.messages.retention()
    }

    fn on_chat_message(&self, socket: &Rc<Socket<ChatSocket>>, event: &Event<'_>) {
        if !socket.data().peer.budget.take(Instant::now()) {
            self.metrics.count_rate_limited();
            log::debug!("socket {}: over the message rate limit", socket.id());
            if let Some(ack) = event.ack {
                commits::ack_error(socket, ack, "too many messages: slow down");
            }
            return;
        }
        let limits = Limits {
            max_message_bytes: self.config.max_message_bytes,
            max_client_offset_bytes: self.config.max_client_offset_bytes,
        };
        let mut insert = match message::parse(event, limits) {
            Ok(insert) => insert,
            Err(invalid) => return refuse(socket, event, &invalid),
        };
        insert.name = socket.data().name().map(|name| name.to_string());
        match self.messages.append(insert) {
            Ok(()) => self.commits.expect(socket, event.ack),
            Err(error) => {
                NOT_QUEUED.log(
                    log::Level::Warn,
                    format_args!("message not stored: {error}"),
                );
                refuse(socket, event, &NOT_STORED);
            }
        }
    }
}

impl NamespaceHandler for Chat {
    type Data = ChatSocket;

    fn admit(&self, auth: &str, address: IpAddr) -> Result<ChatSocket, Refusal> {
        let now = Instant::now();
        let peer = self.peers.get(address, now);
        if self.config.token.is_some() {
            // An address that guessed wrong waits before its next try, whatever it sends.
            let checked = if peer.waiting(now) {
                Err(auth::UNAUTHORIZED)
            } else {
                auth::check_token(self.config.token.as_deref(), auth)
            };
            if let Err(refusal) = checked {
                peer.token_refused(now);
                // Guessing clients must not be able to flood the log: one line a minute
                // at info.
                log::debug!("refused a client at {address} without the access token");
                REFUSED_TOKENS.add();
                return Err(refusal);
            }
            peer.token_accepted();
        }
        let opted = opt_in::read(auth).map_err(|bad| Refusal::new(bad.message()))?;
        Ok(ChatSocket::new(
            peer,
            opted.extended,
            opted.newest,
            opted.name.map(Rc::from),
        ))
    }

    /// Offsets are ids this gateway broadcast: one it never gave out cannot say what the
    /// client missed, so recovery fails and the offset replay takes over.
    fn accepts_offset(&self, offset: &str) -> bool {
        self.messages
            .ids()
            .key_of(offset)
            .is_some_and(|id| (0..=self.messages.last_broadcast()).contains(&id))
    }

    fn on_connect(self: &Rc<Self>, socket: &Rc<Socket<ChatSocket>>, auth: &str) {
        // A recovered socket resumes after the client's last offset; any other starts after
        // `auth.serverOffset`. Clamped to what exists, so a client that remembers more than
        // this database holds (say, after a reset) still gets new messages.
        let after = match socket.recovered_offset() {
            Some(offset) => self.messages.ids().key_of(offset).unwrap_or(0),
            None => history::server_offset(auth, self.messages.ids()),
        };
        let last = self.messages.last_broadcast();
        let after = after.min(last);
        self.presence_joined(socket);
        log::debug!(
            "socket {} connected{}, replaying after {after}",
            socket.id(),
            if socket.recovered() {
                " (recovered)"
            } else {
                ""
            }
        );
        if after >= last {
            socket.go_live(after);
            return;
        }
        socket.hold_broadcasts();
        // A recovered session gets all it missed (a short drop, by design).
        match socket.data().newest {
            Some(newest) if !socket.recovered() => {
                let newest = usize::from(newest);
                tokio::task::spawn_local(self.clone().replay_newest(socket.clone(), after, newest));
            }
            _ => self.replay(socket, after),
        }
    }

    /// The socket reads slower than the chat broadcasts: rather than letting broadcasts pile
    /// up in memory (or dropping the client), it gets them from the store as fast as it
    /// reads, and live broadcasts again once it has caught up.
    fn on_behind(self: &Rc<Self>, socket: &Rc<Socket<ChatSocket>>, after: i64) {
        self.metrics.count_catch_up();
        log::debug!(
            "socket {} fell behind after {after}: catching up",
            socket.id()
        );
        self.replay(socket, after);
    }

    fn on_event(self: &Rc<Self>, socket: &Rc<Socket<ChatSocket>>, event: Event<'_>) {
        let extended = socket.data().extended;
        match event.name {
            CHAT_EVENT => self.on_chat_message(socket, &event),
            HISTORY_EVENT if extended => self.on_history(socket, &event),
            NAME_EVENT if extended => self.on_name(socket, &event),
            TYPING_EVENT if extended => self.on_typing(socket),
            _ => refuse(socket, &event, &"unknown event"),
        }
    }

    fn on_disconnect(self: &Rc<Self>, socket: &Rc<Socket<ChatSocket>>, reason: DisconnectReason) {
        log::debug!("socket {} disconnected: {reason}", socket.id());
        self.presence_changed(
            self.presence
                .leave(socket.data().name().as_ref(), socket.data().extended),
        );
    }
}

impl Chat {
    /// Charges a request other than a message (a history page, a name change) to the
    /// client's send budget, which messages share: each costs the store or every page.
    fn within_budget(&self, socket: &Socket<ChatSocket>, event: &Event<'_>) -> bool {
        if socket.data().peer.budget.take(Instant::now()) {
            return true;
        }
        self.metrics.count_rate_limited();
        refuse(socket, event, &"too many requests: slow down");
        false
    }

    /// `('history', {before, after, limit}, ack)`: a page of stored messages in the ack.
    fn on_history(&self, socket: &Rc<Socket<ChatSocket>>, event: &Event<'_>) {
        let Some(ack) = event.ack else {
            return refuse(socket, event, &"history needs an ack");
        };
        if !self.within_budget(socket, event) {
            return;
        }
        let query = match browse::parse(event) {
            Ok(query) => query,
            Err(reason) => return refuse(socket, event, &reason),
        };
        if socket.data().reading_history.replace(true) {
            return refuse(socket, event, &"one history request at a time");
        }
        tokio::task::spawn_local(browse::serve(
            self.messages.clone(),
            self.replay_memory.clone(),
            socket.clone(),
            query,
            ack,
        ));
    }

    /// `('name', name, ack)`: the socket's display name from now on.
    fn on_name(self: &Rc<Self>, socket: &Rc<Socket<ChatSocket>>, event: &Event<'_>) {
        if !self.within_budget(socket, event) {
            return;
        }
        let name = match event.args().next().map(names::parse) {
            Some(Ok(name)) => Rc::<str>::from(name),
            Some(Err(bad)) => return refuse(socket, event, &bad),
            None => return refuse(socket, event, &names::BadName::NotAString),
        };
        let old = socket.data().name.replace(Some(name.clone()));
        if old.as_deref() != Some(&*name) {
            self.presence_changed(self.presence.rename(old.as_ref(), &name));
        }
        if let Some(ack) = event.ack {
            let mut reply = String::from("[{\"name\":");
            crate::json::write_string(&mut reply, &name);
            reply.push_str("}]");
            socket.ack(ack, &reply, &[]);
        }
    }

    /// `('typing')`: passed on as `('typing', name)` to the other pages, at most once per
    /// [`TYPING_INTERVAL`] per socket and [`TYPING_RATE`] a second in all, and only where
    /// there is room (a notice that waits is stale). Never stored.
    fn on_typing(&self, socket: &Rc<Socket<ChatSocket>>) {
        let Some(name) = socket.data().name() else {
            return;
        };
        let now = Instant::now();
        let last = &socket.data().last_typing;
        if last.get().is_some_and(|at| now < at + TYPING_INTERVAL) {
            return;
        }
        last.set(Some(now));
        if !self.typing_budget.take(now) {
            return;
        }
        let packet = self.hub.encode_event(TYPING_EVENT, name.len() + 8, |args| {
            args.string(&name);
        });
        self.hub.broadcast_volatile(&packet, |other| {
            let data = other.data();
            data.extended && data.name().as_deref() != Some(&*name)
        });
    }

    /// Counts the socket in, and tells a page who is online.
    fn presence_joined(self: &Rc<Self>, socket: &Rc<Socket<ChatSocket>>) {
        let data = socket.data();
        self.presence_changed(self.presence.join(data.name().as_ref(), data.extended));
        if data.extended {
            let snapshot = format!(",{}]", self.presence.snapshot());
            socket.emit(PRESENCE_EVENT, &snapshot, &[]);
        }
    }

    /// Sends the presence update soon, when `first` says this is the first change since the
    /// last one: changes in between go out together.
    fn presence_changed(self: &Rc<Self>, first: bool) {
        if !first {
            return;
        }
        let chat = self.clone();
        tokio::task::spawn_local(async move {
            tokio::time::sleep(PRESENCE_DELAY).await;
            let Some(update) = chat.presence.take_update() else {
                return;
            };
            let packet = chat.hub.encode_event(PRESENCE_EVENT, update.len(), |args| {
                args.json(|out| out.push_str(&update));
            });
            chat.hub
                .broadcast_volatile(&packet, |socket| socket.data().extended);
        });
    }

    /// Replays at most the `newest` messages after `after`; when that skips some, the client
    /// first gets `('missed', {count, more, after, before})` to offer them as history.
    async fn replay_newest(
        self: Rc<Self>,
        socket: Rc<Socket<ChatSocket>>,
        after: i64,
        newest: usize,
    ) {
        // A failed read is tried again (as replay does): replaying everything instead would
        // stream a whole table into a page that asked for a window.
        let window = loop {
            if !socket.is_connected() {
                return;
            }
            let read = match self.messages.request_window(after, newest) {
                Ok(request) => request.window().await,
                Err(_) => return,
            };
            match read {
                Ok(window) => break window,
                Err(error) => {
                    log::warn!(
                        "socket {}: reading the history window failed: {error}",
                        socket.id()
                    );
                    tokio::time::sleep(history::REPLAY_RETRY).await;
                }
            }
        };
        // The window counts rows broadcast when it was read, so the replay ends exactly
        // where live broadcasts take over.
        let start = window.start_after;
        if window.skipped > 0 || window.trimmed {
            let mut missed = String::with_capacity(96);
            missed.push_str(",{\"count\":");
            missed.push_str(itoa::Buffer::new().format(window.skipped));
            missed.push_str(",\"more\":");
            missed.push_str(if window.more { "true" } else { "false" });
            missed.push_str(",\"after\":");
            missed.push_str(itoa::Buffer::new().format(after));
            missed.push_str(",\"before\":");
            missed.push_str(itoa::Buffer::new().format(start + 1));
            if window.trimmed {
                missed.push_str(",\"trimmed\":true");
            }
            missed.push_str("}]");
            socket.emit(MISSED_EVENT, &missed, &[]);
        }
        self.replay(&socket, start);
    }

    /// Sends `socket` (whose broadcasts are held) every stored message after `after`, then
    /// lets broadcasts through again.
    fn replay(&self, socket: &Rc<Socket<ChatSocket>>, after: i64) {
        let settings = ReplaySettings {
            page: replay_page(&self.config),
            recovery_offsets: self.config.recovery_offsets,
        };
        tokio::task::spawn_local(history::replay(
            self.messages.clone(),
            self.metrics.clone(),
            self.replay_memory.clone(),
            socket.clone(),
            after,
            settings,
        ));
    }
}

/// Messages the store would not take (busy or stopped): a flood must not flood the log too.
static NOT_QUEUED: Throttle = Throttle::new(20, Duration::from_secs(60));

static REFUSED_TOKENS: Tally = Tally::new(
    "clients refused for a missing or wrong access token",
    Duration::from_secs(60),
);

fn replay_page(config: &ChatConfig) -> PageLimit {
    PageLimit {
        rows: config.replay_page,
        bytes: config.replay_page_bytes,
    }
}

/// Refused events: a client can send thousands a second, so their lines are rationed.
static REFUSED_EVENTS: Throttle = Throttle::new(20, Duration::from_secs(60));

/// Logs a refused event and tells the client why in its ack, when it asked for one.
fn refuse(socket: &Socket<ChatSocket>, event: &Event<'_>, reason: &dyn std::fmt::Display) {
    REFUSED_EVENTS.log(
        log::Level::Info,
        format_args!(
            "socket {}: refused {}: {reason}",
            socket.id(),
            untrusted(event.name)
        ),
    );
    if let Some(ack) = event.ack {
        commits::ack_error(socket, ack, &reason.to_string());
    }
}
