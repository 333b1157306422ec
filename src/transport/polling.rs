//! HTTP long-polling: a GET waits for packets, a POST delivers them.

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use hyper::body::{Body as _, Incoming};
use hyper::{Request, Response, StatusCode};

use super::body::{self, Body};
use super::error::EngineError;
use crate::budget::Lease;
use crate::engineio::session::{PollRefusal, PollReply};
use crate::engineio::{CloseReason, Engine, INTAKE_MAX_PAUSE, Session, TransportKind, payload};
use crate::logger::Throttle;

const CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

/// A new polling session: the body is the open packet.
pub fn handshake(engine: &Rc<Engine>, peer: IpAddr) -> Response<Body> {
    let session = engine.open(TransportKind::Polling, peer);
    let mut packets = Vec::new();
    session.take_queued(&mut packets, usize::MAX);
    body::response(StatusCode::OK, CONTENT_TYPE, payload::encode(&packets))
}

/// Clears the session's pending-GET mark however the request ends (answered or dropped).
struct PendingGet<'a>(&'a Session);

impl Drop for PendingGet<'_> {
    fn drop(&mut self) {
        self.0.end_get();
    }
}

/// Waits until the session has packets (or closes, or upgrades) and answers with them.
pub async fn get(session: &Rc<Session>) -> Response<Body> {
    match session.begin_get() {
        Ok(()) => {}
        Err(PollRefusal::DuplicateGet) => {
            // socket.io treats overlapping GETs as a broken client and ends the session; the
            // pending GET then answers with a close packet.
            log::debug!("session {}: overlapping GET", session.sid());
            session.close(CloseReason::TransportError);
            return EngineError::BadRequest.response();
        }
        Err(PollRefusal::Closed) => return EngineError::UnknownSid.response(),
        Err(_) => return EngineError::BadRequest.response(),
    }
    let _pending = PendingGet(session);
    loop {
        let body = match session.poll() {
            PollReply::Packets(packets) => {
                let payload = payload::encode(&packets);
                drop(packets);
                // The response stays in the outbound budget until hyper has taken it. The
                // queue just gave back at least as much (text), so this fits; a base64
                // binary, longer than it was queued, might not, and goes uncounted.
                let mut held = Lease::new(session.outbound());
                let _ = held.hold(payload.len());
                let mut response = body::response(StatusCode::OK, CONTENT_TYPE, payload);
                response.body_mut().hold(held);
                return response;
            }
            PollReply::Closed => "1".to_owned(),
            PollReply::Noop => "6".to_owned(),
            PollReply::Wait => {
                session.transport_woken().await;
                continue;
            }
        };
        return body::response(StatusCode::OK, CONTENT_TYPE, body);
    }
}

/// Clears the session's pending-POST mark however the request ends.
struct PendingPost<'a>(&'a Session);

impl Drop for PendingPost<'_> {
    fn drop(&mut self) {
        self.0.end_post();
    }
}

/// Reads a body of packets from the client and hands them to the engine.
pub async fn post(
    engine: &Rc<Engine>,
    session: &Rc<Session>,
    request: Request<Incoming>,
) -> Response<Body> {
    match session.begin_post() {
        Ok(()) => {}
        Err(PollRefusal::DuplicatePost) => {
            log::debug!("session {}: overlapping POST", session.sid());
            session.close(CloseReason::TransportError);
            return EngineError::BadRequest.response();
        }
        Err(PollRefusal::Closed) => return EngineError::UnknownSid.response(),
        Err(_) => return EngineError::BadRequest.response(),
    }
    let _pending = PendingPost(session);
    let max_payload = engine.config().max_payload;
    let timeout = engine.config().body_timeout;
    // The body is read only while the session lives, and only for so long: a client must not
    // keep a buffer of up to max_payload open past its session, or trickle it for ever.
    let read = tokio::select! {
        read = tokio::time::timeout(
            timeout,
            read_body(request.into_body(), max_payload, Lease::new(engine.inbound())),
        ) => read,
        () = session.wait_closed() => return EngineError::UnknownSid.response(),
    };
    let Ok(read) = read else {
        log::debug!(
            "session {}: polling body not sent within {timeout:?}",
            session.sid()
        );
        session.close(CloseReason::TransportError);
        return body::response(StatusCode::REQUEST_TIMEOUT, CONTENT_TYPE, "");
    };
    let body = match read {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            log::debug!(
                "session {}: polling body over {max_payload} bytes",
                session.sid()
            );
            return body::response(StatusCode::PAYLOAD_TOO_LARGE, CONTENT_TYPE, "");
        }
        Err(BodyError::Io) => return EngineError::BadRequest.response(),
        Err(BodyError::Busy) => {
            BUSY.log(
                log::Level::Warn,
                format_args!(
                    "session {}: closed, its polling body would pass --inbound-memory",
                    session.sid()
                ),
            );
            session.close(CloseReason::TransportError);
            return body::response(
                StatusCode::SERVICE_UNAVAILABLE,
                CONTENT_TYPE,
                "The server is busy; try again later.\n",
            );
        }
    };
    match payload::decode(&body, max_payload) {
        Ok(packets) => {
            // A store that cannot keep up pauses the body here, its client with it: a
            // second at most for the whole body.
            let deadline = tokio::time::Instant::now() + INTAKE_MAX_PAUSE;
            for packet in packets {
                engine.intake_open(deadline).await;
                if session.is_closed() {
                    break;
                }
                engine.receive(session, packet);
            }
            body::response(StatusCode::OK, "text/html", "ok")
        }
        Err(error) => {
            log::debug!("session {}: {error}", session.sid());
            session.close(CloseReason::ParseError);
            EngineError::BadRequest.response()
        }
    }
}

/// Bodies refused for the inbound budget: a crowd of clients can cause many, so their lines
/// are rationed.
static BUSY: Throttle = Throttle::new(20, Duration::from_secs(60));

enum BodyError {
    TooLarge,
    Io,
    /// The engine's inbound budget cannot hold the body.
    Busy,
}

/// Collects a request body, refusing it as soon as it exceeds `limit` or what `held` can
/// take from the engine's inbound budget.
async fn read_body(
    mut body: Incoming,
    limit: usize,
    mut held: Lease,
) -> Result<Vec<u8>, BodyError> {
    if body.size_hint().lower() > limit as u64 {
        return Err(BodyError::TooLarge);
    }
    let mut data = Vec::new();
    loop {
        // hyper's body frames: data chunks, or trailers (ignored).
        let frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await;
        match frame {
            None => return Ok(data),
            Some(Err(_)) => return Err(BodyError::Io),
            Some(Ok(frame)) => {
                if let Ok(chunk) = frame.into_data() {
                    if data.len() + chunk.len() > limit {
                        return Err(BodyError::TooLarge);
                    }
                    data.extend_from_slice(&chunk);
                    if !held.hold(data.capacity()) {
                        return Err(BodyError::Busy);
                    }
                }
            }
        }
    }
}
