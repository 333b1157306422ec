//! WebSocket: a session from the start, or the upgrade of a polling session.

use std::rc::Rc;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::WebSocketStream;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Error as WsError, Message};

use super::EngineError;
use super::io::TokioIo;
use crate::engineio::packet::{self, Packet};
use crate::engineio::{CloseReason, Engine, Frame, Session, TransportKind};
use crate::http::Body;

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

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
    let headers = request.headers();
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| version_ok)
    else {
        return EngineError::BadRequest.response();
    };
    // A WebSocket for a session that is already upgraded (or closed) is accepted and then
    // closed at once, as engine.io does; the session itself is left alone.
    let session = match session {
        Some(session) if session.transport() != TransportKind::Polling || session.is_closed() => {
            Err(())
        }
        other => Ok(other),
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::task::spawn_local(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(error) => {
                log::debug!("websocket upgrade failed: {error}");
                return;
            }
        };
        let config = ws_config(&engine);
        let socket =
            WebSocketStream::from_raw_socket(TokioIo(upgraded), Role::Server, Some(config)).await;
        match session {
            Err(()) => {
                let mut socket = socket;
                let _ = socket.close(None).await;
            }
            Ok(None) => {
                let session = engine.open(TransportKind::WebSocket);
                run(&engine, socket, &session).await;
            }
            Ok(Some(session)) => {
                if let Some(socket) = probe(&engine, socket, &session).await {
                    run(&engine, socket, &session).await;
                }
            }
        }
    });
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

fn ws_config(engine: &Engine) -> WebSocketConfig {
    let config = engine.config();
    WebSocketConfig::default()
        .read_buffer_size(config.ws_read_buffer)
        .write_buffer_size(config.ws_write_buffer)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(config.max_payload))
        .max_frame_size(Some(config.max_payload))
}

/// The upgrade handshake on a new WebSocket: `2probe` → `3probe`, then `5`. Returns the socket
/// once it carries the session, or `None` when the attempt failed (polling goes on).
async fn probe(engine: &Engine, mut socket: Socket, session: &Rc<Session>) -> Option<Socket> {
    let deadline = Instant::now() + engine.config().upgrade_timeout;
    let mut probed = false;
    loop {
        let message = tokio::select! {
            message = socket.next() => message,
            _ = sleep_until(deadline) => {
                log::debug!("session {}: upgrade timed out", session.sid());
                break;
            }
        };
        match message {
            Some(Ok(Message::Text(text))) if text.as_str() == "2probe" && !probed => {
                if !session.begin_probe() {
                    break;
                }
                probed = true;
                if socket.send(Message::text("3probe")).await.is_err() {
                    break;
                }
            }
            Some(Ok(Message::Text(text))) if text.as_str() == "5" && probed => {
                if session.finish_upgrade() {
                    log::debug!("session {}: upgraded to websocket", session.sid());
                    return Some(socket);
                }
                break;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => break,
        }
    }
    if probed {
        session.abort_probe();
    }
    let _ = socket.close(None).await;
    None
}

/// Moves packets both ways until the session or the connection ends.
async fn run(engine: &Engine, mut socket: Socket, session: &Rc<Session>) {
    let mut batch = Vec::new();
    loop {
        session.take_queued(&mut batch);
        if !batch.is_empty() {
            // A client that stops reading blocks this write; when the session is closed
            // meanwhile (its queue overflowed, say), the connection is dropped.
            let written = tokio::select! {
                written = write_batch(&mut socket, &mut batch) => written,
                _ = session.closed() => return,
            };
            if written.is_err() {
                session.close(CloseReason::TransportError);
                return;
            }
            continue;
        }
        if session.is_closed() {
            let _ = socket.close(None).await;
            return;
        }
        tokio::select! {
            message = socket.next() => {
                if let Err(reason) = receive(engine, session, message) {
                    if reason == CloseReason::TransportError {
                        // Says why the server closes: 1009, message too big.
                        let frame = CloseFrame { code: CloseCode::Size, reason: "".into() };
                        let _ = socket.close(Some(frame)).await;
                    } else {
                        // Sends tungstenite's answer to a close frame, if there was one; on a
                        // broken connection this fails harmlessly.
                        let _ = socket.flush().await;
                    }
                    session.close(reason);
                    return;
                }
            }
            _ = session.transport_woken() => {}
        }
    }
}

/// Writes every frame of `batch` with one flush at the end.
async fn write_batch(socket: &mut Socket, batch: &mut Vec<Frame>) -> Result<(), WsError> {
    for frame in batch.drain(..) {
        let message = match frame {
            Frame::Text(text) => Message::Text(text),
            Frame::Binary(data) => Message::Binary(data),
        };
        socket.feed(message).await?;
    }
    socket.flush().await
}

/// Handles one read result; `Err` ends the connection with that reason.
fn receive(
    engine: &Engine,
    session: &Rc<Session>,
    message: Option<Result<Message, WsError>>,
) -> Result<(), CloseReason> {
    match message {
        Some(Ok(Message::Text(text))) => match packet::decode(&text) {
            Ok(packet) => engine.receive(session, packet),
            Err(error) => {
                log::debug!("session {}: {error}", session.sid());
                return Err(CloseReason::ParseError);
            }
        },
        Some(Ok(Message::Binary(data))) => engine.receive(session, Packet::Binary(data)),
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
        Some(Ok(Message::Close(_))) | None => return Err(CloseReason::TransportClose),
        Some(Err(WsError::Capacity(error))) => {
            log::info!("session {}: {error}", session.sid());
            return Err(CloseReason::TransportError);
        }
        Some(Err(error)) => {
            log::debug!("session {}: {error}", session.sid());
            return Err(CloseReason::TransportClose);
        }
    }
    Ok(())
}
