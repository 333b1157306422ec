//! Engine.IO over HTTP: request checks, then long-polling or WebSocket.
//!
//! [`handle`] answers every request to an Engine.IO endpoint such as `/socket.io/`. The checks
//! follow engine.io's order and error codes, so clients see the errors they expect.

mod body;
mod error;
pub(crate) mod io;
pub mod origin;
mod polling;
mod query;
mod websocket;
pub mod ws_codec;

use std::net::IpAddr;
use std::rc::Rc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::engineio::{Engine, TransportKind};
use crate::logger::{Throttle, untrusted};
pub use body::{Body, response};
pub use error::EngineError;
pub use query::{Query, parse_query};
pub use websocket::echo as websocket_echo;

/// The address of the client that sent a request, put in its extensions by the HTTP front.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

impl Peer {
    /// The request's client address; unspecified when the front did not say.
    pub fn of<B>(request: &Request<B>) -> IpAddr {
        request
            .extensions()
            .get::<Peer>()
            .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |peer| peer.0)
    }
}

/// Refused requests: a client can cause one per request, so their lines are rationed.
static REFUSED: Throttle = Throttle::new(20, Duration::from_secs(60));

/// Answers one request to an Engine.IO endpoint.
pub async fn handle(engine: &Rc<Engine>, request: Request<Incoming>) -> Response<Body> {
    let headers = request.headers();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let verdict = origin::check(origin, host, &engine.config().allowed_origins);
    if !verdict.is_allowed() {
        REFUSED.log(
            log::Level::Info,
            format_args!(
                "refused a request from origin {}",
                untrusted(origin.unwrap_or("?"))
            ),
        );
        return EngineError::Forbidden.response();
    }
    // Only origins listed with --allow-origin get CORS headers; the gateway's own page needs
    // none.
    let cors = (verdict == origin::Verdict::Allowed).then(|| origin.unwrap_or("").to_owned());
    if request.method() == Method::OPTIONS {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NO_CONTENT;
        if let Some(origin) = &cors {
            add_cors(&mut response, origin);
            let headers = response.headers_mut();
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, OPTIONS"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type"),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        return response;
    }
    let mut response = dispatch(engine, request).await;
    if let Some(origin) = &cors {
        add_cors(&mut response, origin);
    }
    response
}

fn add_cors(response: &mut Response<Body>, origin: &str) {
    let Ok(value) = HeaderValue::from_str(origin) else {
        return;
    };
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
}

async fn dispatch(engine: &Rc<Engine>, request: Request<Incoming>) -> Response<Body> {
    let query_text = request.uri().query().unwrap_or("");
    let query = parse_query(query_text);
    let transport = match query.transport {
        Some("polling") => TransportKind::Polling,
        Some("websocket") => TransportKind::WebSocket,
        _ => return EngineError::TransportUnknown.response(),
    };
    let is_upgrade = websocket::is_upgrade_request(&request);
    let sid = query.sid.map(str::to_owned);
    match sid {
        None => {
            if request.method() != Method::GET {
                return EngineError::BadHandshakeMethod.response();
            }
            if query.eio != Some("4") {
                return EngineError::UnsupportedProtocolVersion.response();
            }
            let limit = engine.config().max_sessions;
            if engine.len() >= limit {
                REFUSED.log(
                    log::Level::Warn,
                    format_args!("refused a new client: {limit} sessions open (--max-clients)"),
                );
                return response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("The chat is full ({limit} clients); try again later.\n"),
                );
            }
            match transport {
                TransportKind::Polling => polling::handshake(engine, Peer::of(&request)),
                TransportKind::WebSocket if is_upgrade => {
                    websocket::upgrade(engine.clone(), request, None)
                }
                TransportKind::WebSocket => EngineError::BadRequest.response(),
            }
        }
        Some(sid) => {
            let Some(session) = engine.session(&sid) else {
                return EngineError::UnknownSid.response();
            };
            match transport {
                TransportKind::WebSocket if is_upgrade => {
                    websocket::upgrade(engine.clone(), request, Some(session))
                }
                TransportKind::WebSocket => EngineError::BadRequest.response(),
                TransportKind::Polling => match *request.method() {
                    Method::GET => polling::get(&session).await,
                    Method::POST => polling::post(engine, &session, request).await,
                    _ => EngineError::BadRequest.response(),
                },
            }
        }
    }
}
