//! WebSocket: a session from the start, or the upgrade of a polling session.
//!
//! hyper answers the HTTP handshake; then the connection is driven here directly on the
//! `TcpStream`, with tungstenite's frame codec (`ws_codec`). Doing the I/O ourselves is what
//! keeps clients cheap: an idle connection owns no buffers (reads go through one scratch buffer
//! per thread), a broadcast frame's bytes are shared by every receiver's queue, and each
//! wake-up gathers a connection's queued frames into one write.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until};

use super::body::Body;
use super::error::EngineError;
use super::io::HyperIo;
use super::ws_codec::{self, Decoded, Decoder, Inbound, MAX_SERVER_HEADER, Opcode, WsError};
use crate::budget::{Budget, Lease};
use crate::engineio::INTAKE_MAX_PAUSE;
use crate::engineio::packet::{self, Packet};
use crate::engineio::session::ENTRY_COST;
use crate::engineio::{CloseReason, EncodedPacket, Engine, Session, TransportKind};
use crate::logger::Throttle;

/// True when the request asks for a WebSocket (`Upgrade: websocket`).
pub fn is_upgrade_request(request: &Request<Incoming>) -> bool {
    request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Answers the WebSocket handshake and runs the connection in its own task: a new session when
/// `session` is `None`, else an upgrade attempt for that polling session.
pub fn upgrade(
    engine: Rc<Engine>,
    mut request: Request<Incoming>,
    session: Option<Rc<Session>>,
) -> Response<Body> {
    let (response, on_upgrade) = match handshake(&mut request) {
        Ok(accepted) => accepted,
        Err(refused) => return refused.response(),
    };
    // A WebSocket for a session that is already upgraded (or closed) is accepted and then
    // closed at once, as engine.io does; the session itself is left alone.
    let session = match session {
        Some(session) if session.transport() != TransportKind::Polling || session.is_closed() => {
            Err(())
        }
        other => Ok(other),
    };
    tokio::task::spawn_local(async move {
        let Some((stream, read_buf)) = upgraded(on_upgrade).await else {
            return;
        };
        // Boxed: the task's future would otherwise hold the driver in several of its states,
        // and tokio rounds every task up to 128 bytes.
        let mut conn = Box::new(Driver::new(
            stream,
            engine.config().max_payload,
            [engine.inbound(), engine.outbound()],
            &read_buf,
        ));
        // The leftover bytes share hyper's whole read buffer: let it go now, not at the end.
        drop(read_buf);
        match session {
            Err(()) => conn.close_now(1000),
            Ok(None) => {
                let session = engine.open(TransportKind::WebSocket, conn.peer());
                run(&engine, conn, &session).await;
            }
            // Boxed: the probe's timer would otherwise enlarge every connection's task for
            // its whole life, though an upgrade takes a moment.
            Ok(Some(session)) => match Box::pin(probe(&engine, &mut conn, &session)).await {
                Probe::Upgraded => run(&engine, conn, &session).await,
                Probe::UpgradedThenEnded(end) => finish(conn, &session, end),
                Probe::Failed => conn.close_now(1000),
            },
        }
    });
    response
}

/// Answers a WebSocket handshake with a connection that sends every text and binary message
/// back as it came, up to `max_message` bytes: the conformance example's `/autobahn`, for
/// Autobahn|Testsuite. It runs on the same driver as Engine.IO's WebSocket transport (frame
/// decoding, fragments, control frames, gathered writes); only what happens to a message
/// differs.
pub fn echo(mut request: Request<Incoming>, max_message: usize) -> Response<Body> {
    let (response, on_upgrade) = match handshake(&mut request) {
        Ok(accepted) => accepted,
        Err(refused) => return refused.response(),
    };
    tokio::task::spawn_local(async move {
        let Some((stream, read_buf)) = upgraded(on_upgrade).await else {
            return;
        };
        // Its own budgets: room for one message in parts and a few on their way back.
        let inbound = Budget::new(max_message.saturating_mul(2));
        let outbound = Budget::new(max_message.saturating_mul(4));
        let conn = Box::new(Driver::new(
            stream,
            max_message,
            [&inbound, &outbound],
            &read_buf,
        ));
        drop(read_buf);
        run_echo(conn).await;
    });
    response
}

/// Checks a WebSocket handshake request; returns the 101 answer and the connection to come.
fn handshake(
    request: &mut Request<Incoming>,
) -> Result<(Response<Body>, hyper::upgrade::OnUpgrade), EngineError> {
    let headers = request.headers();
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| version_ok)
    else {
        return Err(EngineError::BadRequest);
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(request);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    Ok((response, on_upgrade))
}

/// The TCP stream once hyper has sent the 101, and what it had read past the handshake.
async fn upgraded(on_upgrade: hyper::upgrade::OnUpgrade) -> Option<(TcpStream, Bytes)> {
    let upgraded = match on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(error) => {
            log::debug!("websocket upgrade failed: {error}");
            return None;
        }
    };
    // The HTTP server runs on plain TCP streams, so this always succeeds.
    let Ok(parts) = upgraded.downcast::<HyperIo<TcpStream>>() else {
        log::error!("websocket upgrade on an unexpected stream type");
        return None;
    };
    let hyper::upgrade::Parts { io, read_buf, .. } = parts;
    Some((io.0, read_buf))
}

/// A frame waiting to be written.
struct Outgoing {
    opcode: Opcode,
    payload: Bytes,
}

/// Frames waiting to be written: taken from the session's queue in batches.
#[derive(Default)]
struct Outbox {
    frames: VecDeque<Outgoing>,
    /// Bytes of the first frame (header included) already written.
    written: usize,
    /// What the data frames cost the outbound budget, as the session's queue counted them.
    cost: usize,
}

impl Extend<EncodedPacket> for Outbox {
    fn extend<I: IntoIterator<Item = EncodedPacket>>(&mut self, frames: I) {
        let cost = &mut self.cost;
        self.frames.extend(frames.into_iter().map(|frame| {
            *cost += frame.len() + ENTRY_COST;
            match frame {
                EncodedPacket::Text(text) => Outgoing {
                    opcode: Opcode::Text,
                    payload: text.into_bytes(),
                },
                EncodedPacket::Binary(data) => Outgoing {
                    opcode: Opcode::Binary,
                    payload: data,
                },
            }
        }));
    }
}

impl Outbox {
    /// Queues a control frame (pong, close) ahead of data frames, after the control frames
    /// already waiting, but never inside a frame already partly written.
    fn push_control(&mut self, opcode: Opcode, payload: Bytes) {
        let first_unstarted = usize::from(self.written > 0).min(self.frames.len());
        let waiting = self
            .frames
            .iter()
            .skip(first_unstarted)
            .take_while(|frame| matches!(frame.opcode, Opcode::Pong | Opcode::Close))
            .count();
        // Each ping gets its pong, up to a few waiting: past that only the latest ping is
        // answered (RFC 6455 5.5.3 allows it), so a client that pings without reading holds
        // a bounded number of pongs.
        if opcode == Opcode::Pong
            && waiting >= MAX_WAITING_PONGS
            && let Some(last) = self
                .frames
                .iter_mut()
                .skip(first_unstarted)
                .take(waiting)
                .rfind(|frame| frame.opcode == Opcode::Pong)
        {
            last.payload = payload;
            return;
        }
        self.frames
            .insert(first_unstarted + waiting, Outgoing { opcode, payload });
    }
}

/// Pongs that may wait to be written before later pings replace the last one.
const MAX_WAITING_PONGS: usize = 16;

/// How long a graceful close may take (see [`Driver::close_gracefully`]).
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Size of the per-thread buffer that frames are gathered in for one write.
const WRITE_BUFFER_SIZE: usize = 64 * 1024;

/// Size of the per-thread scratch buffer every connection reads into.
const SCRATCH_SIZE: usize = 16 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
    static WRITE_BUFFER: RefCell<Box<[u8]>> =
        RefCell::new(vec![0; WRITE_BUFFER_SIZE].into_boxed_slice());
}

/// Socket reads per turn of a connection's task; see [`Driver::read_available`].
const READS_PER_TURN: usize = 4;

/// Whether a read turn emptied the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadState {
    Drained,
    More,
}

/// How a connection ended, as seen while reading.
#[derive(Debug)]
enum End {
    /// The client closed the connection, or the socket failed.
    Closed,
    /// The client sent a close frame, with this status code if any: it is echoed back, as
    /// RFC 6455 5.5.1 has it.
    CloseFrame(Option<u16>),
    /// The client broke the WebSocket protocol.
    Protocol(WsError),
    /// The session ended while handling a message (bad Engine.IO packet, close packet).
    Session(CloseReason),
    /// The message being received would take the inbound budget past its limit.
    Busy,
}

/// A WebSocket connection: the stream plus the little state between frames.
struct Driver {
    stream: TcpStream,
    decoder: Decoder,
    /// A frame that arrived in part; unallocated between frames.
    partial: Vec<u8>,
    /// `partial` and the decoder's fragments, held from the engine's inbound budget.
    held: Lease,
    outbox: Outbox,
    /// The outbox's data frames, held from the engine's outbound budget as the session's
    /// queue counted them.
    sending: Lease,
}

impl Driver {
    /// The client's address.
    fn peer(&self) -> IpAddr {
        self.stream
            .peer_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |addr| addr.ip())
    }

    /// A connection over `stream` taking messages of up to `max_message` bytes, drawing on
    /// the `[inbound, outbound]` budgets; `already_read` is what hyper read past the
    /// handshake.
    fn new(
        stream: TcpStream,
        max_message: usize,
        [inbound, outbound]: [&Rc<Budget>; 2],
        already_read: &[u8],
    ) -> Driver {
        Driver {
            stream,
            decoder: Decoder::new(max_message),
            partial: already_read.to_vec(),
            held: Lease::new(inbound),
            outbox: Outbox::default(),
            sending: Lease::new(outbound),
        }
    }

    /// Takes the next batch of the session's queue into the (empty) outbox; its share of the
    /// outbound budget moves from the queue to this connection.
    fn take_batch(&mut self, session: &Session) {
        session.take_queued(&mut self.outbox, WRITE_BUFFER_SIZE);
        // The queue gave back as much just now, so this always fits.
        self.sending.hold(self.outbox.cost);
    }

    /// Accounts for what this connection buffers of messages still arriving; `Busy` when
    /// the engine's inbound budget cannot cover it.
    fn account(&mut self) -> Result<(), End> {
        let buffered = self.partial.capacity() + self.decoder.buffered();
        if self.held.hold(buffered) {
            Ok(())
        } else {
            Err(End::Busy)
        }
    }

    /// Reads and decodes what the socket has, handing each text or binary message to
    /// `on_message`; answers pings. Returns `Drained` once the socket would block, or `More`
    /// after [`READS_PER_TURN`] reads, so that one client sending without pause cannot keep
    /// the (single) thread from everyone else.
    fn read_available(
        &mut self,
        mut on_message: impl FnMut(&mut Outbox, Inbound<'_>) -> Result<(), End>,
    ) -> Result<ReadState, End> {
        for _ in 0..READS_PER_TURN {
            let read = if self.partial.is_empty() {
                SCRATCH.with_borrow_mut(|scratch| {
                    let n = match self.stream.try_read(scratch) {
                        Ok(0) => return Err(End::Closed),
                        Ok(n) => n,
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                        Err(_) => return Err(End::Closed),
                    };
                    let used = decode_frames(
                        &mut self.decoder,
                        &mut self.outbox,
                        &mut scratch[..n],
                        &mut on_message,
                    )?;
                    self.partial.extend_from_slice(&scratch[used..n]);
                    Ok(n)
                })?
            } else {
                self.partial.reserve(4096);
                let n = match self.stream.try_read_buf(&mut self.partial) {
                    Ok(0) => return Err(End::Closed),
                    Ok(n) => n,
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
                    Err(_) => return Err(End::Closed),
                };
                self.decode_partial(&mut on_message)?;
                n
            };
            self.account()?;
            if read == 0 {
                return Ok(ReadState::Drained);
            }
        }
        Ok(ReadState::More)
    }

    /// Decodes whatever whole frames `partial` holds (bytes hyper read past the handshake, or
    /// the rest of a frame that came in pieces).
    fn decode_partial(
        &mut self,
        on_message: &mut impl FnMut(&mut Outbox, Inbound<'_>) -> Result<(), End>,
    ) -> Result<(), End> {
        if self.partial.is_empty() {
            return Ok(());
        }
        let used = decode_frames(
            &mut self.decoder,
            &mut self.outbox,
            &mut self.partial,
            on_message,
        )?;
        self.partial.drain(..used);
        if self.partial.is_empty() {
            self.partial = Vec::new();
        }
        Ok(())
    }

    /// Writes queued frames until done (true) or the socket would block (false).
    ///
    /// Frames are copied side by side into the thread's write buffer and sent with one
    /// `write`: most are a few dozen bytes, and one contiguous write costs the kernel far less
    /// than as many small iovecs. A frame too large for the buffer goes alone with `writev`.
    fn write_available(&mut self) -> io::Result<bool> {
        let outbox = &mut self.outbox;
        while let Some(first) = outbox.frames.front() {
            let first_len =
                ws_codec::header_len(first.payload.len()) + first.payload.len() - outbox.written;
            let result = if first_len > WRITE_BUFFER_SIZE {
                let mut header = [0u8; MAX_SERVER_HEADER];
                let mut skip = outbox.written;
                let slices: heapless::Vec<IoSlice<'_>, 2> =
                    unwritten_parts(first, &mut header, &mut skip)
                        .map(IoSlice::new)
                        .collect();
                self.stream.try_write_vectored(&slices)
            } else {
                WRITE_BUFFER.with_borrow_mut(|buffer| {
                    let filled = fill_write_buffer(buffer, &outbox.frames, outbox.written);
                    self.stream.try_write(&buffer[..filled])
                })
            };
            let mut written = match result {
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) => return Err(error),
            };
            // Retire whole frames; remember how far into the next one the write got.
            written += outbox.written;
            outbox.written = 0;
            while let Some(frame) = outbox.frames.front() {
                let total = ws_codec::header_len(frame.payload.len()) + frame.payload.len();
                if written < total {
                    outbox.written = written;
                    break;
                }
                written -= total;
                if matches!(frame.opcode, Opcode::Text | Opcode::Binary) {
                    outbox.cost -= frame.payload.len() + ENTRY_COST;
                }
                outbox.frames.pop_front();
            }
            self.sending.hold(outbox.cost);
        }
        // A burst leaves a large empty buffer behind; an idle client should not keep it.
        if outbox.frames.capacity() > 256 {
            outbox.frames = VecDeque::new();
        }
        Ok(true)
    }

    /// Waits until the socket is readable (when `want_read`) or writable (when `want_write`);
    /// at least one of them.
    async fn ready(&self, want_read: bool, want_write: bool) -> io::Result<tokio::io::Ready> {
        let interest = match (want_read, want_write) {
            (true, true) => Interest::READABLE | Interest::WRITABLE,
            (false, true) => Interest::WRITABLE,
            _ => Interest::READABLE,
        };
        self.stream.ready(interest).await
    }

    /// Sends what is queued and a close frame, then ends the TCP connection as RFC 6455 7.1.1
    /// has the server do: a FIN, and what the client still sends read and dropped, so that
    /// unread input does not turn the close into a reset that could lose the close frame. At
    /// most [`CLOSE_WAIT`] for all of it.
    async fn close_gracefully(mut self, code: u16) {
        self.outbox.frames.push_back(Outgoing {
            opcode: Opcode::Close,
            payload: Bytes::copy_from_slice(&code.to_be_bytes()),
        });
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            loop {
                match self.write_available() {
                    Ok(true) => break,
                    Ok(false) => {
                        if self.ready(false, true).await.is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.stream).await;
            let mut sink = [0u8; 4096];
            loop {
                if self.stream.readable().await.is_err() {
                    return;
                }
                match self.stream.try_read(&mut sink) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        })
        .await;
    }

    /// Sends a close frame if the socket takes it now, then drops the connection: a client
    /// that stopped reading is not waited for.
    fn close_now(mut self, code: u16) {
        // Nothing may follow the close frame; a frame already partly written is finished.
        let keep = usize::from(self.outbox.written > 0);
        self.outbox.frames.truncate(keep);
        self.outbox.frames.push_back(Outgoing {
            opcode: Opcode::Close,
            payload: Bytes::copy_from_slice(&code.to_be_bytes()),
        });
        let _ = self.write_available();
    }
}

/// Copies as many whole frames as fit into `buffer`, the first one from byte `skip` on;
/// returns how many bytes it filled.
fn fill_write_buffer(buffer: &mut [u8], frames: &VecDeque<Outgoing>, mut skip: usize) -> usize {
    let mut filled = 0;
    for frame in frames {
        let total = ws_codec::header_len(frame.payload.len()) + frame.payload.len() - skip;
        if filled + total > buffer.len() {
            break;
        }
        let mut header = [0u8; MAX_SERVER_HEADER];
        for part in unwritten_parts(frame, &mut header, &mut skip) {
            buffer[filled..filled + part.len()].copy_from_slice(part);
            filled += part.len();
        }
    }
    filled
}

/// A frame's header (encoded into `header`) and payload, less the first `skip` bytes, which
/// were written already; `skip` is used up.
fn unwritten_parts<'a>(
    frame: &'a Outgoing,
    header: &'a mut [u8; MAX_SERVER_HEADER],
    skip: &mut usize,
) -> impl Iterator<Item = &'a [u8]> {
    let header_len = ws_codec::encode_header(frame.opcode, frame.payload.len(), header);
    let mut parts = [&header[..header_len], &frame.payload[..]];
    for part in &mut parts {
        let cut = (*skip).min(part.len());
        *part = &part[cut..];
        *skip -= cut;
    }
    parts.into_iter().filter(|part| !part.is_empty())
}

/// Decodes the whole frames at the start of `buf`; returns how many bytes they took.
fn decode_frames(
    decoder: &mut Decoder,
    outbox: &mut Outbox,
    buf: &mut [u8],
    on_message: &mut impl FnMut(&mut Outbox, Inbound<'_>) -> Result<(), End>,
) -> Result<usize, End> {
    let mut used = 0;
    while used < buf.len() {
        match decoder.decode(&mut buf[used..]).map_err(End::Protocol)? {
            Decoded::Incomplete(_) => break,
            Decoded::Frame { consumed, message } => {
                used += consumed;
                match message {
                    None | Some(Inbound::Pong) => {}
                    Some(Inbound::Ping(data)) => {
                        outbox.push_control(Opcode::Pong, Bytes::copy_from_slice(data));
                    }
                    Some(Inbound::Close(code)) => return Err(End::CloseFrame(code)),
                    Some(message) => on_message(outbox, message)?,
                }
            }
        }
    }
    Ok(used)
}

/// Hands a client message to the engine.
fn deliver(engine: &Engine, session: &Rc<Session>, message: Inbound<'_>) -> Result<(), End> {
    match message {
        Inbound::Text(text) => match packet::decode(text) {
            Ok(packet) => engine.receive(session, packet),
            Err(error) => {
                log::debug!("session {}: {error}", session.sid());
                return Err(End::Session(CloseReason::ParseError));
            }
        },
        Inbound::Binary(data) => {
            engine.receive(session, Packet::Binary(Bytes::copy_from_slice(data)));
        }
        _ => {}
    }
    match session.close_reason() {
        Some(reason) => Err(End::Session(reason)),
        None => Ok(()),
    }
}

/// How an upgrade attempt ended.
enum Probe {
    /// The connection now carries the session.
    Upgraded,
    /// The attempt failed; the session goes on polling.
    Failed,
    /// The upgrade went through, then the connection or the session ended.
    UpgradedThenEnded(End),
}

/// The upgrade handshake on a new WebSocket: `2probe` → `3probe`, then `5`.
async fn probe(engine: &Engine, conn: &mut Driver, session: &Rc<Session>) -> Probe {
    #[derive(Clone, Copy, PartialEq)]
    enum Stage {
        AwaitingProbe,
        Probed,
        Upgraded,
    }
    let deadline = Instant::now() + engine.config().upgrade_timeout;
    let stage = Cell::new(Stage::AwaitingProbe);
    let mut on_message = |outbox: &mut Outbox, message: Inbound<'_>| match (stage.get(), message) {
        (Stage::AwaitingProbe, Inbound::Text("2probe")) if session.begin_probe() => {
            stage.set(Stage::Probed);
            outbox.extend([EncodedPacket::text("3probe")]);
            Ok(())
        }
        (Stage::Probed, Inbound::Text("5")) if session.finish_upgrade() => {
            log::debug!("session {}: upgraded to websocket", session.sid());
            stage.set(Stage::Upgraded);
            Ok(())
        }
        // What the client sends right after `5` already belongs to the session.
        (Stage::Upgraded, message) => deliver(engine, session, message),
        _ => Err(End::Closed),
    };
    // `2probe` may have come in with the handshake, read by hyper already.
    let mut result = conn.decode_partial(&mut on_message);
    while result.is_ok() && stage.get() != Stage::Upgraded {
        let flushed = match conn.write_available() {
            Ok(flushed) => flushed,
            Err(_) => {
                result = Err(End::Closed);
                break;
            }
        };
        let ready = tokio::select! {
            ready = conn.ready(true, !flushed) => ready,
            _ = sleep_until(deadline) => {
                log::debug!("session {}: upgrade timed out", session.sid());
                result = Err(End::Closed);
                break;
            }
        };
        if ready.is_err() {
            result = Err(End::Closed);
            break;
        }
        result = conn.read_available(&mut on_message).map(|_| ());
    }
    match (stage.get(), result) {
        (Stage::Upgraded, Ok(())) => Probe::Upgraded,
        (Stage::Upgraded, Err(end)) => Probe::UpgradedThenEnded(end),
        (Stage::Probed, _) => {
            session.abort_probe();
            Probe::Failed
        }
        _ => Probe::Failed,
    }
}

/// Moves packets both ways until the session or the connection ends.
async fn run(engine: &Engine, mut conn: Box<Driver>, session: &Rc<Session>) {
    // Frames hyper read past the handshake come first.
    if let Err(end) = conn.decode_partial(&mut |_: &mut Outbox, message: Inbound<'_>| {
        deliver(engine, session, message)
    }) {
        return finish(conn, session, end);
    }
    // Since when input has been held back for the application, if it is.
    let mut paused_since: Option<Instant> = None;
    loop {
        // Frames move from the session's queue only once the previous batch is written: what
        // a slow reader has not taken stays there, where the queue limits apply.
        if conn.outbox.frames.is_empty() {
            conn.take_batch(session);
        }
        let flushed = match conn.write_available() {
            Ok(flushed) => flushed,
            Err(_) => return finish(conn, session, End::Closed),
        };
        if flushed && session.queued() > 0 {
            continue;
        }
        if session.is_closed() {
            return conn.close_now(1000);
        }
        if session.overflowed() {
            // Closed on the heartbeat task's next turn; read nothing more from this client.
            session.closed().await;
            return;
        }
        // A client that stops reading leaves the write pending; when the session is closed
        // meanwhile (its queue overflowed, say), the connection is dropped. While the
        // application takes no input (its store is behind), nothing is read: the client's
        // frames wait in the network, for a second at most (a stuck store must not starve
        // pongs into a ping timeout).
        let reading = engine.accepting()
            || paused_since.is_some_and(|since| since.elapsed() >= INTAKE_MAX_PAUSE);
        paused_since = if reading {
            None
        } else {
            engine.watch_intake();
            paused_since.or_else(|| Some(Instant::now()))
        };
        let ready = tokio::select! {
            ready = conn.ready(reading, !flushed), if reading || !flushed => ready,
            _ = session.transport_woken(), if flushed => continue,
            _ = session.closed(), if !flushed => return,
            _ = engine.intake_changed(), if !reading => continue,
        };
        match ready {
            Ok(ready) if ready.is_readable() || ready.is_read_closed() => {
                match conn.read_available(|_, message| deliver(engine, session, message)) {
                    Ok(ReadState::Drained) => {}
                    // More is waiting: let the other tasks run first.
                    Ok(ReadState::More) => tokio::task::yield_now().await,
                    Err(end) => return finish(conn, session, end),
                }
            }
            Ok(_) => {}
            Err(_) => return finish(conn, session, End::Closed),
        }
    }
}

/// Sends every text and binary message back until the connection ends (see [`echo`]).
async fn run_echo(mut conn: Box<Driver>) {
    let mut echo = |outbox: &mut Outbox, message: Inbound<'_>| {
        match message {
            Inbound::Text(text) => outbox.extend([EncodedPacket::text(text.to_owned())]),
            Inbound::Binary(data) => {
                outbox.extend([EncodedPacket::Binary(Bytes::copy_from_slice(data))]);
            }
            _ => {}
        }
        Ok(())
    };
    let mut ended = conn.decode_partial(&mut echo).err();
    while ended.is_none() {
        let flushed = match conn.write_available() {
            Ok(flushed) => flushed,
            Err(_) => return,
        };
        match conn.ready(true, !flushed).await {
            Ok(ready) if ready.is_readable() || ready.is_read_closed() => {
                match conn.read_available(&mut echo) {
                    Ok(ReadState::Drained) => {}
                    Ok(ReadState::More) => tokio::task::yield_now().await,
                    Err(end) => ended = Some(end),
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
    let code = match ended {
        Some(End::CloseFrame(code)) => code.unwrap_or(1000),
        Some(End::Protocol(error)) => error.close_code(),
        Some(End::Busy) => 1013,
        _ => return,
    };
    conn.close_gracefully(code).await;
}

/// Connections closed for breaking the protocol: one line each, rationed.
static PROTOCOL_ERRORS: Throttle = Throttle::new(20, Duration::from_secs(60));

/// Ends a connection for `end`: tells the client why when it broke the protocol, and closes
/// the session.
fn finish(conn: Box<Driver>, session: &Rc<Session>, end: End) {
    match end {
        End::Closed => {
            conn.close_now(1000);
            session.close(CloseReason::TransportClose);
        }
        End::CloseFrame(code) => {
            conn.close_now(code.unwrap_or(1000));
            session.close(CloseReason::TransportClose);
        }
        End::Protocol(error) => {
            PROTOCOL_ERRORS.log(
                log::Level::Info,
                format_args!("session {}: {error}", session.sid()),
            );
            conn.close_now(error.close_code());
            session.close(CloseReason::TransportError);
        }
        End::Busy => {
            PROTOCOL_ERRORS.log(
                log::Level::Warn,
                format_args!(
                    "session {}: closed, the message it is sending would pass --inbound-memory",
                    session.sid()
                ),
            );
            // 1013, "try again later": the client reconnects, and recovers its session.
            conn.close_now(1013);
            session.close(CloseReason::TransportError);
        }
        End::Session(reason) => {
            // What the session queued before it ended (acks of earlier messages, a
            // CONNECT_ERROR) goes out first, as far as the socket takes it now.
            let mut conn = conn;
            conn.take_batch(session);
            let _ = conn.write_available();
            conn.close_now(1000);
            session.close(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(payloads: &[&'static [u8]]) -> VecDeque<Outgoing> {
        payloads
            .iter()
            .map(|p| Outgoing {
                opcode: Opcode::Text,
                payload: Bytes::from_static(p),
            })
            .collect()
    }

    #[test]
    fn pongs_wait_in_order_bounded_and_never_inside_a_started_frame() {
        let mut outbox = Outbox {
            frames: frames(&[b"abc", b"def"]),
            written: 1,
            cost: 0,
        };
        for n in 0..MAX_WAITING_PONGS + 3 {
            outbox.push_control(Opcode::Pong, Bytes::from(n.to_string()));
        }
        let order: Vec<(Opcode, String)> = outbox
            .frames
            .iter()
            .map(|f| (f.opcode, String::from_utf8_lossy(&f.payload).into_owned()))
            .collect();
        let mut expected = vec![(Opcode::Text, "abc".to_owned())];
        // One pong per ping, in order, up to the bound; the last then answers the latest.
        for n in 0..MAX_WAITING_PONGS - 1 {
            expected.push((Opcode::Pong, n.to_string()));
        }
        expected.push((Opcode::Pong, (MAX_WAITING_PONGS + 2).to_string()));
        expected.push((Opcode::Text, "def".to_owned()));
        assert_eq!(order, expected);
    }

    #[test]
    fn write_buffer_takes_whole_frames_and_resumes_mid_frame() {
        let queue = frames(&[b"abc", b"defg", b"hi"]);
        let mut buffer = [0u8; 11];
        // 5 + 6 bytes fit, the third frame (4 bytes) does not.
        assert_eq!(fill_write_buffer(&mut buffer, &queue, 0), 11);
        assert_eq!(&buffer[..], b"\x81\x03abc\x81\x04defg");
        // Resuming 4 bytes into the first frame: its last byte, then the rest.
        let mut buffer = [0u8; 64];
        let filled = fill_write_buffer(&mut buffer, &queue, 4);
        assert_eq!(&buffer[..filled], b"c\x81\x04defg\x81\x02hi");
        let filled = fill_write_buffer(&mut buffer, &queue, 1);
        assert_eq!(&buffer[..4], b"\x03abc");
        assert_eq!(filled, 14);
    }
}
