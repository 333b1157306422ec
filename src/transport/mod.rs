//! Engine.IO over HTTP: request checks, then long-polling or WebSocket.
//!
//! [`handle`] answers every request to an Engine.IO endpoint such as `/socket.io/`. The checks
//! follow engine.io's order and error codes, so clients see the errors they expect.

pub mod io;
pub mod origin;
pub mod polling;
pub mod websocket;
pub mod ws_codec;

use std::rc::Rc;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::engineio::{Engine, TransportKind};
use crate::http::Body;

/// Engine.IO's HTTP error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineError {
    TransportUnknown = 0,
    UnknownSid = 1,
    BadHandshakeMethod = 2,
    BadRequest = 3,
    Forbidden = 4,
    UnsupportedProtocolVersion = 5,
}

impl EngineError {
    pub fn message(self) -> &'static str {
        match self {
            EngineError::TransportUnknown => "Transport unknown",
            EngineError::UnknownSid => "Session ID unknown",
            EngineError::BadHandshakeMethod => "Bad handshake method",
            EngineError::BadRequest => "Bad request",
            EngineError::Forbidden => "Forbidden",
            EngineError::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP answer: 403 for Forbidden, 400 otherwise, with socket.io's JSON body.
    pub fn response(self) -> Response<Body> {
        let status = if self == EngineError::Forbidden {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = format!(
            "{{\"code\":{},\"message\":\"{}\"}}",
            self as u8,
            self.message()
        );
        crate::http::response(status, "application/json", body)
    }
}

/// The Engine.IO query parameters of a request.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Query<'a> {
    pub eio: Option<&'a str>,
    pub transport: Option<&'a str>,
    pub sid: Option<&'a str>,
}

/// Reads `EIO`, `transport` and `sid` from a query string. Values of these parameters are
/// plain tokens, so no percent-decoding is needed; an encoded value simply does not match.
pub fn parse_query(query: &str) -> Query<'_> {
    let mut parsed = Query::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            "EIO" => &mut parsed.eio,
            "transport" => &mut parsed.transport,
            "sid" => &mut parsed.sid,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value);
        }
    }
    parsed
}

/// Answers one request to an Engine.IO endpoint.
pub async fn handle(engine: &Rc<Engine>, request: Request<Incoming>) -> Response<Body> {
    let headers = request.headers();
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let verdict = origin::check(origin, host, &engine.config().allowed_origins);
    if !verdict.is_allowed() {
        log::info!("refused a request from origin {}", origin.unwrap_or("?"));
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
                log::warn!("refused a new client: {limit} sessions open (--max-clients)");
                return crate::http::response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    format!("The chat is full ({limit} clients); try again later.\n"),
                );
            }
            match transport {
                TransportKind::Polling => polling::handshake(engine),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engine_query() {
        assert_eq!(
            parse_query("EIO=4&transport=polling&t=N8hyd6w&sid=abc"),
            Query {
                eio: Some("4"),
                transport: Some("polling"),
                sid: Some("abc")
            }
        );
        assert_eq!(parse_query(""), Query::default());
        assert_eq!(parse_query("EIO&&=x&transport=a=b").transport, Some("a=b"));
        assert_eq!(parse_query("sid=1&sid=2").sid, Some("1"));
    }

    #[test]
    fn error_bodies_match_socket_io() {
        assert_eq!(EngineError::UnknownSid as u8, 1);
        assert_eq!(
            EngineError::UnsupportedProtocolVersion.message(),
            "Unsupported protocol version"
        );
    }
}
